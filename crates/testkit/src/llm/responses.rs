//! The OpenAI Responses API (`POST /v1/responses`): the response object and its SSE event
//! sequence, each event with `type` and `sequence_number`, as Codex and the `openai` SDK's
//! stream accumulator require (`response.output_item.done` included: without it Codex prints
//! nothing).

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

use super::conversation::Outcome;
use super::script::Usage;
use super::wire::{char_pieces, id62, idhex, obj, sse, text_pieces, unix_now, J};

/// Response usage object.
pub(crate) fn usage(u: &Usage) -> J {
    obj! {
        "input_tokens" => u.input,
        "input_tokens_details" => obj! { "cached_tokens" => u.cache_read, "cache_write_tokens" => u.cache_write },
        "output_tokens" => u.output,
        "output_tokens_details" => obj! { "reasoning_tokens" => u.reasoning },
        "total_tokens" => u.input + u.output,
    }
}

/// What the response object echoes from the request.
struct Ctx<'a> {
    id: String,
    created_at: u64,
    model: &'a str,
    req: &'a Value,
}

impl Ctx<'_> {
    fn echo(&self, key: &str, default: J) -> J {
        match self.req.get(key) {
            Some(Value::Null) | None => default,
            Some(v) => J::V(v.clone()),
        }
    }

    fn response(&self, status: &str, output: Vec<J>, usage: Option<J>, error: Option<J>) -> J {
        let mut r = obj! {
            "id" => &self.id,
            "object" => "response",
            "created_at" => self.created_at,
            "status" => status,
            "background" => false,
            "error" => error.unwrap_or(J::Null),
            "incomplete_details" => J::Null,
            "instructions" => self.echo("instructions", J::Null),
            "max_output_tokens" => self.echo("max_output_tokens", J::Null),
            "max_tool_calls" => J::Null,
            "model" => self.model,
            "output" => output,
            "parallel_tool_calls" => self.echo("parallel_tool_calls", J::Bool(true)),
            "previous_response_id" => self.echo("previous_response_id", J::Null),
            "prompt_cache_key" => self.echo("prompt_cache_key", J::Null),
            "reasoning" => self.echo("reasoning", obj! { "effort" => J::Null, "summary" => J::Null }),
            "safety_identifier" => J::Null,
            "service_tier" => "default",
            "store" => self.echo("store", J::Bool(true)),
            "temperature" => self.echo("temperature", J::F(1.0)),
            "text" => self.echo("text", obj! { "format" => obj! { "type" => "text" }, "verbosity" => "medium" }),
            "tool_choice" => self.echo("tool_choice", J::from("auto")),
            "tools" => self.echo("tools", J::A(vec![])),
            "top_logprobs" => 0u64,
            "top_p" => self.echo("top_p", J::F(1.0)),
            "truncation" => "disabled",
            "usage" => usage.unwrap_or(J::Null),
            "user" => J::Null,
            "metadata" => self.echo("metadata", obj! {}),
        };
        if status == "completed" {
            r.push("completed_at", unix_now());
        }
        r
    }
}

/// One output item, in its final and its in-progress (as first announced) shape.
enum Item {
    Reasoning { id: String, summary: String, encrypted: Option<String> },
    Message { id: String, text: String },
    Call { id: String, call_id: String, name: String, arguments: String },
}

impl Item {
    fn done(&self) -> J {
        match self {
            Item::Reasoning { id, summary, encrypted } => {
                let mut j = obj! {
                    "id" => id,
                    "type" => "reasoning",
                    "summary" => vec![obj! { "type" => "summary_text", "text" => summary }],
                };
                if let Some(enc) = encrypted {
                    j.push("encrypted_content", enc);
                }
                j
            }
            Item::Message { id, text } => obj! {
                "id" => id,
                "type" => "message",
                "status" => "completed",
                "content" => vec![output_text(text)],
                "role" => "assistant",
            },
            Item::Call { id, call_id, name, arguments } => obj! {
                "id" => id,
                "type" => "function_call",
                "status" => "completed",
                "arguments" => arguments,
                "call_id" => call_id,
                "name" => name,
            },
        }
    }

    fn added(&self) -> J {
        match self {
            Item::Reasoning { id, encrypted, .. } => {
                let mut j = obj! { "id" => id, "type" => "reasoning", "summary" => J::A(vec![]) };
                if let Some(enc) = encrypted {
                    j.push("encrypted_content", enc);
                }
                j
            }
            Item::Message { id, .. } => obj! {
                "id" => id,
                "type" => "message",
                "status" => "in_progress",
                "content" => J::A(vec![]),
                "role" => "assistant",
            },
            Item::Call { id, call_id, name, .. } => obj! {
                "id" => id,
                "type" => "function_call",
                "status" => "in_progress",
                "arguments" => "",
                "call_id" => call_id,
                "name" => name,
            },
        }
    }
}

fn output_text(text: &str) -> J {
    obj! { "type" => "output_text", "annotations" => J::A(vec![]), "logprobs" => J::A(vec![]), "text" => text }
}

