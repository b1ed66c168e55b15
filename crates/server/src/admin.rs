//! The admin side: the Unix socket in the data directory (owner-only) serving the admin API to
//! the CLI on the server host, and the admin TCP listener serving health, the assertion JWKS,
//! the self-service view (`/api/v1/me`, for any caller with a valid bearer token) and the SCIM
//! server (`/scim/v2`, for the IdP's provisioning client, with the SCIM token).

use std::{
    future::Future,
    path::Path,
    pin::Pin,
    sync::{Arc, Weak},
};

use anyhow::Context as _;
use axum::{response::IntoResponse, routing::get, Json, Router};
use control::{SelfService, SelfServiceError};
use http::{HeaderMap, StatusCode};
use proxy::{AssertionSigner, Gateway};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::data_dir::set_mode;

/// Routes served on every admin listener.
pub(crate) fn public_routes(signer: Arc<AssertionSigner>) -> Router {
    let jwks = signer.jwks();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/.well-known/jwks.json", get(move || async move { Json(jwks) }))
}

/// The self-service view's link to the data plane: callers are identified as on the AI
/// endpoint, and their limits read from the live budget counters.
///
/// It holds the gateway weakly: at shutdown, dropping the last strong reference closes the usage
/// channel so the writer can flush and stop, however many copies of the admin routers are still
/// around.
pub(crate) struct GatewaySelfService(Weak<Gateway>);

impl GatewaySelfService {
    pub(crate) fn new(gateway: &Arc<Gateway>) -> Self {
        Self(Arc::downgrade(gateway))
    }
}

impl SelfService for GatewaySelfService {
    fn identify<'a>(
        &'a self,
        headers: &'a HeaderMap,
    ) -> Pin<Box<dyn Future<Output = Result<domain::Principal, SelfServiceError>> + Send + 'a>>
    {
        Box::pin(async move {
            let Some(gateway) = self.0.upgrade() else {
                return Err(SelfServiceError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting_down",
                    "the server is shutting down",
                ));
            };
            gateway
                .identify(headers)
                .await
                .map_err(|err| SelfServiceError::new(err.status(), err.reason(), err.to_string()))
        })
    }

    fn limits(&self, principal: &domain::Principal) -> Vec<domain::LimitStatus> {
        self.0.upgrade().map(|gateway| gateway.limit_status(principal)).unwrap_or_default()
    }
}

/// The TCP admin listener: `public` routes, the self-service view `me`, the SCIM server `scim`
/// (`/scim/v2`, for the IdP, with its own bearer token) and, when an admin group is configured,
/// the admin API for its members (`remote_admin`). Without one the admin API is served only on
/// the Unix socket. (`/api/v1/me` is a static route, so it wins over the catch-all.)
pub(crate) fn tcp_router_from(
    public: Router,
    me: Router,
    scim: Router,
    remote_admin: Option<Router>,
) -> Router {
    let router = public.merge(me).merge(scim);
    match remote_admin {
        Some(admin) => router.merge(admin),
        None => router.route("/api/v1/{*rest}", axum::routing::any(remote_admin_unavailable)),
    }
}

/// The admin API for members of the admin group, who present their IdP bearer token (as on the
/// AI endpoint). Their changes are audited under their name.
pub(crate) fn remote_admin(control: Router, gateway: &Arc<Gateway>, group: String) -> Router {
    let gate = AdminGate { gateway: Arc::downgrade(gateway), group: Arc::from(group) };
    control.layer(axum::middleware::from_fn_with_state(gate, require_admin))
}

#[derive(Clone)]
struct AdminGate {
    gateway: Weak<Gateway>,
    group: Arc<str>,
}

async fn require_admin(
    axum::extract::State(gate): axum::extract::State<AdminGate>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let refuse = |status, code: &str, message: String| {
        SelfServiceError::new(status, code, message).into_response()
    };
    let Some(gateway) = gate.gateway.upgrade() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down".into(),
        );
    };
    let principal = match gateway.identify(request.headers()).await {
        Ok(principal) => principal,
        Err(err) => return refuse(err.status(), err.reason(), err.to_string()),
    };
    drop(gateway);
    if principal.kind == domain::PrincipalKind::Agent {
        // Agents get their groups from setup keys and admin records; none may administer the
        // server remotely (automation uses the socket on the server host).
        let message = format!("agent '{}' may not use the admin API remotely", principal.name);
        return refuse(StatusCode::FORBIDDEN, "not_an_admin", message);
    }
    if !principal.in_group(&gate.group) {
        let message =
            format!("'{}' is not a member of the admin group '{}'", principal.name, gate.group);
        return refuse(StatusCode::FORBIDDEN, "not_an_admin", message);
    }
    request.extensions_mut().insert(control::Actor::new("admin", principal.name));
    next.run(request).await
}

async fn remote_admin_unavailable() -> impl IntoResponse {
    let body = serde_json::json!({"error": {
        "code": "remote_admin_unavailable",
        "message": "the admin API is served on the server host's Unix socket (agentnet admin …); remote admin sign-in is not enabled",
    }});
    (StatusCode::UNAUTHORIZED, Json(body))
}

/// Binds the admin Unix socket, owner-only, replacing a stale socket file.
pub(crate) fn bind_socket(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        // A socket left by a previous run; a live server would still be answering on it.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another agentnet server is already serving {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot bind admin socket {}", path.display()))?;
    set_mode(path, 0o600)?;
    Ok(listener)
}

/// Serves `router` on an admin listener (Unix socket or TCP) until `shutdown`.
pub(crate) async fn run_admin<L>(
    listener: L,
    router: Router,
    shutdown: CancellationToken,
    what: &'static str,
) where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let served =
        axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    if let Err(err) = served {
        tracing::error!(error = %err, listener = what, "admin listener stopped");
    }
}
