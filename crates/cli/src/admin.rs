//! `agentnet admin …`: providers, groups, agents, policies, global limits, usage, logs, the
//! audit log, local accounts, setup keys, sessions and overlay peers, through the admin API on the server's Unix
//! socket (or, with `--url`, on a remote admin listener, as a signed-in admin). Human output is
//! aligned tables; `--json` prints the server's JSON as is.

mod accounts;
pub(crate) mod client;
mod peers;
pub(crate) mod table;
mod when;

#[cfg(test)]
pub(crate) mod tests;

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context};
use api_types::{
    Agent, AgentInput, ApiKey, AuditEntry, AuditQuery, GlobalLimit, GlobalLimitInput, Group,
    GroupInput, Policy, PolicyInput, PolicySources, Provider, ProviderInput, ScimStatus, ScimToken,
    SetKeyRequest, SetKeyResponse, Stamping, UsageQuery, UsageRecord, UsageSummary,
};

use crate::{
    args::{
        AdminArgs, AdminCommand, AgentsCommand, AuditFilters, GroupsCommand, LimitAdd,
        LimitsCommand, PoliciesCommand, PolicyAdd, ProviderAdd, ProvidersCommand, ScimCommand,
        UsageFilters,
    },
    remote::Remote,
    session::{self, unix_now, SessionFile},
};
use client::{segment, Answer, Client};
use table::Table;

pub(crate) async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let client = match &args.url {
        Some(url) => {
            let remote = Remote::new(url)?;
            let file = SessionFile::default_location()?;
            let session = session::current(&file, unix_now()?)
                .await
                .context("--url authenticates with your `agentnet login` session")?;
            Client::remote(remote, session.access_token)
        }
        None => Client::new(args.socket_path()),
    };
    let output = execute(&client, args.command, args.json).await?;
    print!("{output}");
    Ok(())
}

