//! Budgets and rate caps: spend, token and request caps over rolling windows, per user or per
//! group. A `Limit` is spelled as in the config file (`{ spend_usd = 500, per = "user",
//! window = "30d" }`): exactly one of `spend_usd`, `tokens` or `requests`, whom it counts for,
//! and the window as a duration string. Policies carry limits; global limits (`GlobalLimit`) are
//! checked before any policy for the principals they target.
//!
//! Validation (exactly one metric, the window's range, the spend's range) happens in `control`,
//! so that a refusal names the offending field; this module only defines the shapes and the
//! window's spelling, shared with the CLI.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ManagedBy, PolicySources};

/// Whom a limit counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LimitPer {
    /// Each principal separately.
    #[default]
    User,
    /// The members of a group together (each group through which the rule applies).
    Group,
}

impl LimitPer {
    pub const ALL: [LimitPer; 2] = [LimitPer::User, LimitPer::Group];

    pub fn as_str(self) -> &'static str {
        match self {
            LimitPer::User => "user",
            LimitPer::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One cap over a rolling window. Exactly one of `spend_usd`, `tokens` and `requests` is set.
///
/// A cap of 0 is allowed: it admits nothing that counts against it, a way to freeze someone
/// (a `requests` cap of 0 refuses every request; a `tokens` or `spend_usd` cap of 0 every request
/// that uses tokens or costs money).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Spend cap in USD (0 to 1000000000), counted in micro-dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 500.0)]
    pub spend_usd: Option<f64>,
    /// Token cap: input, output and cache tokens together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Request-count cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(default)]
    pub per: LimitPer,
    /// The rolling window: a whole number and a unit, `s`, `m`, `h` or `d` (`90s`, `1m`, `24h`,
    /// `30d`); at least one minute. Responses give the shortest exact spelling (`720h` comes
    /// back as `30d`).
    #[serde(default)]
    #[schema(example = "30d")]
    pub window: String,
}

impl Limit {
    pub fn spend(usd: f64, per: LimitPer, window: impl Into<String>) -> Self {
        Self::with(Some(usd), None, None, per, window)
    }

    pub fn tokens(cap: u64, per: LimitPer, window: impl Into<String>) -> Self {
        Self::with(None, Some(cap), None, per, window)
    }

    pub fn requests(cap: u64, per: LimitPer, window: impl Into<String>) -> Self {
        Self::with(None, None, Some(cap), per, window)
    }

    fn with(
        spend_usd: Option<f64>,
        tokens: Option<u64>,
        requests: Option<u64>,
        per: LimitPer,
        window: impl Into<String>,
    ) -> Self {
        Self { spend_usd, tokens, requests, per, window: window.into() }
    }

    /// `$500 per user per 30d`, `400000 tokens per user per 1m`, `60 requests per group per 1m`
    /// (or the metrics as given, `/`-separated, if not exactly one is set).
    pub fn describe(&self) -> String {
        let mut metrics = Vec::new();
        if let Some(usd) = self.spend_usd {
            metrics.push(dollars(usd));
        }
        if let Some(n) = self.tokens {
            metrics.push(format!("{n} tokens"));
        }
        if let Some(n) = self.requests {
            metrics.push(format!("{n} requests"));
        }
        format!("{} per {} per {}", metrics.join("/"), self.per.as_str(), self.window)
    }
}

/// `$500`, `$20.50`, `$0.125`: whole dollars bare, cents shown when there are any, finer
/// fractions as they are.
fn dollars(usd: f64) -> String {
    if !usd.is_finite() || !(0.0..=1e12).contains(&usd) {
        return format!("${usd}");
    }
    // To micro-dollars, as the server counts: exact for every cap it accepts.
    let micro = (usd * 1_000_000.0).round() as u64;
    let (whole, frac) = (micro / 1_000_000, micro % 1_000_000);
    if frac == 0 {
        format!("${whole}")
    } else if frac % 10_000 == 0 {
        format!("${whole}.{:02}", frac / 10_000)
    } else {
        format!("${whole}.{}", format!("{frac:06}").trim_end_matches('0'))
    }
}

/// A limit checked before any policy, for every principal it targets; all global limits that
/// apply must have room for a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GlobalLimit {
    pub name: String,
    /// Whom it applies to (the same shape as a policy's sources).
    pub targets: PolicySources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    pub per: LimitPer,
    /// Canonical spelling, e.g. `30d`, `1h`, `90s`.
    pub window: String,
    pub managed_by: ManagedBy,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl GlobalLimit {
    /// The limit fields alone.
    pub fn limit(&self) -> Limit {
        Limit::with(self.spend_usd, self.tokens, self.requests, self.per, self.window.clone())
    }
}

/// The body of `POST /limits` and `PUT /limits/{name}`: the targets and the limit's fields
/// (exactly one of `spend_usd`, `tokens`, `requests`; `per`; `window`) side by side.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalLimitInput {
    /// Required on `POST`; on `PUT` it may be left out, and must match the path if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// At least one target: groups, users, agents, or everyone.
    #[serde(default)]
    pub targets: PolicySources,
    /// Spend cap in USD (0 to 1000000000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(default)]
    pub per: LimitPer,
    /// `s`, `m`, `h` or `d` with a whole number, at least one minute: `1m`, `24h`, `30d`.
    #[serde(default)]
    #[schema(example = "30d")]
    pub window: String,
}

impl GlobalLimitInput {
    /// An input for `name` targeting `targets` with `limit`.
    pub fn new(name: Option<String>, targets: PolicySources, limit: Limit) -> Self {
        Self {
            name,
            targets,
            spend_usd: limit.spend_usd,
            tokens: limit.tokens,
            requests: limit.requests,
            per: limit.per,
            window: limit.window,
        }
    }

    /// The limit fields alone.
    pub fn limit(&self) -> Limit {
        Limit::with(self.spend_usd, self.tokens, self.requests, self.per, self.window.clone())
    }
}

/// Why a window did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error(
        "'{0}' is not a window: use a whole number and a unit s, m, h or d, e.g. 1m, 24h, 30d"
    )]
    Syntax(String),
    #[error("'{0}' is too long")]
    TooLarge(String),
}

/// Parses a window, a whole number and one unit (`s`, `m`, `h`, `d`), into seconds. Range checks
/// (at least a minute) are the caller's.
pub fn parse_window(text: &str) -> Result<u64, WindowError> {
    let syntax = || WindowError::Syntax(text.to_owned());
    let digits = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(syntax)?;
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(syntax());
    }
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(syntax()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .ok_or_else(|| WindowError::TooLarge(text.to_owned()))
}

/// The shortest exact spelling of a window: 2592000 → `30d`, 3600 → `1h`, 90 → `90s`.
pub fn format_window(secs: u64) -> String {
    match secs {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
