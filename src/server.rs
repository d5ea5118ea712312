//! The listener: accepts connections, serves HTTP/1.1 and HTTP/2 on each, and shuts down
//! gracefully, letting in-flight requests finish within the grace period.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::proxy::Proxy;

/// How long to pause after a failed `accept` (e.g. out of file descriptors) before trying
/// again, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds the proxy's listening socket.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })
}

/// Serves `listener` until `shutdown` completes, then drains connections for at most
/// `grace`.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>, shutdown: impl Future<Output = ()>, grace: Duration) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => serve_connection(stream, peer, Arc::clone(&proxy), &graceful),
                Err(error) => {
                    warn!(%error, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    info!(open_connections = graceful.count(), "shutting down: listener closed, finishing in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => info!("all connections finished"),
        () = tokio::time::sleep(grace) => warn!(grace = ?grace, "grace period over; closing the remaining connections"),
    }
}

fn serve_connection(stream: TcpStream, peer: SocketAddr, proxy: Arc<Proxy>, graceful: &GracefulShutdown) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let proxy = Arc::clone(&proxy);
        async move { Ok::<_, Infallible>(proxy.handle(req, peer).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A timer enables hyper's limit on how long a request head may take to arrive.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            debug!(%peer, %error, "connection ended with an error");
        }
    });
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
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot set up the upstream client: {0}")]
    Client(#[source] std::io::Error),
}

/// A proxy serving in the background: its address and the means to stop it.
pub struct RunningProxy {
    local_addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningProxy {
    /// The address the proxy listens on (useful when the config says port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight requests finish within the grace period, and
    /// returns once the proxy has stopped.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Binds `config.listen` and serves in a background task until [`RunningProxy::shutdown`].
pub async fn start(config: crate::config::Config) -> Result<RunningProxy, StartError> {
    let listener = bind(config.listen).await?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let grace = config.shutdown_grace_period;
    let proxy = Arc::new(Proxy::new(config).map_err(StartError::Client)?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        proxy,
        async move {
            let _ = stopped.await;
        },
        grace,
    ));
    Ok(RunningProxy { local_addr, stop, task })
}
