//! Tests for request facts and the `include_usage` splice.

use expect_test::{expect, Expect};
use proptest::prelude::*;

use super::*;

fn check(body: &str, expect: Expect) {
    let actual = match request_facts(body.as_bytes()) {
        Ok(facts) => format!("{facts:?}"),
        Err(err) => format!("error: {err}"),
    };
    expect.assert_eq(&actual);
}

fn check_inject(body: &str, expect: Expect) {
    let actual = match inject_include_usage(body.as_bytes()) {
        Ok(out) => String::from_utf8(out).unwrap_or_else(|e| format!("not utf-8: {e}")),
        Err(err) => format!("error: {err}"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn anthropic_messages_request() {
    check(
        r#"{"model":"claude-sonnet-4-5","max_tokens":64000,"stream":true,"thinking":{"type":"adaptive"},"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"Bash","input_schema":{"type":"object"}}]}"#,
        expect![[
            r#"RequestFacts { model: Some("claude-sonnet-4-5"), stream: true, max_tokens: Some(64000), include_usage: false, input_bytes: 196 }"#
        ]],
    );
}

#[test]
fn openai_chat_request_with_stream_options() {
    check(
        r#" { "messages": [], "model" : "gpt-4o", "stream": true,
              "stream_options": {"include_usage": true}, "max_completion_tokens": 100 } "#,
        expect![[
            r#"RequestFacts { model: Some("gpt-4o"), stream: true, max_tokens: Some(100), include_usage: true, input_bytes: 143 }"#
        ]],
    );
}

#[test]
fn responses_request_and_escaped_model() {
    check(
        r#"{"model":"gpt-5\u002e5","input":[{"role":"developer","content":"x"}],"stream":false,"max_output_tokens":2048,"store":false}"#,
        expect![[
            r#"RequestFacts { model: Some("gpt-5.5"), stream: false, max_tokens: Some(2048), include_usage: false, input_bytes: 123 }"#
        ]],
    );
}

#[test]
fn nulls_and_absent_fields() {
    check(
        r#"{"model":null,"stream":null,"max_tokens":null,"stream_options":null}"#,
        expect!["RequestFacts { model: None, stream: false, max_tokens: None, include_usage: false, input_bytes: 68 }"],
    );
    check(
        "{}",
        expect![[
            r#"RequestFacts { model: None, stream: false, max_tokens: None, include_usage: false, input_bytes: 2 }"#
        ]],
    );
}

#[test]
fn largest_token_cap_counts() {
    check(
        r#"{"max_tokens":10,"max_completion_tokens":300,"max_output_tokens":20}"#,
        expect![[
            r#"RequestFacts { model: None, stream: false, max_tokens: Some(300), include_usage: false, input_bytes: 68 }"#
        ]],
    );
}

#[test]
fn errors_have_human_messages() {
    check(
        "",
        expect![
            "error: request body is not valid JSON: EOF while parsing a value at line 1 column 0"
        ],
    );
    check(
        "{\"model\":",
        expect![
            "error: request body is not valid JSON: EOF while parsing a value at line 1 column 9"
        ],
    );
    check("[1,2]", expect!["error: request body must be a JSON object"]);
    check("\"text\"", expect!["error: request body must be a JSON object"]);
    check(
        "{} x",
        expect!["error: request body is not valid JSON: trailing characters at line 1 column 4"],
    );
    check(r#"{"model":1}"#, expect!["error: request field `model` must be a string"]);
    check(r#"{"stream":"yes"}"#, expect!["error: request field `stream` must be a boolean"]);
    check(
        r#"{"max_tokens":-1}"#,
        expect!["error: request field `max_tokens` must be a non-negative integer"],
    );
    check(
        r#"{"max_output_tokens":1.5}"#,
        expect!["error: request field `max_output_tokens` must be a non-negative integer"],
    );
    check(
        r#"{"stream_options":true}"#,
        expect!["error: request field `stream_options` must be an object"],
    );
    check(
        r#"{"stream_options":{"include_usage":1}}"#,
        expect!["error: request field `stream_options.include_usage` must be a boolean"],
    );
    check(
        r#"{"model":"a","model":"b"}"#,
        expect!["error: request body is ambiguous: duplicate field `model` at line 1 column 20"],
    );
}

#[test]
fn deep_unknown_fields_are_skipped() {
    let nested = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let body = format!(r#"{{"x":{nested},"y":{{"z":"\u00e9\""}},"model":"m"}}"#);
    assert_eq!(request_facts(body.as_bytes()).ok().and_then(|f| f.model).as_deref(), Some("m"));
}

#[test]
fn inject_without_stream_options() {
    check_inject(
        r#"{"model":"gpt-4o","stream":true}"#,
        expect![[r#"{"stream_options":{"include_usage":true},"model":"gpt-4o","stream":true}"#]],
    );
    // Leading whitespace, an empty object: the member goes in without a comma.
    assert_eq!(
        inject_include_usage(b"  {  }\n").ok().as_deref(),
        Some(&b"  {\"stream_options\":{\"include_usage\":true}  }\n"[..])
    );
}

#[test]
fn inject_into_existing_stream_options() {
    check_inject(
        r#"{"stream_options": {"include_obfuscation": false},"stream":true}"#,
        expect![[
            r#"{"stream_options": {"include_usage":true,"include_obfuscation": false},"stream":true}"#
        ]],
    );
    check_inject(
        r#"{"stream_options":{ },"stream":true}"#,
        expect![[r#"{"stream_options":{"include_usage":true },"stream":true}"#]],
    );
    check_inject(
        r#"{"stream":true,"stream_options":null}"#,
        expect![[r#"{"stream":true,"stream_options":{"include_usage":true}}"#]],
    );
    check_inject(
        r#"{"stream_options":{"include_usage": false, "x":1}}"#,
        expect![[r#"{"stream_options":{"include_usage": true, "x":1}}"#]],
    );
    check_inject(
        r#"{"stream_options":{"include_usage":null}}"#,
        expect![[r#"{"stream_options":{"include_usage":true}}"#]],
    );
    check_inject(
        r#"{"stream_options":{"include_usage" :true}}"#,
        expect![[r#"{"stream_options":{"include_usage" :true}}"#]],
    );
}

#[test]
fn inject_rejects_what_facts_rejects() {
    check_inject("[]", expect!["error: request body must be a JSON object"]);
    check_inject(
        r#"{"stream_options":[]}"#,
        expect!["error: request field `stream_options` must be an object"],
    );
    check_inject(
        r#"{"stream_options":{"include_usage":"yes"}}"#,
        expect!["error: request field `stream_options.include_usage` must be a boolean"],
    );
}

#[test]
fn set_user_inserts_or_replaces() {
    let set = |body: &str, user: &str| match set_user_field(body.as_bytes(), user) {
        Ok(out) => String::from_utf8_lossy(&out).into_owned(),
        Err(err) => format!("error: {err}"),
    };
    expect![[r#"{"user":"ada@corp.example","model":"x"}"#]]
        .assert_eq(&set(r#"{"model":"x"}"#, "ada@corp.example"));
    expect![[r#"{"user":"q\"uote"}"#]].assert_eq(&set("{}", "q\"uote"));
    expect![[r#"{"model":"x", "user" : "ada" ,"n":1}"#]]
        .assert_eq(&set(r#"{"model":"x", "user" : {"id":7} ,"n":1}"#, "ada"));
    expect!["error: request body must be a JSON object"].assert_eq(&set("[]", "ada"));
    expect!["error: request body is ambiguous: duplicate field `user` at line 1 column 16"]
        .assert_eq(&set(r#"{"user":1,"user":2}"#, "ada"));
}

/// Removes the first occurrence of `needle` from `hay`.
fn without(hay: &[u8], needle: &[u8]) -> Option<Vec<u8>> {
    let at = hay.windows(needle.len()).position(|w| w == needle)?;
    Some([&hay[..at], &hay[at + needle.len()..]].concat())
}

fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        any::<i32>().prop_map(|n| n.to_string()),
        "[a-z é\\\\\"{}]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[ {} ]", v.join(" ,"))),
            proptest::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(|v| {
                let members: Vec<_> = v.iter().map(|(k, v)| format!("\"{k}\" :{v}")).collect();
                format!("{{{}}}", members.join(",\n"))
            }),
        ]
    })
}

proptest! {
    /// Every byte of the original body survives, in order, and the result asks for usage.
    #[test]
    fn inject_preserves_every_other_byte(
        members in proptest::collection::vec(("[a-y]{1,6}", json_value()), 0..6),
        options in prop_oneof![
            Just(None),
            Just(Some("null".to_owned())),
            Just(Some("{}".to_owned())),
            Just(Some(r#"{ "x": [1, {"include_usage": false}] }"#.to_owned())),
        ],
    ) {
        let mut parts: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in &members {
            if seen.insert(k.clone()) {
                parts.push(format!("\"{k}\": {v}"));
            }
        }
        if let Some(options) = &options {
            parts.insert(parts.len() / 2, format!("\"stream_options\" : {options}"));
        }
        let body = format!(" {{ {} }}", parts.join(" , "));
        let out = inject_include_usage(body.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let facts = request_facts(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(facts.include_usage);
        let restored = match options.as_deref() {
            None => without(&out, br#""stream_options":{"include_usage":true}"#)
                .and_then(|o| if parts.is_empty() { Some(o) } else { without(&o, b",") }),
            Some("null") => without(&out, br#"{"include_usage":true}"#).map(|o| {
                let at = o.windows(16).position(|w| w == b"\"stream_options\"").unwrap_or(0);
                let (head, tail) = o.split_at(at);
                let tail = String::from_utf8_lossy(tail).replacen(": ", ": null", 1);
                [head, tail.as_bytes()].concat()
            }),
            Some("{}") => without(&out, br#""include_usage":true"#),
            Some(_) => without(&out, br#""include_usage":true,"#),
        };
        prop_assert_eq!(restored.map(String::from_utf8), Some(Ok(body)));
    }
}
