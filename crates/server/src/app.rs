//! The assembled server: store, data plane, admin API and listeners, and the tasks that run them.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Weak},
};

use anyhow::Context as _;
use proxy::{Gateway, GatewaySettings, UsageSink};
use store::Store;
use tokio::{net::TcpListener, sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    admin,
    config::{Config, Source},
    data_dir,
    overlay::OverlayEndpoint,
    provision,
};

/// Capacity of the usage-record channel between the data plane and the writer.
const USAGE_CHANNEL: usize = 8192;

/// A built server, listeners bound, ready to [`run`](App::run).
pub struct App {
    store: Store,
    gateway: Arc<Gateway>,
    ai: Option<TcpListener>,
    admin_tcp: Option<TcpListener>,
    admin_socket: Option<tokio::net::UnixListener>,
    socket_path: Option<PathBuf>,
    control: axum::Router,
    /// The self-service view, `/api/v1/me`: on the Unix socket and the admin TCP listener.
    me: axum::Router,
    public: axum::Router,
    /// The SCIM server, `/scim/v2`: on the admin TCP listener only.
    scim: axum::Router,
    /// The admin API for the admin group's members, on the admin TCP listener (if configured).
    remote_admin: Option<axum::Router>,
    /// Sign-in (`/auth`): on the admin TCP listener.
    sign_in: axum::Router,
    sessions: Arc<identity::SessionTable>,
    /// The WireGuard overlay, when `[overlay] enabled`.
    overlay: Option<Arc<OverlayEndpoint>>,
    /// The overlay's DNS domain, when its DNS responder is on.
    overlay_dns: Option<String>,
    /// With the overlay: re-checks the owners of devices (a tunnel has no token to expire).
    device_rechecks: Option<control::SignInState>,
    reloader: Reloader,
    changed: Arc<Notify>,
    usage_rx: tokio::sync::mpsc::Receiver<store::UsageRecord>,
    sink: UsageSink,
}

