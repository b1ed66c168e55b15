//! Static bootstrap configuration: a TOML file, each key overridable by an environment variable
//! `AGENTNET__SECTION__KEY`, with working defaults when there is no file at all.
//!
//! Precedence: defaults < file < environment < command-line flags. Unknown keys are errors that
//! name the key, whether they come from the file or the environment. Parsing binds no ports and
//! touches no files besides reading the config file itself.

mod duration;
mod entities;
mod sections;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use serde::Deserialize;

pub use duration::parse_duration;
pub use entities::{
    AgentConfig, GlobalLimitConfig, GroupConfig, LimitConfig, PolicyConfig, PriceConfig,
    ProviderConfig,
};
pub use sections::{
    Admin, Limits, Listen, Log, LogFormat, Login, Oidc, Overlay, OverlayMode, Stamping,
    DEFAULT_AI_LISTENER,
};

/// Where configuration values come from besides the file: the process environment in
/// production, a map in tests (tests never mutate the real environment).
pub trait Source {
    /// Every `(name, value)` pair whose name starts with `prefix`.
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)>;
    /// One variable (used for `api_key_env`).
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        std::env::vars().filter(|(k, _)| k.starts_with(prefix)).collect()
    }

    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for std::collections::HashMap<String, String> {
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let mut vars: Vec<_> = self
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.sort();
        vars
    }

    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

pub const ENV_PREFIX: &str = "AGENTNET__";

/// Where clients reach the admin listener when neither `[login] public_url` nor an admin TCP
/// listener says otherwise.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:4001";

/// The whole static configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Config format version; only 1 exists.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Where the database, master key and admin socket live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// SQLite database file; relative paths are inside `data_dir`. `:memory:` for tests.
    #[serde(default = "default_database")]
    pub database: String,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub oidc: Oidc,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub login: Login,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub stamping: Stamping,
    #[serde(default)]
    pub overlay: Overlay,
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    /// Budget and rate limits checked before policies, for everyone they target.
    #[serde(default)]
    pub global_limits: Vec<GlobalLimitConfig>,
}

fn default_version() -> u32 {
    1
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./agentnet-data")
}

fn default_database() -> String {
    "agentnet.db".to_owned()
}

impl Config {
    /// Reads `path` (if given), applies environment overrides from `env`, and validates.
    pub fn load(path: Option<&Path>, env: &dyn Source) -> anyhow::Result<Self> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("config file {} is not valid TOML", path.display()))?
            }
            None => toml::Table::new(),
        };
        let origin = path.map(|p| p.display().to_string()).unwrap_or_else(|| "defaults".into());
        let overridden = apply_env(&mut table, env)?;
        let config = Config::deserialize(toml::Value::Table(table)).map_err(|e| {
            let hint = if overridden.is_empty() {
                String::new()
            } else {
                format!(" (environment overrides applied: {})", overridden.join(", "))
            };
            anyhow::anyhow!("invalid configuration in {origin}{hint}: {}", e.message().trim())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: versions, names, references.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.version != 1 {
            bail!("unsupported config version {}; this agentnet reads version 1", self.version);
        }
        self.limits.validate()?;
        self.login.validate()?;
        self.overlay.validate()?;
        if self.oidc.client_id.is_some() && self.oidc.issuer.is_none() {
            bail!("oidc.client_id is set but oidc.issuer is not: brokered sign-in needs the identity provider's issuer");
        }
        entities::validate(self)?;
        Ok(())
    }

    /// The plain-TCP AI listener: `[listen] ai` when set; else 127.0.0.1:4000 without the
    /// overlay and none with it (the overlay is then the only way in).
    pub fn ai_listener(&self) -> Option<SocketAddr> {
        self.listen.ai.or((!self.overlay.enabled).then_some(DEFAULT_AI_LISTENER))
    }

    /// The SQLite file path, or `None` for an in-memory database.
    pub fn database_path(&self) -> Option<PathBuf> {
        (self.database != ":memory:").then(|| self.data_dir.join(&self.database))
    }
}

/// Applies `AGENTNET__SECTION__KEY=value` overrides to the parsed file. A value is read as a
/// TOML value when it parses as one (numbers, booleans, arrays, inline tables), else as a string.
/// Returns the variable names that were applied.
fn apply_env(table: &mut toml::Table, env: &dyn Source) -> anyhow::Result<Vec<String>> {
    let mut applied = Vec::new();
    for (name, raw) in env.vars_with_prefix(ENV_PREFIX) {
        let path: Vec<String> =
            name[ENV_PREFIX.len()..].split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.iter().any(String::is_empty) {
            bail!("environment variable {name} has an empty key segment");
        }
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let (last, parents) = path.split_last().context("empty override")?;
        let mut cursor = &mut *table;
        for segment in parents {
            let entry = cursor
                .entry(segment.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = match entry {
                toml::Value::Table(t) => t,
                _ => bail!("environment variable {name}: '{segment}' is not a section"),
            };
        }
        cursor.insert(last.clone(), value);
        applied.push(name);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests;
