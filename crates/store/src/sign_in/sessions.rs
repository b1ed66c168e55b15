//! Sessions agentnet issues after a sign-in (OIDC or a local account) or an enrollment (a setup
//! key): who they are for, their groups as of the last (re)issue, and when their tokens expire.
//!
//! The access and refresh tokens are stored only as the SHA-256 digests the caller computed
//! (UNIQUE columns); a refresh replaces both, so an old refresh token no longer finds the
//! session. The IdP's refresh token, kept to refresh a person's groups, is sealed under the
//! master key with `session:<id>` as associated data, and dropped when the session is revoked.
//! A session has ended when it is revoked, or once no token of it works any more: past
//! `expires_at_ms`, or past both its access and refresh expiries.
//!
//! Revoking a session revokes the overlay peers bound to it, in the same transaction and with
//! the same reason (`peers`).

use domain::PrincipalKind;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{sqlite::SqliteRow, QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{corrupt, digest_from, names_from_json, names_to_json, unique};
use crate::{
    now_ms, peers::revoke_peers_of_session, secrets::Cipher, Error, Result, Store, Transaction,
};

const KIND: &str = "session";

const COLUMNS: &str = "id, kind, subject, name, groups, source, client, created_at_ms, \
                       refreshed_at_ms, access_expires_at_ms, refresh_expires_at_ms, \
                       expires_at_ms, revoked_at_ms, revoked_reason";

/// When a session's last token stops working (revocation aside), as an SQL expression.
const ENDS_AT: &str = "MIN(expires_at_ms, MAX(access_expires_at_ms, refresh_expires_at_ms))";

/// [`ENDS_AT`] of the `sessions` table aliased `s` (for joins).
pub(crate) const SESSION_ENDS_AT: &str =
    "MIN(s.expires_at_ms, MAX(s.access_expires_at_ms, s.refresh_expires_at_ms))";

/// How the session's holder proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionSource {
    /// A person, at the company's IdP.
    Oidc,
    /// A person, with a local account.
    Local,
    /// An agent, with a setup key.
    SetupKey,
}

impl SessionSource {
    pub const ALL: [SessionSource; 3] =
        [SessionSource::Oidc, SessionSource::Local, SessionSource::SetupKey];

    /// The spelling stored in the table and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionSource::Oidc => "oidc",
            SessionSource::Local => "local",
            SessionSource::SetupKey => "setup_key",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|source| source.as_str() == s)
    }
}

/// A session, without its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Caller-generated (a ULID).
    pub id: String,
    pub kind: PrincipalKind,
    pub subject: String,
    /// A person's email, an agent's name.
    pub name: String,
    /// As of the last sign-in or refresh; sorted, without duplicates (the store normalizes them).
    pub groups: Vec<String>,
    pub source: SessionSource,
    /// A label for the device, e.g. a hostname.
    pub client: Option<String>,
    pub created_at_ms: i64,
    pub refreshed_at_ms: i64,
    pub access_expires_at_ms: i64,
    pub refresh_expires_at_ms: i64,
    /// The absolute end: the store never lets the access or refresh expiry pass it.
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub revoked_reason: Option<String>,
}

/// The SHA-256 digests of a session's tokens, computed by the caller. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionTokens {
    pub access: [u8; 32],
    pub refresh: [u8; 32],
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionTokens { .. }")
    }
}

/// A session with the IdP refresh token it holds, for a refresh.
pub struct StoredSession {
    pub record: SessionRecord,
    /// `None` for a session without one, and once the session is revoked.
    pub idp_refresh_token: Option<SecretString>,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("record", &self.record)
            .field("idp_refresh_token", &self.idp_refresh_token.as_ref().map(|_| ".."))
            .finish()
    }
}

/// Filters for listing sessions, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionQuery {
    /// Only the sessions of this person or agent (exactly, case-insensitively).
    pub name: Option<String>,
    /// Include revoked and ended sessions.
    pub include_inactive: bool,
    /// At most this many; `None`: all.
    pub limit: Option<u32>,
}

impl Store {
    /// The session `refresh` is the current refresh token of, revoked and ended ones included:
    /// the caller decides. For a refresh, read it through the [`Transaction`] that rotates it,
    /// so that two uses of one refresh token cannot both succeed.
    pub async fn session_by_refresh(&self, refresh: &[u8; 32]) -> Result<Option<StoredSession>> {
        session_by_refresh(&mut *self.pool.acquire().await?, &self.cipher, refresh).await
    }

    /// The session `access` is the current access token of, revoked and ended ones included.
    pub async fn session_by_access(&self, access: &[u8; 32]) -> Result<Option<SessionRecord>> {
        session_by(&mut *self.pool.acquire().await?, By::Access(access)).await
    }

