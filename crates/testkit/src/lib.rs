//! Test doubles for agentnet: a mock LLM upstream that speaks the exact Anthropic and OpenAI wire
//! formats (streaming included) and a mock OIDC identity provider that mints JWTs.
//!
//! Dev-dependency only. The mock upstream also ships as the `mock-llm` binary for end-to-end tests.

pub mod idp;
pub mod llm;
