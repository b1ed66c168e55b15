//! Prices per model, in micro-dollars per million tokens, and the cost of a request.
//!
//! A built-in table covers current Anthropic and OpenAI models; operators override or extend it
//! per provider. A model with no price has an unknown cost (`None`), never a cost of zero.

use crate::{glob::ModelPattern, MicroUsd, Usage};

/// Micro-dollars per million tokens, by token kind. `$3 / MTok` is `3_000_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    pub cache_write: u64,
    pub cache_read: u64,
}

impl Price {
    /// Anthropic-style price: cache writes cost 1.25x input, cache reads 0.1x input.
    pub const fn anthropic(input_usd_per_mtok_micro: u64, output: u64) -> Self {
        Self {
            input: input_usd_per_mtok_micro,
            output,
            cache_write: input_usd_per_mtok_micro * 5 / 4,
            cache_read: input_usd_per_mtok_micro / 10,
        }
    }

    /// OpenAI-style price: cached input at its own rate, no separate cache-write charge.
    pub const fn openai(input: u64, cached_input: u64, output: u64) -> Self {
        Self { input, output, cache_write: input, cache_read: cached_input }
    }

    /// An upper bound on what a request can cost: every input token priced at the dearest
    /// input rate (a cache write costs more than plain input), every output token at the output
    /// rate. Used to reserve budget before forwarding.
    pub fn bound(&self, input_tokens: u64, output_tokens: u64) -> MicroUsd {
        let dearest_input = self.input.max(self.cache_write).max(self.cache_read);
        let pico = u128::from(input_tokens) * u128::from(dearest_input)
            + u128::from(output_tokens) * u128::from(self.output);
        MicroUsd(i64::try_from(pico.div_ceil(1_000_000)).unwrap_or(i64::MAX))
    }

    /// The cost of `usage` at this price, rounded up to the next micro-dollar.
    pub fn cost(&self, usage: &Usage) -> MicroUsd {
        let pico = |tokens: u64, per_mtok: u64| u128::from(tokens) * u128::from(per_mtok);
        let total = pico(usage.input_tokens, self.input)
            + pico(usage.output_tokens, self.output)
            + pico(usage.cache_creation_input_tokens, self.cache_write)
            + pico(usage.cache_read_input_tokens, self.cache_read);
        let micro = total.div_ceil(1_000_000);
        MicroUsd(i64::try_from(micro).unwrap_or(i64::MAX))
    }
}

const M: u64 = 1_000_000;

/// Built-in list prices (USD per million tokens), matched most-specific first.
/// Dated snapshots (`claude-sonnet-4-5-20250929`) match their family's pattern.
const BUILT_IN: &[(&str, Price)] = &[
    // Anthropic
    ("claude-opus-4-5*", Price::anthropic(5 * M, 25 * M)),
    ("claude-opus-4-1*", Price::anthropic(15 * M, 75 * M)),
    ("claude-opus-4-0*", Price::anthropic(15 * M, 75 * M)),
    ("claude-opus-4-2*", Price::anthropic(15 * M, 75 * M)),
    ("claude-sonnet-4*", Price::anthropic(3 * M, 15 * M)),
    ("claude-3-7-sonnet*", Price::anthropic(3 * M, 15 * M)),
    ("claude-haiku-4-5*", Price::anthropic(M, 5 * M)),
    ("claude-3-5-haiku*", Price::anthropic(800_000, 4 * M)),
    // OpenAI
    ("gpt-5", Price::openai(1_250_000, 125_000, 10 * M)),
    ("gpt-5-20*", Price::openai(1_250_000, 125_000, 10 * M)),
    ("gpt-5-codex", Price::openai(1_250_000, 125_000, 10 * M)),
    ("gpt-5-mini*", Price::openai(250_000, 25_000, 2 * M)),
    ("gpt-5-nano*", Price::openai(50_000, 5_000, 400_000)),
    ("gpt-4.1", Price::openai(2 * M, 500_000, 8 * M)),
    ("gpt-4.1-20*", Price::openai(2 * M, 500_000, 8 * M)),
    ("gpt-4.1-mini*", Price::openai(400_000, 100_000, 1_600_000)),
    ("gpt-4.1-nano*", Price::openai(100_000, 25_000, 400_000)),
    ("gpt-4o", Price::openai(2_500_000, 1_250_000, 10 * M)),
    ("gpt-4o-20*", Price::openai(2_500_000, 1_250_000, 10 * M)),
    ("gpt-4o-mini*", Price::openai(150_000, 75_000, 600_000)),
    ("o3", Price::openai(2 * M, 500_000, 8 * M)),
    ("o3-20*", Price::openai(2 * M, 500_000, 8 * M)),
    ("o4-mini*", Price::openai(1_100_000, 275_000, 4_400_000)),
    ("text-embedding-3-small", Price::openai(20_000, 20_000, 0)),
    ("text-embedding-3-large", Price::openai(130_000, 130_000, 0)),
];

/// Prices by model pattern. Lookups pick the most specific matching pattern.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    entries: Vec<(ModelPattern, Price)>,
}

impl PriceTable {
    /// The built-in list prices.
    pub fn built_in() -> Self {
        let mut table = Self::default();
        for (pattern, price) in BUILT_IN {
            table.set(ModelPattern::new(*pattern), *price);
        }
        table
    }

    /// Adds or replaces the price for `pattern`.
    pub fn set(&mut self, pattern: ModelPattern, price: Price) {
        match self.entries.iter_mut().find(|(p, _)| *p == pattern) {
            Some(entry) => entry.1 = price,
            None => self.entries.push((pattern, price)),
        }
    }

    /// The price of `model`, from the most specific matching pattern.
    pub fn price(&self, model: &str) -> Option<Price> {
        self.entries
            .iter()
            .filter(|(pattern, _)| pattern.matches(model))
            .max_by_key(|(pattern, _)| pattern.specificity())
            .map(|(_, price)| *price)
    }

    /// The cost of `usage` on `model`, or `None` when the model has no known price.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<MicroUsd> {
        self.price(model).map(|price| price.cost(usage))
    }

    /// This table with `overrides` layered on top (an operator's per-provider prices).
    pub fn with_overrides(&self, overrides: &[(ModelPattern, Price)]) -> Self {
        let mut table = self.clone();
        for (pattern, price) in overrides {
            table.set(pattern.clone(), *price);
        }
        table
    }
}

#[cfg(test)]
mod tests;
