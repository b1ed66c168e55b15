//! Metering: usage records equal what the upstream reported, for every API, streaming or not,
//! compressed or not, and for a client that disconnects mid-stream.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use testkit::llm::{Gzip, MockConfig, Reply, Usage};

use crate::support::*;

fn usage() -> Usage {
    Usage::new(1200, 345, 300, 40, 0)
}

#[tokio::test]
async fn anthropic_stream_and_json_are_metered_exactly() {
    let gw = TestGateway::start_with(
        MockConfig::default().usage(usage()),
        MockConfig::default(),
        default_config,
    )
    .await;
    for stream in [true, false] {
        let resp = gw
            .post(
                "/v1/messages",
                &gw.alice(),
                &[ANTHROPIC_VERSION],
                &messages_body("claude-sonnet-4-5", stream),
            )
            .await;
        assert_eq!(resp.status, StatusCode::OK);
        if stream {
            assert!(resp.text().contains("event: message_stop"), "{}", resp.text());
        }
        let r = gw.record(&resp.request_id()).await;
        assert_eq!(
            (r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_creation_tokens),
            (1200, 345, 300, 40),
            "stream={stream}"
        );
        assert!(r.usage_reported && r.stream == stream);
        assert_eq!((r.status, r.reason.as_str()), (200, "ok"));
        // claude-sonnet-4-5: $3 in, $15 out, $0.30 cache read, $3.75 cache write per MTok.
        let expected = (1200 * 3_000_000u64 + 345 * 15_000_000 + 300 * 300_000 + 40 * 3_750_000)
            .div_ceil(1_000_000);
        assert_eq!(r.cost_micro_usd, Some(expected as i64));
        assert_eq!(r.provider.as_deref(), Some("anthropic"));
        assert_eq!(r.policy.as_deref(), Some("engineering"));
        assert_eq!(r.groups, vec!["engineering"]);
        assert!(r.ttfb_ms.is_some());
    }
    gw.stop().await;
}

#[tokio::test]
async fn chat_stream_usage_chunk_is_requested_and_hidden() {
    let gw = TestGateway::start_with(
        MockConfig::default(),
        MockConfig::default().usage(Usage::new(50, 7, 20, 0, 3)),
        default_config,
    )
    .await;
    let body = r#"{"model":"gpt-5","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let resp = gw.post("/v1/chat/completions", &gw.alice(), &[], body).await;
    assert_eq!(resp.status, StatusCode::OK);
    let seen = gw.openai.last_request().unwrap().json().unwrap();
    assert_eq!(seen["stream_options"]["include_usage"], true);
    let text = resp.text();
    assert!(text.contains("data: [DONE]"));
    assert!(!text.contains("\"usage\":{"), "the client did not ask for usage: {text}");
    let r = gw.record(&resp.request_id()).await;
    // OpenAI's prompt_tokens (50) include the cached ones (20); records keep kinds apart.
    assert_eq!(
        (r.input_tokens, r.cache_read_tokens, r.output_tokens, r.reasoning_tokens),
        (30, 20, 7, 3)
    );

    // A client that asked for usage gets the chunk, untouched.
    let body =
        r#"{"model":"gpt-5","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    let resp = gw.post("/v1/chat/completions", &gw.alice(), &[], body).await;
    assert!(resp.text().contains("\"usage\":{"));
    assert_eq!(gw.openai.last_request().unwrap().body, body.as_bytes());
    gw.stop().await;
}

