//! Where a client puts its token: `Authorization: Bearer X`, or else `x-api-key: X` (Anthropic
//! SDKs and Claude Code's `ANTHROPIC_API_KEY`; its `apiKeyHelper` sends the value in both).

#[cfg(test)]
mod tests;

use http::header::AUTHORIZATION;
use http::HeaderMap;

/// The credential a request presents: the token of `Authorization: Bearer <token>` (scheme
/// case-insensitive), else the value of `x-api-key`. Surrounding whitespace is trimmed; empty
/// values count as absent.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let from_authorization = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once([' ', '\t'])?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty());
    from_authorization.or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|token| !token.is_empty())
    })
}
