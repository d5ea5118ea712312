//! Keep-alive connections to the upstream that keep count of what they carried, so a
//! request the upstream closed a reused one under, before answering anything, can be sent
//! again.
//!
//! An upstream may close an idle keep-alive connection at any moment (its idle timeout,
//! its cap on requests per connection, a response it ended with a close), and the proxy
//! may already be writing the next request into it: the request then fails with nothing
//! answered, through no fault of the upstream's. RFC 9112 §9.3.1 lets a client retry an
//! idempotent request then; nginx retries a request that failed on a cached keep-alive
//! connection, Go's HTTP client a GET, HEAD, OPTIONS or TRACE the server closed a reused
//! connection under. hyper's client retries only a request it had not started to write,
//! and does not say whether a connection was reused nor whether anything came back: each
//! connection made here carries its [`Tally`] in its `Connected` extras, which hyper hands
//! back with each response and each error.

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};

use http::{Extensions, Method, Request, Response, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What one upstream connection has carried: responses whose head arrived, and the bytes
/// read since the proxy last wrote (a request going out starts the count again).
#[derive(Debug, Clone, Default)]
pub(super) struct Tally(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    responses: AtomicU32,
    read_since_write: AtomicU64,
}

/// Counts a response head received on its connection (one whose connector was wrapped in
/// [`Counting`]). Call it for every response, so that the next request on the connection
/// knows it is a reuse.
pub(super) fn carried<B>(response: &Response<B>) {
    if let Some(tally) = response.extensions().get::<Tally>() {
        tally.0.responses.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether the failed request went out on a connection that had already carried a
/// response (a keep-alive connection taken from the pool, not a new one) and the upstream
/// sent nothing back after it: not a byte of an answer, only the close.
pub(super) fn closed_under_on_reuse(error: &hyper_util::client::legacy::Error) -> bool {
    let Some(connected) = error.connect_info() else { return false };
    let mut extras = Extensions::new();
    connected.get_extras(&mut extras);
    extras.get::<Tally>().is_some_and(|tally| {
        tally.0.responses.load(Ordering::Relaxed) > 0 && tally.0.read_since_write.load(Ordering::Relaxed) == 0
    })
}

/// Whether a request may be sent a second time: a safe method (RFC 9110 §9.2.1 — `GET`,
/// `HEAD`, `OPTIONS`, `TRACE`, which Go's client also limits this to; many apps' `PUT` and
/// `DELETE` are not as idempotent as the RFC would have them) and no body, so nothing of
/// it is lost by sending it once more.
pub(super) fn replayable<B: http_body::Body>(request: &Request<B>) -> bool {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
    safe && request.body().is_end_stream()
}

/// A TCP connector (hyper-util's `HttpConnector`) whose connections keep their [`Tally`]
/// (in their extras). It counts the bytes on the wire, under TLS for an `https://`
/// upstream: there a TLS alert that arrives after the request counts as an answer, so
/// such a request is not sent again.
#[derive(Debug, Clone)]
pub(super) struct Counting<C>(pub C);

impl<C> tower_service::Service<Uri> for Counting<C>
where
    C: tower_service::Service<Uri, Response = TokioIo<TcpStream>>,
    C::Future: Unpin,
{
    type Response = TokioIo<Counted>;
    type Error = C::Error;
    type Future = Connecting<C::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        Connecting(self.0.call(dst))
    }
}

/// A connection being made by [`Counting`].
pub(super) struct Connecting<F>(F);

impl<F, E> Future for Connecting<F>
where
    F: Future<Output = Result<TokioIo<TcpStream>, E>> + Unpin,
{
    type Output = Result<TokioIo<Counted>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map_ok(|io| TokioIo::new(Counted { stream: io.into_inner(), tally: Tally::default() }))
    }
}

/// A TCP connection made by [`Counting`]: its bytes untouched and counted, its [`Tally`]
/// in its extras.
pub(super) struct Counted {
    stream: TcpStream,
    tally: Tally,
}

impl Counted {
    fn wrote(&self, written: &Poll<std::io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.tally.0.read_since_write.store(0, Ordering::Relaxed);
        }
    }
}

impl Connection for Counted {
    fn connected(&self) -> Connected {
        self.stream.connected().extra(self.tally.clone())
    }
}

impl AsyncRead for Counted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            this.tally.0.read_since_write.fetch_add(read as u64, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncWrite for Counted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(&written);
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(&written);
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Empty, Full};

    #[test]
    fn only_safe_requests_without_a_body_are_replayable() {
        let empty = |method: &str| Request::builder().method(method).body(Empty::<bytes::Bytes>::new()).unwrap();
        for method in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(replayable(&empty(method)), "{method}");
        }
        for method in ["POST", "PATCH", "PUT", "DELETE", "CONNECT", "LOCK"] {
            assert!(!replayable(&empty(method)), "{method}");
        }
        let with_body = Request::builder().method("GET").body(Full::new(bytes::Bytes::from_static(b"x"))).unwrap();
        assert!(!replayable(&with_body), "a body may be half gone");
    }

    #[test]
    fn a_response_counts_on_its_connection() {
        let tally = Tally::default();
        let mut response = Response::new(());
        response.extensions_mut().insert(tally.clone());
        carried(&response);
        carried(&response);
        assert_eq!(tally.0.responses.load(Ordering::Relaxed), 2);
    }
}
