//! The systems under test, each started from scratch for a run and reached at one address:
//! the upstream itself (`direct`), agentnet with policies, limits, metering and logging on, nginx
//! as a plain reverse proxy, and the LiteLLM proxy. Adding one (the overlay path, say) is one more
//! function here that returns a [`Target`].

use std::{
    fmt::Write as _,
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{client::conn::http1, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::procs::{free_port, wait_for_port, Proc};

/// The path every target serves.
pub const CHAT_PATH: &str = "/v1/chat/completions";

/// Where to send requests, and what to measure.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    pub path: String,
    /// Extra request headers (a bearer token for agentnet).
    pub headers: Vec<(String, String)>,
    /// The proxy's root process (its workers are found under it); `None` for `direct`.
    pub pid: Option<u32>,
}

/// Starts the benchmark upstream.
pub fn start_upstream(
    bin: &Path,
    dir: &Path,
    events: u32,
    interval_ms: u64,
) -> anyhow::Result<(Proc, SocketAddr)> {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--events",
        &events.to_string(),
        "--event-interval-ms",
        &interval_ms.to_string(),
    ]);
    let mut proc = Proc::spawn("upstream", cmd, dir)?;
    let addr = proc.wait_for(Duration::from_secs(10), |output| {
        output.lines().find_map(|line| {
            line.strip_prefix("listening on http://")?.trim().parse::<SocketAddr>().ok()
        })
    })?;
    Ok((proc, addr))
}

impl Target {
    /// A target serving [`CHAT_PATH`] at `addr`.
    fn new(name: &str, addr: SocketAddr, bearer: Option<&str>, pid: Option<u32>) -> Self {
        let headers = bearer.map(|token| vec![("authorization".into(), format!("Bearer {token}"))]);
        Self {
            name: name.into(),
            addr,
            path: CHAT_PATH.into(),
            headers: headers.unwrap_or_default(),
            pid,
        }
    }
}

pub fn direct(upstream: SocketAddr) -> Target {
    Target::new("direct", upstream, None, None)
}

/// agentnet with everything on: a policy with a model allowlist, per-user and per-group spend
/// limits and a request rate cap (all far above what the run uses, so that every request goes
/// through admission and settlement), metering into the usage log, identity stamping, logging at
/// `info`. The caller is an enrolled agent with an agentnet session token. A second provider for
/// the same upstream differs only in sending no signed assertion: [`unsigned`] reaches it, to show
/// what the per-request signature costs, side by side. With `overlay`, the
/// server also runs its WireGuard endpoint (userspace) on a loopback UDP port, for
/// [`start_overlay`].
pub fn start_agentnet(
    bin: &Path,
    dir: &Path,
    upstream: SocketAddr,
    overlay: bool,
) -> anyhow::Result<(Proc, Target, AgentnetServer)> {
    let data_dir = dir.join("agentnet-data");
    // A fresh server every run (the work directory may be reused).
    if data_dir.exists() {
        fs::remove_dir_all(&data_dir)?;
    }
    let ai = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let overlay_section = if overlay {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
        format!("\n[overlay]\nenabled = true\nlisten = \"{udp}\"\n")
    } else {
        String::new()
    };
    let config = format!(
        r#"version = 1
data_dir = "{data}"

[listen]
ai = "{ai}"
admin = "{admin}"

[log]
level = "info"

[login]
access_ttl = "12h"

# The memory phase hangs up on streams that the upstream never ends; agentnet keeps reading such
# a stream after the client is gone, to bill it (2 minutes by default), which would hold the
# upstream sockets into the next phase.
[limits]
disconnect_drain_timeout = "1s"

[[providers]]
name = "bench"
kind = "openai-compatible"
base_url = "http://{upstream}"
api_key_env = "BENCH_UPSTREAM_KEY"
models = ["bench-*"]
prices = [{{ model = "bench-*", input = 1.0, output = 2.0 }}]

# Reached by its explicit path only: where two providers serve a model, routing takes the first
# by name, "bench".
[[providers]]
name = "bench-unsigned"
kind = "openai-compatible"
base_url = "http://{upstream}"
api_key_env = "BENCH_UPSTREAM_KEY"
models = ["bench-*"]
prices = [{{ model = "bench-*", input = 1.0, output = 2.0 }}]
assertion = false

[[policies]]
name = "bench"
groups = ["bench"]
providers = ["bench", "bench-unsigned"]
models = ["bench-*"]
limits = [
  {{ spend_usd = 1000000, per = "user", window = "30d" }},
  {{ spend_usd = 1000000, per = "group", window = "30d" }},
  {{ requests = 100000000, window = "1m" }},
]
{overlay_section}"#,
        data = data_dir.display()
    );
    let config_path = dir.join("agentnet.toml");
    fs::write(&config_path, config)?;
    let mut cmd = Command::new(bin);
    cmd.arg("server")
        .arg("--config")
        .arg(&config_path)
        .env("BENCH_UPSTREAM_KEY", "sk-bench-upstream-key");
    let proc = Proc::spawn("agentnet", cmd, dir)?;
    wait_for_port(ai, Duration::from_secs(30)).with_context(|| proc.tail())?;
    wait_for_port(admin, Duration::from_secs(30)).with_context(|| proc.tail())?;
    let key = create_setup_key(bin, &data_dir, "bench")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let answer = runtime.block_on(post_json(
        admin,
        "/auth/enroll",
        &json!({"setup_key": key, "name": "bench-agent"}),
    ))?;
    let token = answer["access_token"]
        .as_str()
        .with_context(|| format!("no access token in the enrollment answer: {answer}"))?;
    let target = Target::new("agentnet", ai, Some(token), Some(proc.pid()));
    let server = AgentnetServer { pid: proc.pid(), admin, data_dir };
    Ok((proc, target, server))
}

