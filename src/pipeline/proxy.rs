//! One site's pipeline, in phases: `plan` (may the response get the widget?) → `forward`
//! (to the upstream) ∥ `identify` (only for a page that may be rewritten) → `respond`
//! (pass the response through, or stream it through the rewriter) — and one access line
//! at the end, written by the body ([`super::body`]). Upgrades (WebSocket) skip the
//! rewrite and become a byte tunnel ([`super::upgrade`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, Request, Response, header};
use hyper::body::Incoming;
use invent_rewrite::{Injection, RewriteBody, Sniffed, Transcode, Widget, csp};

use super::SiteError;
use super::body::{LoggedBody, ProxyBody};
use super::context::{Context, Peer};
use super::record::{Answer, Recorder, Stage};
use super::rules;
use super::upgrade;
use crate::codec::{self, Coding};
use crate::config::{self, Process, Site};
use crate::error::{ClientBodyFailure, ProxyError};
use crate::headers;
use crate::identity::{Identified, Identifier, RequestFacts, Visitor};
use crate::metrics::Metrics;
use crate::outcome::Skip;
use crate::upstream::{self, Forwarding, UpstreamClient};

/// Everything a site's requests need, built once from its config and shared by them all.
pub(crate) struct Proxy {
    site: Site,
    /// The process-wide settings the requests need: limits, trusted proxies, the edge.
    process: Arc<Process>,
    client: UpstreamClient,
    /// `None` when identity is not configured: every visitor is anonymous.
    identifier: Option<Identifier>,
    widget: Arc<Widget>,
    metrics: Arc<Metrics>,
}

/// What the plan keeps of a request whose response may get the widget: what identity
/// reads, and the `Accept-Encoding` a compressed page is encoded again by.
struct Plan {
    identity: Option<RequestFacts>,
    accept_encoding: HeaderMap,
}

/// Who the visitor is, and how that was concluded.
type Identification = (Option<Arc<Visitor>>, Identified);

impl Proxy {
    /// Builds a site's proxy: upstream client, identifier (its keys loaded) and widget
    /// markup, counting into `metrics` (kept across reloads).
    pub(super) async fn start(site: Site, process: Arc<Process>, metrics: Arc<Metrics>) -> Result<Self, SiteError> {
        let client = upstream::client(&site.upstream, process.limits.workers).map_err(SiteError::Client)?;
        invent_rewrite::selectors_ready();
        let identifier = match &site.identity {
            Some(identity) => Some(Identifier::start(identity, &site.upstream).await?),
            None => None,
        };
        let widget = Arc::new(widget_of(&site.assistant, &site.inject));
        Ok(Proxy { site, process, client, identifier, widget, metrics })
    }

    /// Why this site should not get traffic (for `/readyz`): a configured `jwks_url` not
    /// loaded yet.
    pub(crate) fn not_ready(&self) -> Option<String> {
        let reason = self.identifier.as_ref()?.not_ready()?;
        Some(format!("identity.jwt.jwks_url not loaded ({reason})"))
    }

    /// Why identity cannot verify tokens now, if it cannot (for `check`).
    pub(crate) fn identity_keys_missing(&self) -> Option<String> {
        self.identifier.as_ref().and_then(Identifier::not_ready)
    }

    /// The site's config.
    pub(crate) fn site(&self) -> &Site {
        &self.site
    }

    /// Proxies one request. Never fails: upstream failures become 502/504 pages.
    /// `recorder`: where what the pipeline decided goes, for a caller that asked.
    pub(super) async fn handle(
        &self,
        req: Request<Incoming>,
        peer: Peer,
        recorder: Option<Recorder>,
    ) -> Response<LoggedBody> {
        self.answer(req, peer, None, recorder).await
    }

    /// Answers a request that is not proxied (a host no site serves: `421`; a request
    /// refused at the edge: `400`) with `error`'s page, logged and counted here.
    pub(super) async fn refuse(
        &self,
        req: Request<Incoming>,
        peer: Peer,
        error: ProxyError,
        recorder: Option<Recorder>,
    ) -> Response<LoggedBody> {
        self.answer(req, peer, Some(error), recorder).await
    }

