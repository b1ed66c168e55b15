//! Usage taps: watch a response body go by, chunk by chunk, and report the token usage, model
//! and stop reason the upstream stated, without holding up or changing the stream.
//!
//! A streamed body is decoded as SSE and only the events that carry usage are parsed (picked by
//! `event:` name or a cheap substring test before serde). A JSON body is buffered up to
//! [`MAX_JSON_BODY`] and parsed at the end; past that, usage is read from the body's tail.
//! Unknown fields are ignored everywhere; a malformed event is skipped, never an error.
//!
//! [`ChatUsageFilter`] also removes the usage-only chunk from an OpenAI chat stream whose
//! `include_usage` the gateway turned on, for a client that did not ask for it.

use domain::{Endpoint, Usage};
use memchr::memmem;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::sse::{SseDecoder, SseEvent};

mod anthropic;
mod filter;
mod openai;

pub use filter::ChatUsageFilter;

/// The largest non-streamed body kept whole for parsing.
pub const MAX_JSON_BODY: usize = 32 * 1024 * 1024;

/// How much of an oversized JSON body's end is kept to find `usage` in.
const JSON_TAIL: usize = 64 * 1024;

/// What a tap saw, at the end of the response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TapOutcome {
    /// The usage the upstream reported, `None` if it never did.
    pub usage: Option<Usage>,
    /// The model the upstream says answered.
    pub model: Option<String>,
    /// Why generation stopped: Anthropic `stop_reason`, OpenAI chat `finish_reason`, or for
    /// Responses `incomplete_details.reason`, else the response `status`.
    pub stop_reason: Option<String>,
    /// The body ended properly: Anthropic `message_stop`, chat `data: [DONE]`, a terminal
    /// Responses event (`response.completed`, `.incomplete` or `.failed`), or a whole JSON body.
    pub complete: bool,
}

/// Extracts usage from a response body fed to it incrementally.
#[derive(Debug)]
pub struct UsageTap {
    endpoint: Endpoint,
    streaming: bool,
    body: Body,
    seen: TapOutcome,
}

#[derive(Debug)]
enum Body {
    /// No significant byte yet.
    Start,
    Sse(SseDecoder),
    Json(JsonBody),
}

impl UsageTap {
    /// A tap for a response of `endpoint`; `streaming` is whether the request asked for a stream.
    /// A streamed response that turns out to be JSON (an upstream error) is read as JSON.
    pub fn new(endpoint: Endpoint, streaming: bool) -> Self {
        Self { endpoint, streaming, body: Body::Start, seen: TapOutcome::default() }
    }

    /// Feeds the next chunk of the response body.
    pub fn feed(&mut self, chunk: &[u8]) {
        let Self { endpoint, streaming, body, seen } = self;
        let mut chunk = chunk;
        if let Body::Start = body {
            let Some(at) = chunk.iter().position(|b| !b.is_ascii_whitespace()) else {
                return;
            };
            chunk = chunk.get(at..).unwrap_or_default();
            let json = !*streaming || chunk.first() == Some(&b'{');
            *body = if json {
                Body::Json(JsonBody::default())
            } else {
                Body::Sse(SseDecoder::default())
            };
        }
        match body {
            Body::Start => {}
            Body::Sse(decoder) => decoder.push(chunk, |event| {
                on_event(*endpoint, seen, event);
            }),
            Body::Json(json) => json.push(chunk),
        }
    }

    /// Whether a stream's terminal event (`message_stop`, `[DONE]`, a terminal Responses event)
    /// has gone by: everything after it is only the end of the HTTP body.
    pub fn saw_end(&self) -> bool {
        matches!(self.body, Body::Sse(_)) && self.seen.complete
    }

    /// Ends the body and reports what was seen.
    pub fn finish(self) -> TapOutcome {
        let Self { endpoint, body, mut seen, .. } = self;
        match body {
            Body::Start => {}
            Body::Sse(mut decoder) => decoder.finish(|event| {
                on_event(endpoint, &mut seen, event);
            }),
            Body::Json(json) => json.finish(endpoint, &mut seen),
        }
        seen
    }

    /// Handles one event of a stream decoded elsewhere; true if it was a chat chunk with usage
    /// and no choices (the one [`ChatUsageFilter`] removes).
    fn on_event(&mut self, event: SseEvent<'_>) -> bool {
        on_event(self.endpoint, &mut self.seen, event)
    }
}