fn items(req: &Value, o: &Outcome) -> Vec<Item> {
    let mut items = Vec::new();
    if let Some(thinking) = &o.thinking {
        let wants_encrypted = req.get("include").and_then(Value::as_array).is_some_and(|inc| {
            inc.iter().any(|i| i.as_str() == Some("reasoning.encrypted_content"))
        });
        items.push(Item::Reasoning {
            id: idhex("rs_", 50),
            summary: thinking.clone(),
            encrypted: wants_encrypted.then(|| {
                base64::engine::general_purpose::STANDARD
                    .encode(format!("mock-reasoning:{thinking}"))
            }),
        });
    }
    if let Some(text) = &o.text {
        items.push(Item::Message { id: idhex("msg_", 50), text: text.clone() });
    }
    if let Some(tool) = &o.tool {
        items.push(Item::Call {
            id: idhex("fc_", 50),
            call_id: id62("call_", 24),
            name: tool.name.clone(),
            arguments: tool.input.to_string(),
        });
    }
    items
}

fn ctx<'a>(req: &'a Value, model: &'a str) -> Ctx<'a> {
    Ctx { id: idhex("resp_", 50), created_at: unix_now(), model, req }
}

/// The non-streaming response object.
pub(crate) fn response_json(req: &Value, model: &str, o: &Outcome) -> String {
    let ctx = ctx(req, model);
    let output = items(req, o).iter().map(Item::done).collect();
    ctx.response("completed", output, Some(usage(&o.usage)), None).to_json()
}

/// Numbered SSE events (`event: <type>` + `data:` with `type` and `sequence_number` first).
struct Events {
    frames: Vec<Bytes>,
}

impl Events {
    fn push(&mut self, kind: &str, fields: J) {
        let mut ev = obj! { "type" => kind, "sequence_number" => self.frames.len() };
        if let (J::O(dst), J::O(src)) = (&mut ev, fields) {
            dst.extend(src);
        }
        self.frames.push(sse(Some(kind), &ev.to_json()));
    }
}

/// The SSE frames of a streaming response; with `fail_after`, only that many events and then a
/// `response.failed` (same response id) that ends the stream.
pub(crate) fn stream_frames(
    req: &Value,
    model: &str,
    o: &Outcome,
    fail_after: Option<usize>,
) -> Vec<Bytes> {
    let ctx = ctx(req, model);
    let items = items(req, o);
    let mut ev = Events { frames: Vec::new() };
    ev.push(
        "response.created",
        obj! { "response" => ctx.response("in_progress", vec![], None, None) },
    );
    ev.push(
        "response.in_progress",
        obj! { "response" => ctx.response("in_progress", vec![], None, None) },
    );
    for (index, item) in items.iter().enumerate() {
        ev.push(
            "response.output_item.added",
            obj! { "output_index" => index, "item" => item.added() },
        );
        match item {
            Item::Reasoning { .. } => {}
            Item::Message { id, text } => {
                let part = |ev: &mut Events, kind: &str, text: &str| {
                    ev.push(
                        kind,
                        obj! {
                            "item_id" => id,
                            "output_index" => index,
                            "content_index" => 0u64,
                            "part" => output_text(text),
                        },
                    );
                };
                part(&mut ev, "response.content_part.added", "");
                for piece in text_pieces(text) {
                    ev.push(
                        "response.output_text.delta",
                        obj! {
                            "item_id" => id,
                            "output_index" => index,
                            "content_index" => 0u64,
                            "delta" => piece,
                            "logprobs" => J::A(vec![]),
                        },
                    );
                }
                ev.push(
                    "response.output_text.done",
                    obj! {
                        "item_id" => id,
                        "output_index" => index,
                        "content_index" => 0u64,
                        "text" => text,
                        "logprobs" => J::A(vec![]),
                    },
                );
                part(&mut ev, "response.content_part.done", text);
            }
            Item::Call { id, arguments, .. } => {
                for piece in char_pieces(arguments, 24) {
                    ev.push(
                        "response.function_call_arguments.delta",
                        obj! { "item_id" => id, "output_index" => index, "delta" => piece },
                    );
                }
                ev.push(
                    "response.function_call_arguments.done",
                    obj! { "item_id" => id, "output_index" => index, "arguments" => arguments },
                );
            }
        }
        ev.push(
            "response.output_item.done",
            obj! { "output_index" => index, "item" => item.done() },
        );
    }
    let output = items.iter().map(Item::done).collect();
    ev.push(
        "response.completed",
        obj! { "response" => ctx.response("completed", output, Some(usage(&o.usage)), None) },
    );
    if let Some(n) = fail_after {
        ev.frames.truncate(n);
        let error = obj! {
            "code" => "server_error",
            "message" => "The server had an error while processing your request. Sorry about that!",
        };
        ev.push(
            "response.failed",
            obj! { "response" => ctx.response("failed", vec![], None, Some(error)) },
        );
    }
    ev.frames
}
