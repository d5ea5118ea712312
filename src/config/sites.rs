//! Many sites from one proxy: each `sites:` entry names its hosts and the blocks that
//! replace the top-level ones for it; requests are routed by `Host` (port and case
//! ignored), an unknown host going to `default_site` or getting `421`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::load::BuildError;
use super::raw::RawSite;
use super::site::{Site, SiteBlocks};
use super::value::{Parsed, TextSchema};

/// A host a site answers for: a name, or `*.` and a suffix (`*.blog.example.com` matches
/// `a.blog.example.com`, never `blog.example.com` or `evilblog.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// The suffix with its leading dot: `.blog.example.com`.
    Wildcard(String),
}

impl FromStr for HostPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim_end_matches('.').to_ascii_lowercase();
        let (wildcard, rest) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name.as_str()),
        };
        let valid_label = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if rest.is_empty() || !rest.split('.').all(valid_label) {
            return Err(format!("{s:?} is not a host name or `*.` and a domain (no port, no path)"));
        }
        Ok(if wildcard { HostPattern::Wildcard(format!(".{rest}")) } else { HostPattern::Exact(rest.to_owned()) })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

impl TextSchema for HostPattern {
    const KIND: &'static str = "host name";
}

impl HostPattern {
    /// How precisely the pattern names a host: an exact name beats every wildcard, a
    /// longer wildcard a shorter one.
    pub fn specificity(&self) -> (bool, usize) {
        match self {
            HostPattern::Exact(name) => (true, name.len()),
            HostPattern::Wildcard(suffix) => (false, suffix.len()),
        }
    }

    /// Whether `host` (lowercase, without port) is one this pattern names.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

/// The host a request names, lowercase, without port or trailing dot.
pub fn request_host(authority: &str) -> String {
    let host = match authority.rfind(':') {
        // An IPv6 literal keeps its colons: only a port after `]` is cut.
        Some(at) if !authority[at..].contains(']') => &authority[..at],
        _ => authority,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Builds every site of `sites:` from its own blocks, each missing one taken from the
/// top level (`top`), and finds the default site.
pub(super) fn build(
    top: SiteBlocks,
    (sites, default_site): (Vec<RawSite>, Option<Parsed<HostPattern>>),
    base_dir: &Path,
    trusted_proxies: &[ipnet::IpNet],
) -> Result<(Vec<Site>, Option<usize>), BuildError> {
    if sites.is_empty() {
        return Err(BuildError::new("sites", None, "lists no site; leave it out for one site"));
    }
    let mut built = Vec::with_capacity(sites.len());
    for (i, site) in sites.into_iter().enumerate() {
        let hosts: Vec<HostPattern> = site.hosts.into_iter().map(|h| h.0).collect();
        if hosts.is_empty() {
            return Err(BuildError::new("sites", None, format!("entry {} lists no host", i + 1)));
        }
        let blocks = SiteBlocks {
            upstream: site.upstream.or_else(|| top.upstream.clone()),
            assistant: site.assistant.or_else(|| top.assistant.clone()),
            identity: site.identity.or_else(|| top.identity.clone()),
            inject: site.inject.or_else(|| top.inject.clone()),
        };
        let names: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        let place = format!("site {} ({})", i + 1, names.join(", "));
        built.push(super::site::build(hosts, blocks, base_dir, trusted_proxies).map_err(|e| e.within(place))?);
    }
    if let Some(twice) = first_repeated(built.iter().flat_map(|site| &site.hosts)) {
        return Err(BuildError::new("sites", None, format!("{twice} is listed by more than one site")));
    }
    let default_site = match default_site.map(|name| name.0) {
        None => None,
        Some(name) => Some(built.iter().position(|site| site.hosts.contains(&name)).ok_or_else(|| {
            BuildError::new("default_site", None, format!("{name} is not among the hosts of any site"))
        })?),
    };
    Ok((built, default_site))
}

/// A host pattern listed twice, if any.
fn first_repeated<'a>(patterns: impl Iterator<Item = &'a HostPattern>) -> Option<&'a HostPattern> {
    let mut seen = std::collections::HashSet::new();
    patterns.into_iter().find(|pattern| !seen.insert(pattern.to_string()))
}
