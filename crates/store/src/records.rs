//! Providers, groups, agents, policies and signing keys: the dynamic configuration the data
//! plane compiles into its snapshot. Specs are stored as JSON in private mirror types, so the
//! domain types stay free of serde. Each read and write is a function of a connection, so that
//! the same code serves the `Store` (a pooled connection) and a [`Transaction`].

use domain::{
    Api, GatewayPreset, GlobalLimit, Limit, Metric, ModelPattern, Per, Policy, Price, Provider,
    ProviderKind, Source, Stamping,
};
use secrecy::{SecretBox, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};

use crate::{
    now_ms,
    secrets::{fingerprint, Cipher},
    Error, Result, Store, Transaction,
};

/// Who owns a record: the config file (re-applied at every start) or the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedBy {
    Config,
    Api,
}

impl ManagedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedBy::Config => "config",
            ManagedBy::Api => "api",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "config" {
            ManagedBy::Config
        } else {
            ManagedBy::Api
        }
    }
}

/// A stored provider: its spec and what operators may know of its key.
#[derive(Debug, Clone)]
pub struct ProviderRecord {
    pub provider: Provider,
    pub managed_by: ManagedBy,
    /// The key's last four characters, if a key is set.
    pub key_fingerprint: Option<String>,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub name: String,
    pub description: String,
    pub managed_by: ManagedBy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub name: String,
    pub description: String,
    pub groups: Vec<String>,
    pub managed_by: ManagedBy,
}

