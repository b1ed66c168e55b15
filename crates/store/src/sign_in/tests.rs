//! Sign-in state tests: local accounts (uniqueness, logins), sessions (rotation, revocation,
//! listing, pruning, the sealed IdP refresh token) and setup keys (states, counted uses,
//! concurrent redemption).

use std::path::PathBuf;

use domain::PrincipalKind;
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;

use super::*;
use crate::{now_ms, Error, MasterKey, SecretError, Store};

async fn store() -> Store {
    Store::in_memory(&MasterKey::generate().unwrap()).await.unwrap()
}

/// A fresh directory for a file-backed store.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "agentnet-store-sign-in-{tag}-{}-{}",
        std::process::id(),
        now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

// ---- local accounts ---------------------------------------------------------------------------

fn user(username: &str, email: &str) -> LocalUser {
    LocalUser {
        username: username.to_owned(),
        email: email.to_owned(),
        display_name: None,
        groups: Vec::new(),
        active: true,
        created_at_ms: 1_000,
        updated_at_ms: 1_000,
    }
}

async fn create_user(store: &Store, user: &LocalUser, hash: &str) -> Result<()> {
    let mut tx = store.begin().await?;
    tx.create_local_user(user, hash).await?;
    tx.commit().await
}

async fn update_user(store: &Store, user: &LocalUser) -> Result<()> {
    let mut tx = store.begin().await?;
    tx.update_local_user(user).await?;
    tx.commit().await
}

fn taken(result: Result<()>) -> String {
    match result {
        Err(Error::AlreadyExists { kind, name }) => format!("{kind} {name}"),
        other => format!("not AlreadyExists: {other:?}"),
    }
}

#[tokio::test]
async fn local_users_round_trip_update_and_delete() {
    let store = store().await;
    let mut alice = LocalUser {
        display_name: Some("Alice A.".into()),
        groups: names(&["eng", "admin", "eng"]),
        ..user("Alice", "Alice@Example.com")
    };
    create_user(&store, &alice, "$argon2id$v=19$alice-1").await.unwrap();
    create_user(&store, &user("bob", "bob@example.com"), "$argon2id$bob").await.unwrap();

    // The username is stored lowercase, the groups sorted and deduplicated, the email as given.
    alice.username = "alice".into();
    alice.groups = names(&["admin", "eng"]);
    assert_eq!(store.local_user("ALICE").await.unwrap(), Some(alice.clone()));
    let all: Vec<_> = store.local_users().await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(all, ["alice", "bob"]);
    assert_eq!(store.local_user("carol").await.unwrap(), None);

    // An update replaces everything but the creation time and the password, and stamps
    // updated_at; the username picks the account.
    let changed = LocalUser {
        username: "ALICE".into(),
        email: "alice@corp.example".into(),
        display_name: None,
        groups: names(&["sales"]),
        active: false,
        created_at_ms: 5,
        updated_at_ms: 5,
    };
    let before = now_ms();
    update_user(&store, &changed).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let got = tx.local_user("alice").await.unwrap().unwrap();
    drop(tx);
    assert_eq!(
        (got.email.as_str(), got.display_name, got.groups, got.active, got.created_at_ms),
        ("alice@corp.example", None, names(&["sales"]), false, 1_000)
    );
    assert!(got.updated_at_ms >= before);
    let (_, hash) = store.local_user_for_login("alice").await.unwrap().unwrap();
    assert_eq!(hash, "$argon2id$v=19$alice-1");
    let err = update_user(&store, &user("carol", "carol@example.com")).await.unwrap_err();
    assert_eq!(err.to_string(), "user 'carol' does not exist");

    // Passwords.
    let mut tx = store.begin().await.unwrap();
    tx.set_local_password("Alice", "$argon2id$v=19$alice-2").await.unwrap();
    let err = tx.set_local_password("carol", "x").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { kind: "user", .. }), "{err}");
    tx.commit().await.unwrap();
    let (_, hash) = store.local_user_for_login("alice@corp.example").await.unwrap().unwrap();
    assert_eq!(hash, "$argon2id$v=19$alice-2");

    // Deletes.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.delete_local_user("ALICE").await.unwrap());
    assert!(!tx.delete_local_user("alice").await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.local_user("alice").await.unwrap(), None);
    assert_eq!(store.local_user_for_login("alice@corp.example").await.unwrap(), None);
}

