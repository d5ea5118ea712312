//! The accept loop: binds the listening sockets, accepts connections (within
//! `max_connections`) and hands each to a worker, which serves HTTP/1.1 or HTTP/2 on it
//! with its deadlines; on shutdown, stops accepting and drains.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::StartError;
use super::deadline::{Clock, Expired};
use super::workers::Workers;
use crate::config::Limits;
use crate::pipeline::{Live, Peer};

/// How long to pause after a failed `accept` (e.g. out of file descriptors) before trying
/// again, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long a client may take to complete its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections may wait for `accept`: a burst of new clients queues instead of
/// being dropped (the standard library's 128 is too few for one; nginx uses 511). Linux
/// caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listening socket; `key` is the config key the address comes from.
pub(crate) async fn bind(addr: SocketAddr, key: &'static str) -> Result<TcpListener, StartError> {
    let listen = || {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        // A restarted proxy can bind while the old one's connections are in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|source| StartError::Bind { key, addr, source })
}

/// The proxy's bound sockets: plain HTTP, and HTTPS if `listen_tls` is configured.
pub(super) struct Listeners {
    pub(super) plain: TcpListener,
    pub(super) tls: Option<(TcpListener, TlsAcceptor)>,
}

/// What a reload changes in the listeners; a listener replaced is closed, its open
/// connections untouched.
pub(super) struct Rebind {
    pub(super) plain: Option<TcpListener>,
    pub(super) tls: TlsRebind,
    /// Told once the listeners have changed.
    pub(super) applied: Option<tokio::sync::oneshot::Sender<()>>,
}

pub(super) enum TlsRebind {
    Keep,
    /// Same address, the certificate as the new config has it.
    Acceptor(TlsAcceptor),
    Replace(Option<(TcpListener, TlsAcceptor)>),
}

impl Listeners {
    fn apply(&mut self, mut rebind: Rebind) {
        let applied = rebind.applied.take();
        self.change(rebind);
        if let Some(applied) = applied {
            let _ = applied.send(());
        }
    }

    fn change(&mut self, rebind: Rebind) {
        if let Some(plain) = rebind.plain {
            self.plain = plain;
        }
        match rebind.tls {
            TlsRebind::Keep => {}
            TlsRebind::Acceptor(acceptor) => {
                if let Some((_, current)) = &mut self.tls {
                    *current = acceptor;
                }
            }
            TlsRebind::Replace(tls) => self.tls = tls,
        }
    }
}

/// Serves `listeners` until `shutdown` completes, then drains connections for at most
/// `grace`. Connections are accepted here and served on `workers`, which stop at the end.
pub(super) async fn serve(
    mut listeners: Listeners,
    (live, workers): (Arc<Live>, Workers),
    mut rebinds: tokio::sync::mpsc::Receiver<Rebind>,
    shutdown: impl Future<Output = ()>,
    (grace, limits): (Duration, Limits),
) {
    // Every connection holds a receiver: set to true, it finishes; once all are gone,
    // everything has drained.
    let (drain, draining) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    // A connection is accepted only with a permit: past `max_connections`, new ones wait
    // in the listen backlog until one closes.
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        if permits.available_permits() == 0 {
            debug!(max = limits.max_connections, "limits.max_connections reached: new connections wait");
        }
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            Some(rebind) = rebinds.recv() => {
                listeners.apply(rebind);
                continue;
            }
            () = &mut shutdown => break,
        };
        let (accepted, tls) = tokio::select! {
            accepted = listeners.plain.accept() => (accepted, None),
            accepted = accept_tls(&listeners.tls) => (accepted, listeners.tls.as_ref().map(|(_, acceptor)| acceptor.clone())),
            Some(rebind) = rebinds.recv() => {
                listeners.apply(rebind);
                continue;
            }
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let connection = Connection {
                    permit,
                    drain: draining.clone(),
                    timing: Timing {
                        idle_timeout: limits.idle_timeout,
                        header_read_timeout: limits.header_read_timeout,
                        max_header_size: limits.max_header_size,
                    },
                };
                serve_connection(&workers, (stream, peer), tls, Arc::clone(&live), connection);
            }
            Err(error) => {
                warn!(%error, "accept failed; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listeners);
    drop(draining);
    live.start_draining();
    let _ = drain.send(true);
    info!(open_connections = drain.receiver_count(), "shutting down: listeners closed, finishing in-flight requests");
    tokio::select! {
        () = drain.closed() => info!("all connections finished"),
        () = tokio::time::sleep(grace) => warn!(grace = ?grace, "grace period over; closing the remaining connections"),
    }
    workers.stop().await;
}

async fn accept_tls(tls: &Option<(TcpListener, TlsAcceptor)>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match tls {
        Some((listener, _)) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// What a connection carries from the accept loop: its place under `max_connections`,
/// the shutdown signal, and its limits.
struct Connection {
    permit: tokio::sync::OwnedSemaphorePermit,
    drain: Drain,
    timing: Timing,
}

/// True once the proxy is shutting down.
type Drain = tokio::sync::watch::Receiver<bool>;

/// How long a connection may idle, how long and how large a request head may be.
#[derive(Clone, Copy)]
struct Timing {
    idle_timeout: Duration,
    header_read_timeout: Duration,
    max_header_size: usize,
}

/// Serves one connection in a task of one of the `workers`: after the TLS handshake, if
/// any, HTTP/1.1 or HTTP/2 (by ALPN over TLS, by preface in the clear).
fn serve_connection(
    workers: &Workers,
    (stream, addr): (TcpStream, SocketAddr),
    tls: Option<TlsAcceptor>,
    live: Arc<Live>,
    connection: Connection,
) {
    let _ = stream.set_nodelay(true);
    // The socket moves to the worker's own event loop.
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(error) => return debug!(%addr, %error, "accepted connection lost before it could be served"),
    };
    workers.spawn(async move {
        let _open = live.metrics().connection_opened();
        let Connection { permit: _permit, drain, timing } = connection;
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(error) => return debug!(%addr, %error, "accepted connection lost before it could be served"),
        };
        let Some(acceptor) = tls else {
            let peer = Peer { addr, tls: false };
            return serve_http(stream, peer, live, drain, timing).await;
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => {
                let peer = Peer { addr, tls: true };
                serve_http(stream, peer, live, drain, timing).await;
            }
            Ok(Err(error)) => debug!(%addr, %error, "TLS handshake failed"),
            Err(_) => debug!(%addr, "TLS handshake timed out"),
        }
    });
}

/// Serves HTTP on one connection until it ends, a deadline of `timing` passes, or the
/// proxy shuts down (then in-flight requests finish first).
async fn serve_http<I>(io: I, peer: Peer, live: Arc<Live>, mut drain: Drain, timing: Timing)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let clock = Clock::accepted();
    let requests = clock.clone();
    // Each request goes through the config current when it arrives, even on a
    // connection opened before a reload; it is in flight until its body has been sent.
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let sites = live.current();
        let fragment = req.version() != http::Version::HTTP_2 && requests.had_fragment(req.method(), req.uri());
        let in_flight = requests.request();
        async move {
            // Boxed: hyper moves the service's future (into its slot for the request in
            // flight), and the pipeline's is kilobytes.
            let response = Box::pin(sites.handle(req, peer, fragment)).await;
            Ok::<_, Infallible>(response.map(|body| {
                body.map_frame(move |frame| {
                    let _in_flight = &in_flight;
                    frame
                })
            }))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The request-head and idle deadlines are the clock's: hyper's own head timer would
    // also run while a keep-alive connection waits for its next request.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None).max_buf_size(timing.max_header_size);
    let max_header_list = u32::try_from(timing.max_header_size).unwrap_or(u32::MAX);
    builder.http2().timer(TokioTimer::new()).max_header_list_size(max_header_list);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(clock.watch(io)), service);
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(error) = ended {
                    debug!(peer = %peer.addr, %error, "connection ended with an error");
                }
                return;
            }
            _ = drain.wait_for(|draining| *draining), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            expired = clock.expired(timing.idle_timeout, timing.header_read_timeout), if !closing => match expired {
                Expired::Idle => {
                    debug!(peer = %peer.addr, "idle timeout: closing the connection");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                Expired::Head => {
                    debug!(peer = %peer.addr, "request head timeout: dropping the connection");
                    return;
                }
            },
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => info!("SIGINT received"),
            () = terminate => info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
