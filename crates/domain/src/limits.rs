//! Budgets and rate caps: spend, token and request caps over rolling windows, per user or per
//! group, reserved before a request is forwarded and settled when it completes.
//!
//! Semantics (see also ARCHITECTURE.md):
//! - **Admission.** Global limits are checked first and all that apply must have room (deny
//!   wins). Then, among the policies that allow the request, the one to charge is chosen: an
//!   uncapped policy first, otherwise the one with the most room left after this request (the
//!   smallest remaining fraction over its limits, the larger the better), ties broken by name.
//!   Only that policy's limits (and the global ones) are charged.
//! - **Reservation.** A request is admitted only if, for every charged counter,
//!   `committed + reserved + estimate <= cap`. The estimate is then reserved, so concurrent
//!   requests cannot jointly overrun a cap.
//! - **Settlement.** On completion the reservation is replaced by the actual amount; an upstream
//!   error or refusal releases it. If every estimate bounds its request's actual amount (input
//!   bytes bound input tokens; `max_tokens` bounds output), committed amounts never exceed a cap.
//!   A request that exceeds its estimate overshoots by its excess; requests in flight together
//!   can each add their excess.
//! - **Per user / per group.** A per-user cap is counted for each principal separately; a
//!   per-group cap for the members of each group through which the policy admits the request
//!   (each such group is charged); a principal admitted without a group (by user, agent or
//!   `everyone`) is charged to the policy-wide counter of a per-group cap.
//! - Time is passed in as Unix seconds; nothing here reads a clock.

use std::collections::HashMap;

use crate::{
    policy::{candidates_among, DenyReason, Policy, Source},
    principal::Principal,
    time::format_utc_minute,
    window::RollingWindow,
};

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Micro-dollars.
    Spend,
    Tokens,
    Requests,
}

/// Whom a limit counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Per {
    /// Each principal separately.
    User,
    /// The members of a group together.
    Group,
}

/// One cap over a rolling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    pub metric: Metric,
    pub per: Per,
    pub cap: u64,
    pub window_secs: u64,
}

/// The shortest window a limit may have.
pub const MIN_WINDOW_SECS: u64 = 60;

/// A limit evaluated before policies, aimed at everyone, groups, users or agents.
#[derive(Debug, Clone)]
pub struct GlobalLimit {
    pub name: String,
    pub targets: Vec<Source>,
    pub limit: Limit,
}

/// Policies and global limits, indexed for admission: the policies that can apply to a
/// principal are found through its groups instead of by scanning every policy.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    policies: Vec<Policy>,
    globals: Vec<GlobalLimit>,
    /// Policy indexes by source group.
    by_group: HashMap<String, Vec<usize>>,
    /// Policies with a user, agent or `everyone` source: checked for every principal.
    direct: Vec<usize>,
}

impl Rules {
    pub fn new(mut policies: Vec<Policy>, mut globals: Vec<GlobalLimit>) -> Self {
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        globals.sort_by(|a, b| a.name.cmp(&b.name));
        let mut by_group: HashMap<String, Vec<usize>> = HashMap::new();
        let mut direct = Vec::new();
        for (i, policy) in policies.iter().enumerate() {
            for source in &policy.sources {
                match source {
                    Source::Group(g) => by_group.entry(g.clone()).or_default().push(i),
                    _ => direct.push(i),
                }
            }
        }
        Self { policies, globals, by_group, direct }
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn globals(&self) -> &[GlobalLimit] {
        &self.globals
    }

    /// The policies that let `principal` use `model` on `provider`, by name; or why none does.
    pub fn candidates(
        &self,
        principal: &Principal,
        provider: &str,
        model: Option<&str>,
    ) -> Result<Vec<&Policy>, DenyReason> {
        let mut indexes: Vec<usize> = self.direct.clone();
        for group in &principal.groups {
            if let Some(found) = self.by_group.get(group) {
                indexes.extend_from_slice(found);
            }
        }
        // Policies are sorted by name, so index order is name order.
        indexes.sort_unstable();
        indexes.dedup();
        let subset: Vec<&Policy> = indexes.iter().map(|&i| &self.policies[i]).collect();
        candidates_among(&subset, principal, provider, model)
    }

    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.policies[i])
    }
}

