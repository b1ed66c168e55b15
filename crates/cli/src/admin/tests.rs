//! The admin commands end to end against the real admin router (`control::router` on an
//! in-memory store), served over HTTP/1.1 on a temporary Unix socket.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use clap::Parser;
use expect_test::expect;

use super::*;
use crate::args::{Cli, Command};

/// A fresh directory under the system temp dir, unique to this process and call.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("agentnet-cli-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Server {
    dir: PathBuf,
    store: store::Store,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start() -> Self {
        let dir = temp_dir("admin");
        let store = store::Store::in_memory(&store::MasterKey::generate().unwrap()).await.unwrap();
        let router = control::router(control::ControlState::new(store.clone(), || {}));
        let listener = tokio::net::UnixListener::bind(dir.join("admin.sock")).unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { dir, store, task }
    }

    /// Runs `agentnet admin --data-dir DIR <args>` and returns its output or error chain.
    async fn run(&self, args: &[&str]) -> String {
        let dir = self.dir.to_str().unwrap();
        let argv = ["agentnet", "admin", "--data-dir", dir].into_iter().chain(args.iter().copied());
        run_admin(argv).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn run_admin<'a>(argv: impl Iterator<Item = &'a str>) -> String {
    let Command::Admin(args) = Cli::try_parse_from(argv).unwrap().command else { panic!() };
    let client = Client::new(args.socket_path());
    match execute(&client, args.command, args.json).await {
        Ok(out) => out,
        Err(err) => format!("error: {err:#}\n"),
    }
}

