//! The audit DTOs on the wire.

use expect_test::expect;
use serde_json::json;

use super::*;

#[test]
fn query_string_encodes_what_is_set() {
    assert_eq!(AuditQuery::default().to_query_string(), "");
    let q = AuditQuery {
        actor: Some("ada+ops@example.com".into()),
        action: Some("provider.key".into()),
        target_kind: Some("provider".into()),
        target: Some("my provider".into()),
        since: Some("2025-06-01T00:00:00+02:00".into()),
        until: None,
        limit: Some(20),
    };
    expect!["actor=ada%2Bops%40example.com&action=provider.key&target_kind=provider&target=my%20provider&since=2025-06-01T00%3A00%3A00%2B02%3A00&limit=20"]
        .assert_eq(&q.to_query_string());
    let back: AuditQuery = serde_json::from_value(json!({"actor": "uid:0", "limit": 5})).unwrap();
    assert_eq!(back.actor.as_deref(), Some("uid:0"));
    assert!(serde_json::from_value::<AuditQuery>(json!({"principal": "x"})).is_err());
}

#[test]
fn entry_shape() {
    let entry = AuditEntry {
        id: 7,
        at: "2025-06-01T12:00:00.000Z".into(),
        actor_kind: "admin-socket".into(),
        actor: "uid:0".into(),
        action: "group.create".into(),
        target_kind: "group".into(),
        target: "eng".into(),
        before: None,
        after: Some(json!({"name": "eng", "description": "", "managed_by": "api"})),
        request_id: None,
    };
    expect![[r#"{"id":7,"at":"2025-06-01T12:00:00.000Z","actor_kind":"admin-socket","actor":"uid:0","action":"group.create","target_kind":"group","target":"eng","before":null,"after":{"description":"","managed_by":"api","name":"eng"},"request_id":null}"#]]
        .assert_eq(&serde_json::to_string(&entry).unwrap());
    let back: AuditEntry = serde_json::from_str(&serde_json::to_string(&entry).unwrap()).unwrap();
    assert_eq!(back, entry);
}
