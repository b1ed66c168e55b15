//! The smoltcp `phy::Device` of the stack: two packet queues the stack task fills from and
//! drains to the tunnel's channels, plus the look at each inbound packet that the stack needs
//! before smoltcp sees it (is it for us, which socket is it for, is it a SYN).
//!
//! Transmission is budgeted: before each poll the stack task sets [`ChannelDevice::budget`] to
//! the room left in the outbound channel, and `transmit` refuses once it is spent. smoltcp then
//! keeps the data in its socket buffers and sends it on a later poll, instead of us dropping
//! packets it believes are on the wire (which would cost a retransmission timeout, at least
//! 1 s in smoltcp).

use std::{
    collections::VecDeque,
    net::{Ipv4Addr, SocketAddrV4},
};

use bytes::Bytes;
use smoltcp::{
    phy::{self, DeviceCapabilities, Medium},
    time::Instant,
    wire::{IpProtocol, Ipv4Packet, TcpPacket, UdpPacket},
};

/// The packet queues between the stack task and smoltcp.
pub(super) struct ChannelDevice {
    /// The inbound packet being processed, already checked by [`inspect`].
    pub(super) rx: VecDeque<Bytes>,
    /// Packets smoltcp emitted, waiting for room in the outbound channel.
    pub(super) tx: VecDeque<Bytes>,
    /// How many more packets `transmit` may hand out in this poll.
    pub(super) budget: usize,
    /// Set when `transmit` refused for lack of budget: sockets still have something to send.
    pub(super) exhausted: bool,
    mtu: usize,
}

impl ChannelDevice {
    pub(super) fn new(mtu: usize) -> Self {
        Self { rx: VecDeque::new(), tx: VecDeque::new(), budget: 0, exhausted: false, mtu }
    }
}

pub(super) struct RxToken(Bytes);

pub(super) struct TxToken<'a> {
    queue: &'a mut VecDeque<Bytes>,
    budget: &'a mut usize,
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let result = f(&mut buf);
        self.queue.push_back(Bytes::from(buf));
        // Replies generated while receiving (an RST, an ACK for an out-of-order segment) are
        // not refused even when the budget is spent: they are rare and small, and they wait in
        // `tx` like the rest.
        *self.budget = self.budget.saturating_sub(1);
        result
    }
}

impl phy::Device for ChannelDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let packet = self.rx.pop_front()?;
        Some((RxToken(packet), TxToken { queue: &mut self.tx, budget: &mut self.budget }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        if self.budget == 0 {
            self.exhausted = true;
            return None;
        }
        Some(TxToken { queue: &mut self.tx, budget: &mut self.budget })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

/// What an inbound packet is, as far as routing it to a socket goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inbound {
    /// Not a well-formed, unfragmented IPv4 packet addressed to us: dropped silently.
    Drop,
    /// A TCP segment; `syn` if it opens a connection (SYN without ACK or RST).
    Tcp {
        src: SocketAddrV4,
        dst: SocketAddrV4,
        syn: bool,
    },
    Udp {
        dst_port: u16,
    },
    /// Anything else for us (ICMP, other protocols): smoltcp decides.
    Other,
}

/// Classifies an inbound packet without trusting any of its bytes.
pub(super) fn inspect(packet: &[u8], ours: Ipv4Addr) -> Inbound {
    let Ok(ip) = Ipv4Packet::new_checked(packet) else {
        return Inbound::Drop;
    };
    if ip.version() != 4 || ip.dst_addr() != ours {
        return Inbound::Drop;
    }
    // smoltcp is built without IPv4 reassembly; overlay packets never need it (the tunnel MTU
    // is the stack's MTU), so a fragment is either an attack or a misconfiguration.
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Inbound::Drop;
    }
    match ip.next_header() {
        IpProtocol::Tcp => {
            let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
                return Inbound::Drop;
            };
            Inbound::Tcp {
                src: SocketAddrV4::new(ip.src_addr(), tcp.src_port()),
                dst: SocketAddrV4::new(ip.dst_addr(), tcp.dst_port()),
                syn: tcp.syn() && !tcp.ack() && !tcp.rst(),
            }
        }
        IpProtocol::Udp => match UdpPacket::new_checked(ip.payload()) {
            Ok(udp) => Inbound::Udp { dst_port: udp.dst_port() },
            Err(_) => Inbound::Drop,
        },
        _ => Inbound::Other,
    }
}
