//! Usage & Logs: one record per AI request (the metering truth), the filters to read them, and
//! per-principal summaries.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One AI request as metered. Token kinds do not overlap: `input_tokens` excludes cache reads
/// and writes; `reasoning_tokens` is the part of `output_tokens` spent reasoning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageRecord {
    pub id: String,
    /// When the request arrived, RFC 3339 in UTC with milliseconds.
    #[schema(example = "2025-06-01T12:00:00.000Z")]
    pub at: String,
    /// `user` or `agent`; null when the caller was not identified (e.g. a 401).
    pub principal_kind: Option<String>,
    /// Email or agent name.
    pub principal: Option<String>,
    pub subject: Option<String>,
    /// The caller's groups at request time.
    pub groups: Vec<String>,
    /// The policy that admitted the request.
    pub policy: Option<String>,
    pub provider: Option<String>,
    /// `anthropic` or `openai`: the API the client called.
    pub api: String,
    /// e.g. `messages`, `chat_completions`, `responses`.
    pub endpoint: String,
    pub model: Option<String>,
    pub stream: bool,
    /// The HTTP status the client got.
    pub status: u16,
    /// `ok`, or the reason code of the failure or denial.
    pub reason: String,
    pub latency_ms: i64,
    /// Time to the first response byte.
    pub ttfb_ms: Option<i64>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub reasoning_tokens: i64,
    /// Integer micro-dollars (1 USD = 1,000,000); null when the model has no known price.
    pub cost_micro_usd: Option<i64>,
    /// The same cost in USD, for display; null when unknown.
    pub cost_usd: Option<f64>,
    /// False when the model had no known price: the cost is unknown, not zero.
    pub cost_known: bool,
    /// False when the upstream never reported usage (e.g. cut before the final event).
    pub usage_reported: bool,
    /// Claude Code's or Codex's session id, when the client sent one.
    pub session_id: Option<String>,
}

/// Filters for `GET /usage`, `GET /logs` and `GET /usage/summary`; all optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, IntoParams, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Email or agent name, exactly.
    pub principal: Option<String>,
    /// Records of callers who were in this group at request time.
    pub group: Option<String>,
    /// Records of requests this policy admitted (and was charged for).
    pub policy: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// `ok`, or a failure reason code such as `no_policy`.
    pub reason: Option<String>,
    /// Inclusive lower bound, RFC 3339 (e.g. `2025-06-01T00:00:00Z`).
    pub since: Option<String>,
    /// Exclusive upper bound, RFC 3339.
    pub until: Option<String>,
    /// Records to return, newest first: default 100, at most 1000. Ignored by the summary.
    pub limit: Option<u32>,
}

impl UsageQuery {
    /// The query string for these filters (without the `?`), percent-encoded.
    pub fn to_query_string(&self) -> String {
        let limit = self.limit.map(|l| l.to_string());
        let pairs = [
            ("principal", self.principal.as_deref()),
            ("group", self.group.as_deref()),
            ("policy", self.policy.as_deref()),
            ("provider", self.provider.as_deref()),
            ("model", self.model.as_deref()),
            ("reason", self.reason.as_deref()),
            ("since", self.since.as_deref()),
            ("until", self.until.as_deref()),
            ("limit", limit.as_deref()),
        ];
        let mut out = String::new();
        for (key, value) in pairs {
            let Some(value) = value else { continue };
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(key);
            out.push('=');
            percent_encode(value, &mut out);
        }
        out
    }
}

/// Encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(value: &str, out: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// Requests, tokens by kind and cost, added up.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct UsageTotals {
    pub requests: u64,
    /// Requests answered with a status of 400 or more.
    pub failed_requests: u64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub reasoning_tokens: i64,
    /// Input, output and cache tokens, each counted once (reasoning is part of output).
    pub total_tokens: i64,
    /// The cost of the requests whose price is known, in micro-dollars.
    pub cost_micro_usd: i64,
    /// The same in USD, for display.
    pub cost_usd: f64,
    /// Requests whose model had no known price: their cost is not in `cost_micro_usd`.
    pub unknown_cost_requests: u64,
}

impl UsageTotals {
    /// Adds one record's figures.
    pub fn add(&mut self, r: &UsageRecord) {
        self.requests += 1;
        if r.status >= 400 {
            self.failed_requests += 1;
        }
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        self.cache_creation_tokens += r.cache_creation_tokens;
        self.cache_read_tokens += r.cache_read_tokens;
        self.reasoning_tokens += r.reasoning_tokens;
        self.total_tokens +=
            r.input_tokens + r.output_tokens + r.cache_creation_tokens + r.cache_read_tokens;
        match r.cost_micro_usd {
            Some(cost) => self.cost_micro_usd = self.cost_micro_usd.saturating_add(cost),
            None => self.unknown_cost_requests += 1,
        }
        self.cost_usd = micro_to_usd(self.cost_micro_usd);
    }
}

/// One principal's usage over the queried records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PrincipalUsage {
    /// Email or agent name; null for requests whose caller was not identified.
    pub principal: Option<String>,
    pub principal_kind: Option<String>,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// `GET /usage/summary`: usage per principal, highest cost first, and the grand total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageSummary {
    pub principals: Vec<PrincipalUsage>,
    /// The sum over every matching record (the sum of `principals`).
    pub total: UsageTotals,
}

/// Micro-dollars to dollars, for display fields.
pub fn micro_to_usd(micro: i64) -> f64 {
    micro as f64 / 1_000_000.0
}
