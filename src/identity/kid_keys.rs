//! Keys fetched one `kid` at a time from `jwt.key_url` (AWS ALB publishes the PEM public
//! key of each of its signing keys at `https://public-keys.auth.elb.REGION.amazonaws.com/{kid}`):
//! a key is fetched when a token first names its `kid`, then kept; a `kid` that could not
//! be fetched is not tried again for `jwks_min_refresh`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Empty;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::StartError;
use crate::config::{KeyUrl, VerificationKey};
use crate::outcome::Rejection;
use crate::upstream::fetch::{self, FetchClient};

/// The longest `kid` fetched; a longer one is refused unfetched.
const MAX_KID_BYTES: usize = 128;
/// The largest PEM document accepted.
const MAX_PEM_BYTES: usize = 16 * 1024;
/// Keys kept at once (a load balancer rotates through a handful).
const MAX_KEYS: u64 = 1_000;

/// What a `kid` becomes in the URL: one path segment, everything but the unreserved
/// characters (RFC 3986 §2.3) percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The keys of `jwt.key_url`, fetched as tokens name them.
pub(super) struct KidKeys {
    config: KeyUrl,
    client: FetchClient,
    /// By `kid` and key family (a key is parsed for the family of the token's `alg`).
    keys: moka::future::Cache<(String, &'static str), Arc<VerificationKey>>,
    /// `kid`s that could not be fetched lately: refused unfetched until they expire.
    failed: moka::sync::Cache<String, ()>,
}

impl KidKeys {
    pub(super) fn new(config: &KeyUrl) -> Result<KidKeys, StartError> {
        let client = fetch::client_for(&config.example, config.timeout).map_err(|source| StartError::Client {
            key: "identity.jwt.key_url",
            url: config.example.clone(),
            source,
        })?;
        Ok(KidKeys {
            config: config.clone(),
            client,
            keys: moka::future::Cache::builder().max_capacity(MAX_KEYS).build(),
            failed: moka::sync::Cache::builder().max_capacity(MAX_KEYS).time_to_live(config.min_refresh).build(),
        })
    }

    /// The key of `kid`, for a token signed with `alg`: kept, or fetched now. A `kid` that
    /// cannot go into the URL as one path segment is refused before any fetch.
    pub(super) async fn key(&self, kid: &str, alg: Algorithm) -> Result<Arc<VerificationKey>, Rejection> {
        let plain = kid.len() <= MAX_KID_BYTES
            && !kid.is_empty()
            && !kid.contains('/')
            && !kid.contains("..")
            && !kid.chars().any(char::is_control);
        if !plain || self.failed.contains_key(kid) {
            return Err(Rejection::UnknownKey);
        }
        let family = match alg.family() {
            AlgorithmFamily::Ec => "ec",
            AlgorithmFamily::Rsa => "rsa",
            AlgorithmFamily::Ed => "ed",
            AlgorithmFamily::Hmac => return Err(Rejection::AlgorithmNotAllowed),
        };
        let fetched = self.keys.try_get_with((kid.to_owned(), family), self.fetch(kid, alg)).await;
        fetched.map_err(|reason| {
            tracing::warn!(kid, %reason, "identity.jwt.key_url: no key for this kid; its tokens are rejected");
            self.failed.insert(kid.to_owned(), ());
            Rejection::UnknownKey
        })
    }

    /// Fetches and parses the PEM public key of `kid`.
    async fn fetch(&self, kid: &str, alg: Algorithm) -> Result<Arc<VerificationKey>, String> {
        let segment = utf8_percent_encode(kid, SEGMENT).to_string();
        let url = self.config.template.replace("{kid}", &segment);
        let request = Request::get(url.as_str())
            .header(header::ACCEPT, "application/x-pem-file, text/plain, */*")
            .header(header::USER_AGENT, concat!("invent-proxy/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let (status, body) =
            fetch::get(&self.client, request, self.config.timeout, MAX_PEM_BYTES).await.map_err(|e| e.to_string())?;
        if status != StatusCode::OK {
            return Err(format!("{url} answered {status}"));
        }
        let key = match alg.family() {
            AlgorithmFamily::Ec => DecodingKey::from_ec_pem(&body),
            AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(&body),
            AlgorithmFamily::Ed => DecodingKey::from_ed_pem(&body),
            AlgorithmFamily::Hmac => return Err("HMAC keys are never fetched".to_owned()),
        };
        let key = key.map_err(|e| format!("{url} is not a PEM public key for {alg:?}: {e}"))?;
        Ok(Arc::new(VerificationKey { kid: Some(kid.to_owned()), alg: None, key }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kid_is_one_path_segment() {
        let encoded = |kid: &str| utf8_percent_encode(kid, SEGMENT).to_string();
        assert_eq!(encoded("3f9c-a.b_c~d"), "3f9c-a.b_c~d");
        assert_eq!(encoded("a b?c#d%"), "a%20b%3Fc%23d%25");
    }
}
