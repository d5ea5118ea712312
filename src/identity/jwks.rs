//! The keys tokens are verified with at run time: fixed ones from the config, or a JSON Web
//! Key Set fetched from `jwt.jwks_url` — at start-up, every `jwks_refresh` in the
//! background, and when a token names a `kid` the set lacks (at most once per
//! `jwks_min_refresh`). A fetch that fails keeps the last good keys.

use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Empty;
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use super::StartError;
use super::kid_keys::KidKeys;
use crate::config::{JwksUrl, KeySource, VerificationKey};
use crate::upstream::fetch::{self, FetchClient};

/// The largest key set accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// The longest a page waits for a key set fetched because of its token's unknown `kid`.
const UNKNOWN_KID_WAIT: Duration = Duration::from_secs(1);

/// One version of the keys. `generation` changes whenever the keys do, so that what was
/// verified with an older version can be told apart.
pub(super) struct KeySet {
    pub keys: Vec<VerificationKey>,
    pub generation: u64,
    /// The key set's JSON, to tell a refresh that changed nothing.
    document: Option<Value>,
}

/// Where the current keys are.
pub(super) enum Keys {
    Fixed(Arc<KeySet>),
    Remote(Arc<RemoteKeys>),
    /// A key per `kid`, fetched when a token names it ([`KidKeys`]).
    PerKid(Box<KidKeys>),
}

impl Keys {
    /// Loads the keys of `source`; a `jwks_url` is fetched now (a failure is an error
    /// unless `jwks_optional`) and then kept fresh in the background.
    pub(super) async fn load(source: &KeySource) -> Result<Keys, StartError> {
        match source {
            KeySource::Fixed(key) => {
                Ok(Keys::Fixed(Arc::new(KeySet { keys: key.keys().to_vec(), generation: 0, document: None })))
            }
            KeySource::Url(jwks) => RemoteKeys::start(jwks.clone()).await.map(Keys::Remote),
            KeySource::PerKid(key_url) => KidKeys::new(key_url).map(|keys| Keys::PerKid(Box::new(keys))),
        }
    }

    /// The keys as they are now.
    pub(super) fn current(&self) -> Arc<KeySet> {
        match self {
            Keys::Fixed(set) => Arc::clone(set),
            Keys::Remote(remote) => remote.current(),
            Keys::PerKid(_) => Arc::new(KeySet { keys: Vec::new(), generation: 0, document: None }),
        }
    }

    /// Why there are no keys to verify with yet (a `jwks_url` that has not loaded once).
    pub(super) fn not_loaded(&self) -> Option<String> {
        match self {
            Keys::Fixed(_) | Keys::PerKid(_) => None,
            Keys::Remote(remote) if remote.current().generation > 0 => None,
            Keys::Remote(remote) => Some(remote.last_failure().unwrap_or_else(|| "not fetched yet".to_owned())),
        }
    }

    /// For a token whose `kid` is not in generation `seen`: fetches the key set again if
    /// the last fetch is at least `jwks_min_refresh` old. Whether the keys are now
    /// different, so that looking again may find the key.
    pub(super) async fn refresh_for_unknown_kid(&self, seen: u64) -> bool {
        match self {
            Keys::Fixed(_) | Keys::PerKid(_) => false,
            Keys::Remote(remote) => remote.refresh_for_unknown_kid(seen).await,
        }
    }
}

/// A key set fetched from a URL.
pub(super) struct RemoteKeys {
    config: JwksUrl,
    client: FetchClient,
    current: RwLock<Arc<KeySet>>,
    /// Held while fetching: one fetch runs at a time.
    fetching: tokio::sync::Mutex<()>,
    /// When the last fetch (successful or not) ended.
    last_fetch: Mutex<Option<Instant>>,
    /// Why the last fetch failed, until one succeeds.
    last_failure: Mutex<Option<String>>,
}

impl RemoteKeys {
    async fn start(config: JwksUrl) -> Result<Arc<RemoteKeys>, StartError> {
        let client = fetch::client_for(&config.url, config.timeout).map_err(|source| StartError::Client {
            key: "identity.jwt.jwks_url",
            url: config.url.clone(),
            source,
        })?;
        let empty = KeySet { keys: Vec::new(), generation: 0, document: None };
        let remote = Arc::new(RemoteKeys {
            config,
            client,
            current: RwLock::new(Arc::new(empty)),
            fetching: tokio::sync::Mutex::new(()),
            last_fetch: Mutex::new(None),
            last_failure: Mutex::new(None),
        });
        let first_wait = match remote.refresh().await {
            Ok(()) => remote.config.refresh,
            Err(reason) if remote.config.optional => {
                tracing::warn!(url = %remote.config.url, %reason, "JWKS not loaded; every token is rejected until it is (jwks_optional)");
                remote.retry_after_failure()
            }
            Err(reason) => return Err(StartError::KeySet { url: remote.config.url.clone(), reason }),
        };
        tokio::spawn(refresh_in_background(Arc::downgrade(&remote), first_wait));
        Ok(remote)
    }

