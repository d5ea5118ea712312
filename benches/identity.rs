//! Identity per request: a session token found in the `Cookie` header, verified, and the
//! visitor's `user-hash` computed — cold (a session the proxy has not seen: signature
//! check) and cached (the same session on its next page) — for JWTs, and beside HS256 for
//! the framework sessions read in place: Rails, Flask and cookie-session cookies made by
//! the frameworks' own code (`tests/frameworks/vectors.json`).
//!
//! `cargo bench --bench identity`
// Test and bench code: a panic is the test failing, and its helpers are `pub` for the
// modules beside them.
#![allow(clippy::unwrap_used, unreachable_pub)]

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, header};
use invent_proxy::Config;
use invent_proxy::identity::{Identified, Identifier, RequestFacts};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const HS_SECRET: &str = "bench-session-secret-0123456789abcdef";

struct Case {
    name: &'static str,
    /// The identity source's block, under `identity:`.
    source_yaml: String,
    /// The session's cookies, `name=value; …`.
    cookies: String,
}

fn keys_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys"))
}

fn case(name: &'static str, alg: Algorithm, key: EncodingKey, jwt_yaml: String) -> Case {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
    let claims = serde_json::json!({"sub": "user_42", "name": "Ada Lovelace", "exp": exp, "iat": exp - 3600});
    let token = jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap();
    let source_yaml = format!("  jwt:\n    cookie: session\n{jwt_yaml}    claims: {{ user_name: name }}\n");
    Case { name, source_yaml, cookies: format!("session={token}") }
}

/// A framework session of the committed vectors: its config block and its `Cookie` value.
fn framework_case(name: &'static str, vector_id: &str, source_yaml: &str) -> Case {
    let vectors: serde_json::Value = serde_json::from_str(include_str!("../tests/frameworks/vectors.json")).unwrap();
    let vector = vectors["vectors"].as_array().unwrap().iter().find(|v| v["id"] == vector_id).unwrap();
    let cookies = vector["cookie_header"].as_str().unwrap().to_owned();
    let skb = vectors["derived_keys"]["rails"]["secret_key_base"].as_str().unwrap();
    Case { name, source_yaml: source_yaml.replace("$SKB", skb), cookies }
}

fn framework_cases() -> Vec<Case> {
    let rails = "  rails:\n    cookie: _shop_session\n    secret_key_base: $SKB\n";
    // The vectors were signed at 2026-01-01: a max_age that keeps them valid.
    let flask = "  flask:\n    secret_key: flask-vector-secret-key\n    max_age: 36500d\n";
    let cookie_session = "  cookie_session:\n    keys: [cookie-key-new, cookie-key-old]\n";
    vec![
        // Rails 7.0+: the first key (SHA256) opens it.
        framework_case("Rails GCM SHA256", "rails-gcm-sha256-envelope", rails),
        // Rails 6.x under `key_derivation: auto`: the SHA256 key fails first.
        framework_case("Rails GCM SHA1", "rails-gcm-sha1-envelope", rails),
        framework_case("Rails CBC", "rails-cbc-sha1-envelope", rails),
        // Flask-Login's session: zlib-compressed.
        framework_case("Flask", "flask-login-compressed", flask),
        // Signed with the second of two keys: two HMACs.
        framework_case("cookie-session", "cs-second-key", cookie_session),
    ]
}

fn cases() -> Vec<Case> {
    let pem = |file: &str| std::fs::read(keys_dir().join(file)).unwrap();
    let public_key = |alg: &str, file: &str| {
        format!("    algorithms: [{alg}]\n    public_key_file: {}\n", keys_dir().join(file).display())
    };
    vec![
        case(
            "HS256",
            Algorithm::HS256,
            EncodingKey::from_secret(HS_SECRET.as_bytes()),
            format!("    secret: {HS_SECRET}\n"),
        ),
        case(
            "RS256",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&pem("rsa_private.pem")).unwrap(),
            public_key("RS256", "rsa_public.pem"),
        ),
        case(
            "ES256",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&pem("ec_private.pem")).unwrap(),
            public_key("ES256", "ec_public.pem"),
        ),
    ]
}

fn identifier(runtime: &tokio::runtime::Runtime, source_yaml: &str) -> Identifier {
    let yaml = format!(
        "upstream: {{ url: http://127.0.0.1:9 }}\nassistant: {{ id: ast_bench }}\nidentity:\n  secret_key: sk_bench\n{source_yaml}"
    );
    let config = Config::from_yaml(&yaml, "bench.yaml", Path::new(".")).unwrap();
    runtime
        .block_on(Identifier::start(config.main_site().identity.as_ref().unwrap(), &config.main_site().upstream))
        .unwrap()
}

fn request_headers(session: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let cookie = format!("_ga=GA1.2.1234567890.1700000000; theme=dark; {session}; consent=yes");
    headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    headers
}

fn identity_per_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("identity");
    for case in cases().into_iter().chain(framework_cases()) {
        let facts = RequestFacts::from_headers(request_headers(&case.cookies));
        group.bench_function(format!("{}/cold", case.name), |b| {
            b.iter_batched(
                || identifier(&runtime, &case.source_yaml),
                |identifier| {
                    let (visitor, outcome) = runtime.block_on(identifier.identify(&facts));
                    assert!(matches!(outcome, Identified::Verified { .. }) && visitor.is_some());
                    identifier
                },
                BatchSize::PerIteration,
            );
        });
        let warm = identifier(&runtime, &case.source_yaml);
        runtime.block_on(warm.identify(&facts));
        group.bench_function(format!("{}/cached", case.name), |b| {
            b.iter(|| {
                let (visitor, outcome) = runtime.block_on(warm.identify(&facts));
                assert!(matches!(outcome, Identified::Verified { .. }) && visitor.is_some());
            });
        });
    }
    group.finish();
}

criterion_group!(benches, identity_per_request);
criterion_main!(benches);
