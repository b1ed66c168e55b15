//! A stand-in for a server's admin listener in tests: the sign-in endpoints under `/auth`, the
//! self-service view `/api/v1/me` and device registration `/api/v1/me/peers`, speaking the wire
//! format of `api-types`, on `127.0.0.1:0`. It records every request, rotates refresh tokens as
//! the real one does, answers device-code polls from a script, and hands out overlay addresses
//! from 100.64.0.2 on (the same key registered again keeps its peer).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use api_types::{
    DeviceAuthorization, EnrollRequest, OAuthError, PeerRegistration, PeerView, SelfView,
    SessionIdentity, TokenResponse, TunnelConfig, UsageTotals,
};
use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use crate::session::SessionFile;

/// The device code and user code the fake hands out.
pub(crate) const DEVICE_CODE: &str = "dev-code-1";
pub(crate) const USER_CODE: &str = "BDWP-HQPK";
/// The authorization code the fake's sign-in page issues.
pub(crate) const AUTH_CODE: &str = "auth-code-1";
/// The setup key the fake accepts.
pub(crate) const SETUP_KEY: &str = "agentnet_sk_good";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) path: String,
    /// The query string or the body, decoded into pairs (a JSON body is kept whole under "").
    pub(crate) fields: HashMap<String, String>,
    pub(crate) bearer: Option<String>,
}

#[derive(Default)]
pub(crate) struct FakeState {
    pub(crate) requests: Vec<Recorded>,
    /// What successive device-code polls get: an OAuth error code, or `ok`; `authorization_pending`
    /// once the script is done.
    pub(crate) device_script: VecDeque<&'static str>,
    pub(crate) interval: u64,
    pub(crate) expires_in: u64,
    /// Refresh and access tokens the fake accepts.
    pub(crate) refresh_tokens: HashSet<String>,
    pub(crate) access_tokens: HashSet<String>,
    issued: u32,
    /// The PKCE challenge and redirect URI the sign-in page was opened with.
    pub(crate) challenge: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    /// Send the browser back with a different `state` than it came with.
    pub(crate) tamper_state: bool,
    /// Refuse every access token at `/api/v1/me`.
    pub(crate) refuse_all: bool,
    /// Registered devices, in order of registration.
    pub(crate) peers: Vec<PeerView>,
    /// Answer `/api/v1/me/peers` as a server without an overlay does.
    pub(crate) overlay_disabled: bool,
}

pub(crate) struct FakeServer {
    pub(crate) url: String,
    pub(crate) state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = Arc<Mutex<FakeState>>;

impl FakeServer {
    pub(crate) async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(FakeState {
            interval: 1,
            expires_in: 600,
            ..FakeState::default()
        }));
        let router = Router::new()
            .route("/auth/device", post(device))
            .route("/auth/token", post(token))
            .route("/auth/authorize", get(authorize))
            .route("/auth/revoke", post(revoke))
            .route("/auth/enroll", post(enroll))
            .route("/api/v1/me", get(me))
            .route("/api/v1/me/peers", get(list_peers).post(register_peer))
            .route("/api/v1/me/peers/{id}", axum::routing::delete(remove_peer))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, state, task }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    /// The requests to `path`.
    pub(crate) fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.lock().requests.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// Issues a session (as a sign-in would) and returns its tokens.
    pub(crate) fn issue(&self) -> TokenResponse {
        issue(&mut self.lock(), alice())
    }
}

pub(crate) fn alice() -> SessionIdentity {
    SessionIdentity {
        kind: "user".into(),
        name: "alice@example.com".into(),
        groups: vec!["engineering".into(), "sre".into()],
        session_id: "ses_1".into(),
        session_expires_at: "2030-01-01T00:00:00.000Z".into(),
    }
}

fn issue(state: &mut FakeState, identity: SessionIdentity) -> TokenResponse {
    state.issued += 1;
    let n = state.issued;
    let tokens = TokenResponse {
        access_token: format!("agentnet_at_{n}"),
        token_type: "Bearer".into(),
        expires_in: 900,
        refresh_token: format!("agentnet_rt_{n}"),
        identity,
    };
    state.access_tokens.insert(tokens.access_token.clone());
    state.refresh_tokens.insert(tokens.refresh_token.clone());
    tokens
}

/// RFC 7636 S256, computed here rather than with the code under test.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
}

