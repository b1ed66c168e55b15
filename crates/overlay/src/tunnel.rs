//! The WireGuard tunnel: a gotatun device whose "TUN" side is a pair of packet channels to the
//! userspace network stack instead of a kernel interface, so that neither the server nor the
//! client needs root.
//!
//! gotatun does the protocol: handshakes, timers, keepalives, roaming (a peer's endpoint follows
//! its latest authenticated packet), cookies under load, and — what identity rests on — it drops
//! a decrypted packet whose inner source address is not within the sending peer's allowed IPs,
//! so a peer can only ever speak as its own overlay address.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use gotatun::{
    device::{Device, DeviceBuilder, Peer},
    packet::{Ip, Packet, PacketBufPool},
    tun::{tun_async_device::TunDevice, IpRecv, IpSend, MtuWatcher},
    udp::{socket::UdpSocketFactory, UdpTransportFactory, UdpTransportFactoryParams},
};
use ipnetwork::{IpNetwork, Ipv4Network};
use tokio::sync::mpsc;

use crate::keys::{PrivateKey, PublicKey};

/// The MTU of overlay packets: WireGuard's usual 1420 leaves room for its 80 bytes of overhead
/// over IPv6 within a 1500-byte path.
pub const OVERLAY_MTU: u16 = 1420;

/// How often an idle peer sends a keepalive, so that NAT mappings stay open and a restarted
/// server hears from its peers soon.
pub const PERSISTENT_KEEPALIVE_SECS: u16 = 25;

/// SO_RCVBUF / SO_SNDBUF of the WireGuard socket (the kernel caps it at `net.core.rmem_max`).
const UDP_BUFFER_BYTES: usize = 4 << 20;

/// The errno gotatun treats as "this packet source is gone for good" (it retries any other
/// error at once, in a loop).
const EBADF: i32 = 9;

/// Why the tunnel could not start or change.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("cannot bind the WireGuard UDP port {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: gotatun::device::Error,
    },
    #[error("WireGuard device error: {0}")]
    Device(#[from] gotatun::device::Error),
    #[error("{0} is not a usable overlay network")]
    Network(String),
    #[error(
        "cannot create the WireGuard interface {name} (it needs root or CAP_NET_ADMIN): {reason}"
    )]
    Kernel { name: String, reason: String },
}

/// One peer as the tunnel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelPeer {
    pub public_key: PublicKey,
    /// The overlay addresses the peer may speak as (inbound) and that are routed to it
    /// (outbound): one /32 for a device, the overlay network for the server seen by a client.
    pub allowed: Vec<Ipv4Network>,
    /// Where to send the first handshake; `None` for peers that call us.
    pub endpoint: Option<SocketAddr>,
    pub persistent_keepalive: Option<u16>,
}

impl TunnelPeer {
    /// A device that calls the server from `address`.
    pub fn device(public_key: PublicKey, address: Ipv4Addr) -> Self {
        Self {
            public_key,
            allowed: vec![Ipv4Network::from(address)],
            endpoint: None,
            persistent_keepalive: None,
        }
    }

    fn to_gotatun(&self) -> Peer {
        let mut peer = Peer::new(self.public_key.inner());
        peer.allowed_ips = self.allowed.iter().map(|net| IpNetwork::V4(*net)).collect();
        peer.endpoint = self.endpoint;
        peer.keepalive = self.persistent_keepalive;
        peer
    }
}

/// A peer's traffic, as gotatun counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerTraffic {
    pub public_key: PublicKey,
    /// Where the peer's packets come from (it follows the peer as it roams).
    pub endpoint: Option<SocketAddr>,
    /// Time since the last completed handshake.
    pub since_handshake: Option<Duration>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// The packet channels between the tunnel and the network stack.
pub struct TunnelPipes {
    /// Decrypted packets from peers, to the stack.
    pub to_stack: mpsc::Sender<Bytes>,
    /// Packets from the stack, to encrypt and route to the peer that holds the destination.
    pub from_stack: mpsc::Receiver<Bytes>,
}

/// A kernel TUN interface for the tunnel's inside (needs CAP_NET_ADMIN): the kernel's own
/// TCP/IP stack then serves and routes the overlay.
#[derive(Debug, Clone)]
pub struct KernelInterface {
    pub name: String,
    /// This end's overlay address; with `prefix`, the whole overlay is routed to the interface.
    pub address: Ipv4Addr,
    pub prefix: u8,
}

/// Where the tunnel's decrypted packets go.
pub enum TunnelInside {
    /// The userspace network stack, over packet channels: no privileges needed.
    Stack(TunnelPipes),
    /// A kernel TUN interface, created here.
    Kernel(KernelInterface),
}

