//! TLS on both sides: clients over HTTPS (HTTP/2 or HTTP/1.1 by ALPN), and `https://`
//! upstreams verified against the system roots or a private CA.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};

use crate::support::pki::Pki;
use crate::support::process::ProxyProcess;
use crate::support::*;

const PAGE: &str = "<!DOCTYPE html><html><body>secure</body></html>";

/// An HTTPS upstream presenting `pki`'s certificate, answering every request with PAGE and
/// echoing the X-Forwarded-Proto it received.
async fn spawn_tls_upstream(pki: &Pki) -> std::net::SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config(&[b"http/1.1"]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else { return };
                let service =
                    service_fn(|_req: Request<hyper::body::Incoming>| async { Ok::<_, Infallible>(html(PAGE)) });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

/// GET `path` over TLS from `addr`, trusting `pki`'s CA, with `alpn`; returns the HTTP
/// version spoken, the status and the body.
async fn https_get(
    addr: std::net::SocketAddr,
    pki: &Pki,
    alpn: &[&[u8]],
    path: &str,
) -> (http::Version, StatusCode, String) {
    let connector = tokio_rustls::TlsConnector::from(pki.client_config(alpn));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    // HTTP/1.1 needs its Host even with an absolute target (RFC 9112 §3.2).
    let request = Request::get(format!("https://localhost{path}"))
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    };
    let (version, status) = (response.version(), response.status());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (version, status, String::from_utf8_lossy(&body).into_owned())
}

/// A proxy in front of `upstream` that also listens for HTTPS with `pki`'s certificate.
fn with_tls(upstream: &Upstream, pki: &Pki) -> ProxyYaml {
    ProxyYaml::new(upstream.addr).listen_tls(&pki.cert_file, &pki.key_file)
}

#[tokio::test]
async fn https_clients_get_http2_or_http1_by_alpn() {
    let pki = Pki::new(&["localhost"]);
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(with_tls(&upstream, &pki)).await;
    let tls_addr = proxy.tls_addr().expect("an HTTPS listener");
    let (version, status, page) = https_get(tls_addr, &pki, &[b"h2", b"http/1.1"], "/").await;
    assert_eq!((version, status), (http::Version::HTTP_2, StatusCode::OK));
    assert!(page.contains("secure<invent-assistant"), "{page}");
    let (version, _, page) = https_get(tls_addr, &pki, &[b"http/1.1"], "/").await;
    assert_eq!(version, http::Version::HTTP_11);
    assert!(page.contains("secure<invent-assistant"));
    assert!(upstream.seen().iter().all(|s| s.headers["x-forwarded-proto"] == "https"));
    assert_eq!(get(&proxy, "/").await.widgets(), 1, "plain HTTP still served on listen");
}

#[tokio::test]
async fn an_https_upstream_with_a_private_ca_is_verified() {
    let pki = Pki::new(&["upstream.internal", "127.0.0.1"]);
    let upstream = spawn_tls_upstream(&pki).await;
    let with_ca = ProxyYaml::new(upstream).upstream_url(format!("https://{upstream}")).upstream_ca_file(&pki.ca_file);
    let proxy = spawn_proxy(&with_ca).await;
    assert!(get(&proxy, "/").await.text().contains("secure<invent-assistant"));

    let proxy = spawn_proxy(with_ca.clone().upstream_server_name("upstream.internal")).await;
    assert!(get(&proxy, "/").await.text().contains("secure<invent-assistant"), "verified as upstream.internal");

    let proxy = spawn_proxy(with_ca.upstream_server_name("other.internal")).await;
    assert_eq!(get(&proxy, "/").await.status, StatusCode::BAD_GATEWAY, "a name the certificate lacks is refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_upstream_certificate_is_a_502_that_says_why() {
    let pki = Pki::new(&["127.0.0.1"]);
    let upstream = spawn_tls_upstream(&pki).await;
    let yaml = format!("listen: 127.0.0.1:0\nupstream:\n  url: https://{upstream}\nassistant:\n  id: ast_test\n");
    let mut proxy = ProxyProcess::start(&yaml, &[]);
    let addr = proxy.addr;
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket.write_all(b"GET / HTTP/1.1\r\nhost: shop\r\nconnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 502"), "never a silent downgrade: {response}");
    let line = proxy.wait_for_log("status=502");
    assert!(line.contains("certificate"), "the log says why: {line}");
}

#[test]
fn tls_files_are_checked_at_start_up() {
    let pki = Pki::new(&["localhost"]);
    let other = Pki::new(&["localhost"]);
    let base = "upstream:\n  url: http://127.0.0.1:3000\nassistant:\n  id: a\n";
    let error = |yaml: String| {
        invent_proxy::Config::from_yaml(&yaml, "tls.yaml", std::path::Path::new(".")).unwrap_err().to_string()
    };
    let missing = error(format!(
        "{base}listen_tls:\n  address: 127.0.0.1:0\n  cert_file: /nonexistent/cert.pem\n  key_file: {}\n",
        pki.key_file.display()
    ));
    assert!(missing.contains("listen_tls.cert_file: cannot read /nonexistent/cert.pem"), "{missing}");
    let mismatched = error(format!(
        "{base}listen_tls:\n  address: 127.0.0.1:0\n  cert_file: {}\n  key_file: {}\n",
        pki.cert_file.display(),
        other.key_file.display()
    ));
    assert!(
        mismatched.contains("listen_tls.key_file: ") && mismatched.contains("does not fit the certificate"),
        "{mismatched}"
    );
    let not_a_cert = error(format!(
        "{base}listen_tls:\n  address: 127.0.0.1:0\n  cert_file: {}\n  key_file: {}\n",
        pki.key_file.display(),
        pki.key_file.display()
    ));
    assert!(not_a_cert.contains("holds no PEM certificate"), "{not_a_cert}");
    let plain_upstream =
        error("upstream:\n  url: http://127.0.0.1:3000\n  tls:\n    server_name: x\nassistant:\n  id: a\n".to_owned());
    assert!(plain_upstream.contains("upstream.tls: is for an https:// upstream.url"), "{plain_upstream}");
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_on_the_same_listener() {
    let (old, new) = (Pki::new(&["localhost"]), Pki::new(&["localhost"]));
    let upstream = spawn_html_upstream(PAGE).await;
    let mut proxy = spawn_proxy(with_tls(&upstream, &old)).await;
    let tls_addr = proxy.tls_addr().unwrap();
    assert_eq!(https_get(tls_addr, &old, &[b"http/1.1"], "/").await.1, StatusCode::OK);
    proxy.reload(config(with_tls(&upstream, &new))).await.unwrap();
    assert_eq!(proxy.tls_addr(), Some(tls_addr), "same address: the listener stays");
    assert_eq!(https_get(tls_addr, &new, &[b"http/1.1"], "/").await.1, StatusCode::OK, "the new certificate");
    let connector = tokio_rustls::TlsConnector::from(old.client_config(&[b"http/1.1"]));
    let tcp = TcpStream::connect(tls_addr).await.unwrap();
    let refused = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await;
    assert!(refused.is_err(), "a client that trusts only the old certificate's CA no longer connects");
}
