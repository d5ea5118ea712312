//! Configuration: the YAML file read once at start-up into a typed, validated [`Config`].
//!
//! Loading happens in two steps. [`raw`] mirrors the file and rejects unknown keys and
//! malformed scalars, with the key path, line and column; [`Config::build`] then checks
//! what spans several keys and loads key material, so that a running proxy never
//! discovers a bad setting on its first request.

mod keys;
pub mod raw;
pub mod value;

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use globset::GlobSet;
use serde_saphyr::Location;

pub use keys::JwtKey;
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
    pub cookie: String,
    /// Accepted `alg` values; every one belongs to the family of `key`.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    pub key: JwtKey,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    pub claims: Claims,
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

/// A config that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{}", format_invalid(.file, .key, .location, .message))]
    Invalid { file: String, key: String, location: Option<(u64, u64)>, message: String },
}

fn format_invalid(file: &str, key: &str, location: &Option<(u64, u64)>, message: &str) -> String {
    let place = match location {
        Some((line, column)) => format!("{file}:{line}:{column}"),
        None => file.to_owned(),
    };
    if key.is_empty() { format!("{place}: {message}") } else { format!("{place}: {key}: {message}") }
}

/// A problem found while building [`Config`] from the raw file: key, place, message.
pub(crate) struct BuildError {
    key: &'static str,
    location: Option<Location>,
    message: String,
}

impl BuildError {
    pub(crate) fn new(key: &'static str, location: Option<Location>, message: impl Into<String>) -> Self {
        BuildError { key, location, message: message.into() }
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
        let raw = parse_raw(text, file)?;
        Config::build(raw, base_dir).map_err(|e| ConfigError::Invalid {
            file: file.to_owned(),
            key: e.key.to_owned(),
            location: e.location.map(|l| (l.line(), l.column())),
            message: e.message,
        })
    }

    fn build(raw: RawConfig, base_dir: &Path) -> Result<Config, BuildError> {
        let upstream = Upstream {
            url: raw.upstream.url.0,
            host_header: raw.upstream.host_header.map_or(HostHeader::Preserve, |v| v.0),
            connect_timeout: duration_or(raw.upstream.connect_timeout, 5),
            response_timeout: duration_or(raw.upstream.response_timeout, 60),
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
            listen: raw.listen.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080)), |v| v.0),
            shutdown_grace_period: duration_or(raw.shutdown_grace_period, 30),
            upstream,
            assistant,
            identity,
            inject,
        })
    }

    /// A human-readable account of the config for `invent-proxy check`. Secrets show as
    /// "set", never their value.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "listen:           {}", self.listen);
        let _ = writeln!(
            s,
            "upstream:         {}://{} (host header: {}, connect timeout: {}, response timeout: {})",
            self.upstream.url.scheme,
            self.upstream.url.authority,
            self.upstream.host_header,
            humantime::format_duration(self.upstream.connect_timeout),
            humantime::format_duration(self.upstream.response_timeout),
        );
        let _ = writeln!(s, "assistant:        {} (script {})", self.assistant.id, self.assistant.script_url);
        let _ = writeln!(s, "inject:           {} on {:?}", self.inject.position, self.inject.include_paths.patterns());
        if !self.inject.exclude_paths.patterns().is_empty() {
            let _ = writeln!(s, "  except:         {:?}", self.inject.exclude_paths.patterns());
        }
        match &self.identity {
            None => s.push_str("identity:         off (every visitor is anonymous)\n"),
            Some(identity) => write_identity_summary(&mut s, identity),
        }
        let _ = write!(s, "shutdown grace:   {}", humantime::format_duration(self.shutdown_grace_period));
        s
    }
}

fn write_identity_summary(s: &mut String, identity: &Identity) {
    let jwt = &identity.jwt;
    let algorithms: Vec<String> = jwt.algorithms.iter().map(|a| format!("{a:?}")).collect();
    let _ = writeln!(s, "identity:         secret key set; session JWT from cookie `{}`", jwt.cookie);
    let _ = writeln!(s, "  algorithms:     {} with {}", algorithms.join(", "), jwt.key.describe());
    let _ = writeln!(
        s,
        "  checks:         issuer {}, audience {}, leeway {}",
        jwt.issuer.as_deref().unwrap_or("(any)"),
        jwt.audience.as_deref().unwrap_or("(any)"),
        humantime::format_duration(jwt.leeway)
    );
    let optional = |p: &Option<ClaimPath>| p.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
    let _ = writeln!(
        s,
        "  claims:         user_id={} user_name={} user_avatar={}",
        jwt.claims.user_id,
        optional(&jwt.claims.user_name),
        optional(&jwt.claims.user_avatar)
    );
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
    Ok(Identity {
        secret_key: raw.secret_key.0,
        jwt: Jwt {
            cookie: jwt.cookie.0.0,
            algorithms: key.algorithms.clone(),
            key: key.key,
            issuer: jwt.issuer.map(|v| v.0.0),
            audience: jwt.audience.map(|v| v.0.0),
            leeway: duration_or(jwt.leeway, 30),
            claims,
        },
    })
}

fn default_user_id_claim() -> ClaimPath {
    ClaimPath(vec!["sub".to_owned()])
}

fn build_inject(raw: Option<raw::RawInject>) -> Result<Inject, BuildError> {
    let (position, include, exclude) = match raw {
        None => (None, None, None),
        Some(r) => (r.position, r.include_paths, r.exclude_paths),
    };
    let globs = |list: Option<Vec<value::Parsed<PathGlob>>>, default: &[&str], key: &'static str| {
        let globs = match list {
            Some(list) => list.into_iter().map(|g| g.0).collect(),
            None => default.iter().filter_map(|p| p.parse().ok()).collect(),
        };
        PathGlobs::new(globs).map_err(|e| BuildError::new(key, None, e))
    };
    Ok(Inject {
        position: position.map_or(Position::BodyEnd, |v| v.0),
        include_paths: globs(include, &["/**"], "inject.include_paths")?,
        exclude_paths: globs(exclude, &[], "inject.exclude_paths")?,
    })
}

/// Deserializes the raw config, turning serde errors into [`ConfigError`] with the key path.
fn parse_raw(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Err(invalid(file, "", None, "the config is empty; `upstream` and `assistant` are required"));
    }
    let mut failed_key = String::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, RawConfig>(de).map_err(|e| {
            failed_key = display_key(&e.path().to_string());
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let location = e.location().map(|l| (l.line(), l.column()));
        let message = strip_location_suffix(&e.without_snippet().to_string());
        invalid(file, &failed_key, location, &message)
    })
}

fn invalid(file: &str, key: &str, location: Option<(u64, u64)>, message: &str) -> ConfigError {
    ConfigError::Invalid { file: file.to_owned(), key: key.to_owned(), location, message: message.to_owned() }
}

/// `identity.jwt.value.secret` → `identity.jwt.secret` (`value` is the span wrapper's field).
fn display_key(path: &str) -> String {
    let key: Vec<&str> = path.split('.').filter(|s| *s != "value" && *s != "?").collect();
    let key = key.join(".");
    if key.is_empty() || key == "." { String::new() } else { key }
}

/// serde-saphyr ends messages with "at line L, column C" (or starts them with "error: line
/// L column C: "); the location is reported separately, so drop it from the text.
fn strip_location_suffix(message: &str) -> String {
    let message = message.lines().next().unwrap_or(message);
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => message,
    };
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}
