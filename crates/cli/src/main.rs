//! the agentnet binary
fn main() {}
