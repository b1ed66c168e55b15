//! The connection lifecycle on [`State`]: what happens after a socket was polled (hand-off
//! to the listener, removal of closed sockets, our timeouts), and the operations handles
//! start — listen, accept, connect, drop, abort, UDP binding, stopping.

use std::{
    io,
    net::{Ipv4Addr, SocketAddrV4},
    task::Waker,
};

use smoltcp::{
    socket::{tcp, udp},
    time::Instant,
    wire::{IpEndpoint, IpListenEndpoint},
};

use super::{
    stopped_error, Conn, ConnId, Listener, Owner, Sock, State, Target, Terminal, UdpEntry,
    ACCEPT_BACKLOG, EPHEMERAL_PORTS, HALF_OPEN_TIMEOUT, ORPHAN_LINGER, UDP_BYTES, UDP_PACKETS,
};

impl State {
    /// Bookkeeping after a connection's socket was polled: hand-off to the listener, removal
    /// of closed sockets, our timeouts.
    pub(super) fn settle(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let (owner, remote) = (conn.owner, conn.remote);
        // Borrow only the socket field: the flags below are updated alongside.
        let Some(socket) = conn.sock.as_mut().map(Sock::get::<tcp::Socket>) else {
            if matches!(owner, Owner::Orphan { .. }) {
                self.conns.remove(&id);
            }
            return;
        };
        let state = socket.state();
        // Closed with no remote endpoint: nothing left to send (not even a pending RST).
        let finished = state == tcp::State::Closed && socket.remote_endpoint().is_none();
        let has_data = socket.can_recv();
        use tcp::State::*;
        if matches!(
            state,
            Established | FinWait1 | FinWait2 | CloseWait | Closing | LastAck | TimeWait
        ) {
            conn.established = true;
        }
        if matches!(state, CloseWait | LastAck | Closing | TimeWait) {
            conn.fin_received = true;
        }
        let fin_received = conn.fin_received;
        match owner {
            Owner::Stack { listener, since } => match state {
                Listen | SynReceived if now >= since + HALF_OPEN_TIMEOUT => {
                    self.orphan_and_abort(id, now)
                }
                // Its SYN was not valid after all.
                Listen => self.remove_conn(id),
                SynReceived => {}
                TimeWait => self.remove_conn(id),
                Closed if finished => self.remove_conn(id),
                Closed => conn.owner = Owner::Orphan { since: now },
                _ => self.hand_off(id, listener, now),
            },
            Owner::Queued { .. } | Owner::Stream => {
                let ended = match state {
                    TimeWait if !has_data => Some(Terminal::Eof),
                    // Unread data after a graceful close stays readable.
                    Closed if finished && !(fin_received && has_data) => {
                        Some(if fin_received { Terminal::Eof } else { Terminal::Reset })
                    }
                    Listen => Some(Terminal::Reset),
                    _ => None,
                };
                if let Some(terminal) = ended {
                    conn.terminal.get_or_insert(terminal);
                    self.remove_socket(id);
                }
            }
            Owner::Orphan { since } => {
                let mut again = false;
                if has_data {
                    // Nobody will read it: discard, so that the peer is not stalled by a closed
                    // window while our FIN is on its way.
                    while socket.recv(|data| (data.len(), data.len())).is_ok_and(|n| n > 0) {}
                    again = true;
                }
                if finished || matches!(state, TimeWait | Listen) {
                    self.remove_conn(id);
                    return;
                }
                if state != Closed && now >= since + ORPHAN_LINGER {
                    tracing::debug!(%remote, "closing connection did not finish in time, resetting");
                    socket.abort();
                    again = true;
                }
                if again {
                    self.touch(Target::Tcp(id));
                }
            }
        }
    }

