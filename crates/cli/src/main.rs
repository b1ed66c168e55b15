//! The `agentnet` binary: `agentnet server` runs the gateway, `agentnet admin …` manages it over
//! the admin socket, `agentnet usage` shows a person or agent their own spend and caps (over the
//! admin listener, with their bearer token), `agentnet setup …` points Claude Code and Codex at
//! it.
//!
//! API boundary: this crate talks to the server only through `api-types` DTOs over HTTP, and
//! embeds `server` for `agentnet server`; it never reaches the store or the proxy.

mod admin;
mod args;
mod setup;
mod usage;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server { config } => server::run_from_cli(config).await,
        Command::Admin(admin) => admin::run(admin).await,
        Command::Usage(args) => usage::run(args).await,
        Command::Setup { tool } => setup::run(tool),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
