//! The admin listener: `/healthz`, `/readyz` and Prometheus `/metrics` scraped over a real
//! socket after known traffic.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use http_body_util::Full;

use crate::support::*;

/// GETs `path` from the admin listener: status and body.
pub async fn admin_get(admin: SocketAddr, path: &str) -> (StatusCode, String) {
    let response = client().get(format!("http://{admin}{path}").parse().unwrap()).await.unwrap();
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Scrapes `/metrics` until `line` shows (a request is counted when its body is dropped,
/// just after the client has it), for up to 10 s on a busy machine.
pub async fn scrape_until(admin: SocketAddr, line: &str) -> String {
    for _ in 0..500 {
        let (_, text) = admin_get(admin, "/metrics").await;
        if text.lines().any(|l| l == line) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, text) = admin_get(admin, "/metrics").await;
    panic!("no line {line:?} in\n{text}");
}

#[tokio::test]
async fn metrics_count_known_traffic_with_fixed_labels() {
    let upstream = spawn_upstream(|req| async move {
        match req.uri().path() {
            "/api" => respond(StatusCode::OK, "application/json", "{}"),
            "/missing" => respond(StatusCode::NOT_FOUND, "text/html", "<!doctype html><html><body>no</body></html>"),
            _ => html("<!doctype html><html><body>hello</body></html>"),
        }
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin()).await;
    let admin = proxy.admin_addr().expect("admin listener");
    for _ in 0..3 {
        assert_eq!(get(&proxy, "/page?token=secret-in-query").await.widgets(), 1);
    }
    get(&proxy, "/api").await;
    get(&proxy, "/missing").await;
    let post = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/form", proxy.local_addr()))
        .body(Full::new(bytes::Bytes::from_static(b"name=ada&city=london")))
        .unwrap();
    send(&proxy, post).await;

    let text = scrape_until(admin, r#"invent_proxy_requests_total{method="POST",status="2xx"} 1"#).await;
    let text = if text.contains(r#"invent_proxy_requests_total{method="GET",status="2xx"} 4"#) {
        text
    } else {
        scrape_until(admin, r#"invent_proxy_requests_total{method="GET",status="2xx"} 4"#).await
    };
    for line in [
        r#"invent_proxy_requests_total{method="GET",status="4xx"} 1"#,
        r#"invent_proxy_responses_total{outcome="injected",reason=""} 3"#,
        r#"invent_proxy_responses_total{outcome="passed",reason="not_html"} 1"#,
        r#"invent_proxy_responses_total{outcome="passed",reason="status"} 1"#,
        r#"invent_proxy_responses_total{outcome="passed",reason="method"} 1"#,
        r#"invent_proxy_identity_total{outcome="none",source="",reason=""} 6"#,
        r#"invent_proxy_request_duration_seconds_count{outcome="injected"} 3"#,
        r#"invent_proxy_request_duration_seconds_count{outcome="passed"} 3"#,
        "invent_proxy_identity_keys_loaded 1",
        "invent_proxy_received_bytes_total 20",
        r#"invent_proxy_build_info{version="0.1.0"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }
    assert!(text.lines().any(|l| l.starts_with("invent_proxy_open_connections ")), "{text}");
    let sent: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("invent_proxy_sent_bytes_total "))
        .and_then(|v| v.parse().ok())
        .expect("sent bytes");
    assert!(sent > 3 * 100, "the pages' bytes are counted: {sent}");
    assert!(!text.contains("/page") && !text.contains("secret-in-query"), "no path or query in any label");
    proxy.shutdown().await;
}

#[tokio::test]
async fn identity_outcomes_pages_with_their_own_widget_and_open_connections_are_counted() {
    let upstream = spawn_upstream(|req| async move {
        match req.uri().path() {
            "/own" => html("<!doctype html><html><body><invent-assistant></invent-assistant></body></html>"),
            _ => html("<!doctype html><html><body>hello</body></html>"),
        }
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin().identity(IdentityYaml::session())).await;
    let admin = proxy.admin_addr().unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let valid = tokens::hs256(&tokens::claims("ada"));
    get_as(&proxy, "/a", &valid).await;
    get_as(&proxy, "/b", &valid).await;
    get_as(&proxy, "/c", &tokens::hs256(&serde_json::json!({"sub": "ada", "exp": now - 3600}))).await;
    get_as(&proxy, "/d", "not.a.token").await;
    get(&proxy, "/e").await;
    let own = get_as(&proxy, "/own", &valid).await;
    assert_eq!(own.widgets(), 1, "{}", own.text());

    let text = scrape_until(admin, r#"invent_proxy_requests_total{method="GET",status="2xx"} 6"#).await;
    for line in [
        r#"invent_proxy_identity_total{outcome="verified",source="jwt_cookie",reason=""} 1"#,
        r#"invent_proxy_identity_total{outcome="verified",source="jwt_cookie",reason="cached"} 2"#,
        r#"invent_proxy_identity_total{outcome="rejected",source="jwt_cookie",reason="expired"} 1"#,
        r#"invent_proxy_identity_total{outcome="rejected",source="jwt_cookie",reason="malformed"} 1"#,
        r#"invent_proxy_identity_total{outcome="none",source="",reason=""} 1"#,
        r#"invent_proxy_responses_total{outcome="injected",reason=""} 5"#,
        r#"invent_proxy_responses_total{outcome="completed",reason="already_present"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }

    scrape_until(admin, "invent_proxy_open_connections 0").await;
    let held = tokio::net::TcpStream::connect(proxy.local_addr()).await.unwrap();
    scrape_until(admin, "invent_proxy_open_connections 1").await;
    drop(held);
    scrape_until(admin, "invent_proxy_open_connections 0").await;
}

#[tokio::test]
async fn upstream_failures_are_counted_by_kind() {
    let (nowhere, _held) = unreachable_address();
    let proxy = spawn_proxy(ProxyYaml::new(nowhere).admin()).await;
    let admin = proxy.admin_addr().unwrap();
    assert_eq!(get(&proxy, "/").await.status, StatusCode::BAD_GATEWAY);
    scrape_until(admin, r#"invent_proxy_upstream_errors_total{kind="connect"} 1"#).await;
    scrape_until(admin, r#"invent_proxy_requests_total{method="GET",status="5xx"} 1"#).await;
}

#[tokio::test]
async fn health_readiness_and_nothing_else_on_the_admin_port() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>the site</body></html>").await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin()).await;
    let admin = proxy.admin_addr().unwrap();
    assert_ne!(admin, proxy.local_addr());
    assert_eq!(admin_get(admin, "/healthz").await, (StatusCode::OK, "ok\n".to_owned()));
    assert_eq!(admin_get(admin, "/readyz").await, (StatusCode::OK, "ready\n".to_owned()));
    let (status, body) = admin_get(admin, "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "proxied traffic never goes through the admin port");
    assert!(!body.contains("the site"), "{body}");
    let post = Request::builder().method(Method::POST).uri(format!("http://{admin}/metrics")).body(Full::default());
    let response = client().request(post.unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(upstream.seen().is_empty(), "nothing reached the upstream");
}

#[tokio::test]
async fn readiness_is_503_while_shutting_down() {
    let (tx, page) = streamed_html();
    let page = std::sync::Mutex::new(Some(page));
    let upstream = spawn_upstream(move |_| {
        let page = page.lock().unwrap().take().expect("one request");
        async move { page }
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin()).await;
    let admin = proxy.admin_addr().unwrap();
    let address = proxy.local_addr();
    let in_flight = tokio::spawn(async move {
        let response = client().get(format!("http://{address}/").parse().unwrap()).await.unwrap();
        http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes()
    });
    tx.send(Ok("<!doctype html><html><body>slow".into())).await.unwrap();
    wait_until("the request is in flight", || upstream.seen().len() == 1).await;
    let shutdown = tokio::spawn(proxy.shutdown());
    let mut status = StatusCode::OK;
    for _ in 0..50 {
        status = admin_get(admin, "/readyz").await.0;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "draining: not ready");
    assert!(admin_get(admin, "/readyz").await.1.contains("shutting down"));
    tx.send(Ok(" page</body></html>".into())).await.unwrap();
    drop(tx);
    let body = in_flight.await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("slow page"), "the in-flight response completes");
    shutdown.await.unwrap();
}

#[test]
fn the_admin_port_must_not_be_the_proxy_port() {
    let yaml = "listen: 127.0.0.1:8080\nadmin:\n  listen: 0.0.0.0:8080\nupstream:\n  url: http://127.0.0.1:9\nassistant:\n  id: a\n";
    let error = invent_proxy::Config::from_yaml(yaml, "test.yaml", std::path::Path::new(".")).unwrap_err().to_string();
    assert!(error.contains("admin.listen") && error.contains("listen"), "{error}");
    let yaml = "listen: 127.0.0.1:8080\nadmin:\n  listen: 127.0.0.1:9090\n  port: 1\nupstream:\n  url: http://127.0.0.1:9\nassistant:\n  id: a\n";
    let error = invent_proxy::Config::from_yaml(yaml, "test.yaml", std::path::Path::new(".")).unwrap_err().to_string();
    assert!(error.contains("port"), "unknown keys under admin are errors: {error}");
}

#[tokio::test]
async fn timeouts_resets_and_tls_failures_are_told_apart() {
    let slow = spawn_upstream(|_| std::future::pending()).await; // never answers
    // The timer runs in the proxy's worker runtime, so on the real clock.
    let proxy = spawn_proxy(ProxyYaml::new(slow.addr).admin().response_timeout("200ms")).await;
    assert_eq!(get(&proxy, "/").await.status, StatusCode::GATEWAY_TIMEOUT);
    scrape_until(proxy.admin_addr().unwrap(), r#"invent_proxy_upstream_errors_total{kind="timeout"} 1"#).await;

    let dies = spawn_raw_upstream(|mut socket| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut head = [0u8; 1024];
        let _ = socket.read(&mut head).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5000\r\n\r\npartial";
        let _ = socket.write_all(head.as_bytes()).await;
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(dies).admin()).await;
    // Read to the cut: a client that left at the head could make the proxy drop the upstream
    // body before it met the reset (then nothing counts it).
    if let Ok(response) = client().get(format!("http://{}/", proxy.local_addr()).parse().unwrap()).await {
        let _ = http_body_util::BodyExt::collect(response.into_body()).await;
    }
    scrape_until(proxy.admin_addr().unwrap(), r#"invent_proxy_upstream_errors_total{kind="reset"} 1"#).await;

    let pki = crate::support::pki::Pki::new(&["127.0.0.1"]);
    let plain = spawn_html_upstream("<!doctype html><html><body>plain</body></html>").await;
    let https = ProxyYaml::new(plain.addr).admin().upstream_url(format!("https://{}", plain.addr));
    let proxy = spawn_proxy(https.upstream_ca_file(&pki.ca_file)).await;
    assert_eq!(get(&proxy, "/").await.status, StatusCode::BAD_GATEWAY, "TLS to a plain HTTP upstream fails");
    scrape_until(proxy.admin_addr().unwrap(), r#"invent_proxy_upstream_errors_total{kind="tls"} 1"#).await;
}

#[test]
fn log_format_and_level_are_checked_at_load() {
    let base = "upstream:\n  url: http://127.0.0.1:9\nassistant:\n  id: a\n";
    let load =
        |log: &str| invent_proxy::Config::from_yaml(&format!("{log}{base}"), "t.yaml", std::path::Path::new("."));
    let config = load("log:\n  format: json\n  level: warn,invent_proxy=debug\n").unwrap();
    assert_eq!(
        (config.process.log.format, config.process.log.level.as_str()),
        (invent_proxy::config::LogFormat::Json, "warn,invent_proxy=debug")
    );
    let error = load("log:\n  format: xml\n").unwrap_err().to_string();
    assert!(error.contains("log.format") && error.contains("text, json"), "{error}");
    for level in ["loud", "invent_proxy=inf", ""] {
        let error = load(&format!("log:\n  level: \"{level}\"\n")).unwrap_err().to_string();
        assert!(error.contains("log.level") && error.contains("not a level"), "{level}: {error}");
    }
}

#[tokio::test]
async fn reloads_are_counted_and_metrics_survive_them() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let yaml = ProxyYaml::new(upstream.addr).admin();
    let mut proxy = spawn_proxy(&yaml).await;
    let admin = proxy.admin_addr().unwrap();
    get(&proxy, "/").await;
    scrape_until(admin, r#"invent_proxy_requests_total{method="GET",status="2xx"} 1"#).await;
    proxy.reload(config(yaml.assistant_id("ast_new"))).await.unwrap();
    assert_eq!(widget_attribute(&get(&proxy, "/").await.text(), "assistant-id").as_deref(), Some("ast_new"));
    proxy.reload_failed(&"test: a config that does not load");
    scrape_until(admin, r#"invent_proxy_config_reloads_total{result="success"} 1"#).await;
    scrape_until(admin, r#"invent_proxy_config_reloads_total{result="failure"} 1"#).await;
    scrape_until(admin, r#"invent_proxy_requests_total{method="GET",status="2xx"} 2"#).await;
}

/// Sends a GET on an open keep-alive connection and reads the whole response.
async fn get_on(socket: &mut tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    socket.write_all(b"GET / HTTP/1.1\r\nhost: shop\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("</html>") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_reload_moves_a_changed_listener_and_keeps_the_others_and_open_connections() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let yaml = ProxyYaml::new(upstream.addr).admin();
    let mut proxy = spawn_proxy(&yaml).await;
    let (old, admin) = (proxy.local_addr(), proxy.admin_addr().unwrap());
    let mut kept = tokio::net::TcpStream::connect(old).await.unwrap();
    assert!(get_on(&mut kept).await.contains("ast_test"));

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let moved = yaml.listen(format!("127.0.0.1:{port}")).assistant_id("ast_new");
    proxy.reload(config(&moved)).await.unwrap();
    assert_eq!(proxy.local_addr().port(), port);
    assert_eq!(widget_attribute(&get(&proxy, "/").await.text(), "assistant-id").as_deref(), Some("ast_new"));
    assert!(tokio::net::TcpStream::connect(old).await.is_err(), "the old listener is closed");
    assert!(get_on(&mut kept).await.contains("ast_new"), "an open connection stays open, on the new config");
    assert_eq!((proxy.admin_addr(), admin_get(admin, "/healthz").await.0), (Some(admin), StatusCode::OK));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let clash = moved.listen(taken.local_addr().unwrap());
    let error = proxy.reload(config(clash)).await.unwrap_err().to_string();
    assert!(error.contains("listen"), "{error}");
    assert_eq!(get(&proxy, "/").await.status, StatusCode::OK, "the running config keeps serving");
    scrape_until(admin, r#"invent_proxy_config_reloads_total{result="failure"} 1"#).await;
}