/// Runs one admin command and returns what to print.
async fn execute(client: &Client, command: AdminCommand, json: bool) -> anyhow::Result<String> {
    let out = |answer: Answer, human: &dyn Fn(&Answer) -> anyhow::Result<String>| {
        if json {
            Ok(format!("{}\n", answer.pretty()))
        } else {
            human(&answer)
        }
    };
    match command {
        AdminCommand::Providers(cmd) => match cmd {
            ProvidersCommand::List => out(client.get("/providers").await?, &|a| {
                Ok(providers_table(&a.decode::<Vec<Provider>>()?))
            }),
            ProvidersCommand::Show { name } => {
                out(client.get(&format!("/providers/{}", segment(&name))).await?, &|a| {
                    Ok(provider_details(&a.decode()?))
                })
            }
            ProvidersCommand::Add(add) => {
                let answer = client.post("/providers", &provider_input(add)).await?;
                out(answer, &|a| {
                    let p: Provider = a.decode()?;
                    Ok(format!(
                        "added provider '{}'; set its key with `agentnet admin providers set-key {}`\n",
                        p.name, p.name
                    ))
                })
            }
            ProvidersCommand::SetKey { name, from_env } => {
                let key = read_key(&name, from_env.as_deref())?;
                let request = SetKeyRequest { api_key: ApiKey::new(key) };
                let answer =
                    client.put(&format!("/providers/{}/key", segment(&name)), &request).await?;
                out(answer, &|a| {
                    let r: SetKeyResponse = a.decode()?;
                    Ok(format!("stored the key of provider '{}' ({})\n", r.name, r.key_fingerprint))
                })
            }
            ProvidersCommand::Rm { name } => {
                client.delete(&format!("/providers/{}", segment(&name))).await?;
                Ok(if json { String::new() } else { format!("removed provider '{name}'\n") })
            }
        },
        AdminCommand::Groups(cmd) => match cmd {
            GroupsCommand::List => {
                out(client.get("/groups").await?, &|a| Ok(groups_table(&a.decode::<Vec<Group>>()?)))
            }
            GroupsCommand::Add { name, description } => {
                let input = GroupInput { name: Some(name), description };
                out(client.post("/groups", &input).await?, &|a| {
                    Ok(format!("added group '{}'\n", a.decode::<Group>()?.name))
                })
            }
            GroupsCommand::Rm { name } => {
                client.delete(&format!("/groups/{}", segment(&name))).await?;
                Ok(if json { String::new() } else { format!("removed group '{name}'\n") })
            }
        },
        AdminCommand::Agents(cmd) => match cmd {
            AgentsCommand::List => {
                out(client.get("/agents").await?, &|a| Ok(agents_table(&a.decode::<Vec<Agent>>()?)))
            }
            AgentsCommand::Add { name, groups, description } => {
                let input = AgentInput { name: Some(name), description, groups };
                out(client.post("/agents", &input).await?, &|a| {
                    Ok(format!("added agent '{}'\n", a.decode::<Agent>()?.name))
                })
            }
            AgentsCommand::Rm { name } => {
                client.delete(&format!("/agents/{}", segment(&name))).await?;
                Ok(if json { String::new() } else { format!("removed agent '{name}'\n") })
            }
        },
        AdminCommand::Policies(cmd) => match cmd {
            PoliciesCommand::List => out(client.get("/policies").await?, &|a| {
                Ok(policies_table(&a.decode::<Vec<Policy>>()?))
            }),
            PoliciesCommand::Show { name } => {
                out(client.get(&format!("/policies/{}", segment(&name))).await?, &|a| {
                    Ok(policy_details(&a.decode()?))
                })
            }
            PoliciesCommand::Add(add) => {
                if add.groups.is_empty()
                    && add.users.is_empty()
                    && add.agents.is_empty()
                    && !add.everyone
                {
                    bail!("a policy needs at least one source: --group, --user, --agent or --everyone");
                }
                out(client.post("/policies", &policy_input(add)).await?, &|a| {
                    Ok(format!("added policy '{}'\n", a.decode::<Policy>()?.name))
                })
            }
            PoliciesCommand::Rm { name } => {
                client.delete(&format!("/policies/{}", segment(&name))).await?;
                Ok(if json { String::new() } else { format!("removed policy '{name}'\n") })
            }
        },
        AdminCommand::Limits(cmd) => match cmd {
            LimitsCommand::List => out(client.get("/limits").await?, &|a| {
                Ok(limits_table(&a.decode::<Vec<GlobalLimit>>()?))
            }),
            LimitsCommand::Show { name } => {
                out(client.get(&format!("/limits/{}", segment(&name))).await?, &|a| {
                    Ok(limit_details(&a.decode()?))
                })
            }
            LimitsCommand::Add(add) => {
                if add.groups.is_empty()
                    && add.users.is_empty()
                    && add.agents.is_empty()
                    && !add.everyone
                {
                    bail!("a global limit needs at least one target: --group, --user, --agent or --everyone");
                }
                out(client.post("/limits", &limit_input(add)).await?, &|a| {
                    let l: GlobalLimit = a.decode()?;
                    Ok(format!("added global limit '{}': {}\n", l.name, l.limit().describe()))
                })
            }
            LimitsCommand::Rm { name } => {
                client.delete(&format!("/limits/{}", segment(&name))).await?;
                Ok(if json { String::new() } else { format!("removed global limit '{name}'\n") })
            }
        },
        AdminCommand::Usage(filters) => {
            let limit = filters.limit;
            let query = usage_query(filters, when::now_ms()?)?;
            let answer =
                client.get(&with_query("/usage/summary", &query.to_query_string())).await?;
            out(answer, &|a| Ok(summary_table(&a.decode()?, limit)))
        }
        AdminCommand::Logs(filters) => {
            let query = usage_query(filters, when::now_ms()?)?;
            let answer = client.get(&with_query("/logs", &query.to_query_string())).await?;
            out(answer, &|a| Ok(logs_table(&a.decode::<Vec<UsageRecord>>()?)))
        }
        AdminCommand::Scim(cmd) => match cmd {
            ScimCommand::Token => {
                let answer = client.post("/scim/token", &serde_json::json!({})).await?;
                out(answer, &|a| Ok(scim_token_text(&a.decode()?)))
            }
            ScimCommand::Disable => out(client.delete("/scim/token").await?, &|_| {
                Ok("SCIM provisioning is off: the SCIM token no longer works. Provisioned users \
                    and groups are kept; `agentnet admin scim token` turns it back on.\n"
                    .to_owned())
            }),
            ScimCommand::Status => {
                out(client.get("/scim").await?, &|a| Ok(scim_status_text(&a.decode()?)))
            }
        },
        AdminCommand::Audit(filters) => {
            let query = audit_query(filters, when::now_ms()?)?;
            let answer = client.get(&with_query("/audit", &query.to_query_string())).await?;
            out(answer, &|a| Ok(audit_table(&a.decode::<Vec<AuditEntry>>()?)))
        }
        AdminCommand::Users(cmd) => accounts::users(client, cmd, json, &read_password).await,
        AdminCommand::SetupKeys(cmd) => accounts::setup_keys(client, cmd, json).await,
        AdminCommand::Sessions(cmd) => accounts::sessions(client, cmd, json, when::now_ms()?).await,
        AdminCommand::Peers(cmd) => peers::peers(client, cmd, json).await,
    }
}

