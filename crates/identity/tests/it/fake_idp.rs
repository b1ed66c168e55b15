//! A scripted OAuth/OIDC provider for the broker tests: discovery, device authorization, token
//! and revocation endpoints on `127.0.0.1:0`. It checks client authentication like a real IdP
//! and records every POST (path, `Authorization` header, form fields) for the tests to assert.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The PKCE verifier the token endpoint expects with `GOOD_CODE` (RFC 7636 Appendix B).
pub(crate) const GOOD_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(crate) const GOOD_CODE: &str = "code-1";
pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1:4000/auth/callback";
pub(crate) const CLIENT_ID: &str = "agentnet";
/// A secret that needs form-urlencoding before Basic encoding.
pub(crate) const CLIENT_SECRET: &str = "s3:cr+t/é";

/// What the fake IdP offers.
#[derive(Clone)]
pub(crate) struct Options {
    /// `Some(secret)`: a confidential client that must use HTTP Basic; `None`: a public client
    /// that must send `client_id` in the form.
    pub(crate) secret: Option<&'static str>,
    pub(crate) device: bool,
    pub(crate) revocation: bool,
    /// The issuer the discovery document claims (default: the real one).
    pub(crate) claimed_issuer: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self { secret: Some(CLIENT_SECRET), device: true, revocation: true, claimed_issuer: None }
    }
}

/// One POST the fake IdP received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) path: String,
    pub(crate) authorization: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) form: BTreeMap<String, String>,
}

struct FakeState {
    issuer: String,
    options: Options,
    requests: Mutex<Vec<Recorded>>,
    discovery_hits: AtomicUsize,
    device_polls: AtomicUsize,
}

pub(crate) struct FakeIdp {
    state: Arc<FakeState>,
    task: JoinHandle<()>,
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeIdp {
    pub(crate) async fn start(options: Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let state = Arc::new(FakeState {
            issuer: format!("http://{addr}"),
            options,
            requests: Mutex::new(Vec::new()),
            discovery_hits: AtomicUsize::new(0),
            device_polls: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/device/auth", post(endpoint))
            .route("/token", post(endpoint))
            .route("/revoke", post(endpoint))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { state, task }
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The POSTs received so far, and forgets them.
    pub(crate) fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.state.requests.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn discovery_hits(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }
}

/// `Basic` credentials as RFC 6749 §2.3.1 wants them, computed independently of the client.
pub(crate) fn expected_basic(id: &str, secret: &str) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", encode(id), encode(secret))))
}

async fn discovery(State(state): State<Arc<FakeState>>) -> Json<Value> {
    state.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let issuer = &state.issuer;
    let mut doc = json!({
        "issuer": state.options.claimed_issuer.as_deref().unwrap_or(issuer),
        "authorization_endpoint": format!("{issuer}/auth?tenant=corp"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
    });
    if state.options.device {
        doc["device_authorization_endpoint"] = json!(format!("{issuer}/device/auth"));
    }
    if state.options.revocation {
        doc["revocation_endpoint"] = json!(format!("{issuer}/revoke"));
    }
    Json(doc)
}

fn oauth_error(status: StatusCode, error: &str, description: Option<&str>) -> Response {
    let mut body = json!({ "error": error });
    if let Some(description) = description {
        body["error_description"] = json!(description);
    }
    (status, Json(body)).into_response()
}

fn tokens(access: &str, refresh: Option<&str>, expires_in: Value) -> Response {
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "id_token": format!("id-{access}"),
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    Json(body).into_response()
}

async fn endpoint(
    State(state): State<Arc<FakeState>>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let form: BTreeMap<String, String> =
        form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let recorded = Recorded {
        path: uri.path().to_owned(),
        authorization: header(header::AUTHORIZATION),
        content_type: header(header::CONTENT_TYPE),
        form: form.clone(),
    };
    state.requests.lock().unwrap_or_else(PoisonError::into_inner).push(recorded.clone());

    let authenticated = match state.options.secret {
        Some(secret) => {
            recorded.authorization.as_deref() == Some(expected_basic(CLIENT_ID, secret).as_str())
        }
        None => {
            recorded.authorization.is_none()
                && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        }
    };
    if !authenticated {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            Some("client authentication failed"),
        );
    }
    let field = |name: &str| field(&form, name).to_owned();
    match uri.path() {
        "/device/auth" => Json(json!({
            "device_code": "dc-1",
            "user_code": "WDJB-MJHT",
            "verification_uri": format!("{}/device", state.issuer),
            "verification_uri_complete": format!("{}/device?user_code=WDJB-MJHT", state.issuer),
            "expires_in": 600,
        }))
        .into_response(),
        "/revoke" => match field("token").as_str() {
            "rt-unsupported" => {
                oauth_error(StatusCode::BAD_REQUEST, "unsupported_token_type", None)
            }
            _ => StatusCode::OK.into_response(),
        },
        _ => token(&state, &form),
    }
}

/// A form field, empty if absent.
fn field<'a>(form: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(String::as_str).unwrap_or("")
}

fn token(state: &FakeState, form: &BTreeMap<String, String>) -> Response {
    let field = |name: &str| field(form, name);
    match field("grant_type") {
        "urn:ietf:params:oauth:grant-type:device_code" => match field("device_code") {
            "dc-1" => match state.device_polls.fetch_add(1, Ordering::SeqCst) {
                0 => oauth_error(StatusCode::BAD_REQUEST, "authorization_pending", None),
                1 => oauth_error(StatusCode::BAD_REQUEST, "slow_down", None),
                _ => tokens("at-device", Some("rt-device"), json!(300)),
            },
            "dc-denied" => {
                oauth_error(StatusCode::BAD_REQUEST, "access_denied", Some("the user said no"))
            }
            _ => oauth_error(StatusCode::BAD_REQUEST, "expired_token", None),
        },
        "authorization_code" => {
            let good = field("code") == GOOD_CODE
                && field("code_verifier") == GOOD_VERIFIER
                && field("redirect_uri") == REDIRECT_URI;
            if good {
                tokens("at-code", Some("rt-code"), json!(300))
            } else {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    Some("PKCE verification failed"),
                )
            }
        }
        "refresh_token" => match field("refresh_token") {
            // Azure AD v1 style: expires_in as a string; no new refresh token.
            "rt-good" => tokens("at-refreshed", None, json!("3599")),
            "rt-unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response(),
            "rt-garbage" => (StatusCode::OK, "<html>login</html>").into_response(),
            "rt-weird" => oauth_error(
                StatusCode::BAD_REQUEST,
                "Invalid-Scope\u{1b}[2J",
                Some("scope\nnot allowed"),
            ),
            _ => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", Some("Token is not active")),
        },
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", None),
    }
}
