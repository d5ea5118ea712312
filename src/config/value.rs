//! Scalar config values: `${NAME}` expansion, durations, secrets and the small enums.
//!
//! Every scalar in the YAML file is read as a string, has its `${NAME}` references
//! replaced from the environment, and is then parsed with [`FromStr`]. Parsing inside
//! deserialization means each error carries the key path and the line and column.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// A scalar parsed with [`FromStr`] after `${NAME}` expansion.
#[derive(Debug, Clone)]
pub struct Parsed<T>(pub T);

impl<'de, T> Deserialize<'de> for Parsed<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        parse_expanded(&raw).map(Parsed).map_err(de::Error::custom)
    }
}

/// `raw` with its `${NAME}` references expanded, parsed with [`FromStr`]; an error quotes
/// the template, never what came from the environment.
pub(crate) fn parse_expanded<T>(raw: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    let expanded = expand_env(raw, env_var)?;
    expanded.parse().map_err(|e: T::Err| unexpanded(&e.to_string(), raw, &expanded))
}

/// How a value parsed from text shows in the config's JSON Schema: a string, or one of
/// fixed spellings (a `${NAME}` reference is always allowed too).
pub trait TextSchema {
    /// The spellings, for a value that has a fixed set of them.
    const SPELLINGS: &'static [&'static str] = &[];
    /// What kind of text it is (`duration`, `IP:PORT`), for the schema's `title` and the
    /// configuration reference; empty for plain text.
    const KIND: &'static str = "";
}

impl<T: TextSchema> schemars::JsonSchema for Parsed<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Text".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        if T::SPELLINGS.is_empty() && T::KIND.is_empty() {
            return schemars::json_schema!({ "type": "string" });
        }
        if T::SPELLINGS.is_empty() {
            return schemars::json_schema!({ "title": T::KIND, "type": "string" });
        }
        schemars::json_schema!({
            "anyOf": [
                { "enum": T::SPELLINGS },
                { "type": "string", "pattern": "\\$\\{", "description": "an environment variable: ${NAME}" }
            ]
        })
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "title": "secret",
            "type": "string",
            "description": "A secret: write `${NAME}` to read it from the environment"
        })
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Puts the `${NAME}` template back where an error message quotes the expanded value, so
/// what came from the environment (a password in a URL, say) never reaches an error.
fn unexpanded(message: &str, raw: &str, expanded: &str) -> String {
    if raw == expanded || expanded.is_empty() {
        return message.to_owned();
    }
    message.replace(&format!("{expanded:?}"), &format!("{raw:?}")).replace(expanded, raw)
}

/// Replaces each `${NAME}` with the value `lookup` gives for `NAME`.
///
/// An unset variable is an error that names it. A `$` not followed by `{` is kept as is.
pub fn expand_env(input: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| "a `${` without its closing `}`".to_owned())?;
        let name = &after[..end];
        if !is_env_name(name) {
            return Err(format!("`${{{name}}}` is not a valid environment variable reference"));
        }
        let value = lookup(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A duration written with a unit: `250ms`, `5s`, `2m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl FromStr for ConfigDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim())
            .map(ConfigDuration)
            .map_err(|_| format!("invalid duration {s:?}; write it with a unit, like 250ms, 5s or 2m"))
    }
}

/// A time limit: a duration above zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl FromStr for Timeout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match ConfigDuration::from_str(s)? {
            ConfigDuration(d) if d.is_zero() => Err("must be more than 0; a zero limit fails every request".to_owned()),
            ConfigDuration(d) => Ok(Timeout(d)),
        }
    }
}

/// Clock skew allowed on `exp`/`nbf`: whole seconds (as JWT times are), at most an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leeway(pub Duration);

impl FromStr for Leeway {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ConfigDuration(d) = ConfigDuration::from_str(s)?;
        if d.subsec_nanos() != 0 {
            return Err("JWT times are in whole seconds; write the leeway in seconds, like 30s".to_owned());
        }
        if d > Duration::from_secs(3600) {
            return Err("at most 1h: a longer leeway accepts sessions that expired long ago".to_owned());
        }
        Ok(Leeway(d))
    }
}

/// A secret value: never printed, never logged, never formatted by `Debug`, never quoted
/// in an error.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Whether it came from the environment (`${NAME}`) rather than the file itself.
    from_env: bool,
}

impl Secret {
    /// The secret's bytes, for the code that must use them (HMAC, JWT verification).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether the secret was read from the environment, as it should be.
    pub fn from_env(&self) -> bool {
        self.from_env
    }

    fn parse(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let looks_like_bare_variable = raw.len() > 1 && raw.starts_with('$') && is_env_name(&raw[1..]);
        if looks_like_bare_variable {
            return Err(format!("`{raw}` is not expanded; write an environment variable as `${{{}}}`", &raw[1..]));
        }
        let value = expand_env(raw, lookup)?;
        if value.is_empty() {
            return Err("must not be empty".to_owned());
        }
        Ok(Secret { from_env: value != raw, value })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Secret::parse(&raw, env_var).map_err(de::Error::custom)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret { value: s.to_owned(), from_env: false }
    }
}

/// An address to listen on: `IP:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub std::net::SocketAddr);

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse()
            .map(ListenAddr)
            .map_err(|_| format!("{s:?} is not an address; write IP:PORT, e.g. 0.0.0.0:8080 or [::]:8080"))
    }
}

