//! The per-request pipeline, in phases: `plan` (does the request qualify?) → `forward`
//! (to the upstream) → `identify` (only for a page that will be rewritten) → `inject`
//! (stream the rewrite) — with one access line at the end. Upgrades (WebSocket) skip
//! the rewrite and become a byte tunnel ([`crate::upgrade`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, Request, Response, header};
use hyper::body::Incoming;

use crate::body::{LoggedBody, ProxyBody};
use crate::codec::{Coding, Decoder, Encoder};
use crate::config::Config;
use crate::error::{ClientBodyFailure, ProxyError};
use crate::headers;
use crate::identity::{Identifier, Outcome, Visitor};
use crate::inject::{self, Skip};
use crate::metrics::Metrics;
use crate::server::StartError;
use crate::telemetry::AccessLog;
use crate::upgrade;
use crate::upstream::{self, UpstreamClient};
use invent_rewrite::{Injection, RewriteBody, Sniffed, Transcode, Widget, csp};

/// Everything a request needs, built once from the config and shared by all requests.
pub struct Proxy {
    config: Config,
    client: UpstreamClient,
    /// `None` when identity is not configured: every visitor is anonymous.
    identifier: Option<Identifier>,
    widget: Arc<Widget>,
    metrics: Arc<Metrics>,
}

/// Who is on the other end of a connection, and whether it came over TLS.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub tls: bool,
}

/// What is kept of a request that qualifies for injection: the headers a session token
/// may come from (for `identify`) and its `Accept-Encoding` (for a compressed page).
struct Kept(HeaderMap);

