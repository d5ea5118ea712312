//! The real binary's logs and signals: one access line per request with the spec's
//! fields, never a token or secret, and a graceful exit on SIGTERM and SIGINT.

use std::io::{Read, Write};
use std::net::TcpStream;

use invent_proxy::identity::user_hash;

use crate::support::process::ProxyProcess;
use crate::support::tokens::{self, claims};
use crate::support::*;

fn raw_get(addr: std::net::SocketAddr, path: &str, cookie: &str) -> String {
    let mut socket = TcpStream::connect(addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: shop\r\ncookie: {cookie}\r\nconnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// The real binary on `yaml` with HS256 sessions on, secrets from the environment.
fn identity_process(yaml: ProxyYaml) -> ProxyProcess {
    let jwt = JwtYaml::default().cookie("session").secret("${TEST_JWT_SECRET}");
    let yaml = yaml.identity(IdentityYaml::default().secret_key("${TEST_SECRET_KEY}").jwt(jwt));
    ProxyProcess::start(&yaml.to_string(), &[("TEST_SECRET_KEY", SECRET_KEY), ("TEST_JWT_SECRET", JWT_SECRET)])
}

#[tokio::test(flavor = "multi_thread")]
async fn access_lines_carry_the_outcome_and_never_a_token_or_secret() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>account</body></html>").await;
    let mut proxy = identity_process(ProxyYaml::new(upstream.addr));
    let valid = tokens::hs256(&claims("user_42"));
    let expired = tokens::hs256(&serde_json::json!({"sub": "user_42", "exp": 1_000_000}));
    let addr = proxy.addr;
    let (valid_cookie, expired_cookie) = (format!("session={valid}"), format!("session={expired}"));
    tokio::task::spawn_blocking(move || {
        let page = raw_get(addr, "/account?token=querysecret", &valid_cookie);
        assert!(page.contains(&user_hash(SECRET_KEY, "user_42")));
        raw_get(addr, "/expired", &expired_cookie);
        raw_get(addr, "/style.css", "session=garbage");
    })
    .await
    .unwrap();
    let verified = proxy.wait_for_log("path=/account");
    for field in ["method=GET", "status=200", "bytes=", "duration_ms=", "injected=true", "identity=verified"] {
        assert!(verified.contains(field), "{field} in {verified}");
    }
    let rejected = proxy.wait_for_log("path=/expired");
    assert!(rejected.contains("identity=rejected:expired"), "{rejected}");
    proxy.wait_for_log("path=/style.css");
    proxy.signal("TERM");
    proxy.wait();
    let logs = proxy.logs().join("\n");
    assert_eq!(logs.matches("path=").count(), 3, "one access line per request:\n{logs}");
    for secret in [SECRET_KEY, JWT_SECRET, &valid, &expired, "querysecret", "garbage"] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_failures_are_logged_once_with_their_cause() {
    let (dead, _reserved) = unreachable_address();
    let mut proxy = ProxyProcess::start(&ProxyYaml::new(dead).to_string(), &[]);
    let addr = proxy.addr;
    let response = tokio::task::spawn_blocking(move || raw_get(addr, "/", "a=b")).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 502"), "{response}");
    let line = proxy.wait_for_log("status=502");
    assert!(line.contains("WARN") && line.contains("error_kind=\"upstream_connect\""), "{line}");
    assert!(line.contains("Connection refused") || line.contains("connect"), "{line}");
    let logs = proxy.logs();
    let mentions =
        logs.iter().filter(|l| l.contains("status=502") || l.contains("refused") || l.contains("error")).count();
    assert_eq!(mentions, 1, "the failure is logged once:\n{}", logs.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sigint_finish_in_flight_requests_then_exit_cleanly() {
    for signal in ["TERM", "INT"] {
        let gate = Gate::new();
        let held = gate.clone();
        let upstream = spawn_upstream(move |_| {
            let gate = held.clone();
            async move {
                gate.wait().await;
                html("<!doctype html><body>slow but complete</body>")
            }
        })
        .await;
        let mut proxy = ProxyProcess::start(&ProxyYaml::new(upstream.addr).to_string(), &[]);
        let addr = proxy.addr;
        let in_flight = tokio::task::spawn_blocking(move || raw_get(addr, "/", "a=b"));
        wait_until("the request reaches the upstream", || !upstream.seen().is_empty()).await;
        proxy.signal(signal);
        // The upstream answers only once the proxy is shutting down with the request in flight.
        proxy.wait_for_log("shutting down");
        gate.open();
        let response = in_flight.await.unwrap();
        assert!(response.contains("slow but complete<invent-assistant"), "SIG{signal}: {response}");
        assert!(proxy.wait().success(), "SIG{signal}: exit status");
        assert!(TcpStream::connect(addr).is_err(), "SIG{signal}: no longer listening");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_in_an_unreadable_charset_is_logged_with_why() {
    let utf16: Vec<u8> = "\u{feff}<!DOCTYPE html><body>hi</body>".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let upstream = spawn_upstream(move |_| {
        let page = utf16.clone();
        async move { respond(http::StatusCode::OK, "text/html", bytes::Bytes::from(page)) }
    })
    .await;
    let mut proxy = ProxyProcess::start(&ProxyYaml::new(upstream.addr).to_string(), &[]);
    let addr = proxy.addr;
    tokio::task::spawn_blocking(move || raw_get(addr, "/utf16", "a=b")).await.unwrap();
    let line = proxy.wait_for_log("path=/utf16");
    assert!(line.contains("injected=false") && line.contains("charset:UTF-16LE"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lookup_outcomes_are_logged_with_their_reason_and_never_the_session_id() {
    let site = spawn_upstream(|req: http::Request<hyper::body::Incoming>| async move {
        let cookie = req.headers().get("cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        match (req.uri().path(), cookie.contains("sess-good-7f3a")) {
            ("/whoami", true) => respond(http::StatusCode::OK, "application/json", r#"{"id": "u9"}"#),
            ("/whoami", false) => respond(http::StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "down"),
            _ => html("<!doctype html><html><body>shop</body></html>"),
        }
    })
    .await;
    let yaml =
        ProxyYaml::new(site.addr).identity(IdentityYaml::default().lookup(LookupYaml::new("/whoami", &["PHPSESSID"])));
    let mut proxy = ProxyProcess::start(&yaml.to_string(), &[]);
    let addr = proxy.addr;
    tokio::task::spawn_blocking(move || {
        assert!(raw_get(addr, "/good", "PHPSESSID=sess-good-7f3a").contains("user-id=\"u9\""));
        raw_get(addr, "/again", "PHPSESSID=sess-good-7f3a");
        assert!(!raw_get(addr, "/failing", "PHPSESSID=sess-bad-91c2").contains("user-id"));
    })
    .await
    .unwrap();
    let good = proxy.wait_for_log("path=/good");
    assert!(good.contains("identity=verified ") && good.contains("identity_source=lookup"), "{good}");
    assert!(proxy.wait_for_log("path=/again").contains("identity=verified:cached"));
    assert!(proxy.wait_for_log("path=/failing").contains("identity=failed:lookup_status"));
    let logs = proxy.logs().join("\n");
    for secret in [SECRET_KEY, "sess-good-7f3a", "sess-bad-91c2"] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_level_is_the_configs_unless_rust_log_overrides_it() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>page</body></html>").await;
    // Start-up lines at info, access lines only at warn (a failure).
    let yaml = ProxyYaml::new(upstream.addr).log_level("info,access=warn").to_string();
    let mut quiet = ProxyProcess::start(&yaml, &[]);
    let mut overridden = ProxyProcess::start(&yaml, &[("RUST_LOG", "info")]);
    let addrs = [quiet.addr, overridden.addr];
    tokio::task::spawn_blocking(move || addrs.map(|addr| raw_get(addr, "/page", ""))).await.unwrap();
    overridden.wait_for_log("path=/page");
    for proxy in [&mut quiet, &mut overridden] {
        proxy.signal("TERM");
        proxy.wait();
    }
    let quiet = quiet.logs().join("\n");
    assert!(quiet.contains("invent-proxy is serving") && !quiet.contains("path=/page"), "{quiet}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_stable_fields_and_no_secret() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>account</body></html>").await;
    let mut proxy = identity_process(ProxyYaml::new(upstream.addr).log_format("json").log_level("debug"));
    let valid = tokens::hs256(&claims("user_42"));
    let addr = proxy.addr;
    let cookie = format!("session={valid}");
    let page = tokio::task::spawn_blocking(move || raw_get(addr, "/account", &cookie)).await.unwrap();
    let id = page
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("a request id is returned:\n{page}"))
        .trim()
        .to_owned();
    let line = proxy.wait_for_log("/account");
    let access: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    for (field, want) in
        [("method", "GET"), ("path", "/account"), ("identity", "verified"), ("request_id", id.as_str())]
    {
        assert_eq!(access[field].as_str(), Some(want), "{field} in {line}");
    }
    assert_eq!(access["status"], 200, "{line}");
    assert_eq!(access["target"], "access", "{line}");
    proxy.signal("TERM");
    proxy.wait();
    let logs = proxy.logs();
    for line in &logs {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for secret in [SECRET_KEY, JWT_SECRET, valid.as_str()] {
            assert!(!line.contains(secret), "{secret} leaked into the logs: {line}");
        }
    }
}
