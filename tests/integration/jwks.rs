//! `jwt.jwks_url`: a real key-set server on loopback, fetched at start-up, refreshed in the
//! background and on an unknown `kid` (at most once per `jwks_min_refresh`), its last good
//! keys kept when it fails, and keys it drops no longer verifying.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use invent_proxy::identity::{Identified, Identifier, Rejection, RequestFacts, Source, Visitor};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use crate::support::tokens::{self, claims};
use crate::support::*;

/// A key-set server whose answer the test changes as it goes.
struct JwksServer {
    server: Upstream,
    answer: Arc<Mutex<(StatusCode, String)>>,
    delay: Arc<Mutex<Duration>>,
}

impl JwksServer {
    async fn start(kids: &[&str]) -> JwksServer {
        let answer = Arc::new(Mutex::new((StatusCode::OK, key_set(kids))));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let (shared, shared_delay) = (Arc::clone(&answer), Arc::clone(&delay));
        let server = spawn_upstream(move |_| {
            let (status, body) = shared.lock().unwrap().clone();
            let delay = *shared_delay.lock().unwrap();
            async move {
                tokio::time::sleep(delay).await;
                respond(status, "application/json", body)
            }
        })
        .await;
        JwksServer { server, answer, delay }
    }

    fn serve(&self, kids: &[&str]) {
        *self.answer.lock().unwrap() = (StatusCode::OK, key_set(kids));
    }

    fn fail(&self, status: StatusCode, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }

    fn fetches(&self) -> usize {
        self.server.seen().len()
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.server.addr)
    }
}

/// A key set with the fixture keys of `kids`: `rsa-1` (RS256) and `ec-1` (ES256).
fn key_set(kids: &[&str]) -> String {
    let keys = kids
        .iter()
        .map(|kid| {
            let mut jwk = match *kid {
                "rsa-1" => Jwk::from_encoding_key(&tokens::rsa_key(), Algorithm::RS256),
                "ec-1" => Jwk::from_encoding_key(&tokens::ec_key(), Algorithm::ES256),
                other => panic!("no fixture key {other}"),
            }
            .unwrap();
            jwk.common.key_id = Some((*kid).to_owned());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

/// Sessions in the `session` cookie verified with the key set at `url`, RS256 and ES256;
/// its refresh schedule is the test's to set.
fn jwks_jwt(url: &str) -> JwtYaml {
    JwtYaml::default().cookie("session").algorithms(&["RS256", "ES256"]).jwks_url(url)
}

fn identity(jwt: JwtYaml) -> IdentityYaml {
    IdentityYaml::default().jwt(jwt)
}

async fn identifier(jwt: JwtYaml) -> Result<Identifier, invent_proxy::identity::StartError> {
    let config = config(ProxyYaml::new("127.0.0.1:9".parse().unwrap()).identity(identity(jwt)));
    Identifier::start(config.main_site().identity.as_ref().unwrap(), &config.main_site().upstream).await
}

async fn identify(identifier: &Identifier, token: &str) -> (Option<Arc<Visitor>>, Identified) {
    let mut headers = http::HeaderMap::new();
    headers.insert("cookie", format!("session={token}").parse().unwrap());
    identifier.identify(&RequestFacts::from_headers(headers)).await
}

fn rsa_token(sub: &str) -> String {
    tokens::sign_with_kid(Algorithm::RS256, &tokens::rsa_key(), "rsa-1", &claims(sub))
}

fn ec_token(sub: &str) -> String {
    tokens::sign_with_kid(Algorithm::ES256, &tokens::ec_key(), "ec-1", &claims(sub))
}

#[tokio::test]
async fn a_rotated_in_key_is_fetched_on_its_first_token_at_most_once_per_min_refresh() {
    let jwks = JwksServer::start(&["rsa-1"]).await;
    let upstream = spawn_html_upstream("<!doctype html><html><body>account</body></html>").await;
    let jwt = jwks_jwt(&jwks.url()).jwks_min_refresh("300ms").jwks_refresh("1h");
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).identity(identity(jwt))).await;
    // No fetch since the one at start-up, which ended before the proxy started.
    let started = tokio::time::Instant::now();
    assert_eq!(jwks.fetches(), 1, "fetched once at start-up");
    let page = get_as(&proxy, "/", &rsa_token("u-rsa")).await.text();
    assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("u-rsa"), "{page}");

    // The site starts signing with a new key before the proxy has seen it; the set was
    // fetched moments ago, so the proxy does not ask again yet.
    let page = get_as(&proxy, "/", &ec_token("u-ec")).await;
    assert_eq!((page.status, widget_attribute(&page.text(), "user-id")), (StatusCode::OK, None));
    assert_eq!(jwks.fetches(), 1);

    jwks.serve(&["rsa-1", "ec-1"]);
    // Real time: `jwks_min_refresh` is measured on std's Instant, and in the proxy's worker
    // runtimes; it has passed once 300 ms have since the start-up fetch.
    tokio::time::sleep_until(started + Duration::from_millis(300)).await;
    let token = ec_token("u-ec");
    let pages = futures_util::future::join_all((0..5).map(|_| get_as(&proxy, "/", &token))).await;
    for page in pages {
        assert_eq!(widget_attribute(&page.text(), "user-id").as_deref(), Some("u-ec"));
    }
    assert_eq!(jwks.fetches(), 2, "five requests with the new kid made one fetch");

    let unknown = tokens::sign_with_kid(Algorithm::ES256, &tokens::ec_key(), "made-up", &claims("x"));
    assert_eq!(widget_attribute(&get_as(&proxy, "/", &unknown).await.text(), "user-id"), None);
    assert_eq!(jwks.fetches(), 2, "an unknown kid right after a fetch does not fetch again");
}

