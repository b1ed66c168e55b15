//! `agentnet peer …`: this device on the gateway's WireGuard overlay. `config` registers the
//! device's public key (its private key, made and kept by [`crate::device`], never leaves it)
//! with the `agentnet login` or `agentnet enroll` session and prints a wg-quick file; `list`
//! and `remove` show and revoke one's own devices.
//!
//! [`register`] is also what `agentnet up` brings its tunnel up with. Requests go to the
//! session's server (or `--server`) with the session's access token, refreshed when it is about
//! to expire and once more if the server refuses it.

#[cfg(test)]
mod tests;

use std::{io::Write, net::Ipv4Addr, os::unix::fs::OpenOptionsExt, path::Path};

use anyhow::{bail, Context};
use api_types::{PeerRegistration, PeerView, TunnelConfig};
use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::{
    admin::{client::segment, table::Table},
    args::{PeerArgs, PeerCommand},
    remote::{error_message, status_text, Body, Remote, Reply},
    session::{self, unix_now, Session, SessionFile},
};

/// The longest device name the server takes.
const MAX_NAME: usize = 64;

pub(crate) async fn run(args: PeerArgs) -> anyhow::Result<()> {
    let file = SessionFile::default_location()?;
    let server = args.server.as_deref();
    match args.command {
        PeerCommand::Config { name, output } => {
            let key = crate::device::load_or_create_key(&file)?;
            let (text, summary) =
                config(&file, server, &key, name.as_deref(), output.as_deref(), unix_now()?)
                    .await?;
            print!("{text}");
            eprint!("{summary}");
        }
        PeerCommand::List { json } => {
            let peers = list(&file, server, unix_now()?).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&peers)?);
            } else {
                print!("{}", peers_table(&peers));
            }
        }
        PeerCommand::Remove { id } => {
            let peer = remove(&file, server, &id, unix_now()?).await?;
            println!("removed device '{}' ({}, {})", peer.name, peer.id, peer.address);
        }
    }
    Ok(())
}

/// `agentnet peer config`: registers `key`'s public half as `name` (default: this host's name)
/// and returns the wg-quick file (empty when written to `output`) and a summary for stderr.
pub(crate) async fn config(
    file: &SessionFile,
    server: Option<&str>,
    key: &overlay::PrivateKey,
    name: Option<&str>,
    output: Option<&Path>,
    now: u64,
) -> anyhow::Result<(String, String)> {
    let (_, tunnel) = register_at(file, server, key, name, now).await?;
    let text = tunnel.wg_quick(&key.to_base64());
    let peer = &tunnel.peer;
    let mut summary = format!(
        "registered this device as '{}' ({}) at {}, until {}; the AI endpoint through the tunnel is {}\n",
        peer.name, peer.id, tunnel.address, peer.expires_at, tunnel.ai_url
    );
    match output {
        Some(path) => {
            write_private(path, &text)?;
            summary.push_str(&format!(
                "wrote {}; bring the tunnel up with `sudo wg-quick up {}`\n",
                path.display(),
                path.display()
            ));
            Ok((String::new(), summary))
        }
        None => Ok((text, summary)),
    }
}

/// Registers this device (`key`'s public half; the private key is not sent) as `name` (default:
/// this host's name) with the stored session, at the session's server. Returns the session as
/// used (refreshed if it had to be) and the tunnel's configuration, but for the private key. The
/// same key registered again keeps its peer and address.
#[allow(dead_code, reason = "what `agentnet up` registers its device with")]
pub(crate) async fn register(
    file: &SessionFile,
    key: &overlay::PrivateKey,
    name: Option<&str>,
    now: u64,
) -> anyhow::Result<(Session, TunnelConfig)> {
    register_at(file, None, key, name, now).await
}

/// [`register`], at `server` if given (another URL of the session's server).
pub(crate) async fn register_at(
    file: &SessionFile,
    server: Option<&str>,
    key: &overlay::PrivateKey,
    name: Option<&str>,
    now: u64,
) -> anyhow::Result<(Session, TunnelConfig)> {
    let name = match name {
        Some(name) => name.to_owned(),
        None => default_device_name(),
    };
    let body = PeerRegistration { name, public_key: key.public_key().to_base64() };
    let body = serde_json::to_vec(&body).context("cannot encode the registration")?;
    let (session, reply) =
        exchange(file, server, Method::POST, &me_peers(""), Some(body), now).await?;
    let tunnel: TunnelConfig = decode(&reply)?;
    check_tunnel(&tunnel)?;
    Ok((session, tunnel))
}

