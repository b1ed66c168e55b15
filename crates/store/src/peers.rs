//! Overlay peers: WireGuard public keys bound to their owner (a person or an agent) and to the
//! session that registered them, each with its one overlay address, an expiry, revocation, and
//! the traffic counters the endpoint reports.
//!
//! Unrevoked peers never share a key or an address: partial UNIQUE indexes enforce it, so a
//! revoked peer's key and address can be registered again (an expired but unrevoked peer keeps
//! both until it is revoked or registered again). Revoking a session revokes its peers in the
//! same transaction (`sign_in::sessions`). What the data plane serves is [`Store::overlay_peers`]:
//! the live peers of live sessions, with the principal each one stands for. Writes go through a
//! [`Transaction`](crate::Transaction) so that the caller records the audit entry with them.

#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;

use domain::PrincipalKind;
use sqlx::{sqlite::SqliteRow, Row, SqliteConnection};

use crate::{
    sign_in::{corrupt, names_from_json, SESSION_ENDS_AT},
    Error, Result, Store, Transaction,
};

const KIND: &str = "peer";

const COLUMNS: &str = "id, name, owner_kind, owner, public_key, address, session_id, \
                       created_at_ms, expires_at_ms, revoked_at_ms, revoked_reason, \
                       last_handshake_ms, rx_bytes, tx_bytes";

/// [`COLUMNS`], qualified by the `peers` table's alias `p` (for joins).
const P_COLUMNS: &str = "p.id, p.name, p.owner_kind, p.owner, p.public_key, p.address, \
                         p.session_id, p.created_at_ms, p.expires_at_ms, p.revoked_at_ms, \
                         p.revoked_reason, p.last_handshake_ms, p.rx_bytes, p.tx_bytes";

/// A registered peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    /// Caller-generated (ULID).
    pub id: String,
    pub name: String,
    pub owner_kind: PrincipalKind,
    /// A person's email, an agent's name.
    pub owner: String,
    /// The WireGuard public key, base64 (the private key stays on the device).
    pub public_key: String,
    pub address: Ipv4Addr,
    /// The session that registered it (or last registered it again); `None` only for peers
    /// from before peers were bound to sessions, which are never live on the overlay.
    pub session_id: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub revoked_reason: Option<String>,
    pub last_handshake_ms: Option<i64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

impl PeerRecord {
    /// Whether it is neither revoked nor expired at `now_ms` (its session aside: see
    /// [`Store::overlay_peers`]).
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && now_ms < self.expires_at_ms
    }

    /// Whether it belongs to this person or agent (`owner` case-insensitively).
    pub fn is_owned_by(&self, kind: PrincipalKind, owner: &str) -> bool {
        self.owner_kind == kind && self.owner.eq_ignore_ascii_case(owner)
    }
}

/// A peer the overlay endpoint should accept, with the principal its tunnel speaks for: the
/// subject and groups of the live session it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayPeer {
    pub peer: PeerRecord,
    /// The session's subject (a person's IdP subject or `local:<username>`, an agent's name).
    pub subject: String,
    /// The session's groups as of its last sign-in or refresh (sorted).
    pub groups: Vec<String>,
    /// Where the peer's packets last came from (`ip:port`), if it ever connected.
    pub last_endpoint: Option<String>,
    /// When the session ends unless refreshed (the earlier of its absolute end and its refresh
    /// token's idle expiry): the peer stops being served then too.
    pub session_ends_at_ms: i64,
}

/// Filters for listing peers; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerQuery {
    /// Only this owner's (case-insensitive).
    pub owner: Option<String>,
    /// Include revoked and expired peers.
    pub include_inactive: bool,
}

/// Traffic and handshake figures of one peer, as the endpoint reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStats<'a> {
    pub id: &'a str,
    pub last_handshake_ms: Option<i64>,
    /// The address the peer's packets came from last (`ip:port`).
    pub endpoint: Option<&'a str>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

impl Store {
    pub async fn peers(&self, query: &PeerQuery, now_ms: i64) -> Result<Vec<PeerRecord>> {
        let mut sql = format!("SELECT {COLUMNS} FROM peers WHERE 1 = 1");
        if query.owner.is_some() {
            sql.push_str(" AND owner_key = ?1");
        }
        if !query.include_inactive {
            sql.push_str(" AND revoked_at_ms IS NULL AND expires_at_ms > ?2");
        }
        sql.push_str(" ORDER BY created_at_ms DESC, id DESC");
        let rows = sqlx::query(&sql)
            .bind(query.owner.as_deref().map(str::to_lowercase))
            .bind(now_ms)
            .fetch_all(&mut *self.pool.acquire().await?)
            .await?;
        rows.iter().map(peer_from_row).collect()
    }

    pub async fn peer(&self, id: &str) -> Result<Option<PeerRecord>> {
        peer(&mut *self.pool.acquire().await?, id).await
    }

