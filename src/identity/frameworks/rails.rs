//! `identity.rails`: a Rails cookie-store session, read as Rails reads it
//! (`docs/frameworks-spec.md` §1): the first cookie of its name, form-decoded as Rack does;
//! decrypted as `ActiveSupport::MessageEncryptor` does — AES-256-GCM (`ct--iv--tag`, Rails
//! 5.2+) or AES-256-CBC under an HMAC-SHA1 of its base64 text (Rails 4.0–5.1), with keys
//! derived from `secret_key_base` by PBKDF2 (1000 iterations, SHA1 or SHA256) and the
//! cookie jar's salts; then the `_rails` envelope (`exp`, `pur` = `cookie.<name>`) and the
//! JSON session — never Marshal.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::pbkdf2;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderName;
use http::header::COOKIE;
use serde_json::{Map, Value};

use super::{Session, SessionReader, json_object};
use crate::config::{RailsCipher, RailsKeyDerivation};
use crate::identity::UserHasher;
use crate::identity::cookies::first_cookie;
use crate::identity::source::{BoxFuture, Found, IdentitySource, RequestFacts};
use crate::outcome::{Rejection, Source};

/// `Rails::Application#key_generator`: `KeyGenerator.new(secret_key_base, iterations: 1000)`.
const PBKDF2_ITERATIONS: u32 = 1000;
/// `ActionDispatch::Railtie`'s salts: the GCM key, the CBC key and the CBC HMAC key.
const GCM_SALT: &[u8] = b"authenticated encrypted cookie";
const CBC_SALT: &[u8] = b"encrypted cookie";
const CBC_HMAC_SALT: &[u8] = b"signed encrypted cookie";
/// The first bytes of a Marshal dump (format 4.8) and of MessagePack's `cc 80` signature:
/// sessions the proxy never deserializes.
const MARSHAL: &[u8] = &[0x04, 0x08];
const MESSAGE_PACK: &[u8] = &[0xcc, 0x80];

/// The cookie keys of one PBKDF2 digest.
struct CookieKeys {
    gcm: LessSafeKey,
    cbc: PaddedBlockDecryptingKey,
    /// HMAC-SHA1 with the 64-byte key (`MessageVerifier`'s default digest).
    cbc_mac: hmac::Key,
}

impl CookieKeys {
    /// The keys `secret_key_base` gives with `digest` (the jar's `generate_key` calls: 32
    /// bytes for each AES key, 64 for the HMAC key).
    fn derive(secret_key_base: &[u8], digest: pbkdf2::Algorithm) -> CookieKeys {
        let iterations = NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
        let derive = |salt: &[u8], out: &mut [u8]| pbkdf2::derive(digest, iterations, salt, secret_key_base, out);
        let (mut gcm, mut cbc, mut cbc_mac) = ([0u8; 32], [0u8; 32], [0u8; 64]);
        derive(GCM_SALT, &mut gcm);
        derive(CBC_SALT, &mut cbc);
        derive(CBC_HMAC_SALT, &mut cbc_mac);
        let aes = "a 32-byte key is an AES-256 key";
        CookieKeys {
            gcm: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &gcm).expect(aes)),
            cbc: PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &cbc).expect(aes)).expect(aes),
            cbc_mac: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &cbc_mac),
        }
    }

    /// `ct--iv--tag`: AES-256-GCM with a 12-byte IV, a 16-byte tag and no associated data.
    fn open_gcm(&self, ciphertext: &[u8], iv: &[u8], tag: &[u8]) -> Option<Vec<u8>> {
        let nonce = Nonce::try_assume_unique_for_key(iv).ok()?;
        let mut sealed = [ciphertext, tag].concat();
        let plaintext = self.gcm.open_in_place(nonce, Aad::empty(), &mut sealed).ok()?.len();
        sealed.truncate(plaintext);
        Some(sealed)
    }

    /// `b64(b64(ct)--b64(iv))--hex(hmac)`: the HMAC-SHA1 of the outer base64 text, then
    /// AES-256-CBC with PKCS#7 padding. `None`: the HMAC does not verify with these keys.
    fn open_cbc(&self, data: &str, mac: &[u8]) -> Option<Result<Vec<u8>, Rejection>> {
        hmac::verify(&self.cbc_mac, data.as_bytes(), mac).ok()?;
        Some(self.decrypt_cbc(data))
    }

    /// The authentic `b64(ct)--b64(iv)` blob's plaintext.
    fn decrypt_cbc(&self, data: &str) -> Result<Vec<u8>, Rejection> {
        let blob = strict_base64(data)?;
        let blob = std::str::from_utf8(&blob).map_err(|_| Rejection::Malformed)?;
        let [ciphertext, iv] = parts::<2>(blob).ok_or(Rejection::Malformed)?;
        let (mut ciphertext, iv) = (strict_base64(ciphertext)?, strict_base64(iv)?);
        let iv: [u8; 16] = iv.try_into().map_err(|_| Rejection::Malformed)?;
        if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
            return Err(Rejection::Malformed);
        }
        let context = DecryptionContext::Iv128(FixedLength::from(iv));
        let plaintext = self.cbc.decrypt(&mut ciphertext, context).map_err(|_| Rejection::Malformed)?.len();
        ciphertext.truncate(plaintext);
        Ok(ciphertext)
    }
}

