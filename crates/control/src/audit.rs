//! The audit log in the admin API: who is calling ([`Actor`], attached by the server), the entry
//! every successful mutation records in the same store transaction as its change, and
//! `GET /audit`.
//!
//! An entry's `before` and `after` are the record's response DTO as JSON, so they hold what the
//! API would show and nothing more: a provider's key fingerprint, never its key.

use api_types::{AuditEntry, AuditQuery, ErrorBody};
use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts, State},
    Extension, Json,
};
use http::request::Parts;
use serde::Serialize;
use serde_json::Value;

use crate::{extract::Query, ControlState, Error};

/// Who makes an admin request. The server attaches it to each request as an extension (e.g.
/// `admin-socket` with the socket peer's uid, `uid:0`; `admin` with an admin's email); a request
/// without one is attributed to [`Actor::local`].
///
/// `kind` is one of `admin-socket`, `admin`, `scim`, `user`, `agent`, `system`; a request with
/// any other kind is refused with a 500 before it changes anything (it is a server bug, and a
/// change must not go unaudited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: String,
    pub name: String,
}

impl Actor {
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Self { kind: kind.into(), name: name.into() }
    }

    /// The server host, through the admin Unix socket, peer unknown.
    pub fn local() -> Self {
        Self::new(store::ActorKind::AdminSocket.as_str(), "local")
    }
}

/// The request header whose value, if reasonable, is recorded as the entry's request id.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id recorded.
const MAX_REQUEST_ID: usize = 128;

/// The caller of a mutation, as its audit entry names it.
pub(crate) struct Caller {
    kind: store::ActorKind,
    name: String,
    request_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let actor = match <Extension<Actor> as OptionalFromRequestParts<S>>::from_request_parts(
            parts, state,
        )
        .await
        {
            Ok(Some(Extension(actor))) => actor,
            Ok(None) | Err(_) => Actor::local(),
        };
        let kind = store::ActorKind::parse(&actor.kind).ok_or_else(|| {
            Error::Internal(format!("the request's actor kind '{}' is unknown", actor.kind))
        })?;
        let request_id = request_id(&parts.headers);
        Ok(Caller { kind, name: actor.name, request_id })
    }
}

/// The request's id, from its `x-request-id` header, if that is reasonable (printable ASCII, at
/// most 128 bytes).
pub(crate) fn request_id(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
}

/// What a mutation did to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Create,
    Update,
    Delete,
    /// A provider's key was set.
    KeySet,
}

impl Change {
    /// `Create` when there was no record before, else `Update`.
    pub(crate) fn write(existed: bool) -> Self {
        if existed {
            Change::Update
        } else {
            Change::Create
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Delete => "delete",
            Change::KeySet => "key.set",
        }
    }
}

