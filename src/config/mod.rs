//! Configuration: the YAML file read once at start-up into a typed, validated [`Config`].
//!
//! Loading happens in two steps. [`raw`] mirrors the file and rejects unknown keys and
//! malformed scalars, with the key path, line and column; `Config::build` then checks
//! what spans several keys and loads key material, so that a running proxy never
//! discovers a bad setting on its first request.

mod jwks;
mod keys;
mod load;
pub mod raw;
mod summary;
pub mod tls;
pub mod value;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use globset::GlobSet;

pub use keys::{JwtKey, VerificationKey};
pub(crate) use load::BuildError;
pub use load::ConfigError;
pub use raw::{ClaimPath, UpstreamUrl};
pub use value::{Appearance, HostHeader, Position, Secret};

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
    /// The HTTPS listener, beside `listen`, if configured.
    pub listen_tls: Option<tls::ListenTls>,
    pub upstream: Upstream,
    pub assistant: Assistant,
    /// `None`: every visitor is anonymous.
    pub identity: Option<Identity>,
    pub inject: Inject,
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

/// How a visitor is recognised and how their `user-hash` is keyed.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The assistant's secret key: the HMAC key of `user-hash`. Never leaves the process.
    pub secret_key: Secret,
    pub jwt: Jwt,
}

/// Where the session JWT is and how it is verified.
#[derive(Debug, Clone)]
pub struct Jwt {
    /// Where the token is: the cookie, its chunks, and/or a `Bearer` header.
    pub source: TokenSource,
    /// Accepted `alg` values; every one belongs to the family of `key`.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    pub key: JwtKey,
    /// Accepted `iss` values (any, if empty).
    pub issuer: Vec<String>,
    /// Accepted `aud` values (any, if empty).
    pub audience: Vec<String>,
    /// Claims a token must carry (default `exp`).
    pub required_claims: Vec<ClaimPath>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// `secret` was written in the file rather than read from the environment.
    pub inline_secret: bool,
    pub claims: Claims,
}

/// Where a request's session token is looked for, in this order: the header, the cookie,
/// the cookie's chunks. At least one of `header` and `cookie` is set.
#[derive(Debug, Clone)]
pub struct TokenSource {
    /// A header with the `Bearer` scheme (`Authorization`, usually).
    pub header: Option<http::HeaderName>,
    pub cookie: Option<String>,
    /// The cookie may be split as `name.0`, `name.1`, … (NextAuth/Auth.js).
    pub cookie_chunks: bool,
}

/// Where the identity lives in the token's payload.
#[derive(Debug, Clone)]
pub struct Claims {
    pub user_id: ClaimPath,
    pub user_name: Option<ClaimPath>,
    pub user_avatar: Option<ClaimPath>,
}

/// Which pages get the widget, and where.
#[derive(Debug, Clone)]
pub struct Inject {
    pub position: Position,
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

    fn build(raw: RawConfig, base_dir: &Path) -> Result<Config, BuildError> {
        let upstream_tls = match raw.upstream.tls {
            None => tls::UpstreamTls::default(),
            Some(_) if raw.upstream.url.0.scheme != http::uri::Scheme::HTTPS => {
                return Err(BuildError::new("upstream.tls", None, "is for an https:// upstream.url"));
            }
            Some(block) => tls::build_upstream_tls(block.value, base_dir)?,
        };
        let upstream = Upstream {
            url: raw.upstream.url.0,
            host_header: raw.upstream.host_header.map_or(HostHeader::Preserve, |v| v.0),
            connect_timeout: raw.upstream.connect_timeout.map_or(Duration::from_secs(5), |v| v.0.0),
            response_timeout: raw.upstream.response_timeout.map_or(Duration::from_secs(60), |v| v.0.0),
            tls: upstream_tls,
        };
        let theme = raw.assistant.theme.map_or_else(Theme::default, |t| Theme {
            appearance: t.appearance.map(|v| v.0),
            button_background_color: t.button_background_color.map(|v| v.0.0),
            button_color: t.button_color.map(|v| v.0.0),
        });
        let assistant = Assistant {
            id: raw.assistant.id.0.0,
            script_url: raw.assistant.script_url.map_or_else(|| DEFAULT_SCRIPT_URL.to_owned(), |v| v.0.0),
            theme,
        };
        let identity = raw.identity.map(|raw| build_identity(raw, base_dir)).transpose()?;
        let inject = build_inject(raw.inject)?;
        Ok(Config {
            listen: raw.listen.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080)), |v| v.0.0),
            shutdown_grace_period: duration_or(raw.shutdown_grace_period, 30),
            trusted_proxies: raw.trusted_proxies.unwrap_or_default().into_iter().map(|n| n.0.0).collect(),
            listen_tls: raw.listen_tls.map(|raw| tls::build_listen_tls(raw, base_dir)).transpose()?,
            upstream,
            assistant,
            identity,
            inject,
        })
    }
}