#[tokio::test]
async fn responses_and_embeddings_are_metered() {
    let gw = TestGateway::start_with(
        MockConfig::default(),
        MockConfig::default().usage(Usage::new(90, 12, 10, 0, 4)),
        default_config,
    )
    .await;
    let resp = gw
        .post("/v1/responses", &gw.alice(), &[], r#"{"model":"gpt-5","stream":true,"input":"hi"}"#)
        .await;
    assert!(resp.text().contains("response.completed"));
    let r = gw.record(&resp.request_id()).await;
    // input_tokens (90) include the cached ones (10).
    assert_eq!(
        (r.input_tokens, r.cache_read_tokens, r.output_tokens, r.reasoning_tokens),
        (80, 10, 12, 4)
    );

    let resp = gw
        .post(
            "/v1/embeddings",
            &gw.alice(),
            &[],
            r#"{"model":"text-embedding-3-small","input":"hi"}"#,
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let r = gw.record(&resp.request_id()).await;
    assert!(r.usage_reported && r.input_tokens > 0);
    gw.stop().await;
}

#[tokio::test]
async fn unknown_model_cost_is_unknown_not_zero() {
    let gw = TestGateway::start().await;
    let resp = gw
        .post("/v1/chat/completions", &gw.alice(), &[], r#"{"model":"my-finetune","messages":[]}"#)
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    let r = gw.record(&resp.request_id()).await;
    assert!(r.usage_reported);
    assert_eq!(r.cost_micro_usd, None);
    gw.stop().await;
}

#[tokio::test]
async fn compressed_upstream_is_still_metered_and_streamed() {
    let gw = TestGateway::start_with(
        MockConfig::default().gzip(Gzip::Force).usage(usage()),
        MockConfig::default(),
        default_config,
    )
    .await;
    let resp = gw
        .post(
            "/v1/messages",
            &gw.alice(),
            &[ANTHROPIC_VERSION, ("accept-encoding", "gzip, deflate, br, zstd")],
            &messages_body("claude-sonnet-4-5", true),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(gw.anthropic.last_request().unwrap().header("accept-encoding"), Some("identity"));
    assert_eq!(resp.headers["content-encoding"], "gzip");
    let r = gw.record(&resp.request_id()).await;
    assert_eq!((r.input_tokens, r.output_tokens), (1200, 345));
    gw.stop().await;
}

/// An Anthropic upstream that streams 16 words 40 ms apart (~640 ms), with usage at the end.
fn dripping() -> MockConfig {
    MockConfig::default()
        .usage(usage())
        .reply(Reply::text("a b c d e f g h i j k l m n o p").drip(Duration::from_millis(40)))
}

/// A gateway in front of [`dripping`].
async fn dripping_gateway() -> TestGateway {
    TestGateway::start_with(dripping(), MockConfig::default(), default_config).await
}

/// Opens a streaming request as alice, reads its first event, hangs up; returns its request id.
async fn stream_then_hang_up(gw: &TestGateway) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = gw.messages_request(true);
    let resp = client.request(req).await.unwrap();
    let request_id = resp.headers()["x-agentnet-request-id"].to_str().unwrap().to_owned();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some());
    request_id
}

#[tokio::test]
async fn client_disconnect_mid_stream_is_still_billed() {
    let gw = dripping_gateway().await;
    let request_id = stream_then_hang_up(&gw).await;

    let r = gw.record(&request_id).await;
    assert_eq!(r.reason, "client_disconnected");
    assert_eq!(
        (r.input_tokens, r.output_tokens),
        (1200, 345),
        "final usage was drained from upstream"
    );
    assert!(r.cost_micro_usd.unwrap() > 0);
    gw.stop().await;
}

/// A shutdown right after a client hung up still bills the request: the drain runs on the AI
/// listener thread that served it, and that thread's runtime waits for it before it ends.
#[tokio::test]
async fn a_shutdown_waits_for_a_hung_up_stream_to_be_billed() {
    let gw = dripping_gateway().await;
    let request_id = stream_then_hang_up(&gw).await;

    // Stop at once (the upstream still has ~600 ms of stream to send), then look.
    let gw = gw.restart().await;
    let r = gw.record(&request_id).await;
    assert_eq!(r.reason, "client_disconnected");
    assert_eq!((r.input_tokens, r.output_tokens), (1200, 345), "drained before the shutdown ended");
    gw.stop().await;
}

/// A client that hangs up while the upstream is still working on a non-streaming answer (no
/// response head yet) is billed too: the upstream has the request and charges for it.
#[tokio::test]
async fn a_hang_up_before_the_upstream_answers_is_still_billed() {
    let gw = TestGateway::start_with(
        MockConfig::default()
            .usage(usage())
            .reply(Reply::text("slow answer").delay(Duration::from_millis(400))),
        MockConfig::default(),
        default_config,
    )
    .await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = gw.messages_request(false);
    let gave_up = tokio::time::timeout(Duration::from_millis(100), client.request(req)).await;
    assert!(gave_up.is_err(), "the answer came before the client gave up");
    drop(client);
    // The request id never reached the client; it is the gateway's only request.
    let record = gw.records(1).await.remove(0);
    assert_eq!(record.principal.as_deref(), Some("alice@example.com"));
    assert_eq!((record.input_tokens, record.output_tokens), (1200, 345));
    assert_eq!(record.reason, "client_disconnected");
    gw.stop().await;
}

/// A stream still running when the shutdown grace ends is cut — and still billed: the cut
/// happens while its thread's runtime runs, so its drain reads the rest from upstream.
#[tokio::test]
async fn a_stream_cut_at_the_end_of_the_shutdown_grace_is_still_billed() {
    let gw = TestGateway::start_with_env(
        dripping(),
        MockConfig::default(),
        default_config,
        &[("AGENTNET__LIMITS__SHUTDOWN_GRACE", "100ms")],
    )
    .await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = gw.messages_request(true);
    let resp = client.request(req).await.unwrap();
    let request_id = resp.headers()["x-agentnet-request-id"].to_str().unwrap().to_owned();
    // The client keeps reading: only the server's shutdown ends this stream.
    let reading = tokio::spawn(resp.into_body().collect());

    let gw = gw.restart().await;
    // Without the 100 ms grace the ~640 ms stream would have ended on its own, cleanly.
    assert!(reading.await.unwrap().is_err(), "the client saw its stream cut");
    let r = gw.record(&request_id).await;
    assert_eq!(
        (r.input_tokens, r.output_tokens),
        (1200, 345),
        "the rest was drained from upstream and billed"
    );
    assert_eq!(r.reason, "cut_at_shutdown");
    gw.stop().await;
}

#[tokio::test]
async fn upstream_cut_mid_stream_is_recorded_as_such() {
    let gw = TestGateway::start_with(
        MockConfig::default().reply(Reply::text("hello there").cut_after(2)),
        MockConfig::default(),
        default_config,
    )
    .await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = gw.messages_request(true);
    let resp = client.request(req).await.unwrap();
    let request_id = resp.headers()["x-agentnet-request-id"].to_str().unwrap().to_owned();
    assert!(
        resp.into_body().collect().await.is_err(),
        "the client must see the cut, not a clean end"
    );
    let r = gw.record(&request_id).await;
    assert_eq!(r.reason, "upstream_stream_error");
    // message_start reported the input tokens; the output count never arrived.
    assert!(r.usage_reported);
    gw.stop().await;
}

#[tokio::test]
async fn provider_key_is_never_stored_in_plaintext() {
    let gw = TestGateway::start().await;
    let resp = gw
        .post(
            "/v1/messages",
            &gw.alice(),
            &[ANTHROPIC_VERSION],
            &messages_body("claude-sonnet-4-5", false),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    gw.record(&resp.request_id()).await;
    let dir = gw.data_dir.clone();
    gw.stop().await;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        for key in [ANTHROPIC_KEY, OPENAI_KEY] {
            assert!(
                !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                "{} holds a key in plaintext",
                path.display()
            );
        }
        assert!(!bytes.windows(10).any(|w| w == b"SERVERSIDE"), "{}", path.display());
    }
}

#[tokio::test]
async fn compressed_chat_stream_is_decoded_to_hide_the_injected_usage_chunk() {
    let gw = TestGateway::start_with(
        MockConfig::default(),
        MockConfig::default().gzip(Gzip::Force).usage(Usage::new(50, 7, 0, 0, 0)),
        default_config,
    )
    .await;
    let body = r#"{"model":"gpt-5","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let resp =
        gw.post("/v1/chat/completions", &gw.alice(), &[("accept-encoding", "gzip")], body).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert!(!resp.headers.contains_key("content-encoding"), "the client gets the decoded stream");
    let text = resp.text();
    assert!(text.contains("data: [DONE]"), "{text}");
    assert!(!text.contains("\"usage\":{"), "{text}");
    let r = gw.record(&resp.request_id()).await;
    assert_eq!((r.input_tokens, r.output_tokens), (50, 7));

    // The models list carries its request id.
    let auth = format!("Bearer {}", gw.alice());
    let models = gw.send(http::Method::GET, "/v1/models", &[("authorization", &auth)], "").await;
    let id = models.request_id();
    assert!(!id.is_empty());
    assert_eq!(gw.record(&id).await.endpoint, "models");
    gw.stop().await;
}
