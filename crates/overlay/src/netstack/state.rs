//! What the stack task and every handle share behind one mutex: the smoltcp interface, one
//! smoltcp `SocketSet` per socket, and the bookkeeping smoltcp lacks — connections and who
//! owns them, listeners with their accept queues, per-peer counts, timers.
//!
//! **One socket set per socket.** smoltcp's `Interface::poll` walks the whole set for every
//! packet it receives and on every pass that emits one, so with one shared set each packet
//! costs O(connections): with 1000 idle keep-alive connections a single transfer fell from
//! ~1.5 GB/s to ~55 MB/s. Here the stack finds the connection of an inbound packet by its
//! 4-tuple ([`State::ingress`]) and has smoltcp process it against that connection's set
//! alone; only sockets with something to do (a packet, a kick from their handle, a due timer
//! from [`State::timers`]) are polled for egress.
//!
//! Lifecycle of a TCP connection ([`Owner`]):
//! - inbound: a SYN to a listened `address:port` gets a listening socket of its own
//!   ([`State::ingress`]), within the per-peer and total limits (otherwise smoltcp answers
//!   RST). In the handshake the stack owns it; established, it waits in the listener's accept
//!   queue; `accept` hands it to a [`super::TcpStream`];
//! - outbound: `connect_tcp` creates it owned by its stream;
//! - when the stream is dropped the connection is orphaned: it closes in the background (FIN
//!   after the buffered data) and is removed once closed, or reset after [`ORPHAN_LINGER`];
//! - a socket in TIME-WAIT is removed at once (see [`super`] for why that is safe here), and so
//!   is one reset or timed out; a live stream then reads EOF or `ConnectionReset` from the
//!   recorded [`Terminal`].

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, HashSet, VecDeque},
    io,
    net::{Ipv4Addr, SocketAddrV4},
    task::Waker,
};

use bytes::Bytes;
use smoltcp::{
    iface::{Interface, PollResult, SocketHandle, SocketSet},
    socket::{tcp, AnySocket},
    time::{Duration, Instant},
    wire::{IpAddress, IpEndpoint, IpListenEndpoint},
};

use super::{
    device::{inspect, ChannelDevice, Inbound},
    driver::Clock,
    Limits,
};

mod lifecycle;

/// Established connections waiting for `accept`, per listener; beyond it they are reset.
const ACCEPT_BACKLOG: usize = 1024;
/// A connection attempt that has not completed its handshake by then is dropped.
const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a dropped stream may take to finish sending and close before it is reset.
const ORPHAN_LINGER: Duration = Duration::from_secs(60);
/// An idle connection sends a keep-alive this often …
const KEEP_ALIVE: Duration = Duration::from_secs(60);
/// … and is reset when the peer has sent nothing at all for this long (with keep-alives
/// answered, that only happens to a dead or unreachable peer).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Local ports for outbound connections.
const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// UDP buffers: datagrams and bytes, each direction.
const UDP_PACKETS: usize = 256;
const UDP_BYTES: usize = 256 * 1024;

pub(super) type ConnId = u64;

/// A socket the stack polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Target {
    Tcp(ConnId),
    Udp(u64),
}

/// One smoltcp socket in a set of its own.
pub(super) struct Sock {
    set: SocketSet<'static>,
    handle: SocketHandle,
}

impl Sock {
    fn new<T: AnySocket<'static>>(socket: T) -> Self {
        let mut set = SocketSet::new(Vec::with_capacity(1));
        let handle = set.add(socket);
        Self { set, handle }
    }

    pub(super) fn get<T: AnySocket<'static>>(&mut self) -> &mut T {
        self.set.get_mut::<T>(self.handle)
    }
}

/// How a connection whose socket is gone ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Terminal {
    /// Both sides closed: reads return EOF.
    Eof,
    /// Reset by the peer, by [`State::abort_peer`], or after a timeout.
    Reset,
}

/// Who is responsible for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// An inbound connection still in its handshake.
    Stack { listener: SocketAddrV4, since: Instant },
    /// Established, in `listener`'s accept queue.
    Queued { listener: SocketAddrV4 },
    /// A live [`super::TcpStream`].
    Stream,
    /// Its stream was dropped at `since`: closing in the background.
    Orphan { since: Instant },
}

pub(super) struct Conn {
    /// `None` once the socket is gone; `terminal` then says why.
    pub(super) sock: Option<Sock>,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    owner: Owner,
    pub(super) terminal: Option<Terminal>,
    /// The handshake completed at some point.
    pub(super) established: bool,
    /// The peer's FIN arrived.
    fin_received: bool,
    /// Our FIN is queued (`poll_shutdown` or drop).
    pub(super) write_shut: bool,
    /// The timer currently scheduled in [`State::timers`] (older entries there are stale).
    next_poll: Option<Instant>,
}

