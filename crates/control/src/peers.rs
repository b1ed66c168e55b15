//! Overlay peers: the WireGuard devices of people and agents.
//!
//! A device generates its key pair itself and registers only the public key, with the agentnet
//! session it signed in with (`agentnet login`, or `agentnet enroll` for agents): the peer is
//! bound to that session, expires with it at the latest, and is revoked with it (the store does
//! that in the revocation's own transaction). Registration answers with a [`TunnelConfig`]: the
//! peer's overlay address (the lowest free one, chosen with [`overlay::Ipam`] in the same
//! `BEGIN IMMEDIATE` transaction that inserts the peer, so two registrations never race for an
//! address) and the server's half of the WireGuard configuration.
//!
//! Routes:
//! - [`peers_router`], for everyone with an agentnet session (served on the admin TCP listener):
//!   `POST /api/v1/me/peers` (register, or register again: the same key of the same owner keeps
//!   its peer and address), `GET /api/v1/me/peers` (one's live peers),
//!   `DELETE /api/v1/me/peers/{id}` (revoke one of one's own).
//! - In `accounts_router` (admin): `GET /api/v1/peers`, `GET|PATCH|DELETE /api/v1/peers/{id}`.
//!
//! Every change is audited in its transaction (`peer.register`, `peer.rename`, `peer.revoke`,
//! before and after as [`PeerView`]s; public keys are not secret), then awaits
//! `SignInState::after_change`, after which the server has reconciled the WireGuard endpoint
//! with `store::Store::overlay_peers`.

#[cfg(test)]
mod tests;

use std::{net::Ipv4Addr, str::FromStr, time::Duration};

use api_types::{
    time::format_rfc3339, ErrorBody, ErrorCode, PeerQuery, PeerRegistration, PeerRename, PeerView,
    TunnelConfig,
};
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{delete, get},
    Json, Router,
};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use identity::TokenKind;
use store::{AuditEntry, PeerRecord, SessionRecord};

use crate::{
    audit::{request_id, Caller, Change},
    error,
    extract::{Body, Query},
    sign_in::{actor_kind, now_ms, SignInState},
    Error,
};

const PEER: &str = "peer";

/// The longest device name.
const MAX_NAME: usize = 64;

/// What the server tells devices about its overlay; set with [`SignInState::with_overlay`].
/// Without it, the self-service routes answer 404 `overlay_disabled`.
#[derive(Debug, Clone)]
pub struct OverlayInfo {
    /// The overlay network peers get their addresses from (e.g. 100.64.0.0/10).
    pub network: overlay::Ipv4Net,
    /// The server's own overlay address (the network's first host address).
    pub server_address: Ipv4Addr,
    /// The server's WireGuard public key, base64.
    pub server_public_key: String,
    /// Where devices reach the server's WireGuard endpoint, `host:port`; `None`: the host the
    /// device registered through (its `Host` header) and [`listen_port`](Self::listen_port).
    pub endpoint: Option<String>,
    /// The WireGuard UDP port.
    pub listen_port: u16,
    /// The overlay's DNS domain, e.g. `agentnet.internal`.
    pub domain: String,
    /// Whether the server answers DNS at `server_address` (then the AI endpoint is
    /// `http://ai.<domain>`; else `http://<server_address>`).
    pub dns: bool,
    /// How long a registration lasts (never past the session's own end).
    pub peer_lifetime: Duration,
    pub mtu: u16,
    /// Seconds; 0: none.
    pub persistent_keepalive: u16,
    /// Live registrations one person or agent may hold at a time.
    pub max_peers_per_owner: u32,
}

