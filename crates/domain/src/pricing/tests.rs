//! Tests for prices and cost arithmetic.

use super::*;

fn usage(input: u64, output: u64, cache_write: u64, cache_read: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_creation_input_tokens: cache_write,
        cache_read_input_tokens: cache_read,
        reasoning_tokens: 0,
    }
}

#[test]
fn sonnet_cost_by_kind() {
    let table = PriceTable::built_in();
    // 1M input at $3, 1M output at $15, 1M cache write at $3.75, 1M cache read at $0.30.
    let cost = table.cost("claude-sonnet-4-5-20250929", &usage(M, M, M, M));
    assert_eq!(cost, Some(MicroUsd(3_000_000 + 15_000_000 + 3_750_000 + 300_000)));
}

#[test]
fn small_requests_round_up_never_to_zero() {
    let table = PriceTable::built_in();
    // 1 token of haiku input is $0.000001: exactly one micro-dollar.
    assert_eq!(table.cost("claude-haiku-4-5", &usage(1, 0, 0, 0)), Some(MicroUsd(1)));
    // 1 token of gpt-5-nano input is 0.05 micro-dollars: rounds up to 1.
    assert_eq!(table.cost("gpt-5-nano", &usage(1, 0, 0, 0)), Some(MicroUsd(1)));
    assert_eq!(table.cost("gpt-5-nano", &usage(0, 0, 0, 0)), Some(MicroUsd(0)));
}

#[test]
fn unknown_model_has_unknown_cost() {
    let table = PriceTable::built_in();
    assert_eq!(table.cost("my-finetune", &usage(10, 10, 0, 0)), None);
}

#[test]
fn most_specific_pattern_wins() {
    let table = PriceTable::built_in();
    assert_eq!(table.price("gpt-5").unwrap().input, 1_250_000);
    assert_eq!(table.price("gpt-5-mini-2025-08-07").unwrap().input, 250_000);
    assert_eq!(table.price("gpt-4o-mini").unwrap().input, 150_000);
    assert_eq!(table.price("gpt-4o-2024-08-06").unwrap().input, 2_500_000);
}

#[test]
fn overrides_replace_and_extend() {
    let table = PriceTable::built_in().with_overrides(&[
        (ModelPattern::new("claude-sonnet-4*"), Price::anthropic(M, M)),
        (ModelPattern::new("llama-*"), Price::openai(100, 100, 200)),
    ]);
    assert_eq!(table.price("claude-sonnet-4-5").unwrap().output, M);
    assert_eq!(table.price("llama-3.1-70b").unwrap().output, 200);
}

#[test]
fn bound_prices_input_at_the_dearest_rate() {
    let sonnet = PriceTable::built_in().price("claude-sonnet-4-5").unwrap();
    // 1M input at the cache-write rate ($3.75) + 1M output ($15).
    assert_eq!(sonnet.bound(M, M), MicroUsd(18_750_000));
    // It bounds any split of the same tokens into kinds.
    let actual = sonnet.cost(&usage(400_000, M, 300_000, 300_000));
    assert!(actual <= sonnet.bound(M, M));
}
