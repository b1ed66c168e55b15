//! The admin API's error type and its mapping to a status and a JSON `ErrorBody`.
//!
//! Clients never see internals: a store failure is logged here, with its source chain, and
//! answered with a bare 500.

use api_types::{ErrorBody, ErrorCode};
use axum::{
    response::{IntoResponse, Response},
    Json,
};
use http::StatusCode;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the request failed validation.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The body or query string could not be decoded.
    #[error("{message}")]
    Malformed { field: Option<String>, message: String },
    #[error("{kind} '{name}' does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} '{name}' already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("{kind} '{name}' is managed by the config file; change it there")]
    ManagedByConfig { kind: &'static str, name: String },
    #[error("no such route: {0}")]
    NoRoute(String),
    #[error("method {0} is not allowed here")]
    WrongMethod(http::Method),
    #[error("internal error")]
    Store(#[source] store::Error),
    /// A failure that is the server's own (e.g. a request carrying an actor the audit log does
    /// not know), logged with its detail and answered with a bare 500.
    #[error("internal error")]
    Internal(String),
}

impl From<store::Error> for Error {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::NotFound { kind, name } => Error::NotFound { kind, name },
            store::Error::AlreadyExists { kind, name } => Error::AlreadyExists { kind, name },
            store::Error::ManagedByConfig { kind, name } => Error::ManagedByConfig { kind, name },
            err => Error::Store(err),
        }
    }
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid { field: field.into(), message: message.into() }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Error::Invalid { .. } | Error::Malformed { .. } => ErrorCode::InvalidRequest,
            Error::NotFound { .. } | Error::NoRoute(_) => ErrorCode::NotFound,
            Error::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Error::ManagedByConfig { .. } => ErrorCode::ManagedByConfig,
            Error::WrongMethod(_) => ErrorCode::MethodNotAllowed,
            Error::Store(_) | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    fn status(&self) -> StatusCode {
        match self.code() {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::AlreadyExists | ErrorCode::ManagedByConfig => StatusCode::CONFLICT,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Error::Store(err) => {
                tracing::error!(error = %chain(err), "admin request failed in the store");
            }
            Error::Internal(detail) => tracing::error!(error = %detail, "admin request failed"),
            _ => {}
        }
        let field = match &self {
            Error::Invalid { field, .. } => Some(field.clone()),
            Error::Malformed { field, .. } => field.clone(),
            _ => None,
        };
        let mut body = ErrorBody::new(self.code(), self.to_string());
        body.error.field = field;
        (self.status(), Json(body)).into_response()
    }
}

/// An error and its sources, `: `-separated, for the log.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        out.push_str(": ");
        out.push_str(&err.to_string());
        source = err.source();
    }
    out
}

pub(crate) async fn no_route(uri: http::Uri) -> Error {
    Error::NoRoute(uri.path().to_owned())
}

pub(crate) async fn wrong_method(method: http::Method) -> Error {
    Error::WrongMethod(method)
}
