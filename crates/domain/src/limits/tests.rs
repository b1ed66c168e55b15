//! Tests for admission, reservation and settlement, including property tests over arbitrary
//! interleavings.

use proptest::prelude::*;

use super::*;
use crate::ModelPattern;

const NOW: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn spend(per: Per, cap_usd_micro: u64, window_secs: u64) -> Limit {
    Limit { metric: Metric::Spend, per, cap: cap_usd_micro, window_secs }
}

fn policy(name: &str, groups: &[&str], limits: Vec<Limit>) -> Policy {
    Policy {
        name: name.into(),
        sources: groups.iter().map(|g| Source::Group(g.to_string())).collect(),
        providers: vec!["anthropic".into()],
        models: vec![],
        max_tokens: None,
        limits,
    }
}

fn rules(policies: &[Policy], globals: &[GlobalLimit]) -> Rules {
    Rules::new(policies.to_vec(), globals.to_vec())
}

fn user(name: &str, groups: &[&str]) -> Principal {
    Principal::user(name, name, groups.iter().map(|g| g.to_string()).collect())
}

fn request<'a>(principal: &'a Principal, spend: u64, tokens: u64) -> Request<'a> {
    Request {
        principal,
        provider: "anthropic",
        model: Some("claude-sonnet-4-5"),
        max_tokens: Some(1024),
        estimate: Estimate { tokens, spend: Some(spend) },
    }
}

#[test]
fn reservations_stop_concurrent_overrun() {
    let policies = vec![policy("eng", &["eng"], vec![spend(Per::User, 1_000_000, 30 * DAY)])];
    let alice = user("alice", &["eng"]);
    let mut ledger = Ledger::new();
    let mut admitted = Vec::new();
    for _ in 0..20 {
        if let Ok(a) = ledger.admit(NOW, &rules(&policies, &[]), &request(&alice, 100_000, 10)) {
            admitted.push(a.reservation);
        }
    }
    assert_eq!(admitted.len(), 10, "ten reservations of $0.10 fill a $1 cap");
    let refusal =
        ledger.admit(NOW, &rules(&policies, &[]), &request(&alice, 100_000, 10)).unwrap_err();
    assert_eq!(refusal.reason(), "spend_cap_exceeded");
    // In-flight reservations are what blocks: a short retry.
    assert_eq!(refusal.retry_after(NOW), Some(1));

    // Settling below the estimate frees room; releasing frees all of it.
    ledger.settle(NOW, admitted[0], Actual { spend: 40_000, tokens: 5, counted: true });
    ledger.release(NOW, admitted[1]);
    let owner = Owner::Policy("eng".into());
    let subject = subject_of(&alice);
    assert_eq!(ledger.committed(NOW, &owner, policies[0].limits[0], &subject), 40_000);
    assert_eq!(ledger.used_by(NOW, &owner, policies[0].limits[0], &subject), 40_000 + 8 * 100_000);
    assert!(ledger.admit(NOW, &rules(&policies, &[]), &request(&alice, 100_000, 10)).is_ok());
}

#[test]
fn retry_after_is_when_the_window_frees_enough() {
    let limit = spend(Per::User, 1_000_000, 30 * DAY);
    let policies = vec![policy("engineering", &["eng"], vec![limit])];
    let alice = user("alice@example.com", &["eng"]);
    let mut ledger = Ledger::new();
    let a = ledger.admit(NOW, &rules(&policies, &[]), &request(&alice, 600_000, 1)).unwrap();
    ledger.settle(NOW, a.reservation, Actual { spend: 600_000, tokens: 1, counted: true });
    let later = NOW + DAY;
    let b = ledger.admit(later, &rules(&policies, &[]), &request(&alice, 400_000, 1)).unwrap();
    ledger.settle(later, b.reservation, Actual { spend: 400_000, tokens: 1, counted: true });

    let refusal =
        ledger.admit(later + 10, &rules(&policies, &[]), &request(&alice, 500_000, 1)).unwrap_err();
    let Refusal::Limit(hit) = &refusal else { panic!("{refusal:?}") };
    // The first $0.60 leaves when its 3-hour bucket ends plus 30 days.
    let width = 30 * DAY / 240;
    assert_eq!(hit.frees_at, Some((NOW / width + 1) * width + 30 * DAY));
    assert_eq!(refusal.retry_after(later + 10), Some(hit.frees_at.unwrap() - later - 10));
    let message = refusal.message(later + 10);
    assert!(
        message.starts_with(
            "monthly spend cap of $1 for you under policy 'engineering' reached; $0 left"
        ),
        "{message}"
    );
    assert!(message.contains("frees up from 20"), "{message}");
}