/// Who owns a counter: a global limit or a policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Global(String),
    Policy(String),
}

/// Whose consumption a counter holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// One principal, by kind and name.
    Principal(String),
    Group(String),
    /// Everyone the owner applies to, together.
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CounterKey {
    owner: Owner,
    limit: Limit,
    subject: Subject,
}

/// Counters a request is charged to, with the amount for each.
type Charges = Vec<(CounterKey, u64)>;

#[derive(Debug, Clone)]
struct Counter {
    window: RollingWindow,
    reserved: u64,
}

/// The estimated size of a request, reserved at admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub tokens: u64,
    /// Micro-dollars; `None` when the model has no known price.
    pub spend: Option<u64>,
}

/// What a request actually consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Actual {
    pub tokens: u64,
    pub spend: u64,
    /// Whether the request counts against request-rate caps (false when it was released).
    pub counted: bool,
}

/// What one admission asks for.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub provider: &'a str,
    pub model: Option<&'a str>,
    pub max_tokens: Option<u64>,
    pub estimate: Estimate,
}

/// Identifies a reservation for settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReservationId(u64);

#[derive(Debug, Clone)]
struct Reservation {
    charges: Charges,
}

/// Room left on one charged limit after an admission, for response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headroom {
    pub limit: Limit,
    pub remaining: u64,
}

/// An admitted request.
#[derive(Debug, Clone)]
pub struct Admission {
    pub reservation: ReservationId,
    /// The policy charged for the request.
    pub policy: String,
    /// The groups through which that policy applies (those charged for per-group caps).
    pub groups: Vec<String>,
    pub headroom: Vec<Headroom>,
}

/// A cap that has no room for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    pub owner: Owner,
    pub limit: Limit,
    pub subject: Subject,
    /// Committed plus reserved, before this request.
    pub used: u64,
    /// What this request needed.
    pub requested: u64,
    /// When enough room frees up (Unix seconds), if the committed amounts can free it.
    pub frees_at: Option<u64>,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Policy(DenyReason),
    /// The policy caps `max_tokens` below what the request asks (or the request sets none).
    MaxTokens {
        policy: String,
        cap: u64,
        requested: Option<u64>,
    },
    /// A spend cap applies but the model has no price, so it cannot be enforced.
    PriceUnknown {
        model: String,
    },
    Limit(LimitHit),
}

impl Refusal {
    /// The machine-readable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Policy(reason) => reason.as_str(),
            Refusal::MaxTokens { .. } => "max_tokens_not_allowed",
            Refusal::PriceUnknown { .. } => "model_price_unknown",
            Refusal::Limit(hit) => hit.reason(),
        }
    }

    /// Whether the refusal is about quota (429) rather than permission (403).
    pub fn is_quota(&self) -> bool {
        matches!(self, Refusal::Limit(_))
    }

    /// Seconds until retrying can succeed, for `retry-after`.
    pub fn retry_after(&self, now: u64) -> Option<u64> {
        match self {
            Refusal::Limit(hit) => Some(match hit.frees_at {
                Some(at) => at.saturating_sub(now).max(1),
                // Only in-flight reservations (or the request itself) stand in the way: those
                // settle within seconds, or the request can never fit (then a window away).
                None if hit.requested > hit.limit.cap => hit.limit.window_secs,
                None => 1,
            }),
            _ => None,
        }
    }

    /// A sentence a person understands.
    pub fn message(&self, now: u64) -> String {
        match self {
            Refusal::Policy(DenyReason::NoPolicy) => "no policy allows you to use this provider".into(),
            Refusal::Policy(DenyReason::ModelNotAllowed) => "this model is not allowed for you".into(),
            Refusal::MaxTokens { policy, cap, requested: Some(n) } => format!(
                "max_tokens of {n} is above the limit of {cap} under policy '{policy}'"
            ),
            Refusal::MaxTokens { policy, cap, requested: None } => format!(
                "policy '{policy}' requires max_tokens (at most {cap}); the request sets none"
            ),
            Refusal::PriceUnknown { model } => format!(
                "model '{model}' has no price, so its spend cap cannot be enforced; an admin must set its price"
            ),
            Refusal::Limit(hit) => hit.message(now),
        }
    }
}

