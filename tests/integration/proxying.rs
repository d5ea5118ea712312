//! Proxy behaviour: what is forwarded each way, upstream failures, aborted bodies, HTTP/2
//! and graceful shutdown.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn method_path_query_headers_and_body_reach_the_upstream() {
    let upstream = spawn_upstream(|req| async move {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        respond(StatusCode::CREATED, "text/plain", body)
    })
    .await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let req = Request::post("/orders?id=7&q=a%20b")
        .header("x-custom", "kept")
        .header("connection", "x-drop-me")
        .header("x-drop-me", "gone")
        .header("keep-alive", "timeout=5")
        .header("x-forwarded-for", "203.0.113.7")
        .header("host", "shop.example")
        .body(Full::new(Bytes::from_static(b"item=shoes&qty=2")))
        .unwrap();
    let received = send(&proxy, req).await;
    assert_eq!(received.status, StatusCode::CREATED);
    assert_eq!(received.text(), "item=shoes&qty=2");
    let seen = &upstream.seen()[0];
    assert_eq!(seen.method, http::Method::POST);
    assert_eq!(seen.uri.to_string(), "/orders?id=7&q=a%20b");
    assert_eq!(seen.headers["x-custom"], "kept");
    assert!(!seen.headers.contains_key("x-drop-me") && !seen.headers.contains_key("keep-alive"));
    assert_eq!(seen.headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-forwarded-host"], "shop.example");
    assert_eq!(seen.headers["host"], "shop.example", "host_header: preserve is the default");
}

#[tokio::test]
async fn host_header_upstream_sends_the_upstream_authority() {
    let upstream = spawn_html_upstream("ok").await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).host_header("upstream")).await;
    get_with(&proxy, "/", &[("host", "shop.example")]).await;
    assert_eq!(upstream.seen()[0].headers["host"], upstream.addr.to_string().as_str());
}

#[tokio::test]
async fn every_set_cookie_header_survives() {
    let upstream = spawn_upstream(|_| async {
        let mut response = html("<!doctype html><body>hi</body>");
        for cookie in ["a=1; Path=/", "b=2; HttpOnly", "c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT"] {
            response.headers_mut().append(header::SET_COOKIE, cookie.parse().unwrap());
        }
        response
    })
    .await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let received = get(&proxy, "/").await;
    let cookies: Vec<_> = received.headers.get_all(header::SET_COOKIE).iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; HttpOnly", "c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT"]);
    assert_eq!(received.widgets(), 1);
}

/// Upstream connections made, after two visitors on keep-alive connections of their own
/// take turns asking for five pages each, through a proxy of `workers` workers.
async fn upstream_connections_for_two_visitors(workers: u64) -> usize {
    let upstream = spawn_html_upstream("<!doctype html><body>x</body>").await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).workers(workers)).await;
    let visitors = [client(), client()];
    let page = format!("http://{}/", proxy.local_addr());
    for _ in 0..5 {
        for visitor in &visitors {
            let request = Request::get(&page).body(Full::new(Bytes::new())).unwrap();
            let response = visitor.request(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(String::from_utf8_lossy(&body).contains("<invent-assistant"));
        }
    }
    upstream.connections()
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    assert_eq!(upstream_connections_for_two_visitors(1).await, 1);
}

#[tokio::test]
async fn each_worker_keeps_its_own_upstream_connections() {
    // The second visitor's connection goes to the idle worker, which opens its own.
    assert_eq!(upstream_connections_for_two_visitors(2).await, 2);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_and_the_proxy_recovers() {
    let (addr, reserved) = unreachable_address();
    let proxy = spawn_default_proxy(addr).await;
    let failed = get(&proxy, "/").await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY);
    assert!(failed.text().contains("502 Bad Gateway"), "{}", failed.text());
    assert_eq!(failed.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(!failed.text().contains(&addr.to_string()), "internal addresses stay in the log");

    let listener = reserved.listen(16).unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_head(&mut socket).await;
        socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.unwrap();
    });
    let recovered = get(&proxy, "/").await;
    assert_eq!((recovered.status, recovered.text().as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_and_the_next_request_is_served() {
    let upstream = spawn_upstream(|req| async move {
        if req.uri().path() == "/slow" {
            std::future::pending::<()>().await; // never answers
        }
        html("fast")
    })
    .await;
    // The timer runs in the proxy's worker runtime, so on the real clock.
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).response_timeout("300ms")).await;
    let timed_out = get(&proxy, "/slow").await;
    assert_eq!(timed_out.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(timed_out.text().contains("504 Gateway Timeout"));
    assert_eq!(get(&proxy, "/fast").await.text(), "fast");
}

/// Reads an HTTP head byte by byte, so nothing after it is consumed.
async fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_ascii_lowercase()
}

