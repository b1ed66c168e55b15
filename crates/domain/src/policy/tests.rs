//! Tests for policy evaluation.

use super::*;
use proptest::prelude::*;

fn policy(name: &str, sources: Vec<Source>, providers: &[&str], models: &[&str]) -> Policy {
    Policy {
        name: name.into(),
        sources,
        providers: providers.iter().map(|s| s.to_string()).collect(),
        models: models.iter().map(|m| ModelPattern::new(*m)).collect(),
        max_tokens: None,
        limits: vec![],
    }
}

fn alice() -> Principal {
    Principal::user("sub-1", "alice@example.com", vec!["engineering".into(), "all".into()])
}

#[test]
fn default_deny() {
    assert_eq!(
        evaluate(&[], &alice(), "anthropic", Some("claude-sonnet-4-5")),
        Decision::Deny { reason: DenyReason::NoPolicy }
    );
    let other_group = policy("p", vec![Source::Group("sales".into())], &["anthropic"], &[]);
    assert_eq!(
        evaluate(&[other_group], &alice(), "anthropic", None),
        Decision::Deny { reason: DenyReason::NoPolicy }
    );
}

#[test]
fn group_user_agent_and_everyone_sources() {
    let by_group = policy("g", vec![Source::Group("engineering".into())], &["anthropic"], &[]);
    assert_eq!(
        evaluate(&[by_group], &alice(), "anthropic", Some("x")),
        Decision::Allow { policy: "g".into(), groups: vec!["engineering".into()] }
    );
    let by_user = policy("u", vec![Source::User("ALICE@example.com".into())], &["anthropic"], &[]);
    assert_eq!(
        evaluate(&[by_user], &alice(), "anthropic", Some("x")),
        Decision::Allow { policy: "u".into(), groups: vec![] }
    );
    let bot = Principal::agent("ci-bot", vec![]);
    let by_agent = policy("a", vec![Source::Agent("ci-bot".into())], &["openai"], &[]);
    assert!(matches!(
        evaluate(std::slice::from_ref(&by_agent), &bot, "openai", None),
        Decision::Allow { .. }
    ));
    assert!(matches!(evaluate(&[by_agent], &alice(), "openai", None), Decision::Deny { .. }));
    let everyone = policy("e", vec![Source::Everyone], &["openai"], &[]);
    assert!(matches!(evaluate(&[everyone], &bot, "openai", None), Decision::Allow { .. }));
}

#[test]
fn model_allowlist() {
    let p = policy(
        "eng",
        vec![Source::Group("engineering".into())],
        &["anthropic"],
        &["claude-sonnet-*", "claude-haiku-*"],
    );
    let policies = [p];
    assert!(matches!(
        evaluate(&policies, &alice(), "anthropic", Some("claude-sonnet-4-5-20250929")),
        Decision::Allow { .. }
    ));
    assert_eq!(
        evaluate(&policies, &alice(), "anthropic", Some("claude-opus-4-5")),
        Decision::Deny { reason: DenyReason::ModelNotAllowed }
    );
    // Listing models needs only a policy that opens the provider.
    assert!(matches!(evaluate(&policies, &alice(), "anthropic", None), Decision::Allow { .. }));
    assert!(model_visible(&policies, &alice(), "anthropic", "claude-haiku-4-5"));
    assert!(!model_visible(&policies, &alice(), "anthropic", "claude-opus-4-5"));
}

proptest! {
    /// The decision does not depend on the order in which policies are listed.
    #[test]
    fn order_does_not_matter(
        specs in proptest::collection::vec((0usize..4, 0usize..3, proptest::bool::ANY), 0..8),
        model in proptest::option::of(prop_oneof![Just("claude-sonnet-4-5"), Just("gpt-5")]),
        seed in any::<u64>(),
    ) {
        let groups = ["engineering", "all", "sales", "ops"];
        let providers = ["anthropic", "openai", "vllm"];
        let policies: Vec<Policy> = specs
            .iter()
            .enumerate()
            .map(|(i, (g, p, restrict))| {
                let models: &[&str] = if *restrict { &["claude-*"] } else { &[] };
                policy(&format!("p{i}"), vec![Source::Group(groups[*g].into())], &[providers[*p]], models)
            })
            .collect();
        let mut shuffled = policies.clone();
        // A deterministic shuffle from the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        for provider in providers {
            prop_assert_eq!(
                evaluate(&policies, &alice(), provider, model),
                evaluate(&shuffled, &alice(), provider, model)
            );
        }
    }
}