impl Conn {
    pub(super) fn tcp(&mut self) -> Option<&mut tcp::Socket<'static>> {
        self.sock.as_mut().map(Sock::get::<tcp::Socket>)
    }

    /// Our own timeout for this connection, besides smoltcp's timers.
    fn deadline(&self) -> Option<Instant> {
        match self.owner {
            Owner::Stack { since, .. } => Some(since + HALF_OPEN_TIMEOUT),
            Owner::Orphan { since } => Some(since + ORPHAN_LINGER),
            Owner::Queued { .. } | Owner::Stream => None,
        }
    }
}

#[derive(Default)]
struct Listener {
    queue: VecDeque<ConnId>,
    waker: Option<Waker>,
}

pub(super) struct UdpEntry {
    pub(super) sock: Sock,
    port: u16,
}

pub(super) struct State {
    iface: Interface,
    /// An empty set: packets for no socket are processed against it, so that smoltcp answers
    /// them (RST for TCP, port unreachable for UDP).
    nobody: SocketSet<'static>,
    pub(super) conns: HashMap<ConnId, Conn>,
    /// (local, remote) of every connection with a socket.
    tuples: HashMap<(SocketAddrV4, SocketAddrV4), ConnId>,
    /// Sockets per remote address.
    per_peer: HashMap<Ipv4Addr, usize>,
    /// Connections with a socket: the number `connection_count` reports.
    live: usize,
    listeners: HashMap<SocketAddrV4, Listener>,
    pub(super) udp: HashMap<u64, UdpEntry>,
    udp_ports: HashMap<u16, u64>,
    /// Sockets to poll for egress (and then settle), in order, without duplicates.
    queue: VecDeque<Target>,
    queued: HashSet<Target>,
    /// When connections want polling: smoltcp's timers and our own deadlines.
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    next_id: u64,
    rng: u64,
    clock: Clock,
    pub(super) stopped: bool,
    limits: Limits,
}

/// The error every operation returns once the stack has stopped.
pub(super) fn stopped_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "overlay network stack stopped")
}

pub(super) fn endpoint_v4(endpoint: IpEndpoint) -> Option<SocketAddrV4> {
    match endpoint.addr {
        IpAddress::Ipv4(addr) => Some(SocketAddrV4::new(addr, endpoint.port)),
        #[allow(unreachable_patterns)] // with smoltcp's proto-ipv6 feature unified in
        _ => None,
    }
}

impl State {
    pub(super) fn new(iface: Interface, limits: Limits, clock: Clock, seed: u64) -> Self {
        Self {
            iface,
            nobody: SocketSet::new(Vec::new()),
            conns: HashMap::new(),
            tuples: HashMap::new(),
            per_peer: HashMap::new(),
            live: 0,
            listeners: HashMap::new(),
            udp: HashMap::new(),
            udp_ports: HashMap::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            timers: BinaryHeap::new(),
            next_id: 1,
            rng: seed | 1,
            clock,
            stopped: false,
            limits,
        }
    }

    pub(super) fn connection_count(&self) -> usize {
        self.live
    }

    /// Asks the stack task to poll `target` (the caller then kicks it).
    pub(super) fn touch(&mut self, target: Target) {
        if self.queued.insert(target) {
            self.queue.push_back(target);
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// xorshift64: ephemeral ports only need to be spread out and hard to guess.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn new_tcp_socket(&self) -> tcp::Socket<'static> {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; self.limits.tcp_receive_buffer_bytes]),
            tcp::SocketBuffer::new(vec![0; self.limits.tcp_send_buffer_bytes]),
        );
        socket.set_congestion_control(tcp::CongestionControl::Cubic);
        socket.set_nagle_enabled(false);
        socket.set_keep_alive(Some(KEEP_ALIVE));
        socket.set_timeout(Some(IDLE_TIMEOUT));
        socket
    }

    /// Records a connection and its socket.
    fn insert_conn(
        &mut self,
        sock: Sock,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        owner: Owner,
    ) -> ConnId {
        let id = self.next_id();
        let conn = Conn {
            sock: Some(sock),
            local,
            remote,
            owner,
            terminal: None,
            established: false,
            fin_received: false,
            write_shut: false,
            next_poll: None,
        };
        self.conns.insert(id, conn);
        self.tuples.insert((local, remote), id);
        *self.per_peer.entry(*remote.ip()).or_default() += 1;
        self.live += 1;
        id
    }

