//! SCIM store tests: uniqueness, lookups, memberships and their cascades, serialized
//! read-modify-writes, the directory the data plane reads, and the hashed, rotatable token.

use secrecy::ExposeSecret;
use serde_json::json;

use super::*;
use crate::{ActorKind, AuditQuery, MasterKey};

/// An audit entry for a write whose entry is not under test.
fn entry<T>(_: Option<&T>, _: Option<&T>) -> AuditEntry {
    AuditEntry::new(ActorKind::Scim, "scim", "scim.test", "test", "test")
}

fn rotated(_: Option<i64>, _: i64) -> AuditEntry {
    AuditEntry::new(ActorKind::Admin, "ada@example.com", "scim.token.create", "scim-token", "token")
}

fn revoked(_: i64) -> AuditEntry {
    AuditEntry::new(ActorKind::Admin, "ada@example.com", "scim.token.revoke", "scim-token", "token")
}

async fn store() -> Store {
    Store::in_memory(&MasterKey::generate().unwrap()).await.unwrap()
}

fn user(name: &str, emails: &[&str], active: bool) -> ScimUserData {
    let mut resource = Map::new();
    resource.insert("userName".into(), json!(name));
    resource.insert(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".into(),
        json!({"department": "R&D"}),
    );
    ScimUserData {
        user_name: name.to_owned(),
        external_id: Some(format!("ext-{name}")),
        display_name: None,
        given_name: Some("Given".into()),
        family_name: None,
        emails: emails.iter().map(|e| (*e).to_owned()).collect(),
        active,
        resource,
    }
}

fn group(name: &str, members: &[&str]) -> ScimGroupData {
    let mut resource = Map::new();
    resource.insert("displayName".into(), json!(name));
    ScimGroupData {
        display_name: name.to_owned(),
        external_id: None,
        resource,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    }
}

#[tokio::test]
async fn users_are_unique_by_user_name_case_insensitively_and_round_trip() {
    let store = store().await;
    let alice = store
        .scim_create_user(&user("Alice@Example.com", &["alice@example.com"], true), entry)
        .await
        .unwrap();
    assert_eq!(alice.id.len(), 36);
    assert_eq!(alice.id.as_bytes()[14], b'4');
    assert_eq!(alice.meta.version, 1);
    let err =
        store.scim_create_user(&user("alice@example.COM", &[], true), entry).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");

    let got = store.scim_user(&alice.id).await.unwrap().unwrap();
    assert_eq!(got, alice);
    assert_eq!(
        got.data.resource["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
            ["department"],
        "R&D"
    );
    assert!(store.scim_user("nope").await.unwrap().is_none());

    // Lookups: names and emails case-insensitively, ids exactly.
    let by = |lookup| {
        let store = store.clone();
        async move {
            store
                .scim_find_users(&lookup)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(by(ScimLookup::Name("ALICE@example.com".into())).await, vec![alice.id.clone()]);
    assert_eq!(by(ScimLookup::Email("Alice@EXAMPLE.com".into())).await, vec![alice.id.clone()]);
    assert_eq!(
        by(ScimLookup::ExternalId("ext-Alice@Example.com".into())).await,
        vec![alice.id.clone()]
    );
    assert_eq!(
        by(ScimLookup::ExternalId("ext-alice@example.com".into())).await,
        Vec::<String>::new()
    );
    assert_eq!(by(ScimLookup::Id(alice.id.to_uppercase())).await, Vec::<String>::new());
    assert_eq!(by(ScimLookup::Member(alice.id.clone())).await, Vec::<String>::new());

    let bob = store.scim_create_user(&user("bob", &[], true), entry).await.unwrap();
    let (total, page) = store.scim_users_page(1, 10).await.unwrap();
    assert_eq!((total, page.len(), page[0].id.as_str()), (2, 1, bob.id.as_str()));
    let (total, page) = store.scim_users_page(0, 0).await.unwrap();
    assert_eq!((total, page.len()), (2, 0));
}

#[tokio::test]
async fn modify_is_read_modify_write_and_keeps_uniqueness() {
    let store = store().await;
    let alice = store.scim_create_user(&user("alice", &[], true), entry).await.unwrap();
    store.scim_create_user(&user("bob", &[], true), entry).await.unwrap();

    let changed = store
        .scim_modify_user::<Error, _, _>(
            &alice.id,
            |current| {
                let mut data = current.data.clone();
                data.active = false;
                data.user_name = "Alice".into();
                Ok(data)
            },
            entry,
        )
        .await
        .unwrap();
    assert_eq!(changed.meta.version, 2);
    assert_eq!(changed.meta.created_at_ms, alice.meta.created_at_ms);
    assert!(!store.scim_user(&alice.id).await.unwrap().unwrap().data.active);

    // Renaming onto another user's name (in another case) is a conflict and changes nothing.
    let err = store
        .scim_modify_user::<Error, _, _>(
            &alice.id,
            |current| Ok(ScimUserData { user_name: "BOB".into(), ..current.data.clone() }),
            entry,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }));
    assert_eq!(store.scim_user(&alice.id).await.unwrap().unwrap().data.user_name, "Alice");

    // The closure's own error is returned as is, and nothing is written.
    let err = store
        .scim_modify_user::<Error, _, _>(
            &alice.id,
            |_| Err(Error::UnknownMember("x".into())),
            entry,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownMember(_)));
    assert_eq!(store.scim_user(&alice.id).await.unwrap().unwrap().meta.version, 2);

    let err = store
        .scim_modify_user::<Error, _, _>("missing", |u| Ok(u.data.clone()), entry)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "SCIM user 'missing' does not exist");
}

