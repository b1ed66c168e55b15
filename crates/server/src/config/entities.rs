//! Providers, groups, agents and policies declared in the config file. They are applied to the
//! store at start, marked as managed by config (the admin API refuses to change them).

use std::{collections::HashSet, path::PathBuf};

use anyhow::{bail, Context as _};
use serde::Deserialize;

use super::Config;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    /// `anthropic`, `openai`, `azure-openai` or `openai-compatible`.
    pub kind: String,
    /// Defaults to the vendor's API for `anthropic` and `openai`; required otherwise.
    pub base_url: Option<String>,
    /// Read the upstream key from this environment variable at start.
    pub api_key_env: Option<String>,
    /// Or from this file (trailing newline trimmed).
    pub api_key_file: Option<PathBuf>,
    /// Model names or `*` patterns this provider serves; empty = any (catch-all).
    #[serde(default)]
    pub models: Vec<String>,
    /// APIs it answers (`anthropic`, `openai`); defaults by kind.
    #[serde(default)]
    pub apis: Vec<String>,
    #[serde(default)]
    pub prices: Vec<PriceConfig>,
    /// Stamp the caller's identity onto upstream requests.
    #[serde(default = "yes")]
    pub stamping: bool,
    /// Gateway attribution preset: none, litellm, portkey, cloudflare-ai-gateway, bifrost,
    /// openrouter.
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Sign an assertion (`X-Agentnet-Assertion`) onto each request; `false` for an upstream
    /// that never verifies it (the plain and preset headers still go).
    #[serde(default = "yes")]
    pub assertion: bool,
    pub azure_api_version: Option<String>,
}

/// A price override in USD per million tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub model: String,
    pub input: f64,
    pub output: f64,
    /// Defaults to the input price.
    pub cache_write: Option<f64>,
    /// Defaults to the input price.
    pub cache_read: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An allow rule: these sources may use these providers (and, if listed, only these models).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub agents: Vec<String>,
    /// Every authenticated caller.
    #[serde(default)]
    pub everyone: bool,
    pub providers: Vec<String>,
    #[serde(default)]
    pub models: Vec<String>,
    /// The largest `max_tokens` a request may ask for under this policy.
    pub max_tokens: Option<u64>,
    /// Spend, token and rate caps, e.g. `{ spend_usd = 500, per = "user", window = "30d" }`.
    #[serde(default)]
    pub limits: Vec<LimitConfig>,
}

/// One cap over a rolling window: exactly one of `spend_usd`, `tokens`, `requests`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    pub spend_usd: Option<f64>,
    pub tokens: Option<u64>,
    pub requests: Option<u64>,
    /// `user` (each principal separately) or `group` (the members together).
    #[serde(default = "default_per")]
    pub per: String,
    /// Rolling window, at least one minute: `1m`, `1h`, `24h`, `7d`, `30d`.
    pub window: String,
}

/// A limit checked before any policy, for everyone it targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalLimitConfig {
    pub name: String,
    #[serde(default)]
    pub everyone: bool,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub agents: Vec<String>,
    pub spend_usd: Option<f64>,
    pub tokens: Option<u64>,
    pub requests: Option<u64>,
    #[serde(default = "default_per")]
    pub per: String,
    pub window: String,
}

fn default_per() -> String {
    "user".to_owned()
}

impl LimitConfig {
    pub fn to_domain(&self) -> anyhow::Result<domain::Limit> {
        limit_to_domain(self.spend_usd, self.tokens, self.requests, &self.per, &self.window)
    }
}

impl GlobalLimitConfig {
    pub fn to_domain(&self) -> anyhow::Result<domain::GlobalLimit> {
        let limit =
            limit_to_domain(self.spend_usd, self.tokens, self.requests, &self.per, &self.window)
                .with_context(|| format!("global limit '{}'", self.name))?;
        let targets = sources(&self.groups, &self.users, &self.agents, self.everyone);
        if targets.is_empty() {
            bail!(
                "global limit '{}' targets nobody: add groups, users, agents or everyone = true",
                self.name
            );
        }
        Ok(domain::GlobalLimit { name: self.name.clone(), targets, limit })
    }
}

fn limit_to_domain(
    spend_usd: Option<f64>,
    tokens: Option<u64>,
    requests: Option<u64>,
    per: &str,
    window: &str,
) -> anyhow::Result<domain::Limit> {
    let (metric, cap) = match (spend_usd, tokens, requests) {
        (Some(usd), None, None) => {
            if !usd.is_finite() || !(0.0..=1e9).contains(&usd) {
                bail!("spend_usd must be between 0 and 1000000000");
            }
            (domain::Metric::Spend, (usd * 1_000_000.0).round() as u64)
        }
        (None, Some(n), None) => (domain::Metric::Tokens, n),
        (None, None, Some(n)) => (domain::Metric::Requests, n),
        _ => bail!("a limit sets exactly one of spend_usd, tokens or requests"),
    };
    let per = match per {
        "user" => domain::Per::User,
        "group" => domain::Per::Group,
        other => bail!("per = '{other}' is not one of user, group"),
    };
    let window = super::parse_duration(window).map_err(|e| anyhow::anyhow!("window {e}"))?;
    if window.as_secs() < domain::limits::MIN_WINDOW_SECS {
        bail!("window {window:?} is shorter than one minute");
    }
    Ok(domain::Limit { metric, per, cap, window_secs: window.as_secs() })
}

