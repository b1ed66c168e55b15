//! Mock OIDC identity provider: discovery, JWKS and token minting for hermetic tests.
//!
//! `MockIdp::start()` binds `127.0.0.1:0` and serves
//! `/.well-known/openid-configuration` and `/jwks`. It holds signing keys (ECDSA P-256 by
//! default; P-384, Ed25519, RS256 and PS256 on request), rotates them, mints tokens from a
//! [`TokenSpec`], mints attack tokens (`alg: none`, HS256) and counts JWKS fetches so that tests
//! can assert a verifier's refresh rate limit. It can be stopped and restarted on the same port
//! to play an IdP that is down.

mod keys;
mod rsa_keys;
mod token;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use keys::SigningAlg;
pub use token::{TokenSpec, DEFAULT_AUDIENCE, DEFAULT_LIFETIME_SECS};

use keys::SigningKey;
use token::KidChoice;

/// Path of the JWKS document below the issuer.
pub const JWKS_PATH: &str = "/jwks";

/// What happens to the previous signing key on rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldKey {
    /// Still published in the JWKS (tokens it signed keep verifying): a graceful rotation.
    Keep,
    /// Removed from the JWKS: tokens it signed must be refused once a verifier refreshes.
    Drop,
}

/// A running mock OIDC provider. Dropping it stops the server.
pub struct MockIdp {
    state: Arc<IdpState>,
    addr: SocketAddr,
    server: Mutex<Option<Server>>,
}

struct Server {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

struct IdpState {
    issuer: String,
    keys: Mutex<KeyRing>,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
    unavailable: AtomicBool,
    discovery_issuer: Mutex<Option<String>>,
}

struct KeyRing {
    current: Arc<SigningKey>,
    published: Vec<Arc<SigningKey>>,
    /// Number of keys generated so far: names kids and picks RSA test keys.
    generated: usize,
}

impl KeyRing {
    fn new(alg: SigningAlg) -> Self {
        let current = Arc::new(SigningKey::generate(alg, kid_for(0), 0));
        Self { published: vec![current.clone()], current, generated: 1 }
    }

