//! [`ProxyYaml`], a whole config file key by key, and [`SiteYaml`], one entry of its `sites`.

use std::fmt;
use std::net::SocketAddr;

use super::{IdentityYaml, Map, Node, flag, list, number, text};

/// A whole proxy config.
///
/// ```ignore
/// ProxyYaml::new(upstream.addr).response_timeout("300ms").host_header("upstream").admin()
/// ```
#[derive(Debug, Clone)]
pub struct ProxyYaml {
    map: Map,
    /// Raw top-level blocks written after the builder's keys, and their top-level keys.
    extra: String,
    extra_keys: Vec<String>,
}

impl ProxyYaml {
    /// A proxy on a free loopback port in front of `upstream`: `listen: 127.0.0.1:0`,
    /// `shutdown_grace_period: 5s`, `upstream.url: http://UPSTREAM`,
    /// `upstream.response_timeout: 5s`, `assistant.id: ast_test`.
    pub fn new(upstream: SocketAddr) -> ProxyYaml {
        let mut yaml = ProxyYaml { map: Map::default(), extra: String::new(), extra_keys: Vec::new() };
        yaml.map.set(&["listen"], text("127.0.0.1:0"));
        yaml.map.set(&["shutdown_grace_period"], text("5s"));
        yaml.map.set(&["upstream", "url"], text(format!("http://{upstream}")));
        yaml.map.set(&["upstream", "response_timeout"], text("5s"));
        yaml.map.set(&["assistant", "id"], text("ast_test"));
        yaml
    }

    /// A proxy whose upstreams are its sites' ([`ProxyYaml::site`]): `listen:
    /// 127.0.0.1:0`, `assistant.id: ast_test`, no top-level `upstream`.
    pub fn without_upstream() -> ProxyYaml {
        let mut yaml = ProxyYaml { map: Map::default(), extra: String::new(), extra_keys: Vec::new() };
        yaml.map.set(&["listen"], text("127.0.0.1:0"));
        yaml.map.set(&["assistant", "id"], text("ast_test"));
        yaml
    }