#[test]
fn group_cap_is_shared_by_members() {
    let policies = vec![policy("eng", &["eng"], vec![spend(Per::Group, 500_000, DAY)])];
    let (a, b) = (user("a", &["eng"]), user("b", &["eng"]));
    let mut ledger = Ledger::new();
    for p in [&a, &b, &a, &b, &a] {
        ledger.admit(NOW, &rules(&policies, &[]), &request(p, 100_000, 1)).unwrap();
    }
    let refusal = ledger.admit(NOW, &rules(&policies, &[]), &request(&b, 100_000, 1)).unwrap_err();
    let Refusal::Limit(hit) = refusal else { panic!() };
    assert_eq!(hit.subject, Subject::Group("eng".into()));
    assert!(hit.message(NOW).contains("for group 'eng'"));
}

#[test]
fn global_limits_deny_even_when_a_policy_is_uncapped() {
    let policies = vec![policy("open", &["eng"], vec![])];
    let globals = vec![GlobalLimit {
        name: "everyone-daily".into(),
        targets: vec![Source::Everyone],
        limit: Limit { metric: Metric::Requests, per: Per::User, cap: 2, window_secs: 60 },
    }];
    let alice = user("alice", &["eng"]);
    let mut ledger = Ledger::new();
    for _ in 0..2 {
        let a = ledger.admit(NOW, &rules(&policies, &globals), &request(&alice, 1, 1)).unwrap();
        ledger.settle(NOW, a.reservation, Actual { spend: 1, tokens: 1, counted: true });
    }
    let refusal =
        ledger.admit(NOW + 5, &rules(&policies, &globals), &request(&alice, 1, 1)).unwrap_err();
    assert_eq!(refusal.reason(), "rate_limited");
    assert_eq!(refusal.retry_after(NOW + 5), Some(56));
    assert!(refusal.message(NOW + 5).contains("under global limit 'everyone-daily'"));
    // Another user has their own per-user counter.
    assert!(ledger
        .admit(NOW + 5, &rules(&policies, &globals), &request(&user("bob", &[]), 1, 1))
        .is_err());
    let bob = user("bob", &["eng"]);
    assert!(ledger.admit(NOW + 5, &rules(&policies, &globals), &request(&bob, 1, 1)).is_ok());
}

#[test]
fn policy_choice_uncapped_then_most_room_then_name() {
    let capped_small = policy("a-small", &["eng"], vec![spend(Per::User, 1_000_000, DAY)]);
    let capped_big = policy("b-big", &["eng"], vec![spend(Per::User, 10_000_000, DAY)]);
    let uncapped = policy("z-open", &["eng"], vec![]);
    let alice = user("alice", &["eng"]);
    let mut ledger = Ledger::new();
    let all = vec![capped_small.clone(), capped_big.clone(), uncapped];
    assert_eq!(
        ledger.admit(NOW, &rules(&all, &[]), &request(&alice, 1, 1)).unwrap().policy,
        "z-open"
    );
    let capped = vec![capped_small.clone(), capped_big.clone()];
    assert_eq!(
        ledger.admit(NOW, &rules(&capped, &[]), &request(&alice, 1, 1)).unwrap().policy,
        "b-big"
    );
    let twins = vec![
        policy("y", &["eng"], vec![spend(Per::User, 5, DAY)]),
        policy("x", &["eng"], vec![spend(Per::User, 5, DAY)]),
    ];
    assert_eq!(
        Ledger::new().admit(NOW, &rules(&twins, &[]), &request(&alice, 1, 1)).unwrap().policy,
        "x"
    );
    // When the big one is full, the small one still admits.
    let mut ledger = Ledger::new();
    let only_big = vec![capped_big.clone()];
    ledger.admit(NOW, &rules(&only_big, &[]), &request(&alice, 10_000_000, 1)).unwrap();
    assert_eq!(
        ledger.admit(NOW, &rules(&capped, &[]), &request(&alice, 1, 1)).unwrap().policy,
        "a-small"
    );
}

