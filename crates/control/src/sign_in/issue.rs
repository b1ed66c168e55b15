//! The token issuer: creating a session (store row, audit entry, data-plane table entry, in that
//! order, so that a token is never usable before it is durable), rotating it on refresh, and
//! revoking sessions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api_types::{time::format_rfc3339, Session, SessionIdentity, TokenResponse};
use domain::PrincipalKind;
use identity::{issue_token, SessionEntry, SessionTable, TokenKind};
use secrecy::ExposeSecret;
use store::{ActorKind, AuditEntry, SessionRecord, SessionTokens, Transaction};

use super::{oauth::Failure, pending::Vouched, SignInState};

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// When a session's access and refresh tokens issued at `now` expire: their lifetimes from
/// now, never past the session's own end.
pub(crate) fn token_expiries(
    settings: &super::SignInSettings,
    now: i64,
    session_end: i64,
) -> (i64, i64) {
    let access = now.saturating_add(ms(settings.access_ttl)).min(session_end);
    let refresh = now.saturating_add(ms(settings.refresh_idle)).min(session_end);
    (access, refresh)
}

/// Fresh access and refresh tokens, and their digests.
pub(crate) struct FreshTokens {
    pub(crate) access: secrecy::SecretString,
    pub(crate) refresh: secrecy::SecretString,
    pub(crate) digests: SessionTokens,
    pub(crate) access_digest: identity::TokenDigest,
}

pub(crate) fn fresh_tokens() -> Result<FreshTokens, Failure> {
    let access = issue_token(TokenKind::Access)?;
    let refresh = issue_token(TokenKind::Refresh)?;
    Ok(FreshTokens {
        digests: SessionTokens {
            access: *access.digest.as_bytes(),
            refresh: *refresh.digest.as_bytes(),
        },
        access_digest: access.digest,
        access: access.secret,
        refresh: refresh.secret,
    })
}

/// How a session came to be, for its audit entry.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Flow {
    Device,
    Browser,
    SetupKey,
}

impl Flow {
    fn action(self) -> &'static str {
        match self {
            Flow::Device => "session.sign_in.device",
            Flow::Browser => "session.sign_in.browser",
            Flow::SetupKey => "session.enroll",
        }
    }
}

pub(crate) fn actor_kind(kind: PrincipalKind) -> ActorKind {
    match kind {
        PrincipalKind::User => ActorKind::User,
        PrincipalKind::Agent => ActorKind::Agent,
    }
}

impl SignInState {
    /// Creates a session for `who` in `tx` (which may hold other changes of the same sign-in,
    /// such as an enrolled agent's record), records its audit entry, commits, and only then
    /// makes the access token usable in the data plane.
    pub(crate) async fn open_session(
        &self,
        mut tx: Transaction,
        who: Vouched,
        client: Option<String>,
        flow: Flow,
    ) -> Result<TokenResponse, Failure> {
        let settings = self.settings();
        let now = now_ms();
        let tokens = fresh_tokens()?;
        let expires_at = now.saturating_add(ms(settings.session_lifetime));
        let (access_expires, refresh_expires) = token_expiries(settings, now, expires_at);
        let record = SessionRecord {
            id: ulid::Ulid::new().to_string().to_lowercase(),
            kind: who.principal.kind,
            subject: who.principal.subject.clone(),
            name: who.principal.name.clone(),
            groups: who.groups.clone(),
            source: who.source,
            client,
            created_at_ms: now,
            refreshed_at_ms: now,
            access_expires_at_ms: access_expires,
            refresh_expires_at_ms: refresh_expires,
            expires_at_ms: expires_at,
            revoked_at_ms: None,
            revoked_reason: None,
        };
        tx.insert_session(&record, &tokens.digests, who.idp_refresh.as_ref()).await?;
        let mut entry = AuditEntry::new(
            actor_kind(record.kind),
            record.name.clone(),
            flow.action(),
            "session",
            record.id.clone(),
        );
        entry.after = serde_json::to_value(session_to_dto(&record)).ok();
        tx.record_audit(&entry).await?;
        tx.commit().await?;
        tracing::info!(
            session = %record.id,
            principal = %record.name,
            kind = record.kind.as_str(),
            action = flow.action(),
            "signed in"
        );
        self.sessions().insert(
            tokens.access_digest,
            SessionEntry {
                session_id: record.id.clone(),
                principal: who.principal,
                expires_at_ms: access_expires,
            },
        );
        Ok(token_response(&record, &tokens, now))
    }
}

pub(crate) fn token_response(
    record: &SessionRecord,
    tokens: &FreshTokens,
    now: i64,
) -> TokenResponse {
    let expires_in = u64::try_from((record.access_expires_at_ms - now).max(0) / 1000).unwrap_or(0);
    TokenResponse {
        access_token: tokens.access.expose_secret().to_owned(),
        token_type: "Bearer".to_owned(),
        expires_in,
        refresh_token: tokens.refresh.expose_secret().to_owned(),
        identity: SessionIdentity {
            kind: record.kind.as_str().to_owned(),
            name: record.name.clone(),
            groups: record.groups.clone(),
            session_id: record.id.clone(),
            session_expires_at: format_rfc3339(record.expires_at_ms),
        },
    }
}

pub(crate) fn session_to_dto(record: &SessionRecord) -> Session {
    Session {
        id: record.id.clone(),
        kind: record.kind.as_str().to_owned(),
        name: record.name.clone(),
        subject: record.subject.clone(),
        groups: record.groups.clone(),
        source: record.source.as_str().to_owned(),
        client: record.client.clone(),
        created_at: format_rfc3339(record.created_at_ms),
        refreshed_at: format_rfc3339(record.refreshed_at_ms),
        expires_at: format_rfc3339(record.expires_at_ms),
        revoked_at: record.revoked_at_ms.map(format_rfc3339),
        revoked_reason: record.revoked_reason.clone(),
    }
}

/// Revokes `records` (already revoked in `tx`'s store): an audit entry each, by `actor`, then
/// commit, then the data plane forgets them. Returns their ids.
pub(crate) async fn revoke_sessions(
    sessions: &SessionTable,
    mut tx: Transaction,
    records: &[SessionRecord],
    actor: (ActorKind, &str),
    request_id: Option<&str>,
) -> Result<Vec<String>, store::Error> {
    for record in records {
        let mut entry =
            AuditEntry::new(actor.0, actor.1, "session.revoke", "session", record.id.clone());
        entry.after = serde_json::to_value(session_to_dto(record)).ok();
        entry.request_id = request_id.map(str::to_owned);
        tx.record_audit(&entry).await?;
    }
    tx.commit().await?;
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    for id in &ids {
        sessions.revoke(id);
    }
    if !ids.is_empty() {
        tracing::info!(sessions = ids.len(), actor = %actor.1, "sessions revoked");
    }
    Ok(ids)
}

/// Whether a session can still be refreshed at `now`; the reason it cannot.
pub(crate) fn refreshable(record: &SessionRecord, now: i64) -> Result<(), &'static str> {
    if record.revoked_at_ms.is_some() {
        return Err("the session was revoked; sign in again (agentnet login)");
    }
    if now >= record.expires_at_ms {
        return Err("the session has ended; sign in again (agentnet login)");
    }
    if now >= record.refresh_expires_at_ms {
        return Err("the refresh token expired from disuse; sign in again (agentnet login)");
    }
    Ok(())
}
