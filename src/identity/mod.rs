//! Identity: the session token (a cookie, its chunks, or a bearer header) → a verified JWT
//! → the visitor's id, name and avatar,
//! and the `user-hash` the assistant checks them with.
//!
//! Any failure makes the visitor anonymous; the reason is kept for the access log, the
//! token never is. Key-location headers (`jku`, `x5u`, `jwk`, `x5c`) are ignored: only the
//! configured key verifies.

mod token;

use std::fmt;

use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::header::COOKIE;
use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use serde_json::Value;
use sha2::Sha256;

use crate::config::{self, ClaimPath, VerificationKey};

pub use token::session_cookie;

/// The registered claims jsonwebtoken checks itself when they are required.
const SPEC_CLAIMS: [&str; 5] = ["exp", "nbf", "iss", "aud", "sub"];

/// Tokens longer than this are rejected unread (spec: "longer than 8 KiB").
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A visitor whose session verified, with what the widget shows of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub user_id: String,
    /// Lowercase hex HMAC-SHA256 of `user_id`, keyed with the assistant's secret key.
    pub user_hash: String,
    pub user_name: Option<String>,
    /// Only ever an absolute `https://` URL.
    pub user_avatar: Option<String>,
}

/// What identification concluded, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No identity configured, or no session token in the request.
    None,
    Verified,
    Rejected(Rejection),
}

/// Why a session token did not identify the visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    TooLarge,
    Malformed,
    AlgorithmNotAllowed,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    MissingClaim,
    /// The token's `kid` names no configured key.
    UnknownKey,
    /// Chunked cookies with one missing (`name.0`, `name.2`, no `name.1`).
    IncompleteChunks,
    /// A registered claim (`exp`, `nbf`, `sub`, …) has the wrong type.
    InvalidClaim,
    NoUserId,
    InvalidUserId,
}

impl Rejection {
    /// A stable, lowercase name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::TooLarge => "too_large",
            Rejection::Malformed => "malformed",
            Rejection::AlgorithmNotAllowed => "algorithm_not_allowed",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::MissingClaim => "missing_claim",
            Rejection::IncompleteChunks => "incomplete_chunks",
            Rejection::UnknownKey => "unknown_key",
            Rejection::InvalidClaim => "invalid_claim",
            Rejection::NoUserId => "no_user_id",
            Rejection::InvalidUserId => "invalid_user_id",
        }
    }

    fn from_jwt_error(kind: &ErrorKind) -> Self {
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
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::None => f.write_str("none"),
            Outcome::Verified => f.write_str("verified"),
            Outcome::Rejected(reason) => write!(f, "rejected:{}", reason.as_str()),
        }
    }
}

/// Verifies session tokens and computes user hashes. Built once from the config.
pub struct Identifier {
    source: config::TokenSource,
    /// The request headers the token may come from, to keep them and to `Vary` on them.
    reads: Vec<http::HeaderName>,
    /// Required claims that jsonwebtoken does not check itself (not exp/nbf/iss/aud/sub).
    required_paths: Vec<ClaimPath>,
    /// Accepted issuers, checked again here: `iss` must be one string of them (RFC 7519
    /// §4.1.1), never a list that merely includes one.
    issuers: Vec<String>,
    /// Every key a token may name; parsed once.
    keys: Vec<VerificationKey>,
    /// One validation per key family among the accepted algorithms: jsonwebtoken checks a
    /// key against every algorithm it is given, and a key set may mix families.
    validations: Vec<Validation>,
    /// Every accepted `alg`.
    algorithms: Vec<jsonwebtoken::Algorithm>,
    claims: config::Claims,
    /// HMAC state with the secret key already absorbed; cloned per visitor.
    hasher: Hmac<Sha256>,
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identifier").field("source", &self.source).finish_non_exhaustive()
    }
}

impl Identifier {
    pub fn new(identity: &config::Identity) -> Self {
        let jwt = &identity.jwt;
        let mut validation = Validation {
            algorithms: jwt.algorithms.clone(),
            leeway: jwt.leeway.as_secs(),
            validate_nbf: true,
            ..Validation::default()
        };
        let is_spec = |p: &&ClaimPath| p.0.len() == 1 && SPEC_CLAIMS.contains(&p.0[0].as_str());
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
        let mut reads = Vec::new();
        reads.extend(jwt.source.header.clone());
        if jwt.source.cookie.is_some() {
            reads.push(COOKIE);
        }
        Identifier {
            source: jwt.source.clone(),
            reads,
            required_paths: jwt.required_claims.iter().filter(|p| !is_spec(p)).cloned().collect(),
            issuers: jwt.issuer.clone(),
            keys: jwt.key.keys().to_vec(),
            validations: per_family(&validation),
            algorithms: jwt.algorithms.clone(),
            claims: jwt.claims.clone(),
            hasher: hmac_for(identity.secret_key.expose()),
        }
    }

    /// The request headers a session token may come from.
    pub fn reads(&self) -> &[http::HeaderName] {
        &self.reads
    }

    /// Identifies the visitor of a request from its headers.
    pub fn identify(&self, headers: &HeaderMap) -> (Option<Visitor>, Outcome) {
        let token = match token::find_token(headers, &self.source) {
            Ok(Some(token)) => token,
            Ok(None) => return (None, Outcome::None),
            Err(reason) => return (None, Outcome::Rejected(reason)),
        };
        match self.verify(&token) {
            Ok(visitor) => (Some(visitor), Outcome::Verified),
            Err(reason) => (None, Outcome::Rejected(reason)),
        }
    }

