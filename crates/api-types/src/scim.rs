//! SCIM provisioning in the admin API: the bearer token an IdP's SCIM client presents at
//! `/scim/v2` (on the admin listener). Creating a token turns SCIM on and revokes the previous
//! one; deleting it turns SCIM off. The secret is in the answer to its creation and nowhere
//! else: the server keeps only its SHA-256 hash.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The answer of `POST /api/v1/scim/token`: the new secret, shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScimToken {
    /// The bearer secret (32 random bytes, base64url). Paste it into the IdP's SCIM connector.
    pub token: String,
    /// RFC 3339.
    pub created_at: String,
}

impl std::fmt::Debug for ScimToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimToken")
            .field("token", &"…")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// The answer of `GET /api/v1/scim` and `DELETE /api/v1/scim/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScimStatus {
    /// Whether SCIM provisioning is on: a SCIM token exists.
    pub enabled: bool,
    /// When the current token was created (RFC 3339), if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_created_at: Option<String>,
    /// The SCIM base path on the admin listener, e.g. `/scim/v2`.
    pub path: String,
}