impl App {
    /// Opens the data directory and store, applies the config, binds listeners and loads the
    /// first snapshot.
    pub async fn build(config: Config, env: &dyn Source) -> anyhow::Result<App> {
        data_dir::ensure(&config.data_dir)?;
        let master = data_dir::master_key(&config.data_dir)?;
        let store = match config.database_path() {
            Some(path) => Store::open(&path, &master)
                .await
                .with_context(|| format!("cannot open database {}", path.display()))?,
            None => Store::in_memory(&master).await.context("cannot open in-memory database")?,
        };
        let before = control::record_snapshots(&store).await?;
        provision::apply_config(&store, &config, env)
            .await
            .context("cannot apply the config file")?;
        let after = control::record_snapshots(&store).await?;
        let changed = control::audit_changes(
            &store,
            &before,
            &after,
            store::ActorKind::System,
            "config-file",
        )
        .await?;
        if changed > 0 {
            tracing::info!(records = changed, "the config file changed records; see the audit log");
        }
        let signer =
            provision::signer(&store, &config.stamping.issuer, config.stamping.assertion_ttl)
                .await?;

        let verifier: Option<identity::TokenVerifier> = match &config.oidc.issuer {
            Some(issuer) => {
                let mut settings =
                    identity::OidcSettings::new(issuer.clone(), config.oidc.audiences.clone());
                settings.groups_claim = config.oidc.groups_claim.clone();
                Some(identity::TokenVerifier::new(settings).context("invalid [oidc] settings")?)
            }
            None => {
                tracing::info!("no [oidc] issuer configured: people sign in with local accounts (agentnet admin users …, then agentnet login)");
                None
            }
        };
        let local_accounts = verifier.is_none();
        let sessions = Arc::new(identity::SessionTable::new());
        sessions.replace_all(crate::sessions::load(&store).await?);
        let (sink, usage_rx) = UsageSink::new(USAGE_CHANNEL);
        let settings = GatewaySettings {
            max_request_bytes: config.limits.max_request_bytes,
            connect_timeout: config.limits.connect_timeout,
            response_timeout: config.limits.response_timeout,
            stream_idle_timeout: config.limits.stream_idle_timeout,
            disconnect_drain_timeout: config.limits.disconnect_drain_timeout,
            shutdown_grace: config.limits.shutdown_grace,
        };
        let gateway = Gateway::new(
            settings,
            verifier.clone(),
            sessions.clone(),
            sink.clone(),
            Some(signer.clone()),
        );
        let snapshot = provision::build_snapshot(&store).await?;
        let history = provision::history(&store, &snapshot).await?;
        tracing::info!(records = history.len(), "budget counters rebuilt from usage records");
        gateway.install(snapshot, Some(&history));
        gateway.install_directory(provision::directory(&store, local_accounts).await?);
        let overlay = if config.overlay.enabled {
            let key = data_dir::overlay_key(&config.data_dir)?;
            Some(OverlayEndpoint::start(&config.overlay, &key).await?)
        } else {
            None
        };
        let reloader = Reloader {
            store: store.clone(),
            gateway: Arc::downgrade(&gateway),
            sessions: sessions.clone(),
            overlay: overlay.as_ref().map(Arc::downgrade),
            local_accounts,
        };
        // Sessions whose owner went away while the server was down (an agent removed from the
        // config file, a switch to an external IdP) end now, and so do their peers.
        crate::sessions::revoke_lost(&store, &gateway, &sessions, local_accounts).await?;
        if let Some(overlay) = &overlay {
            overlay.reconcile(&store).await?;
        }

        let changed = Arc::new(Notify::new());
        let notify = changed.clone();
        let control = control::router(control::ControlState {
            store: store.clone(),
            on_change: Arc::new(move || notify.notify_one()),
        });
        let me = control::self_service_router(
            store.clone(),
            Arc::new(admin::GatewaySelfService::new(&gateway)),
        );
        // A SCIM change is answered only once the data plane has the new directory, so the
        // next AI request after the response already sees it. A weak reference: the SCIM
        // router must not keep the gateway alive at shutdown.
        let scim_reloader = reloader.clone();
        let scim = control::scim_router(control::ScimState {
            store: store.clone(),
            on_change: Arc::new(move || {
                let reloader = scim_reloader.clone();
                Box::pin(async move {
                    if let Err(err) = reloader.reload_directory().await {
                        tracing::error!(
                            error = format!("{err:#}"),
                            "could not apply a SCIM change to the data plane"
                        );
                    }
                })
            }),
        });

        let ai = match config.ai_listener() {
            Some(addr) => Some(bind(addr, "AI endpoint").await?),
            None => None,
        };
        let admin_tcp = match config.listen.admin {
            Some(addr) => Some(bind(addr, "admin").await?),
            None => None,
        };
        let (admin_socket, socket_path) = if config.database_path().is_some() {
            let path = data_dir::socket_path(&config.data_dir);
            (Some(admin::bind_socket(&path)?), Some(path))
        } else {
            (None, None)
        };
        let public_url = match (&config.login.public_url, &admin_tcp) {
            (Some(url), _) => url.clone(),
            (None, Some(listener)) => format!("http://{}", listener.local_addr()?),
            (None, None) => crate::config::DEFAULT_PUBLIC_URL.to_owned(),
        };
        let overlay_info = match &overlay {
            Some(endpoint) => Some(overlay_info(&config, endpoint).await?),
            None => None,
        };
        let mut sign_in =
            sign_in_state(&config, verifier, &store, &sessions, &gateway, &reloader, public_url)?;
        if let Some(info) = overlay_info {
            sign_in = sign_in.with_overlay(info);
        }
        let control = control.merge(control::accounts_router(sign_in.clone()));
        let remote_admin = config
            .admin
            .group
            .clone()
            .map(|group| admin::remote_admin(control.clone(), &gateway, group));
        Ok(App {
            store,
            gateway,
            ai,
            admin_tcp,
            admin_socket,
            socket_path,
            control,
            me,
            public: admin::public_routes(signer.clone()),
            sign_in: control::sign_in_router(sign_in.clone())
                .merge(control::peers_router(sign_in.clone())),
            sessions,
            overlay_dns: (overlay.is_some() && config.overlay.dns)
                .then(|| config.overlay.domain.clone()),
            device_rechecks: overlay.is_some().then_some(sign_in),
            overlay,
            reloader,
            scim,
            remote_admin,
            changed,
            usage_rx,
            sink,
        })
    }

