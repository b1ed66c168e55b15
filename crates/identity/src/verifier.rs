//! `TokenVerifier`: the hot path (digest -> cache hit) and the slow path (parse, find the key,
//! verify the signature, check the claims), plus lazy, rate-limited discovery and JWKS refresh.

#[cfg(test)]
mod tests;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use domain::Principal;
use http::Uri;
use serde::Deserialize;
use tokio::time::Instant;

use crate::cache::{ClaimCache, Digest};
use crate::claims::{GroupsClaim, Rules, Verified};
use crate::error::Chain;
use crate::fetch::{discovery_url, endpoint_url, FetchError, Fetcher};
use crate::jwks::{KeySet, Selection};
use crate::jwt::{self, Alg};
use crate::{AuthError, Error, OidcSettings};

/// Verifies OIDC access tokens. Cheap to clone (shared state); `Send + Sync`.
///
/// Construction does no IO: the IdP is contacted on the first verification that needs keys, and
/// again (at most once per `jwks_min_refresh_interval`) while it is unreachable, so a server
/// starts even when its IdP is down.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    settings: OidcSettings,
    discovery_url: Uri,
    https_only: bool,
    rules: Rules,
    fetcher: Fetcher,
    cache: ClaimCache,
    /// The keys in use; read on every cache miss.
    keys: RwLock<Option<Loaded>>,
    /// Serializes fetches and carries their rate limit.
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Clone)]
struct Loaded {
    set: Arc<KeySet>,
    fetched_at: Instant,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_ok: bool,
    jwks_uri: Option<Uri>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl TokenVerifier {
    /// Validates the settings and builds the HTTP client. Does no IO.
    pub fn new(settings: OidcSettings) -> Result<Self, Error> {
        let (discovery_url, https_only) = discovery_url(&settings.issuer)?;
        let audiences: Vec<String> =
            settings.audiences.iter().filter(|a| !a.is_empty()).cloned().collect();
        if audiences.is_empty() {
            return Err(Error::NoAudience);
        }
        if settings.groups_claim.is_empty() {
            return Err(Error::EmptyGroupsClaim);
        }
        let rules = Rules {
            issuer: settings.issuer.clone(),
            audiences,
            groups: GroupsClaim::new(&settings.groups_claim),
            leeway_secs: i64::try_from(settings.leeway.as_secs()).unwrap_or(i64::MAX),
        };
        let inner = Inner {
            discovery_url,
            https_only,
            rules,
            fetcher: Fetcher::new()?,
            cache: ClaimCache::new(settings.cache_capacity),
            keys: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            settings,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The settings this verifier was built with.
    pub fn settings(&self) -> &OidcSettings {
        &self.inner.settings
    }

    /// Verifies `token` at `now` and returns who presented it.
    ///
    /// A token seen before (same bytes) is answered from the cache until its `exp`: a SHA-256
    /// and a map lookup, no signature check.
    pub async fn verify(&self, token: &str, now: SystemTime) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > jwt::MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        let now = unix_secs(now);
        let digest = Digest::of(token);
        let inner = &*self.inner;
        if let Some(outcome) = inner.cache.get(&digest, &inner.rules, now) {
            return outcome;
        }
        let verified = self.verify_uncached(token, now).await?;
        let principal = verified.principal.clone();
        inner.cache.insert(digest, verified, &inner.rules, now);
        Ok(principal)
    }

    /// Verifies an OIDC ID token at `now` (this verifier's audience being the client id it was
    /// issued to) and, when the sign-in sent one, that its `nonce` is `expected_nonce`. ID
    /// tokens are seen once, so they bypass the cache.
    pub async fn verify_id_token(
        &self,
        token: &str,
        now: SystemTime,
        expected_nonce: Option<&str>,
    ) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > jwt::MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        let verified = self.verify_uncached(token, unix_secs(now)).await?;
        if let Some(expected) = expected_nonce {
            if verified.nonce.as_deref() != Some(expected) {
                return Err(AuthError::NonceMismatch);
            }
        }
        Ok(verified.principal)
    }

    async fn verify_uncached(&self, token: &str, now: i64) -> Result<Verified, AuthError> {
        let jws = jwt::parse(token)?;
        let kid = jws.kid.as_deref();
        let keys = self.keys_for(kid, jws.alg).await?;
        let candidates = match keys.select(kid, jws.alg) {
            Selection::Keys(candidates) => candidates,
            Selection::Mismatch => return Err(AuthError::KeyMismatch),
            Selection::Unknown => return Err(AuthError::UnknownKey),
        };
        if !candidates.iter().any(|key| key.verify(jws.alg, jws.signing_input, &jws.signature)) {
            return Err(AuthError::BadSignature);
        }
        self.inner.rules.validate(&jws.payload, now)
    }

    fn install(&self, loaded: Loaded) {
        let mut keys = self.inner.keys.write().unwrap_or_else(PoisonError::into_inner);
        *keys = Some(loaded);
    }

    fn loaded(&self) -> Option<Loaded> {
        self.inner.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A key set that knows `kid` (or has a key for `alg` when there is no kid), refreshing it
    /// if need be; otherwise the latest set, whose selection then reports the problem.
    async fn keys_for(&self, kid: Option<&str>, alg: Alg) -> Result<Arc<KeySet>, AuthError> {
        if let Some(loaded) = self.loaded() {
            if loaded.set.knows(kid, alg) {
                if loaded.fetched_at.elapsed() >= self.inner.settings.jwks_max_age {
                    if let Some(fresh) = self.refresh_stale().await {
                        return Ok(fresh);
                    }
                }
                return Ok(loaded.set);
            }
        }
        self.refresh_for(kid, alg).await
    }

    /// Refresh because the current keys (if any) do not know the token's key.
    async fn refresh_for(&self, kid: Option<&str>, alg: Alg) -> Result<Arc<KeySet>, AuthError> {
        let mut state = self.inner.refresh.lock().await;
        // Another task may have refreshed while this one waited.
        let loaded = self.loaded();
        if let Some(loaded) = &loaded {
            if loaded.set.knows(kid, alg) {
                return Ok(loaded.set.clone());
            }
        }
        if !self.may_attempt(&state) {
            return match loaded {
                // Keys are fresh as of the last fetch: the token's key is simply unknown.
                Some(loaded) if state.last_ok => Ok(loaded.set),
                // We cannot tell: the last attempt failed.
                _ => Err(AuthError::IdpUnavailable),
            };
        }
        self.fetch_keys(&mut state).await.ok_or(AuthError::IdpUnavailable)
    }

    /// Refresh because the keys are older than `jwks_max_age`. Never waits for another refresh
    /// and keeps the stale keys if the IdP cannot be reached.
    async fn refresh_stale(&self) -> Option<Arc<KeySet>> {
        let mut state = self.inner.refresh.try_lock().ok()?;
        if let Some(loaded) = self.loaded() {
            if loaded.fetched_at.elapsed() < self.inner.settings.jwks_max_age {
                return Some(loaded.set);
            }
        }
        if !self.may_attempt(&state) {
            return None;
        }
        self.fetch_keys(&mut state).await
    }

    fn may_attempt(&self, state: &RefreshState) -> bool {
        state
            .last_attempt
            .is_none_or(|last| last.elapsed() >= self.inner.settings.jwks_min_refresh_interval)
    }

    /// Fetches discovery (if the JWKS location is not known yet) and the JWKS, installs the keys.
    /// Failures are logged here, with their causes; callers only learn that it failed.
    #[tracing::instrument(skip_all, fields(issuer = %self.inner.settings.issuer))]
    async fn fetch_keys(&self, state: &mut RefreshState) -> Option<Arc<KeySet>> {
        state.last_attempt = Some(Instant::now());
        match self.fetch_key_set(state).await {
            Ok(set) => {
                state.last_ok = true;
                let set = Arc::new(set);
                tracing::info!(keys = set.len(), "fetched identity provider keys");
                self.install(Loaded { set: set.clone(), fetched_at: Instant::now() });
                Some(set)
            }
            Err(err) => {
                state.last_ok = false;
                // Discover again next time: the JWKS may have moved.
                state.jwks_uri = None;
                tracing::warn!(
                    error = %Chain(&err),
                    retry_in = ?self.inner.settings.jwks_min_refresh_interval,
                    "cannot fetch identity provider keys"
                );
                None
            }
        }
    }

    async fn fetch_key_set(&self, state: &mut RefreshState) -> Result<KeySet, FetchError> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        self.inner.fetcher.get(&jwks_uri, KeySet::parse).await
    }

    async fn discover(&self) -> Result<Uri, FetchError> {
        let inner = &*self.inner;
        let doc: Discovery = inner.fetcher.get_json(&inner.discovery_url).await?;
        if doc.issuer != inner.settings.issuer {
            return Err(FetchError::IssuerMismatch {
                found: doc.issuer,
                expected: inner.settings.issuer.clone(),
            });
        }
        endpoint_url(&doc.jwks_uri, inner.https_only)
            .ok_or(FetchError::JwksUri { uri: doc.jwks_uri })
    }

    #[cfg(test)]
    fn cached_tokens(&self) -> usize {
        self.inner.cache.len()
    }
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.inner.settings.issuer)
            .field("audiences", &self.inner.settings.audiences)
            .finish_non_exhaustive()
    }
}

/// Unix seconds of `now` (0 before the epoch, saturating far after it).
fn unix_secs(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map(|d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
