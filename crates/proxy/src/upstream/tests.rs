//! Tests for upstream request construction.

use super::*;

#[test]
fn urls() {
    let uri = |kind, base, endpoint, model, query| {
        upstream_uri(kind, base, Some("2024-10-21"), endpoint, model, query).unwrap().to_string()
    };
    assert_eq!(
        uri(
            ProviderKind::Anthropic,
            "https://api.anthropic.com",
            Endpoint::Messages,
            None,
            Some("beta=true")
        ),
        "https://api.anthropic.com/v1/messages?beta=true"
    );
    assert_eq!(
        uri(
            ProviderKind::OpenAiCompatible,
            "https://openrouter.ai/api/v1/",
            Endpoint::ChatCompletions,
            None,
            None
        ),
        "https://openrouter.ai/api/v1/chat/completions"
    );
    assert_eq!(
        uri(ProviderKind::OpenAi, "http://127.0.0.1:9000", Endpoint::Responses, None, None),
        "http://127.0.0.1:9000/v1/responses"
    );
    assert_eq!(
        uri(ProviderKind::AzureOpenAi, "https://x.openai.azure.com", Endpoint::ChatCompletions, Some("gpt-4o"), None),
        "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(
        uri(
            ProviderKind::AzureOpenAi,
            "https://x.openai.azure.com",
            Endpoint::Responses,
            Some("gpt-4o"),
            None
        ),
        "https://x.openai.azure.com/openai/v1/responses"
    );
}

#[test]
fn credentials_identity_and_hop_headers_are_removed() {
    let mut client = HeaderMap::new();
    for (k, v) in [
        ("authorization", "Bearer user-token"),
        ("x-api-key", "user-token"),
        ("api-key", "user-token"),
        ("cookie", "a=b"),
        ("x-agentnet-user", "mallory@evil"),
        ("x-litellm-end-user-id", "mallory"),
        ("connection", "keep-alive"),
        ("host", "gateway"),
        ("content-length", "10"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
        ("x-claude-code-session-id", "s1"),
        ("content-type", "application/json"),
    ] {
        client.append(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    let out = forward_headers(&client);
    let names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "anthropic-version",
            "anthropic-beta",
            "x-claude-code-session-id",
            "content-type",
            "accept-encoding"
        ]
    );
    assert_eq!(out["accept-encoding"], "identity");
}

#[test]
fn auth_header_per_kind_is_sensitive() {
    let key = SecretString::from("sk-test");
    let (name, value) = auth_header(ProviderKind::Anthropic, &key).unwrap();
    assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-api-key", "sk-test"));
    assert!(value.is_sensitive());
    assert_eq!(format!("{value:?}"), "Sensitive");
    let (name, value) = auth_header(ProviderKind::OpenAi, &key).unwrap();
    assert_eq!((name.as_str(), value.to_str().unwrap()), ("authorization", "Bearer sk-test"));
    let (name, _) = auth_header(ProviderKind::AzureOpenAi, &key).unwrap();
    assert_eq!(name.as_str(), "api-key");
}
