//! Budgets and rate caps in the data plane: the domain's `Ledger` behind one lock, estimates
//! made from the request's facts, reservations held by RAII guards (so a request that fails
//! anywhere after admission gives its reservation back), and the headroom headers.
//!
//! One mutex guards the whole ledger: an admission checks and reserves every counter it touches
//! atomically (per-user, per-group and global at once), which sharding would make much harder;
//! the critical section is a few map lookups (measured in the budget benchmark).

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use domain::{
    Actual, Endpoint, Estimate, Headroom, Ledger, Metric, Price, Principal, PrincipalKind,
    ReservationId,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use llm::RequestFacts;
use store::UsageRecord;

use crate::snapshot::Snapshot;

/// What a request without `max_tokens` is assumed to produce, for its reservation. Not a bound:
/// such a request can exceed its estimate (see ARCHITECTURE.md, "Budgets").
pub const DEFAULT_OUTPUT_ESTIMATE: u64 = 4_096;

/// Unix seconds, the ledger's clock.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) type SharedLedger = Arc<Mutex<Ledger>>;

pub(crate) fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    // The ledger's invariants hold between operations, so a panic elsewhere does not leave it
    // inconsistent: keep serving rather than fail every request after one bug.
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The reservation of an admitted request. Dropped without settling, it is released.
pub(crate) struct Hold {
    ledger: SharedLedger,
    id: ReservationId,
    open: bool,
}

impl Hold {
    pub(crate) fn new(ledger: SharedLedger, id: ReservationId) -> Self {
        Self { ledger, id, open: true }
    }

    /// Replaces the reservation by what was consumed (or releases it when nothing counts).
    pub(crate) fn settle(mut self, actual: Actual) {
        self.open = false;
        lock(&self.ledger).settle(now_secs(), self.id, actual);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.open {
            lock(&self.ledger).release(now_secs(), self.id);
        }
    }
}

/// The reservation for a request: input bytes bound its input tokens (a token is at least one
/// byte of the body), `max_tokens` bounds its output.
pub(crate) fn estimate(facts: &RequestFacts, endpoint: Endpoint, price: Option<Price>) -> Estimate {
    let input = facts.input_bytes as u64;
    let output = match endpoint {
        Endpoint::Embeddings => 0,
        _ => facts.max_tokens.unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
    };
    Estimate {
        tokens: input.saturating_add(output),
        spend: price.map(|p| u64::try_from(p.bound(input, output).0).unwrap_or(u64::MAX)),
    }
}

/// Response headers telling the caller how much room is left.
pub(crate) fn headroom_headers(headroom: &[Headroom], policy: &str, headers: &mut HeaderMap) {
    let tightest = |metric: Metric| {
        headroom.iter().filter(|h| h.limit.metric == metric).min_by_key(|h| h.remaining)
    };
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("x-agentnet-policy", policy.to_owned());
    if let Some(h) = tightest(Metric::Spend) {
        put("x-agentnet-budget-remaining-usd", format!("{:.6}", h.remaining as f64 / 1e6));
    }
    if let Some(h) = tightest(Metric::Requests) {
        put("x-ratelimit-limit-requests", h.limit.cap.to_string());
        put("x-ratelimit-remaining-requests", h.remaining.to_string());
    }
    if let Some(h) = tightest(Metric::Tokens) {
        put("x-ratelimit-limit-tokens", h.limit.cap.to_string());
        put("x-ratelimit-remaining-tokens", h.remaining.to_string());
    }
}

/// What a settled request consumed, from its usage record.
pub(crate) fn actual(record: &UsageRecord) -> Actual {
    let tokens = record.input_tokens
        + record.output_tokens
        + record.cache_creation_tokens
        + record.cache_read_tokens;
    Actual {
        tokens: u64::try_from(tokens).unwrap_or(0),
        spend: record.cost_micro_usd.and_then(|c| u64::try_from(c).ok()).unwrap_or(0),
        counted: (200..300).contains(&record.status),
    }
}

/// A ledger rebuilt from the usage records of the longest window: how counters survive a
/// restart. The records are the durable truth; the ledger is their in-memory index.
pub(crate) fn rebuild(snapshot: &Snapshot, history: &[UsageRecord]) -> Ledger {
    let mut ledger = Ledger::new();
    for record in history {
        let (Some(kind), Some(name)) = (&record.principal_kind, &record.principal) else {
            continue;
        };
        let kind = if kind == "agent" { PrincipalKind::Agent } else { PrincipalKind::User };
        let principal = Principal {
            kind,
            subject: record.subject.clone().unwrap_or_default(),
            name: name.clone(),
            groups: record.groups.clone(),
        };
        let at = u64::try_from(record.at_ms / 1000).unwrap_or(0);
        ledger.replay(at, &snapshot.rules, &principal, record.policy.as_deref(), actual(record));
    }
    ledger
}
