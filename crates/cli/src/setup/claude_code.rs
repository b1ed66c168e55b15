//! Claude Code: `~/.claude/settings.json` gets `apiKeyHelper` and, in `env`,
//! `ANTHROPIC_BASE_URL` and `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`. Everything else in the
//! file is kept, in its order.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::{
    ordered_json::{Json, Object},
    Change, Endpoint, Merged,
};

/// The default key helper: the access token of the `agentnet login` session, refreshed when it
/// is about to expire. Claude Code sends it as its API key; the gateway identifies the caller by
/// it (and strips it before the request goes upstream).
pub(crate) const DEFAULT_KEY_HELPER: &str = "agentnet token";

/// The key helper through the overlay (`agentnet up`): a fixed placeholder, not a secret.
/// Claude Code will not start without some credential; the tunnel identifies the caller, and the
/// gateway strips whatever the client sends before the request goes upstream.
pub(crate) const OVERLAY_KEY_HELPER: &str = "echo agentnet-overlay";

/// `$CLAUDE_CONFIG_DIR/settings.json` (Claude Code's own override), else
/// `$HOME/.claude/settings.json`.
pub(crate) fn settings_path() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => super::home()?.join(".claude"),
    };
    Ok(dir.join("settings.json"))
}

/// Merges the gateway settings into `existing` (the file's text, if it exists).
pub(crate) fn merge(
    existing: Option<&str>,
    endpoint: &Endpoint,
    key_helper: &str,
) -> anyhow::Result<Merged> {
    let mut root = match existing {
        None => Object::default(),
        Some(text) if text.trim().is_empty() => Object::default(),
        Some(text) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(object)) => object,
            Ok(_) => bail!("it does not hold a JSON object; fix or move it, then run this again"),
            Err(err) => bail!("it is not valid JSON ({err}); fix or move it, then run this again"),
        },
    };
    let mut changes = Vec::new();
    set_string(&mut root, "apiKeyHelper", key_helper, "apiKeyHelper", &mut changes);
    let env = match root.get_mut("env") {
        Some(Json::Object(env)) => env,
        Some(_) => bail!("its `env` is not a JSON object; fix it, then run this again"),
        None => {
            root.set("env", Json::Object(Object::default()));
            match root.get_mut("env") {
                Some(Json::Object(env)) => env,
                _ => bail!("cannot add `env`"),
            }
        }
    };
    set_string(env, "ANTHROPIC_BASE_URL", endpoint.base(), "env.ANTHROPIC_BASE_URL", &mut changes);
    set_string(
        env,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        "1",
        "env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        &mut changes,
    );
    let notes = ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"]
        .into_iter()
        .filter(|k| env.get(k).is_some())
        .map(|k| {
            format!(
                "env.{k} is also set; Claude Code prefers it to apiKeyHelper (the gateway strips \
                 it, but consider removing it from settings.json)"
            )
        })
        .collect();
    let mut text =
        serde_json::to_string_pretty(&Json::Object(root)).context("cannot render the settings")?;
    text.push('\n');
    Ok(Merged { text, changes, notes })
}

fn set_string(object: &mut Object, key: &str, value: &str, path: &str, changes: &mut Vec<Change>) {
    let old = object.get(key).cloned();
    if let Some(Json::String(current)) = &old {
        if current == value {
            return;
        }
    }
    object.set(key, Json::String(value.to_owned()));
    changes.push(Change {
        key: path.to_owned(),
        old: old.map(|v| serde_json::to_string(&v).unwrap_or_default()),
        new: serde_json::to_string(value).unwrap_or_default(),
    });
}