    pub fn ai_addr(&self) -> Option<SocketAddr> {
        self.ai.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The overlay endpoint, when the overlay is on.
    pub fn overlay(&self) -> Option<&Arc<OverlayEndpoint>> {
        self.overlay.as_ref()
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_tcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn socket_path(&self) -> Option<&std::path::Path> {
        self.socket_path.as_deref()
    }

    /// The store, for tests and embedding programs.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The admin API router (what the Unix socket serves), for in-process tests.
    pub fn admin_router(&self) -> axum::Router {
        self.control.clone().merge(self.me.clone()).merge(self.public.clone())
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests and flushes usage.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App {
            store,
            gateway,
            ai,
            admin_tcp,
            admin_socket,
            socket_path,
            control,
            me,
            public,
            scim,
            remote_admin,
            sign_in,
            sessions,
            overlay,
            overlay_dns,
            device_rechecks,
            reloader,
            changed,
            usage_rx,
            sink,
        } = self;
        let mut tasks = JoinSet::new();
        let writer = tokio::spawn(proxy::run_usage_writer(store.clone(), usage_rx, sink.stats()));
        drop(sink);

        if let Some(listener) = ai {
            tracing::info!(addr = %listener.local_addr()?, "AI endpoint listening");
            tasks.spawn(proxy::run_ai_listener(gateway.clone(), listener, shutdown.clone()));
        }
        if let Some(endpoint) = overlay {
            let port = endpoint.listen_port().await;
            tracing::info!(
                port,
                public_key = %endpoint.public_key(),
                address = %endpoint.server_address(),
                "overlay WireGuard endpoint listening"
            );
            tasks.spawn(endpoint.run(
                gateway.clone(),
                store.clone(),
                overlay_dns,
                shutdown.clone(),
            ));
        }
        if let Some(listener) = admin_tcp {
            tracing::info!(addr = %listener.local_addr()?, "admin listener listening");
            let router = admin::tcp_router_from(
                public.clone().merge(sign_in),
                me.clone(),
                scim,
                remote_admin,
            );
            tasks.spawn(admin::run_admin(listener, router, shutdown.clone(), "admin tcp"));
        }
        if let Some(listener) = admin_socket {
            tracing::info!(path = %socket_path.as_deref().map(|p| p.display().to_string()).unwrap_or_default(), "admin API on Unix socket");
            let router = control.merge(me).merge(public);
            tasks.spawn(admin::run_admin(listener, router, shutdown.clone(), "admin socket"));
        }
        if let Some(sign_in) = device_rechecks {
            tasks.spawn(run_device_rechecks(sign_in, shutdown.clone()));
        }
        tasks.spawn(run_snapshot_reloader(reloader, changed, shutdown.clone()));
        tasks.spawn(crate::sessions::run_pruner(store.clone(), sessions, shutdown.clone()));

        while let Some(done) = tasks.join_next().await {
            if let Err(err) = done {
                tracing::error!(error = %err, "a server task failed");
            }
        }
        // Every request is done: dropping the gateway closes the usage channel, and the writer
        // flushes what is left before the process exits.
        drop(gateway);
        if writer.await.is_err() {
            tracing::error!("usage writer task failed during shutdown");
        }
        store.close().await;
        if let Some(path) = socket_path {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {what} listener"))
}

/// Rebuilds the data plane's snapshot whenever the admin API changes something.
async fn run_snapshot_reloader(
    reloader: Reloader,
    changed: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = changed.notified() => {}
            () = shutdown.cancelled() => return,
        }
        match reloader.reload().await {
            Ok(()) => tracing::info!("configuration reloaded"),
            Err(err) => tracing::error!(
                error = format!("{err:#}"),
                "could not reload configuration; keeping the previous one"
            ),
        }
    }
}

/// How often the server looks for device sessions due for a re-check (each is re-checked once
/// per `[login] access_ttl`).
const DEVICE_RECHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Re-checks the owners of overlay devices with their IdP, account or agent record, as a
/// refreshing client would; see `control::SignInState::recheck_device_sessions`.
async fn run_device_rechecks(sign_in: control::SignInState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(DEVICE_RECHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match sign_in.recheck_device_sessions().await {
            Ok(done) if done.ended > 0 || done.deferred > 0 => tracing::info!(
                current = done.current,
                ended = done.ended,
                deferred = done.deferred,
                "device sessions re-checked"
            ),
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "could not re-check device sessions"),
        }
    }
}

/// Brings the data plane in line with the store after a change. It holds the gateway weakly:
/// the routers that own it must not keep the gateway alive at shutdown.
#[derive(Clone)]
struct Reloader {
    store: Store,
    gateway: Weak<Gateway>,
    sessions: Arc<identity::SessionTable>,
    overlay: Option<Weak<OverlayEndpoint>>,
    local_accounts: bool,
}

impl Reloader {
    /// Builds a new snapshot (rebuilding the counters too when its limits differ), then the
    /// directory.
    async fn reload(&self) -> anyhow::Result<()> {
        let Some(gateway) = self.gateway.upgrade() else { return Ok(()) };
        let snapshot = async {
            let snapshot = provision::build_snapshot(&self.store).await?;
            if gateway.limits_changed(&snapshot) {
                let history = provision::history(&self.store, &snapshot).await?;
                gateway.install(snapshot, Some(&history));
            } else {
                gateway.install(snapshot, None);
            }
            anyhow::Ok(())
        }
        .await;
        drop(gateway);
        // The directory and the overlay follow even if the snapshot could not be rebuilt.
        let directory = self.reload_directory().await;
        snapshot.and(directory)
    }