fn fields(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

fn record(state: &Shared, path: &str, fields: HashMap<String, String>, headers: &HeaderMap) {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    state.lock().unwrap().requests.push(Recorded { path: path.into(), fields, bearer });
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = OAuthError { error: error.into(), error_description: Some(description.into()) };
    (status, Json(body)).into_response()
}

async fn device(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    record(&state, "/auth/device", fields(&String::from_utf8_lossy(&body)), &headers);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
    let s = state.lock().unwrap();
    Json(DeviceAuthorization {
        device_code: DEVICE_CODE.into(),
        user_code: USER_CODE.into(),
        verification_uri: format!("http://{host}/auth/activate"),
        verification_uri_complete: Some(format!("http://{host}/auth/activate?code={USER_CODE}")),
        expires_in: s.expires_in,
        interval: s.interval,
    })
    .into_response()
}

async fn token(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = fields(&String::from_utf8_lossy(&body));
    record(&state, "/auth/token", form.clone(), &headers);
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut s = state.lock().unwrap();
    match get("grant_type").as_str() {
        api_types::DEVICE_CODE_GRANT => {
            if get("device_code") != DEVICE_CODE {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown device code",
                );
            }
            match s.device_script.pop_front().unwrap_or("authorization_pending") {
                "ok" => Json(issue(&mut s, alice())).into_response(),
                error => oauth_error(StatusCode::BAD_REQUEST, error, &format!("scripted {error}")),
            }
        }
        "authorization_code" => {
            let verified = s.challenge.as_deref() == Some(s256(&get("code_verifier")).as_str());
            if get("code") != AUTH_CODE
                || !verified
                || s.redirect_uri.as_deref() != Some(get("redirect_uri").as_str())
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code or verifier is wrong",
                );
            }
            Json(issue(&mut s, alice())).into_response()
        }
        "refresh_token" => {
            if !s.refresh_tokens.remove(&get("refresh_token")) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the session has ended",
                );
            }
            Json(issue(&mut s, alice())).into_response()
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "no"),
    }
}

async fn authorize(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    record(&state, "/auth/authorize", query.clone(), &headers);
    let mut s = state.lock().unwrap();
    s.challenge = query.get("code_challenge").cloned();
    s.redirect_uri = query.get("redirect_uri").cloned();
    let mut back = query.get("state").cloned().unwrap_or_default();
    if s.tamper_state {
        back.push('x');
    }
    let location = format!(
        "{}?{}",
        query.get("redirect_uri").cloned().unwrap_or_default(),
        form_urlencoded::Serializer::new(String::new())
            .append_pair("code", AUTH_CODE)
            .append_pair("state", &back)
            .finish()
    );
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

async fn revoke(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = fields(&String::from_utf8_lossy(&body));
    record(&state, "/auth/revoke", form.clone(), &headers);
    if let Some(token) = form.get("token") {
        state.lock().unwrap().refresh_tokens.remove(token);
    }
    StatusCode::OK.into_response()
}

async fn enroll(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    record(&state, "/auth/enroll", HashMap::from([(String::new(), text.clone())]), &headers);
    let Ok(request) = serde_json::from_str::<EnrollRequest>(&text) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "not an EnrollRequest");
    };
    if request.setup_key != SETUP_KEY {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_setup_key",
            "the setup key has expired",
        );
    }
    let identity = SessionIdentity {
        kind: "agent".into(),
        name: request.name.unwrap_or_else(|| "bound-bot".into()),
        groups: vec!["ci".into()],
        session_id: "ses_agent".into(),
        session_expires_at: "2030-01-01T00:00:00.000Z".into(),
    };
    Json(issue(&mut state.lock().unwrap(), identity)).into_response()
}

