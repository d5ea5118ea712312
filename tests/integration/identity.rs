//! Signed-in visitors get `user-id` and `user-hash`; every bad token makes them anonymous
//! while the page is still served.

use http::{HeaderMap, HeaderValue, StatusCode};
use invent_proxy::identity::{Identified, Identifier, Rejection, RequestFacts, Source, user_hash};
use jsonwebtoken::{Algorithm, EncodingKey, get_current_timestamp};
use serde_json::json;

use crate::support::tokens::{self, claims, with};
use crate::support::*;

pub const PAGE: &str = "<!DOCTYPE html><html><body><p>Account</p></body></html>";

/// A token verified now, not taken from the cache.
pub const VERIFIED: Identified = Identified::Verified { source: Source::JwtCookie, cached: false };

/// A config with this `jwt` block, or why it does not load.
pub fn load(jwt: JwtYaml) -> Result<invent_proxy::Config, String> {
    let yaml = ProxyYaml::new("127.0.0.1:9".parse().unwrap()).identity(IdentityYaml::default().jwt(jwt));
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    invent_proxy::Config::from_yaml(&yaml.to_string(), "t.yaml", &fixtures).map_err(|e| e.to_string())
}

/// Why a config with this `jwt` block does not load.
pub fn config_error(jwt: JwtYaml) -> String {
    load(jwt).expect_err("the config is refused")
}

pub fn identifier(jwt: JwtYaml) -> Identifier {
    let config = load(jwt).unwrap_or_else(|e| panic!("{e}"));
    block_on(Identifier::start(config.main_site().identity.as_ref().unwrap(), &config.main_site().upstream)).unwrap()
}

pub fn outcome(identifier: &Identifier, token: &str) -> Identified {
    let mut headers = HeaderMap::new();
    headers.insert("cookie", HeaderValue::from_str(&format!("session={token}")).unwrap());
    block_on(identifier.identify(&RequestFacts::from_headers(headers))).1
}

#[tokio::test]
async fn a_valid_session_gets_user_id_and_the_spec_user_hash() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_identity_proxy(&upstream).await;
    for (user, hash) in [
        ("user_42", "45bb144b8ebbe9876600b63739423f010f4ea3d43771ea3fee1329d463683b59"),
        ("Zoë-7", "04a33c483382739aca1dc954e79aac17831e5595be959c9dbe91cec509dcc2b5"),
    ] {
        let page = get_as(&proxy, "/", &tokens::hs256(&claims(user))).await.text();
        assert_eq!(widget_attribute(&page, "user-hash").as_deref(), Some(hash), "{page}");
        assert_eq!(user_hash(SECRET_KEY, user), hash);
    }
    let page = get_as(&proxy, "/", &tokens::hs256(&claims("Zoë-7"))).await.text();
    assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("Zo&#xeb;-7"), "non-ASCII is escaped");
}

#[tokio::test]
async fn integer_ids_are_decimal_and_extras_are_optional() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let token = tokens::hs256(&with(
        with(claims(9_007_199_254_740_993_u64), "name", "Ada"),
        "picture",
        "https://cdn.example/a.png",
    ));
    let page = get_as(&proxy, "/", &token).await.text();
    assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("9007199254740993"));
    assert_eq!(widget_attribute(&page, "user-hash"), Some(user_hash(SECRET_KEY, "9007199254740993")));
    assert_eq!(widget_attribute(&page, "user-name").as_deref(), Some("Ada"));
    assert_eq!(widget_attribute(&page, "user-avatar").as_deref(), Some("https://cdn.example/a.png"));

    let insecure_avatar = tokens::hs256(&with(claims("u1"), "picture", "http://cdn.example/a.png"));
    let page = get_as(&proxy, "/", &insecure_avatar).await.text();
    assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("u1"), "identity survives a bad avatar");
    assert_eq!(widget_attribute(&page, "user-avatar"), None);
}