// The refresh schedule runs on tokio's timers in this runtime: a paused clock it may be.
#[tokio::test(start_paused = true)]
async fn a_failing_refresh_keeps_the_last_good_keys_and_a_dropped_key_stops_verifying() {
    let jwks = JwksServer::start(&["rsa-1", "ec-1"]).await;
    let identifier = identifier(jwks_jwt(&jwks.url()).jwks_refresh("100ms").jwks_min_refresh("50ms")).await.unwrap();
    let token = rsa_token("u1");
    assert_eq!(
        identify(&identifier, &token).await.1,
        Identified::Verified { source: Source::JwtCookie, cached: false }
    );
    assert_eq!(identify(&identifier, &token).await.1, Identified::Verified { source: Source::JwtCookie, cached: true });

    for (status, body) in
        [(StatusCode::SERVICE_UNAVAILABLE, "down"), (StatusCode::OK, "{not json"), (StatusCode::OK, "{\"keys\":[]}")]
    {
        jwks.fail(status, body);
        let fetched = jwks.fetches();
        wait_until("two refreshes", || jwks.fetches() >= fetched + 2).await;
        let (visitor, outcome) = identify(&identifier, &token).await;
        assert!(matches!(outcome, Identified::Verified { .. }), "{body}: {outcome:?}");
        assert_eq!(visitor.unwrap().user_id, "u1");
        assert_eq!(
            identify(&identifier, &ec_token("u2")).await.1,
            Identified::Verified { source: Source::JwtCookie, cached: false }
        );
    }

    // The site rotates rsa-1 out: a session signed with it, even one verified before,
    // no longer identifies anyone.
    jwks.serve(&["ec-1"]);
    wait_until_async("rsa-1 is dropped", || async {
        identify(&identifier, &token).await.1
            == Identified::Rejected { source: Source::JwtCookie, reason: Rejection::UnknownKey }
    })
    .await;
    assert_eq!(
        identify(&identifier, &ec_token("u2")).await.1,
        Identified::Verified { source: Source::JwtCookie, cached: false }
    );
}

