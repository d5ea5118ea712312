//! Test configs built key by key: [`ProxyYaml`] for the file, [`IdentityYaml`],
//! [`JwtYaml`], [`LookupYaml`] and [`SiteYaml`] for its blocks.
//!
//! Each key is written by one method, so a test names the keys it sets: a key the builder
//! does not know is a compile error, and a raw block ([`ProxyYaml::extra`]) that repeats a
//! key the builder writes is a panic. Nothing is made by editing another helper's text,
//! where a change to the helper would turn the edit into a silent no-op and the test into
//! a test of the default. Strings are written double-quoted (JSON escaping, which YAML
//! reads the same), so no value can change the file's shape.

use std::fmt::{self, Write as _};
use std::net::SocketAddr;

use super::{JWT_SECRET, SECRET_KEY};

/// A YAML mapping, its keys in the order they were first set.
#[derive(Debug, Clone, Default)]
struct Map(Vec<(&'static str, Node)>);

#[derive(Debug, Clone)]
enum Node {
    /// A scalar or a flow list, written as it is.
    Value(String),
    Map(Map),
    /// A block sequence of mappings (`sites:`).
    Maps(Vec<Map>),
}

impl Map {
    /// Sets the key at `path` (mappings on the way are made as needed). A key set again
    /// keeps its place and takes the new value: a test may change what a helper chose.
    fn set(&mut self, path: &[&'static str], node: Node) {
        let (key, rest) = path.split_first().expect("a key path");
        let at = match self.0.iter().position(|(k, _)| k == key) {
            Some(at) => at,
            None => {
                self.0.push((key, Node::Map(Map::default())));
                self.0.len() - 1
            }
        };
        if rest.is_empty() {
            self.0[at].1 = node;
            return;
        }
        match &mut self.0[at].1 {
            Node::Map(map) => map.set(rest, node),
            other => panic!("{key} holds {other:?}, not a mapping for {rest:?}"),
        }
    }

    /// Appends `item` to the sequence at `key`.
    fn push(&mut self, key: &'static str, item: Map) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, Node::Maps(items))) => items.push(item),
            Some((_, other)) => panic!("{key} holds {other:?}, not a sequence"),
            None => self.0.push((key, Node::Maps(vec![item]))),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| *k == key)
    }

    fn render(&self, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        for (key, node) in &self.0 {
            match node {
                Node::Value(value) => writeln!(out, "{pad}{key}: {value}").unwrap(),
                Node::Map(map) => {
                    writeln!(out, "{pad}{key}:").unwrap();
                    map.render(indent + 2, out);
                }
                Node::Maps(items) => {
                    writeln!(out, "{pad}{key}:").unwrap();
                    for item in items {
                        // The item's first key goes on the `- ` line, the others under it.
                        let mut lines = String::new();
                        item.render(indent + 4, &mut lines);
                        write!(out, "{pad}  - {}", &lines[indent + 4..]).unwrap();
                    }
                }
            }
        }
    }
}

/// A string, double-quoted.
fn text(value: impl fmt::Display) -> Node {
    Node::Value(serde_json::to_string(&value.to_string()).unwrap())
}

/// A flow list of double-quoted strings.
fn list(items: &[&str]) -> Node {
    let items: Vec<String> = items.iter().map(|item| serde_json::to_string(item).unwrap()).collect();
    Node::Value(format!("[{}]", items.join(", ")))
}

fn number(value: u64) -> Node {
    Node::Value(value.to_string())
}

fn flag(value: bool) -> Node {
    Node::Value(value.to_string())
}

/// One string, or a list of them when there are several (`issuer: a`, `issuer: [a, b]`).
fn one_or_many(items: &[&str]) -> Node {
    match items {
        [one] => text(one),
        many => list(many),
    }
}

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

/// An `identity` block: the assistant's `secret_key` and how visitors are recognised.
#[derive(Debug, Clone)]
pub struct IdentityYaml(Map);

impl Default for IdentityYaml {
    /// `secret_key` the tests' [`SECRET_KEY`], and no source yet.
    fn default() -> IdentityYaml {
        let mut map = Map::default();
        map.set(&["secret_key"], text(SECRET_KEY));
        IdentityYaml(map)
    }
}

impl IdentityYaml {
    /// HS256 sessions in the `session` cookie ([`JwtYaml::session`]).
    pub fn session() -> IdentityYaml {
        IdentityYaml::default().jwt(JwtYaml::session())
    }

    /// `identity.secret_key`.
    pub fn secret_key(mut self, key: &str) -> IdentityYaml {
        self.0.set(&["secret_key"], text(key));
        self
    }

    /// `identity.jwt`.
    pub fn jwt(mut self, jwt: JwtYaml) -> IdentityYaml {
        self.0.set(&["jwt"], Node::Map(jwt.0));
        self
    }

    /// `identity.lookup`.
    pub fn lookup(mut self, lookup: LookupYaml) -> IdentityYaml {
        self.0.set(&["lookup"], Node::Map(lookup.0));
        self
    }

    /// `identity.gateway`.
    pub fn gateway(mut self, gateway: GatewayYaml) -> IdentityYaml {
        self.0.set(&["gateway"], Node::Map(gateway.0));
        self
    }
}

impl fmt::Display for IdentityYaml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("identity:\n");
        self.0.render(2, &mut out);
        f.write_str(&out)
    }
}

