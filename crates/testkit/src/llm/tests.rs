//! Tests of the mock LLM upstream over real HTTP: every endpoint's shape (streams included),
//! scripting, failure modes, gzip, recording, the control API and the `mock-llm` options.

use std::io::Read as _;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use super::cli::{parse_args, Command};
use super::{Gzip, MockConfig, MockLlm, Reply, Script, Usage};

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// Set when the body ended in an error (a cut stream).
    error: Option<String>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// SSE events as (event name, data).
    fn events(&self) -> Vec<(Option<String>, String)> {
        parse_sse(&self.text())
    }

    /// The data of every event, parsed (the `[DONE]` sentinel skipped).
    fn event_json(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|(_, d)| d != "[DONE]")
            .map(|(_, d)| {
                serde_json::from_str(&d).unwrap_or_else(|e| panic!("bad event data {d}: {e}"))
            })
            .collect()
    }
}

fn parse_sse(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

async fn send(
    mock: &MockLlm,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder().method(method).uri(format!("{}{path}", mock.base_url()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).expect("request");
    let resp = client.request(req).await.expect("response head");
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut error = None;
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    buf.extend_from_slice(data);
                }
            }
            Some(Err(e)) => {
                error = Some(e.to_string());
                break;
            }
            None => break,
        }
    }
    Resp { status, headers, body: Bytes::from(buf), error }
}

async fn post(mock: &MockLlm, path: &str, body: Value) -> Resp {
    send(mock, Method::POST, path, &[("content-type", "application/json")], &body.to_string()).await
}

async fn start() -> MockLlm {
    MockLlm::start(MockConfig::default()).await
}

fn anthropic_req(stream: bool) -> Value {
    json!({"model": "claude-test", "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap_or("?").to_owned()).collect()
}

// ---------------------------------------------------------------- Anthropic

#[tokio::test]
async fn anthropic_message_json() {
    let mock = MockLlm::start(MockConfig::default().usage(Usage::new(11, 7, 3, 2, 0))).await;
    let r = post(&mock, "/v1/messages?beta=true", anthropic_req(false)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("request-id").is_some_and(|id| id.starts_with("req_")));
    let m = r.json();
    assert!(m["id"].as_str().is_some_and(|id| id.starts_with("msg_01") && id.len() == 28));
    assert_eq!(m["type"], "message");
    assert_eq!(m["role"], "assistant");
    assert_eq!(m["model"], "claude-test");
    assert_eq!(m["content"], json!([{"type": "text", "text": "Hello from mock"}]));
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["stop_sequence"], Value::Null);
    assert_eq!(m["usage"]["input_tokens"], 11);
    assert_eq!(m["usage"]["output_tokens"], 7);
    assert_eq!(m["usage"]["cache_read_input_tokens"], 3);
    assert_eq!(m["usage"]["cache_creation_input_tokens"], 2);
    // `type` first, like the real API.
    assert!(r.text().starts_with(r#"{"id":"msg_01"#));
}

#[tokio::test]
async fn anthropic_stream_event_order() {
    let mock = MockLlm::start(MockConfig::default().usage(Usage::new(25, 9, 4, 1, 0))).await;
    let r = post(&mock, "/v1/messages", anthropic_req(true)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/event-stream; charset=utf-8"));
    let events = r.events();
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap_or("-")).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let data = r.event_json();
    // Every data's `type` matches its event name.
    for ((name, _), d) in events.iter().zip(&data) {
        assert_eq!(name.as_deref(), d["type"].as_str());
    }
    let start = &data[0]["message"];
    assert_eq!(start["model"], "claude-test");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["input_tokens"], 25);
    assert_eq!(start["usage"]["cache_read_input_tokens"], 4);
    assert_eq!(start["usage"]["cache_creation_input_tokens"], 1);
    assert_eq!(data[1]["content_block"], json!({"type": "text", "text": ""}));
    let text: String = data
        .iter()
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(text, "Hello from mock");
    assert_eq!(data[7]["delta"], json!({"stop_reason": "end_turn", "stop_sequence": null}));
    assert_eq!(data[7]["usage"]["output_tokens"], 9);
    assert_eq!(data[7]["usage"]["input_tokens"], 25);
}

#[tokio::test]
async fn anthropic_tool_use_stream_and_json() {
    let input = json!({"command": "echo tool-ok", "description": "say it"});
    let mock = MockLlm::start(
        MockConfig::default()
            .reply(Reply::tool_call("Bash", input.clone()))
            .reply(Reply::tool_call("Bash", input.clone()).with_text("Let me run it.")),
    )
    .await;
    let r = post(&mock, "/v1/messages", anthropic_req(true)).await;
    let data = r.event_json();
    assert_eq!(
        kinds(&data)[..3],
        ["message_start", "content_block_start", "ping"].map(String::from)
    );
    let block = &data[1]["content_block"];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "Bash");
    assert_eq!(block["input"], json!({}));
    assert!(block["id"].as_str().is_some_and(|id| id.starts_with("toolu_01")));
    let partial: String = data
        .iter()
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&partial).ok(), Some(input.clone()));
    let delta = data.iter().find(|d| d["type"] == "message_delta").cloned().unwrap_or_default();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");

    let m = post(&mock, "/v1/messages", anthropic_req(false)).await.json();
    assert_eq!(m["content"][0], json!({"type": "text", "text": "Let me run it."}));
    assert_eq!(m["content"][1]["type"], "tool_use");
    assert_eq!(m["content"][1]["input"], input);
    assert_eq!(m["stop_reason"], "tool_use");
}

