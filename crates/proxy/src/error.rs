//! The data plane's one error type and its one mapping to an HTTP response: a status, a body in
//! the called API's error shape, and a reason code for records and metrics. Clients never see
//! internals; the source chain is logged once, where the response is made.

use domain::{Api, DenyReason, RouteError};
use http::StatusCode;

/// Where a failure comes from: decides status class, retry advice and whether it is billable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    Client,
    Upstream,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no such endpoint: {method} {path}")]
    UnknownEndpoint { method: String, path: String },
    #[error("{0}")]
    Unauthenticated(#[source] identity::AuthError),
    #[error("this gateway accepts only agentnet session tokens (sign in with `agentnet login`): it has no external identity provider ([oidc] issuer)")]
    IdentityNotConfigured,
    #[error("your account is deactivated")]
    Deactivated,
    #[error("no live peer holds overlay address {0}: its registration was revoked or expired; run `agentnet up` again")]
    UnknownPeer(std::net::Ipv4Addr),
    #[error("requests from web pages are refused on the overlay: a page could otherwise spend your budget through your tunnel (DNS rebinding); call the AI endpoint from programs")]
    BrowserRequest,
    #[error("the identity provider is unreachable; try again shortly")]
    IdpUnavailable(#[source] identity::AuthError),
    #[error("{message}")]
    BadRequest { reason: &'static str, message: String },
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{}", route_message(.0))]
    Route(RouteError),
    #[error("{}", deny_message(*.reason, .provider, .model.as_deref()))]
    Denied { reason: DenyReason, provider: String, model: Option<String> },
    #[error("{}", .refusal.message(*.now))]
    Refused { refusal: Box<domain::Refusal>, now: u64 },
    #[error("provider '{0}' has no API key configured")]
    NoProviderKey(String),
    #[error("could not reach provider '{provider}'")]
    UpstreamUnreachable {
        provider: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("provider '{provider}' did not answer within {seconds} s")]
    UpstreamTimeout { provider: String, seconds: u64 },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn route_message(err: &RouteError) -> String {
    match err {
        RouteError::UnknownProvider(name) => format!("no provider named '{name}'"),
        RouteError::WrongApi { provider, api } => {
            format!("provider '{provider}' does not serve the {} API", api.as_str())
        }
        RouteError::NoProvider { api, model: Some(model) } => {
            format!("no {} provider serves model '{model}'", api.as_str())
        }
        RouteError::NoProvider { api, model: None } => {
            format!("no provider serves the {} API", api.as_str())
        }
    }
}

fn deny_message(reason: DenyReason, provider: &str, model: Option<&str>) -> String {
    match reason {
        DenyReason::NoPolicy => {
            format!("no policy allows you to use provider '{provider}'; ask an admin for access")
        }
        DenyReason::ModelNotAllowed => format!(
            "model '{}' is not allowed for you on provider '{provider}'",
            model.unwrap_or("")
        ),
    }
}

impl ProxyError {
    pub fn source_kind(&self) -> ErrorSource {
        match self {
            ProxyError::UpstreamUnreachable { .. } | ProxyError::UpstreamTimeout { .. } => {
                ErrorSource::Upstream
            }
            ProxyError::Internal(_) | ProxyError::IdpUnavailable(_) => ErrorSource::Internal,
            ProxyError::NoProviderKey(_) => ErrorSource::Internal,
            _ => ErrorSource::Client,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::UnknownEndpoint { .. } => StatusCode::NOT_FOUND,
            ProxyError::Unauthenticated(_)
            | ProxyError::IdentityNotConfigured
            | ProxyError::UnknownPeer(_) => StatusCode::UNAUTHORIZED,
            ProxyError::IdpUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ProxyError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Route(RouteError::WrongApi { .. }) => StatusCode::BAD_REQUEST,
            ProxyError::Route(_) => StatusCode::NOT_FOUND,
            ProxyError::Denied { .. } | ProxyError::Deactivated | ProxyError::BrowserRequest => {
                StatusCode::FORBIDDEN
            }
            ProxyError::Refused { refusal, .. } if refusal.is_quota() => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ProxyError::Refused { .. } => StatusCode::FORBIDDEN,
            ProxyError::NoProviderKey(_) => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamUnreachable { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable reason code, for clients, records and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::UnknownEndpoint { .. } => "unknown_endpoint",
            ProxyError::Unauthenticated(e) => e.reason(),
            ProxyError::IdentityNotConfigured => "identity_not_configured",
            ProxyError::Deactivated => "user_deactivated",
            ProxyError::UnknownPeer(_) => "unknown_peer",
            ProxyError::BrowserRequest => "browser_request",
            ProxyError::IdpUnavailable(_) => "idp_unavailable",
            ProxyError::BadRequest { reason, .. } => reason,
            ProxyError::PayloadTooLarge { .. } => "request_too_large",
            ProxyError::Route(RouteError::UnknownProvider(_)) => "unknown_provider",
            ProxyError::Route(RouteError::WrongApi { .. }) => "wrong_api",
            ProxyError::Route(RouteError::NoProvider { .. }) => "no_provider",
            ProxyError::Denied { reason, .. } => reason.as_str(),
            ProxyError::Refused { refusal, .. } => refusal.reason(),
            ProxyError::NoProviderKey(_) => "provider_key_missing",
            ProxyError::UpstreamUnreachable { .. } => "upstream_unreachable",
            ProxyError::UpstreamTimeout { .. } => "upstream_timeout",
            ProxyError::Internal(_) => "internal_error",
        }
    }

    /// Seconds to wait before retrying, for `retry-after`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ProxyError::Refused { refusal, now } => refusal.retry_after(*now),
            ProxyError::IdpUnavailable(_) => Some(5),
            _ => None,
        }
    }

    /// The response body, in the shape of the API the client called.
    pub fn body(&self, api: Api) -> Vec<u8> {
        llm::error_body(api, self.status().as_u16(), self.reason(), &self.to_string())
    }
}