#[tokio::test]
async fn an_upstream_closing_mid_body_ends_that_response_only() {
    let upstream = spawn_raw_upstream(|mut socket| async move {
        read_head(&mut socket).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 100000\r\n\r\n";
        let _ = socket.write_all(head.as_bytes()).await;
        let _ = socket.write_all(b"<!doctype html><html><body><p>partial").await;
    })
    .await;
    let proxy = spawn_default_proxy(upstream).await;
    let uri = format!("http://{}/", proxy.local_addr());
    let response = client().get(uri.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await;
    assert!(body.is_err(), "a truncated upstream body must not look complete to the client");

    let healthy = spawn_html_upstream("<!doctype html><body>fine</body>").await;
    let other = spawn_default_proxy(healthy.addr).await;
    assert_eq!(get(&other, "/").await.widgets(), 1);
    let uri = format!("http://{}/", proxy.local_addr());
    assert_eq!(client().get(uri.parse().unwrap()).await.unwrap().status(), StatusCode::OK, "still serving");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_away_stops_the_upstream_transfer() {
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::channel::<()>(1);
    let upstream = spawn_upstream(move |req| {
        let closed_tx = closed_tx.clone();
        async move {
            if req.uri().path() == "/small" {
                return html("small");
            }
            let (tx, response) = streamed_html();
            tokio::spawn(async move {
                let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
                let _ = tx.send(Ok(Bytes::from_static(b"<!doctype html><body>"))).await;
                // Streams until the proxy stops reading: then the channel closes.
                while tx.send(Ok(chunk.clone())).await.is_ok() {}
                let _ = closed_tx.send(()).await;
            });
            response
        }
    })
    .await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let mut socket = TcpStream::connect(proxy.local_addr()).await.unwrap();
    socket.write_all(b"GET / HTTP/1.1\r\nhost: shop\r\n\r\n").await.unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut read = 0;
    while read < 100_000 {
        let n = socket.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the proxy ended the response early");
        read += n;
    }
    drop(socket);
    tokio::time::timeout(Duration::from_secs(10), closed_rx.recv())
        .await
        .expect("the upstream body is dropped once the client is gone");
    assert_eq!(get(&proxy, "/small").await.text(), "small", "and the proxy keeps serving");
}

#[tokio::test]
async fn http2_clients_are_served_with_the_widget() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>h2</body></html>").await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let h2: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let uri = format!("http://{}/", proxy.local_addr());
    let response = h2.get(uri.parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("h2<invent-assistant"));
    assert_eq!(upstream.seen()[0].headers["host"], proxy.local_addr().to_string().as_str());
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_refuses_new_ones() {
    let gate = Gate::new();
    let held = gate.clone();
    let upstream = spawn_upstream(move |_| {
        let gate = held.clone();
        async move {
            gate.wait().await;
            html("<!doctype html><body>done</body>")
        }
    })
    .await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let addr = proxy.local_addr();
    let in_flight = tokio::spawn(async move {
        let response = client().get(format!("http://{addr}/").parse().unwrap()).await.unwrap();
        response.into_body().collect().await.unwrap().to_bytes()
    });
    wait_until("the request reaches the upstream", || !upstream.seen().is_empty()).await;
    let shutdown = tokio::spawn(proxy.shutdown());
    // The upstream answers only once the listener is closed: the shutdown began with the
    // request in flight.
    wait_until_async("the listener closes", || async move { TcpStream::connect(addr).await.is_err() }).await;
    gate.open();
    shutdown.await.unwrap();
    let body = in_flight.await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("done<invent-assistant"));
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn websocket_upgrades_become_a_byte_tunnel() {
    let upstream = spawn_raw_upstream(|mut socket| async move {
        let head = read_head(&mut socket).await;
        if !(head.contains("\r\nupgrade: websocket\r\n") && head.contains("\r\nconnection: upgrade\r\n")) {
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
            return;
        }
        let switch = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
                      sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        socket.write_all(switch.as_bytes()).await.unwrap();
        let (mut from_client, mut to_client) = socket.split();
        let _ = tokio::io::copy(&mut from_client, &mut to_client).await;
    })
    .await;
    let proxy = spawn_default_proxy(upstream).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let handshake = "GET /chat HTTP/1.1\r\nhost: shop\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
                     sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
    client.write_all(handshake.as_bytes()).await.unwrap();
    let head = read_head(&mut client).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("upgrade: websocket") && head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    for message in [&b"\x81\x05hello"[..], &[0x82, 0x03, 0, 1, 255]] {
        client.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut echoed)).await.unwrap().unwrap();
        assert_eq!(echoed, message, "bytes cross the tunnel unchanged both ways");
    }
}

