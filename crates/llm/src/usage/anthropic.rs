//! Anthropic Messages: usage from `message_start` and `message_delta` events, or from the
//! `usage` of a whole message.
//!
//! `message_start` carries the input side (and an early `output_tokens`); `message_delta` the
//! cumulative `output_tokens` and, in newer API versions, the input and cache counts again. The
//! latest non-null value of each field wins. Anthropic's `input_tokens` already excludes cache
//! reads and writes, so it is taken as reported.

use std::borrow::Cow;

use domain::Usage;
use memchr::memmem;
use serde::Deserialize;

use super::{leading_value, remember, value_after_key, TapOutcome};
use crate::sse::SseEvent;

#[derive(Debug, Default, Deserialize)]
pub(super) struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Overwrites the fields this report has.
    fn merge_into(self, slot: &mut Option<Usage>) {
        let usage = slot.get_or_insert_with(Usage::default);
        let fields = [
            (self.input_tokens, &mut usage.input_tokens),
            (self.output_tokens, &mut usage.output_tokens),
            (self.cache_creation_input_tokens, &mut usage.cache_creation_input_tokens),
            (self.cache_read_input_tokens, &mut usage.cache_read_input_tokens),
        ];
        for (reported, field) in fields {
            if let Some(value) = reported {
                *field = value;
            }
        }
    }
}

/// A whole message, or the `message` of `message_start`.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stop_reason: Option<Cow<'a, str>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow)]
    message: Message<'a>,
}

#[derive(Deserialize)]
struct MessageDelta<'a> {
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Start,
    Delta,
    Stop,
    Other,
}

impl Kind {
    fn of(event: &SseEvent<'_>) -> Kind {
        match event.event {
            Some("message_start") => Kind::Start,
            Some("message_delta") => Kind::Delta,
            Some("message_stop") => Kind::Stop,
            Some(_) => Kind::Other,
            // No `event:` line: look for the type in the data. Inside a JSON string a quote is
            // escaped, so streamed text cannot fake these.
            None => {
                let data = event.data.as_bytes();
                if memmem::find(data, br#""type":"message_start""#).is_some() {
                    Kind::Start
                } else if memmem::find(data, br#""type":"message_delta""#).is_some() {
                    Kind::Delta
                } else if memmem::find(data, br#""type":"message_stop""#).is_some() {
                    Kind::Stop
                } else {
                    Kind::Other
                }
            }
        }
    }
}

pub(super) fn on_event(seen: &mut TapOutcome, event: SseEvent<'_>) {
    match Kind::of(&event) {
        Kind::Start => {
            if let Ok(start) = serde_json::from_str::<MessageStart<'_>>(event.data) {
                remember(&mut seen.model, start.message.model);
                if let Some(usage) = start.message.usage {
                    usage.merge_into(&mut seen.usage);
                }
            }
        }
        Kind::Delta => {
            if let Ok(delta) = serde_json::from_str::<MessageDelta<'_>>(event.data) {
                if let Some(reason) = delta.delta.and_then(|d| d.stop_reason) {
                    seen.stop_reason = Some(reason.into_owned());
                }
                if let Some(usage) = delta.usage {
                    usage.merge_into(&mut seen.usage);
                }
            }
        }
        Kind::Stop => seen.complete = true,
        Kind::Other => {}
    }
}

/// Reads a whole (non-streamed) body; true if it was a JSON object.
pub(super) fn on_body(seen: &mut TapOutcome, body: &[u8]) -> bool {
    let Ok(message) = serde_json::from_slice::<Message<'_>>(body) else {
        return false;
    };
    remember(&mut seen.model, message.model);
    remember(&mut seen.stop_reason, message.stop_reason);
    if let Some(usage) = message.usage {
        usage.merge_into(&mut seen.usage);
    }
    true
}

/// Usage from the end of a body too large to keep whole.
pub(super) fn usage_in_tail(tail: &[u8]) -> Option<Usage> {
    let wire: WireUsage = leading_value(value_after_key(tail, br#""usage""#, true)?)?;
    let mut usage = None;
    wire.merge_into(&mut usage);
    usage
}
