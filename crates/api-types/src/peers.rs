//! Overlay peers: WireGuard devices bound to a person or an agent.
//!
//! A device generates its key pair itself and registers only the public key
//! (`POST /api/v1/me/peers`, with its agentnet session); the answer is a [`TunnelConfig`], the
//! server's half of a wg-quick file, which [`TunnelConfig::wg_quick`] completes with the private
//! key on the device. The private key never travels.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of `POST /api/v1/me/peers`: a device registers its WireGuard public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerRegistration {
    /// A label for the device: 1–64 characters of `A-Z a-z 0-9 . _ -`, e.g. a hostname.
    #[schema(example = "alice-laptop")]
    pub name: String,
    /// The device's WireGuard public key, base64 (`wg pubkey` prints it).
    #[schema(example = "VboEGAIZbjG/eSne9iIuNoolLWhlGqbqHqNzQN5geQM=")]
    pub public_key: String,
}

/// A registered peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeerView {
    pub id: String,
    pub name: String,
    /// `user` or `agent`.
    pub owner_kind: String,
    /// A person's email, an agent's name.
    pub owner: String,
    /// Base64.
    pub public_key: String,
    /// The peer's overlay address, e.g. `100.64.0.2`.
    pub address: String,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    /// The session that registered it (revoking that session revokes the peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339: then the device registers again (`agentnet peer config`, `agentnet up`).
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    /// RFC 3339: the last WireGuard handshake the server saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handshake_at: Option<String>,
    /// Bytes the server received from the peer.
    pub rx_bytes: u64,
    /// Bytes the server sent to the peer.
    pub tx_bytes: u64,
}

/// The answer of `POST /api/v1/me/peers`: the peer and everything a WireGuard client needs but
/// its own private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TunnelConfig {
    pub peer: PeerView,
    /// The interface address, e.g. `100.64.0.2/32`.
    pub address: String,
    /// The server's WireGuard public key, base64.
    pub server_public_key: String,
    /// The server's overlay address: the AI endpoint listens there, port 80.
    pub server_address: String,
    /// The server's WireGuard endpoint, `host:port`.
    pub endpoint: String,
    /// What to route through the tunnel: the overlay network, e.g. `100.64.0.0/10`.
    pub allowed_ips: String,
    /// The overlay's DNS server (the server's overlay address), when it serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    /// The overlay's DNS domain, e.g. `agentnet.internal`.
    pub domain: String,
    /// The AI endpoint through the tunnel, e.g. `http://100.64.0.1` or
    /// `http://ai.agentnet.internal`.
    pub ai_url: String,
    pub mtu: u16,
    /// Seconds between keepalives (keeps NAT mappings open); 0: none.
    pub persistent_keepalive: u16,
}

impl TunnelConfig {
    /// A wg-quick configuration file for this tunnel, with the device's private key (base64)
    /// filled in. Write it where only its owner can read it.
    pub fn wg_quick(&self, private_key_base64: &str) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(format!(
            "# agentnet overlay: peer {} ({}) of {}, until {}",
            self.peer.name, self.peer.id, self.peer.owner, self.peer.expires_at
        ));
        line(format!("# AI endpoint: {}", self.ai_url));
        line("[Interface]".to_owned());
        line(format!("PrivateKey = {private_key_base64}"));
        line(format!("Address = {}", self.address));
        if let Some(dns) = &self.dns {
            if self.domain.is_empty() {
                line(format!("DNS = {dns}"));
            } else {
                line(format!("DNS = {dns}, {}", self.domain));
            }
        }
        if self.mtu > 0 {
            line(format!("MTU = {}", self.mtu));
        }
        line(String::new());
        line("[Peer]".to_owned());
        line(format!("PublicKey = {}", self.server_public_key));
        line(format!("Endpoint = {}", self.endpoint));
        line(format!("AllowedIPs = {}", self.allowed_ips));
        if self.persistent_keepalive > 0 {
            line(format!("PersistentKeepalive = {}", self.persistent_keepalive));
        }
        out
    }
}

/// The body of `PATCH /api/v1/peers/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerRename {
    /// 1–64 characters of `A-Z a-z 0-9 . _ -`.
    pub name: String,
}

/// Query of `GET /api/v1/peers`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PeerQuery {
    /// Only this person's (email) or agent's peers (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Include revoked and expired peers.
    #[serde(default)]
    pub all: bool,
}

#[cfg(test)]
mod tests;
