//! Sessions already verified, remembered by a SHA-256 of what the request carried (a token,
//! a framework's session cookies), each until its session expires and never longer than
//! ten minutes: a session's signature is checked once, not on every page.

use std::time::{Duration, Instant};

use moka::Expiry;
use sha2::{Digest, Sha256};

/// The longest a verified session is remembered, even if it is valid for longer.
pub(super) const CACHE_LIFETIME: Duration = Duration::from_secs(600);
/// Sessions remembered at once; at a few hundred bytes each, a few MiB.
const CACHE_ENTRIES: u64 = 10_000;

/// The key of a remembered session: a SHA-256 of what the request carried.
pub(super) type Fingerprint = [u8; 32];

/// The fingerprint of a session carried in `parts` (a token; a cookie and its signature):
/// each part's length, then its bytes, so that no two splits of the same bytes meet.
pub(super) fn fingerprint(parts: &[&[u8]]) -> Fingerprint {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// What was concluded of verified sessions, `V`, by fingerprint, each for its own lifetime.
pub(super) struct VerifiedCache<V: Clone + Send + Sync + 'static> {
    cache: moka::sync::Cache<Fingerprint, Remembered<V>>,
}

#[derive(Clone)]
struct Remembered<V> {
    value: V,
    lifetime: Duration,
}

/// Each entry expires after its own lifetime.
struct UntilSessionExpires;

impl<V> Expiry<Fingerprint, Remembered<V>> for UntilSessionExpires {
    fn expire_after_create(&self, _: &Fingerprint, remembered: &Remembered<V>, _: Instant) -> Option<Duration> {
        Some(remembered.lifetime)
    }
}

impl<V: Clone + Send + Sync + 'static> VerifiedCache<V> {
    pub(super) fn new() -> Self {
        let cache = moka::sync::Cache::builder().max_capacity(CACHE_ENTRIES).expire_after(UntilSessionExpires).build();
        VerifiedCache { cache }
    }

    /// What was concluded of the session `key`, if it is still remembered.
    pub(super) fn get(&self, key: &Fingerprint) -> Option<V> {
        self.cache.get(key).map(|remembered| remembered.value)
    }

    /// Remembers `value` for the session `key` for `lifetime`, at most [`CACHE_LIFETIME`]; a
    /// session with no time left is not remembered.
    pub(super) fn insert(&self, key: Fingerprint, value: V, lifetime: Duration) {
        let lifetime = lifetime.min(CACHE_LIFETIME);
        if !lifetime.is_zero() {
            self.cache.insert(key, Remembered { value, lifetime });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_told_apart_by_their_lengths() {
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        assert_eq!(fingerprint(&[b"a", b"bc"]), fingerprint(&[b"a", b"bc"]));
    }

    #[test]
    fn a_session_with_no_time_left_is_not_remembered() {
        let cache = VerifiedCache::new();
        cache.insert(fingerprint(&[b"gone"]), 1, Duration::ZERO);
        cache.insert(fingerprint(&[b"kept"]), 2, Duration::from_secs(3600));
        assert_eq!(cache.get(&fingerprint(&[b"gone"])), None);
        assert_eq!(cache.get(&fingerprint(&[b"kept"])), Some(2));
    }
}
