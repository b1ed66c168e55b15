//! Forwarding: the upstream sees the server's key, the original body and the identity stamp,
//! never the client's credential or client-sent identity headers; responses come back as sent.

use http::{Method, StatusCode};
use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, Validation};
use testkit::llm::{MockConfig, Reply};
use tower::ServiceExt;

use crate::support::*;

#[tokio::test]
async fn anthropic_request_carries_server_key_and_identity_not_client_credentials() {
    let gw = TestGateway::start().await;
    let token = gw.alice();
    let resp = gw
        .post(
            "/v1/messages?beta=true",
            &token,
            &[
                ANTHROPIC_VERSION,
                ("anthropic-beta", "interleaved-thinking-2025-05-14"),
                ("x-api-key", &token),
                ("x-agentnet-user", "mallory@evil.example"),
                ("x-litellm-end-user-id", "mallory"),
                ("x-claude-code-session-id", "sess-123"),
            ],
            &messages_body("claude-sonnet-4-5", false),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(resp.json()["type"], "message");

    let seen = gw.anthropic.last_request().unwrap();
    assert_eq!(seen.path, "/v1/messages?beta=true");
    assert_eq!(seen.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("anthropic-beta"), Some("interleaved-thinking-2025-05-14"));
    assert_eq!(seen.header("x-agentnet-user"), Some("alice@example.com"));
    assert_eq!(seen.header("x-agentnet-groups"), Some("engineering"));
    assert_eq!(seen.header("x-agentnet-request-id"), Some(resp.request_id().as_str()));
    assert_eq!(seen.header("x-litellm-end-user-id"), None, "client-sent identity header passed");
    assert_eq!(seen.header_all("x-agentnet-user").len(), 1);
    for (name, value) in seen.headers.iter() {
        let value = value.to_str().unwrap_or_default();
        assert!(!value.contains(&token), "client token reached upstream in {name}");
    }

    // The response never carries the provider key.
    assert!(!resp.text().contains(ANTHROPIC_KEY));
    for value in resp.headers.values() {
        assert!(!value.to_str().unwrap_or_default().contains("SERVERSIDE"));
    }

    let record = gw.record(&resp.request_id()).await;
    assert_eq!(record.session_id.as_deref(), Some("sess-123"));
    assert_eq!(record.principal.as_deref(), Some("alice@example.com"));
    gw.stop().await;
}

#[tokio::test]
async fn body_is_forwarded_byte_for_byte() {
    let gw = TestGateway::start().await;
    // Odd spacing, key order, unknown fields, unicode escapes and a thinking signature: all must
    // reach the upstream exactly as sent.
    let body = "{ \"max_tokens\" : 64000,\n  \"model\":\"claude-sonnet-4-5\", \"stream\":false,\
        \"thinking\":{\"type\":\"adaptive\"},\"x_unknown\":{\"deep\":[1,2.50,\"\\u00e9\"]},\
        \"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\",\
        \"signature\":\"EqQBCkYIARgCIkBz+/==\"}]},{\"role\":\"user\",\"content\":\"hi\"}] }";
    let resp = gw.post("/v1/messages", &gw.alice(), &[ANTHROPIC_VERSION], body).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(gw.anthropic.last_request().unwrap().body, body.as_bytes());
    gw.stop().await;
}

#[tokio::test]
async fn openai_preset_and_assertion_verify_against_jwks() {
    let gw = TestGateway::start().await;
    let resp = gw
        .post(
            "/v1/chat/completions",
            &gw.alice(),
            &[],
            r#"{"model":"gpt-5","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let seen = gw.openai.last_request().unwrap();
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    assert_eq!(seen.header("x-litellm-end-user-id"), Some("alice@example.com"));
    assert_eq!(seen.header("x-litellm-tags"), Some("engineering"));

    let jwks = gw
        .admin
        .clone()
        .oneshot(
            http::Request::get("/.well-known/jwks.json").body(axum::body::Body::empty()).unwrap(),
        )
        .await
        .unwrap();
    let jwks = http_body_util::BodyExt::collect(jwks.into_body()).await.unwrap().to_bytes();
    let jwks: JwkSet = serde_json::from_slice(&jwks).unwrap();
    let assertion = seen.header("x-agentnet-assertion").unwrap();
    let header = jsonwebtoken::decode_header(assertion).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["openai"]);
    validation.set_issuer(&["agentnet"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        assertion,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["groups"], serde_json::json!(["engineering"]));
    assert_eq!(claims["jti"], resp.request_id());
    gw.stop().await;
}

#[tokio::test]
async fn upstream_errors_pass_through_with_their_status() {
    let gw = TestGateway::start_with(
        MockConfig::default().reply(Reply::rate_limited(7)),
        MockConfig::default(),
        default_config,
    )
    .await;
    let resp = gw
        .post(
            "/v1/messages",
            &gw.alice(),
            &[ANTHROPIC_VERSION],
            &messages_body("claude-sonnet-4-5", false),
        )
        .await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers["retry-after"], "7");
    assert_eq!(resp.json()["type"], "error");
    let record = gw.record(&resp.request_id()).await;
    assert_eq!((record.status, record.reason.as_str()), (429, "upstream_error"));
    assert_eq!(record.cost_micro_usd, Some(0));
    gw.stop().await;
}

#[tokio::test]
async fn probes_routing_and_unknown_paths() {
    let gw = TestGateway::start().await;
    assert_eq!(gw.send(Method::HEAD, "/", &[], "").await.status, StatusCode::OK);
    assert_eq!(gw.send(Method::GET, "/", &[], "").await.status, StatusCode::OK);

    let unknown = gw.send(Method::POST, "/v1/nope", &[ANTHROPIC_VERSION], "{}").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"]["type"], "not_found_error");

    // `/p/{provider}` selects a provider explicitly; one that does not speak the API is a 400.
    let token = gw.alice();
    let explicit = gw
        .post("/p/openai/v1/chat/completions", &token, &[], r#"{"model":"whatever","messages":[]}"#)
        .await;
    assert_eq!(explicit.status, StatusCode::OK, "{}", explicit.text());
    let wrong = gw
        .post("/p/openai/v1/messages", &token, &[ANTHROPIC_VERSION], &messages_body("m", false))
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.json()["error"]["reason"], "wrong_api");

    let bad_json = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], "{not json").await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_json.json()["type"], "error");
    let no_model = gw.post("/v1/chat/completions", &token, &[], r#"{"messages":[]}"#).await;
    assert_eq!(no_model.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_model.json()["error"]["code"], "model_missing");
    gw.stop().await;
}

