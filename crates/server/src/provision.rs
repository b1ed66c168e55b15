//! Applying the config file's providers, groups, agents and policies to the store, compiling
//! the store into the data plane's snapshot, and loading the assertion-signing key.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context as _;
use proxy::{AssertionSigner, Snapshot};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use store::{AgentRecord, ConfigTable, GroupRecord, ManagedBy, Store};

use crate::config::{Config, Source};

/// Writes config-declared entities to the store (marked `config`) and removes config-managed
/// ones that are no longer declared. API-managed records are left alone.
pub(crate) async fn apply_config(
    store: &Store,
    config: &Config,
    env: &dyn Source,
) -> anyhow::Result<()> {
    let stored_keys: HashMap<String, SecretString> =
        store.provider_keys().await?.into_iter().collect();
    for p in &config.providers {
        let provider = p.to_domain().with_context(|| format!("provider '{}'", p.name))?;
        store.put_provider(&provider, ManagedBy::Config).await?;
        if let Some(key) = provider_key(p, env)? {
            // The same key again is no change (and no audit entry).
            let same = stored_keys
                .get(&p.name)
                .is_some_and(|stored| stored.expose_secret() == key.expose_secret());
            if !same {
                store.set_provider_key(&p.name, &key).await?;
            }
        }
    }
    for g in &config.groups {
        let record = GroupRecord {
            name: g.name.clone(),
            description: g.description.clone(),
            managed_by: ManagedBy::Config,
        };
        store.put_group(&record).await?;
    }
    for a in &config.agents {
        let record = AgentRecord {
            name: a.name.clone(),
            description: a.description.clone(),
            groups: a.groups.clone(),
            managed_by: ManagedBy::Config,
        };
        store.put_agent(&record).await?;
    }
    for p in &config.policies {
        store.put_policy(&p.to_domain()?, ManagedBy::Config).await?;
    }
    for l in &config.global_limits {
        store.put_global_limit(&l.to_domain()?, ManagedBy::Config).await?;
    }
    let names = |names: Vec<&String>| names.into_iter().cloned().collect::<Vec<_>>();
    let declared = [
        (ConfigTable::Providers, names(config.providers.iter().map(|p| &p.name).collect())),
        (ConfigTable::Groups, names(config.groups.iter().map(|g| &g.name).collect())),
        (ConfigTable::Agents, names(config.agents.iter().map(|a| &a.name).collect())),
        (ConfigTable::Policies, names(config.policies.iter().map(|p| &p.name).collect())),
        (ConfigTable::GlobalLimits, names(config.global_limits.iter().map(|l| &l.name).collect())),
    ];
    for (table, keep) in declared {
        store.prune_config_managed(table, &keep).await?;
    }
    Ok(())
}

/// The key named by `api_key_env` or `api_key_file`, if either is set. A named source that is
/// missing or empty is an error (the key itself never appears in the message).
fn provider_key(
    p: &crate::config::ProviderConfig,
    env: &dyn Source,
) -> anyhow::Result<Option<SecretString>> {
    let key = if let Some(var) = &p.api_key_env {
        let value = env.var(var).with_context(|| {
            format!("provider '{}': environment variable {var} (api_key_env) is not set", p.name)
        })?;
        value
    } else if let Some(path) = &p.api_key_file {
        std::fs::read_to_string(path).with_context(|| {
            format!("provider '{}': cannot read api_key_file {}", p.name, path.display())
        })?
    } else {
        return Ok(None);
    };
    let key = key.trim().to_owned();
    if key.is_empty() {
        anyhow::bail!("provider '{}': the configured API key is empty", p.name);
    }
    Ok(Some(SecretString::from(key)))
}

/// Compiles the store's dynamic configuration into a data-plane snapshot.
pub(crate) async fn build_snapshot(store: &Store) -> anyhow::Result<Snapshot> {
    let mut keys: HashMap<String, SecretString> =
        store.provider_keys().await?.into_iter().collect();
    let providers = store
        .providers()
        .await?
        .into_iter()
        .map(|r| {
            let key = keys.remove(&r.provider.name);
            (r.provider, key)
        })
        .collect();
    let policies = store.policies().await?.into_iter().map(|r| r.policy).collect();
    let agents = store.agents().await?.into_iter().map(|a| (a.name, a.groups)).collect();
    let globals = store.global_limits().await?.into_iter().map(|r| r.limit).collect();
    Ok(Snapshot::new(providers, policies, globals, agents))
}

/// The SCIM directory for the data plane (disabled when no SCIM token exists).
/// The data plane's directory: SCIM-provisioned people when SCIM is on, and local accounts when
/// they are the IdP (`local_accounts`), so that their groups and deactivation apply at once.
pub(crate) async fn directory(
    store: &Store,
    local_accounts: bool,
) -> anyhow::Result<proxy::Directory> {
    let scim = store.scim_enabled().await?;
    let mut users: Vec<proxy::DirectoryUser> = Vec::new();
    if scim {
        users.extend(store.directory().await?.into_iter().map(|u| proxy::DirectoryUser {
            user_name: u.user_name,
            emails: u.emails,
            active: u.active,
            groups: u.groups,
        }));
    }
    if local_accounts {
        users.extend(store.local_users().await?.into_iter().map(|u| proxy::DirectoryUser {
            user_name: u.username,
            emails: vec![u.email],
            active: u.active,
            groups: u.groups,
        }));
    }
    Ok(proxy::Directory::new(scim || local_accounts, users))
}

/// The usage records that budget counters are rebuilt from: those of the longest window.
pub(crate) async fn history(
    store: &Store,
    snapshot: &Snapshot,
) -> anyhow::Result<Vec<store::UsageRecord>> {
    let window = snapshot.longest_window_secs();
    if window == 0 {
        return Ok(Vec::new());
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let since =
        now_ms.saturating_sub(i64::try_from(window.saturating_mul(1000)).unwrap_or(i64::MAX));
    Ok(store.settled_since(since).await?)
}

/// Loads the assertion-signing key, creating one on first start.
pub(crate) async fn signer(
    store: &Store,
    issuer: &str,
    ttl: Duration,
) -> anyhow::Result<Arc<AssertionSigner>> {
    let key = match store.signing_key().await? {
        Some(key) => key,
        None => {
            let pkcs8 = AssertionSigner::generate_pkcs8()?;
            let probe = AssertionSigner::from_pkcs8(String::new(), &pkcs8, issuer.to_owned(), ttl)?;
            let kid = kid_for(probe.public_key());
            let key = store::SigningKey {
                kid,
                alg: "EdDSA".to_owned(),
                public_key: probe.public_key().to_vec(),
                pkcs8: SecretBox::new(Box::new(pkcs8)),
                created_at_ms: 0,
            };
            store.put_signing_key(&key).await?;
            key
        }
    };
    let signer =
        AssertionSigner::from_pkcs8(key.kid, key.pkcs8.expose_secret(), issuer.to_owned(), ttl)?;
    Ok(Arc::new(signer))
}

/// A key id derived from the public key (RFC 7638-style thumbprint, shortened).
fn kid_for(public_key: &[u8]) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12])
}