#[tokio::test]
async fn groups_memberships_and_cascades() {
    let store = store().await;
    let alice = store.scim_create_user(&user("alice", &[], true), entry).await.unwrap();
    let bob = store.scim_create_user(&user("bob", &[], true), entry).await.unwrap();

    let eng = store
        .scim_create_group(&group("Engineering", &[&alice.id, &alice.id]), entry)
        .await
        .unwrap();
    assert_eq!(eng.data.members, vec![alice.id.clone()]);
    let err = store.scim_create_group(&group("engineering", &[]), entry).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }));
    let err = store.scim_create_group(&group("Sales", &["ghost"]), entry).await.unwrap_err();
    assert!(matches!(err, Error::UnknownMember(ref id) if id == "ghost"));
    // The failed create left nothing behind.
    assert!(store
        .scim_find_groups(&ScimLookup::Name("sales".into()), Members::Skip)
        .await
        .unwrap()
        .is_empty());

    let ops = store
        .scim_modify_group::<Error, _, _>(
            &eng.id,
            |current| {
                assert_eq!(current.data.members, vec![alice.id.clone()]);
                Ok(ScimGroupData {
                    display_name: "Ops".into(),
                    members: vec![bob.id.clone(), alice.id.clone()],
                    ..current.data.clone()
                })
            },
            entry,
        )
        .await
        .unwrap();
    assert_eq!(ops.data.members, [alice.id.clone(), bob.id.clone()]);
    let loaded = store.scim_group(&eng.id, Members::Load).await.unwrap().unwrap();
    assert_eq!(loaded.data.members, [alice.id.clone(), bob.id.clone()]);
    assert!(store
        .scim_group(&eng.id, Members::Skip)
        .await
        .unwrap()
        .unwrap()
        .data
        .members
        .is_empty());

    let by_member =
        store.scim_find_groups(&ScimLookup::Member(bob.id.clone()), Members::Skip).await.unwrap();
    assert_eq!(by_member.len(), 1);
    let groups = store.scim_user_groups(&[&alice.id, &bob.id, "nobody"]).await.unwrap();
    assert_eq!(
        groups[&alice.id],
        [ScimGroupRef { id: eng.id.clone(), display_name: "Ops".into() }]
    );
    assert!(!groups.contains_key("nobody"));

    // An unknown new member fails the whole modification.
    let err = store
        .scim_modify_group::<Error, _, _>(
            &eng.id,
            |current| Ok(ScimGroupData { members: vec!["ghost".into()], ..current.data.clone() }),
            entry,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownMember(_)));
    assert_eq!(
        store.scim_group(&eng.id, Members::Load).await.unwrap().unwrap().data.members.len(),
        2
    );

    // Deleting a user removes its memberships; deleting a group removes its own.
    assert!(store.scim_delete_user(&bob.id, entry).await.unwrap());
    assert!(!store.scim_delete_user(&bob.id, entry).await.unwrap());
    assert_eq!(
        store.scim_group(&eng.id, Members::Load).await.unwrap().unwrap().data.members,
        vec![alice.id.clone()]
    );
    assert!(store.scim_delete_group(&eng.id, entry).await.unwrap());
    assert!(store.scim_user_groups(&[&alice.id]).await.unwrap().is_empty());
    let (total, _) = store.scim_groups_page(0, 10, Members::Load).await.unwrap();
    assert_eq!(total, 0);
}