#[tokio::test]
async fn request_size_limit() {
    let gw = TestGateway::start_with(MockConfig::default(), MockConfig::default(), |a, o| {
        format!("{}\n", default_config(a, o)).replace("[[providers]]", "[[providers]]")
    })
    .await;
    let big = format!(
        r#"{{"model":"gpt-5","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(33 * 1024 * 1024)
    );
    let resp = gw.post("/v1/chat/completions", &gw.alice(), &[], &big).await;
    assert_eq!(resp.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.json()["error"]["code"], "request_too_large");
    gw.stop().await;
}

#[tokio::test]
async fn models_are_filtered_by_policy_and_shaped_by_api() {
    let gw = TestGateway::start_with(
        MockConfig::default().models(["claude-sonnet-4-5", "claude-opus-4-5"]),
        MockConfig::default().models(["gpt-5", "gpt-5-mini", "gpt-4o"]),
        default_config,
    )
    .await;
    let bob = gw.token(testkit::idp::TokenSpec::user("bob@example.com").groups(["sales"]));
    let auth = format!("Bearer {bob}");
    let openai = gw.send(Method::GET, "/v1/models", &[("authorization", &auth)], "").await;
    assert_eq!(openai.status, StatusCode::OK, "{}", openai.text());
    let ids: Vec<_> = openai.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec!["gpt-5-mini"]);
    assert_eq!(openai.json()["object"], "list");

    let anthropic = gw
        .send(Method::GET, "/v1/models", &[("authorization", &auth), ANTHROPIC_VERSION], "")
        .await;
    assert_eq!(
        anthropic.json()["data"].as_array().unwrap().len(),
        0,
        "sales has no Anthropic policy"
    );

    let alice = format!("Bearer {}", gw.alice());
    let anthropic = gw
        .send(Method::GET, "/v1/models", &[("authorization", &alice), ANTHROPIC_VERSION], "")
        .await;
    let ids: Vec<_> = anthropic.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec!["claude-sonnet-4-5", "claude-opus-4-5"]);
    assert_eq!(anthropic.json()["data"][0]["type"], "model");
    gw.stop().await;
}

