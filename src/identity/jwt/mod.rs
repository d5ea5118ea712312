//! Session JWTs: the key a token names, signature and registered claims (jsonwebtoken),
//! the required claims, issuer and JOSE header checked again here; tokens already verified
//! are remembered ([`super::verified`]) so that a session's signature is checked once, not
//! on every page. Tokens whose segments carry base64 padding (AWS ALB's) are read by [`padded`],
//! only with `key_url`.

mod padded;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::claims;
use super::jwks::{KeySet, Keys};
use super::source::Found;
use super::verified::{CACHE_LIFETIME, VerifiedCache, fingerprint};
use super::{MAX_TOKEN_BYTES, StartError, UserHasher, Visitor};
use crate::config::{self, ClaimPath, VerificationKey};
use crate::outcome::Rejection;

/// The registered claims jsonwebtoken checks itself when they are required.
const SPEC_CLAIMS: [&str; 5] = ["exp", "nbf", "iss", "aud", "sub"];

/// Verifies session tokens against the configured keys and checks.
pub(super) struct JwtVerifier {
    /// Required claims that jsonwebtoken does not check itself (not exp/nbf/iss/aud/sub).
    required_paths: Vec<ClaimPath>,
    /// Every required claim, for tokens jsonwebtoken does not read ([`padded`]).
    required_all: Vec<ClaimPath>,
    /// Accepted `aud` values, for those tokens too (any, if empty).
    audience: Vec<String>,
    /// JOSE header parameters that must have exactly these values.
    header_claims: Vec<(String, String)>,
    /// Accepted issuers, checked again here: `iss` must be one string of them (RFC 7519
    /// §4.1.1), never a list that merely includes one.
    issuers: Vec<String>,
    keys: Keys,
    /// One validation per key family among the accepted algorithms: jsonwebtoken checks a
    /// key against every algorithm it is given, and a key set may mix families.
    validations: Vec<Validation>,
    algorithms: Vec<Algorithm>,
    claims: config::Claims,
    leeway: Duration,
    hasher: UserHasher,
    cache: VerifiedCache<Verified>,
}

/// A token that verified: who it names, with which keys, and for how long it may be reused.
#[derive(Clone)]
struct Verified {
    visitor: Arc<Visitor>,
    generation: u64,
    lifetime: Duration,
}

impl JwtVerifier {
    /// Builds the verifier; a `jwks_url` is fetched before this returns.
    pub(super) async fn start(jwt: &config::Jwt, hasher: UserHasher) -> Result<JwtVerifier, StartError> {
        let is_spec = |p: &&ClaimPath| p.0.len() == 1 && SPEC_CLAIMS.contains(&p.0[0].as_str());
        Ok(JwtVerifier {
            required_paths: jwt.required_claims.iter().filter(|p| !is_spec(p)).cloned().collect(),
            required_all: jwt.required_claims.clone(),
            audience: jwt.audience.clone(),
            header_claims: jwt.header_claims.clone(),
            issuers: jwt.issuer.clone(),
            keys: Keys::load(&jwt.keys).await?,
            validations: per_family(&validation(jwt, is_spec)),
            algorithms: jwt.algorithms.clone(),
            claims: jwt.claims.clone(),
            leeway: jwt.leeway,
            hasher,
            cache: VerifiedCache::new(),
        })
    }

    /// Why there are no keys yet (see [`Keys::not_loaded`]).
    pub(super) fn keys_not_loaded(&self) -> Option<String> {
        self.keys.not_loaded()
    }

    /// What a source that found `token` found: the visitor it names, or why not.
    pub(super) async fn found(&self, token: &str) -> Found {
        match self.verify(token).await {
            Ok((visitor, cached)) => Found::Verified { visitor, cached },
            Err(reason) => Found::Rejected(reason),
        }
    }