/// `identity.rails`.
pub(in crate::identity) struct RailsSession {
    cookie: String,
    /// `cookie.<name>`: the purpose the cookie jar seals a cookie's envelope with.
    purpose: String,
    cipher: RailsCipher,
    /// In the order they are tried: SHA256, then SHA1, for `key_derivation: auto`.
    keys: Vec<CookieKeys>,
    reader: SessionReader,
}

impl RailsSession {
    /// Derives the cookie keys, once.
    pub(in crate::identity) fn new(config: &crate::config::Rails, hasher: UserHasher) -> Self {
        let secret = config.secret_key_base.expose().as_bytes();
        let digests = match config.key_derivation {
            RailsKeyDerivation::Auto => vec![pbkdf2::PBKDF2_HMAC_SHA256, pbkdf2::PBKDF2_HMAC_SHA1],
            RailsKeyDerivation::Sha256 => vec![pbkdf2::PBKDF2_HMAC_SHA256],
            RailsKeyDerivation::Sha1 => vec![pbkdf2::PBKDF2_HMAC_SHA1],
        };
        RailsSession {
            cookie: config.cookie.clone(),
            purpose: format!("cookie.{}", config.cookie),
            cipher: config.cipher,
            keys: digests.into_iter().map(|digest| CookieKeys::derive(secret, digest)).collect(),
            reader: SessionReader::new(config.claims.clone(), hasher),
        }
    }

    /// The session in a cookie's value as the request carried it, at `now`.
    fn verify(&self, carried: &str, now: SystemTime) -> Result<Session, Rejection> {
        let plaintext = self.decrypt(&form_decode(carried)?)?;
        self.unwrap(&plaintext, now)
    }

    /// The plaintext of a cookie value: its shape says which cipher (GCM's three `--`
    /// parts, CBC's two; base64 has no `-`), unless `cipher` pins one.
    fn decrypt(&self, value: &str) -> Result<Vec<u8>, Rejection> {
        let gcm = !matches!(self.cipher, RailsCipher::Aes256Cbc);
        let cbc = !matches!(self.cipher, RailsCipher::Aes256Gcm);
        if let (true, Some([ciphertext, iv, tag])) = (gcm, parts::<3>(value)) {
            let (ciphertext, iv, tag) = (strict_base64(ciphertext)?, strict_base64(iv)?, strict_base64(tag)?);
            if iv.len() != 12 || tag.len() != 16 {
                return Err(Rejection::Malformed);
            }
            return self
                .keys
                .iter()
                .find_map(|keys| keys.open_gcm(&ciphertext, &iv, &tag))
                .ok_or(Rejection::BadSignature);
        }
        if let (true, Some([data, digest])) = (cbc, parts::<2>(value)) {
            let lowercase_hex = digest.len() == 40 && digest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            let mac = hex::decode(digest).ok().filter(|_| lowercase_hex && !data.is_empty());
            let mac = mac.ok_or(Rejection::Malformed)?;
            return self.keys.iter().find_map(|keys| keys.open_cbc(data, &mac)).unwrap_or(Err(Rejection::BadSignature));
        }
        Err(Rejection::Malformed)
    }

    /// The session in an authentic plaintext: the `_rails` envelope when it is one (its
    /// `exp` and `pur` checked), else the bare serialized session (Rails 4.0–5.1).
    fn unwrap(&self, plaintext: &[u8], now: SystemTime) -> Result<Session, Rejection> {
        let Ok(Value::Object(mut outer)) = serde_json::from_slice::<Value>(plaintext) else {
            return Ok(Session { json: bare(plaintext)?, valid_for: None });
        };
        let Some(envelope) = outer.remove("_rails") else {
            return Ok(Session { json: outer, valid_for: None });
        };
        let Value::Object(envelope) = envelope else { return Err(Rejection::Malformed) };
        let valid_for = valid_for(envelope.get("exp"), now)?;
        match envelope.get("pur") {
            None | Some(Value::Null) => {}
            Some(Value::String(purpose)) if purpose.is_empty() || *purpose == self.purpose => {}
            Some(_) => return Err(Rejection::WrongPurpose),
        }
        let json = match (envelope.get("message"), envelope.get("data")) {
            (Some(Value::String(message)), _) => bare(&strict_base64(message)?)?,
            // Rails 7.1+'s envelope of a message serialized with it (MessageEncryptor's).
            (None, Some(Value::Object(session))) => session.clone(),
            (None, Some(_)) => return Err(Rejection::NotAnObject),
            _ => return Err(Rejection::Malformed),
        };
        Ok(Session { json, valid_for })
    }
}