    async fn answer(
        &self,
        mut req: Request<Incoming>,
        peer: Peer,
        refused: Option<ProxyError>,
        recorder: Option<Recorder>,
    ) -> Response<LoggedBody> {
        let in_flight = self.client.response_started();
        let request_id = headers::request_id(req.headers());
        req.headers_mut().insert(&headers::X_REQUEST_ID, request_id.clone());
        let origin = (req.method(), req.uri().path());
        let mut context = Context::start(origin, peer, request_id, (Arc::clone(&self.metrics), recorder));
        let http1 = req.version() < http::Version::HTTP_2;
        let result = match refused {
            None => self.run(req, peer, &mut context).await,
            Some(error) => Err(error),
        };
        let mut response = result.unwrap_or_else(|error| {
            context.failed(&error);
            let mut page = error.to_response();
            // After a malformed request, what follows on the connection cannot be trusted
            // to be where the next request starts: close it, as nginx does.
            if http1 && error.blame() == crate::error::Blame::Client {
                page.headers_mut().insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            }
            page.map(ProxyBody::Local)
        });
        context.status = response.status().as_u16();
        response.headers_mut().insert(&headers::X_REQUEST_ID, context.request_id().clone());
        let answer = match response.body() {
            ProxyBody::Passthrough(_) => Answer::Passthrough,
            ProxyBody::Rewritten(_) => Answer::Rewritten,
            ProxyBody::Local(_) => Answer::OwnPage,
        };
        context.head_out(response.status(), response.headers(), answer);
        let stall_limit = self.process.limits.body_stall_timeout;
        let mut response = response.map(|body| LoggedBody::new(body, context, in_flight, stall_limit));
        // The client speaks to this proxy, not to the upstream: an HTTP/1.0 upstream must
        // not turn the client's connection into HTTP/1.0 (hyper answers in the client's
        // own version on HTTP/2).
        *response.version_mut() = http::Version::HTTP_11;
        response
    }

