//! Online password guessing, slowed per login: after [`MAX_FAILURES`] wrong passwords for one
//! login within [`WINDOW`], further attempts for that login are refused without checking the
//! password until the window has passed since the first failure. Per login rather than per
//! flow, because flows are free to start. A success clears the count.
//!
//! The map is bounded ([`MAX_TRACKED`]): when full, expired entries go first; if it is still
//! full, the oldest entry is dropped (an attacker spraying many logins can only make the
//! throttle forget, never lock anyone else out).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Wrong passwords tolerated per login within [`WINDOW`].
pub(crate) const MAX_FAILURES: u32 = 10;
/// How long failures count, from the first one.
pub(crate) const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Logins tracked at most.
const MAX_TRACKED: usize = 10_000;

#[derive(Default)]
pub(crate) struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    fn key(login: &str) -> String {
        login.trim().to_lowercase()
    }

    /// Whether `login` may try a password now.
    pub(crate) fn allows(&self, login: &str, now: Instant) -> bool {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match failures.get(&Self::key(login)) {
            Some((count, since)) => *count < MAX_FAILURES || now.duration_since(*since) >= WINDOW,
            None => true,
        }
    }

    pub(crate) fn failed(&self, login: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if failures.len() >= MAX_TRACKED {
                let oldest =
                    failures.iter().min_by_key(|(_, (_, since))| *since).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(Self::key(login)).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub(crate) fn succeeded(&self, login: &str) {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).remove(&Self::key(login));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_refused_after_too_many_failures_until_the_window_passes() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(throttle.allows("Alice", t0));
            throttle.failed("alice", t0);
        }
        assert!(!throttle.allows("ALICE ", t0 + Duration::from_secs(60)));
        assert!(throttle.allows("bob", t0), "others are not affected");
        assert!(throttle.allows("alice", t0 + WINDOW));
        throttle.failed("alice", t0 + WINDOW);
        assert!(throttle.allows("alice", t0 + WINDOW), "a new window starts");
    }

    #[test]
    fn success_clears_the_count_and_the_map_stays_bounded() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed("carol", t0);
        }
        throttle.succeeded("carol");
        throttle.failed("carol", t0);
        assert!(throttle.allows("carol", t0));
        for i in 0..MAX_TRACKED + 10 {
            throttle.failed(&format!("user{i}"), t0);
        }
        assert!(throttle.failures.lock().unwrap().len() <= MAX_TRACKED);
    }
}
