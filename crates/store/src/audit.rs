//! The audit log: who changed what, when, with the record before and after the change. Written
//! in the same transaction as the change it describes wherever the change is a store write (see
//! [`Transaction::record_audit`](crate::Transaction::record_audit)), read back newest first with
//! filters.
//!
//! Secrets never go into an entry: `before`/`after` are what the admin API shows of a record,
//! and that never includes a key (a provider shows its fingerprint only). The callers build
//! them; this module stores what it is given.

use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::{now_ms, Error, Result, Store};

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// Someone on the server host, through the admin Unix socket.
    AdminSocket,
    /// A member of the admin group, with their session.
    Admin,
    /// The IdP's SCIM client.
    Scim,
    /// A person acting for themselves (e.g. signing in).
    User,
    /// An agent acting for itself (e.g. enrolling).
    Agent,
    /// agentnet itself (e.g. applying the config file).
    System,
}

impl ActorKind {
    pub const ALL: [ActorKind; 6] = [
        ActorKind::AdminSocket,
        ActorKind::Admin,
        ActorKind::Scim,
        ActorKind::User,
        ActorKind::Agent,
        ActorKind::System,
    ];

    /// The spelling stored in the table and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::AdminSocket => "admin-socket",
            ActorKind::Admin => "admin",
            ActorKind::Scim => "scim",
            ActorKind::User => "user",
            ActorKind::Agent => "agent",
            ActorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Assigned by the store, increasing; ignored when recording.
    pub id: i64,
    /// When the change happened, unix milliseconds.
    pub at_ms: i64,
    pub actor_kind: ActorKind,
    /// Who, within the kind: `uid:0` for a socket peer, an admin's email, `scim`, an agent name.
    pub actor: String,
    /// What, dotted: `provider.create`, `provider.key.set`, `policy.update`, `group.delete`,
    /// `scim.user.update`.
    pub action: String,
    /// The kind of record changed: `provider`, `group`, `agent`, `policy`, `limit`, `user`, …
    pub target_kind: String,
    /// The record's name or id.
    pub target: String,
    /// The record before the change, as the API shows it; `None` for a create. Never a secret.
    pub before: Option<Value>,
    /// The record after the change, as the API shows it; `None` for a delete. Never a secret.
    pub after: Option<Value>,
    /// The id of the request that made the change, when there is one.
    pub request_id: Option<String>,
}

impl AuditEntry {
    /// An entry stamped now, without snapshots or request id: set `before`, `after` and
    /// `request_id` on it as they apply.
    pub fn new(
        actor_kind: ActorKind,
        actor: impl Into<String>,
        action: impl Into<String>,
        target_kind: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        Self {
            id: 0,
            at_ms: now_ms(),
            actor_kind,
            actor: actor.into(),
            action: action.into(),
            target_kind: target_kind.into(),
            target: target.into(),
            before: None,
            after: None,
            request_id: None,
        }
    }
}

/// Filters for reading the audit log; all optional, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The actor, exactly (`uid:0`, `ada@example.com`, `scim`).
    pub actor: Option<String>,
    /// A prefix of the action: `provider` matches `provider.create` and `provider.key.set`.
    pub action: Option<String>,
    pub target_kind: Option<String>,
    /// The target, exactly.
    pub target: Option<String>,
    /// Inclusive lower bound, unix milliseconds.
    pub since_ms: Option<i64>,
    /// Exclusive upper bound, unix milliseconds.
    pub until_ms: Option<i64>,
    /// At most this many entries: default 100, at most 1000.
    pub limit: Option<u32>,
}

/// The default and largest number of entries one query returns.
pub const DEFAULT_AUDIT_LIMIT: u32 = 100;
pub const MAX_AUDIT_LIMIT: u32 = 1000;

const COLUMNS: &str =
    "id, at_ms, actor_kind, actor, action, target_kind, target, before, after, request_id";

impl Store {
    /// Records one entry on its own. A change made through the store should record its entry
    /// in the change's own transaction instead ([`Store::begin`], then
    /// [`Transaction::record_audit`](crate::Transaction::record_audit)), so that there is never
    /// a change without its entry.
    pub async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_audit(&mut conn, entry).await
    }

    /// Entries matching `q`, newest first (at most 1000, default 100).
    pub async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_log WHERE 1 = 1"));
        if let Some(actor) = &q.actor {
            query.push(" AND actor = ").push_bind(actor);
        }
        if let Some(prefix) = &q.action {
            // A prefix compare without LIKE: no wildcards to escape, and case-sensitive.
            let chars = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
            query.push(" AND substr(action, 1, ").push_bind(chars);
            query.push(") = ").push_bind(prefix);
        }
        if let Some(kind) = &q.target_kind {
            query.push(" AND target_kind = ").push_bind(kind);
        }
        if let Some(target) = &q.target {
            query.push(" AND target = ").push_bind(target);
        }
        if let Some(t) = q.since_ms {
            query.push(" AND at_ms >= ").push_bind(t);
        }
        if let Some(t) = q.until_ms {
            query.push(" AND at_ms < ").push_bind(t);
        }
        let limit = i64::from(q.limit.unwrap_or(DEFAULT_AUDIT_LIMIT).min(MAX_AUDIT_LIMIT));
        query.push(" ORDER BY at_ms DESC, id DESC LIMIT ").push_bind(limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(entry_from_row).collect()
    }
}

/// Inserts `entry` on `conn`: a pooled connection, or an open transaction, so that the entry
/// commits or rolls back with the change it describes.
pub(crate) async fn insert_audit(conn: &mut SqliteConnection, entry: &AuditEntry) -> Result<()> {
    let json = |v: &Option<Value>| v.as_ref().map(Value::to_string);
    sqlx::query(
        "INSERT INTO audit_log
             (at_ms, actor_kind, actor, action, target_kind, target, before, after, request_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .bind(entry.at_ms)
    .bind(entry.actor_kind.as_str())
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.target_kind)
    .bind(&entry.target)
    .bind(json(&entry.before))
    .bind(json(&entry.after))
    .bind(&entry.request_id)
    .execute(conn)
    .await?;
    Ok(())
}

fn entry_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuditEntry> {
    let id: i64 = row.try_get("id")?;
    let what = || format!("audit entry {id}");
    let kind: String = row.try_get("actor_kind")?;
    let actor_kind = ActorKind::parse(&kind).ok_or_else(|| Error::Corrupt {
        what: what(),
        source: serde::de::Error::custom(format!("unknown actor kind '{kind}'")),
    })?;
    let json = |column: &str| -> Result<Option<Value>> {
        let text: Option<String> = row.try_get(column)?;
        text.map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|source| Error::Corrupt { what: what(), source })
    };
    Ok(AuditEntry {
        id,
        at_ms: row.try_get("at_ms")?,
        actor_kind,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target_kind: row.try_get("target_kind")?,
        target: row.try_get("target")?,
        before: json("before")?,
        after: json("after")?,
        request_id: row.try_get("request_id")?,
    })
}

#[cfg(test)]
mod tests;