#[derive(Debug, Clone)]
pub struct GlobalLimitRecord {
    pub limit: GlobalLimit,
    pub managed_by: ManagedBy,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct PolicyRecord {
    pub policy: Policy,
    pub managed_by: ManagedBy,
    pub updated_at_ms: i64,
}

/// A key that signs identity assertions. The private half stays secret in memory and sealed on
/// disk.
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    pub pkcs8: SecretBox<Vec<u8>>,
    pub public_key: Vec<u8>,
    pub created_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct ProviderSpecJson {
    kind: String,
    base_url: String,
    apis: Vec<String>,
    models: Vec<String>,
    #[serde(default)]
    prices: Vec<PriceJson>,
    stamping_enabled: bool,
    preset: String,
    /// Absent in specs written before the setting existed: signed, as they were.
    #[serde(default = "signed")]
    assertion: bool,
    #[serde(default)]
    azure_api_version: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct PriceJson {
    model: String,
    input: u64,
    output: u64,
    cache_write: u64,
    cache_read: u64,
}

#[derive(Serialize, Deserialize)]
struct PolicySpecJson {
    sources: Vec<SourceJson>,
    providers: Vec<String>,
    models: Vec<String>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    limits: Vec<LimitJson>,
}

#[derive(Serialize, Deserialize)]
struct LimitJson {
    metric: String,
    per: String,
    cap: u64,
    window_secs: u64,
}

#[derive(Serialize, Deserialize)]
struct GlobalLimitJson {
    targets: Vec<SourceJson>,
    #[serde(flatten)]
    limit: LimitJson,
}

fn limit_to_json(l: &Limit) -> LimitJson {
    LimitJson {
        metric: match l.metric {
            Metric::Spend => "spend",
            Metric::Tokens => "tokens",
            Metric::Requests => "requests",
        }
        .to_owned(),
        per: match l.per {
            Per::User => "user",
            Per::Group => "group",
        }
        .to_owned(),
        cap: l.cap,
        window_secs: l.window_secs,
    }
}

fn limit_from_json(what: &str, l: LimitJson) -> Result<Limit> {
    let bad = |field: &str| Error::Corrupt {
        what: what.to_owned(),
        source: serde::de::Error::custom(format!("unknown {field}")),
    };
    Ok(Limit {
        metric: match l.metric.as_str() {
            "spend" => Metric::Spend,
            "tokens" => Metric::Tokens,
            "requests" => Metric::Requests,
            _ => return Err(bad("metric")),
        },
        per: match l.per.as_str() {
            "user" => Per::User,
            "group" => Per::Group,
            _ => return Err(bad("per")),
        },
        cap: l.cap,
        window_secs: l.window_secs,
    })
}

fn sources_to_json(sources: &[Source]) -> Vec<SourceJson> {
    sources
        .iter()
        .map(|s| match s {
            Source::Group(g) => SourceJson::Group(g.clone()),
            Source::User(u) => SourceJson::User(u.clone()),
            Source::Agent(a) => SourceJson::Agent(a.clone()),
            Source::Everyone => SourceJson::Everyone,
        })
        .collect()
}

fn sources_from_json(sources: Vec<SourceJson>) -> Vec<Source> {
    sources
        .into_iter()
        .map(|s| match s {
            SourceJson::Group(g) => Source::Group(g),
            SourceJson::User(u) => Source::User(u),
            SourceJson::Agent(a) => Source::Agent(a),
            SourceJson::Everyone => Source::Everyone,
        })
        .collect()
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
enum SourceJson {
    Group(String),
    User(String),
    Agent(String),
    Everyone,
}

fn provider_to_json(p: &Provider) -> ProviderSpecJson {
    ProviderSpecJson {
        kind: p.kind.as_str().to_owned(),
        base_url: p.base_url.clone(),
        apis: p.apis.iter().map(|a| a.as_str().to_owned()).collect(),
        models: p.models.iter().map(|m| m.as_str().to_owned()).collect(),
        prices: p
            .price_overrides
            .iter()
            .map(|(m, pr)| PriceJson {
                model: m.as_str().to_owned(),
                input: pr.input,
                output: pr.output,
                cache_write: pr.cache_write,
                cache_read: pr.cache_read,
            })
            .collect(),
        stamping_enabled: p.stamping.enabled,
        preset: p.stamping.preset.as_str().to_owned(),
        assertion: p.stamping.assertion,
        azure_api_version: p.azure_api_version.clone(),
    }
}

fn signed() -> bool {
    true
}

fn corrupt(what: String) -> impl FnOnce(serde_json::Error) -> Error {
    move |source| Error::Corrupt { what, source }
}

fn provider_from_json(name: String, json: &str) -> Result<Provider> {
    let spec: ProviderSpecJson =
        serde_json::from_str(json).map_err(corrupt(format!("provider '{name}'")))?;
    let bad = |field: &str| Error::Corrupt {
        what: format!("provider '{name}'"),
        source: serde::de::Error::custom(format!("unknown {field}")),
    };
    let kind = ProviderKind::parse(&spec.kind).ok_or_else(|| bad("kind"))?;
    let apis =
        spec.apis.iter().map(|a| Api::parse(a).ok_or_else(|| bad("api"))).collect::<Result<_>>()?;
    let preset = GatewayPreset::parse(&spec.preset).ok_or_else(|| bad("preset"))?;
    Ok(Provider {
        name,
        kind,
        base_url: spec.base_url,
        apis,
        models: spec.models.into_iter().map(ModelPattern::new).collect(),
        price_overrides: spec
            .prices
            .into_iter()
            .map(|p| {
                let price = Price {
                    input: p.input,
                    output: p.output,
                    cache_write: p.cache_write,
                    cache_read: p.cache_read,
                };
                (ModelPattern::new(p.model), price)
            })
            .collect(),
        stamping: Stamping { enabled: spec.stamping_enabled, preset, assertion: spec.assertion },
        azure_api_version: spec.azure_api_version,
    })
}

fn policy_to_json(p: &Policy) -> PolicySpecJson {
    PolicySpecJson {
        sources: sources_to_json(&p.sources),
        providers: p.providers.clone(),
        models: p.models.iter().map(|m| m.as_str().to_owned()).collect(),
        max_tokens: p.max_tokens,
        limits: p.limits.iter().map(limit_to_json).collect(),
    }
}

fn policy_from_json(name: String, json: &str) -> Result<Policy> {
    let what = format!("policy '{name}'");
    let spec: PolicySpecJson = serde_json::from_str(json).map_err(corrupt(what.clone()))?;
    Ok(Policy {
        name,
        sources: sources_from_json(spec.sources),
        providers: spec.providers,
        models: spec.models.into_iter().map(ModelPattern::new).collect(),
        max_tokens: spec.max_tokens,
        limits: spec
            .limits
            .into_iter()
            .map(|l| limit_from_json(&what, l))
            .collect::<Result<_>>()?,
    })
}

fn global_from_json(name: String, json: &str) -> Result<GlobalLimit> {
    let what = format!("global limit '{name}'");
    let spec: GlobalLimitJson = serde_json::from_str(json).map_err(corrupt(what.clone()))?;
    Ok(GlobalLimit {
        name,
        targets: sources_from_json(spec.targets),
        limit: limit_from_json(&what, spec.limit)?,
    })
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail (no maps with non-string keys, no floats).
    serde_json::to_string(value).unwrap_or_default()
}

fn key_context(provider: &str) -> String {
    format!("provider-key:{provider}")
}

impl Store {
    /// Creates or replaces a provider's spec; its key, if any, is kept. An API write never
    /// replaces a config-managed provider (`Error::ManagedByConfig`); the config file does.
    pub async fn put_provider(&self, provider: &Provider, managed_by: ManagedBy) -> Result<()> {
        write_provider(&mut *self.pool.acquire().await?, provider, managed_by, Conflict::Replace)
            .await
    }

    /// Creates a provider; `Error::AlreadyExists` if one has that name.
    pub async fn create_provider(&self, provider: &Provider, managed_by: ManagedBy) -> Result<()> {
        write_provider(&mut *self.pool.acquire().await?, provider, managed_by, Conflict::Fail).await
    }

    /// Sets (or replaces) a provider's upstream key, encrypted under the master key.
    pub async fn set_provider_key(&self, name: &str, key: &SecretString) -> Result<()> {
        set_provider_key(&mut *self.pool.acquire().await?, &self.cipher, name, key).await
    }

    pub async fn providers(&self) -> Result<Vec<ProviderRecord>> {
        providers(&mut *self.pool.acquire().await?, None).await
    }

    pub async fn provider(&self, name: &str) -> Result<Option<ProviderRecord>> {
        Ok(providers(&mut *self.pool.acquire().await?, Some(name)).await?.pop())
    }

    /// Every provider's decrypted key, for the data plane's snapshot.
    pub async fn provider_keys(&self) -> Result<Vec<(String, SecretString)>> {
        let rows = sqlx::query(
            "SELECT name, key_ciphertext FROM providers WHERE key_ciphertext IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let name: String = row.try_get("name")?;
                let sealed: Vec<u8> = row.try_get("key_ciphertext")?;
                let key = self.cipher.open_string(&sealed, &key_context(&name))?;
                Ok((name, key))
            })
            .collect()
    }

    /// Deletes an API-managed provider: `Ok(false)` if there is none by that name,
    /// `Error::ManagedByConfig` if the config file owns it.
    pub async fn delete_provider(&self, name: &str) -> Result<bool> {
        delete_api_managed(&mut *self.pool.acquire().await?, "providers", "provider", name).await
    }

    /// Creates or replaces a group (API writes never replace a config-managed one).
    pub async fn put_group(&self, group: &GroupRecord) -> Result<()> {
        write_group(&mut *self.pool.acquire().await?, group, Conflict::Replace).await
    }

    /// Creates a group; `Error::AlreadyExists` if one has that name.
    pub async fn create_group(&self, group: &GroupRecord) -> Result<()> {
        write_group(&mut *self.pool.acquire().await?, group, Conflict::Fail).await
    }

    pub async fn groups(&self) -> Result<Vec<GroupRecord>> {
        groups(&mut *self.pool.acquire().await?, None).await
    }

    pub async fn group(&self, name: &str) -> Result<Option<GroupRecord>> {
        Ok(groups(&mut *self.pool.acquire().await?, Some(name)).await?.pop())
    }

    /// Deletes an API-managed group: `Ok(false)` if there is none by that name,
    /// `Error::ManagedByConfig` if the config file owns it.
    pub async fn delete_group(&self, name: &str) -> Result<bool> {
        delete_api_managed(&mut *self.pool.acquire().await?, "groups", "group", name).await
    }

    /// Creates or replaces an agent (API writes never replace a config-managed one).
    pub async fn put_agent(&self, agent: &AgentRecord) -> Result<()> {
        write_agent(&mut *self.pool.acquire().await?, agent, Conflict::Replace).await
    }

    /// Creates an agent; `Error::AlreadyExists` if one has that name.
    pub async fn create_agent(&self, agent: &AgentRecord) -> Result<()> {
        write_agent(&mut *self.pool.acquire().await?, agent, Conflict::Fail).await
    }

    pub async fn agents(&self) -> Result<Vec<AgentRecord>> {
        agents(&mut *self.pool.acquire().await?, None).await
    }

    pub async fn agent(&self, name: &str) -> Result<Option<AgentRecord>> {
        Ok(agents(&mut *self.pool.acquire().await?, Some(name)).await?.pop())
    }

    /// Deletes an API-managed agent: `Ok(false)` if there is none by that name,
    /// `Error::ManagedByConfig` if the config file owns it.
    pub async fn delete_agent(&self, name: &str) -> Result<bool> {
        delete_api_managed(&mut *self.pool.acquire().await?, "agents", "agent", name).await
    }

    /// Creates or replaces a policy (API writes never replace a config-managed one).
    pub async fn put_policy(&self, policy: &Policy, managed_by: ManagedBy) -> Result<()> {
        write_policy(&mut *self.pool.acquire().await?, policy, managed_by, Conflict::Replace).await
    }

    /// Creates a policy; `Error::AlreadyExists` if one has that name.
    pub async fn create_policy(&self, policy: &Policy, managed_by: ManagedBy) -> Result<()> {
        write_policy(&mut *self.pool.acquire().await?, policy, managed_by, Conflict::Fail).await
    }

    pub async fn policies(&self) -> Result<Vec<PolicyRecord>> {
        policies(&mut *self.pool.acquire().await?, None).await
    }

    pub async fn policy(&self, name: &str) -> Result<Option<PolicyRecord>> {
        Ok(policies(&mut *self.pool.acquire().await?, Some(name)).await?.pop())
    }

    /// Deletes an API-managed policy: `Ok(false)` if there is none by that name,
    /// `Error::ManagedByConfig` if the config file owns it.
    pub async fn delete_policy(&self, name: &str) -> Result<bool> {
        delete_api_managed(&mut *self.pool.acquire().await?, "policies", "policy", name).await
    }

    /// Creates or replaces a global limit (API writes never replace a config-managed one).
    pub async fn put_global_limit(&self, limit: &GlobalLimit, managed_by: ManagedBy) -> Result<()> {
        write_global_limit(&mut *self.pool.acquire().await?, limit, managed_by, Conflict::Replace)
            .await
    }

    /// Creates a global limit; `Error::AlreadyExists` if one has that name.
    pub async fn create_global_limit(
        &self,
        limit: &GlobalLimit,
        managed_by: ManagedBy,
    ) -> Result<()> {
        write_global_limit(&mut *self.pool.acquire().await?, limit, managed_by, Conflict::Fail)
            .await
    }

    pub async fn global_limits(&self) -> Result<Vec<GlobalLimitRecord>> {
        global_limits(&mut *self.pool.acquire().await?, None).await
    }

    pub async fn global_limit(&self, name: &str) -> Result<Option<GlobalLimitRecord>> {
        Ok(global_limits(&mut *self.pool.acquire().await?, Some(name)).await?.pop())
    }

    /// Deletes an API-managed global limit: `Ok(false)` if there is none by that name,
    /// `Error::ManagedByConfig` if the config file owns it.
    pub async fn delete_global_limit(&self, name: &str) -> Result<bool> {
        delete_api_managed(&mut *self.pool.acquire().await?, "global_limits", "global limit", name)
            .await
    }

    /// Deletes config-managed records of `table` whose names are not in `keep`: what was removed
    /// from the config file disappears at the next start; API-managed records are untouched.
    pub async fn prune_config_managed(&self, table: ConfigTable, keep: &[String]) -> Result<u64> {
        let sql = format!("SELECT name FROM {} WHERE managed_by = 'config'", table.name());
        let names: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&self.pool).await?;
        let mut removed = 0;
        for name in names.into_iter().filter(|n| !keep.contains(n)) {
            let sql = format!("DELETE FROM {} WHERE name = ?1", table.name());
            removed += sqlx::query(&sql).bind(&name).execute(&self.pool).await?.rows_affected();
        }
        Ok(removed)
    }

    /// The current assertion-signing key, if one was created.
    pub async fn signing_key(&self) -> Result<Option<SigningKey>> {
        let row = sqlx::query(
            "SELECT kid, alg, private_ciphertext, public_key, created_at_ms FROM signing_keys
             ORDER BY created_at_ms DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let kid: String = row.try_get("kid")?;
        let sealed: Vec<u8> = row.try_get("private_ciphertext")?;
        let pkcs8 = self.cipher.open(&sealed, &format!("signing-key:{kid}"))?;
        Ok(Some(SigningKey {
            kid,
            alg: row.try_get("alg")?,
            pkcs8: SecretBox::new(Box::new(pkcs8)),
            public_key: row.try_get("public_key")?,
            created_at_ms: row.try_get("created_at_ms")?,
        }))
    }

    pub async fn put_signing_key(&self, key: &SigningKey) -> Result<()> {
        let sealed = self.cipher.seal(
            secrecy::ExposeSecret::expose_secret(&key.pkcs8),
            &format!("signing-key:{}", key.kid),
        )?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_ciphertext, public_key, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(sealed)
        .bind(&key.public_key)
        .bind(key.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The same reads and writes inside a transaction, for the admin API: it reads the record
/// before, writes, reads it after and records the audit entry, all in one transaction. Each
/// method behaves as its `Store` namesake.
impl Transaction {
    pub async fn put_provider(&mut self, provider: &Provider, managed_by: ManagedBy) -> Result<()> {
        write_provider(&mut self.tx, provider, managed_by, Conflict::Replace).await
    }

    pub async fn create_provider(
        &mut self,
        provider: &Provider,
        managed_by: ManagedBy,
    ) -> Result<()> {
        write_provider(&mut self.tx, provider, managed_by, Conflict::Fail).await
    }

    pub async fn set_provider_key(&mut self, name: &str, key: &SecretString) -> Result<()> {
        set_provider_key(&mut self.tx, &self.cipher, name, key).await
    }

    pub async fn provider(&mut self, name: &str) -> Result<Option<ProviderRecord>> {
        Ok(providers(&mut self.tx, Some(name)).await?.pop())
    }

    pub async fn delete_provider(&mut self, name: &str) -> Result<bool> {
        delete_api_managed(&mut self.tx, "providers", "provider", name).await
    }

    pub async fn put_group(&mut self, group: &GroupRecord) -> Result<()> {
        write_group(&mut self.tx, group, Conflict::Replace).await
    }

    pub async fn create_group(&mut self, group: &GroupRecord) -> Result<()> {
        write_group(&mut self.tx, group, Conflict::Fail).await
    }

    pub async fn group(&mut self, name: &str) -> Result<Option<GroupRecord>> {
        Ok(groups(&mut self.tx, Some(name)).await?.pop())
    }

    pub async fn delete_group(&mut self, name: &str) -> Result<bool> {
        delete_api_managed(&mut self.tx, "groups", "group", name).await
    }

    pub async fn put_agent(&mut self, agent: &AgentRecord) -> Result<()> {
        write_agent(&mut self.tx, agent, Conflict::Replace).await
    }

    pub async fn create_agent(&mut self, agent: &AgentRecord) -> Result<()> {
        write_agent(&mut self.tx, agent, Conflict::Fail).await
    }

    pub async fn agent(&mut self, name: &str) -> Result<Option<AgentRecord>> {
        Ok(agents(&mut self.tx, Some(name)).await?.pop())
    }

    pub async fn delete_agent(&mut self, name: &str) -> Result<bool> {
        delete_api_managed(&mut self.tx, "agents", "agent", name).await
    }

    pub async fn put_policy(&mut self, policy: &Policy, managed_by: ManagedBy) -> Result<()> {
        write_policy(&mut self.tx, policy, managed_by, Conflict::Replace).await
    }

    pub async fn create_policy(&mut self, policy: &Policy, managed_by: ManagedBy) -> Result<()> {
        write_policy(&mut self.tx, policy, managed_by, Conflict::Fail).await
    }

    pub async fn policy(&mut self, name: &str) -> Result<Option<PolicyRecord>> {
        Ok(policies(&mut self.tx, Some(name)).await?.pop())
    }

    pub async fn delete_policy(&mut self, name: &str) -> Result<bool> {
        delete_api_managed(&mut self.tx, "policies", "policy", name).await
    }

    pub async fn put_global_limit(
        &mut self,
        limit: &GlobalLimit,
        managed_by: ManagedBy,
    ) -> Result<()> {
        write_global_limit(&mut self.tx, limit, managed_by, Conflict::Replace).await
    }

    pub async fn create_global_limit(
        &mut self,
        limit: &GlobalLimit,
        managed_by: ManagedBy,
    ) -> Result<()> {
        write_global_limit(&mut self.tx, limit, managed_by, Conflict::Fail).await
    }

    pub async fn global_limit(&mut self, name: &str) -> Result<Option<GlobalLimitRecord>> {
        Ok(global_limits(&mut self.tx, Some(name)).await?.pop())
    }

    pub async fn delete_global_limit(&mut self, name: &str) -> Result<bool> {
        delete_api_managed(&mut self.tx, "global_limits", "global limit", name).await
    }
}

async fn write_provider(
    conn: &mut SqliteConnection,
    provider: &Provider,
    managed_by: ManagedBy,
    conflict: Conflict,
) -> Result<()> {
    let spec = to_json(&provider_to_json(provider));
    write_spec(conn, "providers", "provider", &provider.name, spec, managed_by, conflict).await
}

async fn write_policy(
    conn: &mut SqliteConnection,
    policy: &Policy,
    managed_by: ManagedBy,
    conflict: Conflict,
) -> Result<()> {
    let spec = to_json(&policy_to_json(policy));
    write_spec(conn, "policies", "policy", &policy.name, spec, managed_by, conflict).await
}

async fn write_global_limit(
    conn: &mut SqliteConnection,
    limit: &GlobalLimit,
    managed_by: ManagedBy,
    conflict: Conflict,
) -> Result<()> {
    let spec = to_json(&GlobalLimitJson {
        targets: sources_to_json(&limit.targets),
        limit: limit_to_json(&limit.limit),
    });
    write_spec(conn, "global_limits", "global limit", &limit.name, spec, managed_by, conflict).await
}

/// Writes a record of a table shaped `(name, spec JSON, managed_by, timestamps)`.
async fn write_spec(
    conn: &mut SqliteConnection,
    table: &str,
    kind: &'static str,
    name: &str,
    spec: String,
    managed_by: ManagedBy,
    conflict: Conflict,
) -> Result<()> {
    let insert = format!(
        "INSERT INTO {table} (name, spec, managed_by, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?4)"
    );
    // A write that changes nothing (the config file applied again at start) keeps the time of
    // the last real change.
    let update = format!(
        "spec = ?2, managed_by = ?3, updated_at_ms = CASE WHEN {table}.spec = ?2 AND \
         {table}.managed_by = ?3 THEN {table}.updated_at_ms ELSE ?4 END"
    );
    let sql = conflict.sql(table, &insert, &update);
    let done = sqlx::query(&sql)
        .bind(name)
        .bind(spec)
        .bind(managed_by.as_str())
        .bind(now_ms())
        .execute(conn)
        .await;
    conflict.check(done, kind, name)
}

async fn set_provider_key(
    conn: &mut SqliteConnection,
    cipher: &Cipher,
    name: &str,
    key: &SecretString,
) -> Result<()> {
    let sealed =
        cipher.seal(secrecy::ExposeSecret::expose_secret(key).as_bytes(), &key_context(name))?;
    let done = sqlx::query(
        "UPDATE providers SET key_ciphertext = ?2, key_fingerprint = ?3, updated_at_ms = ?4
         WHERE name = ?1",
    )
    .bind(name)
    .bind(sealed)
    .bind(fingerprint(key))
    .bind(now_ms())
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound { kind: "provider", name: name.to_owned() });
    }
    Ok(())
}

/// Every provider by name, or the one named `only`.
async fn providers(conn: &mut SqliteConnection, only: Option<&str>) -> Result<Vec<ProviderRecord>> {
    let rows = sqlx::query(
        "SELECT name, spec, key_fingerprint, managed_by, updated_at_ms FROM providers
         WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
    )
    .bind(only)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let spec: String = row.try_get("spec")?;
            Ok(ProviderRecord {
                provider: provider_from_json(name, &spec)?,
                managed_by: ManagedBy::parse(row.try_get("managed_by")?),
                key_fingerprint: row.try_get("key_fingerprint")?,
                updated_at_ms: row.try_get("updated_at_ms")?,
            })
        })
        .collect()
}

async fn write_group(
    conn: &mut SqliteConnection,
    group: &GroupRecord,
    conflict: Conflict,
) -> Result<()> {
    let sql = conflict.sql(
        "groups",
        "INSERT INTO groups (name, description, managed_by, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        "description = ?2, managed_by = ?3, updated_at_ms = ?4",
    );
    let done = sqlx::query(&sql)
        .bind(&group.name)
        .bind(&group.description)
        .bind(group.managed_by.as_str())
        .bind(now_ms())
        .execute(conn)
        .await;
    conflict.check(done, "group", &group.name)
}

/// Every group by name, or the one named `only`.
async fn groups(conn: &mut SqliteConnection, only: Option<&str>) -> Result<Vec<GroupRecord>> {
    let rows = sqlx::query(
        "SELECT name, description, managed_by FROM groups
         WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
    )
    .bind(only)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(GroupRecord {
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                managed_by: ManagedBy::parse(row.try_get("managed_by")?),
            })
        })
        .collect()
}

