//! The `identity.rails`, `identity.flask` and `identity.cookie_session` blocks: a web
//! framework's own session cookie, read in place with the app's secret — as written in the
//! file, typed, and checked at start-up (a secret the framework would refuse is an error).
//! How each cookie is verified is in `docs/frameworks-spec.md`.

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::BuildError;
use super::identity::{Claims, claims};
use super::raw::{ClaimPath, CookieName, RawClaims};
use super::value::{ConfigDuration, Parsed, RailsCipher, RailsKeyDerivation, Secret};

/// The fewest characters a `secret_key_base` may have here: ActiveSupport's minimum for a
/// cookie secret (`LegacyKeyGenerator::SECRET_MIN_LENGTH`, Rails 4.0–5.2). Rails 5.2+
/// itself refuses only a blank one, but a shorter secret is a placeholder, not an app's
/// real one (`rails secret` makes 128), and would only make every session `bad_signature`.
pub const RAILS_SECRET_MIN_CHARS: usize = 30;
/// Flask's `PERMANENT_SESSION_LIFETIME` by default: 31 days.
const FLASK_MAX_AGE: Duration = Duration::from_secs(31 * 24 * 3600);
/// The session cookie Flask and cookie-session use by default.
const DEFAULT_SESSION_COOKIE: &str = "session";

/// `identity.rails`: a Rails app's cookie-store session (`ActionDispatch::Session::CookieStore`),
/// decrypted with its `secret_key_base` exactly as Rails does (`ActiveSupport::MessageEncryptor`,
/// `KeyGenerator`, the cookie jar's `_rails` envelope).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRails {
    /// The session cookie: the `key` of `config.session_store :cookie_store` (Rails' default
    /// is `_<app name>_session`, e.g. `_shop_session`).
    pub cookie: Parsed<CookieName>,
    /// The app's `secret_key_base` (`bin/rails credentials:show`, or `SECRET_KEY_BASE` in
    /// its environment): at least 30 characters, not blank. It can forge the app's sessions:
    /// write `${NAME}` so it comes from the environment (`check` warns on a literal).
    #[schemars(with = "Secret")]
    pub secret_key_base: Spanned<Secret>,
    /// `aes-256-gcm` (Rails 5.2+), `aes-256-cbc` (with HMAC-SHA1: Rails 4.0–5.1, or 5.2+ with
    /// `use_authenticated_cookie_encryption` off), or `auto`: by the cookie's shape, as a
    /// Rails 5.2+ app reads both.
    /// Default: `auto`.
    pub cipher: Option<Parsed<RailsCipher>>,
    /// The PBKDF2 digest that derives the cookie keys from `secret_key_base`: `sha1` (Rails
    /// up to 6.1, and later apps that kept it), `sha256` (7.0+ `load_defaults`), or `auto`:
    /// SHA256, then SHA1.
    /// Default: `auto`.
    pub key_derivation: Option<Parsed<RailsKeyDerivation>>,
    /// Where the identity is in the session.
    /// Default: the user id at `[warden.user.user.key, 0, 0]` (Devise), no name or avatar.
    pub claims: Option<RawClaims>,
}

/// `identity.flask`: a Flask app's default session (`SecureCookieSessionInterface`: signed
/// with itsdangerous, salt `cookie-session`, tagged JSON, zlib when it is smaller).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFlask {
    /// The session cookie, the app's `SESSION_COOKIE_NAME`.
    /// Default: `session`.
    pub cookie: Option<Parsed<CookieName>>,
    /// The app's `SECRET_KEY` (`app.secret_key`), as UTF-8 text. It can forge the app's
    /// sessions: write `${NAME}` so it comes from the environment (`check` warns on a literal).
    pub secret_key: Secret,
    /// The app's `PERMANENT_SESSION_LIFETIME`, as a duration of at least a second (`31d`,
    /// `12h`): a session signed longer ago than this, or in the future, is
    /// `rejected:expired`, as Flask refuses it.
    /// Default: `31d` (Flask's).
    #[schemars(with = "Option<Parsed<ConfigDuration>>")]
    pub max_age: Option<Spanned<Parsed<ConfigDuration>>>,
    /// Where the identity is in the session.
    /// Default: the user id at `_user_id` (Flask-Login), no name or avatar.
    pub claims: Option<RawClaims>,
}

