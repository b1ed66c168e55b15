//! [`UdpSocket`]: datagrams over the overlay (the server's DNS responder), on smoltcp's UDP
//! socket buffers.

use std::{fmt, future::poll_fn, io, net::SocketAddrV4, sync::Arc, task::Poll};

use smoltcp::{socket::udp, wire::IpEndpoint};

use super::{
    state::{endpoint_v4, stopped_error, State, Target},
    Shared,
};

/// A UDP socket bound to the stack's address. One task at a time should wait in
/// `recv_from` (and one in `send_to`): smoltcp keeps a single waker for each.
pub struct UdpSocket {
    shared: Arc<Shared>,
    id: u64,
    local: SocketAddrV4,
}

fn socket(state: &mut State, id: u64) -> io::Result<&mut udp::Socket<'static>> {
    if state.stopped {
        return Err(stopped_error());
    }
    match state.udp.get_mut(&id) {
        Some(entry) => Ok(entry.sock.get::<udp::Socket>()),
        None => Err(io::Error::from(io::ErrorKind::NotConnected)),
    }
}

impl UdpSocket {
    pub(super) fn new(shared: Arc<Shared>, id: u64, local: SocketAddrV4) -> Self {
        Self { shared, id, local }
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Receives one datagram into `buf` (truncated if longer) and returns its length and
    /// sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        poll_fn(|cx| {
            let mut guard = self.shared.lock();
            let socket = match socket(&mut guard, self.id) {
                Ok(socket) => socket,
                Err(e) => return Poll::Ready(Err(e)),
            };
            loop {
                match socket.recv() {
                    Ok((payload, meta)) => {
                        let Some(from) = endpoint_v4(meta.endpoint) else { continue };
                        let n = payload.len().min(buf.len());
                        buf[..n].copy_from_slice(&payload[..n]);
                        return Poll::Ready(Ok((n, from)));
                    }
                    Err(_) => {
                        socket.register_recv_waker(cx.waker());
                        return Poll::Pending;
                    }
                }
            }
        })
        .await
    }

    /// Sends `buf` as one datagram to `to` (within the overlay network, at most MTU − 28
    /// bytes); waits while the send buffer is full.
    pub async fn send_to(&self, buf: &[u8], to: SocketAddrV4) -> io::Result<usize> {
        let limits = &self.shared.limits;
        if buf.len() > limits.max_datagram() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("datagram of {} bytes exceeds {}", buf.len(), limits.max_datagram()),
            ));
        }
        if to.port() == 0 || *to.ip() == limits.address {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot send to {to}"),
            ));
        }
        if !limits.on_link(*to.ip()) {
            return Err(io::Error::new(
                io::ErrorKind::NetworkUnreachable,
                format!("{} is outside the overlay network", to.ip()),
            ));
        }
        poll_fn(|cx| {
            let mut guard = self.shared.lock();
            let socket = match socket(&mut guard, self.id) {
                Ok(socket) => socket,
                Err(e) => return Poll::Ready(Err(e)),
            };
            match socket.send_slice(buf, IpEndpoint::from(to)) {
                Ok(()) => {
                    guard.touch(Target::Udp(self.id));
                    drop(guard);
                    self.shared.kick();
                    Poll::Ready(Ok(buf.len()))
                }
                Err(udp::SendError::BufferFull) => {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
                Err(udp::SendError::Unaddressable) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot send to {to}"),
                ))),
            }
        })
        .await
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.shared.lock().unbind_udp(self.id);
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket").field("local", &self.local).finish()
    }
}
