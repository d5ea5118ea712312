//! The YAML file's shape, exactly as written: every key the file may hold, nothing else.
//!
//! Unknown keys are rejected (`deny_unknown_fields`). Scalars are parsed as they are read
//! (see [`super::value`]); what needs several keys at once or the file system is checked
//! when [`super::Config`] is built from this.
//!
//! This file holds the top level and the process-wide blocks (`limits`, `log`, `admin`);
//! each site's blocks are in `site.rs` (`upstream`, `assistant`, `inject`), `identity.rs`
//! (`identity`, its `gateway` and `lookup`), `jwt.rs` (`identity.jwt`) and `claims.rs`
//! (`claims`, wherever it appears).

mod claims;
mod identity;
mod jwt;
mod site;

use std::str::FromStr;

use serde::Deserialize;

use super::value::{ConfigDuration, ListenAddr, Parsed, TextSchema, Timeout};

pub use claims::{ClaimPath, RawClaims};
pub use identity::{
    AttributeName, CssSelector, LookupUrl, RawGateway, RawGatewayHeaders, RawIdentity, RawLookup, RawPick, RawSelect,
};
pub use jwt::{CookieName, FetchUrl, HeaderNameValue, KeyUrl, OneOrMany, RawJwt};
pub use site::{CspSource, PathGlob, RawAssistant, RawInject, RawTheme, RawUpstream, ScriptUrl, UpstreamUrl};

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

impl TextSchema for TrustedNet {
    const KIND: &'static str = "address or CIDR block";
}
