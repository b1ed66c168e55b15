//! The audit log through the admin router: one entry per successful mutation with the record's
//! DTO before and after, none for a refused one, keys never in it, the actor from the request
//! extension, and `GET /audit` filters.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{body::Body, Router};
use expect_test::expect;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{router, Actor, ControlState};

struct Harness {
    router: Router,
    store: store::Store,
    changes: Arc<AtomicUsize>,
}

async fn harness_as(actor: Option<Actor>) -> Harness {
    let store = store::Store::in_memory(&store::MasterKey::generate().unwrap()).await.unwrap();
    let changes = Arc::new(AtomicUsize::new(0));
    let counter = changes.clone();
    let state = ControlState::new(store.clone(), move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let router = match actor {
        // What the server does: an extension layer on the router it serves.
        Some(actor) => router(state).layer(axum::Extension(actor)),
        None => router(state),
    };
    Harness { router, store, changes }
}

async fn harness() -> Harness {
    harness_as(None).await
}

impl Harness {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.send(Request::builder().method(method).uri(path), body).await
    }

    async fn send(
        &self,
        request: http::request::Builder,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let request =
            request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (status, value)
    }

    /// Every entry, oldest first, as the store has them.
    async fn entries(&self) -> Vec<store::AuditEntry> {
        let q = store::AuditQuery { limit: Some(1000), ..Default::default() };
        let mut all = self.store.audit(&q).await.unwrap();
        all.reverse();
        all
    }

    /// The entry the last call recorded, asserting it recorded exactly one (`seen` before it).
    async fn one_new(&self, seen: &mut usize) -> store::AuditEntry {
        let all = self.entries().await;
        assert_eq!(all.len(), *seen + 1, "exactly one new entry: {:#?}", &all[*seen..]);
        *seen += 1;
        all.last().unwrap().clone()
    }

    async fn none_new(&self, seen: usize) {
        assert_eq!(self.entries().await.len(), seen, "a refused request records nothing");
    }

    fn changes(&self) -> usize {
        self.changes.load(Ordering::SeqCst)
    }
}

/// One kind of record: its collection path, a valid body to create it, and a valid different
/// body to replace it with.
struct Kind {
    target_kind: &'static str,
    path: &'static str,
    create: Value,
    replace: Value,
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            target_kind: "provider",
            path: "/api/v1/providers",
            create: json!({"name": "r", "kind": "openai", "base_url": "https://api.openai.com"}),
            replace: json!({"kind": "openai", "base_url": "https://proxy.example.com",
                            "models": ["gpt-*"]}),
        },
        Kind {
            target_kind: "group",
            path: "/api/v1/groups",
            create: json!({"name": "r", "description": "first"}),
            replace: json!({"description": "second"}),
        },
        Kind {
            target_kind: "agent",
            path: "/api/v1/agents",
            create: json!({"name": "r", "groups": ["eng"]}),
            replace: json!({"groups": ["ops"], "description": "moved"}),
        },
        Kind {
            target_kind: "policy",
            path: "/api/v1/policies",
            create: json!({"name": "r", "sources": {"everyone": true}, "providers": ["p"]}),
            replace: json!({"sources": {"groups": ["eng"]}, "providers": ["p"],
                            "limits": [{"spend_usd": 5, "window": "1d"}]}),
        },
        Kind {
            target_kind: "limit",
            path: "/api/v1/limits",
            create: json!({"name": "r", "targets": {"everyone": true}, "requests": 60,
                           "window": "1m"}),
            replace: json!({"targets": {"everyone": true}, "tokens": 1000, "window": "1h"}),
        },
    ]
}

