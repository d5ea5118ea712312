//! Configuration: the YAML file read once at start-up into a typed, validated [`Config`].
//!
//! Loading happens in two steps. [`raw`] mirrors the file and rejects unknown keys and
//! malformed scalars, with the key path, line and column; `Config::build` then checks
//! what spans several keys and loads key material, so that a running proxy never
//! discovers a bad setting on its first request.

pub mod hash_key;
mod identity;
mod jwks;
pub(crate) use jwks::signature_keys;
mod keys;
mod load;
mod process;
pub mod raw;
pub mod reference;
mod site;
pub mod sites;
mod summary;
pub mod tls;
pub mod value;

use std::path::Path;

pub use identity::{Claims, Gateway, Identity, Jwt, Lookup, LookupAnswer, LookupTarget, Pick, Selection, TokenSource};
pub use keys::{JwksUrl, JwtKey, KeySource, KeyUrl, VerificationKey};
pub(crate) use load::BuildError;
pub use load::ConfigError;
pub use process::{Admin, Limits, Log, Process, default_workers};
pub use raw::{ClaimPath, UpstreamUrl};
pub use site::{Assistant, Inject, PathGlobs, Site, Theme, Upstream};
pub use value::{Appearance, HostHeader, LogFormat, Position, Secret};

use raw::RawConfig;

/// The default path of the config file, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "config/invent-proxy.yaml";
/// The default script the widget loads.
pub const DEFAULT_SCRIPT_URL: &str = "https://www.useinvent.com/button.js";

/// Everything the proxy needs to run, typed and validated: the process-wide settings,
/// and each site's own.
#[derive(Debug, Clone)]
pub struct Config {
    pub process: Process,
    /// Every site; without `sites:` in the file, one site with no hosts, which answers
    /// every host.
    pub sites: Vec<Site>,
    /// The site an unknown host goes to; `None`: such a request gets 421.
    pub default_site: Option<usize>,
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

    /// The site of a config without `sites:`, or the default site (else the first).
    pub fn main_site(&self) -> &Site {
        &self.sites[self.default_site.unwrap_or(0)]
    }

    fn build(raw: RawConfig, base_dir: &Path) -> Result<Config, BuildError> {
        let process = process::build(&raw, base_dir)?;
        let blocks = site::SiteBlocks {
            upstream: raw.upstream,
            assistant: raw.assistant,
            identity: raw.identity,
            inject: raw.inject,
        };
        let (sites, default_site) = match raw.sites {
            Some(sites) => sites::build(blocks, (sites, raw.default_site), base_dir, &process.trusted_proxies)?,
            None if raw.default_site.is_some() => return Err(BuildError::new("default_site", None, "needs `sites`")),
            None => (vec![site::build(Vec::new(), blocks, base_dir, &process.trusted_proxies)?], Some(0)),
        };
        Ok(Config { process, sites, default_site })
    }
}

/// The JSON Schema of the config file, generated from the types it is read into: editors
/// with a YAML language server validate and complete config files with it.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(raw::RawConfig);
    schema.insert("title".into(), "invent-proxy configuration".into());
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}
