//! Two stacks back to back (100.64.0.1 serving, 100.64.0.2 calling), their pipes cross-wired
//! by two forwarding tasks: echo, bulk transfer both ways, bursts of connections, limits,
//! resets, closing, UDP, garbage input, and that sockets do not leak. Time is paused: smoltcp's
//! timers run on tokio's clock, so waits cost nothing.

use std::{
    io,
    net::{Ipv4Addr, SocketAddrV4},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
    task::JoinSet,
    time::timeout,
};

use super::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
const HTTP: SocketAddrV4 = SocketAddrV4::new(SERVER, 80);
/// A bound on waits that should finish long before; only guards against a hang.
const PATIENCE: Duration = Duration::from_secs(60);

struct Pair {
    server: NetStack,
    client: NetStack,
    /// Injects packets into the server as if they came from the tunnel.
    to_server: mpsc::Sender<Bytes>,
    /// While set, the link loses every packet both ways.
    cut: Arc<AtomicBool>,
}

fn config(address: Ipv4Addr) -> NetStackConfig {
    NetStackConfig { address, ..NetStackConfig::default() }
}

fn pair() -> Pair {
    pair_with(config(SERVER), config(CLIENT))
}

fn pair_with(server_config: NetStackConfig, client_config: NetStackConfig) -> Pair {
    let (server, server_pipes) = NetStack::new(server_config);
    let (client, client_pipes) = NetStack::new(client_config);
    let to_server = server_pipes.inbound.clone();
    let cut = Arc::new(AtomicBool::new(false));
    tokio::spawn(wire(client_pipes.outbound, server_pipes.inbound, cut.clone()));
    tokio::spawn(wire(server_pipes.outbound, client_pipes.inbound, cut.clone()));
    Pair { server, client, to_server, cut }
}

/// A lossless link (it waits for room rather than dropping), unless `cut`.
async fn wire(mut from: mpsc::Receiver<Bytes>, to: mpsc::Sender<Bytes>, cut: Arc<AtomicBool>) {
    while let Some(packet) = from.recv().await {
        if cut.load(Ordering::Relaxed) {
            continue;
        }
        if to.send(packet).await.is_err() {
            break;
        }
    }
}

fn polls(stack: &NetStack) -> u64 {
    stack.owner.shared.polls.load(Ordering::Relaxed)
}

/// Accepts connections on `listener` forever, echoing each one until EOF.
fn serve_echo(mut listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = stream.shutdown().await;
            });
        }
    });
}

async fn echo_once(client: &NetStack, message: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = client.connect_tcp(HTTP).await?;
    stream.write_all(message).await?;
    stream.shutdown().await?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await?;
    Ok(reply)
}

/// Waits (on the paused clock) until `condition` holds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The deterministic byte at `offset` of a test stream.
fn pattern(seed: u8, offset: usize) -> u8 {
    (offset as u8).wrapping_mul(31).wrapping_add((offset >> 11) as u8).wrapping_add(seed)
}

async fn write_pattern<W: AsyncWriteExt + Unpin>(
    writer: &mut W,
    seed: u8,
    len: usize,
) -> io::Result<()> {
    let mut offset = 0;
    let mut chunk = vec![0; 61_000]; // not a multiple of anything in particular
    while offset < len {
        let n = chunk.len().min(len - offset);
        for (i, b) in chunk[..n].iter_mut().enumerate() {
            *b = pattern(seed, offset + i);
        }
        writer.write_all(&chunk[..n]).await?;
        offset += n;
    }
    Ok(())
}

/// Reads to EOF, checking every byte against the pattern; returns the length.
async fn read_pattern<R: AsyncReadExt + Unpin>(reader: &mut R, seed: u8) -> io::Result<usize> {
    let mut offset = 0;
    let mut buf = vec![0; 48_000];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(offset);
        }
        for (i, b) in buf[..n].iter().enumerate() {
            if *b != pattern(seed, offset + i) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("byte {} differs", offset + i),
                ));
            }
        }
        offset += n;
    }
}

