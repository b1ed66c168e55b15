//! Merging into Claude Code's and Codex's config files: other keys kept, order and comments
//! kept, re-runs change nothing, unparsable files refused.

use expect_test::{expect, Expect};

use super::*;

fn endpoint() -> Endpoint {
    Endpoint::parse("http://127.0.0.1:4000/").unwrap()
}

fn changes(merged: &Merged) -> String {
    merged.changes.iter().map(|c| format!("{c}\n")).collect()
}

fn check_claude(existing: Option<&str>, helper: &str, text: Expect, changed: Expect) -> String {
    let merged = claude_code::merge(existing, &endpoint(), helper).unwrap();
    text.assert_eq(&merged.text);
    changed.assert_eq(&changes(&merged));
    // Idempotent: running again on the result changes nothing.
    let again = claude_code::merge(Some(&merged.text), &endpoint(), helper).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.text, merged.text);
    merged.text
}

#[test]
fn endpoints_are_normalized() {
    assert_eq!(Endpoint::parse("http://127.0.0.1:4000/").unwrap().base(), "http://127.0.0.1:4000");
    assert_eq!(Endpoint::parse("https://ai.corp/v1/").unwrap().base(), "https://ai.corp");
    assert_eq!(Endpoint::parse("https://ai.corp/v1").unwrap().v1(), "https://ai.corp/v1");
    assert!(Endpoint::parse("127.0.0.1:4000").is_err());
    assert!(Endpoint::parse("http://").is_err());
}