/// `path`, with `?query` unless it is empty.
fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

fn provider_input(add: ProviderAdd) -> ProviderInput {
    ProviderInput {
        name: Some(add.name),
        kind: add.kind,
        base_url: add.base_url,
        apis: add.apis,
        models: add.models,
        prices: Vec::new(),
        stamping: Stamping {
            enabled: !add.no_stamping,
            preset: add.preset,
            assertion: !add.no_assertion,
        },
        azure_api_version: add.azure_api_version,
        api_key: None,
    }
}

fn policy_input(add: PolicyAdd) -> PolicyInput {
    PolicyInput {
        name: Some(add.name),
        sources: PolicySources {
            groups: add.groups,
            users: add.users,
            agents: add.agents,
            everyone: add.everyone,
        },
        providers: add.providers,
        models: add.models,
        max_tokens: add.max_tokens,
        limits: add.limits,
    }
}

fn limit_input(add: LimitAdd) -> GlobalLimitInput {
    GlobalLimitInput::new(
        Some(add.name),
        PolicySources {
            groups: add.groups,
            users: add.users,
            agents: add.agents,
            everyone: add.everyone,
        },
        add.limit,
    )
}

pub(crate) fn usage_query(f: UsageFilters, now_ms: i64) -> anyhow::Result<UsageQuery> {
    Ok(UsageQuery {
        principal: f.principal,
        group: f.group,
        policy: f.policy,
        provider: f.provider,
        model: f.model,
        reason: f.reason,
        since: f.since.map(|v| when::resolve("since", &v, now_ms)).transpose()?,
        until: f.until.map(|v| when::resolve("until", &v, now_ms)).transpose()?,
        limit: f.limit,
    })
}

pub(crate) fn audit_query(f: AuditFilters, now_ms: i64) -> anyhow::Result<AuditQuery> {
    Ok(AuditQuery {
        actor: f.actor,
        action: f.action,
        target_kind: f.target_kind,
        target: f.target,
        since: f.since.map(|v| when::resolve("since", &v, now_ms)).transpose()?,
        until: f.until.map(|v| when::resolve("until", &v, now_ms)).transpose()?,
        limit: f.limit,
    })
}

/// The key from `$var`, or from stdin: piped, or typed at a prompt with echo off.
fn read_key(provider: &str, var: Option<&str>) -> anyhow::Result<String> {
    let key = match var {
        Some(var) => std::env::var(var)
            .with_context(|| format!("environment variable {var} is not set (or not UTF-8)"))?,
        None if std::io::stdin().is_terminal() => {
            prompt_hidden(&format!("key for provider '{provider}' (input hidden): "))
                .context("cannot read the key from the terminal")?
        }
        None => {
            let mut all = String::new();
            std::io::stdin().read_to_string(&mut all).context("cannot read the key from stdin")?;
            all
        }
    };
    let key = key.trim().to_owned();
    if key.is_empty() {
        bail!("no key given: pipe it on stdin (e.g. `pass show openai | agentnet admin providers set-key openai`) or use --from-env VAR");
    }
    Ok(key)
}

