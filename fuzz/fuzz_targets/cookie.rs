//! Session extraction and verification from random `Cookie` header bytes, through the
//! proxy's own identifier — an HS256 JWT in `token`, then a Rails session in
//! `_shop_session`, a Flask one in `fsession` and an Express cookie-session one in `session`
//! (with `session.sig`), with the secrets of tests/frameworks/vectors.json, whose cookies
//! are among the seeds: a visitor or none, never a panic. A token found is always a
//! substring of what was sent, and a verified visitor's `user-hash` is always the HMAC of
//! its `user-id`.
#![no_main]

use std::sync::OnceLock;

use invent_proxy::identity::{Identified, Identifier, RequestFacts, session_cookie, user_hash};
use libfuzzer_sys::fuzz_target;

const SECRET_KEY: &str = "fuzz-assistant-secret";
/// The seeds' valid tokens are signed with it (fuzz/seeds/cookie/).
const JWT_SECRET: &str = "fuzz-jwt-secret-0123456789abcdef";
/// The framework blocks, with the secrets the vectors were made with (the Flask ones were
/// signed on 2026-01-01: a max_age that keeps them valid).
const FRAMEWORKS: &str = "  rails:\n    cookie: _shop_session\n    secret_key_base: f2d0e7b4c1a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0\n  \
    flask:\n    cookie: fsession\n    secret_key: flask-vector-secret-key\n    max_age: 36500d\n  \
    cookie_session:\n    keys: [cookie-key-new, cookie-key-old]\n    claims: { user_id: passport.user }\n";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

fn identifier() -> &'static Identifier {
    static IDENTIFIER: OnceLock<Identifier> = OnceLock::new();
    IDENTIFIER.get_or_init(|| {
        let yaml = format!(
            "listen: 127.0.0.1:0\nupstream:\n  url: http://127.0.0.1:9\nassistant:\n  id: ast_fuzz\n\
             identity:\n  secret_key: {SECRET_KEY}\n{FRAMEWORKS}  jwt:\n    cookie: token\n    algorithms: [HS256]\n    \
             secret: {JWT_SECRET}\n    claims:\n      user_id: sub\n      user_name: name\n      user_avatar: picture\n"
        );
        let config = invent_proxy::Config::from_yaml(&yaml, "fuzz.yaml", std::path::Path::new("/nonexistent"))
            .expect("the fuzz config loads");
        let site = config.main_site();
        let identity = site.identity.as_ref().expect("identity configured");
        runtime().block_on(Identifier::start(identity, &site.upstream)).expect("the identifier starts")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = http::HeaderValue::from_bytes(data) else { return };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::COOKIE, value);
    if let Some(token) = session_cookie(&headers, "token") {
        assert!(token.is_empty() || data.windows(token.len()).any(|w| w == token.as_bytes()));
    }
    let (visitor, outcome) = runtime().block_on(identifier().identify(&RequestFacts::from_headers(headers.clone())));
    match (visitor, outcome) {
        (Some(visitor), Identified::Verified { .. }) => {
            assert!(!visitor.user_id.is_empty());
            assert_eq!(visitor.user_hash, user_hash(SECRET_KEY, &visitor.user_id));
            if let Some(avatar) = &visitor.user_avatar {
                assert!(avatar.starts_with("https://"), "{avatar}");
            }
        }
        (None, Identified::None | Identified::Rejected { .. } | Identified::SignedOut { .. }) => {}
        (visitor, outcome) => panic!("inconsistent identification: {visitor:?} with {outcome:?}"),
    }
});