    /// When to try again after a failed fetch: sooner than the regular refresh, but never
    /// in a tight loop against a failing server.
    fn retry_after_failure(&self) -> Duration {
        self.config.min_refresh.max(Duration::from_secs(1).min(self.config.refresh))
    }

    fn last_failure(&self) -> Option<String> {
        self.last_failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// When the last fetch ended.
    fn last_fetch(&self) -> Option<Instant> {
        *self.last_fetch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetches the key set for a token whose `kid` generation `seen` lacks — unless a
    /// fetch ended less than `jwks_min_refresh` ago, or ends while this one waits its turn.
    /// The fetch runs as a task of its own, so a request that goes away does not cancel it;
    /// the request waits for it at most [`UNKNOWN_KID_WAIT`] (then the visitor is
    /// anonymous, and the next page finds the key).
    async fn refresh_for_unknown_kid(self: &Arc<Self>, seen: u64) -> bool {
        if self.last_fetch().is_some_and(|at| at.elapsed() < self.config.min_refresh) {
            return self.current().generation != seen;
        }
        let asked_at = Instant::now();
        let remote = Arc::clone(self);
        let refresh = tokio::spawn(async move {
            let turn = remote.fetching.lock().await;
            let recent = |at: Instant| at >= asked_at || at.elapsed() < remote.config.min_refresh;
            if remote.last_fetch().is_some_and(recent) {
                return;
            }
            if let Err(reason) = remote.fetch_now(turn).await {
                tracing::warn!(url = %remote.config.url, %reason, "JWKS refresh for an unknown kid failed; keeping the last good keys");
            }
        });
        let _ = tokio::time::timeout(UNKNOWN_KID_WAIT.min(self.config.timeout), refresh).await;
        self.current().generation != seen
    }

    /// Fetches the key set and, if it differs, makes it current.
    async fn refresh(&self) -> Result<(), String> {
        self.fetch_now(self.fetching.lock().await).await
    }

    /// Fetches, holding the `fetching` turn.
    async fn fetch_now(&self, _turn: tokio::sync::MutexGuard<'_, ()>) -> Result<(), String> {
        let fetched = self.fetch().await;
        *self.last_fetch.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        *self.last_failure.lock().unwrap_or_else(PoisonError::into_inner) = fetched.as_ref().err().cloned();
        let (document, keys) = fetched?;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.document.as_ref() != Some(&document) {
            let generation = current.generation + 1;
            tracing::info!(url = %self.config.url, keys = keys.len(), generation, "JWKS loaded");
            *current = Arc::new(KeySet { keys, generation, document: Some(document) });
        }
        Ok(())
    }

    async fn fetch(&self) -> Result<(Value, Vec<VerificationKey>), String> {
        let request = Request::get(self.config.url.clone())
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .header(header::USER_AGENT, concat!("invent-proxy/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let (status, body) =
            fetch::get(&self.client, request, self.config.timeout, MAX_JWKS_BYTES).await.map_err(|e| e.to_string())?;
        if status != StatusCode::OK {
            return Err(format!("answered {status}"));
        }
        let document: Value = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        let set: JwkSet =
            serde_json::from_value(document.clone()).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
        let keys = crate::config::signature_keys(&set)?;
        if keys.is_empty() {
            return Err("the key set holds no signature key".to_owned());
        }
        Ok((document, keys))
    }
}

/// Fetches the key set every `jwks_refresh` (sooner after a failure) for as long as the
/// proxy that owns it runs.
async fn refresh_in_background(remote: Weak<RemoteKeys>, first_wait: Duration) {
    let mut wait = first_wait;
    loop {
        tokio::time::sleep(wait).await;
        let Some(remote) = remote.upgrade() else { return };
        wait = match remote.refresh().await {
            Ok(()) => remote.config.refresh,
            Err(reason) => {
                tracing::warn!(url = %remote.config.url, %reason, "JWKS refresh failed; keeping the last good keys");
                remote.retry_after_failure()
            }
        };
    }
}