#[tokio::test]
async fn local_usernames_and_emails_are_unique_case_insensitively_across_both() {
    let store = store().await;
    create_user(&store, &user("alice", "alice@example.com"), "h").await.unwrap();
    create_user(&store, &user("bob", "bob@example.com"), "h").await.unwrap();

    // The name says which login is taken: the username, or the email as given.
    let dup_username = create_user(&store, &user("ALICE", "other@example.com"), "h").await;
    assert_eq!(taken(dup_username), "user alice");
    let dup_email = create_user(&store, &user("carol", "ALICE@example.COM"), "h").await;
    assert_eq!(taken(dup_email), "user ALICE@example.COM");
    // A username may not be someone's email, nor an email someone's username: a login names
    // one account.
    let username_is_email = user("Bob@Example.com", "x@example.com");
    assert_eq!(taken(create_user(&store, &username_is_email, "h").await), "user bob@example.com");
    let email_is_username = create_user(&store, &user("carol", "BOB"), "h").await;
    assert_eq!(taken(email_is_username), "user BOB");
    let err = create_user(&store, &user("alice", "a@x"), "h").await.unwrap_err();
    assert_eq!(err.to_string(), "user 'alice' already exists");

    // Updates: taking another's email fails; changing the case of one's own does not.
    let steal = update_user(&store, &user("alice", "Bob@example.com")).await;
    assert_eq!(taken(steal), "user Bob@example.com");
    update_user(&store, &user("alice", "ALICE@EXAMPLE.COM")).await.unwrap();
    // A person may use their email as their username.
    create_user(&store, &user("dave@example.com", "Dave@Example.com"), "h").await.unwrap();
    assert_eq!(store.local_users().await.unwrap().len(), 3);
}

#[tokio::test]
async fn local_login_by_username_or_email_case_insensitively() {
    let store = store().await;
    let ada = LocalUser { active: false, ..user("ada", "Ada.Lovelace@Example.com") };
    create_user(&store, &ada, "$argon2id$ada").await.unwrap();
    for login in ["ada", "ADA", "ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM"] {
        let (found, hash) = store.local_user_for_login(login).await.unwrap().unwrap();
        assert_eq!((found.username.as_str(), hash.as_str()), ("ada", "$argon2id$ada"), "{login}");
        // Inactive accounts are found; the caller refuses them.
        assert!(!found.active);
    }
    for login in ["", "ad", "ada@example.com", "%", "ada' OR 1=1 --"] {
        assert_eq!(store.local_user_for_login(login).await.unwrap(), None, "{login}");
    }
}

// ---- sessions ---------------------------------------------------------------------------------

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

/// A session created `now`, its access token valid for 10 minutes, its refresh token for 30
/// days, and the whole for 90.
fn session(id: &str, kind: PrincipalKind, name: &str, now: i64) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        kind,
        subject: format!("sub-{name}"),
        name: name.to_owned(),
        groups: names(&["eng"]),
        source: match kind {
            PrincipalKind::User => SessionSource::Oidc,
            PrincipalKind::Agent => SessionSource::SetupKey,
        },
        client: Some("laptop-1".into()),
        created_at_ms: now,
        refreshed_at_ms: now,
        access_expires_at_ms: now + 10 * MINUTE,
        refresh_expires_at_ms: now + 30 * DAY,
        expires_at_ms: now + 90 * DAY,
        revoked_at_ms: None,
        revoked_reason: None,
    }
}

/// Distinct digests for session `n`: access `[n, 0, …]`, refresh `[n, 1, …]`.
fn tokens(n: u8) -> SessionTokens {
    let mut access = [0u8; 32];
    let mut refresh = [1u8; 32];
    access[0] = n;
    refresh[0] = n;
    SessionTokens { access, refresh }
}

async fn insert(store: &Store, record: &SessionRecord, tokens: &SessionTokens, idp: Option<&str>) {
    let idp = idp.map(SecretString::from);
    let mut tx = store.begin().await.unwrap();
    tx.insert_session(record, tokens, idp.as_ref()).await.unwrap();
    tx.commit().await.unwrap();
}

