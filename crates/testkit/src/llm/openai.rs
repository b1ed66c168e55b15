//! The OpenAI Chat Completions API (JSON and SSE chunks ending in `data: [DONE]`), embeddings,
//! models and error bodies, shaped like the real API (and checked against the `openai` SDK's
//! types).

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

use super::conversation::Outcome;
use super::script::{ErrorReply, Usage};
use super::wire::{char_pieces, id62, obj, sse, text_pieces, unix_now, J};

const FINGERPRINT: &str = "fp_mock0001";

/// Chat usage object.
pub(crate) fn chat_usage(u: &Usage) -> J {
    let mut prompt_details = obj! { "cached_tokens" => u.cache_read, "audio_tokens" => 0u64 };
    if u.cache_write > 0 {
        prompt_details.push("cache_write_tokens", u.cache_write);
    }
    obj! {
        "prompt_tokens" => u.input,
        "completion_tokens" => u.output,
        "total_tokens" => u.input + u.output,
        "prompt_tokens_details" => prompt_details,
        "completion_tokens_details" => obj! {
            "reasoning_tokens" => u.reasoning,
            "audio_tokens" => 0u64,
            "accepted_prediction_tokens" => 0u64,
            "rejected_prediction_tokens" => 0u64,
        },
    }
}

fn finish_reason(o: &Outcome) -> String {
    o.stop_reason
        .clone()
        .unwrap_or_else(|| if o.tool.is_some() { "tool_calls" } else { "stop" }.to_owned())
}

fn arguments(o: &Outcome) -> Option<(String, String, String)> {
    o.tool.as_ref().map(|t| (id62("call_", 24), t.name.clone(), t.input.to_string()))
}

/// The non-streaming `chat.completion`.
pub(crate) fn chat_json(model: &str, o: &Outcome) -> String {
    let mut message = obj! {
        "role" => "assistant",
        "content" => o.text.clone(),
    };
    if let Some((id, name, args)) = arguments(o) {
        message.push(
            "tool_calls",
            vec![obj! {
                "id" => id,
                "type" => "function",
                "function" => obj! { "name" => name, "arguments" => args },
            }],
        );
    }
    message.push("refusal", J::Null);
    message.push("annotations", J::A(vec![]));
    obj! {
        "id" => id62("chatcmpl-", 29),
        "object" => "chat.completion",
        "created" => unix_now(),
        "model" => model,
        "choices" => vec![obj! {
            "index" => 0u64,
            "message" => message,
            "logprobs" => J::Null,
            "finish_reason" => finish_reason(o),
        }],
        "usage" => chat_usage(&o.usage),
        "service_tier" => "default",
        "system_fingerprint" => FINGERPRINT,
    }
    .to_json()
}

/// The SSE frames of a streaming chat completion. With `include_usage` every chunk carries
/// `"usage":null` and a last chunk with `"choices":[]` carries the usage.
pub(crate) fn chat_frames(model: &str, o: &Outcome, include_usage: bool) -> Vec<Bytes> {
    let id = id62("chatcmpl-", 29);
    let created = unix_now();
    let chunk = |choices: Vec<J>, usage: Option<J>| -> Bytes {
        let mut c = obj! {
            "id" => &id,
            "object" => "chat.completion.chunk",
            "created" => created,
            "model" => model,
            "service_tier" => "default",
            "system_fingerprint" => FINGERPRINT,
            "choices" => choices,
        };
        if include_usage {
            c.push("usage", usage.unwrap_or(J::Null));
        }
        sse(None, &c.to_json())
    };
    let choice = |delta: J, finish: Option<String>| -> J {
        obj! { "index" => 0u64, "delta" => delta, "logprobs" => J::Null, "finish_reason" => finish }
    };
    let mut frames = Vec::new();
    let tool = arguments(o);
    match (&o.text, &tool) {
        (Some(_), _) | (None, None) => frames.push(chunk(
            vec![choice(
                obj! { "role" => "assistant", "content" => "", "refusal" => J::Null },
                None,
            )],
            None,
        )),
        (None, Some((call_id, name, _))) => frames.push(chunk(
            vec![choice(
                obj! {
                    "role" => "assistant",
                    "content" => J::Null,
                    "tool_calls" => vec![obj! {
                        "index" => 0u64,
                        "id" => call_id,
                        "type" => "function",
                        "function" => obj! { "name" => name, "arguments" => "" },
                    }],
                    "refusal" => J::Null,
                },
                None,
            )],
            None,
        )),
    }
    if let Some(text) = &o.text {
        for piece in text_pieces(text) {
            frames.push(chunk(vec![choice(obj! { "content" => piece }, None)], None));
        }
        if let Some((call_id, name, _)) = &tool {
            frames.push(chunk(
                vec![choice(
                    obj! { "tool_calls" => vec![obj! {
                        "index" => 0u64,
                        "id" => call_id,
                        "type" => "function",
                        "function" => obj! { "name" => name, "arguments" => "" },
                    }] },
                    None,
                )],
                None,
            ));
        }
    }
    if let Some((_, _, args)) = &tool {
        for piece in char_pieces(args, 24) {
            frames.push(chunk(
                vec![choice(
                    obj! { "tool_calls" => vec![obj! {
                        "index" => 0u64,
                        "function" => obj! { "arguments" => piece },
                    }] },
                    None,
                )],
                None,
            ));
        }
    }
    frames.push(chunk(vec![choice(obj! {}, Some(finish_reason(o)))], None));
    if include_usage {
        frames.push(chunk(vec![], Some(chat_usage(&o.usage))));
    }
    frames.push(sse(None, "[DONE]"));
    frames
}

