//! One request at a time over one kept-alive HTTP/1.1 connection: the latency a single caller
//! sees, to the first byte of the answer and to its last, and for streams how long each event
//! took from the upstream's write to the client.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{client::conn::http1, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{targets::Target, upstream::unix_nanos};

/// What one request measured.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// From sending the request to the first byte of the body.
    pub first_byte: Duration,
    /// From sending the request to the end of the body.
    pub last_byte: Duration,
    /// For each streamed event: milliseconds from the upstream's write to its arrival here.
    pub event_lags_ms: Vec<f64>,
}

/// A kept-alive connection to one target, opened again (outside the timed part) when the server
/// has closed it, as any HTTP client would: uvicorn, under LiteLLM, closes connections idle for
/// 5 s, which they are while the other targets take their turn.
pub struct Probe {
    addr: SocketAddr,
    send: http1::SendRequest<Full<Bytes>>,
    /// How often the connection had to be opened again.
    pub reconnects: u32,
}

impl Probe {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self { addr, send: Self::connect(addr).await?, reconnects: 0 })
    }

    async fn connect(addr: SocketAddr) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
        let tcp =
            TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        Ok(send)
    }

    /// Sends `body` to the target's chat completions endpoint and reads the whole answer.
    pub async fn call(&mut self, target: &Target, body: Bytes) -> anyhow::Result<Timing> {
        let mut builder = Request::post(&target.path)
            .header(http::header::HOST, target.addr.to_string())
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in &target.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Full::new(body))?;
        if self.send.ready().await.is_err() {
            self.send = Self::connect(self.addr).await?;
            self.reconnects += 1;
            self.send.ready().await.context("the connection closed at once")?;
        }
        let started = Instant::now();
        let response = self.send.send_request(request).await.context("the request failed")?;
        let status = response.status();
        let mut body = response.into_body();
        let mut timing = Timing::default();
        let mut first = true;
        let mut pending: Vec<u8> = Vec::new();
        let mut all: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("the answer broke off")?;
            let Ok(data) = frame.into_data() else { continue };
            if first {
                timing.first_byte = started.elapsed();
                first = false;
            }
            if !status.is_success() {
                all.extend_from_slice(&data);
                continue;
            }
            pending.extend_from_slice(&data);
            let now = unix_nanos();
            while let Some(end) = find(&pending, b"\n\n") {
                if let Some(sent) = sent_at(&pending[..end]) {
                    timing.event_lags_ms.push(now.saturating_sub(sent) as f64 / 1e6);
                }
                pending.drain(..end + 2);
            }
        }
        timing.last_byte = started.elapsed();
        if !status.is_success() {
            bail!("{} answered {status}: {}", target.name, String::from_utf8_lossy(&all));
        }
        Ok(timing)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The upstream's write time in an event's `"content":"@<unix ns>"`.
fn sent_at(event: &[u8]) -> Option<u128> {
    const MARK: &[u8] = b"\"content\":\"@";
    let start = find(event, MARK)? + MARK.len();
    let digits = event[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&event[start..start + digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{latency::chat_body, targets, upstream};

    #[tokio::test]
    async fn measures_answers_and_every_streamed_event_from_the_bench_upstream() {
        let config = upstream::UpstreamConfig { events: 5, ..Default::default() };
        let addr = upstream::spawn("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let target = targets::direct(addr);
        let mut probe = Probe::open(addr).await.unwrap();

        let whole = probe.call(&target, chat_body(false)).await.unwrap();
        assert!(whole.event_lags_ms.is_empty());
        assert!(whole.first_byte <= whole.last_byte);

        let streamed = probe.call(&target, chat_body(true)).await.unwrap();
        assert_eq!(streamed.event_lags_ms.len(), 5, "one lag per content event");
        assert!(streamed.event_lags_ms.iter().all(|lag| (0.0..1000.0).contains(lag)));
        // Five events, 2 ms apart after the first.
        assert!(streamed.last_byte >= Duration::from_millis(8), "{:?}", streamed.last_byte);
        assert_eq!(probe.reconnects, 0, "one kept-alive connection");

        let mut bad = target.clone();
        bad.path = "/nope".into();
        let err = probe.call(&bad, chat_body(false)).await.unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
    }

    #[test]
    fn reads_the_write_time_of_an_event() {
        let event =
            br#"data: {"choices":[{"index":0,"delta":{"content":"@1732662000123456789"}}]}"#;
        assert_eq!(sent_at(event), Some(1_732_662_000_123_456_789));
        assert_eq!(sent_at(b"data: [DONE]"), None);
    }
}