async fn write_agent(
    conn: &mut SqliteConnection,
    agent: &AgentRecord,
    conflict: Conflict,
) -> Result<()> {
    let sql = conflict.sql(
        "agents",
        "INSERT INTO agents (name, description, groups, managed_by, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        "description = ?2, groups = ?3, managed_by = ?4, updated_at_ms = ?5",
    );
    let done = sqlx::query(&sql)
        .bind(&agent.name)
        .bind(&agent.description)
        .bind(to_json(&agent.groups))
        .bind(agent.managed_by.as_str())
        .bind(now_ms())
        .execute(conn)
        .await;
    conflict.check(done, "agent", &agent.name)
}

/// Every agent by name, or the one named `only`.
async fn agents(conn: &mut SqliteConnection, only: Option<&str>) -> Result<Vec<AgentRecord>> {
    let rows = sqlx::query(
        "SELECT name, description, groups, managed_by FROM agents
         WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
    )
    .bind(only)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let groups: String = row.try_get("groups")?;
            Ok(AgentRecord {
                groups: serde_json::from_str(&groups)
                    .map_err(corrupt(format!("agent '{name}'")))?,
                name,
                description: row.try_get("description")?,
                managed_by: ManagedBy::parse(row.try_get("managed_by")?),
            })
        })
        .collect()
}