    /// Drops a connection's socket (the record stays for its stream).
    fn remove_socket(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if conn.sock.take().is_none() {
            return;
        }
        conn.next_poll = None;
        let key = (conn.local, conn.remote);
        let peer = *conn.remote.ip();
        if self.tuples.get(&key) == Some(&id) {
            self.tuples.remove(&key);
        }
        if let Some(count) = self.per_peer.get_mut(&peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_peer.remove(&peer);
            }
        }
        self.live = self.live.saturating_sub(1);
    }

    fn remove_conn(&mut self, id: ConnId) {
        self.remove_socket(id);
        self.conns.remove(&id);
    }

    fn peer_count(&self, ip: &Ipv4Addr) -> usize {
        self.per_peer.get(ip).copied().unwrap_or(0)
    }

    /// Orphans a connection and resets it.
    fn orphan_and_abort(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.owner = Owner::Orphan { since: now };
        match conn.tcp() {
            Some(socket) => {
                socket.abort();
                self.touch(Target::Tcp(id));
            }
            None => {
                self.conns.remove(&id);
            }
        }
    }

    // ---------------------------------------------------------------- packets

    /// Processes one inbound packet against the socket it belongs to.
    pub(super) fn ingress(&mut self, packet: Bytes, device: &mut ChannelDevice, now: Instant) {
        let target = match inspect(&packet, self.limits.address) {
            Inbound::Drop => return,
            Inbound::Tcp { src, dst, syn } => match self.tuples.get(&(dst, src)) {
                Some(&id) => Some(Target::Tcp(id)),
                None if syn => self.listening_socket_for(src, dst, now).map(Target::Tcp),
                None => None,
            },
            Inbound::Udp { dst_port } => self.udp_ports.get(&dst_port).map(|&id| Target::Udp(id)),
            Inbound::Other => None,
        };
        device.rx.push_back(packet);
        let set = match target {
            Some(Target::Tcp(id)) => {
                self.conns.get_mut(&id).and_then(|c| c.sock.as_mut()).map(|s| &mut s.set)
            }
            Some(Target::Udp(id)) => self.udp.get_mut(&id).map(|u| &mut u.sock.set),
            None => None,
        };
        let set = set.unwrap_or(&mut self.nobody);
        self.iface.poll_ingress_single(now, device, set);
        device.rx.clear();
        if let Some(target) = target {
            self.touch(target);
        }
    }

    /// A connection attempt with no socket yet: a listening socket of its own if `dst` is
    /// listened on and the limits allow. Without one, smoltcp answers RST.
    fn listening_socket_for(
        &mut self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        now: Instant,
    ) -> Option<ConnId> {
        if !self.listeners.contains_key(&dst) || !self.limits.on_link(*src.ip()) {
            return None;
        }
        if self.peer_count(src.ip()) >= self.limits.max_connections_per_peer
            || self.live >= self.limits.max_connections
        {
            tracing::debug!(peer = %src, "connection limit reached, refusing");
            return None;
        }
        let mut socket = self.new_tcp_socket();
        socket.listen(IpListenEndpoint::from(dst)).ok()?;
        Some(self.insert_conn(
            Sock::new(socket),
            dst,
            src,
            Owner::Stack { listener: dst, since: now },
        ))
    }

    /// Moves due timers into the poll queue; returns when the next one is due.
    pub(super) fn due_timers(&mut self, now: Instant) -> Option<Instant> {
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                return Some(at);
            }
            self.timers.pop();
            if let Some(conn) = self.conns.get_mut(&id) {
                if conn.next_poll == Some(at) {
                    // Re-armed by `schedule` after the poll, whatever smoltcp then says.
                    conn.next_poll = None;
                    self.touch(Target::Tcp(id));
                }
            }
        }
        None
    }

    /// When the earliest timer is due (possibly a stale one: an early wake-up is harmless).
    pub(super) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Polls queued sockets for egress, then settles them, until the device budget runs out
    /// (the rest stay queued). Returns whether the queue was emptied.
    pub(super) fn egress(&mut self, device: &mut ChannelDevice, now: Instant) -> bool {
        while let Some(target) = self.queue.pop_front() {
            let set = match target {
                Target::Tcp(id) => {
                    self.conns.get_mut(&id).and_then(|c| c.sock.as_mut()).map(|s| &mut s.set)
                }
                Target::Udp(id) => self.udp.get_mut(&id).map(|u| &mut u.sock.set),
            };
            if let Some(set) = set {
                while self.iface.poll_egress(now, device, set) == PollResult::SocketStateChanged {}
                if device.exhausted {
                    self.queue.push_front(target);
                    return false;
                }
            }
            self.queued.remove(&target);
            if let Target::Tcp(id) = target {
                self.settle(id, now);
                self.schedule(id, now);
            }
        }
        true
    }

    /// Arms the connection's timer for smoltcp's next deadline or our own.
    fn schedule(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let own = conn.deadline();
        let Some(sock) = conn.sock.as_mut() else { return };
        let smol = self.iface.poll_at(now, &sock.set);
        let at = match (smol, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if at != conn.next_poll {
            conn.next_poll = at;
            if let Some(at) = at {
                self.timers.push(Reverse((at, id)));
            }
        }
        // Stale entries pile up on busy connections: rebuild now and then.
        if self.timers.len() > 4 * self.conns.len() + 1024 {
            let conns = &self.conns;
            self.timers.retain(|Reverse((at, id))| {
                conns.get(id).is_some_and(|c| c.next_poll == Some(*at))
            });
        }
    }
}
