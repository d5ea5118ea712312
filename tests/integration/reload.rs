//! Live reload of the real binary: SIGHUP and `--watch` swap in a valid config for new
//! requests while a slow response in flight completes; an invalid one is rejected, logged,
//! and the running config keeps serving.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use bytes::Bytes;

use crate::support::process::ProxyProcess;
use crate::support::*;

/// A page per path: `/slow` sends its start, then waits for the gate before its end.
async fn spawn_site() -> (Upstream, Gate) {
    let gate = Gate::new();
    let held = gate.clone();
    let upstream = spawn_upstream(move |req| {
        let gate = held.clone();
        async move {
            if req.uri().path() != "/slow" {
                return html("<!doctype html><html><body>fast</body></html>");
            }
            let (tx, response) = streamed_html();
            tokio::spawn(async move {
                tx.send(Ok(Bytes::from_static(b"<!doctype html><html><body>slow start"))).await.unwrap();
                gate.wait().await;
                tx.send(Ok(Bytes::from_static(b", slow end</body></html>"))).await.unwrap();
            });
            response
        }
    })
    .await;
    (upstream, gate)
}

fn fetch(addr: SocketAddr, path: &str) -> String {
    let mut socket = TcpStream::connect(addr).unwrap();
    write!(socket, "GET {path} HTTP/1.1\r\nhost: shop\r\nconnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    response
}

async fn assistant_of(addr: SocketAddr, path: &'static str) -> Option<String> {
    let page = tokio::task::spawn_blocking(move || fetch(addr, path)).await.unwrap();
    widget_attribute(&page, "assistant-id")
}

fn yaml(upstream: &Upstream, assistant: &str) -> String {
    ProxyYaml::new(upstream.addr).assistant_id(assistant).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_swaps_in_a_valid_config_and_keeps_the_old_one_on_an_invalid_one() {
    let (upstream, gate) = spawn_site().await;
    let mut proxy = ProxyProcess::start(&yaml(&upstream, "ast_one"), &[]);
    let addr = proxy.addr;
    let slow = tokio::task::spawn_blocking(move || fetch(addr, "/slow"));
    wait_until("the slow request reaches the upstream", || !upstream.seen().is_empty()).await;

    proxy.write_config(&yaml(&upstream, "ast_two"));
    proxy.signal("HUP");
    proxy.wait_for_log("config reloaded");
    assert_eq!(assistant_of(addr, "/").await.as_deref(), Some("ast_two"), "new requests get the new config");

    proxy.write_config(&ProxyYaml::new(upstream.addr).assistant_id("ast_three").extra("surprise: 1\n").to_string());
    proxy.signal("HUP");
    let rejected = proxy.wait_for_log("config reload rejected");
    assert!(rejected.contains("surprise"), "the reason is logged: {rejected}");
    assert_eq!(assistant_of(addr, "/").await.as_deref(), Some("ast_two"), "the running config keeps serving");

    gate.open();
    let slow = slow.await.unwrap();
    let complete =
        slow.contains("slow start") && slow.contains(", slow end<invent-assistant") && slow.ends_with("0\r\n\r\n");
    assert!(complete, "the response in flight completes: {slow}");
    assert_eq!(widget_attribute(&slow, "assistant-id").as_deref(), Some("ast_one"), "on the config it started with");
    assert_eq!(proxy.logs().iter().filter(|l| l.contains("invent-proxy is serving")).count(), 1, "never restarted");
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_reloads_when_the_file_changes() {
    let (upstream, _gate) = spawn_site().await;
    let mut proxy = ProxyProcess::start_with_args(&yaml(&upstream, "ast_one"), &[], &["--watch"]);
    assert_eq!(assistant_of(proxy.addr, "/").await.as_deref(), Some("ast_one"));
    proxy.write_config(&yaml(&upstream, "ast_two"));
    proxy.wait_for_log("config reloaded");
    assert_eq!(assistant_of(proxy.addr, "/").await.as_deref(), Some("ast_two"));
}
