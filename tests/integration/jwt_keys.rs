//! Verification keys: PEM public keys of each algorithm, JWKS files picked by `kid` with
//! their `alg` and `key_ops` honoured, algorithm confusion refused, key-location headers
//! ignored, and key material that would let anyone sign refused at start-up.

use invent_proxy::identity::{Identified, Rejection, Source};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use crate::identity::{PAGE, VERIFIED, config_error, hs_jwt, identifier, outcome, outcomes_after};
use crate::support::tokens::{self, claims};
use crate::support::*;

/// Sessions in the `session` cookie verified with the public key in `keys/FILE`.
pub fn public_key_jwt(file: &str, algorithms: &[&str]) -> JwtYaml {
    JwtYaml::default().cookie("session").algorithms(algorithms).public_key_file(&format!("keys/{file}"))
}

#[test]
fn public_keys_verify_rs256_ps256_es256_and_eddsa() {
    let rsa = identifier(public_key_jwt("rsa_public.pem", &["RS256"]));
    assert_eq!(outcome(&rsa, &tokens::rs256(&claims("u1"))), VERIFIED);
    let pss = identifier(public_key_jwt("rsa_public.pem", &["PS256", "RS256"]));
    let rsa_key = EncodingKey::from_rsa_pem(&tokens::fixture("rsa_private.pem")).unwrap();
    assert_eq!(outcome(&pss, &tokens::sign(Algorithm::PS256, &rsa_key, &claims("u1"))), VERIFIED);
    assert_eq!(outcome(&pss, &tokens::rs256(&claims("u1"))), VERIFIED);
    let ec = identifier(public_key_jwt("ec_public.pem", &["ES256"]));
    assert_eq!(outcome(&ec, &tokens::es256(&claims("u1"))), VERIFIED);
    let ed = identifier(public_key_jwt("ed_public.pem", &["EdDSA"]));
    assert_eq!(outcome(&ed, &tokens::eddsa(&claims("u1"))), VERIFIED);
    assert_eq!(
        outcome(&rsa, &tokens::es256(&claims("u1"))),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::AlgorithmNotAllowed }
    );
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_rejected_when_rs256_is_configured() {
    let rsa = identifier(public_key_jwt("rsa_public.pem", &["RS256"]));
    let forged = tokens::hs256_with_rsa_public_key(&claims("admin"));
    assert_eq!(
        outcome(&rsa, &forged),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::AlgorithmNotAllowed }
    );
}

#[tokio::test]
async fn a_page_with_an_algorithm_confusion_token_is_served_anonymous() {
    let forged = tokens::hs256_with_rsa_public_key(&claims("admin"));
    let upstream = spawn_html_upstream(PAGE).await;
    let identity = IdentityYaml::default().jwt(public_key_jwt("rsa_public.pem", &["RS256"]));
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).identity(identity)).await;
    assert_eq!(widget_attribute(&get_as(&proxy, "/", &forged).await.text(), "user-id"), None);
    let genuine = get_as(&proxy, "/", &tokens::rs256(&claims("u1"))).await.text();
    assert_eq!(widget_attribute(&genuine, "user-id").as_deref(), Some("u1"));
}

#[test]
fn key_location_headers_are_ignored() {
    use base64::Engine;
    let identifier = identifier(JwtYaml::session());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let attacker_key = b"attacker-chosen-key";
    let header = json!({
        "alg": "HS256",
        "jku": format!("http://{}/keys.json", listener.local_addr().unwrap()),
        "x5u": format!("http://{}/cert.pem", listener.local_addr().unwrap()),
        "jwk": {"kty": "oct", "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(attacker_key)},
    });
    let forged = tokens::hs256_with_header(&header, &claims("admin"), attacker_key);
    assert_eq!(
        outcome(&identifier, &forged),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::BadSignature }
    );
    assert!(listener.accept().is_err(), "no key was fetched from the token's jku/x5u");
    let genuine = tokens::hs256_with_header(&header, &claims("u1"), JWT_SECRET.as_bytes());
    assert_eq!(outcome(&identifier, &genuine), VERIFIED, "the configured key still verifies");
}

/// A JWKS file with the fixture RSA key (`rsa-1`, RS256) and EC key (`ec-1`, ES256).
fn jwks_file() -> crate::support::process::TempPath {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    let mut rsa = Jwk::from_encoding_key(&tokens::rsa_key(), Algorithm::RS256).unwrap();
    rsa.common.key_id = Some("rsa-1".into());
    let mut ec = Jwk::from_encoding_key(&tokens::ec_key(), Algorithm::ES256).unwrap();
    ec.common.key_id = Some("ec-1".into());
    crate::support::process::TempPath::with_contents(&serde_json::to_string(&JwkSet { keys: vec![rsa, ec] }).unwrap())
}

/// Sessions in the `session` cookie verified with the key set in `file`, RS256 and ES256.
fn jwks_jwt(file: &str) -> JwtYaml {
    JwtYaml::default().cookie("session").algorithms(&["RS256", "ES256"]).jwks_file(file)
}