/// A password for the local account `user` from stdin: typed twice at a prompt with echo off,
/// or piped (one trailing newline removed).
fn read_password(user: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = prompt_hidden(&format!("password for '{user}' (input hidden): "))
            .context("cannot read the password from the terminal")?;
        let again = prompt_hidden("the same again: ")
            .context("cannot read the password from the terminal")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut all = String::new();
        std::io::stdin().read_to_string(&mut all).context("cannot read the password from stdin")?;
        all
    };
    let password = password.strip_suffix('\n').unwrap_or(&password);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password given on stdin");
    }
    Ok(password.to_owned())
}

/// One line typed at the terminal after `prompt`, with echo off.
fn prompt_hidden(prompt: &str) -> std::io::Result<String> {
    eprint!("{prompt}");
    let _echo = EchoOff::new();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    eprintln!();
    Ok(line)
}

/// Turns terminal echo off (via `stty`, so no unsafe code) until dropped.
struct EchoOff(bool);

impl EchoOff {
    fn new() -> Self {
        Self(stty("-echo"))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if self.0 {
            stty("echo");
        }
    }
}

fn stty(setting: &str) -> bool {
    std::process::Command::new("stty")
        .arg(setting)
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}

fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

fn list(values: &[String]) -> String {
    if values.is_empty() {
        "-".to_owned()
    } else {
        values.join(",")
    }
}

pub(crate) fn usd(cost: Option<f64>) -> String {
    match cost {
        Some(c) if c != 0.0 && c < 0.01 => format!("${c:.4}"),
        Some(c) => format!("${c:.2}"),
        None => "unknown".to_owned(),
    }
}

fn providers_table(providers: &[Provider]) -> String {
    let mut t =
        Table::new(&["NAME", "KIND", "BASE URL", "MODELS", "KEY", "STAMPING", "MANAGED BY"]);
    for p in providers {
        t.row(vec![
            p.name.clone(),
            p.kind.as_str().to_owned(),
            p.base_url.clone(),
            if p.models.is_empty() { "*".to_owned() } else { p.models.join(",") },
            or_dash(p.key_fingerprint.as_deref()),
            stamping(&p.stamping),
            p.managed_by.as_str().to_owned(),
        ]);
    }
    if t.is_empty() {
        return "no providers; add one with `agentnet admin providers add`\n".to_owned();
    }
    t.render()
}

fn stamping(s: &Stamping) -> String {
    let shown = match (s.enabled, s.preset) {
        (false, _) => return "off".to_owned(),
        (true, api_types::GatewayPreset::None) => "on".to_owned(),
        (true, preset) => preset.as_str().to_owned(),
    };
    if s.assertion {
        shown
    } else {
        format!("{shown}, unsigned")
    }
}

fn provider_details(p: &Provider) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<18} {v}\n"));
    line("name", p.name.clone());
    line("kind", p.kind.as_str().to_owned());
    line("base url", p.base_url.clone());
    line("apis", p.apis.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(","));
    line("models", if p.models.is_empty() { "* (any)".to_owned() } else { p.models.join(", ") });
    line("key", p.key_fingerprint.clone().unwrap_or_else(|| "not set".to_owned()));
    line("stamping", stamping(&p.stamping));
    if let Some(v) = &p.azure_api_version {
        line("azure api version", v.clone());
    }
    line("managed by", p.managed_by.as_str().to_owned());
    line("updated", p.updated_at.clone());
    if !p.prices.is_empty() {
        let mut t =
            Table::new(&["MODEL", "INPUT $/MTOK", "OUTPUT $/MTOK", "CACHE WRITE", "CACHE READ"])
                .align_right(&[1, 2, 3, 4]);
        for price in &p.prices {
            let f = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v}"));
            t.row(vec![
                price.model.clone(),
                format!("{}", price.input_usd_per_mtok),
                format!("{}", price.output_usd_per_mtok),
                f(price.cache_write_usd_per_mtok),
                f(price.cache_read_usd_per_mtok),
            ]);
        }
        out.push_str("prices\n");
        out.push_str(&t.render());
    }
    out
}

fn groups_table(groups: &[Group]) -> String {
    let mut t = Table::new(&["NAME", "DESCRIPTION", "MANAGED BY"]);
    for g in groups {
        t.row(vec![
            g.name.clone(),
            or_dash(Some(&g.description)),
            g.managed_by.as_str().to_owned(),
        ]);
    }
    if t.is_empty() {
        return "no groups\n".to_owned();
    }
    t.render()
}

