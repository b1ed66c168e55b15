//! Admin API tests through `Router::oneshot` on an in-memory store: CRUD, validation messages,
//! config-managed records, keys never echoed, `on_change` calls, usage filters and summaries.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{body::Body, Router};
use expect_test::{expect, Expect};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;

struct Harness {
    router: Router,
    store: store::Store,
    changes: Arc<AtomicUsize>,
}

async fn harness() -> Harness {
    let store = store::Store::in_memory(&store::MasterKey::generate().unwrap()).await.unwrap();
    harness_on(store)
}

fn harness_on(store: store::Store) -> Harness {
    let changes = Arc::new(AtomicUsize::new(0));
    let counter = changes.clone();
    let state = ControlState::new(store.clone(), move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    Harness { router: router(state), store, changes }
}

impl Harness {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = Request::builder().method(method).uri(path);
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (status, value)
    }

    async fn raw(&self, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let request =
            Request::builder().method(method).uri(path).body(Body::from(body.to_owned())).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn changes(&self) -> usize {
        self.changes.load(Ordering::SeqCst)
    }
}

/// Checks status and the error's `code`, `field` and `message`.
fn check_error((status, body): (StatusCode, Value), expect: Expect) {
    let e = &body["error"];
    let field = e["field"].as_str().map(|f| format!(" [{f}]")).unwrap_or_default();
    let actual = format!(
        "{} {}{field}: {}",
        status.as_u16(),
        e["code"].as_str().unwrap_or("?"),
        e["message"].as_str().unwrap_or("?")
    );
    expect.assert_eq(&actual);
}

fn anthropic_input() -> Value {
    json!({
        "name": "anthropic",
        "kind": "anthropic",
        "base_url": "https://api.anthropic.com/",
        "models": ["claude-*"],
        "prices": [{"model": "claude-x", "input_usd_per_mtok": 3, "output_usd_per_mtok": 15}],
        "api_key": "sk-ant-api03-SECRETSECRET-wxyz"
    })
}

#[tokio::test]
async fn provider_crud_and_the_key_is_never_returned() {
    let h = harness().await;
    let (status, created) =
        h.call(Method::POST, "/api/v1/providers", Some(anthropic_input())).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(h.changes(), 1);
    assert!(!created.to_string().contains("SECRET"));
    created["updated_at"].as_str().unwrap();
    let mut shown = created.clone();
    shown["updated_at"] = json!("-");
    expect![[r#"{"apis":["anthropic"],"base_url":"https://api.anthropic.com","has_key":true,"key_fingerprint":"…wxyz","kind":"anthropic","managed_by":"api","models":["claude-*"],"name":"anthropic","prices":[{"cache_read_usd_per_mtok":0.3,"cache_write_usd_per_mtok":3.75,"input_usd_per_mtok":3.0,"model":"claude-x","output_usd_per_mtok":15.0}],"stamping":{"assertion":true,"enabled":true,"preset":"none"},"updated_at":"-"}"#]]
        .assert_eq(&shown.to_string());

    // The store got integer micro-dollars and the key, encrypted.
    let record = h.store.provider("anthropic").await.unwrap().unwrap();
    assert_eq!(
        record.provider.price_overrides[0].1,
        domain::Price::anthropic(3_000_000, 15_000_000)
    );
    let keys = h.store.provider_keys().await.unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&keys[0].1), "sk-ant-api03-SECRETSECRET-wxyz");

    let (status, list) = h.call(Method::GET, "/api/v1/providers", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("SECRET"));

    // POST again: already exists.
    check_error(
        h.call(Method::POST, "/api/v1/providers", Some(anthropic_input())).await,
        expect!["409 already_exists: provider 'anthropic' already exists"],
    );

    // PUT replaces the spec and keeps the key.
    let (status, replaced) = h
        .call(
            Method::PUT,
            "/api/v1/providers/anthropic",
            Some(json!({"kind": "anthropic", "base_url": "https://proxy.example.com",
                        "stamping": {"assertion": false}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replaced["base_url"], "https://proxy.example.com");
    assert_eq!(replaced["has_key"], true);
    assert_eq!(
        replaced["stamping"],
        json!({"enabled": true, "preset": "none", "assertion": false}),
        "fields left out keep their defaults"
    );
    assert_eq!(h.changes(), 2);

    // PUT of a new name creates.
    let (status, _) = h
        .call(
            Method::PUT,
            "/api/v1/providers/local",
            Some(json!({"kind": "openai-compatible", "base_url": "http://127.0.0.1:11434"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, local) = h.call(Method::GET, "/api/v1/providers/local", None).await;
    assert_eq!(local["apis"], json!(["openai"]));
    assert_eq!(local["has_key"], false);
    assert_eq!(local["key_fingerprint"], Value::Null);

    let (status, body) = h.call(Method::DELETE, "/api/v1/providers/local", None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    check_error(
        h.call(Method::GET, "/api/v1/providers/local", None).await,
        expect!["404 not_found: provider 'local' does not exist"],
    );
    check_error(
        h.call(Method::DELETE, "/api/v1/providers/local", None).await,
        expect!["404 not_found: provider 'local' does not exist"],
    );
    assert_eq!(h.changes(), 4);
}

#[tokio::test]
async fn set_key_answers_with_the_fingerprint_only() {
    let h = harness().await;
    let mut input = anthropic_input();
    input.as_object_mut().unwrap().remove("api_key");
    h.call(Method::POST, "/api/v1/providers", Some(input)).await;
    let (status, body) = h
        .call(
            Method::PUT,
            "/api/v1/providers/anthropic/key",
            Some(json!({"api_key": "sk-NEWKEY-abcd"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"name": "anthropic", "key_fingerprint": "…abcd"}));
    assert_eq!(h.changes(), 2);
    check_error(
        h.call(Method::PUT, "/api/v1/providers/nope/key", Some(json!({"api_key": "sk-x"}))).await,
        expect!["404 not_found: provider 'nope' does not exist"],
    );
    check_error(
        h.call(Method::PUT, "/api/v1/providers/anthropic/key", Some(json!({"api_key": "sk-SECRET\n"}))).await,
        expect!["400 invalid_request [api_key]: api_key: must not contain whitespace or control characters (a trailing newline?)"],
    );
    check_error(
        h.call(Method::PUT, "/api/v1/providers/anthropic/key", Some(json!({"api_key": ""}))).await,
        expect!["400 invalid_request [api_key]: api_key: must not be empty"],
    );
    assert_eq!(h.changes(), 2);
}

#[tokio::test]
async fn config_managed_records_are_read_only_except_the_key() {
    let h = harness().await;
    let provider = controlled_provider();
    h.store.put_provider(&provider, store::ManagedBy::Config).await.unwrap();
    h.store
        .put_group(&store::GroupRecord {
            name: "eng".into(),
            description: String::new(),
            managed_by: store::ManagedBy::Config,
        })
        .await
        .unwrap();

    let body = json!({"kind": "openai", "base_url": "https://api.openai.com"});
    check_error(
        h.call(Method::PUT, "/api/v1/providers/openai", Some(body)).await,
        expect!["409 managed_by_config: provider 'openai' is managed by the config file; change it there"],
    );
    check_error(
        h.call(Method::DELETE, "/api/v1/providers/openai", None).await,
        expect!["409 managed_by_config: provider 'openai' is managed by the config file; change it there"],
    );
    check_error(
        h.call(Method::DELETE, "/api/v1/groups/eng", None).await,
        expect![
            "409 managed_by_config: group 'eng' is managed by the config file; change it there"
        ],
    );
    check_error(
        h.call(Method::PUT, "/api/v1/groups/eng", Some(json!({"description": "x"}))).await,
        expect![
            "409 managed_by_config: group 'eng' is managed by the config file; change it there"
        ],
    );
    assert_eq!(h.changes(), 0);

    let (status, body) = h
        .call(Method::PUT, "/api/v1/providers/openai/key", Some(json!({"api_key": "sk-proj-1234"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(h.changes(), 1);
    let (_, shown) = h.call(Method::GET, "/api/v1/providers/openai", None).await;
    assert_eq!(shown["managed_by"], "config");
    assert_eq!(shown["key_fingerprint"], "…1234");
}

fn controlled_provider() -> domain::Provider {
    domain::Provider {
        name: "openai".into(),
        kind: domain::ProviderKind::OpenAi,
        base_url: "https://api.openai.com".into(),
        apis: vec![domain::Api::OpenAi],
        models: vec![],
        price_overrides: vec![],
        stamping: domain::Stamping::default(),
        azure_api_version: None,
    }
}

#[tokio::test]
async fn provider_validation_names_the_field() {
    let h = harness().await;
    let post = |body: Value| {
        let h = &h;
        async move { h.call(Method::POST, "/api/v1/providers", Some(body)).await }
    };
    check_error(
        post(json!({"name": "x", "kind": "gemini", "base_url": "https://g"})).await,
        expect!["400 invalid_request [kind]: invalid request body: kind: unknown variant `gemini`, expected one of `anthropic`, `openai`, `azure-openai`, `openai-compatible` at line 1 column 39"],
    );
    check_error(
        post(json!({"name": "x", "kind": "openai", "base_url": "ftp://g"})).await,
        expect!["400 invalid_request [base_url]: base_url: 'ftp://g' must start with https:// or http://"],
    );
    check_error(
        post(json!({"kind": "openai", "base_url": "https://g"})).await,
        expect!["400 invalid_request [name]: name: must not be empty"],
    );
    check_error(
        post(json!({"name": "bad name", "kind": "openai", "base_url": "https://g"})).await,
        expect!["400 invalid_request [name]: name: 'bad name' contains ' '; use only letters, digits, '.', '_' and '-'"],
    );
    check_error(
        post(json!({"name": "x", "kind": "openai", "base_url": "https://g", "stamping": {"preset": "kong"}})).await,
        expect!["400 invalid_request [stamping.preset]: invalid request body: stamping.preset: unknown variant `kong`, expected one of `none`, `litellm`, `portkey`, `cloudflare-ai-gateway`, `bifrost`, `openrouter` at line 1 column 78"],
    );
    check_error(
        post(json!({"name": "x", "kind": "openai", "base_url": "https://g",
                    "prices": [{"model": "m", "input_usd_per_mtok": -1, "output_usd_per_mtok": 1}]})).await,
        expect!["400 invalid_request [prices[0].input_usd_per_mtok]: prices[0].input_usd_per_mtok: must be a non-negative number of USD per million tokens"],
    );
    check_error(
        post(json!({"name": "x", "kind": "openai", "base_url": "https://g", "azure_api_version": "2024-10-21"})).await,
        expect!["400 invalid_request [azure_api_version]: azure_api_version: only applies to providers of kind azure-openai"],
    );
    check_error(
        post(json!({"name": "x", "kind": "openai", "base_url": "https://g", "modles": []})).await,
        expect!["400 invalid_request [modles]: invalid request body: modles: unknown field `modles`, expected one of `name`, `kind`, `base_url`, `apis`, `models`, `prices`, `stamping`, `azure_api_version`, `api_key` at line 1 column 48"],
    );
    check_error(
        h.raw(Method::POST, "/api/v1/providers", "{not json").await,
        expect!["400 invalid_request [?]: invalid request body: key must be a string at line 1 column 2"],
    );
    check_error(
        h.raw(Method::POST, "/api/v1/providers", "").await,
        expect!["400 invalid_request: the request body is empty; send a JSON object"],
    );
    check_error(
        h.call(
            Method::PUT,
            "/api/v1/providers/a",
            Some(json!({"name": "b", "kind": "openai", "base_url": "https://g"})),
        )
        .await,
        expect!["400 invalid_request [name]: name: 'b' does not match the name in the path, 'a'"],
    );
    // No content type is needed (curl -d sends a form type).
    let (status, _) = h
        .raw(
            Method::POST,
            "/api/v1/providers",
            r#"{"name":"ok","kind":"openai","base_url":"https://g"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(h.changes(), 1);
}

#[tokio::test]
async fn groups_and_agents_crud() {
    let h = harness().await;
    let (status, group) = h
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "eng", "description": "engineers"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(group, json!({"name": "eng", "description": "engineers", "managed_by": "api"}));
    let (status, agent) = h
        .call(
            Method::POST,
            "/api/v1/agents",
            Some(json!({"name": "ci-bot", "groups": ["eng", "Data Science", "eng"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        agent,
        json!({"name": "ci-bot", "description": "", "groups": ["eng", "Data Science"], "managed_by": "api"})
    );
    let (_, agents) = h.call(Method::GET, "/api/v1/agents", None).await;
    assert_eq!(agents, json!([agent]));
    let (status, _) =
        h.call(Method::PUT, "/api/v1/agents/ci-bot", Some(json!({"groups": []}))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, shown) = h.call(Method::GET, "/api/v1/agents/ci-bot", None).await;
    assert_eq!(shown["groups"], json!([]));
    check_error(
        h.call(Method::POST, "/api/v1/agents", Some(json!({"name": "x", "groups": [""]}))).await,
        expect!["400 invalid_request [groups[0]]: groups[0]: must not be empty"],
    );
    check_error(
        h.call(Method::GET, "/api/v1/groups/nope", None).await,
        expect!["404 not_found: group 'nope' does not exist"],
    );
    let (status, _) = h.call(Method::DELETE, "/api/v1/agents/ci-bot", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = h.call(Method::DELETE, "/api/v1/groups/eng", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.changes(), 5);
    let (_, groups) = h.call(Method::GET, "/api/v1/groups", None).await;
    assert_eq!(groups, json!([]));
}

#[tokio::test]
async fn policies_crud_and_validation() {
    let h = harness().await;
    let input = json!({
        "name": "eng-claude",
        "sources": {"groups": ["eng"], "users": ["ada@example.com"], "agents": ["ci-bot"], "everyone": false},
        "providers": ["anthropic"],
        "models": ["claude-sonnet-*"]
    });
    let (status, created) = h.call(Method::POST, "/api/v1/policies", Some(input)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        created["sources"],
        json!({"groups": ["eng"], "users": ["ada@example.com"], "agents": ["ci-bot"], "everyone": false})
    );
    assert_eq!(created["models"], json!(["claude-sonnet-*"]));
    let stored = h.store.policies().await.unwrap();
    assert_eq!(
        stored[0].policy.sources,
        vec![
            domain::Source::Group("eng".into()),
            domain::Source::User("ada@example.com".into()),
            domain::Source::Agent("ci-bot".into()),
        ]
    );

    check_error(
        h.call(Method::POST, "/api/v1/policies", Some(json!({"name": "p", "providers": ["anthropic"]}))).await,
        expect!["400 invalid_request [sources]: sources: a policy needs at least one source: groups, users, agents, or everyone"],
    );
    check_error(
        h.call(Method::POST, "/api/v1/policies", Some(json!({"name": "p", "sources": {"everyone": true}}))).await,
        expect!["400 invalid_request [providers]: providers: a policy needs at least one provider to open"],
    );
    check_error(
        h.call(Method::POST, "/api/v1/policies", Some(json!({"name": "p", "sources": {"groups": ["eng"], "user": []}, "providers": ["x"]}))).await,
        expect!["400 invalid_request [sources.user]: invalid request body: sources.user: unknown field `user`, expected one of `groups`, `users`, `agents`, `everyone` at line 1 column 64"],
    );
    let (status, replaced) = h
        .call(
            Method::PUT,
            "/api/v1/policies/eng-claude",
            Some(json!({"sources": {"everyone": true}, "providers": ["anthropic"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replaced["sources"]["everyone"], true);
    assert_eq!(replaced["models"], json!([]));
    let (status, _) = h.call(Method::DELETE, "/api/v1/policies/eng-claude", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.changes(), 3);
}

fn usage_record(
    id: &str,
    at_ms: i64,
    principal: Option<&str>,
    cost: Option<i64>,
) -> store::UsageRecord {
    store::UsageRecord {
        id: id.into(),
        at_ms,
        principal_kind: principal.map(|_| "user".into()),
        principal: principal.map(Into::into),
        subject: None,
        groups: vec!["eng".into()],
        policy: Some("eng-claude".into()),
        provider: Some("anthropic".into()),
        api: "anthropic".into(),
        endpoint: "messages".into(),
        model: Some("claude-sonnet-4-5".into()),
        stream: true,
        status: if principal.is_some() { 200 } else { 401 },
        reason: if principal.is_some() { "ok".into() } else { "unauthenticated".into() },
        latency_ms: 1200,
        ttfb_ms: Some(300),
        input_tokens: 100,
        output_tokens: 50,
        cache_creation_tokens: 10,
        cache_read_tokens: 1000,
        reasoning_tokens: 0,
        cost_micro_usd: cost,
        usage_reported: true,
        session_id: None,
    }
}

#[tokio::test]
async fn usage_and_logs_with_filters() {
    let h = harness().await;
    h.store
        .insert_usage(&[
            usage_record("a", 1_700_000_000_000, Some("ada@example.com"), Some(1_500)),
            usage_record("b", 1_700_000_060_000, Some("bob@example.com"), None),
            usage_record("c", 1_700_000_120_000, None, None),
        ])
        .await
        .unwrap();
    let (status, all) = h.call(Method::GET, "/api/v1/usage", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> =
        all.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c", "b", "a"]);
    let (_, ada) = h.call(Method::GET, "/api/v1/logs?principal=ada%40example.com", None).await;
    let ada = &ada[0];
    assert_eq!(ada["at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(
        (ada["cost_micro_usd"].clone(), ada["cost_usd"].clone(), ada["cost_known"].clone()),
        (json!(1500), json!(0.0015), json!(true))
    );
    let (_, bob) = h
        .call(
            Method::GET,
            "/api/v1/usage?since=2023-11-14T22:14:00Z&until=2023-11-14T22:15:00Z",
            None,
        )
        .await;
    assert_eq!(bob.as_array().unwrap().len(), 1);
    assert_eq!(
        (bob[0]["id"].clone(), bob[0]["cost_usd"].clone(), bob[0]["cost_known"].clone()),
        (json!("b"), Value::Null, json!(false))
    );
    let (_, limited) = h.call(Method::GET, "/api/v1/usage?limit=1&reason=ok", None).await;
    assert_eq!(limited.as_array().unwrap().len(), 1);
    assert_eq!(limited[0]["id"], "b");
    check_error(
        h.call(Method::GET, "/api/v1/usage?since=24h", None).await,
        expect!["400 invalid_request [since]: since: '24h' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): it is too short"],
    );
    check_error(
        h.call(Method::GET, "/api/v1/usage?princpal=x", None).await,
        expect!["400 invalid_request: invalid query string: unknown field `princpal`, expected one of `principal`, `group`, `policy`, `provider`, `model`, `reason`, `since`, `until`, `limit`"],
    );
    check_error(
        h.call(Method::GET, "/api/v1/usage?limit=many", None).await,
        expect!["400 invalid_request: invalid query string: invalid digit found in string"],
    );
}

#[tokio::test]
async fn summary_groups_by_principal_over_many_records() {
    let h = harness().await;
    // 2500 records, more than a page of `/usage`, many sharing a millisecond.
    let mut records = Vec::new();
    for i in 0..2500i64 {
        let who = match i % 5 {
            0 => None,
            1 | 2 => Some("ada@example.com"),
            _ => Some("bob@example.com"),
        };
        let cost = if i % 10 == 3 { None } else { Some(100) };
        records.push(usage_record(&format!("r{i:05}"), 1_700_000_000_000 + i / 7, who, cost));
    }
    h.store.insert_usage(&records).await.unwrap();
    let (status, summary) = h.call(Method::GET, "/api/v1/usage/summary", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary["total"]["requests"], 2500);
    assert_eq!(summary["total"]["failed_requests"], 500);
    assert_eq!(summary["total"]["unknown_cost_requests"], 250);
    assert_eq!(summary["total"]["cost_micro_usd"], 2250 * 100);
    assert_eq!(summary["total"]["total_tokens"], 2500 * 1160);
    let rows: Vec<String> = summary["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {}",
                p["principal"], p["requests"], p["cost_micro_usd"], p["unknown_cost_requests"]
            )
        })
        .collect();
    expect![[r#"
        [
            "\"ada@example.com\" 1000 100000 0",
            "\"bob@example.com\" 1000 75000 250",
            "null 500 50000 0",
        ]
    "#]]
    .assert_debug_eq(&rows);

    let (_, ada) =
        h.call(Method::GET, "/api/v1/usage/summary?principal=ada%40example.com", None).await;
    assert_eq!(ada["principals"].as_array().unwrap().len(), 1);
    assert_eq!(ada["total"]["requests"], 1000);
}

#[tokio::test]
async fn usage_and_summaries_by_policy() {
    let h = harness().await;
    let at = 1_700_000_000_000;
    let mut other = usage_record("other", at + 1, Some("bob@example.com"), Some(2_000));
    other.policy = Some("sales".into());
    let mut refused = usage_record("refused", at + 2, Some("ada@example.com"), None);
    refused.policy = None;
    refused.status = 403;
    refused.reason = "no_policy".into();
    h.store
        .insert_usage(&[
            usage_record("eng-1", at, Some("ada@example.com"), Some(1_500)),
            usage_record("eng-2", at + 3, Some("bob@example.com"), Some(500)),
            other,
            refused,
        ])
        .await
        .unwrap();
    let (status, eng) = h.call(Method::GET, "/api/v1/usage/summary?policy=eng-claude", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(eng["total"]["requests"], 2);
    assert_eq!(eng["total"]["cost_micro_usd"], 2_000);
    assert_eq!(eng["principals"].as_array().unwrap().len(), 2);
    let (_, sales) = h
        .call(Method::GET, "/api/v1/usage/summary?policy=sales&principal=bob%40example.com", None)
        .await;
    assert_eq!(sales["total"]["requests"], 1);
    assert_eq!(sales["total"]["cost_micro_usd"], 2_000);
    let (_, records) = h.call(Method::GET, "/api/v1/logs?policy=eng-claude", None).await;
    let ids: Vec<&str> =
        records.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["eng-2", "eng-1"]);
    let (_, none) = h.call(Method::GET, "/api/v1/usage?policy=nope", None).await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn openapi_document_covers_every_route() {
    let h = harness().await;
    let (status, doc) = h.call(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut paths: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            paths.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    paths.sort();
    expect![[r#"
        [
            "DELETE /api/v1/agents/{name}",
            "DELETE /api/v1/groups/{name}",
            "DELETE /api/v1/limits/{name}",
            "DELETE /api/v1/me/peers/{id}",
            "DELETE /api/v1/peers/{id}",
            "DELETE /api/v1/policies/{name}",
            "DELETE /api/v1/providers/{name}",
            "DELETE /api/v1/scim/token",
            "DELETE /api/v1/sessions",
            "DELETE /api/v1/sessions/{id}",
            "DELETE /api/v1/setup-keys/{name}",
            "DELETE /api/v1/users/{username}",
            "GET /api/v1/agents",
            "GET /api/v1/agents/{name}",
            "GET /api/v1/audit",
            "GET /api/v1/groups",
            "GET /api/v1/groups/{name}",
            "GET /api/v1/limits",
            "GET /api/v1/limits/{name}",
            "GET /api/v1/logs",
            "GET /api/v1/me",
            "GET /api/v1/me/peers",
            "GET /api/v1/openapi.json",
            "GET /api/v1/peers",
            "GET /api/v1/peers/{id}",
            "GET /api/v1/policies",
            "GET /api/v1/policies/{name}",
            "GET /api/v1/providers",
            "GET /api/v1/providers/{name}",
            "GET /api/v1/scim",
            "GET /api/v1/sessions",
            "GET /api/v1/sessions/{id}",
            "GET /api/v1/setup-keys",
            "GET /api/v1/setup-keys/{name}",
            "GET /api/v1/usage",
            "GET /api/v1/usage/summary",
            "GET /api/v1/users",
            "GET /api/v1/users/{username}",
            "PATCH /api/v1/peers/{id}",
            "POST /api/v1/agents",
            "POST /api/v1/groups",
            "POST /api/v1/limits",
            "POST /api/v1/me/peers",
            "POST /api/v1/policies",
            "POST /api/v1/providers",
            "POST /api/v1/scim/token",
            "POST /api/v1/setup-keys",
            "POST /api/v1/users",
            "PUT /api/v1/agents/{name}",
            "PUT /api/v1/groups/{name}",
            "PUT /api/v1/limits/{name}",
            "PUT /api/v1/policies/{name}",
            "PUT /api/v1/providers/{name}",
            "PUT /api/v1/providers/{name}/key",
            "PUT /api/v1/users/{username}",
            "PUT /api/v1/users/{username}/password",
        ]
    "#]]
    .assert_debug_eq(&paths);
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Provider",
        "ProviderInput",
        "SetKeyRequest",
        "Policy",
        "Limit",
        "LimitPer",
        "GlobalLimit",
        "GlobalLimitInput",
        "UsageRecord",
        "UsageSummary",
        "ErrorBody",
        "SelfView",
        "LimitUse",
        "LimitOwnerKind",
        "AuditEntry",
        "ScimToken",
        "ScimStatus",
        "PeerRegistration",
        "PeerView",
        "TunnelConfig",
        "PeerRename",
    ] {
        assert!(schemas.contains_key(name), "missing schema {name}");
    }
    // `/me` takes the caller's bearer token; the rest of the API does not.
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(doc["paths"]["/api/v1/me"]["get"]["security"], json!([{"bearer": []}]));
    assert_eq!(doc["paths"]["/api/v1/me/peers"]["post"]["security"], json!([{"bearer": []}]));
    assert!(doc["paths"]["/api/v1/peers"]["get"].get("security").is_none());
    assert!(doc["paths"]["/api/v1/groups"]["get"].get("security").is_none());
    // The response schema of a provider has no field that could carry a key.
    let provider = schemas["Provider"]["properties"].as_object().unwrap();
    assert!(!provider.contains_key("api_key"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let h = harness().await;
    check_error(
        h.call(Method::GET, "/api/v1/nope", None).await,
        expect!["404 not_found: no such route: /api/v1/nope"],
    );
    check_error(
        h.call(Method::PATCH, "/api/v1/providers", None).await,
        expect!["405 method_not_allowed: method PATCH is not allowed here"],
    );
}

/// One body per kind of record, each valid for POST.
fn post_cases(suffix: &str) -> Vec<(&'static str, Value)> {
    let mut with_key = anthropic_input();
    with_key["name"] = json!(format!("keyed{suffix}"));
    vec![
        (
            "/api/v1/providers",
            json!({"name": format!("p{suffix}"), "kind": "openai", "base_url": "https://g"}),
        ),
        ("/api/v1/providers", with_key),
        ("/api/v1/groups", json!({"name": format!("g{suffix}")})),
        ("/api/v1/agents", json!({"name": format!("a{suffix}")})),
        (
            "/api/v1/policies",
            json!({"name": format!("pol{suffix}"), "sources": {"everyone": true}, "providers": ["p"]}),
        ),
        (
            "/api/v1/limits",
            json!({"name": format!("lim{suffix}"), "targets": {"everyone": true}, "requests": 60, "window": "1m"}),
        ),
    ]
}

/// Two answers to the same POST: exactly one 201 and one 409 `already_exists`.
fn assert_one_created((a, b): ((StatusCode, Value), (StatusCode, Value)), path: &str) {
    let (created, conflict) = if a.0 == StatusCode::CREATED { (a, b) } else { (b, a) };
    assert_eq!(created.0, StatusCode::CREATED, "{path}: {}", created.1);
    assert_eq!(conflict.0, StatusCode::CONFLICT, "{path}: {}", conflict.1);
    assert_eq!(conflict.1["error"]["code"], "already_exists", "{path}");
}

#[tokio::test]
async fn concurrent_posts_create_exactly_once() {
    let h = harness().await;
    for (i, (path, body)) in post_cases("").into_iter().enumerate() {
        // `join!` interleaves both requests at every await: without an atomic insert both
        // would pass an existence check before either wrote.
        let answers = tokio::join!(
            h.call(Method::POST, path, Some(body.clone())),
            h.call(Method::POST, path, Some(body)),
        );
        assert_one_created(answers, path);
        assert_eq!(h.changes(), i + 1, "{path}: one change per creation");
    }
    // The provider created with a key has it, once.
    let keyed = h.store.provider("keyed").await.unwrap().unwrap();
    assert_eq!(keyed.key_fingerprint.as_deref(), Some("…wxyz"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_on_a_database_file_create_exactly_once() {
    let dir = std::env::temp_dir().join(format!("agentnet-control-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store =
        store::Store::open(&dir.join("agentnet.db"), &store::MasterKey::generate().unwrap())
            .await
            .unwrap();
    let h = Arc::new(harness_on(store.clone()));
    for round in 0..10 {
        for (path, body) in post_cases(&format!("-{round}")) {
            let post = |body: Value| {
                let h = h.clone();
                tokio::spawn(async move { h.call(Method::POST, path, Some(body)).await })
            };
            let (a, b) = (post(body.clone()), post(body));
            assert_one_created((a.await.unwrap(), b.await.unwrap()), path);
        }
    }
    assert_eq!(h.changes(), 10 * 6);
    assert_eq!(store.global_limits().await.unwrap().len(), 10);
    assert_eq!(store.providers().await.unwrap().len(), 20);
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn config_managed_records_cannot_be_deleted_or_replaced() {
    let h = harness().await;
    h.store.put_provider(&controlled_provider(), store::ManagedBy::Config).await.unwrap();
    h.store
        .put_group(&store::GroupRecord {
            name: "eng".into(),
            description: String::new(),
            managed_by: store::ManagedBy::Config,
        })
        .await
        .unwrap();
    h.store
        .put_agent(&store::AgentRecord {
            name: "ci-bot".into(),
            description: String::new(),
            groups: vec![],
            managed_by: store::ManagedBy::Config,
        })
        .await
        .unwrap();
    h.store
        .put_policy(
            &domain::Policy {
                name: "all".into(),
                sources: vec![domain::Source::Everyone],
                providers: vec!["openai".into()],
                models: vec![],
                max_tokens: None,
                limits: vec![],
            },
            store::ManagedBy::Config,
        )
        .await
        .unwrap();

    let mut answers = Vec::new();
    for (path, body) in [
        (
            "/api/v1/providers/openai",
            json!({"kind": "openai", "base_url": "https://other.example.com"}),
        ),
        ("/api/v1/groups/eng", json!({"description": "x"})),
        ("/api/v1/agents/ci-bot", json!({"groups": ["x"]})),
        ("/api/v1/policies/all", json!({"sources": {"groups": ["x"]}, "providers": ["openai"]})),
    ] {
        for (method, body) in [(Method::DELETE, None), (Method::PUT, Some(body))] {
            let (status, error) = h.call(method.clone(), path, body).await;
            answers.push(format!(
                "{method} {path}: {} {}",
                status.as_u16(),
                error["error"]["message"].as_str().unwrap_or("?")
            ));
        }
    }
    expect![[r#"
        [
            "DELETE /api/v1/providers/openai: 409 provider 'openai' is managed by the config file; change it there",
            "PUT /api/v1/providers/openai: 409 provider 'openai' is managed by the config file; change it there",
            "DELETE /api/v1/groups/eng: 409 group 'eng' is managed by the config file; change it there",
            "PUT /api/v1/groups/eng: 409 group 'eng' is managed by the config file; change it there",
            "DELETE /api/v1/agents/ci-bot: 409 agent 'ci-bot' is managed by the config file; change it there",
            "PUT /api/v1/agents/ci-bot: 409 agent 'ci-bot' is managed by the config file; change it there",
            "DELETE /api/v1/policies/all: 409 policy 'all' is managed by the config file; change it there",
            "PUT /api/v1/policies/all: 409 policy 'all' is managed by the config file; change it there",
        ]
    "#]]
    .assert_debug_eq(&answers);
    assert_eq!(h.changes(), 0);

    // Everything is still there, unchanged.
    let provider = h.store.provider("openai").await.unwrap().unwrap();
    assert_eq!(provider.provider.base_url, "https://api.openai.com");
    assert_eq!(provider.managed_by, store::ManagedBy::Config);
    assert_eq!(h.store.group("eng").await.unwrap().unwrap().description, "");
    assert_eq!(h.store.agent("ci-bot").await.unwrap().unwrap().groups, Vec::<String>::new());
    assert_eq!(
        h.store.policy("all").await.unwrap().unwrap().policy.sources,
        vec![domain::Source::Everyone]
    );

    // POST of a config-managed name is a conflict too.
    check_error(
        h.call(Method::POST, "/api/v1/groups", Some(json!({"name": "eng"}))).await,
        expect!["409 already_exists: group 'eng' already exists"],
    );
    // DELETE of what does not exist is a 404 for every kind.
    for kind in ["providers", "groups", "agents", "policies"] {
        let (status, body) = h.call(Method::DELETE, &format!("/api/v1/{kind}/nope"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{kind}: {body}");
    }
    assert_eq!(h.changes(), 0);
}

#[tokio::test]
async fn summary_totals_are_exact() {
    let h = harness().await;
    let at = 1_700_000_000_000;
    let mut agent = usage_record("agent-1", at + 1, Some("ci-bot"), Some(2_000_000));
    agent.principal_kind = Some("agent".into());
    agent.groups = vec!["bots".into()];
    agent.reasoning_tokens = 20;
    let mut failed = usage_record("ada-2", at + 2, Some("ada@example.com"), None);
    failed.status = 502;
    failed.reason = "upstream_error".into();
    failed.input_tokens = 7;
    failed.output_tokens = 0;
    failed.cache_creation_tokens = 0;
    failed.cache_read_tokens = 0;
    h.store
        .insert_usage(&[
            usage_record("ada-1", at, Some("ada@example.com"), Some(1_500)),
            failed,
            usage_record("ada-3", at + 3, Some("ada@example.com"), Some(500)),
            agent,
            usage_record("anon", at + 4, None, None),
        ])
        .await
        .unwrap();

    let (status, summary) = h.call(Method::GET, "/api/v1/usage/summary", None).await;
    assert_eq!(status, StatusCode::OK);
    expect![[r#"
        {
          "principals": [
            {
              "cache_creation_tokens": 10,
              "cache_read_tokens": 1000,
              "cost_micro_usd": 2000000,
              "cost_usd": 2.0,
              "failed_requests": 0,
              "input_tokens": 100,
              "output_tokens": 50,
              "principal": "ci-bot",
              "principal_kind": "agent",
              "reasoning_tokens": 20,
              "requests": 1,
              "total_tokens": 1160,
              "unknown_cost_requests": 0
            },
            {
              "cache_creation_tokens": 20,
              "cache_read_tokens": 2000,
              "cost_micro_usd": 2000,
              "cost_usd": 0.002,
              "failed_requests": 1,
              "input_tokens": 207,
              "output_tokens": 100,
              "principal": "ada@example.com",
              "principal_kind": "user",
              "reasoning_tokens": 0,
              "requests": 3,
              "total_tokens": 2327,
              "unknown_cost_requests": 1
            },
            {
              "cache_creation_tokens": 10,
              "cache_read_tokens": 1000,
              "cost_micro_usd": 0,
              "cost_usd": 0.0,
              "failed_requests": 1,
              "input_tokens": 100,
              "output_tokens": 50,
              "principal": null,
              "principal_kind": null,
              "reasoning_tokens": 0,
              "requests": 1,
              "total_tokens": 1160,
              "unknown_cost_requests": 1
            }
          ],
          "total": {
            "cache_creation_tokens": 40,
            "cache_read_tokens": 4000,
            "cost_micro_usd": 2002000,
            "cost_usd": 2.002,
            "failed_requests": 2,
            "input_tokens": 407,
            "output_tokens": 200,
            "reasoning_tokens": 20,
            "requests": 5,
            "total_tokens": 4647,
            "unknown_cost_requests": 2
          }
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&summary).unwrap());

    // Filters narrow what is added up: a group, a time range.
    let (_, bots) = h.call(Method::GET, "/api/v1/usage/summary?group=bots", None).await;
    assert_eq!(bots["principals"].as_array().unwrap().len(), 1);
    assert_eq!(bots["total"]["cost_micro_usd"], 2_000_000);
    let (_, range) = h
        .call(
            Method::GET,
            "/api/v1/usage/summary?since=2023-11-14T22:13:20.002Z&until=2023-11-14T22:13:20.004Z",
            None,
        )
        .await;
    assert_eq!(range["total"]["requests"], 2);
    assert_eq!(range["total"]["failed_requests"], 1);
    assert_eq!(range["total"]["cost_micro_usd"], 500);
    assert_eq!(range["total"]["unknown_cost_requests"], 1);
    // `limit` bounds records, not what a summary adds up.
    let (_, limited) = h.call(Method::GET, "/api/v1/usage/summary?limit=1", None).await;
    assert_eq!(limited["total"]["requests"], 5);

    let (status, empty) = h.call(Method::GET, "/api/v1/usage/summary?principal=nobody", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["principals"], json!([]));
    assert_eq!(empty["total"]["requests"], 0);
    assert_eq!(empty["total"]["cost_micro_usd"], 0);
}

#[tokio::test]
async fn policies_carry_max_tokens_and_limits() {
    let h = harness().await;
    let input = json!({
        "name": "eng",
        "sources": {"groups": ["eng"]},
        "providers": ["anthropic"],
        "max_tokens": 8192,
        "limits": [
            {"spend_usd": 500, "per": "user", "window": "30d"},
            {"tokens": 400000, "window": "60s"},
            {"requests": 60, "per": "group", "window": "1m"},
        ]
    });
    let (status, created) = h.call(Method::POST, "/api/v1/policies", Some(input)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    expect![[r#"{"limits":[{"per":"user","spend_usd":500.0,"window":"30d"},{"per":"user","tokens":400000,"window":"1m"},{"per":"group","requests":60,"window":"1m"}],"max_tokens":8192}"#]]
        .assert_eq(
            &json!({"max_tokens": created["max_tokens"], "limits": created["limits"]}).to_string(),
        );
    let stored = h.store.policy("eng").await.unwrap().unwrap().policy;
    assert_eq!(stored.max_tokens, Some(8192));
    assert_eq!(
        stored.limits,
        vec![
            domain::Limit {
                metric: domain::Metric::Spend,
                per: domain::Per::User,
                cap: 500_000_000,
                window_secs: 2_592_000
            },
            domain::Limit {
                metric: domain::Metric::Tokens,
                per: domain::Per::User,
                cap: 400_000,
                window_secs: 60
            },
            domain::Limit {
                metric: domain::Metric::Requests,
                per: domain::Per::Group,
                cap: 60,
                window_secs: 60
            },
        ]
    );
    // The answer is a valid input: PUT it back unchanged.
    let mut again = created.clone();
    for key in ["managed_by", "updated_at"] {
        again.as_object_mut().unwrap().remove(key);
    }
    let (status, replaced) = h.call(Method::PUT, "/api/v1/policies/eng", Some(again)).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["limits"], created["limits"]);
    // A PUT without them clears them.
    let (_, cleared) = h
        .call(
            Method::PUT,
            "/api/v1/policies/eng",
            Some(json!({"sources": {"groups": ["eng"]}, "providers": ["anthropic"]})),
        )
        .await;
    assert_eq!((&cleared["max_tokens"], &cleared["limits"]), (&Value::Null, &json!([])));
    assert_eq!(h.changes(), 3);

    let post = |extra: Value| {
        let mut body = json!({"name": "p", "sources": {"everyone": true}, "providers": ["x"]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        h.call(Method::POST, "/api/v1/policies", Some(body))
    };
    check_error(
        post(json!({"max_tokens": 0})).await,
        expect!["400 invalid_request [max_tokens]: max_tokens: must be at least 1; leave it out for no ceiling"],
    );
    check_error(
        post(json!({"limits": [{"tokens": 1, "window": "1h"}, {"window": "1h"}]})).await,
        expect!["400 invalid_request [limits[1]]: limits[1]: a limit needs one of spend_usd, tokens or requests"],
    );
    check_error(
        post(json!({"limits": [{"tokens": 1, "requests": 2, "window": "1h"}]})).await,
        expect!["400 invalid_request [limits[0].requests]: limits[0].requests: a limit sets exactly one of spend_usd, tokens or requests, not tokens and requests"],
    );
    check_error(
        post(json!({"limits": [{"spend_usd": 2e9, "window": "1h"}]})).await,
        expect!["400 invalid_request [limits[0].spend_usd]: limits[0].spend_usd: must be between 0 and 1000000000 USD"],
    );
    check_error(
        post(json!({"limits": [{"tokens": 5, "window": "30s"}]})).await,
        expect!["400 invalid_request [limits[0].window]: limits[0].window: '30s' is shorter than one minute (1m), the shortest window"],
    );
    check_error(
        post(json!({"limits": [{"tokens": 5}]})).await,
        expect!["400 invalid_request [limits[0].window]: limits[0].window: is required: a whole number and a unit s, m, h or d, e.g. 1m, 24h, 30d"],
    );
    check_error(
        post(json!({"limits": [{"tokens": -5, "window": "1h"}]})).await,
        expect!["400 invalid_request [limits[0].tokens]: invalid request body: limits[0].tokens: invalid value: integer `-5`, expected u64 at line 1 column 23"],
    );
    check_error(
        post(json!({"limits": [{"tokens": 5, "per": "team", "window": "1h"}]})).await,
        expect!["400 invalid_request [limits[0].per]: invalid request body: limits[0].per: unknown variant `team`, expected `user` or `group` at line 1 column 24"],
    );
    assert_eq!(h.changes(), 3);
}

fn global_input() -> Value {
    json!({
        "name": "daily-spend",
        "targets": {"everyone": true, "groups": ["contractors"]},
        "spend_usd": 20.5,
        "window": "24h"
    })
}

#[tokio::test]
async fn global_limits_crud() {
    let h = harness().await;
    let (_, list) = h.call(Method::GET, "/api/v1/limits", None).await;
    assert_eq!(list, json!([]));

    let (status, created) = h.call(Method::POST, "/api/v1/limits", Some(global_input())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(h.changes(), 1);
    let mut shown = created.clone();
    shown["updated_at"] = json!("-");
    expect![[r#"{"managed_by":"api","name":"daily-spend","per":"user","spend_usd":20.5,"targets":{"agents":[],"everyone":true,"groups":["contractors"],"users":[]},"updated_at":"-","window":"1d"}"#]]
        .assert_eq(&shown.to_string());
    let stored = h.store.global_limit("daily-spend").await.unwrap().unwrap();
    assert_eq!(
        stored.limit.targets,
        vec![domain::Source::Everyone, domain::Source::Group("contractors".into())]
    );
    assert_eq!(
        stored.limit.limit,
        domain::Limit {
            metric: domain::Metric::Spend,
            per: domain::Per::User,
            cap: 20_500_000,
            window_secs: 86_400
        }
    );
    assert_eq!(stored.managed_by, store::ManagedBy::Api);

    let (status, one) = h.call(Method::GET, "/api/v1/limits/daily-spend", None).await;
    assert_eq!((status, &one), (StatusCode::OK, &created));
    let (_, list) = h.call(Method::GET, "/api/v1/limits", None).await;
    assert_eq!(list, json!([created]));

    check_error(
        h.call(Method::POST, "/api/v1/limits", Some(global_input())).await,
        expect!["409 already_exists: global limit 'daily-spend' already exists"],
    );

    // PUT replaces (the body's name may be left out).
    let (status, replaced) = h
        .call(
            Method::PUT,
            "/api/v1/limits/daily-spend",
            Some(json!({"targets": {"agents": ["ci-bot"]}, "requests": 60, "per": "group", "window": "60m"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(
        (&replaced["requests"], &replaced["per"], &replaced["window"]),
        (&json!(60), &json!("group"), &json!("1h"))
    );
    assert!(replaced.get("spend_usd").is_none());
    assert_eq!(replaced["targets"]["agents"], json!(["ci-bot"]));
    // PUT of a new name creates.
    let (status, _) = h
        .call(
            Method::PUT,
            "/api/v1/limits/bots",
            Some(json!({"name": "bots", "targets": {"groups": ["bots"]}, "tokens": 0, "window": "1d"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    check_error(
        h.call(
            Method::PUT,
            "/api/v1/limits/bots",
            Some(json!({"name": "other", "targets": {"everyone": true}, "tokens": 1, "window": "1d"})),
        )
        .await,
        expect!["400 invalid_request [name]: name: 'other' does not match the name in the path, 'bots'"],
    );
    assert_eq!(h.changes(), 3);

    let (status, body) = h.call(Method::DELETE, "/api/v1/limits/bots", None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    check_error(
        h.call(Method::GET, "/api/v1/limits/bots", None).await,
        expect!["404 not_found: global limit 'bots' does not exist"],
    );
    check_error(
        h.call(Method::DELETE, "/api/v1/limits/bots", None).await,
        expect!["404 not_found: global limit 'bots' does not exist"],
    );
    assert_eq!(h.changes(), 4);
}

#[tokio::test]
async fn global_limit_validation_names_the_field() {
    let h = harness().await;
    let post = |change: Value| {
        let mut body = global_input();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        h.call(Method::POST, "/api/v1/limits", Some(body))
    };
    check_error(
        post(json!({"name": null})).await,
        expect!["400 invalid_request [name]: name: must not be empty"],
    );
    check_error(
        post(json!({"targets": null})).await,
        expect!["400 invalid_request [targets]: targets: a global limit needs at least one target: groups, users, agents, or everyone"],
    );
    check_error(
        post(json!({"targets": {"users": [" ada@example.com"]}})).await,
        expect!["400 invalid_request [targets.users[0]]: targets.users[0]: ' ada@example.com' has surrounding whitespace"],
    );
    check_error(
        post(json!({"spend_usd": null})).await,
        expect!["400 invalid_request [limit]: limit: a limit needs one of spend_usd, tokens or requests"],
    );
    check_error(
        post(json!({"tokens": 5})).await,
        expect!["400 invalid_request [tokens]: tokens: a limit sets exactly one of spend_usd, tokens or requests, not spend_usd and tokens"],
    );
    check_error(
        post(json!({"spend_usd": -0.01})).await,
        expect!["400 invalid_request [spend_usd]: spend_usd: must be between 0 and 1000000000 USD"],
    );
    check_error(
        post(json!({"window": "59s"})).await,
        expect!["400 invalid_request [window]: window: '59s' is shorter than one minute (1m), the shortest window"],
    );
    check_error(
        post(json!({"window": "1 day"})).await,
        expect!["400 invalid_request [window]: window: '1 day' is not a window: use a whole number and a unit s, m, h or d, e.g. 1m, 24h, 30d"],
    );
    check_error(
        post(json!({"window": null})).await,
        expect!["400 invalid_request [window]: window: is required: a whole number and a unit s, m, h or d, e.g. 1m, 24h, 30d"],
    );
    check_error(
        post(json!({"cap": 5})).await,
        expect!["400 invalid_request [cap]: invalid request body: cap: unknown field `cap`, expected one of `name`, `targets`, `spend_usd`, `tokens`, `requests`, `per`, `window` at line 1 column 6"],
    );
    assert_eq!(h.changes(), 0);
    assert!(h.store.global_limits().await.unwrap().is_empty());
}

#[tokio::test]
async fn config_managed_global_limits_are_read_only() {
    let h = harness().await;
    h.store
        .put_global_limit(
            &domain::GlobalLimit {
                name: "everyone".into(),
                targets: vec![domain::Source::Everyone],
                limit: domain::Limit {
                    metric: domain::Metric::Requests,
                    per: domain::Per::User,
                    cap: 60,
                    window_secs: 60,
                },
            },
            store::ManagedBy::Config,
        )
        .await
        .unwrap();
    let (_, shown) = h.call(Method::GET, "/api/v1/limits/everyone", None).await;
    assert_eq!(shown["managed_by"], "config");
    check_error(
        h.call(
            Method::PUT,
            "/api/v1/limits/everyone",
            Some(json!({"targets": {"everyone": true}, "requests": 1000, "window": "1m"})),
        )
        .await,
        expect!["409 managed_by_config: global limit 'everyone' is managed by the config file; change it there"],
    );
    check_error(
        h.call(Method::DELETE, "/api/v1/limits/everyone", None).await,
        expect!["409 managed_by_config: global limit 'everyone' is managed by the config file; change it there"],
    );
    check_error(
        h.call(
            Method::POST,
            "/api/v1/limits",
            Some(json!({"name": "everyone", "targets": {"everyone": true}, "requests": 1, "window": "1m"})),
        )
        .await,
        expect!["409 already_exists: global limit 'everyone' already exists"],
    );
    assert_eq!(h.changes(), 0);
    let stored = h.store.global_limit("everyone").await.unwrap().unwrap();
    assert_eq!(stored.limit.limit.cap, 60);
    assert_eq!(stored.managed_by, store::ManagedBy::Config);
}