    fn set(mut self, path: &[&'static str], node: Node) -> ProxyYaml {
        assert!(
            !self.extra_keys.iter().any(|k| k == path[0]),
            "`{}` is set twice: by a method and by extra()",
            path[0]
        );
        self.map.set(path, node);
        self
    }

    /// `listen`, e.g. `127.0.0.1:8080`.
    pub fn listen(self, address: impl fmt::Display) -> ProxyYaml {
        self.set(&["listen"], text(address))
    }

    /// `trusted_proxies`.
    pub fn trusted_proxies(self, networks: &[&str]) -> ProxyYaml {
        self.set(&["trusted_proxies"], list(networks))
    }

    /// `underscores_in_headers`.
    pub fn underscores_in_headers(self, allowed: bool) -> ProxyYaml {
        self.set(&["underscores_in_headers"], flag(allowed))
    }

    /// `listen_tls` on a free loopback port with this certificate and key.
    pub fn listen_tls(self, cert_file: &std::path::Path, key_file: &std::path::Path) -> ProxyYaml {
        self.set(&["listen_tls", "address"], text("127.0.0.1:0"))
            .set(&["listen_tls", "cert_file"], text(cert_file.display()))
            .set(&["listen_tls", "key_file"], text(key_file.display()))
    }

    /// `admin.listen` on a free loopback port.
    pub fn admin(self) -> ProxyYaml {
        self.set(&["admin", "listen"], text("127.0.0.1:0"))
    }

    /// `log.format`.
    pub fn log_format(self, format: &str) -> ProxyYaml {
        self.set(&["log", "format"], text(format))
    }

    /// `log.level`.
    pub fn log_level(self, level: &str) -> ProxyYaml {
        self.set(&["log", "level"], text(level))
    }

    /// `limits.max_connections`.
    pub fn max_connections(self, connections: u64) -> ProxyYaml {
        self.set(&["limits", "max_connections"], number(connections))
    }

    /// `limits.header_read_timeout`.
    pub fn header_read_timeout(self, timeout: &str) -> ProxyYaml {
        self.set(&["limits", "header_read_timeout"], text(timeout))
    }

    /// `limits.idle_timeout`.
    pub fn idle_timeout(self, timeout: &str) -> ProxyYaml {
        self.set(&["limits", "idle_timeout"], text(timeout))
    }

    /// `limits.body_stall_timeout`.
    pub fn body_stall_timeout(self, timeout: &str) -> ProxyYaml {
        self.set(&["limits", "body_stall_timeout"], text(timeout))
    }

    /// `limits.rewriter_max_memory`.
    pub fn rewriter_max_memory(self, bytes: u64) -> ProxyYaml {
        self.set(&["limits", "rewriter_max_memory"], number(bytes))
    }

    /// `limits.max_header_size`.
    pub fn max_header_size(self, bytes: u64) -> ProxyYaml {
        self.set(&["limits", "max_header_size"], number(bytes))
    }

    /// `limits.workers`.
    pub fn workers(self, workers: u64) -> ProxyYaml {
        self.set(&["limits", "workers"], number(workers))
    }

    /// `upstream.url`, e.g. `https://127.0.0.1:8443`.
    pub fn upstream_url(self, url: impl fmt::Display) -> ProxyYaml {
        self.set(&["upstream", "url"], text(url))
    }

    /// `upstream.host_header`: `preserve` or `upstream`.
    pub fn host_header(self, host_header: &str) -> ProxyYaml {
        self.set(&["upstream", "host_header"], text(host_header))
    }

    /// `upstream.response_timeout`.
    pub fn response_timeout(self, timeout: &str) -> ProxyYaml {
        self.set(&["upstream", "response_timeout"], text(timeout))
    }

    /// `upstream.tls.ca_file`.
    pub fn upstream_ca_file(self, ca_file: &std::path::Path) -> ProxyYaml {
        self.set(&["upstream", "tls", "ca_file"], text(ca_file.display()))
    }

    /// `upstream.tls.server_name`.
    pub fn upstream_server_name(self, name: &str) -> ProxyYaml {
        self.set(&["upstream", "tls", "server_name"], text(name))
    }

    /// `assistant.id`.
    pub fn assistant_id(self, id: &str) -> ProxyYaml {
        self.set(&["assistant", "id"], text(id))
    }

    /// `assistant.script_url`.
    pub fn script_url(self, url: &str) -> ProxyYaml {
        self.set(&["assistant", "script_url"], text(url))
    }

    /// `assistant.theme.appearance`.
    pub fn theme_appearance(self, appearance: &str) -> ProxyYaml {
        self.set(&["assistant", "theme", "appearance"], text(appearance))
    }

    /// `assistant.theme.button_background_color`.
    pub fn theme_button_background_color(self, color: &str) -> ProxyYaml {
        self.set(&["assistant", "theme", "button_background_color"], text(color))
    }

    /// `assistant.theme.button_color`.
    pub fn theme_button_color(self, color: &str) -> ProxyYaml {
        self.set(&["assistant", "theme", "button_color"], text(color))
    }

    /// The `identity` block.
    pub fn identity(self, identity: IdentityYaml) -> ProxyYaml {
        self.set(&["identity"], Node::Map(identity.0))
    }

    /// `inject.position`: `body_end` or `head_end`.
    pub fn inject_position(self, position: &str) -> ProxyYaml {
        self.set(&["inject", "position"], text(position))
    }

    /// `inject.include_paths`.
    pub fn include_paths(self, globs: &[&str]) -> ProxyYaml {
        self.set(&["inject", "include_paths"], list(globs))
    }

    /// `inject.exclude_paths`.
    pub fn exclude_paths(self, globs: &[&str]) -> ProxyYaml {
        self.set(&["inject", "exclude_paths"], list(globs))
    }

    /// `inject.csp_allow`.
    pub fn csp_allow(self, origins: &[&str]) -> ProxyYaml {
        self.set(&["inject", "csp_allow"], list(origins))
    }

    /// `inject.turbo_permanent`.
    pub fn turbo_permanent(self, on: bool) -> ProxyYaml {
        self.set(&["inject", "turbo_permanent"], flag(on))
    }

    /// One more entry of `sites`.
    pub fn site(mut self, site: SiteYaml) -> ProxyYaml {
        assert!(!self.extra_keys.iter().any(|k| k == "sites"), "`sites` is set twice: by site() and by extra()");
        self.map.push("sites", site.0);
        self
    }

    /// `default_site`.
    pub fn default_site(self, host: &str) -> ProxyYaml {
        self.set(&["default_site"], text(host))
    }

    /// Whole top-level blocks written as they are, after the builder's keys: for what a
    /// test must spell itself (`${VARIABLES}`, a key the proxy refuses). A block whose
    /// top-level key the builder also writes is a panic, never a second key.
    pub fn extra(mut self, blocks: &str) -> ProxyYaml {
        assert!(blocks.is_empty() || blocks.ends_with('\n'), "extra() takes whole lines: {blocks:?}");
        let top_level = blocks.lines().filter(|l| !l.is_empty() && !l.starts_with([' ', '\t', '#', '-']));
        for line in top_level {
            let key = line.split(':').next().unwrap_or(line).trim().to_owned();
            assert!(!self.map.has(&key), "`{key}` is set twice: by a method and by extra()");
            assert!(!self.extra_keys.contains(&key), "`{key}` is in extra() twice");
            self.extra_keys.push(key);
        }
        self.extra.push_str(blocks);
        self
    }
}

impl fmt::Display for ProxyYaml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.map.render(0, &mut out);
        out.push_str(&self.extra);
        f.write_str(&out)
    }
}

/// One entry of `sites`: its hosts and upstream, and the blocks it has of its own.
#[derive(Debug, Clone)]
pub struct SiteYaml(Map);

impl SiteYaml {
    /// `hosts` and `upstream.url: http://UPSTREAM`.
    pub fn new(hosts: &[&str], upstream: SocketAddr) -> SiteYaml {
        let mut map = Map::default();
        map.set(&["hosts"], list(hosts));
        map.set(&["upstream", "url"], text(format!("http://{upstream}")));
        SiteYaml(map)
    }

    /// The site's own `assistant.id`.
    pub fn assistant_id(mut self, id: &str) -> SiteYaml {
        self.0.set(&["assistant", "id"], text(id));
        self
    }

    /// The site's own `identity` block.
    pub fn identity(mut self, identity: IdentityYaml) -> SiteYaml {
        self.0.set(&["identity"], Node::Map(identity.0));
        self
    }

    /// The site's own `inject.exclude_paths`.
    pub fn exclude_paths(mut self, globs: &[&str]) -> SiteYaml {
        self.0.set(&["inject", "exclude_paths"], list(globs));
        self
    }
}
