//! Identity: 401 for missing, invalid, expired, wrong-audience, `alg: none` and HMAC tokens, in
//! the shape of the API called; 403 when no policy allows; agents by client-credentials tokens.

use http::StatusCode;
use testkit::idp::TokenSpec;

use crate::support::*;

#[tokio::test]
async fn bad_tokens_get_401_in_the_api_shape() {
    let gw = TestGateway::start().await;
    let alice = || TokenSpec::user("alice@example.com").groups(["engineering"]);
    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage", "not-a-jwt".to_owned(), "token_malformed"),
        ("expired", gw.token(alice().expires_in(-3600)), "token_expired"),
        ("wrong audience", gw.token(alice().audience("someone-else")), "token_audience_invalid"),
        ("alg none", gw.idp.alg_none_token(alice()), "token_algorithm_unsupported"),
        ("hs256", gw.idp.hs256_token(alice(), b"secret"), "token_algorithm_unsupported"),
        ("bad signature", gw.token(alice().signed_with_unknown_key()), "token_signature_invalid"),
    ];
    for (what, token, reason) in &cases {
        let resp = gw
            .post(
                "/v1/messages",
                token,
                &[ANTHROPIC_VERSION],
                &messages_body("claude-sonnet-4-5", false),
            )
            .await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{what}: {}", resp.text());
        let body = resp.json();
        assert_eq!(body["type"], "error", "{what}");
        assert_eq!(body["error"]["type"], "authentication_error", "{what}");
        assert_eq!(body["error"]["reason"], *reason, "{what}");
        assert!(resp.headers.contains_key("www-authenticate"));

        let resp =
            gw.post("/v1/chat/completions", token, &[], r#"{"model":"gpt-5","messages":[]}"#).await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(resp.json()["error"]["type"], "authentication_error", "{what}");
        assert_eq!(resp.json()["error"]["code"], *reason, "{what}");
    }
    // Nothing reached an upstream.
    assert!(gw.anthropic.requests().is_empty());
    assert!(gw.openai.requests().is_empty());

    let missing = gw.send(http::Method::POST, "/v1/messages", &[ANTHROPIC_VERSION], "{}").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.json()["error"]["reason"], "token_missing");

    // Refusals are recorded with their reason.
    let records = gw.records(cases.len() * 2 + 1).await;
    assert!(records.iter().all(|r| r.status == 401 && r.cost_micro_usd == Some(0)));
    gw.stop().await;
}

#[tokio::test]
async fn x_api_key_is_accepted_as_the_token() {
    let gw = TestGateway::start().await;
    let token = gw.alice();
    let resp = gw
        .send(
            http::Method::POST,
            "/v1/messages",
            &[("x-api-key", &token), ANTHROPIC_VERSION, ("content-type", "application/json")],
            &messages_body("claude-sonnet-4-5", false),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(gw.anthropic.last_request().unwrap().header("x-api-key"), Some(ANTHROPIC_KEY));
    gw.stop().await;
}

#[tokio::test]
async fn default_deny_and_model_allowlist() {
    let gw = TestGateway::start().await;
    let bob = gw.token(TokenSpec::user("bob@example.com").groups(["sales"]));
    let resp = gw
        .post(
            "/v1/messages",
            &bob,
            &[ANTHROPIC_VERSION],
            &messages_body("claude-sonnet-4-5", false),
        )
        .await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    assert_eq!(resp.json()["error"]["type"], "permission_error");
    assert_eq!(resp.json()["error"]["reason"], "no_policy");

    let resp =
        gw.post("/v1/chat/completions", &bob, &[], r#"{"model":"gpt-5","messages":[]}"#).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    assert_eq!(resp.json()["error"]["code"], "model_not_allowed");
    let ok =
        gw.post("/v1/chat/completions", &bob, &[], r#"{"model":"gpt-5-mini","messages":[]}"#).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());

    let nobody = gw.token(TokenSpec::user("eve@example.com"));
    let resp =
        gw.post("/v1/chat/completions", &nobody, &[], r#"{"model":"gpt-5","messages":[]}"#).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    assert_eq!(gw.openai.requests().len(), 1);

    let denied = gw.record(&resp.request_id()).await;
    assert_eq!((denied.status, denied.reason.as_str()), (403, "no_policy"));
    assert_eq!(denied.principal.as_deref(), Some("eve@example.com"));
    gw.stop().await;
}

#[tokio::test]
async fn client_credentials_token_is_an_agent_with_its_admin_groups() {
    let gw = TestGateway::start().await;
    let bot = gw.token(TokenSpec::client("ci-bot"));
    let resp = gw.post("/v1/responses", &bot, &[], r#"{"model":"gpt-5","input":"hi"}"#).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let seen = gw.openai.last_request().unwrap();
    assert_eq!(seen.header("x-agentnet-user"), Some("ci-bot"));
    assert_eq!(seen.header("x-agentnet-groups"), Some("ci"));
    let record = gw.record(&resp.request_id()).await;
    assert_eq!(record.principal_kind.as_deref(), Some("agent"));
    assert_eq!(record.policy.as_deref(), Some("ci"));

    // An unknown client has no groups, hence no policy.
    let stranger = gw.token(TokenSpec::client("stranger"));
    let resp = gw.post("/v1/responses", &stranger, &[], r#"{"model":"gpt-5","input":"hi"}"#).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    gw.stop().await;
}