#[tokio::test(start_paused = true)]
async fn echo_round_trip() {
    let pair = pair();
    let mut listener = pair.server.listen_tcp(HTTP).unwrap();
    assert_eq!(listener.local_addr(), HTTP);

    let server = tokio::spawn(async move {
        let (mut stream, remote) = listener.accept().await.unwrap();
        assert_eq!(stream.peer_addr(), remote);
        assert_eq!(stream.local_addr(), HTTP);
        let mut request = Vec::new();
        stream.read_to_end(&mut request).await.unwrap();
        stream.write_all(&request).await.unwrap();
        stream.shutdown().await.unwrap();
        remote
    });

    let mut stream = pair.client.connect_tcp(HTTP).await.unwrap();
    assert_eq!(stream.peer_addr(), HTTP);
    assert_eq!(*stream.local_addr().ip(), CLIENT);
    stream.write_all(b"hello over the overlay").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"hello over the overlay");

    let remote = server.await.unwrap();
    assert_eq!(remote, stream.local_addr(), "the server sees the caller's overlay address");
}

#[tokio::test(start_paused = true)]
async fn bulk_both_directions() {
    const LEN: usize = 16 << 20;
    let pair = pair();
    let mut listener = pair.server.listen_tcp(HTTP).unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut reader, mut writer) = tokio::io::split(stream);
        let send = async {
            write_pattern(&mut writer, 7, LEN).await?;
            writer.shutdown().await
        };
        let (sent, received) = tokio::join!(send, read_pattern(&mut reader, 3));
        sent.unwrap();
        received.unwrap()
    });

    let stream = pair.client.connect_tcp(HTTP).await.unwrap();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let send = async {
        write_pattern(&mut writer, 3, LEN).await?;
        writer.shutdown().await
    };
    let (sent, received) =
        timeout(PATIENCE, async { tokio::join!(send, read_pattern(&mut reader, 7)) })
            .await
            .unwrap();
    sent.unwrap();
    assert_eq!(received.unwrap(), LEN, "client received everything intact");
    assert_eq!(server.await.unwrap(), LEN, "server received everything intact");
}

#[tokio::test(start_paused = true)]
async fn burst_of_concurrent_connections_all_served() {
    let pair = pair();
    serve_echo(pair.server.listen_tcp(HTTP).unwrap());

    let mut tasks = JoinSet::new();
    for i in 0..100u32 {
        let client = pair.client.clone();
        tasks.spawn(async move {
            let message = format!("request {i}");
            let reply = echo_once(&client, message.as_bytes()).await?;
            assert_eq!(reply, message.as_bytes());
            io::Result::Ok(())
        });
    }
    let mut served = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
        served += 1;
    }
    assert_eq!(served, 100);
}

#[tokio::test(start_paused = true)]
async fn per_peer_limit_refuses_the_excess() {
    let server_config = NetStackConfig { max_connections_per_peer: 4, ..config(SERVER) };
    let pair = pair_with(server_config, config(CLIENT));
    serve_echo(pair.server.listen_tcp(HTTP).unwrap());

    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pair.client.connect_tcp(HTTP).await.unwrap());
    }
    let excess = pair.client.connect_tcp(HTTP).await.unwrap_err();
    assert_eq!(excess.kind(), io::ErrorKind::ConnectionRefused);

    for (i, stream) in held.iter_mut().enumerate() {
        let message = format!("still fine {i}");
        stream.write_all(message.as_bytes()).await.unwrap();
        let mut reply = vec![0; message.len()];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, message.as_bytes());
    }

    // Freed slots are usable again.
    held.pop();
    eventually("a slot to free up", || pair.server.connection_count() < 4).await;
    assert_eq!(echo_once(&pair.client, b"again").await.unwrap(), b"again");
}

