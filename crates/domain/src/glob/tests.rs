//! Tests for model patterns.

use super::*;
use proptest::prelude::*;

#[test]
fn exact_and_glob() {
    let cases = [
        ("claude-sonnet-4-5", "claude-sonnet-4-5", true),
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", false),
        ("claude-sonnet-*", "claude-sonnet-4-5-20250929", true),
        ("claude-*-4-5*", "claude-haiku-4-5", true),
        ("claude-*-4-5*", "claude-haiku-4-1", false),
        ("*", "", true),
        ("gpt-5*", "gpt-4o", false),
        ("*mini", "gpt-5-mini", true),
        ("a*b*c", "aXbYbZc", true),
        ("a*b*c", "aXbYbZ", false),
    ];
    for (pattern, name, want) in cases {
        assert_eq!(ModelPattern::new(pattern).matches(name), want, "{pattern} vs {name}");
    }
}

#[test]
fn specificity_orders_exact_first() {
    let exact = ModelPattern::new("gpt-5");
    let long_glob = ModelPattern::new("gpt-5-mini*");
    let short_glob = ModelPattern::new("gpt-*");
    assert!(exact.specificity() > long_glob.specificity());
    assert!(long_glob.specificity() > short_glob.specificity());
}

proptest! {
    #[test]
    fn literal_pattern_matches_only_itself(a in "[a-z0-9.-]{0,12}", b in "[a-z0-9.-]{0,12}") {
        prop_assert_eq!(ModelPattern::new(a.clone()).matches(&b), a == b);
    }

    #[test]
    fn prefix_glob_matches_every_extension(prefix in "[a-z0-9-]{0,10}", rest in "[a-z0-9-]{0,10}") {
        let pattern = ModelPattern::new(format!("{prefix}*"));
        let name = format!("{prefix}{rest}");
        prop_assert!(pattern.matches(&name));
    }
}
