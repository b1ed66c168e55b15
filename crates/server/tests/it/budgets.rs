//! Budgets and rate caps through the whole server: reservations hold under concurrency, rate
//! caps answer 429 with `retry-after`, token caps count actual tokens, counters survive a
//! restart, and admitted responses carry the remaining headroom.

use std::time::Duration;

use http::StatusCode;
use testkit::{
    idp::TokenSpec,
    llm::{MockConfig, Usage},
};

use crate::support::*;

/// $100 per million tokens of any kind: 100 micro-dollars a token, so costs are easy to check.
const PRICE_PER_TOKEN: u64 = 100;
/// The mock reports 10 input and 20 output tokens for every request.
const ACTUAL_COST: u64 = 30 * PRICE_PER_TOKEN;

fn config(limits: &str) -> impl FnOnce(&str, &str) -> String + '_ {
    move |anthropic, _| {
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
            models = ["budget-model", "claude-sonnet-*", "claude-haiku-*"]
            limits = [{limits}]
            "#
        )
    }
}

fn mock(drip_ms: u64) -> MockConfig {
    let config = MockConfig::default().usage(Usage::new(10, 20, 0, 0, 0));
    if drip_ms > 0 {
        config.drip(Duration::from_millis(drip_ms))
    } else {
        config
    }
}