#[test]
fn max_tokens_and_unknown_prices() {
    let mut p = policy("eng", &["eng"], vec![spend(Per::User, 1_000_000, DAY)]);
    p.max_tokens = Some(8192);
    p.models = vec![ModelPattern::new("claude-*")];
    let policies = vec![p];
    let alice = user("alice", &["eng"]);
    let mut ledger = Ledger::new();
    let mut big = request(&alice, 1, 1);
    big.max_tokens = Some(64_000);
    let refusal = ledger.admit(NOW, &rules(&policies, &[]), &big).unwrap_err();
    assert_eq!(refusal.reason(), "max_tokens_not_allowed");
    assert!(!refusal.is_quota());
    big.max_tokens = None;
    assert_eq!(
        ledger.admit(NOW, &rules(&policies, &[]), &big).unwrap_err().reason(),
        "max_tokens_not_allowed"
    );

    let mut unpriced = request(&alice, 0, 1);
    unpriced.estimate.spend = None;
    assert_eq!(
        ledger.admit(NOW, &rules(&policies, &[]), &unpriced).unwrap_err().reason(),
        "model_price_unknown"
    );
    let mut other = request(&alice, 1, 1);
    other.model = Some("gpt-5");
    assert_eq!(
        ledger.admit(NOW, &rules(&policies, &[]), &other).unwrap_err().reason(),
        "model_not_allowed"
    );
}

#[test]
fn token_caps_count_actual_tokens_and_replay_rebuilds_counters() {
    let limit = Limit { metric: Metric::Tokens, per: Per::User, cap: 1_000, window_secs: 60 };
    let policies = vec![policy("eng", &["eng"], vec![limit])];
    let alice = user("alice", &["eng"]);
    let mut ledger = Ledger::new();
    let a = ledger.admit(NOW, &rules(&policies, &[]), &request(&alice, 1, 900)).unwrap();
    ledger.settle(NOW, a.reservation, Actual { spend: 1, tokens: 300, counted: true });
    assert!(ledger.admit(NOW, &rules(&policies, &[]), &request(&alice, 1, 700)).is_ok());

    let mut rebuilt = Ledger::new();
    rebuilt.replay(
        NOW,
        &rules(&policies, &[]),
        &alice,
        Some("eng"),
        Actual { spend: 1, tokens: 300, counted: true },
    );
    let subject = subject_of(&alice);
    assert_eq!(rebuilt.committed(NOW + 30, &Owner::Policy("eng".into()), limit, &subject), 300);
    assert_eq!(rebuilt.committed(NOW + 61, &Owner::Policy("eng".into()), limit, &subject), 0);
    rebuilt.collect_garbage(NOW + 61);
    assert_eq!(rebuilt.counter_count(), 0);
}

#[test]
fn status_lists_every_limit_that_applies() {
    let policies = vec![
        policy("eng", &["eng"], vec![spend(Per::User, 1_000, DAY), spend(Per::Group, 5_000, DAY)]),
        policy("sales", &["sales"], vec![spend(Per::User, 7, DAY)]),
    ];
    let globals = vec![GlobalLimit {
        name: "org".into(),
        targets: vec![Source::Everyone],
        limit: Limit { metric: Metric::Requests, per: Per::User, cap: 60, window_secs: 60 },
    }];
    let alice = user("alice", &["eng"]);
    let mut ledger = Ledger::new();
    let a = ledger.admit(NOW, &rules(&policies, &globals), &request(&alice, 300, 1)).unwrap();
    ledger.settle(NOW, a.reservation, Actual { spend: 250, tokens: 1, counted: true });
    let status = ledger.status(NOW, &rules(&policies, &globals), &alice);
    let view: Vec<_> =
        status.iter().map(|s| (s.owner.clone(), s.subject.clone(), s.used, s.remaining)).collect();
    assert_eq!(
        view,
        vec![
            (Owner::Global("org".into()), subject_of(&alice), 1, 59),
            (Owner::Policy("eng".into()), subject_of(&alice), 250, 750),
            (Owner::Policy("eng".into()), Subject::Group("eng".into()), 250, 4_750),
        ]
    );
}

