//! The self-service view through the whole server: `GET /api/v1/me` on the admin TCP listener
//! (and the Unix socket) with the caller's bearer token shows their caps with the settled
//! spend, their totals and their newest requests, and nobody else's.

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use testkit::{
    idp::TokenSpec,
    llm::{MockConfig, Usage},
};
use tower::ServiceExt;

use crate::support::*;

/// $100 per million tokens of any kind: 100 micro-dollars a token.
const PRICE_PER_TOKEN: i64 = 100;
/// The mock reports 10 input and 20 output tokens for every request.
const COST: i64 = 30 * PRICE_PER_TOKEN;

fn config(anthropic: &str, _openai: &str) -> String {
    format!(
        r#"
        [[providers]]
        name = "anthropic"
        kind = "anthropic"
        base_url = "{anthropic}"
        api_key_env = "TEST_ANTHROPIC_KEY"
        prices = [{{ model = "budget-model", input = 100, output = 100 }}]

        [[policies]]
        name = "metered"
        groups = ["engineering"]
        providers = ["anthropic"]
        models = ["budget-model"]
        limits = [{{ spend_usd = 1, per = "user", window = "30d" }}]

        [[global_limits]]
        name = "team-rate"
        groups = ["engineering"]
        requests = 1000
        per = "group"
        window = "1h"
        "#
    )
}

fn body(model: &str) -> String {
    format!(
        r#"{{"model":"{model}","max_tokens":100,"stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

async fn me(gw: &TestGateway, token: Option<&str>) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> =
        auth.as_deref().map(|a| vec![("authorization", a)]).unwrap_or_default();
    gw.send_admin(Method::GET, "/api/v1/me", &headers).await
}

#[tokio::test]
async fn me_shows_the_callers_caps_spend_and_recent_requests() {
    let gw = TestGateway::start_with(
        MockConfig::default().usage(Usage::new(10, 20, 0, 0, 0)),
        MockConfig::default(),
        config,
    )
    .await;
    let alice = gw.alice();
    let bob = gw.token(TokenSpec::user("bob@example.com").groups(["engineering"]));

    let mut ids = Vec::new();
    for _ in 0..3 {
        let resp =
            gw.post("/v1/messages", &alice, &[ANTHROPIC_VERSION], &body("budget-model")).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        ids.push(resp.request_id());
    }
    let denied =
        gw.post("/v1/messages", &alice, &[ANTHROPIC_VERSION], &body("claude-opus-4")).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    ids.push(denied.request_id());
    let resp = gw.post("/v1/messages", &bob, &[ANTHROPIC_VERSION], &body("budget-model")).await;
    assert_eq!(resp.status, StatusCode::OK);
    // Settlement precedes the record, so once the records are in, the counters are settled.
    let records = gw.records(5).await;
    let settled: i64 = records
        .iter()
        .filter(|r| r.principal.as_deref() == Some("alice@example.com"))
        .filter_map(|r| r.cost_micro_usd)
        .sum();
    assert_eq!(settled, 3 * COST);

    let resp = me(&gw, Some(&alice)).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let view = resp.json();
    assert_eq!(view["principal"], "alice@example.com");
    assert_eq!(view["kind"], "user");
    assert_eq!(view["groups"], serde_json::json!(["engineering"]));

    // The global limit first, then the policy's; each in its own unit.
    let limits = view["limits"].as_array().unwrap();
    assert_eq!(limits.len(), 2, "{limits:?}");
    let global = &limits[0];
    assert_eq!(global["owner_kind"], "global");
    assert_eq!(global["owner"], "team-rate");
    assert_eq!(global["applies_to"], "group engineering");
    assert_eq!(global["limit"]["requests"], 1000);
    // Shared by the group: alice's three admitted requests and bob's one (the refused one is
    // not counted).
    assert_eq!(global["used"], 4.0);
    assert_eq!(global["remaining"], 996.0);
    let spend = &limits[1];
    assert_eq!(spend["owner_kind"], "policy");
    assert_eq!(spend["owner"], "metered");
    assert_eq!(spend["applies_to"], "you");
    assert_eq!(spend["limit"]["spend_usd"], 1.0);
    assert_eq!(spend["limit"]["window"], "30d");
    assert_eq!(spend["cap"], 1.0);
    assert_eq!(spend["used"], settled as f64 / 1e6);
    assert_eq!(spend["remaining"], (1_000_000 - settled) as f64 / 1e6);

    for totals in [&view["last_24h"], &view["last_30d"]] {
        assert_eq!(totals["requests"], 4);
        assert_eq!(totals["failed_requests"], 1);
        assert_eq!(totals["cost_micro_usd"], settled);
        assert_eq!(totals["input_tokens"], 30);
        assert_eq!(totals["output_tokens"], 60);
        assert_eq!(totals["unknown_cost_requests"], 0, "a refused request costs nothing");
    }

    let recent = view["recent"].as_array().unwrap();
    let recent_ids: Vec<&str> = recent.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(recent_ids, newest_first, "only alice's, newest first");
    assert_eq!(recent[0]["status"], 403);
    assert_eq!(recent[0]["reason"], "model_not_allowed");
    assert_eq!(recent[1]["reason"], "ok");
    assert_eq!(recent[1]["cost_micro_usd"], COST);
    assert_eq!(recent[1]["policy"], "metered");

    // The Unix socket serves the same view.
    let req = Request::get("/api/v1/me")
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    let resp = gw.admin.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let socket_view: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(socket_view["principal"], "alice@example.com");
    assert_eq!(socket_view["limits"][1]["used"], spend["used"]);

    // Bob sees his own.
    let view = me(&gw, Some(&bob)).await.json();
    assert_eq!(view["principal"], "bob@example.com");
    assert_eq!(view["last_30d"]["requests"], 1);
    assert_eq!(view["limits"][1]["used"], COST as f64 / 1e6);
    gw.stop().await;
}

#[tokio::test]
async fn me_refuses_callers_without_a_valid_token() {
    let gw = TestGateway::start().await;
    let resp = me(&gw, None).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers["www-authenticate"], "Bearer");
    let body = resp.json();
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert_eq!(body["error"]["reason"], "token_missing");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));

    let expired = gw.token(TokenSpec::user("alice@example.com").expires_in(-600));
    let resp = me(&gw, Some(&expired)).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json()["error"]["reason"], "token_expired");

    let resp = me(&gw, Some("not-a-jwt")).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json()["error"]["reason"], "token_malformed");

    // The rest of the admin API stays off the TCP listener; its other routes still answer.
    let resp = gw.send_admin(Method::GET, "/api/v1/providers", &[]).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json()["error"]["code"], "remote_admin_unavailable");
    let resp = gw.send_admin(Method::GET, "/healthz", &[]).await;
    assert_eq!(resp.status, StatusCode::OK);
    let resp = gw.send_admin(Method::POST, "/api/v1/me", &[]).await;
    assert_eq!(resp.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.json()["error"]["code"], "method_not_allowed");
    gw.stop().await;
}
