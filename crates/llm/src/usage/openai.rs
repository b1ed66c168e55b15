//! OpenAI chat completions, embeddings and Responses: usage from the final chat chunk, the
//! terminal Responses event, or a whole body.
//!
//! OpenAI counts cached input inside `prompt_tokens` / `input_tokens`; the normalized
//! `input_tokens` is that total minus the cached part, which becomes `cache_read_input_tokens`.
//! `reasoning_tokens` are reported as the informational part of `output_tokens`.

use std::borrow::Cow;
use std::fmt;

use domain::Usage;
use memchr::memmem;
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{has_non_null, leading_value, remember, value_after_key, TapOutcome};
use crate::sse::SseEvent;

#[derive(Debug, Default, Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

/// Chat and embeddings `usage`.
#[derive(Debug, Default, Deserialize)]
struct ChatUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    completion_tokens_details: Option<Details>,
}

impl From<ChatUsage> for Usage {
    fn from(wire: ChatUsage) -> Usage {
        normalize(
            wire.prompt_tokens,
            wire.prompt_tokens_details,
            wire.completion_tokens,
            wire.completion_tokens_details,
        )
    }
}

/// Responses `usage`.
#[derive(Debug, Default, Deserialize)]
struct ResponsesUsage {
    input_tokens: Option<u64>,
    input_tokens_details: Option<Details>,
    output_tokens: Option<u64>,
    output_tokens_details: Option<Details>,
}

impl From<ResponsesUsage> for Usage {
    fn from(wire: ResponsesUsage) -> Usage {
        normalize(
            wire.input_tokens,
            wire.input_tokens_details,
            wire.output_tokens,
            wire.output_tokens_details,
        )
    }
}

fn normalize(
    input: Option<u64>,
    input_details: Option<Details>,
    output: Option<u64>,
    output_details: Option<Details>,
) -> Usage {
    let cached = input_details.and_then(|d| d.cached_tokens).unwrap_or(0);
    let input = input.unwrap_or(0);
    Usage {
        // Never trust an upstream to keep the part below the whole.
        input_tokens: input.saturating_sub(cached),
        cache_read_input_tokens: cached.min(input),
        cache_creation_input_tokens: 0,
        output_tokens: output.unwrap_or(0),
        reasoning_tokens: output_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
    }
}

/// A chat completion, a chat chunk, or an embeddings response.
#[derive(Deserialize)]
struct ChatBody<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    choices: Option<Choices>,
    usage: Option<ChatUsage>,
}

/// What matters of `choices`: how many, and the first `finish_reason` set.
struct Choices {
    len: usize,
    finish_reason: Option<String>,
}

impl<'de> Deserialize<'de> for Choices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Choices;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Choices, A::Error> {
                let mut choices = Choices { len: 0, finish_reason: None };
                while let Some(choice) = seq.next_element::<Choice<'de>>()? {
                    choices.len += 1;
                    if choices.finish_reason.is_none() {
                        choices.finish_reason = choice.finish_reason.map(Cow::into_owned);
                    }
                }
                Ok(choices)
            }
        }
        d.deserialize_seq(Each)
    }
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

