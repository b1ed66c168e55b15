//! Where the overlay's decrypted traffic is served: the userspace network stack (default: no
//! privileges) or a kernel TUN interface (`[overlay] mode = "tun"`, needs CAP_NET_ADMIN), whose
//! sockets are bound to that interface so that nothing arriving on another one — a neighbour
//! routing the overlay address through some other link — can reach them.

use std::{
    collections::HashMap,
    io,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    sync::Mutex,
};

use overlay::NetStack;
use tokio_util::sync::CancellationToken;

/// The two insides.
pub(crate) enum Inside {
    Stack(NetStack),
    Kernel(Kernel),
}

/// A kernel interface: its name, and a cut switch per peer address for the connections it
/// accepted (kernel sockets cannot be reset from outside; the tasks serving them can be ended).
pub(crate) struct Kernel {
    pub(crate) interface: String,
    cuts: Mutex<HashMap<Ipv4Addr, CancellationToken>>,
    /// The parent of every peer's switch: cuts them all (at the end of a shutdown's grace).
    all: CancellationToken,
}

impl Kernel {
    pub(crate) fn new(interface: String) -> Self {
        Self { interface, cuts: Mutex::default(), all: CancellationToken::new() }
    }

    /// The switch that cuts `peer`'s connections.
    pub(crate) fn cut_for(&self, peer: Ipv4Addr) -> CancellationToken {
        let mut cuts = self.cuts.lock().unwrap_or_else(|e| e.into_inner());
        cuts.entry(peer).or_insert_with(|| self.all.child_token()).clone()
    }

    /// Cuts every connection accepted on the interface.
    pub(crate) fn cut_all(&self) {
        self.all.cancel();
    }
}

/// The AI endpoint's listener.
pub(crate) enum AiListener {
    Stack(overlay::TcpListener),
    Kernel(tokio::net::TcpListener),
}

/// One accepted connection and its peer's overlay address.
pub(crate) enum Accepted {
    Stack(overlay::TcpStream, Ipv4Addr),
    Kernel(tokio::net::TcpStream, Ipv4Addr),
}

impl AiListener {
    pub(crate) async fn accept(&mut self) -> io::Result<Accepted> {
        match self {
            AiListener::Stack(listener) => {
                let (stream, remote) = listener.accept().await?;
                Ok(Accepted::Stack(stream, *remote.ip()))
            }
            AiListener::Kernel(listener) => {
                let (stream, remote) = listener.accept().await?;
                let SocketAddr::V4(remote) = remote else {
                    return Err(io::Error::other("an IPv6 connection on the IPv4 overlay"));
                };
                let _ = stream.set_nodelay(true);
                // Dropped when cut: a reset, not a graceful close the peer could wait on.
                let _ = stream.set_zero_linger();
                Ok(Accepted::Kernel(stream, *remote.ip()))
            }
        }
    }
}

/// The DNS responder's socket.
pub(crate) enum DnsSocket {
    Stack(overlay::UdpSocket),
    Kernel(tokio::net::UdpSocket),
}

impl DnsSocket {
    pub(crate) async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            DnsSocket::Stack(socket) => {
                socket.recv_from(buf).await.map(|(n, from)| (n, SocketAddr::V4(from)))
            }
            DnsSocket::Kernel(socket) => socket.recv_from(buf).await,
        }
    }

    pub(crate) async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        match (self, to) {
            (DnsSocket::Stack(socket), SocketAddr::V4(to)) => socket.send_to(buf, to).await,
            (DnsSocket::Stack(_), SocketAddr::V6(_)) => Ok(0),
            (DnsSocket::Kernel(socket), to) => socket.send_to(buf, to).await,
        }
    }
}

impl Inside {
    pub(crate) fn listen_ai(&self, local: SocketAddrV4) -> io::Result<AiListener> {
        match self {
            Inside::Stack(stack) => stack.listen_tcp(local).map(AiListener::Stack),
            Inside::Kernel(kernel) => {
                let socket = bound_socket(socket2::Type::STREAM, &kernel.interface, local)?;
                socket.listen(1024)?;
                tokio::net::TcpListener::from_std(socket.into()).map(AiListener::Kernel)
            }
        }
    }

    pub(crate) fn bind_dns(&self, local: SocketAddrV4) -> io::Result<DnsSocket> {
        match self {
            Inside::Stack(stack) => stack.bind_udp(local).map(DnsSocket::Stack),
            Inside::Kernel(kernel) => {
                let socket = bound_socket(socket2::Type::DGRAM, &kernel.interface, local)?;
                tokio::net::UdpSocket::from_std(socket.into()).map(DnsSocket::Kernel)
            }
        }
    }

    /// Resets (userspace) or cuts (kernel) every connection from `peer`; how many, where known.
    pub(crate) fn abort_peer(&self, peer: Ipv4Addr) -> usize {
        match self {
            Inside::Stack(stack) => stack.abort_peer(peer),
            Inside::Kernel(kernel) => {
                let cut = kernel.cuts.lock().unwrap_or_else(|e| e.into_inner()).remove(&peer);
                cut.map(|cut| {
                    cut.cancel();
                    1
                })
                .unwrap_or(0)
            }
        }
    }

    pub(crate) fn shutdown(&self) {
        if let Inside::Stack(stack) = self {
            stack.shutdown();
        }
    }
}

/// A non-blocking socket bound to `local` on `interface` only (SO_BINDTODEVICE).
fn bound_socket(
    kind: socket2::Type,
    interface: &str,
    local: SocketAddrV4,
) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, kind, None)?;
    socket.set_reuse_address(true)?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(local).into())?;
    Ok(socket)
}
