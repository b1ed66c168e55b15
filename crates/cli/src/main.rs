//! The `agentnet` binary: `agentnet server` runs the gateway; `agentnet login` (or, for agents,
//! `agentnet enroll` with a setup key) opens a session at it, `agentnet token` prints a valid
//! access token from that session (Claude Code's key helper), `agentnet whoami` and
//! `agentnet logout`; `agentnet admin …` manages the gateway over the admin socket (or a remote
//! admin listener, signed in); `agentnet usage` shows a person or agent their own spend and caps
//! (over the admin listener); `agentnet peer …` registers this device on the gateway's WireGuard
//! overlay; `agentnet setup …` points Claude Code and Codex at it.
//!
//! API boundary: this crate talks to the server only through `api-types` DTOs over HTTP, and
//! embeds `server` for `agentnet server`; it never reaches the store or the proxy.

mod admin;
mod args;
mod auth;
mod device;
#[cfg(test)]
mod fake_server;
mod login;
mod peers;
mod remote;
mod session;
mod setup;
mod up;
mod usage;
mod whoami;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server { config } => server::run_from_cli(config).await,
        Command::Login(args) => login::run_login(args).await,
        Command::Logout => login::run_logout().await,
        Command::Whoami { json } => whoami::run_whoami(json).await,
        Command::Token => whoami::run_token().await,
        Command::Enroll(args) => login::run_enroll(args).await,
        Command::Admin(admin) => admin::run(admin).await,
        Command::Usage(args) => usage::run(args).await,
        Command::Up(args) => up::run_up(args).await,
        Command::Down => up::run_down().await,
        Command::Status { json } => up::run_status(json).await,
        Command::Peer(args) => peers::run(args).await,
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
