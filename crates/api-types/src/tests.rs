//! Wire-format tests: field spellings, defaults, unknown fields refused, keys never shown.

use expect_test::expect;

use super::*;

#[test]
fn provider_input_defaults_and_spellings() {
    let input: ProviderInput = serde_json::from_str(
        r#"{"name":"az","kind":"azure-openai","base_url":"https://x.openai.azure.com",
            "prices":[{"model":"gpt-4o","input_usd_per_mtok":2.5,"output_usd_per_mtok":10}],
            "stamping":{"preset":"cloudflare-ai-gateway"}}"#,
    )
    .unwrap();
    assert_eq!(input.kind, ProviderKind::AzureOpenAi);
    assert!(input.apis.is_empty() && input.models.is_empty());
    assert_eq!(
        input.stamping,
        Stamping {
            enabled: true,
            preset: GatewayPreset::CloudflareAiGateway
        }
    );
    assert_eq!(input.prices[0].cache_read_usd_per_mtok, None);
    assert!(input.api_key.is_none());
}

#[test]
fn unknown_fields_and_values_are_refused() {
    let typo = serde_json::from_str::<ProviderInput>(
        r#"{"kind":"openai","base_url":"https://api.openai.com","modles":["gpt-4o"]}"#,
    );
    assert!(typo
        .unwrap_err()
        .to_string()
        .contains("unknown field `modles`"));
    let kind = serde_json::from_str::<ProviderInput>(r#"{"kind":"gemini","base_url":"https://g"}"#);
    assert!(kind
        .unwrap_err()
        .to_string()
        .contains("unknown variant `gemini`"));
    let sources = serde_json::from_str::<PolicyInput>(r#"{"sources":{"group":["eng"]}}"#);
    assert!(sources.is_err());
}

#[test]
fn the_key_never_shows_in_debug_output() {
    let input: ProviderInput = serde_json::from_str(
        r#"{"kind":"anthropic","base_url":"https://api.anthropic.com","api_key":"sk-ant-SECRET"}"#,
    )
    .unwrap();
    assert_eq!(
        input.api_key.as_ref().map(ApiKey::expose),
        Some("sk-ant-SECRET")
    );
    assert!(!format!("{input:?}").contains("SECRET"));
    let set = SetKeyRequest {
        api_key: ApiKey::new("sk-SECRET"),
    };
    assert!(!format!("{set:?}").contains("SECRET"));
    // The write-only key does go over the wire in requests.
    assert_eq!(
        serde_json::to_string(&set).unwrap(),
        r#"{"api_key":"sk-SECRET"}"#
    );
}

#[test]
fn provider_response_shape() {
    let provider = Provider {
        name: "anthropic".into(),
        kind: ProviderKind::Anthropic,
        base_url: "https://api.anthropic.com".into(),
        apis: vec![Api::Anthropic],
        models: vec!["claude-*".into()],
        prices: vec![],
        stamping: Stamping::default(),
        azure_api_version: None,
        managed_by: ManagedBy::Config,
        has_key: true,
        key_fingerprint: Some("…wxyz".into()),
        updated_at: "2025-01-01T00:00:00.000Z".into(),
    };
    expect![[r#"{"name":"anthropic","kind":"anthropic","base_url":"https://api.anthropic.com","apis":["anthropic"],"models":["claude-*"],"prices":[],"stamping":{"enabled":true,"preset":"none"},"managed_by":"config","has_key":true,"key_fingerprint":"…wxyz","updated_at":"2025-01-01T00:00:00.000Z"}"#]]
        .assert_eq(&serde_json::to_string(&provider).unwrap());
}

#[test]
fn enum_spellings_match_their_parsers() {
    for kind in ProviderKind::ALL {
        assert_eq!(
            serde_json::to_string(&kind).unwrap(),
            format!("\"{}\"", kind.as_str())
        );
        assert_eq!(ProviderKind::parse(kind.as_str()), Some(kind));
    }
    for preset in GatewayPreset::ALL {
        assert_eq!(
            serde_json::to_string(&preset).unwrap(),
            format!("\"{}\"", preset.as_str())
        );
        assert_eq!(GatewayPreset::parse(preset.as_str()), Some(preset));
    }
    for api in Api::ALL {
        assert_eq!(
            serde_json::to_string(&api).unwrap(),
            format!("\"{}\"", api.as_str())
        );
    }
    assert_eq!(
        serde_json::to_string(&ErrorCode::ManagedByConfig).unwrap(),
        "\"managed_by_config\""
    );
}

#[test]
fn usage_query_string_is_percent_encoded() {
    let q = UsageQuery {
        principal: Some("ada@example.com".into()),
        group: Some("data science".into()),
        since: Some("2025-01-01T00:00:00+02:00".into()),
        limit: Some(5),
        ..UsageQuery::default()
    };
    expect!["principal=ada%40example.com&group=data%20science&since=2025-01-01T00%3A00%3A00%2B02%3A00&limit=5"]
        .assert_eq(&q.to_query_string());
    assert_eq!(UsageQuery::default().to_query_string(), "");
}

#[test]
fn summary_totals_add_up_and_flag_unknown_cost() {
    let record = |cost: Option<i64>, status: u16| UsageRecord {
        id: "r".into(),
        at: "2025-01-01T00:00:00.000Z".into(),
        principal_kind: Some("user".into()),
        principal: Some("ada@example.com".into()),
        subject: None,
        groups: vec![],
        policy: None,
        provider: Some("anthropic".into()),
        api: "anthropic".into(),
        endpoint: "messages".into(),
        model: Some("claude-x".into()),
        stream: true,
        status,
        reason: "ok".into(),
        latency_ms: 10,
        ttfb_ms: Some(5),
        input_tokens: 10,
        output_tokens: 20,
        cache_creation_tokens: 3,
        cache_read_tokens: 4,
        reasoning_tokens: 5,
        cost_micro_usd: cost,
        cost_usd: cost.map(micro_to_usd),
        cost_known: cost.is_some(),
        usage_reported: true,
        session_id: None,
    };
    let mut totals = UsageTotals::default();
    totals.add(&record(Some(1_500_000), 200));
    totals.add(&record(None, 502));
    assert_eq!(totals.requests, 2);
    assert_eq!(totals.failed_requests, 1);
    assert_eq!(totals.total_tokens, 74);
    assert_eq!(totals.cost_micro_usd, 1_500_000);
    assert_eq!(totals.cost_usd, 1.5);
    assert_eq!(totals.unknown_cost_requests, 1);
}