/// `identity.cookie_session`: an Express app's `cookie-session`: the session in one cookie
/// (base64 JSON), its keygrip signature in `<cookie>.sig`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCookieSession {
    /// The session cookie, cookie-session's `name`; its signature is the cookie of this name
    /// with `.sig` added.
    /// Default: `session`.
    pub cookie: Option<Parsed<CookieName>>,
    /// The app's `cookieSession({ keys })`, at least one, in its order: any of them verifies
    /// (rotation). They can forge the app's sessions: write each as `${NAME}` so it comes
    /// from the environment (`check` warns on a literal).
    #[schemars(with = "Vec<Secret>")]
    pub keys: Spanned<Vec<Secret>>,
    /// Where the identity is in the session.
    /// Default: the user id at `passport.user` (Passport), no name or avatar.
    pub claims: Option<RawClaims>,
}

/// `identity.rails`, typed.
#[derive(Debug, Clone)]
pub struct Rails {
    pub cookie: String,
    /// Not blank, at least [`RAILS_SECRET_MIN_CHARS`] characters.
    pub secret_key_base: Secret,
    pub cipher: RailsCipher,
    pub key_derivation: RailsKeyDerivation,
    pub claims: Claims,
}

/// `identity.flask`, typed.
#[derive(Debug, Clone)]
pub struct Flask {
    pub cookie: String,
    pub secret_key: Secret,
    /// Whole seconds, as Flask's `int(total_seconds())`.
    pub max_age: Duration,
    pub claims: Claims,
}

/// `identity.cookie_session`, typed.
#[derive(Debug, Clone)]
pub struct CookieSession {
    pub cookie: String,
    /// At least one, in the app's order.
    pub keys: Vec<Secret>,
    pub claims: Claims,
}

/// Builds `identity.rails`: a `secret_key_base` that is blank or shorter than
/// [`RAILS_SECRET_MIN_CHARS`] is an error.
pub(super) fn build_rails(raw: RawRails) -> Result<Rails, BuildError> {
    let secret = &raw.secret_key_base.value;
    let characters = secret.expose().chars().count();
    let blank = secret.expose().chars().all(char::is_whitespace);
    if blank || characters < RAILS_SECRET_MIN_CHARS {
        let message = format!(
            "is {}: too short to be an app's secret_key_base (ActiveSupport's minimum for a cookie secret is \
             {RAILS_SECRET_MIN_CHARS} characters; `bin/rails secret` makes 128); use the app's own, from \
             `bin/rails credentials:show` or its SECRET_KEY_BASE",
            if blank { "blank".to_owned() } else { format!("{characters} characters") }
        );
        let location = Some(raw.secret_key_base.referenced);
        return Err(BuildError::new("identity.rails.secret_key_base", location, message));
    }
    let devise = ClaimPath(vec!["warden.user.user.key".to_owned(), "0".to_owned(), "0".to_owned()]);
    Ok(Rails {
        cookie: raw.cookie.0.0,
        secret_key_base: raw.secret_key_base.value,
        cipher: raw.cipher.map_or(RailsCipher::Auto, |c| c.0),
        key_derivation: raw.key_derivation.map_or(RailsKeyDerivation::Auto, |k| k.0),
        claims: claims(raw.claims, devise),
    })
}

/// Builds `identity.flask`.
/// Builds `identity.flask`: a `max_age` under a second is an error (every session would be
/// expired: itsdangerous counts whole seconds).
pub(super) fn build_flask(raw: RawFlask) -> Result<Flask, BuildError> {
    let max_age = match raw.max_age {
        Some(max_age) if max_age.value.0.0.as_secs() == 0 => {
            let message = "is under a second: every session would be rejected as expired; write the app's \
                           PERMANENT_SESSION_LIFETIME, like 31d";
            return Err(BuildError::new("identity.flask.max_age", Some(max_age.referenced), message));
        }
        Some(max_age) => Duration::from_secs(max_age.value.0.0.as_secs()),
        None => FLASK_MAX_AGE,
    };
    Ok(Flask {
        cookie: raw.cookie.map_or_else(|| DEFAULT_SESSION_COOKIE.to_owned(), |c| c.0.0),
        secret_key: raw.secret_key,
        max_age,
        claims: claims(raw.claims, ClaimPath(vec!["_user_id".to_owned()])),
    })
}

