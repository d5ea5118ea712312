//! A client connection's deadlines: how long it may sit idle between requests
//! (`limits.idle_timeout`) and how long a request head may take once it has begun
//! (`limits.header_read_timeout`), for HTTP/1.1 and HTTP/2 alike.
//!
//! The connection's reads and its requests feed one small state: a request in flight
//! stops both clocks (a response's own pace is `body_stall_timeout`'s business); the end
//! of the last one starts the idle clock; the first byte of the next HTTP/1.1 request
//! head swaps it for the head clock. HTTP/2 frames arrive whole, so only the idle clock
//! applies there: a client's PINGs do not keep an idle connection open.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

use super::request_line::LineScan;

/// The HTTP/2 connection preface starts so; an HTTP/1.1 request never does.
const H2_PREFACE_START: &[u8] = b"PRI ";

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// No request for `idle_timeout`: the connection is closed gracefully.
    Idle,
    /// A request head began and was not complete within `header_read_timeout`.
    Head,
}

#[derive(Debug, Clone, Copy)]
struct State {
    in_flight: usize,
    /// When the connection last became idle.
    idle_since: Instant,
    /// When the request head being read began, if one has.
    head_since: Option<Instant>,
    /// Whether any bytes have arrived yet.
    started: bool,
    http2: bool,
}

/// The shared clock of one connection, and its request lines; cheap to clone.
#[derive(Clone)]
pub(super) struct Clock(watch::Sender<State>, Arc<Mutex<LineScan>>);

impl Clock {
    /// A clock for a connection accepted now: its first request head is timed from the
    /// accept, as nginx's `client_header_timeout` does.
    pub(super) fn accepted() -> Clock {
        let now = Instant::now();
        let state = State { in_flight: 0, idle_since: now, head_since: Some(now), started: false, http2: false };
        Clock(watch::channel(state).0, Arc::default())
    }

    /// Whether the HTTP/1 request `method target` came with a `#fragment` in its line.
    pub(super) fn had_fragment(&self, method: &http::Method, uri: &http::Uri) -> bool {
        self.lines().had_fragment(method, uri)
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, LineScan> {
        self.1.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks a request as in flight until the returned guard is dropped (with the
    /// response body, so a streaming response counts until its last byte).
    pub(super) fn request(&self) -> InFlight {
        self.0.send_modify(|s| {
            s.in_flight += 1;
            s.head_since = None;
        });
        InFlight(self.clone())
    }

    fn bytes_arrived(&self, first: &[u8]) {
        self.lines().feed(first);
        self.0.send_if_modified(|s| {
            if !s.started {
                s.started = true;
                s.http2 = first.starts_with(H2_PREFACE_START);
            }
            let head_begins = s.in_flight == 0 && s.head_since.is_none() && !s.http2;
            if head_begins {
                s.head_since = Some(Instant::now());
            }
            head_begins
        });
    }

    /// Resolves when a deadline passes: with `idle_timeout` and `header_read_timeout`.
    pub(super) async fn expired(&self, idle_timeout: Duration, header_read_timeout: Duration) -> Expired {
        let mut changes = self.0.subscribe();
        loop {
            let state = *changes.borrow_and_update();
            let next = match (state.in_flight, state.head_since) {
                (0, Some(head)) if !state.http2 => Some((head + header_read_timeout, Expired::Head)),
                (0, _) => Some((state.idle_since + idle_timeout, Expired::Idle)),
                _ => None,
            };
            match next {
                Some((at, expired)) if at <= Instant::now() => return expired,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        _ = changes.changed() => {}
                    }
                }
                // The sender lives as long as `self`: `changed` cannot fail here.
                None => {
                    let _ = changes.changed().await;
                }
            }
        }
    }

    /// Wraps the connection's I/O so that its reads move the clock.
    pub(super) fn watch<I>(&self, io: I) -> Watched<I> {
        Watched { io, clock: self.clone() }
    }
}

/// A request in flight; dropping it ends the request.
pub(super) struct InFlight(Clock);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut idle = false;
        self.0.0.send_modify(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.in_flight == 0 {
                s.idle_since = Instant::now();
                idle = true;
            }
        });
        if idle {
            self.0.lines().due();
        }
    }
}

/// A connection's I/O, telling its clock when bytes arrive.
pub(super) struct Watched<I> {
    io: I,
    clock: Clock,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_arrived(&buf.filled()[before..]);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(60);
    const HEAD: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_silent_new_connection_gets_the_head_timeout() {
        let clock = Clock::accepted();
        let start = Instant::now();
        assert_eq!(clock.expired(IDLE, HEAD).await, Expired::Head);
        assert_eq!(start.elapsed(), HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn between_requests_the_idle_clock_runs_until_a_head_begins() {
        let clock = Clock::accepted();
        drop(clock.request());
        let idle_from = Instant::now();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let expired = tokio::spawn({
            let clock = clock.clone();
            async move { (clock.expired(IDLE, HEAD).await, Instant::now()) }
        });
        tokio::task::yield_now().await;
        assert_eq!(expired.await.unwrap(), (Expired::Idle, idle_from + IDLE));

        clock.bytes_arrived(b"GET / HT");
        let head_from = Instant::now();
        assert_eq!(clock.expired(IDLE, HEAD).await, Expired::Head);
        assert_eq!(Instant::now(), head_from + HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_stops_both_clocks() {
        let clock = Clock::accepted();
        let request = clock.request();
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move { clock.expired(IDLE, HEAD).await }
        });
        tokio::time::sleep(IDLE * 10).await;
        assert!(!waiting.is_finished(), "no deadline while a response is in flight");
        let ended = Instant::now();
        drop(request);
        assert_eq!(waiting.await.unwrap(), Expired::Idle);
        assert_eq!(Instant::now(), ended + IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_only_have_the_idle_clock() {
        let clock = Clock::accepted();
        clock.bytes_arrived(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        drop(clock.request());
        clock.bytes_arrived(b"\0\0\x08\x06\0\0\0\0\0ping!ping");
        let idle_from = Instant::now();
        assert_eq!(clock.expired(IDLE, HEAD).await, Expired::Idle);
        assert_eq!(Instant::now(), idle_from + IDLE);
    }
}
