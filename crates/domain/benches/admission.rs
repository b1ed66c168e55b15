//! Policy evaluation + reservation + settlement per request, at scale: 10,000 principals and
//! 1,000 policies, each policy with a per-user spend cap and a per-user request rate cap, plus a
//! global rate cap. Run with `cargo bench -p domain`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use domain::{
    Actual, Estimate, GlobalLimit, Ledger, Limit, Metric, Per, Policy, Principal, Rules, Source,
};

const PRINCIPALS: usize = 10_000;
const POLICIES: usize = 1_000;
const NOW: u64 = 1_800_000_000;

fn world() -> (Vec<Policy>, Vec<GlobalLimit>, Vec<Principal>) {
    let policies = (0..POLICIES)
        .map(|i| Policy {
            name: format!("policy-{i:04}"),
            sources: vec![Source::Group(format!("group-{i:04}"))],
            providers: vec!["anthropic".into()],
            models: vec![domain::ModelPattern::new("claude-*")],
            max_tokens: None,
            limits: vec![
                Limit {
                    metric: Metric::Spend,
                    per: Per::User,
                    cap: 500_000_000,
                    window_secs: 30 * 86_400,
                },
                Limit { metric: Metric::Requests, per: Per::User, cap: 1_000_000, window_secs: 60 },
            ],
        })
        .collect();
    let globals = vec![GlobalLimit {
        name: "everyone".into(),
        targets: vec![Source::Everyone],
        limit: Limit { metric: Metric::Requests, per: Per::User, cap: 1_000_000, window_secs: 60 },
    }];
    let principals = (0..PRINCIPALS)
        .map(|i| {
            let groups = vec![
                format!("group-{:04}", i % POLICIES),
                format!("group-{:04}", (i * 7) % POLICIES),
            ];
            Principal::user(format!("sub-{i}"), format!("user{i}@example.com"), groups)
        })
        .collect();
    (policies, globals, principals)
}

fn admission(c: &mut Criterion) {
    let (policies, globals, principals) = world();
    let rules = Rules::new(policies, globals);
    let mut ledger = Ledger::new();
    let estimate = Estimate { tokens: 5_000, spend: Some(50_000) };
    let actual = Actual { tokens: 1_000, spend: 10_000, counted: true };
    // Warm every principal's counters, as in a server that has been up for a while.
    for p in &principals {
        let request = domain::limits::Request {
            principal: p,
            provider: "anthropic",
            model: Some("claude-sonnet-4-5"),
            max_tokens: Some(4096),
            estimate,
        };
        let a = ledger.admit(NOW, &rules, &request).expect("admitted");
        ledger.settle(NOW, a.reservation, actual);
    }
    let mut i = 0usize;
    c.bench_function("admit+settle (10k principals, 1k policies)", |b| {
        b.iter(|| {
            i = (i + 7919) % PRINCIPALS;
            let request = domain::limits::Request {
                principal: &principals[i],
                provider: "anthropic",
                model: Some("claude-sonnet-4-5"),
                max_tokens: Some(4096),
                estimate,
            };
            let a = ledger.admit(NOW + 1, &rules, black_box(&request)).expect("admitted");
            ledger.settle(NOW + 1, a.reservation, actual);
        })
    });
}

criterion_group!(benches, admission);
criterion_main!(benches);
