//! The assistant's secret key of one site, read alone from a config file: what
//! `invent-proxy hash` needs, without the session secrets, key files or anything else the
//! proxy needs to serve — so an operator can compute a user-hash with only
//! `identity.secret_key`'s variable set.

use serde::Deserialize;

use super::load::{ConfigError, parse};
use super::sites::{HostPattern, request_host};
use super::value::{Parsed, Secret};

/// The parts of a config that say which secret key a site uses; the rest is ignored.
#[derive(Deserialize)]
struct KeysOnly {
    identity: Option<IdentityKey>,
    sites: Option<Vec<SiteKey>>,
    default_site: Option<Parsed<HostPattern>>,
}

#[derive(Deserialize)]
struct IdentityKey {
    secret_key: Secret,
}

#[derive(Deserialize)]
struct SiteKey {
    hosts: Vec<Parsed<HostPattern>>,
    identity: Option<IdentityKey>,
}

/// The secret key a site hashes user ids with.
#[derive(Debug)]
pub struct SiteSecret {
    /// `None`: the site has no identity.
    pub secret_key: Option<Secret>,
    /// How many sites the config has (one without `sites`).
    pub sites: usize,
}

/// The secret key of the site that serves `host` (without one: the default site's, else
/// the first's; a config without `sites` has one).
pub fn secret_key(text: &str, file: &str, host: Option<&str>) -> Result<SiteSecret, ConfigError> {
    let config: KeysOnly = parse(text, file)?;
    let top = config.identity.map(|identity| identity.secret_key);
    let Some(sites) = config.sites else {
        return Ok(SiteSecret { secret_key: top, sites: 1 });
    };
    let count = sites.len();
    let chosen = match host {
        Some(host) => {
            let host = request_host(host);
            let rank =
                |site: &SiteKey| site.hosts.iter().filter(|h| h.0.matches(&host)).map(|h| h.0.specificity()).max();
            let best = sites.iter().enumerate().filter_map(|(i, s)| rank(s).map(|r| (r, i))).max_by_key(|(r, _)| *r);
            best.map(|(_, i)| i).ok_or_else(|| ConfigError::NoSite { file: file.to_owned(), host })?
        }
        None => match &config.default_site {
            Some(name) => sites.iter().position(|s| s.hosts.iter().any(|h| h.0 == name.0)).unwrap_or(0),
            None => 0,
        },
    };
    let site_key = sites.into_iter().nth(chosen).and_then(|site| site.identity).map(|identity| identity.secret_key);
    Ok(SiteSecret { secret_key: site_key.or(top), sites: count })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITES: &str = "identity:\n  secret_key: top\n  jwt: { cookie: s, secret: \"${INVENT_TEST_UNSET_SESSION}\" }\n\
                         sites:\n  - hosts: [a.test]\n    upstream: { url: http://127.0.0.1:1 }\n\
                         \x20 - hosts: [\"*.b.test\"]\n    identity: { secret_key: b-key, jwt: { secret: \"${INVENT_TEST_UNSET_OTHER}\" } }\n\
                         default_site: \"*.b.test\"\n";

    fn key(text: &str, host: Option<&str>) -> Option<String> {
        secret_key(text, "t.yaml", host).unwrap().secret_key.map(|s| s.expose().to_owned())
    }

    #[test]
    fn only_the_secret_key_is_needed_and_the_site_is_chosen_as_the_proxy_would() {
        assert_eq!(key(SITES, Some("a.test")).as_deref(), Some("top"), "a site without identity has the top one");
        assert_eq!(key(SITES, Some("www.b.test:8080")).as_deref(), Some("b-key"));
        assert_eq!(key(SITES, None).as_deref(), Some("b-key"), "the default site");
        assert_eq!(secret_key(SITES, "t.yaml", None).unwrap().sites, 2);
        let missing = secret_key(SITES, "t.yaml", Some("c.test")).unwrap_err().to_string();
        assert_eq!(missing, "t.yaml: no site serves c.test");
        assert_eq!(key("upstream: { url: http://x }\n", None), None);
    }

    #[test]
    fn the_secret_keys_own_variable_must_be_set() {
        let error = secret_key("identity:\n  secret_key: ${INVENT_TEST_UNSET_KEY}\n", "t.yaml", None).unwrap_err();
        let error = error.to_string();
        assert!(error.starts_with("t.yaml:2:") && error.contains("identity.secret_key"), "{error}");
        assert!(error.contains("INVENT_TEST_UNSET_KEY"), "{error}");
    }
}