#[tokio::test]
async fn an_unreachable_key_set_stops_start_up_unless_it_is_optional() {
    let (nowhere, _held) = unreachable_address();
    let url = format!("http://{nowhere}/jwks.json");
    let yaml = ProxyYaml::new(nowhere).identity(identity(jwks_jwt(&url)));
    let error = invent_proxy::start(config(yaml)).await.err().unwrap();
    let message = error.to_string();
    assert!(message.contains("identity.jwt.jwks_url: cannot load the key set at"), "{message}");
    assert!(message.contains("jwks_optional: true"), "{message}");

    let jwks = JwksServer::start(&[]).await;
    jwks.fail(StatusCode::BAD_GATEWAY, "");
    let upstream = spawn_html_upstream("<!doctype html><html><body>account</body></html>").await;
    let jwt = jwks_jwt(&jwks.url()).jwks_optional(true).jwks_min_refresh("100ms");
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin().identity(identity(jwt))).await;
    let admin = proxy.admin_addr().unwrap();
    let (status, reason) = crate::operations::admin_get(admin, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "not ready without its keys");
    assert!(reason.contains("identity.jwt.jwks_url not loaded"), "{reason}");
    crate::operations::scrape_until(admin, "invent_proxy_identity_keys_loaded 0").await;
    let page = get_as(&proxy, "/", &rsa_token("u1")).await;
    assert_eq!((page.status, widget_attribute(&page.text(), "user-id")), (StatusCode::OK, None), "anonymous meanwhile");
    jwks.serve(&["rsa-1"]);
    wait_until_async("the keys load", || async {
        widget_attribute(&get_as(&proxy, "/", &rsa_token("u1")).await.text(), "user-id").as_deref() == Some("u1")
    })
    .await;
    assert_eq!(crate::operations::admin_get(admin, "/readyz").await.0, StatusCode::OK, "ready once the keys loaded");
    crate::operations::scrape_until(admin, "invent_proxy_identity_keys_loaded 1").await;
}

#[tokio::test]
async fn key_location_headers_never_make_the_proxy_fetch_anything_but_its_own_key_set() {
    let jwks = JwksServer::start(&["rsa-1"]).await;
    let attacker = spawn_upstream(|_| async { respond(StatusCode::OK, "application/json", key_set(&["ec-1"])) }).await;
    let identifier = identifier(jwks_jwt(&jwks.url()).jwks_min_refresh("0s")).await.unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".into());
    header.jku = Some(format!("http://{}/keys.json", attacker.addr));
    header.x5u = Some(format!("http://{}/cert.pem", attacker.addr));
    header.jwk = Some(serde_json::from_str(&key_set(&["ec-1"])).map(|set: JwkSet| set.keys[0].clone()).unwrap());
    let forged =
        jsonwebtoken::encode(&header, &json!({"sub": "admin", "exp": 4_000_000_000u64}), &tokens::ec_key()).unwrap();
    assert_eq!(
        identify(&identifier, &forged).await.1,
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::UnknownKey }
    );
    assert_eq!(attacker.seen().len(), 0, "the token's jku/x5u were never fetched");
    assert_eq!(jwks.fetches(), 2, "only the configured key set was asked for the unknown kid");
    let wrong_alg = tokens::sign_with_kid(Algorithm::RS384, &tokens::rsa_key(), "rsa-1", &claims("u1"));
    assert_eq!(
        identify(&identifier, &wrong_alg).await.1,
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::AlgorithmNotAllowed }
    );
    let hs_with_public = EncodingKey::from_secret(&tokens::fixture("rsa_public.pem"));
    let confused = tokens::sign_with_kid(Algorithm::HS256, &hs_with_public, "rsa-1", &claims("admin"));
    assert_eq!(
        identify(&identifier, &confused).await.1,
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::AlgorithmNotAllowed }
    );
}

// The key set's delay and the pages' wait are tokio timers in this runtime: a paused
// clock they may be.
#[tokio::test(start_paused = true)]
async fn a_slow_key_set_holds_no_page_long_and_is_fetched_once_whoever_waits() {
    let jwks = JwksServer::start(&["rsa-1"]).await;
    let identifier = Arc::new(identifier(jwks_jwt(&jwks.url()).jwks_min_refresh("0s")).await.unwrap());
    *jwks.delay.lock().unwrap() = Duration::from_millis(1500);
    jwks.serve(&["rsa-1", "ec-1"]);
    let token = ec_token("u-ec");
    let pages = (0..5).map(|_| {
        let (identifier, token) = (Arc::clone(&identifier), token.clone());
        tokio::spawn(async move { identify(&identifier, &token).await.1 })
    });
    for outcome in futures_util::future::join_all(pages).await {
        // Each page stopped waiting after a second: anonymous, not held for the fetch.
        assert_eq!(outcome.unwrap(), Identified::Rejected { source: Source::JwtCookie, reason: Rejection::UnknownKey });
    }
    // The fetch the pages gave up on went on without them, and ended the wait of all.
    wait_until_async("the slow fetch ends", || async {
        identify(&identifier, &token).await.1 == Identified::Verified { source: Source::JwtCookie, cached: false }
    })
    .await;
    assert_eq!(jwks.fetches(), 2, "start-up, then one fetch for five pages");
}
