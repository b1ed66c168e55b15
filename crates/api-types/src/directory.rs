//! Groups and agents: the local directory. People's groups usually come from the IdP; these are
//! groups an admin defines here, and agents (non-human identities) enrolled into groups.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ManagedBy;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub managed_by: ManagedBy,
}

/// The body of `POST /groups` and `PUT /groups/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    /// Required on `POST`; on `PUT` it may be left out, and must match the path if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
}

/// A non-human identity, member of groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub name: String,
    pub description: String,
    pub groups: Vec<String>,
    pub managed_by: ManagedBy,
}

/// The body of `POST /agents` and `PUT /agents/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    /// Required on `POST`; on `PUT` it may be left out, and must match the path if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub groups: Vec<String>,
}