async fn revoke(store: &Store, id: &str, reason: &str) -> Option<SessionRecord> {
    let mut tx = store.begin().await.unwrap();
    let revoked = tx.revoke_session(id, reason).await.unwrap();
    tx.commit().await.unwrap();
    revoked
}

#[test]
fn session_sources_round_trip() {
    for source in SessionSource::ALL {
        assert_eq!(SessionSource::parse(source.as_str()), Some(source));
    }
    assert_eq!(SessionSource::SetupKey.as_str(), "setup_key");
    assert_eq!(SessionSource::parse("Oidc"), None);
}

#[tokio::test]
async fn sessions_insert_rotate_and_revoke() {
    let store = store().await;
    let now = now_ms();
    let mut record = SessionRecord {
        groups: names(&["eng", "admin", "eng"]),
        ..session("01S1", PrincipalKind::User, "Ada@Example.com", now)
    };
    let first = tokens(1);
    insert(&store, &record, &first, Some("idp-refresh-1")).await;
    record.groups = names(&["admin", "eng"]);

    let stored = store.session_by_refresh(&first.refresh).await.unwrap().unwrap();
    assert_eq!(stored.record, record);
    assert_eq!(stored.idp_refresh_token.unwrap().expose_secret(), "idp-refresh-1");
    assert_eq!(store.session_by_access(&first.access).await.unwrap(), Some(record.clone()));
    assert_eq!(store.session("01S1").await.unwrap(), Some(record.clone()));
    assert!(store.session_by_refresh(&first.access).await.unwrap().is_none());
    assert!(store.session_by_access(&first.refresh).await.unwrap().is_none());

    // The id and each digest are unique.
    let mut tx = store.begin().await.unwrap();
    let err = tx.insert_session(&record, &tokens(9), None).await.unwrap_err();
    assert_eq!(err.to_string(), "session '01S1' already exists");
    let other = session("01S2", PrincipalKind::User, "x", now);
    let reused = SessionTokens { access: tokens(9).access, refresh: first.refresh };
    assert!(matches!(
        tx.insert_session(&other, &reused, None).await,
        Err(Error::AlreadyExists { kind: "session", .. })
    ));
    drop(tx);

    // A refresh replaces both digests; `None` keeps the IdP token. Expiries past the session's
    // end are capped at it.
    let second = tokens(2);
    let before = now_ms();
    let mut tx = store.begin().await.unwrap();
    let found = tx.session_by_refresh(&first.refresh).await.unwrap().unwrap();
    assert_eq!(found.record.id, "01S1");
    tx.rotate_session(
        "01S1",
        &second,
        now + 20 * MINUTE,
        now + 365 * DAY,
        &names(&["ops", "eng"]),
        None,
    )
    .await
    .unwrap();
    assert!(tx.session_by_refresh(&first.refresh).await.unwrap().is_none());
    assert!(tx.session_by_access(&first.access).await.unwrap().is_none());
    let err = tx.rotate_session("nope", &tokens(3), 0, 0, &[], None).await.unwrap_err();
    assert_eq!(err.to_string(), "session 'nope' does not exist");
    tx.commit().await.unwrap();
    assert!(store.session_by_refresh(&first.refresh).await.unwrap().is_none());
    let stored = store.session_by_refresh(&second.refresh).await.unwrap().unwrap();
    let rotated = stored.record;
    assert_eq!(rotated.groups, names(&["eng", "ops"]));
    assert_eq!(rotated.access_expires_at_ms, now + 20 * MINUTE);
    assert_eq!(rotated.refresh_expires_at_ms, now + 90 * DAY);
    assert!(rotated.refreshed_at_ms >= before);
    assert_eq!((rotated.created_at_ms, rotated.expires_at_ms), (now, now + 90 * DAY));
    assert_eq!(stored.idp_refresh_token.unwrap().expose_secret(), "idp-refresh-1");
    assert_eq!(store.session_by_access(&second.access).await.unwrap(), Some(rotated.clone()));

    // `Some` replaces the IdP token.
    let third = tokens(3);
    let mut tx = store.begin().await.unwrap();
    let new_idp = SecretString::from("idp-refresh-2");
    tx.rotate_session("01S1", &third, now, now, &[], Some(&new_idp)).await.unwrap();
    tx.commit().await.unwrap();
    let stored = store.session_by_refresh(&third.refresh).await.unwrap().unwrap();
    assert_eq!(stored.idp_refresh_token.unwrap().expose_secret(), "idp-refresh-2");
    assert!(stored.record.groups.is_empty());

    // Revoking keeps the first reason and time, and drops the IdP token; the session is still
    // found by its tokens, for the caller to refuse.
    let revoked = revoke(&store, "01S1", "signed out").await.unwrap();
    let at = revoked.revoked_at_ms.unwrap();
    assert!(at >= before);
    assert_eq!(revoked.revoked_reason.as_deref(), Some("signed out"));
    let again = revoke(&store, "01S1", "admin revoked").await.unwrap();
    assert_eq!(again, revoked);
    let stored = store.session_by_refresh(&third.refresh).await.unwrap().unwrap();
    assert_eq!(stored.record, revoked);
    assert!(stored.idp_refresh_token.is_none());
    assert_eq!(revoke(&store, "nope", "x").await, None);
}

