//! Identity: who the visitor of a page is — from a session token (a cookie, its chunks,
//! or a bearer header) verified as a JWT, else from the site's "who am I" endpoint — and
//! the `user-hash` the assistant checks them with.
//!
//! Any failure makes the visitor anonymous; the reason is kept for the access log, the
//! token never is. Key-location headers (`jku`, `x5u`, `jwk`, `x5c`) are ignored: only the
//! configured keys verify.

mod claims;
mod jwks;
mod jwt;
mod lookup;
mod token;

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::header::COOKIE;
use jsonwebtoken::errors::ErrorKind;
use sha2::Sha256;

use crate::config;

pub use claims::Person;
pub use token::session_cookie;

/// Tokens longer than this are rejected unread (spec: "longer than 8 KiB").
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A visitor whose session verified, with what the widget shows of them.
pub use invent_rewrite::Visitor;

/// What identification concluded, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No identity configured, or no session in the request.
    None,
    /// The lookup endpoint says the session is not signed in: asked now
    /// ([`Source::Lookup`]) or its answer cached ([`Source::CachedLookup`]).
    SignedOut(Source),
    Verified(Source),
    Rejected(Rejection),
}

/// Where a verified identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A token, verified now.
    Token,
    /// A token verified on an earlier request.
    CachedToken,
    /// The lookup endpoint, asked now.
    Lookup,
    /// The lookup endpoint's answer for this session, from an earlier request.
    CachedLookup,
}

/// Why a session token did not identify the visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    TooLarge,
    Malformed,
    AlgorithmNotAllowed,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    MissingClaim,
    /// The token's `kid` names no configured key.
    UnknownKey,
    /// The token's header lists critical extensions (`crit`), none of which the proxy
    /// understands (RFC 7515 §4.1.11).
    Crit,
    /// Chunked cookies with one missing (`name.0`, `name.2`, no `name.1`).
    IncompleteChunks,
    /// A registered claim (`exp`, `nbf`, `sub`, …) has the wrong type.
    InvalidClaim,
    NoUserId,
    InvalidUserId,
    /// The lookup endpoint could not be reached, or the exchange broke off.
    LookupFailed,
    /// The lookup endpoint did not answer within `lookup.timeout`.
    LookupTimeout,
    /// The lookup endpoint answered with a status that is neither 200 nor "not signed in".
    LookupStatus,
    /// The lookup endpoint's answer is not JSON, or too large.
    LookupInvalid,
}

impl Rejection {
    /// A stable, lowercase name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::TooLarge => "too_large",
            Rejection::Malformed => "malformed",
            Rejection::AlgorithmNotAllowed => "algorithm_not_allowed",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::MissingClaim => "missing_claim",
            Rejection::IncompleteChunks => "incomplete_chunks",
            Rejection::UnknownKey => "unknown_key",
            Rejection::Crit => "crit",
            Rejection::InvalidClaim => "invalid_claim",
            Rejection::NoUserId => "no_user_id",
            Rejection::InvalidUserId => "invalid_user_id",
            Rejection::LookupFailed => "lookup_failed",
            Rejection::LookupTimeout => "lookup_timeout",
            Rejection::LookupStatus => "lookup_status",
            Rejection::LookupInvalid => "lookup_invalid",
        }
    }

    pub(crate) fn from_jwt_error(kind: &ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_) => Rejection::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                Rejection::AlgorithmNotAllowed
            }
            ErrorKind::ExpiredSignature => Rejection::Expired,
            ErrorKind::ImmatureSignature => Rejection::NotYetValid,
            ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
            ErrorKind::InvalidAudience => Rejection::WrongAudience,
            ErrorKind::MissingRequiredClaim(_) => Rejection::MissingClaim,
            ErrorKind::InvalidClaimFormat(_) => Rejection::InvalidClaim,
            _ => Rejection::Malformed,
        }
    }
}

