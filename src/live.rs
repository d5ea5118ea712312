//! The running config and live reload: a new config is built whole beside the running
//! one and swapped in; each request takes the proxy current when it arrives, so requests
//! in flight finish on the config they started with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tracing::{info, warn};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::server::StartError;

/// The proxy requests go to now, and what outlives a reload: metrics and the draining flag.
pub struct Live {
    current: RwLock<Arc<Proxy>>,
    metrics: Arc<Metrics>,
    /// Set once shutdown has begun: `/readyz` then says so.
    draining: AtomicBool,
}

impl Live {
    pub fn new(proxy: Proxy) -> Self {
        let metrics = Arc::clone(proxy.metrics());
        Live { current: RwLock::new(Arc::new(proxy)), metrics, draining: AtomicBool::new(false) }
    }

    /// The proxy a request arriving now goes through.
    pub fn current(&self) -> Arc<Proxy> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Builds a proxy from `config` exactly as start-up does (`invent-proxy check` runs the
    /// same steps) and swaps it in. On any error the running config keeps serving.
    /// Listener addresses are bound at start-up: a change to them waits for a restart.
    pub async fn reload(&self, config: Config) -> Result<(), StartError> {
        let old = self.current();
        for (key, before, after) in [
            ("listen", Some(old.config().listen), Some(config.listen)),
            (
                "listen_tls",
                old.config().listen_tls.as_ref().map(|t| t.address),
                config.listen_tls.as_ref().map(|t| t.address),
            ),
            ("admin.listen", old.config().admin.as_ref().map(|a| a.listen), config.admin.as_ref().map(|a| a.listen)),
        ] {
            if before != after {
                warn!(key, "a changed listener address takes effect on restart; the rest of the config reloads");
            }
        }
        match Proxy::start_with(config, Arc::clone(&self.metrics)).await {
            Ok(proxy) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(proxy);
                self.metrics.reloaded(true);
                info!("config reloaded: new requests use it, requests in flight finish on the old one");
                Ok(())
            }
            Err(error) => {
                self.failed(&error);
                Err(error)
            }
        }
    }

    /// Counts and logs a reload that did not happen; the running config keeps serving.
    pub fn failed(&self, reason: &dyn std::fmt::Display) {
        self.metrics.reloaded(false);
        warn!(%reason, "config reload rejected; the running config keeps serving");
    }

    /// Why the proxy should not get traffic now (for `/readyz`).
    pub fn not_ready(&self) -> Option<String> {
        if self.draining.load(Ordering::Relaxed) {
            return Some("shutting down".to_owned());
        }
        self.current().not_ready()
    }

    /// Marks the proxy as shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}
