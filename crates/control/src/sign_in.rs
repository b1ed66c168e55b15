//! Sign-in: the token issuer behind `agentnet login`, `agentnet enroll` and every session.
//!
//! agentnet issues its own opaque session tokens (`agentnet_at_…` access, `agentnet_rt_…`
//! refresh), whoever vouched for the caller: the company IdP (sign-in brokered by this server,
//! so the CLI talks only to agentnet), a local account (the embedded IdP, used when no external
//! IdP is configured), or a setup key (agents). The store keeps only SHA-256 digests of the
//! tokens and, sealed, the IdP's refresh token; the data plane's [`SessionTable`] answers "whose
//! token is this" with a hash and a map lookup, and forgets a revoked session at once.
//!
//! Routes (under [`api_types::AUTH_PREFIX`], on the admin listener, no authentication):
//! - `POST /auth/device`: RFC 8628 device authorization. External IdP: started at the IdP, whose
//!   user code and page the person uses. Local accounts: our own code and page (`/auth/activate`).
//! - `GET /auth/authorize`: auth code + PKCE (RFC 7636) for a CLI's loopback redirect (RFC 8252):
//!   redirects to the IdP (which returns to `/auth/callback`), or shows the local sign-in form.
//! - `POST /auth/token`: the device-code, authorization-code and refresh-token grants. A refresh
//!   re-checks the person with the IdP (or the local account, or the agent record) and rotates
//!   the refresh token.
//! - `POST /auth/revoke` (RFC 7009) and `POST /auth/enroll` (setup key → agent session).
//!
//! Errors are RFC 6749 §5.2 JSON ([`api_types::OAuthError`]); pages are small self-contained
//! HTML. Pending sign-ins (device codes, authorization codes) live in memory for minutes: a
//! restart only means signing in again. Every sign-in, enrollment, sign-out and revocation is in
//! the audit log, with the session as its target.

mod authorize;
mod device;
mod devices;
mod enroll;
mod issue;
mod oauth;
mod pages;
mod pending;
mod throttle;
mod token;

#[cfg(test)]
mod tests;

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use axum::{
    routing::{get, post},
    Router,
};
use domain::Principal;
use identity::{IdpClient, SessionTable, TokenVerifier};

pub use devices::DeviceRecheck;
pub(crate) use issue::{actor_kind, now_ms, revoke_sessions, session_to_dto};
pub use pending::MAX_PENDING;

/// A future the server runs after a change that the data plane must see (a new agent, a
/// deactivated account); the response waits for it.
pub type AfterChange =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> + Send + Sync>;

/// Applies what the server knows beyond the IdP's word to a person who signs in or refreshes
/// (SCIM directory: current groups, deactivation). `None`: the person may not sign in.
pub type Admit = Arc<dyn Fn(Principal) -> Option<Principal> + Send + Sync>;

/// Who vouches for people.
#[derive(Clone)]
pub enum IdentitySource {
    /// The company IdP, whose access tokens `verifier` checks (as on the AI endpoint). With a
    /// `broker`, agentnet signs people in through it (`agentnet login`); without, people present
    /// the IdP's tokens themselves and only agents (setup keys) get agentnet sessions.
    External { verifier: TokenVerifier, broker: Option<Broker> },
    /// No external IdP: local accounts with passwords (argon2id), managed in the admin API.
    Local,
}

/// The OAuth client agentnet signs people in with at the external IdP.
#[derive(Clone)]
pub struct Broker {
    pub client: IdpClient,
    /// Scopes requested, space-separated.
    pub scope: String,
    /// Checks the IdP's ID tokens: same issuer, audience = our client id.
    pub id_tokens: TokenVerifier,
}

impl IdentitySource {
    pub fn is_local(&self) -> bool {
        matches!(self, IdentitySource::Local)
    }
}