impl Outcome {
    /// The outcome and its detail, as metric labels: values from fixed sets.
    pub fn labels(&self) -> (&'static str, &'static str) {
        match self {
            Outcome::None => ("none", ""),
            Outcome::SignedOut(Source::CachedLookup) => ("none", "lookup_cached"),
            Outcome::SignedOut(_) => ("none", "lookup"),
            Outcome::Verified(Source::Token) => ("verified", "token"),
            Outcome::Verified(Source::CachedToken) => ("verified", "token_cached"),
            Outcome::Verified(Source::Lookup) => ("verified", "lookup"),
            Outcome::Verified(Source::CachedLookup) => ("verified", "lookup_cached"),
            Outcome::Rejected(reason) => ("rejected", reason.as_str()),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::None => f.write_str("none"),
            Outcome::SignedOut(Source::CachedLookup) => f.write_str("none:lookup_cached"),
            Outcome::SignedOut(_) => f.write_str("none:lookup"),
            Outcome::Verified(Source::Token) => f.write_str("verified"),
            Outcome::Verified(Source::CachedToken) => f.write_str("verified:cached"),
            Outcome::Verified(Source::Lookup) => f.write_str("verified:lookup"),
            Outcome::Verified(Source::CachedLookup) => f.write_str("verified:lookup_cached"),
            Outcome::Rejected(reason) => write!(f, "rejected:{}", reason.as_str()),
        }
    }
}

/// Identifies visitors and computes user hashes. Built once from the config.
pub struct Identifier {
    jwt: Option<jwt::JwtVerifier>,
    lookup: Option<lookup::Lookup>,
    /// The request headers identity reads, to keep them and to `Vary` on them.
    reads: Vec<http::HeaderName>,
    hasher: UserHasher,
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identifier")
            .field("jwt", &self.jwt.as_ref().map(jwt::JwtVerifier::source))
            .field("lookup", &self.lookup.is_some())
            .finish_non_exhaustive()
    }
}

impl Identifier {
    /// Builds the identifier: keys parsed (a `jwks_url` fetched) and clients made.
    pub async fn start(identity: &config::Identity, upstream: &config::Upstream) -> Result<Self, String> {
        let hasher = UserHasher(hmac_for(identity.secret_key.expose()));
        let jwt = match &identity.jwt {
            Some(jwt) => Some(jwt::JwtVerifier::start(jwt, hasher.clone()).await?),
            None => None,
        };
        let lookup = identity.lookup.as_ref().map(|l| lookup::Lookup::new(l, upstream, hasher.clone())).transpose()?;
        let source = identity.jwt.as_ref().map(|jwt| &jwt.source);
        let mut reads = Vec::new();
        reads.extend(source.and_then(|s| s.header.clone()));
        if source.is_some_and(|s| s.cookie.is_some()) || lookup.is_some() {
            reads.push(COOKIE);
        }
        Ok(Identifier { jwt, lookup, reads, hasher })
    }

    /// Why tokens cannot be verified now: an optional `jwks_url` that has not loaded.
    pub fn keys_not_loaded(&self) -> Option<String> {
        self.jwt.as_ref().and_then(jwt::JwtVerifier::keys_not_loaded)
    }

    /// The request headers a session may come from.
    pub fn reads(&self) -> &[http::HeaderName] {
        &self.reads
    }

    /// Whether identification asks the upstream, and so needs the request's `Host`,
    /// `User-Agent` and forwarding headers besides [`Self::reads`].
    pub fn asks_upstream(&self) -> bool {
        self.lookup.as_ref().is_some_and(lookup::Lookup::asks_upstream)
    }

