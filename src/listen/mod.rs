//! The listener side: the listening sockets and the accept loop ([`serve`]), each
//! connection's deadlines ([`deadline`]) and request lines ([`request_line`]), the worker
//! threads that serve connections ([`workers`]), and the admin listener ([`admin`]).
//! [`start`] binds everything and runs it in the background; the [`RunningProxy`] it
//! returns reloads the config and shuts down gracefully.

mod admin;
mod deadline;
mod request_line;
mod serve;
mod workers;

pub(crate) use serve::bind;
pub use serve::shutdown_signal;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::warn;

use crate::pipeline::{Live, SiteError, Sites};
use serve::{Listeners, Rebind, TlsRebind};
use workers::Workers;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { key: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the worker threads: {0}")]
    Workers(#[source] std::io::Error),
    /// A site could not be set up (its upstream client, a `jwks_url` that cannot be loaded).
    #[error(transparent)]
    Site(#[from] SiteError),
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
        let process = &config.process;
        Addresses {
            listen: process.listen,
            tls: process.listen_tls.as_ref().map(|tls| tls.address),
            admin: process.admin.as_ref().map(|admin| admin.listen),
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
        let limits = &mut config.process.limits;
        if limits.workers != self.workers {
            warn!(running = self.workers, configured = limits.workers, "limits.workers takes effect on restart");
        }
        limits.workers = self.workers;
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
            self.admin = admin.map(|listener| tokio::spawn(admin::serve(listener, Arc::clone(&self.live))));
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
        let tls = match (&config.process.listen_tls, self.configured.tls) {
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
    let process = &config.process;
    let plain = bind(process.listen, "listen").await?;
    let local_addr =
        plain.local_addr().map_err(|source| StartError::Bind { key: "listen", addr: process.listen, source })?;
    let tls = match &process.listen_tls {
        None => None,
        Some(tls) => {
            let listener = bind(tls.address, "listen_tls.address").await?;
            Some((listener, TlsAcceptor::from(Arc::clone(&tls.server_config))))
        }
    };
    let tls_addr = tls.as_ref().and_then(|(listener, _)| listener.local_addr().ok());
    let admin = match &process.admin {
        Some(admin) => Some(bind(admin.listen, "admin.listen").await?),
        None => None,
    };
    let admin_addr = admin.as_ref().and_then(|listener| listener.local_addr().ok());
    let grace = process.shutdown_grace_period;
    let limits = process.limits.clone();
    let configured = Addresses::of(&config);
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let live = Arc::new(Live::new(Sites::start(config, Arc::clone(&metrics)).await?, metrics));
    let worker_count = limits.workers;
    let workers = Workers::start(worker_count).await.map_err(StartError::Workers)?;
    let admin = admin.map(|listener| tokio::spawn(admin::serve(listener, Arc::clone(&live))));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let (rebinds, rebind_requests) = tokio::sync::mpsc::channel(1);
    let listeners = Listeners { plain, tls };
    let serving = serve::serve(listeners, (Arc::clone(&live), workers), rebind_requests, stopped, (grace, limits));
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
