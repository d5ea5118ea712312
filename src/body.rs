//! The response body the proxy hands to hyper: passed through untouched, rewritten, or a
//! short error page, wrapped so the access line is written when it ends.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::inject::Skip;
use invent_rewrite::RewriteBody;

use crate::error::BoxError;
use crate::telemetry::AccessLog;
use crate::upstream::InFlight;

/// The three ways a response body can go.
pub enum ProxyBody {
    /// The upstream's body, byte for byte: no copy, no parsing.
    Passthrough(Incoming),
    /// An HTML page with the widget inserted as it streams.
    Rewritten(Box<RewriteBody<Incoming>>),
    /// A body the proxy made itself (error pages).
    Local(Full<Bytes>),
}

impl ProxyBody {
    fn injected(&self) -> bool {
        matches!(self, ProxyBody::Rewritten(body) if body.injected())
    }

    /// Bytes taken from the upstream so far, where they can run ahead of the output.
    fn received(&self) -> u64 {
        match self {
            ProxyBody::Rewritten(body) => body.received(),
            _ => 0,
        }
    }

    fn completed_own_widget(&self) -> bool {
        matches!(self, ProxyBody::Rewritten(body) if body.completed_own_widget())
    }

    /// Why a body that was set up for rewriting ended without the widget.
    fn skip_reason(&self) -> Option<Skip> {
        match self {
            ProxyBody::Rewritten(body) if body.refused_charset().is_some() => {
                Some(Skip::Charset(body.refused_charset()))
            }
            ProxyBody::Rewritten(body) if !body.injected() && body.bailed_out() => Some(Skip::RewriteFailed),
            ProxyBody::Rewritten(body) if !body.injected() => Some(Skip::Fragment),
            _ => None,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Passthrough(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ProxyBody::Rewritten(body) => Pin::new(body.as_mut()).poll_frame(cx),
            ProxyBody::Local(body) => Pin::new(body).poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Passthrough(body) => body.is_end_stream(),
            ProxyBody::Rewritten(body) => body.is_end_stream(),
            ProxyBody::Local(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Passthrough(body) => body.size_hint(),
            ProxyBody::Rewritten(body) => body.size_hint(),
            ProxyBody::Local(body) => body.size_hint(),
        }
    }
}

/// A [`ProxyBody`] that counts what it delivers and writes the access line once, when the
/// body ends, fails, or is dropped because the client went away.
pub struct LoggedBody {
    inner: ProxyBody,
    log: AccessLog,
    bytes: u64,
    complete: bool,
    /// Counted as in flight until the body ends or is dropped.
    _in_flight: InFlight,
    /// How long the body may wait for its next bytes, and the timer running while it does.
    stall_limit: Duration,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Upstream bytes taken when the timer was last started: bytes that arrive but make
    /// no output yet (a long tag the rewriter holds) are not a stall.
    received: u64,
}

impl LoggedBody {
    pub fn new(inner: ProxyBody, log: AccessLog, in_flight: InFlight, stall_limit: Duration) -> Self {
        LoggedBody {
            inner,
            log,
            bytes: 0,
            complete: false,
            _in_flight: in_flight,
            stall_limit,
            stall: None,
            received: 0,
        }
    }

    /// Whether the body has waited past `stall_limit` for its next bytes. The timer runs
    /// only between a poll that found nothing and the next bytes, so a slow client (which
    /// leaves the body unpolled) never counts against the upstream.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let received = self.inner.received();
        if received != self.received {
            self.received = received;
            self.stall = None;
        }
        let limit = self.stall_limit;
        let timer = self.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).is_ready()
    }
}

/// The body's next bytes took longer than `limits.body_stall_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("no body bytes for {}: the response is ended", humantime::format_duration(*.0))]
pub struct Stalled(pub Duration);

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) else {
            if this.stalled(cx) {
                let stalled = Stalled(this.stall_limit);
                this.log.error = Some(("upstream_stall", stalled.to_string()));
                this.log.upstream_failure = Some(crate::metrics::UpstreamFailure::Timeout);
                this.stall = None;
                return Poll::Ready(Some(Err(Box::new(stalled))));
            }
            return Poll::Pending;
        };
        this.stall = None;
        match &frame {
            Some(Ok(frame)) => {
                this.bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            Some(Err(e)) => {
                // The upstream's own body failed, or decoding what it sent did — or the
                // client's request body broke and the upstream exchange with it.
                let upstream = e.downcast_ref::<hyper::Error>().is_some();
                if let Some(reason) = this.log.client_body.get() {
                    this.log.error = Some(("client_body", reason.to_owned()));
                } else {
                    let kind = if upstream { "upstream_body" } else { "upstream_coding" };
                    this.log.error = Some((kind, e.to_string()));
                    if upstream {
                        this.log.upstream_failure = Some(crate::error::classify(e.as_ref()));
                    }
                }
            }
            None => this.complete = true,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        let complete = self.complete || self.inner.is_end_stream();
        let injected = self.inner.injected();
        if complete {
            self.log.skip = self.log.skip.or(self.inner.skip_reason());
        }
        self.log.own_widget = self.inner.completed_own_widget();
        self.log.emit(self.bytes, injected, complete);
    }
}