fn without_dates(text: &str) -> String {
    text.lines()
        .map(|l| if l.starts_with("updated ") { "updated <time>" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn providers_round_trip_over_the_socket() {
    let server = Server::start().await;
    expect![[r#"
        no providers; add one with `agentnet admin providers add`
    "#]]
    .assert_eq(&server.run(&["providers", "list"]).await);
    expect![[r#"
        added provider 'anthropic'; set its key with `agentnet admin providers set-key anthropic`
    "#]]
    .assert_eq(
        &server
            .run(&[
                "providers",
                "add",
                "anthropic",
                "--kind",
                "anthropic",
                "--base-url",
                "https://api.anthropic.com",
                "--model",
                "claude-*",
            ])
            .await,
    );
    server
        .run(&[
            "providers",
            "add",
            "litellm",
            "--kind",
            "openai-compatible",
            "--base-url",
            "http://litellm:4000/",
            "--preset",
            "litellm",
        ])
        .await;
    server.store.set_provider_key("anthropic", &"sk-ant-xyz-wxyz".to_owned().into()).await.unwrap();
    expect![[r#"
        NAME       KIND               BASE URL                   MODELS    KEY    STAMPING  MANAGED BY
        anthropic  anthropic          https://api.anthropic.com  claude-*  …wxyz  on        api
        litellm    openai-compatible  http://litellm:4000        *         -      litellm   api
    "#]]
    .assert_eq(&server.run(&["providers", "list"]).await);
    expect![[r#"
        name               anthropic
        kind               anthropic
        base url           https://api.anthropic.com
        apis               anthropic
        models             claude-*
        key                …wxyz
        stamping           on
        managed by         api
        updated <time>"#]]
    .assert_eq(&without_dates(&server.run(&["providers", "show", "anthropic"]).await));

    let json = server.run(&["providers", "show", "litellm", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["stamping"]["preset"], "litellm");

    // Server-side validation and conflicts come back as the server's message.
    expect![[r#"
        error: provider 'anthropic' already exists
    "#]]
    .assert_eq(
        &server
            .run(&[
                "providers",
                "add",
                "anthropic",
                "--kind",
                "anthropic",
                "--base-url",
                "https://x",
            ])
            .await,
    );
    expect![[r#"
        error: base_url: 'https://api.openai.com/v1?x=1' must not have a query or fragment
    "#]]
    .assert_eq(
        &server
            .run(&[
                "providers",
                "add",
                "o",
                "--kind",
                "openai",
                "--base-url",
                "https://api.openai.com/v1?x=1",
            ])
            .await,
    );
    expect![[r#"
        removed provider 'litellm'
    "#]]
    .assert_eq(&server.run(&["providers", "rm", "litellm"]).await);
    expect![[r#"
        error: provider 'litellm' does not exist
    "#]]
    .assert_eq(&server.run(&["providers", "rm", "litellm"]).await);
}

#[tokio::test]
async fn groups_agents_and_policies_over_the_socket() {
    let server = Server::start().await;
    server.run(&["groups", "add", "eng", "--description", "engineers"]).await;
    server.run(&["agents", "add", "ci-bot", "--group", "eng", "--group", "release"]).await;
    expect![[r#"
        added policy 'eng-claude'
    "#]]
    .assert_eq(
        &server
            .run(&[
                "policies",
                "add",
                "eng-claude",
                "--group",
                "eng",
                "--agent",
                "ci-bot",
                "--provider",
                "anthropic",
                "--model",
                "claude-sonnet-*",
            ])
            .await,
    );
    server.run(&["policies", "add", "all", "--everyone", "--provider", "local"]).await;
    expect![[r#"
        NAME  DESCRIPTION  MANAGED BY
        eng   engineers    api
    "#]]
    .assert_eq(&server.run(&["groups", "list"]).await);
    expect![[r#"
        NAME    GROUPS       DESCRIPTION  MANAGED BY
        ci-bot  eng,release  -            api
    "#]]
    .assert_eq(&server.run(&["agents", "list"]).await);
    expect![[r#"
        NAME        SOURCES                 PROVIDERS  MODELS           MANAGED BY
        all         everyone                local      *                api
        eng-claude  group:eng,agent:ci-bot  anthropic  claude-sonnet-*  api
    "#]]
    .assert_eq(&server.run(&["policies", "list"]).await);
    expect![[r#"
        name        eng-claude
        everyone    no
        groups      eng
        users       -
        agents      ci-bot
        providers   anthropic
        models      claude-sonnet-*
        max tokens  -
        limits      -
        managed by  api
        updated <time>"#]]
    .assert_eq(&without_dates(&server.run(&["policies", "show", "eng-claude"]).await));
    for (what, name) in
        [("policies", "all"), ("policies", "eng-claude"), ("agents", "ci-bot"), ("groups", "eng")]
    {
        server.run(&[what, "rm", name]).await;
    }
    expect![[r#"
        no policies: nobody can use any provider (default deny)
    "#]]
    .assert_eq(&server.run(&["policies", "list"]).await);
}

#[tokio::test]
async fn policy_caps_and_global_limits_over_the_socket() {
    let server = Server::start().await;
    expect![[r#"
        added policy 'eng'
    "#]]
    .assert_eq(
        &server
            .run(&[
                "policies",
                "add",
                "eng",
                "--group",
                "eng",
                "--provider",
                "anthropic",
                "--max-tokens",
                "8192",
                "--limit",
                "spend=500,per=user,window=30d",
                "--limit",
                "tokens=400000,window=60s",
                "--limit",
                "requests=60,per=group,window=1m",
            ])
            .await,
    );
    expect![[r#"
        name        eng
        everyone    no
        groups      eng
        users       -
        agents      -
        providers   anthropic
        models      * (any)
        max tokens  8192
        limits      $500 per user per 30d
                    400000 tokens per user per 1m
                    60 requests per group per 1m
        managed by  api
        updated <time>"#]]
    .assert_eq(&without_dates(&server.run(&["policies", "show", "eng"]).await));
    server.run(&["policies", "add", "all", "--everyone", "--provider", "x"]).await;
    expect![[r#"
        name        all
        everyone    yes
        groups      -
        users       -
        agents      -
        providers   x
        models      * (any)
        max tokens  -
        limits      -
        managed by  api
        updated <time>"#]]
    .assert_eq(&without_dates(&server.run(&["policies", "show", "all"]).await));
    // The server checks ranges and names the field.
    expect![[r#"
        error: limits[0].window: '30s' is shorter than one minute (1m), the shortest window
    "#]]
    .assert_eq(
        &server
            .run(&[
                "policies",
                "add",
                "p",
                "--everyone",
                "--provider",
                "x",
                "--limit",
                "tokens=5,window=30s",
            ])
            .await,
    );

    expect![[r#"
        no global limits
    "#]]
    .assert_eq(&server.run(&["limits", "list"]).await);
    expect![[r#"
        added global limit 'daily': $20.50 per user per 1d
    "#]]
    .assert_eq(
        &server
            .run(&["limits", "add", "daily", "--everyone", "--limit", "spend=20.5,window=24h"])
            .await,
    );
    server
        .run(&[
            "limits",
            "add",
            "bots",
            "--group",
            "bots",
            "--agent",
            "ci-bot",
            "--limit",
            "requests=60,per=group,window=1m",
        ])
        .await;
    expect![[r#"
        NAME   TARGETS                  LIMIT                         MANAGED BY
        bots   group:bots,agent:ci-bot  60 requests per group per 1m  api
        daily  everyone                 $20.50 per user per 1d        api
    "#]]
    .assert_eq(&server.run(&["limits", "list"]).await);
    expect![[r#"
        name        bots
        everyone    no
        groups      bots
        users       -
        agents      ci-bot
        limit       60 requests per group per 1m
        managed by  api
        updated <time>"#]]
    .assert_eq(&without_dates(&server.run(&["limits", "show", "bots"]).await));
    let json = server.run(&["limits", "show", "daily", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (&value["spend_usd"], &value["window"]),
        (&serde_json::json!(20.5), &serde_json::json!("1d"))
    );
    expect![[r#"
        error: a global limit needs at least one target: --group, --user, --agent or --everyone
    "#]]
    .assert_eq(&server.run(&["limits", "add", "x", "--limit", "requests=1,window=1m"]).await);
    expect![[r#"
        error: global limit 'daily' already exists
    "#]]
    .assert_eq(
        &server
            .run(&["limits", "add", "daily", "--everyone", "--limit", "requests=1,window=1m"])
            .await,
    );
    expect![[r#"
        removed global limit 'bots'
    "#]]
    .assert_eq(&server.run(&["limits", "rm", "bots"]).await);
    expect![[r#"
        error: global limit 'bots' does not exist
    "#]]
    .assert_eq(&server.run(&["limits", "rm", "bots"]).await);
    assert_eq!(server.store.global_limits().await.unwrap().len(), 1);
}

fn record(id: &str, at_ms: i64, principal: &str, cost: Option<i64>) -> store::UsageRecord {
    store::UsageRecord {
        id: id.into(),
        at_ms,
        principal_kind: Some("user".into()),
        principal: Some(principal.into()),
        groups: vec!["eng".into()],
        provider: Some("anthropic".into()),
        api: "anthropic".into(),
        endpoint: "messages".into(),
        model: Some("claude-sonnet-4-5".into()),
        status: 200,
        reason: "ok".into(),
        latency_ms: 900,
        input_tokens: 1000,
        output_tokens: 200,
        cache_read_tokens: 5000,
        cost_micro_usd: cost,
        usage_reported: true,
        ..store::UsageRecord::default()
    }
}

#[tokio::test]
async fn usage_and_logs_over_the_socket() {
    let server = Server::start().await;
    server
        .store
        .insert_usage(&[
            record("1", 1_700_000_000_000, "ada@example.com", Some(7_500)),
            record("2", 1_700_000_060_000, "ada@example.com", Some(2_500)),
            record("3", 1_700_000_120_000, "bob@example.com", None),
        ])
        .await
        .unwrap();
    expect![[r#"
        PRINCIPAL        REQUESTS  FAILED  INPUT  OUTPUT  CACHE WRITE  CACHE READ     COST  UNPRICED
        ada@example.com         2       0   2000     400            0       10000    $0.01         0
        bob@example.com         1       0   1000     200            0        5000  unknown         1
        TOTAL                   3       0   3000     600            0       15000    $0.01         1
        UNPRICED: requests to models without a known price; their cost is not in COST
    "#]]
    .assert_eq(&server.run(&["usage"]).await);
    expect![[r#"
        TIME                      PRINCIPAL        PROVIDER   MODEL              STATUS  REASON  INPUT  OUTPUT  CACHE R/W     COST  LATENCY
        2023-11-14T22:14:20.000Z  ada@example.com  anthropic  claude-sonnet-4-5     200  ok       1000     200     5000/0  $0.0025    900ms
        2023-11-14T22:13:20.000Z  ada@example.com  anthropic  claude-sonnet-4-5     200  ok       1000     200     5000/0  $0.0075    900ms
    "#]]
    .assert_eq(&server.run(&["logs", "--principal", "ada@example.com", "--since", "2023-11-14T23:00:00+01:00"]).await);
    let json = server.run(&["logs", "--limit", "1", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value[0]["id"], "3");
    assert_eq!(value[0]["cost_known"], false);
    // A duration reaches back from now: these records are from 2023.
    expect![[r#"
        no requests in this range
    "#]]
    .assert_eq(&server.run(&["logs", "--since", "24h"]).await);
    expect![[r#"
        error: --since takes an RFC 3339 time or a duration such as 30m, 24h, 7d: 'yesterday' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): expected a digit
    "#]]
    .assert_eq(&server.run(&["usage", "--since", "yesterday"]).await);
}

#[tokio::test]
async fn a_missing_server_is_reported_clearly() {
    let dir = temp_dir("nothing");
    let socket = dir.join("admin.sock");
    let out = run_admin(
        ["agentnet", "admin", "--socket", socket.to_str().unwrap(), "groups", "list"].into_iter(),
    )
    .await;
    assert!(
        out.starts_with(&format!(
            "error: cannot reach the agentnet server at {}: is `agentnet server` running?: ",
            socket.display()
        )),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let default = AdminArgs::try_parse_from_admin(&["groups", "list"]);
    assert_eq!(default.socket_path(), Path::new("./agentnet-data/admin.sock"));
}

#[test]
fn durations_reach_back_from_now() {
    let now = 1_700_000_000_000;
    assert_eq!(when::resolve("since", "24h", now).unwrap(), "2023-11-13T22:13:20.000Z");
    assert_eq!(when::resolve("since", "1h30m", now).unwrap(), "2023-11-14T20:43:20.000Z");
    assert_eq!(when::resolve("since", "2w", now).unwrap(), "2023-10-31T22:13:20.000Z");
    assert_eq!(
        when::resolve("since", "2023-11-14T00:00:00+02:00", now).unwrap(),
        "2023-11-13T22:00:00.000Z"
    );
    assert!(when::resolve("since", "0h", now).is_err());
    assert!(when::resolve("since", "24", now).is_err());
    assert!(when::resolve("since", "99999999999999999w", now).is_err());
}

impl AdminArgs {
    fn try_parse_from_admin(args: &[&str]) -> AdminArgs {
        let argv = ["agentnet", "admin"].into_iter().chain(args.iter().copied());
        let Command::Admin(admin) = Cli::try_parse_from(argv).unwrap().command else { panic!() };
        admin
    }
}

fn audit_entry(
    at_ms: i64,
    actor: &str,
    action: &str,
    kind: &str,
    target: &str,
) -> store::AuditEntry {
    let mut e = store::AuditEntry::new(store::ActorKind::AdminSocket, actor, action, kind, target);
    e.at_ms = at_ms;
    e
}

#[tokio::test]
async fn audit_over_the_socket() {
    let server = Server::start().await;
    expect![[r#"
        no audit entries match
    "#]]
    .assert_eq(&server.run(&["audit"]).await);

    let mut created = audit_entry(1_700_000_000_000, "uid:0", "group.create", "group", "eng");
    created.after =
        Some(serde_json::json!({"name": "eng", "description": "", "managed_by": "api"}));
    let mut updated = audit_entry(1_700_000_060_000, "uid:1000", "agent.update", "agent", "ci-bot");
    updated.before =
        Some(serde_json::json!({"name": "ci-bot", "description": "", "groups": ["eng"]}));
    updated.after = Some(serde_json::json!({"name": "ci-bot", "description": "CI", "groups": []}));
    let mut key =
        audit_entry(1_700_000_120_000, "uid:0", "provider.key.set", "provider", "anthropic");
    key.before = Some(serde_json::json!({"key_fingerprint": "…aaaa", "updated_at": "1"}));
    key.after = Some(serde_json::json!({"key_fingerprint": "…bbbb", "updated_at": "2"}));
    let mut scim =
        audit_entry(1_700_000_180_000, "scim", "scim.user.update", "user", "ada@example.com");
    scim.actor_kind = store::ActorKind::Scim;
    scim.before = Some(serde_json::json!({"active": true}));
    scim.after = Some(serde_json::json!({"active": true}));
    for e in [&created, &updated, &key, &scim] {
        server.store.record_audit(e).await.unwrap();
    }
    expect![[r#"
        TIME                      ACTOR     ACTION            TARGET                CHANGED
        2023-11-14T22:16:20.000Z  scim      scim.user.update  user:ada@example.com  (none)
        2023-11-14T22:15:20.000Z  uid:0     provider.key.set  provider:anthropic    key_fingerprint
        2023-11-14T22:14:20.000Z  uid:1000  agent.update      agent:ci-bot          description,groups
        2023-11-14T22:13:20.000Z  uid:0     group.create      group:eng             -
    "#]]
    .assert_eq(&server.run(&["audit"]).await);
    expect![[r#"
        TIME                      ACTOR  ACTION            TARGET              CHANGED
        2023-11-14T22:15:20.000Z  uid:0  provider.key.set  provider:anthropic  key_fingerprint
    "#]]
    .assert_eq(
        &server
            .run(&[
                "audit",
                "--actor",
                "uid:0",
                "--action",
                "provider",
                "--since",
                "2023-11-14T23:14:00+01:00",
            ])
            .await,
    );
    expect![[r#"
        TIME                      ACTOR     ACTION        TARGET        CHANGED
        2023-11-14T22:14:20.000Z  uid:1000  agent.update  agent:ci-bot  description,groups
    "#]]
    .assert_eq(&server.run(&["audit", "--target-kind", "agent", "--target", "ci-bot"]).await);
    // A duration reaches back from now: these entries are from 2023.
    expect![[r#"
        no audit entries match
    "#]]
    .assert_eq(&server.run(&["audit", "--since", "24h"]).await);
    expect![[r#"
        error: --until takes an RFC 3339 time or a duration such as 30m, 24h, 7d: 'soon' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): expected a digit
    "#]]
    .assert_eq(&server.run(&["audit", "--until", "soon"]).await);

    // --json: the full entries, before and after included.
    let json = server.run(&["audit", "--limit", "2", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value.as_array().unwrap().len(), 2);
    assert_eq!(value[1]["action"], "provider.key.set");
    assert_eq!(value[1]["actor_kind"], "admin-socket");
    assert_eq!(value[1]["before"]["key_fingerprint"], "…aaaa");
    assert_eq!(value[1]["after"]["key_fingerprint"], "…bbbb");
    assert_eq!(value[0]["actor_kind"], "scim");

    // A change made through the CLI is in the log, attributed to the socket.
    server.run(&["groups", "add", "ops", "--description", "on call"]).await;
    let json = server.run(&["audit", "--target", "ops", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value[0]["action"], "group.create");
    assert_eq!(value[0]["actor"], "local");
    assert_eq!(value[0]["before"], serde_json::Value::Null);
    assert_eq!(value[0]["after"]["description"], "on call");
}

#[tokio::test]
async fn scim_token_status_and_disable_over_the_socket() {
    let server = Server::start().await;
    expect![[r#"
        SCIM provisioning is off; `agentnet admin scim token` turns it on
    "#]]
    .assert_eq(&server.run(&["scim", "status"]).await);

    let first = server.run(&["scim", "token"]).await;
    let secret = |out: &str| out.lines().nth(2).unwrap().trim().to_owned();
    let first_secret = secret(&first);
    assert_eq!(first_secret.len(), 43, "{first}");
    assert!(server.store.scim_token_matches(&first_secret).await.unwrap());
    expect![[r#"
        SCIM provisioning is on. The SCIM token, shown this once (agentnet keeps only its hash):

            <secret>

        Paste it into your IdP's SCIM connector as the bearer token (Okta: authentication mode "HTTP
        Header"; Entra ID: "Secret Token"), with the SCIM base URL <admin listener URL>/scim/v2,
        e.g. https://agentnet.example.com:4001/scim/v2. Any previous SCIM token no longer works.
    "#]]
    .assert_eq(&first.replace(&first_secret, "<secret>"));

    // A second token revokes the first; --json carries the secret for scripts.
    let json: serde_json::Value =
        serde_json::from_str(&server.run(&["scim", "token", "--json"]).await).unwrap();
    let second_secret = json["token"].as_str().unwrap();
    assert!(!server.store.scim_token_matches(&first_secret).await.unwrap());
    assert!(server.store.scim_token_matches(second_secret).await.unwrap());
    let status = server.run(&["scim", "status"]).await;
    assert!(status.starts_with("SCIM provisioning is on (token created "), "{status}");
    assert!(!status.contains(second_secret));

    expect![[r#"
        SCIM provisioning is off: the SCIM token no longer works. Provisioned users and groups are kept; `agentnet admin scim token` turns it back on.
    "#]]
    .assert_eq(&server.run(&["scim", "disable"]).await);
    assert!(!server.store.scim_enabled().await.unwrap());
}

#[test]
fn the_stamping_column_says_when_no_assertion_is_signed() {
    let with = |enabled, preset, assertion| stamping(&Stamping { enabled, preset, assertion });
    assert_eq!(with(true, api_types::GatewayPreset::None, true), "on");
    assert_eq!(with(true, api_types::GatewayPreset::LiteLlm, false), "litellm, unsigned");
    assert_eq!(with(false, api_types::GatewayPreset::None, false), "off");
}
