//! Test configs built key by key: [`ProxyYaml`] for the file, [`IdentityYaml`],
//! [`JwtYaml`], [`LookupYaml`], [`FrameworkYaml`] and [`SiteYaml`] for its blocks.
//!
//! Each key is written by one method, so a test names the keys it sets: a key the builder
//! does not know is a compile error, and a raw block ([`ProxyYaml::extra`]) that repeats a
//! key the builder writes is a panic. Nothing is made by editing another helper's text,
//! where a change to the helper would turn the edit into a silent no-op and the test into
//! a test of the default. Strings are written double-quoted (JSON escaping, which YAML
//! reads the same), so no value can change the file's shape.
//!
//! Here: the mapping the builders fill, how it is written, and the builders' tests. The
//! builders are in `proxy.rs` (the top level and `sites` entries), `identity.rs` (the
//! `identity` block, its `gateway` and `lookup`) and `sessions.rs` (`jwt`, and the framework
//! sessions).

mod identity;
mod proxy;
mod sessions;

use std::fmt::{self, Write as _};

pub use identity::{GatewayYaml, IdentityYaml, LookupYaml};
pub use proxy::{ProxyYaml, SiteYaml};
pub use sessions::{FrameworkYaml, JwtYaml};

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

/// A claim path written as a YAML list: each segment quoted, but whole numbers bare (array
/// indexes as an operator writes them: `[warden.user.user.key, 0, 0]`).
fn segments(path: &[&str]) -> Node {
    let items: Vec<String> = path
        .iter()
        .map(|s| match s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
            true => (*s).to_owned(),
            false => serde_json::to_string(s).unwrap(),
        })
        .collect();
    Node::Value(format!("[{}]", items.join(", ")))
}

mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::support::pki::Pki;
    use crate::support::{JWT_SECRET, SECRET_KEY, config};

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
    fn framework_blocks_are_read_back_as_written() {
        let skb = "s".repeat(64);
        let rails = FrameworkYaml::rails("_shop_session", &skb)
            .cipher("aes-256-cbc")
            .key_derivation("sha1")
            .user_id_claim_list(&["warden.user.user.key", "0", "0"])
            .user_name_claim("user_name");
        let flask = FrameworkYaml::flask("flask-key").cookie("app_session").max_age("1h").user_id_claim("uid");
        let cookie_session = FrameworkYaml::cookie_session(&["new", "old"]).cookie("sess").user_id_claim("who.id");
        let identity = IdentityYaml::default().rails(rails).flask(flask).cookie_session(cookie_session);
        let config = config(ProxyYaml::new(address("127.0.0.1:3000")).identity(identity));
        let identity = config.main_site().identity.as_ref().unwrap();
        let rails = identity.rails.as_ref().unwrap();
        assert_eq!((rails.cookie.as_str(), rails.secret_key_base.expose()), ("_shop_session", skb.as_str()));
        assert_eq!((rails.cipher.to_string(), rails.key_derivation.to_string()), ("aes-256-cbc".into(), "sha1".into()));
        assert_eq!(rails.claims.user_id.0, ["warden.user.user.key", "0", "0"]);
        assert_eq!(rails.claims.user_name.as_ref().map(ToString::to_string).as_deref(), Some("user_name"));
        let flask = identity.flask.as_ref().unwrap();
        assert_eq!((flask.cookie.as_str(), flask.secret_key.expose()), ("app_session", "flask-key"));
        assert_eq!((flask.max_age, flask.claims.user_id.to_string()), (Duration::from_secs(3600), "uid".into()));
        let cookie_session = identity.cookie_session.as_ref().unwrap();
        let keys: Vec<&str> = cookie_session.keys.iter().map(|k| k.expose()).collect();
        assert_eq!((cookie_session.cookie.as_str(), keys), ("sess", vec!["new", "old"]));
        assert_eq!(cookie_session.claims.user_id.to_string(), "who.id");
    }

    #[test]
    #[should_panic(expected = "`max_age` is a key of identity.flask, not of identity.rails")]
    fn a_framework_block_takes_only_its_own_keys() {
        let _ = FrameworkYaml::rails("s", "k").max_age("1h");
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
