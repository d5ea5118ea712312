//! HTTP on the client side: HTTP/1.0, `Expect: 100-continue`, size limits, smuggling
//! shapes, and streaming responses that must not wait.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Sends `request` on a new connection while reading, until the proxy closes it (or 5 s
/// pass). Reading alongside writing matters: a proxy that refuses a request mid-upload
/// answers and closes, and the answer must be read before the reset that follows.
async fn exchange(proxy: &invent_proxy::RunningProxy, request: &[u8]) -> String {
    let mut socket = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut reader, mut writer) = socket.split();
    let write = async {
        // Kept open afterwards: a half-closed connection is another test.
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

async fn echo_upstream() -> Upstream {
    spawn_upstream(|req| async move {
        match req.method() {
            &http::Method::POST => {
                let body = req.into_body().collect().await.unwrap().to_bytes();
                respond(StatusCode::OK, "text/plain", body)
            }
            _ => html("<!DOCTYPE html><html><body>old client</body></html>"),
        }
    })
    .await
}

#[tokio::test]
async fn an_http_1_0_client_gets_a_complete_page() {
    let upstream = echo_upstream().await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let response = exchange(&proxy, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    assert!(response.ends_with(&format!("old client{WIDGET}</body></html>")), "{response}");
}

#[tokio::test]
async fn expect_100_continue_works() {
    let upstream = echo_upstream().await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let mut socket = TcpStream::connect(proxy.local_addr()).await.unwrap();
    socket
        .write_all(b"POST /form HTTP/1.1\r\nhost: shop\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut interim = [0u8; 25];
    socket.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    socket.write_all(b"hello").await.unwrap();
    let mut response = vec![0u8; 4096];
    let n = socket.read(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response[..n]);
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("hello"), "{response}");
}

#[tokio::test]
async fn oversized_heads_get_431_and_414_not_a_hang() {
    let upstream = echo_upstream().await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let big_header = [&b"GET / HTTP/1.1\r\nhost: x\r\nx-big: "[..], &vec![b'a'; 500_000], b"\r\n\r\n"].concat();
    assert!(exchange(&proxy, &big_header).await.starts_with("HTTP/1.1 431"));
    let long_uri = [&b"GET /"[..], &vec![b'a'; 70_000], b" HTTP/1.1\r\nhost: x\r\n\r\n"].concat();
    assert!(exchange(&proxy, &long_uri).await.starts_with("HTTP/1.1 414"));
    assert!(upstream.seen().is_empty(), "nothing reached the upstream");
}

#[tokio::test]
async fn smuggling_shapes_cannot_desynchronise_the_upstream() {
    let upstream = echo_upstream().await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let conflicting = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!";
    assert!(exchange(&proxy, conflicting).await.starts_with("HTTP/1.1 400"));
    // Transfer-Encoding wins over Content-Length (RFC 9112 §6.1), the request is forwarded
    // freshly framed, and the connection closes: what was smuggled behind it is never read.
    let te_and_cl = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n\
                      5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n";
    let response = exchange(&proxy, te_and_cl).await;
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("hello"), "{response}");
    let seen: Vec<String> = upstream.seen().iter().map(|s| s.uri.to_string()).collect();
    assert_eq!(seen, ["/"], "exactly one request reached the upstream");
}

#[tokio::test]
async fn server_sent_events_arrive_one_by_one() {
    let (next_tx, next_rx) = tokio::sync::mpsc::channel::<()>(1);
    let next_rx = std::sync::Mutex::new(Some(next_rx));
    let upstream = spawn_upstream(move |_| {
        let next = next_rx.lock().unwrap().take();
        async move {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(async move {
                let mut next = next.unwrap();
                for event in ["data: one\n\n", "data: two\n\n", "data: three\n\n"] {
                    tx.send(Ok(Bytes::from_static(event.as_bytes()))).await.unwrap();
                    next.recv().await;
                }
            });
            http::Response::builder()
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(ChannelBody(rx).boxed())
                .unwrap()
        }
    })
    .await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let uri = format!("http://{}/events", proxy.local_addr());
    let request = http::Request::get(uri)
        .header("accept", "text/event-stream")
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let mut body = client().request(request).await.unwrap().into_body();
    for event in ["data: one\n\n", "data: two\n\n", "data: three\n\n"] {
        // The upstream sends the next event only after the client has this one.
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("event held back")
            .unwrap()
            .unwrap();
        assert_eq!(frame.data_ref().unwrap(), event.as_bytes());
        let _ = next_tx.send(()).await;
    }
}