#[tokio::test(start_paused = true)]
async fn total_limit_refuses_the_excess() {
    let server_config = NetStackConfig { max_connections: 2, ..config(SERVER) };
    let pair = pair_with(server_config, config(CLIENT));
    serve_echo(pair.server.listen_tcp(HTTP).unwrap());
    let _a = pair.client.connect_tcp(HTTP).await.unwrap();
    let _b = pair.client.connect_tcp(HTTP).await.unwrap();
    let excess = pair.client.connect_tcp(HTTP).await.unwrap_err();
    assert_eq!(excess.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test(start_paused = true)]
async fn abort_peer_resets_both_sides() {
    let pair = pair();
    let mut listener = pair.server.listen_tcp(HTTP).unwrap();
    let mut client_streams = Vec::new();
    let mut server_streams = Vec::new();
    for _ in 0..3 {
        let mut stream = pair.client.connect_tcp(HTTP).await.unwrap();
        stream.write_all(b"unread request").await.unwrap();
        client_streams.push(stream);
        server_streams.push(listener.accept().await.unwrap().0);
    }
    assert_eq!(pair.server.connection_count(), 3);

    assert_eq!(pair.server.abort_peer(CLIENT), 3);
    assert_eq!(pair.server.abort_peer(Ipv4Addr::new(100, 64, 0, 9)), 0);

    for stream in &mut server_streams {
        let mut buf = [0; 16];
        let error = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        let error = stream.write_all(b"late").await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
    }
    for stream in &mut client_streams {
        let mut buf = [0; 16];
        match timeout(PATIENCE, stream.read(&mut buf)).await.unwrap() {
            Ok(0) => {}
            Ok(n) => panic!("read {n} bytes after a reset"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        }
    }
    eventually("server sockets to go", || pair.server.connection_count() == 0).await;
    eventually("client sockets to go", || pair.client.connection_count() == 0).await;
}

#[tokio::test(start_paused = true)]
async fn abort_peer_resets_a_pending_connection() {
    let pair = pair();
    // Listening, but never accepting: the connection waits in the queue.
    let _listener = pair.server.listen_tcp(HTTP).unwrap();
    let mut stream = pair.client.connect_tcp(HTTP).await.unwrap();
    eventually("the server to see it", || pair.server.connection_count() == 1).await;
    assert_eq!(pair.server.abort_peer(CLIENT), 1);
    let mut buf = [0; 4];
    assert!(matches!(stream.read(&mut buf).await, Ok(0) | Err(_)));
    eventually("server sockets to go", || pair.server.connection_count() == 0).await;
}

#[tokio::test(start_paused = true)]
async fn graceful_close_delivers_everything_then_eof() {
    const LEN: usize = 3 << 20;
    let pair = pair();
    let mut listener = pair.server.listen_tcp(HTTP).unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        write_pattern(&mut stream, 11, LEN).await.unwrap();
        stream.shutdown().await.unwrap();
        // Dropped right away, with most of the data still buffered: it must still arrive.
    });
    let mut stream = pair.client.connect_tcp(HTTP).await.unwrap();
    // Let the server fill its buffer and drop its stream before reading anything.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(read_pattern(&mut stream, 11).await.unwrap(), LEN);
    let mut buf = [0; 1];
    assert_eq!(stream.read(&mut buf).await.unwrap(), 0, "EOF stays EOF");
    stream.shutdown().await.unwrap();
    drop(stream);
    eventually("server sockets to go", || pair.server.connection_count() == 0).await;
    eventually("client sockets to go", || pair.client.connection_count() == 0).await;
}

