//! A session token split over cookies `name.0`, `name.1`, … (`identity.jwt.cookie_chunks`,
//! as NextAuth/Auth.js write a large one), joined and verified as a JWT. Asked after the
//! whole cookie: a request that has `name` itself is identified by it.

use std::sync::Arc;

use http::HeaderName;
use http::header::COOKIE;

use super::cookies::chunked_cookie;
use super::jwt::JwtVerifier;
use super::source::{BoxFuture, Found, IdentitySource, RequestFacts};
use crate::outcome::Source;

/// `identity.jwt.cookie_chunks`.
pub(super) struct ChunkedCookieToken {
    /// The chunks' base name.
    name: String,
    verifier: Arc<JwtVerifier>,
}

impl ChunkedCookieToken {
    pub(super) fn new(name: String, verifier: Arc<JwtVerifier>) -> Self {
        ChunkedCookieToken { name, verifier }
    }
}

impl IdentitySource for ChunkedCookieToken {
    fn kind(&self) -> Source {
        Source::JwtChunks
    }

    fn reads(&self) -> &[HeaderName] {
        &[COOKIE]
    }

    fn identify<'a>(&'a self, request: &'a RequestFacts) -> BoxFuture<'a, Found> {
        Box::pin(async move {
            match chunked_cookie(&request.headers, &self.name) {
                Ok(Some(token)) => self.verifier.found(&token).await,
                Ok(None) => Found::Absent,
                Err(reason) => Found::Rejected(reason),
            }
        })
    }

    fn not_ready(&self) -> Option<String> {
        self.verifier.keys_not_loaded()
    }
}
