//! A write transaction: reads, changes and the audit entry describing them, committed together
//! or not at all. The record methods are in `records` and `sign_in`.

use std::sync::Arc;

use sqlx::Sqlite;

use crate::{audit::insert_audit, secrets::Cipher, AuditEntry, Result, Store};

/// An open write transaction; dropped without [`commit`](Transaction::commit), it rolls back.
///
/// It holds one of the pool's connections: while it is open, make every read through it, not
/// through the `Store` (an in-memory store has a single connection).
pub struct Transaction {
    pub(crate) tx: sqlx::Transaction<'static, Sqlite>,
    pub(crate) cipher: Arc<Cipher>,
}

impl Store {
    /// Begins a write transaction. It takes SQLite's write lock at once (`BEGIN IMMEDIATE`), so
    /// that what it reads cannot change before it writes; other writers wait (up to the busy
    /// timeout) until it commits or rolls back.
    pub async fn begin(&self) -> Result<Transaction> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Transaction { tx, cipher: self.cipher.clone() })
    }
}

impl Transaction {
    /// Records `entry` with the changes of this transaction.
    pub async fn record_audit(&mut self, entry: &AuditEntry) -> Result<()> {
        insert_audit(&mut self.tx, entry).await
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
