//! Bulk throughput between two `overlay::NetStack`s back to back (no tunnel): a client
//! connects to the server, the server streams bytes, the client counts them. The pipes are
//! cross-wired by two forwarding tasks that wait for room, like a lossless link.
//!
//! ```text
//! cargo run --release -p overlay --example netstack_bulk -- \
//!     [MiB per run=256] [runs=5] [download|upload|lossyN] [channel capacity=1024] [idle conns=0]
//! ```
//!
//! `lossyN` makes the forwarding tasks drop a burst of N packets (default 1) every 20 000, as a
//! full queue on the path would: a burst that fast retransmit does not repair costs smoltcp a
//! retransmission timeout of at least 1 s (the bimodal throughput of the research sketch).
//! `idle conns` opens that many idle connections first (per-packet cost must not grow with
//! them).

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use bytes::Bytes;
use overlay::{NetStack, NetStackConfig};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};

const SERVER: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);

static DROPPED: AtomicU64 = AtomicU64::new(0);

async fn wire(mut from: mpsc::Receiver<Bytes>, to: mpsc::Sender<Bytes>, lossy_burst: u64) {
    let mut seen = 0u64;
    while let Some(packet) = from.recv().await {
        seen += 1;
        if lossy_burst > 0 && seen % 20_000 < lossy_burst {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if to.send(packet).await.is_err() {
            break;
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let mode = args.next().unwrap_or_default();
    let upload = mode == "upload";
    let lossy_burst: u64 = mode.strip_prefix("lossy").map(|n| n.parse().unwrap_or(1)).unwrap_or(0);
    let channel_capacity: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let idle: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let total = mib << 20;

    let (server, server_pipes) = NetStack::new(NetStackConfig {
        address: SERVER,
        channel_capacity,
        max_connections_per_peer: usize::MAX,
        ..Default::default()
    });
    let (client, client_pipes) =
        NetStack::new(NetStackConfig { address: CLIENT, channel_capacity, ..Default::default() });
    tokio::spawn(wire(client_pipes.outbound, server_pipes.inbound, lossy_burst));
    tokio::spawn(wire(server_pipes.outbound, client_pipes.inbound, lossy_burst));

    let addr = SocketAddrV4::new(SERVER, 80);
    let mut listener = server.listen_tcp(addr)?;
    // The first byte a client sends says what it wants: `d`ownload, `u`pload, or `i`dle.
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut command = [0; 1];
                if stream.read_exact(&mut command).await.is_err() {
                    return;
                }
                match command[0] {
                    b'd' => {
                        let buf = vec![0x5a; 64 * 1024];
                        let mut sent = 0;
                        while sent < total {
                            let n = buf.len().min(total - sent);
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                            sent += n;
                        }
                        let _ = stream.shutdown().await;
                    }
                    _ => {
                        let mut buf = vec![0; 64 * 1024];
                        while let Ok(n) = stream.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });

    // Idle connections alongside (smoltcp looks up sockets linearly).
    let mut parked = Vec::new();
    for _ in 0..idle {
        let mut stream = client.connect_tcp(addr).await?;
        stream.write_all(b"i").await?;
        parked.push(stream);
    }
    if idle > 0 {
        println!("{} connections open on the server", server.connection_count());
    }

    let direction = if upload { "client -> server" } else { "server -> client" };
    let mut rates = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let mut stream = client.connect_tcp(addr).await?;
        stream.write_all(if upload { b"u" } else { b"d" }).await?;
        let mut moved = 0usize;
        if upload {
            let buf = vec![0x5a; 64 * 1024];
            while moved < total {
                let n = buf.len().min(total - moved);
                stream.write_all(&buf[..n]).await?;
                moved += n;
            }
            stream.shutdown().await?;
            // Wait for the server's FIN: everything was delivered.
            let mut end = [0; 1];
            while stream.read(&mut end).await? != 0 {}
        } else {
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                moved += n;
            }
        }
        let elapsed = started.elapsed();
        let rate = moved as f64 / elapsed.as_secs_f64() / 1e6;
        rates.push(rate);
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        println!("run {run}: {} MiB {direction} in {elapsed:.2?} = {rate:.0} MB/s ({dropped} packets dropped)", moved >> 20);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "min {:.0} / median {:.0} / max {:.0} MB/s",
        rates[0],
        rates[rates.len() / 2],
        rates[rates.len() - 1]
    );
    Ok(())
}
