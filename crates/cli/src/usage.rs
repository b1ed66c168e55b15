//! `agentnet usage`: a person's (or an agent's) own view of their usage, from the gateway's
//! self-service route `GET /api/v1/me` on its admin listener. The caller is identified by their
//! `agentnet login` session or by the bearer token their AI clients send, read from an
//! environment variable or printed by a command; a token is never taken on the command line,
//! printed, or put in an error message.
//!
//! Human output: who you are, the limits that apply to you (owner, whom they count, window, cap,
//! used, remaining; spend in dollars), your spend over the last 24 hours and 30 days, and your
//! newest requests. `--json` prints the server's answer as is.

#[cfg(test)]
mod tests;

use anyhow::{bail, Context};
use api_types::{LimitOwnerKind, LimitUse, SelfView, UsageRecord, UsageTotals};
use bytes::Bytes;
use hyper::{header::HeaderValue, StatusCode, Uri};

use crate::{
    admin::{table::Table, usd},
    args::{UsageArgs, DEFAULT_ADMIN_URL},
    remote::{error_message, status_text, Remote},
    session::{unix_now, SessionFile},
};

pub(crate) async fn run(args: UsageArgs) -> anyhow::Result<()> {
    let bytes = match TokenSource::from_args(&args)? {
        Some(source) => {
            let token = source.read(&|var| std::env::var(var).ok())?;
            fetch(args.server.as_deref().unwrap_or(DEFAULT_ADMIN_URL), &token).await?
        }
        None => {
            let file = SessionFile::default_location()?;
            crate::whoami::me(&file, args.server.as_deref(), unix_now()?).await?.1
        }
    };
    print!("{}", output(&bytes, args.json)?);
    Ok(())
}

/// Where the bearer token comes from, when not from the stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenSource {
    Env(String),
    Command(String),
}

impl TokenSource {
    /// The source the arguments name; `None`: the stored session.
    pub(crate) fn from_args(args: &UsageArgs) -> anyhow::Result<Option<Self>> {
        match (&args.token_env, &args.token_command) {
            (Some(var), None) => Ok(Some(Self::Env(var.clone()))),
            (None, Some(cmd)) => Ok(Some(Self::Command(cmd.clone()))),
            (None, None) => Ok(None),
            // clap's argument group already allows at most one.
            (Some(_), Some(_)) => {
                bail!("give at most one of --token-env VAR or --token-command CMD")
            }
        }
    }

    /// The token, trimmed; `env` looks up an environment variable.
    pub(crate) fn read(&self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<String> {
        let token = match self {
            Self::Env(var) => env(var).with_context(|| {
                format!("environment variable {var} is not set (or not UTF-8): it should hold your access token")
            })?,
            Self::Command(cmd) => run_token_command(cmd)?,
        };
        let token = token.trim().to_owned();
        if token.is_empty() {
            bail!("{} gave an empty token", self.describe());
        }
        if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            bail!("{} gave a token with characters a header cannot carry", self.describe());
        }
        Ok(token)
    }

    fn describe(&self) -> String {
        match self {
            Self::Env(var) => format!("environment variable {var}"),
            Self::Command(_) => "the --token-command".to_owned(),
        }
    }
}

/// Runs `cmd` with `sh -c` and returns what it printed.
fn run_token_command(cmd: &str) -> anyhow::Result<String> {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run the --token-command (no `sh`?)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr.trim();
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "a signal".to_owned(),
        };
        if detail.is_empty() {
            bail!("the --token-command failed ({status})");
        }
        bail!("the --token-command failed ({status}): {detail}");
    }
    String::from_utf8(output.stdout).context("the --token-command printed something not UTF-8")
}

/// The self-service route, under the server's base URL.
pub(crate) fn me_path() -> String {
    format!("{}/me", api_types::API_PREFIX)
}

/// GETs the view from `server` with the bearer token; a non-2xx answer becomes an error a person
/// understands.
async fn fetch(server: &str, token: &str) -> anyhow::Result<Bytes> {
    let remote = Remote::new(server)?;
    let reply = remote.get(&me_path(), Some(token)).await?;
    check(reply.status, &reply.bytes, &remote.url(&me_path())?)?;
    Ok(reply.bytes)
}

/// Turns a failed answer into an error naming what to do.
pub(crate) fn check(status: StatusCode, bytes: &[u8], url: &Uri) -> anyhow::Result<()> {
    if status.is_success() {
        return Ok(());
    }
    let message = error_message(bytes)
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).trim().chars().take(300).collect());
    match status {
        StatusCode::UNAUTHORIZED => bail!("your token was refused: {message}"),
        StatusCode::SERVICE_UNAVAILABLE => {
            bail!("the server cannot check your token right now: {message}")
        }
        StatusCode::NOT_FOUND => bail!(
            "{url} was not found: --server should be the gateway's admin listener (port 4001 by default), not its AI endpoint"
        ),
        _ => bail!("the server answered {}: {message}", status_text(status)),
    }
}

