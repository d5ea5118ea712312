//! `limits:` over real sockets: a slowloris client is cut off while others are served,
//! connections past `max_connections` wait until one closes, idle connections close, and
//! running out of file descriptors is survived.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Sends a GET on `socket` and reads the whole response (its body as long as its
/// `content-length` or chunked framing says), within `wait`; the head's first line.
async fn status_line(socket: &mut TcpStream, wait: Duration) -> Option<String> {
    socket.write_all(b"GET / HTTP/1.1\r\nhost: shop\r\n\r\n").await.ok()?;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
                let length = head.lines().find_map(|l| l.strip_prefix("content-length: "));
                let whole = match length {
                    Some(n) => received.len() >= end + 4 + n.trim().parse::<usize>().unwrap(),
                    None => received.ends_with(b"0\r\n\r\n"),
                };
                if whole {
                    return Some(String::from_utf8_lossy(&received).lines().next()?.to_owned());
                }
            }
            let n = socket.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            received.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(wait, read).await.ok()?
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_while_others_are_served() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).header_read_timeout("300ms")).await;
    let mut slow = TcpStream::connect(proxy.local_addr()).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: sh").await.unwrap();
    // Real time (the proxy's timers run in its worker runtimes): the others' visits are
    // spread over the slow client's 300 ms.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(&proxy, "/").await.status, StatusCode::OK, "others are served meanwhile");
    }
    let mut rest = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut rest)).await;
    assert!(cut.is_ok(), "the slow client's connection is closed");
    let answer = String::from_utf8_lossy(&rest);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(upstream.seen().len() == 3, "the unfinished request never reached the upstream");
}

#[tokio::test]
async fn connections_past_the_maximum_wait_until_one_closes() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).max_connections(2)).await;
    let mut first = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut second = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let wait = Duration::from_secs(5);
    assert_eq!(status_line(&mut first, wait).await.as_deref(), Some("HTTP/1.1 200 OK"));
    assert_eq!(status_line(&mut second, wait).await.as_deref(), Some("HTTP/1.1 200 OK"));
    let mut third = TcpStream::connect(proxy.local_addr()).await.unwrap();
    // 300 ms of real time in which no answer may come (absence cannot be polled for).
    assert_eq!(status_line(&mut third, Duration::from_millis(300)).await, None, "the third waits");
    drop(first);
    let mut fourth = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let served = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        let n = third.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    assert!(served.await.unwrap().starts_with("HTTP/1.1 200"), "served once a place is free");
    assert_eq!(status_line(&mut second, wait).await.as_deref(), Some("HTTP/1.1 200 OK"), "the others go on");
    // Again 300 ms of real time in which no answer may come.
    assert_eq!(status_line(&mut fourth, Duration::from_millis(300)).await, None, "still at most two");
}

#[tokio::test]
async fn out_of_file_descriptors_the_proxy_backs_off_and_serves_again() {
    use crate::support::process::ProxyProcess;

    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let mut proxy = ProxyProcess::start_with_fd_limit(&ProxyYaml::new(upstream.addr).to_string(), 48);
    let mut flood = Vec::new();
    for _ in 0..80 {
        flood.push(TcpStream::connect(proxy.addr).await.unwrap());
    }
    let line = proxy.wait_for_log("accept failed");
    assert!(line.contains("Too many open files"), "the accept loop met EMFILE: {line}");
    drop(flood);
    // Queued until the proxy has closed the flood's connections and accepts again.
    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    let served = status_line(&mut client, Duration::from_secs(5)).await;
    assert_eq!(served.as_deref(), Some("HTTP/1.1 200 OK"), "the proxy serves again once descriptors are free");
    let failures = proxy.logs().iter().filter(|l| l.contains("accept failed")).count();
    assert!(failures < 100, "the accept loop backs off instead of spinning: {failures} failures logged");
}

#[test]
fn limits_are_checked_at_load() {
    let load = |limits: &str| {
        let yaml = format!("limits:\n{limits}upstream: {{ url: \"http://127.0.0.1:9\" }}\nassistant: {{ id: a }}\n");
        invent_proxy::Config::from_yaml(&yaml, "t.yaml", std::path::Path::new("."))
    };
    let config = load("  max_connections: 500\n  header_read_timeout: 5s\n").unwrap();
    assert_eq!(
        (config.process.limits.max_connections, config.process.limits.header_read_timeout),
        (500, Duration::from_secs(5))
    );
    let error = load("  max_connections: 0\n").unwrap_err().to_string();
    assert!(error.contains("limits.max_connections") && error.contains("at least 1"), "{error}");
    let error = load("  header_read_timeout: 0s\n").unwrap_err().to_string();
    assert!(error.contains("limits.header_read_timeout"), "{error}");
    let error = load("  rewriter_max_memory: 100\n").unwrap_err().to_string();
    assert!(error.contains("limits.rewriter_max_memory") && error.contains("at least"), "{error}");
    let error = load("  max_header_size: 1024\n").unwrap_err().to_string();
    assert!(error.contains("limits.max_header_size") && error.contains("at least"), "{error}");
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(load("").unwrap().process.limits.workers, cores, "one worker per core by default");
    assert_eq!(load("  workers: 3\n").unwrap().process.limits.workers, 3);
    let error = load("  workers: 0\n").unwrap_err().to_string();
    assert!(error.contains("limits.workers") && error.contains("at least 1"), "{error}");
    let error = load("  max_conections: 5\n").unwrap_err().to_string();
    assert!(error.contains("max_conections"), "{error}");
}

