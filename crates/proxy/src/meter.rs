//! Metering: the response body passes through [`MeteredBody`] frame by frame, unbuffered, while
//! a usage tap reads a copy of what it needs. When the body ends — completed, failed, timed out
//! or abandoned by the client — exactly one usage record is settled.
//!
//! A client that disconnects mid-stream is still billed: the body's `Drop` hands the upstream
//! stream to a task that keeps reading (bounded by `disconnect_drain_timeout`) until the final
//! usage arrives.
//!
//! Compression: the gateway asks upstreams for `identity`; an upstream that compresses anyway is
//! forwarded as sent, and a decoded copy (gzip, deflate, br) feeds the tap.

use std::{
    future::Future,
    io::Write,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use llm::{ChatUsageFilter, TapOutcome, UsageTap};
use store::UsageRecord;
use tokio::time::Sleep;
use tokio_util::{
    sync::{CancellationToken, WaitForCancellationFutureOwned},
    task::TaskTracker,
};

use crate::{
    budget::{self, Hold},
    directory::InFlightRegistry,
    sink::UsageSink,
    snapshot::Snapshot,
    BoxError,
};

/// Decodes a compressed response for the tap (the client gets the original bytes).
pub(crate) enum TapDecoder {
    Identity,
    Gzip(Box<flate2::write::MultiGzDecoder<Vec<u8>>>),
    Deflate(Box<flate2::write::ZlibDecoder<Vec<u8>>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
    /// An encoding the tap cannot read: usage is recorded as not reported.
    Unreadable,
}

impl TapDecoder {
    pub(crate) fn for_encoding(encoding: Option<&str>) -> Self {
        match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => TapDecoder::Identity,
            Some("gzip") | Some("x-gzip") => {
                TapDecoder::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Vec::new())))
            }
            Some("deflate") => {
                TapDecoder::Deflate(Box::new(flate2::write::ZlibDecoder::new(Vec::new())))
            }
            Some("br") => TapDecoder::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(Vec::new(), 4096),
            )),
            Some(_) => TapDecoder::Unreadable,
        }
    }

    /// Whether this decoder can turn the stream back into plain bytes.
    pub(crate) fn readable(&self) -> bool {
        !matches!(self, TapDecoder::Unreadable)
    }

    /// Decodes `chunk`, handing the plain bytes produced so far to `out`. A corrupt stream
    /// turns the decoder unreadable (the client still gets what the upstream sent).
    fn decode(&mut self, chunk: &[u8], out: impl FnOnce(&[u8])) {
        fn pump<W: Write>(
            w: &mut W,
            buffer: impl FnOnce(&mut W) -> &mut Vec<u8>,
            chunk: &[u8],
            out: impl FnOnce(&[u8]),
        ) -> bool {
            if w.write_all(chunk).is_err() {
                return false;
            }
            let decoded = buffer(w);
            out(decoded);
            decoded.clear();
            true
        }
        let ok = match self {
            TapDecoder::Identity => {
                out(chunk);
                true
            }
            TapDecoder::Gzip(d) => pump(d.as_mut(), |d| d.get_mut(), chunk, out),
            TapDecoder::Deflate(d) => pump(d.as_mut(), |d| d.get_mut(), chunk, out),
            TapDecoder::Brotli(d) => pump(d.as_mut(), |d| d.get_mut(), chunk, out),
            TapDecoder::Unreadable => true,
        };
        if !ok {
            *self = TapDecoder::Unreadable;
        }
    }
}

/// How the response is read for usage.
pub(crate) enum Tapping {
    /// A usage tap over the (decoded) response.
    Tap(UsageTap, TapDecoder),
    /// An OpenAI chat stream whose usage chunk the gateway requested: the filter meters it and
    /// removes that chunk from what the client sees. A compressed stream is decoded first and
    /// reaches the client uncompressed (the filter must see plain events).
    Filter(ChatUsageFilter, TapDecoder),
    /// Nothing to meter (model lists, token counting).
    Off,
}

/// Everything needed to settle one request's usage record.
pub(crate) struct Meter {
    pub(crate) sink: UsageSink,
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) record: UsageRecord,
    pub(crate) started: Instant,
    pub(crate) tapping: Tapping,
    /// The budget reservation, settled with the actual consumption.
    pub(crate) hold: Option<Hold>,
    /// The stream's entry in the in-flight registry, removed when the meter is done.
    pub(crate) registration: Option<Registration>,
}

/// A stream's place in the in-flight registry; dropping it unregisters the stream.
pub(crate) struct Registration {
    pub(crate) registry: Arc<InFlightRegistry>,
    pub(crate) id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

/// How a response body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Complete,
    UpstreamError,
    IdleTimeout,
    ClientDisconnected,
    /// Still open when the shutdown grace ended: the server cut it.
    CutAtShutdown,
    /// The caller lost access (deactivated, or removed from the groups that admitted it).
    Revoked,
}

