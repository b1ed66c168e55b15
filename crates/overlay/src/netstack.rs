//! A userspace TCP/IP stack (smoltcp) over packet channels, with a tokio API: the server's AI
//! endpoint listens on it and `agentnet up` connects through it, both behind the WireGuard
//! tunnel, which hands it decrypted IPv4 packets and takes the ones it emits.
//!
//! One task drives smoltcp; the `Interface` and the sockets sit behind a mutex that handles
//! also take, briefly, to read and write socket buffers. Each socket has a smoltcp `SocketSet`
//! of its own and the task routes packets to it by 4-tuple, so the cost of a packet does not
//! grow with the number of connections (smoltcp walks a whole set per packet). The task wakes
//! on an inbound packet, a kick from a handle, or the next socket timer, never otherwise: an
//! idle stack costs nothing.
//!
//! Behaviour worth knowing:
//! - **Accept.** smoltcp has no backlog: a listening socket takes exactly one connection. The
//!   stack gives every SYN to a listened `address:port` a listening socket of its own, unless
//!   its source already has [`NetStackConfig::max_connections_per_peer`] connections or the
//!   stack has [`NetStackConfig::max_connections`]; such SYNs, and SYNs to ports nobody
//!   listens on, are answered with RST. Established connections wait in a bounded accept queue
//!   (1024 per listener; beyond it they are reset). Only the stack's own address is answered.
//! - **Sockets.** Cubic congestion control, Nagle off, `tcp_receive_buffer_bytes` and
//!   `tcp_send_buffer_bytes` per connection (their sum is its memory at most). An idle connection sends a keep-alive every 60 s and is
//!   reset when the peer has been silent for 5 minutes; a handshake must complete within 30 s
//!   (inbound) or 10 s (`connect_tcp`).
//! - **Closing.** `poll_shutdown` queues a FIN and returns. Dropping a stream closes it
//!   gracefully (FIN after the buffered data; data arriving afterwards is discarded) and the
//!   socket is removed once closed, or reset if that takes more than 60 s. There is no
//!   TIME-WAIT: a socket that reaches it is removed at once. TIME-WAIT protects a later
//!   connection on the same port pair from stray segments of an earlier one; here clients'
//!   ports are random and each peer's packets arrive authenticated through its own tunnel, so
//!   holding two full buffers for 10 s (smoltcp's TIME-WAIT) per closed connection is not
//!   worth it. If our last ACK is lost, the peer's retransmitted FIN gets an RST, which ends
//!   its side too.
//! - **Backpressure.** Writes pend while the send buffer is full; reads free window. The
//!   stack emits only as many packets as the outbound channel has room for and keeps the rest
//!   in the socket buffers: it never drops a packet it produced. That matters: smoltcp repairs
//!   a single lost segment by fast retransmit, but two or more lost in one window wait for a
//!   retransmission timeout of at least 1 s (no SACK, no NewReno), which is the bimodal bulk
//!   throughput seen in `docs/research/overlay.md` (see `examples/netstack_bulk.rs`, mode
//!   `lossy2`). If the outbound channel's receiver is gone, packets are dropped.
//! - **Input.** Malformed, truncated, fragmented, non-IPv4 packets and packets for other
//!   addresses are dropped silently.

mod device;
mod driver;
mod state;
mod tcp;
mod udp;

#[cfg(test)]
mod tests;