#[tokio::test]
async fn an_http_1_0_upstream_does_not_downgrade_the_client() {
    let upstream = spawn_raw_upstream(|mut socket| async move {
        read_head(&mut socket).await;
        let _ = socket.write_all(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nold server").await;
    })
    .await;
    let proxy = spawn_default_proxy(upstream).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    for _ in 0..2 {
        client.write_all(b"GET / HTTP/1.1\r\nhost: shop\r\n\r\n").await.unwrap();
        let head = read_head(&mut client).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        let mut body = [0u8; 20];
        client.read_exact(&mut body).await.unwrap();
        let body = String::from_utf8_lossy(&body).to_ascii_lowercase();
        assert_eq!(body, "a\r\nold server\r\n0\r\n\r\n", "a complete chunked body; the connection stays open");
    }
}

#[tokio::test]
async fn an_upstream_that_dies_before_the_page_shows_is_a_502() {
    let upstream = spawn_raw_upstream(|mut socket| async move {
        read_head(&mut socket).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 5000\r\n\r\n";
        let _ = socket.write_all(head.as_bytes()).await;
        let _ = socket.write_all(b"\n\n  ").await;
    })
    .await;
    let proxy = spawn_default_proxy(upstream).await;
    let failed = get(&proxy, "/").await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "nothing reached the client yet, so it can still be told");
}

#[tokio::test]
async fn a_slow_upload_is_not_a_slow_upstream() {
    let upstream = spawn_upstream(|req| async move {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        respond(StatusCode::OK, "text/plain", body)
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).response_timeout("300ms")).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.write_all(b"POST /upload HTTP/1.1\r\nhost: shop\r\ncontent-length: 30\r\n\r\n").await.unwrap();
    for part in [b"0123456789", b"abcdefghij", b"ABCDEFGHIJ"] {
        // Real time: the upload must outlast the response timeout, which runs in the
        // proxy's worker runtime (a clock of its own, never paused).
        tokio::time::sleep(Duration::from_millis(400)).await;
        client.write_all(part).await.unwrap();
    }
    let head = read_head(&mut client).await;
    assert!(head.starts_with("http/1.1 200"), "the upload took 1.2 s, the upstream answered at once: {head}");
    let mut body = [0u8; 30];
    client.read_exact(&mut body).await.unwrap();
    assert_eq!(&body, b"0123456789abcdefghijABCDEFGHIJ");
}

#[tokio::test]
async fn forwarded_proto_is_kept_only_from_trusted_proxies() {
    let upstream = spawn_html_upstream("ok").await;
    let untrusted = spawn_default_proxy(upstream.addr).await;
    let trusted = spawn_proxy(ProxyYaml::new(upstream.addr).trusted_proxies(&["127.0.0.0/8", "::1"])).await;
    let from_balancer = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "www.example"),
        ("forwarded", "for=203.0.113.9;proto=https;host=www.example"),
        ("x-real-ip", "203.0.113.9"),
        ("host", "internal"),
    ];
    get_with(&untrusted, "/", &from_balancer).await;
    get_with(&trusted, "/", &from_balancer).await;
    let seen = upstream.seen();
    assert_eq!(
        (&seen[0].headers["x-forwarded-proto"], &seen[0].headers["x-forwarded-host"]),
        (&"http".parse::<http::HeaderValue>().unwrap(), &"internal".parse::<http::HeaderValue>().unwrap()),
        "a client cannot claim https"
    );
    assert_eq!(seen[1].headers["x-forwarded-proto"], "https", "the load balancer terminated TLS");
    assert_eq!(seen[1].headers["x-forwarded-host"], "www.example");
    assert!(
        !seen[0].headers.contains_key("forwarded") && !seen[0].headers.contains_key("x-real-ip"),
        "not from a client"
    );
    assert_eq!(seen[1].headers["forwarded"], "for=203.0.113.9;proto=https;host=www.example");
}

