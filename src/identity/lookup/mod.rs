//! Sessions that are not JWTs: the app is asked who the visitor is, with the visitor's
//! session cookies (only those) — a "who am I" endpoint read as JSON by claim paths, or a
//! page the app already renders read as HTML by CSS selectors ([`html`]).
//!
//! Answers (signed in, or signed out) are cached by a hash of the cookies for
//! `cache_ttl`; concurrent requests for one session share one lookup; a page never waits
//! past `timeout`. An endpoint in trouble costs the pages little: a session whose lookup
//! failed is not asked about again for `error_ttl`, and past `max_concurrent` lookups at
//! once a page is anonymous at once.

mod html;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cookies::session_cookie;
use super::source::{BoxFuture, Found, IdentitySource, RequestFacts};
use super::{StartError, UserHasher, Visitor};
use crate::config::{self, LookupAnswer};
use crate::headers;
use crate::outcome::{Rejection, Source};
use crate::upstream::fetch::{self, FetchClient, FetchError};

/// The largest JSON answer read from the endpoint.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Sessions remembered as failing at once (each for `error_ttl`).
const MAX_FAILING: u64 = 10_000;
/// The most cookie bytes forwarded to the endpoint (a session id is far smaller).
const MAX_COOKIE_BYTES: usize = 8 * 1024;

/// What the endpoint said about a session; kept for `cache_ttl`.
#[derive(Debug, Clone)]
enum Answer {
    Visitor(Arc<Visitor>),
    /// Not signed in: a redirect (to the login page), 401, 403, 204, or no user id in the
    /// answer.
    Anonymous,
    /// An answer that names no usable id (a number with a fraction, markup, …).
    Rejected(Rejection),
}

/// Why there is no answer for a session now; never cached.
#[derive(Debug, Clone, Copy)]
enum NoAnswer {
    /// The endpoint failed: down, slow, an error status, an answer it cannot read.
    Failed(Rejection),
    /// `max_concurrent` lookups were running.
    Busy,
}

/// Asks the lookup endpoint, through the cache.
pub(super) struct Lookup {
    config: config::Lookup,
    client: FetchClient,
    /// The lookup goes to the upstream: it carries what the page request carries.
    on_upstream: bool,
    /// And the visitor's own `Host` (`host_header: preserve`).
    forward_host: bool,
    /// The request headers it reads: the session cookies, and to ask the upstream as the
    /// page request does, `Host`, `User-Agent` and the forwarding headers.
    reads: Vec<http::HeaderName>,
    hasher: UserHasher,
    cache: moka::future::Cache<[u8; 32], Answer>,
    /// Sessions whose lookup failed, each kept for `error_ttl`: not asked again meanwhile.
    failing: moka::sync::Cache<[u8; 32], Instant>,
    /// One permit per lookup that may run at once.
    running: tokio::sync::Semaphore,
}

