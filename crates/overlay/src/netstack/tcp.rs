//! TCP handles: [`TcpListener`] (an accept queue fed by the stack task) and [`TcpStream`]
//! (tokio `AsyncRead` + `AsyncWrite` straight on the smoltcp socket buffers, woken by smoltcp's
//! wakers; every read and write kicks the stack task so that window updates and data go out).

use std::{
    fmt,
    future::poll_fn,
    io,
    net::SocketAddrV4,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use smoltcp::socket::tcp;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{
    state::{stopped_error, Conn, ConnId, State, Target, Terminal},
    Shared,
};

fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "overlay connection reset")
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "overlay connection closed for writing")
}

/// Accepts connections to one `address:port`. Dropping it resets connections still waiting in
/// its queue.
pub struct TcpListener {
    shared: Arc<Shared>,
    local: SocketAddrV4,
}

impl TcpListener {
    pub(super) fn new(shared: Arc<Shared>, local: SocketAddrV4) -> Self {
        Self { shared, local }
    }

    /// The next established connection and its remote address (the caller's overlay
    /// address, which the tunnel has authenticated). Cancel-safe.
    pub async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddrV4)> {
        poll_fn(|cx| {
            let accepted = self.shared.lock().poll_accept(self.local, cx.waker());
            match accepted {
                None => Poll::Pending,
                Some(Err(e)) => Poll::Ready(Err(e)),
                Some(Ok((id, remote))) => Poll::Ready(Ok((
                    TcpStream::new(self.shared.clone(), id, self.local, remote),
                    remote,
                ))),
            }
        })
        .await
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.shared.lock().unlisten(self.local);
        self.shared.kick();
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener").field("local", &self.local).finish()
    }
}

/// One TCP connection over the overlay. Dropping it closes the connection gracefully in the
/// background.
pub struct TcpStream {
    shared: Arc<Shared>,
    id: ConnId,
    local: SocketAddrV4,
    remote: SocketAddrV4,
}

/// The connection's socket, or the outcome once it is gone.
enum Access<'a> {
    Socket { socket: &'a mut tcp::Socket<'static>, write_shut: &'a mut bool, established: bool },
    Ended(io::Result<Terminal>),
}

fn access(state: &mut State, id: ConnId) -> Access<'_> {
    if state.stopped {
        return Access::Ended(Err(stopped_error()));
    }
    let Some(conn) = state.conns.get_mut(&id) else {
        return Access::Ended(Err(io::Error::from(io::ErrorKind::NotConnected)));
    };
    if let Some(terminal) = conn.terminal {
        return Access::Ended(Ok(terminal));
    }
    let established = conn.established;
    let Conn { sock, write_shut, .. } = conn;
    match sock {
        Some(sock) => Access::Socket { socket: sock.get::<tcp::Socket>(), write_shut, established },
        None => Access::Ended(Ok(Terminal::Reset)),
    }
}

impl TcpStream {
    pub(super) fn new(
        shared: Arc<Shared>,
        id: ConnId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> Self {
        Self { shared, id, local, remote }
    }

    pub fn peer_addr(&self) -> SocketAddrV4 {
        self.remote
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Resolves when an outbound connection's handshake has completed.
    pub(super) async fn established(&self) -> io::Result<()> {
        poll_fn(|cx| {
            let mut guard = self.shared.lock();
            let refused = || Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionRefused)));
            let was_established = guard.conns.get(&self.id).is_some_and(|c| c.established);
            match access(&mut guard, self.id) {
                Access::Ended(Err(e)) => Poll::Ready(Err(e)),
                // Connected, and already closed again: the stream will read the outcome.
                Access::Ended(Ok(_)) if was_established => Poll::Ready(Ok(())),
                Access::Ended(Ok(_)) => refused(),
                Access::Socket { socket, established, .. } => match socket.state() {
                    tcp::State::SynSent | tcp::State::SynReceived => {
                        socket.register_recv_waker(cx.waker());
                        Poll::Pending
                    }
                    tcp::State::Closed | tcp::State::Listen if !established => refused(),
                    _ => Poll::Ready(Ok(())),
                },
            }
        })
        .await
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut guard = this.shared.lock();
        let socket = match access(&mut guard, this.id) {
            Access::Socket { socket, .. } => socket,
            Access::Ended(Ok(Terminal::Eof)) => return Poll::Ready(Ok(())),
            Access::Ended(Ok(Terminal::Reset)) => return Poll::Ready(Err(reset_error())),
            Access::Ended(Err(e)) => return Poll::Ready(Err(e)),
        };
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        match socket.recv_slice(buf.initialize_unfilled()) {
            Ok(0) => {
                socket.register_recv_waker(cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                buf.advance(n);
                // The window opened: the stack decides whether to advertise it.
                guard.touch(Target::Tcp(this.id));
                drop(guard);
                this.shared.kick();
                Poll::Ready(Ok(()))
            }
            Err(tcp::RecvError::Finished) => Poll::Ready(Ok(())),
            Err(tcp::RecvError::InvalidState) => Poll::Ready(Err(reset_error())),
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut guard = this.shared.lock();
        let (socket, write_shut) = match access(&mut guard, this.id) {
            Access::Socket { socket, write_shut, .. } => (socket, write_shut),
            Access::Ended(Ok(Terminal::Eof)) => return Poll::Ready(Err(closed_error())),
            Access::Ended(Ok(Terminal::Reset)) => return Poll::Ready(Err(reset_error())),
            Access::Ended(Err(e)) => return Poll::Ready(Err(e)),
        };
        if *write_shut {
            return Poll::Ready(Err(closed_error()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match socket.send_slice(data) {
            Ok(0) => {
                socket.register_send_waker(cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                guard.touch(Target::Tcp(this.id));
                drop(guard);
                this.shared.kick();
                Poll::Ready(Ok(n))
            }
            Err(tcp::SendError::InvalidState) => Poll::Ready(Err(match socket.state() {
                tcp::State::Closed | tcp::State::Listen => reset_error(),
                _ => closed_error(),
            })),
        }
    }

    /// Data is with the stack once written, as with a kernel socket.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Queues a FIN after the buffered data and returns; does not wait for the peer.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut guard = this.shared.lock();
        match access(&mut guard, this.id) {
            Access::Socket { socket, write_shut, .. } => {
                if !*write_shut {
                    socket.close();
                    *write_shut = true;
                    guard.touch(Target::Tcp(this.id));
                    drop(guard);
                    this.shared.kick();
                }
                Poll::Ready(Ok(()))
            }
            Access::Ended(Ok(Terminal::Eof)) => Poll::Ready(Ok(())),
            Access::Ended(Ok(Terminal::Reset)) => Poll::Ready(Err(reset_error())),
            Access::Ended(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.shared.lock().stream_dropped(self.id);
        self.shared.kick();
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .finish()
    }
}
