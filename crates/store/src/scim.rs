//! SCIM 2.0 provisioning state: users, groups and memberships pushed by an IdP, the bearer token
//! SCIM clients authenticate with, and the directory the data plane reads.
//!
//! This module does not interpret SCIM: `control` turns requests into [`ScimUserData`] /
//! [`ScimGroupData`] (the indexed columns plus the whole resource JSON) and back. What it
//! guarantees: userName and group displayName are unique case-insensitively (the lowercased key
//! is a UNIQUE column), ids are server-generated UUIDs, members must be existing users,
//! read-modify-write updates are serialized (`BEGIN IMMEDIATE`), and the token is stored only as
//! a SHA-256 hash and compared in constant time.
//!
//! Every write records an audit entry in its own transaction: the caller passes a function that
//! builds the entry from the record before and after the change (`None` before a create, after a
//! delete), which the store reads inside the transaction. The caller decides what the entry
//! shows; it must not include a secret.

use std::collections::{HashMap, HashSet};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ring::{
    digest::{digest, SHA256},
    rand::{SecureRandom, SystemRandom},
};
use secrecy::SecretString;
use serde_json::{Map, Value};
use sqlx::{sqlite::SqliteRow, Row, Sqlite, Transaction};

use crate::{audit::insert_audit, now_ms, AuditEntry, Error, Result, SecretError, Store};

const USER: &str = "SCIM user";
const GROUP: &str = "SCIM group";

/// A user as the data plane sees it: every SCIM user, active or not, with the display names of
/// its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub user_name: String,
    pub emails: Vec<String>,
    pub active: bool,
    /// Display names of the user's groups, sorted.
    pub groups: Vec<String>,
}

/// What a SCIM write sets on a user: the indexed columns, derived by the caller from the
/// resource, and the resource itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimUserData {
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Email addresses, primary first.
    pub emails: Vec<String>,
    pub active: bool,
    /// The SCIM resource as written (no `id`, `meta` or password).
    pub resource: Map<String, Value>,
}

/// What a SCIM write sets on a group.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimGroupData {
    pub display_name: String,
    pub external_id: Option<String>,
    /// The SCIM resource as written, without `members` (those are rows of their own).
    pub resource: Map<String, Value>,
    /// Member user ids, in no particular order; each must be an existing user.
    pub members: Vec<String>,
}

/// Server-maintained metadata of a SCIM resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScimMeta {
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Starts at 1, bumped by every write.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScimUser {
    pub id: String,
    pub data: ScimUserData,
    pub meta: ScimMeta,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScimGroup {
    pub id: String,
    /// `data.members` is filled only when members were asked for (see [`Members`]).
    pub data: ScimGroupData,
    pub meta: ScimMeta,
}

/// Whether to read a group's members (a group can be large, and Entra asks without them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    Load,
    Skip,
}

/// An indexed lookup that narrows a SCIM query before the full filter is evaluated.
/// Comparisons are case-insensitive for names and emails, exact for ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScimLookup {
    All,
    Id(String),
    /// userName (users) or displayName (groups).
    Name(String),
    ExternalId(String),
    /// Users with this email address.
    Email(String),
    /// Groups that have this user as a member.
    Member(String),
}

/// A group a user belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimGroupRef {
    pub id: String,
    pub display_name: String,
}

/// A freshly created SCIM token: the secret is here once and never stored.
pub struct ScimTokenIssued {
    pub secret: SecretString,
    pub created_at_ms: i64,
}

impl std::fmt::Debug for ScimTokenIssued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimTokenIssued").field("created_at_ms", &self.created_at_ms).finish()
    }
}

const USER_COLUMNS: &str = "id, user_name, external_id, display_name, given_name, family_name, \
                            emails, active, resource, created_at_ms, updated_at_ms, version";
const GROUP_COLUMNS: &str =
    "id, display_name, external_id, resource, created_at_ms, updated_at_ms, version";

