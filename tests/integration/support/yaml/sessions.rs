//! The builders of the identity sources that verify a session themselves: [`JwtYaml`] (a
//! JWT) and [`FrameworkYaml`] (a Rails, Flask or cookie-session cookie).

use std::fmt;

use super::{Map, Node, flag, list, one_or_many, segments, text};
use crate::support::JWT_SECRET;

/// An `identity.jwt` block; empty to start with.
#[derive(Debug, Clone, Default)]
pub struct JwtYaml(pub(super) Map);

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

/// An `identity.rails`, `identity.flask` or `identity.cookie_session` block, made by the
/// constructor of its framework; the keys of the others are a panic.
#[derive(Debug, Clone)]
pub struct FrameworkYaml(pub(super) Map, &'static str);

impl FrameworkYaml {
    /// `rails.cookie` and `rails.secret_key_base`.
    pub fn rails(cookie: &str, secret_key_base: &str) -> FrameworkYaml {
        FrameworkYaml(Map::default(), "rails")
            .set(&["cookie"], text(cookie))
            .set(&["secret_key_base"], text(secret_key_base))
    }

    /// `flask.secret_key`.
    pub fn flask(secret_key: &str) -> FrameworkYaml {
        FrameworkYaml(Map::default(), "flask").set(&["secret_key"], text(secret_key))
    }

    /// `cookie_session.keys`.
    pub fn cookie_session(keys: &[&str]) -> FrameworkYaml {
        FrameworkYaml(Map::default(), "cookie_session").set(&["keys"], list(keys))
    }

    fn set(mut self, path: &[&'static str], node: Node) -> FrameworkYaml {
        self.0.set(path, node);
        self
    }

    fn only(self, framework: &str, key: &str) -> FrameworkYaml {
        assert_eq!(self.1, framework, "`{key}` is a key of identity.{framework}, not of identity.{}", self.1);
        self
    }

    /// `cookie` (any of the three).
    pub fn cookie(self, name: &str) -> FrameworkYaml {
        self.set(&["cookie"], text(name))
    }

    /// `rails.cipher`.
    pub fn cipher(self, cipher: &str) -> FrameworkYaml {
        self.only("rails", "cipher").set(&["cipher"], text(cipher))
    }

    /// `rails.key_derivation`.
    pub fn key_derivation(self, digest: &str) -> FrameworkYaml {
        self.only("rails", "key_derivation").set(&["key_derivation"], text(digest))
    }

    /// `flask.max_age`.
    pub fn max_age(self, max_age: &str) -> FrameworkYaml {
        self.only("flask", "max_age").set(&["max_age"], text(max_age))
    }

    /// `claims.user_id` as a dot path.
    pub fn user_id_claim(self, path: &str) -> FrameworkYaml {
        self.set(&["claims", "user_id"], text(path))
    }

    /// `claims.user_id` as a list of keys and indexes.
    pub fn user_id_claim_list(self, path: &[&str]) -> FrameworkYaml {
        self.set(&["claims", "user_id"], segments(path))
    }

    /// `claims.user_name` as a dot path.
    pub fn user_name_claim(self, path: &str) -> FrameworkYaml {
        self.set(&["claims", "user_name"], text(path))
    }
}
