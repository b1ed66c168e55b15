//! agentnet server: configuration, wiring, listeners and background tasks.
//!
//! Startup order: parse the config, validate it, then [`App::build`] opens the data directory and
//! store, applies config-declared entities, binds the listeners and compiles the first data-plane
//! snapshot; [`App::run`] serves until shutdown. Only this crate reads the environment or files,
//! installs the tracing subscriber, or exits the process.

mod admin;
mod app;
pub mod config;
mod data_dir;
mod overlay;
mod provision;
mod sessions;
mod telemetry;

use std::path::PathBuf;

pub use app::App;
pub use config::{Config, ProcessEnv, Source};
pub use overlay::OverlayEndpoint;

/// Runs `agentnet server` until SIGINT or SIGTERM: the CLI's entry point.
pub async fn run_from_cli(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config_path.as_deref(), &ProcessEnv)?;
    telemetry::init(&config.log);
    raise_open_file_limit();
    let app = App::build(config, &ProcessEnv).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        signal.cancel();
    });
    app.run(shutdown).await
}

/// Every open stream holds two sockets (client and upstream), so the usual soft limit of 1,024
/// descriptors would cap the gateway near 500 streams. Raise it to the hard limit, as nginx's
/// `worker_rlimit_nofile` and Go's runtime do.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open-file limit"),
            Err(err) => {
                tracing::warn!(error = %err, soft, hard, "cannot raise the open-file limit")
            }
        },
        Ok((soft, _)) => tracing::debug!(limit = soft, "open-file limit"),
        Err(err) => tracing::warn!(error = %err, "cannot read the open-file limit"),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