    /// Replaces the data plane's directory (streams of people who lost access are cut), then
    /// revokes the sessions of people deactivated and agents deleted.
    async fn reload_directory(&self) -> anyhow::Result<()> {
        let Some(gateway) = self.gateway.upgrade() else { return Ok(()) };
        let directory = async {
            gateway
                .install_directory(provision::directory(&self.store, self.local_accounts).await?);
            crate::sessions::revoke_lost(&self.store, &gateway, &self.sessions, self.local_accounts)
                .await
        }
        .await;
        // Peers follow their sessions and owners: revoked ones leave the tunnel now — whether
        // or not the directory could be rebuilt, since a revocation is already in the store.
        let overlay = match self.overlay.as_ref().and_then(Weak::upgrade) {
            Some(overlay) => overlay.reconcile(&self.store).await,
            None => Ok(()),
        };
        directory.and(overlay)
    }
}

/// What devices are told when they register: the server's key and endpoint, the network, DNS.
async fn overlay_info(
    config: &Config,
    endpoint: &OverlayEndpoint,
) -> anyhow::Result<control::OverlayInfo> {
    // The configured endpoint; else the host of an explicit public URL; else (None) the host a
    // device registers through, which it evidently reaches.
    let port = endpoint.listen_port().await;
    let public = match (&config.overlay.endpoint, &config.login.public_url) {
        (Some(public), _) => Some(public.clone()),
        (None, Some(url)) => {
            let uri: http::Uri =
                url.parse().with_context(|| format!("login.public_url '{url}' is not a URL"))?;
            // (An IPv6 host keeps its brackets here.)
            let host = uri.host().context("login.public_url has no host")?;
            Some(format!("{host}:{port}"))
        }
        (None, None) => None,
    };
    Ok(control::OverlayInfo {
        network: config.overlay.network()?,
        server_address: endpoint.server_address(),
        server_public_key: endpoint.public_key().to_base64(),
        endpoint: public,
        listen_port: port,
        domain: config.overlay.domain.clone(),
        dns: config.overlay.dns,
        peer_lifetime: config.overlay.peer_lifetime,
        mtu: overlay::OVERLAY_MTU,
        persistent_keepalive: overlay::PERSISTENT_KEEPALIVE_SECS,
        max_peers_per_owner: config.overlay.max_peers_per_owner,
    })
}

/// The sign-in endpoints' state: who vouches for people (the external IdP, brokered when
/// `[oidc] client_id` is set, or local accounts), lifetimes, and the links to the data plane.
fn sign_in_state(
    config: &Config,
    verifier: Option<identity::TokenVerifier>,
    store: &Store,
    sessions: &Arc<identity::SessionTable>,
    gateway: &Arc<Gateway>,
    reloader: &Reloader,
    public_url: String,
) -> anyhow::Result<control::SignInState> {
    let source = match verifier {
        None => control::IdentitySource::Local,
        Some(verifier) => {
            let broker = match (&config.oidc.issuer, &config.oidc.client_id) {
                (Some(issuer), Some(client_id)) => {
                    let client = identity::IdpClient::new(
                        issuer,
                        identity::ClientCredentials {
                            client_id: client_id.clone(),
                            client_secret: config
                                .oidc
                                .client_secret
                                .clone()
                                .map(secrecy::SecretString::from),
                        },
                    )
                    .context("invalid [oidc] client settings")?;
                    let mut ids = identity::OidcSettings::new(issuer.clone(), [client_id.clone()]);
                    ids.groups_claim = config.oidc.groups_claim.clone();
                    let id_tokens = identity::TokenVerifier::new(ids)
                        .context("invalid [oidc] settings for ID tokens")?;
                    Some(control::Broker { client, scope: config.oidc.scopes.join(" "), id_tokens })
                }
                _ => None,
            };
            control::IdentitySource::External { verifier, broker }
        }
    };
    let mut settings = control::SignInSettings::new(public_url);
    settings.access_ttl = config.login.access_ttl;
    settings.session_lifetime = config.login.session_lifetime;
    settings.refresh_idle = config.login.refresh_idle;
    let admit_gateway = Arc::downgrade(gateway);
    let admit: control::Admit = Arc::new(move |principal| {
        admit_gateway.upgrade().and_then(|gateway| gateway.apply_directory(principal))
    });
    let after = reloader.clone();
    let after_change: control::AfterChange = Arc::new(move || {
        let reloader = after.clone();
        Box::pin(async move {
            if let Err(err) = reloader.reload().await {
                tracing::error!(
                    error = format!("{err:#}"),
                    "could not apply a change to the data plane"
                );
            }
        })
    });
    Ok(control::SignInState::new(
        store.clone(),
        sessions.clone(),
        source,
        settings,
        admit,
        after_change,
    ))
}
