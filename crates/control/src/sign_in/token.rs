//! `POST /auth/token` (device-code, authorization-code and refresh-token grants) and
//! `POST /auth/revoke`.
//!
//! A refresh re-checks the session's owner where they are vouched for: with the IdP (its own
//! refresh grant; a refusal ends the session), the local account (deleted or deactivated ends
//! it), or the agent record (deleted ends it); SCIM deactivation ends any. The IdP round trip is
//! made outside any database transaction; the rotation then happens only if the refresh token
//! is still the session's current one, so of two concurrent refreshes with the same token,
//! exactly one wins.

use std::time::Instant;

use axum::{
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use domain::{Principal, PrincipalKind};
use http::StatusCode;
use identity::{verify_s256, TokenDigest, TokenSet, TokenVerifier};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use store::{ActorKind, AuditEntry, SessionRecord, SessionSource};

use super::{
    device::broker_failure,
    issue::{self, actor_kind, fresh_tokens, now_ms, refreshable, token_response, Flow},
    local_principal, local_username,
    oauth::{form, no_store_json, required, Failure},
    pending::{DeviceFlow, DeviceWait, Vouched},
    Broker, SignInState,
};

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    grant_type: Option<String>,
    #[serde(default)]
    device_code: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    code_verifier: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default, rename = "client_id")]
    _client_id: Option<String>,
    #[serde(default, rename = "scope")]
    _scope: Option<String>,
}

/// `POST /auth/token`.
pub(crate) async fn token(State(state): State<SignInState>, body: Bytes) -> Response {
    let result = async {
        let input: TokenForm = form(&body)?;
        match required(&input.grant_type, "grant_type")? {
            api_types::DEVICE_CODE_GRANT => device_grant(&state, required(&input.device_code, "device_code")?).await,
            "authorization_code" => code_grant(&state, &input).await,
            "refresh_token" => refresh_grant(&state, required(&input.refresh_token, "refresh_token")?).await,
            other => Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type '{}' is not supported; use the device_code, authorization_code or refresh_token grant", other.chars().take(64).collect::<String>()),
            )),
        }
    }
    .await;
    match result {
        Ok(answer) => no_store_json(StatusCode::OK, &answer),
        Err(failure) => failure.into_response(),
    }
}

/// What polling a device flow found.
enum Poll {
    Local(Vouched, Option<String>),
    External(SecretString, Option<String>),
}

async fn device_grant(
    state: &SignInState,
    device_code: &str,
) -> Result<api_types::TokenResponse, Failure> {
    let digest = TokenDigest::of(device_code);
    let now = Instant::now();
    let polled = state.pending().with_device(&digest, |flow| {
        let Some(flow) = flow else {
            return (Err(expired()), false);
        };
        if flow.expires_at <= now {
            return (Err(expired()), false);
        }
        if flow.last_poll.is_some_and(|last| now.duration_since(last) < flow.interval) {
            // RFC 8628 §3.5: every slow_down adds 5 seconds to the interval.
            flow.interval += std::time::Duration::from_secs(5);
            flow.last_poll = Some(now);
            return (
                Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "slow_down",
                    "polling faster than the interval; wait longer between polls",
                )),
                true,
            );
        }
        flow.last_poll = Some(now);
        let DeviceFlow { wait, client, .. } = flow;
        match wait {
            DeviceWait::Local { denied: true, .. } => {
                (Err(Failure::access_denied("the sign-in was denied")), false)
            }
            DeviceWait::Local { approved: Some(who), .. } => {
                (Ok(Poll::Local(who.clone(), client.clone())), false)
            }
            DeviceWait::Local { .. } => (Err(pending_failure()), true),
            DeviceWait::External { idp_device_code } => {
                (Ok(Poll::External(idp_device_code.clone(), client.clone())), true)
            }
        }
    })?;
    match polled {
        Poll::Local(who, client) => {
            let tx = state.store().begin().await?;
            state.open_session(tx, who, client, Flow::Device).await
        }
        Poll::External(idp_device_code, client) => {
            let Some((broker, verifier)) = state.broker()? else {
                return Err(Failure::internal(
                    "an external device flow without an external identity provider",
                ));
            };
            let outcome = broker.client.poll_device(idp_device_code.expose_secret()).await;
            let tokens = match outcome {
                Ok(tokens) => tokens,
                Err(err) => {
                    let failure = broker_failure(err);
                    if !matches!(
                        failure.error(),
                        "authorization_pending" | "slow_down" | "temporarily_unavailable"
                    ) {
                        state.pending().with_device(&digest, |_| ((), false));
                    } else if failure.error() == "slow_down" {
                        state.pending().with_device(&digest, |flow| {
                            if let Some(flow) = flow {
                                flow.interval += std::time::Duration::from_secs(5);
                            }
                            ((), true)
                        });
                    }
                    return Err(failure);
                }
            };
            // Approved: the device code is spent whatever happens next.
            state.pending().with_device(&digest, |_| ((), false));
            let who = vouch_external(state, broker, verifier, &tokens, None).await?;
            let tx = state.store().begin().await?;
            state.open_session(tx, who, client, Flow::Device).await
        }
    }
}

