//! `agentnet up`, `agentnet down`, `agentnet status`: the device joins the overlay.
//!
//! `up` registers this device's WireGuard public key with the server (the private key is made
//! here and never leaves: `<config dir>/agentnet/wireguard.key`, owner-only), then runs the
//! tunnel in this process, in userspace and without privileges, forwarding a local port
//! (default `127.0.0.1:4000`) to the AI endpoint. Tools then need only a base URL: no key, no
//! token — the tunnel says who is calling. In the foreground it shows a status line; with `-d`
//! it runs in the background, and `status` / `down` find it through `up.json` beside the
//! session.

use std::{
    io::{IsTerminal, Write as _},
    net::{Ipv4Addr, SocketAddrV4},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context as _};
use api_types::TunnelConfig;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    args::UpArgs,
    session::{unix_now, SessionFile},
};

/// How long `up -d` waits for the background tunnel to come up.
const DETACH_WAIT: Duration = Duration::from_secs(20);
/// How often the running tunnel rewrites its state file.
const STATE_INTERVAL: Duration = Duration::from_secs(2);

/// What a running `agentnet up` tells `status` and `down`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct UpState {
    pub(crate) pid: u32,
    /// The process's start time (clock ticks since boot, `/proc/<pid>/stat`): with the pid, it
    /// names the process, so a recycled pid is never taken for it.
    #[serde(default)]
    pub(crate) started: Option<u64>,
    pub(crate) server: String,
    pub(crate) peer_id: String,
    pub(crate) address: String,
    /// The local forward, e.g. `127.0.0.1:4000`.
    pub(crate) local: String,
    pub(crate) expires_at: String,
    /// Seconds since the last handshake with the server; `None` before the first.
    pub(crate) since_handshake_secs: Option<u64>,
    pub(crate) rx_bytes: u64,
    pub(crate) tx_bytes: u64,
    /// Unix seconds of this snapshot.
    pub(crate) updated_at: u64,
}

/// `<config dir>/agentnet/up.json` and the background log beside it.
pub(crate) struct UpFiles {
    pub(crate) state: PathBuf,
    pub(crate) log: PathBuf,
}

impl UpFiles {
    pub(crate) fn beside(session: &SessionFile) -> Self {
        let dir = session.dir();
        Self { state: dir.join("up.json"), log: dir.join("up.log") }
    }

    fn read(&self) -> anyhow::Result<Option<UpState>> {
        match std::fs::read(&self.state) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not readable", self.state.display()))?,
            )),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", self.state.display())),
        }
    }

    fn write(&self, state: &UpState) -> anyhow::Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let tmp = self.state.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut file| file.write_all(&serde_json::to_vec_pretty(state)?))
            .and_then(|()| std::fs::rename(&tmp, &self.state))
            .with_context(|| format!("cannot write {}", self.state.display()))
    }

    /// The state of a tunnel that is still running, if any (a stale file is removed).
    pub(crate) fn running(&self) -> anyhow::Result<Option<UpState>> {
        let Some(state) = self.read()? else { return Ok(None) };
        if is_agentnet_process(state.pid)
            && state.started.is_none_or(|started| process_started(state.pid) == Some(started))
        {
            return Ok(Some(state));
        }
        let _ = std::fs::remove_file(&self.state);
        Ok(None)
    }
}

pub(crate) async fn run_up(args: UpArgs) -> anyhow::Result<()> {
    let session_file = SessionFile::default_location()?;
    let files = UpFiles::beside(&session_file);
    if let Some(running) = files.running()? {
        bail!(
            "agentnet is already up (pid {}, forwarding {}); `agentnet down` first",
            running.pid,
            running.local
        );
    }
    if args.detach {
        return detach(&args, &files);
    }
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal.cancel();
    });
    let result = up(&args, &session_file, &files, shutdown).await;
    let _ = std::fs::remove_file(&files.state);
    result
}

