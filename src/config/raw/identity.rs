//! The `identity` block, as written: its secret key, the order its sources are asked in,
//! and the sources that ask someone else — an SSO gateway's headers (`gateway`) and the
//! app's "who am I" endpoint or account page (`lookup`). The JWT source is in [`super::jwt`],
//! the framework sessions in [`crate::config::frameworks`].

use std::str::FromStr;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::TrustedNet;
use super::claims::RawClaims;
use super::jwt::{CookieName, FetchUrl, HeaderNameValue, RawJwt};
use crate::config::value::{ConfigDuration, Parsed, Secret, TextSchema, Timeout};

/// `identity`: how signed-in visitors are recognised, and how their `user-hash` is keyed.
/// Set one source or several: they are asked in the order below, and the first that finds
/// a session in the request decides.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// The assistant's secret key: `user-hash` is the lowercase hex HMAC-SHA256 of the user
    /// id keyed with it. Never leaves the process; write it as `${NAME}` so it comes from
    /// the environment.
    pub secret_key: Secret,
    /// An SSO gateway in front of the proxy (oauth2-proxy, Authelia, …) that asserts the
    /// visitor in plain request headers; asked first.
    /// Default: none.
    #[schemars(with = "Option<RawGateway>")]
    pub gateway: Option<Spanned<RawGateway>>,
    /// A session JWT, in a header, a cookie or cookie chunks, verified with a configured
    /// key; asked after `gateway`.
    /// Default: none.
    #[schemars(with = "Option<RawJwt>")]
    pub jwt: Option<Spanned<RawJwt>>,
    /// A Rails app's cookie-store session, decrypted with its `secret_key_base`; asked after
    /// `jwt`.
    /// Default: none.
    pub rails: Option<crate::config::frameworks::RawRails>,
    /// A Flask app's session cookie, verified with its `SECRET_KEY`; asked after `rails`.
    /// Default: none.
    pub flask: Option<crate::config::frameworks::RawFlask>,
    /// An Express app's `cookie-session` cookie, verified with its keys; asked after
    /// `flask`.
    /// Default: none.
    pub cookie_session: Option<crate::config::frameworks::RawCookieSession>,
    /// Sessions that are none of these: the app is asked who the visitor is, with their
    /// session cookies — a "who am I" endpoint (JSON, `claims`) or a page it already renders
    /// (HTML, `select`); asked last. At least one of `gateway`, `jwt`, `rails`, `flask`,
    /// `cookie_session` and `lookup`.
    /// Default: none.
    #[schemars(with = "Option<RawLookup>")]
    pub lookup: Option<Spanned<RawLookup>>,
}

/// `identity.gateway`: an SSO gateway in front of the proxy asserts the visitor in headers.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    /// The peers allowed to assert identity (addresses or CIDR blocks): from any other, the
    /// gateway's headers are ignored and removed before the upstream.
    /// Default: `trusted_proxies`.
    pub from: Option<Vec<Parsed<TrustedNet>>>,
    /// The headers the gateway puts the visitor in.
    pub headers: RawGatewayHeaders,
}

/// The request headers a gateway puts the visitor in.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayHeaders {
    /// The header with the user id (`X-Auth-Request-User`): required; a non-empty value
    /// identifies the visitor, by the same rules as a claim.
    pub user_id: Parsed<HeaderNameValue>,
    /// The header with the display name (`X-Auth-Request-Preferred-Username`).
    /// Default: none.
    pub user_name: Option<Parsed<HeaderNameValue>>,
    /// The header with the avatar URL (kept only if `https://`).
    /// Default: none.
    pub user_avatar: Option<Parsed<HeaderNameValue>>,
}