/// Lifetimes and the URL people and CLIs reach this server at.
#[derive(Debug, Clone)]
pub struct SignInSettings {
    /// The admin listener as clients reach it (`https://agentnet.corp.example`), without a
    /// trailing `/`: the base of verification pages and of the IdP callback.
    pub public_url: String,
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// A refresh token unused for this long expires.
    pub refresh_idle: Duration,
    /// A session ends this long after sign-in, refreshed or not: then a fresh sign-in is needed.
    pub session_lifetime: Duration,
    /// How long a device code or a browser sign-in may stay pending.
    pub pending_ttl: Duration,
    /// The polling interval given to device-flow clients (local accounts).
    pub device_interval: Duration,
    /// How long after a rotation a second use of the old refresh token is only refused (a
    /// client retrying a refresh whose answer it lost); later, it revokes the session (theft).
    pub reuse_grace: Duration,
}

impl SignInSettings {
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_idle: Duration::from_secs(14 * 86_400),
            session_lifetime: Duration::from_secs(30 * 86_400),
            pending_ttl: Duration::from_secs(10 * 60),
            device_interval: Duration::from_secs(2),
            reuse_grace: Duration::from_secs(10),
        }
    }
}

/// What the sign-in handlers share. Cheap to clone.
#[derive(Clone)]
pub struct SignInState {
    inner: Arc<Inner>,
    /// The WireGuard overlay, when the server runs one ([`SignInState::with_overlay`]).
    overlay: Option<Arc<crate::OverlayInfo>>,
}

struct Inner {
    store: store::Store,
    sessions: Arc<SessionTable>,
    source: IdentitySource,
    settings: SignInSettings,
    admit: Admit,
    after_change: AfterChange,
    pending: pending::Pending,
    /// Bounds concurrent password checks: argon2id costs tens of milliseconds of one core
    /// each, and a flood of sign-in attempts must not starve the server.
    password_slots: Arc<tokio::sync::Semaphore>,
    /// Wrong passwords per login, to slow online guessing.
    throttle: throttle::Throttle,
}

