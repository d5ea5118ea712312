//! Strict at the edge: one authority per request (the target's, else `:authority`, else
//! `Host`) for routing and for what the upstream sees; targets that are not a path
//! refused; header names with `_` dropped; HTTP/2 malformed fields refused; and a
//! client's broken body framing answered as the client's error, never the upstream's.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::operations::{admin_get, scrape_until};
use crate::support::process::ProxyProcess;
use crate::support::*;

const PAGE: &str = "<!doctype html><html><body>site</body></html>";

/// Writes `request` on a new connection and reads until the proxy closes it or 5 s pass.
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = socket.split();
    let write = async {
        let _ = writer.write_all(request).await;
    };
    let read = async {
        let mut response = Vec::new();
        let mut buffer = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, reader.read(&mut buffer)).await {
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buffer[..n]);
        }
        response
    };
    let ((), response) = tokio::join!(write, read);
    String::from_utf8_lossy(&response).into_owned()
}

fn status_of(response: &str) -> &str {
    response.get(9..12).unwrap_or(response)
}

fn two_sites(a: &Upstream, b: &Upstream) -> String {
    format!(
        "listen: 127.0.0.1:0\nassistant:\n  id: ast_top\nsites:\n  - hosts: [a.test]\n    upstream: {{ url: \"http://{}\" }}\n  \
         - hosts: [b.test]\n    upstream: {{ url: \"http://{}\" }}\n",
        a.addr, b.addr
    )
}

#[tokio::test]
async fn an_absolute_form_target_decides_the_site_and_the_host_the_upstream_gets() {
    let a = spawn_html_upstream(PAGE).await;
    let b = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(&two_sites(&a, &b)).await;
    let response =
        exchange(proxy.local_addr(), b"GET http://a.test/x HTTP/1.1\r\nhost: b.test\r\nconnection: close\r\n\r\n")
            .await;
    assert_eq!(status_of(&response), "200", "{response}");
    assert!(b.seen().is_empty(), "routed by the target, not by Host");
    let seen = &a.seen()[0];
    assert_eq!(seen.uri.to_string(), "/x");
    assert_eq!(seen.headers["host"], "a.test", "the target's authority is the Host the upstream gets");
    assert_eq!(seen.headers["x-forwarded-host"], "a.test");
    assert_eq!(seen.headers.get_all("host").iter().count(), 1);

    let unknown =
        exchange(proxy.local_addr(), b"GET http://evil.test/x HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n")
            .await;
    assert_eq!(status_of(&unknown), "421", "a target no site serves is misdirected, whatever Host says");
    assert_eq!(a.seen().len(), 1);
}

#[tokio::test]
async fn http2_authority_wins_and_a_host_that_contradicts_it_is_malformed() {
    let a = spawn_html_upstream(PAGE).await;
    let b = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(&two_sites(&a, &b)).await;
    let stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut send = async |uri: &str, host: Option<&str>| {
        let mut request = Request::get(uri);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let response = h2.send_request(request.body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
        let status = response.status();
        let _ = response.into_body().collect().await;
        status
    };
    assert_eq!(send("http://a.test/", None).await, StatusCode::OK);
    assert_eq!(send("http://a.test/", Some("A.test")).await, StatusCode::OK, "the same authority, another case");
    assert_eq!(send("http://a.test/", Some("b.test")).await, StatusCode::BAD_REQUEST);
    assert_eq!(send("http://user@a.test/", None).await, StatusCode::BAD_REQUEST, "userinfo in :authority");
    assert_eq!(a.seen().len(), 2);
    assert!(b.seen().is_empty());
    assert_eq!(a.seen()[0].headers["host"], "a.test", ":authority becomes the upstream's Host");
}

#[tokio::test]
async fn targets_that_are_not_a_path_or_an_absolute_url_are_refused() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    for (request, why) in [
        (&b"GET a.test:80 HTTP/1.1\r\nhost: a.test\r\n\r\n"[..], "authority-form outside CONNECT"),
        (b"GET * HTTP/1.1\r\nhost: a.test\r\n\r\n", "asterisk-form outside OPTIONS"),
        (b"GET /x#top HTTP/1.1\r\nhost: a.test\r\n\r\n", "a fragment"),
        (b"GET http://a.test/x#top HTTP/1.1\r\nhost: a.test\r\n\r\n", "a fragment in an absolute URL"),
        (b"GET ! HTTP/1.1\r\nhost: a.test\r\n\r\n", "not a path"),
        (b"GET ftp://a.test/x HTTP/1.1\r\nhost: a.test\r\n\r\n", "not an http(s) URL"),
        (b"GET http://user@a.test/x HTTP/1.1\r\nhost: a.test\r\n\r\n", "userinfo"),
    ] {
        let response = exchange(proxy.local_addr(), request).await;
        assert_eq!(status_of(&response), "400", "{why}: {response}");
    }
    assert!(upstream.seen().is_empty(), "nothing reached the upstream: {:?}", upstream.seen());
}

