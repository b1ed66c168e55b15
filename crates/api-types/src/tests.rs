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
        Stamping { enabled: true, preset: GatewayPreset::CloudflareAiGateway, assertion: true }
    );
    assert_eq!(input.prices[0].cache_read_usd_per_mtok, None);
    assert!(input.api_key.is_none());
}

#[test]
fn unknown_fields_and_values_are_refused() {
    let typo = serde_json::from_str::<ProviderInput>(
        r#"{"kind":"openai","base_url":"https://api.openai.com","modles":["gpt-4o"]}"#,
    );
    assert!(typo.unwrap_err().to_string().contains("unknown field `modles`"));
    let kind = serde_json::from_str::<ProviderInput>(r#"{"kind":"gemini","base_url":"https://g"}"#);
    assert!(kind.unwrap_err().to_string().contains("unknown variant `gemini`"));
    let sources = serde_json::from_str::<PolicyInput>(r#"{"sources":{"group":["eng"]}}"#);
    assert!(sources.is_err());
}

#[test]
fn the_key_never_shows_in_debug_output() {
    let input: ProviderInput = serde_json::from_str(
        r#"{"kind":"anthropic","base_url":"https://api.anthropic.com","api_key":"sk-ant-SECRET"}"#,
    )
    .unwrap();
    assert_eq!(input.api_key.as_ref().map(ApiKey::expose), Some("sk-ant-SECRET"));
    assert!(!format!("{input:?}").contains("SECRET"));
    let set = SetKeyRequest { api_key: ApiKey::new("sk-SECRET") };
    assert!(!format!("{set:?}").contains("SECRET"));
    // The write-only key does go over the wire in requests.
    assert_eq!(serde_json::to_string(&set).unwrap(), r#"{"api_key":"sk-SECRET"}"#);
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
    expect![[r#"{"name":"anthropic","kind":"anthropic","base_url":"https://api.anthropic.com","apis":["anthropic"],"models":["claude-*"],"prices":[],"stamping":{"enabled":true,"preset":"none","assertion":true},"managed_by":"config","has_key":true,"key_fingerprint":"…wxyz","updated_at":"2025-01-01T00:00:00.000Z"}"#]]
        .assert_eq(&serde_json::to_string(&provider).unwrap());
}

#[test]
fn enum_spellings_match_their_parsers() {
    for kind in ProviderKind::ALL {
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
        assert_eq!(ProviderKind::parse(kind.as_str()), Some(kind));
    }
    for preset in GatewayPreset::ALL {
        assert_eq!(serde_json::to_string(&preset).unwrap(), format!("\"{}\"", preset.as_str()));
        assert_eq!(GatewayPreset::parse(preset.as_str()), Some(preset));
    }
    for api in Api::ALL {
        assert_eq!(serde_json::to_string(&api).unwrap(), format!("\"{}\"", api.as_str()));
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
        policy: Some("eng".into()),
        since: Some("2025-01-01T00:00:00+02:00".into()),
        limit: Some(5),
        ..UsageQuery::default()
    };
    expect!["principal=ada%40example.com&group=data%20science&policy=eng&since=2025-01-01T00%3A00%3A00%2B02%3A00&limit=5"]
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

#[test]
fn limits_are_spelled_as_in_the_config_file() {
    let input: PolicyInput = serde_json::from_str(
        r#"{"name":"eng","sources":{"groups":["eng"]},"providers":["anthropic"],
            "max_tokens":8192,
            "limits":[{"spend_usd":500,"per":"user","window":"30d"},
                      {"tokens":400000,"window":"1m"},
                      {"requests":60,"per":"group","window":"1m"}]}"#,
    )
    .unwrap();
    assert_eq!(input.max_tokens, Some(8192));
    assert_eq!(
        input.limits,
        [
            Limit::spend(500.0, LimitPer::User, "30d"),
            Limit::tokens(400_000, LimitPer::User, "1m"),
            Limit::requests(60, LimitPer::Group, "1m"),
        ]
    );
    // Only the metric that is set goes over the wire.
    expect![[r#"[{"spend_usd":500.0,"per":"user","window":"30d"},{"tokens":400000,"per":"user","window":"1m"},{"requests":60,"per":"group","window":"1m"}]"#]]
        .assert_eq(&serde_json::to_string(&input.limits).unwrap());
    let back: PolicyInput = serde_json::from_str(&serde_json::to_string(&input).unwrap()).unwrap();
    assert_eq!(back, input);
    assert_eq!(
        input.limits.iter().map(Limit::describe).collect::<Vec<_>>(),
        ["$500 per user per 30d", "400000 tokens per user per 1m", "60 requests per group per 1m"]
    );

    // Without caps: nothing extra is sent, and older answers without the fields still decode.
    let plain = PolicyInput { name: Some("p".into()), ..PolicyInput::default() };
    expect![[r#"{"name":"p","sources":{"groups":[],"users":[],"agents":[],"everyone":false},"providers":[],"models":[]}"#]]
        .assert_eq(&serde_json::to_string(&plain).unwrap());
    let old: Policy = serde_json::from_str(
        r#"{"name":"p","sources":{"everyone":true},"providers":["x"],"models":[],
            "managed_by":"api","updated_at":"2025-01-01T00:00:00.000Z"}"#,
    )
    .unwrap();
    assert_eq!((old.max_tokens, old.limits.len()), (None, 0));
}

#[test]
fn limit_typos_are_refused() {
    let err = |json: &str| serde_json::from_str::<Limit>(json).unwrap_err().to_string();
    assert!(err(r#"{"spend":5,"window":"1d"}"#).contains("unknown field `spend`"));
    assert!(err(r#"{"tokens":5,"per":"team","window":"1d"}"#).contains("unknown variant `team`"));
    assert!(err(r#"{"tokens":-5,"window":"1d"}"#).contains("invalid value"));
    let global = serde_json::from_str::<GlobalLimitInput>(
        r#"{"name":"g","targets":{"everyone":true},"requests":5,"window":"1m","cap":5}"#,
    );
    assert!(global.unwrap_err().to_string().contains("unknown field `cap`"));
    // `per` defaults to user.
    let limit: Limit = serde_json::from_str(r#"{"requests":1,"window":"1h"}"#).unwrap();
    assert_eq!(limit.per, LimitPer::User);
}

#[test]
fn global_limits_flatten_the_limit_fields() {
    let input: GlobalLimitInput = serde_json::from_str(
        r#"{"name":"everyone-daily","targets":{"everyone":true},"spend_usd":20.5,"window":"24h"}"#,
    )
    .unwrap();
    assert_eq!(input.limit(), Limit::spend(20.5, LimitPer::User, "24h"));
    let rebuilt = GlobalLimitInput::new(input.name.clone(), input.targets.clone(), input.limit());
    assert_eq!(rebuilt, input);
    expect![[r#"{"name":"everyone-daily","targets":{"groups":[],"users":[],"agents":[],"everyone":true},"spend_usd":20.5,"per":"user","window":"24h"}"#]]
        .assert_eq(&serde_json::to_string(&input).unwrap());

    let shown = GlobalLimit {
        name: "bots".into(),
        targets: PolicySources { groups: vec!["bots".into()], ..PolicySources::default() },
        spend_usd: None,
        tokens: None,
        requests: Some(60),
        per: LimitPer::Group,
        window: "1m".into(),
        managed_by: ManagedBy::Config,
        updated_at: "2025-01-01T00:00:00.000Z".into(),
    };
    expect![[r#"{"name":"bots","targets":{"groups":["bots"],"users":[],"agents":[],"everyone":false},"requests":60,"per":"group","window":"1m","managed_by":"config","updated_at":"2025-01-01T00:00:00.000Z"}"#]]
        .assert_eq(&serde_json::to_string(&shown).unwrap());
    let back: GlobalLimit = serde_json::from_str(&serde_json::to_string(&shown).unwrap()).unwrap();
    assert_eq!(back, shown);
    assert_eq!(back.limit(), Limit::requests(60, LimitPer::Group, "1m"));
}

#[test]
fn windows_parse_and_print_in_their_shortest_form() {
    for (text, secs) in [
        ("1m", 60),
        ("90s", 90),
        ("60s", 60),
        ("1h", 3_600),
        ("720h", 2_592_000),
        ("30d", 2_592_000),
        ("0s", 0),
    ] {
        assert_eq!(parse_window(text), Ok(secs), "{text}");
    }
    for (secs, text) in [
        (2_592_000, "30d"),
        (3_600, "1h"),
        (5_400, "90m"),
        (90, "90s"),
        (60, "1m"),
        (86_400 * 7, "7d"),
        (0, "0s"),
    ] {
        assert_eq!(format_window(secs), text, "{secs}");
        assert_eq!(parse_window(text), Ok(secs));
    }
    for bad in ["", "30", "d", "1.5h", "-1h", " 1h", "1h ", "1H", "1w", "1h30m", "1 h"] {
        assert_eq!(parse_window(bad), Err(WindowError::Syntax(bad.to_owned())), "{bad:?}");
    }
    expect!["'99999999999999999999d' is too long"]
        .assert_eq(&parse_window("99999999999999999999d").unwrap_err().to_string());
    expect!["'1w' is not a window: use a whole number and a unit s, m, h or d, e.g. 1m, 24h, 30d"]
        .assert_eq(&parse_window("1w").unwrap_err().to_string());
}

#[test]
fn limits_describe_themselves() {
    for (limit, text) in [
        (Limit::spend(500.0, LimitPer::User, "30d"), "$500 per user per 30d"),
        (Limit::spend(20.5, LimitPer::Group, "1d"), "$20.50 per group per 1d"),
        (Limit::spend(0.125, LimitPer::User, "1h"), "$0.125 per user per 1h"),
        (Limit::spend(0.0, LimitPer::User, "1h"), "$0 per user per 1h"),
        (Limit::spend(1.1, LimitPer::User, "1h"), "$1.10 per user per 1h"),
        (Limit::spend(0.000_001, LimitPer::User, "1h"), "$0.000001 per user per 1h"),
        (Limit::requests(0, LimitPer::User, "1m"), "0 requests per user per 1m"),
    ] {
        assert_eq!(limit.describe(), text);
    }
}

#[test]
fn self_view_shape() {
    let view = SelfView {
        principal: "alice@example.com".into(),
        kind: "user".into(),
        groups: vec!["engineering".into()],
        limits: vec![
            LimitUse {
                owner_kind: LimitOwnerKind::Policy,
                owner: "metered".into(),
                limit: Limit::spend(1.0, LimitPer::User, "30d"),
                applies_to: "you".into(),
                used: 0.25,
                remaining: 0.75,
                cap: 1.0,
            },
            LimitUse {
                owner_kind: LimitOwnerKind::Global,
                owner: "rate".into(),
                limit: Limit::requests(60, LimitPer::Group, "1m"),
                applies_to: "group engineering".into(),
                used: 3.0,
                remaining: 57.0,
                cap: 60.0,
            },
        ],
        last_24h: UsageTotals::default(),
        last_30d: UsageTotals::default(),
        recent: vec![],
    };
    let json = serde_json::to_value(&view).unwrap();
    expect![[r#"{"applies_to":"you","cap":1.0,"limit":{"per":"user","spend_usd":1.0,"window":"30d"},"owner":"metered","owner_kind":"policy","remaining":0.75,"used":0.25}"#]]
        .assert_eq(&json["limits"][0].to_string());
    assert_eq!(json["limits"][1]["owner_kind"], "global");
    assert_eq!(json["last_24h"]["requests"], 0);
    let back: SelfView = serde_json::from_value(json).unwrap();
    assert_eq!(back, view);
    assert_eq!(view.limits.iter().map(LimitUse::unit).collect::<Vec<_>>(), ["usd", "requests"]);
    for kind in [LimitOwnerKind::Global, LimitOwnerKind::Policy] {
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
    }
}

#[test]
fn error_reason_is_optional_on_the_wire() {
    let body = ErrorBody::new(ErrorCode::Unauthenticated, "the token has expired")
        .with_reason("token_expired");
    expect![[r#"{"error":{"code":"unauthenticated","message":"the token has expired","reason":"token_expired"}}"#]]
        .assert_eq(&serde_json::to_string(&body).unwrap());
    let old: ErrorBody =
        serde_json::from_str(r#"{"error":{"code":"not_found","message":"x"}}"#).unwrap();
    assert_eq!(old.error.reason, None);
    assert_eq!(ErrorCode::Unavailable.as_str(), "unavailable");
}
