//! Tests for models list bodies.

use expect_test::expect;

use super::*;

fn entries() -> Vec<ModelEntry> {
    vec![
        ModelEntry {
            id: "claude-sonnet-4-5".to_owned(),
            owned_by: "anthropic".to_owned(),
            display_name: Some("Claude Sonnet 4.5".to_owned()),
        },
        ModelEntry {
            id: "gpt-5".to_owned(),
            owned_by: "openai-main".to_owned(),
            display_name: None,
        },
    ]
}

fn text(body: Vec<u8>) -> String {
    String::from_utf8_lossy(&body).into_owned()
}

#[test]
fn anthropic_list() {
    expect![[r#"{"data":[{"type":"model","id":"claude-sonnet-4-5","display_name":"Claude Sonnet 4.5","created_at":"2025-01-01T00:00:00Z"},{"type":"model","id":"gpt-5","display_name":"gpt-5","created_at":"2025-01-01T00:00:00Z"}],"has_more":false,"first_id":"claude-sonnet-4-5","last_id":"gpt-5"}"#]]
        .assert_eq(&text(models_list(Api::Anthropic, &entries())));
    expect![[r#"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#]]
        .assert_eq(&text(models_list(Api::Anthropic, &[])));
}

#[test]
fn openai_list() {
    expect![[r#"{"object":"list","data":[{"id":"claude-sonnet-4-5","object":"model","created":0,"owned_by":"anthropic"},{"id":"gpt-5","object":"model","created":0,"owned_by":"openai-main"}]}"#]]
        .assert_eq(&text(models_list(Api::OpenAi, &entries())));
}

#[test]
fn lists_round_trip() {
    for api in [Api::Anthropic, Api::OpenAi] {
        assert_eq!(
            parse_models_list(api, &models_list(api, &entries())),
            ["claude-sonnet-4-5", "gpt-5"]
        );
    }
}

#[test]
fn parses_upstream_lists_leniently() {
    let openai = br#"{"object":"list","data":[{"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"system"},{"id":7},"junk",{"object":"model"},{"id":"o3","extra":{"a":[1]}}]}"#;
    assert_eq!(parse_models_list(Api::OpenAi, openai), ["gpt-4o", "o3"]);
    let anthropic = br#"{"data":[{"type":"model","id":"claude-opus-4-1-20250805","display_name":"Claude Opus 4.1","created_at":"2025-08-05T00:00:00Z"}],"has_more":true,"first_id":"claude-opus-4-1-20250805","last_id":"claude-opus-4-1-20250805"}"#;
    assert_eq!(parse_models_list(Api::Anthropic, anthropic), ["claude-opus-4-1-20250805"]);
    assert!(parse_models_list(Api::OpenAi, b"not json").is_empty());
    assert!(parse_models_list(Api::OpenAi, b"[]").is_empty());
    assert!(parse_models_list(Api::OpenAi, br#"{"data":null}"#).is_empty());
}
