//! Behaviour scripting: what the mock answers. A [`MockConfig`] holds defaults and a [`Script`],
//! a queue of [`Reply`]s consumed one per generation request (messages, chat completions,
//! responses, embeddings); when the queue is empty the default reply answers.
//!
//! Every type here is also JSON (the `mock-llm` control API accepts the same shapes), e.g.
//! `{"tool_call":{"name":"Bash","input":{"command":"echo tool-ok"}}}`,
//! `{"shell":"echo tool-ok"}`, `{"text":"hi","usage":{"input":3,"output":2}}`,
//! `{"error":{"status":429,"retry_after":1}}`, `{"cut_after_events":3}`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Token counts reported in every response. The numbers are written verbatim into each
/// provider's fields, so tests can assert exact metering:
///
/// | field | Anthropic | OpenAI chat | OpenAI responses |
/// | --- | --- | --- | --- |
/// | `input` | `input_tokens` | `prompt_tokens` | `input_tokens` |
/// | `output` | `output_tokens` | `completion_tokens` | `output_tokens` |
/// | `cache_read` | `cache_read_input_tokens` | `prompt_tokens_details.cached_tokens` | `input_tokens_details.cached_tokens` |
/// | `cache_write` | `cache_creation_input_tokens` | `prompt_tokens_details.cache_write_tokens` (when > 0) | `input_tokens_details.cache_write_tokens` |
/// | `reasoning` | `output_tokens_details.thinking_tokens` (when > 0) | `completion_tokens_details.reasoning_tokens` | `output_tokens_details.reasoning_tokens` |
///
/// OpenAI totals are `input + output` (OpenAI counts cached tokens inside `input`, Anthropic
/// does not: pick numbers that fit the provider under test).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

impl Default for Usage {
    fn default() -> Self {
        Usage { input: 10, output: 5, cache_read: 0, cache_write: 0, reasoning: 0 }
    }
}

impl Usage {
    /// `Usage { input, output, cache_read, cache_write, reasoning }`.
    pub fn new(input: u64, output: u64, cache_read: u64, cache_write: u64, reasoning: u64) -> Self {
        Usage { input, output, cache_read, cache_write, reasoning }
    }
}

/// A tool call the model makes: a tool name and its JSON input (Anthropic `tool_use.input`,
/// OpenAI function `arguments` serialized to a string).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    pub name: String,
    #[serde(default = "empty_object")]
    pub input: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Response compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gzip {
    /// Never compress.
    #[default]
    Off,
    /// Compress when the request's `Accept-Encoding` allows gzip.
    Auto,
    /// Compress even when the client did not ask (a misbehaving upstream).
    Force,
}

/// An HTTP error answer, with the provider's own error body (Anthropic
/// `{"type":"error","error":{"type","message"},"request_id"}`, OpenAI
/// `{"error":{"message","type","param","code"}}`) unless `body` overrides it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorReply {
    pub status: u16,
    /// `retry-after` header, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The error message (a provider-like default otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The error `type` (Anthropic `rate_limit_error`…, OpenAI `requests`…); derived from the
    /// status when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// A complete body that replaces the provider-shaped one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// One scripted answer. A reply with neither `text`, `tool_call` nor `shell` answers with the