#[tokio::test]
async fn a_body_that_stalls_past_the_limit_is_ended_and_its_connection_reclaimed() {
    let upstream = spawn_upstream(|req| async move {
        if req.uri().path() != "/stall" {
            return html("<!doctype html><html><body>fine</body></html>");
        }
        let (tx, response) = streamed_html();
        tokio::spawn(async move {
            let _ = tx.send(Ok(Bytes::from_static(b"<!doctype html><html><body>start of the page"))).await;
            std::future::pending::<()>().await; // never another byte, never the end
            drop(tx);
        });
        response
    })
    .await;
    let limits = ProxyYaml::new(upstream.addr).body_stall_timeout("300ms").max_connections(1).admin();
    let proxy = spawn_proxy(limits).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.write_all(b"GET /stall HTTP/1.1\r\nhost: shop\r\n\r\n").await.unwrap();
    let mut received = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut received)).await;
    assert!(ended.is_ok(), "the stalled response ends and the connection closes");
    let received = String::from_utf8_lossy(&received);
    assert!(received.contains("start of the page"), "what came before the stall was delivered: {received}");
    assert!(!received.ends_with("0\r\n\r\n"), "the body is cut short, not ended as if complete: {received}");

    let next = tokio::time::timeout(Duration::from_secs(5), get(&proxy, "/")).await;
    let next = next.expect("the only connection slot (max_connections: 1) was given back");
    assert_eq!((next.status, next.widgets()), (StatusCode::OK, 1), "a body that does not stall is untouched");
    let admin = proxy.admin_addr().unwrap();
    crate::operations::scrape_until(admin, r#"invent_proxy_upstream_errors_total{kind="timeout"} 1"#).await;
    crate::operations::scrape_until(admin, "invent_proxy_open_connections 0").await;
}

#[tokio::test]
async fn a_long_tag_trickled_slower_than_the_limit_is_not_a_stalled_body() {
    // The rewriter holds `<body ...>` until it ends: bytes keep coming, none go out yet.
    let upstream = spawn_upstream(|_| async move {
        let (tx, response) = streamed_html();
        tokio::spawn(async move {
            let _ = tx.send(Ok(Bytes::from_static(b"<!doctype html><html><head></head><body data-long=\""))).await;
            // Real time: the stall timer runs in the proxy's worker runtime.
            for _ in 0..12 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = tx.send(Ok(Bytes::from_static(b"aaaaaaaaaa"))).await;
            }
            let _ = tx.send(Ok(Bytes::from_static(b"\">text</body></html>"))).await;
        });
        response
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).body_stall_timeout("400ms")).await;
    let page = get(&proxy, "/").await;
    assert!(page.text().ends_with("</body></html>"), "the whole page arrives: {}", page.text());
    assert_eq!(page.widgets(), 1);
}

#[tokio::test]
async fn a_slow_reader_is_not_a_stalled_body() {
    let page: &'static str = Box::leak(
        format!("<!doctype html><html><body>{}</body></html>", "<p>text</p>".repeat(200_000)).into_boxed_str(),
    );
    let upstream = spawn_html_upstream(page).await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).body_stall_timeout("200ms")).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.write_all(b"GET / HTTP/1.1\r\nhost: shop\r\nconnection: close\r\n\r\n").await.unwrap();
    // A reader slower than the stall timeout, in real time: the timer runs in the proxy's
    // worker runtime.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut received)).await.unwrap().unwrap();
    let received = String::from_utf8_lossy(&received);
    assert!(received.contains("</body></html>") && received.ends_with("0\r\n\r\n"), "the whole page arrives");
}

