//! Command-line options of the `mock-llm` binary, parsed into a listen address and a
//! [`MockConfig`].

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::script::{Gzip, MockConfig, Reply, Script, Usage};

/// Usage text of `mock-llm`.
pub const HELP: &str = "\
mock-llm: a mock Anthropic/OpenAI upstream for end-to-end tests

USAGE: mock-llm [OPTIONS]

  --listen ADDR             address to bind (default 127.0.0.1:0)
  --tool-call-first         answer each request that carries no tool result with a shell tool
                            call (Claude Code `Bash`, Codex `shell`/`shell_command`/`exec_command`,
                            whichever the request offers), then echo the tool output as text
  --tool-command CMD        the command of that tool call (default: echo tool-ok)
  --tool-name NAME          call this tool instead of the adaptive shell tool (implies
                            --tool-call-first); input from --tool-input
  --tool-input JSON         the tool input (default {})
  --text TEXT               default text (default: Hello from mock)
  --usage I,O,CR,CW,R       input, output, cache read, cache write, reasoning tokens
  --gzip off|auto|force     response compression (default off)
  --drip-ms N               delay between SSE events
  --script FILE             JSON array of replies queued at start
  --max-recorded N          recorded requests kept, the latest (default 10000)
  -h, --help                this text

Prints `listening on http://HOST:PORT` as its first line, then serves until killed.
Control API: GET /_mock/requests, POST /_mock/script (reply or array), POST /_mock/default,
POST /_mock/reset, GET /_mock/health.
";

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Print [`HELP`].
    Help,
    /// Serve on `listen` with `config`.
    Serve { listen: SocketAddr, config: Box<MockConfig> },
}

/// Parses the arguments (without the program name).
pub fn parse_args<I, S>(args: I) -> anyhow::Result<Command>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = MockConfig::default();
    let mut tool_first = false;
    let mut command = "echo tool-ok".to_owned();
    let mut tool_name: Option<String> = None;
    let mut tool_input = serde_json::json!({});
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().with_context(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--listen" => {
                let v = value("--listen")?;
                listen = v.parse().with_context(|| format!("invalid --listen address {v}"))?;
            }
            "--tool-call-first" => tool_first = true,
            "--tool-command" => command = value("--tool-command")?,
            "--tool-name" => tool_name = Some(value("--tool-name")?),
            "--tool-input" => {
                let v = value("--tool-input")?;
                tool_input = serde_json::from_str(&v).context("--tool-input is not JSON")?;
            }
            "--text" => config.text = value("--text")?,
            "--usage" => config.usage = parse_usage(&value("--usage")?)?,
            "--gzip" => {
                config.gzip = match value("--gzip")?.as_str() {
                    "off" => Gzip::Off,
                    "auto" => Gzip::Auto,
                    "force" => Gzip::Force,
                    other => bail!("invalid --gzip {other}: expected off, auto or force"),
                }
            }
            "--drip-ms" => {
                let v = value("--drip-ms")?;
                config.drip = Duration::from_millis(
                    v.parse().with_context(|| format!("invalid --drip-ms {v}"))?,
                );
            }
            "--script" => {
                let path = value("--script")?;
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {path}"))?;
                let script: Script = serde_json::from_str(&text)
                    .with_context(|| format!("invalid script {path}"))?;
                config = config.script(script);
            }
            "--max-recorded" => {
                let v = value("--max-recorded")?;
                config.max_recorded =
                    v.parse().with_context(|| format!("invalid --max-recorded {v}"))?;
            }
            other => bail!("unknown option {other} (see --help)"),
        }
    }
    if let Some(name) = tool_name {
        config.default_reply = Reply::tool_call(name, tool_input);
    } else if tool_first {
        config.default_reply = Reply::shell(command);
    }
    Ok(Command::Serve { listen, config: Box::new(config) })
}

/// `I,O,CR,CW,R` (missing trailing numbers are 0).
fn parse_usage(s: &str) -> anyhow::Result<Usage> {
    let nums = s
        .split(',')
        .map(|p| p.trim().parse::<u64>().with_context(|| format!("invalid --usage number {p:?}")))
        .collect::<anyhow::Result<Vec<u64>>>()?;
    if nums.is_empty() || nums.len() > 5 {
        bail!("--usage takes 1 to 5 numbers: input,output,cache_read,cache_write,reasoning");
    }
    let n = |i: usize| nums.get(i).copied().unwrap_or(0);
    Ok(Usage::new(n(0), n(1), n(2), n(3), n(4)))
}
