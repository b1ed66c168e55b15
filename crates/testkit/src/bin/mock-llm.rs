//! `mock-llm`: the mock Anthropic/OpenAI upstream as a process, for end-to-end tests with the
//! real Claude Code and Codex CLIs. See `mock-llm --help` and `testkit::llm::cli`.

use std::io::Write as _;

use anyhow::Context as _;
use testkit::llm::cli::{parse_args, Command, HELP};
use testkit::llm::MockLlm;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let (listen, config) = match parse_args(std::env::args().skip(1))? {
        Command::Help => {
            print!("{HELP}");
            return Ok(());
        }
        Command::Serve { listen, config } => (listen, config),
    };
    let mock = MockLlm::bind(listen, *config)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", mock.base_url()).context("cannot write to stdout")?;
    out.flush().context("cannot flush stdout")?;
    drop(out);
    tokio::signal::ctrl_c().await.context("cannot wait for ctrl-c")?;
    mock.stop();
    Ok(())
}
