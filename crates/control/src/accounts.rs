//! The admin API's sign-in records: local accounts (`/users`, the embedded IdP's people),
//! setup keys (`/setup-keys`, how agents enroll), sessions (`/sessions`, what agentnet
//! issued, revocable one by one or per person) and the overlay peers bound to them (`/peers`,
//! handlers in `peers`).
//!
//! Secrets: a password or setup key is in the answer that created it (a password only if the
//! server generated it) and nowhere else; the store keeps an argon2id hash or a SHA-256 digest.
//! Deactivating or deleting an account, or changing its password, revokes its sessions; every
//! change waits until the data plane has it (groups and deactivation apply to the next request,
//! and cut streams of people who lost access).

use api_types::{
    time::format_rfc3339, ErrorBody, LocalUser, LocalUserCreated, LocalUserInput, PasswordInput,
    Session, SessionQuery, SessionsRevoked, SetupKey, SetupKeyCreated, SetupKeyInput,
};
use axum::{
    extract::{Path, State},
    routing::{get, put},
    Json, Router,
};
use domain::PrincipalKind;
use http::StatusCode;
use identity::{issue_token, TokenKind};
use secrecy::ExposeSecret;
use store::SetupKeyRecord;

use crate::{
    audit::{Caller, Change},
    extract::{Body, Query},
    peers,
    sign_in::{revoke_sessions, session_to_dto, SignInState},
    validate, Error,
};

const USER: &str = "user";
const SETUP_KEY: &str = "setup_key";

/// The longest a setup key may stay valid.
const MAX_SETUP_KEY_SECS: u64 = 365 * 86_400;
const DEFAULT_SETUP_KEY_SECS: u64 = 86_400;
const MAX_SETUP_KEY_USES: u32 = 100_000;

/// The admin routes of sign-in records, under `/api/v1`; merged into the admin router by the
/// server (so the same socket and admin-group gate apply).
pub fn accounts_router(state: SignInState) -> Router {
    let api = |path: &str| format!("{}{path}", api_types::API_PREFIX);
    Router::new()
        .route(&api("/users"), get(list_users).post(create_user))
        .route(&api("/users/{username}"), get(show_user).put(update_user).delete(delete_user))
        .route(&api("/users/{username}/password"), put(set_password))
        .route(&api("/setup-keys"), get(list_setup_keys).post(create_setup_key))
        .route(&api("/setup-keys/{name}"), get(show_setup_key).delete(revoke_setup_key))
        .route(&api("/sessions"), get(list_sessions).delete(revoke_sessions_of))
        .route(&api("/sessions/{id}"), get(show_session).delete(revoke_session))
        .route(&api("/peers"), get(peers::list))
        .route(&api("/peers/{id}"), get(peers::show).patch(peers::rename).delete(peers::revoke))
        .with_state(state)
}

// ---- local accounts -----------------------------------------------------------------------

/// Commits `tx`, whose changes revoked `revoked` (and, in the store, their overlay peers), with
/// an audit entry per session under the caller; then the data plane forgets them. A handler
/// that does not await `after_change` anyway awaits `sessions_ended` next, for the peers.
async fn end_sessions(
    state: &SignInState,
    caller: &Caller,
    tx: store::Transaction,
    revoked: &[store::SessionRecord],
) -> Result<Vec<String>, Error> {
    let actor = (caller.kind(), caller.name());
    Ok(revoke_sessions(state.sessions(), tx, revoked, actor, caller.request_id()).await?)
}

fn user_to_dto(user: &store::LocalUser) -> LocalUser {
    LocalUser {
        username: user.username.clone(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        groups: user.groups.clone(),
        active: user.active,
        created_at: format_rfc3339(user.created_at_ms),
        updated_at: format_rfc3339(user.updated_at_ms),
    }
}

#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    responses((status = 200, description = "local accounts, by username", body = Vec<LocalUser>))
)]
pub(crate) async fn list_users(
    State(state): State<SignInState>,
) -> Result<Json<Vec<LocalUser>>, Error> {
    Ok(Json(state.store().local_users().await?.iter().map(user_to_dto).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "login name")),
    responses((status = 200, body = LocalUser), (status = 404, body = ErrorBody))
)]
pub(crate) async fn show_user(
    State(state): State<SignInState>,
    Path(username): Path<String>,
) -> Result<Json<LocalUser>, Error> {
    let user = state.store().local_user(&username.to_lowercase()).await?;
    let user = user.ok_or(Error::NotFound { kind: USER, name: username })?;
    Ok(Json(user_to_dto(&user)))
}

