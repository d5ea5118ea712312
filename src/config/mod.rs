//! Configuration: the YAML file read once at start-up into a typed, validated [`Config`].
//!
//! Loading happens in two steps. [`raw`] mirrors the file and rejects unknown keys and
//! malformed scalars, with the key path, line and column; `Config::build` then checks
//! what spans several keys and loads key material, so that a running proxy never
//! discovers a bad setting on its first request.

mod identity;
mod jwks;
pub(crate) use jwks::signature_keys;
mod keys;
mod load;
pub mod raw;
pub mod sites;
mod summary;
pub mod tls;
pub mod value;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use globset::GlobSet;

pub use identity::{Claims, Identity, Jwt, Lookup, LookupTarget, TokenSource};
pub use keys::{JwksUrl, JwtKey, KeySource, VerificationKey};
pub(crate) use load::BuildError;
pub use load::ConfigError;
pub use raw::{ClaimPath, UpstreamUrl};
pub use value::{Appearance, HostHeader, LogFormat, Position, Secret};

use raw::{PathGlob, RawConfig};

/// The default path of the config file, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "config/invent-proxy.yaml";
/// The default script the widget loads.
pub const DEFAULT_SCRIPT_URL: &str = "https://www.useinvent.com/button.js";

/// Everything the proxy needs to run, typed and validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the proxy listens on for client traffic.
    pub listen: SocketAddr,
    /// How long in-flight requests may run after SIGTERM/SIGINT before they are cut.
    pub shutdown_grace_period: Duration,
    /// Peers (a load balancer in front) whose forwarding headers (`X-Forwarded-Proto`/`-Host`,
    /// `Forwarded`, `X-Real-IP`, …) are kept.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Request headers whose names have an `_` are passed to the upstream (default: they
    /// are dropped, as nginx does, since CGI-style apps read `X_Forwarded_For` as
    /// `X-Forwarded-For`).
    pub underscores_in_headers: bool,
    /// The HTTPS listener, beside `listen`, if configured.
    pub listen_tls: Option<tls::ListenTls>,
    /// The admin listener (`/healthz`, `/readyz`, `/metrics`), if configured.
    pub admin: Option<Admin>,
    pub log: Log,
    pub limits: Limits,
    /// With `sites:`, every site (this config's own blocks are the default site's, or
    /// the first's); empty for one site.
    pub sites: Vec<sites::Site>,
    /// The site an unknown host goes to; `None`: such a request gets 421.
    pub default_site: Option<usize>,
    pub upstream: Upstream,
    pub assistant: Assistant,
    /// `None`: every visitor is anonymous.
    pub identity: Option<Identity>,
    pub inject: Inject,
}

/// What one proxy takes on at most, and how long it waits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Client connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// The most a client may take to send a whole request head (slowloris), timed from
    /// its first byte (from the accept for a connection's first request).
    pub header_read_timeout: Duration,
    /// How long a client connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// The most a response body may wait for its next bytes from the upstream before it
    /// is ended (the connection then closes, so the client sees it cut short).
    pub body_stall_timeout: Duration,
    /// lol_html's memory budget per page: a page that needs more passes through
    /// unchanged and uninjected, never truncated.
    pub rewriter_max_memory: usize,
    /// The largest request head a client may send, in bytes (more: 431, a longer URI: 414).
    pub max_header_size: usize,
    /// Threads serving connections, each with its own runtime (see [`crate::workers`]).
    pub workers: usize,
}

/// The most `limits.workers` there may be (a bigger number is taken as this).
const MAX_WORKERS: usize = 1024;

/// The smallest `limits.max_header_size`: hyper reads request heads in 8 KiB steps.
const MIN_HEADER_SIZE: u64 = 8 * 1024;

/// The smallest `limits.rewriter_max_memory`: lol_html's own buffers need a few KiB.
const MIN_REWRITER_MEMORY: u64 = 16 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            workers: crate::workers::default_count(),
            header_read_timeout: Duration::from_secs(10),
            // nginx's `keepalive_timeout`.
            idle_timeout: Duration::from_secs(75),
            body_stall_timeout: Duration::from_secs(30),
            rewriter_max_memory: invent_rewrite::REWRITER_MAX_MEMORY,
            max_header_size: 128 * 1024,
        }
    }
}

/// How the proxy logs. `RUST_LOG`, when set, overrides `level`.
#[derive(Debug, Clone)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log { format: LogFormat::Text, level: "info".to_owned() }
    }
}

/// The admin listener: never the port proxied traffic comes in on.
#[derive(Debug, Clone)]
pub struct Admin {
    pub listen: SocketAddr,
}

/// The site behind the proxy.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub url: UpstreamUrl,
    pub host_header: HostHeader,
    /// Limit on establishing a TCP connection to the upstream (→ 502).
    pub connect_timeout: Duration,
    /// Limit on receiving the upstream's response headers (→ 504).
    pub response_timeout: Duration,
    /// How an `https://` upstream is verified (system roots unless a CA is given).
    pub tls: tls::UpstreamTls,
}