/// Every policy by name, or the one named `only`.
async fn policies(conn: &mut SqliteConnection, only: Option<&str>) -> Result<Vec<PolicyRecord>> {
    let rows = sqlx::query(
        "SELECT name, spec, managed_by, updated_at_ms FROM policies
         WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
    )
    .bind(only)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let spec: String = row.try_get("spec")?;
            Ok(PolicyRecord {
                policy: policy_from_json(name, &spec)?,
                managed_by: ManagedBy::parse(row.try_get("managed_by")?),
                updated_at_ms: row.try_get("updated_at_ms")?,
            })
        })
        .collect()
}

/// Every global limit by name, or the one named `only`.
async fn global_limits(
    conn: &mut SqliteConnection,
    only: Option<&str>,
) -> Result<Vec<GlobalLimitRecord>> {
    let rows = sqlx::query(
        "SELECT name, spec, managed_by, updated_at_ms FROM global_limits
         WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
    )
    .bind(only)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let spec: String = row.try_get("spec")?;
            Ok(GlobalLimitRecord {
                limit: global_from_json(name, &spec)?,
                managed_by: ManagedBy::parse(row.try_get("managed_by")?),
                updated_at_ms: row.try_get("updated_at_ms")?,
            })
        })
        .collect()
}

async fn delete_api_managed(
    conn: &mut SqliteConnection,
    table: &str,
    kind: &'static str,
    name: &str,
) -> Result<bool> {
    let sql = format!("DELETE FROM {table} WHERE name = ?1 AND managed_by = 'api'");
    let done = sqlx::query(&sql).bind(name).execute(&mut *conn).await?;
    if done.rows_affected() > 0 {
        return Ok(true);
    }
    let sql = format!("SELECT 1 FROM {table} WHERE name = ?1");
    let exists: Option<i64> = sqlx::query_scalar(&sql).bind(name).fetch_optional(conn).await?;
    match exists {
        Some(_) => Err(Error::ManagedByConfig { kind, name: name.to_owned() }),
        None => Ok(false),
    }
}

