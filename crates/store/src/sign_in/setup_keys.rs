//! Setup keys: what an admin hands an agent so it can enroll (trade the key for a session).
//!
//! A key is stored as the SHA-256 digest the caller computed (a UNIQUE column that no read
//! returns) plus its first characters for display. Redeeming one checks and counts a use in the
//! caller's `BEGIN IMMEDIATE` transaction, so concurrent enrollments never use a key more often
//! than `max_uses` allows.

use sqlx::{sqlite::SqliteRow, Row, SqliteConnection};

use super::{corrupt, names_from_json, names_to_json, unique};
use crate::{Result, Store, Transaction};

const KIND: &str = "setup key";

const COLUMNS: &str = "name, prefix, agent, auto_groups, max_uses, uses, expires_at_ms, \
                       revoked_at_ms, created_at_ms, created_by, last_used_at_ms";

/// A setup key, without the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupKeyRecord {
    pub name: String,
    /// The key's first 16 characters, to recognise it.
    pub prefix: String,
    /// The existing agent it enrolls as; `None`: the enrolling agent names itself.
    pub agent: Option<String>,
    /// Groups given to an agent the key creates; sorted, without duplicates (the store
    /// normalizes them).
    pub auto_groups: Vec<String>,
    /// How many enrollments it allows: 1 for a one-time key.
    pub max_uses: u32,
    pub uses: u32,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub created_at_ms: i64,
    /// Who created it, as the audit log names actors.
    pub created_by: String,
    pub last_used_at_ms: Option<i64>,
}

/// Whether a setup key can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetupKeyState {
    Valid,
    /// Past its expiry.
    Expired,
    /// Every use taken.
    Exhausted,
    Revoked,
}

impl SetupKeyState {
    pub const ALL: [SetupKeyState; 4] = [
        SetupKeyState::Valid,
        SetupKeyState::Expired,
        SetupKeyState::Exhausted,
        SetupKeyState::Revoked,
    ];

    /// The spelling the API shows.
    pub fn as_str(self) -> &'static str {
        match self {
            SetupKeyState::Valid => "valid",
            SetupKeyState::Expired => "expired",
            SetupKeyState::Exhausted => "exhausted",
            SetupKeyState::Revoked => "revoked",
        }
    }
}

impl SetupKeyRecord {
    /// Its state at `now_ms`: revoked first, then expired (at `expires_at_ms` and after), then
    /// exhausted.
    pub fn state(&self, now_ms: i64) -> SetupKeyState {
        if self.revoked_at_ms.is_some() {
            SetupKeyState::Revoked
        } else if now_ms >= self.expires_at_ms {
            SetupKeyState::Expired
        } else if self.uses >= self.max_uses {
            SetupKeyState::Exhausted
        } else {
            SetupKeyState::Valid
        }
    }
}

/// What presenting a setup key came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The key was valid and one use is counted; the record as it was before this use.
    Redeemed(SetupKeyRecord),
    /// Nothing changed. `key: None`: no setup key has this digest (never issued, or deleted);
    /// `state` is then `Revoked`, so match on `key` first. Otherwise `state` is the key's
    /// (never `Valid`) and the record gives the message: "expired on …" (`expires_at_ms`),
    /// "used up (3 of 3)" (`uses`, `max_uses`), "revoked on …" (`revoked_at_ms`).
    Refused { key: Option<SetupKeyRecord>, state: SetupKeyState },
}

impl Redemption {
    fn unknown() -> Self {
        Redemption::Refused { key: None, state: SetupKeyState::Revoked }
    }

    fn refused(key: SetupKeyRecord, state: SetupKeyState) -> Self {
        Redemption::Refused { key: Some(key), state }
    }
}

impl Store {
    /// Every setup key, by name.
    pub async fn setup_keys(&self) -> Result<Vec<SetupKeyRecord>> {
        setup_keys(&mut *self.pool.acquire().await?, None).await
    }

    /// Whether a setup key with this digest exists (any state): a cheap read that spares the
    /// write lock for keys that were never issued.
    pub async fn setup_key_exists(&self, digest: &[u8; 32]) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM setup_keys WHERE key_digest = ?1")
                .bind(digest.as_slice())
                .fetch_optional(&mut *self.pool.acquire().await?)
                .await?;
        Ok(found.is_some())
    }

    pub async fn setup_key(&self, name: &str) -> Result<Option<SetupKeyRecord>> {
        Ok(setup_keys(&mut *self.pool.acquire().await?, Some(name)).await?.pop())
    }
}

impl Transaction {
    pub async fn setup_key(&mut self, name: &str) -> Result<Option<SetupKeyRecord>> {
        Ok(setup_keys(&mut self.tx, Some(name)).await?.pop())
    }