fn on_event(endpoint: Endpoint, seen: &mut TapOutcome, event: SseEvent<'_>) -> bool {
    match endpoint {
        Endpoint::Messages => anthropic::on_event(seen, event),
        Endpoint::ChatCompletions => return openai::on_chat_event(seen, event),
        Endpoint::Responses => openai::on_responses_event(seen, event),
        Endpoint::CountTokens | Endpoint::Embeddings | Endpoint::Models(_) => {}
    }
    false
}

/// A non-streamed body, kept whole up to [`MAX_JSON_BODY`]; past that, its start (for the
/// model) and a window of its end (for usage).
#[derive(Debug, Default)]
struct JsonBody {
    buf: Vec<u8>,
    overflowed: bool,
    head_model: Option<String>,
}

impl JsonBody {
    fn push(&mut self, chunk: &[u8]) {
        if !self.overflowed && self.buf.len() + chunk.len() <= MAX_JSON_BODY {
            self.buf.extend_from_slice(chunk);
            return;
        }
        if !self.overflowed {
            self.overflowed = true;
            self.head_model = string_after_key(&self.buf, b"\"model\"", false);
        }
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > 2 * JSON_TAIL {
            let cut = self.buf.len() - JSON_TAIL;
            self.buf.drain(..cut);
        }
    }

    fn finish(self, endpoint: Endpoint, seen: &mut TapOutcome) {
        if !self.overflowed {
            seen.complete = match endpoint {
                Endpoint::Messages => anthropic::on_body(seen, &self.buf),
                Endpoint::ChatCompletions | Endpoint::Embeddings => {
                    openai::on_chat_body(seen, &self.buf)
                }
                Endpoint::Responses => openai::on_responses_body(seen, &self.buf),
                Endpoint::CountTokens | Endpoint::Models(_) => {
                    serde_json::from_slice::<IgnoredAny>(&self.buf).is_ok()
                }
            };
            return;
        }
        // Too large to keep: usage is near the end in every API's layout, the model near the
        // start (chat, Anthropic, Responses) or the end (embeddings).
        seen.model = self.head_model.or_else(|| string_after_key(&self.buf, b"\"model\"", true));
        seen.usage = match endpoint {
            Endpoint::Messages => anthropic::usage_in_tail(&self.buf),
            Endpoint::ChatCompletions | Endpoint::Embeddings => {
                openai::chat_usage_in_tail(&self.buf)
            }
            Endpoint::Responses => openai::responses_usage_in_tail(&self.buf),
            Endpoint::CountTokens | Endpoint::Models(_) => None,
        };
        let ends_closed = self.buf.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
        seen.complete = seen.usage.is_some() && ends_closed;
    }
}

/// The bytes right after `key` (a quoted JSON key) and its colon, at its first or last
/// occurrence. Only a real key matches: inside a JSON string every quote is escaped.
fn value_after_key<'a>(hay: &'a [u8], key: &[u8], last: bool) -> Option<&'a [u8]> {
    let at = if last { memmem::rfind(hay, key)? } else { memmem::find(hay, key)? };
    let rest = hay.get(at + key.len()..)?;
    let rest = trim_start(rest).strip_prefix(b":")?;
    Some(trim_start(rest))
}

/// Whether `hay` has `key` with a value other than `null` (any occurrence).
fn has_non_null(hay: &str, key: &str) -> bool {
    memmem::find_iter(hay.as_bytes(), key.as_bytes()).any(|at| {
        let rest = hay.as_bytes().get(at + key.len()..).unwrap_or_default();
        matches!(trim_start(rest).strip_prefix(b":"), Some(v) if !trim_start(v).starts_with(b"null"))
    })
}

/// Parses the one JSON value at the start of `bytes`, ignoring what follows.
fn leading_value<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    T::deserialize(&mut de).ok()
}

fn string_after_key(hay: &[u8], key: &[u8], last: bool) -> Option<String> {
    leading_value(value_after_key(hay, key, last)?)
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let at = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    bytes.get(at..).unwrap_or_default()
}

/// Sets `slot` from a reported value unless it is already known.
fn remember(slot: &mut Option<String>, value: Option<std::borrow::Cow<'_, str>>) {
    if slot.is_none() {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            *slot = Some(value.into_owned());
        }
    }
}

#[cfg(test)]
mod tests;