/// Registers the device, starts the tunnel and forwards until `shutdown`.
async fn up(
    args: &UpArgs,
    session_file: &SessionFile,
    files: &UpFiles,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let key = crate::device::load_or_create_key(session_file)?;
    let (session, tunnel) =
        crate::peers::register(session_file, &key, args.name.as_deref(), unix_now()?).await?;
    let settings = client_settings(&tunnel, key).await?;
    let ai_base = format!("http://{}", settings.ai.ip());
    let (client, forward, local) = if args.tun {
        let client = overlay::ClientTunnel::start_kernel(settings, &args.interface)
            .await
            .context("cannot start the WireGuard tunnel")?;
        (client, None, format!("{ai_base} (interface {})", args.interface))
    } else {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {} for the local forward", args.listen))?;
        let client = overlay::ClientTunnel::start(settings)
            .await
            .context("cannot start the WireGuard tunnel")?;
        let forward = tokio::spawn(client.clone().forward(listener, shutdown.clone()));
        (client, Some(forward), args.listen.to_string())
    };
    let base = if args.tun { ai_base } else { format!("http://{}", args.listen) };
    let interactive = std::io::stderr().is_terminal();
    eprintln!(
        "agentnet is up: {local} → {} as {} ({}), until {}",
        tunnel.ai_url, tunnel.peer.owner, tunnel.peer.address, tunnel.peer.expires_at
    );
    eprintln!("  ANTHROPIC_BASE_URL={base}   OPENAI_BASE_URL={base}/v1");
    let mut tick = tokio::time::interval(STATE_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => break,
        }
        let status = client.status().await;
        let state = UpState {
            pid: std::process::id(),
            started: process_started(std::process::id()),
            server: session.server.clone(),
            peer_id: tunnel.peer.id.clone(),
            address: tunnel.peer.address.clone(),
            local: local.clone(),
            expires_at: tunnel.peer.expires_at.clone(),
            since_handshake_secs: status.since_handshake.map(|d| d.as_secs()),
            rx_bytes: status.rx_bytes,
            tx_bytes: status.tx_bytes,
            updated_at: unix_now()?,
        };
        files.write(&state)?;
        if interactive {
            eprint!("\r\x1b[2K{}", status_line(&state));
            let _ = std::io::stderr().flush();
        }
    }
    if interactive {
        eprintln!();
    }
    if let Some(forward) = forward {
        let _ = forward.await;
    }
    client.stop().await;
    eprintln!("agentnet is down");
    Ok(())
}

/// The tunnel's settings from the server's answer and the device key.
async fn client_settings(
    tunnel: &TunnelConfig,
    private_key: overlay::PrivateKey,
) -> anyhow::Result<overlay::ClientSettings> {
    let bad = |what: &str, value: &str| {
        anyhow::anyhow!("the server sent an unusable {what} '{value}'; is it a newer version?")
    };
    let address: Ipv4Addr = tunnel
        .address
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| bad("address", &tunnel.address))?;
    let network: overlay::Ipv4Net =
        tunnel.allowed_ips.parse().map_err(|_| bad("network", &tunnel.allowed_ips))?;
    let server_public_key: overlay::PublicKey =
        tunnel.server_public_key.parse().map_err(|_| bad("key", &tunnel.server_public_key))?;
    let server_address: Ipv4Addr =
        tunnel.server_address.parse().map_err(|_| bad("server address", &tunnel.server_address))?;
    let endpoint = tokio::net::lookup_host(&tunnel.endpoint)
        .await
        .with_context(|| {
            format!("cannot resolve the server's WireGuard endpoint {}", tunnel.endpoint)
        })?
        .next()
        .with_context(|| format!("{} resolves to no address", tunnel.endpoint))?;
    Ok(overlay::ClientSettings {
        private_key,
        address,
        network,
        server_public_key,
        endpoint,
        ai: SocketAddrV4::new(server_address, 80),
    })
}

