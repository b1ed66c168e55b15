//! The fixed sections of the config file: listeners, logging, OIDC, limits, stamping.

use std::{net::SocketAddr, time::Duration};

use anyhow::bail;
use serde::Deserialize;

use super::duration::serde_duration;

/// Listener addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// A plain-TCP AI endpoint (`/v1/messages`, `/v1/chat/completions`, …), where a bearer
    /// token says who calls. Unset: 127.0.0.1:4000 without the overlay, none with it (see
    /// [`Config::ai_listener`](super::Config::ai_listener)).
    #[serde(default)]
    pub ai: Option<SocketAddr>,
    /// Health, the assertion JWKS (`/.well-known/jwks.json`) and, later, sign-in.
    #[serde(default = "default_admin")]
    pub admin: Option<SocketAddr>,
}

/// The plain AI listener's address when the overlay is off and `[listen] ai` is unset.
pub const DEFAULT_AI_LISTENER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4000);

fn default_admin() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 4001)))
}

impl Default for Listen {
    fn default() -> Self {
        Self { ai: None, admin: default_admin() }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// A tracing filter, e.g. `info` or `info,proxy=debug`. `RUST_LOG` wins when set.
    #[serde(default = "default_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

fn default_level() -> String {
    "info".to_owned()
}

impl Default for Log {
    fn default() -> Self {
        Self { level: default_level(), format: LogFormat::Text }
    }
}

/// Who may use the admin API remotely.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Members of this group (from SCIM or the token's groups claim) use the admin API on the
    /// admin listener with their bearer token. Unset: the admin API is only on the Unix socket.
    pub group: Option<String>,
}

/// The company IdP whose tokens identify callers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oidc {
    /// Issuer URL (discovery at `<issuer>/.well-known/openid-configuration`). Unset: no caller
    /// can be identified and the AI endpoint answers 401.
    pub issuer: Option<String>,
    /// Accepted `aud` values of access tokens.
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
    /// Claim holding group names; a dotted path reaches into objects (`realm_access.roles`).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The OAuth client agentnet signs people in with (`agentnet login`, brokered by this
    /// server: device flow and auth code + PKCE, redirect URI `<public_url>/auth/callback`).
    /// Unset: people sign in at the IdP on their own and present its access tokens.
    pub client_id: Option<String>,
    /// The client's secret, for a confidential client (`client_secret_basic`). Prefer the
    /// environment: `AGENTNET__OIDC__CLIENT_SECRET`.
    pub client_secret: Option<String>,
    /// Scopes requested at sign-in; `offline_access` gets the refresh token that lets agentnet
    /// re-check the person at each session refresh.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile", "groups", "offline_access"].map(str::to_owned).to_vec()
}

fn default_audiences() -> Vec<String> {
    vec!["agentnet".to_owned()]
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

impl Default for Oidc {
    fn default() -> Self {
        Self {
            issuer: None,
            audiences: default_audiences(),
            groups_claim: default_groups_claim(),
            client_id: None,
            client_secret: None,
            scopes: default_scopes(),
        }
    }
}

/// Sessions agentnet issues (`agentnet login`, `agentnet enroll`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The admin listener's address as people and CLIs reach it (behind a proxy, its public
    /// URL). Default: `http://` + the admin listen address.
    pub public_url: Option<String>,
    /// Lifetime of an access token; a refresh (silent, by the CLI) re-checks the person.
    #[serde(default = "default_access_ttl", with = "serde_duration")]
    pub access_ttl: Duration,
    /// A session ends this long after sign-in, however often it is refreshed.
    #[serde(default = "default_session_lifetime", with = "serde_duration")]
    pub session_lifetime: Duration,
    /// A refresh token unused for this long expires.
    #[serde(default = "default_refresh_idle", with = "serde_duration")]
    pub refresh_idle: Duration,
}

fn default_access_ttl() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_session_lifetime() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn default_refresh_idle() -> Duration {
    Duration::from_secs(14 * 86_400)
}

impl Default for Login {
    fn default() -> Self {
        Self {
            public_url: None,
            access_ttl: default_access_ttl(),
            session_lifetime: default_session_lifetime(),
            refresh_idle: default_refresh_idle(),
        }
    }
}

impl Login {
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        if self.access_ttl < Duration::from_secs(10) {
            bail!("login.access_ttl must be at least 10s");
        }
        if self.session_lifetime < self.access_ttl {
            bail!("login.session_lifetime must be at least login.access_ttl");
        }
        if self.refresh_idle.is_zero() {
            bail!("login.refresh_idle must be greater than zero");
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("login.public_url '{url}' must start with http:// or https://");
            }
        }
        Ok(())
    }
}

/// Request size limits and timeouts of the data plane.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    #[serde(default = "default_connect_timeout", with = "serde_duration")]
    pub connect_timeout: Duration,
    #[serde(default = "default_response_timeout", with = "serde_duration")]
    pub response_timeout: Duration,
    #[serde(default = "default_stream_idle_timeout", with = "serde_duration")]
    pub stream_idle_timeout: Duration,
    #[serde(default = "default_disconnect_drain_timeout", with = "serde_duration")]
    pub disconnect_drain_timeout: Duration,
    /// How long requests in flight may run on after shutdown begins (SIGTERM) before they are
    /// cut; a cut stream is still drained from upstream and billed.
    #[serde(default = "default_shutdown_grace", with = "serde_duration")]
    pub shutdown_grace: Duration,
}