    /// Stores a new key as `key` says (uses, timestamps included) with its digest.
    /// `Error::AlreadyExists` (kind `setup key`) if the name, or the digest, is taken.
    pub async fn create_setup_key(
        &mut self,
        key: &SetupKeyRecord,
        digest: &[u8; 32],
    ) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO setup_keys (name, prefix, key_digest, agent, auto_groups, max_uses, uses,
                 expires_at_ms, revoked_at_ms, created_at_ms, created_by, last_used_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(digest.as_slice())
        .bind(&key.agent)
        .bind(names_to_json(&key.auto_groups))
        .bind(i64::from(key.max_uses))
        .bind(i64::from(key.uses))
        .bind(key.expires_at_ms)
        .bind(key.revoked_at_ms)
        .bind(key.created_at_ms)
        .bind(&key.created_by)
        .bind(key.last_used_at_ms)
        .execute(&mut *self.tx)
        .await;
        unique(done, KIND, &key.name)?;
        Ok(())
    }

    /// Revokes a key at `now_ms` and returns it; `None` if there is none. Revoking a revoked
    /// key changes nothing (its first revocation time stands).
    pub async fn revoke_setup_key(
        &mut self,
        name: &str,
        now_ms: i64,
    ) -> Result<Option<SetupKeyRecord>> {
        sqlx::query(
            "UPDATE setup_keys SET revoked_at_ms = ?2 WHERE name = ?1 AND revoked_at_ms IS NULL",
        )
        .bind(name)
        .bind(now_ms)
        .execute(&mut *self.tx)
        .await?;
        self.setup_key(name).await
    }

    /// Deletes a key; `false` if there was none. Sessions it enrolled stay.
    pub async fn delete_setup_key(&mut self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM setup_keys WHERE name = ?1")
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Looks the key up by digest and, if it is valid at `now_ms`, counts one use (`uses` + 1,
    /// `last_used_at_ms`): `Redemption::Redeemed` with the record as it was before the use.
    /// Otherwise nothing changes and the refusal says why. The use counts only if the caller
    /// commits.
    pub async fn redeem_setup_key(&mut self, digest: &[u8; 32], now_ms: i64) -> Result<Redemption> {
        let sql = format!("SELECT {COLUMNS} FROM setup_keys WHERE key_digest = ?1");
        let row = sqlx::query(&sql).bind(digest.as_slice()).fetch_optional(&mut *self.tx).await?;
        let Some(key) = row.as_ref().map(key_from_row).transpose()? else {
            return Ok(Redemption::unknown());
        };
        let state = key.state(now_ms);
        if state != SetupKeyState::Valid {
            return Ok(Redemption::refused(key, state));
        }
        // The same conditions again, in the statement that counts the use: it can never take
        // a use the key does not have.
        let done = sqlx::query(
            "UPDATE setup_keys SET uses = uses + 1, last_used_at_ms = ?2
             WHERE name = ?1 AND revoked_at_ms IS NULL AND expires_at_ms > ?2
               AND uses < max_uses",
        )
        .bind(&key.name)
        .bind(now_ms)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 1 {
            Ok(Redemption::Redeemed(key))
        } else {
            // Unreachable while this transaction holds the write lock; refuse if it happens.
            Ok(Redemption::refused(key, SetupKeyState::Exhausted))
        }
    }
}

/// Every key by name, or the one named `only`.
async fn setup_keys(
    conn: &mut SqliteConnection,
    only: Option<&str>,
) -> Result<Vec<SetupKeyRecord>> {
    let sql =
        format!("SELECT {COLUMNS} FROM setup_keys WHERE ?1 IS NULL OR name = ?1 ORDER BY name");
    let rows = sqlx::query(&sql).bind(only).fetch_all(conn).await?;
    rows.iter().map(key_from_row).collect()
}

fn key_from_row(row: &SqliteRow) -> Result<SetupKeyRecord> {
    let name: String = row.try_get("name")?;
    let what = || format!("{KIND} '{name}'");
    let count = |column: &str| -> Result<u32> {
        let n: i64 = row.try_get(column)?;
        u32::try_from(n).map_err(|_| corrupt(what(), format!("{column} is {n}")))
    };
    let auto_groups: String = row.try_get("auto_groups")?;
    Ok(SetupKeyRecord {
        prefix: row.try_get("prefix")?,
        agent: row.try_get("agent")?,
        auto_groups: names_from_json(what, &auto_groups)?,
        max_uses: count("max_uses")?,
        uses: count("uses")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
        created_by: row.try_get("created_by")?,
        last_used_at_ms: row.try_get("last_used_at_ms")?,
        name,
    })
}