    fn verify(&self, token: &str) -> Result<Visitor, Rejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::TooLarge);
        }
        let (key, validation) = self.key_for(token)?;
        let data =
            jsonwebtoken::decode::<Value>(token, &key.key, validation).map_err(|e| self.rejection(token, e.kind()))?;
        let payload = data.claims;
        if self.required_paths.iter().any(|path| claim(&payload, path).is_none_or(Value::is_null)) {
            return Err(Rejection::MissingClaim);
        }
        let issuer_ok = self.issuers.is_empty()
            || payload.get("iss").and_then(Value::as_str).is_some_and(|iss| self.issuers.iter().any(|i| i == iss));
        if !issuer_ok {
            return Err(Rejection::WrongIssuer);
        }
        let user_id = claim(&payload, &self.claims.user_id).ok_or(Rejection::NoUserId)?;
        let user_id = user_id_text(user_id)?;
        let optional_text =
            |path: &Option<ClaimPath>| path.as_ref().and_then(|p| claim(&payload, p)).and_then(Value::as_str);
        let user_name = optional_text(&self.claims.user_name);
        let user_avatar = optional_text(&self.claims.user_avatar);
        Ok(Visitor {
            user_hash: self.hash(&user_id),
            user_id,
            user_name: user_name.filter(|n| !n.is_empty()).map(str::to_owned),
            user_avatar: user_avatar.filter(|a| is_https_url(a)).map(str::to_owned),
        })
    }

    /// The key that verifies `token`: the one its `kid` names, else the key that has no
    /// `kid` (a single configured key). A key's own `alg` must be the token's.
    fn key_for(&self, token: &str) -> Result<(&VerificationKey, &Validation), Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| self.rejection(token, e.kind()))?;
        let named = header.kid.as_deref().and_then(|kid| self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)));
        let key = match (named, self.keys.as_slice()) {
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

    /// Why jsonwebtoken refused `token`. A header whose `alg` it cannot even parse (`none`,
    /// `HS1`) is an algorithm that is not allowed rather than a malformed token.
    fn rejection(&self, token: &str, kind: &ErrorKind) -> Rejection {
        let reason = Rejection::from_jwt_error(kind);
        let listed = |alg: &str| alg.parse().is_ok_and(|alg| self.algorithms.contains(&alg));
        match declared_algorithm(token) {
            Some(alg) if reason == Rejection::Malformed && !listed(&alg) => Rejection::AlgorithmNotAllowed,
            _ => reason,
        }
    }

    /// The `user-hash` for `user_id`.
    pub fn hash(&self, user_id: &str) -> String {
        hash_with(self.hasher.clone(), user_id)
    }
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

/// `user-hash`: lowercase hex HMAC-SHA256 of `user_id` (UTF-8) keyed with `secret_key` (UTF-8).
pub fn user_hash(secret_key: &str, user_id: &str) -> String {
    hash_with(hmac_for(secret_key), user_id)
}

fn hash_with(mut mac: Hmac<Sha256>, user_id: &str) -> String {
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn hmac_for(secret_key: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (RFC 2104 §3), so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret_key.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// The `alg` a token's header declares, if the header is readable JSON.
fn declared_algorithm(token: &str) -> Option<String> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let header: Value = serde_json::from_slice(&json).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

/// Follows a dot path through objects (by key) and arrays (by index).
fn claim<'a>(payload: &'a Value, path: &ClaimPath) -> Option<&'a Value> {
    path.0.iter().try_fold(payload, |value, segment| match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// A user id is a non-empty string or an integer, written in decimal.
fn user_id_text(value: &Value) -> Result<String, Rejection> {
    match value {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::String(_) => Err(Rejection::NoUserId),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        _ => Err(Rejection::InvalidUserId),
    }
}

fn is_https_url(candidate: &str) -> bool {
    candidate.starts_with("https://")
        && candidate.parse::<http::Uri>().is_ok_and(|u| u.host().is_some_and(|h| !h.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    #[test]
    fn user_hash_matches_the_published_vectors() {
        assert_eq!(
            user_hash("sk_test_123", "user_42"),
            "45bb144b8ebbe9876600b63739423f010f4ea3d43771ea3fee1329d463683b59"
        );
        assert_eq!(
            user_hash("sk_test_123", "Zoë-7"),
            "04a33c483382739aca1dc954e79aac17831e5595be959c9dbe91cec509dcc2b5"
        );
    }

    #[test]
    fn session_cookie_is_found_across_cookie_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("theme=dark; other=1"));
        headers.append(COOKIE, HeaderValue::from_static("session=abc.def.ghi"));
        assert_eq!(session_cookie(&headers, "session").as_deref(), Some("abc.def.ghi"));
        assert_eq!(session_cookie(&headers, "missing"), None);
    }

    #[test]
    fn claim_paths_reach_into_objects_and_arrays() {
        let payload = json!({"sub": 7, "user": {"ids": ["u-1", "u-2"], "name": "Ada"}});
        let path = |p: &str| p.parse::<ClaimPath>().unwrap();
        assert_eq!(claim(&payload, &path("user.ids.1")), Some(&json!("u-2")));
        assert_eq!(claim(&payload, &path("user.name.x")), None);
        assert_eq!(user_id_text(claim(&payload, &path("sub")).unwrap()), Ok("7".into()));
        assert_eq!(user_id_text(&json!(1.5)), Err(Rejection::InvalidUserId));
        assert_eq!(user_id_text(&json!({"id": 1})), Err(Rejection::InvalidUserId));
        assert_eq!(user_id_text(&json!("")), Err(Rejection::NoUserId));
    }

    #[test]
    fn only_https_avatars_are_kept() {
        assert!(is_https_url("https://cdn.example/a.png"));
        assert!(!is_https_url("http://cdn.example/a.png"));
        assert!(!is_https_url("javascript:alert(1)"));
        assert!(!is_https_url("https://"));
    }
}
