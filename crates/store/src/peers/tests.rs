//! Peers: register, list by owner, rename, revoke (one or an owner's all), statistics, the rule
//! that live peers never share a key or an address while revoked ones free both, registering a
//! key again, the binding to sessions (revocation cascades) and what the overlay serves.

use std::net::Ipv4Addr;

use domain::PrincipalKind;

use super::*;
use crate::{MasterKey, SessionRecord, SessionSource, SessionTokens, Store};

const NOW: i64 = 1_800_000_000_000;

async fn store() -> Store {
    Store::in_memory(&MasterKey::generate().unwrap()).await.unwrap()
}

fn peer(id: &str, owner: &str, key: &str, host: u8) -> PeerRecord {
    PeerRecord {
        id: id.into(),
        name: format!("{id}-laptop"),
        owner_kind: PrincipalKind::User,
        owner: owner.into(),
        public_key: key.into(),
        address: Ipv4Addr::new(100, 64, 0, host),
        session_id: None,
        created_at_ms: NOW + i64::from(host),
        expires_at_ms: NOW + 86_400_000,
        revoked_at_ms: None,
        revoked_reason: None,
        last_handshake_ms: None,
        rx_bytes: 0,
        tx_bytes: 0,
    }
}

async fn create(store: &Store, record: &PeerRecord) -> Result<()> {
    let mut tx = store.begin().await?;
    tx.create_peer(record).await?;
    tx.commit().await
}

#[tokio::test]
async fn peers_register_list_rename_and_revoke() {
    let store = store().await;
    let a = peer("p1", "Alice@example.com", "KEY-A", 2);
    let b = peer("p2", "alice@example.com", "KEY-B", 3);
    let c = peer("p3", "bob@example.com", "KEY-C", 4);
    for p in [&a, &b, &c] {
        create(&store, p).await.unwrap();
    }
    assert_eq!(store.peer("p1").await.unwrap(), Some(a.clone()));
    let alices = store
        .peers(&PeerQuery { owner: Some("ALICE@example.com".into()), include_inactive: false }, NOW)
        .await
        .unwrap();
    assert_eq!(alices.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["p2", "p1"]);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.rename_peer("p1", "work laptop").await.unwrap().name, "work laptop");
    assert!(matches!(tx.rename_peer("nope", "x").await, Err(Error::NotFound { .. })));
    let revoked = tx.revoke_peer("p3", "revoked by admin").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_reason.as_deref(), Some("revoked by admin"));
    let again = tx.revoke_peer("p3", "second").await.unwrap().unwrap();
    assert_eq!(
        again.revoked_reason.as_deref(),
        Some("revoked by admin"),
        "the first reason stands"
    );
    let all_alice =
        tx.revoke_peers_of(PrincipalKind::User, "alice@EXAMPLE.com", "deactivated").await.unwrap();
    assert_eq!(all_alice.len(), 2);
    assert!(tx
        .revoke_peers_of(PrincipalKind::User, "alice@example.com", "x")
        .await
        .unwrap()
        .is_empty());
    tx.commit().await.unwrap();

    assert!(store.peers(&PeerQuery::default(), NOW).await.unwrap().is_empty());
    let everything =
        store.peers(&PeerQuery { owner: None, include_inactive: true }, NOW).await.unwrap();
    assert_eq!(everything.len(), 3);
    assert!(everything.iter().all(|p| !p.is_live(NOW)));
}

#[tokio::test]
async fn live_peers_never_share_a_key_or_an_address_and_revocation_frees_both() {
    let store = store().await;
    create(&store, &peer("p1", "a@example.com", "KEY-A", 2)).await.unwrap();
    let same_key = create(&store, &peer("p2", "b@example.com", "KEY-A", 3)).await;
    assert!(
        matches!(&same_key, Err(Error::AlreadyExists { name, .. }) if name.contains("public key")),
        "{same_key:?}"
    );
    let same_address = create(&store, &peer("p3", "b@example.com", "KEY-B", 2)).await;
    assert!(
        matches!(&same_address, Err(Error::AlreadyExists { name, .. }) if name.contains("100.64.0.2")),
        "{same_address:?}"
    );

    let mut tx = store.begin().await.unwrap();
    tx.revoke_peer("p1", "signed out").await.unwrap();
    tx.commit().await.unwrap();
    create(&store, &peer("p4", "a@example.com", "KEY-A", 2)).await.unwrap();
}

