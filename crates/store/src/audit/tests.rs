//! The audit log: recording, filters, order, and entries that commit or roll back with the
//! change they describe.

use serde_json::json;

use crate::{
    ActorKind, AuditEntry, AuditQuery, Error, GroupRecord, ManagedBy, MasterKey, Store,
    MAX_AUDIT_LIMIT,
};

async fn store() -> Store {
    Store::in_memory(&MasterKey::generate().unwrap()).await.unwrap()
}

fn entry(at_ms: i64, actor: &str, action: &str, target_kind: &str, target: &str) -> AuditEntry {
    let mut e = AuditEntry::new(ActorKind::AdminSocket, actor, action, target_kind, target);
    e.at_ms = at_ms;
    e
}

fn group(name: &str) -> GroupRecord {
    GroupRecord { name: name.into(), description: String::new(), managed_by: ManagedBy::Api }
}

#[tokio::test]
async fn entries_round_trip_newest_first() {
    let store = store().await;
    let mut scim = AuditEntry::new(ActorKind::Scim, "scim", "scim.user.update", "user", "u-1");
    scim.at_ms = 2_000;
    scim.before = Some(json!({"active": true, "groups": ["eng"]}));
    scim.after = Some(json!({"active": false, "groups": []}));
    scim.request_id = Some("req-1".into());
    store.record_audit(&entry(1_000, "uid:0", "group.create", "group", "eng")).await.unwrap();
    store.record_audit(&scim).await.unwrap();
    // Same millisecond: the later entry (higher id) comes first.
    store.record_audit(&entry(2_000, "uid:0", "group.delete", "group", "eng")).await.unwrap();

    let all = store.audit(&AuditQuery::default()).await.unwrap();
    let actions: Vec<_> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["group.delete", "scim.user.update", "group.create"]);
    assert!(all[0].id > all[1].id && all[1].id > all[2].id);
    let got = &all[1];
    assert_eq!(AuditEntry { id: 0, ..got.clone() }, scim);
    assert_eq!(all[2].before, None);
    assert_eq!(all[2].after, None);
    assert_eq!(all[2].actor_kind, ActorKind::AdminSocket);
}

#[tokio::test]
async fn filters_combine() {
    let store = store().await;
    let rows = [
        entry(1, "uid:0", "provider.create", "provider", "anthropic"),
        entry(2, "uid:0", "provider.key.set", "provider", "anthropic"),
        entry(3, "ada@example.com", "policy.update", "policy", "eng"),
        entry(4, "uid:0", "providers_but_not_a_provider", "x", "anthropic"),
        entry(5, "uid:1000", "group.delete", "group", "anthropic"),
        entry(6, "uid:0", "provider%", "provider", "openai"),
    ];
    for row in &rows {
        store.record_audit(row).await.unwrap();
    }
    let ids = |q: AuditQuery| {
        let store = store.clone();
        async move { store.audit(&q).await.unwrap().into_iter().map(|e| e.at_ms).collect::<Vec<_>>() }
    };
    let action = |a: &str| AuditQuery { action: Some(a.into()), ..Default::default() };
    assert_eq!(ids(action("provider.")).await, [2, 1]);
    assert_eq!(ids(action("provider.key")).await, [2]);
    assert_eq!(ids(action("provider")).await, [6, 4, 2, 1]);
    // No wildcards: `%` and `_` are plain characters.
    assert_eq!(ids(action("provider%")).await, [6]);
    assert_eq!(ids(action("provider_")).await, Vec::<i64>::new());
    assert_eq!(ids(action("PROVIDER")).await, Vec::<i64>::new());
    assert_eq!(
        ids(AuditQuery { actor: Some("uid:0".into()), ..Default::default() }).await,
        [6, 4, 2, 1]
    );
    assert_eq!(
        ids(AuditQuery {
            target: Some("anthropic".into()),
            target_kind: Some("provider".into()),
            ..Default::default()
        })
        .await,
        [2, 1]
    );
    assert_eq!(
        ids(AuditQuery { since_ms: Some(2), until_ms: Some(5), ..Default::default() }).await,
        [4, 3, 2]
    );
    assert_eq!(ids(AuditQuery { limit: Some(2), ..Default::default() }).await, [6, 5]);
}

#[tokio::test]
async fn at_most_a_thousand_entries_per_query() {
    let store = store().await;
    let mut tx = store.begin().await.unwrap();
    for i in 0..1100 {
        tx.record_audit(&entry(i, "uid:0", "group.create", "group", "g")).await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(store.audit(&AuditQuery::default()).await.unwrap().len(), 100);
    let many = AuditQuery { limit: Some(5000), ..Default::default() };
    let got = store.audit(&many).await.unwrap();
    assert_eq!(got.len(), MAX_AUDIT_LIMIT as usize);
    assert_eq!(got[0].at_ms, 1099);
}

#[tokio::test]
async fn an_entry_commits_or_rolls_back_with_its_change() {
    let store = store().await;
    let mut tx = store.begin().await.unwrap();
    tx.create_group(&group("eng")).await.unwrap();
    tx.record_audit(&entry(1, "uid:0", "group.create", "group", "eng")).await.unwrap();
    assert!(tx.group("eng").await.unwrap().is_some());
    drop(tx);
    assert!(store.group("eng").await.unwrap().is_none());
    assert!(store.audit(&AuditQuery::default()).await.unwrap().is_empty());

    let mut tx = store.begin().await.unwrap();
    tx.create_group(&group("eng")).await.unwrap();
    tx.record_audit(&entry(1, "uid:0", "group.create", "group", "eng")).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.group("eng").await.unwrap().is_some());
    assert_eq!(store.audit(&AuditQuery::default()).await.unwrap().len(), 1);

    // A failing write inside a transaction fails like its `Store` namesake.
    let mut tx = store.begin().await.unwrap();
    let err = tx.create_group(&group("eng")).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert!(matches!(
        tx.set_provider_key("nope", &"k".to_owned().into()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(!tx.delete_group("nope").await.unwrap());
}

#[tokio::test]
async fn writers_wait_for_an_open_transaction_on_a_file() {
    let dir = std::env::temp_dir().join(format!("agentnet-audit-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store =
        Store::open(&dir.join("agentnet.db"), &MasterKey::generate().unwrap()).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.create_group(&group("a")).await.unwrap();
    // Reads outside the transaction do not see it, and do not block.
    assert!(store.group("a").await.unwrap().is_none());
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.create_group(&group("b")).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!writer.is_finished(), "a writer waits for the open transaction");
    tx.record_audit(&entry(1, "uid:0", "group.create", "group", "a")).await.unwrap();
    tx.commit().await.unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(store.groups().await.unwrap().len(), 2);
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