fn expired() -> Failure {
    Failure::new(
        StatusCode::BAD_REQUEST,
        "expired_token",
        "the device code is unknown or expired; start the sign-in again",
    )
}

fn pending_failure() -> Failure {
    Failure::new(
        StatusCode::BAD_REQUEST,
        "authorization_pending",
        "waiting for the person to approve the sign-in",
    )
}

/// Who the IdP's tokens say signed in, then the directory applied. The ID token (OpenID
/// Connect's statement of who signed in, for our client id, with the sign-in's `nonce` when one
/// was sent) when the IdP returned one; else the access token, checked as on the AI endpoint
/// (IdPs whose access tokens are opaque, such as Google's, always return an ID token).
pub(crate) async fn vouch_external(
    state: &SignInState,
    broker: &Broker,
    verifier: &TokenVerifier,
    tokens: &TokenSet,
    nonce: Option<&str>,
) -> Result<Vouched, Failure> {
    let principal = verify_idp_tokens(broker, verifier, tokens, nonce).await?;
    let principal = state
        .admit(principal)
        .ok_or_else(|| Failure::access_denied("this account is deactivated"))?;
    Ok(Vouched {
        groups: principal.groups.clone(),
        principal,
        source: SessionSource::Oidc,
        idp_refresh: tokens.refresh_token.clone(),
    })
}

async fn verify_idp_tokens(
    broker: &Broker,
    verifier: &TokenVerifier,
    tokens: &TokenSet,
    nonce: Option<&str>,
) -> Result<Principal, Failure> {
    let now = std::time::SystemTime::now();
    let (verified, what, hint) = match &tokens.id_token {
        Some(id_token) => (
            broker.id_tokens.verify_id_token(id_token.expose_secret(), now, nonce).await,
            "ID token",
            "check the server's [oidc] client_id",
        ),
        None => (
            verifier.verify(tokens.access_token.expose_secret(), now).await,
            "access token",
            "check the server's [oidc] audiences and scopes",
        ),
    };
    let principal = verified.map_err(|err| {
        if err.is_unavailable() {
            return Failure::unavailable(
                "the identity provider's keys cannot be fetched; try again shortly",
            );
        }
        tracing::warn!(
            reason = err.reason(),
            token = what,
            "the identity provider issued a token this server refuses"
        );
        Failure::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            format!("the identity provider's {what} is not usable here ({err}); {hint}"),
        )
    })?;
    tracing::debug!(token = what, principal = %principal.name, "identity from the identity provider");
    if principal.kind != PrincipalKind::User {
        return Err(Failure::access_denied(
            "the identity provider's token names no person (no email claim; request the email scope)",
        ));
    }
    Ok(principal)
}

async fn code_grant(
    state: &SignInState,
    input: &TokenForm,
) -> Result<api_types::TokenResponse, Failure> {
    let code = required(&input.code, "code")?;
    let verifier = required(&input.code_verifier, "code_verifier")?;
    let redirect_uri = required(&input.redirect_uri, "redirect_uri")?;
    let issued = state.pending().take_code(&TokenDigest::of(code)).ok_or_else(|| {
        Failure::invalid_grant("the authorization code is unknown, used or expired; sign in again")
    })?;
    if issued.redirect_uri != redirect_uri {
        return Err(Failure::invalid_grant(
            "redirect_uri does not match the one the sign-in started with",
        ));
    }
    if !verify_s256(verifier, &issued.challenge) {
        return Err(Failure::invalid_grant("code_verifier does not match the code_challenge"));
    }
    let tx = state.store().begin().await?;
    state.open_session(tx, issued.vouched, issued.client, Flow::Browser).await
}

/// A session's owner as they stand now, or why the session must end.
pub(super) enum Recheck {
    Current { principal: Principal, groups: Vec<String>, idp_refresh: Option<SecretString> },
    Ended(String),
}

