//! agentnet's data-plane benchmark: a fast upstream (`bench-upstream`) and a runner
//! (`agentnet-bench`, started by `cargo xtask bench`) that measures, side by side in one run,
//! the request latency each proxy adds, its throughput under a p99 bound, and its memory per open
//! stream, against the upstream called directly, nginx and the LiteLLM proxy. BENCHMARKS.md has
//! the figures and how to read them.

pub mod latency;
pub mod load;
pub mod probe;
pub mod procs;
pub mod report;
pub mod stats;
pub mod streams;
pub mod targets;
pub mod upstream;
