//! The WireGuard overlay: the server's single UDP endpoint, peers bound to identities, and the
//! userspace network stack the AI endpoint listens on (see `docs/research/overlay.md` for the
//! design work on gotatun and smoltcp).
//!
//! - [`Ipam`]: one /32 per peer from the overlay network (100.64.0.0/10 by default), never two
//!   peers on one address, the server on the first host address.
//! - [`PrivateKey`] / [`PublicKey`]: WireGuard keys in their base64 text form.
//! - [`DnsZone`]: the overlay's authoritative DNS answers (`ai.<domain>`).
//! - [`Tunnel`]: a gotatun WireGuard device whose packets go to and from the userspace stack.
//! - [`ClientTunnel`]: a device's side, forwarding a local port to the AI endpoint.

mod client;
mod dns;
mod ipam;
mod keys;
mod netstack;
mod tunnel;

pub use client::{ClientSettings, ClientStatus, ClientTunnel};
pub use dns::{query as dns_query, DnsZone, DNS_PORT};
pub use ipam::{Ipam, IpamError, Ipv4Net, DEFAULT_NETWORK};
pub use keys::{KeyError, PrivateKey, PublicKey};
pub use netstack::{NetStack, NetStackConfig, PacketPipes, TcpListener, TcpStream, UdpSocket};
pub use tunnel::{
    KernelInterface, PeerTraffic, Tunnel, TunnelError, TunnelInside, TunnelPeer, TunnelPipes,
    OVERLAY_MTU, PERSISTENT_KEEPALIVE_SECS,
};