fn body(max_tokens: u64) -> String {
    format!(
        r#"{{"model":"budget-model","max_tokens":{max_tokens},"stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

/// The reservation of `body`: its bytes bound its input tokens, `max_tokens` its output.
fn estimate(body: &str, max_tokens: u64) -> u64 {
    (body.len() as u64 + max_tokens) * PRICE_PER_TOKEN
}

async fn concurrent(
    gw: &TestGateway,
    tokens: Vec<String>,
    body: &str,
) -> Vec<super::support::Response> {
    let mut tasks = Vec::new();
    for token in tokens {
        let ai = gw.ai.clone();
        let body = body.to_owned();
        tasks.push(tokio::spawn(async move { post_to(&ai, &token, &body).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn post_to(ai: &str, token: &str, body: &str) -> super::support::Response {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("{ai}/v1/messages"))
        .header("authorization", format!("Bearer {token}"))
        .header("anthropic-version", "2023-06-01")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_owned())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    super::support::Response { status, headers, body }
}

#[tokio::test]
async fn two_hundred_concurrent_streams_against_a_one_dollar_user_cap() {
    let gw = TestGateway::start_with(
        mock(400),
        MockConfig::default(),
        config(r#"{ spend_usd = 1, per = "user", window = "30d" }"#),
    )
    .await;
    let body = body(100);
    let est = estimate(&body, 100);
    let token = gw.alice();
    let responses = concurrent(&gw, vec![token; 200], &body).await;

    let admitted = responses.iter().filter(|r| r.status == StatusCode::OK).count() as u64;
    let refused: Vec<_> =
        responses.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert_eq!(admitted + refused.len() as u64, 200);
    // Every stream was still in flight when the last request was decided (each takes seconds),
    // so exactly as many estimates as fit in $1 were admitted.
    assert_eq!(admitted, 1_000_000 / est, "estimate {est} µ$");
    for r in &refused {
        assert_eq!(r.json()["error"]["reason"], "spend_cap_exceeded");
        assert!(r.headers.contains_key("retry-after"));
    }

    let records = gw.records(200).await;
    let settled: i64 =
        records.iter().filter(|r| r.status == 200).map(|r| r.cost_micro_usd.unwrap()).sum();
    assert_eq!(settled as u64, admitted * ACTUAL_COST);
    assert!(settled <= 1_000_000, "settled {settled} µ$ over the $1 cap");
    assert!(records
        .iter()
        .filter(|r| r.status == 200)
        .all(|r| r.policy.as_deref() == Some("metered")));
    assert_eq!(records.iter().filter(|r| r.reason == "spend_cap_exceeded").count(), refused.len());
    gw.stop().await;
}

#[tokio::test]
async fn a_group_cap_is_shared_by_ten_users() {
    let gw = TestGateway::start_with(
        mock(400),
        MockConfig::default(),
        config(r#"{ spend_usd = 1, per = "group", window = "7d" }"#),
    )
    .await;
    let body = body(100);
    let est = estimate(&body, 100);
    let tokens: Vec<String> = (0..200)
        .map(|i| {
            gw.token(TokenSpec::user(format!("user{}@example.com", i % 10)).groups(["engineering"]))
        })
        .collect();
    let responses = concurrent(&gw, tokens, &body).await;
    let admitted = responses.iter().filter(|r| r.status == StatusCode::OK).count() as u64;
    assert_eq!(admitted, 1_000_000 / est);
    let refused = responses.iter().find(|r| r.status == StatusCode::TOO_MANY_REQUESTS).unwrap();
    let message = refused.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("weekly spend cap of $1 for group 'engineering' under policy 'metered'"),
        "{message}"
    );

    let records = gw.records(200).await;
    let settled: i64 =
        records.iter().filter(|r| r.status == 200).map(|r| r.cost_micro_usd.unwrap()).sum();
    assert!(settled as u64 == admitted * ACTUAL_COST && settled <= 1_000_000);
    let users: std::collections::HashSet<_> =
        records.iter().filter(|r| r.status == 200).filter_map(|r| r.principal.clone()).collect();
    assert!(users.len() > 1, "the cap was shared, not used up by one user");
    gw.stop().await;
}

#[tokio::test]
async fn request_rate_cap_answers_429_with_retry_after() {
    let gw = TestGateway::start_with(
        mock(0),
        MockConfig::default(),
        config(r#"{ requests = 3, window = "1m" }"#),
    )
    .await;
    let token = gw.alice();
    for left in [2, 1, 0] {
        let resp = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], &body(100)).await;
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.headers["x-ratelimit-limit-requests"], "3");
        assert_eq!(resp.headers["x-ratelimit-remaining-requests"], left.to_string().as_str());
        assert_eq!(resp.headers["x-agentnet-policy"], "metered");
    }
    let resp = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], &body(100)).await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.json()["error"]["type"], "rate_limit_error");
    assert_eq!(resp.json()["error"]["reason"], "rate_limited");
    let retry: u64 = resp.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    // Another user has their own per-user counter.
    let bob = gw.token(TokenSpec::user("bob@example.com").groups(["engineering"]));
    assert_eq!(
        gw.post("/v1/messages", &bob, &[ANTHROPIC_VERSION], &body(100)).await.status,
        StatusCode::OK
    );
    gw.stop().await;
}

#[tokio::test]
async fn token_rate_cap_counts_actual_tokens() {
    let gw = TestGateway::start_with(
        mock(0),
        MockConfig::default(),
        config(r#"{ tokens = 2000, window = "1m" }"#),
    )
    .await;
    let token = gw.alice();
    let small = body(100);
    let estimate_tokens = small.len() as u64 + 100;
    // Fifteen requests whose estimates add up past the cap all pass: each settles at 30 tokens.
    assert!(15 * estimate_tokens > 2000);
    for _ in 0..15 {
        let resp = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], &small).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    }
    let resp = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], &small).await;
    let remaining: u64 =
        resp.headers["x-ratelimit-remaining-tokens"].to_str().unwrap().parse().unwrap();
    assert_eq!(remaining, 2000 - 15 * 30 - estimate_tokens);
    // One that could need more than what is left is refused.
    let big = body(1900);
    let resp = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], &big).await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.json()["error"]["reason"], "rate_limited");
    gw.stop().await;
}

