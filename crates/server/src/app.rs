//! The assembled server: store, data plane, admin API and listeners, and the tasks that run them.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use proxy::{Gateway, GatewaySettings, UsageSink};
use store::Store;
use tokio::{net::TcpListener, sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    admin,
    config::{Config, Source},
    data_dir, provision,
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
        provision::apply_config(&store, &config, env)
            .await
            .context("cannot apply the config file")?;
        let signer =
            provision::signer(&store, &config.stamping.issuer, config.stamping.assertion_ttl)
                .await?;

        let verifier = match &config.oidc.issuer {
            Some(issuer) => {
                let mut settings =
                    identity::OidcSettings::new(issuer.clone(), config.oidc.audiences.clone());
                settings.groups_claim = config.oidc.groups_claim.clone();
                Some(identity::TokenVerifier::new(settings).context("invalid [oidc] settings")?)
            }
            None => {
                tracing::warn!("no [oidc] issuer configured: the AI endpoint cannot identify callers and answers 401");
                None
            }
        };
        let (sink, usage_rx) = UsageSink::new(USAGE_CHANNEL);
        let settings = GatewaySettings {
            max_request_bytes: config.limits.max_request_bytes,
            connect_timeout: config.limits.connect_timeout,
            response_timeout: config.limits.response_timeout,
            stream_idle_timeout: config.limits.stream_idle_timeout,
            disconnect_drain_timeout: config.limits.disconnect_drain_timeout,
        };
        let gateway = Gateway::new(settings, verifier, sink.clone(), Some(signer.clone()));
        let snapshot = provision::build_snapshot(&store).await?;
        let history = provision::history(&store, &snapshot).await?;
        tracing::info!(records = history.len(), "budget counters rebuilt from usage records");
        gateway.install(snapshot, Some(&history));
        gateway.install_directory(provision::directory(&store).await?);

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
        let (scim_store, scim_gateway) = (store.clone(), Arc::downgrade(&gateway));
        let scim = control::scim_router(control::ScimState {
            store: store.clone(),
            on_change: Arc::new(move || {
                let (store, gateway) = (scim_store.clone(), scim_gateway.clone());
                Box::pin(async move {
                    let Some(gateway) = gateway.upgrade() else { return };
                    if let Err(err) = reload_directory(&store, &gateway).await {
                        tracing::error!(
                            error = format!("{err:#}"),
                            "could not apply a SCIM change to the data plane"
                        );
                    }
                })
            }),
        });

        let ai = match config.listen.ai {
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
        if let Some(listener) = admin_tcp {
            tracing::info!(addr = %listener.local_addr()?, "admin listener listening");
            let router = admin::tcp_router_from(public.clone(), me.clone(), scim, remote_admin);
            tasks.spawn(admin::run_admin(listener, router, shutdown.clone(), "admin tcp"));
        }
        if let Some(listener) = admin_socket {
            tracing::info!(path = %socket_path.as_deref().map(|p| p.display().to_string()).unwrap_or_default(), "admin API on Unix socket");
            let router = control.merge(me).merge(public);
            tasks.spawn(admin::run_admin(listener, router, shutdown.clone(), "admin socket"));
        }
        tasks.spawn(run_snapshot_reloader(
            store.clone(),
            gateway.clone(),
            changed,
            shutdown.clone(),
        ));

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
    store: Store,
    gateway: Arc<Gateway>,
    changed: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = changed.notified() => {}
            () = shutdown.cancelled() => return,
        }
        match reload(&store, &gateway).await {
            Ok(()) => tracing::info!("configuration reloaded"),
            Err(err) => tracing::error!(
                error = format!("{err:#}"),
                "could not reload configuration; keeping the previous one"
            ),
        }
    }
}

/// Builds a new snapshot; when its limits differ, rebuilds the counters from the records too.
async fn reload(store: &Store, gateway: &Gateway) -> anyhow::Result<()> {
    let snapshot = provision::build_snapshot(store).await?;
    if gateway.limits_changed(&snapshot) {
        let history = provision::history(store, &snapshot).await?;
        gateway.install(snapshot, Some(&history));
    } else {
        gateway.install(snapshot, None);
    }
    reload_directory(store, gateway).await
}

/// Replaces the data plane's SCIM directory; streams of people who lost access are cut.
async fn reload_directory(store: &Store, gateway: &Gateway) -> anyhow::Result<()> {
    gateway.install_directory(provision::directory(store).await?);
    Ok(())
}
