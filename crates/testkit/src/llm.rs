//! Mock LLM upstream speaking the Anthropic Messages, OpenAI Chat Completions and Responses wire formats.
//!
//! [`MockLlm`] binds `127.0.0.1:0` and serves, on one port:
//! - Anthropic: `POST /v1/messages` (JSON or SSE, `?beta=true` accepted),
//!   `POST /v1/messages/count_tokens`, `GET /v1/models[/{id}]` (Anthropic shape when the request
//!   has `anthropic-version`);
//! - OpenAI: `POST /v1/chat/completions` (JSON or SSE, `stream_options.include_usage`),
//!   `POST /v1/responses` (JSON or SSE), `POST /v1/embeddings`, `GET /v1/models[/{id}]`;
//!   the same without `/v1`, and Azure's `/openai/deployments/{d}/…?api-version=…`;
//! - the control API under `/_mock/` (see the `mock-llm` binary).
//!
//! What it answers is scripted with [`MockConfig`], [`Script`] and [`Reply`]; every request is
//! recorded as a [`RecordedRequest`].
//!
//! ```no_run
//! # async fn demo() {
//! use testkit::llm::{MockConfig, MockLlm, Reply, Usage};
//! let mock = MockLlm::start(
//!     MockConfig::default()
//!         .usage(Usage::new(100, 20, 0, 0, 0))
//!         .reply(Reply::tool_call("Bash", serde_json::json!({"command": "ls"})))
//!         .reply(Reply::rate_limited(2)),
//! )
//! .await;
//! let base = mock.base_url(); // http://127.0.0.1:PORT
//! # let _ = base;
//! # }
//! ```

mod anthropic;
pub mod cli;
mod control;
mod conversation;
mod openai;
mod record;
mod responses;
mod route;
mod script;
mod server;
mod wire;

pub use record::RecordedRequest;
pub use script::{ErrorReply, Gzip, MockConfig, Reply, Script, ToolCall, Usage};
pub use server::MockLlm;

#[cfg(test)]
mod tests;