/// What a write does when a record by that name exists.
#[derive(Debug, Clone, Copy)]
enum Conflict {
    /// Replace it, unless an API write meets a config-managed record.
    Replace,
    /// Fail with `Error::AlreadyExists`.
    Fail,
}

impl Conflict {
    /// The full statement: `insert` plus the conflict clause. `managed_by` is parameter ?3 of
    /// providers/groups/policies and ?4 of agents, so the guard reads it from `excluded`.
    fn sql(self, table: &str, insert: &str, update: &str) -> String {
        match self {
            Conflict::Fail => insert.to_owned(),
            Conflict::Replace => format!(
                "{insert} ON CONFLICT (name) DO UPDATE SET {update}
                 WHERE excluded.managed_by = 'config' OR {table}.managed_by = 'api'"
            ),
        }
    }

    fn check(
        self,
        done: std::result::Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>,
        kind: &'static str,
        name: &str,
    ) -> Result<()> {
        match done {
            Ok(done) if done.rows_affected() == 0 => {
                Err(Error::ManagedByConfig { kind, name: name.to_owned() })
            }
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(Error::AlreadyExists { kind, name: name.to_owned() })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Tables whose records can be managed by the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigTable {
    Providers,
    Groups,
    Agents,
    Policies,
    GlobalLimits,
}

impl ConfigTable {
    fn name(self) -> &'static str {
        match self {
            ConfigTable::Providers => "providers",
            ConfigTable::Groups => "groups",
            ConfigTable::Agents => "agents",
            ConfigTable::Policies => "policies",
            ConfigTable::GlobalLimits => "global_limits",
        }
    }
}
