//! A session token in a request header (`identity.jwt.header`): `Authorization: Bearer …`,
//! or any other header holding the token itself — an SSO gateway's signed assertion
//! (Cloudflare Access `Cf-Access-Jwt-Assertion`, Google IAP `X-Goog-Iap-Jwt-Assertion`,
//! Pomerium `X-Pomerium-Jwt-Assertion`, AWS ALB `X-Amzn-Oidc-Data`). Asked before the
//! cookie: a token in the header is used even when a cookie holds one too.

use std::sync::Arc;

use http::HeaderName;

use super::cookies::bearer;
use super::jwt::JwtVerifier;
use super::source::{BoxFuture, Found, IdentitySource, RequestFacts};
use crate::outcome::Source;

/// `identity.jwt.header`: a bearer token, verified as a JWT.
pub(super) struct HeaderToken {
    /// The header, as the one element of what the source reads.
    header: [HeaderName; 1],
    verifier: Arc<JwtVerifier>,
}

impl HeaderToken {
    pub(super) fn new(header: HeaderName, verifier: Arc<JwtVerifier>) -> Self {
        HeaderToken { header: [header], verifier }
    }
}

/// The token in header `name`: after `Bearer ` in `Authorization`, the whole value in any
/// other header.
fn token(headers: &http::HeaderMap, name: &HeaderName) -> Option<String> {
    if name == http::header::AUTHORIZATION {
        return bearer(headers, name);
    }
    let value = headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

impl IdentitySource for HeaderToken {
    fn kind(&self) -> Source {
        Source::JwtHeader
    }

    fn reads(&self) -> &[HeaderName] {
        &self.header
    }

    fn identify<'a>(&'a self, request: &'a RequestFacts) -> BoxFuture<'a, Found> {
        Box::pin(async move {
            match token(&request.headers, &self.header[0]) {
                Some(token) => self.verifier.found(&token).await,
                None => Found::Absent,
            }
        })
    }

    fn not_ready(&self) -> Option<String> {
        self.verifier.keys_not_loaded()
    }
}
