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

/// The config file: the process-wide settings (listeners, limits, logs), and the blocks of
/// the one site behind the proxy — or of several, with `sites`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The address the proxy listens on for plain HTTP (HTTP/1.x, and HTTP/2 with prior
    /// knowledge): `IP:PORT`, no host names (`[::]:8080` for IPv6; port 0 picks a free one).
    /// A reload that changes it binds the new address first.
    /// Default: `0.0.0.0:8080`.
    pub listen: Option<Parsed<ListenAddr>>,
    /// After SIGTERM or SIGINT the proxy stops accepting connections, and requests in flight
    /// get this long to finish before they are cut. A duration with a unit (`30s`, `2m`).
    /// Read at start-up only: a reload does not change it.
    /// Default: `30s`.
    pub shutdown_grace_period: Option<Parsed<ConfigDuration>>,
    /// The load balancers in front of the proxy, as addresses or CIDR blocks (`10.0.0.0/8`):
    /// from these peers the `X-Forwarded-Proto` and `X-Forwarded-Host` they send are passed
    /// on, and so are `Forwarded`, `X-Real-IP`, `X-Forwarded-Port`, `-Prefix`, `-Scheme`,
    /// `-Ssl` and `-Server`; from any other peer they are overwritten or dropped.
    /// Default: none.
    pub trusted_proxies: Option<Vec<Parsed<TrustedNet>>>,
    /// Pass request headers whose names have an `_` (`X_Forwarded_For`) to the upstream. By
    /// default they are dropped, as nginx does: CGI-style apps (PHP, Perl, WSGI) read them as
    /// the dashed name, so a client could pass for a header the proxy sets.
    /// Default: `false`.
    pub underscores_in_headers: Option<bool>,
    /// An HTTPS listener beside `listen`: TLS terminated by the proxy, HTTP/2 or HTTP/1.1 by
    /// ALPN; the upstream sees `X-Forwarded-Proto: https`.
    /// Default: none (no HTTPS listener).
    pub listen_tls: Option<super::tls::RawListenTls>,
    /// The admin listener: `/healthz`, `/readyz` and `/metrics`, on a port of their own.
    /// Default: none (no admin listener).
    pub admin: Option<RawAdmin>,
    /// How the proxy logs: format and level. Read at start-up only.
    /// Default: text at `info`.
    pub log: Option<RawLog>,
    /// What the proxy takes on at most, and how long it waits.
    /// Default: each key's own default.
    pub limits: Option<RawLimits>,
    /// The site behind the proxy; with `sites`, the upstream of the sites that give none.
    /// Default: none (required, unless every entry of `sites` has its own).
    pub upstream: Option<RawUpstream>,
    /// The Invent assistant to show; with `sites`, the assistant of the sites that give none.
    /// Default: none (required, unless every entry of `sites` has its own).
    pub assistant: Option<RawAssistant>,
    /// Who a visitor is, for the widget's `user-id` and `user-hash`; with `sites`, the
    /// identity of the sites that give none.
    /// Default: none (every visitor is anonymous).
    pub identity: Option<RawIdentity>,
    /// Which pages get the widget, and where; with `sites`, the rules of the sites that give
    /// none.
    /// Default: every path, before `</body>`.
    pub inject: Option<RawInject>,
    /// Several sites from one proxy, routed by the request's host (`Host`, or the target's
    /// authority: HTTP/2 `:authority`, an absolute-form target), port and case ignored. An
    /// exact name wins over any wildcard, a longer wildcard over a shorter one; a host
    /// listed by two sites is an error. Listeners, admin, logs, limits and metrics are
    /// shared.
    /// Default: none (one site, which answers every host).
    pub sites: Option<Vec<RawSite>>,
    /// A host listed in one entry of `sites`: requests for a host no site lists go to that
    /// site. Only with `sites`.
    /// Default: none (such requests get `421 Misdirected Request`).
    pub default_site: Option<Parsed<super::sites::HostPattern>>,
}

