//! The response body the proxy hands to hyper: passed through untouched, rewritten, or a
//! short error page — carrying the request's [`Context`], whose access line it writes
//! when it ends, fails, or is dropped because the client went away.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use invent_rewrite::RewriteBody;

use super::context::Context;
use crate::error::{BoxError, ProxyError};
use crate::metrics::PageOutcome;
use crate::outcome::Skip;
use crate::upstream::InFlight;

/// The three ways a response body can go.
pub(super) enum ProxyBody {
    /// The upstream's body, byte for byte: no copy, no parsing.
    Passthrough(Incoming),
    /// An HTML page with the widget inserted as it streams.
    Rewritten(Box<RewriteBody<Incoming>>),
    /// A body the proxy made itself (error pages).
    Local(Full<Bytes>),
}

impl ProxyBody {
    /// Bytes taken from the upstream so far, where they can run ahead of the output.
    fn received(&self) -> u64 {
        match self {
            ProxyBody::Rewritten(body) => body.received(),
            _ => 0,
        }
    }

    /// What the rewriter put into the page, if it did.
    fn inserted(&self) -> Option<invent_rewrite::Inserted> {
        match self {
            ProxyBody::Rewritten(body) => body.inserted(),
            _ => None,
        }
    }

    /// What became of the page, and why it got no widget if it was set up for one.
    /// `complete`: the body was sent whole.
    fn page(&self, complete: bool) -> (PageOutcome, Option<Skip>) {
        let ProxyBody::Rewritten(body) = self else { return (PageOutcome::Passed(None), None) };
        if body.completed_own_widget() {
            return (PageOutcome::Completed, None);
        }
        if body.injected() {
            return (PageOutcome::Injected, None);
        }
        let skip = match body.refused_charset() {
            _ if !complete => None,
            Some(charset) => Some(Skip::Charset(Some(charset))),
            None if body.bailed_out() => Some(Skip::RewriteFailed),
            None => Some(Skip::Fragment),
        };
        (PageOutcome::Passed(skip), skip)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
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

/// A [`ProxyBody`] that counts what it delivers and writes the request's access line once.
pub(crate) struct LoggedBody {
    inner: ProxyBody,
    context: Context,
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
    pub(super) fn new(inner: ProxyBody, context: Context, in_flight: InFlight, stall_limit: Duration) -> Self {
        LoggedBody {
            inner,
            context,
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
    fn stalled(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let received = self.inner.received();
        if received != self.received {
            self.received = received;
            self.stall = None;
        }
        let limit = self.stall_limit;
        let timer = self.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).is_ready()
    }

    /// The body phase's failure: the upstream's body broke or its coding turned corrupt —
    /// unless the client's own request body failed first, which broke the exchange.
    fn failure(&self, error: BoxError) -> ProxyError {
        if let Some(reason) = self.context.client_body.get() {
            return ProxyError::ClientBody(reason.to_owned());
        }
        match error.downcast::<ProxyError>() {
            Ok(error) => *error,
            Err(error) if error.is::<hyper::Error>() => ProxyError::UpstreamBody(error),
            Err(error) => ProxyError::UpstreamCoding(error),
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) else {
            if this.stalled(cx) {
                let stalled = ProxyError::UpstreamStall(this.stall_limit);
                this.context.failed(&stalled);
                this.stall = None;
                return Poll::Ready(Some(Err(Box::new(stalled))));
            }
            return Poll::Pending;
        };
        this.stall = None;
        match frame {
            Some(Ok(frame)) => {
                this.bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => {
                let failure = this.failure(error);
                this.context.failed(&failure);
                Poll::Ready(Some(Err(Box::new(failure))))
            }
            None => {
                this.complete = true;
                Poll::Ready(None)
            }
        }
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
        let (page, skip) = self.inner.page(complete);
        self.context.skip = self.context.skip.or(skip);
        let page = match page {
            PageOutcome::Passed(None) => PageOutcome::Passed(self.context.skip),
            page => page,
        };
        self.context.emit(self.bytes, page, complete);
        if self.context.recording() {
            let inserted = self.inner.inserted();
            self.context.send_record(page, inserted);
        }
    }
}
