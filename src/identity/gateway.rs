//! A visitor asserted by an SSO gateway in front of the proxy (oauth2-proxy, Authelia,
//! Pomerium, …) in plain request headers (`identity.gateway`): believed only from the
//! peers in `from`, and removed before the upstream from anyone else, since the app may
//! believe them too. Asked first: the gateway has already authenticated the visitor.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};

use super::UserHasher;
use super::claims::person_from_text;
use super::source::{BoxFuture, Found, IdentitySource, RequestFacts};
use crate::config;
use crate::outcome::{Rejection, Source};

/// `identity.gateway`.
pub(super) struct Gateway {
    config: config::Gateway,
    /// The configured headers: what the source reads, and removes from other peers.
    headers: Vec<HeaderName>,
    hasher: UserHasher,
}

impl Gateway {
    pub(super) fn new(config: &config::Gateway, hasher: UserHasher) -> Self {
        let mut headers = vec![config.user_id.clone()];
        headers.extend(config.user_name.clone());
        headers.extend(config.user_avatar.clone());
        Gateway { config: config.clone(), headers, hasher }
    }

    /// Whether `peer` may assert identity (IPv4-mapped IPv6 counts as IPv4).
    fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.config.from.iter().any(|net| net.contains(&peer))
    }
}

/// The value of header `name` in `headers`, if it is there and UTF-8 text, trimmed.
fn value<'a>(headers: &'a HeaderMap, name: Option<&HeaderName>) -> Option<&'a str> {
    let value = headers.get(name?)?;
    std::str::from_utf8(value.as_bytes()).ok().map(str::trim)
}

impl IdentitySource for Gateway {
    fn kind(&self) -> Source {
        Source::Gateway
    }

    fn reads(&self) -> &[HeaderName] {
        &self.headers
    }

    fn identify<'a>(&'a self, request: &'a RequestFacts) -> BoxFuture<'a, Found> {
        let found = match self.trusts(request.peer.ip()) {
            false => Found::Absent,
            true => {
                let (headers, config) = (&request.headers, &self.config);
                let name = value(headers, config.user_name.as_ref());
                let avatar = value(headers, config.user_avatar.as_ref());
                match person_from_text(value(headers, Some(&config.user_id)), name, avatar) {
                    Ok(person) => Found::Verified { visitor: self.hasher.visitor(person).into(), cached: false },
                    Err(Rejection::NoUserId) => Found::Absent,
                    Err(reason) => Found::Rejected(reason),
                }
            }
        };
        Box::pin(std::future::ready(found))
    }

    /// From a peer that is not the gateway, its headers never reach the upstream.
    fn scrub(&self, request: &mut HeaderMap, peer: IpAddr) {
        if !self.trusts(peer) {
            for name in &self.headers {
                request.remove(name);
            }
        }
    }
}