/// Refuses a server answer that is not what it should be before any of it reaches a WireGuard
/// configuration or a route: a wg-quick file runs `PostUp` lines as root, so a value with a line
/// break could smuggle one in, and a network of 0.0.0.0/0 would route all traffic to the server.
pub(crate) fn check_tunnel(tunnel: &TunnelConfig) -> anyhow::Result<()> {
    let bad = |what: &str, value: &str| {
        anyhow::anyhow!("the server sent an unusable {what} ({value:?}); not using it")
    };
    let texts = [
        ("address", &tunnel.address),
        ("endpoint", &tunnel.endpoint),
        ("AI URL", &tunnel.ai_url),
        ("domain", &tunnel.domain),
        ("device name", &tunnel.peer.name),
        ("owner", &tunnel.peer.owner),
        ("peer id", &tunnel.peer.id),
        ("expiry", &tunnel.peer.expires_at),
    ];
    for (what, value) in texts {
        if value.chars().any(|c| c.is_control()) {
            return Err(bad(what, value));
        }
    }
    let network: overlay::Ipv4Net =
        tunnel.allowed_ips.parse().map_err(|_| bad("network", &tunnel.allowed_ips))?;
    let in_network = |text: &str| text.parse::<Ipv4Addr>().ok().filter(|a| network.contains(*a));
    let address = tunnel.address.strip_suffix("/32").and_then(in_network);
    address.ok_or_else(|| bad("address", &tunnel.address))?;
    in_network(&tunnel.server_address)
        .ok_or_else(|| bad("server address", &tunnel.server_address))?;
    if let Some(dns) = &tunnel.dns {
        in_network(dns).ok_or_else(|| bad("DNS server", dns))?;
    }
    tunnel
        .server_public_key
        .parse::<overlay::PublicKey>()
        .map_err(|_| bad("server key", &tunnel.server_public_key))?;
    let endpoint_ok = tunnel.endpoint.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.contains(char::is_whitespace)
            && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    if !endpoint_ok {
        return Err(bad("endpoint", &tunnel.endpoint));
    }
    if !tunnel.domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
        return Err(bad("domain", &tunnel.domain));
    }
    if !(576..=9000).contains(&tunnel.mtu) {
        return Err(bad("MTU", &tunnel.mtu.to_string()));
    }
    Ok(())
}

/// One's own live devices.
pub(crate) async fn list(
    file: &SessionFile,
    server: Option<&str>,
    now: u64,
) -> anyhow::Result<Vec<PeerView>> {
    let (_, reply) = exchange(file, server, Method::GET, &me_peers(""), None, now).await?;
    decode(&reply)
}

/// Revokes one of one's own devices.
pub(crate) async fn remove(
    file: &SessionFile,
    server: Option<&str>,
    id: &str,
    now: u64,
) -> anyhow::Result<PeerView> {
    let path = me_peers(&format!("/{}", segment(id)));
    let (_, reply) = exchange(file, server, Method::DELETE, &path, None, now).await?;
    decode(&reply)
}

fn me_peers(rest: &str) -> String {
    format!("{}/me/peers{rest}", api_types::API_PREFIX)
}

/// Sends a request with the session's access token, at `server` if given, else the session's
/// server. A refused token (revoked meanwhile, or the clock is off) is refreshed once. A failed
/// answer becomes an error with the server's message.
async fn exchange(
    file: &SessionFile,
    server: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    now: u64,
) -> anyhow::Result<(Session, Reply)> {
    let mut session = session::current(file, now).await?;
    let remote = Remote::new(server.unwrap_or(&session.server))?;
    let send = |token: String| {
        let body = body.clone().map_or(Body::Empty, Body::Json);
        let method = method.clone();
        let remote = &remote;
        async move { remote.send(method, path, Some(&token), body).await }
    };
    let mut reply = send(session.access_token.clone()).await?;
    if reply.status == StatusCode::UNAUTHORIZED {
        session = session::refresh(file, &session, now).await?;
        reply = send(session.access_token.clone()).await?;
    }
    if !reply.status.is_success() {
        let message = error_message(&reply.bytes).unwrap_or_else(|| {
            String::from_utf8_lossy(&reply.bytes).trim().chars().take(300).collect()
        });
        match reply.status {
            StatusCode::UNAUTHORIZED => bail!("your session was refused: {message}"),
            StatusCode::NOT_FOUND if message.is_empty() => bail!(
                "{} was not found: --server should be the gateway's admin listener (port 4001 by default)",
                remote.url(path)?
            ),
            StatusCode::NOT_FOUND | StatusCode::CONFLICT | StatusCode::BAD_REQUEST => {
                bail!("{message}")
            }
            status => bail!("the server answered {}: {message}", status_text(status)),
        }
    }
    Ok((session, reply))
}

fn decode<T: DeserializeOwned>(reply: &Reply) -> anyhow::Result<T> {
    serde_json::from_slice(&reply.bytes)
        .context("the server's answer is not what this agentnet version expects")
}

/// This machine's host name as a device name: characters the server does not take become `-`;
/// `device` if there is none.
pub(crate) fn default_device_name() -> String {
    device_name_from(crate::login::device_label().as_deref())
}

fn device_name_from(label: Option<&str>) -> String {
    let name: String = label
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .take(MAX_NAME)
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() {
        "device".to_owned()
    } else {
        name.to_owned()
    }
}

/// Writes `text` to `path`, readable only by its owner: a 0600 temporary file next to it,
/// renamed over it.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path.file_name().context("--output needs a file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        match std::fs::remove_file(&tmp) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("cannot write {}", path.display()))
}

/// One's devices, one a line.
pub(crate) fn peers_table(peers: &[PeerView]) -> String {
    let mut t =
        Table::new(&["ID", "NAME", "ADDRESS", "STATUS", "EXPIRES", "LAST HANDSHAKE", "RX", "TX"])
            .align_right(&[6, 7]);
    for p in peers {
        t.row(vec![
            p.id.clone(),
            p.name.clone(),
            p.address.clone(),
            p.status.clone(),
            p.expires_at.clone(),
            p.last_handshake_at.clone().unwrap_or_else(|| "never".to_owned()),
            bytes(p.rx_bytes),
            bytes(p.tx_bytes),
        ]);
    }
    if t.is_empty() {
        return "no devices; register this one with `agentnet peer config`\n".to_owned();
    }
    t.render()
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
