//! `identity.lookup`: sessions that are not JWTs, identified by the site's own "who am I"
//! endpoint on a real upstream — only the named cookies forwarded, answers cached and
//! shared, and every failure an anonymous visitor on a page that is still served.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode, header};
use hyper::body::Incoming;
use invent_proxy::identity::{Identified, Identifier, Rejection, RequestFacts, Source, user_hash};

use crate::support::*;

const PAGE: &str = "<!doctype html><html><body><p>Shop</p></body></html>";

/// A legacy site: pages on every path, and `/whoami` answering by the `PHPSESSID` cookie
/// the way a PHP, Rails or Django app would.
async fn spawn_site() -> Upstream {
    spawn_upstream(|req: Request<Incoming>| async move {
        if req.uri().path() != "/whoami" {
            return html(PAGE);
        }
        let cookie = req.headers().get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let session = cookie.split("; ").find_map(|c| c.strip_prefix("PHPSESSID=")).unwrap_or_default();
        let json = |body: &str| respond(StatusCode::OK, "application/json", body.to_owned());
        match session {
            "ada" => json(r#"{"user": {"id": 42, "name": "Ada", "avatar": "https://cdn.example/ada.png"}}"#),
            "slow" => {
                // A slow endpoint (well within the lookup's 500 ms): what lets pages meet.
                tokio::time::sleep(Duration::from_millis(300)).await;
                json(r#"{"user": {"id": "slow-1"}}"#)
            }
            "hang" => std::future::pending().await,
            "error" => respond(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "boom"),
            "junk" => json("<html>not json"),
            "script" => json(r#"{"user": {"id": "\"><script>alert(1)</script>"}}"#),
            "float" => json(r#"{"user": {"id": 1.5}}"#),
            "logged-out" => json(r#"{"user": null}"#),
            _ => respond(StatusCode::UNAUTHORIZED, "application/json", "{}"),
        }
    })
    .await
}

/// `/whoami` at `site` asked by the `PHPSESSID` and `remember_me` cookies, for at most
/// 500 ms; the user's id, name and avatar under `user`.
fn lookup(site: std::net::SocketAddr) -> LookupYaml {
    LookupYaml::new(format!("http://{site}/whoami"), &["PHPSESSID", "remember_me"])
        .timeout("500ms")
        .user_id_claim("user.id")
        .user_name_claim("user.name")
        .user_avatar_claim("user.avatar")
}

/// A proxy config in front of `site` with this lookup.
fn lookup_yaml(site: &Upstream, lookup: LookupYaml) -> ProxyYaml {
    ProxyYaml::new(site.addr).identity(IdentityYaml::default().lookup(lookup))
}

fn whoami_asks(site: &Upstream) -> Vec<String> {
    site.seen()
        .into_iter()
        .filter(|seen| seen.uri.path() == "/whoami")
        .map(|seen| seen.headers.get(header::COOKIE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default())
        .collect()
}

async fn page_for(proxy: &invent_proxy::RunningProxy, session: &str) -> Received {
    let cookie = format!("theme=dark; PHPSESSID={session}; tracking=abc");
    tokio::time::timeout(
        Duration::from_secs(10),
        get_with(proxy, "/account", &[("cookie", &cookie), ("host", "shop.example")]),
    )
    .await
    .expect("a page is never held for a slow lookup")
}

#[tokio::test]
async fn a_session_cookie_is_looked_up_with_only_the_named_cookies_and_the_answer_is_reused() {
    let site = spawn_site().await;
    let proxy = spawn_proxy(lookup_yaml(&site, lookup(site.addr))).await;
    let page = page_for(&proxy, "ada").await;
    let text = page.text();
    assert_eq!(widget_attribute(&text, "user-id").as_deref(), Some("42"), "{text}");
    assert_eq!(widget_attribute(&text, "user-hash"), Some(user_hash(SECRET_KEY, "42")));
    assert_eq!(widget_attribute(&text, "user-name").as_deref(), Some("Ada"));
    assert_eq!(widget_attribute(&text, "user-avatar").as_deref(), Some("https://cdn.example/ada.png"));
    assert!(page.headers[header::CACHE_CONTROL].to_str().unwrap().contains("private"));
    assert_eq!(whoami_asks(&site), ["PHPSESSID=ada"], "theme and tracking cookies stay with the page request");
    let whoami = site.seen().into_iter().find(|s| s.uri.path() == "/whoami").unwrap();
    assert_eq!(whoami.headers[header::HOST], "shop.example", "the app sees the visitor's Host, as for its pages");

    for _ in 0..3 {
        assert_eq!(widget_attribute(&page_for(&proxy, "ada").await.text(), "user-id").as_deref(), Some("42"));
    }
    assert_eq!(whoami_asks(&site).len(), 1, "answers are cached for cache_ttl");
    let anonymous = get(&proxy, "/").await;
    assert_eq!((anonymous.widgets(), widget_attribute(&anonymous.text(), "user-id")), (1, None));
    assert_eq!(whoami_asks(&site).len(), 1, "a visitor without the cookies is not looked up");
}

#[tokio::test]
async fn concurrent_pages_of_one_session_make_one_lookup() {
    let site = spawn_site().await;
    let proxy = spawn_proxy(lookup_yaml(&site, lookup(site.addr))).await;
    let pages = futures_util::future::join_all((0..6).map(|_| page_for(&proxy, "slow"))).await;
    for page in pages {
        assert_eq!(widget_attribute(&page.text(), "user-id").as_deref(), Some("slow-1"));
    }
    assert_eq!(whoami_asks(&site).len(), 1);
}

#[tokio::test]
async fn a_failing_slow_or_hostile_endpoint_leaves_the_visitor_anonymous_and_the_page_served() {
    let site = spawn_site().await;
    // Real time for the hanging lookup's 500 ms: it runs in the proxy's worker runtime.
    // Without the back-off after a failure (error_ttl: 0s), to see that failures are not
    // cached as answers; the back-off has its own test.
    let proxy = spawn_proxy(lookup_yaml(&site, lookup(site.addr).error_ttl("0s"))).await;
    for session in ["hang", "error", "junk", "script", "float", "logged-out", "unknown"] {
        let page = page_for(&proxy, session).await;
        assert_eq!((page.status, page.widgets()), (StatusCode::OK, 1), "{session}");
        assert_eq!(widget_attribute(&page.text(), "user-id"), None, "{session}");
        assert!(!page.text().contains("<script>alert(1)"), "{session}");
    }
    let asked = whoami_asks(&site).len();
    page_for(&proxy, "error").await;
    assert_eq!(whoami_asks(&site).len(), asked + 1, "a failure is not cached: the next page asks again");
    page_for(&proxy, "logged-out").await;
    assert_eq!(whoami_asks(&site).len(), asked + 1, "a definite \"not signed in\" is cached");
}

// The lookup's timeout is a tokio timer in this runtime: a paused clock it may be (the
// hanging endpoint's 500 ms pass at once).
#[tokio::test(start_paused = true)]
async fn each_lookup_failure_has_its_own_reason() {
    let site = spawn_site().await;
    let config = config(lookup_yaml(&site, lookup(site.addr).cache_ttl("0s")));
    let identifier =
        Identifier::start(config.main_site().identity.as_ref().unwrap(), &config.main_site().upstream).await.unwrap();
    let outcome = |session: &'static str| {
        let identifier = &identifier;
        async move {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::COOKIE, format!("PHPSESSID={session}").parse().unwrap());
            identifier.identify(&RequestFacts::from_headers(headers)).await.1
        }
    };
    assert_eq!(outcome("ada").await, Identified::Verified { source: Source::Lookup, cached: false });
    assert_eq!(
        outcome("ada").await,
        Identified::Verified { source: Source::Lookup, cached: false },
        "cache_ttl 0s asks every time"
    );
    assert_eq!(outcome("hang").await, Identified::Failed { source: Source::Lookup, reason: Rejection::LookupTimeout });
    assert_eq!(outcome("error").await, Identified::Failed { source: Source::Lookup, reason: Rejection::LookupStatus });
    assert_eq!(outcome("junk").await, Identified::Failed { source: Source::Lookup, reason: Rejection::LookupInvalid });
    assert_eq!(
        outcome("script").await,
        Identified::Rejected { source: Source::Lookup, reason: Rejection::InvalidUserId }
    );
    assert_eq!(
        outcome("float").await,
        Identified::Rejected { source: Source::Lookup, reason: Rejection::InvalidUserId }
    );
    assert_eq!(outcome("logged-out").await, Identified::SignedOut { source: Source::Lookup, cached: false });
    assert_eq!(outcome("unknown").await, Identified::SignedOut { source: Source::Lookup, cached: false });

    let (nowhere, _held) = unreachable_address();
    let elsewhere = crate::support::config(lookup_yaml(&site, lookup(nowhere)));
    let unreachable =
        Identifier::start(elsewhere.main_site().identity.as_ref().unwrap(), &elsewhere.main_site().upstream)
            .await
            .unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(header::COOKIE, "PHPSESSID=ada".parse().unwrap());
    assert_eq!(
        unreachable.identify(&RequestFacts::from_headers(headers)).await.1,
        Identified::Failed { source: Source::Lookup, reason: Rejection::LookupFailed }
    );
}

#[tokio::test]
async fn lookup_hits_and_misses_are_counted_signed_in_or_not() {
    let site = spawn_site().await;
    let proxy = spawn_proxy(lookup_yaml(&site, lookup(site.addr)).admin()).await;
    for session in ["ada", "ada", "logged-out", "logged-out", "logged-out"] {
        page_for(&proxy, session).await;
    }
    let admin = proxy.admin_addr().unwrap();
    let text = crate::operations::scrape_until(
        admin,
        r#"invent_proxy_identity_total{outcome="signed_out",source="lookup",reason="cached"} 2"#,
    )
    .await;
    for line in [
        r#"invent_proxy_identity_total{outcome="verified",source="lookup",reason=""} 1"#,
        r#"invent_proxy_identity_total{outcome="verified",source="lookup",reason="cached"} 1"#,
        r#"invent_proxy_identity_total{outcome="signed_out",source="lookup",reason=""} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }
    assert_eq!(whoami_asks(&site).len(), 2, "one ask per session, the rest from the cache");
}

#[tokio::test]
async fn cached_answers_expire_after_cache_ttl() {
    let site = spawn_site().await;
    let config = config(lookup_yaml(&site, lookup(site.addr).cache_ttl("200ms")));
    let identifier = Arc::new(
        Identifier::start(config.main_site().identity.as_ref().unwrap(), &config.main_site().upstream).await.unwrap(),
    );
    let mut headers = http::HeaderMap::new();
    headers.insert(header::COOKIE, "PHPSESSID=ada".parse().unwrap());
    let facts = RequestFacts::from_headers(headers);
    let (fresh, cached) = (
        Identified::Verified { source: Source::Lookup, cached: false },
        Identified::Verified { source: Source::Lookup, cached: true },
    );
    assert_eq!(identifier.identify(&facts).await.1, fresh);
    let stored = tokio::time::Instant::now();
    assert_eq!(identifier.identify(&facts).await.1, cached);
    // Real time: the cache (moka) times its entries on std's Instant, not on tokio's clock.
    // The answer was stored before `stored`; 200 ms on, it is gone (50 ms to spare).
    tokio::time::sleep_until(stored + Duration::from_millis(250)).await;
    assert_eq!(identifier.identify(&facts).await.1, fresh);
    assert_eq!(whoami_asks(&site).len(), 2);
}

#[tokio::test]
async fn a_token_wins_over_a_lookup_and_a_lookup_path_goes_to_the_upstream() {
    let site = spawn_site().await;
    let identity = IdentityYaml::default()
        .jwt(JwtYaml::default().cookie("session").secret(JWT_SECRET))
        .lookup(LookupYaml::new("/whoami", &["PHPSESSID"]).user_id_claim("user.id"));
    let proxy = spawn_proxy(ProxyYaml::new(site.addr).identity(identity)).await;
    let token = crate::support::tokens::hs256(&crate::support::tokens::claims("from-token"));
    let both = format!("PHPSESSID=ada; session={token}");
    let page = get_with(&proxy, "/", &[("cookie", &both)]).await.text();
    assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("from-token"));
    assert!(whoami_asks(&site).is_empty());
    let page = get_with(&proxy, "/", &[("cookie", "PHPSESSID=ada")]).await.text();
    assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("42"));
    assert_eq!(whoami_asks(&site), ["PHPSESSID=ada"]);
}

/// A site whose `/whoami` knows session 7 until `/logout` destroys it (and clears the
/// cookie); after that it sends visitors to the login page.
async fn spawn_sign_out_site() -> (Upstream, ProxyYaml) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let state = Arc::new(AtomicBool::new(true));
    let site = spawn_upstream(move |req: Request<Incoming>| {
        let state = Arc::clone(&state);
        async move {
            match req.uri().path() {
                "/whoami" if state.load(Ordering::SeqCst) => {
                    respond(StatusCode::OK, "application/json", r#"{"id": 7}"#)
                }
                "/whoami" => {
                    let mut to_login = respond(StatusCode::FOUND, "text/html", "");
                    to_login.headers_mut().insert(header::LOCATION, "/login".parse().unwrap());
                    to_login
                }
                "/logout" => {
                    // The session is destroyed server-side; its cookie is cleared.
                    state.store(false, Ordering::SeqCst);
                    let mut page = html(PAGE);
                    page.headers_mut()
                        .insert(header::SET_COOKIE, "PHPSESSID=deleted; Max-Age=0; Path=/".parse().unwrap());
                    page
                }
                _ => html(PAGE),
            }
        }
    })
    .await;
    let yaml = lookup_yaml(&site, LookupYaml::new("/whoami", &["PHPSESSID"]).cache_ttl("1h"));
    (site, yaml)
}

#[tokio::test]
async fn signing_out_forgets_the_cached_answer_and_a_redirect_to_login_is_anonymous() {
    let (site, yaml) = spawn_sign_out_site().await;
    let proxy = spawn_proxy(yaml).await;
    let visit =
        |path: &'static str| get_with(&proxy, path, &[("cookie", "PHPSESSID=s1"), ("user-agent", "TestBrowser/1.0")]);
    assert_eq!(widget_attribute(&visit("/").await.text(), "user-id").as_deref(), Some("7"));
    let whoami = site.seen().into_iter().find(|s| s.uri.path() == "/whoami").unwrap();
    assert_eq!(whoami.headers[header::USER_AGENT], "TestBrowser/1.0", "the app sees the visitor's browser");
    assert_eq!(whoami.headers["x-forwarded-proto"], "http");
    assert!(whoami.headers["x-forwarded-for"].to_str().unwrap().contains("127.0.0.1"));
    assert_eq!(whoami.headers[header::CACHE_CONTROL], "no-cache");

    visit("/logout").await;
    let after = visit("/").await.text();
    assert_eq!(widget_attribute(&after, "user-id"), None, "not the cached sign-in of an hour ago: {after}");
    let asks = whoami_asks(&site).len();
    assert_eq!(widget_attribute(&visit("/").await.text(), "user-id"), None);
    assert_eq!(whoami_asks(&site).len(), asks, "the redirect to the login page is a cached \"not signed in\"");
}

#[tokio::test]
async fn signing_out_over_http2_forgets_the_cached_answer_too() {
    use http_body_util::{BodyExt, Full};
    let (_site, yaml) = spawn_sign_out_site().await;
    let proxy = spawn_proxy(yaml).await;
    let h2: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).http2_only(true).build_http();
    let visit = |path: &str| {
        let request = Request::get(format!("http://{}{path}", proxy.local_addr()))
            .header(header::COOKIE, "PHPSESSID=s1")
            .body(Full::default())
            .unwrap();
        let response = h2.request(request);
        async move {
            String::from_utf8(response.await.unwrap().into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
        }
    };
    assert_eq!(widget_attribute(&visit("/").await, "user-id").as_deref(), Some("7"));
    visit("/logout").await;
    assert_eq!(widget_attribute(&visit("/").await, "user-id"), None, "the session is named by :authority on HTTP/2");
}