/// The widget's fixed attributes.
#[derive(Debug, Clone)]
pub struct Assistant {
    pub id: String,
    pub script_url: String,
    pub theme: Theme,
}

/// Optional `theme-*` attributes; each is emitted only when set.
#[derive(Debug, Clone, Default)]
pub struct Theme {
    pub appearance: Option<Appearance>,
    pub button_background_color: Option<String>,
    pub button_color: Option<String>,
}

/// Which pages get the widget, and where.
#[derive(Debug, Clone)]
pub struct Inject {
    pub position: invent_rewrite::Position,
    pub include_paths: PathGlobs,
    pub exclude_paths: PathGlobs,
    /// Origins added to the governing directives of a page's `Content-Security-Policy`.
    pub csp_allow: Vec<String>,
}

/// A compiled list of path globs.
#[derive(Debug, Clone)]
pub struct PathGlobs {
    patterns: Vec<String>,
    set: GlobSet,
}

impl PathGlobs {
    fn new(globs: Vec<PathGlob>) -> Result<Self, String> {
        let mut builder = globset::GlobSetBuilder::new();
        for glob in &globs {
            builder.add(glob.glob.clone());
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(PathGlobs { patterns: globs.into_iter().map(|g| g.pattern).collect(), set })
    }

    /// Whether any glob matches `path`.
    pub fn matches(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    /// The globs as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl Config {
    /// Sets `limits.workers`, for every site too (each holds a copy of the limits): a
    /// running proxy keeps the count it started with.
    pub fn keep_workers(&mut self, workers: usize) {
        self.limits.workers = workers;
        for site in &mut self.sites {
            site.config.limits.workers = workers;
        }
    }

    /// Reads and validates the config file at `path`. Relative paths inside it (key files)
    /// are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Config::from_yaml(&text, &path.display().to_string(), base)
    }

    /// Parses and validates config text; `file` names it in errors, `base_dir` anchors
    /// relative paths.
    pub fn from_yaml(text: &str, file: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let raw = load::parse_raw(text, file)?;
        Config::build(raw, base_dir).map_err(|e| e.into_config_error(file))
    }

    /// Whether `peer` is one of `trusted_proxies` (IPv4-mapped IPv6 counts as IPv4).
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    fn build(mut raw: RawConfig, base_dir: &Path) -> Result<Config, BuildError> {
        match raw.sites.take() {
            Some(sites) => sites::build(raw, sites, base_dir),
            None if raw.default_site.is_some() => Err(BuildError::new("default_site", None, "needs `sites`")),
            None => Config::build_one(raw, base_dir),
        }
    }

    /// One site's config: its upstream, assistant, identity and inject blocks.
    fn build_one(raw: RawConfig, base_dir: &Path) -> Result<Config, BuildError> {
        let required = "(required at the top level, or in every entry of `sites`)";
        let raw_upstream =
            raw.upstream.ok_or_else(|| BuildError::new("", None, format!("missing field `upstream` {required}")))?;
        let raw_assistant =
            raw.assistant.ok_or_else(|| BuildError::new("", None, format!("missing field `assistant` {required}")))?;
        let upstream_tls = match raw_upstream.tls {
            None => tls::UpstreamTls::default(),
            Some(_) if raw_upstream.url.0.scheme != http::uri::Scheme::HTTPS => {
                return Err(BuildError::new("upstream.tls", None, "is for an https:// upstream.url"));
            }
            Some(block) => tls::build_upstream_tls(block.value, base_dir)?,
        };
        let upstream = Upstream {
            url: raw_upstream.url.0,
            host_header: raw_upstream.host_header.map_or(HostHeader::Preserve, |v| v.0),
            connect_timeout: raw_upstream.connect_timeout.map_or(Duration::from_secs(5), |v| v.0.0),
            response_timeout: raw_upstream.response_timeout.map_or(Duration::from_secs(60), |v| v.0.0),
            tls: upstream_tls,
        };
        let theme = raw_assistant.theme.map_or_else(Theme::default, |t| Theme {
            appearance: t.appearance.map(|v| v.0),
            button_background_color: t.button_background_color.map(|v| v.0.0),
            button_color: t.button_color.map(|v| v.0.0),
        });
        let assistant = Assistant {
            id: raw_assistant.id.0.0,
            script_url: raw_assistant.script_url.map_or_else(|| DEFAULT_SCRIPT_URL.to_owned(), |v| v.0.0),
            theme,
        };
        let identity = raw.identity.map(|raw| identity::build(raw, &upstream, base_dir)).transpose()?;
        let inject = build_inject(raw.inject)?;
        let listen = raw.listen.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080)), |v| v.0.0);
        let listen_tls = raw.listen_tls.map(|raw| tls::build_listen_tls(raw, base_dir)).transpose()?;
        let admin = raw.admin.map(|admin| Admin { listen: admin.listen.0.0 });
        check_admin_port(admin.as_ref(), listen, listen_tls.as_ref())?;
        let limits = build_limits(raw.limits)?;
        let log = raw.log.map_or_else(Log::default, |raw| Log {
            format: raw.format.map_or(LogFormat::Text, |v| v.0),
            level: raw.level.map_or_else(|| Log::default().level, |v| v.0.0),
        });
        Ok(Config {
            listen,
            shutdown_grace_period: duration_or(raw.shutdown_grace_period, 30),
            trusted_proxies: raw.trusted_proxies.unwrap_or_default().into_iter().map(|n| n.0.0).collect(),
            underscores_in_headers: raw.underscores_in_headers.unwrap_or(false),
            listen_tls,
            admin,
            log,
            limits,
            sites: Vec::new(),
            default_site: None,
            upstream,
            assistant,
            identity,
            inject,
        })
    }
}

