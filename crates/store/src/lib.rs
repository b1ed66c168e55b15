//! Persistence for agentnet: providers (with keys encrypted at rest), groups, agents, policies,
//! usage records, assertion-signing keys, the audit log, SCIM provisioning state (users,
//! groups, memberships, the hashed SCIM token) and sign-in state (local accounts, sessions with
//! their tokens' digests, setup keys) and overlay peers (WireGuard public keys, addresses, bound
//! to the session that registered them), in SQLite through sqlx (PostgreSQL later).
//!
//! Architecture invariant: this is the only crate that writes SQL. Secrets enter and leave it as
//! `SecretString`/`SecretBox`; what it writes to disk is ciphertext.

mod audit;
mod migrate;
mod peers;
mod records;
mod scim;
mod secrets;
mod sign_in;
mod transaction;
mod usage;

#[cfg(test)]
mod tests;

use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    SqlitePool,
};

pub use audit::{ActorKind, AuditEntry, AuditQuery, DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT};
pub use peers::{OverlayPeer, PeerQuery, PeerRecord, PeerStats};
pub use records::{
    AgentRecord, ConfigTable, GlobalLimitRecord, GroupRecord, ManagedBy, PolicyRecord,
    ProviderRecord, SigningKey,
};
pub use scim::{
    DirectoryUser, Members, ScimGroup, ScimGroupData, ScimGroupRef, ScimLookup, ScimMeta,
    ScimTokenIssued, ScimUser, ScimUserData,
};
pub use secrets::{fingerprint, MasterKey, SecretError};
pub use sign_in::{
    LocalUser, Redemption, SessionQuery, SessionRecord, SessionSource, SessionTokens,
    SetupKeyRecord, SetupKeyState, StoredSession,
};
pub use transaction::Transaction;
pub use usage::{PrincipalTotals, UsageQuery, UsageRecord};

/// A store failure. Callers map it to a 500 (admin) or fail closed (data plane).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("stored record {what} is corrupt")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{kind} '{name}' does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} '{name}' already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("{kind} '{name}' is managed by the config file; change it there")]
    ManagedByConfig { kind: &'static str, name: String },
    /// A SCIM group member that is not a SCIM user.
    #[error("SCIM user '{0}' does not exist")]
    UnknownMember(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    cipher: Arc<secrets::Cipher>,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies migrations.
    pub async fn open(path: &Path, master: &MasterKey) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        Self::with_pool(pool, master).await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory(master: &MasterKey) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection: every in-memory connection would otherwise be its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::with_pool(pool, master).await
    }

    async fn with_pool(pool: SqlitePool, master: &MasterKey) -> Result<Self> {
        migrate::migrator().await?.run(&pool).await?;
        Ok(Self { pool, cipher: Arc::new(secrets::Cipher::new(master)?) })
    }

    /// Closes the pool, waiting for in-flight statements (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
