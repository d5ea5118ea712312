//! The YAML file's shape, exactly as written: every key the file may hold, nothing else.
//!
//! Unknown keys are rejected (`deny_unknown_fields`). Scalars are parsed as they are read
//! (see [`super::value`]); what needs several keys at once or the file system is checked
//! when [`super::Config`] is built from this.

use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::value::{
    Appearance, ConfigDuration, HostHeader, JwtAlgorithm, Leeway, ListenAddr, NonEmpty, Parsed, Position, Secret,
    SecretEncoding, TextSchema, Timeout,
};

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<Parsed<ListenAddr>>,
    pub shutdown_grace_period: Option<Parsed<ConfigDuration>>,
    pub trusted_proxies: Option<Vec<Parsed<TrustedNet>>>,
    pub underscores_in_headers: Option<bool>,
    pub listen_tls: Option<super::tls::RawListenTls>,
    pub admin: Option<RawAdmin>,
    pub log: Option<RawLog>,
    pub limits: Option<RawLimits>,
    pub upstream: Option<RawUpstream>,
    pub assistant: Option<RawAssistant>,
    pub identity: Option<RawIdentity>,
    pub inject: Option<RawInject>,
    pub sites: Option<Vec<RawSite>>,
    pub default_site: Option<Parsed<super::sites::HostPattern>>,
}

/// One site of many: its hosts, and the blocks that replace the top-level ones for it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub hosts: Vec<Parsed<super::sites::HostPattern>>,
    pub upstream: Option<RawUpstream>,
    pub assistant: Option<RawAssistant>,
    pub identity: Option<RawIdentity>,
    pub inject: Option<RawInject>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_connections: Option<u64>,
    pub header_read_timeout: Option<Parsed<Timeout>>,
    pub idle_timeout: Option<Parsed<Timeout>>,
    pub body_stall_timeout: Option<Parsed<Timeout>>,
    pub rewriter_max_memory: Option<u64>,
    pub max_header_size: Option<u64>,
    pub workers: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<Parsed<super::value::LogFormat>>,
    pub level: Option<Parsed<super::value::LogLevel>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Parsed<ListenAddr>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub url: Parsed<UpstreamUrl>,
    pub host_header: Option<Parsed<HostHeader>>,
    pub connect_timeout: Option<Parsed<Timeout>>,
    pub response_timeout: Option<Parsed<Timeout>>,
    #[schemars(with = "Option<super::tls::RawUpstreamTls>")]
    pub tls: Option<Spanned<super::tls::RawUpstreamTls>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAssistant {
    pub id: Parsed<NonEmpty>,
    pub script_url: Option<Parsed<ScriptUrl>>,
    pub theme: Option<RawTheme>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTheme {
    pub appearance: Option<Parsed<Appearance>>,
    pub button_background_color: Option<Parsed<NonEmpty>>,
    pub button_color: Option<Parsed<NonEmpty>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    pub secret_key: Secret,
    #[schemars(with = "Option<RawGateway>")]
    pub gateway: Option<Spanned<RawGateway>>,
    #[schemars(with = "Option<RawJwt>")]
    pub jwt: Option<Spanned<RawJwt>>,
    #[schemars(with = "Option<RawLookup>")]
    pub lookup: Option<Spanned<RawLookup>>,
}

/// `identity.lookup`: sessions that are not JWTs, asked of the site's "who am I" endpoint.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLookup {
    pub url: Parsed<LookupUrl>,
    #[schemars(with = "Vec<Parsed<CookieName>>")]
    pub cookies: Spanned<Vec<Parsed<CookieName>>>,
    pub timeout: Option<Parsed<Timeout>>,
    pub cache_ttl: Option<Parsed<ConfigDuration>>,
    #[schemars(with = "Option<u64>")]
    pub max_entries: Option<Spanned<u64>>,
    pub claims: Option<RawClaims>,
    pub select: Option<RawSelect>,
    pub error_ttl: Option<Parsed<ConfigDuration>>,
    #[schemars(with = "Option<u64>")]
    pub max_concurrent: Option<Spanned<u64>>,
}

/// `identity.lookup.select`: where the identity is in an HTML page of the app.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSelect {
    pub user_id: RawPick,
    pub user_name: Option<RawPick>,
    pub user_avatar: Option<RawPick>,
}

/// One value read out of an HTML page: the first element `css` matches, its `attribute`
/// or, without one, its text.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPick {
    pub css: Parsed<CssSelector>,
    pub attribute: Option<Parsed<AttributeName>>,
}

/// `identity.gateway`: an SSO gateway in front of the proxy asserts the visitor in headers.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub from: Option<Vec<Parsed<TrustedNet>>>,
    pub headers: RawGatewayHeaders,
}