#[test]
fn claude_code_fresh_file() {
    check_claude(
        None,
        claude_code::DEFAULT_KEY_HELPER,
        expect![[r#"
            {
              "apiKeyHelper": "agentnet token",
              "env": {
                "ANTHROPIC_BASE_URL": "http://127.0.0.1:4000",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"
              }
            }
        "#]],
        expect![[r#"
            apiKeyHelper = "agentnet token"
            env.ANTHROPIC_BASE_URL = "http://127.0.0.1:4000"
            env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1"
        "#]],
    );
}

#[test]
fn claude_code_keeps_other_keys_in_their_order() {
    let existing = r#"{
  "permissions": {"allow": ["Bash(npm run test:*)"], "deny": []},
  "model": "claude-sonnet-4-5",
  "env": {"DISABLE_TELEMETRY": "1", "ANTHROPIC_BASE_URL": "https://old.example.com", "N": 1.5},
  "apiKeyHelper": "~/bin/old-helper",
  "hooks": {}
}"#;
    check_claude(
        Some(existing),
        "agentnet token",
        expect![[r#"
            {
              "permissions": {
                "allow": [
                  "Bash(npm run test:*)"
                ],
                "deny": []
              },
              "model": "claude-sonnet-4-5",
              "env": {
                "DISABLE_TELEMETRY": "1",
                "ANTHROPIC_BASE_URL": "http://127.0.0.1:4000",
                "N": 1.5,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"
              },
              "apiKeyHelper": "agentnet token",
              "hooks": {}
            }
        "#]],
        expect![[r#"
            apiKeyHelper = "agentnet token" (was "~/bin/old-helper")
            env.ANTHROPIC_BASE_URL = "http://127.0.0.1:4000" (was "https://old.example.com")
            env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1"
        "#]],
    );
}

#[test]
fn claude_code_refuses_what_it_cannot_merge() {
    let err =
        |text: &str| format!("{:#}", claude_code::merge(Some(text), &endpoint(), "x").unwrap_err());
    expect!["it is not valid JSON (trailing comma at line 1 column 15); fix or move it, then run this again"]
        .assert_eq(&err(r#"{"model": "x",}"#));
    expect!["it does not hold a JSON object; fix or move it, then run this again"]
        .assert_eq(&err("[1]"));
    expect!["its `env` is not a JSON object; fix it, then run this again"]
        .assert_eq(&err(r#"{"env": "x"}"#));
    // An empty file is treated as an empty object.
    assert!(claude_code::merge(Some("\n"), &endpoint(), "x").is_ok());
}

#[test]
fn claude_code_notes_a_competing_key() {
    let merged =
        claude_code::merge(Some(r#"{"env":{"ANTHROPIC_API_KEY":"sk-ant-x"}}"#), &endpoint(), "x")
            .unwrap();
    assert_eq!(merged.notes.len(), 1);
    assert!(merged.notes[0].starts_with("env.ANTHROPIC_API_KEY is also set"));
    assert!(merged.text.contains("sk-ant-x"), "other keys are kept, even that one");
}

fn check_codex(existing: Option<&str>, token_env: Option<&str>, text: Expect, changed: Expect) {
    let merged = codex::merge(existing, &endpoint(), token_env, None).unwrap();
    text.assert_eq(&merged.text);
    changed.assert_eq(&changes(&merged));
    let again = codex::merge(Some(&merged.text), &endpoint(), token_env, None).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.text, merged.text);
    // The result is valid TOML that Codex's parser reads back.
    let parsed: toml::Table = toml::from_str(&merged.text).unwrap();
    assert_eq!(parsed["model_provider"].as_str(), Some("agentnet"));
}

#[test]
fn codex_fresh_file() {
    check_codex(
        None,
        None,
        expect![[r#"
            model_provider = "agentnet"

            [model_providers.agentnet]
            name = "agentnet"
            base_url = "http://127.0.0.1:4000/v1"
            wire_api = "responses"
            request_max_retries = 4
            stream_max_retries = 5

            [analytics]
            enabled = false

            [features]
            plugins = false
        "#]],
        expect![[r#"
            model_provider = "agentnet"
            model_providers.agentnet.name = "agentnet"
            model_providers.agentnet.base_url = "http://127.0.0.1:4000/v1"
            model_providers.agentnet.wire_api = "responses"
            model_providers.agentnet.request_max_retries = 4
            model_providers.agentnet.stream_max_retries = 5
            analytics.enabled = false
            features.plugins = false
        "#]],
    );
}

#[test]
fn codex_keeps_comments_and_unrelated_keys() {
    let existing = r#"# my codex config
model = "gpt-5-codex"   # the default model
model_provider = "openai" # was this

[model_providers.ollama]
name = "Ollama"
base_url = "http://localhost:11434/v1"

[model_providers.agentnet]
base_url = "http://old:4000/v1"
stream_max_retries = 10 # keep mine

[features]
web_search_request = true

[profiles.fast]
model = "gpt-5-mini"
"#;
    check_codex(
        Some(existing),
        Some("AGENTNET_TOKEN"),
        expect![[r#"
            # my codex config
            model = "gpt-5-codex"   # the default model
            model_provider = "agentnet" # was this

            [model_providers.ollama]
            name = "Ollama"
            base_url = "http://localhost:11434/v1"

            [model_providers.agentnet]
            base_url = "http://127.0.0.1:4000/v1"
            stream_max_retries = 10 # keep mine
            name = "agentnet"
            wire_api = "responses"
            env_key = "AGENTNET_TOKEN"
            request_max_retries = 4

            [features]
            web_search_request = true
            plugins = false

            [profiles.fast]
            model = "gpt-5-mini"

            [analytics]
            enabled = false
        "#]],
        expect![[r#"
            model_provider = "agentnet" (was "openai")
            model_providers.agentnet.name = "agentnet"
            model_providers.agentnet.base_url = "http://127.0.0.1:4000/v1" (was "http://old:4000/v1")
            model_providers.agentnet.wire_api = "responses"
            model_providers.agentnet.env_key = "AGENTNET_TOKEN"
            model_providers.agentnet.request_max_retries = 4
            analytics.enabled = false
            features.plugins = false
        "#]],
    );
}

#[test]
fn codex_refuses_what_it_cannot_merge() {
    let err = |text: &str| {
        format!("{:#}", codex::merge(Some(text), &endpoint(), None, None).unwrap_err())
    };
    assert!(
        err("model = ").starts_with("it is not valid TOML; fix or move it, then run this again: ")
    );
    expect!["`analytics` is not a table; fix it, then run this again"]
        .assert_eq(&err("analytics = true"));
    let bad_env = codex::merge(None, &endpoint(), Some("MY TOKEN"), None).unwrap_err();
    expect!["--token-env 'MY TOKEN' is not an environment variable name"]
        .assert_eq(&format!("{bad_env:#}"));
}

#[test]
fn writes_are_atomic_and_private_and_follow_symlinks() {
    use std::os::unix::fs::PermissionsExt;

    let dir = crate::admin::tests::temp_dir("setup-write");
    let nested = dir.join(".claude").join("settings.json");
    write_atomically(&nested, "{}\n").unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&nested), 0o600);
    assert_eq!(mode(nested.parent().unwrap()), 0o700);

    // An existing file keeps its mode; a symlink keeps pointing at the real file.
    let real = dir.join("dotfiles-settings.json");
    std::fs::write(&real, "{}").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    write_atomically(&link, "{\"a\": 1}\n").unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "{\"a\": 1}\n");
    assert_eq!(mode(&real), 0o644);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn codex_model_is_set_only_when_asked() {
    let without = codex::merge(Some("model = \"o3\"\n"), &endpoint(), None, None).unwrap();
    assert!(without.text.starts_with("model = \"o3\""), "{}", without.text);
    let with = codex::merge(Some("model = \"o3\"\n"), &endpoint(), None, Some("gpt-5.5")).unwrap();
    let parsed: toml::Table = toml::from_str(&with.text).unwrap();
    assert_eq!(parsed["model"].as_str(), Some("gpt-5.5"));
    assert!(codex::merge(None, &endpoint(), None, Some(" ")).is_err());
}
