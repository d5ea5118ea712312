//! The `identity.jwt` block, as written: where the session token is, the key it is verified
//! with (a secret, a key file, a key set, or a key per `kid`), and what it must claim; with
//! the scalars it takes, a cookie name and a header name among them, which the other
//! identity sources take too.

use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::claims::{ClaimPath, RawClaims};
use crate::config::value::{
    ConfigDuration, JwtAlgorithm, Leeway, NonEmpty, Parsed, Secret, SecretEncoding, TextSchema, Timeout,
};

/// `identity.jwt`: where the session JWT is, and how it is verified. The token is looked for
/// in this order, the first present wins: `header`, `cookie`, then the cookie's chunks. Set
/// exactly one key: `secret`, `public_key_file`, `jwks_file` or `jwks_url`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    /// The cookie that holds the session token. At least one of `cookie` and `header`.
    /// Default: none.
    pub cookie: Option<Parsed<CookieName>>,
    /// Also read the token split over cookies `NAME.0`, `NAME.1`, … (NextAuth/Auth.js), when
    /// `cookie` itself is absent; a missing chunk is `rejected:incomplete_chunks`. Needs
    /// `cookie`.
    /// Default: `false`.
    pub cookie_chunks: Option<bool>,
    /// A request header holding the token: `Authorization` with the `Bearer` scheme (in any
    /// case), or any other header holding the token itself — an SSO gateway's signed
    /// assertion (`Cf-Access-Jwt-Assertion`, `X-Goog-Iap-Jwt-Assertion`,
    /// `X-Pomerium-Jwt-Assertion`, AWS ALB's `X-Amzn-Oidc-Data`; set `audience` with it).
    /// Looked at before the cookie. At least one of `cookie` and `header`.
    /// Default: none.
    pub header: Option<Parsed<HeaderNameValue>>,
    /// The `alg` values accepted; a token with any other (`none` included) is rejected. With
    /// `secret` or `public_key_file` all of one key type: HS256/384/512 (`secret`), RS*/PS*
    /// (RSA), ES256/ES384 (EC) or EdDSA (Ed25519). Required with `public_key_file`,
    /// `jwks_file` and `jwks_url` (a key set may mix key types).
    /// Default: `[HS256]`.
    #[schemars(with = "Option<Vec<Parsed<JwtAlgorithm>>>")]
    pub algorithms: Option<Spanned<Vec<Parsed<JwtAlgorithm>>>>,
    /// The key the site signs its sessions with, for HS256/HS384/HS512. A secret: write
    /// `${NAME}` (a bare `$NAME` is refused).
    /// Default: none.
    #[schemars(with = "Option<Secret>")]
    pub secret: Option<Spanned<Secret>>,
    /// How `secret` is written: `utf8` (its bytes as text), `base64` or `base64url`.
    /// Default: `utf8`.
    pub secret_encoding: Option<Parsed<SecretEncoding>>,
    /// A PEM public key, for RS*/PS* (RSA), ES256/ES384 (EC P-256/P-384) or EdDSA (Ed25519),
    /// relative to the config file's directory. A file holding a private key is refused.
    /// Default: none.
    #[schemars(with = "Option<Parsed<PathBuf>>")]
    pub public_key_file: Option<Spanned<Parsed<PathBuf>>>,
    /// A JSON Web Key Set on disk, relative to the config file's directory: the token's
    /// `kid` picks the key (a token without `kid` needs a set of one key), a key's own `alg`
    /// must be the token's, keys for encryption are left out, shared-secret (`oct`) keys
    /// are refused.
    /// Default: none.
    #[schemars(with = "Option<Parsed<PathBuf>>")]
    pub jwks_file: Option<Spanned<Parsed<PathBuf>>>,
    /// A JSON Web Key Set fetched from an `http://` or `https://` URL (your identity
    /// provider's): at start-up, every `jwks_refresh`, and when a token names an unknown
    /// `kid` (at most once per `jwks_min_refresh`). A failed fetch keeps the last good keys.
    /// Default: none.
    #[schemars(with = "Option<Parsed<FetchUrl>>")]
    pub jwks_url: Option<Spanned<Parsed<FetchUrl>>>,
    /// Where the PEM public key of each `kid` is, for AWS ALB's `X-Amzn-Oidc-Data`:
    /// `https://public-keys.auth.elb.REGION.amazonaws.com/{kid}`. A key is fetched when a token
    /// first names its `kid` and kept; a `kid` that cannot be fetched is tried again at most
    /// once per `jwks_min_refresh`; a `kid` with `/`, `..`, control characters or over 128
    /// bytes is refused unfetched. Only in this mode are base64url segments with padding
    /// accepted. Needs `algorithms` (ES256 for ALB).
    /// Default: none.
    #[schemars(with = "Option<Parsed<KeyUrl>>")]
    pub key_url: Option<Spanned<Parsed<KeyUrl>>>,
    /// JOSE header parameters that must have exactly these values, e.g. ALB's
    /// `{ signer: <the load balancer's ARN> }`; a token without them is
    /// `rejected:wrong_header`.
    /// Default: none.
    pub header_claims: Option<std::collections::BTreeMap<String, Parsed<NonEmpty>>>,
    /// Start even if the `jwks_url` key set cannot be loaded: visitors are anonymous, and
    /// `/readyz` answers 503, until it loads. Only with `jwks_url`.
    /// Default: `false` (an unreachable key set stops start-up).
    pub jwks_optional: Option<bool>,
    /// How often the `jwks_url` key set is fetched again in the background. A duration above
    /// zero. Only with `jwks_url`.
    /// Default: `10m`.
    pub jwks_refresh: Option<Parsed<Timeout>>,
    /// The least time between two fetches prompted by tokens naming an unknown `kid`, so made-up
    /// `kid`s cannot make the proxy hammer the provider (at most `jwks_refresh`). Only with
    /// `jwks_url`.
    /// Default: `30s`.
    pub jwks_min_refresh: Option<Parsed<ConfigDuration>>,
    /// The most one fetch of the `jwks_url` key set may take, connection to last byte. A
    /// duration above zero. Only with `jwks_url`.
    /// Default: `5s`.
    pub jwks_timeout: Option<Parsed<Timeout>>,
    /// The accepted `iss`: one value or a list. When set, a token must carry one of them.
    /// Default: not checked.
    pub issuer: Option<OneOrMany<Parsed<NonEmpty>>>,
    /// The accepted `aud`: one value or a list. When set, a token's `aud` (a string or a
    /// list) must name one of them.
    /// Default: not checked.
    pub audience: Option<OneOrMany<Parsed<NonEmpty>>>,
    /// Claims a token must carry, not null, as claim paths (`[exp, sub]`); a token without
    /// one is `rejected:missing_claim`.
    /// Default: `[exp]`.
    pub required_claims: Option<Vec<ClaimPath>>,
    /// Clock skew allowed on `exp` and `nbf`: a duration in whole seconds, at most `1h`.
    /// Default: `30s`.
    pub leeway: Option<Parsed<Leeway>>,
    /// Where the identity is in the token's payload.
    /// Default: the user id at `sub`, no name or avatar.
    pub claims: Option<RawClaims>,
}