#[tokio::test]
async fn directory_lists_every_user_with_active_flag_and_sorted_groups() {
    let store = store().await;
    assert!(store.directory().await.unwrap().is_empty());
    let carol = store
        .scim_create_user(&user("carol", &["carol@example.com", "c@example.com"], false), entry)
        .await
        .unwrap();
    let alice =
        store.scim_create_user(&user("Alice", &["alice@example.com"], true), entry).await.unwrap();
    store.scim_create_user(&user("bob", &[], true), entry).await.unwrap();
    store.scim_create_group(&group("sales", &[&alice.id]), entry).await.unwrap();
    store.scim_create_group(&group("Engineering", &[&alice.id, &carol.id]), entry).await.unwrap();
    store.scim_create_group(&group("empty", &[]), entry).await.unwrap();

    let directory = store.directory().await.unwrap();
    assert_eq!(
        directory,
        [
            DirectoryUser {
                user_name: "Alice".into(),
                emails: vec!["alice@example.com".into()],
                active: true,
                groups: vec!["Engineering".into(), "sales".into()],
            },
            DirectoryUser { user_name: "bob".into(), emails: vec![], active: true, groups: vec![] },
            DirectoryUser {
                user_name: "carol".into(),
                emails: vec!["carol@example.com".into(), "c@example.com".into()],
                active: false,
                groups: vec!["Engineering".into()],
            },
        ]
    );
}

