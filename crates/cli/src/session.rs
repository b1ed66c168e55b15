//! The stored session of `agentnet login` and `agentnet enroll`: `<config dir>/agentnet/session.json`
//! (`$XDG_CONFIG_HOME`, else `~/.config` on Linux), written atomically, readable only by its
//! owner. It holds the server's URL, the access token with its expiry, the refresh token and who
//! the session belongs to.
//!
//! [`current`] hands out an access token valid for at least [`REFRESH_MARGIN`] more seconds,
//! refreshing it first when needed. A refresh rotates the refresh token, so two processes must
//! not refresh at once (the loser's token would be spent): a lock file next to the session
//! serializes them, and whoever waited uses what the winner stored.

#[cfg(test)]
mod tests;

use std::{
    fmt,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context};
use api_types::{SessionIdentity, TokenResponse};
use serde::{Deserialize, Serialize};

use crate::{
    auth::{self, Grant},
    remote::Remote,
};

/// An access token expiring sooner than this many seconds is refreshed before use.
pub(crate) const REFRESH_MARGIN: u64 = 60;

/// A lock file older than this is left over from a process that died while refreshing.
const STALE_LOCK: Duration = Duration::from_secs(45);

/// What `session.json` holds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The server's admin listener, where the session was opened.
    pub(crate) server: String,
    pub(crate) access_token: String,
    /// Unix seconds.
    pub(crate) access_expires_at: u64,
    pub(crate) refresh_token: String,
    pub(crate) identity: SessionIdentity,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.server)
            .field("access_expires_at", &self.access_expires_at)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The session the server's tokens open at `server`, at unix time `now`.
    pub(crate) fn new(server: &str, tokens: TokenResponse, now: u64) -> Self {
        Self {
            server: server.to_owned(),
            access_expires_at: now.saturating_add(tokens.expires_in),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            identity: tokens.identity,
        }
    }

    /// Whether the access token is expired, or expires within [`REFRESH_MARGIN`].
    pub(crate) fn needs_refresh(&self, now: u64) -> bool {
        self.access_expires_at <= now.saturating_add(REFRESH_MARGIN)
    }

    /// The command that opens a new session like this one.
    pub(crate) fn sign_in_again(&self) -> String {
        if self.identity.kind == "agent" {
            format!("agentnet enroll --server {} with a new setup key", self.server)
        } else {
            format!("agentnet login --server {}", self.server)
        }
    }
}

/// Where the session is stored.
#[derive(Debug, Clone)]
pub(crate) struct SessionFile {
    path: PathBuf,
}

impl SessionFile {
    /// `<config dir>/agentnet/session.json`.
    pub(crate) fn default_location() -> anyhow::Result<Self> {
        let dir = dirs::config_dir()
            .context("cannot find your config directory: set $HOME or $XDG_CONFIG_HOME")?;
        Ok(Self::at(dir.join("agentnet").join("session.json")))
    }

    pub(crate) fn at(path: PathBuf) -> Self {
        Self { path }
    }

    /// The directory the session is kept in (`<config dir>/agentnet`), where the device's
    /// WireGuard key and `agentnet up`'s state live too.
    pub(crate) fn dir(&self) -> PathBuf {
        self.path.parent().map(std::path::Path::to_path_buf).unwrap_or_default()
    }

    /// The stored session, if any. A file others may read is tightened to 0600, with a warning.
    pub(crate) fn load(&self) -> anyhow::Result<Option<Session>> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", self.path.display()))
            }
        };
        let mode = std::fs::metadata(&self.path)
            .with_context(|| format!("cannot read {}", self.path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {} to 0600", self.path.display()))?;
            eprintln!(
                "warning: {} was readable by others (mode {:o}); restricted it to 0600. If someone may have copied it, run `agentnet logout` and sign in again",
                self.path.display(),
                mode & 0o777
            );
        }
        let session = serde_json::from_slice(&text).with_context(|| {
            format!(
                "{} is not a session this agentnet version understands; delete it and sign in again",
                self.path.display()
            )
        })?;
        Ok(Some(session))
    }

    /// Stores `session`: a 0600 temporary file in the same directory (created 0700), renamed
    /// over the old one, so a reader never sees half a file.
    pub(crate) fn save(&self, session: &Session) -> anyhow::Result<()> {
        let dir = self.path.parent().context("the session file has no parent directory")?;
        crate::setup::create_private_dir(dir)?;
        let mut text = serde_json::to_vec_pretty(session).context("cannot encode the session")?;
        text.push(b'\n');
        let tmp = dir.join(format!(".session.json.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            match std::fs::remove_file(&tmp) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write()
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Deletes the stored session; `false` when there was none.
    pub(crate) fn delete(&self) -> anyhow::Result<bool> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err).with_context(|| format!("cannot delete {}", self.path.display())),
        }
    }

    /// Waits for the refresh lock (`session.json.lock`), taking over one left by a dead process.
    async fn lock(&self) -> anyhow::Result<Lock> {
        let path = self.path.with_extension("json.lock");
        if let Some(dir) = path.parent() {
            crate::setup::create_private_dir(dir)?;
        }
        let started = std::time::Instant::now();
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
                Ok(_) => return Ok(Lock { path }),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("cannot create {}", path.display()))
                }
            }
            let age = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok());
            if age.is_some_and(|age| age > STALE_LOCK) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if started.elapsed() > STALE_LOCK {
                bail!(
                    "another agentnet has been refreshing the session for too long; if none is running, delete {}",
                    path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Held while refreshing; removes the lock file when dropped.
struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Now, in unix seconds.
pub(crate) fn unix_now() -> anyhow::Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs())
}

fn not_signed_in() -> anyhow::Error {
    anyhow::anyhow!("not signed in; run `agentnet login --server URL`")
}

/// The stored session, with an access token valid for at least [`REFRESH_MARGIN`] seconds after
/// `now`: refreshed (and stored) first if needed.
pub(crate) async fn current(file: &SessionFile, now: u64) -> anyhow::Result<Session> {
    let session = file.load()?.ok_or_else(not_signed_in)?;
    if !session.needs_refresh(now) {
        return Ok(session);
    }
    refresh(file, &session, now).await
}

/// Refreshes `stale` (whose access token is expiring, or was refused) and stores the rotated
/// tokens. A session the server ended is deleted, with an error saying how to sign in again.
pub(crate) async fn refresh(
    file: &SessionFile,
    stale: &Session,
    now: u64,
) -> anyhow::Result<Session> {
    let _lock = file.lock().await?;
    let session = file.load()?.ok_or_else(not_signed_in)?;
    if session.refresh_token != stale.refresh_token {
        // Another process refreshed while this one waited for the lock.
        if !session.needs_refresh(now) {
            return Ok(session);
        }
    }
    let remote = Remote::new(&session.server)?;
    let answer = auth::token(&remote, Grant::RefreshToken(&session.refresh_token))
        .await
        .context("cannot refresh your session")?;
    match answer {
        Ok(tokens) => {
            let fresh = Session::new(&session.server, tokens, now);
            file.save(&fresh)?;
            Ok(fresh)
        }
        Err(err) if err.error == "invalid_grant" => {
            file.delete()?;
            bail!(
                "your session has ended: {}; sign in again with `{}`",
                auth::describe(&err),
                session.sign_in_again()
            )
        }
        Err(err) => bail!("cannot refresh your session: {}", auth::describe(&err)),
    }
}