impl Proxy {
    /// Builds the proxy: upstream client, identifier (its keys loaded) and widget markup.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        Self::start_with(config, Arc::default()).await
    }

    /// As [`Proxy::start`], counting into `metrics` (kept across reloads).
    pub async fn start_with(config: Config, metrics: Arc<Metrics>) -> Result<Self, StartError> {
        let client = upstream::client(&config.upstream, config.limits.workers).map_err(StartError::Client)?;
        invent_rewrite::selectors_ready();
        let identifier = match &config.identity {
            Some(identity) => Some(Identifier::start(identity, &config.upstream).await.map_err(StartError::Identity)?),
            None => None,
        };
        let widget = Arc::new(widget_of(&config.assistant));
        Ok(Proxy { config, client, identifier, widget, metrics })
    }

    /// Why identity cannot verify tokens now: an optional `jwks_url` that has not loaded.
    pub fn identity_keys_missing(&self) -> Option<String> {
        self.identifier.as_ref().and_then(Identifier::keys_not_loaded)
    }

    /// Why this proxy should not get traffic (for `/readyz`): a configured `jwks_url` not
    /// loaded yet. Its listeners are bound before it runs.
    pub fn not_ready(&self) -> Option<String> {
        self.identity_keys_missing().map(|reason| format!("identity.jwt.jwks_url not loaded ({reason})"))
    }

    /// What the proxy has counted.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The config this proxy runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Proxies one request. Never fails: upstream failures become 502/504 pages.
    pub async fn handle(&self, req: Request<Incoming>, peer: Peer) -> Response<LoggedBody> {
        self.answer(req, peer, None).await
    }

    /// Answers a request that is not proxied (a host no site serves: `421`; a request
    /// refused at the edge: `400`) with `error`'s page, logged and counted here.
    pub async fn refuse(&self, req: Request<Incoming>, peer: Peer, error: ProxyError) -> Response<LoggedBody> {
        self.answer(req, peer, Some(error)).await
    }

    async fn answer(
        &self,
        mut req: Request<Incoming>,
        peer: Peer,
        refused: Option<ProxyError>,
    ) -> Response<LoggedBody> {
        let in_flight = self.client.response_started();
        let request_id = headers::request_id(req.headers());
        req.headers_mut().insert(&headers::X_REQUEST_ID, request_id.clone());
        let mut log = AccessLog::start(req.method(), req.uri().path(), peer.addr, Arc::clone(&self.metrics));
        log.request_id = request_id.to_str().unwrap_or("-").to_owned();
        let http1 = req.version() < http::Version::HTTP_2;
        let result = match refused {
            None => self.respond(req, peer, &mut log).await,
            Some(error) => Err(error),
        };
        let response = result.unwrap_or_else(|err| {
            log.error = Some((err.kind(), crate::error::error_chain(&err)));
            log.upstream_failure = err.upstream_failure();
            let mut page = err.to_response();
            // After a malformed request, what follows on the connection cannot be trusted
            // to be where the next request starts: close it, as nginx does.
            if http1 && err.is_client_error() {
                page.headers_mut().insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            }
            page.map(ProxyBody::Local)
        });
        log.status = response.status().as_u16();
        let stall_limit = self.config.limits.body_stall_timeout;
        let mut response = response.map(|body| LoggedBody::new(body, log, in_flight, stall_limit));
        response.headers_mut().insert(&headers::X_REQUEST_ID, request_id);
        // The client speaks to this proxy, not to the upstream: an HTTP/1.0 upstream must
        // not turn the client's connection into HTTP/1.0 (hyper answers in the client's
        // own version on HTTP/2).
        *response.version_mut() = http::Version::HTTP_11;
        response
    }

    /// The pipeline's phases in order; any failure ends it with a [`ProxyError`].
    async fn respond(
        &self,
        mut req: Request<Incoming>,
        peer: Peer,
        log: &mut AccessLog,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let plan = self.plan(&req, peer);
        if plan.is_ok() && headers::accepts_html(req.headers()) {
            // A byte range of the upstream's page does not fit the rewritten page the
            // browser holds: ask for the whole page.
            req.headers_mut().remove(header::RANGE);
            req.headers_mut().remove(header::IF_RANGE);
        }
        let session = self.identifier.as_ref().and_then(|i| i.lookup_session(&req));
        let client_upgrade = upgrade::requested_protocol(req.headers()).map(|_| hyper::upgrade::on(&mut req));
        // A page's visitor is identified while the upstream prepares the page: a lookup
        // then costs the page no time of its own unless it is the slower of the two.
        let identify = std::pin::pin!(self.identify(plan.as_ref().ok()));
        let (forwarded, identified) = alongside(self.forward(req, peer, log.client_body.clone()), identify).await;
        let mut response = forwarded?;
        if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client) = client_upgrade {
                crate::workers::spawn_here(upgrade::tunnel(client, hyper::upgrade::on(&mut response)));
            }
            return Ok(response.map(ProxyBody::Passthrough));
        }
        let response = self.inject(response, &plan, identified, log).await?;
        if let (Some(identifier), Some(session)) = (&self.identifier, &session) {
            identifier.after_response(session, response.headers()).await;
        }
        Ok(response)
    }

    /// Decides from the request alone whether its response may get the widget.
    fn plan(&self, req: &Request<Incoming>, peer: Peer) -> Result<Kept, Skip> {
        inject::request_qualifies(req.method(), req.uri().path(), req.headers(), &self.config.inject)?;
        let mut kept = HeaderMap::new();
        for name in std::iter::once(&header::ACCEPT_ENCODING).chain(self.identity_headers()) {
            for value in req.headers().get_all(name) {
                kept.append(name.clone(), value.clone());
            }
        }
        if self.identifier.as_ref().is_some_and(Identifier::asks_upstream) {
            self.keep_for_lookup(req, peer, &mut kept);
        }
        Ok(Kept(kept))
    }

    /// What a lookup on the upstream sends besides the cookies, as the page request does:
    /// the visitor's `Host` and `User-Agent`, and `X-Forwarded-*` — an app that insists on
    /// HTTPS or ties sessions to a browser then answers the lookup as it answers the page.
    fn keep_for_lookup(&self, req: &Request<Incoming>, peer: Peer, kept: &mut HeaderMap) {
        let host = headers::client_host(req.headers(), req.uri());
        for name in std::iter::once(header::USER_AGENT).chain(headers::X_FORWARDED) {
            for value in req.headers().get_all(&name) {
                kept.append(name.clone(), value.clone());
            }
        }
        let proto = if peer.tls { "https" } else { "http" };
        headers::set_forwarded(kept, peer.addr.ip(), proto, host.as_ref(), self.config.trusts(peer.addr.ip()));
        if let Some(host) = host {
            kept.insert(header::HOST, host);
        }
    }

    /// Sends the request upstream and waits for the response head. A failure while the
    /// client's body was failing is the client's (400), not the upstream's.
    async fn forward(
        &self,
        req: Request<Incoming>,
        peer: Peer,
        client_body: ClientBodyFailure,
    ) -> Result<Response<Incoming>, ProxyError> {
        let trusted = self.config.trusts(peer.addr.ip());
        let request_id = req.headers().get(&headers::X_REQUEST_ID).cloned();
        let edge = (trusted, self.config.underscores_in_headers);
        let mut req = upstream::prepare((req, client_body.clone()), peer, edge, &self.config.upstream)?;
        // After `prepare`: a `Connection` header naming it must not take it away.
        if let Some(id) = request_id {
            req.headers_mut().insert(&headers::X_REQUEST_ID, id);
        }
        req.body_mut().count_into(self.metrics.received_bytes());
        let sent = upstream::send(&self.client, req, &self.config.upstream, self.metrics.upstream_retries()).await;
        match (sent, client_body.get()) {
            (Err(_), Some(reason)) => Err(ProxyError::ClientBody(reason.into())),
            (sent, _) => sent,
        }
    }

    /// The request headers identity reads (none without identity).
    fn identity_headers(&self) -> &[http::HeaderName] {
        self.identifier.as_ref().map_or(&[], Identifier::reads)
    }

    /// Who the visitor of a request that may get the widget is.
    async fn identify(&self, kept: Option<&Kept>) -> Identified {
        match (&self.identifier, kept) {
            (Some(identifier), Some(kept)) => identifier.identify(&kept.0).await,
            _ => (None, Outcome::None),
        }
    }

    /// Passes the response through, or sets it up to be rewritten as it streams. A body that
    /// qualifies is read until it shows whether it is a whole page: only a page gets the
    /// rewritten head; a fragment keeps the upstream's head and bytes.
    async fn inject(
        &self,
        mut response: Response<Incoming>,
        plan: &Result<Kept, Skip>,
        identified: Pending<'_, impl Future<Output = Identified>>,
        log: &mut AccessLog,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        if plan.is_ok() && response.status() == http::StatusCode::NOT_MODIFIED {
            inject::not_modified_headers(response.headers_mut(), self.identity_headers());
        }
        let qualified = plan.as_ref().map_err(|skip| *skip).and_then(|kept| {
            inject::response_qualifies(response.status(), response.headers()).map(|document| (kept, document))
        });
        let (kept, document) = match qualified {
            Ok(qualified) => qualified,
            Err(skip) => {
                log.skip = Some(skip);
                return Ok(response.map(ProxyBody::Passthrough));
            }
        };
        let (visitor, outcome) = identified.finish().await;
        log.identity = outcome;
        let personalised = visitor.is_some();
        let (mut parts, body) = response.into_parts();
        let injection = Injection {
            widget: Arc::clone(&self.widget),
            visitor,
            position: self.config.inject.position,
            syntax: document.syntax,
            encoding: document.encoding,
            nonce: csp::script_nonce(&parts.headers),
            max_memory: self.config.limits.rewriter_max_memory,
        };
        let transcode = transcode(document.coding, &kept.0)?;
        let reencoded = transcode.encoder.is_some();
        let mut body = RewriteBody::new(body, injection, transcode);
        if body.sniff().await.map_err(ProxyError::Upstream)? != Sniffed::NotPage {
            inject::rewrite_headers(&mut parts.headers, self.identity_headers(), personalised);
            if document.coding.is_some() {
                inject::transcoded_headers(&mut parts.headers, reencoded);
            }
            csp::allow_origins(&mut parts.headers, &self.config.inject.csp_allow);
            if let Some(length) = body.complete_len() {
                parts.headers.insert(header::CONTENT_LENGTH, length.into());
            }
        }
        Ok(Response::from_parts(parts, ProxyBody::Rewritten(Box::new(body))))
    }
}

