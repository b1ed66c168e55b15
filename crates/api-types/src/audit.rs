//! The audit log: who changed what and when, with the record before and after.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::usage::percent_encode;

/// One change, as the audit log recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Increasing with every entry.
    pub id: i64,
    /// When the change happened, RFC 3339 in UTC with milliseconds.
    #[schema(example = "2025-06-01T12:00:00.000Z")]
    pub at: String,
    /// `admin-socket` (on the server host, through the admin socket), `admin`, `scim`, `user`,
    /// `agent` or `system`.
    #[schema(example = "admin-socket")]
    pub actor_kind: String,
    /// Who, within the kind: `uid:0` for a socket peer, an admin's email, `scim`, an agent name.
    #[schema(example = "uid:0")]
    pub actor: String,
    /// What was done, dotted: `provider.create`, `provider.key.set`, `policy.update`,
    /// `group.delete`, `scim.user.update`, …
    #[schema(example = "policy.update")]
    pub action: String,
    /// The kind of record: `provider`, `group`, `agent`, `policy`, `limit` (a global limit),
    /// `user`, …
    pub target_kind: String,
    /// The record's name or id.
    pub target: String,
    /// The record before the change, as this API shows it (a provider with its key's
    /// fingerprint, never the key); null for a create.
    pub before: Option<serde_json::Value>,
    /// The record after the change, as this API shows it; null for a delete.
    pub after: Option<serde_json::Value>,
    /// The id of the request that made the change, when it had one.
    pub request_id: Option<String>,
}

/// Filters for `GET /audit`; all optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, IntoParams, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The actor, exactly: `uid:0`, an admin's email, `scim`.
    pub actor: Option<String>,
    /// A prefix of the action: `provider` matches `provider.create` and `provider.key.set`.
    pub action: Option<String>,
    /// `provider`, `group`, `agent`, `policy`, `limit`, `user`, …
    pub target_kind: Option<String>,
    /// The record's name or id, exactly.
    pub target: Option<String>,
    /// Inclusive lower bound, RFC 3339 (e.g. `2025-06-01T00:00:00Z`).
    pub since: Option<String>,
    /// Exclusive upper bound, RFC 3339.
    pub until: Option<String>,
    /// Entries to return, newest first: default 100, at most 1000.
    pub limit: Option<u32>,
}

impl AuditQuery {
    /// The query string for these filters (without the `?`), percent-encoded.
    pub fn to_query_string(&self) -> String {
        let limit = self.limit.map(|l| l.to_string());
        let pairs = [
            ("actor", self.actor.as_deref()),
            ("action", self.action.as_deref()),
            ("target_kind", self.target_kind.as_deref()),
            ("target", self.target.as_deref()),
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

#[cfg(test)]
mod tests;