/// A string that must not be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonEmpty(pub String);

impl FromStr for NonEmpty {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() { Err("must not be empty") } else { Ok(NonEmpty(s.to_owned())) }
    }
}

/// Declares a config enum with its YAML spellings, `FromStr` and `Display`.
macro_rules! config_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!(
                        "unknown value {other:?}; expected one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$variant => $text),+ })
            }
        }

        impl TextSchema for $name {
            const SPELLINGS: &'static [&'static str] = &[$($text),+];
        }
    };
}

config_enum! {
    /// Which `Host` header the upstream receives.
    HostHeader {
        /// The client's own `Host` (or HTTP/2 `:authority`).
        Preserve => "preserve",
        /// The authority of `upstream.url`.
        Upstream => "upstream",
    }
}

config_enum! {
    /// Where in the page the widget goes.
    Position {
        /// Before `</body>`.
        BodyEnd => "body_end",
        /// Before `</head>`.
        HeadEnd => "head_end",
    }
}

impl From<Position> for invent_rewrite::Position {
    fn from(position: Position) -> Self {
        match position {
            Position::BodyEnd => invent_rewrite::Position::BodyEnd,
            Position::HeadEnd => invent_rewrite::Position::HeadEnd,
        }
    }
}

config_enum! {
    /// How `jwt.secret` is written: the key's bytes as text, or base64 of them.
    SecretEncoding {
        Utf8 => "utf8",
        Base64 => "base64",
        Base64Url => "base64url",
    }
}

config_enum! {
    /// `identity.rails.cipher`: how the Rails app encrypts its cookies.
    RailsCipher {
        /// By the cookie's shape: three `--` parts are AES-256-GCM, two are AES-256-CBC
        /// with HMAC-SHA1 (a GCM app reads both, as Rails does).
        Auto => "auto",
        /// Rails 5.2+ (`use_authenticated_cookie_encryption`).
        Aes256Gcm => "aes-256-gcm",
        /// Rails 4.0–5.1, or 5.2+ with authenticated encryption off.
        Aes256Cbc => "aes-256-cbc",
    }
}

config_enum! {
    /// `identity.rails.key_derivation`: the digest of the PBKDF2 that derives the cookie
    /// keys from `secret_key_base`.
    RailsKeyDerivation {
        /// SHA256, then SHA1: the first that authenticates the cookie.
        Auto => "auto",
        /// Rails up to 6.1, and later apps that kept it.
        Sha1 => "sha1",
        /// Rails 7.0+ (`key_generator_hash_digest_class`, `load_defaults 7.0`).
        Sha256 => "sha256",
    }
}

config_enum! {
    /// The widget's `theme-appearance`.
    Appearance {
        Auto => "auto",
        Light => "light",
        Dark => "dark",
    }
}

/// A JWT signature algorithm, by its JOSE name. `none` is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwtAlgorithm(pub jsonwebtoken::Algorithm);

impl FromStr for JwtAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        jsonwebtoken::Algorithm::from_str(s).map(JwtAlgorithm).map_err(|_| {
            format!(
                "unknown algorithm {s:?}; expected one of: HS256, HS384, HS512, RS256, RS384, RS512, \
                 PS256, PS384, PS512, ES256, ES384, EdDSA"
            )
        })
    }
}

impl TextSchema for ConfigDuration {
    const KIND: &'static str = "duration";
}
impl TextSchema for Leeway {
    const KIND: &'static str = "duration";
}
impl TextSchema for Timeout {
    const KIND: &'static str = "duration";
}
impl TextSchema for ListenAddr {
    const KIND: &'static str = "IP:PORT";
}
impl TextSchema for LogLevel {
    const KIND: &'static str = "level or directives";
}
impl TextSchema for NonEmpty {}
impl TextSchema for std::path::PathBuf {
    const KIND: &'static str = "file path";
}