#[tokio::test]
async fn a_page_past_the_rewriter_memory_cap_passes_through_whole_and_uninjected() {
    let huge = "a".repeat(200 * 1024);
    let page: &'static str =
        Box::leak(format!("<!doctype html><html><body title=\"{huge}\"><p>after</p></body></html>").into_boxed_str());
    let upstream = spawn_html_upstream(page).await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin().rewriter_max_memory(65536)).await;
    let received = get(&proxy, "/").await;
    assert_eq!(received.status, StatusCode::OK);
    assert_eq!(received.text(), page, "every byte as the upstream sent it, none missing or added");
    let counted = r#"invent_proxy_responses_total{outcome="passed",reason="rewrite_failed"} 1"#;
    crate::operations::scrape_until(proxy.admin_addr().unwrap(), counted).await;
    let roomy = spawn_proxy(ProxyYaml::new(upstream.addr).rewriter_max_memory(4194304)).await;
    assert_eq!(get(&roomy, "/").await.widgets(), 1, "with room enough the same page gets the widget");
}

/// Waits up to `wait` for the proxy to close `socket`; true if it did.
async fn closed_within(socket: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(wait, socket.read(&mut buf)).await, Ok(Ok(0)))
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let limits = ProxyYaml::new(upstream.addr).idle_timeout("300ms").header_read_timeout("30s");
    let proxy = spawn_proxy(limits).await;
    let mut idle = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_eq!(status_line(&mut idle, Duration::from_secs(5)).await.as_deref(), Some("HTTP/1.1 200 OK"));
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await, "the proxy closes the idle connection");
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout_despite_pings() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let limits = ProxyYaml::new(upstream.addr).idle_timeout("300ms").header_read_timeout("30s");
    let proxy = spawn_proxy(limits).await;
    let tcp = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(50))
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get("http://shop/").body(Empty::<bytes::Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "the proxy ends the idle HTTP/2 connection cleanly (GOAWAY): {ended:?}");
}

#[tokio::test]
async fn a_keep_alive_connection_outlives_the_header_read_timeout_while_idle() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let limits = ProxyYaml::new(upstream.addr).idle_timeout("30s").header_read_timeout("200ms");
    let proxy = spawn_proxy(limits).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let wait = Duration::from_secs(5);
    assert_eq!(status_line(&mut client, wait).await.as_deref(), Some("HTTP/1.1 200 OK"));
    // Idle longer than the header read timeout, in real time: the timer runs in the
    // proxy's worker runtime.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        status_line(&mut client, wait).await.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "the same connection serves again"
    );
    assert_eq!(upstream.seen().len(), 2);
}

#[tokio::test]
async fn a_response_that_streams_longer_than_the_idle_timeout_is_not_cut() {
    let (upstream, gate) = spawn_paused_upstream("<!doctype html><html><body>start", " end</body></html>").await;
    let limits = ProxyYaml::new(upstream.addr).idle_timeout("200ms").header_read_timeout("200ms");
    let proxy = spawn_proxy(limits).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.write_all(b"GET / HTTP/1.1\r\nhost: shop\r\nconnection: close\r\n\r\n").await.unwrap();
    // The response streams longer than the idle timeout, in real time: the timer runs in
    // the proxy's worker runtime.
    tokio::time::sleep(Duration::from_millis(700)).await;
    gate.open();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut received)).await.unwrap().unwrap();
    let received = String::from_utf8_lossy(&received);
    assert!(
        received.contains("start") && received.contains(" end") && received.ends_with("0\r\n\r\n"),
        "the whole page arrives: {received}"
    );
}

/// Sends `head` on a new connection and returns the response's first line.
async fn first_line(proxy: &invent_proxy::RunningProxy, head: &[u8]) -> String {
    let mut socket = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let _ = socket.write_all(head).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn request_heads_over_max_header_size_get_431() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).max_header_size(16384)).await;
    let head =
        |size: usize| format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\nconnection: close\r\n\r\n", "a".repeat(size));
    assert_eq!(first_line(&proxy, head(10_000).as_bytes()).await, "HTTP/1.1 200 OK");
    assert_eq!(first_line(&proxy, head(20_000).as_bytes()).await, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(upstream.seen().len(), 1, "the oversized head never reached the upstream");
}

#[tokio::test]
async fn an_upstream_that_answers_with_something_other_than_http_is_a_502() {
    let upstream = spawn_raw_upstream(|mut socket| async move {
        let mut head = [0u8; 1024];
        let _ = socket.read(&mut head).await;
        let _ = socket.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\nnot http at all").await;
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream).admin()).await;
    for _ in 0..2 {
        assert_eq!(get(&proxy, "/").await.status, StatusCode::BAD_GATEWAY, "and the proxy keeps answering");
    }
    let counted = r#"invent_proxy_upstream_errors_total{kind="protocol"} 2"#;
    crate::operations::scrape_until(proxy.admin_addr().unwrap(), counted).await;
}