/// A username: a record name, lower-cased.
fn username(field: &str, value: &str) -> Result<String, Error> {
    validate::name(field, value)?;
    Ok(value.to_lowercase())
}

fn email(value: &str) -> Result<String, Error> {
    validate::reference("email", value, false)?;
    let valid = value
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !valid || value.len() > 254 {
        return Err(Error::invalid("email", format!("'{value}' is not an email address")));
    }
    Ok(value.to_owned())
}

/// The account fields of `input`, checked.
fn account(username: String, input: &LocalUserInput, now: i64) -> Result<store::LocalUser, Error> {
    let email = email(&input.email)?;
    if let Some(display) = &input.display_name {
        validate::text("display_name", display)?;
    }
    let mut groups = validate::references("groups", input.groups.clone(), true)?;
    groups.sort();
    Ok(store::LocalUser {
        username,
        email,
        display_name: input.display_name.clone().filter(|d| !d.is_empty()),
        groups,
        active: input.active.unwrap_or(true),
        created_at_ms: now,
        updated_at_ms: now,
    })
}

/// A password to set: the admin's (checked against the policy) or a generated one (returned).
async fn password_hash(given: Option<String>) -> Result<(String, Option<String>), Error> {
    let (password, generated) = match given {
        Some(password) => {
            identity::check_password_policy(&password)
                .map_err(|err| Error::invalid("password", err.to_string()))?;
            (password, false)
        }
        None => {
            let password =
                identity::generate_password().map_err(|err| Error::Internal(err.to_string()))?;
            (password, true)
        }
    };
    let hashing = password.clone();
    let hash = tokio::task::spawn_blocking(move || identity::hash_password(&hashing))
        .await
        .map_err(|err| Error::Internal(format!("password hashing task failed: {err}")))?
        .map_err(|err| Error::Internal(format!("cannot hash a password: {err}")))?;
    Ok((hash, generated.then_some(password)))
}

#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    request_body = LocalUserInput,
    responses(
        (status = 201, description = "created; a generated password is in the answer, once", body = LocalUserCreated),
        (status = 400, description = "invalid input, a weak password, or an external IdP is configured", body = ErrorBody),
        (status = 409, description = "the username or email is taken", body = ErrorBody),
    )
)]
pub(crate) async fn create_user(
    State(state): State<SignInState>,
    caller: Caller,
    Body(input): Body<LocalUserInput>,
) -> Result<(StatusCode, Json<LocalUserCreated>), Error> {
    if !state.source().is_local() {
        return Err(Error::invalid(
            "username",
            "local accounts sign in only when no external identity provider is configured; this server uses the [oidc] issuer, so manage people there",
        ));
    }
    let name = username("username", input.username.as_deref().unwrap_or_default())?;
    let now = crate::sign_in::now_ms();
    let user = account(name, &input, now)?;
    let (hash, generated_password) = password_hash(input.password.clone()).await?;
    let mut tx = state.store().begin().await?;
    tx.create_local_user(&user, &hash).await?;
    let dto = user_to_dto(&user);
    let entry = caller.entry(Change::Create, USER, &user.username, None, Some(&dto))?;
    tx.record_audit(&entry).await?;
    tx.commit().await?;
    state.after_change().await;
    Ok((StatusCode::CREATED, Json(LocalUserCreated { user: dto, generated_password })))
}

