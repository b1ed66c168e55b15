//! Store tests against in-memory and on-disk SQLite.

use domain::{Api, ModelPattern, Price, Provider, ProviderKind, Source, Stamping};
use secrecy::{ExposeSecret, SecretString};

use super::*;

fn anthropic() -> Provider {
    Provider {
        name: "anthropic".into(),
        kind: ProviderKind::Anthropic,
        base_url: "https://api.anthropic.com".into(),
        apis: vec![Api::Anthropic],
        models: vec![ModelPattern::new("claude-*")],
        price_overrides: vec![(ModelPattern::new("claude-x"), Price::anthropic(1, 2))],
        stamping: Stamping::default(),
        azure_api_version: None,
    }
}

#[tokio::test]
async fn provider_round_trip_and_encrypted_key() {
    let dir = std::env::temp_dir().join(format!("agentnet-store-test-{}", ulid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agentnet.db");
    let master = MasterKey::generate().unwrap();
    let store = Store::open(&path, &master).await.unwrap();
    store.put_provider(&anthropic(), ManagedBy::Config).await.unwrap();
    let secret = "sk-ant-api03-VERYSECRETVALUE-wxyz";
    store.set_provider_key("anthropic", &SecretString::from(secret)).await.unwrap();

    let record = store.provider("anthropic").await.unwrap().unwrap();
    assert_eq!(record.provider.models, vec![ModelPattern::new("claude-*")]);
    assert_eq!(record.provider.price_overrides[0].1, Price::anthropic(1, 2));
    assert_eq!(record.key_fingerprint.as_deref(), Some("…wxyz"));
    assert_eq!(record.managed_by, ManagedBy::Config);
    let keys = store.provider_keys().await.unwrap();
    assert_eq!(keys[0].1.expose_secret(), secret);

    // Replacing the spec keeps the key.
    store.put_provider(&anthropic(), ManagedBy::Config).await.unwrap();
    assert_eq!(store.provider_keys().await.unwrap().len(), 1);

    // The key is nowhere in the database files in plaintext.
    store.close().await;
    for entry in std::fs::read_dir(&dir).unwrap() {
        // The -wal and -shm files may vanish as the pool closes: read what is there.
        let Ok(bytes) = std::fs::read(entry.unwrap().path()) else { continue };
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert!(!bytes.windows(10).any(|w| w == b"VERYSECRET"));
    }
    // Reopening with another master key fails closed on the key, not silently.
    let other = Store::open(&path, &MasterKey::generate().unwrap()).await.unwrap();
    assert!(matches!(other.provider_keys().await, Err(Error::Secret(SecretError::Open))));
    other.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Specs written before `assertion` existed read as signed (as they were); the setting persists.
#[tokio::test]
async fn provider_specs_keep_the_assertion_setting() {
    let store = Store::in_memory(&MasterKey::generate().unwrap()).await.unwrap();
    let mut unsigned = anthropic();
    unsigned.stamping.assertion = false;
    store.put_provider(&unsigned, ManagedBy::Api).await.unwrap();
    assert!(!store.provider("anthropic").await.unwrap().unwrap().provider.stamping.assertion);

    let old_spec = r#"{"kind":"anthropic","base_url":"https://a","apis":["anthropic"],"models":[],
        "stamping_enabled":true,"preset":"litellm"}"#;
    sqlx::query("UPDATE providers SET spec = ?1 WHERE name = 'anthropic'")
        .bind(old_spec)
        .execute(&store.pool)
        .await
        .unwrap();
    let read = store.provider("anthropic").await.unwrap().unwrap().provider;
    assert!(read.stamping.enabled && read.stamping.assertion);
    assert_eq!(read.stamping.preset, domain::GatewayPreset::LiteLlm);
}

#[tokio::test]
async fn key_for_missing_provider_is_not_found() {
    let store = Store::in_memory(&MasterKey::generate().unwrap()).await.unwrap();
    let err = store.set_provider_key("nope", &SecretString::from("k")).await.unwrap_err();
    assert_eq!(err.to_string(), "provider 'nope' does not exist");
}

#[tokio::test]
async fn policies_groups_agents_and_pruning() {
    let store = Store::in_memory(&MasterKey::generate().unwrap()).await.unwrap();
    let policy = domain::Policy {
        name: "eng".into(),
        sources: vec![Source::Group("engineering".into()), Source::Everyone],
        providers: vec!["anthropic".into()],
        models: vec![ModelPattern::new("claude-sonnet-*")],
        max_tokens: Some(8192),
        limits: vec![domain::Limit {
            metric: domain::Metric::Spend,
            per: domain::Per::Group,
            cap: 500_000_000,
            window_secs: 30 * 86_400,
        }],
    };
    store.put_policy(&policy, ManagedBy::Config).await.unwrap();
    let mut api_policy = policy.clone();
    api_policy.name = "from-api".into();
    store.put_policy(&api_policy, ManagedBy::Api).await.unwrap();
    let stored = store.policies().await.unwrap();
    assert_eq!(stored[0].policy.sources, policy.sources);
    assert_eq!(stored[0].policy.models, policy.models);
    assert_eq!(stored[0].policy.limits, policy.limits);
    assert_eq!(stored[0].policy.max_tokens, Some(8192));

    let global = domain::GlobalLimit {
        name: "org".into(),
        targets: vec![Source::Everyone, Source::Group("eng".into())],
        limit: domain::Limit {
            metric: domain::Metric::Requests,
            per: domain::Per::User,
            cap: 60,
            window_secs: 60,
        },
    };
    store.put_global_limit(&global, ManagedBy::Api).await.unwrap();
    let got = store.global_limit("org").await.unwrap().unwrap();
    assert_eq!((got.limit.targets, got.limit.limit), (global.targets.clone(), global.limit));
    assert!(store.delete_global_limit("org").await.unwrap());

    store
        .put_agent(&AgentRecord {
            name: "ci-bot".into(),
            description: "CI".into(),
            groups: vec!["ci".into()],
            managed_by: ManagedBy::Api,
        })
        .await
        .unwrap();
    assert_eq!(store.agents().await.unwrap()[0].groups, vec!["ci".to_string()]);
    store
        .put_group(&GroupRecord {
            name: "engineering".into(),
            description: String::new(),
            managed_by: ManagedBy::Config,
        })
        .await
        .unwrap();
    assert_eq!(store.groups().await.unwrap().len(), 1);

    // Removing "eng" from the config prunes it but leaves the API-managed policy.
    assert_eq!(store.prune_config_managed(ConfigTable::Policies, &[]).await.unwrap(), 1);
    let names: Vec<_> =
        store.policies().await.unwrap().into_iter().map(|p| p.policy.name).collect();
    assert_eq!(names, vec!["from-api"]);
}

#[tokio::test]
async fn usage_batch_and_filters() {
    let store = Store::in_memory(&MasterKey::generate().unwrap()).await.unwrap();
    let record = |id: &str, at: i64, who: &str, groups: &[&str]| UsageRecord {
        id: id.into(),
        at_ms: at,
        principal_kind: Some("user".into()),
        principal: Some(who.into()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        provider: Some("anthropic".into()),
        api: "anthropic".into(),
        endpoint: "messages".into(),
        model: Some("claude-sonnet-4-5".into()),
        status: 200,
        reason: "ok".into(),
        input_tokens: 10,
        output_tokens: 5,
        cost_micro_usd: Some(105),
        usage_reported: true,
        ..Default::default()
    };
    let batch: Vec<_> = (0..1200)
        .map(|i| record(&format!("r{i:05}"), i, if i % 2 == 0 { "a@x" } else { "b@x" }, &["eng"]))
        .collect();
    store.insert_usage(&batch).await.unwrap();
    // Re-inserting the same ids is idempotent (a retried batch never double-bills).
    store.insert_usage(&batch[..10]).await.unwrap();

    let all = store.usage(&UsageQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 1000);
    assert_eq!(all[0].id, "r01199");
    assert_eq!(all[0], batch[1199]);
    let alice =
        UsageQuery { principal: Some("a@x".into()), limit: Some(1000), ..Default::default() };
    assert_eq!(store.usage(&alice).await.unwrap().len(), 600);
    let window = UsageQuery { since_ms: Some(100), until_ms: Some(110), ..Default::default() };
    assert_eq!(store.usage(&window).await.unwrap().len(), 10);
    let by_group = UsageQuery { group: Some("eng".into()), limit: Some(5), ..Default::default() };
    assert_eq!(store.usage(&by_group).await.unwrap().len(), 5);
    let other_group = UsageQuery { group: Some("sales".into()), ..Default::default() };
    assert!(store.usage(&other_group).await.unwrap().is_empty());
}

fn ulid_like() -> String {
    format!("{}-{}", std::process::id(), now_ms())
}

#[tokio::test]
async fn api_writes_never_replace_config_records() {
    let store = Store::in_memory(&MasterKey::generate().unwrap()).await.unwrap();
    let mut provider = anthropic();
    store.put_provider(&provider, ManagedBy::Config).await.unwrap();
    provider.base_url = "http://elsewhere".into();
    let err = store.put_provider(&provider, ManagedBy::Api).await.unwrap_err();
    assert!(matches!(err, Error::ManagedByConfig { .. }), "{err}");
    assert_eq!(
        store.provider("anthropic").await.unwrap().unwrap().provider.base_url,
        "https://api.anthropic.com"
    );
    assert!(matches!(store.delete_provider("anthropic").await, Err(Error::ManagedByConfig { .. })));
    assert!(!store.delete_provider("nope").await.unwrap());
    // The config file itself may replace it.
    store.put_provider(&provider, ManagedBy::Config).await.unwrap();
    assert!(matches!(
        store.create_provider(&provider, ManagedBy::Api).await,
        Err(Error::AlreadyExists { .. })
    ));

    let group =
        |managed_by| GroupRecord { name: "eng".into(), description: String::new(), managed_by };
    store.create_group(&group(ManagedBy::Api)).await.unwrap();
    assert!(matches!(
        store.create_group(&group(ManagedBy::Api)).await,
        Err(Error::AlreadyExists { .. })
    ));
    store.put_group(&group(ManagedBy::Api)).await.unwrap();
    assert!(store.delete_group("eng").await.unwrap());
    assert!(store.group("eng").await.unwrap().is_none());
}

#[tokio::test]
async fn usage_summary_groups_by_principal() {
    let store = Store::in_memory(&MasterKey::generate().unwrap()).await.unwrap();
    let record = |id: &str, who: &str, status: u16, cost: Option<i64>| UsageRecord {
        id: id.into(),
        at_ms: 1,
        principal_kind: Some("user".into()),
        principal: Some(who.into()),
        api: "openai".into(),
        endpoint: "responses".into(),
        status,
        reason: "ok".into(),
        input_tokens: 10,
        output_tokens: 2,
        cost_micro_usd: cost,
        ..Default::default()
    };
    store
        .insert_usage(&[
            record("1", "a@x", 200, Some(100)),
            record("2", "a@x", 200, None),
            record("3", "a@x", 429, Some(0)),
            record("4", "b@x", 200, Some(500)),
        ])
        .await
        .unwrap();
    let totals = store.usage_summary(&UsageQuery::default()).await.unwrap();
    assert_eq!(totals.len(), 2);
    assert_eq!(totals[0].principal.as_deref(), Some("b@x"));
    let a = &totals[1];
    assert_eq!(
        (a.requests, a.failed_requests, a.input_tokens, a.cost_micro_usd, a.unknown_cost_requests),
        (3, 1, 30, 100, 1)
    );
}
