//! The request path's one error type, for the head and the body phase alike: each failure
//! knows who is to blame (the client, the upstream, the proxy), the status it answers
//! with, and its one word for the access line.

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

/// An error of a body on the request path, or of what made it.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Who a failure is to blame on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blame {
    Client,
    Upstream,
    Internal,
}

/// Everything that can stop a request from being proxied, or its response from being
/// sent whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// The client sent something the proxy refuses or cannot forward.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The client asked for something the proxy does not implement (a transfer coding
    /// besides `chunked`, RFC 9112 §6.1).
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// The request's host is none of the configured sites' and there is no `default_site`.
    #[error("no site answers for this host")]
    UnknownHost,
    /// The client's request body broke off or broke its framing (a chunk longer than its
    /// size line, a bad chunk extension) while it was forwarded.
    #[error("the client's request body failed: {0}")]
    ClientBody(String),
    /// No connection to the upstream could be made (refused, unreachable, connect timeout).
    #[error("upstream unreachable: {0}")]
    UpstreamConnect(#[source] BoxError),
    /// The upstream accepted the request but sent no response headers in time.
    #[error("upstream sent no response headers within {0:?}")]
    UpstreamTimeout(Duration),
    /// The upstream failed after connecting, before its response head was through: it
    /// closed early, or sent an invalid response.
    #[error("upstream failed: {0}")]
    Upstream(#[source] BoxError),
    /// The upstream's body made no progress for `limits.body_stall_timeout`.
    #[error("no body bytes for {}: the response is ended", humantime::format_duration(*.0))]
    UpstreamStall(Duration),
    /// The upstream's body broke off mid-way.
    #[error("{0}")]
    UpstreamBody(#[source] BoxError),
    /// The upstream's compressed body turned out corrupt mid-way.
    #[error("{0}")]
    UpstreamCoding(#[source] BoxError),
    /// The proxy itself could not handle the request (e.g. no memory for a decoder).
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

/// The one word of each failure in the access line (`error_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    BadRequest,
    NotImplemented,
    UnknownHost,
    ClientBody,
    UpstreamConnect,
    UpstreamTimeout,
    Upstream,
    UpstreamStall,
    UpstreamBody,
    UpstreamCoding,
    Internal,
}

impl ErrorKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::NotImplemented => "not_implemented",
            ErrorKind::UnknownHost => "unknown_host",
            ErrorKind::ClientBody => "client_body",
            ErrorKind::UpstreamConnect => "upstream_connect",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::Upstream => "upstream",
            ErrorKind::UpstreamStall => "upstream_stall",
            ErrorKind::UpstreamBody => "upstream_body",
            ErrorKind::UpstreamCoding => "upstream_coding",
            ErrorKind::Internal => "internal",
        }
    }
}

/// How a failed exchange with the upstream failed, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamFailure {
    Connect,
    Timeout,
    Reset,
    Tls,
    /// The upstream answered with something that is not valid HTTP, or too large a head.
    Protocol,
}

impl UpstreamFailure {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            UpstreamFailure::Connect => "connect",
            UpstreamFailure::Timeout => "timeout",
            UpstreamFailure::Reset => "reset",
            UpstreamFailure::Tls => "tls",
            UpstreamFailure::Protocol => "protocol",
        }
    }
}

impl ProxyError {
    /// The failure's word for the access line.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            ProxyError::BadRequest(_) => ErrorKind::BadRequest,
            ProxyError::NotImplemented(_) => ErrorKind::NotImplemented,
            ProxyError::UnknownHost => ErrorKind::UnknownHost,
            ProxyError::ClientBody(_) => ErrorKind::ClientBody,
            ProxyError::UpstreamConnect(_) => ErrorKind::UpstreamConnect,
            ProxyError::UpstreamTimeout(_) => ErrorKind::UpstreamTimeout,
            ProxyError::Upstream(_) => ErrorKind::Upstream,
            ProxyError::UpstreamStall(_) => ErrorKind::UpstreamStall,
            ProxyError::UpstreamBody(_) => ErrorKind::UpstreamBody,
            ProxyError::UpstreamCoding(_) => ErrorKind::UpstreamCoding,
            ProxyError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Who is to blame.
    pub(crate) fn blame(&self) -> Blame {
        match self {
            ProxyError::BadRequest(_)
            | ProxyError::NotImplemented(_)
            | ProxyError::UnknownHost
            | ProxyError::ClientBody(_) => Blame::Client,
            ProxyError::Internal(_) => Blame::Internal,
            _ => Blame::Upstream,
        }
    }