/// One site of many: its hosts, and the blocks that replace the top-level ones for it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    /// The names the site answers for, at least one: `www.example.com`, or `*.` and a domain
    /// (`*.blog.example.com` matches `a.blog.example.com`, never `blog.example.com` or
    /// `evilblog.example.com`). No port or path; case and a trailing dot are ignored.
    pub hosts: Vec<Parsed<super::sites::HostPattern>>,
    /// The site's upstream, as the top-level `upstream` block.
    /// Default: the top-level `upstream`.
    pub upstream: Option<RawUpstream>,
    /// The site's assistant, as the top-level `assistant` block.
    /// Default: the top-level `assistant`.
    pub assistant: Option<RawAssistant>,
    /// How the site's visitors are recognised, as the top-level `identity` block.
    /// Default: the top-level `identity`.
    pub identity: Option<RawIdentity>,
    /// Which of the site's pages get the widget, as the top-level `inject` block.
    /// Default: the top-level `inject`.
    pub inject: Option<RawInject>,
}

/// `limits`: what the proxy takes on at most, and how long it waits. Read at start-up only,
/// except `body_stall_timeout` and `rewriter_max_memory`, which a reload sets for the
/// requests after it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Client connections served at once, at least 1; more wait in the listen backlog (1,024
    /// deep) until one closes. Each needs a file descriptor and an upstream connection
    /// another: give the process `ulimit -n` (systemd `LimitNOFILE`) above twice this.
    /// Default: `10000`.
    pub max_connections: Option<u64>,
    /// The most a client may take to send a whole request head, timed from its first byte
    /// (from the accept for a connection's first request); a slower one (slowloris) is
    /// disconnected. A duration above zero.
    /// Default: `10s`.
    pub header_read_timeout: Option<Parsed<Timeout>>,
    /// How long a client connection may stay open with no request in flight, HTTP/1.1 and
    /// HTTP/2 alike; then it is closed gracefully (HTTP/2: GOAWAY). A response that streams
    /// longer is never cut by it, and a client's PINGs do not keep an idle connection open.
    /// A duration above zero (nginx's `keepalive_timeout`).
    /// Default: `75s`.
    pub idle_timeout: Option<Parsed<Timeout>>,
    /// The most a response body may wait for the upstream's next bytes; past it the response
    /// is ended (the client sees it cut short), logged as `upstream_stall` and counted as an
    /// upstream `timeout`. A slow client never counts, nor bytes that arrive but make no
    /// output yet (a long tag the rewriter holds until it ends). A duration above zero.
    /// Default: `30s`.
    pub body_stall_timeout: Option<Parsed<Timeout>>,
    /// The rewriter's (lol_html's) memory budget per page, in bytes, at least 16384: a page
    /// that needs more (a tag or attribute megabytes long) passes through unchanged and
    /// without the widget from that point, never truncated, logged as `rewrite_failed`.
    /// Default: `1048576` (1 MiB).
    pub rewriter_max_memory: Option<u64>,
    /// The largest request head a client may send, in bytes, at least 8192: more gets `431`
    /// (a request target over 64 KiB: `414`); on HTTP/2, the largest header list.
    /// Default: `131072` (128 KiB).
    pub max_header_size: Option<u64>,
    /// Threads serving client connections, at least 1 (more than 1,024 counts as 1,024), as
    /// nginx's `worker_processes`: each has its own event loop and its own keep-alive
    /// connections to the upstream, and serves a connection for its whole life. A reload
    /// that changes it logs a warning and keeps the running count.
    /// Default: one per CPU the process may use (its affinity and cgroup quota counted).
    pub workers: Option<u64>,
}

/// `log`: how the proxy logs, on standard output. Read at start-up only.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `text` (`key=value` fields after a message) or `json` (one JSON object per line).
    /// Default: `text`.
    pub format: Option<Parsed<super::value::LogFormat>>,
    /// A level (`off`, `error`, `warn`, `info`, `debug`, `trace`) or `target=level`
    /// directives (`warn,access=info`). `RUST_LOG`, when set, overrides it.
    /// Default: `info`.
    pub level: Option<Parsed<super::value::LogLevel>>,
}

