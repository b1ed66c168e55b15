//! Latency one request at a time: for each target, one kept-alive connection; the targets take
//! turns in rounds so that a noisy moment on the machine hits them all alike.

use bytes::Bytes;

use crate::{probe::Probe, stats::Samples, targets::Target};

/// The latency series of one target.
#[derive(Debug, Clone, Default)]
pub struct LatencySeries {
    pub target: String,
    /// Non-streaming, to the end of the answer.
    pub whole: Samples,
    /// Streaming, to the first event.
    pub stream_first: Samples,
    /// Streaming, to the end of the stream.
    pub stream_last: Samples,
    /// Streaming: from the upstream's write of each event to its arrival at the client.
    pub event_lag: Samples,
    /// How often the target closed the kept-alive connection.
    pub reconnects: u32,
}

/// A small non-streaming chat request.
pub fn chat_body(stream: bool) -> Bytes {
    let stream = if stream { r#","stream":true"# } else { "" };
    Bytes::from(format!(
        r#"{{"model":"bench-model","max_tokens":16{stream},"messages":[{{"role":"user","content":"Say hello."}}]}}"#
    ))
}

/// Per target: `requests` non-streaming and `stream_requests` streaming requests after a warm-up,
/// in `rounds` interleaved rounds.
pub async fn measure(
    targets: &[Target],
    requests: usize,
    stream_requests: usize,
    rounds: usize,
    warmup: usize,
) -> anyhow::Result<Vec<LatencySeries>> {
    let rounds = rounds.max(1);
    let mut probes = Vec::new();
    for target in targets {
        let mut probe = Probe::open(target.addr).await?;
        for _ in 0..warmup {
            probe.call(target, chat_body(false)).await?;
        }
        probe.call(target, chat_body(true)).await?;
        probes.push(probe);
    }
    let mut series: Vec<LatencySeries> = targets
        .iter()
        .map(|t| LatencySeries { target: t.name.clone(), ..Default::default() })
        .collect();
    for round in 0..rounds {
        let share = |total: usize| total / rounds + usize::from(round < total % rounds);
        for ((target, probe), s) in targets.iter().zip(&mut probes).zip(&mut series) {
            for _ in 0..share(requests) {
                let t = probe.call(target, chat_body(false)).await?;
                s.whole.push(t.last_byte);
            }
            for _ in 0..share(stream_requests) {
                let t = probe.call(target, chat_body(true)).await?;
                s.stream_first.push(t.first_byte);
                s.stream_last.push(t.last_byte);
                for lag in t.event_lags_ms {
                    s.event_lag.push_ms(lag);
                }
            }
        }
    }
    for (s, probe) in series.iter_mut().zip(&probes) {
        s.reconnects = probe.reconnects;
    }
    Ok(series)
}