impl LimitHit {
    pub fn reason(&self) -> &'static str {
        match self.limit.metric {
            Metric::Spend => "spend_cap_exceeded",
            Metric::Requests => "rate_limited",
            Metric::Tokens if self.limit.window_secs <= MIN_WINDOW_SECS => "rate_limited",
            Metric::Tokens => "token_cap_exceeded",
        }
    }

    fn message(&self, now: u64) -> String {
        let window = window_adjective(self.limit.window_secs);
        let what = match self.limit.metric {
            Metric::Spend => format!("spend cap of {}", usd(self.limit.cap)),
            Metric::Tokens => format!("token cap of {}", self.limit.cap),
            Metric::Requests => format!("request cap of {}", self.limit.cap),
        };
        let whom = match &self.subject {
            Subject::Principal(_) => "for you".to_owned(),
            Subject::Group(g) => format!("for group '{g}'"),
            Subject::All => "for everyone".to_owned(),
        };
        let under = match &self.owner {
            Owner::Policy(p) => format!("under policy '{p}'"),
            Owner::Global(g) => format!("under global limit '{g}'"),
        };
        let left = self.limit.cap.saturating_sub(self.used);
        let left = match self.limit.metric {
            Metric::Spend => format!("{} left", usd(left)),
            _ => format!("{left} left"),
        };
        let needed = match self.limit.metric {
            Metric::Spend => usd(self.requested),
            _ => self.requested.to_string(),
        };
        let when = match (self.frees_at, self.requested > self.limit.cap) {
            (_, true) => format!("this request alone needs {needed}, more than the cap"),
            (Some(at), _) => format!("frees up from {}", format_utc_minute(at.max(now))),
            (None, _) => "other requests in flight hold the rest; retry shortly".to_owned(),
        };
        format!(
            "{window} {what} {whom} {under} reached; {left} (this request needs {needed}), {when}"
        )
    }
}

/// `$500`, `$0.25`, `$0.000123`: dollars from micro-dollars, as short as exact allows.
fn usd(micro: u64) -> String {
    let dollars = micro / 1_000_000;
    let frac = micro % 1_000_000;
    if frac == 0 {
        format!("${dollars}")
    } else if frac.is_multiple_of(10_000) {
        format!("${dollars}.{:02}", frac / 10_000)
    } else {
        format!("${dollars}.{frac:06}")
    }
}

fn window_adjective(secs: u64) -> String {
    match secs {
        60 => "per-minute".into(),
        3_600 => "hourly".into(),
        86_400 => "daily".into(),
        604_800 => "weekly".into(),
        2_592_000 => "monthly".into(),
        s if s.is_multiple_of(86_400) => format!("{}-day", s / 86_400),
        s if s.is_multiple_of(3_600) => format!("{}-hour", s / 3_600),
        s if s.is_multiple_of(60) => format!("{}-minute", s / 60),
        s => format!("{s}-second"),
    }
}

/// The in-memory state of every counter and in-flight reservation.
#[derive(Debug, Default)]
pub struct Ledger {
    counters: HashMap<CounterKey, Counter>,
    reservations: HashMap<ReservationId, Reservation>,
    next: u64,
}

/// The counters a request would charge for one owner's limits, with the amounts.
fn charges_for(
    owner: &Owner,
    limits: &[Limit],
    principal: &Principal,
    groups: &[String],
    estimate: &Estimate,
    model: Option<&str>,
) -> Result<Charges, Refusal> {
    let mut out = Vec::new();
    for limit in limits {
        let amount = match limit.metric {
            Metric::Requests => 1,
            Metric::Tokens => estimate.tokens,
            Metric::Spend => match estimate.spend {
                Some(spend) => spend,
                None => {
                    return Err(Refusal::PriceUnknown {
                        model: model.unwrap_or_default().to_owned(),
                    })
                }
            },
        };
        let subjects: Vec<Subject> = match limit.per {
            Per::User => vec![principal_subject(principal)],
            Per::Group if groups.is_empty() => vec![Subject::All],
            Per::Group => groups.iter().cloned().map(Subject::Group).collect(),
        };
        for subject in subjects {
            out.push((CounterKey { owner: owner.clone(), limit: *limit, subject }, amount));
        }
    }
    Ok(out)
}

