//! Tests for path classification.

use super::*;

fn check(method: Method, path: &str, anthropic: bool) -> Operation {
    let mut headers = HeaderMap::new();
    if anthropic {
        headers.insert("anthropic-version", "2023-06-01".parse().unwrap());
    }
    classify(&method, path, &headers)
}

fn ai(endpoint: Endpoint, provider: Option<&str>) -> Operation {
    Operation::Ai { endpoint, explicit_provider: provider.map(str::to_owned) }
}

#[test]
fn paths() {
    assert_eq!(check(Method::HEAD, "/", false), Operation::Probe);
    assert_eq!(check(Method::GET, "/", false), Operation::Probe);
    assert_eq!(check(Method::POST, "/", false), Operation::Unknown);
    assert_eq!(check(Method::POST, "/v1/messages", true), ai(Endpoint::Messages, None));
    assert_eq!(
        check(Method::POST, "/v1/messages/count_tokens", true),
        ai(Endpoint::CountTokens, None)
    );
    assert_eq!(
        check(Method::POST, "/v1/chat/completions", false),
        ai(Endpoint::ChatCompletions, None)
    );
    assert_eq!(check(Method::POST, "/v1/responses", false), ai(Endpoint::Responses, None));
    assert_eq!(check(Method::POST, "/v1/embeddings", false), ai(Endpoint::Embeddings, None));
    assert_eq!(check(Method::GET, "/v1/models", true), ai(Endpoint::Models(Api::Anthropic), None));
    assert_eq!(check(Method::GET, "/v1/models", false), ai(Endpoint::Models(Api::OpenAi), None));
    assert_eq!(
        check(Method::POST, "/p/vllm/v1/chat/completions", false),
        ai(Endpoint::ChatCompletions, Some("vllm"))
    );
    assert_eq!(check(Method::GET, "/v1/messages", true), Operation::Unknown);
    assert_eq!(check(Method::POST, "/p//v1/messages", true), Operation::Unknown);
    assert_eq!(check(Method::POST, "/v2/messages", true), Operation::Unknown);
    assert_eq!(check(Method::GET, "/p/x", false), Operation::Unknown);
}