/// An `identity.jwt` block; empty to start with.
#[derive(Debug, Clone, Default)]
pub struct JwtYaml(Map);

impl JwtYaml {
    /// HS256 sessions in the `session` cookie, signed with [`JWT_SECRET`], the user's id,
    /// name and avatar in `sub`, `name` and `picture`.
    pub fn session() -> JwtYaml {
        JwtYaml::default()
            .cookie("session")
            .algorithms(&["HS256"])
            .secret(JWT_SECRET)
            .user_id_claim("sub")
            .user_name_claim("name")
            .user_avatar_claim("picture")
    }

    fn set(mut self, path: &[&'static str], node: Node) -> JwtYaml {
        self.0.set(path, node);
        self
    }

    /// `jwt.cookie`.
    pub fn cookie(self, name: &str) -> JwtYaml {
        self.set(&["cookie"], text(name))
    }

    /// `jwt.cookie_chunks`.
    pub fn cookie_chunks(self, chunks: bool) -> JwtYaml {
        self.set(&["cookie_chunks"], flag(chunks))
    }

    /// `jwt.header`.
    pub fn header(self, name: &str) -> JwtYaml {
        self.set(&["header"], text(name))
    }

    /// `jwt.algorithms`.
    pub fn algorithms(self, algorithms: &[&str]) -> JwtYaml {
        self.set(&["algorithms"], list(algorithms))
    }

    /// `jwt.secret`.
    pub fn secret(self, secret: &str) -> JwtYaml {
        self.set(&["secret"], text(secret))
    }

    /// `jwt.secret_encoding`.
    pub fn secret_encoding(self, encoding: &str) -> JwtYaml {
        self.set(&["secret_encoding"], text(encoding))
    }

    /// `jwt.public_key_file`.
    pub fn public_key_file(self, path: &str) -> JwtYaml {
        self.set(&["public_key_file"], text(path))
    }

    /// `jwt.jwks_file`.
    pub fn jwks_file(self, path: &str) -> JwtYaml {
        self.set(&["jwks_file"], text(path))
    }

    /// `jwt.jwks_url`.
    pub fn jwks_url(self, url: &str) -> JwtYaml {
        self.set(&["jwks_url"], text(url))
    }

    /// `jwt.jwks_optional`.
    pub fn jwks_optional(self, optional: bool) -> JwtYaml {
        self.set(&["jwks_optional"], flag(optional))
    }

    /// `jwt.jwks_refresh`.
    pub fn jwks_refresh(self, every: &str) -> JwtYaml {
        self.set(&["jwks_refresh"], text(every))
    }

    /// `jwt.jwks_min_refresh`.
    pub fn jwks_min_refresh(self, at_most_every: &str) -> JwtYaml {
        self.set(&["jwks_min_refresh"], text(at_most_every))
    }

    /// `jwt.issuer`: one string, or a list of several.
    pub fn issuer(self, issuers: &[&str]) -> JwtYaml {
        self.set(&["issuer"], one_or_many(issuers))
    }

    /// `jwt.audience`: one string, or a list of several.
    pub fn audience(self, audiences: &[&str]) -> JwtYaml {
        self.set(&["audience"], one_or_many(audiences))
    }

    /// `jwt.required_claims`.
    pub fn required_claims(self, paths: &[&str]) -> JwtYaml {
        self.set(&["required_claims"], list(paths))
    }

    /// `jwt.leeway`.
    pub fn leeway(self, leeway: &str) -> JwtYaml {
        self.set(&["leeway"], text(leeway))
    }

    /// `jwt.claims.user_id`.
    pub fn user_id_claim(self, path: &str) -> JwtYaml {
        self.set(&["claims", "user_id"], text(path))
    }

    /// `jwt.claims.user_name`.
    pub fn user_name_claim(self, path: &str) -> JwtYaml {
        self.set(&["claims", "user_name"], text(path))
    }

    /// `jwt.claims.user_avatar`.
    pub fn user_avatar_claim(self, path: &str) -> JwtYaml {
        self.set(&["claims", "user_avatar"], text(path))
    }

    /// `jwt.key_url` (`{kid}` where the key's id goes).
    pub fn key_url(self, url: impl fmt::Display) -> JwtYaml {
        self.set(&["key_url"], text(url))
    }

    /// One entry of `jwt.header_claims`: a JOSE header parameter and the value it must have.
    pub fn header_claim(self, name: &'static str, value: &str) -> JwtYaml {
        self.set(&["header_claims", name], text(value))
    }
}

/// An `identity.lookup` block.
#[derive(Debug, Clone)]
pub struct LookupYaml(Map);

impl LookupYaml {
    /// `lookup.url` (an absolute URL or a path on the upstream) and `lookup.cookies`.
    pub fn new(url: impl fmt::Display, cookies: &[&str]) -> LookupYaml {
        let mut map = Map::default();
        map.set(&["url"], text(url));
        map.set(&["cookies"], list(cookies));
        LookupYaml(map)
    }