/// The request headers a gateway puts the visitor in.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayHeaders {
    pub user_id: Parsed<HeaderNameValue>,
    pub user_name: Option<Parsed<HeaderNameValue>>,
    pub user_avatar: Option<Parsed<HeaderNameValue>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    pub cookie: Option<Parsed<CookieName>>,
    pub cookie_chunks: Option<bool>,
    pub header: Option<Parsed<HeaderNameValue>>,
    #[schemars(with = "Option<Vec<Parsed<JwtAlgorithm>>>")]
    pub algorithms: Option<Spanned<Vec<Parsed<JwtAlgorithm>>>>,
    #[schemars(with = "Option<Secret>")]
    pub secret: Option<Spanned<Secret>>,
    pub secret_encoding: Option<Parsed<SecretEncoding>>,
    #[schemars(with = "Option<Parsed<PathBuf>>")]
    pub public_key_file: Option<Spanned<Parsed<PathBuf>>>,
    #[schemars(with = "Option<Parsed<PathBuf>>")]
    pub jwks_file: Option<Spanned<Parsed<PathBuf>>>,
    #[schemars(with = "Option<Parsed<FetchUrl>>")]
    pub jwks_url: Option<Spanned<Parsed<FetchUrl>>>,
    #[schemars(with = "Option<Parsed<KeyUrl>>")]
    pub key_url: Option<Spanned<Parsed<KeyUrl>>>,
    pub header_claims: Option<std::collections::BTreeMap<String, Parsed<NonEmpty>>>,
    pub jwks_optional: Option<bool>,
    pub jwks_refresh: Option<Parsed<Timeout>>,
    pub jwks_min_refresh: Option<Parsed<ConfigDuration>>,
    pub jwks_timeout: Option<Parsed<Timeout>>,
    pub issuer: Option<OneOrMany<Parsed<NonEmpty>>>,
    pub audience: Option<OneOrMany<Parsed<NonEmpty>>>,
    pub required_claims: Option<Vec<Parsed<ClaimPath>>>,
    pub leeway: Option<Parsed<Leeway>>,
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

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClaims {
    pub user_id: Option<Parsed<ClaimPath>>,
    pub user_name: Option<Parsed<ClaimPath>>,
    pub user_avatar: Option<Parsed<ClaimPath>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInject {
    pub position: Option<Parsed<Position>>,
    pub include_paths: Option<Vec<Parsed<PathGlob>>>,
    pub exclude_paths: Option<Vec<Parsed<PathGlob>>>,
    pub csp_allow: Option<Vec<Parsed<CspSource>>>,
}

/// An origin for `inject.csp_allow`: `https://host[:port]`, the host may start with `*.`.
/// Nothing else, so it can never break the policy it is added to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspSource(pub String);

impl FromStr for CspSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{s:?} is not an origin like https://www.useinvent.com or https://*.example.com");
        let schemes = ["https://", "http://", "wss://", "ws://"];
        let rest = schemes.iter().find_map(|scheme| s.strip_prefix(scheme)).ok_or_else(invalid)?;
        let (host, port) = rest.split_once(':').unwrap_or((rest, ""));
        let host = host.strip_prefix("*.").unwrap_or(host);
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        let port_ok = if rest.contains(':') { port.parse::<u16>().is_ok() } else { true };
        if host_ok && port_ok { Ok(CspSource(s.to_owned())) } else { Err(invalid()) }
    }
}

/// `upstream.url`: `http://` or `https://`, a host, an optional port, and no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// `authority` as a `Host` header value, made once.
    pub host: http::HeaderValue,
}

impl FromStr for UpstreamUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uri: http::Uri = s.parse().map_err(|e| format!("invalid URL {s:?}: {e}"))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| format!("{s:?} needs a scheme: http:// or https://"))?;
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return Err(format!("unsupported scheme in {s:?}: use http:// or https://"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| format!("{s:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("{s:?} must not carry credentials"));
        }
        let path_is_root = matches!(uri.path(), "" | "/");
        if !path_is_root || uri.query().is_some() {
            return Err(format!(
                "{s:?} has a path or query; the upstream is an origin (scheme://host:port) and requests keep their own path"
            ));
        }
        let host = http::HeaderValue::from_str(authority.as_str()).map_err(|_| format!("{s:?} has an invalid host"))?;
        Ok(UpstreamUrl { scheme, authority, host })
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

/// A peer whose `X-Forwarded-Proto`/`-Host` are believed: an address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedNet(pub ipnet::IpNet);

impl FromStr for TrustedNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        s.parse::<ipnet::IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(|net| TrustedNet(net.trunc()))
            .map_err(|_| format!("{s:?} is not an address or CIDR block like 10.0.0.0/8"))
    }
}

