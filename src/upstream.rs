//! The upstream side: a pooled keep-alive client, and the request as the upstream sees it
//! (origin-form URI, `Host`, `X-Forwarded-*`, no hop-by-hop headers).

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::{self, HostHeader};
use crate::error::ProxyError;
use crate::headers;
use crate::upgrade;

/// The pooled client every request to the upstream goes through.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Incoming>;

/// Builds the client: keep-alive pooling, `connect_timeout`, TLS for `https://` upstreams
/// with the system's trusted roots.
pub fn client(upstream: &config::Upstream) -> std::io::Result<UpstreamClient> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(upstream.connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if upstream.url.scheme == http::uri::Scheme::HTTPS {
        builder.with_native_roots()?
    } else {
        // Plain http: no trust store is read, so a host without one still runs.
        builder.with_tls_config(empty_tls_config())
    };
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).pool_idle_timeout(std::time::Duration::from_secs(90)).build(connector))
}

fn empty_tls_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder().with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth()
}

/// Turns the client's request into the upstream's: same method, path, query, headers
/// and streamed body, addressed to the upstream.
pub fn prepare(
    req: Request<Incoming>,
    peer: SocketAddr,
    upstream: &config::Upstream,
) -> Result<Request<Incoming>, ProxyError> {
    let (mut parts, body) = req.into_parts();
    if parts.method == http::Method::CONNECT {
        return Err(ProxyError::BadRequest("CONNECT is not supported by a reverse proxy"));
    }
    let client_host = parts
        .headers
        .get(header::HOST)
        .cloned()
        .or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    if parts.version == Version::HTTP_2 {
        join_cookie_headers(&mut parts.headers);
    }
    let upgrade = upgrade::requested_protocol(&parts.headers);
    headers::remove_hop_by_hop(&mut parts.headers);
    if let Some(protocol) = upgrade {
        upgrade::restore_headers(&mut parts.headers, protocol);
    }
    headers::set_forwarded(&mut parts.headers, peer.ip(), "http", client_host.as_ref());
    let upstream_host = || HeaderValue::from_str(upstream.url.authority.as_str()).ok();
    let host = match upstream.host_header {
        HostHeader::Preserve => client_host.or_else(upstream_host),
        HostHeader::Upstream => upstream_host(),
    };
    if let Some(host) = host {
        parts.headers.insert(header::HOST, host);
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = Uri::builder()
        .scheme(upstream.url.scheme.clone())
        .authority(upstream.url.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| ProxyError::BadRequest("request target cannot be forwarded"))?;
    parts.version = Version::HTTP_11;
    Ok(Request::from_parts(parts, body))
}

/// HTTP/2 clients may split `Cookie` over several fields; an HTTP/1.1 upstream needs one
/// (RFC 9113 §8.2.3).
fn join_cookie_headers(headers: &mut http::HeaderMap) {
    let cookies: Vec<&[u8]> = headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes).collect();
    if cookies.len() < 2 {
        return;
    }
    let joined = cookies.join(&b"; "[..]);
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

/// Sends the request, waiting at most `response_timeout` for the response headers.
pub async fn send(
    client: &UpstreamClient,
    req: Request<Incoming>,
    upstream: &config::Upstream,
) -> Result<Response<Incoming>, ProxyError> {
    match tokio::time::timeout(upstream.response_timeout, client.request(req)).await {
        Err(_) => Err(ProxyError::UpstreamTimeout(upstream.response_timeout)),
        Ok(Err(e)) if e.is_connect() => Err(ProxyError::UpstreamConnect(e.into())),
        Ok(Err(e)) => Err(ProxyError::Upstream(e.into())),
        Ok(Ok(mut response)) => {
            let upgrade = (response.status() == http::StatusCode::SWITCHING_PROTOCOLS)
                .then(|| upgrade::requested_protocol(response.headers()))
                .flatten();
            headers::remove_hop_by_hop(response.headers_mut());
            if let Some(protocol) = upgrade {
                upgrade::restore_headers(response.headers_mut(), protocol);
            }
            Ok(response)
        }
    }
}