fn duration_or(value: Option<value::Parsed<value::ConfigDuration>>, default_secs: u64) -> Duration {
    value.map_or(Duration::from_secs(default_secs), |v| v.0.0)
}

fn build_identity(raw: raw::RawIdentity, base_dir: &Path) -> Result<Identity, BuildError> {
    let jwt_location = raw.jwt.referenced;
    let jwt = raw.jwt.value;
    let key = keys::load(&jwt, jwt_location, base_dir)?;
    let claims = jwt.claims.map_or_else(
        || Claims { user_id: default_user_id_claim(), user_name: None, user_avatar: None },
        |c| Claims {
            user_id: c.user_id.map_or_else(default_user_id_claim, |v| v.0),
            user_name: c.user_name.map(|v| v.0),
            user_avatar: c.user_avatar.map(|v| v.0),
        },
    );
    let source = TokenSource {
        header: jwt.header.map(|v| v.0.0),
        cookie: jwt.cookie.map(|v| v.0.0),
        cookie_chunks: jwt.cookie_chunks.unwrap_or(false),
    };
    if source.header.is_none() && source.cookie.is_none() {
        let message = "say where the session token is: `cookie` (and `cookie_chunks`) and/or `header`";
        return Err(BuildError::new("identity.jwt", Some(jwt_location), message));
    }
    if source.cookie_chunks && source.cookie.is_none() {
        return Err(BuildError::new(
            "identity.jwt.cookie_chunks",
            Some(jwt_location),
            "needs `cookie`, the chunks' base name",
        ));
    }
    let texts = |list: Option<raw::OneOrMany<value::Parsed<value::NonEmpty>>>| {
        list.map(raw::OneOrMany::into_vec).unwrap_or_default().into_iter().map(|v| v.0.0).collect()
    };
    let required_claims = jwt
        .required_claims
        .map_or_else(|| vec![ClaimPath(vec!["exp".to_owned()])], |list| list.into_iter().map(|v| v.0).collect());
    Ok(Identity {
        secret_key: raw.secret_key,
        jwt: Jwt {
            source,
            algorithms: key.algorithms.clone(),
            key: key.key,
            issuer: texts(jwt.issuer),
            audience: texts(jwt.audience),
            required_claims,
            leeway: jwt.leeway.map_or(Duration::from_secs(30), |v| v.0.0),
            inline_secret: jwt.secret.as_ref().is_some_and(|s| !s.value.from_env()),
            claims,
        },
    })
}

fn default_user_id_claim() -> ClaimPath {
    ClaimPath(vec!["sub".to_owned()])
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
        position: position.map_or(Position::BodyEnd, |v| v.0),
        include_paths: globs(include, &["/**"], "inject.include_paths")?,
        exclude_paths: globs(exclude, &[], "inject.exclude_paths")?,
        csp_allow: csp_allow.unwrap_or_default().into_iter().map(|origin| origin.0.0).collect(),
    })
}
