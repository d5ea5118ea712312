//! `identity.lookup.select`: the visitor read out of a page the app already renders (an
//! account page behind its opaque session cookie), on a real upstream — signed in, signed
//! out (a redirect to the login page, 401, a page without the element), failing (500, a
//! hang, not HTML), hostile (markup in the id) — and an endpoint in trouble costing the
//! pages little: back-off after a failure, a cap on lookups at once.

use std::time::Duration;

use http::{Request, StatusCode, header};
use hyper::body::Incoming;

use crate::operations::scrape_until;
use crate::support::process::ProxyProcess;
use crate::support::*;

const PAGE: &str = "<!doctype html><html><body><p>Shop</p></body></html>";

/// The account page a legacy PHP app renders for a signed-in session.
fn account(id: &str, name: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>Your account</title></head><body><nav><a href=/>Shop</a></nav>\
         <section id=\"account\"><h1>Your account</h1><div class=\"profile\" data-user-id=\"{id}\">\
         <img class=\"avatar\" src=\"https://cdn.example/u/{id}.png\" alt=\"\"><p class=\"name\">\n  {name}\n</p>\
         </div></section><footer>&copy; Shop</footer></body></html>"
    )
}

/// A legacy site: pages everywhere, and `/account` rendered for the `PHPSESSID` session.
async fn spawn_site() -> Upstream {
    spawn_upstream(|req: Request<Incoming>| async move {
        if req.uri().path() != "/account" {
            return html(PAGE);
        }
        let cookie = req.headers().get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let session = cookie.split("; ").find_map(|c| c.strip_prefix("PHPSESSID=")).unwrap_or_default();
        match session {
            "ada" => html(account("42", "Ada &amp; Co")),
            "zoe" => html(account("zo&#xeb;-7", "Zo&euml;")),
            "markup" => html(account("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;", "Mallory")),
            "no-element" => html("<!DOCTYPE html><html><body><form action=/login>Sign in</form></body></html>"),
            "unauthorized" => respond(StatusCode::UNAUTHORIZED, "text/html", "<p>no</p>"),
            "error" => respond(StatusCode::INTERNAL_SERVER_ERROR, "text/html", "<p>boom</p>"),
            "hang" => std::future::pending().await,
            "json" => respond(StatusCode::OK, "application/json", r#"{"id": 1}"#),
            "untyped" => {
                let mut response = html(account("7", "Untyped"));
                response.headers_mut().remove(header::CONTENT_TYPE);
                response
            }
            _ => http::Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, "/login?next=/account")
                .body(full(""))
                .unwrap(),
        }
    })
    .await
}

/// A lookup of `/account` by its selectors within `timeout`.
fn select(timeout: &str) -> LookupYaml {
    LookupYaml::new("/account", &["PHPSESSID"])
        .timeout(timeout)
        .select("user_id", "#account [data-user-id]", Some("data-user-id"))
        .select("user_name", "#account .name", None)
        .select("user_avatar", "img.avatar", Some("src"))
}

/// A proxy in front of `site` with `lookup`, and its admin listener.
fn select_yaml(site: &Upstream, lookup: LookupYaml) -> ProxyYaml {
    ProxyYaml::new(site.addr).admin().identity(IdentityYaml::default().lookup(lookup))
}

fn account_asks(site: &Upstream) -> usize {
    site.seen().iter().filter(|seen| seen.uri.path() == "/account").count()
}

async fn page_for(proxy: &invent_proxy::RunningProxy, session: &str) -> Received {
    let cookie = format!("theme=dark; PHPSESSID={session}");
    get_with(proxy, "/shop", &[("cookie", &cookie)]).await
}

