//! The OpenAPI 3.1 document of the admin API, generated from the handlers' annotations and the
//! `api-types` schemas, served at `/api/v1/openapi.json`.

use axum::Json;
use utoipa::{
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
    Modify, OpenApi,
};

use crate::{accounts, audit, directory, limits, me, peers, policies, providers, scim, usage};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agentnet admin API",
        version = "1",
        description = "Providers (with write-only keys), groups, agents, policies, global limits, usage and logs, the audit log, sign-in records and overlay peers; the self-service view `/api/v1/me`, where any caller with a bearer token sees their own usage and caps; and `/api/v1/me/peers`, where a device registers its WireGuard public key with an agentnet session."
    ),
    modifiers(&BearerToken),
    paths(
        providers::list, providers::create, providers::show, providers::replace, providers::remove,
        providers::set_key,
        directory::list_groups, directory::create_group, directory::show_group,
        directory::replace_group, directory::remove_group,
        directory::list_agents, directory::create_agent, directory::show_agent,
        directory::replace_agent, directory::remove_agent,
        policies::list, policies::create, policies::show, policies::replace, policies::remove,
        limits::list, limits::create, limits::show, limits::replace, limits::remove,
        usage::records, usage::logs, usage::summary,
        audit::list,
        scim::token::status, scim::token::create_token, scim::token::delete_token,
        accounts::list_users, accounts::create_user, accounts::show_user, accounts::update_user,
        accounts::delete_user, accounts::set_password,
        accounts::list_setup_keys, accounts::create_setup_key, accounts::show_setup_key,
        accounts::revoke_setup_key,
        accounts::list_sessions, accounts::show_session, accounts::revoke_session,
        accounts::revoke_sessions_of,
        peers::list, peers::show, peers::rename, peers::revoke,
        peers::register, peers::list_own, peers::remove_own,
        me::me,
        document,
    ),
    components(schemas(
        api_types::Provider, api_types::ProviderInput, api_types::ProviderKind, api_types::Api,
        api_types::GatewayPreset, api_types::Stamping, api_types::ModelPrice, api_types::ApiKey,
        api_types::SetKeyRequest, api_types::SetKeyResponse, api_types::ManagedBy,
        api_types::Group, api_types::GroupInput, api_types::Agent, api_types::AgentInput,
        api_types::Policy, api_types::PolicyInput, api_types::PolicySources,
        api_types::Limit, api_types::LimitPer, api_types::GlobalLimit, api_types::GlobalLimitInput,
        api_types::UsageRecord, api_types::UsageQuery, api_types::UsageSummary,
        api_types::PrincipalUsage, api_types::UsageTotals,
        api_types::AuditEntry, api_types::AuditQuery,
        api_types::ScimToken, api_types::ScimStatus,
        api_types::SelfView, api_types::LimitUse, api_types::LimitOwnerKind,
        api_types::LocalUser, api_types::LocalUserInput, api_types::LocalUserCreated,
        api_types::PasswordInput, api_types::SetupKey, api_types::SetupKeyInput,
        api_types::SetupKeyCreated, api_types::Session, api_types::SessionsRevoked,
        api_types::PeerRegistration, api_types::PeerView, api_types::TunnelConfig,
        api_types::PeerRename,
        api_types::ErrorBody, api_types::ErrorDetail, api_types::ErrorCode,
    )),
    tags(
        (name = "providers", description = "upstream LLM APIs and their keys"),
        (name = "groups", description = "the local directory's groups"),
        (name = "agents", description = "non-human identities"),
        (name = "policies", description = "default-deny allow rules, with their limits"),
        (name = "limits", description = "global limits: caps checked before any policy"),
        (name = "usage", description = "usage records, logs and summaries"),
        (name = "audit", description = "every admin change: who, when, the record before and after"),
        (name = "scim", description = "the SCIM token an IdP provisions users and groups with, at /scim/v2"),
        (name = "users", description = "local accounts: the embedded identity provider's people, when no external IdP is configured"),
        (name = "setup-keys", description = "keys agents enroll with (POST /auth/enroll)"),
        (name = "sessions", description = "sessions agentnet issued after a sign-in or an enrollment"),
        (name = "peers", description = "WireGuard overlay peers: devices register their public key with their agentnet session (/api/v1/me/peers); admins list, rename and revoke them"),
        (name = "me", description = "the caller's own usage and caps, by bearer token"),
        (name = "meta", description = "this document"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme of `/me` and `/me/peers`: an access token, as the AI endpoint
/// takes it (`/me/peers` takes only agentnet session tokens).
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an access token: an agentnet session's (`agentnet_at_…`), or on `/api/v1/me` also one from the identity provider"))
                    .build(),
            ),
        );
    }
}

#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "this OpenAPI document", content_type = "application/json"))
)]
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
