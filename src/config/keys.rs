//! JWT verification keys: from `jwt.secret`, `jwt.public_key_file` or `jwt.jwks_file`,
//! checked against `jwt.algorithms` and parsed once at start-up — or where `jwt.jwks_url`
//! is fetched from, and how often.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_saphyr::Location;

use super::BuildError;
use super::raw::RawJwt;
use super::value::{Secret, SecretEncoding};
use serde_saphyr::Spanned;

/// One key a token may be verified with, and what it declares about itself.
#[derive(Clone)]
pub struct VerificationKey {
    /// The `kid` a token names to pick this key (keys from a key set).
    pub kid: Option<String>,
    /// The only `alg` this key verifies, if it says so.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

/// The parsed verification keys: one for `secret`/`public_key_file`, any number from a key
/// set. `Debug` shows what kind of keys they are, never their bytes.
#[derive(Clone)]
pub struct JwtKey {
    keys: Vec<VerificationKey>,
    description: String,
}

impl JwtKey {
    fn single(key: DecodingKey, description: String) -> Self {
        JwtKey { keys: vec![VerificationKey { kid: None, alg: None, key }], description }
    }

    pub(crate) fn from_keys(keys: Vec<VerificationKey>, description: String) -> Self {
        JwtKey { keys, description }
    }

    /// The keys, in the order they were given.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// "a shared secret" or "the RSA public key in keys/session.pem": safe to print.
    pub fn describe(&self) -> &str {
        &self.description
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtKey({})", self.description)
    }
}

/// Where the verification keys come from: parsed from the config's files, or a key set
/// the proxy fetches (at start-up, then in the background).
#[derive(Debug, Clone)]
pub enum KeySource {
    Fixed(JwtKey),
    Url(JwksUrl),
    /// A PEM public key per `kid`, fetched when a token first names it (AWS ALB).
    PerKid(KeyUrl),
}

impl KeySource {
    /// What the keys are, safe to print.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Fixed(key) => key.describe().to_owned(),
            KeySource::Url(jwks) => format!(
                "the key set at {} (refreshed every {}, on an unknown kid at most every {}{})",
                jwks.url,
                humantime::format_duration(jwks.refresh),
                humantime::format_duration(jwks.min_refresh),
                if jwks.optional { "; optional at start-up" } else { "" }
            ),
            KeySource::PerKid(key_url) => format!(
                "the PEM public key of each kid at {} (fetched once per kid; an unknown kid at most every {})",
                key_url.template,
                humantime::format_duration(key_url.min_refresh)
            ),
        }
    }
}

/// `jwt.jwks_url` and its schedule.
#[derive(Debug, Clone)]
pub struct JwksUrl {
    pub url: http::Uri,
    /// Start without the key set when it cannot be fetched (every token is then rejected
    /// until a refresh succeeds).
    pub optional: bool,
    /// How often the key set is fetched again in the background.
    pub refresh: Duration,
    /// The least time between two fetches prompted by a token whose `kid` is unknown.
    pub min_refresh: Duration,
    /// Limit on one fetch, connection to last byte.
    pub timeout: Duration,
}

/// `jwt.key_url`: where the PEM public key of each `kid` is.
#[derive(Debug, Clone)]
pub struct KeyUrl {
    /// The URL with `{kid}` where the key id goes, as one percent-encoded path segment.
    pub template: String,
    /// The template with a key id in it: the scheme and host the keys are fetched from.
    pub example: http::Uri,
    /// The least time between two fetches of a `kid` that could not be fetched.
    pub min_refresh: Duration,
    /// Limit on one fetch, connection to last byte.
    pub timeout: Duration,
}

pub(crate) struct LoadedKey {
    pub algorithms: Vec<Algorithm>,
    pub key: KeySource,
}