#[test]
fn usd_formatting() {
    assert_eq!(usd(500_000_000), "$500");
    assert_eq!(usd(250_000), "$0.25");
    assert_eq!(usd(123), "$0.000123");
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Op {
    /// Admit for principal `who` with estimate `est` (micro-dollars); when settled it will
    /// cost `est * pct / 100 + excess`.
    Admit {
        who: usize,
        est: u64,
        pct: u64,
        excess: u64,
    },
    /// Settle the `n`-th oldest in-flight reservation.
    Settle(usize),
    Release(usize),
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..6, 1u64..400, 0u64..=100, prop_oneof![3 => Just(0u64), 1 => 0u64..200])
            .prop_map(|(who, est, pct, excess)| Op::Admit { who, est, pct, excess }),
        3 => (0usize..8).prop_map(Op::Settle),
        1 => (0usize..8).prop_map(Op::Release),
        1 => (1u64..5_000).prop_map(Op::Tick),
    ]
}

struct World {
    policies: Vec<Policy>,
    globals: Vec<GlobalLimit>,
    people: Vec<Principal>,
}

fn world() -> World {
    let policies = vec![
        policy(
            "eng",
            &["eng"],
            vec![spend(Per::User, 1_000, 3_600), spend(Per::Group, 2_500, 86_400)],
        ),
        policy("ops", &["ops"], vec![spend(Per::Group, 1_500, 600)]),
    ];
    let globals = vec![GlobalLimit {
        name: "org".into(),
        targets: vec![Source::Everyone],
        limit: spend(Per::Group, 4_000, 7_200),
    }];
    let people = vec![
        user("a", &["eng"]),
        user("b", &["eng"]),
        user("c", &["eng", "ops"]),
        user("d", &["ops"]),
        user("e", &["ops"]),
        user("f", &["eng"]),
    ];
    World { policies, globals, people }
}

