//! Framework session cookies read in place: a Rails cookie-store session ([`rails`]), a
//! Flask session ([`flask`]) and an Express `cookie-session` ([`cookie_session`]), each
//! verified exactly as its framework verifies it, with the app's own secret (the formats,
//! with the framework source behind each rule, are in `docs/frameworks-spec.md`). What the
//! three share is here: the size limit, the session's JSON object, who it names, and the
//! cache of sessions already verified.

mod cookie_session;
mod flask;
mod rails;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

pub(super) use cookie_session::CookieSessionSource;
pub(super) use flask::FlaskSession;
pub(super) use rails::RailsSession;

use super::claims;
use super::hash::UserHasher;
use super::source::Found;
use super::verified::{CACHE_LIFETIME, VerifiedCache, fingerprint};
use super::{MAX_TOKEN_BYTES, Visitor};
use crate::config::Claims;
use crate::outcome::Rejection;

/// The most a session's JSON may take once unpacked (base64, zlib): a cookie is at most
/// 8 KiB, and a zlib bomb in one must not take more memory than this.
const MAX_SESSION_BYTES: usize = 64 * 1024;

/// An authentic session: its JSON object, and how much longer the framework would accept
/// it (`None`: it has no expiry of its own).
#[derive(Debug)]
struct Session {
    json: Map<String, Value>,
    valid_for: Option<Duration>,
}

/// What the three sources share: the claims that name the visitor, the `user-hash`, and
/// what was concluded of sessions already verified (`None`: verified, and signed out).
struct SessionReader {
    claims: Claims,
    hasher: UserHasher,
    cache: VerifiedCache<Option<Arc<Visitor>>>,
}

impl SessionReader {
    fn new(claims: Claims, hasher: UserHasher) -> Self {
        SessionReader { claims, hasher, cache: VerifiedCache::new() }
    }

    /// What a source found in the session cookies `carried` (their values, as the request
    /// carried them), verified by `verify` unless it was verified on an earlier page.
    fn found(&self, carried: &[&[u8]], verify: impl FnOnce(SystemTime) -> Result<Session, Rejection>) -> Found {
        if carried.iter().map(|cookie| cookie.len()).sum::<usize>() > MAX_TOKEN_BYTES {
            return Found::Rejected(Rejection::TooLarge);
        }
        let key = fingerprint(carried);
        match self.cache.get(&key) {
            Some(Some(visitor)) => return Found::Verified { visitor, cached: true },
            Some(None) => return Found::SignedOut { cached: true },
            None => {}
        }
        let session = match verify(SystemTime::now()) {
            Ok(session) => session,
            Err(reason) => return Found::Rejected(reason),
        };
        let valid_for = session.valid_for.unwrap_or(CACHE_LIFETIME);
        match claims::person(&Value::Object(session.json), &self.claims) {
            Ok(person) => {
                let visitor = Arc::new(self.hasher.visitor(person));
                self.cache.insert(key, Some(Arc::clone(&visitor)), valid_for);
                Found::Verified { visitor, cached: false }
            }
            // A session that is not signed in: the app keeps one for every visitor.
            Err(Rejection::NoUserId) => {
                self.cache.insert(key, None, valid_for);
                Found::SignedOut { cached: false }
            }
            Err(reason) => Found::Rejected(reason),
        }
    }
}

/// The session in authentic serialized bytes: JSON, and an object. Bytes that are not
/// JSON were written by another serializer (Marshal, MessagePack, a custom one).
fn json_object(serialized: &[u8]) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_slice(serialized) {
        Ok(Value::Object(session)) => Ok(session),
        Ok(_) => Err(Rejection::NotAnObject),
        Err(_) => Err(Rejection::UnsupportedSerializer),
    }
}

#[cfg(test)]
mod vectors {
    //! The test vectors of `tests/frameworks/vectors.json`: cookies made by each framework's
    //! own code (`tests/frameworks/make_vectors.py`), with what the proxy must answer.

    use serde_json::Value;

    use crate::outcome::Rejection;