impl Lookup {
    pub(super) fn new(
        config: &config::Lookup,
        upstream: &config::Upstream,
        hasher: UserHasher,
    ) -> Result<Lookup, StartError> {
        let client = if config.target.on_upstream {
            crate::upstream::connector(upstream).map(|c| fetch::pooled(c, fetch::SMALL_READS))
        } else {
            fetch::client_for(&config.target.uri, upstream.connect_timeout)
        }
        .map_err(|source| StartError::Client {
            key: "identity.lookup.url",
            url: config.target.uri.clone(),
            source,
        })?;
        let mut reads = vec![header::COOKIE, header::HOST];
        if config.target.on_upstream {
            reads.extend(std::iter::once(header::USER_AGENT).chain(headers::X_FORWARDED));
        }
        Ok(Lookup {
            reads,
            on_upstream: config.target.on_upstream,
            forward_host: config.target.on_upstream && upstream.host_header == config::HostHeader::Preserve,
            client,
            hasher,
            cache: moka::future::Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.cache_ttl)
                .build(),
            failing: moka::sync::Cache::builder().max_capacity(MAX_FAILING).time_to_live(config.error_ttl).build(),
            running: tokio::sync::Semaphore::new(config.max_concurrent.min(tokio::sync::Semaphore::MAX_PERMITS)),
            config: config.clone(),
        })
    }

    /// The cache key of the request's session, if it carries one.
    fn session_key(&self, headers: &HeaderMap) -> Option<[u8; 32]> {
        self.session(headers).ok()?.map(|(_, key)| key)
    }

    /// The request's session cookies, as sent to the endpoint, and their cache key: a
    /// SHA-256 of the `Host` they are for (when it is forwarded) and the cookies.
    fn session(&self, headers: &HeaderMap) -> Result<Option<(String, [u8; 32])>, Rejection> {
        let Some(cookies) = self.session_cookies(headers)? else { return Ok(None) };
        let mut key = Sha256::new();
        let host = headers.get(header::HOST).filter(|_| self.forward_host);
        key.update(host.map_or(&b""[..], HeaderValue::as_bytes));
        key.update(b"\n");
        key.update(cookies.as_bytes());
        Ok(Some((cookies, key.finalize().into())))
    }

    /// Whether a response sets (or clears) one of the session cookies: a sign-in or a
    /// sign-out, after which what was cached for the old session must not be used.
    fn ends_session(&self, response: &HeaderMap) -> bool {
        response
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split_once('=').map(|(name, _)| name.trim()))
            .any(|name| self.config.cookies.iter().any(|c| c == name))
    }

    /// The visitor behind the request's session cookies, within `timeout`.
    async fn lookup(&self, request: &RequestFacts) -> Found {
        let (cookies, key) = match self.session(&request.headers) {
            Ok(Some(session)) => session,
            Ok(None) => return Found::Absent,
            Err(reason) => return Found::Rejected(reason),
        };
        if self.failing.contains_key(&key) {
            return Found::Skipped(Rejection::Backoff);
        }
        let sent = self.forwarded(request);
        let asked = self.cache.entry(key).or_try_insert_with(self.ask(cookies, &sent));
        let entry = match tokio::time::timeout(self.config.timeout, asked).await {
            Ok(Ok(entry)) => entry,
            Ok(Err(no_answer)) => return self.no_answer(key, *no_answer),
            Err(_) => return self.no_answer(key, NoAnswer::Failed(Rejection::LookupTimeout)),
        };
        let cached = !entry.is_fresh();
        match entry.into_value() {
            Answer::Visitor(visitor) => Found::Verified { visitor, cached },
            Answer::Anonymous => Found::SignedOut { cached },
            Answer::Rejected(reason) => Found::Rejected(reason),
        }
    }

    /// A lookup without an answer: a failure makes the session wait `error_ttl` before it
    /// is asked about again.
    fn no_answer(&self, key: [u8; 32], no_answer: NoAnswer) -> Found {
        match no_answer {
            NoAnswer::Failed(reason) => {
                if !self.config.error_ttl.is_zero() {
                    self.failing.insert(key, Instant::now());
                }
                Found::Failed(reason)
            }
            NoAnswer::Busy => Found::Skipped(Rejection::Busy),
        }
    }

    /// What a lookup on the upstream sends besides the cookies, as the page request does:
    /// the visitor's `Host` and `User-Agent`, and `X-Forwarded-*` — an app that insists on
    /// HTTPS or ties sessions to a browser then answers the lookup as it answers the page.
    fn forwarded(&self, request: &RequestFacts) -> HeaderMap {
        let mut sent = HeaderMap::new();
        if !self.on_upstream {
            return sent;
        }
        for name in std::iter::once(header::USER_AGENT).chain(headers::X_FORWARDED) {
            for value in request.headers.get_all(&name) {
                sent.append(name.clone(), value.clone());
            }
        }
        let host = request.headers.get(header::HOST);
        let proto = if request.tls { "https" } else { "http" };
        headers::set_forwarded(&mut sent, request.peer.ip(), proto, host, request.trusted_peer);
        if let Some(host) = host.filter(|_| self.forward_host) {
            sent.insert(header::HOST, host.clone());
        }
        sent
    }

    /// The configured cookies the request carries, as one `Cookie` value.
    fn session_cookies(&self, headers: &HeaderMap) -> Result<Option<String>, Rejection> {
        let mut sent = String::new();
        for name in &self.config.cookies {
            if let Some(value) = session_cookie(headers, name) {
                if !sent.is_empty() {
                    sent.push_str("; ");
                }
                sent.push_str(name);
                sent.push('=');
                sent.push_str(&value);
            }
        }
        match sent.len() {
            0 => Ok(None),
            n if n > MAX_COOKIE_BYTES => Err(Rejection::TooLarge),
            _ => Ok(Some(sent)),
        }
    }

    /// One request to the endpoint, if fewer than `max_concurrent` are running. A failure is
    /// not cached as an answer.
    async fn ask(&self, cookies: String, forwarded: &HeaderMap) -> Result<Answer, NoAnswer> {
        let Ok(_running) = self.running.try_acquire() else { return Err(NoAnswer::Busy) };
        let accept = match self.config.answer {
            LookupAnswer::Json(_) => "application/json",
            LookupAnswer::Html(_) => "text/html, application/xhtml+xml",
        };
        let failed = NoAnswer::Failed;
        let mut request = Request::get(self.config.target.uri.clone())
            .header(header::ACCEPT, accept)
            // Never an answer from a cache between the proxy and the endpoint.
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::USER_AGENT, concat!("invent-proxy/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|_| failed(Rejection::LookupFailed))?;
        let cookie = HeaderValue::from_str(&cookies).map_err(|_| failed(Rejection::Malformed))?;
        let sent = request.headers_mut();
        sent.insert(header::COOKIE, cookie);
        for (name, value) in forwarded {
            sent.insert(name, value.clone());
        }
        let response = fetch::send(&self.client, request, self.config.timeout).await.map_err(|e| failed(reason(&e)))?;
        match response.status() {
            StatusCode::OK => self.read_answer(response).await.map_err(failed),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NO_CONTENT => Ok(Answer::Anonymous),
            // Sent to the login page: not signed in. Not followed.
            status if status.is_redirection() => Ok(Answer::Anonymous),
            _ => Err(failed(Rejection::LookupStatus)),
        }
    }

    /// A `200` answer, read as JSON by claim paths or as an HTML page by selectors: a user
    /// id signs the visitor in, none is signed out.
    async fn read_answer(&self, response: http::Response<hyper::body::Incoming>) -> Result<Answer, Rejection> {
        let person = match &self.config.answer {
            LookupAnswer::Json(claims) => {
                let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES);
                let body = body.collect().await.map_err(|_| Rejection::LookupInvalid)?.to_bytes();
                let answer: Value = serde_json::from_slice(&body).map_err(|_| Rejection::LookupInvalid)?;
                super::claims::person(&answer, claims)
            }
            LookupAnswer::Html(selection) => {
                if !html::is_html(response.headers()) {
                    return Err(Rejection::LookupInvalid);
                }
                let (parts, body) = response.into_parts();
                let picked = html::read(&parts.headers, body, selection).await.map_err(|_| Rejection::LookupFailed)?;
                let (id, name) = (picked.user_id.as_deref(), picked.user_name.as_deref());
                super::claims::person_from_text(id, name, picked.user_avatar.as_deref())
            }
        };
        Ok(match person {
            Ok(person) => Answer::Visitor(Arc::new(self.hasher.visitor(person))),
            Err(Rejection::NoUserId) => Answer::Anonymous,
            Err(reason) => Answer::Rejected(reason),
        })
    }
}

