//! The running config and live reload: a new config is built whole beside the running
//! one and swapped in; each request takes the proxy current when it arrives, so requests
//! in flight finish on the config they started with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tracing::{info, warn};

use http::{Request, Response};
use hyper::body::Incoming;

use super::SiteError;
use super::body::LoggedBody;
use super::context::Peer;
use super::edge;
use super::proxy::Proxy;
use super::record::{Recorder, Routed};
use crate::config::Config;
use crate::config::sites::request_host;
use crate::error::ProxyError;
use crate::metrics::Metrics;

/// The proxies of one config, one per site, and the site an unknown host goes to.
pub(crate) struct Sites {
    sites: Vec<Proxy>,
    default: Option<usize>,
}

impl Sites {
    /// Builds each site's proxy, counting into `metrics`.
    pub(crate) async fn start(config: Config, metrics: Arc<Metrics>) -> Result<Sites, SiteError> {
        let process = Arc::new(config.process);
        let mut sites = Vec::with_capacity(config.sites.len());
        for site in config.sites {
            sites.push(Proxy::start(site, Arc::clone(&process), Arc::clone(&metrics)).await?);
        }
        Ok(Sites { sites, default: config.default_site })
    }

    /// The site that serves `host` (a request's `Host`, port and case ignored): its index,
    /// and how it was chosen.
    fn route(&self, host: Option<&str>) -> Option<(usize, Routed)> {
        if let [only] = self.sites.as_slice()
            && only.site().hosts.is_empty()
        {
            return Some((0, Routed::Only));
        }
        let host = host.map(request_host);
        // An exact name wins over any wildcard, and a longer wildcard over a shorter one.
        let best = host.and_then(|host| {
            self.sites
                .iter()
                .enumerate()
                .flat_map(|(index, proxy)| {
                    let hosts = proxy.site().hosts.iter();
                    hosts.filter(|h| h.matches(&host)).map(move |h| (h.specificity(), index))
                })
                .max_by_key(|(specificity, _)| *specificity)
                .map(|(_, index)| (index, Routed::Host))
        });
        best.or_else(|| self.default.map(|index| (index, Routed::Default)))
    }

    /// Proxies a request through its site's proxy. The request is checked at the edge
    /// first ([`edge::admit`]: a refusal is a 400, or 501); its one authority — the
    /// target's (HTTP/2, absolute-form HTTP/1.1), else `Host` — chooses the site, and a
    /// host no site serves gets `421`. `fragment`: the client's request line had one.
    pub(crate) async fn handle(&self, req: Request<Incoming>, peer: Peer, fragment: bool) -> Response<LoggedBody> {
        self.dispatch(req, peer, fragment, None).await
    }

    /// [`Sites::handle`], with what the pipeline decides sent to `recorder` (for
    /// `explain`): the same code, the same decisions, told.
    pub(crate) async fn handle_recorded(
        &self,
        req: Request<Incoming>,
        peer: Peer,
        recorder: Recorder,
    ) -> Response<LoggedBody> {
        self.dispatch(req, peer, false, Some(recorder)).await
    }

    async fn dispatch(
        &self,
        mut req: Request<Incoming>,
        peer: Peer,
        fragment: bool,
        mut recorder: Option<Recorder>,
    ) -> Response<LoggedBody> {
        let host = match edge::admit(&mut req, fragment) {
            Ok(host) => host,
            Err(refusal) => return self.first().refuse(req, peer, refusal.into(), recorder).await,
        };
        let routed = self.route(host.as_ref().and_then(|h| h.to_str().ok()));
        match routed.and_then(|(index, how)| Some((index, how, self.sites.get(index)?))) {
            Some((index, how, proxy)) => {
                if let Some(recorder) = &mut recorder {
                    recorder.routed(index, how);
                }
                proxy.handle(req, peer, recorder).await
            }
            None => self.first().refuse(req, peer, ProxyError::UnknownHost, recorder).await,
        }
    }

    /// Each site's proxy.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Proxy> {
        self.sites.iter()
    }

    fn first(&self) -> &Proxy {
        &self.sites[0]
    }

    /// The first reason any site is not ready.
    fn not_ready(&self) -> Option<String> {
        self.sites.iter().find_map(Proxy::not_ready)
    }
}

/// The proxy requests go to now, and what outlives a reload: metrics and the draining flag.
pub(crate) struct Live {
    current: RwLock<Arc<Sites>>,
    metrics: Arc<Metrics>,
    /// Set once shutdown has begun: `/readyz` then says so.
    draining: AtomicBool,
}

impl Live {
    pub(crate) fn new(sites: Sites, metrics: Arc<Metrics>) -> Self {
        Live { current: RwLock::new(Arc::new(sites)), metrics, draining: AtomicBool::new(false) }
    }

    /// The sites a request arriving now goes through.
    pub(crate) fn current(&self) -> Arc<Sites> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Builds the sites of `config` exactly as start-up does (`invent-proxy check` runs the
    /// same steps) and swaps them in. On any error the running config keeps serving.
    /// (Listeners are the listener's: see [`crate::listen::RunningProxy::reload`].)
    pub(crate) async fn reload(&self, config: Config) -> Result<(), SiteError> {
        match Sites::start(config, Arc::clone(&self.metrics)).await {
            Ok(sites) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(sites);
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
    pub(crate) fn failed(&self, reason: &dyn std::fmt::Display) {
        self.metrics.reloaded(false);
        warn!(%reason, "config reload rejected; the running config keeps serving");
    }

    /// Why the proxy should not get traffic now (for `/readyz`).
    pub(crate) fn not_ready(&self) -> Option<String> {
        if self.draining.load(Ordering::Relaxed) {
            return Some("shutting down".to_owned());
        }
        self.current().not_ready()
    }

    /// Marks the proxy as shutting down.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}
