//! The WireGuard overlay: the server's single UDP endpoint, peers bound to identities, and the
//! userspace network stack the AI endpoint listens on (see `docs/research/overlay.md` for the
//! design work on gotatun and smoltcp).
//!
//! So far: address management ([`Ipam`]) — one /32 per peer from the overlay network
//! (100.64.0.0/10 by default), never two peers on one address, the server on the first host
//! address.

mod ipam;

pub use ipam::{Ipam, IpamError, Ipv4Net, DEFAULT_NETWORK};
