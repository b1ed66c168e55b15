//! Token usage of one request, normalized across provider APIs, and money in micro-dollars.

/// Money as integer micro-dollars (1 USD = 1,000,000). Integers, so sums never drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MicroUsd(pub i64);

impl MicroUsd {
    pub fn as_usd(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
}

impl std::fmt::Display for MicroUsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "${:.6}", self.as_usd())
    }
}

/// Tokens by kind, normalized so that the kinds do not overlap:
/// - `input_tokens`: input read at the full price (OpenAI's `prompt_tokens` minus its cached part;
///   Anthropic's `input_tokens` as reported, which already excludes cache reads and writes);
/// - `cache_read_input_tokens` and `cache_creation_input_tokens`: input served from or written
///   to the prompt cache;
/// - `output_tokens`: all generated tokens, reasoning included;
/// - `reasoning_tokens`: the reasoning part of `output_tokens` (informational, not billed twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Every token the request consumed, each counted once.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
    }

    pub fn is_empty(&self) -> bool {
        self.total_tokens() == 0
    }
}
