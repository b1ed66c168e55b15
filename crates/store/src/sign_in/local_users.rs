//! Local accounts: the people of the embedded IdP, used when no external IdP is configured.
//!
//! Usernames are stored lowercased and emails are unique case-insensitively. A login (username
//! or email) names at most one account: no account's username may equal another's email, so a
//! sign-in can never be matched to the wrong person. The password hash is opaque here and leaves
//! the store only through [`Store::local_user_for_login`].

use sqlx::{sqlite::SqliteRow, Row, SqliteConnection};

use super::{names_from_json, names_to_json, unique};
use crate::{now_ms, Error, Result, Store, Transaction};

const KIND: &str = "user";

const COLUMNS: &str = "username, email, display_name, groups, active, created_at_ms, updated_at_ms";

/// A local account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalUser {
    /// The login name, lowercase (the store lowercases it); unique.
    pub username: String,
    /// What logs, usage records and stamped headers name the person by; unique
    /// case-insensitively, and it may also be used to sign in.
    pub email: String,
    pub display_name: Option<String>,
    /// Sorted, without duplicates (the store normalizes them).
    pub groups: Vec<String>,
    /// An inactive account cannot sign in.
    pub active: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Store {
    /// Every local account, by username.
    pub async fn local_users(&self) -> Result<Vec<LocalUser>> {
        let sql = format!("SELECT {COLUMNS} FROM local_users ORDER BY username");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// The account with this username (case-insensitively).
    pub async fn local_user(&self, username: &str) -> Result<Option<LocalUser>> {
        local_user(&mut *self.pool.acquire().await?, username).await
    }

    /// The account `login` names, as username or email (case-insensitively), with its password
    /// hash, for a sign-in. Inactive accounts are returned too: the caller verifies the password
    /// and then refuses them.
    pub async fn local_user_for_login(&self, login: &str) -> Result<Option<(LocalUser, String)>> {
        // The username match first, should an old database hold an ambiguous pair.
        let sql = format!(
            "SELECT {COLUMNS}, password_hash FROM local_users
             WHERE username = ?1 OR email_key = ?1 ORDER BY username = ?1 DESC LIMIT 1"
        );
        let row = sqlx::query(&sql).bind(login.to_lowercase()).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((user_from_row(&row)?, row.try_get("password_hash")?)))
    }
}

impl Transaction {
    pub async fn local_user(&mut self, username: &str) -> Result<Option<LocalUser>> {
        local_user(&mut self.tx, username).await
    }

    /// Creates an account, with the timestamps `user` carries. `Error::AlreadyExists` (kind
    /// `user`) if the username or the email is taken, case-insensitively, as a username or as an
    /// email; its name is the taken username, or the email as given.
    pub async fn create_local_user(&mut self, user: &LocalUser, password_hash: &str) -> Result<()> {
        let username = user.username.to_lowercase();
        logins_free(&mut self.tx, &username, &user.email, None).await?;
        let done = sqlx::query(
            "INSERT INTO local_users (username, email, email_key, display_name, groups, active,
                 password_hash, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(&username)
        .bind(&user.email)
        .bind(user.email.to_lowercase())
        .bind(&user.display_name)
        .bind(names_to_json(&user.groups))
        .bind(user.active)
        .bind(password_hash)
        .bind(user.created_at_ms)
        .bind(user.updated_at_ms)
        .execute(&mut *self.tx)
        .await;
        unique(done, KIND, &username)?;
        Ok(())
    }

    /// Replaces the account's email, display name, groups and active flag, and stamps
    /// `updated_at_ms` now; the username picks the account, and its creation time and password
    /// are kept. `Error::NotFound` if there is none, `Error::AlreadyExists` if the new email is
    /// taken.
    pub async fn update_local_user(&mut self, user: &LocalUser) -> Result<()> {
        let username = user.username.to_lowercase();
        if local_user(&mut self.tx, &username).await?.is_none() {
            return Err(Error::NotFound { kind: KIND, name: username });
        }
        logins_free(&mut self.tx, &username, &user.email, Some(&username)).await?;
        let done = sqlx::query(
            "UPDATE local_users SET email = ?2, email_key = ?3, display_name = ?4, groups = ?5,
                 active = ?6, updated_at_ms = ?7
             WHERE username = ?1",
        )
        .bind(&username)
        .bind(&user.email)
        .bind(user.email.to_lowercase())
        .bind(&user.display_name)
        .bind(names_to_json(&user.groups))
        .bind(user.active)
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await;
        unique(done, KIND, &user.email)?;
        Ok(())
    }

    /// Replaces the account's password hash (and stamps `updated_at_ms`); `Error::NotFound` if
    /// there is no such account.
    pub async fn set_local_password(&mut self, username: &str, password_hash: &str) -> Result<()> {
        let username = username.to_lowercase();
        let done = sqlx::query(
            "UPDATE local_users SET password_hash = ?2, updated_at_ms = ?3 WHERE username = ?1",
        )
        .bind(&username)
        .bind(password_hash)
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { kind: KIND, name: username });
        }
        Ok(())
    }

    /// Deletes the account; `false` if there was none. Its sessions are the caller's to revoke.
    pub async fn delete_local_user(&mut self, username: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM local_users WHERE username = ?1")
            .bind(username.to_lowercase())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

async fn local_user(conn: &mut SqliteConnection, username: &str) -> Result<Option<LocalUser>> {
    let sql = format!("SELECT {COLUMNS} FROM local_users WHERE username = ?1");
    let row = sqlx::query(&sql).bind(username.to_lowercase()).fetch_optional(conn).await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Checks that no account other than `except` signs in with `username` or `email`, whether as
/// its username or as its email. Inside a `BEGIN IMMEDIATE` transaction nothing can take them
/// between this check and the write.
async fn logins_free(
    conn: &mut SqliteConnection,
    username: &str,
    email: &str,
    except: Option<&str>,
) -> Result<()> {
    let email_key = email.to_lowercase();
    let taken: Vec<(String, String)> = sqlx::query_as(
        "SELECT username, email_key FROM local_users
         WHERE (?3 IS NULL OR username <> ?3)
           AND (username IN (?1, ?2) OR email_key IN (?1, ?2))",
    )
    .bind(username)
    .bind(&email_key)
    .bind(except)
    .fetch_all(conn)
    .await?;
    if taken.iter().any(|(u, e)| u == username || e == username) {
        return Err(Error::AlreadyExists { kind: KIND, name: username.to_owned() });
    }
    if !taken.is_empty() {
        return Err(Error::AlreadyExists { kind: KIND, name: email.to_owned() });
    }
    Ok(())
}

fn user_from_row(row: &SqliteRow) -> Result<LocalUser> {
    let username: String = row.try_get("username")?;
    let groups: String = row.try_get("groups")?;
    Ok(LocalUser {
        groups: names_from_json(|| format!("{KIND} '{username}'"), &groups)?,
        username,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        active: row.try_get("active")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}
