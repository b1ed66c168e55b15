//! Peer DTOs: the wg-quick file, exactly, and the wire shapes.

use expect_test::expect;

use super::*;

fn config(dns: bool) -> TunnelConfig {
    TunnelConfig {
        peer: PeerView {
            id: "01jpeer".into(),
            name: "alice-laptop".into(),
            owner_kind: "user".into(),
            owner: "alice@example.com".into(),
            public_key: "VboEGAIZbjG/eSne9iIuNoolLWhlGqbqHqNzQN5geQM=".into(),
            address: "100.64.0.2".into(),
            status: "active".into(),
            session_id: Some("01jsession".into()),
            created_at: "2025-06-01T12:00:00.000Z".into(),
            expires_at: "2025-07-01T12:00:00.000Z".into(),
            revoked_at: None,
            revoked_reason: None,
            last_handshake_at: None,
            rx_bytes: 0,
            tx_bytes: 0,
        },
        address: "100.64.0.2/32".into(),
        server_public_key: "hbfBQKaGvzefSSuufuaBUwZ5xBTaEYgq7zrymj0YmVw=".into(),
        server_address: "100.64.0.1".into(),
        endpoint: "agentnet.example.com:51820".into(),
        allowed_ips: "100.64.0.0/10".into(),
        dns: dns.then(|| "100.64.0.1".into()),
        domain: "agentnet.internal".into(),
        ai_url: if dns { "http://ai.agentnet.internal" } else { "http://100.64.0.1" }.into(),
        mtu: 1420,
        persistent_keepalive: 25,
    }
}

#[test]
fn wg_quick_file_with_dns() {
    expect![[r#"
        # agentnet overlay: peer alice-laptop (01jpeer) of alice@example.com, until 2025-07-01T12:00:00.000Z
        # AI endpoint: http://ai.agentnet.internal
        [Interface]
        PrivateKey = yEiAzSguiW5jP+5Q+dCDQTcDRYIDPkka7YXRKAovnGM=
        Address = 100.64.0.2/32
        DNS = 100.64.0.1, agentnet.internal
        MTU = 1420

        [Peer]
        PublicKey = hbfBQKaGvzefSSuufuaBUwZ5xBTaEYgq7zrymj0YmVw=
        Endpoint = agentnet.example.com:51820
        AllowedIPs = 100.64.0.0/10
        PersistentKeepalive = 25
    "#]]
    .assert_eq(&config(true).wg_quick("yEiAzSguiW5jP+5Q+dCDQTcDRYIDPkka7YXRKAovnGM="));
}

#[test]
fn wg_quick_file_without_dns_or_keepalive() {
    let mut config = config(false);
    config.persistent_keepalive = 0;
    expect![[r#"
        # agentnet overlay: peer alice-laptop (01jpeer) of alice@example.com, until 2025-07-01T12:00:00.000Z
        # AI endpoint: http://100.64.0.1
        [Interface]
        PrivateKey = PRIVATE
        Address = 100.64.0.2/32
        MTU = 1420

        [Peer]
        PublicKey = hbfBQKaGvzefSSuufuaBUwZ5xBTaEYgq7zrymj0YmVw=
        Endpoint = agentnet.example.com:51820
        AllowedIPs = 100.64.0.0/10
    "#]]
    .assert_eq(&config.wg_quick("PRIVATE"));
}

#[test]
fn peer_shapes_on_the_wire() {
    let mut view = config(false).peer;
    view.session_id = None;
    expect![[r#"{"id":"01jpeer","name":"alice-laptop","owner_kind":"user","owner":"alice@example.com","public_key":"VboEGAIZbjG/eSne9iIuNoolLWhlGqbqHqNzQN5geQM=","address":"100.64.0.2","status":"active","created_at":"2025-06-01T12:00:00.000Z","expires_at":"2025-07-01T12:00:00.000Z","rx_bytes":0,"tx_bytes":0}"#]]
        .assert_eq(&serde_json::to_string(&view).unwrap());
    let config = config(false);
    let back: TunnelConfig =
        serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(back, config);
    let typo = serde_json::from_str::<PeerRegistration>(r#"{"name":"x","publickey":"k"}"#);
    assert!(typo.unwrap_err().to_string().contains("unknown field `publickey`"));
    let query: PeerQuery = serde_json::from_str(r#"{"owner":"bob"}"#).unwrap();
    assert_eq!(query, PeerQuery { owner: Some("bob".into()), all: false });
}
