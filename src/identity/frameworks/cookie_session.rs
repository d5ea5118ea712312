//! `identity.cookie_session`: an Express `cookie-session` session, read as its `cookies`
//! module reads it (`docs/frameworks-spec.md` §3): the value of cookie `NAME` taken raw,
//! its keygrip signature in `NAME.sig` — base64url without padding of an HMAC-SHA1 of
//! `NAME=value` — verified with any of the keys (rotation), then base64 JSON. A session
//! without its `.sig` is refused: cookie-session reads none from it either.

use std::time::SystemTime;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::HeaderName;
use http::header::COOKIE;

use super::{Session, SessionReader, json_object};
use crate::identity::cookies::first_cookie;
use crate::identity::hash::UserHasher;
use crate::identity::source::{BoxFuture, Found, IdentitySource, RequestFacts};
use crate::outcome::{Rejection, Source};

/// Node's `Buffer.from(value, "base64")`, as lenient: padding optional, trailing bits kept.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// `identity.cookie_session`.
pub(in crate::identity) struct CookieSessionSource {
    cookie: String,
    /// `<cookie>.sig`.
    signature: String,
    /// keygrip's keys, in the app's order: HMAC-SHA1 each.
    keys: Vec<hmac::Key>,
    reader: SessionReader,
}

impl CookieSessionSource {
    pub(in crate::identity) fn new(config: &crate::config::CookieSession, hasher: UserHasher) -> Self {
        let key = |secret: &crate::config::Secret| {
            hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.expose().as_bytes())
        };
        CookieSessionSource {
            cookie: config.cookie.clone(),
            signature: format!("{}.sig", config.cookie),
            keys: config.keys.iter().map(key).collect(),
            reader: SessionReader::new(config.claims.clone(), hasher),
        }
    }

    /// The session in a cookie's value with its signature (`None`: no `.sig` cookie).
    fn verify(&self, value: &str, signature: Option<&str>) -> Result<Session, Rejection> {
        let signature = signature.ok_or(Rejection::BadSignature)?;
        // keygrip compares the texts: its own are unpadded base64url, which decode one way.
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| Rejection::BadSignature)?;
        let signed = format!("{}={value}", self.cookie);
        if !self.keys.iter().any(|key| hmac::verify(key, signed.as_bytes(), &signature).is_ok()) {
            return Err(Rejection::BadSignature);
        }
        // cookie-session's decode: JSON.parse(Buffer.from(value, "base64").toString("utf8")).
        let standard = value.replace('-', "+").replace('_', "/");
        let json = BASE64_LENIENT.decode(standard.trim_end_matches('=')).map_err(|_| Rejection::Malformed)?;
        let json = String::from_utf8_lossy(&json);
        Ok(Session { json: json_object(json.as_bytes())?, valid_for: None })
    }
}

impl IdentitySource for CookieSessionSource {
    fn kind(&self) -> Source {
        Source::CookieSession
    }

    fn reads(&self) -> &[HeaderName] {
        &[COOKIE]
    }

    fn identify<'a>(&'a self, request: &'a RequestFacts) -> BoxFuture<'a, Found> {
        Box::pin(async move {
            let Some(cookie) = first_cookie(&request.headers, &self.cookie) else { return Found::Absent };
            // `cookies` drops a leading and a trailing quote; its values are otherwise raw.
            let value = cookie.value_trimmed();
            let signature = first_cookie(&request.headers, &self.signature);
            let signature = signature.as_ref().map(cookie::Cookie::value_trimmed);
            let carried = [value.as_bytes(), signature.unwrap_or_default().as_bytes()];
            // cookie-session keeps no expiry of its own: a session is remembered the cache's
            // longest.
            self.reader.found(&carried, |_: SystemTime| self.verify(value, signature))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::vectors;
    use super::*;
    use crate::config::{ClaimPath, Claims};

    fn source(keys: &[&str]) -> CookieSessionSource {
        let config = crate::config::CookieSession {
            cookie: "session".into(),
            keys: keys.iter().map(|&key| key.into()).collect(),
            claims: Claims {
                user_id: ClaimPath(vec!["passport".into(), "user".into()]),
                user_name: None,
                user_avatar: None,
            },
        };
        CookieSessionSource::new(&config, UserHasher::new("sk_test_123"))
    }

    #[test]
    fn every_cookie_session_vector_gets_its_answer() {
        for vector in vectors::of("cookie_session") {
            let keys: Vec<&str> =
                vector["config"]["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
            let cs = source(&keys);
            let value = vectors::cookie(&vector, "session").unwrap();
            let signature = vectors::cookie(&vector, "session.sig");
            let answer = vectors::answer(cs.verify(value, signature).map(|s| s.json), &["passport", "user"]);
            assert_eq!(answer, vectors::expected(&vector), "{}", vector["id"]);
        }
    }

    #[test]
    fn a_signature_is_the_keygrip_text_exactly() {
        let cs = source(&["k"]);
        let value = "eyJwYXNzcG9ydCI6eyJ1c2VyIjoiNyJ9fQ==";
        let mac = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"k"),
            format!("session={value}").as_bytes(),
        );
        let signature = URL_SAFE_NO_PAD.encode(mac.as_ref());
        assert!(cs.verify(value, Some(&signature)).is_ok());
        let padded = format!("{signature}=");
        assert_eq!(cs.verify(value, Some(&padded)).unwrap_err(), Rejection::BadSignature);
        assert_eq!(cs.verify(value, Some("")).unwrap_err(), Rejection::BadSignature);
        assert_eq!(cs.verify(value, None).unwrap_err(), Rejection::BadSignature);
    }
}
