//! agentnet server: configuration, wiring, listeners and background tasks.

use std::path::PathBuf;

/// Runs `agentnet server` until a shutdown signal: the CLI's entry point.
pub async fn run_from_cli(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let _ = config_path;
    anyhow::bail!("the server is being wired up")
}