    /// The pipeline's phases in order; any failure ends it with a [`ProxyError`].
    async fn run(
        &self,
        mut req: Request<Incoming>,
        peer: Peer,
        context: &mut Context,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let plan = self.plan(&req, peer);
        if plan.is_ok() && headers::accepts_html(req.headers()) {
            // A byte range of the upstream's page does not fit the rewritten page the
            // browser holds: ask for the whole page.
            req.headers_mut().remove(header::RANGE);
            req.headers_mut().remove(header::IF_RANGE);
        }
        let noted = self.identifier.as_ref().map(|i| i.note(req.headers())).unwrap_or_default();
        let client_upgrade = headers::upgrade_protocol(req.headers()).map(|_| hyper::upgrade::on(&mut req));
        // A page's visitor is identified while the upstream prepares the page: a lookup
        // then costs the page no time of its own unless it is the slower of the two.
        let identify = std::pin::pin!(self.identify(plan.as_ref().ok()));
        // Boxed: the upstream exchange's future is kilobytes, and this one would carry it
        // (twice, in `alongside`), copied whole at every `.await` up to hyper's.
        let forward = Box::pin(self.forward(req, peer, context.client_body.clone()));
        let (forwarded, identified) = alongside(forward, identify).await;
        let mut response = forwarded?;
        context.upstream_head(response.status(), response.headers());
        if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client) = client_upgrade {
                crate::per_worker::spawn_here(upgrade::tunnel(client, hyper::upgrade::on(&mut response)));
            }
            return Ok(response.map(ProxyBody::Passthrough));
        }
        let response = self.respond(response, &plan, identified, context).await?;
        if let Some(identifier) = self.identifier.as_ref().filter(|_| !noted.is_empty()) {
            Box::pin(identifier.after_response(&noted, response.headers())).await;
        }
        Ok(response)
    }

    /// Decides from the request alone whether its response may get the widget, and keeps
    /// what identifying the visitor and re-encoding the page will need.
    fn plan(&self, req: &Request<Incoming>, peer: Peer) -> Result<Plan, Skip> {
        rules::request_qualifies(req.method(), req.uri().path(), req.headers(), &self.site.inject)?;
        let kept = |names: &[http::HeaderName]| {
            let mut kept = HeaderMap::new();
            for name in names {
                for value in req.headers().get_all(name) {
                    kept.append(name.clone(), value.clone());
                }
            }
            kept
        };
        let identity = self.identifier.as_ref().map(|identifier| RequestFacts {
            headers: kept(identifier.reads()),
            peer: peer.addr,
            tls: peer.tls,
            trusted_peer: self.process.trusts(peer.addr.ip()),
        });
        Ok(Plan { identity, accept_encoding: kept(&[header::ACCEPT_ENCODING]) })
    }

    /// Sends the request upstream and waits for the response head. A failure while the
    /// client's body was failing is the client's (400), not the upstream's.
    async fn forward(
        &self,
        req: Request<Incoming>,
        peer: Peer,
        client_body: ClientBodyFailure,
    ) -> Result<Response<Incoming>, ProxyError> {
        let forwarding = Forwarding {
            client: peer.addr.ip(),
            proto: peer.proto(),
            trusted: self.process.trusts(peer.addr.ip()),
            underscores: self.process.underscores_in_headers,
        };
        let request_id = req.headers().get(&headers::X_REQUEST_ID).cloned();
        let mut req = req;
        if let Some(identifier) = &self.identifier {
            identifier.scrub(req.headers_mut(), peer.addr.ip());
        }
        let mut req = upstream::prepare(req, forwarding, &self.site.upstream, client_body.clone())?;
        // After `prepare`: a `Connection` header naming it must not take it away.
        if let Some(id) = request_id {
            req.headers_mut().insert(&headers::X_REQUEST_ID, id);
        }
        req.body_mut().count_into(self.metrics.received_bytes());
        let sent = upstream::send(&self.client, req, &self.site.upstream, self.metrics.upstream_retries()).await;
        match (sent, client_body.get()) {
            (Err(_), Some(reason)) => Err(ProxyError::ClientBody(reason.to_owned())),
            (sent, _) => sent,
        }
    }

    /// The request headers a page with identity varies by (none without identity).
    fn varies_by(&self) -> &[http::HeaderName] {
        self.identifier.as_ref().map_or(&[], Identifier::varies_by)
    }

    /// Who the visitor of a request that may get the widget is.
    async fn identify(&self, plan: Option<&Plan>) -> Identification {
        match (&self.identifier, plan.and_then(|plan| plan.identity.as_ref())) {
            // Boxed: identity's futures are kilobytes, and every request's future (moved
            // whole at each `.await` that starts it) would carry them otherwise.
            (Some(identifier), Some(facts)) => Box::pin(identifier.identify(facts)).await,
            _ => (None, Identified::None),
        }
    }

    /// Passes the response through, or sets it up to be rewritten as it streams. A body that
    /// qualifies is read until it shows whether it is a whole page: only a page gets the
    /// rewritten head; a fragment keeps the upstream's head and bytes.
    async fn respond(
        &self,
        mut response: Response<Incoming>,
        plan: &Result<Plan, Skip>,
        identification: Pending<'_, impl Future<Output = Identification>>,
        context: &mut Context,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        if plan.is_ok() && response.status() == http::StatusCode::NOT_MODIFIED {
            rules::not_modified_headers(response.headers_mut(), self.varies_by());
        }
        let qualified = plan.as_ref().map_err(|skip| *skip).and_then(|plan| {
            rules::response_qualifies(response.status(), response.headers()).map(|document| (plan, document))
        });
        let (plan, document) = match qualified {
            Ok(qualified) => qualified,
            Err(skip) => {
                context.skipped(skip, if plan.is_err() { Stage::Request } else { Stage::Response });
                return Ok(response.map(ProxyBody::Passthrough));
            }
        };
        let (visitor, identified) = identification.finish().await;
        context.identified = identified;
        let personalised = visitor.is_some();
        let (mut parts, body) = response.into_parts();
        let injection = Injection {
            widget: Arc::clone(&self.widget),
            visitor,
            position: self.site.inject.position,
            syntax: document.syntax,
            encoding: document.encoding,
            nonce: csp::script_nonce(&parts.headers),
            max_memory: self.process.limits.rewriter_max_memory,
        };
        let transcode = transcode(document.coding, &plan.accept_encoding)?;
        let reencoded = matches!(transcode, Transcode::Recode(_));
        let mut body = RewriteBody::new(body, injection, transcode);
        if body.sniff().await.map_err(ProxyError::Upstream)? != Sniffed::NotPage {
            rules::rewrite_headers(&mut parts.headers, self.varies_by(), personalised);
            if document.coding.is_some() {
                rules::transcoded_headers(&mut parts.headers, reencoded);
            }
            csp::allow_origins(&mut parts.headers, &self.site.inject.csp_allow);
            if let Some(length) = body.complete_len() {
                parts.headers.insert(header::CONTENT_LENGTH, length.into());
            }
        }
        Ok(Response::from_parts(parts, ProxyBody::Rewritten(Box::new(body))))
    }
}

/// The widget markup of `assistant`: its id, script and theme attributes.
fn widget_of(assistant: &config::Assistant, inject: &config::Inject) -> Widget {
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
    Widget::new(&assistant.id, &assistant.script_url, &attributes).kept_across_visits(inject.turbo_permanent)
}

/// How a compressed page is decoded, and encoded again (spliced, for gzip and deflate) if
/// the client accepts its coding.
fn transcode(coding: Option<Coding>, request: &HeaderMap) -> Result<Transcode, ProxyError> {
    let Some(coding) = coding else { return Ok(Transcode::default()) };
    codec::transcode(coding, headers::accepts_coding(request, coding)).map_err(|e| ProxyError::Internal(e.into()))
}

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
async fn alongside<'a, M: Future + Unpin, F: Future>(
    mut main: M,
    mut side: Pin<&'a mut F>,
) -> (M::Output, Pending<'a, F>) {
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