/// Every counter of the world, with its cap.
fn counters(w: &World) -> Vec<(Owner, Limit, Subject)> {
    let mut out = vec![(Owner::Global("org".into()), w.globals[0].limit, Subject::All)];
    for p in &w.people {
        out.push((Owner::Policy("eng".into()), w.policies[0].limits[0], subject_of(p)));
    }
    out.push((Owner::Policy("eng".into()), w.policies[0].limits[1], Subject::Group("eng".into())));
    out.push((Owner::Policy("ops".into()), w.policies[1].limits[0], Subject::Group("ops".into())));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Committed spend never exceeds a cap by more than the excesses (actual over estimate) of
    /// the requests that settled with one; with no excess, committed + reserved never exceeds
    /// the cap at any moment.
    #[test]
    fn caps_hold_under_any_interleaving(ops in proptest::collection::vec(op(), 1..120)) {
        let w = world();
        let mut ledger = Ledger::new();
        let mut now = NOW;
        // (reservation, estimate, actual)
        let mut in_flight: Vec<(ReservationId, u64, u64)> = Vec::new();
        let mut settled_excess = 0u64;
        for op in ops {
            match op {
                Op::Admit { who, est, pct, excess } => {
                    let r = request(&w.people[who], est, 1);
                    if let Ok(a) = ledger.admit(now, &rules(&w.policies, &w.globals), &r) {
                        in_flight.push((a.reservation, est, est * pct / 100 + excess));
                    }
                }
                Op::Settle(n) if !in_flight.is_empty() => {
                    let (id, est, actual) = in_flight.remove(n % in_flight.len());
                    settled_excess += actual.saturating_sub(est);
                    ledger.settle(now, id, Actual { spend: actual, tokens: 1, counted: true });
                }
                Op::Release(n) if !in_flight.is_empty() => {
                    let (id, _, _) = in_flight.remove(n % in_flight.len());
                    ledger.release(now, id);
                }
                Op::Tick(secs) => now += secs,
                _ => {}
            }
            for (owner, limit, subject) in counters(&w) {
                let committed = ledger.committed(now, &owner, limit, &subject);
                let used = ledger.used_by(now, &owner, limit, &subject);
                prop_assert!(committed <= used);
                prop_assert!(
                    committed <= limit.cap + settled_excess,
                    "{owner:?} {subject:?}: {committed} > {} + {settled_excess}", limit.cap
                );
            }
        }
        prop_assert_eq!(ledger.in_flight(), in_flight.len());
    }

    /// With estimates that bound the actual amounts, no interleaving ever puts committed plus
    /// reserved over any cap.
    #[test]
    fn exact_bound_when_estimates_are_upper_bounds(ops in proptest::collection::vec(op(), 1..150)) {
        let w = world();
        let mut ledger = Ledger::new();
        let mut now = NOW;
        let mut in_flight: Vec<(ReservationId, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Admit { who, est, pct, .. } => {
                    if let Ok(a) = ledger.admit(now, &rules(&w.policies, &w.globals), &request(&w.people[who], est, 1)) {
                        in_flight.push((a.reservation, est * pct / 100));
                    }
                }
                Op::Settle(n) if !in_flight.is_empty() => {
                    let (id, actual) = in_flight.remove(n % in_flight.len());
                    ledger.settle(now, id, Actual { spend: actual, tokens: 1, counted: true });
                }
                Op::Release(n) if !in_flight.is_empty() => {
                    let (id, _) = in_flight.remove(n % in_flight.len());
                    ledger.release(now, id);
                }
                Op::Tick(secs) => now += secs,
                _ => {}
            }
            for (owner, limit, subject) in counters(&w) {
                prop_assert!(ledger.used_by(now, &owner, limit, &subject) <= limit.cap);
            }
        }
    }

    /// One request at a time (each settled before the next): a cap is exceeded by at most the
    /// largest single excess.
    #[test]
    fn sequential_overshoot_is_at_most_the_largest_excess(
        reqs in proptest::collection::vec((0usize..6, 1u64..400, 0u64..=100, 0u64..300), 1..80),
        ticks in proptest::collection::vec(0u64..2_000, 80),
    ) {
        let w = world();
        let mut ledger = Ledger::new();
        let mut now = NOW;
        let mut largest = 0u64;
        for (i, (who, est, pct, excess)) in reqs.into_iter().enumerate() {
            now += ticks[i];
            if let Ok(a) = ledger.admit(now, &rules(&w.policies, &w.globals), &request(&w.people[who], est, 1)) {
                largest = largest.max(excess);
                ledger.settle(now, a.reservation, Actual { spend: est * pct / 100 + excess, tokens: 1, counted: true });
            }
            for (owner, limit, subject) in counters(&w) {
                prop_assert!(ledger.committed(now, &owner, limit, &subject) <= limit.cap + largest);
            }
        }
    }

    /// Deny wins and the outcome does not depend on the order of policies or global limits.
    #[test]
    fn order_does_not_change_outcomes(ops in proptest::collection::vec(op(), 1..80), seed in any::<u64>()) {
        let w = world();
        let mut shuffled_policies = w.policies.clone();
        let mut shuffled_globals = w.globals.clone();
        shuffled_globals.push(GlobalLimit {
            name: "ops-rate".into(),
            targets: vec![Source::Group("ops".into())],
            limit: Limit { metric: Metric::Requests, per: Per::User, cap: 3, window_secs: 60 },
        });
        let mut globals = w.globals.clone();
        globals.push(shuffled_globals[1].clone());
        if seed % 2 == 1 {
            shuffled_policies.reverse();
            shuffled_globals.reverse();
        }
        let (mut l1, mut l2) = (Ledger::new(), Ledger::new());
        let mut now = NOW;
        let mut in_flight: Vec<(ReservationId, ReservationId, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Admit { who, est, pct, .. } => {
                    let r = request(&w.people[who], est, 1);
                    let a = l1.admit(now, &rules(&w.policies, &globals), &r);
                    let b = l2.admit(now, &rules(&shuffled_policies, &shuffled_globals), &r);
                    match (a, b) {
                        (Ok(a), Ok(b)) => {
                            prop_assert_eq!(&a.policy, &b.policy);
                            in_flight.push((a.reservation, b.reservation, est * pct / 100));
                        }
                        (Err(a), Err(b)) => prop_assert_eq!(a.reason(), b.reason()),
                        (a, b) => prop_assert!(false, "{a:?} vs {b:?}"),
                    }
                }
                Op::Settle(n) | Op::Release(n) if !in_flight.is_empty() => {
                    let (a, b, actual) = in_flight.remove(n % in_flight.len());
                    l1.settle(now, a, Actual { spend: actual, tokens: 1, counted: true });
                    l2.settle(now, b, Actual { spend: actual, tokens: 1, counted: true });
                }
                Op::Tick(secs) => now += secs,
                _ => {}
            }
        }
    }
}