#[utoipa::path(
    put, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "login name")),
    request_body = LocalUserInput,
    responses(
        (status = 200, description = "updated; deactivation or a new email revokes the sessions", body = LocalUser),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    )
)]
pub(crate) async fn update_user(
    State(state): State<SignInState>,
    Path(path): Path<String>,
    caller: Caller,
    Body(input): Body<LocalUserInput>,
) -> Result<Json<LocalUser>, Error> {
    let name = username("username", &path)?;
    if input.username.as_deref().is_some_and(|u| !u.eq_ignore_ascii_case(&name)) {
        return Err(Error::invalid("username", "does not match the username in the path"));
    }
    if input.password.is_some() {
        return Err(Error::invalid(
            "password",
            "set a password with PUT /api/v1/users/{username}/password",
        ));
    }
    let now = crate::sign_in::now_ms();
    let mut tx = state.store().begin().await?;
    let before =
        tx.local_user(&name).await?.ok_or(Error::NotFound { kind: USER, name: name.clone() })?;
    let mut user = account(name, &input, now)?;
    user.created_at_ms = before.created_at_ms;
    // Left out, `active` stays as it is: an edit must not reactivate an account by omission.
    user.active = input.active.unwrap_or(before.active);
    tx.update_local_user(&user).await?;
    let (before_dto, after_dto) = (user_to_dto(&before), user_to_dto(&user));
    let entry =
        caller.entry(Change::Update, USER, &user.username, Some(&before_dto), Some(&after_dto))?;
    tx.record_audit(&entry).await?;
    // Deactivation, or a new email (the name sessions are known by), ends the sessions.
    let revoked = if (!user.active && before.active) || user.email != before.email {
        tx.revoke_sessions_of(PrincipalKind::User, &before.email, "account deactivated or renamed")
            .await?
    } else {
        Vec::new()
    };
    end_sessions(&state, &caller, tx, &revoked).await?;
    state.after_change().await;
    Ok(Json(after_dto))
}