fn default_max_request_bytes() -> usize {
    32 * 1024 * 1024
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_response_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_stream_idle_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_disconnect_drain_timeout() -> Duration {
    Duration::from_secs(120)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(30)
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: default_max_request_bytes(),
            connect_timeout: default_connect_timeout(),
            response_timeout: default_response_timeout(),
            stream_idle_timeout: default_stream_idle_timeout(),
            disconnect_drain_timeout: default_disconnect_drain_timeout(),
            shutdown_grace: default_shutdown_grace(),
        }
    }
}

impl Limits {
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        if self.max_request_bytes < 1024 {
            bail!("limits.max_request_bytes must be at least 1024");
        }
        for (name, value) in [
            ("connect_timeout", self.connect_timeout),
            ("response_timeout", self.response_timeout),
            ("stream_idle_timeout", self.stream_idle_timeout),
        ] {
            if value.is_zero() {
                bail!("limits.{name} must be greater than zero");
            }
        }
        Ok(())
    }
}

/// The signed identity assertion stamped onto upstream requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamping {
    /// `iss` of assertions.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    #[serde(default = "default_assertion_ttl", with = "serde_duration")]
    pub assertion_ttl: Duration,
}

fn default_issuer() -> String {
    "agentnet".to_owned()
}

fn default_assertion_ttl() -> Duration {
    Duration::from_secs(300)
}

impl Default for Stamping {
    fn default() -> Self {
        Self { issuer: default_issuer(), assertion_ttl: default_assertion_ttl() }
    }
}

/// The WireGuard overlay: the AI endpoint reachable only through tunnels whose peers are bound
/// to people and agents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    #[serde(default)]
    pub enabled: bool,
    /// The WireGuard UDP socket: with the overlay on, the data plane's only exposure.
    #[serde(default = "default_overlay_listen")]
    pub listen: SocketAddr,
    /// Where peers send their handshakes (`host:port`), as written into their configurations.
    /// Default: the host of `[login] public_url` (or of the admin listener) and the listen port.
    pub endpoint: Option<String>,
    /// The overlay network; the server holds its first host address, each peer one /32.
    #[serde(default = "default_overlay_network")]
    pub network: String,
    /// The overlay's DNS domain: the AI endpoint is `ai.<domain>`.
    #[serde(default = "default_overlay_domain")]
    pub domain: String,
    /// Answer DNS queries for the domain at the server's overlay address (UDP port 53).
    #[serde(default = "default_true")]
    pub dns: bool,
    /// A registered device's tunnel ends this long after registration (never after the
    /// session that registered it); `agentnet up` after a fresh login renews it.
    #[serde(default = "default_peer_lifetime", with = "serde_duration")]
    pub peer_lifetime: Duration,
    /// `userspace` (default: no privileges, gotatun + a userspace TCP/IP stack) or `tun` (a
    /// kernel interface and the kernel's TCP/IP stack; needs CAP_NET_ADMIN).
    #[serde(default)]
    pub mode: OverlayMode,
    /// Live registered devices one person or agent may have at a time.
    #[serde(default = "default_max_peers_per_owner")]
    pub max_peers_per_owner: u32,
    /// The kernel interface's name in `tun` mode.
    #[serde(default = "default_overlay_interface")]
    pub interface: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlayMode {
    #[default]
    Userspace,
    Tun,
}

fn default_overlay_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 51820))
}
fn default_overlay_network() -> String {
    overlay::DEFAULT_NETWORK.to_owned()
}
fn default_overlay_domain() -> String {
    "agentnet.internal".to_owned()
}
fn default_max_peers_per_owner() -> u32 {
    16
}
fn default_overlay_interface() -> String {
    "agentnet0".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_peer_lifetime() -> Duration {
    Duration::from_secs(30 * 86_400)
}

impl Default for Overlay {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: default_overlay_listen(),
            endpoint: None,
            network: default_overlay_network(),
            domain: default_overlay_domain(),
            dns: true,
            peer_lifetime: default_peer_lifetime(),
            mode: OverlayMode::default(),
            interface: default_overlay_interface(),
            max_peers_per_owner: default_max_peers_per_owner(),
        }
    }
}

impl Overlay {
    /// The overlay network, parsed.
    pub fn network(&self) -> anyhow::Result<overlay::Ipv4Net> {
        self.network.parse().map_err(|e| anyhow::anyhow!("overlay.network '{}': {e}", self.network))
    }

    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.network()?;
        if self.peer_lifetime < Duration::from_secs(1) {
            bail!("overlay.peer_lifetime must be at least 1s");
        }
        let domain_ok = !self.domain.is_empty()
            && self.domain.len() <= 200
            && self.domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !domain_ok {
            bail!("overlay.domain '{}' is not a DNS domain name", self.domain);
        }
        if let Some(endpoint) = &self.endpoint {
            let port_ok = endpoint.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if !port_ok {
                bail!("overlay.endpoint '{endpoint}' must be host:port");
            }
        }
        let name_ok = !self.interface.is_empty()
            && self.interface.len() < 16
            && self.interface.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            bail!(
                "overlay.interface '{}' is not an interface name (1-15 of A-Z a-z 0-9 - _ .)",
                self.interface
            );
        }
        Ok(())
    }
}
