//! Peers: register, list by owner, rename, revoke (one or an owner's all), statistics, and the
//! rule that live peers never share a key or an address while revoked ones free both.

use std::net::Ipv4Addr;

use domain::PrincipalKind;

use super::*;
use crate::{MasterKey, Store};

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
            PeerStats { id: "p2", last_handshake_ms: Some(NOW), rx_bytes: 1_000, tx_bytes: 2_000 },
            PeerStats { id: "gone", last_handshake_ms: None, rx_bytes: 1, tx_bytes: 1 },
        ])
        .await
        .unwrap();
    store
        .record_peer_stats(&[PeerStats {
            id: "p2",
            last_handshake_ms: None,
            rx_bytes: 1_500,
            tx_bytes: 2_500,
        }])
        .await
        .unwrap();
    let p2 = store.peer("p2").await.unwrap().unwrap();
    assert_eq!((p2.last_handshake_ms, p2.rx_bytes, p2.tx_bytes), (Some(NOW), 1_500, 2_500));
}
