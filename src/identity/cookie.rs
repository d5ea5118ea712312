//! A session token in a cookie (`identity.jwt.cookie`): the first cookie of that name,
//! verified as a JWT.

use std::sync::Arc;

use http::HeaderName;
use http::header::COOKIE;

use super::cookies::session_cookie;
use super::jwt::JwtVerifier;
use super::source::{BoxFuture, Found, IdentitySource, RequestFacts};
use crate::outcome::Source;

/// `identity.jwt.cookie`.
pub(super) struct CookieToken {
    name: String,
    verifier: Arc<JwtVerifier>,
}

impl CookieToken {
    pub(super) fn new(name: String, verifier: Arc<JwtVerifier>) -> Self {
        CookieToken { name, verifier }
    }
}

impl IdentitySource for CookieToken {
    fn kind(&self) -> Source {
        Source::JwtCookie
    }

    fn reads(&self) -> &[HeaderName] {
        &[COOKIE]
    }

    fn identify<'a>(&'a self, request: &'a RequestFacts) -> BoxFuture<'a, Found> {
        Box::pin(async move {
            match session_cookie(&request.headers, &self.name) {
                Some(token) => self.verifier.found(&token).await,
                None => Found::Absent,
            }
        })
    }

    fn not_ready(&self) -> Option<String> {
        self.verifier.keys_not_loaded()
    }
}