/// `assistant.script_url`: an absolute `http(s)://` URL or a path on the site itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptUrl(pub String);

impl FromStr for ScriptUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let is_path = s.starts_with('/') && !s.starts_with("//");
        let is_absolute = s.starts_with("https://") || s.starts_with("http://");
        let parses = s.parse::<http::Uri>().is_ok();
        if (is_path || is_absolute) && parses {
            Ok(ScriptUrl(s.to_owned()))
        } else {
            Err(format!("{s:?} is not an http(s):// URL or a path starting with /"))
        }
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

/// A dot path into the JWT payload: `sub`, `user.id`, `user.ids.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(pub Vec<String>);

impl FromStr for ClaimPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let segments: Vec<String> = s.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("{s:?} is not a claim path like `sub` or `user.id`"));
        }
        Ok(ClaimPath(segments))
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// A glob on the request path: `*` stays within one segment, `**` crosses segments.
#[derive(Debug, Clone)]
pub struct PathGlob {
    pub pattern: String,
    pub glob: globset::Glob,
}

impl FromStr for PathGlob {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.starts_with('/') {
            return Err(format!("{s:?} must start with / (it is matched against the request path)"));
        }
        let glob = globset::GlobBuilder::new(s)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("invalid glob {s:?}: {}", e.kind()))?;
        Ok(PathGlob { pattern: s.to_owned(), glob })
    }
}

impl TextSchema for AttributeName {}
impl TextSchema for ClaimPath {}
impl TextSchema for CssSelector {}
impl TextSchema for KeyUrl {}
impl TextSchema for CookieName {}
impl TextSchema for CspSource {}
impl TextSchema for FetchUrl {}
impl TextSchema for HeaderNameValue {}
impl TextSchema for LookupUrl {}
impl TextSchema for PathGlob {}
impl TextSchema for ScriptUrl {}
impl TextSchema for TrustedNet {}
impl TextSchema for UpstreamUrl {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_origins() {
        let url: UpstreamUrl = "http://127.0.0.1:3000".parse().unwrap();
        assert_eq!(url.authority.as_str(), "127.0.0.1:3000");
        assert!("https://app.internal/".parse::<UpstreamUrl>().is_ok());
        assert!("ftp://x".parse::<UpstreamUrl>().is_err());
        assert!("127.0.0.1:3000".parse::<UpstreamUrl>().is_err());
        assert!("http://x/app".parse::<UpstreamUrl>().is_err());
        assert!("http://user:pw@x".parse::<UpstreamUrl>().is_err());
    }

    #[test]
    fn script_urls_are_absolute_or_site_paths() {
        assert!("https://www.useinvent.com/button.js".parse::<ScriptUrl>().is_ok());
        assert!("/static/button.js".parse::<ScriptUrl>().is_ok());
        assert!("//cdn.example/button.js".parse::<ScriptUrl>().is_err());
        assert!("javascript:alert(1)".parse::<ScriptUrl>().is_err());
    }

    #[test]
    fn csp_sources_are_plain_origins() {
        for good in ["https://www.useinvent.com", "https://*.useinvent.com", "wss://chat.example:8443"] {
            assert!(good.parse::<CspSource>().is_ok(), "{good}");
        }
        for bad in [
            "www.useinvent.com",
            "https://x; script-src *",
            "https://a b",
            "'unsafe-inline'",
            "https://x:port",
            "https://",
        ] {
            assert!(bad.parse::<CspSource>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cookie_names_are_tokens() {
        assert!("session".parse::<CookieName>().is_ok());
        assert!("__Host-sid".parse::<CookieName>().is_ok());
        assert!("a b".parse::<CookieName>().is_err());
        assert!("a=b".parse::<CookieName>().is_err());
    }

    #[test]
    fn claim_paths_split_on_dots() {
        assert_eq!("user.ids.0".parse::<ClaimPath>().unwrap().0, ["user", "ids", "0"]);
        assert!("user..id".parse::<ClaimPath>().is_err());
    }

    #[test]
    fn path_globs_keep_single_stars_within_a_segment() {
        let matcher = |p: &str| p.parse::<PathGlob>().unwrap().glob.compile_matcher();
        assert!(matcher("/**").is_match("/"));
        assert!(matcher("/**").is_match("/a/b/c"));
        assert!(matcher("/admin/*").is_match("/admin/users"));
        assert!(!matcher("/admin/*").is_match("/admin/users/1"));
        assert!(matcher("/admin/**").is_match("/admin/users/1"));
        assert!("admin/*".parse::<PathGlob>().is_err());
    }
}