/// `admin`: the admin listener, `/healthz` (alive), `/readyz` (ready for traffic) and
/// `/metrics` (Prometheus), on a port of its own. Keep it off the internet.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Where the admin listener listens: `IP:PORT`, never the port of `listen` or
    /// `listen_tls.address`. A reload that changes it binds the new address first.
    pub listen: Parsed<ListenAddr>,
}

/// `upstream`: the site behind the proxy, and how the proxy reaches it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// The site's origin: `http://` or `https://`, a host, an optional port, no path, query
    /// or credentials (`http://127.0.0.1:3000`). Requests keep their own path. An `https://`
    /// upstream's certificate is verified against the system's CA roots (see `tls`).
    pub url: Parsed<UpstreamUrl>,
    /// The `Host` the upstream receives: `preserve` (the client's, from the request's one
    /// authority) or `upstream` (the authority of `url`, for an upstream that routes by name).
    /// Default: `preserve`.
    pub host_header: Option<Parsed<HostHeader>>,
    /// The most connecting to the upstream may take; past it the client gets `502`. A
    /// duration above zero.
    /// Default: `5s`.
    pub connect_timeout: Option<Parsed<Timeout>>,
    /// The most the upstream may take to send its response head, counted from when the
    /// request (its body included) has been sent, and the most an upstream may stop taking
    /// an upload; past it the client gets `504`. A client that is merely slow to upload is
    /// not cut off. A duration above zero.
    /// Default: `60s`.
    pub response_timeout: Option<Parsed<Timeout>>,
    /// How an `https://` upstream is verified; only with an `https://` `url`.
    /// Default: the system's CA roots, for the URL's host.
    #[schemars(with = "Option<super::tls::RawUpstreamTls>")]
    pub tls: Option<Spanned<super::tls::RawUpstreamTls>>,
}

/// `assistant`: the Invent assistant the widget shows.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAssistant {
    /// The assistant's id, the widget's `assistant-id` (`ast_…`); not empty.
    pub id: Parsed<NonEmpty>,
    /// The widget's script: an `http://` or `https://` URL, or a path on the site starting
    /// with `/`. A page that already loads it does not get it twice.
    /// Default: `https://www.useinvent.com/button.js`.
    pub script_url: Option<Parsed<ScriptUrl>>,
    /// The widget's `theme-*` attributes; each is written only when set.
    /// Default: none (the widget's own theme).
    pub theme: Option<RawTheme>,
}

/// `assistant.theme`: the widget's optional `theme-*` attributes.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTheme {
    /// `theme-appearance`: `auto`, `light` or `dark`.
    /// Default: not written (the widget takes `auto`).
    pub appearance: Option<Parsed<Appearance>>,
    /// `theme-button-background-color`: any CSS colour (`"#6366f1"`; quote it in YAML).
    /// Default: not written.
    pub button_background_color: Option<Parsed<NonEmpty>>,
    /// `theme-button-color`: any CSS colour (`"#ffffff"`).
    /// Default: not written.
    pub button_color: Option<Parsed<NonEmpty>>,
}

/// `identity`: how signed-in visitors are recognised, and how their `user-hash` is keyed.
/// Set `jwt`, `lookup`, or both: a request that carries a session token is identified by
/// it, one without by the lookup.
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
    /// Sessions that are not JWTs: the app is asked who the visitor is, with their session
    /// cookies — a "who am I" endpoint (JSON, `claims`) or a page it already renders (HTML,
    /// `select`); asked last. At least one of `gateway`, `jwt` and `lookup`.
    /// Default: none.
    #[schemars(with = "Option<RawLookup>")]
    pub lookup: Option<Spanned<RawLookup>>,
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
    /// Claims a token must carry, not null, as dot paths (`[exp, sub]`); a token without one
    /// is `rejected:missing_claim`.
    /// Default: `[exp]`.
    pub required_claims: Option<Vec<Parsed<ClaimPath>>>,
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

