//! Run-time management: providers and keys changed through the admin API take effect without a
//! restart; config-managed records are protected; the key is never echoed; logs never hold it.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use http::{Method, StatusCode};
use testkit::llm::{MockConfig, MockLlm};

use crate::support::*;

async fn admin(
    gw: &TestGateway,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    gw.admin_json(method, path, body).await
}

/// Retries `f` until it returns true: snapshot reloads follow admin changes within milliseconds.
async fn eventually<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not met within 2 s");
}

#[tokio::test]
async fn provider_added_and_key_replaced_at_run_time() {
    let gw = TestGateway::start().await;
    let vllm = MockLlm::start(MockConfig::default()).await;
    let (status, body) = admin(
        &gw,
        Method::POST,
        "/api/v1/providers",
        serde_json::json!({
            "name": "vllm", "kind": "openai-compatible", "base_url": vllm.base_url(),
            "models": ["llama-*"], "api_key": "vllm-key-one-1111",
        }),
    )
    .await;
    assert!(status.is_success(), "{status}: {body}");
    assert!(!body.to_string().contains("vllm-key-one-1111"), "the key was echoed: {body}");
    let (status, _) = admin(
        &gw,
        Method::POST,
        "/api/v1/policies",
        serde_json::json!({"name": "llama", "sources": {"groups": ["engineering"]}, "providers": ["vllm"]}),
    )
    .await;
    assert!(status.is_success());

    let token = gw.alice();
    let body = r#"{"model":"llama-3.1-8b","messages":[]}"#;
    // Until the reload lands, the catch-all OpenAI provider answers instead: wait for vLLM.
    eventually(|| async {
        gw.post("/v1/chat/completions", &token, &[], body).await.status == StatusCode::OK
            && vllm.last_request().is_some()
    })
    .await;
    assert_eq!(
        vllm.last_request().unwrap().header("authorization"),
        Some("Bearer vllm-key-one-1111")
    );

    let (status, body) = admin(
        &gw,
        Method::PUT,
        "/api/v1/providers/vllm/key",
        serde_json::json!({"api_key": "vllm-key-two-2222"}),
    )
    .await;
    assert!(status.is_success(), "{status}: {body}");
    assert!(body.to_string().contains("2222") && !body.to_string().contains("vllm-key-two"));
    eventually(|| async {
        gw.post("/v1/chat/completions", &token, &[], body_str()).await;
        vllm.last_request().unwrap().header("authorization") == Some("Bearer vllm-key-two-2222")
    })
    .await;

    let (_, listed) = admin(&gw, Method::GET, "/api/v1/providers", serde_json::Value::Null).await;
    let text = listed.to_string();
    assert!(
        !text.contains("vllm-key-two-2222")
            && !text.contains(ANTHROPIC_KEY)
            && !text.contains("SERVERSIDE")
    );
    gw.stop().await;
}

fn body_str() -> &'static str {
    r#"{"model":"llama-3.1-8b","messages":[]}"#
}

#[tokio::test]
async fn config_managed_records_are_protected() {
    let gw = TestGateway::start().await;
    let (status, body) =
        admin(&gw, Method::DELETE, "/api/v1/providers/anthropic", serde_json::Value::Null).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Setting a key on a config-managed provider is allowed.
    let (status, _) = admin(
        &gw,
        Method::PUT,
        "/api/v1/providers/anthropic/key",
        serde_json::json!({"api_key": "sk-new-9999"}),
    )
    .await;
    assert!(status.is_success());
    let (status, _) =
        admin(&gw, Method::GET, "/api/v1/openapi.json", serde_json::Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    gw.stop().await;
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The server runs on this thread and on the AI listener's threads, which log to the subscriber
/// of the code that started them: this scoped one sees every log line, at the most verbose level.
#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_keys_or_tokens() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let gw = TestGateway::start().await;
    let token = gw.alice();
    for stream in [false, true] {
        let resp = gw
            .post(
                "/v1/messages",
                &token,
                &[ANTHROPIC_VERSION],
                &messages_body("claude-sonnet-4-5", stream),
            )
            .await;
        assert_eq!(resp.status, StatusCode::OK);
        gw.record(&resp.request_id()).await;
    }
    let resp = gw
        .post(
            "/v1/messages",
            "bad-token",
            &[ANTHROPIC_VERSION],
            &messages_body("claude-sonnet-4-5", false),
        )
        .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    gw.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("request settled"), "the capture saw the server's logs");
    for secret in [ANTHROPIC_KEY, OPENAI_KEY, "SERVERSIDE", token.as_str()] {
        assert!(!logs.contains(secret), "a log line holds a secret");
    }
}

#[tokio::test]
async fn remote_admin_for_members_of_the_admin_group_only() {
    let gw = TestGateway::start_with(MockConfig::default(), MockConfig::default(), |a, o| {
        format!("[admin]\ngroup = \"agentnet-admins\"\n{}", default_config(a, o))
    })
    .await;
    let admin_token =
        gw.token(testkit::idp::TokenSpec::user("root@example.com").groups(["agentnet-admins"]));
    let bearer = |t: &str| format!("Bearer {t}");

    let denied = gw
        .send_admin(Method::GET, "/api/v1/providers", &[("authorization", &bearer(&gw.alice()))])
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.text());
    assert_eq!(denied.json()["error"]["reason"], "not_an_admin");
    let anonymous = gw.send_admin(Method::GET, "/api/v1/providers", &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let listed = gw
        .send_admin(Method::GET, "/api/v1/providers", &[("authorization", &bearer(&admin_token))])
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    assert!(!listed.text().contains("SERVERSIDE"));

    let auth = bearer(&admin_token);
    let created = gw
        .send_admin_body(
            Method::POST,
            "/api/v1/groups",
            &[("authorization", &auth), ("content-type", "application/json")],
            r#"{"name":"research","description":"made remotely"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let audit = gw
        .send_admin(Method::GET, "/api/v1/audit?target=research", &[("authorization", &auth)])
        .await;
    let entries = audit.json();
    assert_eq!(entries[0]["actor_kind"], "admin");
    assert_eq!(entries[0]["actor"], "root@example.com");
    gw.stop().await;
}

#[tokio::test]
async fn without_an_admin_group_the_admin_api_stays_on_the_socket() {
    let gw = TestGateway::start().await;
    let auth = format!("Bearer {}", gw.alice());
    let resp = gw.send_admin(Method::GET, "/api/v1/providers", &[("authorization", &auth)]).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json()["error"]["code"], "remote_admin_unavailable");
    gw.stop().await;
}