    fn hand_off(&mut self, id: ConnId, listener: SocketAddrV4, now: Instant) {
        match self.listeners.get_mut(&listener) {
            Some(l) if l.queue.len() < ACCEPT_BACKLOG => {
                l.queue.push_back(id);
                if let Some(waker) = l.waker.take() {
                    waker.wake();
                }
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.owner = Owner::Queued { listener };
                }
            }
            _ => {
                tracing::debug!(%listener, "accept queue full or listener gone, resetting connection");
                self.orphan_and_abort(id, now);
            }
        }
    }

    // ---------------------------------------------------------------- listeners

    pub(in crate::netstack) fn listen(&mut self, local: SocketAddrV4) -> io::Result<()> {
        if self.stopped {
            return Err(stopped_error());
        }
        if self.listeners.contains_key(&local) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("already listening on {local}"),
            ));
        }
        self.listeners.insert(local, Listener::default());
        Ok(())
    }

    /// The listener is gone: reset what was waiting for it.
    pub(in crate::netstack) fn unlisten(&mut self, local: SocketAddrV4) {
        if self.listeners.remove(&local).is_none() {
            return;
        }
        let now = self.clock.now();
        let waiting: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| match c.owner {
                Owner::Stack { listener, .. } | Owner::Queued { listener } => listener == local,
                _ => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.orphan_and_abort(id, now);
        }
    }

    /// Takes the next established connection for `local`, or registers `waker`.
    pub(in crate::netstack) fn poll_accept(
        &mut self,
        local: SocketAddrV4,
        waker: &Waker,
    ) -> Option<io::Result<(ConnId, SocketAddrV4)>> {
        if self.stopped {
            return Some(Err(stopped_error()));
        }
        let listener = match self.listeners.get_mut(&local) {
            Some(listener) => listener,
            None => return Some(Err(stopped_error())),
        };
        while let Some(id) = listener.queue.pop_front() {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.owner = Owner::Stream;
                return Some(Ok((id, conn.remote)));
            }
        }
        listener.waker = Some(waker.clone());
        None
    }

    // ---------------------------------------------------------------- outbound and handles

    /// Starts a connection to `remote`; the caller waits for the handshake.
    pub(in crate::netstack) fn connect(
        &mut self,
        remote: SocketAddrV4,
    ) -> io::Result<(ConnId, SocketAddrV4)> {
        if self.stopped {
            return Err(stopped_error());
        }
        if remote.port() == 0 || *remote.ip() == self.limits.address {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot connect to {remote}"),
            ));
        }
        if !self.limits.on_link(*remote.ip()) {
            return Err(io::Error::new(
                io::ErrorKind::NetworkUnreachable,
                format!("{} is outside the overlay network", remote.ip()),
            ));
        }
        if self.live >= self.limits.max_connections {
            return Err(io::Error::other("too many overlay connections"));
        }
        let span = u64::from(EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) + 1;
        let mut local = None;
        for _ in 0..256 {
            let offset = u16::try_from(self.random() % span).unwrap_or(0);
            let candidate =
                SocketAddrV4::new(self.limits.address, EPHEMERAL_PORTS.start() + offset);
            if !self.tuples.contains_key(&(candidate, remote))
                && !self.listeners.contains_key(&candidate)
            {
                local = Some(candidate);
                break;
            }
        }
        let local =
            local.ok_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "no free local port"))?;
        let mut socket = self.new_tcp_socket();
        socket
            .connect(self.iface.context(), IpEndpoint::from(remote), IpListenEndpoint::from(local))
            .map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("connect to {remote}: {e}"))
            })?;
        let id = self.insert_conn(Sock::new(socket), local, remote, Owner::Stream);
        self.touch(Target::Tcp(id));
        Ok((id, local))
    }

    /// The stream of `id` was dropped: close in the background.
    pub(in crate::netstack) fn stream_dropped(&mut self, id: ConnId) {
        let now = self.clock.now();
        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.owner = Owner::Orphan { since: now };
        let write_shut = conn.write_shut;
        let Some(socket) = conn.tcp() else {
            self.conns.remove(&id);
            return;
        };
        match socket.state() {
            // Not connected yet: give up (with an RST if a SYN went out).
            tcp::State::SynSent | tcp::State::SynReceived => socket.abort(),
            tcp::State::TimeWait | tcp::State::Listen => {
                self.remove_conn(id);
                return;
            }
            tcp::State::Closed if socket.remote_endpoint().is_none() => {
                self.remove_conn(id);
                return;
            }
            _ if !write_shut => socket.close(),
            _ => {}
        }
        self.touch(Target::Tcp(id));
    }

    /// Resets every connection with `ip`, in any state. Returns how many.
    pub(in crate::netstack) fn abort_peer(&mut self, ip: Ipv4Addr) -> usize {
        let now = self.clock.now();
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| *c.remote.ip() == ip && c.sock.is_some())
            .map(|(id, _)| *id)
            .collect();
        let mut count = 0;
        for id in ids {
            let Some(conn) = self.conns.get_mut(&id) else { continue };
            match conn.owner {
                Owner::Stream => conn.terminal = Some(Terminal::Reset),
                Owner::Queued { listener } => {
                    conn.owner = Owner::Orphan { since: now };
                    if let Some(l) = self.listeners.get_mut(&listener) {
                        l.queue.retain(|queued| *queued != id);
                    }
                }
                Owner::Stack { .. } => conn.owner = Owner::Orphan { since: now },
                Owner::Orphan { .. } => {}
            }
            let Some(socket) = self.conns.get_mut(&id).and_then(Conn::tcp) else { continue };
            if socket.state() != tcp::State::Closed {
                socket.abort();
                count += 1;
            }
            self.touch(Target::Tcp(id));
        }
        count
    }

    // ---------------------------------------------------------------- UDP

    pub(in crate::netstack) fn bind_udp(&mut self, local: SocketAddrV4) -> io::Result<u64> {
        if self.stopped {
            return Err(stopped_error());
        }
        if self.udp_ports.contains_key(&local.port()) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("UDP port {} is in use", local.port()),
            ));
        }
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0; UDP_BYTES],
            )
        };
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket.bind(IpListenEndpoint::from(local)).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("bind {local}: {e}"))
        })?;
        let id = self.next_id();
        self.udp.insert(id, UdpEntry { sock: Sock::new(socket), port: local.port() });
        self.udp_ports.insert(local.port(), id);
        Ok(id)
    }

    pub(in crate::netstack) fn unbind_udp(&mut self, id: u64) {
        if let Some(entry) = self.udp.remove(&id) {
            self.udp_ports.remove(&entry.port);
        }
    }

    // ---------------------------------------------------------------- stopping

    /// Resets every connection (the RSTs go out on the next egress).
    pub(in crate::netstack) fn abort_all(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            if let Some(socket) = self.conns.get_mut(&id).and_then(Conn::tcp) {
                socket.abort();
                self.touch(Target::Tcp(id));
            }
        }
    }

    /// Marks the stack stopped, wakes every waiting handle (they then fail with
    /// `ConnectionAborted`) and frees every socket.
    pub(in crate::netstack) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        for conn in self.conns.values_mut() {
            if let Some(socket) = conn.tcp() {
                socket.abort(); // wakes its wakers
            }
        }
        for entry in self.udp.values_mut() {
            entry.sock.get::<udp::Socket>().close(); // wakes its wakers
        }
        for listener in self.listeners.values_mut() {
            if let Some(waker) = listener.waker.take() {
                waker.wake();
            }
        }
        self.conns.clear();
        self.tuples.clear();
        self.per_peer.clear();
        self.live = 0;
        self.listeners.clear();
        self.udp.clear();
        self.udp_ports.clear();
        self.queue.clear();
        self.queued.clear();
        self.timers.clear();
    }
}