async fn me(State(state): State<Shared>, headers: HeaderMap) -> Response {
    record(&state, "/api/v1/me", HashMap::new(), &headers);
    let accepted = {
        let s = state.lock().unwrap();
        let bearer = s.requests.last().and_then(|r| r.bearer.clone());
        !s.refuse_all && bearer.is_some_and(|b| s.access_tokens.contains(&b))
    };
    if !accepted {
        let body = serde_json::json!({"error": {"code": "unauthenticated", "message": "the token has expired"}});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    Json(SelfView {
        principal: "alice@example.com".into(),
        kind: "user".into(),
        groups: vec!["engineering".into(), "sre".into()],
        limits: Vec::new(),
        last_24h: UsageTotals::default(),
        last_30d: UsageTotals::default(),
        recent: Vec::new(),
    })
    .into_response()
}

/// Records the request; the refusal to answer with unless its bearer token is accepted and the
/// overlay is on.
fn peer_gate(state: &Shared, path: &str, body: String, headers: &HeaderMap) -> Option<Response> {
    record(state, path, HashMap::from([(String::new(), body)]), headers);
    let s = state.lock().unwrap();
    let bearer = s.requests.last().and_then(|r| r.bearer.clone());
    if !bearer.is_some_and(|b| s.access_tokens.contains(&b)) {
        let body = serde_json::json!({"error": {"code": "unauthenticated", "message": "the session is unknown, expired or revoked: register devices after `agentnet login` (agents: `agentnet enroll`)", "reason": "session_unknown"}});
        return Some((StatusCode::UNAUTHORIZED, Json(body)).into_response());
    }
    if s.overlay_disabled {
        let body = serde_json::json!({"error": {"code": "not_found", "message": "the overlay is not enabled on this server ([overlay] enabled = true)", "reason": "overlay_disabled"}});
        return Some((StatusCode::NOT_FOUND, Json(body)).into_response());
    }
    None
}

/// A live peer of alice's, as the fake server registers it.
pub(crate) fn peer_view(id: &str, name: &str) -> PeerView {
    PeerView {
        id: id.into(),
        name: name.into(),
        owner_kind: "user".into(),
        owner: "alice@example.com".into(),
        public_key: "VboEGAIZbjG/eSne9iIuNoolLWhlGqbqHqNzQN5geQM=".into(),
        address: "100.64.0.2".into(),
        status: "active".into(),
        session_id: Some("ses_1".into()),
        created_at: "2025-06-01T12:00:00.000Z".into(),
        expires_at: "2025-07-01T12:00:00.000Z".into(),
        revoked_at: None,
        revoked_reason: None,
        last_handshake_at: None,
        rx_bytes: 0,
        tx_bytes: 0,
    }
}

pub(crate) fn tunnel(peer: PeerView) -> TunnelConfig {
    TunnelConfig {
        address: format!("{}/32", peer.address),
        peer,
        server_public_key: "hbfBQKaGvzefSSuufuaBUwZ5xBTaEYgq7zrymj0YmVw=".into(),
        server_address: "100.64.0.1".into(),
        endpoint: "gateway.test:51820".into(),
        allowed_ips: "100.64.0.0/10".into(),
        dns: Some("100.64.0.1".into()),
        domain: "agentnet.internal".into(),
        ai_url: "http://ai.agentnet.internal".into(),
        mtu: 1420,
        persistent_keepalive: 25,
    }
}

async fn register_peer(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Some(refused) = peer_gate(&state, "/api/v1/me/peers", text.clone(), &headers) {
        return refused;
    }
    let Ok(request) = serde_json::from_str::<PeerRegistration>(&text) else {
        let body = serde_json::json!({"error": {"code": "invalid_request", "message": "not a PeerRegistration"}});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    let mut s = state.lock().unwrap();
    let live = |p: &&mut PeerView| p.status == "active" && p.public_key == request.public_key;
    if let Some(peer) = s.peers.iter_mut().find(|p| live(p)) {
        peer.name = request.name;
        return Json(tunnel(peer.clone())).into_response();
    }
    let n = s.peers.len();
    let mut peer = peer_view(&format!("peer-{}", n + 1), &request.name);
    peer.public_key = request.public_key;
    peer.address = format!("100.64.0.{}", n + 2);
    s.peers.push(peer.clone());
    (StatusCode::CREATED, Json(tunnel(peer))).into_response()
}

async fn list_peers(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = peer_gate(&state, "/api/v1/me/peers", String::new(), &headers) {
        return refused;
    }
    let s = state.lock().unwrap();
    let live: Vec<PeerView> = s.peers.iter().filter(|p| p.status == "active").cloned().collect();
    Json(live).into_response()
}

async fn remove_peer(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/api/v1/me/peers/{id}");
    if let Some(refused) = peer_gate(&state, &path, String::new(), &headers) {
        return refused;
    }
    let mut s = state.lock().unwrap();
    match s.peers.iter_mut().find(|p| p.id == id) {
        Some(peer) => {
            peer.status = "revoked".into();
            peer.revoked_at = Some("2025-06-02T12:00:00.000Z".into());
            peer.revoked_reason = Some("removed by alice@example.com".into());
            Json(peer.clone()).into_response()
        }
        None => {
            let body = serde_json::json!({"error": {"code": "not_found", "message": format!("peer '{id}' does not exist")}});
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
    }
}

/// A session file under a fresh temporary directory (its own directory does not exist yet),
/// and a guard that removes it all.
pub(crate) fn session_file(tag: &str) -> (SessionFile, PathBuf, TempDir) {
    let dir = crate::admin::tests::temp_dir(tag);
    let path = dir.join("config").join("agentnet").join("session.json");
    (SessionFile::at(path.clone()), path, TempDir(dir))
}

/// Removes a temporary directory when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