    /// The session whose refresh token `refresh` was until its last rotation. Someone
    /// presenting it again holds a copy of a spent token: the session should be revoked
    /// (refresh-token reuse detection, OAuth 2.0 Security BCP §4.14.2).
    pub async fn session_by_rotated_refresh(
        &self,
        refresh: &[u8; 32],
    ) -> Result<Option<SessionRecord>> {
        session_by(&mut *self.pool.acquire().await?, By::RotatedRefresh(refresh)).await
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        session_by(&mut *self.pool.acquire().await?, By::Id(id)).await
    }

    /// Sessions that hold live overlay peers and were neither refreshed nor re-checked since
    /// `checked_before_ms`, with their IdP refresh tokens: what the server re-checks itself.
    pub async fn sessions_to_recheck(
        &self,
        now_ms: i64,
        checked_before_ms: i64,
    ) -> Result<Vec<StoredSession>> {
        let sql = format!(
            "SELECT {COLUMNS}, idp_refresh_ciphertext FROM sessions s
             WHERE revoked_at_ms IS NULL AND {SESSION_ENDS_AT} > ?1
                 AND MAX(refreshed_at_ms, COALESCE(rechecked_at_ms, 0)) < ?2
                 AND id IN (SELECT session_id FROM peers
                            WHERE revoked_at_ms IS NULL AND expires_at_ms > ?1)
             ORDER BY created_at_ms"
        );
        let rows =
            sqlx::query(&sql).bind(now_ms).bind(checked_before_ms).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let record = session_from_row(row)?;
                let sealed: Option<Vec<u8>> = row.try_get("idp_refresh_ciphertext")?;
                let idp_refresh_token = sealed
                    .map(|s| self.cipher.open_string(&s, &idp_context(&record.id)))
                    .transpose()?;
                Ok(StoredSession { record, idp_refresh_token })
            })
            .collect()
    }

    /// The sessions whose access token works at `now_ms` (not revoked, not expired), each with
    /// its access token's digest: what the data plane loads at start.
    pub async fn live_sessions(&self, now_ms: i64) -> Result<Vec<(SessionRecord, [u8; 32])>> {
        let sql = format!(
            "SELECT {COLUMNS}, access_digest FROM sessions
             WHERE revoked_at_ms IS NULL AND access_expires_at_ms > ?1 AND expires_at_ms > ?1
             ORDER BY created_at_ms, id"
        );
        let rows = sqlx::query(&sql).bind(now_ms).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let record = session_from_row(row)?;
                let digest: Vec<u8> = row.try_get("access_digest")?;
                let digest = digest_from(|| format!("{KIND} '{}'", record.id), &digest)?;
                Ok((record, digest))
            })
            .collect()
    }

    /// The sessions `q` selects, newest first. Without `include_inactive`, only those that have
    /// not ended now (see the module doc).
    pub async fn sessions(&self, q: &SessionQuery) -> Result<Vec<SessionRecord>> {
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM sessions WHERE 1 = 1"));
        if let Some(name) = &q.name {
            query.push(" AND name_key = ").push_bind(name.to_lowercase());
        }
        if !q.include_inactive {
            query.push(format!(" AND revoked_at_ms IS NULL AND {ENDS_AT} > ")).push_bind(now_ms());
        }
        query.push(" ORDER BY created_at_ms DESC, id DESC");
        if let Some(limit) = q.limit {
            query.push(" LIMIT ").push_bind(i64::from(limit));
        }
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(session_from_row).collect()
    }

    /// Deletes the sessions revoked, or ended, before `older_than_ms`; how many.
    pub async fn prune_sessions(&self, older_than_ms: i64) -> Result<u64> {
        let sql = format!("DELETE FROM sessions WHERE revoked_at_ms < ?1 OR {ENDS_AT} < ?1");
        let done = sqlx::query(&sql).bind(older_than_ms).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

impl Transaction {
    /// Stores a new session with its tokens' digests and the IdP's refresh token, if any
    /// (sealed). The access and refresh expiries are capped at `expires_at_ms`.
    /// `Error::AlreadyExists` (kind `session`) if the id or a digest is taken.
    pub async fn insert_session(
        &mut self,
        record: &SessionRecord,
        tokens: &SessionTokens,
        idp_refresh_token: Option<&SecretString>,
    ) -> Result<()> {
        let sealed = seal(&self.cipher, &record.id, idp_refresh_token)?;
        let done = sqlx::query(
            "INSERT INTO sessions (id, kind, subject, name, name_key, groups, source, client,
                 access_digest, refresh_digest, idp_refresh_ciphertext, created_at_ms,
                 refreshed_at_ms, access_expires_at_ms, refresh_expires_at_ms, expires_at_ms,
                 revoked_at_ms, revoked_reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, MIN(?14, ?16),
                 MIN(?15, ?16), ?16, ?17, ?18)",
        )
        .bind(&record.id)
        .bind(record.kind.as_str())
        .bind(&record.subject)
        .bind(&record.name)
        .bind(record.name.to_lowercase())
        .bind(names_to_json(&record.groups))
        .bind(record.source.as_str())
        .bind(&record.client)
        .bind(tokens.access.as_slice())
        .bind(tokens.refresh.as_slice())
        .bind(sealed)
        .bind(record.created_at_ms)
        .bind(record.refreshed_at_ms)
        .bind(record.access_expires_at_ms)
        .bind(record.refresh_expires_at_ms)
        .bind(record.expires_at_ms)
        .bind(record.revoked_at_ms)
        .bind(&record.revoked_reason)
        .execute(&mut *self.tx)
        .await;
        unique(done, KIND, &record.id)?;
        Ok(())
    }

    /// As [`Store::session_by_refresh`], inside this transaction.
    pub async fn session_by_refresh(
        &mut self,
        refresh: &[u8; 32],
    ) -> Result<Option<StoredSession>> {
        session_by_refresh(&mut self.tx, &self.cipher, refresh).await
    }

    /// As [`Store::session_by_access`], inside this transaction.
    pub async fn session_by_access(&mut self, access: &[u8; 32]) -> Result<Option<SessionRecord>> {
        session_by(&mut self.tx, By::Access(access)).await
    }

    pub async fn session(&mut self, id: &str) -> Result<Option<SessionRecord>> {
        session_by(&mut self.tx, By::Id(id)).await
    }

    /// A refresh: replaces both token digests (the old ones no longer find the session, but the
    /// old refresh token is remembered for [`Store::session_by_rotated_refresh`]), the
    /// expiries (capped at the session's `expires_at_ms`) and the groups, stamps
    /// `refreshed_at_ms` now, and replaces the IdP refresh token when one is given (`None` keeps
    /// the stored one). `Error::NotFound` if there is no such session. It does not look at
    /// revocation or expiry: the caller has.
    pub async fn rotate_session(
        &mut self,
        id: &str,
        tokens: &SessionTokens,
        access_expires_at_ms: i64,
        refresh_expires_at_ms: i64,
        groups: &[String],
        idp_refresh_token: Option<&SecretString>,
    ) -> Result<()> {
        let sealed = seal(&self.cipher, id, idp_refresh_token)?;
        let done = sqlx::query(
            "UPDATE sessions SET access_digest = ?2, previous_refresh_digest = refresh_digest,
                 refresh_digest = ?3,
                 access_expires_at_ms = MIN(?4, expires_at_ms),
                 refresh_expires_at_ms = MIN(?5, expires_at_ms), groups = ?6,
                 refreshed_at_ms = ?7,
                 idp_refresh_ciphertext = COALESCE(?8, idp_refresh_ciphertext)
             WHERE id = ?1",
        )
        .bind(id)
        .bind(tokens.access.as_slice())
        .bind(tokens.refresh.as_slice())
        .bind(access_expires_at_ms)
        .bind(refresh_expires_at_ms)
        .bind(names_to_json(groups))
        .bind(now_ms())
        .bind(sealed)
        .execute(&mut *self.tx)
        .await;
        if unique(done, KIND, id)?.rows_affected() == 0 {
            return Err(Error::NotFound { kind: KIND, name: id.to_owned() });
        }
        Ok(())
    }

    /// Records a re-check by the server: the groups as the source gave them now, and the IdP's
    /// new refresh token if it rotated it (`None` keeps the stored one). Only if the session is
    /// live and was not refreshed since `refreshed_at_ms` (a refresh that ran meanwhile has the
    /// newer word); returns whether it was recorded.
    pub async fn record_recheck(
        &mut self,
        id: &str,
        refreshed_at_ms: i64,
        groups: &[String],
        idp_refresh_token: Option<&SecretString>,
    ) -> Result<bool> {
        let sealed = seal(&self.cipher, id, idp_refresh_token)?;
        let done = sqlx::query(
            "UPDATE sessions SET groups = ?3, rechecked_at_ms = ?4,
                 idp_refresh_ciphertext = COALESCE(?5, idp_refresh_ciphertext)
             WHERE id = ?1 AND refreshed_at_ms = ?2 AND revoked_at_ms IS NULL",
        )
        .bind(id)
        .bind(refreshed_at_ms)
        .bind(names_to_json(groups))
        .bind(now_ms())
        .bind(sealed)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes a session now, dropping its IdP refresh token, and its overlay peers (same time
    /// and reason), and returns it; `None` if there is no such session. An already revoked
    /// session is returned unchanged (its first revocation time and reason stand).
    pub async fn revoke_session(
        &mut self,
        id: &str,
        reason: &str,
    ) -> Result<Option<SessionRecord>> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at_ms = ?2, revoked_reason = ?3,
                 idp_refresh_ciphertext = NULL
             WHERE id = ?1 AND revoked_at_ms IS NULL",
        )
        .bind(id)
        .bind(now)
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() > 0 {
            revoke_peers_of_session(&mut self.tx, id, now, reason).await?;
        }
        session_by(&mut self.tx, By::Id(id)).await
    }

    /// Revokes every session of this person or agent (`name` case-insensitively) not yet
    /// revoked, ended ones included, with their overlay peers (same time and reason), and
    /// returns the sessions it revoked, newest first.
    pub async fn revoke_sessions_of(
        &mut self,
        kind: PrincipalKind,
        name: &str,
        reason: &str,
    ) -> Result<Vec<SessionRecord>> {
        let sql = format!(
            "UPDATE sessions SET revoked_at_ms = ?3, revoked_reason = ?4,
                 idp_refresh_ciphertext = NULL
             WHERE kind = ?1 AND name_key = ?2 AND revoked_at_ms IS NULL
             RETURNING {COLUMNS}"
        );
        let now = now_ms();
        let rows = sqlx::query(&sql)
            .bind(kind.as_str())
            .bind(name.to_lowercase())
            .bind(now)
            .bind(reason)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut revoked = rows.iter().map(session_from_row).collect::<Result<Vec<_>>>()?;
        for session in &revoked {
            revoke_peers_of_session(&mut self.tx, &session.id, now, reason).await?;
        }
        revoked.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
        Ok(revoked)
    }
}

