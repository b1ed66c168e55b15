//! The admin REST API v1, served under `/api/v1`: providers (with write-only keys), groups,
//! agents, policies (with their limits), global limits, usage records, per-principal summaries,
//! the audit log and the OpenAPI document; and, apart, the self-service view `/api/v1/me`
//! ([`self_service_router`]), where any caller with a valid bearer token sees their own usage
//! and caps; and the SCIM 2.0 server under `/scim/v2` ([`scim_router`]), through which an IdP
//! provisions users and groups with the SCIM token created at `POST /api/v1/scim/token`; and
//! WireGuard overlay peers ([`peers_router`] for devices registering themselves with their
//! agentnet session, `/api/v1/peers` in [`accounts_router`] for admins).
//!
//! API boundary: requests and responses are `api-types` DTOs only; this crate maps them to and
//! from `domain` and `store` types. Every successful mutation records an audit entry in the
//! same store transaction as its change (who: the request's [`Actor`]; before and after: the
//! record's response DTO), then calls `ControlState::on_change` so the server can rebuild the
//! data plane's snapshot. Records owned by the config file are read-only here (409), except that
//! a config-managed provider's key may be set. Keys are never logged, returned or audited: only
//! their fingerprint (last four characters).

mod accounts;
mod audit;
mod directory;
mod error;
mod extract;
mod limits;
mod me;
mod openapi;
mod peers;
mod policies;
mod providers;
mod scim;
mod sign_in;
mod usage;
mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::{
    routing::{get, post, put},
    Router,
};

pub use accounts::accounts_router;
pub use audit::{audit_changes, record_snapshots, Actor};
pub use error::Error;
pub use me::{self_service_router, SelfService, SelfServiceError};
pub use openapi::ApiDoc;
pub use peers::{peers_router, OverlayInfo};
pub use scim::{scim_router, ScimState, SCIM_PREFIX};
pub use sign_in::{
    sign_in_router, Admit, AfterChange, Broker, DeviceRecheck, IdentitySource, SignInSettings,
    SignInState, MAX_PENDING,
};

/// What the admin handlers share.
#[derive(Clone)]
pub struct ControlState {
    pub store: store::Store,
    /// Called after every successful mutation (the server rebuilds the data plane snapshot).
    pub on_change: Arc<dyn Fn() + Send + Sync>,
}

impl ControlState {
    pub fn new(store: store::Store, on_change: impl Fn() + Send + Sync + 'static) -> Self {
        Self { store, on_change: Arc::new(on_change) }
    }

    fn changed(&self) {
        (self.on_change)();
    }
}

/// How a handler writes a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// POST: insert; a record by that name, whoever manages it, is a 409 `already_exists`.
    Create,
    /// PUT: insert or replace; a config-managed record is a 409 `managed_by_config`.
    Replace,
}

/// The status a PUT answers with: whether the record existed is read in the write's own
/// transaction.
fn put_status(existed: bool) -> http::StatusCode {
    if existed {
        http::StatusCode::OK
    } else {
        http::StatusCode::CREATED
    }
}

/// The admin API router; every route is under `/api/v1`. Unknown routes and methods answer with
/// the JSON `ErrorBody` too.
pub fn router(state: ControlState) -> Router {
    let api = |path: &str| format!("{}{path}", api_types::API_PREFIX);
    Router::new()
        .route(&api("/providers"), get(providers::list).post(providers::create))
        .route(
            &api("/providers/{name}"),
            get(providers::show).put(providers::replace).delete(providers::remove),
        )
        .route(&api("/providers/{name}/key"), put(providers::set_key))
        .route(&api("/groups"), get(directory::list_groups).post(directory::create_group))
        .route(
            &api("/groups/{name}"),
            get(directory::show_group)
                .put(directory::replace_group)
                .delete(directory::remove_group),
        )
        .route(&api("/agents"), get(directory::list_agents).post(directory::create_agent))
        .route(
            &api("/agents/{name}"),
            get(directory::show_agent)
                .put(directory::replace_agent)
                .delete(directory::remove_agent),
        )
        .route(&api("/policies"), get(policies::list).post(policies::create))
        .route(
            &api("/policies/{name}"),
            get(policies::show).put(policies::replace).delete(policies::remove),
        )
        .route(&api("/limits"), get(limits::list).post(limits::create))
        .route(
            &api("/limits/{name}"),
            get(limits::show).put(limits::replace).delete(limits::remove),
        )
        .route(&api("/usage"), get(usage::records))
        .route(&api("/usage/summary"), get(usage::summary))
        .route(&api("/logs"), get(usage::logs))
        .route(&api("/audit"), get(audit::list))
        .route(&api("/scim"), get(scim::token::status))
        .route(
            &api("/scim/token"),
            post(scim::token::create_token).delete(scim::token::delete_token),
        )
        .route(&api("/openapi.json"), get(openapi::document))
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .with_state(state)
}
