//! Validation messages, checked as people will read them.

use expect_test::{expect, Expect};

use super::*;

fn check(result: Result<impl std::fmt::Debug, Error>, expect: Expect) {
    let actual = match result {
        Ok(value) => format!("ok {value:?}"),
        Err(err) => err.to_string(),
    };
    expect.assert_eq(&actual);
}

#[test]
fn names() {
    check(name("name", "anthropic-prod.v2_x"), expect!["ok ()"]);
    check(name("name", ""), expect!["name: must not be empty"]);
    check(
        name("name", "has space"),
        expect!["name: 'has space' contains ' '; use only letters, digits, '.', '_' and '-'"],
    );
    check(
        name("name", "a/b"),
        expect!["name: 'a/b' contains '/'; use only letters, digits, '.', '_' and '-'"],
    );
    check(name("name", &"x".repeat(65)), expect!["name: must be at most 64 characters"]);
    check(
        name_matches_path("a", Some("b")),
        expect!["name: 'b' does not match the name in the path, 'a'"],
    );
    check(name_matches_path("a", None), expect!["ok ()"]);
}

#[test]
fn base_urls() {
    check(base_url("https://api.anthropic.com/"), expect![[r#"ok "https://api.anthropic.com""#]]);
    check(base_url("http://127.0.0.1:11434"), expect![[r#"ok "http://127.0.0.1:11434""#]]);
    check(base_url("https://openrouter.ai/api"), expect![[r#"ok "https://openrouter.ai/api""#]]);
    check(base_url("http://[::1]:8080"), expect![[r#"ok "http://[::1]:8080""#]]);
    check(base_url("ftp://x"), expect!["base_url: 'ftp://x' must start with https:// or http://"]);
    check(
        base_url("api.openai.com"),
        expect!["base_url: 'api.openai.com' must start with https:// or http://"],
    );
    check(base_url("https://"), expect!["base_url: 'https://' has no host"]);
    check(base_url("https://:443/x"), expect!["base_url: 'https://:443/x' has no host"]);
    // A base URL ending in /v1 is kept as given: the proxy does not add a second one.
    check(base_url("https://api.openai.com/v1"), expect![[r#"ok "https://api.openai.com/v1""#]]);
    check(
        base_url("https://openrouter.ai/api/v1/"),
        expect![[r#"ok "https://openrouter.ai/api/v1""#]],
    );
    check(
        base_url("https://u:p@host"),
        expect!["base_url: must not carry credentials; set the provider's key instead"],
    );
    check(
        base_url("https://host/?a=b"),
        expect!["base_url: 'https://host/?a=b' must not have a query or fragment"],
    );
    check(base_url("https://ho st"), expect!["base_url: must not contain whitespace"]);
}

#[test]
fn prices() {
    check(usd_per_mtok("p", 3.0), expect!["ok 3000000"]);
    check(usd_per_mtok("p", 0.075), expect!["ok 75000"]);
    check(usd_per_mtok("p", 0.0), expect!["ok 0"]);
    check(
        usd_per_mtok("p", -1.0),
        expect!["p: must be a non-negative number of USD per million tokens"],
    );
    check(
        usd_per_mtok("p", f64::NAN),
        expect!["p: must be a non-negative number of USD per million tokens"],
    );
    check(usd_per_mtok("p", 1e7), expect!["p: must be at most 1000000 USD per million tokens"]);
}

#[test]
fn references_and_keys() {
    check(
        references("groups", vec!["Data Science".into(), "eng".into(), "eng".into()], true),
        expect![[r#"ok ["Data Science", "eng"]"#]],
    );
    check(
        references("users", vec!["a b".into()], false),
        expect![[r#"users[0]: "a b" contains whitespace or control characters"#]],
    );
    check(
        references("groups", vec![" eng".into()], true),
        expect!["groups[0]: ' eng' has surrounding whitespace"],
    );
    check(references("models", vec!["".into()], false), expect!["models[0]: must not be empty"]);
    check(
        api_key("api_key", "sk-live\n"),
        expect!["api_key: must not contain whitespace or control characters (a trailing newline?)"],
    );
    check(api_key("api_key", ""), expect!["api_key: must not be empty"]);
}
