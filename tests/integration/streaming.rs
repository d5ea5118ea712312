//! Bodies stream: the first bytes of a page reach the client before the upstream has sent
//! the rest, and a page far larger than any buffer passes with flat memory.

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;

use crate::support::process::ProxyProcess;
use crate::support::*;

#[tokio::test]
async fn the_first_bytes_of_a_page_arrive_before_the_upstream_finishes() {
    let (upstream, gate) =
        spawn_paused_upstream("<!doctype html><html><body><h1>First</h1>", "<p>rest</p></body></html>").await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let uri = format!("http://{}/", proxy.local_addr());
    let mut body = client().get(uri.parse().unwrap()).await.unwrap().into_body();
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the first chunk is not held back until the page ends")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(first.data_ref().unwrap()).contains("<h1>First</h1>"));
    gate.open();
    let rest = body.collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&rest).contains("<p>rest</p><invent-assistant"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_20_mb_page_streams_through_with_flat_memory() {
    const TOTAL: usize = 20 * 1024 * 1024;
    let upstream = spawn_upstream(|_| async {
        let (tx, response) = streamed_html();
        tokio::spawn(async move {
            tx.send(Ok(Bytes::from_static(b"<!doctype html><html><body>"))).await.unwrap();
            let chunk = Bytes::from("<p>lorem ipsum dolor sit amet</p>\n".repeat(1000));
            let mut sent = 0;
            while sent < TOTAL {
                tx.send(Ok(chunk.clone())).await.unwrap();
                sent += chunk.len();
            }
            tx.send(Ok(Bytes::from_static(b"</body></html>"))).await.unwrap();
        });
        response
    })
    .await;
    let proxy = ProxyProcess::start(&ProxyYaml::new(upstream.addr).to_string(), &[]);
    let addr = proxy.addr;
    let baseline = tokio::task::spawn_blocking(move || {
        let mut small = StdTcpStream::connect(addr).unwrap();
        small.write_all(b"GET /warm HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
        let mut sink = Vec::new();
        small.read_to_end(&mut sink).unwrap();
    });
    baseline.await.unwrap();
    let before = proxy.peak_rss_kib();

    let received = tokio::task::spawn_blocking(move || {
        let mut socket = StdTcpStream::connect(addr).unwrap();
        socket.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
        let mut buffer = vec![0u8; 256 * 1024];
        let (mut total, mut tail) = (0usize, Vec::new());
        loop {
            let n = socket.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            tail.extend_from_slice(&buffer[..n]);
            let keep = tail.len().saturating_sub(4096);
            tail.drain(..keep);
        }
        (total, String::from_utf8_lossy(&tail).into_owned())
    })
    .await
    .unwrap();
    let after = proxy.peak_rss_kib();

    assert!(received.0 > TOTAL, "the whole page arrived ({} bytes)", received.0);
    assert!(received.1.contains("<invent-assistant"), "and it ends with the widget");
    let growth_mib = after.saturating_sub(before) / 1024;
    assert!(growth_mib < 10, "peak memory grew by {growth_mib} MiB while streaming a 20 MiB page");
}