use std::{
    fmt, io,
    net::{Ipv4Addr, SocketAddrV4},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use bytes::Bytes;
use smoltcp::{
    iface::{Config, Interface},
    wire::{HardwareAddress, IpAddress, IpCidr},
};
use tokio::sync::{mpsc, Notify};

use self::{device::ChannelDevice, state::State};
pub use self::{
    tcp::{TcpListener, TcpStream},
    udp::UdpSocket,
};

/// How long `connect_tcp` waits for the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a [`NetStack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetStackConfig {
    /// The stack's own overlay address: the only destination it answers.
    pub address: Ipv4Addr,
    /// The overlay network's prefix length (10 for 100.64.0.0/10): every address in it is
    /// on-link, and connections go only there.
    pub prefix: u8,
    /// The largest IP packet sent or received (the tunnel's MTU).
    pub mtu: usize,
    /// Receive buffer of each TCP connection: it bounds the window the stack advertises, so
    /// what a peer may send before waiting for an acknowledgement.
    pub tcp_receive_buffer_bytes: usize,
    /// Send buffer of each TCP connection: it bounds how much the stack has in flight. Smaller
    /// than the receive buffer by default: a stock WireGuard client with the kernel's default
    /// 208 KiB UDP buffer drops bursts larger than that, and smoltcp recovers from a window with
    /// several losses only by a retransmission timeout of at least 1 s (measured: 96 KiB took
    /// downloads to wireguard-go from 15 to 60 MB/s; BENCHMARKS.md).
    pub tcp_send_buffer_bytes: usize,
    /// Connections one remote address may hold at once (a SYN-flood cap); SYNs beyond it are
    /// refused with RST.
    pub max_connections_per_peer: usize,
    /// Connections across all peers, inbound and outbound.
    pub max_connections: usize,
    /// Packets queued each way in [`PacketPipes`].
    pub channel_capacity: usize,
}

impl Default for NetStackConfig {
    fn default() -> Self {
        Self {
            address: Ipv4Addr::new(100, 64, 0, 1),
            prefix: 10,
            mtu: 1420,
            tcp_receive_buffer_bytes: 256 * 1024,
            tcp_send_buffer_bytes: 96 * 1024,
            max_connections_per_peer: 256,
            max_connections: 16384,
            channel_capacity: 1024,
        }
    }
}

/// The stack's side of the tunnel.
#[derive(Debug)]
pub struct PacketPipes {
    /// Tunnel → stack: whole IPv4 packets.
    pub inbound: mpsc::Sender<Bytes>,
    /// Stack → tunnel: whole IPv4 packets.
    pub outbound: mpsc::Receiver<Bytes>,
}

/// The configuration as the stack uses it, clamped to what smoltcp accepts.
#[derive(Debug, Clone, Copy)]
struct Limits {
    address: Ipv4Addr,
    prefix: u8,
    mtu: usize,
    tcp_receive_buffer_bytes: usize,
    tcp_send_buffer_bytes: usize,
    max_connections_per_peer: usize,
    max_connections: usize,
}

impl Limits {
    fn new(config: &NetStackConfig) -> Self {
        Self {
            address: config.address,
            prefix: config.prefix.min(32),
            // IPv4's minimum MTU up to the largest IPv4 packet.
            mtu: config.mtu.clamp(576, 65535),
            // smoltcp panics above 1 GiB.
            tcp_receive_buffer_bytes: config.tcp_receive_buffer_bytes.clamp(1024, 1 << 30),
            tcp_send_buffer_bytes: config.tcp_send_buffer_bytes.clamp(1024, 1 << 30),
            max_connections_per_peer: config.max_connections_per_peer,
            max_connections: config.max_connections,
        }
    }

    /// Whether `ip` is in the overlay network.
    fn on_link(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.address) & mask
    }

    /// The largest UDP payload that fits in one packet.
    fn max_datagram(&self) -> usize {
        self.mtu - 20 - 8
    }
}

/// What the stack task and the handles share.
struct Shared {
    state: Mutex<State>,
    /// Wakes the stack task: a handle read, wrote, closed or was dropped.
    kick: Notify,
    stop: AtomicBool,
    /// Iterations of the stack loop (to check that an idle stack sleeps).
    polls: AtomicU64,
    limits: Limits,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a handle (none is expected), so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn kick(&self) {
        self.kick.notify_one();
    }

    fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.kick();
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// A handle to a running stack; clones share it. Dropping the last clone stops the stack.
#[derive(Clone)]
pub struct NetStack {
    owner: Arc<StackOwner>,
}

/// Stops the stack when the last [`NetStack`] clone goes (streams and listeners only hold
/// [`Shared`], so they do not keep it running).
struct StackOwner {
    shared: Arc<Shared>,
}

impl Drop for StackOwner {
    fn drop(&mut self) {
        self.shared.request_stop();
    }
}

impl fmt::Debug for NetStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetStack")
            .field("address", &self.owner.shared.limits.address)
            .finish_non_exhaustive()
    }
}

