//! `OidcSettings`: which IdP to trust, which audiences are ours, where groups live, and the
//! timing of key refreshes and the claims cache.

use std::time::Duration;

/// Settings of a [`crate::TokenVerifier`]. Build with [`OidcSettings::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer, exactly as tokens and the discovery document spell it.
    pub issuer: String,
    /// A token is accepted if its `aud` names any of these.
    pub audiences: Vec<String>,
    /// Claim holding the groups (array of strings or one string). A dotted path such as
    /// `realm_access.roles` walks into objects; a top-level claim of that exact name wins.
    pub groups_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Minimum time between two JWKS (or discovery) fetches, whatever tokens arrive.
    pub jwks_min_refresh_interval: Duration,
    /// Keys older than this are refetched on the next verification (stale keys stay in use if
    /// the IdP cannot be reached).
    pub jwks_max_age: Duration,
    /// Bound on the number of cached verified tokens (0 disables the cache).
    pub cache_capacity: usize,
}

impl OidcSettings {
    /// Default claim holding groups.
    pub const DEFAULT_GROUPS_CLAIM: &'static str = "groups";
    /// Default clock skew tolerance.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
    /// Default minimum time between key fetches.
    pub const DEFAULT_JWKS_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
    /// Default maximum age of fetched keys.
    pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
    /// Default bound of the verified-token cache.
    pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

    /// Settings for `issuer` and `audiences`, everything else at its default.
    pub fn new<I, S>(issuer: impl Into<String>, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            issuer: issuer.into(),
            audiences: audiences.into_iter().map(Into::into).collect(),
            groups_claim: Self::DEFAULT_GROUPS_CLAIM.into(),
            leeway: Self::DEFAULT_LEEWAY,
            jwks_min_refresh_interval: Self::DEFAULT_JWKS_MIN_REFRESH_INTERVAL,
            jwks_max_age: Self::DEFAULT_JWKS_MAX_AGE,
            cache_capacity: Self::DEFAULT_CACHE_CAPACITY,
        }
    }
}
