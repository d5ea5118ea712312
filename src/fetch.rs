//! Small requests the proxy makes on its own behalf — the JWKS and identity lookups — with
//! one deadline from connect to last byte and a cap on the answer's size.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::error_chain;

/// A pooled client for body-less `GET`s.
pub type FetchClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Why a fetch gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request failed: {0}")]
    Failed(String),
}

/// The small read buffer (see [`pooled`]): also the largest response head accepted.
pub const SMALL_READS: usize = 16 * 1024;

/// A keep-alive client over `connector` that reads at most `read_buffer` bytes ahead of
/// what has been handed on. hyper's default, about 400 KiB, let 1,000 clients downloading
/// 1 MB pages hold 650 KB each.
pub fn pooled<C, B>(connector: C, read_buffer: usize) -> Client<C, B>
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
pub fn http_connector(connect_timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    http
}

/// A client for `url`: an `https://` URL is verified against the system's roots.
pub fn client_for(url: &Uri, connect_timeout: Duration) -> std::io::Result<FetchClient> {
    let http = http_connector(connect_timeout);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if url.scheme() == Some(&http::uri::Scheme::HTTPS) {
        builder.with_native_roots()?
    } else {
        // Plain http: no trust store is read, so a host without one still runs.
        builder.with_tls_config(crate::upstream::tls_config(&[])?)
    };
    Ok(pooled(builder.https_or_http().enable_http1().wrap_connector(http), SMALL_READS))
}

/// Sends `request` and reads the whole answer, all within `timeout` and `max_bytes`.
pub async fn get(
    client: &FetchClient,
    request: Request<Empty<Bytes>>,
    timeout: Duration,
    max_bytes: usize,
) -> Result<(StatusCode, Bytes), FetchError> {
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            if e.is_connect() { FetchError::Connect(error_chain(&e)) } else { FetchError::Failed(error_chain(&e)) }
        })?;
        let status = response.status();
        let body = Limited::new(response.into_body(), max_bytes).collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                FetchError::TooLarge(max_bytes)
            } else {
                FetchError::Failed(e.to_string())
            }
        })?;
        Ok((status, body.to_bytes()))
    };
    tokio::time::timeout(timeout, exchange).await.unwrap_or(Err(FetchError::Timeout(timeout)))
}