#[tokio::test]
async fn every_mutation_records_one_entry_with_the_dto_before_and_after() {
    let h = harness().await;
    let mut seen = 0;
    for kind in kinds() {
        let tk = kind.target_kind;
        let one = format!("{}/r", kind.path);

        // POST: a create, nothing before.
        let (status, created) = h.call(Method::POST, kind.path, Some(kind.create.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{tk}: {created}");
        let e = h.one_new(&mut seen).await;
        assert_eq!(
            (e.action.as_str(), e.target_kind.as_str(), e.target.as_str()),
            (format!("{tk}.create").as_str(), tk, "r")
        );
        assert_eq!((e.actor_kind, e.actor.as_str()), (store::ActorKind::AdminSocket, "local"));
        assert_eq!(e.before, None, "{tk}");
        assert_eq!(e.after.as_ref(), Some(&created), "{tk}: after is the response DTO");

        // Refused requests record nothing: a duplicate, invalid input, a missing record.
        let (status, _) = h.call(Method::POST, kind.path, Some(kind.create.clone())).await;
        assert_eq!(status, StatusCode::CONFLICT, "{tk}");
        let (status, _) = h.call(Method::POST, kind.path, Some(json!({"name": "bad name!"}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{tk}");
        let (status, _) = h.call(Method::DELETE, &format!("{}/nope", kind.path), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{tk}");
        h.none_new(seen).await;

        // PUT over it: an update, before is what a GET showed.
        let (_, shown) = h.call(Method::GET, &one, None).await;
        let (status, replaced) = h.call(Method::PUT, &one, Some(kind.replace.clone())).await;
        assert_eq!(status, StatusCode::OK, "{tk}: {replaced}");
        let e = h.one_new(&mut seen).await;
        assert_eq!(e.action, format!("{tk}.update"));
        assert_eq!(e.before.as_ref(), Some(&shown), "{tk}");
        assert_eq!(e.after.as_ref(), Some(&replaced), "{tk}");
        assert_ne!(e.before, e.after, "{tk}");

        // PUT of a new name: a create.
        let (status, _) =
            h.call(Method::PUT, &format!("{}/fresh", kind.path), Some(kind.replace.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{tk}");
        let e = h.one_new(&mut seen).await;
        assert_eq!((e.action, e.target, e.before), (format!("{tk}.create"), "fresh".into(), None));

        // DELETE: before is the record, nothing after.
        let (_, shown) = h.call(Method::GET, &one, None).await;
        let (status, _) = h.call(Method::DELETE, &one, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{tk}");
        let e = h.one_new(&mut seen).await;
        assert_eq!(e.action, format!("{tk}.delete"));
        assert_eq!(e.before.as_ref(), Some(&shown), "{tk}");
        assert_eq!(e.after, None, "{tk}");
    }
    // Every entry went with a change the data plane was told about, and only those.
    assert_eq!(h.changes(), seen);
}

#[tokio::test]
async fn config_managed_records_refused_record_nothing() {
    let h = harness().await;
    h.store
        .put_group(&store::GroupRecord {
            name: "eng".into(),
            description: "from the file".into(),
            managed_by: store::ManagedBy::Config,
        })
        .await
        .unwrap();
    let (status, _) =
        h.call(Method::PUT, "/api/v1/groups/eng", Some(json!({"description": "x"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = h.call(Method::DELETE, "/api/v1/groups/eng", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    h.none_new(0).await;
    assert_eq!(h.store.group("eng").await.unwrap().unwrap().description, "from the file");
    assert_eq!(h.changes(), 0);
}

/// Every string anywhere in the audit log: columns and every JSON value in before/after, keys
/// included.
fn strings(entries: &[store::AuditEntry]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                out.push(k.clone());
                walk(v, out);
            }),
            _ => out.push(v.to_string()),
        }
    }
    let mut out = Vec::new();
    for e in entries {
        out.extend([e.actor.clone(), e.action.clone(), e.target_kind.clone(), e.target.clone()]);
        out.extend(e.request_id.clone());
        for v in e.before.iter().chain(&e.after) {
            walk(v, &mut out);
            out.push(v.to_string());
        }
    }
    out
}

#[tokio::test]
async fn a_key_set_records_the_fingerprint_and_never_the_key() {
    let h = harness().await;
    let first = "sk-ant-api03-FIRSTSECRETKEY-aaaa";
    let second = "sk-ant-api03-SECONDSECRETKEY-bbbb";
    let third = "sk-ant-api03-THIRDSECRETKEY-cccc";
    let mut seen = 0;

    // A key in a create: one `provider.create` entry whose after shows its fingerprint.
    let (status, _) = h
        .call(
            Method::POST,
            "/api/v1/providers",
            Some(json!({"name": "anthropic", "kind": "anthropic",
                        "base_url": "https://api.anthropic.com", "api_key": first})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let e = h.one_new(&mut seen).await;
    assert_eq!(e.action, "provider.create");
    assert_eq!(e.after.as_ref().unwrap()["key_fingerprint"], "…aaaa");

    // The key alone: `provider.key.set`, the fingerprints before and after.
    let (status, _) = h
        .call(Method::PUT, "/api/v1/providers/anthropic/key", Some(json!({"api_key": second})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let e = h.one_new(&mut seen).await;
    assert_eq!((e.action.as_str(), e.target_kind.as_str()), ("provider.key.set", "provider"));
    assert_eq!(e.before.as_ref().unwrap()["key_fingerprint"], "…aaaa");
    assert_eq!(e.after.as_ref().unwrap()["key_fingerprint"], "…bbbb");
    assert_eq!(e.after.as_ref().unwrap()["has_key"], true);

    // A key in a replacement: one `provider.update`.
    let (status, _) = h
        .call(
            Method::PUT,
            "/api/v1/providers/anthropic",
            Some(json!({"kind": "anthropic", "base_url": "https://api.anthropic.com",
                        "api_key": third})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let e = h.one_new(&mut seen).await;
    assert_eq!(e.action, "provider.update");
    assert_eq!(e.after.as_ref().unwrap()["key_fingerprint"], "…cccc");

    // A refused key (whitespace) and a key for a missing provider record nothing.
    let (status, _) = h
        .call(Method::PUT, "/api/v1/providers/anthropic/key", Some(json!({"api_key": "a b"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .call(Method::PUT, "/api/v1/providers/nope/key", Some(json!({"api_key": "sk-nope-zzzz"})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.none_new(seen).await;

    // No key, nor any recognizable part of one, anywhere in the log: not in the store's
    // entries, not in what the API serves.
    let (status, served) = h.call(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut all = strings(&h.entries().await);
    all.push(served.to_string());
    for key in [first, second, third] {
        let middle = &key[13..key.len() - 5];
        for s in &all {
            assert!(!s.contains(key) && !s.contains(middle), "a key in the audit log: {s}");
        }
    }
    assert!(all.iter().any(|s| s.contains("…cccc")), "the fingerprints are there");
}

#[tokio::test]
async fn the_actor_and_request_id_come_from_the_request() {
    let h = harness_as(Some(Actor::new("admin", "ada@example.com"))).await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/groups")
        .header("x-request-id", "req-42");
    let (status, _) = h.send(request, Some(json!({"name": "eng"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let e = &h.entries().await[0];
    assert_eq!((e.actor_kind, e.actor.as_str()), (store::ActorKind::Admin, "ada@example.com"));
    assert_eq!(e.request_id.as_deref(), Some("req-42"));

    // A request id that is not a short printable token is not recorded.
    let request = Request::builder()
        .method(Method::DELETE)
        .uri("/api/v1/groups/eng")
        .header("x-request-id", "a b");
    assert_eq!(h.send(request, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(h.entries().await[1].request_id, None);

    // An actor kind the log does not know is a server bug: refused before anything changes.
    let h = harness_as(Some(Actor::new("robot", "r2"))).await;
    let (status, body) = h.call(Method::POST, "/api/v1/groups", Some(json!({"name": "eng"}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("internal"))
    );
    assert!(h.store.group("eng").await.unwrap().is_none());
    h.none_new(0).await;
    assert_eq!(h.changes(), 0);
}

#[tokio::test]
async fn the_log_is_queried_with_filters_newest_first() {
    let h = harness().await;
    let at = |ms: i64, actor: &str, action: &str, kind: &str, target: &str| {
        let mut e =
            store::AuditEntry::new(store::ActorKind::AdminSocket, actor, action, kind, target);
        e.at_ms = ms;
        e
    };
    for e in [
        at(1_700_000_000_000, "uid:0", "provider.create", "provider", "anthropic"),
        at(1_700_000_060_000, "uid:0", "provider.key.set", "provider", "anthropic"),
        at(1_700_000_120_000, "uid:1000", "policy.update", "policy", "eng"),
        at(1_700_000_180_000, "scim", "scim.user.update", "user", "ada@example.com"),
    ] {
        h.store.record_audit(&e).await.unwrap();
    }
    let actions = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
    };
    let (status, all) = h.call(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        actions(&all),
        ["scim.user.update", "policy.update", "provider.key.set", "provider.create"]
    );
    expect![[r#"{"action":"provider.create","actor":"uid:0","actor_kind":"admin-socket","after":null,"at":"2023-11-14T22:13:20.000Z","before":null,"id":1,"request_id":null,"target":"anthropic","target_kind":"provider"}"#]]
        .assert_eq(&all[3].to_string());
    for (query, expected) in [
        ("action=provider", vec!["provider.key.set", "provider.create"]),
        ("action=provider.key", vec!["provider.key.set"]),
        ("actor=uid%3A1000", vec!["policy.update"]),
        ("target_kind=user&target=ada%40example.com", vec!["scim.user.update"]),
        ("target=anthropic&limit=1", vec!["provider.key.set"]),
        (
            "since=2023-11-14T22:14:20Z&until=2023-11-14T23:16:20%2B01:00",
            vec!["policy.update", "provider.key.set"],
        ),
    ] {
        let (status, got) = h.call(Method::GET, &format!("/api/v1/audit?{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {got}");
        assert_eq!(actions(&got), expected, "{query}");
    }
    let (status, body) = h.call(Method::GET, "/api/v1/audit?since=yesterday", None).await;
    assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("since")));
    let (status, _) = h.call(Method::GET, "/api/v1/audit?principal=x", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h.call(Method::GET, "/api/v1/audit?limit=-1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_scim_token_rotation_records_its_times_and_never_the_secret() {
    let h = harness_as(Some(Actor::new("admin", "ada@example.com"))).await;
    let mut seen = 0;
    let mut secrets = Vec::new();
    let mut created = Vec::new();
    for _ in 0..2 {
        let (status, body) = h.call(Method::POST, "/api/v1/scim/token", None).await;
        assert_eq!(status, StatusCode::CREATED);
        secrets.push(body["token"].as_str().unwrap().to_owned());
        created.push(body["created_at"].clone());
    }
    let all = h.entries().await;
    assert_eq!(all.len(), 2, "{all:#?}");
    seen += 2;
    for (e, i) in all.iter().zip(0..) {
        assert_eq!(
            (e.actor_kind, e.actor.as_str(), e.action.as_str(), e.target_kind.as_str()),
            (store::ActorKind::Admin, "ada@example.com", "scim.token.create", "scim-token")
        );
        // The first had no token before it; the second replaced the first.
        let before = (i > 0).then(|| json!({"created_at": created[i - 1]}));
        assert_eq!((&e.before, &e.after), (&before, &Some(json!({"created_at": created[i]}))));
    }

    let (status, _) = h.call(Method::DELETE, "/api/v1/scim/token", None).await;
    assert_eq!(status, StatusCode::OK);
    let e = h.one_new(&mut seen).await;
    assert_eq!(
        (e.action.as_str(), e.before, e.after),
        ("scim.token.revoke", Some(json!({"created_at": created[1]})), None)
    );
    // Revoking when there is no token changes nothing and records nothing.
    let (status, _) = h.call(Method::DELETE, "/api/v1/scim/token", None).await;
    assert_eq!(status, StatusCode::OK);
    h.none_new(seen).await;

    // The secrets are nowhere in the log.
    let (status, served) = h.call(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut all = strings(&h.entries().await);
    all.push(served.to_string());
    for secret in &secrets {
        for s in &all {
            assert!(!s.contains(secret.as_str()) && !s.contains(&secret[4..20]), "{s}");
        }
    }
}