#[tokio::test]
async fn tool_result_is_echoed_instead_of_another_call() {
    let mock =
        MockLlm::start(MockConfig::default().default_reply(Reply::shell("echo tool-ok"))).await;
    let first = json!({"model": "m", "max_tokens": 10, "stream": false,
        "tools": [{"name": "Read", "input_schema": {}}, {"name": "Bash", "input_schema": {}}],
        "messages": [{"role": "user", "content": "run it"}]});
    let m = post(&mock, "/v1/messages", first).await.json();
    assert_eq!(m["content"][0]["name"], "Bash");
    assert_eq!(m["content"][0]["input"]["command"], "echo tool-ok");
    let id = m["content"][0]["id"].clone();
    let second = json!({"model": "m", "max_tokens": 10,
    "tools": [{"name": "Bash", "input_schema": {}}],
    "messages": [
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": [m["content"][0].clone()]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": "tool-ok\n"}]},
            {"type": "text", "text": "<system-reminder>x</system-reminder>"}
        ]}
    ]});
    let m = post(&mock, "/v1/messages", second.clone()).await.json();
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["content"].as_array().map(Vec::len), Some(1));
    let text = m["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("Hello from mock"), "{text}");
    assert!(text.contains("Tool result: tool-ok"), "{text}");

    // A verbatim reply ignores the tool result.
    mock.push(Reply::tool_call("Bash", json!({"command": "ls"})).verbatim());
    let m = post(&mock, "/v1/messages", second).await.json();
    assert_eq!(m["content"][0]["type"], "tool_use");
}