#[tokio::test]
async fn revoke_sessions_of_one_principal_case_insensitively() {
    let store = store().await;
    let now = now_ms();
    let ada = |id: &str, at: i64| session(id, PrincipalKind::User, "Ada@Example.com", at);
    insert(&store, &ada("01A1", now), &tokens(1), Some("idp")).await;
    insert(&store, &ada("01A2", now + 1), &tokens(2), None).await;
    insert(&store, &ada("01A3", now + 2), &tokens(3), None).await;
    let ended = SessionRecord { expires_at_ms: now - 1, ..ada("01A4", now - 2 * DAY) };
    insert(&store, &ended, &tokens(4), None).await;
    // An agent of the same name and another person are not touched.
    insert(
        &store,
        &session("01G1", PrincipalKind::Agent, "ada@example.com", now),
        &tokens(5),
        None,
    )
    .await;
    insert(&store, &session("01B1", PrincipalKind::User, "bob@example.com", now), &tokens(6), None)
        .await;
    let first = revoke(&store, "01A3", "signed out").await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let revoked = tx.revoke_sessions_of(PrincipalKind::User, "ADA@example.COM", "deactivated");
    let revoked = revoked.await.unwrap();
    let ids: Vec<_> = revoked.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["01A2", "01A1", "01A4"]);
    assert!(revoked.iter().all(|s| s.revoked_reason.as_deref() == Some("deactivated")));
    assert!(tx
        .revoke_sessions_of(PrincipalKind::User, "ada@example.com", "x")
        .await
        .unwrap()
        .is_empty());
    tx.commit().await.unwrap();

    assert_eq!(store.session("01A3").await.unwrap(), Some(first));
    assert!(store
        .session_by_refresh(&tokens(1).refresh)
        .await
        .unwrap()
        .unwrap()
        .idp_refresh_token
        .is_none());
    for untouched in ["01G1", "01B1"] {
        assert_eq!(store.session(untouched).await.unwrap().unwrap().revoked_at_ms, None);
    }
}