    fn set(mut self, path: &[&'static str], node: Node) -> LookupYaml {
        self.0.set(path, node);
        self
    }

    /// `lookup.timeout`.
    pub fn timeout(self, timeout: &str) -> LookupYaml {
        self.set(&["timeout"], text(timeout))
    }

    /// `lookup.cache_ttl`.
    pub fn cache_ttl(self, ttl: &str) -> LookupYaml {
        self.set(&["cache_ttl"], text(ttl))
    }

    /// `lookup.claims.user_id`.
    pub fn user_id_claim(self, path: &str) -> LookupYaml {
        self.set(&["claims", "user_id"], text(path))
    }

    /// `lookup.claims.user_name`.
    pub fn user_name_claim(self, path: &str) -> LookupYaml {
        self.set(&["claims", "user_name"], text(path))
    }

    /// `lookup.claims.user_avatar`.
    pub fn user_avatar_claim(self, path: &str) -> LookupYaml {
        self.set(&["claims", "user_avatar"], text(path))
    }

    /// `lookup.error_ttl`.
    pub fn error_ttl(self, ttl: &str) -> LookupYaml {
        self.set(&["error_ttl"], text(ttl))
    }

    /// `lookup.max_concurrent`.
    pub fn max_concurrent(self, lookups: u64) -> LookupYaml {
        self.set(&["max_concurrent"], number(lookups))
    }

    /// `lookup.select.<field>`: the element `css` picks, its text or its `attribute`
    /// (`field` is `user_id`, `user_name` or `user_avatar`).
    pub fn select(self, field: &'static str, css: &str, attribute: Option<&str>) -> LookupYaml {
        let with_css = self.set(&["select", field, "css"], text(css));
        match attribute {
            Some(attribute) => with_css.set(&["select", field, "attribute"], text(attribute)),
            None => with_css,
        }
    }
}

/// An `identity.gateway` block: the header with the user's id, and the peers believed.
#[derive(Debug, Clone)]
pub struct GatewayYaml(Map);

impl GatewayYaml {
    /// `gateway.headers.user_id`.
    pub fn new(user_id_header: &str) -> GatewayYaml {
        let mut map = Map::default();
        map.set(&["headers", "user_id"], text(user_id_header));
        GatewayYaml(map)
    }

    /// `gateway.from`.
    pub fn from(mut self, networks: &[&str]) -> GatewayYaml {
        self.0.set(&["from"], list(networks));
        self
    }