impl Caller {
    pub(crate) fn kind(&self) -> store::ActorKind {
        self.kind
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The entry for `change` to the `target_kind` record `target`; `before` and `after` are its
    /// response DTOs (`None` before a create, after a delete).
    pub(crate) fn entry<T: Serialize>(
        &self,
        change: Change,
        target_kind: &str,
        target: &str,
        before: Option<&T>,
        after: Option<&T>,
    ) -> Result<store::AuditEntry, Error> {
        let mut entry =
            self.entry_named(&format!("{target_kind}.{}", change.verb()), target_kind, target);
        entry.before = before.map(snapshot).transpose()?;
        entry.after = after.map(snapshot).transpose()?;
        Ok(entry)
    }

    /// An entry for `action` on the `target_kind` record `target`, without snapshots: for an
    /// action that is not one of [`Change`]'s (e.g. `scim.token.create`).
    pub(crate) fn entry_named(
        &self,
        action: &str,
        target_kind: &str,
        target: &str,
    ) -> store::AuditEntry {
        let mut entry =
            store::AuditEntry::new(self.kind, self.name.clone(), action, target_kind, target);
        entry.request_id = self.request_id.clone();
        entry
    }
}

fn snapshot<T: Serialize>(dto: &T) -> Result<Value, Error> {
    serde_json::to_value(dto)
        .map_err(|e| Error::Internal(format!("cannot snapshot a record for the audit log: {e}")))
}

/// Records `entry` in `tx`, commits, and tells the data plane: the end of every mutation.
pub(crate) async fn commit(
    state: &ControlState,
    mut tx: store::Transaction,
    entry: store::AuditEntry,
) -> Result<(), Error> {
    tx.record_audit(&entry).await?;
    tx.commit().await?;
    tracing::info!(
        action = %entry.action,
        target = %entry.target,
        actor_kind = entry.actor_kind.as_str(),
        actor = %entry.actor,
        "admin change"
    );
    state.changed();
    Ok(())
}

#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "matching entries, newest first", body = Vec<AuditEntry>),
        (status = 400, description = "a malformed filter, e.g. a `since` that is not RFC 3339", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<ControlState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, Error> {
    let entries = state.store.audit(&to_store_query(query)?).await?;
    Ok(Json(entries.into_iter().map(to_dto).collect()))
}

fn to_store_query(q: AuditQuery) -> Result<store::AuditQuery, Error> {
    let time = |field: &str, value: Option<String>| {
        value
            .map(|v| {
                api_types::time::parse_rfc3339(&v).map_err(|e| Error::invalid(field, e.to_string()))
            })
            .transpose()
    };
    Ok(store::AuditQuery {
        since_ms: time("since", q.since)?,
        until_ms: time("until", q.until)?,
        actor: q.actor,
        action: q.action,
        target_kind: q.target_kind,
        target: q.target,
        limit: q.limit,
    })
}

fn to_dto(e: store::AuditEntry) -> AuditEntry {
    AuditEntry {
        id: e.id,
        at: api_types::time::format_rfc3339(e.at_ms),
        actor_kind: e.actor_kind.as_str().to_owned(),
        actor: e.actor,
        action: e.action,
        target_kind: e.target_kind,
        target: e.target,
        before: e.before,
        after: e.after,
        request_id: e.request_id,
    }
}

#[cfg(test)]
mod tests;

/// Every record the config file can declare (providers, groups, agents, policies, global
/// limits), as the API shows it, keyed by (audit target kind, name): taken before and after the
/// config file is applied at start, so that what it changed is audited like an admin change
/// ([`audit_changes`]).
pub async fn record_snapshots(
    store: &store::Store,
) -> Result<std::collections::BTreeMap<(&'static str, String), Value>, Error> {
    let mut out = std::collections::BTreeMap::new();
    for r in store.providers().await? {
        out.insert(("provider", r.provider.name.clone()), snapshot(&crate::providers::to_dto(&r))?);
    }
    for g in store.groups().await? {
        out.insert(("group", g.name.clone()), snapshot(&crate::directory::group_to_dto(g))?);
    }
    for a in store.agents().await? {
        out.insert(("agent", a.name.clone()), snapshot(&crate::directory::agent_to_dto(a))?);
    }
    for p in store.policies().await? {
        out.insert(("policy", p.policy.name.clone()), snapshot(&crate::policies::to_dto(&p))?);
    }
    for l in store.global_limits().await? {
        out.insert(("limit", l.limit.name.clone()), snapshot(&crate::limits::to_dto(&l))?);
    }
    Ok(out)
}

/// Records one audit entry per record that differs between two [`record_snapshots`], by
/// `actor` (e.g. the system actor `config-file`). Returns how many.
pub async fn audit_changes(
    store: &store::Store,
    before: &std::collections::BTreeMap<(&'static str, String), Value>,
    after: &std::collections::BTreeMap<(&'static str, String), Value>,
    actor_kind: store::ActorKind,
    actor: &str,
) -> Result<usize, Error> {
    let keys: std::collections::BTreeSet<_> = before.keys().chain(after.keys()).collect();
    let mut tx = store.begin().await?;
    let mut count = 0;
    for key in keys {
        let (old, new) = (before.get(key), after.get(key));
        if old == new {
            continue;
        }
        let verb = match (old, new) {
            (None, _) => "create",
            (_, None) => "delete",
            _ => "update",
        };
        let (kind, name) = (key.0, key.1.as_str());
        let mut entry =
            store::AuditEntry::new(actor_kind, actor, format!("{kind}.{verb}"), kind, name);
        entry.before = old.cloned();
        entry.after = new.cloned();
        tx.record_audit(&entry).await?;
        count += 1;
    }
    tx.commit().await?;
    Ok(count)
}