/// Reads one whole response (a `Content-Length` or chunked body) from a kept-alive connection.
async fn read_response(socket: &mut TcpStream) -> String {
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    let complete = |r: &[u8]| {
        let text = String::from_utf8_lossy(r).to_ascii_lowercase();
        let Some(end) = text.find("\r\n\r\n") else { return false };
        let length = text[..end].lines().find_map(|l| l.strip_prefix("content-length: ")?.trim().parse::<usize>().ok());
        match length {
            Some(length) => r.len() >= end + 4 + length,
            None => text.ends_with("\r\n0\r\n\r\n"),
        }
    };
    while !complete(&response) {
        assert_eq!(socket.read(&mut byte).await.unwrap(), 1, "{}", String::from_utf8_lossy(&response));
        response.push(byte[0]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_fragment_is_refused_on_any_request_of_a_keep_alive_connection() {
    let upstream = spawn_upstream(|req| async move {
        let _ = req.into_body().collect().await;
        html(PAGE)
    })
    .await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let mut socket = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut statuses = Vec::new();
    for request in [
        &b"GET /a HTTP/1.1\r\nhost: a.test\r\n\r\n"[..],
        // A body whose bytes look like a request line with a fragment: never read as one.
        b"POST /form HTTP/1.1\r\nhost: a.test\r\ncontent-length: 15\r\n\r\nGET /x#y HTTP/1",
        b"\r\nGET /b HTTP/1.1\r\nhost: a.test\r\n\r\n",
        b"GET /c#d HTTP/1.1\r\nhost: a.test\r\n\r\n",
    ] {
        socket.write_all(request).await.unwrap();
        statuses.push(read_response(&mut socket).await[9..12].to_owned());
    }
    assert_eq!(statuses, ["200", "200", "200", "400"]);
    let paths: Vec<String> = upstream.seen().iter().map(|s| s.uri.to_string()).collect();
    assert_eq!(paths, ["/a", "/form", "/b"]);
}

#[tokio::test]
async fn an_http_1_1_request_needs_exactly_one_host() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    for (request, why) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], "no Host"),
        (b"GET / HTTP/1.1\r\nhost: a.test\r\nhost: a.test\r\n\r\n", "two Host fields"),
        (b"GET / HTTP/1.1\r\nhost: a.test, b.test\r\n\r\n", "a Host that is a list"),
        (b"GET / HTTP/1.1\r\nhost: user@a.test\r\n\r\n", "userinfo in Host"),
        (b"GET / HTTP/1.1\r\nhost: a.test/x\r\n\r\n", "a Host with a path"),
    ] {
        let response = exchange(proxy.local_addr(), request).await;
        assert_eq!(status_of(&response), "400", "{why}: {response}");
    }
    assert!(upstream.seen().is_empty());
    let old = exchange(proxy.local_addr(), b"GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(status_of(&old), "200", "HTTP/1.0 may leave Host out: {old}");
    let options =
        exchange(proxy.local_addr(), b"OPTIONS * HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n").await;
    assert_eq!(status_of(&options), "200", "{options}");
    assert_eq!(upstream.seen().last().map(|s| s.uri.to_string()).as_deref(), Some("*"));
}

#[tokio::test]
async fn header_names_with_underscores_are_dropped_unless_allowed() {
    let upstream = spawn_html_upstream(PAGE).await;
    let request = b"GET / HTTP/1.1\r\nhost: a.test\r\nx_forwarded_for: 10.9.9.9\r\nx_user: admin\r\nx-kept: 1\r\nconnection: close\r\n\r\n";
    let strict = spawn_default_proxy(upstream.addr).await;
    assert_eq!(status_of(&exchange(strict.local_addr(), request).await), "200");
    let seen = &upstream.seen()[0].headers;
    assert!(!seen.contains_key("x_forwarded_for") && !seen.contains_key("x_user"), "{seen:?}");
    assert_eq!(seen["x-kept"], "1");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");

    let lenient = spawn_proxy(ProxyYaml::new(upstream.addr).underscores_in_headers(true)).await;
    assert_eq!(status_of(&exchange(lenient.local_addr(), request).await), "200");
    let seen = &upstream.seen()[1].headers;
    assert_eq!((&seen["x_user"], &seen["x_forwarded_for"]), (&"admin".parse().unwrap(), &"10.9.9.9".parse().unwrap()));
}

#[tokio::test]
async fn http2_fields_with_surrounding_whitespace_and_a_star_path_are_malformed() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut send = async |request: Request<Empty<Bytes>>| {
        let response = h2.send_request(request).await.unwrap();
        response.status()
    };
    let padded = |value: &'static str| {
        Request::get("http://a.test/").header("x-value", value).body(Empty::<Bytes>::new()).unwrap()
    };
    assert_eq!(send(padded("plain")).await, StatusCode::OK);
    assert_eq!(send(padded(" leading")).await, StatusCode::BAD_REQUEST);
    assert_eq!(send(padded("trailing\t")).await, StatusCode::BAD_REQUEST);
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(http::uri::Scheme::HTTP);
    parts.authority = Some("a.test".parse().unwrap());
    parts.path_and_query = Some("*".parse().unwrap());
    let star = http::Uri::from_parts(parts).unwrap();
    assert_eq!(send(Request::get(star).body(Empty::new()).unwrap()).await, StatusCode::BAD_REQUEST);
    assert_eq!(upstream.seen().len(), 1);
}

