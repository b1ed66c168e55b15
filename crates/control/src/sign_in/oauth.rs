//! OAuth plumbing of the sign-in endpoints: errors as RFC 6749 §5.2 JSON, `no-store` answers,
//! and form bodies (`application/x-www-form-urlencoded`) parsed with a precise message.

use api_types::OAuthError;
use axum::{
    body::Bytes,
    response::{IntoResponse, Response},
    Json,
};
use http::{header, HeaderValue, StatusCode};
use serde::{de::DeserializeOwned, Serialize};

/// Why a sign-in request failed; answered as `{"error", "error_description"}`.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl Failure {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self { status, error, description: description.into() }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub(crate) fn access_denied(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "access_denied", description)
    }

    pub(crate) fn unavailable(description: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", description)
    }

    /// A failure of our own: logged with its detail, answered without it.
    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "sign-in request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error; see the server log",
        )
    }

    pub(crate) fn error(&self) -> &'static str {
        self.error
    }

    pub(crate) fn description(&self) -> &str {
        &self.description
    }
}

impl From<store::Error> for Failure {
    fn from(err: store::Error) -> Self {
        Failure::internal(crate::error::chain(&err))
    }
}

impl From<identity::RandomError> for Failure {
    fn from(err: identity::RandomError) -> Self {
        Failure::internal(err)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body =
            OAuthError { error: self.error.to_owned(), error_description: Some(self.description) };
        no_store((self.status, Json(body)).into_response())
    }
}

/// A JSON answer that carries tokens (or might): never cached (RFC 6749 §5.1).
pub(crate) fn no_store_json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    no_store((status, Json(body)).into_response())
}

pub(crate) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Parses a form body, naming what is wrong.
pub(crate) fn form<T: DeserializeOwned>(body: &Bytes) -> Result<T, Failure> {
    serde_urlencoded::from_bytes(body)
        .map_err(|err| Failure::invalid_request(format!("cannot read the form body: {err}")))
}

/// A required form field, present and non-empty.
pub(crate) fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, Failure> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Failure::invalid_request(format!("the `{name}` parameter is missing")))
}

/// A device or host label, as a client gives it: trimmed, printable, at most 64 characters.
pub(crate) fn client_label(value: Option<&str>) -> Option<String> {
    let label: String =
        value?.trim().chars().filter(|c| !c.is_control()).take(64).collect::<String>();
    let label = label.trim().to_owned();
    (!label.is_empty()).then_some(label)
}