/// Builds `identity.cookie_session`: an empty `keys` is an error (cookie-session throws
/// ".keys required." too).
pub(super) fn build_cookie_session(raw: RawCookieSession) -> Result<CookieSession, BuildError> {
    if raw.keys.value.is_empty() {
        let message = "lists no key; give the app's cookieSession({ keys }), e.g. [\"${COOKIE_KEY}\"]";
        return Err(BuildError::new("identity.cookie_session.keys", Some(raw.keys.referenced), message));
    }
    let passport = ClaimPath(vec!["passport".to_owned(), "user".to_owned()]);
    Ok(CookieSession {
        cookie: raw.cookie.map_or_else(|| DEFAULT_SESSION_COOKIE.to_owned(), |c| c.0.0),
        keys: raw.keys.value,
        claims: claims(raw.claims, passport),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn identity(block: &str) -> Result<crate::config::Identity, String> {
        let yaml = format!(
            "upstream: {{ url: http://127.0.0.1:9 }}\nassistant: {{ id: a }}\nidentity:\n  secret_key: k\n{block}"
        );
        Config::from_yaml(&yaml, "t.yaml", std::path::Path::new("."))
            .map(|config| config.main_site().identity.clone().unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_block_has_the_frameworks_defaults() {
        let skb = "a".repeat(30);
        let rails = identity(&format!("  rails: {{ cookie: _shop_session, secret_key_base: {skb} }}\n")).unwrap();
        let rails = rails.rails.unwrap();
        assert_eq!((rails.cipher.to_string(), rails.key_derivation.to_string()), ("auto".into(), "auto".into()));
        assert_eq!(rails.claims.user_id.to_string(), "[warden.user.user.key, 0, 0]");
        let flask = identity("  flask: { secret_key: s }\n").unwrap().flask.unwrap();
        assert_eq!((flask.cookie.as_str(), flask.max_age.as_secs()), ("session", 2_678_400));
        assert_eq!(flask.claims.user_id.to_string(), "_user_id");
        let cs = identity("  cookie_session: { keys: [k1, k2] }\n").unwrap().cookie_session.unwrap();
        assert_eq!((cs.cookie.as_str(), cs.keys.len()), ("session", 2));
        assert_eq!(cs.claims.user_id.to_string(), "passport.user");
    }

    #[test]
    fn a_flask_max_age_under_a_second_is_an_error_naming_the_key_and_line() {
        let err = identity("  flask:\n    secret_key: f\n    max_age: 0s\n").unwrap_err();
        assert!(err.starts_with("t.yaml:7:") && err.contains("identity.flask.max_age"), "{err}");
        assert!(identity("  flask:\n    secret_key: f\n    max_age: 1s\n").is_ok());
    }

    #[test]
    fn a_secret_key_base_rails_would_not_take_is_an_error_naming_the_key_and_line() {
        for short in ["\"                                   \"", "too-short-29-characters-xxxxx"] {
            let err = identity(&format!("  rails:\n    cookie: s\n    secret_key_base: {short}\n")).unwrap_err();
            assert!(err.starts_with("t.yaml:7:") && err.contains("identity.rails.secret_key_base"), "{err}");
            assert!(!err.contains("xxxxx"), "the secret is not quoted: {err}");
        }
        let thirty = "x".repeat(30);
        assert!(identity(&format!("  rails: {{ cookie: s, secret_key_base: {thirty} }}\n")).is_ok());
    }

    #[test]
    fn cookie_session_needs_a_key_and_max_age_is_whole_seconds() {
        let err = identity("  cookie_session: { keys: [] }\n").unwrap_err();
        assert!(err.contains("identity.cookie_session.keys") && err.contains("no key"), "{err}");
        let flask = identity("  flask: { secret_key: s, max_age: 1500ms }\n").unwrap().flask.unwrap();
        assert_eq!(flask.max_age.as_secs(), 1);
    }

    #[test]
    fn claim_paths_are_dot_paths_or_lists_of_keys_and_indexes() {
        let block = "  rails:\n    cookie: s\n    secret_key_base: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n    claims: { user_id: \
                     [warden.user.user.key, 0, 0], user_name: profile.name, user_avatar: [a.b] }\n";
        let claims = identity(block).unwrap().rails.unwrap().claims;
        assert_eq!(claims.user_id.0, ["warden.user.user.key", "0", "0"]);
        assert_eq!(claims.user_name.unwrap().0, ["profile", "name"]);
        assert_eq!(claims.user_avatar.unwrap().0, ["a.b"]);
        for bad in ["[]", "[a, -1]", "[a, true]", "a..b", "[a, \"\"]"] {
            let block = format!("  flask: {{ secret_key: s, claims: {{ user_id: {bad} }} }}\n");
            let err = identity(&block).unwrap_err();
            assert!(err.contains("identity.flask.claims.user_id"), "{bad}: {err}");
        }
    }
}
