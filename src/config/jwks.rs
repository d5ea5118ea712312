//! `jwt.jwks_file`: a JSON Web Key Set on disk, parsed once into verification keys, each
//! with the `kid` and `alg` it declares. Keys for encryption are left out.

use std::path::Path;
use std::str::FromStr;

use jsonwebtoken::jwk::{JwkSet, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::keys::{JwtKey, VerificationKey};

/// Reads the key set at `path`: every signature key it holds, or why it cannot be used.
pub(crate) fn load(path: &Path) -> Result<JwtKey, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let set: JwkSet =
        serde_json::from_slice(&text).map_err(|e| format!("{} is not a JSON Web Key Set: {e}", path.display()))?;
    let keys = signature_keys(&set).map_err(|e| format!("{}: {e}", path.display()))?;
    if keys.is_empty() {
        return Err(format!("{} holds no signature key", path.display()));
    }
    let description = format!("the {} key(s) of the key set in {}", keys.len(), path.display());
    Ok(JwtKey::from_keys(keys, description))
}

/// The keys of `set` that verify signatures (`use` absent or `sig`, `key_ops` absent or
/// with `verify`, a signature `alg`),
/// leaving out keys of a kind this proxy cannot use. A shared secret (`oct`) is refused.
pub(crate) fn signature_keys(set: &JwkSet) -> Result<Vec<VerificationKey>, String> {
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let name = jwk.common.key_id.clone().unwrap_or_else(|| "(no kid)".to_owned());
        // A key for encryption (`use: enc`), or whose `key_ops` leave out `verify`, is not
        // one to verify signatures with (RFC 7517 §4.2, §4.3).
        let not_for_verifying =
            jwk.common.key_operations.as_ref().is_some_and(|ops| !ops.contains(&KeyOperations::Verify));
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) || not_for_verifying {
            continue;
        }
        if matches!(jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)) {
            return Err(format!("key {name} is a shared secret (oct); a key set here holds public keys only"));
        }
        let alg = match &jwk.common.key_algorithm {
            // An encryption algorithm (RSA-OAEP, …) is not one a token is signed with.
            Some(declared) => match Algorithm::from_str(&declared.to_string()) {
                Ok(alg) => Some(alg),
                Err(_) => continue,
            },
            None => None,
        };
        // A key of a kind this proxy cannot verify with (another curve, say) is left out
        // rather than costing the whole set: tokens it signed are rejected as unknown.
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            tracing::warn!(kid = %name, "a key of the key set cannot be used; it is left out");
            continue;
        };
        keys.push(VerificationKey { kid: jwk.common.key_id.clone(), alg, key });
    }
    Ok(keys)
}