fn agents_table(agents: &[Agent]) -> String {
    let mut t = Table::new(&["NAME", "GROUPS", "DESCRIPTION", "MANAGED BY"]);
    for a in agents {
        t.row(vec![
            a.name.clone(),
            list(&a.groups),
            or_dash(Some(&a.description)),
            a.managed_by.as_str().to_owned(),
        ]);
    }
    if t.is_empty() {
        return "no agents\n".to_owned();
    }
    t.render()
}

fn sources(s: &PolicySources) -> String {
    let mut parts = Vec::new();
    if s.everyone {
        parts.push("everyone".to_owned());
    }
    parts.extend(s.groups.iter().map(|g| format!("group:{g}")));
    parts.extend(s.users.iter().map(|u| format!("user:{u}")));
    parts.extend(s.agents.iter().map(|a| format!("agent:{a}")));
    parts.join(",")
}

fn policies_table(policies: &[Policy]) -> String {
    let mut t = Table::new(&["NAME", "SOURCES", "PROVIDERS", "MODELS", "MANAGED BY"]);
    for p in policies {
        t.row(vec![
            p.name.clone(),
            sources(&p.sources),
            list(&p.providers),
            if p.models.is_empty() { "*".to_owned() } else { p.models.join(",") },
            p.managed_by.as_str().to_owned(),
        ]);
    }
    if t.is_empty() {
        return "no policies: nobody can use any provider (default deny)\n".to_owned();
    }
    t.render()
}

fn policy_details(p: &Policy) -> String {
    let s = &p.sources;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<11} {v}\n"));
    line("name", p.name.clone());
    line("everyone", if s.everyone { "yes" } else { "no" }.to_owned());
    line("groups", list(&s.groups));
    line("users", list(&s.users));
    line("agents", list(&s.agents));
    line("providers", list(&p.providers));
    line("models", if p.models.is_empty() { "* (any)".to_owned() } else { p.models.join(", ") });
    line("max tokens", p.max_tokens.map_or_else(|| "-".to_owned(), |n| n.to_string()));
    if p.limits.is_empty() {
        line("limits", "-".to_owned());
    }
    for (i, limit) in p.limits.iter().enumerate() {
        line(if i == 0 { "limits" } else { "" }, limit.describe());
    }
    line("managed by", p.managed_by.as_str().to_owned());
    line("updated", p.updated_at.clone());
    out
}

fn limits_table(limits: &[GlobalLimit]) -> String {
    let mut t = Table::new(&["NAME", "TARGETS", "LIMIT", "MANAGED BY"]);
    for l in limits {
        t.row(vec![
            l.name.clone(),
            sources(&l.targets),
            l.limit().describe(),
            l.managed_by.as_str().to_owned(),
        ]);
    }
    if t.is_empty() {
        return "no global limits\n".to_owned();
    }
    t.render()
}

fn limit_details(l: &GlobalLimit) -> String {
    let s = &l.targets;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<11} {v}\n"));
    line("name", l.name.clone());
    line("everyone", if s.everyone { "yes" } else { "no" }.to_owned());
    line("groups", list(&s.groups));
    line("users", list(&s.users));
    line("agents", list(&s.agents));
    line("limit", l.limit().describe());
    line("managed by", l.managed_by.as_str().to_owned());
    line("updated", l.updated_at.clone());
    out
}