async fn refresh_grant(
    state: &SignInState,
    refresh_token: &str,
) -> Result<api_types::TokenResponse, Failure> {
    let digest = TokenDigest::of(refresh_token);
    let now = now_ms();
    let Some(stored) = state.store().session_by_refresh(digest.as_bytes()).await? else {
        // A spent refresh token presented again: someone holds a copy of it, so the session
        // ends for everyone who has it (refresh-token reuse detection).
        if let Some(record) = state.store().session_by_rotated_refresh(digest.as_bytes()).await? {
            // A client that retried a refresh whose answer it lost is not a thief: a token
            // rotated moments ago is only refused.
            let grace = i64::try_from(state.settings().reuse_grace.as_millis()).unwrap_or(0);
            let moments_ago = now - record.refreshed_at_ms < grace;
            if record.revoked_at_ms.is_none() && !moments_ago {
                tracing::warn!(
                    session = %record.id,
                    principal = %record.name,
                    "a rotated refresh token was presented again; revoking the session"
                );
                end_session(state, &record, "refresh token reused").await?;
            }
        }
        return Err(Failure::invalid_grant(
            "the refresh token is unknown or was already used; sign in again (agentnet login)",
        ));
    };
    refreshable(&stored.record, now).map_err(Failure::invalid_grant)?;
    let recheck = recheck(state, &stored.record, stored.idp_refresh_token.as_ref()).await?;
    let (principal, groups, idp_refresh) = match recheck {
        Recheck::Current { principal, groups, idp_refresh } => (principal, groups, idp_refresh),
        Recheck::Ended(reason) => {
            // Only if the token is still the session's: a concurrent refresh that rotated it
            // may have spent the IdP's refresh token that this one was refused for.
            let current = state.store().session_by_refresh(digest.as_bytes()).await?;
            if current.is_none_or(|c| c.record.id != stored.record.id) {
                return Err(Failure::invalid_grant(
                    "the refresh token was already used; sign in again (agentnet login)",
                ));
            }
            end_session(state, &stored.record, &reason).await?;
            return Err(Failure::invalid_grant(format!(
                "{reason}; sign in again (agentnet login)"
            )));
        }
    };

    let settings = state.settings();
    let tokens = fresh_tokens()?;
    let mut record = stored.record;
    (record.access_expires_at_ms, record.refresh_expires_at_ms) =
        issue::token_expiries(settings, now, record.expires_at_ms);
    record.refreshed_at_ms = now;
    record.groups = groups;

    let mut tx = state.store().begin().await?;
    // Still the current refresh token? A concurrent refresh may have rotated it meanwhile.
    match tx.session_by_refresh(digest.as_bytes()).await? {
        Some(current)
            if current.record.id == record.id && current.record.revoked_at_ms.is_none() => {}
        _ => {
            return Err(Failure::invalid_grant(
                "the refresh token was already used; sign in again (agentnet login)",
            ))
        }
    }
    tx.rotate_session(
        &record.id,
        &tokens.digests,
        record.access_expires_at_ms,
        record.refresh_expires_at_ms,
        &record.groups,
        idp_refresh.as_ref(),
    )
    .await?;
    tx.commit().await?;
    state.sessions().insert(
        tokens.access_digest,
        identity::SessionEntry {
            session_id: record.id.clone(),
            principal,
            expires_at_ms: record.access_expires_at_ms,
        },
    );
    Ok(token_response(&record, &tokens, now))
}