#[utoipa::path(
    delete, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "login name")),
    responses((status = 204, description = "deleted; its sessions are revoked"), (status = 404, body = ErrorBody))
)]
pub(crate) async fn delete_user(
    State(state): State<SignInState>,
    Path(path): Path<String>,
    caller: Caller,
) -> Result<StatusCode, Error> {
    let name = path.to_lowercase();
    let mut tx = state.store().begin().await?;
    let before =
        tx.local_user(&name).await?.ok_or(Error::NotFound { kind: USER, name: name.clone() })?;
    tx.delete_local_user(&name).await?;
    let entry = caller.entry(Change::Delete, USER, &name, Some(&user_to_dto(&before)), None)?;
    tx.record_audit(&entry).await?;
    let revoked =
        tx.revoke_sessions_of(PrincipalKind::User, &before.email, "account deleted").await?;
    end_sessions(&state, &caller, tx, &revoked).await?;
    state.after_change().await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put, path = "/api/v1/users/{username}/password", tag = "users",
    params(("username" = String, Path, description = "login name")),
    request_body = PasswordInput,
    responses(
        (status = 200, description = "set; the account's sessions are revoked", body = LocalUserCreated),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn set_password(
    State(state): State<SignInState>,
    Path(path): Path<String>,
    caller: Caller,
    Body(input): Body<PasswordInput>,
) -> Result<Json<LocalUserCreated>, Error> {
    let name = path.to_lowercase();
    if state.store().local_user(&name).await?.is_none() {
        return Err(Error::NotFound { kind: USER, name });
    }
    let (hash, generated_password) = password_hash(input.password).await?;
    let mut tx = state.store().begin().await?;
    let user =
        tx.local_user(&name).await?.ok_or(Error::NotFound { kind: USER, name: name.clone() })?;
    tx.set_local_password(&name, &hash).await?;
    tx.record_audit(&caller.entry_named("user.password.set", USER, &name)).await?;
    let revoked =
        tx.revoke_sessions_of(PrincipalKind::User, &user.email, "password changed").await?;
    end_sessions(&state, &caller, tx, &revoked).await?;
    state.sessions_ended().await;
    Ok(Json(LocalUserCreated { user: user_to_dto(&user), generated_password }))
}

// ---- setup keys ---------------------------------------------------------------------------

fn setup_key_to_dto(key: &SetupKeyRecord, now: i64) -> SetupKey {
    let state = match key.state(now) {
        store::SetupKeyState::Valid => "valid",
        store::SetupKeyState::Expired => "expired",
        store::SetupKeyState::Exhausted => "exhausted",
        store::SetupKeyState::Revoked => "revoked",
    };
    SetupKey {
        name: key.name.clone(),
        prefix: key.prefix.clone(),
        agent: key.agent.clone(),
        auto_groups: key.auto_groups.clone(),
        max_uses: key.max_uses,
        uses: key.uses,
        expires_at: format_rfc3339(key.expires_at_ms),
        state: state.to_owned(),
        revoked_at: key.revoked_at_ms.map(format_rfc3339),
        last_used_at: key.last_used_at_ms.map(format_rfc3339),
        created_at: format_rfc3339(key.created_at_ms),
        created_by: key.created_by.clone(),
    }
}

#[utoipa::path(
    get, path = "/api/v1/setup-keys", tag = "setup-keys",
    responses((status = 200, description = "every setup key, never the key itself", body = Vec<SetupKey>))
)]
pub(crate) async fn list_setup_keys(
    State(state): State<SignInState>,
) -> Result<Json<Vec<SetupKey>>, Error> {
    let now = crate::sign_in::now_ms();
    Ok(Json(state.store().setup_keys().await?.iter().map(|k| setup_key_to_dto(k, now)).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/setup-keys/{name}", tag = "setup-keys",
    params(("name" = String, Path, description = "setup key name")),
    responses((status = 200, body = SetupKey), (status = 404, body = ErrorBody))
)]
pub(crate) async fn show_setup_key(
    State(state): State<SignInState>,
    Path(name): Path<String>,
) -> Result<Json<SetupKey>, Error> {
    let key =
        state.store().setup_key(&name).await?.ok_or(Error::NotFound { kind: SETUP_KEY, name })?;
    Ok(Json(setup_key_to_dto(&key, crate::sign_in::now_ms())))
}

#[utoipa::path(
    post, path = "/api/v1/setup-keys", tag = "setup-keys",
    request_body = SetupKeyInput,
    responses(
        (status = 201, description = "created; the key is in the answer, once", body = SetupKeyCreated),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
    )
)]
pub(crate) async fn create_setup_key(
    State(state): State<SignInState>,
    caller: Caller,
    Body(input): Body<SetupKeyInput>,
) -> Result<(StatusCode, Json<SetupKeyCreated>), Error> {
    validate::name("name", &input.name)?;
    let mut groups = validate::references("auto_groups", input.auto_groups.clone(), true)?;
    groups.sort();
    let max_uses = input.max_uses.unwrap_or(1);
    if max_uses == 0 || max_uses > MAX_SETUP_KEY_USES {
        return Err(Error::invalid(
            "max_uses",
            format!("must be between 1 and {MAX_SETUP_KEY_USES}"),
        ));
    }
    let secs = match &input.expires_in {
        Some(text) => api_types::parse_window(text)
            .map_err(|err| Error::invalid("expires_in", err.to_string()))?,
        None => DEFAULT_SETUP_KEY_SECS,
    };
    if secs == 0 || secs > MAX_SETUP_KEY_SECS {
        return Err(Error::invalid("expires_in", "must be more than 0 and at most 365d"));
    }
    let issued =
        issue_token(TokenKind::SetupKey).map_err(|err| Error::Internal(err.to_string()))?;
    let key = issued.secret.expose_secret().to_owned();
    let now = crate::sign_in::now_ms();
    let record = SetupKeyRecord {
        name: input.name.clone(),
        prefix: key.chars().take(16).collect(),
        agent: input.agent.clone(),
        auto_groups: groups,
        max_uses,
        uses: 0,
        expires_at_ms: now
            .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)),
        revoked_at_ms: None,
        created_at_ms: now,
        created_by: caller.name().to_owned(),
        last_used_at_ms: None,
    };
    let mut tx = state.store().begin().await?;
    if let Some(agent) = &record.agent {
        validate::name("agent", agent)?;
        if tx.agent(agent).await?.is_none() {
            return Err(Error::invalid(
                "agent",
                format!("agent '{agent}' does not exist; create it first"),
            ));
        }
    }
    tx.create_setup_key(&record, issued.digest.as_bytes()).await?;
    let dto = setup_key_to_dto(&record, now);
    let entry = caller.entry(Change::Create, SETUP_KEY, &record.name, None, Some(&dto))?;
    tx.record_audit(&entry).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(SetupKeyCreated { setup_key: dto, key })))
}

