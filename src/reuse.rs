//! Keep-alive connections to the upstream that count the responses they have carried, so a
//! request that fails on a reused one before any answer can be sent again on a fresh one.
//!
//! An upstream may close an idle keep-alive connection at any moment (its idle timeout,
//! its cap on requests per connection, a response it ended with a close), and the proxy
//! may already be writing the next request into it: the request then fails with nothing
//! answered, through no fault of the upstream's. RFC 9112 §9.3.1 lets a client retry an
//! idempotent request then; nginx retries a request that failed on a cached keep-alive
//! connection, Go's HTTP client one that failed on a reused connection. hyper's client
//! retries only a request it had not started to write, and does not say whether a
//! connection was reused: each connection made here carries a [`Uses`] counter in its
//! `Connected` extras, which hyper hands back with each response and each error.

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use http::{Extensions, Request, Response, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};

/// How many responses one upstream connection has carried.
#[derive(Debug, Clone, Default)]
pub struct Uses(Arc<AtomicU32>);

/// Counts a response head received on its connection (one whose connector was wrapped in
/// [`Counting`]). Call it for every response, so that the next request on the connection
/// knows it is a reuse.
pub fn carried<B>(response: &Response<B>) {
    if let Some(uses) = response.extensions().get::<Uses>() {
        uses.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether the failed request went out on a connection that had already carried a
/// response: a keep-alive connection taken from the pool, not a new one.
pub fn failed_on_reused(error: &hyper_util::client::legacy::Error) -> bool {
    let Some(connected) = error.connect_info() else { return false };
    let mut extras = Extensions::new();
    connected.get_extras(&mut extras);
    extras.get::<Uses>().is_some_and(|uses| uses.0.load(Ordering::Relaxed) > 0)
}

/// Whether a request may be sent a second time: its method is idempotent (RFC 9110
/// §9.2.2) and it has no body, so nothing of it is lost by sending it once more.
pub fn replayable<B: http_body::Body>(request: &Request<B>) -> bool {
    use http::Method;
    let idempotent = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    idempotent && request.body().is_end_stream()
}

/// A connector whose connections count their responses ([`Uses`] in their extras).
#[derive(Debug, Clone)]
pub struct Counting<C>(pub C);

impl<C> tower_service::Service<Uri> for Counting<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Unpin,
{
    type Response = Counted<C::Response>;
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
pub struct Connecting<F>(F);

impl<F, T, E> Future for Connecting<F>
where
    F: Future<Output = Result<T, E>> + Unpin,
{
    type Output = Result<Counted<T>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map_ok(|io| Counted { io, uses: Uses::default() })
    }
}

/// A connection made by [`Counting`]: its bytes untouched, its [`Uses`] in its extras.
pub struct Counted<T> {
    io: T,
    uses: Uses,
}

impl<T: Connection> Connection for Counted<T> {
    fn connected(&self) -> Connected {
        self.io.connected().extra(self.uses.clone())
    }
}

impl<T: Read + Unpin> Read for Counted<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Counted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Empty, Full};

    #[test]
    fn only_idempotent_requests_without_a_body_are_replayable() {
        let empty = |method: &str| Request::builder().method(method).body(Empty::<bytes::Bytes>::new()).unwrap();
        for method in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            assert!(replayable(&empty(method)), "{method}");
        }
        for method in ["POST", "PATCH", "CONNECT", "LOCK"] {
            assert!(!replayable(&empty(method)), "{method}");
        }
        let with_body = Request::builder().method("PUT").body(Full::new(bytes::Bytes::from_static(b"x"))).unwrap();
        assert!(!replayable(&with_body), "a body may be half gone");
    }

    #[test]
    fn a_response_counts_on_its_connection() {
        let uses = Uses::default();
        let mut response = Response::new(());
        response.extensions_mut().insert(uses.clone());
        carried(&response);
        carried(&response);
        assert_eq!(uses.0.load(Ordering::Relaxed), 2);
    }
}
