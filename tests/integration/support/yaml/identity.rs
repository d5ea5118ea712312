//! [`IdentityYaml`], an `identity` block, and the builders of its sources that ask someone
//! else: [`GatewayYaml`] (an SSO gateway's headers) and [`LookupYaml`] (the app's endpoint).

use std::fmt;

use super::{FrameworkYaml, JwtYaml, Map, Node, list, number, text};
use crate::support::SECRET_KEY;

/// An `identity` block: the assistant's `secret_key` and how visitors are recognised.
#[derive(Debug, Clone)]
pub struct IdentityYaml(pub(super) Map);

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

    /// `identity.rails`.
    pub fn rails(mut self, rails: FrameworkYaml) -> IdentityYaml {
        self.0.set(&["rails"], Node::Map(rails.0));
        self
    }

    /// `identity.flask`.
    pub fn flask(mut self, flask: FrameworkYaml) -> IdentityYaml {
        self.0.set(&["flask"], Node::Map(flask.0));
        self
    }

    /// `identity.cookie_session`.
    pub fn cookie_session(mut self, cookie_session: FrameworkYaml) -> IdentityYaml {
        self.0.set(&["cookie_session"], Node::Map(cookie_session.0));
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

/// An `identity.gateway` block: the header with the user's id, and the peers believed.
#[derive(Debug, Clone)]
pub struct GatewayYaml(pub(super) Map);

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

/// An `identity.lookup` block.
#[derive(Debug, Clone)]
pub struct LookupYaml(pub(super) Map);

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
