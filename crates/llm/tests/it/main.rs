//! Integration tests for `llm`: golden fixtures of real provider wire formats, checked against
//! insta snapshots, and chunking invariance of the taps and the chat usage filter.

mod chunking;
mod fixtures;
mod golden;