#[tokio::test(start_paused = true)]
async fn connection_to_unlistened_port_is_refused_at_once() {
    let pair = pair();
    let _listener = pair.server.listen_tcp(HTTP).unwrap();
    let started = tokio::time::Instant::now();
    let error = pair.client.connect_tcp(SocketAddrV4::new(SERVER, 81)).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    // On the paused clock, any retransmission timeout would show as a second or more.
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "refused after {:?}",
        started.elapsed()
    );
    assert_eq!(pair.client.connection_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn connect_to_a_silent_address_times_out() {
    let pair = pair();
    let error = pair
        .client
        .connect_tcp(SocketAddrV4::new(Ipv4Addr::new(100, 64, 0, 7), 80))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    eventually("the attempt to go", || pair.client.connection_count() == 0).await;
}

#[tokio::test(start_paused = true)]
async fn listener_answers_only_its_own_address_and_port_once() {
    let pair = pair();
    let _listener = pair.server.listen_tcp(HTTP).unwrap();
    assert_eq!(pair.server.listen_tcp(HTTP).unwrap_err().kind(), io::ErrorKind::AddrInUse);
    let elsewhere = SocketAddrV4::new(Ipv4Addr::new(100, 64, 0, 5), 80);
    assert_eq!(
        pair.server.listen_tcp(elsewhere).unwrap_err().kind(),
        io::ErrorKind::AddrNotAvailable
    );
    let outside = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80);
    assert_eq!(
        pair.client.connect_tcp(outside).await.unwrap_err().kind(),
        io::ErrorKind::NetworkUnreachable
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_listener_frees_the_port() {
    let pair = pair();
    let listener = pair.server.listen_tcp(HTTP).unwrap();
    let _queued = pair.client.connect_tcp(HTTP).await.unwrap();
    drop(listener);
    eventually("queued connection to be reset", || pair.server.connection_count() == 0).await;
    serve_echo(pair.server.listen_tcp(HTTP).unwrap());
    assert_eq!(echo_once(&pair.client, b"x").await.unwrap(), b"x");
}

#[tokio::test(start_paused = true)]
async fn udp_round_trip() {
    let pair = pair();
    let server = pair.server.bind_udp(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53)).unwrap();
    assert_eq!(server.local_addr(), SocketAddrV4::new(SERVER, 53));
    assert_eq!(
        pair.server.bind_udp(SocketAddrV4::new(SERVER, 53)).unwrap_err().kind(),
        io::ErrorKind::AddrInUse
    );
    let client = pair.client.bind_udp(SocketAddrV4::new(CLIENT, 5353)).unwrap();

    client.send_to(b"query", SocketAddrV4::new(SERVER, 53)).await.unwrap();
    let mut buf = [0; 64];
    let (n, from) = server.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"query");
    assert_eq!(from, SocketAddrV4::new(CLIENT, 5353));

    server.send_to(b"answer", from).await.unwrap();
    let (n, from) = client.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"answer");
    assert_eq!(from, SocketAddrV4::new(SERVER, 53));

    let too_big = vec![0; 1500];
    assert_eq!(
        client.send_to(&too_big, from).await.unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

/// Packets that must be ignored: random bytes, cut headers, lies in length fields, IPv6,
/// fragments, and well-formed packets for somebody else.
fn garbage() -> Vec<Bytes> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut packets: Vec<Vec<u8>> = Vec::new();
    for len in [0, 1, 19, 20, 40, 60, 1420, 3000] {
        packets.push((0..len).map(|_| random() as u8).collect());
    }
    // A plausible SYN to us, to be cut at every length and mangled.
    let syn = tcp_syn(CLIENT, SERVER, 40000, 80);
    for cut in 0..syn.len() {
        packets.push(syn[..cut].to_vec());
    }
    let mut lying = syn.clone();
    lying[2..4].copy_from_slice(&60000u16.to_be_bytes()); // total length beyond the buffer
    packets.push(lying);
    let mut short_ihl = syn.clone();
    short_ihl[0] = 0x43; // header length 12 bytes
    packets.push(short_ihl);
    let mut long_ihl = syn.clone();
    long_ihl[0] = 0x4f; // header length 60 bytes, past the TCP header
    packets.push(long_ihl);
    let mut bad_data_offset = syn.clone();
    bad_data_offset[32] = 0xf0; // TCP header length 60 bytes
    packets.push(bad_data_offset);
    let mut fragment = syn.clone();
    fragment[6] = 0x20; // more fragments
    packets.push(fragment);
    packets.push(tcp_syn(CLIENT, Ipv4Addr::new(100, 64, 0, 77), 40001, 80)); // not for us
    packets.push(tcp_syn(CLIENT, Ipv4Addr::BROADCAST, 40002, 80));
    packets.push(tcp_syn(Ipv4Addr::new(10, 1, 2, 3), SERVER, 40003, 80)); // off-network source
    let mut ipv6 = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
    ipv6.extend((0..52).map(|_| random() as u8));
    packets.push(ipv6);
    for _ in 0..200 {
        let mut mangled = syn.clone();
        let at = random() as usize % mangled.len();
        mangled[at] = random() as u8;
        packets.push(mangled);
    }
    packets.into_iter().map(Bytes::from).collect()
}