fn build_limits(raw: Option<raw::RawLimits>) -> Result<Limits, BuildError> {
    let defaults = Limits::default();
    let Some(raw) = raw else { return Ok(defaults) };
    let max_connections = at_least(raw.max_connections, 1, defaults.max_connections, "limits.max_connections")?;
    Ok(Limits {
        max_connections: max_connections.min(tokio::sync::Semaphore::MAX_PERMITS),
        workers: at_least(raw.workers, 1, defaults.workers, "limits.workers")?.min(MAX_WORKERS),
        rewriter_max_memory: at_least(
            raw.rewriter_max_memory,
            MIN_REWRITER_MEMORY,
            defaults.rewriter_max_memory,
            "limits.rewriter_max_memory",
        )?,
        max_header_size: at_least(
            raw.max_header_size,
            MIN_HEADER_SIZE,
            defaults.max_header_size,
            "limits.max_header_size",
        )?,
        header_read_timeout: raw.header_read_timeout.map_or(defaults.header_read_timeout, |v| v.0.0),
        idle_timeout: raw.idle_timeout.map_or(defaults.idle_timeout, |v| v.0.0),
        body_stall_timeout: raw.body_stall_timeout.map_or(defaults.body_stall_timeout, |v| v.0.0),
    })
}

/// `value`, or `default` when absent; below `min` it is an error naming `key`.
fn at_least(value: Option<u64>, min: u64, default: usize, key: &'static str) -> Result<usize, BuildError> {
    match value {
        None => Ok(default),
        Some(n) if n < min => Err(BuildError::new(key, None, format!("must be at least {min}"))),
        Some(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

/// The admin listener must not take proxied traffic's port (port 0 picks a free one).
fn check_admin_port(admin: Option<&Admin>, listen: SocketAddr, tls: Option<&tls::ListenTls>) -> Result<(), BuildError> {
    let Some(admin) = admin else { return Ok(()) };
    let clashes = |other: SocketAddr| {
        admin.listen.port() != 0
            && admin.listen.port() == other.port()
            && (admin.listen.ip() == other.ip() || admin.listen.ip().is_unspecified() || other.ip().is_unspecified())
    };
    if clashes(listen) {
        return Err(BuildError::new("admin.listen", None, format!("{} is the proxy's own `listen`", admin.listen)));
    }
    if let Some(tls) = tls.filter(|tls| clashes(tls.address)) {
        return Err(BuildError::new("admin.listen", None, format!("{} is `listen_tls.address`", tls.address)));
    }
    Ok(())
}

fn duration_or(value: Option<value::Parsed<value::ConfigDuration>>, default_secs: u64) -> Duration {
    value.map_or(Duration::from_secs(default_secs), |v| v.0.0)
}

fn build_inject(raw: Option<raw::RawInject>) -> Result<Inject, BuildError> {
    let (position, include, exclude, csp_allow) = match raw {
        None => (None, None, None, None),
        Some(r) => (r.position, r.include_paths, r.exclude_paths, r.csp_allow),
    };
    let globs = |list: Option<Vec<value::Parsed<PathGlob>>>, default: &[&str], key: &'static str| {
        let globs = match list {
            Some(list) => list.into_iter().map(|g| g.0).collect(),
            None => default.iter().filter_map(|p| p.parse().ok()).collect(),
        };
        PathGlobs::new(globs).map_err(|e| BuildError::new(key, None, e))
    };
    if include.as_ref().is_some_and(Vec::is_empty) {
        let message = "lists no path, so nothing would get the widget; leave it out to include every path";
        return Err(BuildError::new("inject.include_paths", None, message));
    }
    Ok(Inject {
        position: position.map_or(invent_rewrite::Position::BodyEnd, |v| v.0.into()),
        include_paths: globs(include, &["/**"], "inject.include_paths")?,
        exclude_paths: globs(exclude, &[], "inject.exclude_paths")?,
        csp_allow: csp_allow.unwrap_or_default().into_iter().map(|origin| origin.0.0).collect(),
    })
}

/// The JSON Schema of the config file, generated from the types it is read into: editors
/// with a YAML language server validate and complete config files with it.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(raw::RawConfig);
    schema.insert("title".into(), "invent-proxy configuration".into());
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}