fn summary_table(summary: &UsageSummary, limit: Option<u32>) -> String {
    let mut t = Table::new(&[
        "PRINCIPAL",
        "REQUESTS",
        "FAILED",
        "INPUT",
        "OUTPUT",
        "CACHE WRITE",
        "CACHE READ",
        "COST",
        "UNPRICED",
    ])
    .align_right(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let shown = limit.map_or(usize::MAX, |l| l as usize);
    let mut row = |name: String, u: &api_types::UsageTotals| {
        t.row(vec![
            name,
            u.requests.to_string(),
            u.failed_requests.to_string(),
            u.input_tokens.to_string(),
            u.output_tokens.to_string(),
            u.cache_creation_tokens.to_string(),
            u.cache_read_tokens.to_string(),
            usd((u.unknown_cost_requests < u.requests).then_some(u.cost_usd)),
            u.unknown_cost_requests.to_string(),
        ]);
    };
    for p in summary.principals.iter().take(shown) {
        row(p.principal.clone().unwrap_or_else(|| "(unidentified)".to_owned()), &p.totals);
    }
    if summary.principals.is_empty() {
        return "no usage in this range\n".to_owned();
    }
    row("TOTAL".to_owned(), &summary.total);
    let mut out = t.render();
    if summary.total.unknown_cost_requests > 0 {
        out.push_str(
            "UNPRICED: requests to models without a known price; their cost is not in COST\n",
        );
    }
    out
}

fn logs_table(records: &[UsageRecord]) -> String {
    let mut t = Table::new(&[
        "TIME",
        "PRINCIPAL",
        "PROVIDER",
        "MODEL",
        "STATUS",
        "REASON",
        "INPUT",
        "OUTPUT",
        "CACHE R/W",
        "COST",
        "LATENCY",
    ])
    .align_right(&[4, 6, 7, 8, 9, 10]);
    for r in records {
        t.row(vec![
            r.at.clone(),
            or_dash(r.principal.as_deref()),
            or_dash(r.provider.as_deref()),
            or_dash(r.model.as_deref()),
            r.status.to_string(),
            r.reason.clone(),
            r.input_tokens.to_string(),
            r.output_tokens.to_string(),
            format!("{}/{}", r.cache_read_tokens, r.cache_creation_tokens),
            usd(r.cost_usd),
            format!("{}ms", r.latency_ms),
        ]);
    }
    if t.is_empty() {
        return "no requests in this range\n".to_owned();
    }
    t.render()
}

/// The audit log, one change a line, newest first. CHANGED names the top-level fields that
/// differ between before and after (an update), `-` for a create or delete; `--json` has the
/// records themselves.
fn audit_table(entries: &[AuditEntry]) -> String {
    let mut t = Table::new(&["TIME", "ACTOR", "ACTION", "TARGET", "CHANGED"]);
    for e in entries {
        t.row(vec![
            e.at.clone(),
            e.actor.clone(),
            e.action.clone(),
            format!("{}:{}", e.target_kind, e.target),
            changed_fields(e.before.as_ref(), e.after.as_ref()),
        ]);
    }
    if t.is_empty() {
        return "no audit entries match\n".to_owned();
    }
    t.render()
}

/// The top-level fields of two JSON objects that differ, sorted, `updated_at` aside (it changes
/// with every write); `-` unless both are objects.
fn changed_fields(before: Option<&serde_json::Value>, after: Option<&serde_json::Value>) -> String {
    let (Some(serde_json::Value::Object(before)), Some(serde_json::Value::Object(after))) =
        (before, after)
    else {
        return "-".to_owned();
    };
    let mut fields: Vec<&str> = before
        .keys()
        .chain(after.keys().filter(|k| !before.contains_key(*k)))
        .map(String::as_str)
        .filter(|k| *k != "updated_at" && before.get(*k) != after.get(*k))
        .collect();
    fields.sort_unstable();
    if fields.is_empty() {
        "(none)".to_owned()
    } else {
        fields.join(",")
    }
}

fn scim_token_text(token: &ScimToken) -> String {
    format!(
        "SCIM provisioning is on. The SCIM token, shown this once (agentnet keeps only its hash):

    {}

Paste it into your IdP's SCIM connector as the bearer token (Okta: authentication mode \"HTTP
Header\"; Entra ID: \"Secret Token\"), with the SCIM base URL <admin listener URL>/scim/v2,
e.g. https://agentnet.example.com:4001/scim/v2. Any previous SCIM token no longer works.
",
        token.token
    )
}

fn scim_status_text(status: &ScimStatus) -> String {
    match &status.token_created_at {
        Some(at) if status.enabled => format!(
            "SCIM provisioning is on (token created {at}); the IdP connects to <admin listener URL>{}\n",
            status.path
        ),
        _ => "SCIM provisioning is off; `agentnet admin scim token` turns it on\n".to_owned(),
    }
}
