//! Request facts: the few fields of a client's request body the gateway needs (model, stream,
//! token cap, usage option, size), read without building a JSON tree of the body, and the
//! byte-level splices the gateway makes to a body: `stream_options.include_usage` for OpenAI
//! chat streams, and the `user` field for upstream gateways that attribute by it.
//!
//! The body is forwarded byte for byte, so nothing here re-serializes it. Unknown fields are
//! skipped by serde without allocation. A field that appears twice is an error: the gateway and
//! the upstream could otherwise disagree on which copy counts (for example on `model`).

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// What the gateway needs to know about a request before forwarding it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestFacts {
    /// `model`, if present and not null.
    pub model: Option<String>,
    /// `stream == true`.
    pub stream: bool,
    /// The output token cap: the largest of `max_tokens`, `max_completion_tokens` (chat) and
    /// `max_output_tokens` (Responses) that is present.
    pub max_tokens: Option<u64>,
    /// `stream_options.include_usage == true`.
    pub include_usage: bool,
    /// Size of the body in bytes.
    pub input_bytes: usize,
}

/// Why a request body could not be read. The message is fit to show to the client.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    // The serde error's text is part of the message (for the client), so it is not also
    // returned as the `source`: a chain would print it twice.
    /// The body is not well-formed JSON.
    #[error("request body is not valid JSON: {0}")]
    Syntax(serde_json::Error),
    /// The body is well-formed but repeats a field the gateway reads.
    #[error("request body is ambiguous: {0}")]
    Duplicate(serde_json::Error),
    /// The body is JSON, but not an object.
    #[error("request body must be a JSON object")]
    NotObject,
    /// A field the gateway reads has the wrong type.
    #[error("request field `{field}` must be {expected}")]
    FieldType { field: &'static str, expected: &'static str },
}

impl FactsError {
    fn from_serde(err: serde_json::Error) -> Self {
        match err.classify() {
            // The only data error left once the raw fields parse is a repeated field.
            serde_json::error::Category::Data => FactsError::Duplicate(err),
            _ => FactsError::Syntax(err),
        }
    }
}

/// Reads the request facts from a JSON request body.
pub fn request_facts(body: &[u8]) -> Result<RequestFacts, FactsError> {
    let raw = RawRequest::parse(body)?;
    let model = field::<String>(raw.model, "model", "a string")?;
    let stream = field::<bool>(raw.stream, "stream", "a boolean")?;
    let mut max_tokens = None;
    for (value, name) in [
        (raw.max_tokens, "max_tokens"),
        (raw.max_completion_tokens, "max_completion_tokens"),
        (raw.max_output_tokens, "max_output_tokens"),
    ] {
        let cap = field::<u64>(value, name, "a non-negative integer")?;
        max_tokens = max_tokens.max(cap);
    }
    let include_usage = match raw.stream_options.filter(|v| !is_null(v)) {
        None => None,
        Some(options) => field::<bool>(
            StreamOptions::parse(options)?.include_usage,
            "stream_options.include_usage",
            "a boolean",
        )?,
    };
    Ok(RequestFacts {
        model,
        stream: stream.unwrap_or(false),
        max_tokens,
        include_usage: include_usage.unwrap_or(false),
        input_bytes: body.len(),
    })
}