/// Builds the verification key of `identity.jwt` and the algorithms it accepts.
pub(crate) fn load(jwt: &RawJwt, jwt_location: Location, base_dir: &Path) -> Result<LoadedKey, BuildError> {
    let key_options = [jwt.secret.is_some(), jwt.public_key_file.is_some(), jwt.jwks_file.is_some()];
    if let Some(url) = &jwt.key_url {
        if key_options.iter().any(|set| *set) || jwt.jwks_url.is_some() {
            let message = "set one of `secret`, `public_key_file`, `jwks_file`, `jwks_url` and `key_url`";
            return Err(BuildError::new("identity.jwt.key_url", Some(url.referenced), message));
        }
        if jwt.jwks_refresh.is_some() || jwt.jwks_optional.is_some() {
            let message = "`jwks_refresh` and `jwks_optional` go with `jwks_url`; `key_url` fetches each key when a \
                           token first names it";
            return Err(BuildError::new("identity.jwt", Some(jwt_location), message));
        }
        let algorithms = key_set_algorithms(jwt, jwt_location)?;
        if algorithms.iter().any(|a| a.family() == AlgorithmFamily::Hmac) {
            let message = "a key URL serves public keys: list RS*, PS*, ES* or EdDSA algorithms";
            return Err(BuildError::new("identity.jwt.algorithms", Some(jwt_location), message));
        }
        let template = url.value.0.0.clone();
        let example = template.replace("{kid}", "kid").parse().map_err(|_| {
            BuildError::new("identity.jwt.key_url", Some(url.referenced), "is not a URL once {kid} is filled in")
        })?;
        let key_url = KeyUrl {
            template,
            example,
            min_refresh: jwt.jwks_min_refresh.as_ref().map_or(Duration::from_secs(30), |v| v.0.0),
            timeout: jwt.jwks_timeout.as_ref().map_or(Duration::from_secs(5), |v| v.0.0),
        };
        return Ok(LoadedKey { algorithms, key: KeySource::PerKid(key_url) });
    }
    if let Some(url) = &jwt.jwks_url {
        if key_options.iter().any(|set| *set) {
            let message = "set one of `secret`, `public_key_file`, `jwks_file` and `jwks_url`";
            return Err(BuildError::new("identity.jwt.jwks_url", Some(url.referenced), message));
        }
        let algorithms = key_set_algorithms(jwt, jwt_location)?;
        return Ok(LoadedKey { algorithms, key: KeySource::Url(jwks_url(jwt, &url.value.0.0)) });
    }
    if [
        jwt.jwks_refresh.is_some(),
        jwt.jwks_min_refresh.is_some(),
        jwt.jwks_timeout.is_some(),
        jwt.jwks_optional.is_some(),
    ]
    .contains(&true)
    {
        let message = "`jwks_optional`, `jwks_refresh`, `jwks_min_refresh` and `jwks_timeout` go with `jwks_url`";
        return Err(BuildError::new("identity.jwt", Some(jwt_location), message));
    }
    if let Some(file) = &jwt.jwks_file {
        return load_key_set(jwt, file, jwt_location, base_dir);
    }
    let algorithms = algorithms(jwt, jwt_location)?;
    let family = algorithms[0].family();
    let key = match (&jwt.secret, &jwt.public_key_file, family) {
        (Some(_), Some(file), _) => {
            return Err(BuildError::new(
                "identity.jwt.public_key_file",
                Some(file.referenced),
                "set either `secret` (HS*) or `public_key_file` (RS*, PS*, ES*, EdDSA), not both",
            ));
        }
        (Some(secret), None, AlgorithmFamily::Hmac) => {
            JwtKey::single(DecodingKey::from_secret(&secret_bytes(jwt, secret)?), "a shared secret".to_owned())
        }
        (None, Some(file), family) if family != AlgorithmFamily::Hmac => {
            let path = base_dir.join(&file.value.0);
            public_key(&path, family)
                .map_err(|message| BuildError::new("identity.jwt.public_key_file", Some(file.referenced), message))?
        }
        (_, _, AlgorithmFamily::Hmac) => {
            return Err(BuildError::new(
                "identity.jwt.secret",
                Some(jwt_location),
                "HS256/HS384/HS512 need `secret`, the key the site signs its sessions with",
            ));
        }
        (_, _, _) => {
            return Err(BuildError::new(
                "identity.jwt.public_key_file",
                Some(jwt_location),
                format!("{:?} needs `public_key_file`, a PEM public key", algorithms[0]),
            ));
        }
    };
    Ok(LoadedKey { algorithms, key: KeySource::Fixed(key) })
}

fn jwks_url(jwt: &RawJwt, url: &http::Uri) -> JwksUrl {
    let refresh = jwt.jwks_refresh.as_ref().map_or(Duration::from_secs(600), |v| v.0.0);
    let min_refresh = jwt.jwks_min_refresh.as_ref().map_or(Duration::from_secs(30), |v| v.0.0);
    JwksUrl {
        url: url.clone(),
        optional: jwt.jwks_optional.unwrap_or(false),
        refresh,
        min_refresh: min_refresh.min(refresh),
        timeout: jwt.jwks_timeout.as_ref().map_or(Duration::from_secs(5), |v| v.0.0),
    }
}

/// `jwt.jwks_file`: a key set, alone, with the algorithms it may verify listed (key sets
/// may mix key types).
fn load_key_set(
    jwt: &RawJwt,
    file: &Spanned<super::value::Parsed<std::path::PathBuf>>,
    jwt_location: Location,
    base_dir: &Path,
) -> Result<LoadedKey, BuildError> {
    let error = |message: String| BuildError::new("identity.jwt.jwks_file", Some(file.referenced), message);
    if jwt.secret.is_some() || jwt.public_key_file.is_some() {
        return Err(error("set one of `secret`, `public_key_file`, `jwks_file` and `jwks_url`".to_owned()));
    }
    let algorithms = key_set_algorithms(jwt, jwt_location)?;
    let key = super::jwks::load(&base_dir.join(&file.value.0)).map_err(error)?;
    Ok(LoadedKey { algorithms, key: KeySource::Fixed(key) })
}