/// An IPv4 TCP SYN with valid checksums.
fn tcp_syn(src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) -> Vec<u8> {
    use smoltcp::{
        phy::ChecksumCapabilities,
        wire::{IpProtocol, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber},
    };
    let tcp = TcpRepr {
        src_port,
        dst_port,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(1234),
        ack_number: None,
        window_len: 1024,
        window_scale: None,
        max_seg_size: Some(1380),
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let caps = ChecksumCapabilities::default();
    let mut buf = vec![0; ip.buffer_len() + tcp.buffer_len()];
    let mut packet = Ipv4Packet::new_unchecked(&mut buf);
    ip.emit(&mut packet, &caps);
    let mut segment = TcpPacket::new_unchecked(packet.payload_mut());
    tcp.emit(&mut segment, &src.into(), &dst.into(), &caps);
    buf
}

#[tokio::test(start_paused = true)]
async fn garbage_is_ignored_and_service_goes_on() {
    let pair = pair();
    serve_echo(pair.server.listen_tcp(HTTP).unwrap());
    let udp = pair.server.bind_udp(SocketAddrV4::new(SERVER, 53)).unwrap();
    assert_eq!(echo_once(&pair.client, b"before").await.unwrap(), b"before");

    let mut during = tokio::spawn({
        let client = pair.client.clone();
        async move {
            let mut stream = client.connect_tcp(HTTP).await.unwrap();
            for i in 0..50u32 {
                let message = format!("during {i}");
                stream.write_all(message.as_bytes()).await.unwrap();
                let mut reply = vec![0; message.len()];
                stream.read_exact(&mut reply).await.unwrap();
                assert_eq!(reply, message.as_bytes());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    for packet in garbage() {
        pair.to_server.send(packet).await.unwrap();
    }
    timeout(PATIENCE, &mut during).await.unwrap().unwrap();

    assert_eq!(echo_once(&pair.client, b"after").await.unwrap(), b"after");
    let client_udp = pair.client.bind_udp(SocketAddrV4::new(CLIENT, 4000)).unwrap();
    client_udp.send_to(b"still here", SocketAddrV4::new(SERVER, 53)).await.unwrap();
    let mut buf = [0; 32];
    let (n, _) = udp.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"still here");
    // The valid SYN among the garbage may have opened a half-open connection; nothing else.
    eventually("no leftovers", || pair.server.connection_count() <= 1).await;
}

#[tokio::test(start_paused = true)]
async fn dropped_handles_leave_no_sockets() {
    let pair = pair();
    let mut listener = pair.server.listen_tcp(HTTP).unwrap();

    // Client drops first, after a full exchange.
    let mut client = pair.client.connect_tcp(HTTP).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0; 4];
    server.read_exact(&mut buf).await.unwrap();
    drop(client);
    assert_eq!(server.read(&mut buf).await.unwrap(), 0);
    drop(server);

    // Server drops first, with unread data on both sides and data still buffered.
    let mut client = pair.client.connect_tcp(HTTP).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    client.write_all(&[1; 100_000]).await.unwrap();
    server.write_all(&[2; 100_000]).await.unwrap();
    drop(server);
    drop(client);

    // Many at once, dropped in the middle of a transfer.
    let mut pairs = Vec::new();
    for _ in 0..20 {
        let mut client = pair.client.connect_tcp(HTTP).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(&[3; 10_000]).await.unwrap();
        pairs.push((client, server));
    }
    drop(pairs);

    // And a connection still in the accept queue when the listener goes.
    let _queued = pair.client.connect_tcp(HTTP).await.unwrap();
    drop(listener);

    eventually("server sockets to go", || pair.server.connection_count() == 0).await;
    drop(_queued);
    eventually("client sockets to go", || pair.client.connection_count() == 0).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_everything() {
    let pair = pair();
    let mut listener = pair.server.listen_tcp(HTTP).unwrap();
    let mut client = pair.client.connect_tcp(HTTP).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    let udp = pair.server.bind_udp(SocketAddrV4::new(SERVER, 53)).unwrap();

    let pending_read = tokio::spawn(async move {
        let mut buf = [0; 4];
        server.read(&mut buf).await
    });
    let pending_accept = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
    let pending_udp = tokio::spawn(async move {
        let mut buf = [0; 4];
        udp.recv_from(&mut buf).await.map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    pair.server.shutdown();

    assert!(timeout(PATIENCE, pending_read).await.unwrap().unwrap().is_err());
    assert!(timeout(PATIENCE, pending_accept).await.unwrap().unwrap().is_err());
    assert!(timeout(PATIENCE, pending_udp).await.unwrap().unwrap().is_err());
    assert!(pair.server.listen_tcp(HTTP).is_err());
    assert_eq!(pair.server.connection_count(), 0);
    // The client saw the reset.
    let mut buf = [0; 4];
    assert!(matches!(timeout(PATIENCE, client.read(&mut buf)).await.unwrap(), Ok(0) | Err(_)));
}

#[tokio::test(start_paused = true)]
async fn dropping_every_clone_stops_the_stack() {
    let (stack, mut pipes) = NetStack::new(config(SERVER));
    let clone = stack.clone();
    drop(stack);
    drop(clone);
    // The stack task ends and drops its end of the outbound channel.
    assert!(timeout(PATIENCE, pipes.outbound.recv()).await.unwrap().is_none());
}

#[test]
fn handles_fit_hyper_and_tasks() {
    fn check<T: Send + Sync + Unpin + 'static>() {}
    check::<TcpStream>();
    check::<TcpListener>();
    check::<UdpSocket>();
    check::<NetStack>();
}

#[tokio::test(start_paused = true)]
async fn idle_connections_cost_nothing_and_survive_on_keepalives() {
    let pair = pair();
    serve_echo(pair.server.listen_tcp(HTTP).unwrap());
    let mut stream = pair.client.connect_tcp(HTTP).await.unwrap();
    stream.write_all(b"warm up").await.unwrap();
    let mut buf = [0; 7];
    stream.read_exact(&mut buf).await.unwrap();

    let before = (polls(&pair.server), polls(&pair.client));
    tokio::time::sleep(Duration::from_secs(600)).await; // twice the idle timeout
    let woke = (polls(&pair.server) - before.0, polls(&pair.client) - before.1);
    // A keep-alive a minute and its answer: a handful of wake-ups, not a busy loop.
    assert!(woke.0 < 100 && woke.1 < 100, "woke {woke:?} times in 10 idle minutes");

    stream.write_all(b"still up").await.unwrap();
    let mut buf = [0; 8];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"still up");
}

#[tokio::test(start_paused = true)]
async fn a_dead_peer_is_reset_after_the_idle_timeout() {
    let pair = pair();
    serve_echo(pair.server.listen_tcp(HTTP).unwrap());
    let mut stream = pair.client.connect_tcp(HTTP).await.unwrap();
    stream.write_all(b"hi").await.unwrap();
    let mut buf = [0; 2];
    stream.read_exact(&mut buf).await.unwrap();
    eventually("the server to see it", || pair.server.connection_count() == 1).await;

    pair.cut.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert_eq!(pair.server.connection_count(), 1, "not before the idle timeout");
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert_eq!(pair.server.connection_count(), 0);
    assert_eq!(stream.read(&mut buf).await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(pair.client.connection_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_writer_waits_for_a_slow_reader() {
    const BUFFER: usize = 64 * 1024;
    let small = |address| NetStackConfig {
        tcp_receive_buffer_bytes: BUFFER,
        tcp_send_buffer_bytes: BUFFER,
        ..config(address)
    };
    let pair = pair_with(small(SERVER), small(CLIENT));
    let mut listener = pair.server.listen_tcp(HTTP).unwrap();
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = tokio::spawn({
        let written = written.clone();
        async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let chunk = [7; 4096];
            for _ in 0..256 {
                stream.write_all(&chunk).await.unwrap();
                written.fetch_add(chunk.len(), Ordering::Relaxed);
            }
            stream.shutdown().await.unwrap();
        }
    });
    let mut stream = pair.client.connect_tcp(HTTP).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The server's send buffer and the client's receive buffer are full; the writer waits.
    let stalled = written.load(Ordering::Relaxed);
    assert!(stalled <= 2 * BUFFER + 4096, "wrote {stalled} bytes with nobody reading");
    assert!(stalled >= BUFFER, "wrote only {stalled} bytes");
    assert!(!writer.is_finished());

    let mut total = 0;
    let mut buf = vec![0; 10_000];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|b| *b == 7));
        total += n;
    }
    assert_eq!(total, 256 * 4096);
    writer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_across_threads() {
    const LEN: usize = 1 << 20;
    let pair = pair();
    let mut listener = pair.server.listen_tcp(HTTP).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut reader, mut writer) = tokio::io::split(stream);
                let mut buf = vec![0; 32 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if writer.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = writer.shutdown().await;
            });
        }
    });
    let mut tasks = JoinSet::new();
    for seed in 0..16u8 {
        let client = pair.client.clone();
        tasks.spawn(async move {
            let stream = client.connect_tcp(HTTP).await?;
            let (mut reader, mut writer) = tokio::io::split(stream);
            let send = async {
                write_pattern(&mut writer, seed, LEN).await?;
                writer.shutdown().await
            };
            let (sent, echoed) = tokio::join!(send, read_pattern(&mut reader, seed));
            sent?;
            echoed
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap(), LEN);
    }
}