impl IdentitySource for RailsSession {
    fn kind(&self) -> Source {
        Source::Rails
    }

    fn reads(&self) -> &[HeaderName] {
        &[COOKIE]
    }

    fn identify<'a>(&'a self, request: &'a RequestFacts) -> BoxFuture<'a, Found> {
        Box::pin(async move {
            let Some(cookie) = first_cookie(&request.headers, &self.cookie) else { return Found::Absent };
            let carried = cookie.value();
            self.reader.found(&[carried.as_bytes()], |now| self.verify(carried, now))
        })
    }
}

/// A serialized session: JSON, never Marshal or MessagePack (told by their first bytes, as
/// Rails' serializers tell them).
fn bare(serialized: &[u8]) -> Result<Map<String, Value>, Rejection> {
    if serialized.starts_with(MARSHAL) || serialized.starts_with(MESSAGE_PACK) {
        return Err(Rejection::UnsupportedSerializer);
    }
    json_object(serialized)
}

/// How much longer an envelope's `exp` (`Time#iso8601(3)`, UTC) leaves the session: Rails
/// expires it when `now >= exp`. `None`: no `exp`.
fn valid_for(exp: Option<&Value>, now: SystemTime) -> Result<Option<Duration>, Rejection> {
    match exp {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(exp)) => {
            let exp = humantime::parse_rfc3339(exp).map_err(|_| Rejection::Malformed)?;
            match exp.duration_since(now) {
                Ok(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(Rejection::Expired),
            }
        }
        Some(_) => Err(Rejection::Malformed),
    }
}

/// Rack's `unescape` of a cookie value (`URI.decode_www_form_component`): `%XX` is a byte,
/// `+` a space.
fn form_decode(carried: &str) -> Result<String, Rejection> {
    let plus_as_space = carried.replace('+', " ");
    let bytes = percent_encoding::percent_decode_str(&plus_as_space).collect::<Vec<u8>>();
    String::from_utf8(bytes).map_err(|_| Rejection::Malformed)
}

/// Exactly `N` parts separated by `--`, none empty but a GCM ciphertext may be.
fn parts<const N: usize>(text: &str) -> Option<[&str; N]> {
    let parts: Vec<&str> = text.split("--").collect();
    parts.try_into().ok()
}

