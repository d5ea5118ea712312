//! Sessions that are not JWTs: the site's own "who am I" endpoint is asked with the
//! visitor's session cookies (only those), and its JSON answer read with the configured
//! claim paths. Answers are cached by a hash of the cookies for `cache_ttl`, concurrent
//! requests for one session share one lookup, and a page never waits past `timeout`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Empty;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cookies::session_cookie;
use super::source::{BoxFuture, Found, IdentitySource, RequestFacts};
use super::{StartError, UserHasher, Visitor};
use crate::config;
use crate::headers;
use crate::outcome::{Rejection, Source};
use crate::upstream::fetch::{self, FetchClient, FetchError};

/// The largest answer read from the endpoint.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The most cookie bytes forwarded to the endpoint (a session id is far smaller).
const MAX_COOKIE_BYTES: usize = 8 * 1024;

/// What the endpoint said about a session; kept for `cache_ttl`.
#[derive(Debug, Clone)]
enum Answer {
    Visitor(Arc<Visitor>),
    /// Not signed in: 401, 403, 204, or no user id in the answer.
    Anonymous,
    /// An answer that names no usable id (a number with a fraction, markup, …).
    Rejected(Rejection),
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
        let sent = self.forwarded(request);
        let asked = self.cache.entry(key).or_try_insert_with(self.ask(cookies, &sent));
        let entry = match tokio::time::timeout(self.config.timeout, asked).await {
            Err(_) => return Found::Rejected(Rejection::LookupTimeout),
            Ok(Err(reason)) => return Found::Rejected(*reason),
            Ok(Ok(entry)) => entry,
        };
        let cached = !entry.is_fresh();
        match entry.into_value() {
            Answer::Visitor(visitor) => Found::Verified { visitor, cached },
            Answer::Anonymous => Found::SignedOut { cached },
            Answer::Rejected(reason) => Found::Rejected(reason),
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

    /// One request to the endpoint. Errors are not cached: the next page asks again.
    async fn ask(&self, cookies: String, forwarded: &HeaderMap) -> Result<Answer, Rejection> {
        let mut request = Request::get(self.config.target.uri.clone())
            .header(header::ACCEPT, "application/json")
            // Never an answer from a cache between the proxy and the endpoint.
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::USER_AGENT, concat!("invent-proxy/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|_| Rejection::LookupFailed)?;
        let cookie = HeaderValue::from_str(&cookies).map_err(|_| Rejection::Malformed)?;
        let sent = request.headers_mut();
        sent.insert(header::COOKIE, cookie);
        for (name, value) in forwarded {
            sent.insert(name, value.clone());
        }
        let (status, body) =
            fetch::get(&self.client, request, self.config.timeout, MAX_ANSWER_BYTES).await.map_err(|e| match e {
                FetchError::Timeout(_) => Rejection::LookupTimeout,
                FetchError::TooLarge(_) => Rejection::LookupInvalid,
                FetchError::Connect(_) | FetchError::Failed(_) => Rejection::LookupFailed,
            })?;
        match status {
            StatusCode::OK => self.read_answer(&body),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NO_CONTENT => Ok(Answer::Anonymous),
            // Sent to the login page: not signed in.
            status if status.is_redirection() => Ok(Answer::Anonymous),
            _ => Err(Rejection::LookupStatus),
        }
    }

    fn read_answer(&self, body: &[u8]) -> Result<Answer, Rejection> {
        let answer: Value = serde_json::from_slice(body).map_err(|_| Rejection::LookupInvalid)?;
        Ok(match super::claims::person(&answer, &self.config.claims) {
            Ok(person) => Answer::Visitor(Arc::new(self.hasher.visitor(person))),
            Err(Rejection::NoUserId) => Answer::Anonymous,
            Err(reason) => Answer::Rejected(reason),
        })
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
