//! Tests of the session table: lookup, rotation, revocation, expiry, principal updates and
//! concurrent use.

use std::sync::atomic::{AtomicBool, Ordering};

use domain::Principal;

use super::{SessionEntry, SessionTable};
use crate::{AuthError, TokenDigest};

const NOW: i64 = 1_700_000_000_000;

fn alice() -> Principal {
    Principal::user("sub-alice", "alice@example.com", vec!["eng".into()])
}

fn entry(session_id: &str, principal: Principal, expires_at_ms: i64) -> SessionEntry {
    SessionEntry { session_id: session_id.into(), principal, expires_at_ms }
}

/// A table holding `token` for `session_id` (alice, valid for a minute).
fn table_with(pairs: &[(&str, &str)]) -> SessionTable {
    let table = SessionTable::new();
    for (token, session_id) in pairs {
        table.insert(TokenDigest::of(token), entry(session_id, alice(), NOW + 60_000));
    }
    table
}

#[test]
fn insert_and_verify() {
    let table = SessionTable::new();
    assert!(table.is_empty());
    let expected = entry("s1", alice(), NOW + 60_000);
    table.insert(TokenDigest::of("agentnet_at_one"), expected.clone());
    assert_eq!(table.len(), 1);
    assert!(!table.is_empty());
    assert_eq!(table.verify("agentnet_at_one", NOW), Ok(expected));
    assert_eq!(table.verify("agentnet_at_two", NOW), Err(AuthError::SessionUnknown));
    assert_eq!(table.verify("agentnet_at_on", NOW), Err(AuthError::SessionUnknown));
    assert_eq!(table.verify("", NOW), Err(AuthError::Missing));
    assert_eq!(format!("{table:?}"), "SessionTable { sessions: 1 }");
}

#[test]
fn rotation_replaces_the_old_token() {
    let table = table_with(&[("old", "s1"), ("other", "s2")]);
    table.insert(TokenDigest::of("new"), entry("s1", alice(), NOW + 120_000));
    assert_eq!(table.verify("old", NOW), Err(AuthError::SessionUnknown));
    assert_eq!(table.verify("new", NOW).map(|e| e.expires_at_ms), Ok(NOW + 120_000));
    assert_eq!(table.verify("other", NOW).map(|e| e.session_id), Ok("s2".into()));
    assert_eq!(table.len(), 2);
    // Revoking the session after rotation ends the new token too, and nothing else.
    assert!(table.revoke("s1"));
    assert_eq!(table.verify("new", NOW), Err(AuthError::SessionUnknown));
    assert_eq!(table.len(), 1);
}

#[test]
fn reinserting_a_token_under_another_session_keeps_the_maps_consistent() {
    let table = table_with(&[("token", "s1")]);
    table.insert(TokenDigest::of("token"), entry("s2", alice(), NOW + 60_000));
    assert_eq!(table.len(), 1);
    assert_eq!(table.verify("token", NOW).map(|e| e.session_id), Ok("s2".into()));
    // s1 no longer owns anything: revoking it must not remove s2's token.
    assert!(!table.revoke("s1"));
    assert_eq!(table.len(), 1);
    assert!(table.revoke("s2"));
    assert!(table.is_empty());
}

#[test]
fn revoke() {
    let table = table_with(&[("a", "s1"), ("b", "s2")]);
    assert!(table.revoke("s1"));
    assert!(!table.revoke("s1"));
    assert!(!table.revoke("nope"));
    assert_eq!(table.verify("a", NOW), Err(AuthError::SessionUnknown));
    assert!(table.verify("b", NOW).is_ok());
}

#[test]
fn revoke_where() {
    let table = SessionTable::new();
    let bob = Principal::user("sub-bob", "bob@example.com", vec![]);
    let bot = Principal::agent("ci-bot", vec![]);
    table.insert(TokenDigest::of("a1"), entry("a1", alice(), NOW + 1));
    table.insert(TokenDigest::of("a2"), entry("a2", alice(), NOW + 1));
    table.insert(TokenDigest::of("b1"), entry("b1", bob, NOW + 1));
    table.insert(TokenDigest::of("c1"), entry("c1", bot, NOW + 1));
    let mut revoked = table.revoke_where(|e| e.principal.subject == "sub-alice");
    revoked.sort();
    assert_eq!(revoked, ["a1", "a2"]);
    assert_eq!(table.len(), 2);
    assert_eq!(table.verify("a1", NOW), Err(AuthError::SessionUnknown));
    assert!(table.verify("b1", NOW).is_ok());
    assert!(table.revoke_where(|e| e.principal.subject == "sub-alice").is_empty());
    // The revoked sessions are gone from the id map too.
    assert!(!table.revoke("a1"));
    assert!(table.revoke("c1"));
}

