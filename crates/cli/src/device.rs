//! This device's WireGuard key: `<config dir>/agentnet/wireguard.key` (beside the session), the
//! base64 private key, readable only by its owner (0600, in the 0700 agentnet directory). It is
//! made here, on first use, and never leaves the machine: the server only ever sees its public
//! key (`agentnet peer config`, `agentnet up`).
//!
//! The file is created whole or not at all (written to a temporary file, then linked into
//! place), so two commands starting at once agree on one key.

#[cfg(test)]
mod tests;

use std::{
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::Context;
use overlay::PrivateKey;

use crate::session::SessionFile;

/// The key file's name, in the session's directory.
pub(crate) const KEY_FILE: &str = "wireguard.key";

/// Where this device's key is kept: `wireguard.key` beside the session file.
pub(crate) fn key_path(session: &SessionFile) -> PathBuf {
    session.dir().join(KEY_FILE)
}

/// This device's key, beside the session file; created there first if there is none.
pub(crate) fn load_or_create_key(session: &SessionFile) -> anyhow::Result<PrivateKey> {
    load_or_create_key_at(&key_path(session))
}

/// The key stored at `path`, created there first (0600, its directory 0700) if there is none.
/// A file others may read is tightened to 0600, with a warning.
pub(crate) fn load_or_create_key_at(path: &Path) -> anyhow::Result<PrivateKey> {
    if let Some(key) = load(path)? {
        return Ok(key);
    }
    let dir = path.parent().context("the key file has no parent directory")?;
    crate::setup::create_private_dir(dir)?;
    let key = PrivateKey::generate().context("cannot generate a WireGuard key")?;
    let tmp = dir.join(format!(".wireguard.key.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        match std::fs::remove_file(&tmp) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(format!("{}\n", key.to_base64()).as_bytes())?;
        file.sync_all()?;
        // A link fails if the file exists: whoever linked first made the key.
        std::fs::hard_link(&tmp, path)
    };
    let written = write();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(key),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => load(path)?
            .with_context(|| format!("{} disappeared while it was being created", path.display())),
        Err(err) => Err(err).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// The key at `path`; `None` if there is no file.
fn load(path: &Path) -> anyhow::Result<Option<PrivateKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {} to 0600", path.display()))?;
        eprintln!(
            "warning: {} was readable by others (mode {:o}); restricted it to 0600. If someone may have copied it, delete it and run `agentnet peer config` again for a new key",
            path.display(),
            mode & 0o777
        );
    }
    let key = text.trim().parse::<PrivateKey>().map_err(|_| {
        anyhow::anyhow!(
            "{} is not a WireGuard private key; delete it and this device gets a new key (run `agentnet peer config` again)",
            path.display()
        )
    })?;
    Ok(Some(key))
}
