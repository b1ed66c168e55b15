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
    assert!(matches!(
        parse(&["server"]).unwrap().command,
        Command::Server { config: None }
    ));
    match parse(&["server", "--config", "/etc/agentnet.toml"])
        .unwrap()
        .command
    {
        Command::Server { config } => assert_eq!(config, Some(PathBuf::from("/etc/agentnet.toml"))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn admin_socket_defaults_to_the_data_dir() {
    let a = admin(&["admin", "providers", "list"]);
    assert_eq!(a.socket_path(), PathBuf::from("./agentnet-data/admin.sock"));
    let a = admin(&["admin", "--data-dir", "/var/lib/agentnet", "groups", "list"]);
    assert_eq!(
        a.socket_path(),
        PathBuf::from("/var/lib/agentnet/admin.sock")
    );
    // Global flags may also follow the subcommand.
    let a = admin(&[
        "admin",
        "providers",
        "list",
        "--socket",
        "/run/agentnet.sock",
        "--json",
    ]);
    assert_eq!(a.socket_path(), PathBuf::from("/run/agentnet.sock"));
    assert!(a.json);
    assert!(parse(&[
        "admin",
        "--socket",
        "/s",
        "--data-dir",
        "/d",
        "groups",
        "list"
    ])
    .is_err());
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
    let AdminCommand::Providers(ProvidersCommand::Add(add)) = a.command else {
        panic!()
    };
    assert_eq!(add.name, "litellm");
    assert_eq!(add.kind, ProviderKind::OpenAiCompatible);
    assert_eq!(add.models, ["gpt-*", "claude-*"]);
    assert_eq!(add.preset, GatewayPreset::LiteLlm);
    assert_eq!(
        add.apis,
        [api_types::Api::OpenAi, api_types::Api::Anthropic]
    );
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
    let AdminCommand::Providers(ProvidersCommand::Add(add)) = a.command else {
        panic!()
    };
    assert_eq!(add.preset, GatewayPreset::None);
    assert!(add.no_stamping);

    let err = parse(&[
        "admin",
        "providers",
        "add",
        "a",
        "--kind",
        "gemini",
        "--base-url",
        "https://x",
    ])
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
    let a = admin(&[
        "admin",
        "providers",
        "set-key",
        "openai",
        "--from-env",
        "OPENAI_API_KEY",
    ]);
    let AdminCommand::Providers(ProvidersCommand::SetKey { name, from_env }) = a.command else {
        panic!()
    };
    assert_eq!(
        (name.as_str(), from_env.as_deref()),
        ("openai", Some("OPENAI_API_KEY"))
    );
    assert!(parse(&["admin", "providers", "set-key", "openai", "sk-live-123"]).is_err());
    assert!(parse(&[
        "admin",
        "providers",
        "set-key",
        "openai",
        "--key",
        "sk-live-123"
    ])
    .is_err());
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
    let AdminCommand::Policies(PoliciesCommand::Add(add)) = a.command else {
        panic!()
    };
    assert_eq!(add.groups, ["eng", "sre"]);
    assert_eq!(add.users, ["ada@x.io"]);
    assert_eq!(add.agents, ["ci"]);
    assert!(!add.everyone);
    assert_eq!(add.providers, ["anthropic"]);
    assert_eq!(add.models, ["claude-*"]);
    assert!(parse(&["admin", "policies", "add", "p", "--everyone"]).is_err());
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
    let AdminCommand::Usage(f) = a.command else {
        panic!()
    };
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
    let AdminCommand::Logs(f) = a.command else {
        panic!()
    };
    assert_eq!(
        (
            f.provider.as_deref(),
            f.reason.as_deref(),
            f.group.as_deref()
        ),
        (Some("openai"), Some("no_policy"), Some("eng"))
    );
    assert!(parse(&["admin", "logs", "--limit", "many"]).is_err());
}

#[test]
fn setup_defaults_to_the_local_endpoint() {
    match parse(&["setup", "claude-code"]).unwrap().command {
        Command::Setup {
            tool:
                SetupTool::ClaudeCode {
                    endpoint,
                    token_command,
                    dry_run,
                },
        } => {
            assert_eq!(endpoint, DEFAULT_ENDPOINT);
            assert_eq!(token_command, None);
            assert!(!dry_run);
        }
        other => panic!("{other:?}"),
    }
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
        Command::Setup {
            tool:
                SetupTool::Codex {
                    endpoint,
                    token_env,
                    ..
                },
        } => {
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
