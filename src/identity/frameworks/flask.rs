//! `identity.flask`: a Flask session cookie, read as Flask's `SecureCookieSessionInterface`
//! reads it (`docs/frameworks-spec.md` §2): itsdangerous' `URLSafeTimedSerializer` with
//! salt `cookie-session`, HMAC key derivation and SHA1 — `payload.timestamp.signature`,
//! split from the right, the signature an HMAC of `payload.timestamp` as written, a payload
//! starting with `.` zlib-compressed — then `max_age`, and Flask's tagged JSON.

use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::HeaderName;
use http::header::COOKIE;
use serde_json::{Map, Value};

use super::{MAX_SESSION_BYTES, Session, SessionReader};
use crate::identity::cookies::first_cookie;
use crate::identity::hash::UserHasher;
use crate::identity::source::{BoxFuture, Found, IdentitySource, RequestFacts};
use crate::outcome::{Rejection, Source};

/// `SecureCookieSessionInterface.salt`.
const SALT: &[u8] = b"cookie-session";
/// itsdangerous' `base64_decode`: URL-safe, padding optional, as lenient as Python's.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// `identity.flask`.
pub(in crate::identity) struct FlaskSession {
    cookie: String,
    /// HMAC-SHA1 keyed with `HMAC-SHA1(SECRET_KEY, "cookie-session")` (itsdangerous'
    /// `key_derivation="hmac"`).
    key: hmac::Key,
    /// Whole seconds (`int(PERMANENT_SESSION_LIFETIME.total_seconds())`).
    max_age: u64,
    reader: SessionReader,
}

impl FlaskSession {
    /// Derives the signing key, once.
    pub(in crate::identity) fn new(config: &crate::config::Flask, hasher: UserHasher) -> Self {
        let secret = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, config.secret_key.expose().as_bytes());
        let derived = hmac::sign(&secret, SALT);
        FlaskSession {
            cookie: config.cookie.clone(),
            key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, derived.as_ref()),
            max_age: config.max_age.as_secs(),
            reader: SessionReader::new(config.claims.clone(), hasher),
        }
    }

    /// The session in a cookie's value, at `now`: `TimestampSigner.unsign` (signature, then
    /// timestamp and age), then the payload.
    fn verify(&self, value: &str, now: SystemTime) -> Result<Session, Rejection> {
        let (signed, signature) = value.rsplit_once('.').ok_or(Rejection::Malformed)?;
        let signature = URL_SAFE_LENIENT.decode(signature).map_err(|_| Rejection::BadSignature)?;
        hmac::verify(&self.key, signed.as_bytes(), &signature).map_err(|_| Rejection::BadSignature)?;
        let (payload, timestamp) = signed.rsplit_once('.').ok_or(Rejection::Malformed)?;
        let valid_for = self.valid_for(timestamp, now)?;
        let json = untag(load_payload(payload)?);
        match json {
            Value::Object(json) => Ok(Session { json, valid_for: Some(valid_for) }),
            _ => Err(Rejection::NotAnObject),
        }
    }

    /// How much longer a session signed at `timestamp` (a big-endian integer of at most 8
    /// bytes, base64) is accepted: it is expired once its age in whole seconds is over
    /// `max_age`, or below zero (signed in the future).
    fn valid_for(&self, timestamp: &str, now: SystemTime) -> Result<Duration, Rejection> {
        let bytes = URL_SAFE_LENIENT.decode(timestamp).map_err(|_| Rejection::Malformed)?;
        if bytes.len() > 8 {
            return Err(Rejection::Malformed);
        }
        let signed_at = bytes.iter().fold(0u64, |n, &byte| (n << 8) | u64::from(byte));
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        match now.as_secs().checked_sub(signed_at) {
            Some(age) if age <= self.max_age => {
                let until = Duration::from_secs(signed_at.saturating_add(self.max_age).saturating_add(1));
                Ok(until.saturating_sub(now))
            }
            _ => Err(Rejection::Expired),
        }
    }
}

impl IdentitySource for FlaskSession {
    fn kind(&self) -> Source {
        Source::Flask
    }

    fn reads(&self) -> &[HeaderName] {
        &[COOKIE]
    }

    fn identify<'a>(&'a self, request: &'a RequestFacts) -> BoxFuture<'a, Found> {
        Box::pin(async move {
            let Some(cookie) = first_cookie(&request.headers, &self.cookie) else { return Found::Absent };
            // Werkzeug drops a pair of quotes around a value; Flask never writes any.
            let value = cookie.value_trimmed();
            self.reader.found(&[value.as_bytes()], |now| self.verify(value, now))
        })
    }
}

/// `URLSafeSerializerMixin.load_payload`: base64, zlib-inflated when it starts with `.`
/// (at most [`MAX_SESSION_BYTES`] out), then JSON.
fn load_payload(payload: &str) -> Result<Value, Rejection> {
    let (compressed, payload) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    let mut json = URL_SAFE_LENIENT.decode(payload).map_err(|_| Rejection::Malformed)?;
    if compressed {
        json = inflate(&json)?;
    }
    serde_json::from_slice(&json).map_err(|_| Rejection::UnsupportedSerializer)
}

/// A zlib stream (RFC 1950) inflated, never past [`MAX_SESSION_BYTES`]: a bomb is
/// `too_large` after that much, not the memory it would take.
fn inflate(compressed: &[u8]) -> Result<Vec<u8>, Rejection> {
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_SESSION_BYTES).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::ZlibDecoder::new(compressed).take(limit).read_to_end(&mut out).map_err(|_| Rejection::Malformed)?;
    if out.len() > MAX_SESSION_BYTES {
        return Err(Rejection::TooLarge);
    }
    Ok(out)
}

