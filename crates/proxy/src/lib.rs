//! The AI data plane: ingress → identity → route → policy → upstream → stream + meter → settle.
//!
//! Architecture invariants:
//! - configuration is read from an atomically swapped [`Snapshot`]; nothing here queries the
//!   store per request;
//! - the forwarding path never awaits the database: usage records leave through a bounded
//!   channel ([`UsageSink`]) to a writer task that batches inserts;
//! - the request body is forwarded byte-for-byte (two documented exceptions: OpenAI chat
//!   streams get `stream_options.include_usage`, and the opt-in OpenRouter preset sets `user`);
//! - client credentials and client-sent identity headers never reach an upstream.

mod budget;
mod directory;
mod error;
mod gateway;
mod ingress;
mod meter;
mod models;
mod sink;
mod snapshot;
mod stamp;
mod upstream;

pub use budget::DEFAULT_OUTPUT_ESTIMATE;
pub use directory::{Directory, DirectoryUser};
pub use error::{ErrorSource, ProxyError};
pub use gateway::{
    finish_in_flight, run_ai_listener, serve_connection, Caller, Gateway, GatewaySettings,
};
pub use sink::{run_usage_writer, UsageSink, UsageSinkStats};
pub use snapshot::{Snapshot, SnapshotProvider};
pub use stamp::AssertionSigner;

/// The response body type of the data plane.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