#[tokio::test]
async fn a_hostile_display_name_stays_text() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let token = tokens::hs256(&with(claims("u1"), "name", "\"><script>alert(1)</script>"));
    let page = get_as(&proxy, "/", &token).await;
    let text = page.text();
    assert!(!text.contains("<script>alert(1)"), "{text}");
    assert_eq!(
        widget_attribute(&text, "user-name").as_deref(),
        Some("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert_eq!(page.widgets(), 1);
}

#[tokio::test]
async fn nested_claim_paths_find_the_identity() {
    let upstream = spawn_html_upstream(PAGE).await;
    let jwt = JwtYaml::session().user_id_claim("user.ids.1").user_name_claim("user.profile.name");
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).identity(IdentityYaml::default().jwt(jwt))).await;
    let payload =
        json!({"exp": get_current_timestamp() + 60, "user": {"ids": ["a", 77], "profile": {"name": "Grace"}}});
    let page = get_as(&proxy, "/", &tokens::hs256(&payload)).await.text();
    assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("77"));
    assert_eq!(widget_attribute(&page, "user-name").as_deref(), Some("Grace"));
}

/// Every way a token can be bad, with the reason the access log gives.
fn bad_tokens() -> Vec<(&'static str, String, Rejection)> {
    let now = get_current_timestamp();
    let wrong_key = EncodingKey::from_secret(b"not-the-site-key");
    vec![
        ("bad signature", tokens::sign(Algorithm::HS256, &wrong_key, &claims("u1")), Rejection::BadSignature),
        (
            "alg none",
            tokens::unsigned(&json!({"alg": "none", "typ": "JWT"}), &claims("u1")),
            Rejection::AlgorithmNotAllowed,
        ),
        ("alg None", tokens::unsigned(&json!({"alg": "None"}), &claims("u1")), Rejection::AlgorithmNotAllowed),
        (
            "algorithm not listed",
            tokens::sign(Algorithm::HS512, &EncodingKey::from_secret(JWT_SECRET.as_bytes()), &claims("u1")),
            Rejection::AlgorithmNotAllowed,
        ),
        ("expired", tokens::hs256(&json!({"sub": "u1", "exp": now - 3600})), Rejection::Expired),
        ("not yet valid", tokens::hs256(&with(claims("u1"), "nbf", now + 3600)), Rejection::NotYetValid),
        ("no exp", tokens::hs256(&json!({"sub": "u1"})), Rejection::MissingClaim),
        ("garbage", "definitely-not-a-jwt".to_owned(), Rejection::Malformed),
        ("garbage segments", "eyJhbGciOiJIUzI1NiJ9.@@@.###".to_owned(), Rejection::Malformed),
        ("oversized", tokens::hs256(&with(claims("u1"), "pad", "x".repeat(9000))), Rejection::TooLarge),
        ("no user id", tokens::hs256(&json!({"exp": now + 60})), Rejection::NoUserId),
        ("empty user id", tokens::hs256(&claims("")), Rejection::NoUserId),
        // RFC 7519: `sub` is a string; an object there makes the payload unreadable.
        ("object sub", tokens::hs256(&claims(json!({"id": 1}))), Rejection::Malformed),
        ("string exp", tokens::hs256(&json!({"sub": "u1", "exp": "tomorrow"})), Rejection::MissingClaim),
        ("float user id", tokens::hs256(&claims(1.5)), Rejection::InvalidUserId),
    ]
}

#[test]
fn each_bad_token_is_rejected_for_its_own_reason() {
    let identifier = identifier(JwtYaml::session());
    for (name, token, reason) in bad_tokens() {
        assert_eq!(outcome(&identifier, &token), Identified::Rejected { source: Source::JwtCookie, reason }, "{name}");
    }
    assert_eq!(outcome(&identifier, &tokens::hs256(&claims("u1"))), VERIFIED);
    assert_eq!(block_on(identifier.identify(&RequestFacts::from_headers(HeaderMap::new()))).1, Identified::None);
}

#[tokio::test]
async fn bad_tokens_leave_the_visitor_anonymous_and_the_page_served() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_identity_proxy(&upstream).await;
    for (name, token, _) in bad_tokens() {
        let page = get_as(&proxy, "/", &token).await;
        assert_eq!(page.status, StatusCode::OK, "{name}");
        assert_eq!(page.widgets(), 1, "{name}");
        assert_eq!(widget_attribute(&page.text(), "user-id"), None, "{name}");
        assert_eq!(widget_attribute(&page.text(), "user-hash"), None, "{name}");
    }
}

