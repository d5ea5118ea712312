//! The listener: accepts connections, serves HTTP/1.1 and HTTP/2 on each, and shuts down
//! gracefully, letting in-flight requests finish within the grace period.

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

use crate::config::Limits;
use crate::deadline::{Clock, Expired};
use crate::live::{Live, Sites};
use crate::proxy::Peer;
use crate::workers::Workers;

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
pub async fn bind(addr: SocketAddr, key: &'static str) -> Result<TcpListener, StartError> {
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
pub struct Listeners {
    pub plain: TcpListener,
    pub tls: Option<(TcpListener, TlsAcceptor)>,
}

/// What a reload changes in the listeners; a listener replaced is closed, its open
/// connections untouched.
pub struct Rebind {
    plain: Option<TcpListener>,
    tls: TlsRebind,
    /// Told once the listeners have changed.
    applied: Option<tokio::sync::oneshot::Sender<()>>,
}

enum TlsRebind {
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
pub async fn serve(
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
        let proxy = live.current();
        let fragment = req.version() != http::Version::HTTP_2 && requests.had_fragment(req.method(), req.uri());
        let in_flight = requests.request();
        async move {
            let response = proxy.handle(req, peer, fragment).await;
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

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { key: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot set up the upstream client: {0}")]
    Client(#[source] std::io::Error),
    #[error("cannot start the worker threads: {0}")]
    Workers(#[source] std::io::Error),
    /// Identity could not be set up (a `jwks_url` that cannot be loaded, say).
    #[error("{0}")]
    Identity(String),
}

/// A proxy serving in the background: its addresses and the means to stop it.
pub struct RunningProxy {
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    admin: Option<tokio::task::JoinHandle<()>>,
    live: Arc<Live>,
    rebinds: tokio::sync::mpsc::Sender<Rebind>,
    /// The addresses the running config names (port 0 stays 0), to see what a reload moves.
    configured: Addresses,
    /// How many workers serve: fixed at start-up.
    workers: usize,
}

/// The listener addresses a config names.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Addresses {
    listen: SocketAddr,
    tls: Option<SocketAddr>,
    admin: Option<SocketAddr>,
}

impl Addresses {
    fn of(config: &crate::config::Config) -> Self {
        Addresses {
            listen: config.listen,
            tls: config.listen_tls.as_ref().map(|tls| tls.address),
            admin: config.admin.as_ref().map(|admin| admin.listen),
        }
    }
}

impl RunningProxy {
    /// The address the proxy listens on (useful when the config says port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the HTTPS listener, if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Swaps in a new config for the requests that arrive from now on (see [`Live::reload`]).
    /// A listener whose address changed is bound anew first (a failure rejects the reload)
    /// and the old one closed; the others stay open. The HTTPS certificate is the new
    /// config's.
    pub async fn reload(&mut self, mut config: crate::config::Config) -> Result<(), StartError> {
        // The pools are made for the workers that run.
        if config.limits.workers != self.workers {
            warn!(running = self.workers, configured = config.limits.workers, "limits.workers takes effect on restart");
        }
        config.keep_workers(self.workers);
        let addresses = Addresses::of(&config);
        let bound = self.bind_moved(&config).await;
        let (rebind, admin) = bound.inspect_err(|error| self.live.failed(error))?;
        self.live.reload(config).await?;
        self.local_addr = rebind.plain.as_ref().and_then(|l| l.local_addr().ok()).unwrap_or(self.local_addr);
        if let TlsRebind::Replace(tls) = &rebind.tls {
            self.tls_addr = tls.as_ref().and_then(|(l, _)| l.local_addr().ok());
        }
        let (applied, done) = tokio::sync::oneshot::channel();
        if self.rebinds.send(Rebind { applied: Some(applied), ..rebind }).await.is_ok() {
            let _ = done.await;
        }
        if let Some(admin) = admin {
            if let Some(task) = self.admin.take() {
                task.abort();
            }
            self.admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
            self.admin = admin.map(|listener| tokio::spawn(crate::admin::serve(listener, Arc::clone(&self.live))));
        }
        self.configured = addresses;
        Ok(())
    }

    /// Binds the listeners whose address `config` changes. The admin listener: `None` to
    /// keep it, `Some(None)` to close it.
    async fn bind_moved(
        &self,
        config: &crate::config::Config,
    ) -> Result<(Rebind, Option<Option<TcpListener>>), StartError> {
        let now = Addresses::of(config);
        let plain = if now.listen == self.configured.listen { None } else { Some(bind(now.listen, "listen").await?) };
        let tls = match (&config.listen_tls, self.configured.tls) {
            (None, None) => TlsRebind::Keep,
            (None, Some(_)) => TlsRebind::Replace(None),
            (Some(tls), Some(old)) if tls.address == old => {
                TlsRebind::Acceptor(TlsAcceptor::from(Arc::clone(&tls.server_config)))
            }
            (Some(tls), _) => {
                let listener = bind(tls.address, "listen_tls.address").await?;
                TlsRebind::Replace(Some((listener, TlsAcceptor::from(Arc::clone(&tls.server_config)))))
            }
        };
        let admin = match (now.admin, self.configured.admin) {
            (new, old) if new == old => None,
            (None, _) => Some(None),
            (Some(addr), _) => Some(Some(bind(addr, "admin.listen").await?)),
        };
        Ok((Rebind { plain, tls, applied: None }, admin))
    }

    /// Counts and logs a reload rejected before it could be tried (a config that does not
    /// load); the running config keeps serving.
    pub fn reload_failed(&self, reason: &dyn std::fmt::Display) {
        self.live.failed(reason);
    }

    /// The address of the admin listener, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Stops accepting, lets in-flight requests finish within the grace period (the admin
    /// listener answers `/readyz` with 503 meanwhile), and returns once the proxy has
    /// stopped.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        if let Some(admin) = self.admin {
            admin.abort();
        }
    }
}

/// Binds `listen` (and `listen_tls`) and serves in a background task until
/// [`RunningProxy::shutdown`].
pub async fn start(config: crate::config::Config) -> Result<RunningProxy, StartError> {
    let plain = bind(config.listen, "listen").await?;
    let local_addr =
        plain.local_addr().map_err(|source| StartError::Bind { key: "listen", addr: config.listen, source })?;
    let tls = match &config.listen_tls {
        None => None,
        Some(tls) => {
            let listener = bind(tls.address, "listen_tls.address").await?;
            Some((listener, TlsAcceptor::from(Arc::clone(&tls.server_config))))
        }
    };
    let tls_addr = tls.as_ref().and_then(|(listener, _)| listener.local_addr().ok());
    let admin = match &config.admin {
        Some(admin) => Some(bind(admin.listen, "admin.listen").await?),
        None => None,
    };
    let admin_addr = admin.as_ref().and_then(|listener| listener.local_addr().ok());
    let grace = config.shutdown_grace_period;
    let limits = config.limits.clone();
    let configured = Addresses::of(&config);
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let live = Arc::new(Live::new(Sites::start(config, Arc::clone(&metrics)).await?, metrics));
    let worker_count = limits.workers;
    let workers = Workers::start(worker_count).await.map_err(StartError::Workers)?;
    let admin = admin.map(|listener| tokio::spawn(crate::admin::serve(listener, Arc::clone(&live))));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let (rebinds, rebind_requests) = tokio::sync::mpsc::channel(1);
    let listeners = Listeners { plain, tls };
    let serving = serve(listeners, (Arc::clone(&live), workers), rebind_requests, stopped, (grace, limits));
    let task = tokio::spawn(serving);
    Ok(RunningProxy {
        local_addr,
        tls_addr,
        admin_addr,
        stop,
        task,
        admin,
        live,
        rebinds,
        configured,
        workers: worker_count,
    })
}
