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

use super::{Outcome, Rejection, Source, UserHasher, Visitor, token};
use crate::config;
use crate::fetch::{self, FetchClient, FetchError};

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
pub struct Lookup {
    config: config::Lookup,
    client: FetchClient,
    /// The lookup goes to the upstream: it carries what the page request carries.
    on_upstream: bool,
    /// And the visitor's own `Host` (`host_header: preserve`).
    forward_host: bool,
    hasher: UserHasher,
    cache: moka::future::Cache<[u8; 32], Answer>,
}

impl Lookup {
    pub fn new(config: &config::Lookup, upstream: &config::Upstream, hasher: UserHasher) -> Result<Lookup, String> {
        let client = if config.target.on_upstream {
            crate::upstream::connector(upstream).map(|c| fetch::pooled(c, fetch::SMALL_READS))
        } else {
            fetch::client_for(&config.target.uri, upstream.connect_timeout)
        }
        .map_err(|e| format!("identity.lookup.url: cannot set up a client for {}: {e}", config.target.uri))?;
        Ok(Lookup {
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

    /// Whether the lookup goes to the upstream (and needs the request's context).
    pub fn asks_upstream(&self) -> bool {
        self.on_upstream
    }

    /// The cache key of the request's session, if it carries one.
    pub fn session_key(&self, headers: &HeaderMap) -> Option<[u8; 32]> {
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
    pub fn ends_session(&self, response: &HeaderMap) -> bool {
        response
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split_once('=').map(|(name, _)| name.trim()))
            .any(|name| self.config.cookies.iter().any(|c| c == name))
    }

    /// Forgets the answer cached for a session.
    pub async fn forget(&self, key: [u8; 32]) {
        self.cache.invalidate(&key).await;
    }

    /// The visitor behind the request's session cookies, within `timeout`.
    pub async fn identify(&self, headers: &HeaderMap) -> (Option<Arc<Visitor>>, Outcome) {
        let (cookies, key) = match self.session(headers) {
            Ok(Some(session)) => session,
            Ok(None) => return (None, Outcome::None),
            Err(reason) => return (None, Outcome::Rejected(reason)),
        };
        let asked = self.cache.entry(key).or_try_insert_with(self.ask(cookies, headers));
        let entry = match tokio::time::timeout(self.config.timeout, asked).await {
            Err(_) => return (None, Outcome::Rejected(Rejection::LookupTimeout)),
            Ok(Err(reason)) => return (None, Outcome::Rejected(*reason)),
            Ok(Ok(entry)) => entry,
        };
        let source = if entry.is_fresh() { Source::Lookup } else { Source::CachedLookup };
        match entry.into_value() {
            Answer::Visitor(visitor) => (Some(visitor), Outcome::Verified(source)),
            Answer::Anonymous => (None, Outcome::SignedOut(source)),
            Answer::Rejected(reason) => (None, Outcome::Rejected(reason)),
        }
    }

    /// The configured cookies the request carries, as one `Cookie` value.
    fn session_cookies(&self, headers: &HeaderMap) -> Result<Option<String>, Rejection> {
        let mut sent = String::new();
        for name in &self.config.cookies {
            if let Some(value) = token::session_cookie(headers, name) {
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
    async fn ask(&self, cookies: String, page_request: &HeaderMap) -> Result<Answer, Rejection> {
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
        if self.on_upstream {
            for name in std::iter::once(header::USER_AGENT).chain(crate::headers::X_FORWARDED) {
                if let Some(value) = page_request.get(&name) {
                    sent.insert(name, value.clone());
                }
            }
        }
        if let Some(host) = page_request.get(header::HOST).filter(|_| self.forward_host) {
            sent.insert(header::HOST, host.clone());
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
