//! The self-service view, `GET /api/v1/me`: who the caller is (identified by the same bearer
//! token as on the AI endpoint), every limit that applies to them with what is used and what is
//! left, their spend over the last day and month, and their most recent requests.
//!
//! Figures of a limit (`used`, `remaining`, `cap`) are in the limit's own unit: USD for a spend
//! cap (counted in micro-dollars by the server), tokens for a token cap, requests for a request
//! cap.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Limit, UsageRecord, UsageTotals};

/// What `GET /api/v1/me` answers: the caller's own view of their usage and caps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SelfView {
    /// Email or agent name.
    #[schema(example = "alice@example.com")]
    pub principal: String,
    /// `user` or `agent`.
    #[schema(example = "user")]
    pub kind: String,
    /// The caller's groups, as the IdP token (and, for agents, the directory) gives them.
    pub groups: Vec<String>,
    /// Every limit that applies to the caller: global limits that target them first, then the
    /// limits of the policies that name them as a source, each by name.
    pub limits: Vec<LimitUse>,
    /// Every request of the caller in the last 24 hours, refused ones included.
    pub last_24h: UsageTotals,
    /// Every request of the caller in the last 30 days.
    pub last_30d: UsageTotals,
    /// The caller's newest requests, newest first (at most 20).
    pub recent: Vec<UsageRecord>,
}

/// Who sets a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LimitOwnerKind {
    /// A global limit, checked before any policy.
    Global,
    /// A policy's limit.
    Policy,
}

impl LimitOwnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitOwnerKind::Global => "global",
            LimitOwnerKind::Policy => "policy",
        }
    }
}

/// One limit that applies to the caller, with its current use.
///
/// A request is charged to every global limit that applies and to the limits of one policy (an
/// uncapped one if any, else the one with the most room left), so the room left to a caller is
/// that of the global limits and of the roomiest policy, not the sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LimitUse {
    pub owner_kind: LimitOwnerKind,
    /// The global limit's or the policy's name.
    pub owner: String,
    pub limit: Limit,
    /// Whose consumption is counted: `you` (a per-user cap), `group <name>` (a per-group cap,
    /// shared with the group's other members), or `everyone` (a per-group cap the caller falls
    /// under without a group, shared with everyone it admits that way).
    #[schema(example = "you")]
    pub applies_to: String,
    /// Counted so far in the rolling window, requests in flight included; in the limit's unit
    /// (USD, tokens or requests).
    pub used: f64,
    /// `cap - used`, never below 0.
    pub remaining: f64,
    pub cap: f64,
}

impl LimitUse {
    /// What the figures count: `usd`, `tokens` or `requests`.
    pub fn unit(&self) -> &'static str {
        if self.limit.spend_usd.is_some() {
            "usd"
        } else if self.limit.tokens.is_some() {
            "tokens"
        } else {
            "requests"
        }
    }
}
