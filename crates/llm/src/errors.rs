//! Error bodies in the wire format of the API the client called, so that SDKs and agents parse
//! the gateway's own refusals (budget, policy, auth) like the provider's.
//!
//! Anthropic: `{"type":"error","error":{"type":…,"message":…,"reason":…}}`.
//! OpenAI: `{"error":{"message":…,"type":…,"param":null,"code":<reason>}}`.
//! The reason is the gateway's machine-readable code (e.g. `budget_exceeded`).

use domain::Api;
use serde::Serialize;

/// The error body for `status`, in `api`'s shape.
pub fn error_body(api: Api, status: u16, reason: &str, message: &str) -> Vec<u8> {
    let error_type = error_type(api, status);
    let body = match api {
        Api::Anthropic => serde_json::to_vec(&AnthropicError {
            kind: "error",
            error: AnthropicDetail { kind: error_type, message, reason },
        }),
        Api::OpenAi => serde_json::to_vec(&OpenAiError {
            error: OpenAiDetail { message, kind: error_type, param: None, code: reason },
        }),
    };
    // Serializing strings into a Vec cannot fail; keep a valid body regardless.
    body.unwrap_or_else(|_| br#"{"error":{"message":"internal error"}}"#.to_vec())
}

/// The `error.type` each API uses for an HTTP status.
pub fn error_type(api: Api, status: u16) -> &'static str {
    match api {
        Api::Anthropic => match status {
            401 => "authentication_error",
            402 => "billing_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            500..=599 => "api_error",
            _ => "invalid_request_error",
        },
        Api::OpenAi => match status {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            500..=599 => "server_error",
            _ => "invalid_request_error",
        },
    }
}

#[derive(Serialize)]
struct AnthropicError<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: AnthropicDetail<'a>,
}

#[derive(Serialize)]
struct AnthropicDetail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct OpenAiError<'a> {
    error: OpenAiDetail<'a>,
}

#[derive(Serialize)]
struct OpenAiDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: &'a str,
}

#[cfg(test)]
mod tests;