/// Why a request to the endpoint failed, in the access line's words.
fn reason(error: &FetchError) -> Rejection {
    match error {
        FetchError::Timeout(_) => Rejection::LookupTimeout,
        FetchError::TooLarge(_) => Rejection::LookupInvalid,
        FetchError::Connect(_) | FetchError::Failed(_) => Rejection::LookupFailed,
    }
}

impl IdentitySource for Lookup {
    fn kind(&self) -> Source {
        Source::Lookup
    }

    fn reads(&self) -> &[http::HeaderName] {
        &self.reads
    }

    /// The answer depends on the session cookies alone.
    fn varies_by(&self) -> &[http::HeaderName] {
        &[header::COOKIE]
    }

    fn identify<'a>(&'a self, request: &'a RequestFacts) -> BoxFuture<'a, Found> {
        Box::pin(self.lookup(request))
    }

    /// What names the request's session (its `Cookie` and `Host`), noted before the request
    /// is forwarded: if the response signs the visitor in or out, what was cached for it is
    /// forgotten. Copies of two headers; nothing is parsed unless the response needs it.
    fn note(&self, request: &HeaderMap) -> Option<HeaderMap> {
        let mut session = HeaderMap::new();
        for cookie in request.get_all(header::COOKIE) {
            session.append(header::COOKIE, cookie.clone());
        }
        if session.is_empty() {
            return None;
        }
        if let Some(host) = request.get(header::HOST) {
            session.insert(header::HOST, host.clone());
        }
        Some(session)
    }

    /// Forgets the session's cached answer if the response sets one of its cookies.
    fn after_response<'a>(&'a self, noted: &'a HeaderMap, response: &'a HeaderMap) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.ends_session(response)
                && let Some(key) = self.session_key(noted)
            {
                self.cache.invalidate(&key).await;
            }
        })
    }
}