    /// How the exchange with the upstream failed, for the metrics; `None` when the
    /// upstream is not to blame.
    pub(crate) fn upstream_failure(&self) -> Option<UpstreamFailure> {
        match self {
            ProxyError::UpstreamTimeout(_) | ProxyError::UpstreamStall(_) => Some(UpstreamFailure::Timeout),
            ProxyError::UpstreamConnect(e) if is_tls(e.as_ref()) => Some(UpstreamFailure::Tls),
            ProxyError::UpstreamConnect(_) => Some(UpstreamFailure::Connect),
            ProxyError::Upstream(e) | ProxyError::UpstreamBody(e) => Some(classify(e.as_ref())),
            _ => None,
        }
    }

    /// The status the client receives (when the response has not started yet).
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) | ProxyError::ClientBody(_) => StatusCode::BAD_REQUEST,
            ProxyError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ProxyError::UnknownHost => StatusCode::MISDIRECTED_REQUEST,
            ProxyError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// A short HTML page for the client. It names the status only: details, which may
    /// reveal internal addresses, go to the log.
    pub(crate) fn to_response(&self) -> Response<Full<Bytes>> {
        let status = self.status();
        let reason = status.canonical_reason().unwrap_or("Error");
        let explanation = match (self.blame(), self) {
            (_, ProxyError::UnknownHost) => "No site is served under this name here.",
            (Blame::Client, _) => "The request could not be forwarded.",
            (_, ProxyError::UpstreamTimeout(_)) => "The site behind this proxy took too long to answer.",
            (Blame::Upstream, _) => "The site behind this proxy could not be reached. Please try again shortly.",
            (Blame::Internal, _) => "The proxy could not handle this request.",
        };
        let body = format!(
            "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\
             <body><h1>{code} {reason}</h1><p>{explanation}</p></body></html>\n",
            code = status.as_u16(),
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
pub(crate) struct ClientBodyFailure(std::sync::Arc<std::sync::OnceLock<String>>);

impl ClientBodyFailure {
    /// Notes the client's body error (the first one counts).
    pub(crate) fn set(&self, error: &dyn std::error::Error) {
        let _ = self.0.set(error_chain(error));
    }

    /// The client's body error, if its body failed.
    pub(crate) fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// An error and its sources on one line: hyper's errors say little without their causes.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
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
pub(crate) fn classify(error: &(dyn std::error::Error + 'static)) -> UpstreamFailure {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_knows_its_blame_status_and_word() {
        let stall = ProxyError::UpstreamStall(Duration::from_secs(30));
        assert_eq!((stall.blame(), stall.kind().as_str()), (Blame::Upstream, "upstream_stall"));
        assert_eq!(stall.upstream_failure(), Some(UpstreamFailure::Timeout));
        let body = ProxyError::ClientBody("invalid chunk".into());
        assert_eq!(
            (body.blame(), body.status(), body.upstream_failure()),
            (Blame::Client, StatusCode::BAD_REQUEST, None)
        );
        let coding = ProxyError::UpstreamCoding("corrupt".into());
        assert_eq!((coding.kind().as_str(), coding.upstream_failure()), ("upstream_coding", None));
        assert_eq!(ProxyError::NotImplemented("gzip").status(), StatusCode::NOT_IMPLEMENTED);
        assert!(!ProxyError::Upstream("x".into()).to_response().status().is_success());
    }
}
