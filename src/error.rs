//! The request path's one error type and its one mapping to a status code and page.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

use crate::metrics::UpstreamFailure;

/// The error of a body on the request path: whatever the upstream's body or a codec
/// failed with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can stop a request from being proxied, tagged by where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The client sent something the proxy cannot forward.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The request was refused at the edge ([`crate::edge`]): 400, or 501.
    #[error("refused: {}", .0.reason())]
    Refused(crate::edge::Refusal),
    /// The client's request body broke off or broke its framing (a chunk longer than its
    /// size line, a bad chunk extension) while it was forwarded.
    #[error("the client's request body failed: {0}")]
    ClientBody(#[source] BoxError),
    /// The request's host is none of the configured sites' and there is no `default_site`.
    #[error("no site answers for this host")]
    UnknownHost,
    /// No connection to the upstream could be made (refused, unreachable, connect timeout).
    #[error("upstream unreachable: {0}")]
    UpstreamConnect(#[source] BoxError),
    /// The upstream accepted the request but sent no response headers in time.
    #[error("upstream sent no response headers within {0:?}")]
    UpstreamTimeout(std::time::Duration),
    /// The upstream failed after connecting: closed early, sent an invalid response.
    #[error("upstream failed: {0}")]
    Upstream(#[source] BoxError),
    /// The proxy itself could not handle the request (e.g. no memory for a decoder).
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

impl ProxyError {
    /// How the exchange with the upstream failed, for the metrics; `None` when the
    /// upstream is not to blame.
    pub fn upstream_failure(&self) -> Option<UpstreamFailure> {
        match self {
            ProxyError::BadRequest(_)
            | ProxyError::Refused(_)
            | ProxyError::ClientBody(_)
            | ProxyError::UnknownHost
            | ProxyError::Internal(_) => None,
            ProxyError::UpstreamTimeout(_) => Some(UpstreamFailure::Timeout),
            ProxyError::UpstreamConnect(e) if is_tls(e.as_ref()) => Some(UpstreamFailure::Tls),
            ProxyError::UpstreamConnect(_) => Some(UpstreamFailure::Connect),
            ProxyError::Upstream(e) => Some(classify(e.as_ref())),
        }
    }

    /// Whether the client is to blame: its request was malformed or its body broke.
    pub fn is_client_error(&self) -> bool {
        matches!(self, ProxyError::BadRequest(_) | ProxyError::Refused(_) | ProxyError::ClientBody(_))
    }

    /// The status the client receives.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) | ProxyError::ClientBody(_) => StatusCode::BAD_REQUEST,
            ProxyError::Refused(refusal) => refusal.status(),
            ProxyError::UnknownHost => StatusCode::MISDIRECTED_REQUEST,
            ProxyError::UpstreamConnect(_) | ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) | ProxyError::Refused(_) => "bad_request",
            ProxyError::ClientBody(_) => "client_body",
            ProxyError::UnknownHost => "unknown_host",
            ProxyError::UpstreamConnect(_) => "upstream_connect",
            ProxyError::UpstreamTimeout(_) => "upstream_timeout",
            ProxyError::Upstream(_) => "upstream",
            ProxyError::Internal(_) => "internal",
        }
    }

    /// A short HTML page for the client. It names the status only: details, which may
    /// reveal internal addresses, go to the log.
    pub fn to_response(&self) -> Response<Full<Bytes>> {
        let status = self.status();
        let reason = status.canonical_reason().unwrap_or("Error");
        let body = format!(
            "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\
             <body><h1>{code} {reason}</h1><p>{explanation}</p></body></html>\n",
            code = status.as_u16(),
            explanation = match self {
                ProxyError::BadRequest(_) | ProxyError::Refused(_) | ProxyError::ClientBody(_) => {
                    "The request could not be forwarded."
                }
                ProxyError::UnknownHost => "No site is served under this name here.",
                ProxyError::UpstreamConnect(_) | ProxyError::Upstream(_) => {
                    "The site behind this proxy could not be reached. Please try again shortly."
                }
                ProxyError::UpstreamTimeout(_) => "The site behind this proxy took too long to answer.",
                ProxyError::Internal(_) => "The proxy could not handle this request.",
            }
        );
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html; charset=utf-8"));
        headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        response
    }
}

/// Why the client's request body failed, once it has: set by the upload as it streams
/// to the upstream, read where the failure is answered and logged, so that what the
/// client broke is never taken for the upstream's failure.
#[derive(Debug, Clone, Default)]
pub struct ClientBodyFailure(std::sync::Arc<std::sync::OnceLock<String>>);

impl ClientBodyFailure {
    /// Notes the client's body error (the first one counts).
    pub fn set(&self, error: &dyn std::error::Error) {
        let _ = self.0.set(error_chain(error));
    }

    /// The client's body error, if its body failed.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// An error and its sources on one line: hyper's errors say little without their causes.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// How an upstream connection that was up failed: reset or closed early, TLS, or
/// something that is not valid HTTP.
pub fn classify(error: &(dyn std::error::Error + 'static)) -> UpstreamFailure {
    if is_tls(error) {
        return UpstreamFailure::Tls;
    }
    let reset = causes(error).any(|e| {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
        e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_incomplete_message)
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof))
    });
    if reset { UpstreamFailure::Reset } else { UpstreamFailure::Protocol }
}

/// Whether a TLS error is anywhere in the chain.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    causes(error).any(|e| e.is::<rustls::Error>())
}

/// `error` and its causes. An `io::Error`'s `source` skips the error it wraps (TLS errors
/// come as one inside another), so the wrapped error is visited too.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| match e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
        Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    })
}
