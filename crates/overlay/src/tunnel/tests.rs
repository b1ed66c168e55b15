//! Two tunnels talking real WireGuard over loopback UDP, with raw IPv4 packets on their stack
//! sides: delivery, the inner-source check, removal, and a server that starts with no peers.

use std::{net::Ipv4Addr, time::Duration};

use bytes::Bytes;
use smoltcp::{
    phy::ChecksumCapabilities,
    wire::{IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr},
};
use tokio::{sync::mpsc, time::timeout};

use super::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);

/// A UDP datagram in an IPv4 packet, checksums filled in.
fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Bytes {
    let udp = UdpRepr { src_port: 4000, dst_port: 53 };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + ip.payload_len];
    let caps = ChecksumCapabilities::default();
    let mut packet = Ipv4Packet::new_unchecked(&mut buf);
    ip.emit(&mut packet, &caps);
    let mut datagram = UdpPacket::new_unchecked(packet.payload_mut());
    udp.emit(
        &mut datagram,
        &ip.src_addr.into(),
        &ip.dst_addr.into(),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &caps,
    );
    Bytes::from(buf)
}

struct Node {
    tunnel: Tunnel,
    key: PrivateKey,
    /// Packets the node's stack would receive.
    received: mpsc::Receiver<Bytes>,
    /// Packets the node's stack sends.
    send: mpsc::Sender<Bytes>,
}

async fn node(peers: &[TunnelPeer], key: PrivateKey) -> Node {
    let (to_stack, received) = mpsc::channel(64);
    let (send, from_stack) = mpsc::channel(64);
    let tunnel = Tunnel::start(
        &key,
        "127.0.0.1:0".parse().unwrap(),
        TunnelPipes { to_stack, from_stack },
        peers,
    )
    .await
    .unwrap();
    Node { tunnel, key, received, send }
}

/// A server with no peers, then a client added at run time (the order the real server sees).
async fn pair() -> (Node, Node) {
    let server = node(&[], PrivateKey::generate().unwrap()).await;
    let client_key = PrivateKey::generate().unwrap();
    let port = server.tunnel.listen_port().await;
    assert_ne!(port, 0, "a server with no peers must still listen");
    server.tunnel.upsert_peer(&TunnelPeer::device(client_key.public_key(), CLIENT)).await.unwrap();
    let to_server = TunnelPeer {
        public_key: server.key.public_key(),
        allowed: vec!["100.64.0.0/10".parse().unwrap()],
        endpoint: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        persistent_keepalive: None,
    };
    let client = node(&[to_server], client_key).await;
    (server, client)
}

async fn next(rx: &mut mpsc::Receiver<Bytes>) -> Option<Bytes> {
    timeout(Duration::from_secs(3), rx.recv()).await.ok().flatten()
}

#[tokio::test]
async fn packets_cross_both_ways_and_the_server_learns_the_endpoint() {
    let (mut server, mut client) = pair().await;
    let hello = udp_packet(CLIENT, SERVER, b"hello");
    client.send.send(hello.clone()).await.unwrap();
    assert_eq!(next(&mut server.received).await.as_deref(), Some(&hello[..]));

    // The server had no endpoint for the client: it answers where the handshake came from.
    let reply = udp_packet(SERVER, CLIENT, b"world");
    server.send.send(reply.clone()).await.unwrap();
    assert_eq!(next(&mut client.received).await.as_deref(), Some(&reply[..]));

    let traffic = server.tunnel.traffic().await;
    assert_eq!(traffic.len(), 1);
    assert!(traffic[0].since_handshake.is_some());
    assert!(traffic[0].rx_bytes > 0 && traffic[0].tx_bytes > 0, "{traffic:?}");
}

#[tokio::test]
async fn a_packet_with_another_peers_source_address_is_dropped() {
    let (mut server, client) = pair().await;
    // First a genuine packet, so the handshake is done and the drop below is the source check.
    client.send.send(udp_packet(CLIENT, SERVER, b"genuine")).await.unwrap();
    assert!(next(&mut server.received).await.is_some());

    let forged = udp_packet(Ipv4Addr::new(100, 64, 0, 3), SERVER, b"forged");
    client.send.send(forged).await.unwrap();
    let after = udp_packet(CLIENT, SERVER, b"after");
    client.send.send(after.clone()).await.unwrap();
    // The forged packet never arrives; the genuine one after it does.
    assert_eq!(next(&mut server.received).await.as_deref(), Some(&after[..]));
}

#[tokio::test]
async fn a_removed_peer_gets_nothing_through() {
    let (mut server, client) = pair().await;
    client.send.send(udp_packet(CLIENT, SERVER, b"before")).await.unwrap();
    assert!(next(&mut server.received).await.is_some());

    assert!(server.tunnel.remove_peer(&client.key.public_key()).await.unwrap());
    assert!(server.tunnel.peer_keys().await.is_empty());
    client.send.send(udp_packet(CLIENT, SERVER, b"after")).await.unwrap();
    assert!(
        timeout(Duration::from_millis(500), server.received.recv()).await.is_err(),
        "a removed peer's packet arrived"
    );
}
