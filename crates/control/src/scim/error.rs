//! SCIM errors (RFC 7644 §3.12): `{"schemas": [Error URN], "status": "409", "scimType":
//! "uniqueness", "detail": …}` with the status as a string, served as `application/scim+json`.
//!
//! A store failure is logged here, with its source chain, and answered with a bare 500.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde_json::json;

use super::{scim_response, ERROR_URN};
use crate::error::chain;

/// Why a SCIM request failed.
#[derive(Debug)]
pub(crate) struct ScimError {
    pub(crate) status: StatusCode,
    /// RFC 7644 §3.12's `scimType` (`uniqueness`, `invalidFilter`, `invalidValue`, …).
    pub(crate) scim_type: Option<&'static str>,
    pub(crate) detail: String,
    /// A store failure, logged when the response is built (never shown to the client).
    source: Option<store::Error>,
}

impl ScimError {
    pub(crate) fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        Self { status, scim_type, detail: detail.into(), source: None }
    }

    pub(crate) fn bad_request(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub(crate) fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request("invalidValue", detail)
    }

    pub(crate) fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request("invalidFilter", detail)
    }

    pub(crate) fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request("invalidPath", detail)
    }

    pub(crate) fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request("invalidSyntax", detail)
    }

    pub(crate) fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request("noTarget", detail)
    }

    pub(crate) fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request("mutability", detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub(crate) fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
    }

    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, None, detail)
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            "this endpoint does not support that method",
        )
    }
}

impl From<store::Error> for ScimError {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::NotFound { kind, name } => {
                Self::not_found(format!("{kind} '{name}' not found"))
            }
            store::Error::AlreadyExists { kind, name } => {
                Self::uniqueness(format!("a {kind} named '{name}' already exists"))
            }
            store::Error::UnknownMember(id) => {
                Self::invalid_value(format!("member '{id}' is not a SCIM user of this service"))
            }
            err => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                scim_type: None,
                detail: "internal error".into(),
                source: Some(err),
            },
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        if let Some(err) = &self.source {
            tracing::error!(error = %chain(err), "SCIM request failed in the store");
        }
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": self.status.as_str(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        let mut response = scim_response(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"agentnet-scim\""),
            );
        }
        response
    }
}