impl TextSchema for JwtAlgorithm {
    const SPELLINGS: &'static [&'static str] =
        &["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk_1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_known_variables_and_keeps_plain_dollars() {
        assert_eq!(expand_env("a ${KEY} b", env).unwrap(), "a sk_1 b");
        assert_eq!(expand_env("${KEY}${KEY}", env).unwrap(), "sk_1sk_1");
        assert_eq!(expand_env("$5 and $HOME", env).unwrap(), "$5 and $HOME");
        assert_eq!(expand_env("x${EMPTY}y", env).unwrap(), "xy");
    }

    #[test]
    fn an_unset_variable_is_named_in_the_error() {
        let err = expand_env("${NOPE_NOT_SET}", env).unwrap_err();
        assert!(err.contains("NOPE_NOT_SET"), "{err}");
        assert!(expand_env("${unterminated", env).is_err());
        assert!(expand_env("${1BAD}", env).is_err());
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!("250ms".parse::<ConfigDuration>().unwrap().0, Duration::from_millis(250));
        assert_eq!("5s".parse::<ConfigDuration>().unwrap().0, Duration::from_secs(5));
        assert_eq!("2m".parse::<ConfigDuration>().unwrap().0, Duration::from_secs(120));
        assert!("5".parse::<ConfigDuration>().is_err());
        assert!("soon".parse::<ConfigDuration>().is_err());
    }

    #[test]
    fn timeouts_are_positive_and_leeway_is_whole_seconds() {
        assert!("0s".parse::<Timeout>().is_err());
        assert_eq!("250ms".parse::<Timeout>().unwrap().0, Duration::from_millis(250));
        assert!("500ms".parse::<Leeway>().is_err());
        assert!("2h".parse::<Leeway>().is_err());
        assert_eq!("0s".parse::<Leeway>().unwrap().0, Duration::ZERO);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = Secret::from("sk_live_abc");
        assert!(!format!("{secret:?}").contains("sk_live_abc"));
    }

    #[test]
    fn secrets_know_where_they_came_from_and_refuse_bare_variables() {
        let from_env = Secret::parse("${KEY}", env).unwrap();
        assert_eq!((from_env.expose(), from_env.from_env()), ("sk_1", true));
        let inline = Secret::parse("sk_inline", env).unwrap();
        assert!(!inline.from_env());
        let bare = Secret::parse("$KEY", env).unwrap_err();
        assert!(bare.contains("`${KEY}`"), "{bare}");
        assert!(Secret::parse("${EMPTY}", env).is_err());
    }

    #[test]
    fn errors_quote_the_template_not_the_expanded_value() {
        let message = "\"http://u:hunter2@x\" must not carry credentials";
        let fixed = unexpanded(message, "http://u:${P}@x", "http://u:hunter2@x");
        assert_eq!(fixed, "\"http://u:${P}@x\" must not carry credentials");
    }

    #[test]
    fn enums_list_their_spellings_on_error() {
        assert_eq!("head_end".parse::<Position>().unwrap(), Position::HeadEnd);
        let err = "middle".parse::<Position>().unwrap_err();
        assert!(err.contains("body_end, head_end"), "{err}");
        assert!("none".parse::<JwtAlgorithm>().is_err());
        assert_eq!("RS256".parse::<JwtAlgorithm>().unwrap().0, jsonwebtoken::Algorithm::RS256);
    }
}

config_enum! {
    /// How log lines are written.
    LogFormat {
        /// `key=value` fields after a message, one event per line.
        Text => "text",
        /// One JSON object per line.
        Json => "json",
    }
}

/// A `tracing` filter: a level (`info`) or directives (`info,invent_proxy=debug`).
#[derive(Debug, Clone)]
pub struct LogLevel(pub String);

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use tracing_subscriber::filter::LevelFilter;
        let expected = "expected a level (off, error, warn, info, debug, trace) or target=level directives";
        // tracing would take a misspelt level for a target name and log nothing.
        for directive in s.split(',') {
            let level = directive.rsplit_once('=').map_or(directive, |(_, level)| level);
            if level.trim().is_empty() || level.trim().parse::<LevelFilter>().is_err() {
                return Err(format!("{:?} is not a level; {expected}", level.trim()));
            }
        }
        tracing_subscriber::EnvFilter::try_new(s)
            .map(|_| LogLevel(s.to_owned()))
            .map_err(|e| format!("{e}; {expected}"))
    }
}