#[tokio::test]
async fn hop_by_hop_response_headers_stay_with_the_upstream_connection() {
    let upstream = spawn_raw_upstream(|mut socket| async move {
        read_head(&mut socket).await;
        let response = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: x-private\r\n\
                        x-private: internal\r\nkeep-alive: timeout=5\r\nproxy-authenticate: Basic\r\nx-app: kept\r\n\r\nok";
        let _ = socket.write_all(response.as_bytes()).await;
    })
    .await;
    let proxy = spawn_default_proxy(upstream).await;
    let received = get(&proxy, "/").await;
    assert_eq!(received.text(), "ok");
    assert_eq!(received.headers["x-app"], "kept");
    for hop in ["x-private", "keep-alive", "proxy-authenticate"] {
        assert!(!received.headers.contains_key(hop), "{hop}: {:?}", received.headers);
    }
}

#[tokio::test]
async fn a_stalled_upload_still_times_out() {
    let upstream = spawn_raw_upstream(|mut socket| async move {
        read_head(&mut socket).await;
        // Reads nothing more and never answers: the client's upload backs up.
        std::future::pending::<()>().await;
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream).response_timeout("300ms")).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let size = 64 * 1024 * 1024;
    client
        .write_all(format!("POST /upload HTTP/1.1\r\nhost: shop\r\ncontent-length: {size}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (mut reader, mut writer) = client.into_split();
    tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        while writer.write_all(&chunk).await.is_ok() {}
    });
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), reader.read_exact(&mut head)).await.unwrap().unwrap();
    assert_eq!(&head, b"HTTP/1.1 504");
}

#[tokio::test]
async fn a_websocket_echoes_through_the_proxy() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let upstream = spawn_websocket_echo().await;
    let proxy = spawn_default_proxy(upstream).await;
    let url = format!("ws://{}/chat", proxy.local_addr());
    let (mut socket, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for message in [Message::text("hello through the proxy"), Message::binary(vec![0u8, 1, 2, 255])] {
        socket.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(echoed, message);
    }
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn an_upstream_head_over_16_kib_is_a_502_and_smaller_ones_pass() {
    let upstream = spawn_upstream(|req| async move {
        let size: usize = req.uri().path().trim_start_matches('/').parse().unwrap_or(0);
        let mut response = respond(StatusCode::OK, "text/plain", "fine");
        response.headers_mut().insert("x-large", "a".repeat(size).parse().unwrap());
        response
    })
    .await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let large = get(&proxy, "/12000").await;
    assert_eq!(large.status, StatusCode::OK, "{}", large.text());
    assert_eq!(large.headers["x-large"].len(), 12000);
    let too_large = get(&proxy, "/20000").await;
    assert_eq!(too_large.status, StatusCode::BAD_GATEWAY, "{}", too_large.text());
    assert!(!too_large.text().contains("aaaa"), "the upstream's header is not echoed");
    assert_eq!(get(&proxy, "/10").await.status, StatusCode::OK, "the proxy keeps serving");
}

#[tokio::test]
async fn a_request_id_is_kept_or_made_sent_upstream_and_returned() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let made = get(&proxy, "/").await;
    let id = made.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_ne!(get(&proxy, "/").await.headers["x-request-id"], id.as_str(), "a new id per request");
    let kept = get_with(&proxy, "/", &[("x-request-id", "lb-7f3a:42")]).await;
    assert_eq!(kept.headers["x-request-id"], "lb-7f3a:42");
    let odd = get_with(&proxy, "/", &[("x-request-id", "has space")]).await;
    assert_ne!(odd.headers["x-request-id"], "has space", "an id that is not a plain token is replaced");
    let seen: Vec<String> =
        upstream.seen().iter().map(|s| s.headers["x-request-id"].to_str().unwrap().to_owned()).collect();
    assert_eq!(seen[0], id, "the upstream gets the id the client gets");
    assert_eq!(seen[2], "lb-7f3a:42");
    assert_eq!(seen[3], odd.headers["x-request-id"].to_str().unwrap());
}

#[tokio::test]
async fn a_connection_header_cannot_keep_the_request_id_from_the_upstream() {
    let upstream = spawn_html_upstream("<!doctype html><html><body>hi</body></html>").await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let sent = get_with(&proxy, "/", &[("x-request-id", "abc-1"), ("connection", "x-request-id")]).await;
    assert_eq!(sent.headers["x-request-id"], "abc-1");
    assert_eq!(upstream.seen()[0].headers.get("x-request-id").map(|v| v.to_str().unwrap()), Some("abc-1"));
}
