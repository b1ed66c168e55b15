//! The admin side: the Unix socket in the data directory (owner-only) serving the admin API to
//! the CLI on the server host, and the admin TCP listener serving health and the assertion JWKS.

use std::{path::Path, sync::Arc};

use anyhow::Context as _;
use axum::{response::IntoResponse, routing::get, Json, Router};
use http::StatusCode;
use proxy::AssertionSigner;
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

/// The TCP admin listener. The admin API needs an admin session, which arrives with remote
/// admin sign-in; until then it is served only on the Unix socket.
pub(crate) fn tcp_router_from(public: Router) -> Router {
    public.route("/api/v1/{*rest}", axum::routing::any(remote_admin_unavailable))
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