#[tokio::test]
async fn expiry_and_statistics() {
    let store = store().await;
    let mut short = peer("p1", "a@example.com", "KEY-A", 2);
    short.expires_at_ms = NOW - 1;
    create(&store, &short).await.unwrap();
    create(&store, &peer("p2", "a@example.com", "KEY-B", 3)).await.unwrap();
    let live = store.peers(&PeerQuery::default(), NOW).await.unwrap();
    assert_eq!(live.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["p2"]);

    store
        .record_peer_stats(&[
            PeerStats {
                id: "p2",
                last_handshake_ms: Some(NOW),
                endpoint: Some("192.0.2.7:41000"),
                rx_bytes: 1_000,
                tx_bytes: 2_000,
            },
            PeerStats {
                id: "gone",
                last_handshake_ms: None,
                endpoint: None,
                rx_bytes: 1,
                tx_bytes: 1,
            },
        ])
        .await
        .unwrap();
    store
        .record_peer_stats(&[PeerStats {
            id: "p2",
            last_handshake_ms: None,
            endpoint: None,
            rx_bytes: 1_500,
            tx_bytes: 2_500,
        }])
        .await
        .unwrap();
    let p2 = store.peer("p2").await.unwrap().unwrap();
    assert_eq!((p2.last_handshake_ms, p2.rx_bytes, p2.tx_bytes), (Some(NOW), 1_500, 2_500));
}

fn session(id: &str, name: &str, groups: &[&str]) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        kind: PrincipalKind::User,
        subject: format!("sub-{name}"),
        name: name.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        source: SessionSource::Local,
        client: None,
        created_at_ms: NOW - 1_000,
        refreshed_at_ms: NOW - 1_000,
        access_expires_at_ms: NOW + 900_000,
        refresh_expires_at_ms: NOW + 86_400_000,
        expires_at_ms: NOW + 30 * 86_400_000,
        revoked_at_ms: None,
        revoked_reason: None,
    }
}

async fn open_session(store: &Store, record: &SessionRecord, n: u8) {
    let tokens = SessionTokens { access: [n; 32], refresh: [n + 100; 32] };
    let mut tx = store.begin().await.unwrap();
    tx.insert_session(record, &tokens, None).await.unwrap();
    tx.commit().await.unwrap();
}

fn bound(id: &str, owner: &str, key: &str, host: u8, session: &str) -> PeerRecord {
    PeerRecord { session_id: Some(session.into()), ..peer(id, owner, key, host) }
}

fn ids(peers: &[OverlayPeer]) -> Vec<&str> {
    peers.iter().map(|p| p.peer.id.as_str()).collect()
}

#[tokio::test]
async fn a_key_registered_again_is_found_and_rebound_keeping_its_address() {
    let store = store().await;
    open_session(&store, &session("s1", "a@example.com", &[]), 1).await;
    open_session(&store, &session("s2", "a@example.com", &[]), 2).await;
    create(&store, &bound("p1", "A@example.com", "KEY-A", 2, "s1")).await.unwrap();
    let mut expired = bound("p2", "b@example.com", "KEY-B", 3, "s2");
    expired.expires_at_ms = NOW - 1;
    create(&store, &expired).await.unwrap();
    create(&store, &peer("p3", "c@example.com", "KEY-C", 4)).await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.revoke_peer("p3", "gone").await.unwrap();
    let found = tx.peer_by_public_key("KEY-A").await.unwrap().unwrap();
    assert!(found.is_owned_by(PrincipalKind::User, "a@EXAMPLE.com"));
    assert!(!found.is_owned_by(PrincipalKind::Agent, "a@example.com"));
    assert!(tx.peer_by_public_key("KEY-C").await.unwrap().is_none(), "revoked: not holding it");
    // Expired but unrevoked peers still hold their address.
    let mut held = tx.peer_addresses().await.unwrap();
    held.sort();
    assert_eq!(held, [Ipv4Addr::new(100, 64, 0, 2), Ipv4Addr::new(100, 64, 0, 3)]);

    let rebound = tx.rebind_peer("p1", "s2", "new-name", NOW + 5).await.unwrap();
    assert_eq!(
        (rebound.session_id.as_deref(), rebound.name.as_str(), rebound.expires_at_ms),
        (Some("s2"), "new-name", NOW + 5)
    );
    assert_eq!((rebound.address, rebound.created_at_ms), (found.address, found.created_at_ms));
    assert!(matches!(tx.rebind_peer("nope", "s2", "x", NOW).await, Err(Error::NotFound { .. })));
    tx.commit().await.unwrap();
    assert_eq!(store.peer("p1").await.unwrap(), Some(rebound));
}