/// The gotatun device, over either inside.
enum AnyDevice {
    Stack(Device<(BindTo, ToStack, FromStack)>),
    Kernel(Device<(BindTo, TunDevice, TunDevice)>),
}

/// Runs `$body` with `$device` bound to whichever device runs.
macro_rules! on_device {
    ($tunnel:expr, $device:ident => $body:expr) => {
        match &$tunnel.device {
            AnyDevice::Stack($device) => $body,
            AnyDevice::Kernel($device) => $body,
        }
    };
}

/// A running WireGuard device.
pub struct Tunnel {
    device: AnyDevice,
}

impl Tunnel {
    /// Starts a device with `private_key`, listening on `listen` (port 0: any free port), with
    /// `peers`, over the userspace stack's packet channels. The UDP socket is bound before this
    /// returns, even with no peers.
    pub async fn start(
        private_key: &PrivateKey,
        listen: SocketAddr,
        pipes: TunnelPipes,
        peers: &[TunnelPeer],
    ) -> Result<Self, TunnelError> {
        Self::start_with(private_key, listen, TunnelInside::Stack(pipes), peers).await
    }

    /// [`start`](Self::start), with the inside chosen.
    pub async fn start_with(
        private_key: &PrivateKey,
        listen: SocketAddr,
        inside: TunnelInside,
        peers: &[TunnelPeer],
    ) -> Result<Self, TunnelError> {
        let udp = BindTo {
            // Room for bursts: the kernel's default (~200 KiB) drops datagrams under bulk
            // transfer, and every drop costs the inner TCP a retransmission.
            inner: UdpSocketFactory {
                recv_buffer_size: Some(UDP_BUFFER_BYTES),
                send_buffer_size: Some(UDP_BUFFER_BYTES),
            },
            addr: listen.ip(),
        };
        let builder = DeviceBuilder::new().with_udp(udp).with_listen_port(listen.port());
        let device = match inside {
            TunnelInside::Stack(pipes) => AnyDevice::Stack(
                build(
                    builder.with_ip_pair(
                        ToStack(pipes.to_stack),
                        FromStack { rx: pipes.from_stack, mtu: MtuWatcher::new(OVERLAY_MTU) },
                    ),
                    private_key,
                    listen,
                    peers,
                )
                .await?,
            ),
            TunnelInside::Kernel(interface) => {
                let tun = kernel_interface(&interface)?;
                AnyDevice::Kernel(
                    build(builder.with_ip_pair(tun.clone(), tun), private_key, listen, peers)
                        .await?,
                )
            }
        };
        Ok(Self { device })
    }

    /// The bound UDP port.
    pub async fn listen_port(&self) -> u16 {
        on_device!(self, device => device.read(async |device| device.listen_port()).await)
    }

    /// Adds a peer, or replaces the allowed addresses of one with the same key.
    pub async fn upsert_peer(&self, peer: &TunnelPeer) -> Result<(), TunnelError> {
        Ok(on_device!(self, device => device.add_or_update_peer(peer.to_gotatun()).await)?)
    }

    /// Removes a peer: its sessions end at once and its packets are dropped from then on.
    pub async fn remove_peer(&self, public_key: &PublicKey) -> Result<bool, TunnelError> {
        Ok(on_device!(self, device => device.remove_peer(&public_key.inner()).await)?)
    }

    /// Every peer's handshake age and byte counters.
    pub async fn traffic(&self) -> Vec<PeerTraffic> {
        on_device!(self, device => device.peers().await)
            .into_iter()
            .map(|p| PeerTraffic {
                public_key: PublicKey::from_inner(p.peer.public_key),
                endpoint: p.peer.endpoint,
                since_handshake: p.stats.last_handshake,
                rx_bytes: p.stats.rx_bytes as u64,
                tx_bytes: p.stats.tx_bytes as u64,
            })
            .collect()
    }

    /// Starts a handshake with a peer whose endpoint is known and waits for it, at most
    /// `timeout`. A server that restarted lost its sessions; a peer that waits for its own next
    /// handshake takes up to its handshake timeout to notice, so the server starts one.
    pub async fn handshake(&self, public_key: &PublicKey, timeout: Duration) -> bool {
        let key = public_key.inner();
        on_device!(self, device => matches!(
            tokio::time::timeout(timeout, device.force_handshake(&key)).await,
            Ok(Ok(()))
        ))
    }

    /// The public keys of every configured peer.
    pub async fn peer_keys(&self) -> Vec<PublicKey> {
        self.traffic().await.into_iter().map(|t| t.public_key).collect()
    }

    /// Stops moving packets (the UDP socket and the tasks between it and the inside), keeping
    /// the configuration: what a shutdown does first, so that closing the inside afterwards is
    /// not mistaken for a failure.
    pub async fn suspend(&self) {
        on_device!(self, device => device.suspend().await);
    }