fn sources(
    groups: &[String],
    users: &[String],
    agents: &[String],
    everyone: bool,
) -> Vec<domain::Source> {
    let mut sources: Vec<domain::Source> = Vec::new();
    sources.extend(groups.iter().cloned().map(domain::Source::Group));
    sources.extend(users.iter().cloned().map(domain::Source::User));
    sources.extend(agents.iter().cloned().map(domain::Source::Agent));
    if everyone {
        sources.push(domain::Source::Everyone);
    }
    sources
}

fn yes() -> bool {
    true
}

fn default_preset() -> String {
    "none".to_owned()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    for name in names {
        if !valid_name(name) {
            bail!("{what} name '{name}' is invalid: use 1-64 of A-Z a-z 0-9 . _ -");
        }
        if !seen.insert(name) {
            bail!("{what} '{name}' is declared twice");
        }
    }
    Ok(())
}

pub(super) fn validate(config: &Config) -> anyhow::Result<()> {
    unique("provider", config.providers.iter().map(|p| p.name.as_str()))?;
    unique("group", config.groups.iter().map(|g| g.name.as_str()))?;
    unique("agent", config.agents.iter().map(|a| a.name.as_str()))?;
    unique("policy", config.policies.iter().map(|p| p.name.as_str()))?;
    for p in &config.providers {
        p.to_domain().with_context(|| format!("provider '{}'", p.name))?;
        if p.api_key_env.is_some() && p.api_key_file.is_some() {
            bail!("provider '{}': set api_key_env or api_key_file, not both", p.name);
        }
    }
    unique("global limit", config.global_limits.iter().map(|l| l.name.as_str()))?;
    for limit in &config.global_limits {
        limit.to_domain()?;
    }
    for policy in &config.policies {
        policy.to_domain()?;
        if policy.groups.is_empty()
            && policy.users.is_empty()
            && policy.agents.is_empty()
            && !policy.everyone
        {
            bail!(
                "policy '{}' names no sources: add groups, users, agents or everyone = true",
                policy.name
            );
        }
        if policy.providers.is_empty() {
            bail!("policy '{}' opens no providers", policy.name);
        }
    }
    Ok(())
}

impl ProviderConfig {
    /// The domain provider this entry declares.
    pub fn to_domain(&self) -> anyhow::Result<domain::Provider> {
        let kind = domain::ProviderKind::parse(&self.kind).with_context(|| {
            format!(
                "unknown kind '{}' (use anthropic, openai, azure-openai or openai-compatible)",
                self.kind
            )
        })?;
        let base_url = match (&self.base_url, kind) {
            (Some(url), _) => url.clone(),
            (None, domain::ProviderKind::Anthropic) => "https://api.anthropic.com".to_owned(),
            (None, domain::ProviderKind::OpenAi) => "https://api.openai.com".to_owned(),
            (None, _) => bail!("base_url is required for kind '{}'", self.kind),
        };
        let uri: http::Uri =
            base_url.parse().with_context(|| format!("base_url '{base_url}' is not a URL"))?;
        if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.host().is_none() {
            bail!("base_url '{base_url}' must be an http:// or https:// URL with a host");
        }
        let apis = if self.apis.is_empty() {
            kind.default_apis()
        } else {
            self.apis
                .iter()
                .map(|a| {
                    domain::Api::parse(a)
                        .with_context(|| format!("unknown api '{a}' (use anthropic or openai)"))
                })
                .collect::<anyhow::Result<_>>()?
        };
        let preset = domain::GatewayPreset::parse(&self.preset).with_context(|| {
            format!(
                "unknown preset '{}' (use none, litellm, portkey, cloudflare-ai-gateway, bifrost or openrouter)",
                self.preset
            )
        })?;
        let price_overrides = self
            .prices
            .iter()
            .map(|p| Ok((domain::ModelPattern::new(p.model.clone()), p.to_domain()?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(domain::Provider {
            name: self.name.clone(),
            kind,
            base_url,
            apis,
            models: self.models.iter().cloned().map(domain::ModelPattern::new).collect(),
            price_overrides,
            stamping: domain::Stamping {
                enabled: self.stamping,
                preset,
                assertion: self.assertion,
            },
            azure_api_version: self.azure_api_version.clone(),
        })
    }
}

impl PriceConfig {
    fn to_domain(&self) -> anyhow::Result<domain::Price> {
        let micro = |usd: f64, field: &str| -> anyhow::Result<u64> {
            if !usd.is_finite() || !(0.0..=1_000_000.0).contains(&usd) {
                bail!(
                    "price {field} for '{}' must be between 0 and 1000000 USD per million tokens",
                    self.model
                );
            }
            Ok((usd * 1_000_000.0).round() as u64)
        };
        Ok(domain::Price {
            input: micro(self.input, "input")?,
            output: micro(self.output, "output")?,
            cache_write: micro(self.cache_write.unwrap_or(self.input), "cache_write")?,
            cache_read: micro(self.cache_read.unwrap_or(self.input), "cache_read")?,
        })
    }
}

impl PolicyConfig {
    pub fn to_domain(&self) -> anyhow::Result<domain::Policy> {
        let limits = self
            .limits
            .iter()
            .map(LimitConfig::to_domain)
            .collect::<anyhow::Result<_>>()
            .with_context(|| format!("policy '{}'", self.name))?;
        Ok(domain::Policy {
            name: self.name.clone(),
            sources: sources(&self.groups, &self.users, &self.agents, self.everyone),
            providers: self.providers.clone(),
            models: self.models.iter().cloned().map(domain::ModelPattern::new).collect(),
            max_tokens: self.max_tokens,
            limits,
        })
    }
}