    /// What the overlay endpoint serves at `now_ms`: every peer neither revoked nor expired
    /// whose session is live too (not revoked, not ended), with that session's subject and
    /// groups; oldest first.
    pub async fn overlay_peers(&self, now_ms: i64) -> Result<Vec<OverlayPeer>> {
        let sql = format!(
            "SELECT {P_COLUMNS}, s.subject AS session_subject, s.groups AS session_groups,
                 p.last_endpoint, {SESSION_ENDS_AT} AS session_ends_at_ms
             FROM peers p JOIN sessions s ON s.id = p.session_id
             WHERE p.revoked_at_ms IS NULL AND p.expires_at_ms > ?1
                 AND s.revoked_at_ms IS NULL AND {SESSION_ENDS_AT} > ?1
             ORDER BY p.created_at_ms, p.id"
        );
        let rows = sqlx::query(&sql).bind(now_ms).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let peer = peer_from_row(row)?;
                let groups: String = row.try_get("session_groups")?;
                let what =
                    || format!("session '{}'", peer.session_id.as_deref().unwrap_or_default());
                let groups = names_from_json(what, &groups)?;
                Ok(OverlayPeer {
                    subject: row.try_get("session_subject")?,
                    groups,
                    last_endpoint: row.try_get("last_endpoint")?,
                    session_ends_at_ms: row.try_get("session_ends_at_ms")?,
                    peer,
                })
            })
            .collect()
    }

    /// Stores what the endpoint measured (a batch, in one transaction). Unknown ids are skipped.
    pub async fn record_peer_stats(&self, stats: &[PeerStats<'_>]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for s in stats {
            sqlx::query(
                "UPDATE peers SET last_handshake_ms = COALESCE(?2, last_handshake_ms),
                     rx_bytes = ?3, tx_bytes = ?4, last_endpoint = COALESCE(?5, last_endpoint)
                 WHERE id = ?1",
            )
            .bind(s.id)
            .bind(s.last_handshake_ms)
            .bind(i64::try_from(s.rx_bytes).unwrap_or(i64::MAX))
            .bind(i64::try_from(s.tx_bytes).unwrap_or(i64::MAX))
            .bind(s.endpoint)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Transaction {
    pub async fn peer(&mut self, id: &str) -> Result<Option<PeerRecord>> {
        peer(&mut self.tx, id).await
    }

    /// The unrevoked peer holding `public_key` (expired or not), if any: at most one, by the
    /// unique index.
    pub async fn peer_by_public_key(&mut self, public_key: &str) -> Result<Option<PeerRecord>> {
        let sql =
            format!("SELECT {COLUMNS} FROM peers WHERE public_key = ?1 AND revoked_at_ms IS NULL");
        let row = sqlx::query(&sql).bind(public_key).fetch_optional(&mut *self.tx).await?;
        row.as_ref().map(peer_from_row).transpose()
    }

    /// The addresses held by unrevoked peers (expired ones included: they hold theirs until
    /// revoked), for address assignment in this transaction.
    pub async fn peer_addresses(&mut self) -> Result<Vec<Ipv4Addr>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, address FROM peers WHERE revoked_at_ms IS NULL")
                .fetch_all(&mut *self.tx)
                .await?;
        rows.into_iter()
            .map(|(id, address)| {
                address.parse().map_err(|_| {
                    corrupt(
                        format!("{KIND} '{id}'"),
                        format!("address '{address}' is not an IPv4 address"),
                    )
                })
            })
            .collect()
    }

    /// A peer registered again by its owner: bound to `session_id`, renamed, and given a new
    /// expiry; its key, address and counters stay. `Error::NotFound` if there is none.
    pub async fn rebind_peer(
        &mut self,
        id: &str,
        session_id: &str,
        name: &str,
        expires_at_ms: i64,
    ) -> Result<PeerRecord> {
        sqlx::query(
            "UPDATE peers SET session_id = ?2, name = ?3, expires_at_ms = ?4 WHERE id = ?1",
        )
        .bind(id)
        .bind(session_id)
        .bind(name)
        .bind(expires_at_ms)
        .execute(&mut *self.tx)
        .await?;
        peer(&mut self.tx, id).await?.ok_or_else(|| Error::NotFound { kind: KIND, name: id.into() })
    }

    /// Registers a peer. `Error::AlreadyExists` (kind `peer`) when a live peer already has this
    /// public key or this address (the name says which).
    pub async fn create_peer(&mut self, peer: &PeerRecord) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO peers (id, name, owner_kind, owner, owner_key, public_key, address,
                 session_id, created_at_ms, expires_at_ms, revoked_at_ms, revoked_reason,
                 last_handshake_ms, rx_bytes, tx_bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .bind(&peer.id)
        .bind(&peer.name)
        .bind(peer.owner_kind.as_str())
        .bind(&peer.owner)
        .bind(peer.owner.to_lowercase())
        .bind(&peer.public_key)
        .bind(peer.address.to_string())
        .bind(&peer.session_id)
        .bind(peer.created_at_ms)
        .bind(peer.expires_at_ms)
        .bind(peer.revoked_at_ms)
        .bind(&peer.revoked_reason)
        .bind(peer.last_handshake_ms)
        .bind(i64::try_from(peer.rx_bytes).unwrap_or(i64::MAX))
        .bind(i64::try_from(peer.tx_bytes).unwrap_or(i64::MAX))
        .execute(&mut *self.tx)
        .await;
        match done {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let what = if e.message().contains("address") {
                    format!("with address {}", peer.address)
                } else {
                    format!("with public key {}", peer.public_key)
                };
                Err(Error::AlreadyExists { kind: KIND, name: what })
            }
            other => {
                other?;
                Ok(())
            }
        }
    }

    /// Renames a peer; `Error::NotFound` if there is none.
    pub async fn rename_peer(&mut self, id: &str, name: &str) -> Result<PeerRecord> {
        sqlx::query("UPDATE peers SET name = ?2 WHERE id = ?1")
            .bind(id)
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        peer(&mut self.tx, id).await?.ok_or_else(|| Error::NotFound { kind: KIND, name: id.into() })
    }

    /// Revokes a peer now; `None` if there is none. An already revoked peer is returned as it is
    /// (its first revocation stands).
    pub async fn revoke_peer(&mut self, id: &str, reason: &str) -> Result<Option<PeerRecord>> {
        sqlx::query(
            "UPDATE peers SET revoked_at_ms = ?2, revoked_reason = ?3
             WHERE id = ?1 AND revoked_at_ms IS NULL",
        )
        .bind(id)
        .bind(crate::now_ms())
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        peer(&mut self.tx, id).await
    }

    /// How many unexpired, unrevoked peers one owner has (`owner` case-insensitively).
    pub async fn live_peer_count(
        &mut self,
        kind: PrincipalKind,
        owner: &str,
        now_ms: i64,
    ) -> Result<u64> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM peers WHERE owner_key = ?1 AND owner_kind = ?2
                 AND revoked_at_ms IS NULL AND expires_at_ms > ?3",
        )
        .bind(owner.to_lowercase())
        .bind(kind.as_str())
        .bind(now_ms)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Revokes (reason `expired`) every peer whose registration has ended, so that its address
    /// and key are free again; returns the ones it revoked.
    pub async fn revoke_expired_peers(&mut self, now_ms: i64) -> Result<Vec<PeerRecord>> {
        let sql = format!(
            "UPDATE peers SET revoked_at_ms = ?1, revoked_reason = 'expired'
             WHERE revoked_at_ms IS NULL AND expires_at_ms <= ?1 RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql).bind(now_ms).fetch_all(&mut *self.tx).await?;
        rows.iter().map(peer_from_row).collect()
    }

    /// Revokes every live peer of one owner; returns the ones it revoked.
    pub async fn revoke_peers_of(
        &mut self,
        kind: PrincipalKind,
        owner: &str,
        reason: &str,
    ) -> Result<Vec<PeerRecord>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM peers WHERE owner_key = ?1 AND owner_kind = ?2
                 AND revoked_at_ms IS NULL ORDER BY created_at_ms DESC, id DESC",
        )
        .bind(owner.to_lowercase())
        .bind(kind.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        let mut revoked = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(peer) = self.revoke_peer(&id, reason).await? {
                revoked.push(peer);
            }
        }
        Ok(revoked)
    }
}

