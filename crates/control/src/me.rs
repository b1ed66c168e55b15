//! `/me`: the self-service view. A person or an agent, identified by the same bearer token as on
//! the AI endpoint, sees every limit that applies to them with what is used and what is left,
//! their spend over the last 24 hours and 30 days, and their newest requests.
//!
//! Identifying callers and the live budget counters belong to the data plane; this crate reaches
//! them only through the [`SelfService`] trait, which the server implements, so `control` stays
//! independent of `proxy`. Totals and recent requests are read from the store's usage records.
//! Unlike the rest of the admin API, this route is meant for everyone: it is served on the admin
//! TCP listener too, and shows a caller nothing but their own figures.

use std::{future::Future, pin::Pin, sync::Arc};

use api_types::{ErrorBody, ErrorCode, LimitOwnerKind, LimitUse, SelfView};
use axum::{
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use domain::{Metric, Owner, Subject};
use http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::{error, limits::limit_to_dto, usage, Error};

/// How many of the caller's newest requests the view lists.
pub(crate) const RECENT_REQUESTS: u32 = 20;

const DAY_MS: i64 = 86_400_000;

/// What the self-service view needs from the data plane.
pub trait SelfService: Send + Sync {
    /// Identifies the caller from the request headers (bearer token), as the AI endpoint does.
    fn identify<'a>(
        &'a self,
        headers: &'a HeaderMap,
    ) -> Pin<Box<dyn Future<Output = Result<domain::Principal, SelfServiceError>> + Send + 'a>>;

    /// Every limit that applies to the principal with its current use.
    fn limits(&self, principal: &domain::Principal) -> Vec<domain::LimitStatus>;
}

/// Why a caller could not be identified: answered with `status` and an `ErrorBody` whose
/// `reason` is `code` (e.g. `token_missing`, `token_expired`, `idp_unavailable`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelfServiceError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl SelfServiceError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into() }
    }
}

impl IntoResponse for SelfServiceError {
    fn into_response(self) -> Response {
        // An identification failure is never a success, whatever the implementation says.
        let status = if self.status.is_client_error() || self.status.is_server_error() {
            self.status
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let class = match status {
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            s if s.is_client_error() => ErrorCode::InvalidRequest,
            _ => ErrorCode::Internal,
        };
        let body = ErrorBody::new(class, self.message).with_reason(self.code);
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[derive(Clone)]
pub(crate) struct SelfState {
    store: store::Store,
    service: Arc<dyn SelfService>,
}

/// `GET /api/v1/me`. It has no fallback of its own, so it merges into a router that has one
/// (the admin API's, or the admin TCP listener's catch-all).
pub fn self_service_router(store: store::Store, service: Arc<dyn SelfService>) -> Router {
    Router::new()
        .route(&format!("{}/me", api_types::API_PREFIX), get(me))
        .method_not_allowed_fallback(error::wrong_method)
        .with_state(SelfState { store, service })
}

#[utoipa::path(
    get, path = "/api/v1/me", tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's limits with their use, spend over the last \
            24 hours and 30 days, and newest requests", body = SelfView),
        (status = 401, description = "no bearer token, or one that was refused; `reason` says \
            why (e.g. `token_missing`, `token_expired`)", body = ErrorBody),
        (status = 503, description = "the identity provider is unreachable", body = ErrorBody),
    )
)]
pub(crate) async fn me(
    State(state): State<SelfState>,
    headers: HeaderMap,
) -> Result<Json<SelfView>, Response> {
    let principal = state.service.identify(&headers).await.map_err(IntoResponse::into_response)?;
    let limits = state.service.limits(&principal).iter().map(limit_use).collect();
    let kind = principal.kind.as_str().to_owned();
    let now = crate::sign_in::now_ms();
    let mine = |since_ms: Option<i64>, limit: Option<u32>| store::UsageQuery {
        principal: Some(principal.name.clone()),
        principal_kind: Some(kind.clone()),
        since_ms,
        limit,
        ..store::UsageQuery::default()
    };
    let (day, month, recent) = (
        mine(Some(now - DAY_MS), None),
        mine(Some(now - 30 * DAY_MS), None),
        mine(None, Some(RECENT_REQUESTS)),
    );
    let (day, month, recent) = tokio::try_join!(
        state.store.usage_summary(&day),
        state.store.usage_summary(&month),
        state.store.usage(&recent),
    )
    .map_err(|err| Error::from(err).into_response())?;
    Ok(Json(SelfView {
        principal: principal.name,
        kind,
        groups: principal.groups,
        limits,
        last_24h: usage::sum_totals(&day),
        last_30d: usage::sum_totals(&month),
        recent: recent.into_iter().map(usage::to_dto).collect(),
    }))
}

/// One limit's status as the caller reads it, in the limit's own unit.
pub(crate) fn limit_use(status: &domain::LimitStatus) -> LimitUse {
    let (owner_kind, owner) = match &status.owner {
        Owner::Global(name) => (LimitOwnerKind::Global, name.clone()),
        Owner::Policy(name) => (LimitOwnerKind::Policy, name.clone()),
    };
    let applies_to = match &status.subject {
        Subject::Principal(_) => "you".to_owned(),
        Subject::Group(group) => format!("group {group}"),
        Subject::All => "everyone".to_owned(),
    };
    let amount = |n: u64| match status.limit.metric {
        Metric::Spend => n as f64 / 1_000_000.0,
        Metric::Tokens | Metric::Requests => n as f64,
    };
    LimitUse {
        owner_kind,
        owner,
        limit: limit_to_dto(&status.limit),
        applies_to,
        used: amount(status.used),
        remaining: amount(status.remaining),
        cap: amount(status.limit.cap),
    }
}

#[cfg(test)]
mod tests;