/// configured default text.
///
/// Tool-result logic (unless `verbatim`): when the request's last turn carries tool results
/// (Anthropic `tool_result` blocks, OpenAI `role: "tool"` messages, Responses
/// `function_call_output` items), the reply drops its tool call and answers with text that echoes
/// the tool output: `"<text>\n\nTool result: <output>"`. So a two-step agent loop needs only the
/// first (tool-call) reply scripted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reply {
    /// Text content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A tool call, emitted after the text if both are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call: Option<ToolCall>,
    /// A shell command run through whichever shell tool the request offers: Claude Code's `Bash`
    /// (`{"command","description"}`), Codex's `shell` (`{"command":["bash","-lc",cmd]}`),
    /// `shell_command` (`{"command"}`) or `exec_command` (`{"cmd"}`). Plain text when the request
    /// offers no tools. Ignored when `tool_call` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Thinking text (Anthropic `thinking` block with a signature; Responses `reasoning` item).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Answer exactly as scripted, even when the request carries tool results.
    #[serde(skip_serializing_if = "is_false")]
    pub verbatim: bool,
    /// Token counts for this reply (the config's otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Answer with an HTTP error instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReply>,
    /// Abort the response body after this many SSE events (non-streaming: after half the body),
    /// so the client sees a truncated stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_after_events: Option<usize>,
    /// Replace the stream's rest with the provider's in-stream error event after this many
    /// events (Anthropic `event: error` overloaded, OpenAI `error`), then end the body cleanly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_event_after: Option<usize>,
    /// Delay between SSE events, in milliseconds (the config's otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drip_ms: Option<u64>,
    /// Delay before the response head, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Compression (the config's otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip: Option<Gzip>,
    /// Overrides the stop reason (Anthropic `stop_reason`, e.g. `max_tokens`; OpenAI chat
    /// `finish_reason`, e.g. `length`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Reply {
    /// A text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Reply { text: Some(text.into()), ..Reply::default() }
    }

    /// A tool-call reply.
    pub fn tool_call(name: impl Into<String>, input: Value) -> Self {
        Reply { tool_call: Some(ToolCall { name: name.into(), input }), ..Reply::default() }
    }

    /// A reply that runs `command` through the shell tool the request offers (see [`Reply::shell`]).
    pub fn shell(command: impl Into<String>) -> Self {
        Reply { shell: Some(command.into()), ..Reply::default() }
    }

    /// An HTTP error with the provider's error body.
    pub fn error(status: u16) -> Self {
        Reply {
            error: Some(ErrorReply {
                status,
                retry_after: None,
                message: None,
                error_type: None,
                body: None,
            }),
            ..Reply::default()
        }
    }

    /// 429 with `retry-after: secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Reply::error(429).retry_after(retry_after_secs)
    }

    /// 500 internal server error.
    pub fn server_error() -> Self {
        Reply::error(500)
    }

    /// 529 overloaded (Anthropic's; OpenAI paths get the same status with an OpenAI body).
    pub fn overloaded() -> Self {
        Reply::error(529)
    }

    /// Sets or replaces the text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Sets or replaces the tool call.
    pub fn with_tool_call(mut self, name: impl Into<String>, input: Value) -> Self {
        self.tool_call = Some(ToolCall { name: name.into(), input });
        self
    }

    /// Adds thinking.
    pub fn thinking(mut self, thinking: impl Into<String>) -> Self {
        self.thinking = Some(thinking.into());
        self
    }

    /// Answers exactly as scripted, even after tool results.
    pub fn verbatim(mut self) -> Self {
        self.verbatim = true;
        self
    }

    /// Token counts for this reply.
    pub fn usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Sets `retry-after` on an error reply (makes it a 429 if it was not an error).
    pub fn retry_after(mut self, secs: u64) -> Self {
        let err = self.error.get_or_insert(ErrorReply {
            status: 429,
            retry_after: None,
            message: None,
            error_type: None,
            body: None,
        });
        err.retry_after = Some(secs);
        self
    }

    /// Sets the error message of an error reply.
    pub fn error_message(mut self, message: impl Into<String>) -> Self {
        if let Some(err) = self.error.as_mut() {
            err.message = Some(message.into());
        }
        self
    }

    /// Replaces the provider-shaped error body of an error reply.
    pub fn error_body(mut self, body: Value) -> Self {
        if let Some(err) = self.error.as_mut() {
            err.body = Some(body);
        }
        self
    }

    /// Aborts the body after `n` SSE events.
    pub fn cut_after(mut self, n: usize) -> Self {
        self.cut_after_events = Some(n);
        self
    }

    /// Ends the stream with the provider's error event after `n` events.
    pub fn error_event_after(mut self, n: usize) -> Self {
        self.error_event_after = Some(n);
        self
    }

    /// Delay between SSE events.
    pub fn drip(mut self, delay: Duration) -> Self {
        self.drip_ms = Some(delay.as_millis() as u64);
        self
    }

    /// Delay before the response head.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_ms = Some(delay.as_millis() as u64);
        self
    }

    /// Compression for this reply.
    pub fn gzip(mut self, gzip: Gzip) -> Self {
        self.gzip = Some(gzip);
        self
    }

    /// Overrides the stop/finish reason.
    pub fn stop_reason(mut self, reason: impl Into<String>) -> Self {
        self.stop_reason = Some(reason.into());
        self
    }
}

