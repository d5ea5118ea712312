//! Identity per request: a session token found in the `Cookie` header, verified, and the
//! visitor's `user-hash` computed — cold (a session the proxy has not seen: signature
//! check) and cached (the same session on its next page).
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
    jwt_yaml: String,
    token: String,
}

fn keys_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys"))
}

fn case(name: &'static str, alg: Algorithm, key: EncodingKey, jwt_yaml: String) -> Case {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
    let claims = serde_json::json!({"sub": "user_42", "name": "Ada Lovelace", "exp": exp, "iat": exp - 3600});
    let token = jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap();
    Case { name, jwt_yaml, token }
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

fn identifier(runtime: &tokio::runtime::Runtime, jwt_yaml: &str) -> Identifier {
    let yaml = format!(
        "upstream: {{ url: http://127.0.0.1:9 }}\nassistant: {{ id: ast_bench }}\nidentity:\n  secret_key: sk_bench\n  jwt:\n    cookie: session\n{jwt_yaml}    claims: {{ user_name: name }}\n"
    );
    let config = Config::from_yaml(&yaml, "bench.yaml", Path::new(".")).unwrap();
    runtime
        .block_on(Identifier::start(config.main_site().identity.as_ref().unwrap(), &config.main_site().upstream))
        .unwrap()
}

fn request_headers(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let cookie = format!("_ga=GA1.2.1234567890.1700000000; theme=dark; session={token}; consent=yes");
    headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    headers
}

fn identity_per_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("identity");
    for case in cases() {
        let facts = RequestFacts::from_headers(request_headers(&case.token));
        group.bench_function(format!("{}/cold", case.name), |b| {
            b.iter_batched(
                || identifier(&runtime, &case.jwt_yaml),
                |identifier| {
                    let (visitor, outcome) = runtime.block_on(identifier.identify(&facts));
                    assert!(matches!(outcome, Identified::Verified { .. }) && visitor.is_some());
                    identifier
                },
                BatchSize::PerIteration,
            );
        });
        let warm = identifier(&runtime, &case.jwt_yaml);
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