/// The `agentnet` target through the provider that stamps identity headers but signs no
/// assertion (`assertion = false`), selected by its explicit path.
pub fn unsigned(agentnet: &Target) -> Target {
    Target {
        name: "agentnet-unsigned".into(),
        path: format!("/p/bench-unsigned{CHAT_PATH}"),
        ..agentnet.clone()
    }
}

/// What [`start_overlay`] needs of a running agentnet server.
pub struct AgentnetServer {
    pid: u32,
    admin: SocketAddr,
    data_dir: PathBuf,
}

/// The overlay path: a second agent enrolls with the real CLI (`agentnet enroll`) and runs
/// `agentnet up` (userspace WireGuard and TCP, forwarding a loopback port), so requests carry no
/// token: the tunnel says who calls. Measured as the server's process; the client's CPU is not
/// counted.
pub fn start_overlay(
    bin: &Path,
    dir: &Path,
    server: &AgentnetServer,
) -> anyhow::Result<(Proc, Target)> {
    let home = dir.join("overlay-home");
    fs::create_dir_all(&home)?;
    let key = create_setup_key(bin, &server.data_dir, "bench-overlay")?;
    let env = [("HOME", home.clone()), ("XDG_CONFIG_HOME", home.join(".config"))];
    let out = Command::new(bin)
        .args(["enroll", "--server", &format!("http://{}", server.admin)])
        .args(["--setup-key-env", "BENCH_SETUP_KEY", "--name", "bench-overlay"])
        .envs(env.clone())
        .env("BENCH_SETUP_KEY", key)
        .output()?;
    if !out.status.success() {
        bail!("agentnet enroll failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut cmd = Command::new(bin);
    cmd.args(["up", "--listen", &listen.to_string()]).envs(env);
    let proc = Proc::spawn("agentnet-up", cmd, dir)?;
    wait_for_port(listen, Duration::from_secs(30)).with_context(|| proc.tail())?;
    let target = Target::new("overlay", listen, None, Some(server.pid));
    Ok((proc, target))
}

/// A one-use setup key for the `bench` group, from the admin socket (retried while the server
/// is still opening it).
fn create_setup_key(bin: &Path, data_dir: &Path, name: &str) -> anyhow::Result<String> {
    let mut last_error = String::new();
    for _ in 0..50 {
        let out = Command::new(bin)
            .arg("admin")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--json", "setup-keys", "create", name, "--group", "bench"])
            .output()?;
        if out.status.success() {
            let created: Value =
                serde_json::from_slice(&out.stdout).context("setup-keys create --json")?;
            return created["key"]
                .as_str()
                .map(str::to_owned)
                .context("no key in the setup-keys answer");
        }
        last_error = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("cannot create a setup key: {last_error}")
}

async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> anyhow::Result<Value> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let request = Request::post(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = send.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("POST {path} answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// nginx as a plain reverse proxy: as many workers as cores, kept-alive upstream connections,
/// no buffering (so that streams pass as they come) and no access log: the practical limit of an
/// HTTP proxy on this machine, not a configuration anyone would run blind.
pub fn start_nginx(bin: &Path, dir: &Path, upstream: SocketAddr) -> anyhow::Result<(Proc, Target)> {
    let root = dir.join("nginx");
    fs::create_dir_all(&root)?;
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut conf = String::new();
    let r = root.display();
    writeln!(conf, "worker_processes auto;\nworker_rlimit_nofile 65536;\npid {r}/nginx.pid;\nerror_log {r}/error.log warn;")?;
    writeln!(conf, "events {{ worker_connections 30000; multi_accept on; }}")?;
    writeln!(conf, "http {{\n  access_log off;")?;
    for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        writeln!(conf, "  {temp}_temp_path {r}/{temp};")?;
    }
    writeln!(
        conf,
        "  upstream bench {{ server {upstream}; keepalive 256; keepalive_requests 1000000; }}"
    )?;
    writeln!(
        conf,
        "  server {{\n    listen {listen} backlog=4096;\n    keepalive_requests 1000000;"
    )?;
    writeln!(
        conf,
        "    location / {{\n      proxy_pass http://bench;\n      proxy_http_version 1.1;"
    )?;
    writeln!(
        conf,
        "      proxy_set_header Connection \"\";\n      proxy_buffering off;\n    }}\n  }}\n}}"
    )?;
    let conf_path = root.join("nginx.conf");
    fs::write(&conf_path, conf)?;
    let mut cmd = Command::new(bin);
    cmd.arg("-p").arg(&root).arg("-c").arg(&conf_path).args(["-g", "daemon off;"]);
    let proc = Proc::spawn("nginx", cmd, dir)?;
    wait_for_port(listen, Duration::from_secs(10)).with_context(|| proc.tail())?;
    let target = Target::new("nginx", listen, None, Some(proc.pid()));
    Ok((proc, target))
}

/// Finds a program on `PATH` or in the sbin directories (nginx lives in /usr/sbin).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found
}

/// The LiteLLM proxy (`litellm`, from a venv), one model routed to the upstream as an OpenAI
/// deployment. It uses its bundled model-cost map (there is no internet to fetch one from, and
/// without this it retries at import), sends no telemetry, and will not start without a master
/// key, which callers then present. It runs one worker per core, like agentnet and nginx.
pub fn start_litellm(
    bin: &Path,
    dir: &Path,
    upstream: SocketAddr,
) -> anyhow::Result<(Proc, Target)> {
    const MASTER_KEY: &str = "sk-bench-litellm-master-key";
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let config = format!(
        "model_list:\n  - model_name: bench-model\n    litellm_params:\n      model: openai/bench-model\n      api_base: http://{upstream}/v1\n      api_key: sk-bench-upstream-key\n"
    );
    let config_path = dir.join("litellm.yaml");
    fs::write(&config_path, config)?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config")
        .arg(&config_path)
        .args(["--host", "127.0.0.1", "--port", &listen.port().to_string()])
        .args(["--num_workers", &workers.to_string()])
        // uvicorn kills a worker that takes more than 5 s to start, which on a busy 2-core
        // machine they do.
        .args(["--timeout_worker_healthcheck", "120"])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_TELEMETRY_DISABLED", "true")
        .env("LITELLM_MASTER_KEY", MASTER_KEY);
    let mut proc = Proc::spawn("litellm", cmd, dir)?;
    // The port opens with the first worker; wait for all of them.
    proc.wait_for(Duration::from_secs(300), |output| {
        (output.matches("Application startup complete.").count() >= workers).then_some(())
    })?;
    wait_for_port(listen, Duration::from_secs(30)).with_context(|| proc.tail())?;
    let target = Target::new("litellm", listen, Some(MASTER_KEY), Some(proc.pid()));
    Ok((proc, target))
}
