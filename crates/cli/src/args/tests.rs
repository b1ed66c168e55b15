//! Command-line parsing, through `Cli::try_parse_from`.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("agentnet").chain(args.iter().copied()))
}

fn admin(args: &[&str]) -> AdminArgs {
    match parse(args).unwrap().command {
        Command::Admin(admin) => admin,
        other => panic!("not an admin command: {other:?}"),
    }
}

#[test]
fn server_takes_an_optional_config() {
    assert!(matches!(parse(&["server"]).unwrap().command, Command::Server { config: None }));
    match parse(&["server", "--config", "/etc/agentnet.toml"]).unwrap().command {
        Command::Server { config } => assert_eq!(config, Some(PathBuf::from("/etc/agentnet.toml"))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn admin_socket_defaults_to_the_data_dir() {
    let a = admin(&["admin", "providers", "list"]);
    assert_eq!(a.socket_path(), PathBuf::from("./agentnet-data/admin.sock"));
    let a = admin(&["admin", "--data-dir", "/var/lib/agentnet", "groups", "list"]);
    assert_eq!(a.socket_path(), PathBuf::from("/var/lib/agentnet/admin.sock"));
    // Global flags may also follow the subcommand.
    let a = admin(&["admin", "providers", "list", "--socket", "/run/agentnet.sock", "--json"]);
    assert_eq!(a.socket_path(), PathBuf::from("/run/agentnet.sock"));
    assert!(a.json);
    assert!(parse(&["admin", "--socket", "/s", "--data-dir", "/d", "groups", "list"]).is_err());
}

#[test]
fn providers_add_parses_kinds_presets_and_repeated_models() {
    let a = admin(&[
        "admin",
        "providers",
        "add",
        "litellm",
        "--kind",
        "openai-compatible",
        "--base-url",
        "http://litellm:4000",
        "--model",
        "gpt-*",
        "--model",
        "claude-*",
        "--preset",
        "litellm",
        "--api",
        "openai",
        "--api",
        "anthropic",
    ]);
    let AdminCommand::Providers(ProvidersCommand::Add(add)) = a.command else { panic!() };
    assert_eq!(add.name, "litellm");
    assert_eq!(add.kind, ProviderKind::OpenAiCompatible);
    assert_eq!(add.models, ["gpt-*", "claude-*"]);
    assert_eq!(add.preset, GatewayPreset::LiteLlm);
    assert_eq!(add.apis, [api_types::Api::OpenAi, api_types::Api::Anthropic]);
    assert!(!add.no_stamping);

    let a = admin(&[
        "admin",
        "providers",
        "add",
        "a",
        "--kind",
        "anthropic",
        "--base-url",
        "https://x",
        "--no-stamping",
    ]);
    let AdminCommand::Providers(ProvidersCommand::Add(add)) = a.command else { panic!() };
    assert_eq!(add.preset, GatewayPreset::None);
    assert!(add.no_stamping);
    assert!(!add.no_assertion);

    let base = ["admin", "providers", "add", "a", "--kind", "openai", "--base-url", "https://x"];
    let a = admin(&[&base[..], &["--no-assertion"]].concat());
    let AdminCommand::Providers(ProvidersCommand::Add(add)) = a.command else { panic!() };
    assert!(add.no_assertion && !add.no_stamping);
    // Without stamping there is no assertion to leave out.
    assert!(parse(&[&base[..], &["--no-stamping", "--no-assertion"]].concat()).is_err());

    let err =
        parse(&["admin", "providers", "add", "a", "--kind", "gemini", "--base-url", "https://x"])
            .unwrap_err();
    assert!(
        err.to_string()
            .contains("possible values: anthropic, openai, azure-openai, openai-compatible"),
        "{err}"
    );
    assert!(
        parse(&["admin", "providers", "add", "a", "--kind", "openai"]).is_err(),
        "--base-url is required"
    );
}

#[test]
fn set_key_never_takes_the_key_as_an_argument() {
    let a = admin(&["admin", "providers", "set-key", "openai", "--from-env", "OPENAI_API_KEY"]);
    let AdminCommand::Providers(ProvidersCommand::SetKey { name, from_env }) = a.command else {
        panic!()
    };
    assert_eq!((name.as_str(), from_env.as_deref()), ("openai", Some("OPENAI_API_KEY")));
    assert!(parse(&["admin", "providers", "set-key", "openai", "sk-live-123"]).is_err());
    assert!(parse(&["admin", "providers", "set-key", "openai", "--key", "sk-live-123"]).is_err());
}

#[test]
fn policies_add_collects_sources_and_requires_a_provider() {
    let a = admin(&[
        "admin",
        "policies",
        "add",
        "eng",
        "--group",
        "eng",
        "--group",
        "sre",
        "--user",
        "ada@x.io",
        "--agent",
        "ci",
        "--provider",
        "anthropic",
        "--model",
        "claude-*",
    ]);
    let AdminCommand::Policies(PoliciesCommand::Add(add)) = a.command else { panic!() };
    assert_eq!(add.groups, ["eng", "sre"]);
    assert_eq!(add.users, ["ada@x.io"]);
    assert_eq!(add.agents, ["ci"]);
    assert!(!add.everyone);
    assert_eq!(add.providers, ["anthropic"]);
    assert_eq!(add.models, ["claude-*"]);
    assert!(parse(&["admin", "policies", "add", "p", "--everyone"]).is_err());
}

#[test]
fn limit_specs_parse_into_the_dto() {
    for (spec, limit) in [
        ("spend=500,per=user,window=30d", Limit::spend(500.0, LimitPer::User, "30d")),
        ("tokens=400000,window=1m", Limit::tokens(400_000, LimitPer::User, "1m")),
        ("requests=60,per=group,window=1m", Limit::requests(60, LimitPer::Group, "1m")),
        // Any order, spaces around parts, `$`, `spend_usd`, a trailing comma.
        ("window=24h, per=group, spend_usd=$12.50,", Limit::spend(12.5, LimitPer::Group, "24h")),
        ("requests=0,window=1d", Limit::requests(0, LimitPer::User, "1d")),
        // The server checks ranges; the spec only its syntax.
        ("tokens=1,window=30s", Limit::tokens(1, LimitPer::User, "30s")),
    ] {
        assert_eq!(limit_spec(spec), Ok(limit), "{spec}");
    }
}

#[test]
fn bad_limit_specs_say_what_is_wrong() {
    let errors: Vec<String> = [
        "",
        "window=30d",
        "spend=5,tokens=5,window=1d",
        "tokens=5",
        "tokens=5,window=1w",
        "tokens=5,window=30",
        "tokens=5,tokens=6,window=1m",
        "tokens=5k,window=1m",
        "tokens=-5,window=1m",
        "spend=-1,window=1m",
        "spend=inf,window=1m",
        "requests=5,per=team,window=1m",
        "requests=5,window=1m,burst=10",
        "requests 5",
    ]
    .iter()
    .map(|spec| format!("{spec:?}: {}", limit_spec(spec).unwrap_err()))
    .collect();
    expect_test::expect![[r#"
        [
            "\"\": set exactly one of spend=USD, tokens=N or requests=N, e.g. spend=500,window=30d",
            "\"window=30d\": set exactly one of spend=USD, tokens=N or requests=N, e.g. spend=500,window=30d",
            "\"spend=5,tokens=5,window=1d\": set exactly one of spend=USD, tokens=N or requests=N, e.g. spend=500,window=30d",
            "\"tokens=5\": window is required, e.g. window=30d (units s, m, h, d)",
            "\"tokens=5,window=1w\": window: '1w' is not a window: use a whole number and a unit s, m, h or d, e.g. 1m, 24h, 30d",
            "\"tokens=5,window=30\": window: '30' is not a window: use a whole number and a unit s, m, h or d, e.g. 1m, 24h, 30d",
            "\"tokens=5,tokens=6,window=1m\": 'tokens' is given twice",
            "\"tokens=5k,window=1m\": tokens=5k: expected a whole number",
            "\"tokens=-5,window=1m\": tokens=-5: expected a whole number",
            "\"spend=-1,window=1m\": spend=-1: expected an amount of USD, e.g. 500 or 12.50",
            "\"spend=inf,window=1m\": spend=inf: expected an amount of USD, e.g. 500 or 12.50",
            "\"requests=5,per=team,window=1m\": per=team: expected user or group",
            "\"requests=5,window=1m,burst=10\": unknown key 'burst' (keys: spend, tokens, requests, per, window)",
            "\"requests 5\": 'requests 5' is not key=value (keys: spend, tokens, requests, per, window)",
        ]
    "#]]
    .assert_debug_eq(&errors);
}

#[test]
fn policies_add_takes_max_tokens_and_repeated_limits() {
    let a = admin(&[
        "admin",
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
        "requests=60,per=group,window=1m",
    ]);
    let AdminCommand::Policies(PoliciesCommand::Add(add)) = a.command else { panic!() };
    assert_eq!(add.max_tokens, Some(8192));
    assert_eq!(
        add.limits,
        [Limit::spend(500.0, LimitPer::User, "30d"), Limit::requests(60, LimitPer::Group, "1m"),]
    );
    let err = parse(&[
        "admin",
        "policies",
        "add",
        "eng",
        "--everyone",
        "--provider",
        "x",
        "--limit",
        "tokens=5",
    ])
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "invalid value 'tokens=5' for '--limit <SPEC>': window is required, e.g. window=30d"
        ),
        "{err}"
    );
}

#[test]
fn limits_add_takes_targets_and_exactly_one_limit() {
    let a = admin(&[
        "admin",
        "limits",
        "add",
        "contractors",
        "--group",
        "contractors",
        "--user",
        "ada@x.io",
        "--agent",
        "ci",
        "--everyone",
        "--limit",
        "spend=20,window=1d",
    ]);
    let AdminCommand::Limits(LimitsCommand::Add(add)) = a.command else { panic!() };
    assert_eq!(add.name, "contractors");
    assert_eq!(
        (&add.groups[..], &add.users[..], &add.agents[..], add.everyone),
        (
            &["contractors".to_owned()][..],
            &["ada@x.io".to_owned()][..],
            &["ci".to_owned()][..],
            true
        )
    );
    assert_eq!(add.limit, Limit::spend(20.0, LimitPer::User, "1d"));
    assert!(parse(&["admin", "limits", "add", "x", "--everyone"]).is_err(), "--limit is required");
    assert!(
        parse(&[
            "admin",
            "limits",
            "add",
            "x",
            "--everyone",
            "--limit",
            "requests=1,window=1m",
            "--limit",
            "tokens=1,window=1m"
        ])
        .is_err(),
        "one --limit per global limit"
    );
    for (args, expected) in [
        (&["admin", "limits", "list"][..], "list"),
        (&["admin", "limits", "show", "x"][..], "show x"),
        (&["admin", "limits", "rm", "x"][..], "rm x"),
    ] {
        let got = match admin(args).command {
            AdminCommand::Limits(LimitsCommand::List) => "list".to_owned(),
            AdminCommand::Limits(LimitsCommand::Show { name }) => format!("show {name}"),
            AdminCommand::Limits(LimitsCommand::Rm { name }) => format!("rm {name}"),
            other => panic!("{other:?}"),
        };
        assert_eq!(got, expected);
    }
}

#[test]
fn usage_and_logs_share_filters() {
    let a = admin(&[
        "admin",
        "usage",
        "--principal",
        "ada@x.io",
        "--since",
        "24h",
        "--limit",
        "5",
        "--json",
    ]);
    let AdminCommand::Usage(f) = a.command else { panic!() };
    assert_eq!(f.principal.as_deref(), Some("ada@x.io"));
    assert_eq!(f.since.as_deref(), Some("24h"));
    assert_eq!(f.limit, Some(5));
    assert!(a.json);
    let a = admin(&[
        "admin",
        "logs",
        "--provider",
        "openai",
        "--reason",
        "no_policy",
        "--group",
        "eng",
    ]);
    let AdminCommand::Logs(f) = a.command else { panic!() };
    assert_eq!(
        (f.provider.as_deref(), f.reason.as_deref(), f.group.as_deref()),
        (Some("openai"), Some("no_policy"), Some("eng"))
    );
    assert!(parse(&["admin", "logs", "--limit", "many"]).is_err());
}

#[test]
fn setup_defaults_to_the_local_endpoint() {
    match parse(&["setup", "claude-code"]).unwrap().command {
        Command::Setup {
            tool: SetupTool::ClaudeCode { endpoint, token_command, overlay, dry_run },
        } => {
            assert_eq!(endpoint, DEFAULT_ENDPOINT);
            assert_eq!(token_command, None);
            assert!(!overlay && !dry_run);
        }
        other => panic!("{other:?}"),
    }
    // Through the overlay there is no token to configure.
    assert!(parse(&["setup", "claude-code", "--overlay", "--token-command", "x"]).is_err());
    assert!(matches!(
        parse(&["setup", "claude-code", "--overlay"]).unwrap().command,
        Command::Setup { tool: SetupTool::ClaudeCode { overlay: true, .. } }
    ));
    match parse(&[
        "setup",
        "codex",
        "--endpoint",
        "http://100.64.0.1",
        "--token-env",
        "AGENTNET_TOKEN",
    ])
    .unwrap()
    .command
    {
        Command::Setup { tool: SetupTool::Codex { endpoint, token_env, .. } } => {
            assert_eq!(endpoint, "http://100.64.0.1");
            assert_eq!(token_env.as_deref(), Some("AGENTNET_TOKEN"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn usage_takes_at_most_one_token_source() {
    let usage = |args: &[&str]| match parse(args).unwrap().command {
        Command::Usage(usage) => usage,
        other => panic!("not usage: {other:?}"),
    };
    let u = usage(&["usage", "--token-env", "AGENTNET_TOKEN"]);
    assert_eq!(u.server, None);
    assert_eq!(u.token_env.as_deref(), Some("AGENTNET_TOKEN"));
    assert_eq!(u.token_command, None);
    assert!(!u.json);

    let u = usage(&[
        "usage",
        "--server",
        "https://gateway.example.com:4001",
        "--token-command",
        "gcloud auth print-identity-token",
        "--json",
    ]);
    assert_eq!(u.server.as_deref(), Some("https://gateway.example.com:4001"));
    assert_eq!(u.token_command.as_deref(), Some("gcloud auth print-identity-token"));
    assert!(u.json);

    // Neither: the `agentnet login` session.
    let u = usage(&["usage"]);
    assert_eq!((u.server, u.token_env, u.token_command), (None, None, None));
    let both = parse(&["usage", "--token-env", "T", "--token-command", "echo t"]).unwrap_err();
    assert!(both.to_string().contains("cannot be used with"), "{both}");
    // The token itself is never an argument.
    assert!(parse(&["usage", "--token", "eyJ..."]).is_err());
}

#[test]
fn login_and_enroll() {
    let Command::Login(l) = parse(&["login"]).unwrap().command else { panic!() };
    assert_eq!((l.server, l.browser, l.no_open), (None, false, false));
    let Command::Login(l) =
        parse(&["login", "--server", "https://gw:4001", "--browser", "--no-open"]).unwrap().command
    else {
        panic!()
    };
    assert_eq!((l.server.as_deref(), l.browser, l.no_open), (Some("https://gw:4001"), true, true));
    assert!(matches!(parse(&["logout"]).unwrap().command, Command::Logout));
    assert!(matches!(parse(&["token"]).unwrap().command, Command::Token));
    assert!(matches!(
        parse(&["whoami", "--json"]).unwrap().command,
        Command::Whoami { json: true }
    ));

    let Command::Enroll(e) = parse(&[
        "enroll",
        "--server",
        "http://gw:4001",
        "--setup-key-env",
        "AGENTNET_SETUP_KEY",
        "--name",
        "runner-1",
    ])
    .unwrap()
    .command
    else {
        panic!()
    };
    assert_eq!(e.setup_key_env.as_deref(), Some("AGENTNET_SETUP_KEY"));
    assert_eq!(e.name.as_deref(), Some("runner-1"));
    let Command::Enroll(e) =
        parse(&["enroll", "--server", "http://gw", "--setup-key-file", "-"]).unwrap().command
    else {
        panic!()
    };
    assert_eq!(e.setup_key_file, Some(PathBuf::from("-")));
    // Exactly one key source, and never the key itself.
    let none = parse(&["enroll", "--server", "http://gw"]).unwrap_err().to_string();
    assert!(none.contains("--setup-key-env <VAR>|--setup-key-file <FILE>"), "{none}");
    assert!(parse(&["enroll", "--server", "s", "--setup-key-env", "K", "--setup-key-file", "f"])
        .is_err());
    assert!(parse(&["enroll", "--server", "s", "--setup-key", "agentnet_sk_x"]).is_err());
    assert!(parse(&["enroll", "--setup-key-env", "K"]).is_err(), "--server is required");
}

#[test]
fn admin_accounts_setup_keys_and_sessions() {
    let a = admin(&[
        "admin",
        "users",
        "create",
        "alice",
        "--email",
        "alice@example.com",
        "--group",
        "eng",
        "--group",
        "sre",
        "--password-stdin",
    ]);
    let AdminCommand::Users(UsersCommand::Create(c)) = a.command else { panic!() };
    assert_eq!((c.name.as_str(), c.email.as_str()), ("alice", "alice@example.com"));
    assert_eq!(c.groups, ["eng", "sre"]);
    assert!(c.password_stdin);
    assert!(parse(&["admin", "users", "create", "bob"]).is_err(), "--email is required");
    assert!(parse(&["admin", "users", "update", "bob", "--activate", "--deactivate"]).is_err());
    assert!(parse(&["admin", "users", "update", "bob", "--group", "x", "--no-groups"]).is_err());
    assert!(parse(&["admin", "users", "set-password", "bob", "--password", "x"]).is_err());

    let a = admin(&[
        "admin",
        "setup-keys",
        "create",
        "runners",
        "--group",
        "ci",
        "--uses",
        "10",
        "--expires-in",
        "7d",
    ]);
    let AdminCommand::SetupKeys(SetupKeysCommand::Create(k)) = a.command else { panic!() };
    assert_eq!((k.uses, k.expires_in.as_deref(), k.agent), (Some(10), Some("7d"), None));
    let bad = parse(&["admin", "setup-keys", "create", "x", "--expires-in", "1 week"]).unwrap_err();
    assert!(bad.to_string().contains("'1 week' is not a duration"), "{bad}");

    let a = admin(&["admin", "sessions", "list", "--name", "alice@example.com", "--all"]);
    let AdminCommand::Sessions(SessionsCommand::List { name, all }) = a.command else { panic!() };
    assert_eq!((name.as_deref(), all), (Some("alice@example.com"), true));
    assert!(parse(&["admin", "sessions", "revoke"]).is_err());
    assert!(parse(&["admin", "sessions", "revoke", "ses_1", "--name", "a"]).is_err());
    let a = admin(&["admin", "sessions", "revoke", "--name", "a@b.c"]);
    let AdminCommand::Sessions(SessionsCommand::Revoke { id, name }) = a.command else { panic!() };
    assert_eq!((id, name.as_deref()), (None, Some("a@b.c")));

    // A remote admin listener instead of the socket.
    let a = admin(&["admin", "--url", "https://gw:4001", "sessions", "list"]);
    assert_eq!(a.url.as_deref(), Some("https://gw:4001"));
    assert!(parse(&["admin", "--url", "https://gw", "--socket", "/s", "groups", "list"]).is_err());
}

#[test]
fn admin_usage_filters_by_policy() {
    let a = admin(&["admin", "usage", "--policy", "eng", "--principal", "ada@x.io"]);
    let AdminCommand::Usage(filters) = a.command else { panic!() };
    let query = crate::admin::usage_query(filters, 0).unwrap();
    assert_eq!(query.to_query_string(), "principal=ada%40x.io&policy=eng");
}

#[test]
fn audit_takes_its_filters_and_the_global_json_flag() {
    let a = admin(&[
        "admin",
        "audit",
        "--actor",
        "uid:0",
        "--action",
        "provider.key",
        "--target-kind",
        "provider",
        "--target",
        "anthropic",
        "--since",
        "7d",
        "--until",
        "2025-06-01T00:00:00Z",
        "--limit",
        "20",
        "--json",
    ]);
    let AdminCommand::Audit(f) = a.command else { panic!() };
    assert_eq!(
        (f.actor.as_deref(), f.action.as_deref(), f.target_kind.as_deref(), f.target.as_deref()),
        (Some("uid:0"), Some("provider.key"), Some("provider"), Some("anthropic"))
    );
    assert_eq!(
        (f.since.as_deref(), f.until.as_deref(), f.limit),
        (Some("7d"), Some("2025-06-01T00:00:00Z"), Some(20))
    );
    assert!(a.json);
    let a = admin(&["admin", "audit"]);
    let AdminCommand::Audit(f) = a.command else { panic!() };
    assert!(f.actor.is_none() && f.action.is_none() && f.since.is_none() && f.limit.is_none());
    assert!(!a.json);
    assert!(parse(&["admin", "audit", "--limit", "all"]).is_err());
    assert!(parse(&["admin", "audit", "--principal", "x"]).is_err());
}
