//! The data directory: created owner-only, holding the SQLite database, the master key, the
//! overlay's WireGuard key and the admin socket. Both keys are generated on first start and
//! must stay owner-only.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use base64::Engine;
use store::MasterKey;

pub(crate) const MASTER_KEY_FILE: &str = "master.key";
pub(crate) const ADMIN_SOCKET: &str = "admin.sock";
pub(crate) const OVERLAY_KEY_FILE: &str = "wireguard.key";

pub(crate) fn ensure(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        set_mode(dir, 0o700)?;
    }
    Ok(())
}

/// Loads the master key, generating it (owner-only) if it does not exist yet.
pub(crate) fn master_key(dir: &Path) -> anyhow::Result<MasterKey> {
    let path = dir.join(MASTER_KEY_FILE);
    let engine = base64::engine::general_purpose::STANDARD;
    if path.exists() {
        check_private(&path)?;
        let text = fs::read_to_string(&path)
            .with_context(|| format!("cannot read master key {}", path.display()))?;
        let bytes = engine
            .decode(text.trim())
            .with_context(|| format!("master key {} is not base64", path.display()))?;
        return MasterKey::from_bytes(&bytes)
            .with_context(|| format!("master key {} is invalid", path.display()));
    }
    let key = MasterKey::generate().context("cannot generate a master key")?;
    let mut file = create_private(&path)?;
    writeln!(file, "{}", engine.encode(key.expose_bytes()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write master key {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a new master key; back it up: without it, stored provider keys cannot be decrypted");
    Ok(key)
}

/// Loads the overlay's WireGuard private key, generating it (owner-only) on first start. Peers
/// are configured with its public key, so it must survive restarts.
pub(crate) fn overlay_key(dir: &Path) -> anyhow::Result<overlay::PrivateKey> {
    let path = dir.join(OVERLAY_KEY_FILE);
    if path.exists() {
        check_private(&path)?;
        let text = fs::read_to_string(&path)
            .with_context(|| format!("cannot read the overlay key {}", path.display()))?;
        return text
            .parse()
            .with_context(|| format!("the overlay key {} is invalid", path.display()));
    }
    let key = overlay::PrivateKey::generate().context("cannot generate the overlay key")?;
    let mut file = create_private(&path)?;
    writeln!(file, "{}", key.to_base64())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the overlay key {}", path.display()))?;
    tracing::info!(path = %path.display(), public_key = %key.public_key(), "generated the overlay's WireGuard key");
    Ok(key)
}

pub(crate) fn socket_path(dir: &Path) -> PathBuf {
    dir.join(ADMIN_SOCKET)
}

#[cfg(unix)]
fn create_private(path: &Path) -> anyhow::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> anyhow::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

#[cfg(unix)]
pub(crate) fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions of {}", path.display()))
}

#[cfg(not(unix))]
pub(crate) fn set_mode(_path: &Path, _mode: u32) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "master key {} is readable by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests;