#[tokio::test]
async fn the_account_page_signs_the_visitor_in_with_its_decoded_values() {
    let site = spawn_site().await;
    let proxy = spawn_proxy(select_yaml(&site, select("500ms"))).await;
    let page = page_for(&proxy, "ada").await.text();
    assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("42"), "{page}");
    assert_eq!(widget_attribute(&page, "user-hash"), Some(invent_proxy::identity::user_hash(SECRET_KEY, "42")));
    assert_eq!(widget_attribute(&page, "user-name").as_deref(), Some("Ada &amp; Co"), "trimmed, decoded, re-escaped");
    assert_eq!(widget_attribute(&page, "user-avatar").as_deref(), Some("https://cdn.example/u/42.png"));
    let zoe = page_for(&proxy, "zoe").await.text();
    assert_eq!(
        widget_attribute(&zoe, "user-id").as_deref(),
        Some("zo&#xeb;-7"),
        "the id is zoë-7, escaped for the page"
    );
    assert_eq!(widget_attribute(&zoe, "user-hash"), Some(invent_proxy::identity::user_hash(SECRET_KEY, "zoë-7")));
    let asked = &site.seen().into_iter().find(|s| s.uri.path() == "/account").unwrap();
    assert_eq!(asked.headers[header::COOKIE], "PHPSESSID=ada", "only the named cookies go to the app");
    assert!(asked.headers[header::ACCEPT].to_str().unwrap().contains("text/html"));
}