/// The self-service peer routes under `/api/v1/me/peers`, for callers with an agentnet session
/// (bearer `agentnet_at_…`). Like the self-service view it has no fallback of its own, so it
/// merges into a router that has one.
pub fn peers_router(state: SignInState) -> Router {
    let me = |path: &str| format!("{}/me/peers{path}", api_types::API_PREFIX);
    Router::new()
        .route(&me(""), get(list_own).post(register))
        .route(&me("/{id}"), delete(remove_own))
        .method_not_allowed_fallback(error::wrong_method)
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

/// Why a self-service peer request failed: an admin-API error, or a refusal with a finer
/// `reason` (who the caller is, whether the overlay is on, whether it has room).
pub(crate) enum Failure {
    Api(Error),
    Refused { status: StatusCode, code: ErrorCode, reason: &'static str, message: String },
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure::Api(err)
    }
}

impl From<store::Error> for Failure {
    fn from(err: store::Error) -> Self {
        Failure::Api(err.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Api(err) => err.into_response(),
            Failure::Refused { status, code, reason, message } => {
                let body = ErrorBody::new(code, message).with_reason(reason);
                let mut response = (status, Json(body)).into_response();
                if status == StatusCode::UNAUTHORIZED {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                }
                response
            }
        }
    }
}

const SIGN_IN_HINT: &str = "register devices after `agentnet login` (agents: `agentnet enroll`)";

fn unauthenticated(reason: &'static str, problem: &str) -> Failure {
    Failure::Refused {
        status: StatusCode::UNAUTHORIZED,
        code: ErrorCode::Unauthenticated,
        reason,
        message: format!("{problem}: {SIGN_IN_HINT}"),
    }
}

fn overlay_disabled() -> Failure {
    Failure::Refused {
        status: StatusCode::NOT_FOUND,
        code: ErrorCode::NotFound,
        reason: "overlay_disabled",
        message: "the overlay is not enabled on this server ([overlay] enabled = true)".into(),
    }
}

/// The overlay's settings, or the refusal when it is off.
fn overlay_of(state: &SignInState) -> Result<&OverlayInfo, Failure> {
    state.overlay().ok_or_else(overlay_disabled)
}

/// The live agentnet session whose access token the request carries. Only agentnet sessions
/// register devices: a peer is bound to one, and revoked with it.
async fn session_of(state: &SignInState, headers: &HeaderMap) -> Result<SessionRecord, Failure> {
    let Some(token) = identity::bearer_token(headers) else {
        return Err(unauthenticated("token_missing", "no access token"));
    };
    if TokenKind::of(token) != Some(TokenKind::Access) {
        return Err(unauthenticated(
            "not_a_session",
            "devices are registered with an agentnet session token, not this one",
        ));
    }
    let now = now_ms();
    let entry = state.sessions().verify(token, now).map_err(|err| {
        unauthenticated(err.reason(), "the session is unknown, expired or revoked")
    })?;
    match state.store().session(&entry.session_id).await? {
        Some(session) if session.revoked_at_ms.is_none() && now < session.expires_at_ms => {
            Ok(session)
        }
        _ => Err(unauthenticated("session_unknown", "the session is unknown, expired or revoked")),
    }
}

/// A device name: 1–64 characters of `A-Z a-z 0-9 . _ -`.
fn device_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!(
                "a device name is 1 to {MAX_NAME} characters of A-Z, a-z, 0-9, '.', '_' and '-'"
            ),
        ))
    }
}

/// A WireGuard public key in its canonical base64 form.
fn public_key(text: &str, overlay: &OverlayInfo) -> Result<String, Error> {
    let key = overlay::PublicKey::from_str(text).map_err(|err| {
        Error::invalid(
            "public_key",
            format!("not a WireGuard public key ({err}); `wg genkey | wg pubkey` makes one, and `agentnet peer config` does it for you"),
        )
    })?;
    if !key.is_contributory() {
        return Err(Error::invalid(
            "public_key",
            "this is a weak (low-order) key that anyone could use; generate a real key pair",
        ));
    }
    let key = key.to_base64();
    if key == overlay.server_public_key.trim() {
        return Err(Error::invalid("public_key", "this is the server's own public key"));
    }
    Ok(key)
}

/// `active`, `expired` or `revoked`.
fn status(peer: &PeerRecord, now: i64) -> &'static str {
    if peer.revoked_at_ms.is_some() {
        "revoked"
    } else if now >= peer.expires_at_ms {
        "expired"
    } else {
        "active"
    }
}

pub(crate) fn peer_to_dto(peer: &PeerRecord, now: i64) -> PeerView {
    PeerView {
        id: peer.id.clone(),
        name: peer.name.clone(),
        owner_kind: peer.owner_kind.as_str().to_owned(),
        owner: peer.owner.clone(),
        public_key: peer.public_key.clone(),
        address: peer.address.to_string(),
        status: status(peer, now).to_owned(),
        session_id: peer.session_id.clone(),
        created_at: format_rfc3339(peer.created_at_ms),
        expires_at: format_rfc3339(peer.expires_at_ms),
        revoked_at: peer.revoked_at_ms.map(format_rfc3339),
        revoked_reason: peer.revoked_reason.clone(),
        last_handshake_at: peer.last_handshake_ms.map(format_rfc3339),
        rx_bytes: peer.rx_bytes,
        tx_bytes: peer.tx_bytes,
    }
}