impl SignInState {
    pub fn new(
        store: store::Store,
        sessions: Arc<SessionTable>,
        source: IdentitySource,
        settings: SignInSettings,
        admit: Admit,
        after_change: AfterChange,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                sessions,
                source,
                settings,
                admit,
                after_change,
                pending: pending::Pending::default(),
                password_slots: Arc::new(tokio::sync::Semaphore::new(2)),
                throttle: throttle::Throttle::default(),
            }),
            overlay: None,
        }
    }

    /// Turns on device registration (`/api/v1/me/peers`): peers get addresses from
    /// `overlay.network` and tunnel configurations pointing at its endpoint. Set it before
    /// cloning the state into routers: clones made earlier do not see it.
    pub fn with_overlay(mut self, overlay: crate::OverlayInfo) -> Self {
        self.overlay = Some(Arc::new(overlay));
        self
    }

    /// The overlay's settings; `None` when the server runs none.
    pub(crate) fn overlay(&self) -> Option<&crate::OverlayInfo> {
        self.overlay.as_deref()
    }

    /// After sessions were revoked: their overlay peers were revoked with them (in the store),
    /// so with an overlay the server must reconcile its endpoint before the answer goes out.
    pub(crate) async fn sessions_ended(&self) {
        if self.overlay.is_some() {
            self.after_change().await;
        }
    }

    pub(crate) fn store(&self) -> &store::Store {
        &self.inner.store
    }

    pub(crate) fn sessions(&self) -> &SessionTable {
        &self.inner.sessions
    }

    pub(crate) fn source(&self) -> &IdentitySource {
        &self.inner.source
    }

    /// The external IdP to broker a sign-in to; `None` with local accounts.
    pub(crate) fn broker(&self) -> Result<Option<(&Broker, &TokenVerifier)>, oauth::Failure> {
        match &self.inner.source {
            IdentitySource::Local => Ok(None),
            IdentitySource::External { verifier, broker: Some(broker) } => Ok(Some((broker, verifier))),
            IdentitySource::External { broker: None, .. } => Err(oauth::Failure::new(
                http::StatusCode::NOT_FOUND,
                "unsupported_grant_type",
                "sign-in through agentnet is not configured on this server (set [oidc] client_id); present your identity provider's access token instead",
            )),
        }
    }

    pub(crate) fn settings(&self) -> &SignInSettings {
        &self.inner.settings
    }

    pub(crate) fn admit(&self, principal: Principal) -> Option<Principal> {
        (self.inner.admit)(principal)
    }

    pub(crate) async fn after_change(&self) {
        (self.inner.after_change)().await;
    }

    pub(crate) fn pending(&self) -> &pending::Pending {
        &self.inner.pending
    }

    /// Signs a person in with a local account: checks `password` for `login` (username or
    /// email) off the async threads, at most two at a time, doing the same work for an unknown
    /// login so that the time taken does not tell whether an account exists; then applies the
    /// directory. After too many wrong passwords for one login, attempts are refused unchecked
    /// for a while (`throttle`). `Ok(None)`: wrong login or password, a deactivated account, or
    /// a throttled login. `Err`: the page
    /// to show when the check itself failed.
    pub(crate) async fn sign_in_local(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<Principal>, axum::response::Response> {
        let found = match self.inner.store.local_user_for_login(login.trim()).await {
            Ok(found) => found,
            Err(err) => {
                tracing::error!(error = %crate::error::chain(&err), "cannot read a local account");
                return Err(pages::message(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not check the password; see its log.",
                ));
            }
        };
        // Counted per account, whichever name it was given by (an unknown login by itself).
        let account = found.as_ref().map_or_else(|| login.to_owned(), |(u, _)| u.username.clone());
        if !self.inner.throttle.allows(&account, std::time::Instant::now()) {
            let shown: String = login.chars().filter(|c| !c.is_control()).take(64).collect();
            tracing::warn!(login = %shown, "local sign-in refused: too many wrong passwords");
            return Ok(None);
        }
        // The permit moves into the blocking task: a client that hangs up cannot free it while
        // its hash is still being computed.
        let Ok(slot) = self.inner.password_slots.clone().acquire_owned().await else {
            return Ok(None);
        };
        let password = password.to_owned();
        let hash = found.as_ref().map(|(_, hash)| hash.clone());
        let verified = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            identity::verify_password(&password, hash.as_deref())
        })
        .await
        .unwrap_or(false);
        let admitted = found
            .filter(|(user, _)| verified && user.active)
            .and_then(|(user, _)| self.admit(local_principal(&user)));
        if admitted.is_some() {
            self.inner.throttle.succeeded(&account);
        } else {
            self.inner.throttle.failed(&account, std::time::Instant::now());
            let login: String = login.chars().filter(|c| !c.is_control()).take(64).collect();
            tracing::info!(%login, "local sign-in refused: wrong login or password, or deactivated");
        }
        Ok(admitted)
    }

    /// The page to show on a local-accounts route when this server signs people in through an
    /// external IdP instead.
    pub(crate) fn local_only(&self) -> Option<axum::response::Response> {
        (!self.inner.source.is_local()).then(|| {
            pages::message(
                http::StatusCode::NOT_FOUND,
                "Sign-in happens at your identity provider",
                "This server signs people in through the company identity provider, not with local accounts; use the link agentnet login printed.",
            )
        })
    }
}

/// The sign-in routes, under `/auth`.
pub fn sign_in_router(state: SignInState) -> Router {
    let auth = |path: &str| format!("{}{path}", api_types::AUTH_PREFIX);
    Router::new()
        .route(&auth("/device"), post(device::start))
        .route(&auth("/activate"), get(device::activate_page).post(device::activate))
        .route(&auth("/authorize"), get(authorize::start).post(authorize::local_sign_in))
        .route(&auth("/callback"), get(authorize::callback))
        .route(&auth("/token"), post(token::token))
        .route(&auth("/revoke"), post(token::revoke))
        .route(&auth("/enroll"), post(enroll::enroll))
        // Forms and small JSON bodies only.
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

/// The principal of a local account.
pub(crate) fn local_principal(user: &store::LocalUser) -> Principal {
    Principal::user(format!("local:{}", user.username), user.email.clone(), user.groups.clone())
}

/// The local username of a session subject (`local:<username>`).
pub(crate) fn local_username(subject: &str) -> Option<&str> {
    subject.strip_prefix("local:")
}
