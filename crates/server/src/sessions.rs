//! Sessions in the server: the data plane's session table loaded at start, kept in step with
//! changes the sign-in endpoints do not make themselves (a SCIM deactivation, a deleted agent),
//! and pruned of expired entries.

use std::{sync::Arc, time::Duration};

use domain::{Principal, PrincipalKind};
use identity::{SessionEntry, SessionTable, TokenDigest};
use proxy::Gateway;
use store::{ActorKind, AuditEntry, SessionRecord, SessionSource, Store};
use tokio_util::sync::CancellationToken;

/// How often expired sessions are dropped from memory and old ones from the database.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Revoked and expired sessions stay listed (`agentnet admin sessions list --all`) this long.
const KEEP_ENDED: Duration = Duration::from_secs(30 * 86_400);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The principal the data plane knows a session by. An agent's carries no groups: the data
/// plane adds the agent record's current ones at each request.
pub(crate) fn principal_of(record: &SessionRecord) -> Principal {
    match record.kind {
        PrincipalKind::User => {
            Principal::user(record.subject.clone(), record.name.clone(), record.groups.clone())
        }
        PrincipalKind::Agent => Principal::agent(record.name.clone(), Vec::new()),
    }
}

/// The live sessions (not revoked, access token not expired), for the data plane's table.
pub(crate) async fn load(store: &Store) -> anyhow::Result<Vec<(TokenDigest, SessionEntry)>> {
    let live = store.live_sessions(now_ms()).await?;
    Ok(live
        .into_iter()
        .map(|(record, access)| {
            let entry = SessionEntry {
                session_id: record.id.clone(),
                principal: principal_of(&record),
                expires_at_ms: record.access_expires_at_ms,
            };
            (TokenDigest::from_bytes(access), entry)
        })
        .collect())
}

/// Revokes the sessions whose owner lost the right to one: a person the directory (SCIM or
/// local accounts) deactivated, an agent that no longer exists, a local account's session once
/// the server signs people in through an external IdP. Every unrevoked session in the store is
/// checked, idle ones included (their access token may have expired, their refresh token not),
/// so none can come back at a refresh. The store is written first, then the data plane forgets
/// them. Runs at start and after every change. Returns how many were revoked.
pub(crate) async fn revoke_lost(
    store: &Store,
    gateway: &Gateway,
    sessions: &SessionTable,
    local_accounts: bool,
) -> anyhow::Result<usize> {
    let agents: std::collections::HashSet<String> =
        store.agents().await?.into_iter().map(|a| a.name).collect();
    let live = store
        .sessions(&store::SessionQuery { name: None, include_inactive: false, limit: None })
        .await?;
    forget_revoked(store, sessions, &live).await?;
    let lost: Vec<(SessionRecord, &'static str)> = live
        .into_iter()
        .filter_map(|record| {
            let reason = match record.kind {
                PrincipalKind::User if record.source == SessionSource::Local && !local_accounts => {
                    "local accounts are no longer used"
                }
                PrincipalKind::User if gateway.apply_directory(principal_of(&record)).is_none() => {
                    "account deactivated"
                }
                PrincipalKind::Agent if !agents.contains(&record.name) => "agent deleted",
                _ => return None,
            };
            Some((record, reason))
        })
        .collect();
    if lost.is_empty() {
        return Ok(0);
    }
    let mut tx = store.begin().await?;
    for (record, reason) in &lost {
        if tx.revoke_session(&record.id, reason).await?.is_some() {
            let mut entry = AuditEntry::new(
                ActorKind::System,
                "directory",
                "session.revoke",
                "session",
                record.id.clone(),
            );
            entry.after = Some(serde_json::json!({
                "name": record.name,
                "kind": record.kind.as_str(),
                "reason": reason,
            }));
            tx.record_audit(&entry).await?;
        }
    }
    tx.commit().await?;
    for (record, _) in &lost {
        sessions.revoke(&record.id);
    }
    tracing::info!(
        sessions = lost.len(),
        "revoked the sessions of deactivated people and deleted agents"
    );
    Ok(lost.len())
}

/// Makes the data plane forget sessions that were revoked in the store by a change that did
/// not touch the table itself (an agent deleted through the admin API revokes its sessions in
/// the same transaction). A table entry missing from `live` is checked once more in the store:
/// it may be a session opened since `live` was read.
async fn forget_revoked(
    store: &Store,
    sessions: &SessionTable,
    live: &[SessionRecord],
) -> anyhow::Result<()> {
    let live: std::collections::HashSet<&str> = live.iter().map(|r| r.id.as_str()).collect();
    let unlisted = sessions.session_ids().into_iter().filter(|id| !live.contains(id.as_str()));
    for id in unlisted {
        let ended = store.session(&id).await?.is_none_or(|r| r.revoked_at_ms.is_some());
        if ended {
            sessions.revoke(&id);
        }
    }
    Ok(())
}

/// Drops expired entries from the table and long-ended sessions from the database, hourly.
pub(crate) async fn run_pruner(
    store: Store,
    sessions: Arc<SessionTable>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let now = now_ms();
        sessions.prune(now);
        let cutoff = now.saturating_sub(i64::try_from(KEEP_ENDED.as_millis()).unwrap_or(0));
        match store.prune_sessions(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "deleted sessions that ended over 30 days ago"),
            Err(err) => tracing::warn!(error = %err, "cannot prune old sessions"),
        }
    }
}
