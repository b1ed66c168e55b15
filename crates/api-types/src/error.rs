//! The error body of every failed admin request: `{"error": {"code", "message"}}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What every non-2xx admin response carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// A lowercase sentence for people; it never contains a secret.
    pub message: String,
    /// The offending request field (e.g. `base_url`, `stamping.preset`) on validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A finer machine-readable reason where the class is not enough, e.g. `token_expired` or
    /// `token_missing` on a 401 `unauthenticated` (the same codes as the AI endpoint's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A machine-readable error class; the HTTP status follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body, path or query string is malformed or fails validation.
    InvalidRequest,
    /// 404: no record by that name, or no such route.
    NotFound,
    /// 405: the route exists but not with that method.
    MethodNotAllowed,
    /// 409: a record by that name already exists (on create).
    AlreadyExists,
    /// 409: the record is owned by the config file; change it there.
    ManagedByConfig,
    /// 401: the caller could not be identified (no bearer token, or one that was refused).
    Unauthenticated,
    /// 403: the caller is identified but may not do this (e.g. not in the admin group).
    Forbidden,
    /// 503: something the server depends on (e.g. the identity provider) is unreachable.
    Unavailable,
    /// 500: something failed inside the server; the details are in its log.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::ManagedByConfig => "managed_by_config",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code, message: message.into(), field: None, reason: None } }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.error.field = Some(field.into());
        self
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.error.reason = Some(reason.into());
        self
    }
}