    /// `gateway.headers.user_name`.
    pub fn user_name_header(mut self, name: &str) -> GatewayYaml {
        self.0.set(&["headers", "user_name"], text(name));
        self
    }

    /// `gateway.headers.user_avatar`.
    pub fn user_avatar_header(mut self, name: &str) -> GatewayYaml {
        self.0.set(&["headers", "user_avatar"], text(name));
        self
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

mod tests {
    use std::time::Duration;

    use super::*;
    use crate::support::config;
    use crate::support::pki::Pki;

    fn address(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_defaults_are_what_every_test_proxy_had() {
        assert_eq!(
            ProxyYaml::new(address("127.0.0.1:3000")).to_string(),
            "listen: \"127.0.0.1:0\"\nshutdown_grace_period: \"5s\"\nupstream:\n  url: \"http://127.0.0.1:3000\"\n  \
             response_timeout: \"5s\"\nassistant:\n  id: \"ast_test\"\n"
        );
        let identity = IdentityYaml::session().to_string();
        assert_eq!(
            identity,
            format!(
                "identity:\n  secret_key: \"{SECRET_KEY}\"\n  jwt:\n    cookie: \"session\"\n    algorithms: [\"HS256\"]\n    \
                 secret: \"{JWT_SECRET}\"\n    claims:\n      user_id: \"sub\"\n      user_name: \"name\"\n      \
                 user_avatar: \"picture\"\n"
            )
        );
    }

    #[test]
    fn every_top_level_key_is_read_back_as_written() {
        let pki = Pki::new(&["localhost"]);
        let yaml = ProxyYaml::new(address("127.0.0.1:3000"))
            .listen("127.0.0.1:8080")
            .trusted_proxies(&["10.0.0.0/8", "::1"])
            .underscores_in_headers(true)
            .listen_tls(&pki.cert_file, &pki.key_file)
            .admin()
            .log_format("json")
            .log_level("warn,invent_proxy=debug")
            .max_connections(7)
            .header_read_timeout("3s")
            .idle_timeout("4s")
            .body_stall_timeout("5s")
            .rewriter_max_memory(1 << 20)
            .max_header_size(32768)
            .workers(3)
            .upstream_url("https://127.0.0.1:3443")
            .host_header("upstream")
            .response_timeout("6s")
            .upstream_ca_file(&pki.ca_file)
            .upstream_server_name("upstream.internal")
            .assistant_id("ast_x")
            .script_url("/button.js")
            .theme_appearance("dark")
            .theme_button_background_color("#6366f1")
            .theme_button_color("#fff")
            .inject_position("head_end")
            .include_paths(&["/**"])
            .exclude_paths(&["/admin/**", "/*.partial"])
            .csp_allow(&["https://www.useinvent.com"])
            .turbo_permanent(false);
        let config = config(&yaml);

        let process = &config.process;
        assert_eq!(process.listen, address("127.0.0.1:8080"));
        assert_eq!(process.trusted_proxies.len(), 2);
        assert!(process.underscores_in_headers);
        assert!(process.listen_tls.is_some());
        assert_eq!(process.admin.as_ref().map(|a| a.listen), Some(address("127.0.0.1:0")));
        assert_eq!(
            (process.log.format.to_string(), process.log.level.as_str()),
            ("json".into(), "warn,invent_proxy=debug")
        );
        let limits = &process.limits;
        assert_eq!(
            (limits.max_connections, limits.header_read_timeout, limits.idle_timeout, limits.body_stall_timeout),
            (7, Duration::from_secs(3), Duration::from_secs(4), Duration::from_secs(5))
        );
        assert_eq!((limits.rewriter_max_memory, limits.max_header_size, limits.workers), (1 << 20, 32768, 3));

        let site = config.main_site();
        let upstream = &site.upstream;
        assert_eq!(upstream.url.scheme, http::uri::Scheme::HTTPS);
        assert_eq!(upstream.url.authority.as_str(), "127.0.0.1:3443");
        assert_eq!(upstream.host_header.to_string(), "upstream");
        assert_eq!(upstream.response_timeout, Duration::from_secs(6));
        assert_eq!(upstream.tls.ca_file.as_ref(), Some(&pki.ca_file));
        assert!(upstream.tls.server_name.is_some());
        let assistant = &site.assistant;
        assert_eq!((assistant.id.as_str(), assistant.script_url.as_str()), ("ast_x", "/button.js"));
        assert_eq!(assistant.theme.appearance.map(|a| a.to_string()).as_deref(), Some("dark"));
        assert_eq!(assistant.theme.button_background_color.as_deref(), Some("#6366f1"));
        assert_eq!(assistant.theme.button_color.as_deref(), Some("#fff"));
        assert_eq!(format!("{:?}", site.inject.position), "HeadEnd");
        assert_eq!(site.inject.include_paths.patterns(), ["/**"]);
        assert_eq!(site.inject.exclude_paths.patterns(), ["/admin/**", "/*.partial"]);
        assert_eq!(site.inject.csp_allow, ["https://www.useinvent.com"]);
        assert!(!site.inject.turbo_permanent);
        let default = crate::support::config(ProxyYaml::new(address("127.0.0.1:3000")));
        assert!(default.main_site().inject.turbo_permanent, "on by default");
    }

    #[test]
    fn identity_blocks_and_sites_are_read_back_as_written() {
        let jwt = JwtYaml::default()
            .header("Authorization")
            .cookie("s")
            .cookie_chunks(true)
            .algorithms(&["HS256"])
            .secret("c2VjcmV0LWtleQ")
            .secret_encoding("base64url")
            .issuer(&["https://a.example"])
            .audience(&["web", "app"])
            .required_claims(&["exp", "tenant.id"])
            .leeway("5s")
            .user_id_claim("user.id")
            .user_name_claim("user.name")
            .user_avatar_claim("user.avatar");
        let lookup = LookupYaml::new("/whoami", &["sid", "remember"])
            .timeout("2s")
            .cache_ttl("30s")
            .user_id_claim("id")
            .user_name_claim("name")
            .user_avatar_claim("avatar");
        let yaml = ProxyYaml::without_upstream()
            .assistant_id("ast_top")
            .identity(IdentityYaml::default().secret_key("sk_top").jwt(jwt).lookup(lookup))
            .site(SiteYaml::new(&["a.test", "www.a.test"], address("127.0.0.1:3001")).assistant_id("ast_a"))
            .site(
                SiteYaml::new(&["*.b.test"], address("127.0.0.1:3002"))
                    .exclude_paths(&["/admin/**"])
                    .identity(IdentityYaml::session().secret_key("sk_b")),
            )
            .default_site("www.a.test");
        let config = config(&yaml);
        assert_eq!(config.default_site, Some(0));
        let (a, b) = (&config.sites[0], &config.sites[1]);
        assert_eq!((a.assistant.id.as_str(), b.assistant.id.as_str()), ("ast_a", "ast_top"));
        assert_eq!((a.hosts.len(), b.hosts.len()), (2, 1));
        assert_eq!(b.upstream.url.authority.as_str(), "127.0.0.1:3002");
        assert_eq!(
            (a.inject.exclude_paths.patterns(), b.inject.exclude_paths.patterns()),
            (&[][..], &["/admin/**".to_owned()][..])
        );

        let top = a.identity.as_ref().unwrap();
        assert_eq!(top.secret_key.expose(), "sk_top");
        let jwt = top.jwt.as_ref().unwrap();
        assert_eq!(jwt.source.header.as_ref().map(http::HeaderName::as_str), Some("authorization"));
        assert_eq!((jwt.source.cookie.as_deref(), jwt.source.cookie_chunks), (Some("s"), true));
        assert_eq!(jwt.algorithms, [jsonwebtoken::Algorithm::HS256]);
        assert_eq!(
            (jwt.issuer.as_slice(), jwt.audience.as_slice()),
            (&["https://a.example".to_owned()][..], &["web".to_owned(), "app".to_owned()][..])
        );
        let required: Vec<String> = jwt.required_claims.iter().map(ToString::to_string).collect();
        assert_eq!(required, ["exp", "tenant.id"]);
        assert_eq!(jwt.leeway, Duration::from_secs(5));
        assert_eq!(jwt.claims.user_id.to_string(), "user.id");
        assert_eq!(jwt.claims.user_avatar.as_ref().map(ToString::to_string).as_deref(), Some("user.avatar"));
        let lookup = top.lookup.as_ref().unwrap();
        assert_eq!(lookup.cookies, ["sid", "remember"]);
        assert_eq!((lookup.timeout, lookup.cache_ttl), (Duration::from_secs(2), Duration::from_secs(30)));
        let invent_proxy::config::LookupAnswer::Json(claims) = &lookup.answer else {
            panic!("claims are a JSON answer: {:?}", lookup.answer)
        };
        assert_eq!(claims.user_name.as_ref().map(ToString::to_string).as_deref(), Some("name"));
        assert_eq!(b.identity.as_ref().unwrap().secret_key.expose(), "sk_b", "the site's own identity");
    }

    #[test]
    fn gateway_key_url_and_select_are_read_back_as_written() {
        let gateway =
            GatewayYaml::new("X-User").from(&["10.0.0.0/8"]).user_name_header("X-Name").user_avatar_header("X-Avatar");
        let jwt = JwtYaml::default()
            .header("X-Amzn-Oidc-Data")
            .algorithms(&["ES256"])
            .key_url("https://keys.example/{kid}")
            .header_claim("signer", "arn:aws:elasticloadbalancing:x")
            .user_id_claim("sub");
        let lookup = LookupYaml::new("/account", &["sid"])
            .error_ttl("7s")
            .max_concurrent(3)
            .select("user_id", "#me", Some("data-id"))
            .select("user_name", ".name", None);
        let identity = IdentityYaml::default().gateway(gateway).jwt(jwt).lookup(lookup);
        let config = config(ProxyYaml::new(address("127.0.0.1:3000")).identity(identity));
        let identity = config.main_site().identity.as_ref().unwrap();
        let gateway = identity.gateway.as_ref().unwrap();
        assert_eq!(gateway.from, ["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()]);
        assert_eq!(
            (gateway.user_id.as_str(), gateway.user_name.as_ref().map(|h| h.as_str())),
            ("x-user", Some("x-name"))
        );
        assert_eq!(gateway.user_avatar.as_ref().map(|h| h.as_str()), Some("x-avatar"));
        let jwt = identity.jwt.as_ref().unwrap();
        assert!(matches!(jwt.keys, invent_proxy::config::KeySource::PerKid(_)), "{:?}", jwt.keys);
        assert_eq!(jwt.header_claims, [("signer".to_owned(), "arn:aws:elasticloadbalancing:x".to_owned())]);
        let lookup = identity.lookup.as_ref().unwrap();
        assert_eq!((lookup.error_ttl, lookup.max_concurrent), (Duration::from_secs(7), 3));
        let invent_proxy::config::LookupAnswer::Html(selection) = &lookup.answer else {
            panic!("select is an HTML answer: {:?}", lookup.answer)
        };
        assert_eq!((selection.user_id.css.as_str(), selection.user_id.attribute.as_deref()), ("#me", Some("data-id")));
        let name = selection.user_name.as_ref().unwrap();
        assert_eq!((name.css.as_str(), name.attribute.as_deref()), (".name", None));
        assert!(selection.user_avatar.is_none());
    }

    #[test]
    fn a_raw_block_is_written_as_it_is_after_the_builders_keys() {
        let yaml = ProxyYaml::new(address("127.0.0.1:3000")).extra("# spelled out\nunderscores_in_headers: true\n");
        let text = yaml.to_string();
        assert!(text.ends_with("  id: \"ast_test\"\n# spelled out\nunderscores_in_headers: true\n"), "{text}");
        assert!(config(&yaml).process.underscores_in_headers);
    }

    #[test]
    #[should_panic(expected = "`upstream` is set twice: by a method and by extra()")]
    fn a_raw_block_cannot_repeat_a_key_the_builder_writes() {
        let _ = ProxyYaml::new(address("127.0.0.1:3000")).extra("upstream:\n  url: http://127.0.0.1:9\n");
    }

    #[test]
    #[should_panic(expected = "`limits` is set twice: by a method and by extra()")]
    fn a_key_cannot_be_set_after_a_raw_block_wrote_it() {
        let _ = ProxyYaml::new(address("127.0.0.1:3000")).extra("limits:\n  workers: 1\n").workers(2);
    }
}