    /// Who `token` names, and whether that was known from an earlier request.
    pub(super) async fn verify(&self, token: &str) -> Result<(Arc<Visitor>, bool), Rejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::TooLarge);
        }
        let fingerprint = fingerprint(&[token.as_bytes()]);
        let mut keys = self.keys.current();
        if let Some(hit) = self.cache.get(&fingerprint).filter(|hit| hit.generation == keys.generation) {
            return Ok((hit.visitor, true));
        }
        let verified = match (&self.keys, self.verify_with(token, &keys)) {
            (Keys::PerKid(kid_keys), _) => self.verify_padded(token, kid_keys).await,
            (_, Err(Rejection::UnknownKey)) if self.keys.refresh_for_unknown_kid(keys.generation).await => {
                keys = self.keys.current();
                self.verify_with(token, &keys)
            }
            (_, other) => other,
        }?;
        let visitor = Arc::clone(&verified.visitor);
        let lifetime = verified.lifetime;
        self.cache.insert(fingerprint, verified, lifetime);
        Ok((visitor, false))
    }

    fn verify_with(&self, token: &str, keys: &KeySet) -> Result<Verified, Rejection> {
        let (key, validation) = self.key_for(token, &keys.keys)?;
        let data =
            jsonwebtoken::decode::<Value>(token, &key.key, validation).map_err(|e| self.rejection(token, e.kind()))?;
        let payload = data.claims;
        if self.required_paths.iter().any(|path| claims::claim(&payload, path).is_none_or(Value::is_null)) {
            return Err(Rejection::MissingClaim);
        }
        let issuer_ok = self.issuers.is_empty()
            || payload.get("iss").and_then(Value::as_str).is_some_and(|iss| self.issuers.iter().any(|i| i == iss));
        if !issuer_ok {
            return Err(Rejection::WrongIssuer);
        }
        let visitor = self.hasher.visitor(claims::person(&payload, &self.claims)?);
        Ok(Verified { visitor: Arc::new(visitor), generation: keys.generation, lifetime: self.lifetime(&payload) })
    }

    /// How long a verified token may be reused: as long as jsonwebtoken would accept it
    /// (to the end of the second `exp` + leeway), at most [`CACHE_LIFETIME`].
    fn lifetime(&self, payload: &Value) -> Duration {
        let exp = match payload.get("exp") {
            None | Some(Value::Null) => return CACHE_LIFETIME,
            Some(exp) => match (exp.as_u64(), exp.as_f64()) {
                (Some(whole), _) => whole,
                // jsonwebtoken reads a fractional `exp` rounded to the nearest second.
                (None, Some(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => f.round() as u64,
                // An `exp` it did not read: not remembered at all.
                _ => return Duration::ZERO,
            },
        };
        let until = Duration::from_secs(exp).saturating_add(self.leeway).saturating_add(Duration::from_secs(1));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        until.saturating_sub(now).min(CACHE_LIFETIME)
    }

    /// The key that verifies `token`: the one its `kid` names, else the key that has no
    /// `kid` (a single configured key). A key's own `alg` must be the token's.
    fn key_for<'k>(
        &self,
        token: &str,
        keys: &'k [VerificationKey],
    ) -> Result<(&'k VerificationKey, &Validation), Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| self.rejection(token, e.kind()))?;
        self.check_header(&header_json(token).unwrap_or_default())?;
        let named = header.kid.as_deref().and_then(|kid| keys.iter().find(|k| k.kid.as_deref() == Some(kid)));
        let key = match (named, keys) {
            (Some(key), _) => key,
            (None, [only]) if header.kid.is_none() || only.kid.is_none() => only,
            (None, keys) => keys.iter().find(|k| k.kid.is_none()).ok_or(Rejection::UnknownKey)?,
        };
        if key.alg.is_some_and(|alg| alg != header.alg) {
            return Err(Rejection::AlgorithmNotAllowed);
        }
        let validation = self
            .validations
            .iter()
            .find(|v| v.algorithms.contains(&header.alg))
            .ok_or(Rejection::AlgorithmNotAllowed)?;
        Ok((key, validation))
    }

    /// The JOSE header's own checks: no critical extension (`crit`: jsonwebtoken reads it
    /// but does not act on it; the proxy understands none, so any — even a null one —
    /// makes the token invalid, RFC 7515 §4.1.11); `header_claims` exactly; and an `exp`
    /// in the header (AWS ALB puts it there) not past, with the leeway.
    fn check_header(&self, header: &Value) -> Result<(), Rejection> {
        if header.get("crit").is_some() {
            return Err(Rejection::Crit);
        }
        let matches = |(name, expected): &(String, String)| header.get(name).and_then(Value::as_str) == Some(expected);
        if !self.header_claims.iter().all(matches) {
            return Err(Rejection::WrongHeader);
        }
        match header.get("exp") {
            None => Ok(()),
            Some(exp) => match exp.as_f64() {
                Some(exp) if exp + self.leeway.as_secs_f64() < now_secs() => Err(Rejection::Expired),
                Some(_) => Ok(()),
                None => Err(Rejection::InvalidClaim),
            },
        }
    }

    /// Why jsonwebtoken refused `token`. A header whose `alg` it cannot even parse (`none`,
    /// `HS1`) is an algorithm that is not allowed rather than a malformed token.
    fn rejection(&self, token: &str, kind: &ErrorKind) -> Rejection {
        let reason = rejection_of(kind);
        let listed = |alg: &str| alg.parse().is_ok_and(|alg| self.algorithms.contains(&alg));
        match declared_algorithm(token) {
            Some(alg) if reason == Rejection::Malformed && !listed(&alg) => Rejection::AlgorithmNotAllowed,
            _ => reason,
        }
    }
}