/// Returns `body` with `stream_options.include_usage` set to `true`, every other byte unchanged.
///
/// Without `stream_options`, `"stream_options":{"include_usage":true}` is inserted as the first
/// member; a `null` one is replaced by that object; an existing object gets the member added, or
/// its `include_usage` value replaced. A body that already asks for usage comes back as it is.
pub fn inject_include_usage(body: &[u8]) -> Result<Vec<u8>, FactsError> {
    const MEMBER: &[u8] = br#""stream_options":{"include_usage":true}"#;
    let raw = RawRequest::parse(body)?;
    let Some(options) = raw.stream_options else {
        return Ok(insert_member(body, 0, MEMBER));
    };
    let options_at = offset_in(body, options)?;
    if is_null(options) {
        return Ok(splice(body, options_at, 4, br#"{"include_usage":true}"#));
    }
    match StreamOptions::parse(options)?.include_usage {
        Some(value) if value.get() == "true" => Ok(body.to_vec()),
        Some(value) => {
            // Anything else is replaced, `false` and `null` alike; a wrong type is the client's
            // error to see, from request_facts, not something to forward.
            field::<bool>(Some(value), "stream_options.include_usage", "a boolean")?;
            Ok(splice(body, offset_in(body, value)?, value.get().len(), b"true"))
        }
        None => Ok(insert_member(body, options_at, br#""include_usage":true"#)),
    }
}

/// Returns `body` with the top-level `user` field set to `user`, every other byte unchanged:
/// an existing value (whatever its type) is replaced, else the member is inserted first.
/// OpenAI-compatible gateways such as OpenRouter attribute usage by this field.
pub fn set_user_field(body: &[u8], user: &str) -> Result<Vec<u8>, FactsError> {
    let raw = RawRequest::parse(body)?;
    let value = serde_json::to_string(user).map_err(FactsError::Syntax)?;
    match raw.user {
        Some(existing) => {
            Ok(splice(body, offset_in(body, existing)?, existing.get().len(), value.as_bytes()))
        }
        None => Ok(insert_member(body, 0, format!(r#""user":{value}"#).as_bytes())),
    }
}

/// The top-level fields the gateway reads, as raw JSON borrowed from the body.
#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    model: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    stream: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    max_output_tokens: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    stream_options: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    user: Option<&'a RawValue>,
}

impl<'a> RawRequest<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, FactsError> {
        if first_significant(body) != Some(b'{') {
            // Tell "valid JSON, wrong shape" apart from "not JSON".
            return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => Err(FactsError::NotObject),
                Err(err) => Err(FactsError::Syntax(err)),
            };
        }
        serde_json::from_slice(body).map_err(FactsError::from_serde)
    }
}

#[derive(Deserialize)]
struct StreamOptions<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    include_usage: Option<&'a RawValue>,
}

impl<'a> StreamOptions<'a> {
    fn parse(raw: &'a RawValue) -> Result<Self, FactsError> {
        let wrong_type =
            || FactsError::FieldType { field: "stream_options", expected: "an object" };
        if !raw.get().starts_with('{') {
            return Err(wrong_type());
        }
        // The raw value is already known to be well-formed, so only a repeated field fails here.
        serde_json::from_str(raw.get()).map_err(FactsError::from_serde)
    }
}

/// Keeps a present field as raw JSON, `null` included (plain `Option` would turn `null` into
/// `None` and lose its position).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// Reads a raw field as `T`; absent and `null` are `None`.
fn field<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<T>, FactsError> {
    match raw.filter(|v| !is_null(v)) {
        None => Ok(None),
        Some(raw) => serde_json::from_str(raw.get())
            .map(Some)
            .map_err(|_| FactsError::FieldType { field: name, expected }),
    }
}

fn first_significant(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Where a raw value borrowed from `body` starts in it.
fn offset_in(body: &[u8], raw: &RawValue) -> Result<usize, FactsError> {
    let text = raw.get().as_bytes();
    (text.as_ptr() as usize)
        .checked_sub(body.as_ptr() as usize)
        .filter(|&at| body.get(at..at + text.len()) == Some(text))
        .ok_or_else(|| {
            // serde_json borrows raw values from the input slice, so this does not happen.
            FactsError::Syntax(serde::de::Error::custom("cannot locate a field in the body"))
        })
}

/// Inserts `member` as the first member of the object whose `{` is the first significant byte
/// at or after `from`.
fn insert_member(body: &[u8], from: usize, member: &[u8]) -> Vec<u8> {
    let tail = body.get(from..).unwrap_or_default();
    let open = from + tail.iter().position(|&b| b == b'{').unwrap_or(0) + 1;
    let empty = first_significant(body.get(open..).unwrap_or_default()) == Some(b'}');
    let mut out = Vec::with_capacity(body.len() + member.len() + 1);
    out.extend_from_slice(body.get(..open).unwrap_or_default());
    out.extend_from_slice(member);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(body.get(open..).unwrap_or_default());
    out
}

/// `body` with `len` bytes at `at` replaced by `with`.
fn splice(body: &[u8], at: usize, len: usize, with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + with.len());
    out.extend_from_slice(body.get(..at).unwrap_or_default());
    out.extend_from_slice(with);
    out.extend_from_slice(body.get(at + len..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests;