#[tokio::test]
async fn counters_survive_a_restart() {
    let gw = TestGateway::start_with(
        mock(0),
        MockConfig::default(),
        config(r#"{ spend_usd = 0.05, per = "user", window = "24h" }"#),
    )
    .await;
    let token = gw.alice();
    let body = body(100);
    let mut admitted = 0;
    loop {
        let resp = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], &body).await;
        if resp.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(resp.status, StatusCode::OK);
        admitted += 1;
        assert!(admitted < 1000, "the cap never closed");
    }
    // Committed spend plus this request's estimate passes the cap.
    assert!(admitted * ACTUAL_COST + estimate(&body, 100) > 50_000);
    gw.records(admitted as usize + 1).await;

    let gw = gw.restart().await;
    let resp = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], &body).await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS, "the restarted server forgot the spend");
    assert_eq!(resp.json()["error"]["reason"], "spend_cap_exceeded");
    let message = resp.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("daily spend cap of $0.05 for you under policy 'metered' reached"),
        "{message}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn budget_headers_max_tokens_and_client_model_names() {
    let gw = TestGateway::start_with(
        mock(0),
        MockConfig::default(),
        config(r#"{ spend_usd = 500, per = "user", window = "30d" }"#),
    )
    .await;
    let token = gw.alice();
    let resp = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], &body(100)).await;
    let remaining: f64 =
        resp.headers["x-agentnet-budget-remaining-usd"].to_str().unwrap().parse().unwrap();
    let est = estimate(&body(100), 100) as f64 / 1e6;
    assert!((remaining - (500.0 - est)).abs() < 1e-6, "{remaining}");

    // Claude Code's default model is not in the allowlist; a dated Sonnet is.
    let opus = gw
        .post("/v1/messages", &token, &[ANTHROPIC_VERSION], &messages_body("claude-opus-5-5", true))
        .await;
    assert_eq!(opus.status, StatusCode::FORBIDDEN);
    assert_eq!(opus.json()["error"]["reason"], "model_not_allowed");
    let sonnet = gw
        .post(
            "/v1/messages",
            &token,
            &[ANTHROPIC_VERSION],
            &messages_body("claude-sonnet-4-5-20250929", true),
        )
        .await;
    assert_eq!(sonnet.status, StatusCode::OK, "{}", sonnet.text());
    gw.stop().await;
}

#[tokio::test]
async fn max_tokens_cap_and_unpriced_models() {
    let gw = TestGateway::start_with(mock(0), MockConfig::default(), |a, _| {
        format!(
            r#"
            [[providers]]
            name = "anthropic"
            kind = "anthropic"
            base_url = "{a}"
            api_key_env = "TEST_ANTHROPIC_KEY"

            [[policies]]
            name = "guarded"
            groups = ["engineering"]
            providers = ["anthropic"]
            max_tokens = 8192
            limits = [{{ spend_usd = 10, window = "1h" }}]
            "#
        )
    })
    .await;
    let token = gw.alice();
    let resp = gw
        .post(
            "/v1/messages",
            &token,
            &[ANTHROPIC_VERSION],
            &messages_body("claude-sonnet-4-5", true),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "1024 is under the cap: {}", resp.text());
    let too_big = r#"{"model":"claude-sonnet-4-5","max_tokens":64000,"messages":[]}"#;
    let resp = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], too_big).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    assert_eq!(resp.json()["error"]["reason"], "max_tokens_not_allowed");
    // A spend cap cannot be enforced on a model without a price: refused, not let through.
    let unpriced = r#"{"model":"my-finetune","max_tokens":10,"messages":[]}"#;
    let resp = gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], unpriced).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    assert_eq!(resp.json()["error"]["reason"], "model_price_unknown");
    gw.stop().await;
}

#[tokio::test]
async fn codex_model_names_against_an_allowlist() {
    let gw = TestGateway::start_with(MockConfig::default(), MockConfig::default(), |_, o| {
        format!(
            r#"
            [[providers]]
            name = "openai"
            kind = "openai"
            base_url = "{o}"
            api_key_env = "TEST_OPENAI_KEY"

            [[policies]]
            name = "codex"
            groups = ["engineering"]
            providers = ["openai"]
            models = ["gpt-5*"]
            "#
        )
    })
    .await;
    let token = gw.alice();
    // What Codex sends: its configured model in a streaming Responses request.
    for (model, allowed) in [
        ("gpt-5.5", true),
        ("gpt-5-codex", true),
        ("gpt-5.1-codex-max", true),
        ("o3", false),
        ("gpt-4.1", false),
    ] {
        let body = format!(r#"{{"model":"{model}","stream":true,"store":false,"input":[]}}"#);
        let resp = gw.post("/v1/responses", &token, &[], &body).await;
        let want = if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(resp.status, want, "{model}: {}", resp.text());
        if !allowed {
            assert_eq!(resp.json()["error"]["code"], "model_not_allowed");
        }
    }
    gw.stop().await;
}