/// Why jsonwebtoken refused a token, in the proxy's words.
fn rejection_of(kind: &ErrorKind) -> Rejection {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_) => Rejection::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            Rejection::AlgorithmNotAllowed
        }
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
        ErrorKind::InvalidAudience => Rejection::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => Rejection::MissingClaim,
        ErrorKind::InvalidClaimFormat(_) => Rejection::InvalidClaim,
        _ => Rejection::Malformed,
    }
}

/// The checks jsonwebtoken makes for `jwt`.
fn validation(jwt: &config::Jwt, is_spec: impl Fn(&&ClaimPath) -> bool) -> Validation {
    let mut validation = Validation {
        algorithms: jwt.algorithms.clone(),
        leeway: jwt.leeway.as_secs(),
        validate_nbf: true,
        ..Validation::default()
    };
    let mut spec: Vec<&str> = jwt.required_claims.iter().filter(is_spec).map(|p| p.0[0].as_str()).collect();
    // jsonwebtoken checks `iss`/`aud` only when present and well-formed: a configured
    // issuer or audience must therefore also be required, or leaving it out would pass.
    if !jwt.issuer.is_empty() {
        spec.push("iss");
    }
    if !jwt.audience.is_empty() {
        spec.push("aud");
    }
    validation.set_required_spec_claims(&spec);
    if jwt.issuer.is_empty() {
        validation.iss = None;
    } else {
        validation.set_issuer(&jwt.issuer);
    }
    if jwt.audience.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&jwt.audience);
    }
    validation
}

/// `validation` split by key family: each copy accepts only the algorithms of one family.
fn per_family(validation: &Validation) -> Vec<Validation> {
    let mut families: Vec<jsonwebtoken::AlgorithmFamily> = Vec::new();
    for alg in &validation.algorithms {
        if !families.contains(&alg.family()) {
            families.push(alg.family());
        }
    }
    families
        .into_iter()
        .map(|family| {
            let mut one = validation.clone();
            one.algorithms.retain(|alg| alg.family() == family);
            one
        })
        .collect()
}

/// Seconds since the epoch, now.
fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// The `alg` a token's header declares, if the header is readable JSON.
fn declared_algorithm(token: &str) -> Option<String> {
    header_json(token)?.get("alg")?.as_str().map(str::to_owned)
}

/// A token's JOSE header as JSON, if it is readable.
fn header_json(token: &str) -> Option<Value> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    async fn verifier(leeway: &str) -> JwtVerifier {
        let yaml = format!(
            "upstream: {{ url: http://127.0.0.1:9 }}\nassistant: {{ id: a }}\nidentity:\n  secret_key: k\n  jwt:\n    cookie: s\n    secret: x\n    leeway: {leeway}\n"
        );
        let config = Config::from_yaml(&yaml, "t.yaml", std::path::Path::new(".")).unwrap();
        let identity = config.main_site().identity.clone().unwrap();
        JwtVerifier::start(identity.jwt.as_ref().unwrap(), UserHasher::new("k")).await.unwrap()
    }

    #[tokio::test]
    async fn a_verified_token_is_cached_until_it_expires_and_never_past_the_cap() {
        let verifier = verifier("30s").await;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let lifetime = verifier.lifetime(&json!({"exp": now + 60}));
        assert!(lifetime > Duration::from_secs(89) && lifetime <= Duration::from_secs(91), "{lifetime:?}");
        assert_eq!(verifier.lifetime(&json!({"exp": now - 3600})), Duration::ZERO);
        assert_eq!(verifier.lifetime(&json!({"exp": u64::MAX})), CACHE_LIFETIME, "no overflow");
        assert_eq!(verifier.lifetime(&json!({"sub": "no exp"})), CACHE_LIFETIME);
        let fractional = verifier.lifetime(&json!({"exp": now as f64 + 2.4}));
        assert!(fractional > Duration::from_secs(31) && fractional <= Duration::from_secs(33), "{fractional:?}");
        assert_eq!(verifier.lifetime(&json!({"exp": now as f64 - 3600.5})), Duration::ZERO);
        assert_eq!(verifier.lifetime(&json!({"exp": "soon"})), Duration::ZERO);
    }
}