#[tokio::test]
async fn sse_events_are_forwarded_as_they_arrive() {
    let gw = TestGateway::start_with(
        MockConfig::default().reply(
            Reply::text("one two three four five six").drip(std::time::Duration::from_millis(150)),
        ),
        MockConfig::default(),
        default_config,
    )
    .await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = gw.messages_request(true);
    let started = std::time::Instant::now();
    let mut body = client.request(req).await.unwrap().into_body();
    let mut arrivals = Vec::new();
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        if frame.unwrap().data_ref().is_some_and(|d| !d.is_empty()) {
            arrivals.push(started.elapsed());
        }
    }
    // The mock waits 150 ms between events: a buffering proxy would deliver everything at once.
    assert!(arrivals.len() >= 6, "{arrivals:?}");
    let spread = *arrivals.last().unwrap() - arrivals[0];
    assert!(
        spread >= std::time::Duration::from_millis(600),
        "events arrived together: {arrivals:?}"
    );
    gw.stop().await;
}

/// `assertion = false`: the plain and preset identity headers still go, the signed assertion
/// does not — and one a client sends is still removed.
#[tokio::test]
async fn a_provider_can_take_identity_headers_without_the_signed_assertion() {
    let gw = TestGateway::start_with(MockConfig::default(), MockConfig::default(), |a, _| {
        format!(
            r#"
            [[providers]]
            name = "litellm"
            kind = "anthropic"
            base_url = "{a}"
            api_key_env = "TEST_ANTHROPIC_KEY"
            preset = "litellm"
            assertion = false

            [[policies]]
            name = "all"
            everyone = true
            providers = ["litellm"]
            "#
        )
    })
    .await;
    let resp = gw
        .post(
            "/v1/messages",
            &gw.alice(),
            &[ANTHROPIC_VERSION, ("x-agentnet-assertion", "forged.jwt.value")],
            &messages_body("claude-haiku-4-5", false),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let seen = gw.anthropic.last_request().unwrap();
    assert_eq!(seen.headers["x-agentnet-user"], "alice@example.com");
    assert_eq!(seen.headers["x-litellm-end-user-id"], "alice@example.com");
    assert!(seen.headers.contains_key("x-agentnet-request-id"));
    assert!(!seen.headers.contains_key("x-agentnet-assertion"), "{:?}", seen.headers);
    gw.stop().await;
}

#[tokio::test]
async fn openrouter_preset_sets_the_body_user_and_stamping_can_be_off() {
    let gw = TestGateway::start_with(MockConfig::default(), MockConfig::default(), |a, o| {
        format!(
            r#"
            [[providers]]
            name = "openrouter"
            kind = "openai-compatible"
            base_url = "{o}/v1"
            api_key_env = "TEST_OPENAI_KEY"
            preset = "openrouter"
            models = ["openrouter/*"]

            [[providers]]
            name = "quiet"
            kind = "anthropic"
            base_url = "{a}"
            api_key_env = "TEST_ANTHROPIC_KEY"
            stamping = false

            [[policies]]
            name = "all"
            everyone = true
            providers = ["openrouter", "quiet"]
            "#
        )
    })
    .await;
    let body = r#"{"model":"openrouter/auto","user":"spoofed","messages":[]}"#;
    let resp = gw.post("/v1/chat/completions", &gw.alice(), &[], body).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let seen = gw.openai.last_request().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions", "no doubled /v1");
    assert_eq!(seen.json().unwrap()["user"], "alice@example.com");

    let resp = gw
        .post(
            "/v1/messages",
            &gw.alice(),
            &[ANTHROPIC_VERSION, ("x-agentnet-user", "mallory")],
            &messages_body("claude-haiku-4-5", false),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    let seen = gw.anthropic.last_request().unwrap();
    assert!(
        seen.headers.keys().all(|k| !k.as_str().starts_with("x-agentnet-")),
        "{:?}",
        seen.headers
    );
    gw.stop().await;
}