#[tokio::test]
async fn revoking_a_session_revokes_its_peers_with_the_same_reason() {
    let store = store().await;
    for (n, id) in [(1, "s1"), (2, "s2"), (3, "s3")] {
        open_session(&store, &session(id, "a@example.com", &[]), n).await;
    }
    open_session(&store, &session("s4", "b@example.com", &[]), 4).await;
    create(&store, &bound("p1", "a@example.com", "KEY-1", 2, "s1")).await.unwrap();
    create(&store, &bound("p2", "a@example.com", "KEY-2", 3, "s1")).await.unwrap();
    create(&store, &bound("p3", "a@example.com", "KEY-3", 4, "s2")).await.unwrap();
    create(&store, &bound("p4", "a@example.com", "KEY-4", 5, "s3")).await.unwrap();
    create(&store, &bound("p5", "b@example.com", "KEY-5", 6, "s4")).await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.revoke_session("s1", "signed out").await.unwrap();
    tx.commit().await.unwrap();
    let reason = |id: &'static str| {
        let store = store.clone();
        async move { store.peer(id).await.unwrap().unwrap().revoked_reason }
    };
    assert_eq!(reason("p1").await.as_deref(), Some("signed out"));
    assert_eq!(reason("p2").await.as_deref(), Some("signed out"));
    assert_eq!(reason("p3").await, None, "another session's peer stays");
    let session = store.session("s1").await.unwrap().unwrap();
    assert_eq!(store.peer("p1").await.unwrap().unwrap().revoked_at_ms, session.revoked_at_ms);

    // Revoking it again changes nothing.
    let mut tx = store.begin().await.unwrap();
    tx.revoke_session("s1", "again").await.unwrap();
    let revoked = tx.revoke_sessions_of(PrincipalKind::User, "A@example.com", "deactivated").await;
    assert_eq!(revoked.unwrap().len(), 2);
    tx.commit().await.unwrap();
    assert_eq!(reason("p1").await.as_deref(), Some("signed out"));
    assert_eq!(reason("p3").await.as_deref(), Some("deactivated"));
    assert_eq!(reason("p4").await.as_deref(), Some("deactivated"));
    assert_eq!(reason("p5").await, None, "someone else's peer stays");
}

#[tokio::test]
async fn overlay_peers_are_the_live_peers_of_live_sessions_with_their_principal() {
    let store = store().await;
    open_session(&store, &session("s1", "a@example.com", &["eng", "admins"]), 1).await;
    let mut ended = session("s2", "b@example.com", &["eng"]);
    (ended.access_expires_at_ms, ended.refresh_expires_at_ms) = (NOW - 2, NOW - 1);
    open_session(&store, &ended, 2).await;
    open_session(&store, &session("s3", "c@example.com", &[]), 3).await;
    // An idle session (access token expired, refresh token not) still counts.
    let mut idle = session("s4", "d@example.com", &["ops"]);
    idle.access_expires_at_ms = NOW - 1;
    open_session(&store, &idle, 4).await;

    create(&store, &bound("live", "a@example.com", "KEY-1", 2, "s1")).await.unwrap();
    let mut expired = bound("expired", "a@example.com", "KEY-2", 3, "s1");
    expired.expires_at_ms = NOW;
    create(&store, &expired).await.unwrap();
    create(&store, &bound("revoked", "a@example.com", "KEY-3", 4, "s1")).await.unwrap();
    create(&store, &bound("session-ended", "b@example.com", "KEY-4", 5, "s2")).await.unwrap();
    create(&store, &bound("session-revoked", "c@example.com", "KEY-5", 6, "s3")).await.unwrap();
    create(&store, &peer("unbound", "a@example.com", "KEY-6", 7)).await.unwrap();
    create(&store, &bound("idle", "d@example.com", "KEY-7", 8, "s4")).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.revoke_peer("revoked", "admin").await.unwrap();
    tx.revoke_session("s3", "signed out").await.unwrap();
    tx.commit().await.unwrap();

    let overlay = store.overlay_peers(NOW).await.unwrap();
    assert_eq!(ids(&overlay), ["live", "idle"]);
    assert_eq!(overlay[0].subject, "sub-a@example.com");
    assert_eq!(overlay[0].groups, ["admins", "eng"]);
    assert_eq!(overlay[0].peer.address, Ipv4Addr::new(100, 64, 0, 2));
    assert_eq!(overlay[1].groups, ["ops"]);
    assert_eq!(overlay[0].last_endpoint, None);

    // The endpoint a peer was last seen at is kept across later reports without one.
    for endpoint in [Some("192.0.2.7:41000"), None] {
        let stats =
            PeerStats { id: "live", last_handshake_ms: None, endpoint, rx_bytes: 0, tx_bytes: 0 };
        store.record_peer_stats(&[stats]).await.unwrap();
    }
    let overlay = store.overlay_peers(NOW).await.unwrap();
    assert_eq!(overlay[0].last_endpoint.as_deref(), Some("192.0.2.7:41000"));
}