/// The algorithms a key set may verify: they must be listed, since a key set may mix key
/// types.
fn key_set_algorithms(jwt: &RawJwt, jwt_location: Location) -> Result<Vec<Algorithm>, BuildError> {
    let Some(listed) = &jwt.algorithms else {
        let message = "list the algorithms the key set verifies, e.g. [RS256, ES256]";
        return Err(BuildError::new("identity.jwt.algorithms", Some(jwt_location), message));
    };
    let algorithms: Vec<Algorithm> = listed.value.iter().map(|a| a.0.0).collect();
    if algorithms.is_empty() {
        return Err(BuildError::new(
            "identity.jwt.algorithms",
            Some(listed.referenced),
            "must list at least one algorithm",
        ));
    }
    Ok(algorithms)
}

/// The bytes of `jwt.secret`, as `secret_encoding` says it is written (never quoted in an
/// error: it is a secret).
fn secret_bytes(jwt: &RawJwt, secret: &Spanned<Secret>) -> Result<Vec<u8>, BuildError> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let text = secret.value.expose().trim_end_matches('=');
    let decoded = match jwt.secret_encoding.as_ref().map_or(SecretEncoding::Utf8, |v| v.0) {
        SecretEncoding::Utf8 => return Ok(secret.value.expose().as_bytes().to_vec()),
        SecretEncoding::Base64 => STANDARD
            .decode(secret.value.expose())
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text)),
        SecretEncoding::Base64Url => URL_SAFE_NO_PAD.decode(text),
    };
    let bytes = decoded.map_err(|_| {
        BuildError::new("identity.jwt.secret", Some(secret.referenced), "is not valid for `secret_encoding`")
    })?;
    if bytes.is_empty() {
        return Err(BuildError::new("identity.jwt.secret", Some(secret.referenced), "decodes to an empty key"));
    }
    Ok(bytes)
}

/// The listed algorithms (default `[HS256]`), which must all be of one family.
fn algorithms(jwt: &RawJwt, jwt_location: Location) -> Result<Vec<Algorithm>, BuildError> {
    let Some(listed) = &jwt.algorithms else {
        if jwt.public_key_file.is_some() {
            return Err(BuildError::new(
                "identity.jwt.algorithms",
                Some(jwt_location),
                "list the algorithms the public key verifies, e.g. [RS256]",
            ));
        }
        return Ok(vec![Algorithm::HS256]);
    };
    let algorithms: Vec<Algorithm> = listed.value.iter().map(|a| a.0.0).collect();
    let Some(first) = algorithms.first() else {
        return Err(BuildError::new(
            "identity.jwt.algorithms",
            Some(listed.referenced),
            "must list at least one algorithm",
        ));
    };
    if algorithms.iter().any(|a| a.family() != first.family()) {
        return Err(BuildError::new(
            "identity.jwt.algorithms",
            Some(listed.referenced),
            "all algorithms must use the same key: HS* (secret), RS*/PS* (RSA), ES* (EC) or EdDSA",
        ));
    }
    Ok(algorithms)
}

fn public_key(path: &Path, family: AlgorithmFamily) -> Result<JwtKey, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if pem.windows(b"PRIVATE KEY-----".len()).any(|w| w == b"PRIVATE KEY-----") {
        return Err(format!(
            "{} holds a private key; give the proxy only the public key (e.g. `openssl pkey -in key.pem -pubout`)",
            path.display()
        ));
    }
    let (parsed, kind) = match family {
        AlgorithmFamily::Rsa => (DecodingKey::from_rsa_pem(&pem), "RSA"),
        AlgorithmFamily::Ec => (DecodingKey::from_ec_pem(&pem), "EC"),
        AlgorithmFamily::Ed => (DecodingKey::from_ed_pem(&pem), "Ed25519"),
        AlgorithmFamily::Hmac => unreachable_hmac(),
    };
    let decoding = parsed.map_err(|e| format!("{} is not a PEM {kind} public key: {e}", path.display()))?;
    Ok(JwtKey::single(decoding, format!("the {kind} public key in {}", path.display())))
}

/// HMAC keys never come from a file; `load` routes them elsewhere.
fn unreachable_hmac() -> (jsonwebtoken::errors::Result<DecodingKey>, &'static str) {
    (Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into()), "HMAC")
}
