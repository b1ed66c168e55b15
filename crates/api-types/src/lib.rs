//! The admin API v1 wire types: every JSON body that `control` serves and `cli` sends or reads.
//!
//! Architecture invariant: this is the only crate that defines admin JSON. Domain and store types
//! are not `Serialize`; `control` maps them to and from these DTOs. A provider's key travels in
//! request bodies only (`ApiKey`, write-only): no response type has a field that could carry it.
//! The secrets a response carries go once to whoever asked for them: a new SCIM token
//! (`ScimToken`), setup key (`SetupKeyCreated`) or generated password (`LocalUserCreated`) to
//! the admin who created it, session tokens (`TokenResponse`) to the client that signed in. The
//! server keeps only hashes. Their `Debug` output leaves the secrets out.
//!
//! Enumerations (`ProviderKind`, `GatewayPreset`, …) are spelled on the wire exactly as the
//! config file spells them, so an operator can copy values between the two.

mod audit;
mod directory;
mod error;
mod limit;
mod me;
mod peers;
mod policy;
mod provider;
mod scim;
mod sign_in;
pub mod time;
mod usage;

#[cfg(test)]
mod tests;

pub use audit::{AuditEntry, AuditQuery};
pub use directory::{Agent, AgentInput, Group, GroupInput};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use limit::{
    format_window, parse_window, GlobalLimit, GlobalLimitInput, Limit, LimitPer, WindowError,
};
pub use me::{LimitOwnerKind, LimitUse, SelfView};
pub use peers::{PeerQuery, PeerRegistration, PeerRename, PeerView, TunnelConfig};
pub use policy::{Policy, PolicyInput, PolicySources};
pub use provider::{
    Api, ApiKey, GatewayPreset, ModelPrice, Provider, ProviderInput, ProviderKind, SetKeyRequest,
    SetKeyResponse, Stamping,
};
pub use scim::{ScimStatus, ScimToken};
pub use sign_in::{
    DeviceAuthorization, EnrollRequest, LocalUser, LocalUserCreated, LocalUserInput, OAuthError,
    PasswordInput, Session, SessionIdentity, SessionQuery, SessionsRevoked, SetupKey,
    SetupKeyCreated, SetupKeyInput, TokenResponse, AUTH_PREFIX, DEVICE_CODE_GRANT,
};
pub use usage::{micro_to_usd, PrincipalUsage, UsageQuery, UsageRecord, UsageSummary, UsageTotals};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The path prefix of every admin route.
pub const API_PREFIX: &str = "/api/v1";

/// Who owns a record: the config file (re-applied at every server start, so the API refuses to
/// change it) or the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ManagedBy {
    Config,
    Api,
}

impl ManagedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedBy::Config => "config",
            ManagedBy::Api => "api",
        }
    }
}
