//! `agentnet setup claude-code|codex`: points a client tool at the gateway by merging a few keys
//! into its config file. Unrelated keys (and, for TOML, comments and formatting) are kept, a
//! re-run changes nothing, and a file that does not parse is refused rather than overwritten.

mod claude_code;
mod codex;
mod ordered_json;

#[cfg(test)]
mod tests;

use std::{
    fmt,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};

use crate::args::SetupTool;

pub(crate) fn run(tool: SetupTool) -> anyhow::Result<()> {
    match tool {
        SetupTool::ClaudeCode { endpoint, token_command, overlay, dry_run } => {
            let endpoint = Endpoint::parse(&endpoint)?;
            let path = claude_code::settings_path()?;
            let helper = match (overlay, token_command) {
                (true, _) => claude_code::OVERLAY_KEY_HELPER.to_owned(),
                (false, Some(command)) => command,
                (false, None) => claude_code::DEFAULT_KEY_HELPER.to_owned(),
            };
            apply(&path, dry_run, |existing| claude_code::merge(existing, &endpoint, &helper))
        }
        SetupTool::Codex { endpoint, token_env, model, dry_run } => {
            let endpoint = Endpoint::parse(&endpoint)?;
            let path = codex::config_path()?;
            apply(&path, dry_run, |existing| {
                codex::merge(existing, &endpoint, token_env.as_deref(), model.as_deref())
            })
        }
    }
}

/// The gateway's AI endpoint: `http(s)://host[:port][/prefix]`, without a trailing `/` or `/v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint(String);

impl Endpoint {
    pub(crate) fn parse(value: &str) -> anyhow::Result<Self> {
        let value = value.trim();
        let rest = value
            .strip_prefix("http://")
            .or_else(|| value.strip_prefix("https://"))
            .with_context(|| format!("--endpoint '{value}' must start with http:// or https://"))?;
        if rest.is_empty() || rest.starts_with('/') || value.contains(char::is_whitespace) {
            bail!("--endpoint '{value}' has no host");
        }
        let base = value.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base).trim_end_matches('/');
        Ok(Self(base.to_owned()))
    }

    /// The base URL Anthropic clients take (they append `/v1/messages`).
    pub(crate) fn base(&self) -> &str {
        &self.0
    }

    /// The base URL OpenAI clients take (they append `/responses`, `/chat/completions`).
    pub(crate) fn v1(&self) -> String {
        format!("{}/v1", self.0)
    }
}

/// The outcome of merging: the new file text and what changed in it.
#[derive(Debug)]
pub(crate) struct Merged {
    pub(crate) text: String,
    pub(crate) changes: Vec<Change>,
    /// Things worth telling the user that are not changes.
    pub(crate) notes: Vec<String>,
}

/// One key set by the merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) key: String,
    pub(crate) old: Option<String>,
    pub(crate) new: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.old {
            Some(old) => write!(f, "{} = {} (was {old})", self.key, self.new),
            None => write!(f, "{} = {}", self.key, self.new),
        }
    }
}

/// Reads `path` (if it exists), merges, and writes the result back atomically when anything
/// changed, printing the changes.
fn apply(
    path: &Path,
    dry_run: bool,
    merge: impl FnOnce(Option<&str>) -> anyhow::Result<Merged>,
) -> anyhow::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let merged =
        merge(existing.as_deref()).with_context(|| format!("cannot update {}", path.display()))?;
    for note in &merged.notes {
        println!("note: {note}");
    }
    if merged.changes.is_empty() {
        println!("{} is already set up; nothing to change", path.display());
        return Ok(());
    }
    let verb = match (dry_run, existing.is_some()) {
        (true, _) => "would update",
        (false, true) => "updated",
        (false, false) => "created",
    };
    if !dry_run {
        write_atomically(path, &merged.text)?;
    }
    println!("{verb} {}:", path.display());
    for change in &merged.changes {
        println!("  {change}");
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file and a rename, so a crash never leaves half a
/// config. A symlinked file (dotfile managers) is written through to its target; an existing
/// file keeps its permissions, a new one is 0600 in a 0700 directory.
pub(crate) fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let target: PathBuf = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(_) => path.to_owned(),
    };
    let dir = target.parent().context("the config file has no parent directory")?;
    create_private_dir(dir)?;
    let mode = std::fs::metadata(&target).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o600);
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("config");
    let tmp = dir.join(format!(".{name}.agentnet-{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        std::fs::rename(&tmp, &target)
    };
    write()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("cannot write {}", target.display()))
}

/// The user's home directory (`$HOME`).
fn home() -> anyhow::Result<PathBuf> {
    dirs::home_dir().context("cannot find the home directory: set $HOME")
}

/// Creates `dir` (and its parents) owner-only (0700) if it does not exist yet.
pub(crate) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}