#[test]
fn expiry() {
    let table = SessionTable::new();
    table.insert(TokenDigest::of("t"), entry("s1", alice(), NOW));
    assert!(table.verify("t", NOW - 1).is_ok());
    assert_eq!(table.verify("t", NOW), Err(AuthError::Expired));
    // Removed on the first expired use.
    assert_eq!(table.verify("t", NOW - 1), Err(AuthError::SessionUnknown));
    assert!(table.is_empty());
    assert!(!table.revoke("s1"));
}

#[test]
fn prune() {
    let table = SessionTable::new();
    table.insert(TokenDigest::of("a"), entry("a", alice(), NOW - 1));
    table.insert(TokenDigest::of("b"), entry("b", alice(), NOW));
    table.insert(TokenDigest::of("c"), entry("c", alice(), NOW + 1));
    assert_eq!(table.prune(NOW), 2);
    assert_eq!(table.len(), 1);
    assert!(table.verify("c", NOW).is_ok());
    assert!(!table.revoke("a"));
    assert_eq!(table.prune(NOW), 0);
}

#[test]
fn update_principals() {
    let table = table_with(&[("a", "s1"), ("b", "s2")]);
    table.insert(TokenDigest::of("c"), entry("s3", Principal::agent("bot", vec![]), NOW + 1));
    let updated = table.update_principals(|e| {
        (e.principal.subject == "sub-alice").then(|| {
            Principal::user("sub-alice", "alice@example.com", vec!["ops".into(), "eng".into()])
        })
    });
    assert_eq!(updated, 2);
    let groups = table.verify("b", NOW).map(|e| e.principal.groups);
    assert_eq!(groups, Ok(vec!["eng".to_string(), "ops".to_string()]));
    assert_eq!(table.verify("c", NOW).map(|e| e.principal.groups), Ok(vec![]));
    assert_eq!(table.update_principals(|_| None), 0);
}

#[test]
fn replace_all() {
    let table = table_with(&[("stale", "s0")]);
    table.replace_all([
        (TokenDigest::of("a"), entry("s1", alice(), NOW + 1)),
        (TokenDigest::of("b-old"), entry("s2", alice(), NOW + 1)),
        (TokenDigest::of("b-new"), entry("s2", alice(), NOW + 2)),
    ]);
    assert_eq!(table.len(), 2);
    assert_eq!(table.verify("stale", NOW), Err(AuthError::SessionUnknown));
    assert_eq!(table.verify("b-old", NOW), Err(AuthError::SessionUnknown));
    assert_eq!(table.verify("b-new", NOW).map(|e| e.expires_at_ms), Ok(NOW + 2));
    assert!(table.revoke("s1"));
}

#[test]
fn concurrent_readers_see_revocation() {
    let table = SessionTable::new();
    for i in 0..100 {
        table.insert(TokenDigest::of(&format!("t{i}")), entry(&format!("s{i}"), alice(), NOW + 1));
    }
    let revoked = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut ok = 0usize;
                    for round in 0..2_000 {
                        let i = round % 100;
                        // Read the flag first: once set, s0's token must be refused.
                        let after_revoke = revoked.load(Ordering::SeqCst);
                        let outcome = table.verify(&format!("t{i}"), NOW);
                        if i == 0 && after_revoke {
                            assert_eq!(outcome, Err(AuthError::SessionUnknown));
                        } else if i != 0 {
                            assert_eq!(outcome.map(|e| e.session_id), Ok(format!("s{i}")));
                            ok += 1;
                        }
                    }
                    ok
                })
            })
            .collect();
        scope.spawn(|| {
            assert!(table.revoke("s0"));
            revoked.store(true, Ordering::SeqCst);
        });
        for reader in readers {
            // 20 rounds on each of the 99 other tokens.
            assert_eq!(reader.join().unwrap(), 2_000 / 100 * 99);
        }
    });
    assert_eq!(table.len(), 99);
}