    /// The vectors of one framework.
    pub(super) fn of(framework: &str) -> Vec<Value> {
        let all: Value = serde_json::from_str(include_str!("../../../tests/frameworks/vectors.json")).unwrap();
        let vectors = all["vectors"].as_array().unwrap().iter();
        let picked: Vec<Value> = vectors.filter(|v| v["framework"] == framework).cloned().collect();
        assert!(picked.len() > 4, "vectors of {framework}");
        picked
    }

    /// The value of cookie `name` in a vector's `Cookie` header, as the request carries it.
    pub(super) fn cookie<'v>(vector: &'v Value, name: &str) -> Option<&'v str> {
        let header = vector["cookie_header"].as_str().unwrap();
        header.split("; ").find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    }

    /// What the vector expects: the user id, or the rejection's word.
    pub(super) fn expected(vector: &Value) -> Result<String, String> {
        match (vector["expect"]["user_id"].as_str(), vector["expect"]["reason"].as_str()) {
            (Some(user_id), _) => Ok(user_id.to_owned()),
            (None, Some(reason)) => Err(reason.to_owned()),
            _ => panic!("no expectation in {}", vector["id"]),
        }
    }

    /// The answer in the vector's words.
    pub(super) fn answer(
        result: Result<serde_json::Map<String, Value>, Rejection>,
        user_id: &[&str],
    ) -> Result<String, String> {
        let session = result.map_err(|reason| reason.as_str().to_owned())?;
        let session = Value::Object(session);
        let value = user_id.iter().try_fold(&session, |value, segment| match value {
            Value::Object(map) => map.get(*segment),
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
            _ => None,
        });
        match value {
            Some(Value::String(id)) => Ok(id.clone()),
            Some(Value::Number(id)) => Ok(id.to_string()),
            other => panic!("no user id at {user_id:?}: {other:?} in {session:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClaimPath;

    fn reader() -> SessionReader {
        let claims = Claims { user_id: ClaimPath(vec!["id".into()]), user_name: None, user_avatar: None };
        SessionReader::new(claims, UserHasher::new("sk_test_123"))
    }

    fn session(json: Value, valid_for: Option<Duration>) -> Result<Session, Rejection> {
        Ok(Session { json: json.as_object().unwrap().clone(), valid_for })
    }

    #[test]
    fn a_verified_session_is_remembered_signed_in_or_out_and_never_once_expired() {
        let reader = reader();
        let signed_in = |_| session(serde_json::json!({"id": 7}), None);
        assert!(matches!(reader.found(&[b"a"], signed_in), Found::Verified { cached: false, .. }));
        let not_again = |_| -> Result<Session, Rejection> { panic!("verified again") };
        assert!(matches!(reader.found(&[b"a"], not_again), Found::Verified { cached: true, .. }));
        let anonymous = |_| session(serde_json::json!({"csrf": "x"}), Some(Duration::from_secs(60)));
        assert!(matches!(reader.found(&[b"b"], anonymous), Found::SignedOut { cached: false }));
        assert!(matches!(reader.found(&[b"b"], not_again), Found::SignedOut { cached: true }));
        let expiring = |_| session(serde_json::json!({"id": 8}), Some(Duration::ZERO));
        assert!(matches!(reader.found(&[b"c"], expiring), Found::Verified { cached: false, .. }));
        assert!(matches!(reader.found(&[b"c"], expiring), Found::Verified { cached: false, .. }));
    }

    #[test]
    fn big_cookies_and_bad_ids_are_rejected() {
        let reader = reader();
        let big = vec![b'a'; MAX_TOKEN_BYTES / 2 + 1];
        let never = |_| -> Result<Session, Rejection> { panic!("a cookie too large is not verified") };
        assert!(matches!(reader.found(&[&big, &big], never), Found::Rejected(Rejection::TooLarge)));
        let markup = |_| session(serde_json::json!({"id": "<b>"}), None);
        assert!(matches!(reader.found(&[b"d"], markup), Found::Rejected(Rejection::InvalidUserId)));
        assert_eq!(json_object(b"[1,2]").unwrap_err(), Rejection::NotAnObject);
        assert_eq!(json_object(b"\x04\x08{\x06").unwrap_err(), Rejection::UnsupportedSerializer);
    }
}