#[tokio::test]
async fn signed_out_answers_are_cached_and_failures_are_not() {
    let site = spawn_site().await;
    let proxy = spawn_proxy(select_yaml(&site, select("500ms").error_ttl("0s"))).await;
    for session in ["login-redirect", "unauthorized", "no-element", "error", "hang", "json", "untyped", "markup"] {
        let page = page_for(&proxy, session).await;
        assert_eq!((page.status, page.widgets()), (StatusCode::OK, 1), "{session}");
        assert_eq!(widget_attribute(&page.text(), "user-id"), None, "{session}: {}", page.text());
        assert!(!page.text().contains("<script>alert(1)"), "{session}");
    }
    let asked = account_asks(&site);
    for session in ["login-redirect", "unauthorized", "no-element", "markup"] {
        page_for(&proxy, session).await;
    }
    assert_eq!(account_asks(&site), asked, "signed out (and a refused id) is an answer, cached for cache_ttl");
    for session in ["error", "json", "untyped"] {
        page_for(&proxy, session).await;
    }
    assert_eq!(account_asks(&site), asked + 3, "a failure is not cached: the next page asks again");
    let admin = proxy.admin_addr().unwrap();
    let metrics = scrape_until(admin, r#"invent_proxy_requests_total{method="GET",status="2xx"} 15"#).await;
    for line in [
        r#"invent_proxy_identity_total{outcome="signed_out",source="lookup",reason=""} 3"#,
        r#"invent_proxy_identity_total{outcome="signed_out",source="lookup",reason="cached"} 3"#,
        r#"invent_proxy_identity_total{outcome="rejected",source="lookup",reason="invalid_user_id"} 2"#,
        r#"invent_proxy_identity_total{outcome="failed",source="lookup",reason="lookup_status"} 2"#,
        r#"invent_proxy_identity_total{outcome="failed",source="lookup",reason="lookup_timeout"} 1"#,
        r#"invent_proxy_identity_total{outcome="failed",source="lookup",reason="lookup_invalid"} 4"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "no line {line:?} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_failing_session_backs_off_for_error_ttl() {
    let site = spawn_site().await;
    let proxy = spawn_proxy(select_yaml(&site, select("500ms").error_ttl("1h"))).await;
    for _ in 0..3 {
        page_for(&proxy, "error").await;
    }
    assert_eq!(account_asks(&site), 1, "asked once, then not again for error_ttl");
    page_for(&proxy, "ada").await;
    assert_eq!(account_asks(&site), 2, "other sessions are asked");
    let admin = proxy.admin_addr().unwrap();
    let metrics = scrape_until(admin, r#"invent_proxy_requests_total{method="GET",status="2xx"} 4"#).await;
    let line = r#"invent_proxy_identity_total{outcome="skipped",source="lookup",reason="backoff"} 2"#;
    assert!(metrics.lines().any(|l| l == line), "no line {line:?} in\n{metrics}");
}

#[tokio::test]
async fn past_max_concurrent_lookups_a_page_is_anonymous_at_once() {
    // An account page that answers only when the test opens the gate.
    let gate = Gate::new();
    let held = gate.clone();
    let site = spawn_upstream(move |req: Request<Incoming>| {
        let gate = held.clone();
        async move {
            if req.uri().path() == "/account" {
                gate.wait().await;
                return html(account("held-1", "Held"));
            }
            html(PAGE)
        }
    })
    .await;
    let proxy = spawn_proxy(select_yaml(&site, select("1h").max_concurrent(1))).await;
    let first = page_for(&proxy, "first");
    let second = async {
        while account_asks(&site) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The first lookup holds the one slot, and holds it until the gate opens: this
        // page can only come back now because it did not wait for a slot.
        let page = page_for(&proxy, "second").await;
        gate.open();
        page
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(widget_attribute(&first.text(), "user-id").as_deref(), Some("held-1"));
    assert_eq!(widget_attribute(&second.text(), "user-id"), None, "no slot: anonymous");
    assert_eq!(account_asks(&site), 1, "the second session was not asked");
    let metrics =
        scrape_until(proxy.admin_addr().unwrap(), r#"invent_proxy_requests_total{method="GET",status="2xx"} 2"#).await;
    let line = r#"invent_proxy_identity_total{outcome="skipped",source="lookup",reason="busy"} 1"#;
    assert!(metrics.lines().any(|l| l == line), "no line {line:?} in\n{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_access_line_tells_signed_out_failed_and_skipped_apart() {
    let site = spawn_site().await;
    let mut proxy = ProxyProcess::start(&select_yaml(&site, select("500ms").error_ttl("1h")).to_string(), &[]);
    let addr = proxy.addr;
    for (path, session) in [("/in", "ada"), ("/out", "login-redirect"), ("/failed", "error"), ("/skipped", "error")] {
        let cookie = format!("PHPSESSID={session}");
        let response = exchange_get(addr, path, &cookie).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let verified = proxy.wait_for_log("path=/in ");
    assert!(verified.contains("identity=verified ") && verified.contains("identity_source=lookup"), "{verified}");
    assert!(proxy.wait_for_log("path=/out ").contains("identity=signed_out "));
    assert!(proxy.wait_for_log("path=/failed ").contains("identity=failed:lookup_status"));
    assert!(proxy.wait_for_log("path=/skipped ").contains("identity=skipped:backoff"));
    let logs = proxy.logs().join("\n");
    assert!(!logs.contains("PHPSESSID") && !logs.contains("=ada"), "no session id in the logs:\n{logs}");
}

/// `GET path` with a cookie over a new connection, read to its end.
async fn exchange_get(addr: std::net::SocketAddr, path: &str, cookie: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: shop\r\ncookie: {cookie}\r\nconnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn select_and_claims_exclude_each_other_and_selectors_are_checked_at_load() {
    let load = |lookup: LookupYaml| {
        let yaml = ProxyYaml::new("127.0.0.1:9".parse().unwrap()).identity(IdentityYaml::default().lookup(lookup));
        invent_proxy::Config::from_yaml(&yaml.to_string(), "t.yaml", std::path::Path::new("."))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let account = || LookupYaml::new("/account", &["sid"]);
    let both = load(account().user_id_claim("id").select("user_id", "#me", None)).unwrap_err();
    assert!(both.contains("identity.lookup.select") && both.contains("not both"), "{both}");
    let bad = load(account().select("user_id", "#me[", None)).unwrap_err();
    assert!(bad.contains("identity.lookup.select.user_id.css") && bad.contains("not a CSS selector"), "{bad}");
    let none = load(account().max_concurrent(0).user_id_claim("id")).unwrap_err();
    assert!(none.contains("identity.lookup.max_concurrent: must be at least 1"), "{none}");
    assert_eq!(load(account().select("user_id", "#me", Some("DATA-ID"))), Ok(()));
}
