//! Codex: `$CODEX_HOME/config.toml` (default `~/.codex/config.toml`) gets a `agentnet` model
//! provider speaking the Responses API through the gateway, selected as `model_provider`, with
//! analytics and plugins off. Edited with `toml_edit`, so comments, order and formatting of
//! everything else stay as they were.

use std::path::PathBuf;

use anyhow::{bail, Context};
use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

use super::{Change, Endpoint, Merged};

/// The name of the model provider entry this writes.
pub(crate) const PROVIDER: &str = "agentnet";

/// Codex's own retry defaults, written only where the file sets none.
const REQUEST_MAX_RETRIES: i64 = 4;
const STREAM_MAX_RETRIES: i64 = 5;

/// `$CODEX_HOME/config.toml`, else `$HOME/.codex/config.toml`.
pub(crate) fn config_path() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("CODEX_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => super::home()?.join(".codex"),
    };
    Ok(dir.join("config.toml"))
}

/// What a key should hold.
enum Want<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
}

impl Want<'_> {
    fn matches(&self, item: &Item) -> bool {
        match self {
            Want::Str(s) => item.as_str() == Some(s),
            Want::Bool(b) => item.as_bool() == Some(*b),
            Want::Int(i) => item.as_integer() == Some(*i),
        }
    }

    fn value(&self) -> Value {
        match self {
            Want::Str(s) => Value::from(*s),
            Want::Bool(b) => Value::from(*b),
            Want::Int(i) => Value::from(*i),
        }
    }
}

/// Merges the gateway settings into `existing` (the file's text, if it exists).
pub(crate) fn merge(
    existing: Option<&str>,
    endpoint: &Endpoint,
    token_env: Option<&str>,
    model: Option<&str>,
) -> anyhow::Result<Merged> {
    let mut doc: DocumentMut = existing
        .unwrap_or_default()
        .parse()
        .map_err(|err| anyhow::anyhow!("{err}"))
        .context("it is not valid TOML; fix or move it, then run this again")?;
    let mut changes = Vec::new();
    let root = doc.as_table_mut();
    set(root, "model_provider", "model_provider", Want::Str(PROVIDER), &mut changes);
    if let Some(model) = model {
        if model.trim().is_empty() {
            bail!("--model must name a model");
        }
        set(root, "model", "model", Want::Str(model), &mut changes);
    }
    {
        let providers = table(root, "model_providers", "model_providers", true)?;
        let path = format!("model_providers.{PROVIDER}");
        let provider = table(providers, PROVIDER, &path, false)?;
        let key = |k: &str| format!("{path}.{k}");
        set(provider, "name", &key("name"), Want::Str(PROVIDER), &mut changes);
        set(provider, "base_url", &key("base_url"), Want::Str(&endpoint.v1()), &mut changes);
        set(provider, "wire_api", &key("wire_api"), Want::Str("responses"), &mut changes);
        if let Some(var) = token_env {
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!("--token-env '{var}' is not an environment variable name");
            }
            set(provider, "env_key", &key("env_key"), Want::Str(var), &mut changes);
        }
        set_if_absent(
            provider,
            "request_max_retries",
            &key("request_max_retries"),
            Want::Int(REQUEST_MAX_RETRIES),
            &mut changes,
        );
        set_if_absent(
            provider,
            "stream_max_retries",
            &key("stream_max_retries"),
            Want::Int(STREAM_MAX_RETRIES),
            &mut changes,
        );
    }
    let analytics = table(root, "analytics", "analytics", false)?;
    set(analytics, "enabled", "analytics.enabled", Want::Bool(false), &mut changes);
    let features = table(root, "features", "features", false)?;
    set(features, "plugins", "features.plugins", Want::Bool(false), &mut changes);
    Ok(Merged { text: doc.to_string(), changes, notes: Vec::new() })
}

/// The table at `key` in `parent`, created if absent (`implicit`: without its own header, for
/// tables that only hold subtables).
fn table<'a>(
    parent: &'a mut dyn TableLike,
    key: &str,
    path: &str,
    implicit: bool,
) -> anyhow::Result<&'a mut dyn TableLike> {
    if parent.get(key).is_none() {
        let mut table = Table::new();
        table.set_implicit(implicit);
        parent.insert(key, Item::Table(table));
    }
    match parent.get_mut(key).and_then(Item::as_table_like_mut) {
        Some(table) => Ok(table),
        None => bail!("`{path}` is not a table; fix it, then run this again"),
    }
}

/// Sets `key` to `want` unless it already holds it; keeps the comment decor around the value.
fn set(
    table: &mut dyn TableLike,
    key: &str,
    path: &str,
    want: Want<'_>,
    changes: &mut Vec<Change>,
) {
    let mut new = want.value();
    let old = match table.get_mut(key) {
        Some(item) if want.matches(item) => return,
        Some(Item::Value(old)) => {
            let decor = old.decor().clone();
            let shown = old.clone().decorated("", "").to_string();
            *new.decor_mut() = decor;
            *old = new.clone();
            Some(shown)
        }
        Some(item) => {
            let shown = item.to_string().trim().to_owned();
            *item = Item::Value(new.clone());
            Some(shown)
        }
        None => {
            table.insert(key, Item::Value(new.clone()));
            None
        }
    };
    changes.push(Change { key: path.to_owned(), old, new: new.decorated("", "").to_string() });
}

fn set_if_absent(
    table: &mut dyn TableLike,
    key: &str,
    path: &str,
    want: Want<'_>,
    changes: &mut Vec<Change>,
) {
    if table.get(key).is_none() {
        set(table, key, path, want, changes);
    }
}