/// Flask's `TaggedJSONSerializer.loads` for what a session's identity needs, bottom-up as
/// `_untag_scan`: a tuple (` t`) is an array, a tagged one-key dict (` di`) is that dict, a
/// UUID (` u`) its `str()`, Markup (` m`) its text; bytes (` b`) and a datetime (` d`) stay
/// tagged, fit for no claim.
fn untag(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(untag).collect()),
        Value::Object(map) => {
            let map: Map<String, Value> = map.into_iter().map(|(key, item)| (key, untag(item))).collect();
            if map.len() != 1 {
                return Value::Object(map);
            }
            let Some((tag, inner)) = map.iter().next() else { return Value::Object(map) };
            match (tag.as_str(), inner) {
                (" t", Value::Array(_)) | (" m", Value::String(_)) => inner.clone(),
                (" u", Value::String(hex)) => uuid_text(hex).map_or_else(|| Value::Object(map.clone()), Value::String),
                (" di", Value::Object(tagged)) if tagged.len() == 1 => {
                    let untagged = tagged
                        .iter()
                        .map(|(key, item)| (key.strip_suffix("__").unwrap_or(key).to_owned(), item.clone()));
                    Value::Object(untagged.collect())
                }
                _ => Value::Object(map),
            }
        }
        other => other,
    }
}

/// Python's `str(uuid.UUID(hex=…))`: 8-4-4-4-12 lowercase.
fn uuid_text(hex: &str) -> Option<String> {
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::vectors;
    use super::*;
    use crate::config::{ClaimPath, Claims};

    fn source(secret_key: &str, max_age: u64) -> FlaskSession {
        let config = crate::config::Flask {
            cookie: "session".into(),
            secret_key: secret_key.into(),
            max_age: Duration::from_secs(max_age),
            claims: Claims { user_id: ClaimPath(vec!["_user_id".into()]), user_name: None, user_avatar: None },
        };
        FlaskSession::new(&config, UserHasher::new("sk_test_123"))
    }

    #[test]
    fn every_flask_vector_gets_its_answer() {
        for vector in vectors::of("flask") {
            let config = &vector["config"];
            if config.get("secret_key_fallbacks").is_some() {
                continue; // SECRET_KEY_FALLBACKS: not read (see docs/identity.md).
            }
            let flask = source(config["secret_key"].as_str().unwrap(), config["max_age"].as_u64().unwrap());
            let now = UNIX_EPOCH + Duration::from_secs(vector["now"].as_u64().unwrap());
            let value = vectors::cookie(&vector, "session").unwrap();
            let answer = vectors::answer(flask.verify(value, now).map(|s| s.json), &["_user_id"]);
            assert_eq!(answer, vectors::expected(&vector), "{}", vector["id"]);
        }
    }

    #[test]
    fn a_session_is_valid_to_the_end_of_its_last_second() {
        let flask = source("k", 60);
        let at = |secs: u64, millis: u64| UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis);
        let stamp = URL_SAFE_LENIENT.encode(1000u32.to_be_bytes());
        assert_eq!(flask.valid_for(&stamp, at(1000, 0)), Ok(Duration::from_secs(61)));
        assert_eq!(flask.valid_for(&stamp, at(1060, 250)), Ok(Duration::from_millis(750)));
        assert_eq!(flask.valid_for(&stamp, at(1061, 0)), Err(Rejection::Expired));
        assert_eq!(flask.valid_for(&stamp, at(999, 999)), Err(Rejection::Expired), "signed in the future");
        assert_eq!(flask.valid_for(&URL_SAFE_LENIENT.encode([1; 9]), at(0, 0)), Err(Rejection::Malformed));
        assert_eq!(flask.valid_for(&URL_SAFE_LENIENT.encode([255; 8]), at(0, 0)), Err(Rejection::Expired));
    }

    #[test]
    fn a_zlib_bomb_stops_at_the_limit() {
        use std::io::Write;
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..8 {
            encoder.write_all(&zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 16 * 1024, "8 MiB of spaces in {} bytes", bomb.len());
        assert_eq!(inflate(&bomb), Err(Rejection::TooLarge));
        let payload = format!(".{}", URL_SAFE_LENIENT.encode(&bomb));
        assert_eq!(load_payload(&payload).unwrap_err(), Rejection::TooLarge);
        assert_eq!(inflate(b"not zlib"), Err(Rejection::Malformed));
    }

    #[test]
    fn tagged_json_is_untagged_bottom_up() {
        let tagged = json!({
            "_user_id": {" t": ["u", {" u": "12345678123456781234567812345678"}]},
            "odd": {" di": {" t__": 1}},
            "blob": {" b": "AAE="},
            "when": {" d": "Thu, 01 Jan 2026 00:00:00 GMT"},
            "two": {" t": [1], "x": 2},
        });
        assert_eq!(
            untag(tagged),
            json!({
                "_user_id": ["u", "12345678-1234-5678-1234-567812345678"],
                "odd": {" t": 1},
                "blob": {" b": "AAE="},
                "when": {" d": "Thu, 01 Jan 2026 00:00:00 GMT"},
                "two": {" t": [1], "x": 2},
            })
        );
        assert_eq!(untag(json!({" t": [1, 2]})), json!([1, 2]), "a tuple is not a session");
    }
}