#[tokio::test]
async fn live_sessions_listing_and_pruning() {
    let store = store().await;
    let now = now_ms();
    let user = |id: &str, name: &str, at: i64| session(id, PrincipalKind::User, name, at);
    // Live: access works.
    insert(&store, &user("01L1", "ada@example.com", now - 3), &tokens(1), None).await;
    // Access expired, refresh still works: not live for the data plane, but not ended.
    let refreshable = SessionRecord {
        access_expires_at_ms: now - MINUTE,
        ..user("01R1", "Ada@example.com", now - 2)
    };
    insert(&store, &refreshable, &tokens(2), None).await;
    // Revoked.
    insert(&store, &user("01V1", "bob@example.com", now - 1), &tokens(3), None).await;
    revoke(&store, "01V1", "admin revoked").await.unwrap();
    // Ended: both tokens expired (refresh idle timeout), though before its absolute end.
    let idle = SessionRecord {
        access_expires_at_ms: now - 2 * DAY,
        refresh_expires_at_ms: now - DAY,
        ..user("01E1", "bob@example.com", now - 40 * DAY)
    };
    insert(&store, &idle, &tokens(4), None).await;
    // Ended: past its absolute end (the token expiries are capped at it).
    let expired = SessionRecord {
        access_expires_at_ms: now + MINUTE,
        refresh_expires_at_ms: now + DAY,
        expires_at_ms: now - 1,
        ..user("01E2", "carol@example.com", now - 91 * DAY)
    };
    insert(&store, &expired, &tokens(5), None).await;
    let stored = store.session("01E2").await.unwrap().unwrap();
    assert_eq!((stored.access_expires_at_ms, stored.refresh_expires_at_ms), (now - 1, now - 1));

    let live = store.live_sessions(now).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].0.id.as_str(), live[0].1), ("01L1", tokens(1).access));
    assert!(store.live_sessions(now + 10 * MINUTE).await.unwrap().is_empty());

    let ids = |q: SessionQuery| {
        let store = store.clone();
        async move { store.sessions(&q).await.unwrap().into_iter().map(|s| s.id).collect::<Vec<_>>() }
    };
    assert_eq!(ids(SessionQuery::default()).await, ["01R1", "01L1"]);
    let all = SessionQuery { include_inactive: true, ..Default::default() };
    assert_eq!(ids(all.clone()).await, ["01V1", "01R1", "01L1", "01E1", "01E2"]);
    assert_eq!(ids(SessionQuery { limit: Some(2), ..all.clone() }).await, ["01V1", "01R1"]);
    let ada = SessionQuery { name: Some("ADA@EXAMPLE.COM".into()), ..Default::default() };
    assert_eq!(ids(ada).await, ["01R1", "01L1"]);
    let bob = SessionQuery { name: Some("bob@example.com".into()), ..all.clone() };
    assert_eq!(ids(bob).await, ["01V1", "01E1"]);
    let bob_active = SessionQuery { name: Some("bob@example.com".into()), ..Default::default() };
    assert!(ids(bob_active).await.is_empty());

    // Pruning: sessions that ended before the cutoff, then those revoked before it.
    assert_eq!(store.prune_sessions(now - DAY - 1).await.unwrap(), 0);
    assert_eq!(store.prune_sessions(now).await.unwrap(), 2);
    assert_eq!(ids(all.clone()).await, ["01V1", "01R1", "01L1"]);
    assert_eq!(store.prune_sessions(now_ms() + 1).await.unwrap(), 1);
    assert_eq!(ids(all).await, ["01R1", "01L1"]);
}

