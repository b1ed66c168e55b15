//! The Anthropic Messages API: `POST /v1/messages` (JSON and SSE), `count_tokens`, `models`
//! and error bodies, shaped like the real API (and checked against the `anthropic` SDK's types).

use base64::Engine as _;
use bytes::Bytes;

use super::conversation::Outcome;
use super::script::{ErrorReply, Usage};
use super::wire::{char_pieces, id62, obj, sse, text_pieces, J};

fn usage_full(u: &Usage, output_tokens: u64) -> J {
    let mut usage = obj! {
        "input_tokens" => u.input,
        "cache_creation_input_tokens" => u.cache_write,
        "cache_read_input_tokens" => u.cache_read,
        "cache_creation" => obj! {
            "ephemeral_5m_input_tokens" => u.cache_write,
            "ephemeral_1h_input_tokens" => 0u64,
        },
        "output_tokens" => output_tokens,
        "service_tier" => "standard",
    };
    if u.reasoning > 0 {
        usage.push("output_tokens_details", obj! { "thinking_tokens" => u.reasoning });
    }
    usage
}

fn stop_reason(o: &Outcome) -> String {
    o.stop_reason
        .clone()
        .unwrap_or_else(|| if o.tool.is_some() { "tool_use" } else { "end_turn" }.to_owned())
}

/// A signature for a thinking block: opaque base64, stable for the same text.
fn signature(thinking: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in thinking.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    base64::engine::general_purpose::STANDARD
        .encode(format!("mock-signature:{}:{h:016x}", thinking.len()))
}

/// The non-streaming response body.
pub(crate) fn message_json(model: &str, o: &Outcome) -> String {
    let mut content = Vec::new();
    if let Some(thinking) = &o.thinking {
        content.push(obj! {
            "type" => "thinking",
            "thinking" => thinking,
            "signature" => signature(thinking),
        });
    }
    if let Some(text) = &o.text {
        content.push(obj! { "type" => "text", "text" => text });
    }
    if let Some(tool) = &o.tool {
        content.push(obj! {
            "type" => "tool_use",
            "id" => id62("toolu_01", 22),
            "name" => &tool.name,
            "input" => tool.input.clone(),
        });
    }
    obj! {
        "id" => id62("msg_01", 22),
        "type" => "message",
        "role" => "assistant",
        "model" => model,
        "content" => content,
        "stop_reason" => stop_reason(o),
        "stop_sequence" => J::Null,
        "usage" => usage_full(&o.usage, o.usage.output),
    }
    .to_json()
}

fn event(name: &str, data: J) -> Bytes {
    sse(Some(name), &data.to_json())
}

