//! Identity: who the visitor of a page is, and the `user-hash` the assistant checks them
//! with. Each way of knowing a visitor is an [`IdentitySource`] in a file of its own; the
//! [`Identifier`] runs the configured ones in their documented order — `gateway`
//! ([`gateway`]), `jwt.header` ([`header`]), `jwt.cookie` ([`cookie`]), its chunks
//! ([`chunks`]), the framework sessions `rails`, `flask` and `cookie_session`
//! ([`frameworks`]), `lookup` ([`lookup`]) —
//! and the first that finds a session decides: a session that is present and rejected
//! does not fall through to a weaker source.
//!
//! Any failure makes the visitor anonymous; the reason is kept for the access log, the
//! token never is. Key-location headers (`jku`, `x5u`, `jwk`, `x5c`) are ignored: only the
//! configured keys verify ([`jwt`], [`jwks`]).

mod chunks;
mod claims;
mod cookie;
mod cookies;
mod frameworks;
mod gateway;
mod hash;
mod header;
mod jwks;
mod jwt;
mod kid_keys;
mod lookup;
mod source;
mod verified;

use std::sync::Arc;

use http::{HeaderMap, HeaderName};

pub use crate::outcome::{Identified, Rejection, Source};
pub use cookies::session_cookie;
pub use hash::user_hash;
pub use invent_rewrite::Visitor;
pub use source::{BoxFuture, Found, IdentitySource, RequestFacts};

use crate::config;
use hash::UserHasher;

/// Tokens longer than this are rejected unread (spec: "longer than 8 KiB"), and framework
/// session cookies too.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why identity could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A `jwks_url` that does not load (and is not `jwks_optional`).
    #[error(
        "identity.jwt.jwks_url: cannot load the key set at {url}: {reason} (set `jwks_optional: true` to start without it)"
    )]
    KeySet { url: http::Uri, reason: String },
    /// No client could be made for a URL identity fetches (its trust store, say).
    #[error("{key}: cannot set up a client for {url}: {source}")]
    Client { key: &'static str, url: http::Uri, source: std::io::Error },
}

/// Identifies visitors with the configured sources. Built once from the config.
pub struct Identifier {
    /// In the order they are asked.
    sources: Vec<Box<dyn IdentitySource>>,
    /// The request headers any source reads, each once.
    reads: Vec<HeaderName>,
    /// The request headers a page with identity varies by, each once.
    varies_by: Vec<HeaderName>,
}

impl std::fmt::Debug for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self.sources.iter().map(|s| s.kind().as_str()).collect();
        f.debug_struct("Identifier").field("sources", &kinds).finish_non_exhaustive()
    }
}

impl Identifier {
    /// Builds the configured sources, in their order: keys parsed (a `jwks_url` fetched)
    /// and clients made.
    pub async fn start(identity: &config::Identity, upstream: &config::Upstream) -> Result<Self, StartError> {
        let hasher = UserHasher::new(identity.secret_key.expose());
        let mut sources: Vec<Box<dyn IdentitySource>> = Vec::new();
        if let Some(config) = &identity.gateway {
            sources.push(Box::new(gateway::Gateway::new(config, hasher.clone())));
        }
        if let Some(jwt) = &identity.jwt {
            let verifier = Arc::new(jwt::JwtVerifier::start(jwt, hasher.clone()).await?);
            let at = &jwt.source;
            if let Some(name) = &at.header {
                sources.push(Box::new(header::HeaderToken::new(name.clone(), Arc::clone(&verifier))));
            }
            if let Some(name) = &at.cookie {
                sources.push(Box::new(cookie::CookieToken::new(name.clone(), Arc::clone(&verifier))));
                if at.cookie_chunks {
                    sources.push(Box::new(chunks::ChunkedCookieToken::new(name.clone(), verifier)));
                }
            }
        }
        if let Some(config) = &identity.rails {
            sources.push(Box::new(frameworks::RailsSession::new(config, hasher.clone())));
        }
        if let Some(config) = &identity.flask {
            sources.push(Box::new(frameworks::FlaskSession::new(config, hasher.clone())));
        }
        if let Some(config) = &identity.cookie_session {
            sources.push(Box::new(frameworks::CookieSessionSource::new(config, hasher.clone())));
        }
        if let Some(config) = &identity.lookup {
            sources.push(Box::new(lookup::Lookup::new(config, upstream, hasher)?));
        }
        let once = |headers: &mut Vec<HeaderName>, name: &HeaderName| {
            if !headers.contains(name) {
                headers.push(name.clone());
            }
        };
        let (mut reads, mut varies_by) = (Vec::new(), Vec::new());
        for source in &sources {
            source.reads().iter().for_each(|name| once(&mut reads, name));
            source.varies_by().iter().for_each(|name| once(&mut varies_by, name));
        }
        Ok(Identifier { sources, reads, varies_by })
    }

    /// Why some source cannot identify anyone now: an optional `jwks_url` that has not
    /// loaded.
    pub fn not_ready(&self) -> Option<String> {
        self.sources.iter().find_map(|source| source.not_ready())
    }

    /// The request headers the sources read, to keep from a request that may get the widget.
    pub fn reads(&self) -> &[HeaderName] {
        &self.reads
    }

    /// The request headers a page with identity depends on, for `Vary`.
    pub fn varies_by(&self) -> &[HeaderName] {
        &self.varies_by
    }

    /// Who the visitor is: the first source that finds a session in the request decides.
    pub async fn identify(&self, request: &RequestFacts) -> (Option<Arc<Visitor>>, Identified) {
        for source in &self.sources {
            let kind = source.kind();
            match source.identify(request).await {
                Found::Absent => continue,
                Found::Verified { visitor, cached } => {
                    return (Some(visitor), Identified::Verified { source: kind, cached });
                }
                Found::SignedOut { cached } => return (None, Identified::SignedOut { source: kind, cached }),
                Found::Rejected(reason) => return (None, Identified::Rejected { source: kind, reason }),
                Found::Failed(reason) => return (None, Identified::Failed { source: kind, reason }),
                Found::Skipped(reason) => return (None, Identified::Skipped { source: kind, reason }),
            }
        }
        (None, Identified::None)
    }

    /// Removes from a request what its client may not send the upstream (a gateway's
    /// identity headers from a peer that is not the gateway).
    pub fn scrub(&self, request: &mut HeaderMap, peer: std::net::IpAddr) {
        for source in &self.sources {
            source.scrub(request, peer);
        }
    }

    /// What the sources keep of a request before it goes upstream, by source.
    pub fn note(&self, request: &HeaderMap) -> Vec<(usize, HeaderMap)> {
        let noted = self.sources.iter().enumerate();
        noted.filter_map(|(i, source)| source.note(request).map(|kept| (i, kept))).collect()
    }

    /// Tells the sources that noted the request what its response's headers say.
    pub async fn after_response(&self, noted: &[(usize, HeaderMap)], response: &HeaderMap) {
        for (i, kept) in noted {
            if let Some(source) = self.sources.get(*i) {
                source.after_response(kept, response).await;
            }
        }
    }
}