/// `Base64.strict_decode64`: the standard alphabet, padded.
fn strict_base64(text: &str) -> Result<Vec<u8>, Rejection> {
    STANDARD.decode(text).map_err(|_| Rejection::Malformed)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::super::vectors;
    use super::*;
    use crate::config::{ClaimPath, Claims};

    fn source(secret_key_base: &str, cipher: RailsCipher, key_derivation: RailsKeyDerivation) -> RailsSession {
        let user_id = ClaimPath(["warden.user.user.key", "0", "0"].map(String::from).to_vec());
        let config = crate::config::Rails {
            cookie: "_shop_session".into(),
            secret_key_base: secret_key_base.into(),
            cipher,
            key_derivation,
            claims: Claims { user_id, user_name: None, user_avatar: None },
        };
        RailsSession::new(&config, UserHasher::new("sk_test_123"))
    }

    #[test]
    fn every_rails_vector_gets_its_answer() {
        const DEVISE: [&str; 3] = ["warden.user.user.key", "0", "0"];
        for vector in vectors::of("rails") {
            let secret = vector["config"]["secret_key_base"].as_str().unwrap();
            let rails = source(secret, RailsCipher::Auto, RailsKeyDerivation::Auto);
            let carried = vectors::cookie(&vector, "_shop_session").unwrap();
            let answer = vectors::answer(rails.verify(carried, SystemTime::now()).map(|s| s.json), &DEVISE);
            assert_eq!(answer, vectors::expected(&vector), "{}", vector["id"]);
        }
    }

    #[test]
    fn a_pinned_cipher_or_digest_reads_only_its_own_cookies() {
        let vectors = vectors::of("rails");
        let by_id = |id: &str| vectors.iter().find(|v| v["id"] == id).unwrap();
        let secret = by_id("rails-gcm-sha1-envelope")["config"]["secret_key_base"].as_str().unwrap().to_owned();
        let verify = |cipher, kdf, id: &str| {
            let carried = vectors::cookie(by_id(id), "_shop_session").unwrap();
            source(&secret, cipher, kdf).verify(carried, SystemTime::now()).map(|_| ())
        };
        use RailsCipher::{Aes256Cbc, Aes256Gcm, Auto};
        use RailsKeyDerivation::{Sha1, Sha256};
        assert_eq!(verify(Aes256Gcm, Sha1, "rails-gcm-sha1-envelope"), Ok(()));
        assert_eq!(verify(Auto, Sha256, "rails-gcm-sha1-envelope"), Err(Rejection::BadSignature));
        assert_eq!(verify(Auto, Sha1, "rails-gcm-sha256-envelope"), Err(Rejection::BadSignature));
        assert_eq!(verify(Aes256Cbc, Sha1, "rails-gcm-sha1-envelope"), Err(Rejection::Malformed));
        assert_eq!(verify(Aes256Gcm, Sha1, "rails-cbc-sha1-bare"), Err(Rejection::Malformed));
        assert_eq!(verify(Aes256Cbc, Sha1, "rails-cbc-sha1-envelope"), Ok(()));
    }

    #[test]
    fn the_envelope_is_checked_as_rails_checks_it() {
        let rails = source(&"k".repeat(64), RailsCipher::Auto, RailsKeyDerivation::Auto);
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        let message = STANDARD.encode(br#"{"warden.user.user.key":[[7],"salt"]}"#);
        let envelope = |exp: &str, pur: &str| {
            format!(r#"{{"_rails":{{"message":"{message}","exp":{exp},"pur":{pur}}}}}"#).into_bytes()
        };
        let exp = r#""2026-01-01T00:00:00.500Z""#;
        let fresh = rails.unwrap(&envelope(exp, r#""cookie._shop_session""#), at(1_767_225_600)).unwrap();
        assert_eq!(fresh.valid_for, Some(Duration::from_millis(500)), "expires with exp");
        let at_exp = UNIX_EPOCH + Duration::from_millis(1_767_225_600_500);
        assert_eq!(rails.unwrap(&envelope(exp, "null"), at_exp).unwrap_err(), Rejection::Expired, "now >= exp");
        for accepted in ["null", r#""""#] {
            assert!(rails.unwrap(&envelope("null", accepted), at(0)).is_ok(), "pur {accepted}");
        }
        for other in [r#""cookie.other""#, "5", r#""cookie._shop_session ""#] {
            assert_eq!(rails.unwrap(&envelope("null", other), at(0)).unwrap_err(), Rejection::WrongPurpose);
        }
        assert_eq!(rails.unwrap(&envelope(r#""tomorrow""#, "null"), at(0)).unwrap_err(), Rejection::Malformed);
        assert_eq!(rails.unwrap(br#"{"_rails":{"exp":null}}"#, at(0)).unwrap_err(), Rejection::Malformed);
        assert_eq!(rails.unwrap(br#"{"_rails":{"data":[1]}}"#, at(0)).unwrap_err(), Rejection::NotAnObject);
        let msgpack = [&[0xcc, 0x80][..], b"\x81"].concat();
        assert_eq!(rails.unwrap(&msgpack, at(0)).unwrap_err(), Rejection::UnsupportedSerializer);
        assert_eq!(rails.unwrap(b"not json", at(0)).unwrap_err(), Rejection::UnsupportedSerializer);
    }

    #[test]
    fn cookie_values_are_form_decoded_and_must_have_rails_shape() {
        assert_eq!(form_decode("a%2Bb+c%3D%3D").unwrap(), "a+b c==");
        let rails = source(&"k".repeat(64), RailsCipher::Auto, RailsKeyDerivation::Auto);
        for garbage in [
            "",
            "abc",
            "a--b--c--d",
            "YQ==--YQ==--YQ==",
            "YQ==--NOTHEX",
            "YQ==--ABCDEF0123456789ABCDEF0123456789ABCDEF01",
        ] {
            assert_eq!(rails.decrypt(garbage).unwrap_err(), Rejection::Malformed, "{garbage}");
        }
        let well_formed_gcm =
            format!("{}--{}--{}", STANDARD.encode(b"x"), STANDARD.encode([0; 12]), STANDARD.encode([0; 16]));
        assert_eq!(rails.decrypt(&well_formed_gcm).unwrap_err(), Rejection::BadSignature);
    }
}