    /// Identifies the visitor of a request from its headers: by its session token if it
    /// carries one, else by a lookup if one is configured.
    pub async fn identify(&self, headers: &HeaderMap) -> (Option<Arc<Visitor>>, Outcome) {
        if let Some(jwt) = &self.jwt {
            match token::find_token(headers, jwt.source()) {
                Ok(None) => {}
                Ok(Some(token)) => {
                    return match jwt.verify(&token).await {
                        Ok((visitor, cached)) => {
                            let source = if cached { Source::CachedToken } else { Source::Token };
                            (Some(visitor), Outcome::Verified(source))
                        }
                        Err(reason) => (None, Outcome::Rejected(reason)),
                    };
                }
                Err(reason) => return (None, Outcome::Rejected(reason)),
            }
        }
        match &self.lookup {
            Some(lookup) => lookup.identify(headers).await,
            None => (None, Outcome::None),
        }
    }

    /// What names a request's lookup session (its `Cookie` and `Host`), noted before the
    /// request is forwarded: if the response signs the visitor in or out,
    /// [`Self::after_response`] forgets what was cached for it. Copies of two headers,
    /// only with a lookup configured; nothing is parsed unless the response needs it.
    pub fn lookup_session<B>(&self, request: &http::Request<B>) -> Option<HeaderMap> {
        self.lookup.as_ref()?;
        let mut session = HeaderMap::new();
        for cookie in request.headers().get_all(COOKIE) {
            session.append(COOKIE, cookie.clone());
        }
        if session.is_empty() {
            return None;
        }
        if let Some(host) = crate::headers::client_host(request.headers(), request.uri()) {
            session.insert(http::header::HOST, host);
        }
        Some(session)
    }

    /// Forgets the session's cached lookup if `response` sets one of its cookies.
    pub async fn after_response(&self, session: &HeaderMap, response: &HeaderMap) {
        if let Some(lookup) = self.lookup.as_ref().filter(|l| l.ends_session(response))
            && let Some(key) = lookup.session_key(session)
        {
            lookup.forget(key).await;
        }
    }

    /// The `user-hash` for `user_id`.
    pub fn hash(&self, user_id: &str) -> String {
        self.hasher.hash(user_id)
    }
}

/// The HMAC state with the assistant's secret key already absorbed; cloned per hash.
#[derive(Clone)]
pub(crate) struct UserHasher(Hmac<Sha256>);

impl UserHasher {
    fn hash(&self, user_id: &str) -> String {
        hash_with(self.0.clone(), user_id)
    }

    /// The visitor `person` is, with their hash.
    fn visitor(&self, person: Person) -> Visitor {
        Visitor {
            user_hash: self.hash(&person.user_id),
            user_id: person.user_id,
            user_name: person.user_name,
            user_avatar: person.user_avatar,
        }
    }
}

/// `user-hash`: lowercase hex HMAC-SHA256 of `user_id` (UTF-8) keyed with `secret_key` (UTF-8).
pub fn user_hash(secret_key: &str, user_id: &str) -> String {
    hash_with(hmac_for(secret_key), user_id)
}

fn hash_with(mut mac: Hmac<Sha256>, user_id: &str) -> String {
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn hmac_for(secret_key: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (RFC 2104 §3), so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret_key.as_bytes()).unwrap_or_else(|_| unreachable!())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn user_hash_matches_the_published_vectors() {
        assert_eq!(
            user_hash("sk_test_123", "user_42"),
            "45bb144b8ebbe9876600b63739423f010f4ea3d43771ea3fee1329d463683b59"
        );
        assert_eq!(
            user_hash("sk_test_123", "Zoë-7"),
            "04a33c483382739aca1dc954e79aac17831e5595be959c9dbe91cec509dcc2b5"
        );
    }

    #[test]
    fn session_cookie_is_found_across_cookie_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("theme=dark; other=1"));
        headers.append(COOKIE, HeaderValue::from_static("session=abc.def.ghi"));
        assert_eq!(session_cookie(&headers, "session").as_deref(), Some("abc.def.ghi"));
        assert_eq!(session_cookie(&headers, "missing"), None);
    }
}
