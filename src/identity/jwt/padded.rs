//! Tokens whose base64url segments carry padding, as AWS ALB writes its
//! `X-Amzn-Oidc-Data` (ES256, `exp` and `signer` in the JOSE header, the key a PEM
//! fetched per `kid`). jsonwebtoken refuses padded segments, so such a token is read here:
//! only with `jwt.key_url`, where padding is accepted; everywhere else it is malformed.
//!
//! The signature is checked over the segments exactly as sent (padding included, as the
//! load balancer signed them) with jsonwebtoken's own verifier, then the same claims are
//! checked as jsonwebtoken checks them: `exp`, `nbf` with the leeway, `iss`, `aud`, and
//! the required claims.

use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::super::claims;
use super::super::kid_keys::KidKeys;
use super::{JwtVerifier, Verified, now_secs, rejection_of};
use crate::outcome::Rejection;

impl JwtVerifier {
    /// Verifies a token whose key is fetched per `kid` ([`KidKeys`]).
    pub(super) async fn verify_padded(&self, token: &str, keys: &KidKeys) -> Result<Verified, Rejection> {
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (segments.next(), segments.next(), segments.next(), segments.next())
        else {
            return Err(Rejection::Malformed);
        };
        let header_json = segment_json(header)?;
        let alg = header_json.get("alg").and_then(Value::as_str).ok_or(Rejection::Malformed)?;
        let alg: Algorithm = alg.parse().map_err(|_| Rejection::AlgorithmNotAllowed)?;
        if !self.algorithms.contains(&alg) {
            return Err(Rejection::AlgorithmNotAllowed);
        }
        self.check_header(&header_json)?;
        let kid = header_json.get("kid").and_then(Value::as_str).ok_or(Rejection::UnknownKey)?;
        let key = keys.key(kid, alg).await?;
        let signed = &token[..header.len() + 1 + payload.len()];
        let signature = signature.trim_end_matches('=');
        match jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key.key, alg) {
            Ok(true) => {}
            Ok(false) => return Err(Rejection::BadSignature),
            Err(error) => return Err(rejection_of(error.kind())),
        }
        let payload = segment_json(payload)?;
        self.check_claims(&payload)?;
        let visitor = self.hasher.visitor(claims::person(&payload, &self.claims)?);
        Ok(Verified { visitor: Arc::new(visitor), generation: 0, lifetime: self.lifetime(&payload) })
    }

    /// The registered and required claims, as jsonwebtoken checks them for other tokens.
    fn check_claims(&self, payload: &Value) -> Result<(), Rejection> {
        if self.required_all.iter().any(|path| claims::claim(payload, path).is_none_or(Value::is_null)) {
            return Err(Rejection::MissingClaim);
        }
        let (now, leeway) = (now_secs(), self.leeway.as_secs_f64());
        let time = |name: &str| payload.get(name).map(|value| value.as_f64().ok_or(Rejection::InvalidClaim));
        if let Some(exp) = time("exp").transpose()?
            && exp + leeway < now
        {
            return Err(Rejection::Expired);
        }
        if let Some(nbf) = time("nbf").transpose()?
            && nbf - leeway > now
        {
            return Err(Rejection::NotYetValid);
        }
        if !self.issuers.is_empty() {
            let iss = payload.get("iss").and_then(Value::as_str).ok_or(Rejection::MissingClaim)?;
            if !self.issuers.iter().any(|i| i == iss) {
                return Err(Rejection::WrongIssuer);
            }
        }
        if !self.audience.is_empty() {
            let named = |aud: &str| self.audience.iter().any(|a| a == aud);
            let ok = match payload.get("aud").ok_or(Rejection::MissingClaim)? {
                Value::String(aud) => named(aud),
                Value::Array(list) => list.iter().filter_map(Value::as_str).any(named),
                _ => return Err(Rejection::InvalidClaim),
            };
            if !ok {
                return Err(Rejection::WrongAudience);
            }
        }
        Ok(())
    }
}

/// A segment's JSON: base64url, its padding accepted.
fn segment_json(segment: &str) -> Result<Value, Rejection> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| Rejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed)
}
