//! What an identity source is: one way of knowing a visitor — a token in a header, a
//! session cookie, the site's own "who am I" endpoint — behind one trait, so that the
//! [`super::Identifier`] runs the configured ones in their documented order and a new
//! source is one new file.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, HeaderName};

use super::Visitor;
use crate::outcome::{Rejection, Source};

/// A future a source returns, boxed so that sources can sit behind one trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What identity sources see of a request: the headers they read, kept before the request
/// went upstream, and where it came from.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// The request headers the sources read ([`IdentitySource::reads`]).
    pub headers: HeaderMap,
    pub peer: SocketAddr,
    /// It came over TLS.
    pub tls: bool,
    /// The peer is one of `trusted_proxies`.
    pub trusted_peer: bool,
}

impl RequestFacts {
    /// The facts of a request with these headers, from a local peer over plain HTTP.
    pub fn from_headers(headers: HeaderMap) -> Self {
        RequestFacts { headers, peer: SocketAddr::from(([127, 0, 0, 1], 0)), tls: false, trusted_peer: false }
    }
}

/// What one source found in a request.
#[derive(Debug, Clone)]
pub enum Found {
    /// Nothing of this source's kind: the next source is asked.
    Absent,
    /// The visitor; `cached`: known from an earlier request.
    Verified { visitor: Arc<Visitor>, cached: bool },
    /// The session is not signed in: the lookup endpoint says so, or a framework session
    /// verified and holds no user id.
    SignedOut { cached: bool },
    /// A session was there and does not identify anyone: no weaker source is asked.
    Rejected(Rejection),
    /// The source could not tell (its endpoint failed): the visitor is anonymous.
    Failed(Rejection),
    /// The source did not try (back-off, or too busy): the visitor is anonymous.
    Skipped(Rejection),
}

/// One way of knowing who a request's visitor is.
pub trait IdentitySource: Send + Sync {
    /// Which source this is, for the access line and the metrics.
    fn kind(&self) -> Source;

    /// The request headers it reads: kept from the request for [`Self::identify`].
    fn reads(&self) -> &[HeaderName];

    /// The request headers the identity depends on: a page with identity varies by them
    /// (`Vary`). By default, all it reads.
    fn varies_by(&self) -> &[HeaderName] {
        self.reads()
    }

    /// Who the request's visitor is, as far as this source can tell.
    fn identify<'a>(&'a self, request: &'a RequestFacts) -> BoxFuture<'a, Found>;

    /// Before the request goes upstream: removes what the upstream must not take from this
    /// client (a gateway's identity headers, from a peer that is not the gateway).
    fn scrub(&self, _request: &mut HeaderMap, _peer: std::net::IpAddr) {}

    /// Why it cannot identify anyone now (a key set not loaded yet), if so.
    fn not_ready(&self) -> Option<String> {
        None
    }

    /// Before the request goes upstream: what the source keeps of it for
    /// [`Self::after_response`] (the lookup's session, say). Nothing by default.
    fn note(&self, _request: &HeaderMap) -> Option<HeaderMap> {
        None
    }

    /// With the response's headers: what the source learns from them (a sign-in or a
    /// sign-out the lookup must not answer from its cache again), given what it noted.
    fn after_response<'a>(&'a self, _noted: &'a HeaderMap, _response: &'a HeaderMap) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}