/// A request whose chunked body breaks after `good` arrived, to an upstream that reads the
/// whole body before it answers; the admin listener's scrape after it.
async fn broken_body(body: &'static [u8], head: &'static str) -> (String, String, Upstream) {
    let upstream = spawn_upstream(|req| async move {
        let read = req.into_body().collect().await;
        respond(StatusCode::OK, "text/plain", if read.is_ok() { "read" } else { "broken" })
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin()).await;
    let request = [head.as_bytes(), body].concat();
    let response = exchange(proxy.local_addr(), &request).await;
    let admin = proxy.admin_addr().unwrap();
    let metrics = scrape_until(admin, r#"invent_proxy_requests_total{method="POST",status="4xx"} 1"#).await;
    (response, metrics, upstream)
}

const CHUNKED_POST: &str = "POST /form HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n";

#[tokio::test]
async fn a_broken_chunked_body_is_the_clients_error() {
    for (body, why) in [
        (&b"5\r\nhelloEXTRA\r\n0\r\n\r\n"[..], "a chunk longer than its size line"),
        (b"5;ext\nhello\r\n0\r\n\r\n", "a chunk extension ended by a bare LF"),
        (b"zz\r\nhello\r\n0\r\n\r\n", "a size line that is not hex"),
    ] {
        let (response, metrics, _) = broken_body(body, CHUNKED_POST).await;
        assert_eq!(status_of(&response), "400", "{why}: {response}");
        assert!(!metrics.contains("invent_proxy_upstream_errors_total{"), "{why}: not the upstream's:\n{metrics}");
    }
}

#[tokio::test]
async fn chunked_applied_twice_or_an_unknown_transfer_coding_never_reaches_the_upstream() {
    for (head, status) in [
        ("POST /form HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked, chunked\r\n\r\n", "400"),
        (
            "POST /form HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
            "400",
        ),
        ("POST /form HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: gzip, chunked\r\n\r\n", "501"),
    ] {
        let upstream = spawn_html_upstream(PAGE).await;
        let proxy = spawn_default_proxy(upstream.addr).await;
        let request = [head.as_bytes(), b"5\r\nhello\r\n0\r\n\r\n"].concat();
        let response = exchange(proxy.local_addr(), &request).await;
        assert_eq!(status_of(&response), status, "{head}: {response}");
        assert!(upstream.seen().is_empty(), "{head}");
    }
    // hyper refuses a coding list that does not end in chunked before any of the proxy's
    // code runs: nothing reaches the upstream either.
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let head = "POST /form HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_eq!(status_of(&exchange(proxy.local_addr(), head.as_bytes()).await), "400");
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn a_body_that_breaks_after_the_response_began_cuts_the_connection_not_the_upstream() {
    let upstream = spawn_upstream(|_| async move {
        // Answers at once, streaming, without reading the upload.
        let (tx, response) = streamed_html();
        tokio::spawn(async move {
            let _ = tx.send(Ok(Bytes::from_static(b"<p>partial"))).await;
            std::future::pending::<()>().await; // the rest never comes
        });
        response
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin()).await;
    let mut socket = TcpStream::connect(proxy.local_addr()).await.unwrap();
    socket.write_all(CHUNKED_POST.as_bytes()).await.unwrap();
    socket.write_all(b"5\r\nhello\r\n").await.unwrap();
    let mut head = vec![0u8; 1024];
    let n = socket.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..n]));
    socket.write_all(b"5\r\nhelloEXTRA\r\n").await.unwrap();
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the connection is cut");
    let admin = proxy.admin_addr().unwrap();
    scrape_until(admin, r#"invent_proxy_requests_total{method="POST",status="2xx"} 1"#).await;
    let (_, metrics) = admin_get(admin, "/metrics").await;
    assert!(!metrics.contains("invent_proxy_upstream_errors_total{"), "not the upstream's:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_access_line_names_the_client_for_a_broken_body() {
    let upstream = spawn_upstream(|req| async move {
        let _ = req.into_body().collect().await;
        html(PAGE)
    })
    .await;
    let mut proxy = ProxyProcess::start(&ProxyYaml::new(upstream.addr).to_string(), &[]);
    let addr = proxy.addr;
    let request = [CHUNKED_POST.as_bytes(), b"5\r\nhelloEXTRA\r\n0\r\n\r\n"].concat();
    let response = exchange(addr, &request).await;
    assert_eq!(status_of(&response), "400", "{response}");
    let line = proxy.wait_for_log("path=/form");
    assert!(line.contains("status=400") && line.contains("error_kind=\"client_body\""), "{line}");
}
