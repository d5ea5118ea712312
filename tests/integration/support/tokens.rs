//! Session tokens for tests: valid ones with each kind of key, and each kind of bad one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

use super::JWT_SECRET;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys").join(name);
    std::fs::read(path).unwrap()
}

/// Claims for `sub`, valid for an hour.
pub fn claims(sub: impl Into<Value>) -> Value {
    json!({"sub": sub.into(), "exp": get_current_timestamp() + 3600})
}

/// Adds or replaces one claim.
pub fn with(mut claims: Value, name: &str, value: impl Into<Value>) -> Value {
    claims[name] = value.into();
    claims
}

pub fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    encode(&Header::new(alg), claims, key).unwrap()
}

/// An HS256 token signed with the test sessions' key.
pub fn hs256(claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(JWT_SECRET.as_bytes()), claims)
}

pub fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, &EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap(), claims)
}

pub fn es256(claims: &Value) -> String {
    sign(Algorithm::ES256, &EncodingKey::from_ec_pem(&fixture("ec_private.pem")).unwrap(), claims)
}

pub fn eddsa(claims: &Value) -> String {
    sign(Algorithm::EdDSA, &EncodingKey::from_ed_pem(&fixture("ed_private.pem")).unwrap(), claims)
}

/// A token with any header and no signature check possible: `{"alg":"none"}` and friends.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.", part(header), part(claims))
}

/// An HS256 token with any header, signed with `key`.
pub fn hs256_with_header(header: &Value, claims: &Value, key: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let message = format!("{}.{}", part(header), part(claims));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// The classic key-confusion attack: HS256 "signed" with the RSA public key's PEM bytes.
pub fn hs256_with_rsa_public_key(claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(&fixture("rsa_public.pem")), claims)
}

/// A token whose header names the key (`kid`) it was signed with.
pub fn sign_with_kid(alg: Algorithm, key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    encode(&header, claims, key).unwrap()
}

pub fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap()
}

pub fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&fixture("ec_private.pem")).unwrap()
}

/// A token as an AWS Application Load Balancer writes `X-Amzn-Oidc-Data`: ES256 with the
/// fixture EC key, `header` as its JOSE header, and every segment base64url *with*
/// padding — the signature computed over the padded segments.
pub fn alb_token(header: &Value, claims: &Value) -> String {
    use base64::engine::general_purpose::URL_SAFE;
    let part = |v: &Value| URL_SAFE.encode(serde_json::to_vec(v).unwrap());
    let message = format!("{}.{}", part(header), part(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &ec_key(), Algorithm::ES256).unwrap();
    let signature = URL_SAFE.encode(URL_SAFE_NO_PAD.decode(signature).unwrap());
    format!("{message}.{signature}")
}