/// The WireGuard endpoint to give a device that registered with these request headers.
fn endpoint_for(overlay: &OverlayInfo, headers: &HeaderMap) -> Result<String, Failure> {
    if let Some(endpoint) = &overlay.endpoint {
        return Ok(endpoint.clone());
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        .map(|authority| authority.host().to_owned())
        .filter(|host| !host.is_empty())
        .ok_or_else(|| Failure::Refused {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::InvalidRequest,
            reason: "endpoint_unknown",
            message: "the server does not know its public WireGuard endpoint and the request has no Host header; set [overlay] endpoint".into(),
        })?;
    Ok(format!("{host}:{}", overlay.listen_port))
}

fn tunnel_config(overlay: &OverlayInfo, endpoint: String, peer: PeerView) -> TunnelConfig {
    let server = overlay.server_address.to_string();
    let ai_url = if overlay.dns && !overlay.domain.is_empty() {
        format!("http://ai.{}", overlay.domain)
    } else {
        format!("http://{server}")
    };
    TunnelConfig {
        address: format!("{}/32", peer.address),
        peer,
        server_public_key: overlay.server_public_key.clone(),
        server_address: server.clone(),
        endpoint,
        allowed_ips: overlay.network.to_string(),
        dns: overlay.dns.then_some(server),
        domain: overlay.domain.clone(),
        ai_url,
        mtu: overlay.mtu,
        persistent_keepalive: overlay.persistent_keepalive,
    }
}

/// An audit entry by the session's owner (self-service).
fn entry_by(
    session: &SessionRecord,
    headers: &HeaderMap,
    action: &str,
    peer_id: &str,
    before: Option<&PeerView>,
    after: Option<&PeerView>,
) -> AuditEntry {
    let mut entry = AuditEntry::new(
        actor_kind(session.kind),
        session.name.clone(),
        action,
        PEER,
        peer_id.to_owned(),
    );
    entry.before = before.and_then(|v| serde_json::to_value(v).ok());
    entry.after = after.and_then(|v| serde_json::to_value(v).ok());
    entry.request_id = request_id(headers);
    entry
}

/// An audit entry by the server itself (registrations that expired).
fn system_entry(action: &str, peer_id: &str, after: &PeerView) -> AuditEntry {
    let mut entry = AuditEntry::new(
        store::ActorKind::System,
        "expiry".to_owned(),
        action,
        PEER,
        peer_id.to_owned(),
    );
    entry.after = serde_json::to_value(after).ok();
    entry
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[utoipa::path(
    post, path = "/api/v1/me/peers", tag = "peers",
    security(("bearer" = [])),
    request_body = PeerRegistration,
    responses(
        (status = 201, description = "registered: the tunnel's configuration, but for the device's private key", body = TunnelConfig),
        (status = 200, description = "the caller's own key registered again: the same peer and address, bound to this session, with a new expiry", body = TunnelConfig),
        (status = 400, description = "a malformed public key or device name", body = ErrorBody),
        (status = 401, description = "no agentnet session token (IdP tokens do not register devices)", body = ErrorBody),
        (status = 404, description = "the overlay is not enabled (`reason`: `overlay_disabled`)", body = ErrorBody),
        (status = 409, description = "the public key belongs to another person's or agent's live peer", body = ErrorBody),
        (status = 503, description = "every address of the overlay network is in use", body = ErrorBody),
    )
)]
pub(crate) async fn register(
    State(state): State<SignInState>,
    headers: HeaderMap,
    Body(input): Body<PeerRegistration>,
) -> Result<(StatusCode, Json<TunnelConfig>), Failure> {
    let overlay = overlay_of(&state)?;
    let session = session_of(&state, &headers).await?;
    device_name(&input.name)?;
    let key = public_key(&input.public_key, overlay)?;
    let now = now_ms();
    let expires_at = now.saturating_add(millis(overlay.peer_lifetime)).min(session.expires_at_ms);

    let mut tx = state.store().begin().await?;
    // The session may have been revoked since it was read: then it must not gain a peer (its
    // revocation has already revoked the ones it had).
    if tx.session(&session.id).await?.is_none_or(|s| s.revoked_at_ms.is_some()) {
        return Err(unauthenticated("session_unknown", "the session was revoked"));
    }
    let (status, after) = match tx.peer_by_public_key(&key).await? {
        Some(mine) if mine.is_owned_by(session.kind, &session.name) => {
            let before = peer_to_dto(&mine, now);
            let peer = tx.rebind_peer(&mine.id, &session.id, &input.name, expires_at).await?;
            let after = peer_to_dto(&peer, now);
            let entry = entry_by(
                &session,
                &headers,
                "peer.register",
                &peer.id,
                Some(&before),
                Some(&after),
            );
            tx.record_audit(&entry).await?;
            (StatusCode::OK, after)
        }
        Some(theirs) if theirs.is_live(now) => {
            return Err(Failure::Refused {
                status: StatusCode::CONFLICT,
                code: ErrorCode::AlreadyExists,
                reason: "public_key_taken",
                message: "this WireGuard public key is registered to another person or agent; generate a new key pair on this device".into(),
            });
        }
        stale => {
            // Another owner's expired peer no longer holds the key: it goes, for the record.
            if let Some(stale) = stale {
                let before = peer_to_dto(&stale, now);
                if let Some(revoked) =
                    tx.revoke_peer(&stale.id, "expired; its key was registered again").await?
                {
                    let after = peer_to_dto(&revoked, now);
                    let entry = entry_by(
                        &session,
                        &headers,
                        "peer.revoke",
                        &revoked.id,
                        Some(&before),
                        Some(&after),
                    );
                    tx.record_audit(&entry).await?;
                }
            }
            // Expired registrations give their addresses back.
            for expired in tx.revoke_expired_peers(now).await? {
                let after = peer_to_dto(&expired, now);
                let entry = system_entry("peer.revoke", &expired.id, &after);
                tx.record_audit(&entry).await?;
            }
            let owned = tx.live_peer_count(session.kind, &session.name, now).await?;
            if owned >= u64::from(overlay.max_peers_per_owner) {
                return Err(Failure::Refused {
                    status: StatusCode::CONFLICT,
                    code: ErrorCode::AlreadyExists,
                    reason: "too_many_devices",
                    message: format!(
                        "you already have {owned} registered devices, the most this server allows; remove one (agentnet peer list, agentnet peer remove ID)"
                    ),
                });
            }
            let address = assign_address(&mut tx, overlay).await?;
            let peer = PeerRecord {
                id: ulid::Ulid::new().to_string().to_lowercase(),
                name: input.name.clone(),
                owner_kind: session.kind,
                owner: session.name.clone(),
                public_key: key,
                address,
                session_id: Some(session.id.clone()),
                created_at_ms: now,
                expires_at_ms: expires_at,
                revoked_at_ms: None,
                revoked_reason: None,
                last_handshake_ms: None,
                rx_bytes: 0,
                tx_bytes: 0,
            };
            tx.create_peer(&peer).await?;
            let after = peer_to_dto(&peer, now);
            let entry = entry_by(&session, &headers, "peer.register", &peer.id, None, Some(&after));
            tx.record_audit(&entry).await?;
            (StatusCode::CREATED, after)
        }
    };
    tx.commit().await?;
    tracing::info!(
        peer = %after.id,
        principal = %session.name,
        address = %after.address,
        "overlay peer registered"
    );
    state.after_change().await;
    Ok((status, Json(tunnel_config(overlay, endpoint_for(overlay, &headers)?, after))))
}

/// The lowest address of the overlay network no unrevoked peer holds.
async fn assign_address(
    tx: &mut store::Transaction,
    overlay: &OverlayInfo,
) -> Result<Ipv4Addr, Failure> {
    let mut ipam = overlay::Ipam::new(overlay.network);
    for held in tx.peer_addresses().await? {
        // Addresses outside the network (it was changed since) are not in its pool anyway.
        let _ = ipam.reserve(held);
    }
    ipam.assign().map_err(|err| Failure::Refused {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: ErrorCode::Unavailable,
        reason: "overlay_exhausted",
        message: format!("{err}; an admin can free addresses with `agentnet admin peers revoke`"),
    })
}

#[utoipa::path(
    get, path = "/api/v1/me/peers", tag = "peers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's live peers, newest first", body = Vec<PeerView>),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn list_own(
    State(state): State<SignInState>,
    headers: HeaderMap,
) -> Result<Json<Vec<PeerView>>, Failure> {
    overlay_of(&state)?;
    let session = session_of(&state, &headers).await?;
    let now = now_ms();
    let query = store::PeerQuery { owner: Some(session.name.clone()), include_inactive: false };
    let peers = state.store().peers(&query, now).await?;
    Ok(Json(
        peers
            .iter()
            .filter(|p| p.is_owned_by(session.kind, &session.name))
            .map(|p| peer_to_dto(p, now))
            .collect(),
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/me/peers/{id}", tag = "peers",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "peer id")),
    responses(
        (status = 200, description = "revoked (kept, for the record)", body = PeerView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such peer of the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn remove_own(
    State(state): State<SignInState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<PeerView>, Failure> {
    overlay_of(&state)?;
    let session = session_of(&state, &headers).await?;
    let now = now_ms();
    let mut tx = state.store().begin().await?;
    let Some(before) = tx.peer(&id).await?.filter(|p| p.is_owned_by(session.kind, &session.name))
    else {
        return Err(Error::NotFound { kind: PEER, name: id }.into());
    };
    if before.revoked_at_ms.is_some() {
        return Ok(Json(peer_to_dto(&before, now)));
    }
    let reason = format!("removed by {}", session.name);
    let after =
        tx.revoke_peer(&id, &reason).await?.ok_or(Error::NotFound { kind: PEER, name: id })?;
    let (before, after) = (peer_to_dto(&before, now), peer_to_dto(&after, now));
    let entry = entry_by(&session, &headers, "peer.revoke", &after.id, Some(&before), Some(&after));
    tx.record_audit(&entry).await?;
    tx.commit().await?;
    state.after_change().await;
    Ok(Json(after))
}

// ---- admin --------------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/peers", tag = "peers",
    params(PeerQuery),
    responses((status = 200, description = "peers, newest first", body = Vec<PeerView>))
)]
pub(crate) async fn list(
    State(state): State<SignInState>,
    Query(query): Query<PeerQuery>,
) -> Result<Json<Vec<PeerView>>, Error> {
    let now = now_ms();
    let query = store::PeerQuery {
        owner: query.owner.filter(|o| !o.is_empty()),
        include_inactive: query.all,
    };
    let peers = state.store().peers(&query, now).await?;
    Ok(Json(peers.iter().map(|p| peer_to_dto(p, now)).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/peers/{id}", tag = "peers",
    params(("id" = String, Path, description = "peer id")),
    responses((status = 200, body = PeerView), (status = 404, body = ErrorBody))
)]
pub(crate) async fn show(
    State(state): State<SignInState>,
    Path(id): Path<String>,
) -> Result<Json<PeerView>, Error> {
    let peer = state.store().peer(&id).await?.ok_or(Error::NotFound { kind: PEER, name: id })?;
    Ok(Json(peer_to_dto(&peer, now_ms())))
}

#[utoipa::path(
    patch, path = "/api/v1/peers/{id}", tag = "peers",
    params(("id" = String, Path, description = "peer id")),
    request_body = PeerRename,
    responses((status = 200, body = PeerView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub(crate) async fn rename(
    State(state): State<SignInState>,
    Path(id): Path<String>,
    caller: Caller,
    Body(input): Body<PeerRename>,
) -> Result<Json<PeerView>, Error> {
    device_name(&input.name)?;
    let now = now_ms();
    let mut tx = state.store().begin().await?;
    let before = tx.peer(&id).await?.ok_or(Error::NotFound { kind: PEER, name: id.clone() })?;
    let after = tx.rename_peer(&id, &input.name).await?;
    let (before, after) = (peer_to_dto(&before, now), peer_to_dto(&after, now));
    let mut entry = caller.entry(Change::Update, PEER, &id, Some(&before), Some(&after))?;
    entry.action = "peer.rename".to_owned();
    tx.record_audit(&entry).await?;
    tx.commit().await?;
    state.after_change().await;
    Ok(Json(after))
}

#[utoipa::path(
    delete, path = "/api/v1/peers/{id}", tag = "peers",
    params(("id" = String, Path, description = "peer id")),
    responses((status = 200, description = "revoked (kept, for the record)", body = PeerView), (status = 404, body = ErrorBody))
)]
pub(crate) async fn revoke(
    State(state): State<SignInState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<PeerView>, Error> {
    let now = now_ms();
    let mut tx = state.store().begin().await?;
    let before = tx.peer(&id).await?.ok_or(Error::NotFound { kind: PEER, name: id.clone() })?;
    if before.revoked_at_ms.is_some() {
        return Ok(Json(peer_to_dto(&before, now)));
    }
    let after = tx
        .revoke_peer(&id, "admin")
        .await?
        .ok_or(Error::NotFound { kind: PEER, name: id.clone() })?;
    let (before, after) = (peer_to_dto(&before, now), peer_to_dto(&after, now));
    let mut entry = caller.entry(Change::Update, PEER, &id, Some(&before), Some(&after))?;
    entry.action = "peer.revoke".to_owned();
    tx.record_audit(&entry).await?;
    tx.commit().await?;
    state.after_change().await;
    Ok(Json(after))
}
