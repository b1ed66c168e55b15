//! Sign-in: the OAuth-shaped endpoints under `/auth` on the admin listener (device flow, auth
//! code + PKCE, refresh, revocation, agent enrollment with a setup key), and the admin API's
//! local accounts, setup keys and sessions.
//!
//! agentnet issues its own opaque session tokens (`agentnet_at_…` access, `agentnet_rt_…`
//! refresh) after the person signs in at the company IdP (brokered by the server: the CLI talks
//! only to agentnet) or with a local account. The server keeps only their SHA-256 digests.
//! Secrets a response carries, once, to the one who asked: tokens to the signed-in client, a new
//! setup key or a generated password to the admin who created it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The path prefix of the sign-in endpoints.
pub const AUTH_PREFIX: &str = "/auth";

/// The grant type of the device flow (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The answer of `POST /auth/device` (RFC 8628 §3.2).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceAuthorization {
    /// Opaque; the client polls `POST /auth/token` with it.
    pub device_code: String,
    /// What the person types at `verification_uri`, e.g. `BDWP-HQPK`.
    pub user_code: String,
    pub verification_uri: String,
    /// `verification_uri` with the code filled in, when the IdP offers one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// Who a session belongs to, as the server saw it at sign-in or refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionIdentity {
    /// `user` or `agent`.
    pub kind: String,
    /// A person's email, an agent's name.
    pub name: String,
    pub groups: Vec<String>,
    /// The session's id (what `agentnet admin sessions` lists).
    pub session_id: String,
    /// RFC 3339: when the session ends and a fresh sign-in is needed.
    pub session_expires_at: String,
}

/// The answer of `POST /auth/token` and `POST /auth/enroll` (RFC 6749 §5.1, plus `identity`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// `agentnet_at_…`: the bearer token for the AI endpoint and `/api/v1/me`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    /// `agentnet_rt_…`: exchanged at `POST /auth/token` for new tokens; rotated on every use.
    pub refresh_token: String,
    pub identity: SessionIdentity,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// An error of the `/auth` endpoints, shaped as RFC 6749 §5.2 (and RFC 8628 §3.5) say, so that
/// OAuth clients understand it: `error` is `authorization_pending`, `slow_down`,
/// `expired_token`, `access_denied`, `invalid_grant`, `invalid_request`, `invalid_client`,
/// `unsupported_grant_type`, `invalid_setup_key`, `temporarily_unavailable` or `server_error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuthError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The body of `POST /auth/enroll`: an agent trades a setup key for a session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// `agentnet_sk_…`, as the admin handed it out.
    pub setup_key: String,
    /// The agent's name. Required unless the key is bound to an agent (then it must match or be
    /// left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A label for the device or host (shown in session lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("name", &self.name)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// A local account: a person of the embedded IdP (used when no external IdP is configured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LocalUser {
    /// Lower-case login name.
    pub username: String,
    /// What logs, usage records and stamped headers name the person by.
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub groups: Vec<String>,
    /// A deactivated account cannot sign in; its sessions are revoked.
    pub active: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// The body of `POST /users` and `PUT /users/{username}`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalUserInput {
    /// Required on `POST`; on `PUT` it may be left out, and must match the path if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Only on `POST`: the initial password (at least 12 characters). Left out, the server
    /// generates one and returns it once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl std::fmt::Debug for LocalUserInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalUserInput")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("groups", &self.groups)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// The answer of `POST /users` and `PUT /users/{username}/password`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LocalUserCreated {
    pub user: LocalUser,
    /// The password the server generated, shown this once; absent when the admin chose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_password: Option<String>,
}

impl std::fmt::Debug for LocalUserCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalUserCreated").field("user", &self.user).finish_non_exhaustive()
    }
}

/// The body of `PUT /users/{username}/password`. Without `password`, the server generates one.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl std::fmt::Debug for PasswordInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordInput { .. }")
    }
}

/// A setup key, as the admin API shows it: never the key itself, only its first characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetupKey {
    pub name: String,
    /// The key's first 16 characters, to recognise it.
    #[schema(example = "agentnet_sk_AbCd")]
    pub prefix: String,
    /// The agent it enrolls as; absent: the enrolling agent names itself and is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Groups given to an agent the key creates.
    pub auto_groups: Vec<String>,
    /// 1 for a one-time key.
    pub max_uses: u32,
    pub uses: u32,
    /// RFC 3339.
    pub expires_at: String,
    /// `valid`, `expired`, `exhausted` or `revoked`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    pub created_at: String,
    pub created_by: String,
}

/// The body of `POST /setup-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupKeyInput {
    pub name: String,
    /// Bind the key to this existing agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default)]
    pub auto_groups: Vec<String>,
    /// How many enrollments it allows; default 1 (one-time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// How long it stays valid: `30m`, `24h`, `7d`; default `24h`, at most `365d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// The answer of `POST /setup-keys`: the key, shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetupKeyCreated {
    pub setup_key: SetupKey,
    /// `agentnet_sk_…`: hand it to the agent (`agentnet enroll --setup-key …`).
    pub key: String,
}

impl std::fmt::Debug for SetupKeyCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupKeyCreated")
            .field("setup_key", &self.setup_key)
            .finish_non_exhaustive()
    }
}

/// A session agentnet issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub id: String,
    /// `user` or `agent`.
    pub kind: String,
    pub name: String,
    pub subject: String,
    /// Groups as of the last sign-in or refresh (the data plane applies SCIM and local-account
    /// changes at once, whatever this says).
    pub groups: Vec<String>,
    /// `oidc`, `local` or `setup_key`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub created_at: String,
    pub refreshed_at: String,
    /// When a fresh sign-in is needed.
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
}

/// Query of `GET /sessions` and `DELETE /sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// Only this person's or agent's sessions (case-insensitive). Required on `DELETE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Include revoked and expired sessions.
    #[serde(default)]
    pub all: bool,
}

/// The answer of `DELETE /sessions` and `DELETE /sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionsRevoked {
    /// Ids of the sessions this revoked (already revoked ones are not counted).
    pub revoked: Vec<String>,
}