#[test]
fn a_jwks_file_picks_the_key_by_kid_and_honours_its_alg() {
    let file = jwks_file();
    let identifier = identifier(jwks_jwt(file.path()));
    let rsa = tokens::sign_with_kid(Algorithm::RS256, &tokens::rsa_key(), "rsa-1", &claims("u1"));
    assert_eq!(outcome(&identifier, &rsa), VERIFIED);
    let ec = tokens::sign_with_kid(Algorithm::ES256, &tokens::ec_key(), "ec-1", &claims("u1"));
    assert_eq!(outcome(&identifier, &ec), VERIFIED);
    let unknown = tokens::sign_with_kid(Algorithm::RS256, &tokens::rsa_key(), "rotated-away", &claims("u1"));
    assert_eq!(
        outcome(&identifier, &unknown),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::UnknownKey }
    );
    let wrong_alg = tokens::sign_with_kid(Algorithm::RS384, &tokens::rsa_key(), "rsa-1", &claims("u1"));
    assert_eq!(
        outcome(&identifier, &wrong_alg),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::AlgorithmNotAllowed },
        "the key says RS256"
    );
    let confused = {
        let public = EncodingKey::from_secret(&tokens::fixture("rsa_public.pem"));
        tokens::sign_with_kid(Algorithm::HS256, &public, "rsa-1", &claims("admin"))
    };
    assert_eq!(
        outcome(&identifier, &confused),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::AlgorithmNotAllowed }
    );
    let no_kid = tokens::rs256(&claims("u1"));
    assert_eq!(
        outcome(&identifier, &no_kid),
        Identified::Rejected { source: Source::JwtCookie, reason: Rejection::UnknownKey },
        "two keys: a token must name one"
    );
}

#[test]
fn a_key_set_without_signature_keys_is_refused_at_start_up() {
    let encryption_only = crate::support::process::TempPath::with_contents(
        r#"{"keys":[{"kty":"RSA","use":"enc","kid":"e1","n":"sXch","e":"AQAB"}]}"#,
    );
    let error = config_error(jwks_jwt(encryption_only.path()));
    assert!(error.contains("identity.jwt.jwks_file: ") && error.contains("holds no signature key"), "{error}");
    let error = config_error(jwks_jwt(jwks_file().path()).secret(JWT_SECRET));
    assert!(error.contains("set one of `secret`, `public_key_file`, `jwks_file` and `jwks_url`"), "{error}");
}

#[test]
fn key_material_that_would_let_anyone_sign_is_refused() {
    let empty = hs_jwt().cookie("s").secret_encoding("base64").secret("=");
    assert!(config_error(empty.clone()).contains("decodes to an empty key"), "{}", config_error(empty));
    let oct = crate::support::process::TempPath::with_contents(r#"{"keys":[{"kty":"oct","kid":"k","k":""}]}"#);
    let error = config_error(jwks_jwt(oct.path()).algorithms(&["HS256"]));
    assert!(error.contains("is a shared secret (oct)"), "{error}");
    let file = jwks_file();
    let error = config_error(jwks_jwt(file.path()).algorithms(&[]));
    assert!(error.contains("identity.jwt.algorithms: must list at least one algorithm"), "{error}");
}

/// A key set whose RSA key (`rsa-1`) declares `key_ops`, beside an EC key (`ec-1`).
fn jwks_with_key_ops(ops: &[&str]) -> crate::support::process::TempPath {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    let mut rsa = Jwk::from_encoding_key(&tokens::rsa_key(), Algorithm::RS256).unwrap();
    rsa.common.key_id = Some("rsa-1".into());
    let mut ec = Jwk::from_encoding_key(&tokens::ec_key(), Algorithm::ES256).unwrap();
    ec.common.key_id = Some("ec-1".into());
    let mut set = serde_json::to_value(JwkSet { keys: vec![rsa, ec] }).unwrap();
    set["keys"][0]["key_ops"] = json!(ops);
    crate::support::process::TempPath::with_contents(&set.to_string())
}

#[tokio::test]
async fn a_key_whose_key_ops_do_not_include_verify_does_not_verify() {
    let token = tokens::sign_with_kid(Algorithm::RS256, &tokens::rsa_key(), "rsa-1", &claims("user_7"));
    for (ops, verifies) in [
        (&["verify"][..], true),
        (&["sign", "verify"], true),
        // A key for signing only, or for encryption, is not a key to verify with (RFC 7517 §4.3).
        (&["sign"], false),
        (&["encrypt", "wrapKey"], false),
    ] {
        let file = jwks_with_key_ops(ops);
        let (pages, metrics) = outcomes_after(jwks_jwt(file.path()), std::slice::from_ref(&token)).await;
        let user_id = widget_attribute(&pages[0], "user-id");
        assert_eq!(user_id.is_some(), verifies, "{ops:?}: {}", pages[0]);
        if !verifies {
            assert!(metrics.contains(r#"reason="unknown_key"} 1"#), "{ops:?}: {metrics}");
        }
    }
}
