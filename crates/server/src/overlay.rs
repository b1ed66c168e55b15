//! The overlay endpoint: the WireGuard UDP port, the userspace network stack behind it, and on
//! it the AI endpoint (the server's overlay address, port 80) and the overlay's DNS responder.
//!
//! Identity: a connection's overlay source address maps to the peer that holds it and that
//! peer's owner. This is sound because the tunnel drops any packet whose inner source address is
//! not the sending peer's own. The map is read per request, so a revocation or a group change
//! applies to the next request even on a kept-alive connection.
//!
//! The store is the source of truth: [`OverlayEndpoint::reconcile`] brings the tunnel's peers and
//! the address map in line with the store's live peers (after every change, and when the next
//! registration expires). A peer that goes away is removed from the tunnel, so its packets are
//! dropped from then on, and its open connections are reset at once.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, SocketAddrV4},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use domain::Principal;
use hyper_util::server::graceful::GracefulShutdown;
use overlay::{NetStack, NetStackConfig, PrivateKey, PublicKey, Tunnel, TunnelPeer, TunnelPipes};
use proxy::{Caller, Gateway};
use store::Store;
use tokio::{sync::watch, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::config;

mod inside;

use inside::{Accepted, Inside, Kernel};

/// The port of the AI endpoint at the server's overlay address.
pub(crate) const AI_PORT: u16 = 80;
/// How long the resets of a removed peer's connections get to leave through its tunnel.
const RESET_FLUSH: Duration = Duration::from_millis(50);
/// How long the server tries to reconnect a known peer after a restart.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often peers' handshake times and byte counters are written to the store.
const STATS_INTERVAL: Duration = Duration::from_secs(15);

/// One live peer, as the data plane needs it.
#[derive(Debug, Clone)]
struct PeerEntry {
    id: String,
    public_key: PublicKey,
    principal: Principal,
    /// Counters stored before this process added the peer (the tunnel counts from zero).
    rx_base: u64,
    tx_base: u64,
    /// Where its packets last came from, as stored (used once, to reconnect after a restart).
    last_endpoint: Option<std::net::SocketAddr>,
}

/// Live peers by overlay address; swapped whole on every reconciliation.
#[derive(Default)]
struct PeerMap(ArcSwap<HashMap<Ipv4Addr, PeerEntry>>);

impl PeerMap {
    fn caller(&self, address: Ipv4Addr) -> Caller {
        match self.0.load().get(&address) {
            Some(peer) => Caller::Peer(peer.principal.clone()),
            None => Caller::UnknownPeer(address),
        }
    }

    fn load(&self) -> arc_swap::Guard<Arc<HashMap<Ipv4Addr, PeerEntry>>> {
        self.0.load()
    }

    fn load_full(&self) -> Arc<HashMap<Ipv4Addr, PeerEntry>> {
        self.0.load_full()
    }

    fn store(&self, peers: Arc<HashMap<Ipv4Addr, PeerEntry>>) {
        self.0.store(peers);
    }
}

/// The running overlay endpoint.
pub struct OverlayEndpoint {
    tunnel: Tunnel,
    /// The userspace stack, or the kernel interface.
    inside: Inside,
    server_address: Ipv4Addr,
    public_key: PublicKey,
    /// Live peers by overlay address, read per request.
    peers: Arc<PeerMap>,
    /// One reconciliation at a time.
    reconciling: tokio::sync::Mutex<()>,
    /// When the next live registration expires (Unix ms).
    next_expiry: watch::Sender<Option<i64>>,
}

impl OverlayEndpoint {
    /// Binds the WireGuard port and starts the stack; no peer is admitted before the first
    /// [`reconcile`](Self::reconcile).
    pub async fn start(settings: &config::Overlay, key: &PrivateKey) -> anyhow::Result<Arc<Self>> {
        let network = settings.network()?;
        let server_address = overlay::Ipam::new(network).server_address();
        let listen = settings.listen;
        let failed = "cannot start the overlay's WireGuard endpoint";
        let (tunnel, inside) = match settings.mode {
            config::OverlayMode::Userspace => {
                let (stack, pipes) = NetStack::new(NetStackConfig {
                    address: server_address,
                    prefix: network.prefix(),
                    ..NetStackConfig::default()
                });
                let pipes = TunnelPipes { to_stack: pipes.inbound, from_stack: pipes.outbound };
                let tunnel = Tunnel::start(key, listen, pipes, &[]).await.context(failed)?;
                (tunnel, Inside::Stack(stack))
            }
            config::OverlayMode::Tun => {
                let interface = overlay::KernelInterface {
                    name: settings.interface.clone(),
                    address: server_address,
                    prefix: network.prefix(),
                };
                let inside = overlay::TunnelInside::Kernel(interface);
                let tunnel = Tunnel::start_with(key, listen, inside, &[]).await.context(failed)?;
                (tunnel, Inside::Kernel(Kernel::new(settings.interface.clone())))
            }
        };
        Ok(Arc::new(Self {
            tunnel,
            inside,
            server_address,
            public_key: key.public_key(),
            peers: Arc::default(),
            reconciling: tokio::sync::Mutex::new(()),
            next_expiry: watch::Sender::new(None),
        }))
    }

    pub fn server_address(&self) -> Ipv4Addr {
        self.server_address
    }

    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The bound WireGuard UDP port.
    pub async fn listen_port(&self) -> u16 {
        self.tunnel.listen_port().await
    }

    /// Who is calling from `address`, for one request.
    pub fn caller(&self, address: Ipv4Addr) -> Caller {
        self.peers.caller(address)
    }

    /// Brings the tunnel's peers and the address map in line with the store's live peers.
    /// Peers that went away lose their tunnel first, then their connections.
    pub async fn reconcile(&self, store: &Store) -> anyhow::Result<()> {
        let _one_at_a_time = self.reconciling.lock().await;
        let now = now_ms();
        let live = store.overlay_peers(now).await.context("cannot read overlay peers")?;
        let current = self.peers.load_full();
        let mut wanted = HashMap::with_capacity(live.len());
        let mut next_expiry: Option<i64> = None;
        for row in live {
            let public_key: PublicKey = match row.peer.public_key.parse() {
                Ok(key) => key,
                Err(err) => {
                    tracing::warn!(peer = %row.peer.id, error = %err, "skipping a peer with an unreadable key");
                    continue;
                }
            };
            // Served until the registration or its session ends, whichever is first.
            let ends = row.peer.expires_at_ms.min(row.session_ends_at_ms);
            next_expiry = Some(next_expiry.map_or(ends, |t| t.min(ends)));
            let mut groups = row.groups;
            groups.sort();
            groups.dedup();
            let principal = Principal {
                kind: row.peer.owner_kind,
                subject: row.subject,
                name: row.peer.owner.clone(),
                groups,
            };
            // Counters carry over within this process; from the store after a restart.
            let (rx_base, tx_base) = match current.get(&row.peer.address) {
                Some(known) if known.id == row.peer.id => (known.rx_base, known.tx_base),
                _ => (row.peer.rx_bytes, row.peer.tx_bytes),
            };
            let last_endpoint = row.last_endpoint.as_deref().and_then(|e| e.parse().ok());
            wanted.insert(
                row.peer.address,
                PeerEntry {
                    id: row.peer.id,
                    public_key,
                    principal,
                    rx_base,
                    tx_base,
                    last_endpoint,
                },
            );
        }
        let gone: Vec<(Ipv4Addr, PublicKey)> = current
            .iter()
            .filter(|(address, peer)| {
                wanted.get(address).is_none_or(|w| w.public_key != peer.public_key)
            })
            .map(|(address, peer)| (*address, peer.public_key))
            .collect();
        let new: Vec<TunnelPeer> = wanted
            .iter()
            .filter(|(address, peer)| {
                current.get(address).is_none_or(|c| c.public_key != peer.public_key)
            })
            .map(|(address, peer)| TunnelPeer {
                endpoint: peer.last_endpoint,
                ..TunnelPeer::device(peer.public_key, *address)
            })
            .collect();
        // First a map without every address whose holder went or changed: from here on, their
        // requests are refused, and a new holder is not served until the old one's tunnel is
        // gone (else the old peer could, for a moment, speak as the new holder).
        let mut interim = wanted.clone();
        for (address, _) in &gone {
            interim.remove(address);
        }
        self.peers.store(Arc::new(interim));
        // Their connections are reset while the tunnel still carries the resets, so that
        // clients see the cut at once instead of waiting out a timeout; then the tunnel goes.
        let reset: usize = gone.iter().map(|(address, _)| self.inside.abort_peer(*address)).sum();
        if reset > 0 {
            tokio::time::sleep(RESET_FLUSH).await;
        }
        // Every key the tunnel holds that is not wanted goes, including any a failed earlier
        // reconciliation left behind.
        let wanted_keys: std::collections::HashSet<PublicKey> =
            wanted.values().map(|p| p.public_key).collect();
        for public_key in self.tunnel.peer_keys().await {
            if !wanted_keys.contains(&public_key) {
                self.tunnel.remove_peer(&public_key).await?;
            }
        }
        for (_, public_key) in &gone {
            if !wanted_keys.contains(public_key) {
                self.tunnel.remove_peer(public_key).await?;
            }
        }
        // Anything a removed peer opened during the flush is reset too (its requests were
        // already refused): nothing of it outlives the reconciliation.
        for (address, _) in &gone {
            self.inside.abort_peer(*address);
        }
        for peer in &new {
            self.tunnel.upsert_peer(peer).await?;
        }
        self.peers.store(Arc::new(wanted));
        self.next_expiry.send_replace(next_expiry);
        if !gone.is_empty() || !new.is_empty() {
            tracing::info!(
                added = new.len(),
                removed = gone.len(),
                connections_reset = reset,
                "overlay peers updated"
            );
        }
        Ok(())
    }

    /// Serves the AI endpoint (and DNS, when on) on the overlay until `shutdown`; keeps peers'
    /// statistics in the store and removes registrations as they expire.
    pub async fn run(
        self: Arc<Self>,
        gateway: Arc<Gateway>,
        store: Store,
        dns_domain: Option<String>,
        shutdown: CancellationToken,
    ) {
        let mut tasks = JoinSet::new();
        if let Some(domain) = dns_domain {
            let endpoint = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { endpoint.serve_dns(&domain, shutdown).await });
        }
        tasks.spawn(self.clone().reconnect_known_peers());
        tasks.spawn(self.clone().record_stats(store.clone(), shutdown.clone()));
        tasks.spawn(self.clone().expire(store, shutdown.clone()));
        self.serve_ai(gateway, shutdown).await;
        while tasks.join_next().await.is_some() {}
    }

    async fn serve_ai(&self, gateway: Arc<Gateway>, shutdown: CancellationToken) {
        let local = SocketAddrV4::new(self.server_address, AI_PORT);
        let mut listener = match self.inside.listen_ai(local) {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!(error = %err, %local, "cannot listen on the overlay");
                return;
            }
        };
        tracing::info!(addr = %local, "AI endpoint listening on the overlay");
        let graceful = GracefulShutdown::new();
        // Cuts the connections of the userspace stack at the end of the shutdown grace (the
        // kernel's have their own switches, under `Kernel::cut_all`).
        let cut = CancellationToken::new();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "overlay accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = shutdown.cancelled() => break,
            };
            let peers = self.peers.clone();
            match accepted {
                Accepted::Stack(stream, address) => proxy::serve_connection(
                    gateway.clone(),
                    stream,
                    move || peers.caller(address),
                    &graceful,
                    Some(cut.clone()),
                ),
                // Kernel sockets cannot be reset from outside: each peer has its own switch.
                Accepted::Kernel(stream, address) => {
                    let Inside::Kernel(kernel) = &self.inside else { continue };
                    let cut = kernel.cut_for(address);
                    let caller = move || peers.caller(address);
                    proxy::serve_connection(gateway.clone(), stream, caller, &graceful, Some(cut));
                }
            }
        }
        let cut_all = || {
            cut.cancel();
            if let Inside::Kernel(kernel) = &self.inside {
                kernel.cut_all();
            }
        };
        proxy::finish_in_flight(&gateway, graceful, cut_all, "overlay").await;
        self.tunnel.suspend().await;
        self.inside.shutdown();
    }

    /// Answers DNS queries for `domain` at the server's overlay address, UDP port 53.
    async fn serve_dns(&self, domain: &str, shutdown: CancellationToken) {
        let local = SocketAddrV4::new(self.server_address, overlay::DNS_PORT);
        let socket = match self.inside.bind_dns(local) {
            Ok(socket) => socket,
            Err(err) => {
                tracing::error!(error = %err, %local, "cannot bind the overlay DNS responder");
                return;
            }
        };
        let zone = overlay::DnsZone::new(domain, self.server_address);
        tracing::info!(addr = %local, name = %zone.ai_name(), "overlay DNS responder listening");
        let mut buf = vec![0u8; 1500];
        loop {
            let (len, from) = tokio::select! {
                received = socket.recv_from(&mut buf) => match received {
                    Ok(received) => received,
                    Err(err) => {
                        tracing::debug!(error = %err, "overlay DNS receive failed");
                        continue;
                    }
                },
                () = shutdown.cancelled() => return,
            };
            if let Some(answer) = zone.answer(&buf[..len]) {
                if let Err(err) = socket.send_to(&answer, from).await {
                    tracing::debug!(error = %err, "overlay DNS send failed");
                }
            }
        }
    }

    /// After a restart every session is gone; peers would notice only at their next handshake
    /// timeout (wireguard-go: 15 s or more). Starting the handshake from here, at the endpoints
    /// they last spoke from, reconnects them within a round trip.
    async fn reconnect_known_peers(self: Arc<Self>) {
        let peers: Vec<PublicKey> = self
            .peers
            .load()
            .values()
            .filter(|p| p.last_endpoint.is_some())
            .map(|p| p.public_key)
            .collect();
        if peers.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let mut handshakes = JoinSet::new();
        for key in peers {
            let endpoint = self.clone();
            handshakes
                .spawn(async move { endpoint.tunnel.handshake(&key, RECONNECT_TIMEOUT).await });
        }
        let (mut done, mut total) = (0, 0);
        while let Some(ok) = handshakes.join_next().await {
            total += 1;
            done += usize::from(matches!(ok, Ok(true)));
        }
        tracing::info!(
            reconnected = done,
            of = total,
            ms = started.elapsed().as_millis() as u64,
            "overlay peers reconnected after start"
        );
    }

    /// Writes peers' handshake times and byte counters to the store now and then.
    async fn record_stats(self: Arc<Self>, store: Store, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(STATS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => {
                    self.write_stats(&store).await;
                    return;
                }
            }
            self.write_stats(&store).await;
        }
    }

    async fn write_stats(&self, store: &Store) {
        let traffic = self.tunnel.traffic().await;
        let peers = self.peers.load();
        let by_key: HashMap<PublicKey, &PeerEntry> =
            peers.values().map(|peer| (peer.public_key, peer)).collect();
        let now = SystemTime::now();
        let endpoints: Vec<Option<String>> =
            traffic.iter().map(|t| t.endpoint.map(|e| e.to_string())).collect();
        let stats: Vec<store::PeerStats<'_>> = traffic
            .iter()
            .zip(&endpoints)
            .filter_map(|(t, endpoint)| {
                let peer = by_key.get(&t.public_key)?;
                Some(store::PeerStats {
                    id: &peer.id,
                    endpoint: endpoint.as_deref(),
                    last_handshake_ms: t
                        .since_handshake
                        .and_then(|age| now.checked_sub(age))
                        .map(unix_ms),
                    rx_bytes: peer.rx_base + t.rx_bytes,
                    tx_bytes: peer.tx_base + t.tx_bytes,
                })
            })
            .collect();
        if let Err(err) = store.record_peer_stats(&stats).await {
            tracing::warn!(error = %err, "could not record overlay peer statistics");
        }
    }

    /// Removes each registration when it expires.
    async fn expire(self: Arc<Self>, store: Store, shutdown: CancellationToken) {
        let mut next = self.next_expiry.subscribe();
        loop {
            let due = *next.borrow_and_update();
            let wait = match due {
                Some(at) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {
                    if due.is_some() {
                        if let Err(err) = self.reconcile(&store).await {
                            tracing::error!(error = format!("{err:#}"), "could not remove expired overlay peers");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
                changed = next.changed() => if changed.is_err() { return },
                () = shutdown.cancelled() => return,
            }
        }
    }
}

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}
