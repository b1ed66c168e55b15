//! The admin side of SCIM (on the admin socket, under `/api/v1`): `POST /scim/token` creates
//! the bearer secret SCIM clients present, revoking the previous one, and answers with it once;
//! `DELETE /scim/token` turns SCIM off; `GET /scim` tells whether it is on. The secret is never
//! logged.

use api_types::{ErrorBody, ScimStatus, ScimToken};
use axum::{extract::State, http::StatusCode, Json};
use secrecy::ExposeSecret;
use serde_json::json;

use super::SCIM_PREFIX;
use crate::{audit::Caller, ControlState, Error};

/// What the audit log shows of the token: when it was created, never the secret or its hash.
fn snapshot(created_at_ms: i64) -> serde_json::Value {
    json!({"created_at": api_types::time::format_rfc3339(created_at_ms)})
}

#[utoipa::path(
    get, path = "/api/v1/scim", tag = "scim",
    responses((status = 200, description = "whether SCIM provisioning is on", body = ScimStatus))
)]
pub(crate) async fn status(State(state): State<ControlState>) -> Result<Json<ScimStatus>, Error> {
    Ok(Json(status_of(&state).await?))
}

#[utoipa::path(
    post, path = "/api/v1/scim/token", tag = "scim",
    responses(
        (status = 201, description = "the new SCIM token, shown this once; the previous one no longer works", body = ScimToken),
        (status = 500, body = ErrorBody),
    )
)]
pub(crate) async fn create_token(
    State(state): State<ControlState>,
    caller: Caller,
) -> Result<(StatusCode, Json<ScimToken>), Error> {
    let issued = state
        .store
        .scim_token_rotate(|previous, created| {
            let mut entry = caller.entry_named("scim.token.create", "scim-token", "token");
            entry.before = previous.map(snapshot);
            entry.after = Some(snapshot(created));
            entry
        })
        .await?;
    tracing::info!("SCIM token created; any previous one is revoked");
    state.changed();
    Ok((
        StatusCode::CREATED,
        Json(ScimToken {
            token: issued.secret.expose_secret().to_owned(),
            created_at: api_types::time::format_rfc3339(issued.created_at_ms),
        }),
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/scim/token", tag = "scim",
    responses((status = 200, description = "SCIM provisioning is off", body = ScimStatus))
)]
pub(crate) async fn delete_token(
    State(state): State<ControlState>,
    caller: Caller,
) -> Result<Json<ScimStatus>, Error> {
    let revoked = state
        .store
        .scim_token_revoke(|previous| {
            let mut entry = caller.entry_named("scim.token.revoke", "scim-token", "token");
            entry.before = Some(snapshot(previous));
            entry
        })
        .await?;
    if revoked {
        tracing::info!("SCIM token revoked; SCIM provisioning is off");
        state.changed();
    }
    Ok(Json(status_of(&state).await?))
}

async fn status_of(state: &ControlState) -> Result<ScimStatus, Error> {
    let created = state.store.scim_token_created_at().await?;
    Ok(ScimStatus {
        enabled: created.is_some(),
        token_created_at: created.map(api_types::time::format_rfc3339),
        path: SCIM_PREFIX.to_owned(),
    })
}
