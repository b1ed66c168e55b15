//! Memory per concurrently open stream: open N streaming requests that the upstream holds open,
//! wait until each has its first event, and compare the proxy's resident memory with what it was
//! before.

use std::time::Duration;

use anyhow::{bail, Context as _};
use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::{procs, targets::Target, upstream::HOLD_MODEL_PREFIX};

/// What holding N streams cost a proxy.
#[derive(Debug, Clone, Copy)]
pub struct StreamMemory {
    pub streams: usize,
    pub idle_rss_kib: u64,
    pub open_rss_kib: u64,
}

impl StreamMemory {
    pub fn per_stream_kib(&self) -> f64 {
        self.open_rss_kib.saturating_sub(self.idle_rss_kib) as f64 / self.streams as f64
    }
}

/// Opens `n` held streams through `target` (at most 256 connecting at once), measures, and closes
/// them again.
pub async fn measure(target: &Target, n: usize) -> anyhow::Result<StreamMemory> {
    let pid = target.pid.context("memory is measured on a proxy process")?;
    let idle = procs::rss_kib(&procs::tree(pid));
    let request = raw_request(target);
    let open: Vec<TcpStream> = stream::iter(0..n)
        .map(|_| open_one(target, &request))
        .buffer_unordered(256)
        .try_collect()
        .await?;
    // Let allocators and buffers settle with every stream open.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open_rss = procs::rss_kib(&procs::tree(pid));
    drop(open);
    // The proxy notices the hang-ups, finishes metering, and frees what it can.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(StreamMemory { streams: n, idle_rss_kib: idle, open_rss_kib: open_rss })
}

fn raw_request(target: &Target) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"{HOLD_MODEL_PREFIX}","max_tokens":16,"stream":true,"messages":[{{"role":"user","content":"hold"}}]}}"#
    );
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        target.path,
        target.addr,
        body.len()
    );
    for (name, value) in &target.headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += "\r\n";
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// Connects, sends the request, and reads until the first streamed event has arrived.
async fn open_one(target: &Target, request: &[u8]) -> anyhow::Result<TcpStream> {
    let mut tcp = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("cannot connect to {}", target.name))?;
    tcp.set_nodelay(true)?;
    tcp.write_all(request).await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
            .await
            .with_context(|| format!("{}: no first event within 30 s", target.name))??;
        if n == 0 {
            bail!("{} closed the stream: {}", target.name, String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(12).any(|w| w == b"\"content\":\"@") {
            return Ok(tcp);
        }
        if seen.windows(4).any(|w| w == b"\r\n\r\n") && !seen.starts_with(b"HTTP/1.1 200") {
            bail!("{} refused the stream: {}", target.name, String::from_utf8_lossy(&seen));
        }
    }
}
