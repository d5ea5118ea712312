//! Session extraction and verification from random `Cookie` header bytes, through the
//! proxy's own identifier (HS256, the `session` cookie): a visitor or none, never a panic.
//! A token found is always a substring of what was sent, and a verified visitor's
//! `user-hash` is always the HMAC of its `user-id`.
#![no_main]

use std::sync::OnceLock;

use invent_proxy::identity::{Identified, Identifier, RequestFacts, session_cookie, user_hash};
use libfuzzer_sys::fuzz_target;

const SECRET_KEY: &str = "fuzz-assistant-secret";
/// The seeds' valid tokens are signed with it (fuzz/seeds/cookie/).
const JWT_SECRET: &str = "fuzz-jwt-secret-0123456789abcdef";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

fn identifier() -> &'static Identifier {
    static IDENTIFIER: OnceLock<Identifier> = OnceLock::new();
    IDENTIFIER.get_or_init(|| {
        let yaml = format!(
            "listen: 127.0.0.1:0\nupstream:\n  url: http://127.0.0.1:9\nassistant:\n  id: ast_fuzz\n\
             identity:\n  secret_key: {SECRET_KEY}\n  jwt:\n    cookie: session\n    algorithms: [HS256]\n    \
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
    if let Some(token) = session_cookie(&headers, "session") {
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
        (None, Identified::None | Identified::Rejected { .. }) => {}
        (visitor, outcome) => panic!("inconsistent identification: {visitor:?} with {outcome:?}"),
    }
});