#[tokio::test]
async fn shell_reply_adapts_to_offered_tools() {
    let mock =
        MockLlm::start(MockConfig::default().default_reply(Reply::shell("echo tool-ok"))).await;
    let ask = |tools: Value| json!({"model": "gpt-5.5", "input": [{"role": "user", "content": "go"}], "tools": tools});
    let call = |r: &Resp| r.json()["output"][0].clone();

    let r = post(
        &mock,
        "/v1/responses",
        ask(json!([{"type": "function", "name": "shell", "parameters": {}}])),
    )
    .await;
    let item = call(&r);
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "shell");
    let args: Value =
        serde_json::from_str(item["arguments"].as_str().unwrap_or("")).unwrap_or_default();
    assert_eq!(args, json!({"command": ["bash", "-lc", "echo tool-ok"]}));

    let r =
        post(&mock, "/v1/responses", ask(json!([{"type": "function", "name": "exec_command"}])))
            .await;
    assert_eq!(call(&r)["name"], "exec_command");
    assert_eq!(call(&r)["arguments"], r#"{"cmd":"echo tool-ok"}"#);

    let r =
        post(&mock, "/v1/responses", ask(json!([{"type": "function", "name": "shell_command"}])))
            .await;
    assert_eq!(call(&r)["arguments"], r#"{"command":"echo tool-ok"}"#);

    // No tools offered: plain text.
    let r = post(&mock, "/v1/responses", json!({"model": "gpt-5.5", "input": "hi"})).await;
    assert_eq!(call(&r)["type"], "message");
}

#[tokio::test]
async fn anthropic_thinking_block() {
    let mock =
        MockLlm::start(MockConfig::default().reply(Reply::text("done").thinking("let me think")))
            .await;
    let data = post(&mock, "/v1/messages", anthropic_req(true)).await.event_json();
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    let sig = data.iter().find(|d| d["delta"]["type"] == "signature_delta");
    assert!(sig.is_some_and(|d| d["delta"]["signature"].as_str().is_some_and(|s| !s.is_empty())));
    let second_block = data.iter().filter(|d| d["type"] == "content_block_start").nth(1).cloned();
    assert_eq!(second_block.map(|b| b["index"].clone()), Some(json!(1)));
}

#[tokio::test]
async fn count_tokens_and_models() {
    let mock = MockLlm::start(MockConfig::default().usage(Usage::new(42, 1, 0, 0, 0))).await;
    let r = post(&mock, "/v1/messages/count_tokens", anthropic_req(false)).await;
    assert_eq!(r.json(), json!({"input_tokens": 42}));

    let r =
        send(&mock, Method::GET, "/v1/models", &[("anthropic-version", "2023-06-01")], "").await;
    let m = r.json();
    assert_eq!(m["has_more"], false);
    assert_eq!(m["data"][0]["type"], "model");
    assert!(m["data"][0]["display_name"].is_string());
    assert!(m["first_id"].is_string());

    let r = send(&mock, Method::GET, "/v1/models", &[], "").await;
    let m = r.json();
    assert_eq!(m["object"], "list");
    assert_eq!(m["data"][0]["object"], "model");
    assert!(m["data"][0]["owned_by"].is_string());

    let r = send(&mock, Method::GET, "/v1/models/gpt-4o", &[], "").await;
    assert_eq!(r.json()["id"], "gpt-4o");
    let r = send(&mock, Method::GET, "/v1/models/nope", &[("anthropic-version", "2023-06-01")], "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
}

// ---------------------------------------------------------------- OpenAI chat

fn chat_req(stream: bool, include_usage: Option<bool>) -> Value {
    let mut req = json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    if let Some(include) = include_usage {
        req["stream_options"] = json!({"include_usage": include});
    }
    req
}

#[tokio::test]
async fn chat_completion_json() {
    let mock = MockLlm::start(MockConfig::default().usage(Usage::new(19, 10, 4, 0, 2))).await;
    let r = post(&mock, "/v1/chat/completions", chat_req(false, None)).await;
    assert!(r.header("x-request-id").is_some());
    let c = r.json();
    assert!(c["id"].as_str().is_some_and(|id| id.starts_with("chatcmpl-")));
    assert_eq!(c["object"], "chat.completion");
    assert_eq!(c["model"], "gpt-4o");
    assert_eq!(c["choices"][0]["message"]["role"], "assistant");
    assert_eq!(c["choices"][0]["message"]["content"], "Hello from mock");
    assert_eq!(c["choices"][0]["finish_reason"], "stop");
    assert_eq!(c["usage"]["prompt_tokens"], 19);
    assert_eq!(c["usage"]["completion_tokens"], 10);
    assert_eq!(c["usage"]["total_tokens"], 29);
    assert_eq!(c["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    assert_eq!(c["usage"]["completion_tokens_details"]["reasoning_tokens"], 2);
}

#[tokio::test]
async fn chat_stream_with_and_without_usage() {
    let mock = start().await;
    let r = post(&mock, "/v1/chat/completions", chat_req(true, Some(true))).await;
    let events = r.events();
    assert!(events.iter().all(|(e, _)| e.is_none()));
    assert_eq!(events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));
    let chunks = r.event_json();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert!(chunks.iter().all(|c| c.get("usage").is_some()));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let last = chunks.last().cloned().unwrap_or_default();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 10);
    assert_eq!(last["usage"]["completion_tokens"], 5);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["usage"], Value::Null);
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Hello from mock");

    for include in [None, Some(false)] {
        let r = post(&mock, "/v1/chat/completions", chat_req(true, include)).await;
        let chunks = r.event_json();
        assert!(chunks.iter().all(|c| c.get("usage").is_none()), "{include:?}");
        assert!(chunks.iter().all(|c| !c["choices"].as_array().is_some_and(Vec::is_empty)));
    }
}

#[tokio::test]
async fn chat_tool_calls() {
    let input = json!({"city": "Paris"});
    let mock = MockLlm::start(
        MockConfig::default()
            .reply(Reply::tool_call("get_weather", input.clone()))
            .reply(Reply::tool_call("get_weather", input.clone())),
    )
    .await;
    let c = post(&mock, "/v1/chat/completions", chat_req(false, None)).await.json();
    let msg = &c["choices"][0]["message"];
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(msg["tool_calls"][0]["type"], "function");
    assert_eq!(msg["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(msg["tool_calls"][0]["function"]["arguments"], input.to_string());
    assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");

    let chunks = post(&mock, "/v1/chat/completions", chat_req(true, None)).await.event_json();
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["tool_calls"][0]["index"], 0);
    assert!(first["tool_calls"][0]["id"].as_str().is_some_and(|id| id.starts_with("call_")));
    assert_eq!(first["tool_calls"][0]["function"]["name"], "get_weather");
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&args).ok(), Some(input));
    assert_eq!(
        chunks.last().map(|c| c["choices"][0]["finish_reason"].clone()),
        Some(json!("tool_calls"))
    );

    // The tool's answer comes back as a `tool` message: echoed.
    let follow = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": msg["tool_calls"].clone()},
        {"role": "tool", "tool_call_id": "x", "content": "sunny, 21C"}
    ]});
    let c = post(&mock, "/v1/chat/completions", follow).await.json();
    let text = c["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(text.contains("sunny, 21C"), "{text}");
}