impl Meter {
    /// Meters one upstream chunk; returns what to forward to the client.
    fn pass(&mut self, chunk: Bytes) -> Bytes {
        if self.record.ttfb_ms.is_none() {
            self.record.ttfb_ms = Some(millis(self.started.elapsed()));
        }
        match &mut self.tapping {
            Tapping::Tap(tap, decoder) => {
                decoder.decode(&chunk, |plain| tap.feed(plain));
                chunk
            }
            Tapping::Filter(filter, TapDecoder::Identity) => filter.push(chunk),
            Tapping::Filter(filter, decoder) => {
                let mut out = Bytes::new();
                decoder.decode(&chunk, |plain| out = filter.push(Bytes::copy_from_slice(plain)));
                out
            }
            Tapping::Off => chunk,
        }
    }

    /// Ends the tap: bytes still to forward, and what the upstream reported.
    fn finish_tap(&mut self) -> (Bytes, Option<TapOutcome>) {
        match std::mem::replace(&mut self.tapping, Tapping::Off) {
            Tapping::Tap(tap, decoder) => {
                if matches!(decoder, TapDecoder::Unreadable) {
                    tracing::warn!(request_id = %self.record.id, "response encoding not readable by the usage tap");
                }
                (Bytes::new(), Some(tap.finish()))
            }
            Tapping::Filter(filter, _) => {
                let (rest, outcome) = filter.finish();
                (rest, Some(outcome))
            }
            Tapping::Off => (Bytes::new(), None),
        }
    }

    /// Whether the client has been sent the stream's terminal event already: a client that
    /// hangs up after it (Codex does, at `response.completed`) got the whole answer.
    fn delivered_end(&self) -> bool {
        matches!(&self.tapping, Tapping::Tap(tap, TapDecoder::Identity) if tap.saw_end())
    }