/// `claims`: where the identity is in a JSON document (a token's payload, a lookup's answer),
/// as dot paths into nested objects and arrays: `sub`, `user.id`, `user.ids.0`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClaims {
    /// The user id (`user-id`): a string (at most 256 bytes, no control characters, none of
    /// `<>"'` and backtick) or an integer, written in decimal; anything else is
    /// `rejected:invalid_user_id`. Missing, null or empty: in a token `rejected:no_user_id`,
    /// in a lookup's answer not signed in.
    /// Default: `sub` in `identity.jwt.claims`, `id` in `identity.lookup.claims`.
    pub user_id: Option<Parsed<ClaimPath>>,
    /// The display name (`user-name`). Missing or unusable, it is left out; it never makes an
    /// identity invalid.
    /// Default: none.
    pub user_name: Option<Parsed<ClaimPath>>,
    /// An avatar URL (`user-avatar`); only an absolute `https://` URL is used. Missing or
    /// unusable, it is left out; it never makes an identity invalid.
    /// Default: none.
    pub user_avatar: Option<Parsed<ClaimPath>>,
}

/// `inject`: which pages get the widget, and where in them.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInject {
    /// `body_end` (before `</body>`) or `head_end` (before `</head>`). A page without the
    /// tag gets the widget at its end.
    /// Default: `body_end`.
    pub position: Option<Parsed<Position>>,
    /// Path globs whose pages may get the widget, not an empty list: `*` stays within one
    /// segment, `**` crosses segments; each starts with `/`. Matched, case-sensitively,
    /// against the request path decoded and normalised (`//a/./b/../c;x=1` is `/a/c`).
    /// Default: `["/**"]` (every path).
    pub include_paths: Option<Vec<Parsed<PathGlob>>>,
    /// Path globs whose pages never get the widget, written and matched as `include_paths`;
    /// an exclusion wins over an inclusion.
    /// Default: `[]`.
    pub exclude_paths: Option<Vec<Parsed<PathGlob>>>,
    /// Origins (`https://host[:port]`, or `http`, `ws`, `wss`; the host may start with `*.`)
    /// added to a rewritten page's `Content-Security-Policy` header where it governs what the
    /// widget loads: scripts, `connect-src`, frames, images, styles and fonts. Where only
    /// `default-src` governs, the specific directive is added instead, so nothing else is
    /// widened.
    /// Default: `[]`.
    pub csp_allow: Option<Vec<Parsed<CspSource>>>,
    /// Keep one widget across Turbo Drive and Turbolinks visits, which replace `<body>` with
    /// the next page's fetched in the background: the injected element carries an `id`
    /// (`invent-assistant`; for a signed-in visitor `invent-assistant-` and a digest of the
    /// identity attributes) and `data-turbo-permanent` and `data-turbolinks-permanent`, so
    /// the element of the first page is kept while the visitor's identity stays the same;
    /// the script tag carries `data-turbo-eval="false"` and `data-turbolinks-eval="false"`,
    /// so it runs once per full page load; and a Turbo or Turbolinks visit's request (not
    /// a Turbo Frame's) gets the widget as a navigation does. pjax needs none of it. `false`:
    /// none of these.
    /// Default: `true`.
    pub turbo_permanent: Option<bool>,
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

impl TextSchema for AttributeName {
    const KIND: &'static str = "attribute name";
}
impl TextSchema for CssSelector {
    const KIND: &'static str = "CSS selector";
}
impl TextSchema for KeyUrl {
    const KIND: &'static str = "URL with {kid}";
}
impl TextSchema for ClaimPath {
    const KIND: &'static str = "dot path";
}
impl TextSchema for CookieName {
    const KIND: &'static str = "cookie name";
}
impl TextSchema for CspSource {
    const KIND: &'static str = "origin";
}
impl TextSchema for FetchUrl {
    const KIND: &'static str = "URL";
}
impl TextSchema for HeaderNameValue {
    const KIND: &'static str = "header name";
}
impl TextSchema for LookupUrl {
    const KIND: &'static str = "URL or path";
}
impl TextSchema for PathGlob {
    const KIND: &'static str = "path glob";
}
impl TextSchema for ScriptUrl {
    const KIND: &'static str = "URL or path";
}
impl TextSchema for TrustedNet {
    const KIND: &'static str = "address or CIDR block";
}
impl TextSchema for UpstreamUrl {
    const KIND: &'static str = "origin URL";
}

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