/// The SSE frames of a streaming response: `message_start`, per block `content_block_start`
/// (`ping` after the first), deltas, `content_block_stop`; `message_delta`, `message_stop`.
pub(crate) fn stream_frames(model: &str, o: &Outcome) -> Vec<Bytes> {
    let u = &o.usage;
    let mut frames = vec![event(
        "message_start",
        obj! {
            "type" => "message_start",
            "message" => obj! {
                "id" => id62("msg_01", 22),
                "type" => "message",
                "role" => "assistant",
                "model" => model,
                "content" => J::A(vec![]),
                "stop_reason" => J::Null,
                "stop_sequence" => J::Null,
                "usage" => usage_full(u, u.output.min(1)),
            },
        },
    )];
    let mut index = 0u64;
    let start = |frames: &mut Vec<Bytes>, index: u64, block: J| {
        frames.push(event(
            "content_block_start",
            obj! { "type" => "content_block_start", "index" => index, "content_block" => block },
        ));
        if index == 0 {
            frames.push(sse(Some("ping"), r#"{"type": "ping"}"#));
        }
    };
    let delta = |frames: &mut Vec<Bytes>, index: u64, delta: J| {
        frames.push(event(
            "content_block_delta",
            obj! { "type" => "content_block_delta", "index" => index, "delta" => delta },
        ));
    };
    let stop = |frames: &mut Vec<Bytes>, index: u64| {
        frames.push(event(
            "content_block_stop",
            obj! { "type" => "content_block_stop", "index" => index },
        ));
    };
    if let Some(thinking) = &o.thinking {
        start(
            &mut frames,
            index,
            obj! { "type" => "thinking", "thinking" => "", "signature" => "" },
        );
        for piece in text_pieces(thinking) {
            delta(&mut frames, index, obj! { "type" => "thinking_delta", "thinking" => piece });
        }
        delta(
            &mut frames,
            index,
            obj! { "type" => "signature_delta", "signature" => signature(thinking) },
        );
        stop(&mut frames, index);
        index += 1;
    }
    if let Some(text) = &o.text {
        start(&mut frames, index, obj! { "type" => "text", "text" => "" });
        for piece in text_pieces(text) {
            delta(&mut frames, index, obj! { "type" => "text_delta", "text" => piece });
        }
        stop(&mut frames, index);
        index += 1;
    }
    if let Some(tool) = &o.tool {
        start(
            &mut frames,
            index,
            obj! {
                "type" => "tool_use",
                "id" => id62("toolu_01", 22),
                "name" => &tool.name,
                "input" => obj! {},
            },
        );
        delta(&mut frames, index, obj! { "type" => "input_json_delta", "partial_json" => "" });
        for piece in char_pieces(&tool.input.to_string(), 24) {
            delta(
                &mut frames,
                index,
                obj! { "type" => "input_json_delta", "partial_json" => piece },
            );
        }
        stop(&mut frames, index);
    }
    frames.push(event(
        "message_delta",
        obj! {
            "type" => "message_delta",
            "delta" => obj! { "stop_reason" => stop_reason(o), "stop_sequence" => J::Null },
            "usage" => obj! {
                "input_tokens" => u.input,
                "cache_creation_input_tokens" => u.cache_write,
                "cache_read_input_tokens" => u.cache_read,
                "output_tokens" => u.output,
            },
        },
    ));
    frames.push(event("message_stop", obj! { "type" => "message_stop" }));
    frames
}

/// The in-stream error event (`event: error`, overloaded).
pub(crate) fn error_frame() -> Bytes {
    event(
        "error",
        obj! {
            "type" => "error",
            "error" => obj! { "type" => "overloaded_error", "message" => "Overloaded" },
        },
    )
}

/// Anthropic's error `type` and a default message for a status.
fn error_kind(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("invalid_request_error", "Invalid request"),
        401 => ("authentication_error", "invalid x-api-key"),
        402 => ("billing_error", "Your credit balance is too low"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => ("not_found_error", "Not found"),
        413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization (mock).",
        ),
        504 => ("timeout_error", "Request timed out"),
        529 => ("overloaded_error", "Overloaded"),
        500..=599 => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "Invalid request"),
    }
}

/// The error body (`{"type":"error","error":{…},"request_id":…}`).
pub(crate) fn error_json(err: &ErrorReply, request_id: &str) -> String {
    if let Some(body) = &err.body {
        return body.to_string();
    }
    let (kind, message) = error_kind(err.status);
    obj! {
        "type" => "error",
        "error" => obj! {
            "type" => err.error_type.clone().unwrap_or_else(|| kind.to_owned()),
            "message" => err.message.clone().unwrap_or_else(|| message.to_owned()),
        },
        "request_id" => request_id,
    }
    .to_json()
}

fn display_name(id: &str) -> String {
    id.split('-')
        .filter(|p| !(p.len() == 8 && p.chars().all(|c| c.is_ascii_digit())))
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One model object.
pub(crate) fn model_object(id: &str) -> J {
    obj! {
        "type" => "model",
        "id" => id,
        "display_name" => display_name(id),
        "created_at" => "2025-09-29T00:00:00Z",
    }
}

/// `GET /v1/models` in Anthropic's paginated shape.
pub(crate) fn models_json(models: &[String]) -> String {
    obj! {
        "data" => models.iter().map(|m| model_object(m)).collect::<Vec<_>>(),
        "has_more" => false,
        "first_id" => models.first(),
        "last_id" => models.last(),
    }
    .to_json()
}

/// `POST /v1/messages/count_tokens`.
pub(crate) fn count_tokens_json(input_tokens: u64) -> String {
    obj! { "input_tokens" => input_tokens }.to_json()
}
