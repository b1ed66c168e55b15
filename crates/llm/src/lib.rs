//! Provider wire formats: request facts, SSE decoding, usage extraction, error and models
//! bodies for the Anthropic and OpenAI APIs.
//!
//! **Architecture invariant:** this crate turns bytes into values and values into bytes. It
//! never opens sockets, spawns tasks or reads the clock, and it never panics on input.
//!
//! - [`facts`]: the few fields of a request body the gateway needs, and the `include_usage`
//!   splice, without re-serializing the body.
//! - [`sse`]: an incremental SSE decoder that taps a forwarded stream and reports event frames.
//! - [`usage`]: usage taps for every metered endpoint, and the chat usage-chunk filter.
//! - [`errors`]: error bodies in each API's shape.
//! - [`models`]: `/v1/models` bodies, served and parsed.

pub mod errors;
pub mod facts;
pub mod models;
pub mod sse;
pub mod usage;

pub use errors::{error_body, error_type};
pub use facts::{inject_include_usage, request_facts, set_user_field, FactsError, RequestFacts};
pub use models::{models_list, parse_models_list, ModelEntry};
pub use sse::{Frame, SseDecoder, SseEvent};
pub use usage::{ChatUsageFilter, TapOutcome, UsageTap};
