//! `agentnet whoami` and `agentnet token`: what the stored session says, checked with the
//! server, and a valid access token from it (refreshed when it is about to expire), for tools
//! that run a token command. `token` prints nothing but the token, so it stays quiet and fast:
//! no request at all while the stored token has more than a minute left.

#[cfg(test)]
mod tests;

use anyhow::Context;
use api_types::SelfView;
use bytes::Bytes;
use hyper::StatusCode;

use crate::{
    remote::Remote,
    session::{self, unix_now, Session, SessionFile},
    usage::{check, me_path},
};

pub(crate) async fn run_whoami(json: bool) -> anyhow::Result<()> {
    let file = SessionFile::default_location()?;
    print!("{}", whoami(&file, json, unix_now()?).await?);
    Ok(())
}

pub(crate) async fn run_token() -> anyhow::Result<()> {
    let file = SessionFile::default_location()?;
    print!("{}", token(&file, unix_now()?).await?);
    Ok(())
}

/// Who the session is, as the server sees them now; `json`: the server's answer as is.
pub(crate) async fn whoami(file: &SessionFile, json: bool, now: u64) -> anyhow::Result<String> {
    let (session, bytes) = me(file, None, now).await?;
    let view: SelfView = serde_json::from_slice(&bytes)
        .context("the server's answer is not what this agentnet version expects")?;
    if json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&view)?));
    }
    let mut out = String::new();
    let mut line = |key: &str, value: &str| out.push_str(&format!("{key:<8} {value}\n"));
    line("name", &view.principal);
    line("kind", &view.kind);
    line("groups", &if view.groups.is_empty() { "-".to_owned() } else { view.groups.join(", ") });
    line("server", &session.server);
    line("session", &format!("ends {}", session.identity.session_expires_at));
    Ok(out)
}

/// A valid access token, with a newline.
pub(crate) async fn token(file: &SessionFile, now: u64) -> anyhow::Result<String> {
    let session = session::current(file, now).await?;
    Ok(format!("{}\n", session.access_token))
}

/// `GET /api/v1/me` with the session's access token, at `server` if given, else the session's
/// server. A refused token (the session was revoked, or the clock is off) is refreshed once.
pub(crate) async fn me(
    file: &SessionFile,
    server: Option<&str>,
    now: u64,
) -> anyhow::Result<(Session, Bytes)> {
    let mut session = session::current(file, now).await?;
    let remote = Remote::new(server.unwrap_or(&session.server))?;
    let path = me_path();
    let mut reply = remote.get(&path, Some(&session.access_token)).await?;
    if reply.status == StatusCode::UNAUTHORIZED {
        session = session::refresh(file, &session, now).await?;
        reply = remote.get(&path, Some(&session.access_token)).await?;
    }
    check(reply.status, &reply.bytes, &remote.url(&path)?)?;
    Ok((session, reply.bytes))
}
