//! One site's settings: the upstream behind it, the assistant it shows, how its visitors
//! are recognised, and which of its pages get the widget.

use std::path::Path;
use std::time::Duration;

use globset::GlobSet;

use super::identity::{self, Identity};
use super::load::BuildError;
use super::raw::{self, PathGlob, UpstreamUrl};
use super::sites::HostPattern;
use super::value::{Appearance, HostHeader};
use super::{DEFAULT_SCRIPT_URL, tls, value};

/// A site: the hosts it answers for and everything that is its own.
#[derive(Debug, Clone)]
pub struct Site {
    /// The hosts it serves; empty for the one site of a config without `sites:`.
    pub hosts: Vec<HostPattern>,
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

/// Which pages get the widget, and where.
#[derive(Debug, Clone)]
pub struct Inject {
    pub position: invent_rewrite::Position,
    pub include_paths: PathGlobs,
    pub exclude_paths: PathGlobs,
    /// Origins added to the governing directives of a page's `Content-Security-Policy`.
    pub csp_allow: Vec<String>,
    /// Keep the widget across Turbo Drive and Turbolinks visits: the element is permanent,
    /// the script is not evaluated again, and their page requests get the widget.
    pub turbo_permanent: bool,
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

/// The blocks of one site, as written (at the top level, or merged with a `sites:` entry).
pub(super) struct SiteBlocks {
    pub(super) upstream: Option<raw::RawUpstream>,
    pub(super) assistant: Option<raw::RawAssistant>,
    pub(super) identity: Option<raw::RawIdentity>,
    pub(super) inject: Option<raw::RawInject>,
}

/// Builds one site from its blocks; `trusted_proxies` is a gateway's default `from`.
pub(super) fn build(
    hosts: Vec<HostPattern>,
    raw: SiteBlocks,
    base_dir: &Path,
    trusted_proxies: &[ipnet::IpNet],
) -> Result<Site, BuildError> {
    let required = "(required at the top level, or in every entry of `sites`)";
    let raw_upstream =
        raw.upstream.ok_or_else(|| BuildError::new("", None, format!("missing field `upstream` {required}")))?;
    let raw_assistant =
        raw.assistant.ok_or_else(|| BuildError::new("", None, format!("missing field `assistant` {required}")))?;
    let upstream = build_upstream(raw_upstream, base_dir)?;
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
    let identity = raw.identity.map(|raw| identity::build(raw, &upstream, base_dir, trusted_proxies)).transpose()?;
    let inject = build_inject(raw.inject)?;
    Ok(Site { hosts, upstream, assistant, identity, inject })
}

fn build_upstream(raw: raw::RawUpstream, base_dir: &Path) -> Result<Upstream, BuildError> {
    let tls = match raw.tls {
        None => tls::UpstreamTls::default(),
        Some(_) if raw.url.0.scheme != http::uri::Scheme::HTTPS => {
            return Err(BuildError::new("upstream.tls", None, "is for an https:// upstream.url"));
        }
        Some(block) => tls::build_upstream_tls(block.value, base_dir)?,
    };
    Ok(Upstream {
        url: raw.url.0,
        host_header: raw.host_header.map_or(HostHeader::Preserve, |v| v.0),
        connect_timeout: raw.connect_timeout.map_or(Duration::from_secs(5), |v| v.0.0),
        response_timeout: raw.response_timeout.map_or(Duration::from_secs(60), |v| v.0.0),
        tls,
    })
}

fn build_inject(raw: Option<raw::RawInject>) -> Result<Inject, BuildError> {
    let (position, include, exclude, csp_allow, turbo_permanent) = match raw {
        None => (None, None, None, None, None),
        Some(r) => (r.position, r.include_paths, r.exclude_paths, r.csp_allow, r.turbo_permanent),
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
        turbo_permanent: turbo_permanent.unwrap_or(true),
    })
}