#[test]
fn issuer_audience_and_leeway_are_checked() {
    let identifier = identifier(JwtYaml::session().issuer(&["https://app.example"]).audience(&["web"]).leeway("5s"));
    let now = get_current_timestamp();
    let good = with(with(claims("u1"), "iss", "https://app.example"), "aud", "web");
    assert_eq!(outcome(&identifier, &tokens::hs256(&good)), VERIFIED);
    let wrong_iss = with(good.clone(), "iss", "https://evil.example");
    assert_eq!(
        outcome(&identifier, &tokens::hs256(&wrong_iss)),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::WrongIssuer }
    );
    let wrong_aud = with(good.clone(), "aud", "mobile");
    assert_eq!(
        outcome(&identifier, &tokens::hs256(&wrong_aud)),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::WrongAudience }
    );
    let within_leeway = with(good.clone(), "exp", now - 2);
    assert_eq!(outcome(&identifier, &tokens::hs256(&within_leeway)), VERIFIED);
    let past_leeway = with(good, "exp", now - 30);
    assert_eq!(
        outcome(&identifier, &tokens::hs256(&past_leeway)),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::Expired }
    );
}

/// Sessions signed with [`JWT_SECRET`], the user id in `sub`; where the token is found is
/// the test's to set.
pub fn hs_jwt() -> JwtYaml {
    JwtYaml::default().secret(JWT_SECRET).user_id_claim("sub")
}

fn outcome_for(identifier: &Identifier, headers: &[(&'static str, String)]) -> Identified {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    block_on(identifier.identify(&RequestFacts::from_headers(map))).1
}

#[tokio::test]
async fn a_bearer_header_identifies_and_the_page_varies_by_it() {
    let upstream = spawn_html_upstream(PAGE).await;
    let identity = IdentityYaml::default().jwt(hs_jwt().header("Authorization").cookie("session"));
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).identity(identity)).await;
    let token = tokens::hs256(&claims("bearer_user"));
    let page = get_with(&proxy, "/", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(widget_attribute(&page.text(), "user-id").as_deref(), Some("bearer_user"));
    let vary: Vec<_> = page.headers.get_all(http::header::VARY).iter().collect();
    assert_eq!(vary, ["Authorization", "Cookie"]);
    let by_cookie = get_as(&proxy, "/", &tokens::hs256(&claims("cookie_user"))).await.text();
    assert_eq!(widget_attribute(&by_cookie, "user-id").as_deref(), Some("cookie_user"));
}

#[test]
fn chunked_cookies_are_joined_and_a_gap_is_refused() {
    let identifier = identifier(hs_jwt().cookie("next-auth.session-token").cookie_chunks(true));
    let token = tokens::hs256(&claims("chunked"));
    let (first, second) = token.split_at(token.len() / 2);
    let cookie = format!("next-auth.session-token.1={second}; theme=dark; next-auth.session-token.0={first}");
    let joined = Identified::Verified { source: Source::JwtChunks, cached: false };
    assert_eq!(outcome_for(&identifier, &[("cookie", cookie)]), joined);
    let gap = format!("next-auth.session-token.0={first}; next-auth.session-token.2={second}");
    assert_eq!(
        outcome_for(&identifier, &[("cookie", gap)]),
        Identified::Rejected { source: Source::JwtChunks, reason: Rejection::IncompleteChunks }
    );
}

#[test]
fn required_claims_issuers_and_audiences_accept_lists() {
    let identifier = identifier(
        hs_jwt()
            .cookie("session")
            .required_claims(&["exp", "sub", "tenant.id"])
            .issuer(&["https://a.example", "https://b.example"])
            .audience(&["web", "mobile"]),
    );
    let full = with(with(with(claims("u1"), "iss", "https://b.example"), "aud", "mobile"), "tenant", json!({"id": 7}));
    assert_eq!(outcome(&identifier, &tokens::hs256(&full)), VERIFIED);
    let no_tenant = with(with(claims("u1"), "iss", "https://a.example"), "aud", "web");
    assert_eq!(
        outcome(&identifier, &tokens::hs256(&no_tenant)),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::MissingClaim }
    );
    let other_issuer = with(full.clone(), "iss", "https://c.example");
    assert_eq!(
        outcome(&identifier, &tokens::hs256(&other_issuer)),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::WrongIssuer }
    );
    let no_exp_needed = identifier_without_exp();
    assert_eq!(outcome(&no_exp_needed, &tokens::hs256(&json!({"sub": "u1"}))), VERIFIED);
}