/// The in-stream error chunk of a chat stream.
pub(crate) fn chat_error_frame() -> Bytes {
    sse(
        None,
        &obj! { "error" => obj! {
            "message" => "The server had an error while processing your request. Sorry about that!",
            "type" => "server_error",
            "param" => J::Null,
            "code" => J::Null,
        } }
        .to_json(),
    )
}

/// OpenAI's error `type`, `code` and default message for a status.
pub(crate) fn error_kind(status: u16) -> (&'static str, Option<&'static str>, &'static str) {
    match status {
        401 => ("invalid_request_error", Some("invalid_api_key"), "Incorrect API key provided."),
        403 => ("invalid_request_error", Some("unsupported_country_region_territory"), "Forbidden"),
        404 => (
            "invalid_request_error",
            Some("model_not_found"),
            "The model does not exist or you do not have access to it.",
        ),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached (mock). Please try again later.",
        ),
        503 | 529 => {
            ("server_error", None, "The engine is currently overloaded, please try again later.")
        }
        500..=599 => (
            "server_error",
            None,
            "The server had an error while processing your request. Sorry about that!",
        ),
        _ => ("invalid_request_error", None, "Invalid request"),
    }
}

/// The error body (`{"error":{"message","type","param","code"}}`).
pub(crate) fn error_json(err: &ErrorReply) -> String {
    if let Some(body) = &err.body {
        return body.to_string();
    }
    let (kind, code, message) = error_kind(err.status);
    obj! { "error" => obj! {
        "message" => err.message.clone().unwrap_or_else(|| message.to_owned()),
        "type" => err.error_type.clone().unwrap_or_else(|| kind.to_owned()),
        "param" => J::Null,
        "code" => code,
    } }
    .to_json()
}

/// `GET /v1/models` in OpenAI's shape.
pub(crate) fn models_json(models: &[String]) -> String {
    obj! {
        "object" => "list",
        "data" => models.iter().map(|m| model_object(m)).collect::<Vec<_>>(),
    }
    .to_json()
}

/// One model object.
pub(crate) fn model_object(id: &str) -> J {
    obj! {
        "id" => id,
        "object" => "model",
        "created" => 1_700_000_000u64,
        "owned_by" => if id.starts_with("claude") { "anthropic" } else { "openai" },
    }
}

/// `POST /v1/embeddings`: one deterministic unit vector per input; `encoding_format: base64`
/// (the Python SDK's default) gives little-endian f32 bytes in base64.
pub(crate) fn embeddings_json(req: &Value, model: &str, usage: &Usage) -> String {
    let inputs: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            vec![Value::Array(items.clone()).to_string()]
        }
        Some(Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect()
        }
        _ => vec![String::new()],
    };
    let dims =
        req.get("dimensions").and_then(Value::as_u64).map_or(8, |d| d.clamp(1, 4096)) as usize;
    let base64 = req.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<J> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let v = vector(text, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                J::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                J::A(v.iter().map(|f| J::F(f64::from(*f))).collect())
            };
            obj! { "object" => "embedding", "index" => index, "embedding" => embedding }
        })
        .collect();
    obj! {
        "object" => "list",
        "data" => data,
        "model" => model,
        "usage" => obj! { "prompt_tokens" => usage.input, "total_tokens" => usage.input },
    }
    .to_json()
}

fn vector(text: &str, dims: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut v: Vec<f32> = (0..dims)
        .map(|i| {
            let mut z = h.wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
