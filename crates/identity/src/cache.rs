//! The verified-token cache: SHA-256 digest of the token -> verified claims, until `exp`.
//! Sharded `RwLock`ed maps so that concurrent hits only take read locks; bounded, evicting
//! expired entries first and then arbitrary ones.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{PoisonError, RwLock};

use crate::claims::{Rules, Verified};
use crate::AuthError;

const SHARDS: usize = 16;

/// SHA-256 of a token. Tokens themselves are never kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Digest([u8; 32]);

impl Digest {
    pub(crate) fn of(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    fn shard(&self) -> usize {
        usize::from(self.0[31]) % SHARDS
    }
}

impl Hash for Digest {
    /// The digest is already uniformly distributed: its first 8 bytes are the hash.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(prefix));
    }
}

/// Passes a `Digest`'s precomputed hash through.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than `Digest::hash` feeds this hasher.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type Shard = HashMap<Digest, Verified, BuildHasherDefault<DigestHasher>>;

pub(crate) struct ClaimCache {
    shards: Box<[RwLock<Shard>]>,
    shard_capacity: usize,
}

impl ClaimCache {
    /// A cache of about `capacity` entries (rounded up to a multiple of the shard count);
    /// 0 disables caching.
    pub(crate) fn new(capacity: usize) -> Self {
        let shard_capacity = capacity.div_ceil(SHARDS);
        let shards = (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect();
        Self { shards, shard_capacity }
    }

    fn shard(&self, digest: &Digest) -> &RwLock<Shard> {
        &self.shards[digest.shard()]
    }

    /// The cached outcome for a token at `now` (Unix seconds), or `None` on a miss. A cached
    /// token whose `exp` has passed is removed and reported expired.
    pub(crate) fn get(
        &self,
        digest: &Digest,
        rules: &Rules,
        now: i64,
    ) -> Option<Result<domain::Principal, AuthError>> {
        if self.shard_capacity == 0 {
            return None;
        }
        let outcome = {
            let shard = self.shard(digest).read().unwrap_or_else(PoisonError::into_inner);
            let entry = shard.get(digest)?;
            rules.check_window(entry.exp, entry.nbf, now).map(|()| entry.principal.clone())
        };
        if outcome == Err(AuthError::Expired) {
            self.shard(digest).write().unwrap_or_else(PoisonError::into_inner).remove(digest);
        }
        Some(outcome)
    }

    /// Caches a verified token. A full shard first drops entries expired at `now`, then, if
    /// still full, an arbitrary eighth of its entries (digests are random, so is the choice).
    pub(crate) fn insert(&self, digest: Digest, verified: Verified, rules: &Rules, now: i64) {
        if self.shard_capacity == 0 {
            return;
        }
        let mut shard = self.shard(&digest).write().unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.shard_capacity && !shard.contains_key(&digest) {
            shard.retain(|_, entry| rules.check_window(entry.exp, None, now).is_ok());
            if shard.len() >= self.shard_capacity {
                let target = self.shard_capacity - self.shard_capacity.div_ceil(8);
                let excess = shard.len() - target;
                let victims: Vec<Digest> = shard.keys().take(excess).copied().collect();
                for victim in &victims {
                    shard.remove(victim);
                }
            }
        }
        shard.insert(digest, verified);
    }

    /// Number of cached tokens.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }
}