fn identifier_without_exp() -> Identifier {
    identifier(hs_jwt().cookie("session").required_claims(&["sub"]))
}

#[test]
fn secrets_may_be_written_in_base64() {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(JWT_SECRET);
    let jwt = hs_jwt().cookie("session").secret_encoding("base64").secret(&encoded);
    assert_eq!(outcome(&identifier(jwt), &tokens::hs256(&claims("u1"))), VERIFIED);
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(JWT_SECRET);
    let jwt = hs_jwt().cookie("session").secret_encoding("base64url").secret(&url_safe);
    assert_eq!(outcome(&identifier(jwt), &tokens::hs256(&claims("u1"))), VERIFIED);
    let bad = hs_jwt().cookie("session").secret_encoding("base64").secret("not base64!");
    let error = config_error(bad);
    assert!(error.contains("identity.jwt.secret: is not valid for `secret_encoding`"), "{error}");
}

#[test]
fn a_configured_issuer_or_audience_cannot_be_left_out_or_malformed() {
    let identifier = identifier(hs_jwt().cookie("session").issuer(&["https://a.example"]).audience(&["web"]));
    let good = with(with(claims("u1"), "iss", "https://a.example"), "aud", "web");
    assert_eq!(outcome(&identifier, &tokens::hs256(&good)), VERIFIED);
    let mut no_iss = good.clone();
    no_iss.as_object_mut().unwrap().remove("iss");
    assert!(matches!(outcome(&identifier, &tokens::hs256(&no_iss)), Identified::Rejected { .. }), "no iss");
    let mut no_aud = good.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    assert!(matches!(outcome(&identifier, &tokens::hs256(&no_aud)), Identified::Rejected { .. }), "no aud");
    for iss in [json!(5), json!(null), json!({"x": 1}), json!(["https://a.example", "https://evil.example"])] {
        let token = tokens::hs256(&with(good.clone(), "iss", iss.clone()));
        assert!(matches!(outcome(&identifier, &token), Identified::Rejected { .. }), "iss {iss}");
    }
}

#[test]
fn a_required_claim_that_is_null_is_missing() {
    let identifier = identifier(hs_jwt().cookie("session").required_claims(&["exp", "tenant"]));
    assert_eq!(outcome(&identifier, &tokens::hs256(&with(claims("u1"), "tenant", 3))), VERIFIED);
    let null = tokens::hs256(&with(claims("u1"), "tenant", json!(null)));
    assert_eq!(
        outcome(&identifier, &null),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::MissingClaim }
    );
}

#[test]
fn chunk_numbers_are_plain_decimal() {
    let identifier = identifier(hs_jwt().cookie("s").cookie_chunks(true));
    let token = tokens::hs256(&claims("u1"));
    let (first, second) = token.split_at(10);
    let odd = format!("s.0={first}; s.01={second}");
    assert_eq!(
        outcome_for(&identifier, &[("cookie", odd)]),
        Identified::Rejected { source: Source::JwtChunks, reason: Rejection::Malformed },
        "s.01 is not chunk 1"
    );
}

#[test]
fn oversized_cookies_and_payloads_are_refused_unread() {
    let identifier = identifier(JwtYaml::session());
    let sixteen_kib = "a".repeat(16 * 1024);
    assert_eq!(
        outcome(&identifier, &sixteen_kib),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::TooLarge }
    );
    let huge_payload = tokens::hs256(&with(claims("u1"), "blob", "x".repeat(100 * 1024)));
    assert_eq!(
        outcome(&identifier, &huge_payload),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::TooLarge }
    );
}

mod fuzzing {
    use http::{HeaderMap, HeaderValue};
    use invent_proxy::identity::{Identified, RequestFacts};
    use proptest::prelude::*;

