//! Small requests the proxy makes on its own behalf — the JWKS and identity lookups — with
//! one deadline from connect to last byte and a cap on the answer's size.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

pub(crate) use super::connect::{SMALL_READS, pooled};
use super::connect::{http_connector, tls_config};
use crate::error::error_chain;

/// A pooled client for body-less `GET`s.
pub(crate) type FetchClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Why a fetch gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request failed: {0}")]
    Failed(String),
}

/// A client for `url`: an `https://` URL is verified against the system's roots.
pub(crate) fn client_for(url: &Uri, connect_timeout: Duration) -> std::io::Result<FetchClient> {
    let http = http_connector(connect_timeout);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if url.scheme() == Some(&http::uri::Scheme::HTTPS) {
        builder.with_native_roots()?
    } else {
        // Plain http: no trust store is read, so a host without one still runs.
        builder.with_tls_config(tls_config(&[])?)
    };
    Ok(pooled(builder.https_or_http().enable_http1().wrap_connector(http), SMALL_READS))
}

/// Sends `request` and waits for the answer's head, within `timeout`.
pub(crate) async fn send(
    client: &FetchClient,
    request: Request<Empty<Bytes>>,
    timeout: Duration,
) -> Result<Response<Incoming>, FetchError> {
    let sent = client.request(request);
    match tokio::time::timeout(timeout, sent).await {
        Err(_) => Err(FetchError::Timeout(timeout)),
        Ok(Err(e)) if e.is_connect() => Err(FetchError::Connect(error_chain(&e))),
        Ok(Err(e)) => Err(FetchError::Failed(error_chain(&e))),
        Ok(Ok(response)) => Ok(response),
    }
}

/// Sends `request` and reads the whole answer, all within `timeout` and `max_bytes`.
pub(crate) async fn get(
    client: &FetchClient,
    request: Request<Empty<Bytes>>,
    timeout: Duration,
    max_bytes: usize,
) -> Result<(StatusCode, Bytes), FetchError> {
    let exchange = async {
        let response = send(client, request, timeout).await?;
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
