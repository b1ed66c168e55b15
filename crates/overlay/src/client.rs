//! The client side of the overlay, in userspace and without privileges: a WireGuard tunnel to the
//! server and a userspace network stack holding the device's overlay address; local TCP
//! connections (e.g. `127.0.0.1:4000`) are forwarded through it to the AI endpoint. Nothing in
//! the forwarded bytes identifies the caller: the tunnel does.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    sync::Arc,
    time::Duration,
};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    keys::{PrivateKey, PublicKey},
    netstack::{NetStack, NetStackConfig},
    tunnel::{
        KernelInterface, PeerTraffic, Tunnel, TunnelError, TunnelInside, TunnelPeer, TunnelPipes,
    },
    Ipv4Net, PERSISTENT_KEEPALIVE_SECS,
};

/// What a registered device needs to join.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub private_key: PrivateKey,
    /// The device's overlay address.
    pub address: Ipv4Addr,
    /// The overlay network (routed through the tunnel).
    pub network: Ipv4Net,
    pub server_public_key: PublicKey,
    /// The server's WireGuard endpoint, resolved.
    pub endpoint: SocketAddr,
    /// The AI endpoint inside the overlay (the server's overlay address, port 80).
    pub ai: SocketAddrV4,
}

/// A running client tunnel.
pub struct ClientTunnel {
    tunnel: Tunnel,
    /// The userspace stack; `None` with a kernel interface (the kernel routes the overlay).
    stack: Option<NetStack>,
    ai: SocketAddrV4,
    server_public_key: PublicKey,
}

/// The tunnel's state, for a status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientStatus {
    /// Time since the last completed handshake with the server.
    pub since_handshake: Option<Duration>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

impl ClientTunnel {
    /// Starts the tunnel in userspace: no privileges, reached through [`forward`](Self::forward).
    pub async fn start(settings: ClientSettings) -> Result<Arc<Self>, TunnelError> {
        let (stack, pipes) = NetStack::new(NetStackConfig {
            address: settings.address,
            prefix: settings.network.prefix(),
            // Uploads go to agentnet's own endpoint, whose UDP buffer is large enough for a
            // full window: no reason to hold back as the server does towards stock clients.
            tcp_send_buffer_bytes: 256 * 1024,
            ..NetStackConfig::default()
        });
        let inside = TunnelInside::Stack(TunnelPipes {
            to_stack: pipes.inbound,
            from_stack: pipes.outbound,
        });
        Self::start_inside(settings, inside, Some(stack)).await
    }

    /// Starts the tunnel on a kernel interface named `name` (needs root or CAP_NET_ADMIN):
    /// the overlay is routed to it, so every program on this machine reaches the AI endpoint
    /// at its overlay address directly.
    pub async fn start_kernel(
        settings: ClientSettings,
        name: &str,
    ) -> Result<Arc<Self>, TunnelError> {
        let inside = TunnelInside::Kernel(KernelInterface {
            name: name.to_owned(),
            address: settings.address,
            prefix: settings.network.prefix(),
        });
        Self::start_inside(settings, inside, None).await
    }

    async fn start_inside(
        settings: ClientSettings,
        inside: TunnelInside,
        stack: Option<NetStack>,
    ) -> Result<Arc<Self>, TunnelError> {
        let server = TunnelPeer {
            public_key: settings.server_public_key,
            allowed: vec![ipnetwork::Ipv4Network::new(
                settings.network.address(),
                settings.network.prefix(),
            )
            .map_err(|_| TunnelError::Network(settings.network.to_string()))?],
            endpoint: Some(settings.endpoint),
            // Keeps NAT mappings open and lets a restarted server hear from us within this.
            persistent_keepalive: Some(PERSISTENT_KEEPALIVE_SECS),
        };
        let unspecified: SocketAddr = match settings.endpoint {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let tunnel =
            Tunnel::start_with(&settings.private_key, unspecified, inside, &[server]).await?;
        Ok(Arc::new(Self {
            tunnel,
            stack,
            ai: settings.ai,
            server_public_key: settings.server_public_key,
        }))
    }

    /// Handshake age and traffic with the server.
    pub async fn status(&self) -> ClientStatus {
        let traffic: Option<PeerTraffic> = self
            .tunnel
            .traffic()
            .await
            .into_iter()
            .find(|t| t.public_key == self.server_public_key);
        ClientStatus {
            since_handshake: traffic.and_then(|t| t.since_handshake),
            rx_bytes: traffic.map_or(0, |t| t.rx_bytes),
            tx_bytes: traffic.map_or(0, |t| t.tx_bytes),
        }
    }

    /// Opens a connection to the AI endpoint through the tunnel.
    pub async fn connect_ai(&self) -> std::io::Result<crate::netstack::TcpStream> {
        match &self.stack {
            Some(stack) => stack.connect_tcp(self.ai).await,
            None => Err(std::io::Error::other(format!(
                "the tunnel runs on a kernel interface: connect to {} directly",
                self.ai
            ))),
        }
    }

    /// Forwards every connection accepted on `local` to the AI endpoint until `shutdown`.
    pub async fn forward(self: Arc<Self>, local: TcpListener, shutdown: CancellationToken) {
        loop {
            let (mut inbound, from) = tokio::select! {
                accepted = local.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "local accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = shutdown.cancelled() => break,
            };
            let _ = inbound.set_nodelay(true);
            let client = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut outbound = match client.connect_ai().await {
                    Ok(stream) => stream,
                    Err(err) => {
                        tracing::warn!(error = %err, %from, "cannot reach the AI endpoint through the tunnel");
                        return;
                    }
                };
                tokio::select! {
                    copied = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {
                        if let Err(err) = copied {
                            tracing::debug!(error = %err, "forwarded connection ended with an error");
                        }
                    }
                    () = shutdown.cancelled() => {}
                }
            });
        }
    }

    /// Stops the tunnel.
    pub async fn stop(self: Arc<Self>) {
        self.tunnel.suspend().await;
        if let Some(stack) = &self.stack {
            stack.shutdown();
        }
        match Arc::try_unwrap(self) {
            Ok(client) => client.tunnel.stop().await,
            Err(_) => tracing::debug!(
                "client tunnel still in use at stop; its tasks end with the process"
            ),
        }
    }
}