impl Store {
    // ---- directory ----------------------------------------------------------------------------

    /// Every SCIM user with its active flag and the display names of its groups (sorted).
    pub async fn directory(&self) -> Result<Vec<DirectoryUser>> {
        let rows = sqlx::query(
            "SELECT u.id, u.user_name, u.emails, u.active, g.display_name AS group_name
             FROM scim_users u
             LEFT JOIN scim_memberships m ON m.user_id = u.id
             LEFT JOIN scim_groups g ON g.id = m.group_id
             ORDER BY u.user_name_key, u.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<DirectoryUser> = Vec::new();
        let mut last_id: Option<String> = None;
        for row in rows {
            let id: String = row.try_get("id")?;
            if last_id.as_deref() != Some(id.as_str()) {
                let emails: String = row.try_get("emails")?;
                out.push(DirectoryUser {
                    user_name: row.try_get("user_name")?,
                    emails: parse_json(&format!("{USER} {id} emails"), &emails)?,
                    active: row.try_get("active")?,
                    groups: Vec::new(),
                });
                last_id = Some(id);
            }
            if let Some(group) = row.try_get::<Option<String>, _>("group_name")? {
                if let Some(user) = out.last_mut() {
                    user.groups.push(group);
                }
            }
        }
        for user in &mut out {
            user.groups.sort();
        }
        Ok(out)
    }

    /// Whether SCIM provisioning is on (a SCIM token exists).
    pub async fn scim_enabled(&self) -> Result<bool> {
        Ok(self.scim_token_created_at().await?.is_some())
    }

    // ---- token --------------------------------------------------------------------------------

    /// Generates a new SCIM bearer secret (32 random bytes, base64url), stores its SHA-256 hash
    /// and revokes the previous one, atomically. The secret is returned once.
    ///
    /// `audit` gets when the previous token was created (if there was one) and when the new one
    /// was, and builds the entry recorded with the change; it never sees the secret.
    pub async fn scim_token_rotate<A>(&self, audit: A) -> Result<ScimTokenIssued>
    where
        A: FnOnce(Option<i64>, i64) -> AuditEntry,
    {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| SecretError::Random)?;
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        let hash = token_hash(&secret);
        let created_at_ms = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let previous: Option<i64> =
            sqlx::query_scalar("SELECT MAX(created_at_ms) FROM scim_tokens")
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM scim_tokens").execute(&mut *tx).await?;
        sqlx::query("INSERT INTO scim_tokens (token_hash, created_at_ms) VALUES (?1, ?2)")
            .bind(hash.as_slice())
            .bind(created_at_ms)
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, &audit(previous, created_at_ms)).await?;
        tx.commit().await?;
        Ok(ScimTokenIssued { secret: SecretString::from(secret), created_at_ms })
    }

    /// Deletes the SCIM token, turning SCIM off; `false` if there was none. `audit` gets when
    /// the deleted token was created and builds the entry recorded with the change (nothing is
    /// recorded when there was no token).
    pub async fn scim_token_revoke<A>(&self, audit: A) -> Result<bool>
    where
        A: FnOnce(i64) -> AuditEntry,
    {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let previous: Option<i64> =
            sqlx::query_scalar("SELECT MAX(created_at_ms) FROM scim_tokens")
                .fetch_one(&mut *tx)
                .await?;
        let Some(previous) = previous else { return Ok(false) };
        sqlx::query("DELETE FROM scim_tokens").execute(&mut *tx).await?;
        insert_audit(&mut tx, &audit(previous)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// When the current SCIM token was created; `None` when SCIM is off.
    pub async fn scim_token_created_at(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MAX(created_at_ms) FROM scim_tokens")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Whether `presented` is the current SCIM secret: its hash is compared with the stored
    /// one in constant time.
    pub async fn scim_token_matches(&self, presented: &str) -> Result<bool> {
        let stored: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT token_hash FROM scim_tokens").fetch_all(&self.pool).await?;
        let presented = token_hash(presented);
        // Every row is compared, so the time does not depend on which one matches.
        Ok(stored.iter().fold(false, |found, hash| found | constant_time_eq(hash, &presented)))
    }

    // ---- users --------------------------------------------------------------------------------

    /// Creates a user with a fresh id; `Error::AlreadyExists` if the userName is taken
    /// (case-insensitively). `audit(None, Some(created))` builds the entry recorded with it.
    pub async fn scim_create_user<A>(&self, data: &ScimUserData, audit: A) -> Result<ScimUser>
    where
        A: FnOnce(Option<&ScimUser>, Option<&ScimUser>) -> AuditEntry,
    {
        let id = new_id()?;
        let now = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "INSERT INTO scim_users (id, user_name, user_name_key, external_id, display_name,
                 given_name, family_name, emails, active, resource, created_at_ms, updated_at_ms,
                 version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, 1)",
        )
        .bind(&id)
        .bind(&data.user_name)
        .bind(name_key(&data.user_name))
        .bind(&data.external_id)
        .bind(&data.display_name)
        .bind(&data.given_name)
        .bind(&data.family_name)
        .bind(to_json(&data.emails))
        .bind(data.active)
        .bind(Value::Object(data.resource.clone()).to_string())
        .bind(now)
        .execute(&mut *tx)
        .await;
        unique(done, USER, &data.user_name)?;
        let meta = ScimMeta { created_at_ms: now, updated_at_ms: now, version: 1 };
        let user = ScimUser { id, data: data.clone(), meta };
        insert_audit(&mut tx, &audit(None, Some(&user))).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn scim_user(&self, id: &str) -> Result<Option<ScimUser>> {
        Ok(self.scim_find_users(&ScimLookup::Id(id.to_owned())).await?.pop())
    }

    /// The users a lookup selects, oldest first (insertion order: rowid).
    pub async fn scim_find_users(&self, lookup: &ScimLookup) -> Result<Vec<ScimUser>> {
        let (condition, arg) = match lookup {
            ScimLookup::All => ("1 = 1", None),
            ScimLookup::Id(id) => ("id = ?1", Some(id.clone())),
            ScimLookup::Name(name) => ("user_name_key = ?1", Some(name_key(name))),
            ScimLookup::ExternalId(id) => ("external_id = ?1", Some(id.clone())),
            ScimLookup::Email(email) => (
                "EXISTS (SELECT 1 FROM json_each(scim_users.emails) e WHERE lower(e.value) = ?1)",
                Some(name_key(email)),
            ),
            ScimLookup::Member(_) => return Ok(Vec::new()),
        };
        let sql = format!("SELECT {USER_COLUMNS} FROM scim_users WHERE {condition} ORDER BY rowid");
        let mut query = sqlx::query(&sql);
        if let Some(arg) = arg {
            query = query.bind(arg);
        }
        query.fetch_all(&self.pool).await?.iter().map(user_from_row).collect()
    }

    /// One page of all users, oldest first, and how many there are in all.
    pub async fn scim_users_page(&self, offset: u64, limit: u64) -> Result<(u64, Vec<ScimUser>)> {
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM scim_users").fetch_one(&self.pool).await?;
        let sql =
            format!("SELECT {USER_COLUMNS} FROM scim_users ORDER BY rowid LIMIT ?1 OFFSET ?2");
        let rows = sqlx::query(&sql)
            .bind(clamp_i64(limit))
            .bind(clamp_i64(offset))
            .fetch_all(&self.pool)
            .await?;
        let users = rows.iter().map(user_from_row).collect::<Result<_>>()?;
        Ok((u64::try_from(total).unwrap_or(0), users))
    }

    /// Read-modify-write of one user, serialized with every other write: `change` gets the
    /// current user and returns what to store. `Error::NotFound` (through `E`) if there is no
    /// such user, `Error::AlreadyExists` if the new userName is taken. `audit(Some(before),
    /// Some(after))` builds the entry recorded with the change.
    pub async fn scim_modify_user<E, F, A>(
        &self,
        id: &str,
        change: F,
        audit: A,
    ) -> Result<ScimUser, E>
    where
        E: From<Error>,
        F: FnOnce(&ScimUser) -> Result<ScimUserData, E>,
        A: FnOnce(Option<&ScimUser>, Option<&ScimUser>) -> AuditEntry,
    {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(Error::from)?;
        let sql = format!("SELECT {USER_COLUMNS} FROM scim_users WHERE id = ?1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await.map_err(Error::from)?;
        let Some(row) = row else {
            return Err(Error::NotFound { kind: USER, name: id.to_owned() }.into());
        };
        let current = user_from_row(&row)?;
        let data = change(&current)?;
        let now = now_ms();
        let version = current.meta.version + 1;
        let done = sqlx::query(
            "UPDATE scim_users SET user_name = ?2, user_name_key = ?3, external_id = ?4,
                 display_name = ?5, given_name = ?6, family_name = ?7, emails = ?8, active = ?9,
                 resource = ?10, updated_at_ms = ?11, version = ?12
             WHERE id = ?1",
        )
        .bind(id)
        .bind(&data.user_name)
        .bind(name_key(&data.user_name))
        .bind(&data.external_id)
        .bind(&data.display_name)
        .bind(&data.given_name)
        .bind(&data.family_name)
        .bind(to_json(&data.emails))
        .bind(data.active)
        .bind(Value::Object(data.resource.clone()).to_string())
        .bind(now)
        .bind(version)
        .execute(&mut *tx)
        .await;
        unique(done, USER, &data.user_name)?;
        let meta =
            ScimMeta { created_at_ms: current.meta.created_at_ms, updated_at_ms: now, version };
        let user = ScimUser { id: id.to_owned(), data, meta };
        insert_audit(&mut tx, &audit(Some(&current), Some(&user))).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(user)
    }

    /// Deletes a user and its memberships; `false` if there was none. `audit(Some(before),
    /// None)` builds the entry recorded with the change.
    pub async fn scim_delete_user<A>(&self, id: &str, audit: A) -> Result<bool>
    where
        A: FnOnce(Option<&ScimUser>, Option<&ScimUser>) -> AuditEntry,
    {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM scim_users WHERE id = ?1");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await? else {
            return Ok(false);
        };
        let before = user_from_row(&row)?;
        sqlx::query("DELETE FROM scim_users WHERE id = ?1").bind(id).execute(&mut *tx).await?;
        insert_audit(&mut tx, &audit(Some(&before), None)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The groups of each of `user_ids` (users without groups are absent), by display name.
    pub async fn scim_user_groups(
        &self,
        user_ids: &[&str],
    ) -> Result<HashMap<String, Vec<ScimGroupRef>>> {
        let mut out: HashMap<String, Vec<ScimGroupRef>> = HashMap::new();
        if user_ids.is_empty() {
            return Ok(out);
        }
        let rows = sqlx::query(
            "SELECT m.user_id, g.id, g.display_name
             FROM scim_memberships m JOIN scim_groups g ON g.id = m.group_id
             WHERE m.user_id IN (SELECT value FROM json_each(?1))
             ORDER BY g.display_name_key, g.id",
        )
        .bind(to_json(&user_ids))
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            out.entry(row.try_get("user_id")?).or_default().push(ScimGroupRef {
                id: row.try_get("id")?,
                display_name: row.try_get("display_name")?,
            });
        }
        Ok(out)
    }

    // ---- groups -------------------------------------------------------------------------------

    /// Creates a group with a fresh id and its memberships; `Error::AlreadyExists` if the
    /// displayName is taken (case-insensitively), `Error::UnknownMember` if a member is not a
    /// user. `audit(None, Some(created))` builds the entry recorded with it.
    pub async fn scim_create_group<A>(&self, data: &ScimGroupData, audit: A) -> Result<ScimGroup>
    where
        A: FnOnce(Option<&ScimGroup>, Option<&ScimGroup>) -> AuditEntry,
    {
        let id = new_id()?;
        let now = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "INSERT INTO scim_groups (id, display_name, display_name_key, external_id, resource,
                 created_at_ms, updated_at_ms, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)",
        )
        .bind(&id)
        .bind(&data.display_name)
        .bind(name_key(&data.display_name))
        .bind(&data.external_id)
        .bind(Value::Object(data.resource.clone()).to_string())
        .bind(now)
        .execute(&mut *tx)
        .await;
        unique(done, GROUP, &data.display_name)?;
        let members = set_members(&mut tx, &id, &[], &data.members).await?;
        let meta = ScimMeta { created_at_ms: now, updated_at_ms: now, version: 1 };
        let group = ScimGroup { id, data: ScimGroupData { members, ..data.clone() }, meta };
        insert_audit(&mut tx, &audit(None, Some(&group))).await?;
        tx.commit().await?;
        Ok(group)
    }

    pub async fn scim_group(&self, id: &str, members: Members) -> Result<Option<ScimGroup>> {
        Ok(self.scim_find_groups(&ScimLookup::Id(id.to_owned()), members).await?.pop())
    }

    /// The groups a lookup selects, oldest first.
    pub async fn scim_find_groups(
        &self,
        lookup: &ScimLookup,
        members: Members,
    ) -> Result<Vec<ScimGroup>> {
        let (condition, arg) = match lookup {
            ScimLookup::All => ("1 = 1", None),
            ScimLookup::Id(id) => ("id = ?1", Some(id.clone())),
            ScimLookup::Name(name) => ("display_name_key = ?1", Some(name_key(name))),
            ScimLookup::ExternalId(id) => ("external_id = ?1", Some(id.clone())),
            ScimLookup::Member(user) => (
                "id IN (SELECT group_id FROM scim_memberships WHERE user_id = ?1)",
                Some(user.clone()),
            ),
            ScimLookup::Email(_) => return Ok(Vec::new()),
        };
        let sql =
            format!("SELECT {GROUP_COLUMNS} FROM scim_groups WHERE {condition} ORDER BY rowid");
        let mut query = sqlx::query(&sql);
        if let Some(arg) = arg {
            query = query.bind(arg);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut groups = rows.iter().map(group_from_row).collect::<Result<Vec<_>>>()?;
        if members == Members::Load {
            self.fill_members(&mut groups).await?;
        }
        Ok(groups)
    }

    /// One page of all groups, oldest first, and how many there are in all.
    pub async fn scim_groups_page(
        &self,
        offset: u64,
        limit: u64,
        members: Members,
    ) -> Result<(u64, Vec<ScimGroup>)> {
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM scim_groups").fetch_one(&self.pool).await?;
        let sql =
            format!("SELECT {GROUP_COLUMNS} FROM scim_groups ORDER BY rowid LIMIT ?1 OFFSET ?2");
        let rows = sqlx::query(&sql)
            .bind(clamp_i64(limit))
            .bind(clamp_i64(offset))
            .fetch_all(&self.pool)
            .await?;
        let mut groups = rows.iter().map(group_from_row).collect::<Result<Vec<_>>>()?;
        if members == Members::Load {
            self.fill_members(&mut groups).await?;
        }
        Ok((u64::try_from(total).unwrap_or(0), groups))
    }

    async fn fill_members(&self, groups: &mut [ScimGroup]) -> Result<()> {
        if groups.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        let rows = sqlx::query(
            "SELECT m.group_id, m.user_id FROM scim_memberships m
             JOIN scim_users u ON u.id = m.user_id
             WHERE m.group_id IN (SELECT value FROM json_each(?1))
             ORDER BY u.rowid",
        )
        .bind(to_json(&ids))
        .fetch_all(&self.pool)
        .await?;
        let mut by_group: HashMap<String, Vec<String>> = HashMap::new();
        for row in rows {
            by_group.entry(row.try_get("group_id")?).or_default().push(row.try_get("user_id")?);
        }
        for group in groups {
            group.data.members = by_group.remove(&group.id).unwrap_or_default();
        }
        Ok(())
    }

    /// Read-modify-write of one group, serialized with every other write: `change` gets the
    /// current group, members included, and returns what to store; memberships are updated by
    /// difference. `Error::NotFound` if there is no such group, `Error::AlreadyExists` if the
    /// new displayName is taken, `Error::UnknownMember` if a new member is not a user.
    /// `audit(Some(before), Some(after))` builds the entry recorded with the change (both with
    /// their members).
    pub async fn scim_modify_group<E, F, A>(
        &self,
        id: &str,
        change: F,
        audit: A,
    ) -> Result<ScimGroup, E>
    where
        E: From<Error>,
        F: FnOnce(&ScimGroup) -> Result<ScimGroupData, E>,
        A: FnOnce(Option<&ScimGroup>, Option<&ScimGroup>) -> AuditEntry,
    {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(Error::from)?;
        let sql = format!("SELECT {GROUP_COLUMNS} FROM scim_groups WHERE id = ?1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await.map_err(Error::from)?;
        let Some(row) = row else {
            return Err(Error::NotFound { kind: GROUP, name: id.to_owned() }.into());
        };
        let mut current = group_from_row(&row)?;
        current.data.members = members_of(&mut tx, id).await?;
        let data = change(&current)?;
        let now = now_ms();
        let version = current.meta.version + 1;
        let done = sqlx::query(
            "UPDATE scim_groups SET display_name = ?2, display_name_key = ?3, external_id = ?4,
                 resource = ?5, updated_at_ms = ?6, version = ?7
             WHERE id = ?1",
        )
        .bind(id)
        .bind(&data.display_name)
        .bind(name_key(&data.display_name))
        .bind(&data.external_id)
        .bind(Value::Object(data.resource.clone()).to_string())
        .bind(now)
        .bind(version)
        .execute(&mut *tx)
        .await;
        unique(done, GROUP, &data.display_name)?;
        let members = set_members(&mut tx, id, &current.data.members, &data.members).await?;
        let meta =
            ScimMeta { created_at_ms: current.meta.created_at_ms, updated_at_ms: now, version };
        let group = ScimGroup { id: id.to_owned(), data: ScimGroupData { members, ..data }, meta };
        insert_audit(&mut tx, &audit(Some(&current), Some(&group))).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(group)
    }

    /// Deletes a group and its memberships; `false` if there was none. `audit(Some(before),
    /// None)` builds the entry recorded with the change (`before` with its members).
    pub async fn scim_delete_group<A>(&self, id: &str, audit: A) -> Result<bool>
    where
        A: FnOnce(Option<&ScimGroup>, Option<&ScimGroup>) -> AuditEntry,
    {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let sql = format!("SELECT {GROUP_COLUMNS} FROM scim_groups WHERE id = ?1");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await? else {
            return Ok(false);
        };
        let mut before = group_from_row(&row)?;
        before.data.members = members_of(&mut tx, id).await?;
        sqlx::query("DELETE FROM scim_groups WHERE id = ?1").bind(id).execute(&mut *tx).await?;
        insert_audit(&mut tx, &audit(Some(&before), None)).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// A group's member ids, oldest user first.
async fn members_of(tx: &mut Transaction<'static, Sqlite>, group_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT m.user_id FROM scim_memberships m JOIN scim_users u ON u.id = m.user_id
         WHERE m.group_id = ?1 ORDER BY u.rowid",
    )
    .bind(group_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// Brings a group's memberships from `current` to `wanted` (duplicates ignored) and returns the
/// resulting member list: `current` order for those kept, then the new ones in `wanted` order.
async fn set_members(
    tx: &mut Transaction<'static, Sqlite>,
    group_id: &str,
    current: &[String],
    wanted: &[String],
) -> Result<Vec<String>> {
    let wanted_set: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let current_set: HashSet<&str> = current.iter().map(String::as_str).collect();
    for gone in current.iter().filter(|m| !wanted_set.contains(m.as_str())) {
        sqlx::query("DELETE FROM scim_memberships WHERE group_id = ?1 AND user_id = ?2")
            .bind(group_id)
            .bind(gone)
            .execute(&mut **tx)
            .await?;
    }
    let mut members: Vec<String> =
        current.iter().filter(|m| wanted_set.contains(m.as_str())).cloned().collect();
    let mut added: HashSet<&str> = HashSet::new();
    for new in wanted.iter().filter(|m| !current_set.contains(m.as_str())) {
        if !added.insert(new.as_str()) {
            continue;
        }
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM scim_users WHERE id = ?1")
            .bind(new)
            .fetch_optional(&mut **tx)
            .await?;
        if exists.is_none() {
            return Err(Error::UnknownMember(new.clone()));
        }
        sqlx::query("INSERT INTO scim_memberships (group_id, user_id) VALUES (?1, ?2)")
            .bind(group_id)
            .bind(new)
            .execute(&mut **tx)
            .await?;
        members.push(new.clone());
    }
    Ok(members)
}

fn user_from_row(row: &SqliteRow) -> Result<ScimUser> {
    let id: String = row.try_get("id")?;
    let emails: String = row.try_get("emails")?;
    let resource: String = row.try_get("resource")?;
    Ok(ScimUser {
        data: ScimUserData {
            user_name: row.try_get("user_name")?,
            external_id: row.try_get("external_id")?,
            display_name: row.try_get("display_name")?,
            given_name: row.try_get("given_name")?,
            family_name: row.try_get("family_name")?,
            emails: parse_json(&format!("{USER} {id} emails"), &emails)?,
            active: row.try_get("active")?,
            resource: parse_json(&format!("{USER} {id}"), &resource)?,
        },
        meta: meta_from_row(row)?,
        id,
    })
}

fn group_from_row(row: &SqliteRow) -> Result<ScimGroup> {
    let id: String = row.try_get("id")?;
    let resource: String = row.try_get("resource")?;
    Ok(ScimGroup {
        data: ScimGroupData {
            display_name: row.try_get("display_name")?,
            external_id: row.try_get("external_id")?,
            resource: parse_json(&format!("{GROUP} {id}"), &resource)?,
            members: Vec::new(),
        },
        meta: meta_from_row(row)?,
        id,
    })
}

fn meta_from_row(row: &SqliteRow) -> Result<ScimMeta> {
    Ok(ScimMeta {
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        version: row.try_get("version")?,
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| Error::Corrupt { what: what.to_owned(), source })
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

/// Maps a unique violation (the name key) to `AlreadyExists`.
fn unique(
    done: std::result::Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>,
    kind: &'static str,
    name: &str,
) -> Result<()> {
    match done {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(Error::AlreadyExists { kind, name: name.to_owned() })
        }
        Err(e) => Err(e.into()),
    }
}

/// The case-insensitive form of a userName, displayName or email (full Unicode lowercase).
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A random (version 4) UUID, lowercase hex with hyphens.
fn new_id() -> Result<String> {
    let mut b = [0u8; 16];
    SystemRandom::new().fill(&mut b).map_err(|_| SecretError::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

fn token_hash(secret: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, secret.as_bytes()).as_ref());
    out
}

/// Compares two byte strings without an early exit, so the time taken does not tell how much of
/// a guess was right. (ring's `constant_time::verify_slices_are_equal` is deprecated.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests;