    fn rotate(&mut self, alg: SigningAlg, old: OldKey) -> String {
        let key = Arc::new(SigningKey::generate(alg, kid_for(self.generated), self.generated));
        self.generated += 1;
        if old == OldKey::Drop {
            let old_kid = self.current.kid.clone();
            self.published.retain(|k| k.kid != old_kid);
        }
        self.published.push(key.clone());
        self.current = key;
        self.current.kid.clone()
    }
}

fn kid_for(n: usize) -> String {
    format!("mock-key-{n}")
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MockIdp {
    /// Starts an IdP signing with ES256. Panics if it cannot bind a local port.
    pub async fn start() -> Self {
        Self::start_with(SigningAlg::Es256).await
    }

    /// Starts an IdP whose first signing key uses `alg`.
    pub async fn start_with(alg: SigningAlg) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("mock IdP: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("mock IdP: local address");
        let state = Arc::new(IdpState {
            issuer: format!("http://{addr}"),
            keys: Mutex::new(KeyRing::new(alg)),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
            unavailable: AtomicBool::new(false),
            discovery_issuer: Mutex::new(None),
        });
        let server = serve(listener, state.clone());
        Self { state, addr, server: Mutex::new(Some(server)) }
    }

    /// The issuer, which is also the base URL: `http://127.0.0.1:<port>`.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The JWKS URL announced by discovery.
    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_PATH}", self.state.issuer)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kid of the key that signs new tokens.
    pub fn current_kid(&self) -> String {
        lock(&self.state.keys).current.kid.clone()
    }

    /// The kids currently published in the JWKS.
    pub fn published_kids(&self) -> Vec<String> {
        lock(&self.state.keys).published.iter().map(|k| k.kid.clone()).collect()
    }

    /// Starts signing with a new key of the current algorithm; returns its kid.
    pub fn rotate_key(&self, old: OldKey) -> String {
        let mut keys = lock(&self.state.keys);
        let alg = keys.current.alg;
        keys.rotate(alg, old)
    }

    /// Starts signing with a new key of algorithm `alg`; returns its kid.
    pub fn rotate_key_to(&self, alg: SigningAlg, old: OldKey) -> String {
        lock(&self.state.keys).rotate(alg, old)
    }

    /// Number of requests to the JWKS endpoint so far (served or refused).
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Number of requests to the discovery endpoint so far (served or refused).
    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// While set, every endpoint answers 503 (requests are still counted).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Makes discovery announce a different `issuer` than the real one (`None` restores it).
    pub fn set_discovery_issuer(&self, issuer: Option<String>) {
        *lock(&self.state.discovery_issuer) = issuer;
    }

    /// Stops serving: connections to the port are refused until [`MockIdp::restart`].
    pub async fn stop(&self) {
        let server = lock(&self.server).take();
        if let Some(Server { shutdown, mut task }) = server {
            let _ = shutdown.send(());
            if tokio::time::timeout(Duration::from_secs(1), &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    /// Serves again on the same port, with the same keys and counters. Panics if the port was
    /// taken in the meantime.
    pub async fn restart(&self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.expect("mock IdP: rebind its port");
        *lock(&self.server) = Some(serve(listener, self.state.clone()));
    }

    /// Mints a token signed by the current key (or a never-published one, see
    /// [`TokenSpec::signed_with_unknown_key`]).
    pub fn token(&self, spec: TokenSpec) -> String {
        let current = lock(&self.state.keys).current.clone();
        let key = if spec.unknown_key {
            // A different key of the same algorithm (for RSA: the next fixed test key).
            let rsa_index = lock(&self.state.keys).generated;
            Arc::new(SigningKey::generate(current.alg, current.kid.clone(), rsa_index))
        } else {
            current
        };
        let mut header = jsonwebtoken::Header::new(key.alg.jwt_algorithm());
        header.kid = header_kid(&spec, &key.kid);
        let claims = spec.claims(&self.state.issuer, SystemTime::now());
        jsonwebtoken::encode(&header, &claims, &key.encoding).expect("mock IdP: sign token")
    }

    /// An unsigned token: header `{"alg":"none"}` (with the current kid) and an empty signature.
    pub fn alg_none_token(&self, spec: TokenSpec) -> String {
        let header = self.attack_header("none", &spec);
        let claims = spec.claims(&self.state.issuer, SystemTime::now());
        format!("{}.{}.", keys::segment(&header), keys::segment(&claims))
    }

    /// A token MACed with HS256 under `secret`, carrying the current kid: the classic
    /// algorithm-confusion attack when `secret` is the public key.
    pub fn hs256_token(&self, spec: TokenSpec, secret: &[u8]) -> String {
        let header = self.attack_header("HS256", &spec);
        let claims = spec.claims(&self.state.issuer, SystemTime::now());
        keys::hs256_jws(&header, &claims, secret)
    }

    /// The public JWK (as published) of the current key.
    pub fn current_jwk(&self) -> Value {
        lock(&self.state.keys).current.jwk.clone()
    }

    fn attack_header(&self, alg: &str, spec: &TokenSpec) -> Value {
        let kid = header_kid(spec, &self.current_kid());
        let mut header = json!({ "alg": alg, "typ": "JWT" });
        if let (Some(kid), Some(map)) = (kid, header.as_object_mut()) {
            map.insert("kid".into(), Value::String(kid));
        }
        header
    }
}

fn header_kid(spec: &TokenSpec, signing_kid: &str) -> Option<String> {
    match &spec.kid {
        KidChoice::Signing => Some(signing_kid.to_owned()),
        KidChoice::Custom(kid) => Some(kid.clone()),
        KidChoice::Omit => None,
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        if let Some(server) = lock(&self.server).take() {
            server.task.abort();
        }
    }
}

impl std::fmt::Debug for MockIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockIdp").field("issuer", &self.state.issuer).finish_non_exhaustive()
    }
}

fn serve(listener: TcpListener, state: Arc<IdpState>) -> Server {
    let (shutdown, stopped) = oneshot::channel::<()>();
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route(JWKS_PATH, get(jwks))
        .with_state(state);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Server { shutdown, task }
}

async fn discovery(State(state): State<Arc<IdpState>>) -> Response {
    state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let announced = lock(&state.discovery_issuer).clone().unwrap_or_else(|| state.issuer.clone());
    let base = &state.issuer;
    Json(json!({
        "issuer": announced,
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "device_authorization_endpoint": format!("{base}/device/auth"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
        "grant_types_supported": [
            "authorization_code",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<IdpState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys: Vec<Value> = lock(&state.keys).published.iter().map(|k| k.jwk.clone()).collect();
    Json(json!({ "keys": keys })).into_response()
}