    /// Turns the tap's outcome into the usage record and sends it.
    pub(crate) fn settle(self, ending: Ending, outcome: Option<TapOutcome>) {
        let metered = outcome.is_some();
        let outcome = outcome.unwrap_or_default();
        let Meter { sink, snapshot, mut record, started, hold, registration, .. } = self;
        // The stream is over: it can no longer be cut.
        drop(registration);
        record.latency_ms = millis(started.elapsed());
        if let Some(model) = outcome.model.filter(|m| !m.is_empty()) {
            record.model = Some(model);
        }
        let upstream_ok = (200..300).contains(&record.status);
        record.reason = match ending {
            Ending::Complete if upstream_ok && (outcome.complete || !metered) => "ok",
            Ending::Complete if upstream_ok => "upstream_incomplete",
            Ending::Complete => "upstream_error",
            Ending::UpstreamError => "upstream_stream_error",
            Ending::IdleTimeout => "stream_idle_timeout",
            Ending::ClientDisconnected => "client_disconnected",
            Ending::CutAtShutdown => "cut_at_shutdown",
            Ending::Revoked => "access_revoked",
        }
        .to_owned();
        let prices =
            record.provider.as_deref().and_then(|name| snapshot.upstream(name)).map(|u| &u.prices);
        match outcome.usage {
            Some(usage) => {
                record.input_tokens = to_i64(usage.input_tokens);
                record.output_tokens = to_i64(usage.output_tokens);
                record.cache_creation_tokens = to_i64(usage.cache_creation_input_tokens);
                record.cache_read_tokens = to_i64(usage.cache_read_input_tokens);
                record.reasoning_tokens = to_i64(usage.reasoning_tokens);
                record.usage_reported = true;
                record.cost_micro_usd = prices
                    .zip(record.model.as_deref())
                    .and_then(|(p, model)| p.cost(model, &usage))
                    .map(|c| c.0);
            }
            None => {
                record.usage_reported = false;
                // Nothing billable happened on a refused or non-metered call; a successful
                // metered call without a usage report has an unknown cost, never zero.
                record.cost_micro_usd = if !upstream_ok || !metered { Some(0) } else { None };
            }
        }
        if let Some(hold) = hold {
            // A failed or refused upstream call releases the reservation (the hold's drop);
            // anything that produced output is charged what it used.
            if upstream_ok {
                hold.settle(budget::actual(&record));
            }
        }
        // The "request settled" line is the usage writer's: off the forwarding path.
        sink.send(record);
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The drains of abandoned responses, tracked so that a shutdown can wait for them to bill, and
/// whether the server has begun cutting what is left at the end of a shutdown's grace.
#[derive(Clone, Default)]
pub(crate) struct Drains {
    pub(crate) tracker: TaskTracker,
    cutting: Arc<AtomicBool>,
}

impl Drains {
    /// From now on an abandoned response was cut by the server (`cut_at_shutdown`).
    pub(crate) fn start_cutting(&self) {
        self.cutting.store(true, Ordering::Relaxed);
    }

    fn cutting(&self) -> bool {
        self.cutting.load(Ordering::Relaxed)
    }
}

/// The upstream response body on its way to the client.
pub(crate) struct MeteredBody {
    inner: Option<Incoming>,
    meter: Option<Meter>,
    /// Fires when the caller loses access mid-stream.
    revoked: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    drain_timeout: Duration,
    /// Where a drain after a hang-up is tracked, so that shutdown can wait for it to bill.
    drains: Drains,
}

impl MeteredBody {
    pub(crate) fn new(
        inner: Incoming,
        meter: Meter,
        revoked: Option<CancellationToken>,
        idle_timeout: Duration,
        drain_timeout: Duration,
        drains: Drains,
    ) -> Self {
        Self {
            inner: Some(inner),
            meter: Some(meter),
            revoked: revoked.map(|token| Box::pin(token.cancelled_owned())),
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            drain_timeout,
            drains,
        }
    }

    /// Settles the record; returns bytes the tap still held back for the client.
    fn settle(&mut self, ending: Ending) -> Bytes {
        self.inner = None;
        match self.meter.take() {
            Some(mut meter) => {
                let (rest, outcome) = meter.finish_tap();
                meter.settle(ending, outcome);
                rest
            }
            None => Bytes::new(),
        }
    }
}

/// The caller lost access while the response was streaming.
#[derive(Debug, thiserror::Error)]
#[error("access revoked mid-stream")]
struct AccessRevoked;

/// The stream went quiet for longer than the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("upstream stream idle for longer than {0:?}")]
struct IdleTimeout(Duration);

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(revoked) = this.revoked.as_mut() {
            if revoked.as_mut().poll(cx).is_ready() {
                this.revoked = None;
                if this.inner.is_some() {
                    this.settle(Ending::Revoked);
                    return Poll::Ready(Some(Err(Box::new(AccessRevoked))));
                }
            }
        }
        loop {
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let deadline = tokio::time::Instant::now() + this.idle_timeout;
                    this.idle.as_mut().reset(deadline);
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                    };
                    let mut out = match this.meter.as_mut() {
                        Some(meter) => meter.pass(data),
                        None => data,
                    };
                    // A body with a known length may never be polled past its last byte:
                    // settle as soon as the upstream says it is complete.
                    if this.inner.as_ref().is_some_and(http_body::Body::is_end_stream) {
                        let rest = this.settle(Ending::Complete);
                        if !rest.is_empty() {
                            let mut joined = bytes::BytesMut::from(&out[..]);
                            joined.extend_from_slice(&rest);
                            out = joined.freeze();
                        }
                    }
                    if out.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                Poll::Ready(Some(Err(err))) => {
                    this.settle(Ending::UpstreamError);
                    return Poll::Ready(Some(Err(Box::new(err))));
                }
                Poll::Ready(None) => {
                    let rest = this.settle(Ending::Complete);
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    if this.idle.as_mut().poll(cx).is_ready() {
                        this.settle(Ending::IdleTimeout);
                        return Poll::Ready(Some(Err(Box::new(IdleTimeout(this.idle_timeout)))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.inner, self.meter.as_ref().map(|m| &m.tapping)) {
            (Some(inner), Some(Tapping::Tap(..) | Tapping::Off) | None) => inner.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        let (Some(inner), Some(mut meter)) = (self.inner.take(), self.meter.take()) else {
            return;
        };
        if inner.is_end_stream() {
            let (_, outcome) = meter.finish_tap();
            meter.settle(Ending::Complete, outcome);
            return;
        }
        // The client went away mid-response, or the server cut it at the end of a shutdown's
        // grace: keep reading upstream, bounded in time, so the request is billed for what the
        // provider actually produced.
        let drain_timeout = self.drain_timeout;
        let abandoned =
            if self.drains.cutting() { Ending::CutAtShutdown } else { Ending::ClientDisconnected };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(self.drains.tracker.track_future(drain_and_settle(
                    inner,
                    meter,
                    drain_timeout,
                    abandoned,
                )));
            }
            Err(_) => {
                let (_, outcome) = meter.finish_tap();
                meter.settle(Ending::ClientDisconnected, outcome);
            }
        }
    }
}

async fn drain_and_settle(
    mut inner: Incoming,
    mut meter: Meter,
    timeout: Duration,
    abandoned: Ending,
) {
    let ending = if meter.delivered_end() { Ending::Complete } else { abandoned };
    use http_body_util::BodyExt;
    let drained = tokio::time::timeout(timeout, async {
        while let Some(Ok(frame)) = inner.frame().await {
            if let Ok(data) = frame.into_data() {
                let _ = meter.pass(data);
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(request_id = %meter.record.id, "gave up draining an abandoned stream");
    }
    let (_, outcome) = meter.finish_tap();
    meter.settle(ending, outcome);
}
