//! Policies, default deny: each connects sources (groups, users, agents, or everyone) to
//! providers, with an optional model allowlist, an optional `max_tokens` ceiling, and spend,
//! token and rate caps charged to the requests it admits.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Limit, ManagedBy};

/// Who a policy applies to. At least one source must be given.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySources {
    /// Group names (from the IdP or the local directory).
    pub groups: Vec<String>,
    /// People, by email (matched case-insensitively).
    pub users: Vec<String>,
    /// Agents, by name.
    pub agents: Vec<String>,
    /// Every authenticated principal.
    pub everyone: bool,
}

impl PolicySources {
    pub fn is_empty(&self) -> bool {
        !self.everyone && self.groups.is_empty() && self.users.is_empty() && self.agents.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    pub name: String,
    pub sources: PolicySources,
    /// Provider names this policy opens.
    pub providers: Vec<String>,
    /// Models (names or `*` patterns) allowed through it; empty means every model.
    pub models: Vec<String>,
    /// The largest `max_tokens` a request may ask for under this policy (a request that sets
    /// none is refused); null means no ceiling.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Spend, token and rate caps charged to the requests this policy admits.
    #[serde(default)]
    pub limits: Vec<Limit>,
    pub managed_by: ManagedBy,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

/// The body of `POST /policies` and `PUT /policies/{name}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// Required on `POST`; on `PUT` it may be left out, and must match the path if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub sources: PolicySources,
    #[serde(default)]
    pub providers: Vec<String>,
    #[serde(default)]
    pub models: Vec<String>,
    /// At least 1; left out, requests may ask for any `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<Limit>,
}
