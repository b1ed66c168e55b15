//! Sign-in state: local accounts ([`LocalUser`]), the sessions agentnet issues
//! ([`SessionRecord`]) and the setup keys agents enroll with ([`SetupKeyRecord`]).
//!
//! The store never sees a bearer secret: session tokens and setup keys arrive as SHA-256 digests
//! computed by the caller (`[u8; 32]`; the store does not depend on `identity`), passwords as
//! argon2 PHC strings it does not interpret, and an IdP refresh token as a `SecretString` it
//! seals under the master key, bound to the session's id. Reads go through the `Store`; writes
//! go through a [`Transaction`](crate::Transaction), so the caller records the audit entry with
//! the change.

mod local_users;
mod sessions;
mod setup_keys;

#[cfg(test)]
mod tests;

use sqlx::sqlite::SqliteQueryResult;

use crate::{Error, Result};

pub use local_users::LocalUser;
pub(crate) use sessions::SESSION_ENDS_AT;
pub use sessions::{SessionQuery, SessionRecord, SessionSource, SessionTokens, StoredSession};
pub use setup_keys::{Redemption, SetupKeyRecord, SetupKeyState};

/// A list of names as stored: sorted, without duplicates, as a JSON array.
fn names_to_json(names: &[String]) -> String {
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    // A list of strings always serializes.
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn names_from_json(what: impl FnOnce() -> String, text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|source| Error::Corrupt { what: what(), source })
}

/// A stored value this code cannot read back (an unknown enum spelling, a negative count).
pub(crate) fn corrupt(what: String, problem: String) -> Error {
    Error::Corrupt { what, source: serde::de::Error::custom(problem) }
}

/// Maps a UNIQUE violation to `Error::AlreadyExists`.
fn unique(
    done: std::result::Result<SqliteQueryResult, sqlx::Error>,
    kind: &'static str,
    name: &str,
) -> Result<SqliteQueryResult> {
    match done {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(Error::AlreadyExists { kind, name: name.to_owned() })
        }
        other => Ok(other?),
    }
}

/// A 32-byte digest read back from a BLOB column.
fn digest_from(what: impl FnOnce() -> String, bytes: &[u8]) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| corrupt(what(), format!("digest of {} bytes", bytes.len())))
}
