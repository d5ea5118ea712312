//! How the proxy connects to other servers — the upstream, and the key servers and
//! lookup endpoints identity asks: TCP with `connect_timeout` and no Nagle delay, TLS on
//! the one crypto backend, and keep-alive pools with a bounded read buffer.

use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config;

/// The small read buffer (see [`pooled`]): also the largest response head accepted.
pub(crate) const SMALL_READS: usize = 16 * 1024;

/// A keep-alive client over `connector` that reads at most `read_buffer` bytes ahead of
/// what has been handed on. hyper's default, about 400 KiB, let 1,000 clients downloading
/// 1 MB pages hold 650 KB each.
pub(crate) fn pooled<C, B>(connector: C, read_buffer: usize) -> Client<C, B>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
    B: http_body::Body + Send,
    B::Data: Send,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .http1_max_buf_size(read_buffer)
        .build(connector)
}

/// TCP connections as every client of the proxy makes them: `connect_timeout`, no Nagle
/// delay, and any scheme (TLS is layered on top).
pub(super) fn http_connector(connect_timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    http
}

/// How connections to the upstream are made: `connect_timeout`, and TLS verified as
/// [`super::client`] says. Lookups on the upstream connect the same way.
pub(crate) fn connector(upstream: &config::Upstream) -> std::io::Result<HttpsConnector<HttpConnector>> {
    connector_over(upstream, http_connector(upstream.connect_timeout))
}

/// [`connector`] over `tcp`'s connections.
pub(super) fn connector_over<T>(upstream: &config::Upstream, tcp: T) -> std::io::Result<HttpsConnector<T>> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match (&upstream.tls.ca_certs, upstream.url.scheme == http::uri::Scheme::HTTPS) {
        (Some(ca_certs), _) => builder.with_tls_config(tls_config(ca_certs)?),
        (None, true) => builder.with_native_roots()?,
        // Plain http: no trust store is read, so a host without one still runs.
        (None, false) => builder.with_tls_config(tls_config(&[])?),
    };
    let mut builder = builder.https_or_http();
    if let Some(name) = &upstream.tls.server_name {
        builder = builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name.clone()));
    }
    Ok(builder.enable_http1().wrap_connector(tcp))
}

/// A client TLS configuration trusting exactly `ca_certs`.
pub(super) fn tls_config(
    ca_certs: &[rustls::pki_types::CertificateDer<'static>],
) -> std::io::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca_certs {
        roots.add(cert.clone()).map_err(std::io::Error::other)?;
    }
    Ok(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}