/// A queue of replies, consumed one per generation request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Script {
    pub replies: Vec<Reply>,
}

impl Script {
    /// An empty script.
    pub fn new() -> Self {
        Script::default()
    }

    /// Appends a reply.
    pub fn then(mut self, reply: Reply) -> Self {
        self.replies.push(reply);
        self
    }

    /// The two-step agent flow of the end-to-end tests: a shell tool call running `command`
    /// (adapted to the tool the client offers), then text echoing the tool output.
    pub fn agent_shell(command: impl Into<String>) -> Self {
        Script::new().then(Reply::shell(command))
    }
}

impl From<Vec<Reply>> for Script {
    fn from(replies: Vec<Reply>) -> Self {
        Script { replies }
    }
}

/// The mock's configuration. `MockConfig::default()` answers every request with
/// "Hello from mock" and [`Usage::default`].
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Replies consumed first, one per generation request.
    pub script: Script,
    /// The reply when the script is exhausted.
    pub default_reply: Reply,
    /// Text of replies that set none.
    pub text: String,
    /// Token counts of replies that set none.
    pub usage: Usage,
    /// Compression of replies that set none.
    pub gzip: Gzip,
    /// Delay between SSE events of replies that set none.
    pub drip: Duration,
    /// Models listed by `GET /v1/models`.
    pub models: Vec<String>,
    /// Recorded requests kept (the oldest are dropped beyond it), so long benchmarks against
    /// the mock do not grow its memory without bound.
    pub max_recorded: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            script: Script::default(),
            default_reply: Reply::default(),
            text: "Hello from mock".to_owned(),
            usage: Usage::default(),
            gzip: Gzip::Off,
            drip: Duration::ZERO,
            models: [
                "claude-sonnet-4-5-20250929",
                "claude-opus-4-1-20250805",
                "claude-haiku-4-5-20251001",
                "gpt-5.5",
                "gpt-5",
                "gpt-4o",
                "gpt-4o-mini",
                "text-embedding-3-small",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            max_recorded: 10_000,
        }
    }
}

impl MockConfig {
    /// Appends a scripted reply.
    pub fn reply(mut self, reply: Reply) -> Self {
        self.script.replies.push(reply);
        self
    }

    /// Appends a script's replies.
    pub fn script(mut self, script: impl Into<Script>) -> Self {
        self.script.replies.extend(script.into().replies);
        self
    }

    /// The reply when the script is exhausted.
    pub fn default_reply(mut self, reply: Reply) -> Self {
        self.default_reply = reply;
        self
    }

    /// Default text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// Default token counts.
    pub fn usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Default compression.
    pub fn gzip(mut self, gzip: Gzip) -> Self {
        self.gzip = gzip;
        self
    }

    /// Default delay between SSE events.
    pub fn drip(mut self, delay: Duration) -> Self {
        self.drip = delay;
        self
    }

    /// How many recorded requests are kept (the latest ones).
    pub fn max_recorded(mut self, n: usize) -> Self {
        self.max_recorded = n;
        self
    }

    /// Models listed by `GET /v1/models`.
    pub fn models<I, S>(mut self, models: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }
}