// ---------------------------------------------------------------- Responses

#[tokio::test]
async fn responses_stream_text() {
    let mock = MockLlm::start(MockConfig::default().usage(Usage::new(30, 8, 12, 0, 3))).await;
    let req = json!({"model": "gpt-5.5", "stream": true, "store": false, "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sys"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]});
    let r = post(&mock, "/v1/responses", req).await;
    let events = r.events();
    let data = r.event_json();
    assert_eq!(
        kinds(&data),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    for (i, ((name, _), d)) in events.iter().zip(&data).enumerate() {
        assert_eq!(name.as_deref(), d["type"].as_str());
        assert_eq!(d["sequence_number"], i);
    }
    let created = &data[0]["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["store"], false);
    assert_eq!(created["usage"], Value::Null);
    let id = created["id"].as_str().unwrap_or_default();
    assert!(id.starts_with("resp_"));
    let item_id = data[2]["item"]["id"].as_str().unwrap_or_default();
    assert!(item_id.starts_with("msg_"));
    assert_eq!(data[4]["item_id"], item_id);
    assert_eq!(data[7]["text"], "Hello from mock");
    assert_eq!(data[9]["item"]["content"][0]["text"], "Hello from mock");
    let done = &data[10]["response"];
    assert_eq!(done["id"], id);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["status"], "completed");
    assert_eq!(
        done["usage"],
        json!({"input_tokens": 30, "input_tokens_details": {"cached_tokens": 12, "cache_write_tokens": 0},
               "output_tokens": 8, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 38})
    );
}

#[tokio::test]
async fn responses_function_call_flow() {
    let args = json!({"command": ["bash", "-lc", "echo tool-ok"]});
    let mock =
        MockLlm::start(MockConfig::default().reply(Reply::tool_call("shell", args.clone()))).await;
    let req =
        json!({"model": "gpt-5.5", "stream": true, "input": [{"role": "user", "content": "go"}]});
    let data = post(&mock, "/v1/responses", req).await.event_json();
    assert_eq!(kinds(&data)[2], "response.output_item.added");
    let item = &data[2]["item"];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "shell");
    assert_eq!(item["arguments"], "");
    let call_id = item["call_id"].as_str().unwrap_or_default().to_owned();
    assert!(call_id.starts_with("call_"));
    let deltas: String = data
        .iter()
        .filter(|d| d["type"] == "response.function_call_arguments.delta")
        .filter_map(|d| d["delta"].as_str())
        .collect();
    assert_eq!(deltas, args.to_string());
    let done = data.iter().find(|d| d["type"] == "response.function_call_arguments.done").cloned();
    assert_eq!(done.map(|d| d["arguments"].clone()), Some(json!(args.to_string())));
    let kinds = kinds(&data);
    assert_eq!(kinds[kinds.len() - 2], "response.output_item.done");
    assert_eq!(kinds[kinds.len() - 1], "response.completed");

    // The function output comes back: echoed as text.
    let req = json!({"model": "gpt-5.5", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "function_call", "call_id": call_id, "name": "shell", "arguments": args.to_string()},
        {"type": "function_call_output", "call_id": call_id, "output": "tool-ok\n"}]});
    let r = post(&mock, "/v1/responses", req).await.json();
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["output"][0]["type"], "message");
    let text = r["output"][0]["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("tool-ok"), "{text}");
}