    /// Stops the device and its tasks.
    pub async fn stop(self) {
        match self.device {
            AnyDevice::Stack(device) => device.stop().await,
            AnyDevice::Kernel(device) => device.stop().await,
        }
    }
}

/// Builds a device over `builder`'s inside, bound before it returns.
async fn build<I: IpSend, R: IpRecv>(
    builder: DeviceBuilder<BindTo, I, R>,
    private_key: &PrivateKey,
    listen: SocketAddr,
    peers: &[TunnelPeer],
) -> Result<Device<(BindTo, I, R)>, TunnelError> {
    let bind_error = |source| TunnelError::Bind { addr: listen, source };
    if peers.is_empty() {
        // gotatun binds its UDP socket only when a configuration change needs one (peers at
        // build time, a new key or port). Setting the key after the build is that change, so a
        // server that starts with no peers still listens.
        let device = builder.build().await.map_err(bind_error)?;
        device.set_private_key(private_key.secret().clone()).await.map_err(bind_error)?;
        Ok(device)
    } else {
        builder
            .with_private_key(private_key.secret().clone())
            .with_peers(peers.iter().map(TunnelPeer::to_gotatun))
            .build()
            .await
            .map_err(bind_error)
    }
}

/// Creates the kernel interface: the address with the overlay's prefix (so the kernel routes
/// the whole overlay to it), MTU 1420, up.
fn kernel_interface(interface: &KernelInterface) -> Result<TunDevice, TunnelError> {
    let mask =
        Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(interface.prefix.min(32))).unwrap_or(0));
    let mut config = tun::Configuration::default();
    config.tun_name(&interface.name).address(interface.address).netmask(mask).mtu(OVERLAY_MTU).up();
    let kernel_error =
        |err: String| TunnelError::Kernel { name: interface.name.clone(), reason: err };
    let device = tun::create_as_async(&config).map_err(|e| kernel_error(e.to_string()))?;
    TunDevice::from_tun_device(device).map_err(|e| kernel_error(e.to_string()))
}

/// gotatun binds `[::]:port` unless told otherwise; this binds the configured address.
struct BindTo {
    inner: UdpSocketFactory,
    addr: IpAddr,
}

impl UdpTransportFactory for BindTo {
    type Send = <UdpSocketFactory as UdpTransportFactory>::Send;
    type Recv = <UdpSocketFactory as UdpTransportFactory>::Recv;

    async fn bind(
        &mut self,
        params: &UdpTransportFactoryParams,
    ) -> io::Result<(Self::Send, Self::Recv)> {
        let mut params = params.clone();
        // Unspecified (0.0.0.0 or ::) keeps gotatun's dual-stack bind.
        params.addr = (!self.addr.is_unspecified()).then_some(self.addr);
        self.inner.bind(&params).await
    }
}

/// gotatun → stack: decrypted packets whose source address gotatun has already checked.
struct ToStack(mpsc::Sender<Bytes>);

impl IpSend for ToStack {
    async fn send(&mut self, packet: Packet<Ip>) -> io::Result<()> {
        let packet = packet.into_bytes();
        // Waits while the stack is behind rather than dropping: the stack is in-process and
        // drains quickly, and a drop here costs a TCP retransmission timeout.
        self.0
            .send(Bytes::copy_from_slice(packet.as_ref()))
            .await
            .map_err(|_| io::Error::from_raw_os_error(EBADF))
    }
}

/// stack → gotatun: packets to encrypt. `recv` must be cancel-safe: gotatun drops the future on
/// every reconfiguration (`mpsc::Receiver::recv` is).
struct FromStack {
    rx: mpsc::Receiver<Bytes>,
    mtu: MtuWatcher,
}

/// Packets handed to gotatun per `recv`, so that it can batch UDP sends.
const RECV_BATCH: usize = 64;

impl IpRecv for FromStack {
    async fn recv<'a>(
        &'a mut self,
        _pool: &mut PacketBufPool,
    ) -> io::Result<impl Iterator<Item = Packet<Ip>> + Send + 'a> {
        let first = self.rx.recv().await.ok_or_else(|| io::Error::from_raw_os_error(EBADF))?;
        let mut batch = Vec::with_capacity(RECV_BATCH);
        batch.push(first);
        while batch.len() < RECV_BATCH {
            match self.rx.try_recv() {
                Ok(packet) => batch.push(packet),
                Err(_) => break,
            }
        }
        Ok(batch.into_iter().filter_map(|bytes| {
            let bytes = bytes.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]));
            Packet::from_bytes(bytes).try_into_ip().ok()
        }))
    }

    fn mtu(&self) -> MtuWatcher {
        self.mtu.clone()
    }
}

#[cfg(test)]
mod tests;