impl NetStack {
    /// Spawns the stack task on the current tokio runtime (panics outside one). Dropping every
    /// `NetStack` clone (or calling [`NetStack::shutdown`]) stops it.
    pub fn new(config: NetStackConfig) -> (NetStack, PacketPipes) {
        let limits = Limits::new(&config);
        let capacity = config.channel_capacity.max(1);
        let (inbound_tx, inbound_rx) = mpsc::channel(capacity);
        let (outbound_tx, outbound_rx) = mpsc::channel(capacity);

        let clock = driver::Clock::new();
        let mut device = ChannelDevice::new(limits.mtu);
        let mut iface_config = Config::new(HardwareAddress::Ip);
        iface_config.random_seed = driver::random_seed();
        let mut iface = Interface::new(iface_config, &mut device, clock.now());
        let address = IpAddress::Ipv4(limits.address);
        if address.is_unicast() {
            iface.update_ip_addrs(|addrs| {
                if addrs.push(IpCidr::new(address, limits.prefix)).is_err() {
                    tracing::error!("smoltcp refused the overlay address");
                }
            });
        } else {
            tracing::error!(address = %limits.address, "overlay address is not unicast; the stack will answer nothing");
        }

        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(iface, limits, clock, driver::random_seed())),
            kick: Notify::new(),
            stop: AtomicBool::new(false),
            polls: AtomicU64::new(0),
            limits,
        });
        tokio::spawn(driver::run(shared.clone(), clock, device, inbound_rx, outbound_tx));
        (
            NetStack { owner: Arc::new(StackOwner { shared }) },
            PacketPipes { inbound: inbound_tx, outbound: outbound_rx },
        )
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.owner.shared
    }

    /// Accepts TCP connections to `local` (the stack's address, or unspecified for it).
    /// Fails if something already listens there.
    pub fn listen_tcp(&self, local: SocketAddrV4) -> io::Result<TcpListener> {
        let local = self.own_endpoint(local)?;
        self.shared().lock().listen(local)?;
        Ok(TcpListener::new(self.shared().clone(), local))
    }

    /// Connects to `remote`; resolves once the connection is established. Fails with
    /// `ConnectionRefused` on RST and `TimedOut` after 10 s.
    pub async fn connect_tcp(&self, remote: SocketAddrV4) -> io::Result<TcpStream> {
        let (id, local) = self.shared().lock().connect(remote)?;
        self.shared().kick();
        let stream = TcpStream::new(self.shared().clone(), id, local, remote);
        match tokio::time::timeout(CONNECT_TIMEOUT, stream.established()).await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to {remote} timed out"),
            )),
        }
    }

    /// A UDP socket on `local` (the stack's address, or unspecified for it).
    pub fn bind_udp(&self, local: SocketAddrV4) -> io::Result<UdpSocket> {
        let local = self.own_endpoint(local)?;
        let id = self.shared().lock().bind_udp(local)?;
        Ok(UdpSocket::new(self.shared().clone(), id, local))
    }

    /// Resets (RST) every TCP connection whose remote address is `ip`, pending and
    /// established; their handles then fail reads and writes with `ConnectionReset`. Returns
    /// how many.
    pub fn abort_peer(&self, ip: Ipv4Addr) -> usize {
        let count = self.shared().lock().abort_peer(ip);
        if count > 0 {
            tracing::debug!(peer = %ip, count, "reset the peer's connections");
            self.shared().kick();
        }
        count
    }

    /// TCP connections that hold a socket (any state but fully closed), inbound and outbound.
    pub fn connection_count(&self) -> usize {
        self.shared().lock().connection_count()
    }

    /// Stops the stack: every connection is reset and every handle fails from then on.
    pub fn shutdown(&self) {
        self.shared().request_stop();
    }

    fn own_endpoint(&self, local: SocketAddrV4) -> io::Result<SocketAddrV4> {
        let address = self.shared().limits.address;
        if local.port() == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "port 0 is not supported"));
        }
        if local.ip().is_unspecified() || *local.ip() == address {
            Ok(SocketAddrV4::new(address, local.port()))
        } else {
            Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{} is not this stack's address", local.ip()),
            ))
        }
    }
}