/// A value written either alone or as a list: `issuer: a` or `issuer: [a, b]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// An HTTP header name (`jwt.header`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNameValue(pub http::HeaderName);

impl FromStr for HeaderNameValue {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        http::HeaderName::from_bytes(s.trim().as_bytes())
            .map(HeaderNameValue)
            .map_err(|_| format!("{s:?} is not a header name"))
    }
}

/// A cookie name: an RFC 6265 token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieName(pub String);

impl FromStr for CookieName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let separators = "()<>@,;:\\\"/[]?={} \t";
        let valid = !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !separators.contains(b as char));
        if valid { Ok(CookieName(s.to_owned())) } else { Err(format!("{s:?} is not a valid cookie name")) }
    }
}

/// An absolute `http://` or `https://` URL the proxy fetches itself (`jwks_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchUrl(pub http::Uri);

impl FromStr for FetchUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uri: http::Uri = s.trim().parse().map_err(|e| format!("invalid URL {s:?}: {e}"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(format!("{s:?} needs a scheme: http:// or https://")),
        }
        match uri.authority() {
            None => Err(format!("{s:?} has no host")),
            Some(a) if a.as_str().contains('@') => Err(format!("{s:?} must not carry credentials")),
            Some(_) => Ok(FetchUrl(uri)),
        }
    }
}

/// `jwt.key_url`: a URL with `{kid}` in its path, where the PEM public key of each key id is
/// (AWS ALB: `https://public-keys.auth.elb.REGION.amazonaws.com/{kid}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUrl(pub String);

impl FromStr for KeyUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let example = "like https://public-keys.auth.elb.eu-west-1.amazonaws.com/{kid}";
        if s.matches("{kid}").count() != 1 {
            return Err(format!("{s:?} must name the key id once, as {{kid}}, {example}"));
        }
        let FetchUrl(_) = s.replace("{kid}", "kid").parse()?;
        let (before, _) = s.split_once("{kid}").unwrap_or((s, ""));
        let in_path = before.split_once("://").is_some_and(|(_, rest)| rest.contains('/'));
        if !in_path || before.contains(['?', '#']) {
            return Err(format!("{s:?} must have {{kid}} in its path, {example}"));
        }
        Ok(KeyUrl(s.to_owned()))
    }
}

impl TextSchema for CookieName {
    const KIND: &'static str = "cookie name";
}
impl TextSchema for FetchUrl {
    const KIND: &'static str = "URL";
}
impl TextSchema for HeaderNameValue {
    const KIND: &'static str = "header name";
}
impl TextSchema for KeyUrl {
    const KIND: &'static str = "URL with {kid}";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_names_are_tokens() {
        assert!("session".parse::<CookieName>().is_ok());
        assert!("__Host-sid".parse::<CookieName>().is_ok());
        assert!("a b".parse::<CookieName>().is_err());
        assert!("a=b".parse::<CookieName>().is_err());
    }
}
