//! Ingress: which operation a request asks for, decided by method and path alone.

use domain::{Api, Endpoint};
use http::{HeaderMap, Method};

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `HEAD /` or `GET /`: Claude Code probes its base URL.
    Probe,
    /// An AI operation, with the provider named in `/p/{provider}/…` if any.
    Ai { endpoint: Endpoint, explicit_provider: Option<String> },
    /// Anything else: 404 in the API's error shape.
    Unknown,
}

/// The API family to answer errors in, before routing has decided anything: the path says it
/// for known endpoints; otherwise `anthropic-version` marks an Anthropic client.
pub(crate) fn guess_api(headers: &HeaderMap) -> Api {
    if headers.contains_key("anthropic-version") {
        Api::Anthropic
    } else {
        Api::OpenAi
    }
}

pub(crate) fn classify(method: &Method, path: &str, headers: &HeaderMap) -> Operation {
    let (explicit_provider, rest) = match path.strip_prefix("/p/") {
        Some(after) => match after.split_once('/') {
            Some((name, rest)) if !name.is_empty() => (Some(name.to_owned()), rest),
            _ => return Operation::Unknown,
        },
        None => (None, path.strip_prefix('/').unwrap_or(path)),
    };
    let rest = rest.trim_end_matches('/');
    if explicit_provider.is_none() && rest.is_empty() {
        return if method == Method::GET || method == Method::HEAD {
            Operation::Probe
        } else {
            Operation::Unknown
        };
    }
    let endpoint = match (method, rest) {
        (&Method::POST, "v1/messages") => Endpoint::Messages,
        (&Method::POST, "v1/messages/count_tokens") => Endpoint::CountTokens,
        (&Method::POST, "v1/chat/completions") => Endpoint::ChatCompletions,
        (&Method::POST, "v1/responses") => Endpoint::Responses,
        (&Method::POST, "v1/embeddings") => Endpoint::Embeddings,
        (&Method::GET, "v1/models") => Endpoint::Models(guess_api(headers)),
        _ => return Operation::Unknown,
    };
    Operation::Ai { endpoint, explicit_provider }
}

#[cfg(test)]
mod tests;