fn idp_context(id: &str) -> String {
    format!("session:{id}")
}

fn seal(cipher: &Cipher, id: &str, token: Option<&SecretString>) -> Result<Option<Vec<u8>>> {
    let seal = |t: &SecretString| cipher.seal(t.expose_secret().as_bytes(), &idp_context(id));
    Ok(token.map(seal).transpose()?)
}

/// How to find one session.
#[derive(Clone, Copy)]
enum By<'a> {
    Id(&'a str),
    Access(&'a [u8; 32]),
    RotatedRefresh(&'a [u8; 32]),
}

async fn session_by(conn: &mut SqliteConnection, by: By<'_>) -> Result<Option<SessionRecord>> {
    let sql = |column: &str| format!("SELECT {COLUMNS} FROM sessions WHERE {column} = ?1");
    let row = match by {
        By::Id(id) => sqlx::query(&sql("id")).bind(id).fetch_optional(conn).await?,
        By::Access(digest) => {
            sqlx::query(&sql("access_digest")).bind(digest.as_slice()).fetch_optional(conn).await?
        }
        By::RotatedRefresh(digest) => {
            sqlx::query(&sql("previous_refresh_digest"))
                .bind(digest.as_slice())
                .fetch_optional(conn)
                .await?
        }
    };
    row.as_ref().map(session_from_row).transpose()
}

async fn session_by_refresh(
    conn: &mut SqliteConnection,
    cipher: &Cipher,
    refresh: &[u8; 32],
) -> Result<Option<StoredSession>> {
    let sql =
        format!("SELECT {COLUMNS}, idp_refresh_ciphertext FROM sessions WHERE refresh_digest = ?1");
    let row = sqlx::query(&sql).bind(refresh.as_slice()).fetch_optional(conn).await?;
    let Some(row) = row else { return Ok(None) };
    let record = session_from_row(&row)?;
    let sealed: Option<Vec<u8>> = row.try_get("idp_refresh_ciphertext")?;
    let idp_refresh_token =
        sealed.map(|s| cipher.open_string(&s, &idp_context(&record.id))).transpose()?;
    Ok(Some(StoredSession { record, idp_refresh_token }))
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRecord> {
    let id: String = row.try_get("id")?;
    let what = || format!("{KIND} '{id}'");
    let kind: String = row.try_get("kind")?;
    let kind = match kind.as_str() {
        "user" => PrincipalKind::User,
        "agent" => PrincipalKind::Agent,
        _ => return Err(corrupt(what(), format!("unknown kind '{kind}'"))),
    };
    let source: String = row.try_get("source")?;
    let source = SessionSource::parse(&source)
        .ok_or_else(|| corrupt(what(), format!("unknown source '{source}'")))?;
    let groups: String = row.try_get("groups")?;
    Ok(SessionRecord {
        groups: names_from_json(what, &groups)?,
        kind,
        subject: row.try_get("subject")?,
        name: row.try_get("name")?,
        source,
        client: row.try_get("client")?,
        created_at_ms: row.try_get("created_at_ms")?,
        refreshed_at_ms: row.try_get("refreshed_at_ms")?,
        access_expires_at_ms: row.try_get("access_expires_at_ms")?,
        refresh_expires_at_ms: row.try_get("refresh_expires_at_ms")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
        revoked_reason: row.try_get("revoked_reason")?,
        id,
    })
}