/// Reads one chat stream event; true if it is the usage-only chunk (`choices: []` with usage).
pub(super) fn on_chat_event(seen: &mut TapOutcome, event: SseEvent<'_>) -> bool {
    let data = event.data;
    if data.trim() == "[DONE]" {
        seen.complete = true;
        return false;
    }
    // Parse only chunks that can tell something new: the first (model), one with a usage
    // object, one with a finish reason. With `include_usage` every chunk has `"usage":null`.
    let wanted = seen.model.is_none()
        || has_non_null(data, r#""usage""#)
        || (seen.stop_reason.is_none() && has_non_null(data, r#""finish_reason""#));
    if !wanted {
        return false;
    }
    let Ok(chunk) = serde_json::from_str::<ChatBody<'_>>(data) else {
        return false;
    };
    remember(&mut seen.model, chunk.model);
    let mut usage_only = false;
    if let Some(choices) = chunk.choices {
        usage_only = choices.len == 0 && chunk.usage.is_some();
        if seen.stop_reason.is_none() {
            seen.stop_reason = choices.finish_reason;
        }
    }
    if let Some(usage) = chunk.usage {
        seen.usage = Some(usage.into());
    }
    usage_only
}

/// Reads a whole chat completion or embeddings body; true if it was a JSON object.
pub(super) fn on_chat_body(seen: &mut TapOutcome, body: &[u8]) -> bool {
    let Ok(body) = serde_json::from_slice::<ChatBody<'_>>(body) else {
        return false;
    };
    remember(&mut seen.model, body.model);
    if let Some(choices) = body.choices {
        remember(&mut seen.stop_reason, choices.finish_reason.map(Cow::Owned));
    }
    if let Some(usage) = body.usage {
        seen.usage = Some(usage.into());
    }
    true
}

pub(super) fn chat_usage_in_tail(tail: &[u8]) -> Option<Usage> {
    leading_value::<ChatUsage>(value_after_key(tail, br#""usage""#, true)?).map(Usage::from)
}

/// A Responses `response` object, as a whole body or inside an event.
#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    incomplete_details: Option<IncompleteDetails<'a>>,
    usage: Option<ResponsesUsage>,
}

#[derive(Deserialize)]
struct IncompleteDetails<'a> {
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ResponseEvent<'a> {
    #[serde(borrow)]
    response: Response<'a>,
}

impl Response<'_> {
    fn record(self, seen: &mut TapOutcome) {
        remember(&mut seen.model, self.model);
        let reason = self.incomplete_details.and_then(|d| d.reason).or(self.status);
        if let Some(reason) = reason.filter(|r| !r.is_empty()) {
            seen.stop_reason = Some(reason.into_owned());
        }
        if let Some(usage) = self.usage {
            seen.usage = Some(usage.into());
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `response.created` / `response.in_progress`: the model, before any output.
    Started,
    /// `response.completed` / `response.incomplete` / `response.failed`: usage, and the end.
    Terminal,
    Other,
}

const STARTED: [&str; 2] = ["response.created", "response.in_progress"];
const TERMINAL: [&str; 3] = ["response.completed", "response.incomplete", "response.failed"];

impl Kind {
    fn of(event: &SseEvent<'_>) -> Kind {
        if let Some(name) = event.event {
            return if TERMINAL.contains(&name) {
                Kind::Terminal
            } else if STARTED.contains(&name) {
                Kind::Started
            } else {
                Kind::Other
            };
        }
        // No `event:` line: look for the type in the data (quotes in strings are escaped).
        let data = event.data.as_bytes();
        let has_type = |name: &str| {
            memmem::find_iter(data, br#""type":""#).any(|at| {
                let value = data.get(at + 8..).unwrap_or_default();
                value.strip_prefix(name.as_bytes()).is_some_and(|rest| rest.starts_with(b"\""))
            })
        };
        if TERMINAL.iter().any(|name| has_type(name)) {
            Kind::Terminal
        } else if STARTED.iter().any(|name| has_type(name)) {
            Kind::Started
        } else {
            Kind::Other
        }
    }
}

pub(super) fn on_responses_event(seen: &mut TapOutcome, event: SseEvent<'_>) {
    match Kind::of(&event) {
        Kind::Started if seen.model.is_none() => {
            if let Ok(started) = serde_json::from_str::<ResponseEvent<'_>>(event.data) {
                remember(&mut seen.model, started.response.model);
            }
        }
        Kind::Terminal => {
            if let Ok(done) = serde_json::from_str::<ResponseEvent<'_>>(event.data) {
                done.response.record(seen);
                seen.complete = true;
            }
        }
        Kind::Started | Kind::Other => {}
    }
}

/// Reads a whole Responses body; true if it was a JSON object.
pub(super) fn on_responses_body(seen: &mut TapOutcome, body: &[u8]) -> bool {
    match serde_json::from_slice::<Response<'_>>(body) {
        Ok(response) => {
            response.record(seen);
            true
        }
        Err(_) => false,
    }
}

pub(super) fn responses_usage_in_tail(tail: &[u8]) -> Option<Usage> {
    leading_value::<ResponsesUsage>(value_after_key(tail, br#""usage""#, true)?).map(Usage::from)
}