pub(super) async fn recheck(
    state: &SignInState,
    record: &SessionRecord,
    idp_refresh: Option<&SecretString>,
) -> Result<Recheck, Failure> {
    let admitted = |principal: Principal| state.admit(principal);
    match record.source {
        SessionSource::Oidc => {
            let Ok(Some((broker, verifier))) = state.broker() else {
                return Ok(Recheck::Ended(
                    "the server no longer signs people in through an identity provider".into(),
                ));
            };
            let idp = &broker.client;
            let Some(idp_refresh) = idp_refresh else {
                return Ok(Recheck::Ended("the identity provider gave no refresh token at sign-in, so the session cannot be renewed".into()));
            };
            let tokens = match idp.refresh(idp_refresh, None).await {
                Ok(tokens) => tokens,
                Err(identity::BrokerError::InvalidGrant { description }) => {
                    return Ok(Recheck::Ended(format!(
                        "the identity provider no longer accepts this sign-in{}",
                        description.map(|d| format!(" ({d})")).unwrap_or_default()
                    )));
                }
                Err(err) => return Err(broker_failure(err)),
            };
            let principal = verify_idp_tokens(broker, verifier, &tokens, None).await?;
            // The same person: by subject, or by email where an IdP's access and ID tokens name
            // the subject differently (Entra's pairwise subjects).
            if principal.subject != record.subject
                && !principal.name.eq_ignore_ascii_case(&record.name)
            {
                return Ok(Recheck::Ended(
                    "the identity provider answered for another person".into(),
                ));
            }
            let Some(principal) = admitted(principal) else {
                return Ok(Recheck::Ended("the account is deactivated".into()));
            };
            Ok(Recheck::Current {
                groups: principal.groups.clone(),
                principal,
                idp_refresh: tokens.refresh_token,
            })
        }
        SessionSource::Local if !state.source().is_local() => Ok(Recheck::Ended(
            "this server now signs people in through its identity provider, not local accounts"
                .into(),
        )),
        SessionSource::Local => {
            let user = match local_username(&record.subject) {
                Some(username) => state.store().local_user(username).await?,
                None => None,
            };
            let Some(user) = user.filter(|u| u.active) else {
                return Ok(Recheck::Ended("the local account was deleted or deactivated".into()));
            };
            let Some(principal) = admitted(local_principal(&user)) else {
                return Ok(Recheck::Ended("the account is deactivated".into()));
            };
            Ok(Recheck::Current { groups: principal.groups.clone(), principal, idp_refresh: None })
        }
        SessionSource::SetupKey => {
            let Some(agent) = state.store().agent(&record.name).await? else {
                return Ok(Recheck::Ended(format!("agent '{}' was deleted", record.name)));
            };
            Ok(Recheck::Current {
                principal: Principal::agent(agent.name, Vec::new()),
                groups: agent.groups,
                idp_refresh: None,
            })
        }
    }
}

/// Revokes a session whose owner no longer checks out, and says why in the audit log.
pub(super) async fn end_session(
    state: &SignInState,
    record: &SessionRecord,
    reason: &str,
) -> Result<(), Failure> {
    let mut tx = state.store().begin().await?;
    let revoked = tx.revoke_session(&record.id, reason).await?;
    let records: Vec<SessionRecord> = revoked.into_iter().collect();
    issue::revoke_sessions(state.sessions(), tx, &records, (ActorKind::System, "refresh"), None)
        .await?;
    state.sessions_ended().await;
    Ok(())
}

#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "token_type_hint")]
    _hint: Option<String>,
    #[serde(default, rename = "client_id")]
    _client_id: Option<String>,
}

/// `POST /auth/revoke` (RFC 7009): signs out the session of an access or refresh token. Answers
/// 200 whether or not the token was known, as the RFC says.
pub(crate) async fn revoke(State(state): State<SignInState>, body: Bytes) -> Response {
    let result = async {
        let input: RevokeForm = form(&body)?;
        let token = required(&input.token, "token")?;
        let digest = TokenDigest::of(token);
        let record = match state.store().session_by_refresh(digest.as_bytes()).await? {
            Some(stored) => Some((stored.record, stored.idp_refresh_token)),
            None => state.store().session_by_access(digest.as_bytes()).await?.map(|r| (r, None)),
        };
        let Some((record, idp_refresh)) = record.filter(|(r, _)| r.revoked_at_ms.is_none()) else {
            return Ok(());
        };
        let mut tx = state.store().begin().await?;
        let Some(revoked) = tx.revoke_session(&record.id, "signed out").await? else { return Ok(()) };
        let mut entry = AuditEntry::new(actor_kind(revoked.kind), revoked.name.clone(), "session.sign_out", "session", revoked.id.clone());
        entry.after = serde_json::to_value(issue::session_to_dto(&revoked)).ok();
        tx.record_audit(&entry).await?;
        tx.commit().await?;
        state.sessions().revoke(&revoked.id);
        tracing::info!(session = %revoked.id, principal = %revoked.name, "signed out");
        state.sessions_ended().await;
        // Best effort: tell the IdP too, so its refresh token dies with the session.
        if let (Some(idp_refresh), Ok(Some((broker, _)))) = (idp_refresh, state.broker()) {
            if let Err(err) = broker.client.revoke(&idp_refresh).await {
                tracing::debug!(error = %crate::error::chain(&err), "the identity provider did not take the revocation");
            }
        }
        Ok::<(), Failure>(())
    }
    .await;
    match result {
        Ok(()) => no_store_json(StatusCode::OK, &serde_json::json!({})),
        Err(failure) => failure.into_response(),
    }
}
