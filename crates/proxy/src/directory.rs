//! The directory: group memberships and active flags provisioned by SCIM, the source of truth for
//! people's groups when SCIM is on (instead of the token's groups claim). It is an in-memory
//! snapshot that SCIM changes replace atomically, so a change applies to the very next request;
//! installing it also cuts the in-flight streams of people who lost access.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

use domain::{Principal, PrincipalKind};
use tokio_util::sync::CancellationToken;

/// One provisioned person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub user_name: String,
    pub emails: Vec<String>,
    pub active: bool,
    /// Group display names.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    active: bool,
    groups: Vec<String>,
}

/// Memberships by lower-cased user name and email.
#[derive(Debug, Default)]
pub struct Directory {
    /// Off: tokens' groups claims are used as they are.
    enabled: bool,
    by_name: HashMap<String, Entry>,
}

/// What the directory says about a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Standing {
    /// SCIM is off: keep the token's groups.
    Unmanaged,
    /// Provisioned and active, with these groups (sorted).
    Active(Vec<String>),
    /// Provisioned and deactivated.
    Deactivated,
    /// SCIM is on but this person is not provisioned: no groups.
    Unknown,
}

impl Directory {
    pub fn new(enabled: bool, users: impl IntoIterator<Item = DirectoryUser>) -> Self {
        let mut by_name = HashMap::new();
        for user in users {
            let mut groups = user.groups;
            groups.sort();
            groups.dedup();
            let entry = Entry { active: user.active, groups };
            for name in std::iter::once(&user.user_name).chain(user.emails.iter()) {
                by_name.insert(name.to_lowercase(), entry.clone());
            }
        }
        Self { enabled, by_name }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn standing(&self, principal: &Principal) -> Standing {
        if !self.enabled || principal.kind != PrincipalKind::User {
            return Standing::Unmanaged;
        }
        match self.by_name.get(&principal.name.to_lowercase()) {
            Some(entry) if entry.active => Standing::Active(entry.groups.clone()),
            Some(_) => Standing::Deactivated,
            None => Standing::Unknown,
        }
    }

    /// `principal` with its groups as the directory has them; `None` when deactivated.
    pub(crate) fn apply(&self, mut principal: Principal) -> Option<Principal> {
        match self.standing(&principal) {
            Standing::Unmanaged => Some(principal),
            Standing::Active(groups) => {
                principal.groups = groups;
                Some(principal)
            }
            Standing::Unknown => {
                principal.groups.clear();
                Some(principal)
            }
            Standing::Deactivated => None,
        }
    }
}

/// A forwarded request whose response is still streaming.
pub(crate) struct InFlight {
    pub(crate) principal: Principal,
    pub(crate) provider: String,
    pub(crate) model: Option<String>,
    pub(crate) policy: String,
    pub(crate) cancel: CancellationToken,
}

/// The streams in flight, so that losing access can cut them.
#[derive(Default)]
pub(crate) struct InFlightRegistry {
    next: AtomicU64,
    streams: Mutex<HashMap<u64, InFlight>>,
}

impl InFlightRegistry {
    pub(crate) fn register(&self, stream: InFlight) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, stream);
        id
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Cuts every stream for which `still_allowed` says no; returns how many were cut.
    pub(crate) fn cut_unless(&self, mut still_allowed: impl FnMut(&InFlight) -> bool) -> usize {
        let mut cut = 0;
        for stream in self.lock().values() {
            if !stream.cancel.is_cancelled() && !still_allowed(stream) {
                stream.cancel.cancel();
                cut += 1;
            }
        }
        cut
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, InFlight>> {
        self.streams.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
