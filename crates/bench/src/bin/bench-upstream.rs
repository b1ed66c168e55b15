//! `bench-upstream`: the benchmark's OpenAI-compatible upstream as a process (see
//! `bench::upstream`). Prints `listening on http://ADDR` once it accepts connections.

use std::{io::Write as _, net::SocketAddr, time::Duration};

use anyhow::Context as _;
use bench::upstream::{self, UpstreamConfig};
use clap::Parser;

#[derive(Parser)]
#[command(about = "A fast OpenAI-compatible upstream for benchmarks")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Content events per streamed answer.
    #[arg(long, default_value_t = 10)]
    events: u32,
    /// Milliseconds between two streamed events.
    #[arg(long, default_value_t = 2)]
    event_interval_ms: u64,
    /// Milliseconds between two events of a held-open stream (model `bench-hold…`).
    #[arg(long, default_value_t = 1000)]
    hold_interval_ms: u64,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = UpstreamConfig {
            events: args.events,
            event_interval: Duration::from_millis(args.event_interval_ms),
            hold_interval: Duration::from_millis(args.hold_interval_ms),
        };
        let bound = upstream::spawn(args.listen, config)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{bound}")?;
        out.flush()?;
        drop(out);
        tokio::signal::ctrl_c().await.context("cannot wait for a signal")?;
        Ok(())
    })
}