#[tokio::test]
async fn token_is_hashed_rotatable_and_revocable() {
    let dir = std::env::temp_dir().join(format!("agentnet-scim-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store =
        Store::open(&dir.join("agentnet.db"), &MasterKey::generate().unwrap()).await.unwrap();
    assert!(!store.scim_enabled().await.unwrap());
    assert!(!store.scim_token_matches("anything").await.unwrap());

    let first = store.scim_token_rotate(rotated).await.unwrap();
    let first_secret = first.secret.expose_secret().to_owned();
    assert_eq!(first_secret.len(), 43, "32 bytes, base64url without padding");
    assert!(first_secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert!(!format!("{first:?}").contains(&first_secret));
    assert!(store.scim_enabled().await.unwrap());
    assert_eq!(store.scim_token_created_at().await.unwrap(), Some(first.created_at_ms));
    assert!(store.scim_token_matches(&first_secret).await.unwrap());
    assert!(!store.scim_token_matches(&first_secret[..42]).await.unwrap());

    // A new token revokes the previous one.
    let second = store.scim_token_rotate(rotated).await.unwrap();
    assert!(!store.scim_token_matches(&first_secret).await.unwrap());
    assert!(store.scim_token_matches(second.secret.expose_secret()).await.unwrap());

    // Only the hash is on disk.
    let second_secret = second.secret.expose_secret().to_owned();
    store.close().await;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let Ok(bytes) = std::fs::read(entry.unwrap().path()) else { continue };
        assert!(!bytes.windows(second_secret.len()).any(|w| w == second_secret.as_bytes()));
    }
    let store =
        Store::open(&dir.join("agentnet.db"), &MasterKey::generate().unwrap()).await.unwrap();
    assert!(store.scim_token_matches(&second_secret).await.unwrap());
    assert!(store.scim_token_revoke(revoked).await.unwrap());
    assert!(!store.scim_token_revoke(revoked).await.unwrap());
    assert!(!store.scim_enabled().await.unwrap());
    assert!(!store.scim_token_matches(&second_secret).await.unwrap());
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn constant_time_eq_compares_whole_slices() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}

/// Every SCIM write records the entry its `audit` function builds from the record before and
/// after, in the same transaction: a refused write records nothing.
#[tokio::test]
async fn writes_record_their_audit_entry_in_the_same_transaction() {
    let store = store().await;
    let snap = |u: Option<&ScimUser>| u.map(|u| json!({"id": u.id, "active": u.data.active}));
    let user_entry = |before: Option<&ScimUser>, after: Option<&ScimUser>| {
        let target = before.or(after).map(|u| u.id.clone()).unwrap_or_default();
        let mut e = AuditEntry::new(ActorKind::Scim, "scim", "scim.user.x", "scim-user", target);
        e.before = snap(before);
        e.after = snap(after);
        e
    };
    let all = || async { store.audit(&AuditQuery::default()).await.unwrap() };

    let alice = store.scim_create_user(&user("alice", &[], true), user_entry).await.unwrap();
    let entries = all().await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].target.as_str(), &entries[0].before, &entries[0].after),
        (alice.id.as_str(), &None, &Some(json!({"id": alice.id, "active": true})))
    );
    // Refused writes (a taken name, a failed change, a missing record) record nothing.
    store.scim_create_user(&user("ALICE", &[], true), user_entry).await.unwrap_err();
    store
        .scim_modify_user::<Error, _, _>(
            &alice.id,
            |_| Err(Error::UnknownMember("x".into())),
            user_entry,
        )
        .await
        .unwrap_err();
    assert!(!store.scim_delete_user("missing", user_entry).await.unwrap());
    assert!(!store.scim_token_revoke(revoked).await.unwrap());
    assert_eq!(all().await.len(), 1);

    store
        .scim_modify_user::<Error, _, _>(
            &alice.id,
            |current| Ok(ScimUserData { active: false, ..current.data.clone() }),
            user_entry,
        )
        .await
        .unwrap();
    assert!(store.scim_delete_user(&alice.id, user_entry).await.unwrap());
    let entries = all().await;
    assert_eq!(
        entries.iter().map(|e| (e.before.clone(), e.after.clone())).collect::<Vec<_>>(),
        [
            (Some(json!({"id": alice.id, "active": false})), None),
            (
                Some(json!({"id": alice.id, "active": true})),
                Some(json!({"id": alice.id, "active": false}))
            ),
            (None, Some(json!({"id": alice.id, "active": true}))),
        ]
    );

    // Groups: the audit function sees the members before and after.
    let bob = store.scim_create_user(&user("bob", &[], true), entry).await.unwrap();
    let carol = store.scim_create_user(&user("carol", &[], true), entry).await.unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let group_entry = |before: Option<&ScimGroup>, after: Option<&ScimGroup>| {
        seen.lock()
            .unwrap()
            .push((before.map(|g| g.data.members.clone()), after.map(|g| g.data.members.clone())));
        entry(before, after)
    };
    let eng =
        store.scim_create_group(&group("eng", &[&bob.id, &carol.id]), group_entry).await.unwrap();
    store
        .scim_modify_group::<Error, _, _>(
            &eng.id,
            |current| Ok(ScimGroupData { members: vec![bob.id.clone()], ..current.data.clone() }),
            group_entry,
        )
        .await
        .unwrap();
    assert!(store.scim_delete_group(&eng.id, group_entry).await.unwrap());
    let both = vec![bob.id.clone(), carol.id.clone()];
    assert_eq!(
        seen.into_inner().unwrap(),
        [
            (None, Some(both.clone())),
            (Some(both), Some(vec![bob.id.clone()])),
            (Some(vec![bob.id.clone()]), None),
        ]
    );
}

/// The token's entries get the creation times, never the secret or its hash: the raw table is
/// scanned for both.
#[tokio::test]
async fn token_writes_record_times_and_never_the_secret() {
    let store = store().await;
    let times = std::sync::Mutex::new(Vec::new());
    let first = store
        .scim_token_rotate(|previous, created| {
            times.lock().unwrap().push((previous, Some(created)));
            rotated(previous, created)
        })
        .await
        .unwrap();
    let second = store
        .scim_token_rotate(|previous, created| {
            times.lock().unwrap().push((previous, Some(created)));
            rotated(previous, created)
        })
        .await
        .unwrap();
    assert!(store
        .scim_token_revoke(|previous| {
            times.lock().unwrap().push((Some(previous), None));
            revoked(previous)
        })
        .await
        .unwrap());
    assert_eq!(
        times.into_inner().unwrap(),
        [
            (None, Some(first.created_at_ms)),
            (Some(first.created_at_ms), Some(second.created_at_ms)),
            (Some(second.created_at_ms), None),
        ]
    );
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT COALESCE(actor, '') || '|' || action || '|' || target || '|' ||
                COALESCE(before, '') || '|' || COALESCE(after, '') FROM audit_log",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    for issued in [&first, &second] {
        let secret = issued.secret.expose_secret();
        let hash: String = token_hash(secret).iter().map(|b| format!("{b:02x}")).collect();
        assert!(rows.iter().all(|r| !r.contains(secret) && !r.to_lowercase().contains(&hash)));
    }
}
