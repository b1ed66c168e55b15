//! `SessionTable`: the data plane's view of the sessions agentnet issued, keyed by the SHA-256
//! of their access token. Verifying a request is a hash and a read-locked map lookup; a
//! revocation or a refresh takes effect on the very next request.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{AuthError, TokenDigest};

/// One live session, as the data plane needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// The session's stable id (what revocation names).
    pub session_id: String,
    /// Who the session's holder is.
    pub principal: domain::Principal,
    /// When the access token stops being accepted (Unix milliseconds).
    pub expires_at_ms: i64,
}

/// The live access tokens by digest. `Send + Sync`; share it in an `Arc`.
///
/// Invariant: each session has at most one live access token, and the two maps always describe
/// the same set of sessions.
#[derive(Default)]
pub struct SessionTable {
    maps: RwLock<Maps>,
}

#[derive(Default)]
struct Maps {
    by_digest: HashMap<TokenDigest, SessionEntry>,
    by_session: HashMap<String, TokenDigest>,
}

impl Maps {
    fn insert(&mut self, digest: TokenDigest, entry: SessionEntry) {
        // The session's previous access token goes (rotation on refresh).
        if let Some(old) = self.by_session.insert(entry.session_id.clone(), digest) {
            if old != digest {
                self.by_digest.remove(&old);
            }
        }
        // The same digest under another session id: that other session is replaced.
        let session_id = entry.session_id.clone();
        if let Some(previous) = self.by_digest.insert(digest, entry) {
            if previous.session_id != session_id {
                self.by_session.remove(&previous.session_id);
            }
        }
    }

    fn remove_session(&mut self, session_id: &str) -> bool {
        match self.by_session.remove(session_id) {
            Some(digest) => {
                self.by_digest.remove(&digest);
                true
            }
            None => false,
        }
    }

    /// Removes every entry for which `pred` holds; returns their session ids.
    fn remove_where(&mut self, pred: impl Fn(&SessionEntry) -> bool) -> Vec<String> {
        let mut removed = Vec::new();
        let by_session = &mut self.by_session;
        self.by_digest.retain(|_, entry| {
            if pred(entry) {
                by_session.remove(&entry.session_id);
                removed.push(entry.session_id.clone());
                false
            } else {
                true
            }
        });
        removed
    }
}

impl SessionTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Maps> {
        // A panicking writer cannot leave the maps half-updated in a way that matters more
        // than refusing every request would: keep serving.
        self.maps.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Installs the access token of a session. A session has one live access token: a
    /// previous one of the same `session_id` is removed (rotation on refresh).
    pub fn insert(&self, digest: TokenDigest, entry: SessionEntry) {
        self.write().insert(digest, entry);
    }

    /// Replaces the whole table (start-up load). Of several entries of one session, the last
    /// one wins, as with successive [`SessionTable::insert`]s.
    pub fn replace_all(&self, entries: impl IntoIterator<Item = (TokenDigest, SessionEntry)>) {
        let mut maps = Maps::default();
        for (digest, entry) in entries {
            maps.insert(digest, entry);
        }
        *self.write() = maps;
    }

    /// Ends a session: its access token is refused from now on. False if it was not live.
    pub fn revoke(&self, session_id: &str) -> bool {
        self.write().remove_session(session_id)
    }

    /// The ids of the sessions with a live access token.
    pub fn session_ids(&self) -> Vec<String> {
        self.read().by_session.keys().cloned().collect()
    }

    /// Removes every session for which `pred` holds; returns their ids. `pred` runs under the
    /// table's write lock: keep it quick, and do not touch the table from it.
    pub fn revoke_where(&self, pred: impl Fn(&SessionEntry) -> bool) -> Vec<String> {
        self.write().remove_where(pred)
    }

    /// Updates the principal (e.g. groups) of every entry for which `f` returns
    /// `Some(new principal)`; returns how many. `f` runs under the table's write lock.
    pub fn update_principals(
        &self,
        f: impl Fn(&SessionEntry) -> Option<domain::Principal>,
    ) -> usize {
        let mut maps = self.write();
        let mut updated = 0;
        for entry in maps.by_digest.values_mut() {
            if let Some(principal) = f(entry) {
                entry.principal = principal;
                updated += 1;
            }
        }
        updated
    }

    /// The session of access token `token` at `now_ms` (Unix milliseconds).
    ///
    /// Unknown (never issued, revoked, rotated away) is [`AuthError::SessionUnknown`]; expired
    /// (`now_ms >= expires_at_ms`) is [`AuthError::Expired`], and the entry is dropped. An
    /// empty token is [`AuthError::Missing`].
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<SessionEntry, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let digest = TokenDigest::of(token);
        {
            let maps = self.read();
            let entry = maps.by_digest.get(&digest).ok_or(AuthError::SessionUnknown)?;
            if now_ms < entry.expires_at_ms {
                return Ok(entry.clone());
            }
        }
        let mut maps = self.write();
        // Re-check: the session may have been refreshed or revoked meanwhile.
        let expired = match maps.by_digest.get(&digest) {
            Some(entry) if now_ms < entry.expires_at_ms => return Ok(entry.clone()),
            Some(entry) => entry.session_id.clone(),
            None => return Err(AuthError::SessionUnknown),
        };
        maps.remove_session(&expired);
        Err(AuthError::Expired)
    }

    /// Number of live access tokens (= sessions).
    pub fn len(&self) -> usize {
        self.read().by_digest.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.read().by_digest.is_empty()
    }

    /// Drops the entries expired at `now_ms`; returns how many.
    pub fn prune(&self, now_ms: i64) -> usize {
        self.write().remove_where(|entry| now_ms >= entry.expires_at_ms).len()
    }
}

impl std::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTable").field("sessions", &self.len()).finish()
    }
}
