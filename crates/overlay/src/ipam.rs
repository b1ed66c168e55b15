//! IP address management for the overlay: each peer gets one address (a /32) from the overlay
//! network; the first host address is the server's; the network and broadcast addresses are
//! never handed out. Assignment takes the lowest free address, so addresses stay dense and
//! predictable, and a released address is the next one reused.
//!
//! Pure bookkeeping: the store persists who holds which address, and the server rebuilds an
//! `Ipam` from it at start with [`Ipam::reserve`].

#[cfg(test)]
mod tests;

use std::{collections::BTreeSet, fmt, net::Ipv4Addr, str::FromStr};

/// The default overlay network: the shared address space of RFC 6598, which does not collide
/// with private networks (RFC 1918) people already route.
pub const DEFAULT_NETWORK: &str = "100.64.0.0/10";

/// An IPv4 network: its address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    network: u32,
    prefix: u8,
}

impl Ipv4Net {
    /// The smallest network that leaves room for the server and one peer.
    pub const MAX_PREFIX: u8 = 30;
    /// The largest network accepted (a /8 is 16 million addresses).
    pub const MIN_PREFIX: u8 = 8;

    pub fn new(address: Ipv4Addr, prefix: u8) -> Result<Self, IpamError> {
        if !(Self::MIN_PREFIX..=Self::MAX_PREFIX).contains(&prefix) {
            return Err(IpamError::Prefix(prefix));
        }
        let network = u32::from(address);
        if network & !Self::mask(prefix) != 0 {
            return Err(IpamError::HostBits(format!("{address}/{prefix}")));
        }
        Ok(Self { network, prefix })
    }

    fn mask(prefix: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
    }

    pub fn address(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & Self::mask(self.prefix) == self.network
    }

    fn broadcast(&self) -> u32 {
        self.network | !Self::mask(self.prefix)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address(), self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = IpamError;

    fn from_str(text: &str) -> Result<Self, IpamError> {
        let syntax = || IpamError::Syntax(text.to_owned());
        let (address, prefix) = text.trim().split_once('/').ok_or_else(syntax)?;
        let address: Ipv4Addr = address.parse().map_err(|_| syntax())?;
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        Self::new(address, prefix)
    }
}

/// Why an address could not be assigned or a network accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("'{0}' is not an IPv4 network such as 100.64.0.0/10")]
    Syntax(String),
    #[error("an overlay network must be between a /8 and a /30, not a /{0}")]
    Prefix(u8),
    #[error("'{0}' has host bits set; give the network address")]
    HostBits(String),
    #[error("every address of the overlay network {0} is in use")]
    Exhausted(Ipv4Net),
    #[error("{address} is not a peer address of the overlay network {network}")]
    OutOfRange { address: Ipv4Addr, network: Ipv4Net },
    #[error("{0} is already assigned to another peer")]
    Taken(Ipv4Addr),
}

/// The overlay's address book: which host addresses are held.
#[derive(Debug, Clone)]
pub struct Ipam {
    net: Ipv4Net,
    taken: BTreeSet<u32>,
}

impl Ipam {
    pub fn new(net: Ipv4Net) -> Self {
        Self { net, taken: BTreeSet::new() }
    }

    pub fn network(&self) -> Ipv4Net {
        self.net
    }

    /// The server's own overlay address: the network's first host address.
    pub fn server_address(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.net.network + 1)
    }

    /// How many peer addresses are held.
    pub fn len(&self) -> usize {
        self.taken.len()
    }

    pub fn is_empty(&self) -> bool {
        self.taken.is_empty()
    }

    /// The first and last address a peer may hold.
    fn peer_range(&self) -> (u32, u32) {
        (self.net.network + 2, self.net.broadcast() - 1)
    }

    /// Assigns the lowest free peer address.
    pub fn assign(&mut self) -> Result<Ipv4Addr, IpamError> {
        let (first, last) = self.peer_range();
        // The taken set is ordered: the first gap in it from `first` on is the answer.
        let mut candidate = first;
        for &held in self.taken.range(first..=last) {
            if held != candidate {
                break;
            }
            candidate += 1;
        }
        if candidate > last {
            return Err(IpamError::Exhausted(self.net));
        }
        self.taken.insert(candidate);
        Ok(Ipv4Addr::from(candidate))
    }

    /// Marks `address` as held (a peer loaded from the store).
    pub fn reserve(&mut self, address: Ipv4Addr) -> Result<(), IpamError> {
        let (first, last) = self.peer_range();
        let value = u32::from(address);
        if !(first..=last).contains(&value) {
            return Err(IpamError::OutOfRange { address, network: self.net });
        }
        if !self.taken.insert(value) {
            return Err(IpamError::Taken(address));
        }
        Ok(())
    }

    /// Frees `address`; returns whether it was held.
    pub fn release(&mut self, address: Ipv4Addr) -> bool {
        self.taken.remove(&u32::from(address))
    }

    pub fn is_taken(&self, address: Ipv4Addr) -> bool {
        self.taken.contains(&u32::from(address))
    }
}