/// Revokes the unrevoked peers of session `session_id` at `now_ms` with `reason`: part of
/// revoking the session, in its transaction.
pub(crate) async fn revoke_peers_of_session(
    conn: &mut SqliteConnection,
    session_id: &str,
    now_ms: i64,
    reason: &str,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE peers SET revoked_at_ms = ?2, revoked_reason = ?3
         WHERE session_id = ?1 AND revoked_at_ms IS NULL",
    )
    .bind(session_id)
    .bind(now_ms)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

async fn peer(conn: &mut SqliteConnection, id: &str) -> Result<Option<PeerRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM peers WHERE id = ?1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(peer_from_row).transpose()
}

fn peer_from_row(row: &SqliteRow) -> Result<PeerRecord> {
    let id: String = row.try_get("id")?;
    let what = || format!("{KIND} '{id}'");
    let owner_kind: String = row.try_get("owner_kind")?;
    let owner_kind = match owner_kind.as_str() {
        "user" => PrincipalKind::User,
        "agent" => PrincipalKind::Agent,
        other => return Err(corrupt(what(), format!("unknown owner kind '{other}'"))),
    };
    let address: String = row.try_get("address")?;
    let address = address
        .parse()
        .map_err(|_| corrupt(what(), format!("address '{address}' is not an IPv4 address")))?;
    let count = |column: &str| -> Result<u64> {
        let value: i64 = row.try_get(column)?;
        u64::try_from(value).map_err(|_| corrupt(what(), format!("negative {column}")))
    };
    Ok(PeerRecord {
        name: row.try_get("name")?,
        owner_kind,
        owner: row.try_get("owner")?,
        public_key: row.try_get("public_key")?,
        address,
        session_id: row.try_get("session_id")?,
        created_at_ms: row.try_get("created_at_ms")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
        revoked_reason: row.try_get("revoked_reason")?,
        last_handshake_ms: row.try_get("last_handshake_ms")?,
        rx_bytes: count("rx_bytes")?,
        tx_bytes: count("tx_bytes")?,
        id,
    })
}