/// What to print for the server's answer.
pub(crate) fn output(bytes: &[u8], json: bool) -> anyhow::Result<String> {
    let view: SelfView = serde_json::from_slice(bytes)
        .context("the server's answer is not what this agentnet version expects")?;
    if json {
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        return Ok(format!("{}\n", serde_json::to_string_pretty(&value)?));
    }
    Ok(render(&view))
}

/// The human view: who, limits, spend, recent requests.
pub(crate) fn render(view: &SelfView) -> String {
    let mut out = format!("{} ({})", view.principal, view.kind);
    if view.groups.is_empty() {
        out.push_str(", in no groups\n");
    } else {
        out.push_str(&format!(", groups: {}\n", view.groups.join(", ")));
    }

    out.push_str("\nLimits\n");
    out.push_str(&limits_table(&view.limits));

    out.push_str("\nSpend\n");
    let mut t =
        Table::new(&["PERIOD", "REQUESTS", "FAILED", "TOKENS", "COST"]).align_right(&[1, 2, 3, 4]);
    for (period, totals) in [("last 24 h", &view.last_24h), ("last 30 d", &view.last_30d)] {
        t.row(vec![
            period.to_owned(),
            totals.requests.to_string(),
            totals.failed_requests.to_string(),
            totals.total_tokens.to_string(),
            cost(totals),
        ]);
    }
    out.push_str(&t.render());
    if view.last_30d.unknown_cost_requests > 0 {
        out.push_str(
            "(+N): N requests to models without a known price, whose cost is not in COST\n",
        );
    }

    out.push_str("\nRecent requests\n");
    out.push_str(&recent_table(&view.recent));
    out
}

fn limits_table(limits: &[LimitUse]) -> String {
    if limits.is_empty() {
        return "no limits apply to you\n".to_owned();
    }
    let mut t = Table::new(&["OWNER", "APPLIES TO", "WINDOW", "CAP", "USED", "REMAINING"])
        .align_right(&[3, 4, 5]);
    for l in limits {
        let (cap, used, remaining) = match l.unit() {
            "usd" => (money(l.cap), money(l.used), money(l.remaining)),
            unit => (format!("{} {unit}", count(l.cap)), count(l.used), count(l.remaining)),
        };
        t.row(vec![
            format!("{} {}", l.owner_kind.as_str(), l.owner),
            l.applies_to.clone(),
            l.limit.window.clone(),
            cap,
            used,
            remaining,
        ]);
    }
    let mut out = t.render();
    let policies: std::collections::BTreeSet<&str> = limits
        .iter()
        .filter(|l| l.owner_kind == LimitOwnerKind::Policy)
        .map(|l| l.owner.as_str())
        .collect();
    if policies.len() > 1 {
        out.push_str(
            "a request counts against every global limit, and against one policy: an uncapped one if any, else the one with the most room left\n",
        );
    }
    out
}

fn recent_table(records: &[UsageRecord]) -> String {
    if records.is_empty() {
        return "no requests yet\n".to_owned();
    }
    let mut t = Table::new(&["TIME (UTC)", "PROVIDER", "MODEL", "STATUS", "TOKENS", "COST"])
        .align_right(&[4, 5]);
    for r in records {
        let tokens =
            r.input_tokens + r.output_tokens + r.cache_creation_tokens + r.cache_read_tokens;
        t.row(vec![
            time(&r.at),
            r.provider.clone().unwrap_or_else(|| "-".to_owned()),
            r.model.clone().unwrap_or_else(|| "-".to_owned()),
            format!("{} {}", r.status, r.reason),
            tokens.to_string(),
            usd(r.cost_usd),
        ]);
    }
    t.render()
}

/// `2025-06-01T12:00:00.000Z` → `2025-06-01 12:00:00`.
fn time(rfc3339: &str) -> String {
    let t = rfc3339.replacen('T', " ", 1);
    let t = t.trim_end_matches('Z');
    match t.split_once('.') {
        Some((seconds, _)) => seconds.to_owned(),
        None => t.to_owned(),
    }
}

fn money(usd_amount: f64) -> String {
    usd(Some(usd_amount))
}

/// A whole count (tokens, requests), as received in a float.
fn count(n: f64) -> String {
    format!("{n:.0}")
}

fn cost(totals: &UsageTotals) -> String {
    let known = usd(Some(totals.cost_usd));
    match totals.unknown_cost_requests {
        0 => known,
        n => format!("{known} (+{n})"),
    }
}
