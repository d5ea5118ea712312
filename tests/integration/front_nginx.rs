//! Behind a front proxy: Debian's nginx terminates TLS in front of invent-proxy, with
//! exactly `deploy/nginx/invent-proxy.conf` (the snippet docs/operations.md shows). The
//! client's address and scheme reach the site through `trusted_proxies`, a WebSocket
//! upgrade passes both proxies, and a streamed page's first bytes reach the client before
//! the site has finished it. Needs `nginx` on the PATH (`--features nginx-tests`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

use crate::support::pki::Pki;
use crate::support::*;

const SNIPPET: &str = include_str!("../../deploy/nginx/invent-proxy.conf");
const SERVER_NAME: &str = "www.example.com";
/// The client's own address: not the one nginx connects to invent-proxy from (127.0.0.1).
const CLIENT_IP: &str = "127.0.0.2";

/// nginx running the snippet in front of the proxy at `proxy`, until dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    pki: Pki,
    _dir: TempDir,
}

impl Nginx {
    async fn start(proxy: SocketAddr) -> Nginx {
        let pki = Pki::new(&[SERVER_NAME]);
        let dir = TempDir::new();
        let addr = free_port();
        let snippet = SNIPPET
            .replace("server 127.0.0.1:8080;", &format!("server {proxy};"))
            .replace("listen 443 ssl http2;", &format!("listen {addr} ssl http2;"))
            .replace("/etc/ssl/certs/www.example.com.pem", &pki.cert_file.display().to_string())
            .replace("/etc/ssl/private/www.example.com.key", &pki.key_file.display().to_string());
        assert_ne!(snippet, SNIPPET, "the snippet's placeholders changed: update this test with it");
        std::fs::write(dir.0.join("invent-proxy.conf"), snippet).unwrap();
        std::fs::write(dir.0.join("nginx.conf"), main_config(&dir.0)).unwrap();
        let child = Command::new("nginx")
            .args(["-p", &dir.0.display().to_string(), "-c", "nginx.conf", "-e", "stderr"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx on the PATH (apt-get install nginx)");
        let nginx = Nginx { child, addr, pki, _dir: dir };
        wait_until_async("nginx listens", || async move { TcpStream::connect(addr).await.is_ok() }).await;
        nginx
    }

    /// A TLS connection to nginx from [`CLIENT_IP`], offering `alpn`.
    async fn connect(&self, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{CLIENT_IP}:0").parse().unwrap()).unwrap();
        let tcp = socket.connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).unwrap();
        tokio_rustls::TlsConnector::from(self.pki.client_config(alpn)).connect(name, tcp).await.unwrap()
    }

    /// `GET path` over HTTP/1.1 with `headers`: the response, its body still to be read.
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> http::Response<hyper::body::Incoming> {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(self.connect(&[b"http/1.1"]).await)).await.unwrap();
        tokio::spawn(connection);
        let mut request = Request::get(path).header("host", SERVER_NAME);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        sender.send_request(request.body(Empty::<Bytes>::new()).unwrap()).await.unwrap()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: nginx's fast shutdown; it removes nothing it did not make.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// nginx's main file around the snippet: in the foreground, everything in `dir`.
fn main_config(dir: &Path) -> String {
    let dir = dir.display();
    // As root, nginx's workers would run as `nobody`, which cannot read this directory.
    let user = if is_root() { "user root;\n" } else { "" };
    format!(
        "{user}daemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log stderr warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/client_body;\n  proxy_temp_path {dir}/proxy;\n  \
         fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n  \
         include {dir}/invent-proxy.conf;\n}}\n"
    )
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// A loopback port nothing listens on now (nginx cannot be told to pick one).
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("invent-proxy-nginx-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn the_clients_address_and_scheme_reach_the_site_through_trusted_proxies() {
    let upstream = spawn_html_upstream("<!DOCTYPE html><html><body><p>Shop</p></body></html>").await;
    let trusting = spawn_proxy(ProxyYaml::new(upstream.addr).trusted_proxies(&["127.0.0.1"])).await;
    let nginx = Nginx::start(trusting.local_addr()).await;
    // What a client claims is overwritten by nginx or kept only as what it claimed.
    let response = nginx.get("/", &[("x-forwarded-proto", "http"), ("x-forwarded-host", "evil.example")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert_eq!(page.matches("<invent-assistant").count(), 1, "{page}");
    let seen = &upstream.seen()[0].headers;
    assert_eq!(seen["x-forwarded-proto"], "https", "the scheme the client used with nginx");
    assert_eq!(seen["x-forwarded-for"], format!("{CLIENT_IP}, 127.0.0.1"), "the client, then nginx");
    assert_eq!(seen["x-forwarded-host"], SERVER_NAME);
    assert_eq!(seen["host"], SERVER_NAME);
    drop(nginx);

    // The same nginx in front of a proxy that does not trust it: its claims are replaced.
    let untrusting = spawn_proxy(ProxyYaml::new(upstream.addr)).await;
    let nginx = Nginx::start(untrusting.local_addr()).await;
    nginx.get("/", &[]).await.into_body().collect().await.unwrap();
    let seen = &upstream.seen()[1].headers;
    assert_eq!(seen["x-forwarded-proto"], "http", "invent-proxy's own scheme: nginx is not trusted");
}

#[tokio::test]
async fn a_websocket_is_upgraded_through_nginx_and_the_proxy() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let site = spawn_websocket_echo().await;
    let proxy = spawn_proxy(ProxyYaml::new(site).trusted_proxies(&["127.0.0.1"])).await;
    let nginx = Nginx::start(proxy.local_addr()).await;
    let stream = nginx.connect(&[b"http/1.1"]).await;
    let (mut socket, response) =
        tokio_tungstenite::client_async(format!("wss://{SERVER_NAME}/chat"), stream).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for message in [Message::text("hello through two proxies"), Message::binary(vec![0u8, 1, 2, 255])] {
        socket.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(echoed, message);
    }
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn a_streamed_pages_first_bytes_arrive_before_the_site_finishes_it() {
    let (upstream, gate) =
        spawn_paused_upstream("<!doctype html><html><body><h1>First</h1>", "<p>rest</p></body></html>").await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).trusted_proxies(&["127.0.0.1"])).await;
    let nginx = Nginx::start(proxy.local_addr()).await;
    let mut body = nginx.get("/", &[]).await.into_body();
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains("<h1>First</h1>") {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("the first bytes are not held back by nginx or the proxy until the page ends")
            .unwrap()
            .unwrap();
        received.extend_from_slice(frame.data_ref().map_or(&[][..], |data| data));
    }
    gate.open();
    received.extend_from_slice(&body.collect().await.unwrap().to_bytes());
    let page = String::from_utf8(received).unwrap();
    assert!(page.contains("<p>rest</p><invent-assistant"), "{page}");
}