/// The widget markup of `assistant`: its id, script and theme attributes.
fn widget_of(assistant: &crate::config::Assistant) -> Widget {
    let theme = &assistant.theme;
    let appearance = theme.appearance.map(|a| a.to_string());
    let attributes: Vec<(&str, &str)> = [
        ("theme-appearance", appearance.as_deref()),
        ("theme-button-background-color", theme.button_background_color.as_deref()),
        ("theme-button-color", theme.button_color.as_deref()),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .collect();
    Widget::new(&assistant.id, &assistant.script_url, &attributes)
}

/// The decoder for a compressed page, and the encoder if the client accepts its coding.
fn transcode(coding: Option<Coding>, request: &HeaderMap) -> Result<Transcode, ProxyError> {
    let Some(coding) = coding else { return Ok(Transcode::default()) };
    let internal = |e: std::io::Error| ProxyError::Internal(e.into());
    let decoder: Box<dyn invent_rewrite::Decode> = Box::new(Decoder::new(coding).map_err(internal)?);
    let encoder = match headers::accepts_coding(request, coding) {
        true => Some(Box::new(Encoder::new(coding).map_err(internal)?) as Box<dyn invent_rewrite::Encode>),
        false => None,
    };
    Ok(Transcode { decoder: Some(decoder), encoder })
}

/// What identification concluded for a request.
type Identified = (Option<Arc<Visitor>>, Outcome);

/// A side task run [`alongside`] the main one: done, or still to be awaited.
enum Pending<'a, F: Future> {
    Done(F::Output),
    Running(Pin<&'a mut F>),
}

impl<F: Future> Pending<'_, F> {
    /// The side task's output, waiting for it if it is still running.
    async fn finish(self) -> F::Output {
        match self {
            Pending::Done(output) => output,
            Pending::Running(future) => future.await,
        }
    }
}

/// Runs `main` to completion while also driving `side`; `side` is left half-done if
/// `main` finishes first (and is dropped unawaited if its output is not needed).
async fn alongside<'a, M: Future, F: Future>(main: M, mut side: Pin<&'a mut F>) -> (M::Output, Pending<'a, F>) {
    let mut main = std::pin::pin!(main);
    let mut done = None;
    loop {
        tokio::select! {
            biased;
            output = &mut main => {
                let side = match done { Some(output) => Pending::Done(output), None => Pending::Running(side) };
                return (output, side);
            }
            output = side.as_mut(), if done.is_none() => done = Some(output),
        }
    }
}