/// `identity.lookup`: sessions that are not JWTs, asked of the site's "who am I" endpoint.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLookup {
    /// The endpoint: a path on the upstream (`/api/whoami`), asked through the upstream's
    /// client with the `Host` a page request would carry, or an absolute `http://` or
    /// `https://` URL.
    pub url: Parsed<LookupUrl>,
    /// The session cookies, at least one (`[PHPSESSID]`): only these are forwarded to the
    /// endpoint, and only a request carrying one of them is looked up.
    #[schemars(with = "Vec<Parsed<CookieName>>")]
    pub cookies: Spanned<Vec<Parsed<CookieName>>>,
    /// The most a page waits for the endpoint's answer; then its visitor is anonymous
    /// (`failed:lookup_timeout`). A duration above zero.
    /// Default: `1s`.
    pub timeout: Option<Parsed<Timeout>>,
    /// How long an answer (signed in or signed out) is reused for the same cookie values;
    /// `0s`: never. At most a day. A failed lookup is not cached.
    /// Default: `60s`.
    pub cache_ttl: Option<Parsed<ConfigDuration>>,
    /// The most sessions whose answers are remembered, at least 1.
    /// Default: `10000`.
    #[schemars(with = "Option<u64>")]
    pub max_entries: Option<Spanned<u64>>,
    /// Where the identity is in the endpoint's JSON answer.
    /// Default: the user id at `id`, no name or avatar.
    pub claims: Option<RawClaims>,
    /// Where the identity is in an HTML page of the app (an account page): CSS selectors,
    /// the HTML counterpart of `claims` — set one of the two. The page is read as it
    /// streams, at most its first 1 MiB; a `200` page with a user id signs the visitor in,
    /// without one (or a redirect, `401`, `403`) it is signed out.
    /// Default: none (the answer is JSON, read by `claims`).
    pub select: Option<RawSelect>,
    /// After a lookup that failed (`5xx`, a timeout, a refused connection, an answer that is
    /// not what `claims`/`select` read), the same session is not asked again for this long
    /// (`skipped:backoff`); `0s`: asked again on its next page.
    /// Default: `5s`.
    pub error_ttl: Option<Parsed<ConfigDuration>>,
    /// The most lookups running at once, at least 1: a page that would exceed it is
    /// anonymous at once (`skipped:busy`).
    /// Default: `64`.
    #[schemars(with = "Option<u64>")]
    pub max_concurrent: Option<Spanned<u64>>,
}

/// `identity.lookup.select`: where the identity is in an HTML page of the app.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSelect {
    /// The element that gives the user id: required. Its value follows the same rules as a
    /// claim (no markup or control characters, at most 256 bytes).
    pub user_id: RawPick,
    /// The element that gives the display name.
    /// Default: none.
    pub user_name: Option<RawPick>,
    /// The element that gives the avatar URL (kept only if `https://`).
    /// Default: none.
    pub user_avatar: Option<RawPick>,
}

/// One value read out of an HTML page: the first element `css` matches, its `attribute`
/// or, without one, its text.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPick {
    /// A CSS selector; the first element it matches in document order gives the value.
    pub css: Parsed<CssSelector>,
    /// The attribute of that element to read, its character references decoded.
    /// Default: none (the element's text, trimmed, character references decoded).
    pub attribute: Option<Parsed<AttributeName>>,
}

/// `identity.lookup.url`: an absolute URL, or a path (`/api/whoami`) on the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupUrl {
    Absolute(FetchUrl),
    Path(http::uri::PathAndQuery),
}

impl FromStr for LookupUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with('/') && !s.starts_with("//") {
            return s.parse().map(LookupUrl::Path).map_err(|e| format!("invalid path {s:?}: {e}"));
        }
        s.parse()
            .map(LookupUrl::Absolute)
            .map_err(|e| format!("{e}; or write a path on the upstream, like /api/whoami"))
    }
}

/// A CSS selector lol_html can match (`lookup.select`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CssSelector(pub String);

impl FromStr for CssSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        s.parse::<lol_html::Selector>().map_err(|e| format!("{s:?} is not a CSS selector the proxy can match: {e}"))?;
        Ok(CssSelector(s.to_owned()))
    }
}

/// An HTML attribute name, lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeName(pub String);

impl FromStr for AttributeName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let forbidden = |c: char| c.is_whitespace() || c.is_control() || "\"'>/=<".contains(c);
        if s.is_empty() || s.chars().any(forbidden) {
            return Err(format!("{s:?} is not an attribute name"));
        }
        Ok(AttributeName(s.to_ascii_lowercase()))
    }
}

impl TextSchema for AttributeName {
    const KIND: &'static str = "attribute name";
}
impl TextSchema for CssSelector {
    const KIND: &'static str = "CSS selector";
}
impl TextSchema for LookupUrl {
    const KIND: &'static str = "URL or path";
}
