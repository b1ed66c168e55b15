//! Tests for configuration loading.

use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load(text: &str, pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
    let dir = std::env::temp_dir().join(format!(
        "agentnet-config-{}-{}",
        std::process::id(),
        line_hash(text)
    ));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("agentnet.toml");
    std::fs::write(&path, text)?;
    let result = Config::load(Some(&path), &env(pairs));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn line_hash(text: &str) -> u64 {
    text.bytes().fold(1469598103934665603u64, |h, b| (h ^ u64::from(b)).wrapping_mul(1099511628211))
}

#[test]
fn defaults_without_a_file() {
    let config = Config::load(None, &env(&[])).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("./agentnet-data"));
    assert_eq!(config.ai_listener().unwrap().to_string(), "127.0.0.1:4000");
    assert_eq!(config.limits.max_request_bytes, 32 * 1024 * 1024);
    assert_eq!(config.database_path().unwrap(), PathBuf::from("./agentnet-data/agentnet.db"));
}

#[test]
fn file_and_env_overrides() {
    let config = load(
        r#"
        version = 1
        [listen]
        ai = "127.0.0.1:5000"
        [limits]
        response_timeout = "2m"
        [[providers]]
        name = "anthropic"
        kind = "anthropic"
        api_key_env = "ANTHROPIC_KEY"
        "#,
        &[
            ("AGENTNET__LISTEN__AI", "127.0.0.1:6000"),
            ("AGENTNET__OIDC__ISSUER", "http://127.0.0.1:9999"),
            ("AGENTNET__LIMITS__MAX_REQUEST_BYTES", "2048"),
            ("AGENTNET__OIDC__AUDIENCES", r#"["a", "b"]"#),
        ],
    )
    .unwrap();
    assert_eq!(config.ai_listener().unwrap().to_string(), "127.0.0.1:6000");
    assert_eq!(config.oidc.issuer.as_deref(), Some("http://127.0.0.1:9999"));
    assert_eq!(config.oidc.audiences, vec!["a", "b"]);
    assert_eq!(config.limits.max_request_bytes, 2048);
    assert_eq!(config.limits.response_timeout, std::time::Duration::from_secs(120));
    assert_eq!(config.providers[0].to_domain().unwrap().base_url, "https://api.anthropic.com");
}

#[test]
fn unknown_keys_are_named() {
    let err = load("[listen]\nai = \"127.0.0.1:1\"\nbogus = 1\n", &[]).unwrap_err().to_string();
    assert!(err.contains("unknown field `bogus`"), "{err}");
    let err = Config::load(None, &env(&[("AGENTNET__LISTEN__NOPE", "1")])).unwrap_err().to_string();
    assert!(
        err.contains("unknown field `nope`") && err.contains("AGENTNET__LISTEN__NOPE"),
        "{err}"
    );
    let err = Config::load(None, &env(&[("AGENTNET__TYPO", "1")])).unwrap_err().to_string();
    assert!(err.contains("unknown field `typo`"), "{err}");
}

#[test]
fn validation_errors_are_specific() {
    let cases = [
        ("version = 2", "unsupported config version 2"),
        ("[limits]\nconnect_timeout = \"5 parsecs\"", "unknown unit"),
        ("[[providers]]\nname = \"x\"\nkind = \"bard\"", "unknown kind 'bard'"),
        ("[[providers]]\nname = \"x\"\nkind = \"openai-compatible\"", "base_url is required"),
        ("[[providers]]\nname = \"x\"\nkind = \"openai\"\nbase_url = \"ftp://h\"", "http:// or https://"),
        ("[[providers]]\nname = \"a b\"\nkind = \"openai\"", "name 'a b' is invalid"),
        ("[[policies]]\nname = \"p\"\nproviders = [\"x\"]", "names no sources"),
        (
            "[[providers]]\nname = \"x\"\nkind = \"openai\"\n[[providers]]\nname = \"x\"\nkind = \"openai\"",
            "declared twice",
        ),
    ];
    for (text, want) in cases {
        let err = format!("{:#}", load(text, &[]).unwrap_err());
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("250ms").unwrap(), std::time::Duration::from_millis(250));
    assert_eq!(parse_duration("7d").unwrap(), std::time::Duration::from_secs(7 * 86400));
    assert!(parse_duration("").is_err());
    assert!(parse_duration("99999999999999999999d").is_err());
}

#[test]
fn the_readme_example_is_a_valid_config() {
    let readme = include_str!("../../../../README.md");
    let start = readme.find("```toml\n").expect("README has a TOML example") + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("closed");
    let config = load(&readme[start..end], &[]).unwrap();
    assert_eq!(config.policies[0].to_domain().unwrap().limits.len(), 4);
    assert_eq!(config.global_limits[0].to_domain().unwrap().limit.cap, 50_000_000_000);
}