    use super::{hs_jwt, identifier};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever bytes arrive in `Cookie` and `Authorization`, identification neither
        /// panics nor lets anyone in.
        #[test]
        fn random_cookie_and_header_bytes_never_identify(
            cookie in prop::collection::vec(any::<u8>(), 0..2048),
            authorization in prop::collection::vec(any::<u8>(), 0..2048),
            prefix in prop::sample::select(vec!["", "session=", "session.0=", "session.1=", "Bearer "]),
        ) {
            let identifier = identifier(hs_jwt().header("Authorization").cookie("session").cookie_chunks(true));
            let mut headers = HeaderMap::new();
            let with_prefix = |bytes: &[u8]| [prefix.as_bytes(), bytes].concat();
            if let Ok(value) = HeaderValue::from_bytes(&with_prefix(&cookie)) {
                headers.insert("cookie", value);
            }
            if let Ok(value) = HeaderValue::from_bytes(&with_prefix(&authorization)) {
                headers.insert("authorization", value);
            }
            let (visitor, outcome) = crate::support::block_on(identifier.identify(&RequestFacts::from_headers(headers)));
            prop_assert!(visitor.is_none());
            prop_assert!(!matches!(outcome, Identified::Verified { .. }), "verified: {:?}", outcome);
        }
    }
}

#[test]
fn a_cached_session_expires_with_its_token() {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let rsa = identifier(crate::jwt_keys::public_key_jwt("rsa_public.pem", &["RS256"]).leeway("0s"));
    let exp = get_current_timestamp() + 1;
    let token = tokens::rs256(&json!({"sub": "u1", "exp": exp}));
    assert_eq!(outcome(&rsa, &token), VERIFIED);
    assert_eq!(outcome(&rsa, &token), Identified::Verified { source: Source::JwtCookie, cached: true });
    // Real time: jsonwebtoken checks `exp` against the wall clock and the cache times its
    // entries on std's Instant, neither of them tokio's. The token is expired from second
    // exp + 1; its cache entry a moment after that (its lifetime was reckoned before it
    // was stored), hence the 100 ms.
    let expired = UNIX_EPOCH + Duration::from_secs(exp + 1) + Duration::from_millis(100);
    if let Ok(left) = expired.duration_since(SystemTime::now()) {
        std::thread::sleep(left);
    }
    assert_eq!(
        outcome(&rsa, &token),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::Expired },
        "the cache never outlives the token"
    );
}

/// The identity outcomes the admin listener counted, after one page for each token.
pub async fn outcomes_after(jwt: JwtYaml, tokens: &[String]) -> (Vec<String>, String) {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin().identity(IdentityYaml::default().jwt(jwt))).await;
    let mut pages = Vec::new();
    for token in tokens {
        let page = get_as(&proxy, "/", token).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.widgets(), 1);
        pages.push(page.text());
    }
    let admin = proxy.admin_addr().unwrap();
    let served = format!("invent_proxy_requests_total{{method=\"GET\",status=\"2xx\"}} {}", tokens.len());
    let metrics = crate::operations::scrape_until(admin, &served).await;
    (pages, metrics)
}

#[tokio::test]
async fn a_token_with_critical_header_extensions_is_rejected() {
    let header = |crit: serde_json::Value| json!({"alg": "HS256", "typ": "JWT", "crit": crit, "b64": true});
    let tokens: Vec<String> = [json!(["b64"]), json!(["exp"])]
        .into_iter()
        .map(|crit| tokens::hs256_with_header(&header(crit), &claims("user_42"), JWT_SECRET.as_bytes()))
        .chain([tokens::hs256(&claims("user_42"))])
        .collect();
    let (pages, metrics) = outcomes_after(JwtYaml::session(), &tokens).await;
    assert_eq!(widget_attribute(&pages[0], "user-id"), None, "{}", pages[0]);
    assert_eq!(widget_attribute(&pages[1], "user-id"), None);
    assert_eq!(widget_attribute(&pages[2], "user-id").as_deref(), Some("user_42"), "the control verifies");
    assert!(
        metrics.contains(r#"invent_proxy_identity_total{outcome="rejected",source="jwt_cookie",reason="crit"} 2"#),
        "{metrics}"
    );
}