fn status_line(state: &UpState) -> String {
    let handshake = match state.since_handshake_secs {
        Some(secs) => format!("handshake {secs}s ago"),
        None => "no handshake yet".to_owned(),
    };
    format!(
        "up: {} → overlay {} · {handshake} · ↓{} ↑{}",
        state.local,
        state.address,
        human_bytes(state.rx_bytes),
        human_bytes(state.tx_bytes)
    )
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Starts `agentnet up` again in the background (its own session, output to `up.log`) and waits
/// until it reports that it is up.
fn detach(args: &UpArgs, files: &UpFiles) -> anyhow::Result<()> {
    use std::os::unix::{fs::OpenOptionsExt as _, process::CommandExt as _};
    let exe = std::env::current_exe().context("cannot find the agentnet executable")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&files.log)
        .with_context(|| format!("cannot open {}", files.log.display()))?;
    let mut command = std::process::Command::new(exe);
    command.arg("up").arg("--listen").arg(args.listen.to_string());
    if args.tun {
        command.arg("--tun").arg("--interface").arg(&args.interface);
    }
    if let Some(name) = &args.name {
        command.arg("--name").arg(name);
    }
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start agentnet up in the background")?;
    let started = std::time::Instant::now();
    while started.elapsed() < DETACH_WAIT {
        if let Some(status) = child.try_wait()? {
            bail!(
                "agentnet up stopped ({status}); see {}:\n{}",
                files.log.display(),
                log_tail(&files.log)
            );
        }
        if let Some(state) = files.read()? {
            if state.pid == child.id() {
                println!(
                    "agentnet is up in the background (pid {}): {} → overlay {}; `agentnet status`, `agentnet down`",
                    state.pid, state.local, state.address
                );
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "agentnet up did not come up within {} s; see {}",
        DETACH_WAIT.as_secs(),
        files.log.display()
    )
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

pub(crate) async fn run_down() -> anyhow::Result<()> {
    let files = UpFiles::beside(&SessionFile::default_location()?);
    let Some(state) = files.running()? else {
        println!("agentnet is not up");
        return Ok(());
    };
    let pid = nix::unistd::Pid::from_raw(i32::try_from(state.pid).context("bad pid")?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
        .with_context(|| format!("cannot stop agentnet up (pid {})", state.pid))?;
    for _ in 0..100 {
        if !is_agentnet_process(state.pid) {
            println!("agentnet is down");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("agentnet up (pid {}) did not stop within 10 s", state.pid)
}

pub(crate) async fn run_status(json: bool) -> anyhow::Result<()> {
    let files = UpFiles::beside(&SessionFile::default_location()?);
    match files.running()? {
        Some(state) if json => println!("{}", serde_json::to_string_pretty(&state)?),
        Some(state) => {
            println!("{}", status_line(&state));
            println!("server   {}", state.server);
            println!("peer     {} (until {})", state.peer_id, state.expires_at);
            println!("pid      {}", state.pid);
        }
        None => {
            println!("agentnet is not up");
            std::process::exit(3);
        }
    }
    Ok(())
}

/// When process `pid` started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
fn process_started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is a live agentnet process.
fn is_agentnet_process(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| {
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            String::from_utf8_lossy(argv0).contains("agentnet")
        })
        .unwrap_or(false)
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn a_state_file_of_a_dead_process_is_not_running() {
        let dir = std::env::temp_dir().join(format!("agentnet-up-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = UpFiles { state: dir.join("up.json"), log: dir.join("up.log") };
        let mut state = UpState {
            pid: u32::MAX - 1,
            started: None,
            server: "http://127.0.0.1:4001".into(),
            peer_id: "p".into(),
            address: "100.64.0.2".into(),
            local: "127.0.0.1:4000".into(),
            expires_at: "2026-12-01T00:00:00Z".into(),
            since_handshake_secs: Some(3),
            rx_bytes: 1,
            tx_bytes: 2,
            updated_at: 0,
        };
        files.write(&state).unwrap();
        assert_eq!(files.running().unwrap(), None);
        assert!(!files.state.exists(), "a stale state file is removed");
        // A state file round-trips, owner-only.
        state.pid = std::process::id();
        state.started = process_started(state.pid);
        assert!(state.started.is_some());
        files.write(&state).unwrap();
        assert_eq!(files.read().unwrap(), Some(state));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&files.state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
