//! The request as the upstream sees it — origin-form URI, one `Host`, `X-Forwarded-*`, no
//! hop-by-hop or underscored headers — and its body, streamed as the client sends it.

use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::watch;

use crate::config::{self, HostHeader};
use crate::error::{ClientBodyFailure, ProxyError};
use crate::headers;

/// What the upstream is told about where a request came from, and what of the client's
/// headers it may see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarding {
    /// The client's address, appended to `X-Forwarded-For`.
    pub client: IpAddr,
    /// `X-Forwarded-Proto`: the scheme the client used.
    pub proto: &'static str,
    /// The client is one of `trusted_proxies`: its forwarding headers are kept.
    pub trusted: bool,
    /// `underscores_in_headers`: header names with `_` are passed on.
    pub underscores: bool,
}

/// Turns the client's request into the upstream's: same method, path, query, headers
/// and streamed body, addressed to the upstream.
pub(crate) fn prepare(
    req: Request<Incoming>,
    forwarding: Forwarding,
    upstream: &config::Upstream,
    failure: ClientBodyFailure,
) -> Result<Request<UploadBody>, ProxyError> {
    let (mut parts, body) = req.into_parts();
    if parts.method == http::Method::CONNECT {
        return Err(ProxyError::BadRequest("CONNECT is not supported by a reverse proxy"));
    }
    // The edge made the request's one authority its only `Host`.
    let client_host = parts.headers.get(header::HOST).cloned();
    if parts.version == Version::HTTP_2 {
        join_cookie_headers(&mut parts.headers);
    }
    let upgrade = headers::upgrade_protocol(&parts.headers);
    headers::remove_hop_by_hop(&mut parts.headers);
    if !forwarding.underscores {
        headers::remove_underscored(&mut parts.headers);
    }
    if let Some(protocol) = upgrade {
        headers::restore_upgrade(&mut parts.headers, protocol);
    }
    let trusted = forwarding.trusted;
    headers::set_forwarded(&mut parts.headers, forwarding.client, forwarding.proto, client_host.as_ref(), trusted);
    let host = match (upstream.host_header, client_host) {
        (HostHeader::Preserve, Some(client_host)) => client_host,
        _ => upstream.url.host.clone(),
    };
    parts.headers.insert(header::HOST, host);
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = Uri::builder()
        .scheme(upstream.url.scheme.clone())
        .authority(upstream.url.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| ProxyError::BadRequest("request target cannot be forwarded"))?;
    parts.version = Version::HTTP_11;
    Ok(Request::from_parts(parts, UploadBody::new(body, failure)))
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

/// Where an upload stands, for [`super::send`]'s timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upload {
    /// The upstream asked for more and the client has not sent it yet.
    WaitingForClient,
    /// A chunk went to the upstream, which has not asked for the next one yet.
    WaitingForUpstream,
    Done,
}

/// The client's request body on its way to the upstream, streamed as it arrives. It
/// tells [`super::send`] which side it is waiting on.
pub(crate) struct UploadBody {
    /// `None` for a request sent again without its (empty) body.
    inner: Option<Incoming>,
    /// Taken by [`super::send`] to watch the upload; `None` for a body with nothing to send.
    pub(super) progress: Option<watch::Receiver<Upload>>,
    report: Option<watch::Sender<Upload>>,
    /// Counts the bytes received from the client, if set.
    received: Option<prometheus_client::metrics::counter::Counter>,
    /// Where a failure of the client's body is noted.
    failure: ClientBodyFailure,
}

impl UploadBody {
    /// Counts the body's bytes into `counter` as they arrive from the client.
    pub(crate) fn count_into(&mut self, counter: prometheus_client::metrics::counter::Counter) {
        self.received = Some(counter);
    }

    fn new(inner: Incoming, failure: ClientBodyFailure) -> Self {
        if inner.is_end_stream() {
            return UploadBody { inner: Some(inner), progress: None, report: None, received: None, failure };
        }
        let (report, progress) = watch::channel(Upload::WaitingForUpstream);
        UploadBody { inner: Some(inner), progress: Some(progress), report: Some(report), received: None, failure }
    }

    pub(super) fn empty() -> Self {
        UploadBody { inner: None, progress: None, report: None, received: None, failure: ClientBodyFailure::default() }
    }

    fn report(&self, state: Upload) {
        if let Some(report) = &self.report {
            report.send_if_modified(|current| std::mem::replace(current, state) != state);
        }
    }
}

impl Body for UploadBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        let Poll::Ready(frame) = Pin::new(inner).poll_frame(cx) else {
            self.report(Upload::WaitingForClient);
            return Poll::Pending;
        };
        match &frame {
            Some(Ok(frame)) => {
                if let Some(counter) = &self.received {
                    counter.inc_by(frame.data_ref().map_or(0, |data| data.len() as u64));
                }
            }
            Some(Err(error)) => self.failure.set(error),
            None => {}
        }
        if !matches!(frame, Some(Ok(_))) || self.is_end_stream() {
            self.report(Upload::Done);
            self.report = None;
        } else {
            self.report(Upload::WaitingForUpstream);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}