#[tokio::test]
async fn responses_error_event() {
    let mock =
        MockLlm::start(MockConfig::default().reply(Reply::text("a b c").error_event_after(3)))
            .await;
    let req = json!({"model": "gpt-5.5", "stream": true, "input": "hi"});
    let data = post(&mock, "/v1/responses", req).await.event_json();
    assert_eq!(data.len(), 4);
    assert_eq!(data[3]["type"], "response.failed");
    assert_eq!(data[3]["sequence_number"], 3);
    assert_eq!(data[3]["response"]["id"], data[0]["response"]["id"]);
    assert_eq!(data[3]["response"]["status"], "failed");
}

// ---------------------------------------------------------------- embeddings, Azure

#[tokio::test]
async fn embeddings_float_and_base64() {
    let mock = start().await;
    let r = post(
        &mock,
        "/v1/embeddings",
        json!({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 4}),
    )
    .await;
    let e = r.json();
    assert_eq!(e["object"], "list");
    assert_eq!(e["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(e["data"][1]["index"], 1);
    assert_eq!(e["data"][0]["embedding"].as_array().map(Vec::len), Some(4));
    assert_eq!(e["usage"], json!({"prompt_tokens": 10, "total_tokens": 10}));

    let r = post(
        &mock,
        "/v1/embeddings",
        json!({"model": "m", "input": "a", "encoding_format": "base64"}),
    )
    .await;
    let b64 = r.json()["data"][0]["embedding"].as_str().unwrap_or_default().to_owned();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
    assert_eq!(bytes.len(), 8 * 4);
}

#[tokio::test]
async fn azure_and_unversioned_paths() {
    let mock = start().await;
    let r = post(
        &mock,
        "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.json()["model"], "my-gpt");
    let r = post(&mock, "/chat/completions", chat_req(false, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = post(&mock, "/openai/v1/responses", json!({"model": "x", "input": "hi"})).await;
    assert_eq!(r.json()["object"], "response");
}

// ---------------------------------------------------------------- failure modes

#[tokio::test]
async fn http_errors_have_provider_bodies() {
    let mock = MockLlm::start(
        MockConfig::default()
            .reply(Reply::rate_limited(7))
            .reply(Reply::overloaded())
            .reply(Reply::server_error())
            .reply(Reply::rate_limited(3))
            .reply(Reply::error(400).error_body(json!({"custom": true}))),
    )
    .await;
    let r = post(&mock, "/v1/messages", anthropic_req(true)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("7"));
    let e = r.json();
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "rate_limit_error");
    assert!(e["request_id"].as_str().is_some_and(|id| id.starts_with("req_")));

    let r = post(&mock, "/v1/messages", anthropic_req(false)).await;
    assert_eq!(r.status.as_u16(), 529);
    assert_eq!(r.json()["error"], json!({"type": "overloaded_error", "message": "Overloaded"}));

    let r = post(&mock, "/v1/chat/completions", chat_req(false, None)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.json()["error"]["type"], "server_error");
    assert_eq!(r.json()["error"]["param"], Value::Null);

    let r =
        post(&mock, "/v1/responses", json!({"model": "x", "input": "hi", "stream": true})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");

    let r = post(&mock, "/v1/responses", json!({"model": "x", "input": "hi"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json(), json!({"custom": true}));
}

#[tokio::test]
async fn cut_stream_mid_way() {
    let mock = MockLlm::start(MockConfig::default().reply(Reply::default().cut_after(3))).await;
    let r = post(&mock, "/v1/messages", anthropic_req(true)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.error.is_some(), "the body must end in an error");
    let names: Vec<String> = r.events().into_iter().filter_map(|(e, _)| e).collect();
    assert_eq!(names, ["message_start", "content_block_start", "ping"]);
    // The next request is whole again.
    let r = post(&mock, "/v1/messages", anthropic_req(true)).await;
    assert!(r.error.is_none());
    assert_eq!(r.events().last().and_then(|(e, _)| e.clone()).as_deref(), Some("message_stop"));
}

#[tokio::test]
async fn cut_non_streaming_body() {
    let mock = MockLlm::start(MockConfig::default().reply(Reply::default().cut_after(0))).await;
    let r = post(&mock, "/v1/chat/completions", chat_req(false, None)).await;
    assert!(r.error.is_some());
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
}

#[tokio::test]
async fn anthropic_error_event_mid_stream() {
    let mock =
        MockLlm::start(MockConfig::default().reply(Reply::default().error_event_after(2))).await;
    let r = post(&mock, "/v1/messages", anthropic_req(true)).await;
    assert!(r.error.is_none());
    let events = r.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].0.as_deref(), Some("error"));
    let e: Value = serde_json::from_str(&events[2].1).unwrap_or_default();
    assert_eq!(e["error"]["type"], "overloaded_error");
}

#[tokio::test(start_paused = true)]
async fn drip_delays_events() {
    let mock = MockLlm::start(MockConfig::default().drip(Duration::from_millis(500))).await;
    let begin = tokio::time::Instant::now();
    let r = post(&mock, "/v1/messages", anthropic_req(true)).await;
    assert_eq!(r.events().len(), 9);
    // 8 gaps between 9 events (virtual time: the test does not sleep).
    assert!(begin.elapsed() >= Duration::from_millis(8 * 500), "{:?}", begin.elapsed());
}

#[tokio::test]
async fn delay_before_head() {
    tokio::time::pause();
    let mock = MockLlm::start(
        MockConfig::default().reply(Reply::default().delay(Duration::from_secs(30))),
    )
    .await;
    let begin = tokio::time::Instant::now();
    let r = post(&mock, "/v1/chat/completions", chat_req(false, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(begin.elapsed() >= Duration::from_secs(30));
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut out).expect("gzip");
    out
}

#[tokio::test]
async fn gzip_modes() {
    let mock = MockLlm::start(MockConfig::default().gzip(Gzip::Auto)).await;
    let body = anthropic_req(true).to_string();
    let accept = [("accept-encoding", "gzip, deflate, br, zstd")];
    let r = send(&mock, Method::POST, "/v1/messages", &accept, &body).await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let text = gunzip(&r.body);
    assert_eq!(
        parse_sse(&text).last().and_then(|(e, _)| e.clone()).as_deref(),
        Some("message_stop")
    );

    let r = send(&mock, Method::POST, "/v1/messages", &[], &body).await;
    assert_eq!(r.header("content-encoding"), None);
    let r =
        send(&mock, Method::POST, "/v1/messages", &[("accept-encoding", "gzip;q=0, br")], &body)
            .await;
    assert_eq!(r.header("content-encoding"), None);

    mock.push(Reply::default().gzip(Gzip::Force));
    let body = chat_req(false, None).to_string();
    let r = send(&mock, Method::POST, "/v1/chat/completions", &[], &body).await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let c: Value = serde_json::from_str(&gunzip(&r.body)).unwrap_or_default();
    assert_eq!(c["object"], "chat.completion");

    // A cut gzip stream still delivers the events before the cut, decodable.
    mock.push(Reply::default().gzip(Gzip::Force).cut_after(2));
    let r = send(&mock, Method::POST, "/v1/messages", &[], &anthropic_req(true).to_string()).await;
    assert!(r.error.is_some());
    let mut partial = Vec::new();
    let _ = flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut partial);
    let text = String::from_utf8_lossy(&partial);
    assert_eq!(parse_sse(&text).len(), 2, "{text}");
}

// ---------------------------------------------------------------- recording, control, odd input

#[tokio::test]
async fn records_requests() {
    let mock = start().await;
    let body = anthropic_req(false).to_string();
    let headers = [
        ("x-api-key", "sk-test"),
        ("anthropic-version", "2023-06-01"),
        ("authorization", "Bearer t"),
    ];
    send(&mock, Method::POST, "/v1/messages?beta=true", &headers, &body).await;
    send(&mock, Method::HEAD, "/", &[], "").await;
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/messages?beta=true");
    assert_eq!(reqs[0].path_only(), "/v1/messages");
    assert_eq!(reqs[0].header("x-api-key"), Some("sk-test"));
    assert_eq!(reqs[0].header("authorization"), Some("Bearer t"));
    assert_eq!(&reqs[0].body[..], body.as_bytes());
    assert_eq!(reqs[0].json().map(|v| v["model"].clone()), Some(json!("claude-test")));
    let last = mock.last_request().map(|r| (r.method, r.path));
    assert_eq!(last, Some(("HEAD".to_owned(), "/".to_owned())));
    mock.clear_requests();
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn recording_keeps_the_latest() {
    let mock = MockLlm::start(MockConfig::default().max_recorded(2)).await;
    for path in ["/a", "/b", "/c"] {
        send(&mock, Method::GET, path, &[], "").await;
    }
    let paths: Vec<String> = mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/b", "/c"]);
}

#[tokio::test]
async fn serves_h2c_prior_knowledge() {
    let mock = start().await;
    let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http::<Full<Bytes>>();
    let req = Request::post(format!("{}/v1/messages", mock.base_url()))
        .body(Full::new(Bytes::from(anthropic_req(true).to_string())))
        .expect("request");
    let resp = client.request(req).await.expect("h2 response");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let events = parse_sse(&String::from_utf8_lossy(&body));
    assert_eq!(events.last().and_then(|(e, _)| e.clone()).as_deref(), Some("message_stop"));
}

#[tokio::test]
async fn control_api() {
    let mock = start().await;
    let script =
        json!([{"tool_call": {"name": "Bash", "input": {"command": "ls"}}}, {"text": "second"}]);
    let r = send(&mock, Method::POST, "/_mock/script", &[], &script.to_string()).await;
    assert_eq!(r.json(), json!({"queued": 2}));
    let r = send(&mock, Method::POST, "/_mock/script", &[], r#"{"text": 5}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(mock.pending(), 2);
    let m = post(&mock, "/v1/messages", anthropic_req(false)).await.json();
    assert_eq!(m["content"][0]["name"], "Bash");
    let m = post(&mock, "/v1/messages", anthropic_req(false)).await.json();
    assert_eq!(m["content"][0]["text"], "second");

    let r = send(
        &mock,
        Method::POST,
        "/_mock/default",
        &[],
        r#"{"text": "dflt", "usage": {"input": 1, "output": 2}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let m = post(&mock, "/v1/messages", anthropic_req(false)).await.json();
    assert_eq!(m["content"][0]["text"], "dflt");
    assert_eq!(m["usage"]["output_tokens"], 2);

    let r = send(&mock, Method::GET, "/_mock/requests", &[("x-api-key", "k")], "").await;
    let list = r.json();
    assert_eq!(list.as_array().map(Vec::len), Some(3));
    assert_eq!(list[0]["method"], "POST");
    assert_eq!(list[0]["path"], "/v1/messages");
    assert_eq!(list[0]["headers"]["content-type"], "application/json");
    assert!(list[0]["body"].as_str().is_some_and(|b| b.contains("claude-test")));

    let r = send(&mock, Method::POST, "/_mock/reset", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(mock.requests().is_empty());
    let m = post(&mock, "/v1/messages", anthropic_req(false)).await.json();
    assert_eq!(m["content"][0]["text"], "Hello from mock");
    assert_eq!(
        send(&mock, Method::GET, "/_mock/health", &[], "").await.json(),
        json!({"ok": true})
    );
}

#[tokio::test]
async fn script_builder_and_push() {
    let mock = MockLlm::start(
        MockConfig::default()
            .script(Script::new().then(Reply::text("one")).then(Reply::text("two"))),
    )
    .await;
    mock.push_script(vec![Reply::text("three")]);
    mock.set_default(Reply::text("rest"));
    let mut texts = Vec::new();
    for _ in 0..4 {
        let m = post(&mock, "/v1/messages", anthropic_req(false)).await.json();
        texts.push(m["content"][0]["text"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(texts, ["one", "two", "three", "rest"]);
    mock.reset();
    assert_eq!(mock.pending(), 2);
}

#[tokio::test]
async fn odd_input_gets_provider_errors_not_panics() {
    let mock = start().await;
    let paths = [
        "/v1/messages",
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/embeddings",
        "/v1/messages/count_tokens",
    ];
    let bodies = [
        "",
        "not json",
        "[]",
        "null",
        r#"{"messages": "str", "tools": 5, "input": {"x": 1}, "stream": "yes"}"#,
        r#"{"messages": [{"role": "user", "content": [{"type": "tool_result", "content": {"a": [1]}}]}], "input": [null, 1, {"type": 5}]}"#,
        r#"{"model": 5, "stream_options": [], "dimensions": 99999999999, "input": [[1, 2], "x"]}"#,
    ];
    for path in paths {
        for body in bodies {
            let r = send(&mock, Method::POST, path, &[], body).await;
            assert!(r.error.is_none(), "{path} {body}");
            assert!(
                r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
                "{path} {body}: {}",
                r.status
            );
            if r.status == StatusCode::BAD_REQUEST {
                assert!(r.json().get("error").is_some(), "{path} {body}");
            }
        }
    }
    let r = send(&mock, Method::GET, "/v1/messages", &[], "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json()["type"], "error");
    let r = send(&mock, Method::POST, "/v2/unknown", &[], "{}").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"]["message"].is_string());
}

#[tokio::test]
async fn stop_closes_the_port() {
    let mock = start().await;
    let addr = mock.addr();
    assert!(mock.base_url().starts_with("http://127.0.0.1:"));
    mock.stop();
    tokio::task::yield_now().await;
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused);
}

#[tokio::test]
async fn dripped_events_arrive_promptly() {
    // Events written one by one (a 1 ms drip) must not queue behind delayed ACKs (the accepted
    // sockets have TCP_NODELAY). A latency smoke test: the bound is loose against a busy machine.
    let mock = MockLlm::start(MockConfig::default().drip(Duration::from_millis(1))).await;
    let begin = std::time::Instant::now();
    for _ in 0..3 {
        let r = post(&mock, "/v1/messages", anthropic_req(true)).await;
        assert_eq!(r.events().len(), 9);
    }
    assert!(begin.elapsed() < Duration::from_millis(3 * 8 * 20), "{:?}", begin.elapsed());
}

// ---------------------------------------------------------------- mock-llm options

#[test]
fn cli_options() {
    let parse = |args: &[&str]| parse_args(args.iter().copied());
    let Ok(Command::Serve { listen, config }) = parse(&[
        "--listen",
        "127.0.0.1:0",
        "--tool-call-first",
        "--usage",
        "1,2,3,4,5",
        "--gzip=force",
    ]) else {
        panic!("expected serve");
    };
    assert_eq!(listen.port(), 0);
    assert_eq!(config.usage, Usage::new(1, 2, 3, 4, 5));
    assert_eq!(config.gzip, Gzip::Force);
    assert_eq!(config.default_reply, Reply::shell("echo tool-ok"));

    let Ok(Command::Serve { config, .. }) = parse(&[
        "--tool-name",
        "shell",
        "--tool-input",
        r#"{"command":["bash","-lc","echo tool-ok"]}"#,
    ]) else {
        panic!("expected serve");
    };
    assert_eq!(config.default_reply.tool_call.map(|t| t.name), Some("shell".to_owned()));

    assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
    assert!(parse(&["--usage", "1,x"]).is_err());
    assert!(parse(&["--listen"]).is_err());
    assert!(parse(&["--bogus"]).is_err());
    assert!(parse(&["--gzip", "maybe"]).is_err());
}

#[test]
fn reply_json_round_trip() {
    let reply = Reply::tool_call("Bash", json!({"command": "ls"}))
        .with_text("t")
        .usage(Usage::new(1, 2, 0, 0, 0))
        .cut_after(3)
        .drip(Duration::from_millis(5))
        .gzip(Gzip::Auto);
    let text = serde_json::to_string(&reply).unwrap_or_default();
    assert_eq!(serde_json::from_str::<Reply>(&text).ok(), Some(reply));
    assert_eq!(
        serde_json::from_value::<Reply>(json!({"error": {"status": 429, "retry_after": 2}})).ok(),
        Some(Reply::rate_limited(2))
    );
    assert!(serde_json::from_value::<Reply>(json!({"txt": "typo"})).is_err());
}
