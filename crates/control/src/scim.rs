//! The SCIM 2.0 server (RFC 7643, RFC 7644) under `/scim/v2`, through which an IdP (Okta,
//! Entra ID, …) provisions users and groups: `Users` and `Groups` (list with filter and
//! pagination, `.search`, get, create, replace, patch, delete), `/.search` across both, and the
//! discovery endpoints `ServiceProviderConfig`, `ResourceTypes` and `Schemas`.
//!
//! - Authentication: `Authorization: Bearer <secret>`, the secret an admin generated with
//!   `POST /api/v1/scim/token` (`agentnet admin scim token`); the store keeps its SHA-256 hash
//!   and compares in constant time. No token, no SCIM: every request is a 401.
//! - Every answer is `application/scim+json`; errors are SCIM error bodies (RFC 7644 §3.12).
//! - Users are deactivated with `active: false` (Okta never deletes users; Entra does) and
//!   deleted with DELETE; both, and every other successful change, await
//!   [`ScimState::on_change`] before the response goes out, so the data plane's next request
//!   already sees the change.
//! - Resources are stored as the JSON last written (normalized, see `schema`), so enterprise
//!   extension and unknown attributes round-trip; the store indexes what agentnet queries.
//!
//! The IdP quirks handled are listed in `patch` (PATCH shapes), `filter` (filters) and
//! `schema` (value normalization).

mod discovery;
mod error;
mod filter;
mod patch;
mod resources;
mod schema;
pub(crate) mod token;

#[cfg(test)]
mod tests;

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get, post, MethodRouter},
    Router,
};
use http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use error::ScimError;

/// Where the SCIM endpoints are mounted.
pub const SCIM_PREFIX: &str = "/scim/v2";

pub(crate) const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub(crate) const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(crate) const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The most resources one list answer holds (`filter.maxResults`); also the page size when a
/// client asks for none.
pub(crate) const MAX_RESULTS: u64 = 1000;

/// What the SCIM handlers share.
#[derive(Clone)]
pub struct ScimState {
    pub store: store::Store,
    /// Awaited after every successful change, before the response is sent: the server swaps the
    /// data plane's directory in it.
    pub on_change: Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>,
}

impl ScimState {
    async fn changed(&self) {
        (self.on_change)().await;
    }
}

/// The SCIM router: every route is under [`SCIM_PREFIX`] and needs the SCIM bearer token. It
/// has no fallback of its own (unknown paths under the prefix are answered by a catch-all
/// route), so it merges into a router that has one.
pub fn scim_router(state: ScimState) -> Router {
    let at = |path: &str| format!("{SCIM_PREFIX}{path}");
    let only = |route: MethodRouter<ScimState>| route.fallback(wrong_method);
    Router::new()
        .route(&at("/ServiceProviderConfig"), only(get(discovery::service_provider_config)))
        .route(&at("/ResourceTypes"), only(get(discovery::resource_types)))
        .route(&at("/ResourceTypes/{id}"), only(get(discovery::resource_type)))
        .route(&at("/Schemas"), only(get(discovery::schemas)))
        .route(&at("/Schemas/{id}"), only(get(discovery::schema)))
        .route(&at("/Users"), only(get(resources::list_users).post(resources::create_user)))
        .route(&at("/Users/.search"), only(post(resources::search_users)))
        .route(
            &at("/Users/{id}"),
            only(
                get(resources::get_user)
                    .put(resources::replace_user)
                    .patch(resources::patch_user)
                    .delete(resources::delete_user),
            ),
        )
        .route(&at("/Groups"), only(get(resources::list_groups).post(resources::create_group)))
        .route(&at("/Groups/.search"), only(post(resources::search_groups)))
        .route(
            &at("/Groups/{id}"),
            only(
                get(resources::get_group)
                    .put(resources::replace_group)
                    .patch(resources::patch_group)
                    .delete(resources::delete_group),
            ),
        )
        .route(&at("/.search"), only(post(resources::search_all)))
        .route(SCIM_PREFIX, any(no_route))
        .route(&at("/{*rest}"), any(no_route))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// Lets a request through only with the current SCIM bearer secret.
async fn authenticate(State(state): State<ScimState>, request: Request, next: Next) -> Response {
    let Some(presented) = bearer(request.headers()) else {
        return ScimError::unauthorized("send the SCIM token as 'Authorization: Bearer <token>'")
            .into_response();
    };
    match state.store.scim_token_matches(presented).await {
        Ok(true) => next.run(request).await,
        Ok(false) => match state.store.scim_enabled().await {
            Ok(true) => ScimError::unauthorized("the SCIM token is not valid").into_response(),
            Ok(false) => ScimError::unauthorized(
                "SCIM provisioning is off: an admin turns it on with `agentnet admin scim token`",
            )
            .into_response(),
            Err(err) => ScimError::from(err).into_response(),
        },
        Err(err) => ScimError::from(err).into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn no_route(uri: http::Uri) -> ScimError {
    ScimError::not_found(format!("no SCIM endpoint at {}", uri.path()))
}

async fn wrong_method() -> ScimError {
    ScimError::method_not_allowed()
}

/// A SCIM JSON response.
pub(crate) fn scim_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/scim+json"));
    response
}

/// A JSON request body, whatever its content type (`application/scim+json` or
/// `application/json`); anything else is a 400 `invalidSyntax`.
pub(crate) struct ScimBody(pub(crate) Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ScimError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            ScimError::invalid_syntax(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        })?;
        serde_json::from_slice(&bytes).map(ScimBody).map_err(|err| {
            ScimError::invalid_syntax(format!("the request body is not JSON: {err}"))
        })
    }
}

/// Query parameters, by lowercased name (SCIM clients vary in the case of `startIndex`).
pub(crate) struct ScimQuery(pub(crate) HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for ScimQuery {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ScimError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
                .map_err(|err| ScimError::invalid_syntax(format!("invalid query string: {err}")))?;
        Ok(ScimQuery(pairs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect()))
    }
}

/// The absolute URL of the SCIM root as the client reached it (`meta.location`, `$ref`):
/// `X-Forwarded-Proto` / `X-Forwarded-Host` when a proxy sets them, else `Host`.
pub(crate) struct BaseUrl(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ScimError> {
        let first = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let scheme = match first("x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            Some(_) => "http",
            None => parts.uri.scheme_str().filter(|s| *s == "https").unwrap_or("http"),
        };
        let host = first("x-forwarded-host")
            .or_else(|| first(header::HOST.as_str()))
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b)))
            .unwrap_or("localhost");
        Ok(BaseUrl(format!("{scheme}://{host}{SCIM_PREFIX}")))
    }
}