#[tokio::test]
async fn idp_refresh_token_is_sealed_and_bound_to_its_session() {
    let dir = temp_dir("idp");
    let store =
        Store::open(&dir.join("agentnet.db"), &MasterKey::generate().unwrap()).await.unwrap();
    let now = now_ms();
    let secret = "idp-rt-VERYSECRET-0123456789";
    insert(&store, &session("01S1", PrincipalKind::User, "ada@x", now), &tokens(1), Some(secret))
        .await;
    insert(&store, &session("01S2", PrincipalKind::User, "bob@x", now), &tokens(2), Some("other"))
        .await;

    let stored = store.session_by_refresh(&tokens(1).refresh).await.unwrap().unwrap();
    assert_eq!(stored.idp_refresh_token.as_ref().unwrap().expose_secret(), secret);
    assert!(!format!("{stored:?}").contains("VERYSECRET"));
    assert_eq!(format!("{:?}", tokens(1)), "SessionTokens { .. }");

    // The raw column holds ciphertext only.
    let row = sqlx::query("SELECT idp_refresh_ciphertext FROM sessions WHERE id = '01S1'")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let sealed: Vec<u8> = row.try_get(0).unwrap();
    assert!(sealed.len() > secret.len());
    assert!(!sealed.windows(10).any(|w| w == b"VERYSECRET"));

    // Bound to its session: moved to another row, it does not open there.
    sqlx::query("UPDATE sessions SET idp_refresh_ciphertext = ?1 WHERE id = '01S2'")
        .bind(&sealed)
        .execute(&store.pool)
        .await
        .unwrap();
    let moved = store.session_by_refresh(&tokens(2).refresh).await;
    assert!(matches!(moved, Err(Error::Secret(SecretError::Open))), "{moved:?}");

    // Nowhere in the database files in plaintext.
    store.close().await;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let Ok(bytes) = std::fs::read(entry.unwrap().path()) else { continue };
        assert!(!bytes.windows(10).any(|w| w == b"VERYSECRET"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- setup keys -------------------------------------------------------------------------------

fn key(name: &str, max_uses: u32, expires_at_ms: i64) -> SetupKeyRecord {
    SetupKeyRecord {
        name: name.to_owned(),
        prefix: format!("agentnet_sk_{name}"),
        agent: None,
        auto_groups: names(&["ci", "agents", "ci"]),
        max_uses,
        uses: 0,
        expires_at_ms,
        revoked_at_ms: None,
        created_at_ms: 1_000,
        created_by: "ada@example.com".into(),
        last_used_at_ms: None,
    }
}

async fn create_key(store: &Store, key: &SetupKeyRecord, digest: &[u8; 32]) -> Result<()> {
    let mut tx = store.begin().await?;
    tx.create_setup_key(key, digest).await?;
    tx.commit().await
}

const UNKNOWN: Redemption = Redemption::Refused { key: None, state: SetupKeyState::Revoked };

fn refused(key: SetupKeyRecord, state: SetupKeyState) -> Redemption {
    Redemption::Refused { key: Some(key), state }
}

async fn redeem(store: &Store, digest: &[u8; 32], now: i64) -> Redemption {
    let mut tx = store.begin().await.unwrap();
    let redemption = tx.redeem_setup_key(digest, now).await.unwrap();
    tx.commit().await.unwrap();
    redemption
}

#[test]
fn setup_key_state_precedence() {
    let base = SetupKeyRecord { uses: 1, ..key("k", 2, 100) };
    let at = |record: &SetupKeyRecord, now| record.state(now);
    assert_eq!(at(&base, 99), SetupKeyState::Valid);
    assert_eq!(at(&base, 100), SetupKeyState::Expired);
    let used_up = SetupKeyRecord { uses: 2, ..base.clone() };
    assert_eq!(at(&used_up, 99), SetupKeyState::Exhausted);
    assert_eq!(at(&used_up, 100), SetupKeyState::Expired);
    let revoked = SetupKeyRecord { revoked_at_ms: Some(50), ..used_up };
    assert_eq!(at(&revoked, 100), SetupKeyState::Revoked);
    assert_eq!(at(&SetupKeyRecord { max_uses: 0, uses: 0, ..base }, 0), SetupKeyState::Exhausted);
    let spelled: Vec<_> = SetupKeyState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(spelled, ["valid", "expired", "exhausted", "revoked"]);
}

#[tokio::test]
async fn one_time_setup_key_is_redeemed_once() {
    let store = store().await;
    let now = now_ms();
    let digest = [7u8; 32];
    let created = SetupKeyRecord { agent: Some("ci-bot".into()), ..key("ci", 1, now + DAY) };
    create_key(&store, &created, &digest).await.unwrap();
    let expected = SetupKeyRecord { auto_groups: names(&["agents", "ci"]), ..created.clone() };
    assert_eq!(store.setup_key("ci").await.unwrap(), Some(expected.clone()));
    assert_eq!(store.setup_keys().await.unwrap(), std::slice::from_ref(&expected));

    // Name and digest are unique.
    let err = create_key(&store, &created, &[8u8; 32]).await.unwrap_err();
    assert_eq!(err.to_string(), "setup key 'ci' already exists");
    let same_digest = create_key(&store, &key("other", 1, now + DAY), &digest).await;
    assert!(matches!(same_digest, Err(Error::AlreadyExists { kind: "setup key", .. })));

    // A redemption that is not committed does not count.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.redeem_setup_key(&digest, now).await.unwrap(),
        Redemption::Redeemed(expected.clone())
    );
    drop(tx);
    assert_eq!(store.setup_key("ci").await.unwrap().unwrap().uses, 0);

    assert_eq!(redeem(&store, &digest, now).await, Redemption::Redeemed(expected.clone()));
    let used = SetupKeyRecord { uses: 1, last_used_at_ms: Some(now), ..expected };
    assert_eq!(store.setup_key("ci").await.unwrap(), Some(used.clone()));
    assert_eq!(used.state(now), SetupKeyState::Exhausted);
    assert_eq!(
        redeem(&store, &digest, now + 1).await,
        refused(used.clone(), SetupKeyState::Exhausted)
    );
    // Refusals change nothing.
    assert_eq!(store.setup_key("ci").await.unwrap(), Some(used));
}

#[tokio::test]
async fn setup_key_uses_are_counted_and_refusals_say_why() {
    let store = store().await;
    let now = now_ms();
    create_key(&store, &key("three", 3, now + DAY), &[3u8; 32]).await.unwrap();
    for (i, expected_uses) in (0..3).enumerate() {
        let at = now + i64::try_from(i).unwrap();
        let Redemption::Redeemed(before) = redeem(&store, &[3u8; 32], at).await else {
            panic!("use {i} refused");
        };
        assert_eq!(before.uses, expected_uses);
        let after = store.setup_key("three").await.unwrap().unwrap();
        assert_eq!((after.uses, after.last_used_at_ms), (expected_uses + 1, Some(at)));
    }
    let Redemption::Refused { key: Some(used_up), state: SetupKeyState::Exhausted } =
        redeem(&store, &[3u8; 32], now + 3).await
    else {
        panic!("an exhausted key was not refused as exhausted");
    };
    assert_eq!((used_up.uses, used_up.max_uses), (3, 3));

    // Expired: at its expiry and after.
    create_key(&store, &key("old", 5, now), &[4u8; 32]).await.unwrap();
    let Redemption::Refused { key: Some(old), state: SetupKeyState::Expired } =
        redeem(&store, &[4u8; 32], now).await
    else {
        panic!("an expired key was not refused as expired");
    };
    assert_eq!((old.expires_at_ms, old.uses), (now, 0));

    // Revoked, idempotently; revocation wins over exhaustion and expiry.
    let mut tx = store.begin().await.unwrap();
    let revoked = tx.revoke_setup_key("three", now + 10).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at_ms, Some(now + 10));
    assert_eq!(tx.revoke_setup_key("three", now + 20).await.unwrap(), Some(revoked.clone()));
    assert_eq!(tx.revoke_setup_key("nope", now).await.unwrap(), None);
    tx.commit().await.unwrap();
    assert_eq!(
        redeem(&store, &[3u8; 32], now + 30).await,
        refused(revoked, SetupKeyState::Revoked)
    );
    create_key(&store, &key("fresh", 1, now + DAY), &[5u8; 32]).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.revoke_setup_key("fresh", now).await.unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(
        redeem(&store, &[5u8; 32], now).await,
        Redemption::Refused { key: Some(_), state: SetupKeyState::Revoked }
    ));

    // Unknown: never issued, or deleted.
    assert_eq!(redeem(&store, &[9u8; 32], now).await, UNKNOWN);
    let mut tx = store.begin().await.unwrap();
    assert!(tx.delete_setup_key("old").await.unwrap());
    assert!(!tx.delete_setup_key("old").await.unwrap());
    assert_eq!(tx.setup_key("old").await.unwrap(), None);
    tx.commit().await.unwrap();
    assert_eq!(redeem(&store, &[4u8; 32], now).await, UNKNOWN);
    let left: Vec<_> = store.setup_keys().await.unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(left, ["fresh", "three"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_never_exceed_max_uses() {
    let dir = temp_dir("redeem");
    let store =
        Store::open(&dir.join("agentnet.db"), &MasterKey::generate().unwrap()).await.unwrap();
    let now = now_ms();
    create_key(&store, &key("once", 1, now + DAY), &[1u8; 32]).await.unwrap();
    create_key(&store, &key("thrice", 3, now + DAY), &[3u8; 32]).await.unwrap();

    for (digest, tasks, allowed) in [([1u8; 32], 2, 1), ([1u8; 32], 8, 0), ([3u8; 32], 12, 3)] {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { redeem(&store, &digest, now).await })
            })
            .collect();
        let mut redeemed = 0;
        for handle in handles {
            match handle.await.unwrap() {
                Redemption::Redeemed(_) => redeemed += 1,
                Redemption::Refused { key: Some(_), state: SetupKeyState::Exhausted } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(redeemed, allowed, "{tasks} tasks");
    }
    let uses: Vec<_> = store.setup_keys().await.unwrap().into_iter().map(|k| k.uses).collect();
    assert_eq!(uses, [1, 3]);
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