#[utoipa::path(
    delete, path = "/api/v1/setup-keys/{name}", tag = "setup-keys",
    params(("name" = String, Path, description = "setup key name")),
    responses((status = 200, description = "revoked (kept, for the record)", body = SetupKey), (status = 404, body = ErrorBody))
)]
pub(crate) async fn revoke_setup_key(
    State(state): State<SignInState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Json<SetupKey>, Error> {
    let now = crate::sign_in::now_ms();
    let mut tx = state.store().begin().await?;
    let before = tx
        .setup_key(&name)
        .await?
        .ok_or(Error::NotFound { kind: SETUP_KEY, name: name.clone() })?;
    let after = tx
        .revoke_setup_key(&name, now)
        .await?
        .ok_or(Error::NotFound { kind: SETUP_KEY, name: name.clone() })?;
    let (before, after) = (setup_key_to_dto(&before, now), setup_key_to_dto(&after, now));
    let mut entry = caller.entry(Change::Update, SETUP_KEY, &name, Some(&before), Some(&after))?;
    entry.action = "setup_key.revoke".to_owned();
    tx.record_audit(&entry).await?;
    tx.commit().await?;
    Ok(Json(after))
}

// ---- sessions -----------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/sessions", tag = "sessions",
    params(SessionQuery),
    responses((status = 200, description = "sessions, newest first", body = Vec<Session>))
)]
pub(crate) async fn list_sessions(
    State(state): State<SignInState>,
    Query(query): Query<SessionQuery>,
) -> Result<Json<Vec<Session>>, Error> {
    let records = state
        .store()
        .sessions(&store::SessionQuery {
            name: query.name,
            include_inactive: query.all,
            limit: None,
        })
        .await?;
    Ok(Json(records.iter().map(session_to_dto).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = Session), (status = 404, body = ErrorBody))
)]
pub(crate) async fn show_session(
    State(state): State<SignInState>,
    Path(id): Path<String>,
) -> Result<Json<Session>, Error> {
    let record =
        state.store().session(&id).await?.ok_or(Error::NotFound { kind: "session", name: id })?;
    Ok(Json(session_to_dto(&record)))
}

#[utoipa::path(
    delete, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = SessionsRevoked), (status = 404, body = ErrorBody))
)]
pub(crate) async fn revoke_session(
    State(state): State<SignInState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<SessionsRevoked>, Error> {
    let current = state
        .store()
        .session(&id)
        .await?
        .ok_or(Error::NotFound { kind: "session", name: id.clone() })?;
    if current.revoked_at_ms.is_some() {
        // Revoking a revoked session again changes nothing.
        return Ok(Json(SessionsRevoked { revoked: Vec::new() }));
    }
    let mut tx = state.store().begin().await?;
    let record = tx
        .revoke_session(&id, &format!("revoked by {}", caller.name()))
        .await?
        .ok_or(Error::NotFound { kind: "session", name: id })?;
    let revoked = end_sessions(&state, &caller, tx, &[record]).await?;
    state.sessions_ended().await;
    Ok(Json(SessionsRevoked { revoked }))
}

#[utoipa::path(
    delete, path = "/api/v1/sessions", tag = "sessions",
    params(SessionQuery),
    responses((status = 200, description = "every live session of that name, revoked", body = SessionsRevoked), (status = 400, body = ErrorBody))
)]
pub(crate) async fn revoke_sessions_of(
    State(state): State<SignInState>,
    Query(query): Query<SessionQuery>,
    caller: Caller,
) -> Result<Json<SessionsRevoked>, Error> {
    let name = query.name.filter(|n| !n.is_empty()).ok_or_else(|| {
        Error::invalid("name", "say whose sessions to revoke (?name=alice@example.com)")
    })?;
    let reason = format!("revoked by {}", caller.name());
    let mut tx = state.store().begin().await?;
    let mut records = tx.revoke_sessions_of(PrincipalKind::User, &name, &reason).await?;
    records.extend(tx.revoke_sessions_of(PrincipalKind::Agent, &name, &reason).await?);
    let revoked = end_sessions(&state, &caller, tx, &records).await?;
    if !revoked.is_empty() {
        state.sessions_ended().await;
    }
    Ok(Json(SessionsRevoked { revoked }))
}