fn principal_subject(principal: &Principal) -> Subject {
    Subject::Principal(format!("{}:{}", principal.kind.as_str(), principal.name))
}

/// The groups of `principal` through which a global limit applies.
fn global_groups(global: &GlobalLimit, principal: &Principal) -> Option<Vec<String>> {
    if !global.targets.iter().any(|t| t.admits(principal)) {
        return None;
    }
    Some(
        principal
            .groups
            .iter()
            .filter(|g| global.targets.iter().any(|t| matches!(t, Source::Group(x) if x == *g)))
            .cloned()
            .collect(),
    )
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    fn used(&mut self, key: &CounterKey, now: u64) -> u64 {
        match self.counters.get_mut(key) {
            Some(c) => c.window.sum(now).saturating_add(c.reserved),
            None => 0,
        }
    }

    /// The first charge without room, if any.
    /// The charge without room that frees up last (the one the caller must wait for), if any.
    /// Which limit is reported does not depend on the order the limits were written in.
    fn check(&mut self, charges: &[(CounterKey, u64)], now: u64) -> Option<LimitHit> {
        let mut worst: Option<LimitHit> = None;
        for (key, amount) in charges {
            let used = self.used(key, now);
            if used.saturating_add(*amount) <= key.limit.cap {
                continue;
            }
            let needed = used.saturating_add(*amount) - key.limit.cap;
            let frees_at = self.counters.get(key).and_then(|c| {
                (*amount <= key.limit.cap).then(|| c.window.frees_at(now, needed)).flatten()
            });
            let hit = LimitHit {
                owner: key.owner.clone(),
                limit: key.limit,
                subject: key.subject.clone(),
                used,
                requested: *amount,
                frees_at,
            };
            if worst.as_ref().is_none_or(|w| hit_rank(&hit) > hit_rank(w)) {
                worst = Some(hit);
            }
        }
        worst
    }

    /// The smallest fraction of a cap left after the charges (1.0 when uncapped).
    fn room(&mut self, charges: &[(CounterKey, u64)], now: u64) -> f64 {
        charges
            .iter()
            .map(|(key, amount)| {
                let left =
                    key.limit.cap.saturating_sub(self.used(key, now).saturating_add(*amount));
                left as f64 / key.limit.cap.max(1) as f64
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// Decides whether `request` may go ahead and, if so, reserves its estimate.
    pub fn admit(
        &mut self,
        now: u64,
        rules: &Rules,
        request: &Request<'_>,
    ) -> Result<Admission, Refusal> {
        let principal = request.principal;
        let allowing = rules
            .candidates(principal, request.provider, request.model)
            .map_err(Refusal::Policy)?;

        let mut global_charges = Vec::new();
        for global in &rules.globals {
            if let Some(groups) = global_groups(global, principal) {
                let owner = Owner::Global(global.name.clone());
                global_charges.extend(charges_for(
                    &owner,
                    std::slice::from_ref(&global.limit),
                    principal,
                    &groups,
                    &request.estimate,
                    request.model,
                )?);
            }
        }
        if let Some(hit) = self.check(&global_charges, now) {
            return Err(Refusal::Limit(hit));
        }

        // (room, policy, groups, charges) of each policy that could take the request.
        let mut feasible: Vec<(f64, &Policy, Vec<String>, Charges)> = Vec::new();
        let mut refusals: Vec<Refusal> = Vec::new();
        for policy in allowing {
            if let Some(cap) = policy.max_tokens {
                if request.max_tokens.is_none_or(|n| n > cap) {
                    refusals.push(Refusal::MaxTokens {
                        policy: policy.name.clone(),
                        cap,
                        requested: request.max_tokens,
                    });
                    continue;
                }
            }
            let groups = policy.authorizing_groups(principal);
            let owner = Owner::Policy(policy.name.clone());
            let charges = match charges_for(
                &owner,
                &policy.limits,
                principal,
                &groups,
                &request.estimate,
                request.model,
            ) {
                Ok(charges) => charges,
                Err(refusal) => {
                    refusals.push(refusal);
                    continue;
                }
            };
            if let Some(hit) = self.check(&charges, now) {
                refusals.push(Refusal::Limit(hit));
                continue;
            }
            let room = self.room(&charges, now);
            feasible.push((room, policy, groups, charges));
        }

        // Most room first (uncapped is infinite room); `candidates` sorted by name, and a
        // stable sort keeps that order among equals.
        feasible.sort_by(|a, b| b.0.total_cmp(&a.0));
        let Some((_, policy, groups, charges)) = feasible.into_iter().next() else {
            return Err(best_refusal(refusals, now));
        };
        let mut all = global_charges;
        all.extend(charges);
        let headroom = all
            .iter()
            .map(|(key, amount)| Headroom {
                limit: key.limit,
                remaining: key
                    .limit
                    .cap
                    .saturating_sub(self.used(key, now).saturating_add(*amount)),
            })
            .collect();
        for (key, amount) in &all {
            let counter = self.counters.entry(key.clone()).or_insert_with(|| Counter {
                window: RollingWindow::new(key.limit.window_secs),
                reserved: 0,
            });
            counter.reserved = counter.reserved.saturating_add(*amount);
        }
        self.next += 1;
        let id = ReservationId(self.next);
        self.reservations.insert(id, Reservation { charges: all });
        Ok(Admission { reservation: id, policy: policy.name.clone(), groups, headroom })
    }

    /// Replaces a reservation by what the request actually consumed.
    pub fn settle(&mut self, now: u64, id: ReservationId, actual: Actual) {
        let Some(reservation) = self.reservations.remove(&id) else {
            return;
        };
        for (key, reserved) in reservation.charges {
            let amount = match key.limit.metric {
                Metric::Spend => actual.spend,
                Metric::Tokens => actual.tokens,
                Metric::Requests => u64::from(actual.counted),
            };
            if let Some(counter) = self.counters.get_mut(&key) {
                counter.reserved = counter.reserved.saturating_sub(reserved);
                counter.window.add(now, amount);
            }
        }
    }

    /// Gives a reservation back unused (the upstream refused or failed).
    pub fn release(&mut self, now: u64, id: ReservationId) {
        self.settle(now, id, Actual::default());
    }

    /// Adds a completed request charged to `policy` at time `at`, without admission checks:
    /// how counters are rebuilt from usage records after a restart.
    pub fn replay(
        &mut self,
        at: u64,
        rules: &Rules,
        principal: &Principal,
        policy: Option<&str>,
        actual: Actual,
    ) {
        let estimate = Estimate { tokens: 0, spend: Some(0) };
        let mut charges = Vec::new();
        for global in &rules.globals {
            if let Some(groups) = global_groups(global, principal) {
                let owner = Owner::Global(global.name.clone());
                charges.extend(
                    charges_for(
                        &owner,
                        std::slice::from_ref(&global.limit),
                        principal,
                        &groups,
                        &estimate,
                        None,
                    )
                    .unwrap_or_default(),
                );
            }
        }
        if let Some(policy) = policy.and_then(|name| rules.policy(name)) {
            let owner = Owner::Policy(policy.name.clone());
            let groups = policy.authorizing_groups(principal);
            charges.extend(
                charges_for(&owner, &policy.limits, principal, &groups, &estimate, None)
                    .unwrap_or_default(),
            );
        }
        for (key, _) in charges {
            let amount = match key.limit.metric {
                Metric::Spend => actual.spend,
                Metric::Tokens => actual.tokens,
                Metric::Requests => u64::from(actual.counted),
            };
            let window = key.limit.window_secs;
            self.counters
                .entry(key)
                .or_insert_with(|| Counter { window: RollingWindow::new(window), reserved: 0 })
                .window
                .add(at, amount);
        }
    }

    /// Drops counters with nothing in their window and nothing reserved.
    pub fn collect_garbage(&mut self, now: u64) {
        self.counters.retain(|_, c| c.reserved > 0 || c.window.sum(now) > 0);
    }

    /// Counters held (for metrics and tests).
    pub fn counter_count(&self) -> usize {
        self.counters.len()
    }

    /// Reservations in flight.
    pub fn in_flight(&self) -> usize {
        self.reservations.len()
    }

    /// The committed amount of one counter (for tests and self-service views).
    pub fn committed(&mut self, now: u64, owner: &Owner, limit: Limit, subject: &Subject) -> u64 {
        let key = CounterKey { owner: owner.clone(), limit, subject: subject.clone() };
        self.counters.get_mut(&key).map(|c| c.window.sum(now)).unwrap_or(0)
    }

    /// Committed plus reserved for one counter.
    pub fn used_by(&mut self, now: u64, owner: &Owner, limit: Limit, subject: &Subject) -> u64 {
        let key = CounterKey { owner: owner.clone(), limit, subject: subject.clone() };
        self.used(&key, now)
    }
}

/// Where a principal stands against one of the limits that apply to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitStatus {
    pub owner: Owner,
    pub limit: Limit,
    pub subject: Subject,
    /// Committed plus reserved.
    pub used: u64,
    pub remaining: u64,
}

impl Ledger {
    /// Every limit that applies to `principal` (global limits that target them, limits of the
    /// policies that name them as a source) with its current use: the self-service view.
    pub fn status(&mut self, now: u64, rules: &Rules, principal: &Principal) -> Vec<LimitStatus> {
        let zero = Estimate { tokens: 0, spend: Some(0) };
        let mut charges = Vec::new();
        for global in &rules.globals {
            if let Some(groups) = global_groups(global, principal) {
                let owner = Owner::Global(global.name.clone());
                let limits = std::slice::from_ref(&global.limit);
                charges.extend(
                    charges_for(&owner, limits, principal, &groups, &zero, None)
                        .unwrap_or_default(),
                );
            }
        }
        for policy in
            rules.policies.iter().filter(|p| p.sources.iter().any(|s| s.admits(principal)))
        {
            let owner = Owner::Policy(policy.name.clone());
            let groups = policy.authorizing_groups(principal);
            charges.extend(
                charges_for(&owner, &policy.limits, principal, &groups, &zero, None)
                    .unwrap_or_default(),
            );
        }
        charges
            .into_iter()
            .map(|(key, _)| {
                let used = self.used(&key, now);
                LimitStatus {
                    remaining: key.limit.cap.saturating_sub(used),
                    used,
                    owner: key.owner,
                    limit: key.limit,
                    subject: key.subject,
                }
            })
            .collect()
    }
}

/// Orders hits for reporting: never-freeing first, then the latest to free; ties by owner and
/// limit, so the report does not depend on the order limits were written in.
fn hit_rank(h: &LimitHit) -> (bool, Option<u64>, u8, &str, u64, u64) {
    let (kind, name) = match &h.owner {
        Owner::Global(name) => (0, name.as_str()),
        Owner::Policy(name) => (1, name.as_str()),
    };
    (h.frees_at.is_none(), h.frees_at, kind, name, h.limit.window_secs, h.limit.cap)
}

/// The refusal to report when no policy could take a request: a quota refusal that frees up
/// soonest, else the first in policy-name order.
fn best_refusal(refusals: Vec<Refusal>, now: u64) -> Refusal {
    let soonest = refusals
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_quota())
        .min_by_key(|(i, r)| (r.retry_after(now).unwrap_or(u64::MAX), *i))
        .map(|(i, _)| i);
    match soonest {
        Some(i) => refusals.into_iter().nth(i).unwrap_or(Refusal::Policy(DenyReason::NoPolicy)),
        None => refusals.into_iter().next().unwrap_or(Refusal::Policy(DenyReason::NoPolicy)),
    }
}

/// The subject key of a principal, as counters and self-service views name it.
pub fn subject_of(principal: &Principal) -> Subject {
    principal_subject(principal)
}

#[cfg(test)]
mod tests;
