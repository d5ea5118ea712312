//! Keep-alive connections to the upstream: a request the upstream closed a reused
//! connection under is sent again on a fresh one when that loses nothing, and only then.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use invent_proxy::RunningProxy;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

/// The proxy in front of `upstream`, with the admin listener and one worker: each request
/// of a test reuses the connection the one before it left (a worker keeps its own pool,
/// and each of a test's requests comes on a new connection).
fn one_worker(upstream: std::net::SocketAddr) -> ProxyYaml {
    ProxyYaml::new(upstream).admin().workers(1)
}

async fn answer(socket: &mut TcpStream, body: &str) {
    let response =
        format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    let _ = socket.write_all(response.as_bytes()).await;
}

/// An upstream whose first connection answers one request, then takes the next, sends
/// `before_close` (nothing: as an upstream's idle timeout or per-connection request cap
/// does when a request crosses the close) and closes. Later connections answer every
/// request with the number of the connection. It counts connections and the requests
/// each saw.
struct ClosingUpstream {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn spawn_closing_upstream(before_close: &'static [u8]) -> ClosingUpstream {
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (counted, seen) = (Arc::clone(&connections), Arc::clone(&requests));
    let addr = spawn_raw_upstream(move |mut socket| {
        let number = counted.fetch_add(1, Ordering::SeqCst) + 1;
        let seen = Arc::clone(&seen);
        async move {
            while let Some(head) = read_request(&mut socket).await {
                let request_line = head.lines().next().unwrap_or_default().to_owned();
                let nth = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(format!("{number} {request_line}"));
                    seen.iter().filter(|r| r.starts_with(&format!("{number} "))).count()
                };
                if number == 1 && nth == 2 {
                    let _ = socket.write_all(before_close).await;
                    return; // closed under the second request
                }
                answer(&mut socket, &format!("connection {number}")).await;
            }
        }
    })
    .await;
    ClosingUpstream { addr, connections, requests }
}

async fn body_of(req: Request<Full<Bytes>>) -> (StatusCode, String) {
    let response = client().request(req).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn request(proxy: &RunningProxy, method: &str, body: &'static str) -> Request<Full<Bytes>> {
    let uri = format!("http://{}/api/item", proxy.local_addr());
    Request::builder().method(method).uri(uri).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
}

#[tokio::test]
async fn a_get_the_upstream_closed_a_reused_connection_under_is_answered_from_a_fresh_one() {
    let upstream = spawn_closing_upstream(b"").await;
    let proxy = spawn_proxy(one_worker(upstream.addr)).await;

    assert_eq!(body_of(request(&proxy, "GET", "")).await, (StatusCode::OK, "connection 1".into()));
    let (status, body) = body_of(request(&proxy, "GET", "")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "connection 2"), "the visitor never sees the close");

    assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);
    let requests = upstream.requests.lock().unwrap().clone();
    assert_eq!(requests, ["1 get /api/item http/1.1", "1 get /api/item http/1.1", "2 get /api/item http/1.1"]);
    let admin = proxy.admin_addr().unwrap();
    crate::operations::scrape_until(admin, "invent_proxy_upstream_retries_total 1").await;
    crate::operations::scrape_until(admin, r#"invent_proxy_requests_total{method="GET",status="2xx"} 2"#).await;
}

#[tokio::test]
async fn a_post_put_or_delete_is_never_sent_twice() {
    for method in ["POST", "PUT", "DELETE"] {
        let upstream = spawn_closing_upstream(b"").await;
        let proxy = spawn_proxy(one_worker(upstream.addr)).await;

        assert_eq!(body_of(request(&proxy, method, "order=1")).await.0, StatusCode::OK);
        let (status, _) = body_of(request(&proxy, method, "")).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{method}: the upstream may have acted on it: the client decides");

        // A window for the second try that must not come (absence cannot be polled for).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let line = format!("1 {} /api/item http/1.1", method.to_lowercase());
        assert_eq!(upstream.requests.lock().unwrap().clone(), [line.clone(), line], "{method}: one try each");
        let admin = proxy.admin_addr().unwrap();
        crate::operations::scrape_until(admin, "invent_proxy_upstream_retries_total 0").await;
    }
}

#[tokio::test]
async fn a_get_whose_answer_had_begun_is_not_sent_again() {
    let upstream = spawn_closing_upstream(b"HTTP/1.1 200 OK\r\ncontent-type: te").await;
    let proxy = spawn_proxy(one_worker(upstream.addr)).await;

    assert_eq!(body_of(request(&proxy, "GET", "")).await.0, StatusCode::OK);
    assert_eq!(body_of(request(&proxy, "GET", "")).await.0, StatusCode::BAD_GATEWAY);
    // A window for the second try that must not come (absence cannot be polled for).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 1, "the upstream had begun to answer: no second try");
    let admin = proxy.admin_addr().unwrap();
    crate::operations::scrape_until(admin, "invent_proxy_upstream_retries_total 0").await;
}

#[tokio::test]
async fn a_new_connection_closed_unanswered_is_a_502_without_a_second_try() {
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    let upstream = spawn_raw_upstream(move |mut socket| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            read_request(&mut socket).await;
        }
    })
    .await;
    let proxy = spawn_proxy(one_worker(upstream)).await;

    assert_eq!(body_of(request(&proxy, "GET", "")).await.0, StatusCode::BAD_GATEWAY);
    // A window for the second try that must not come (absence cannot be polled for).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 1, "an upstream that fails fresh connections is not asked twice");
    let admin = proxy.admin_addr().unwrap();
    crate::operations::scrape_until(admin, r#"invent_proxy_upstream_errors_total{kind="reset"} 1"#).await;
}
