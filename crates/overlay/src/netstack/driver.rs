//! The stack task: takes inbound packets, has smoltcp process them, polls the sockets that
//! have something to do, hands the packets smoltcp emits to the outbound channel, and sleeps
//! until the next inbound packet, kick from a handle, or timer.
//!
//! Outbound backpressure: each round may emit only as many packets as the outbound channel has
//! room for ([`ChannelDevice::budget`]); sockets that could not finish stay queued. The task
//! then waits for room (a few dozen slots at once, so that it does not run a round for every
//! single freed slot) rather than for timers.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use bytes::Bytes;
use tokio::sync::mpsc::{
    self,
    error::{TryRecvError, TrySendError},
};

use super::{device::ChannelDevice, Shared};

/// Inbound packets processed per round, so that handles get the lock in between.
const RX_BATCH: usize = 256;
/// Free outbound slots to wait for before another round when the channel was full.
const ROOM_CHUNK: usize = 64;
/// Sleep when a timer keeps coming due without anything happening (should not occur; it
/// bounds the damage if it does).
const SPIN_GUARD: Duration = Duration::from_millis(1);

/// smoltcp's clock: time since the stack started, on tokio's clock (so that tests with paused
/// time see consistent timers).
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    epoch: tokio::time::Instant,
}

impl Clock {
    pub(super) fn new() -> Self {
        Self { epoch: tokio::time::Instant::now() }
    }

    pub(super) fn now(&self) -> smoltcp::time::Instant {
        let micros = self.epoch.elapsed().as_micros();
        smoltcp::time::Instant::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    fn to_tokio(self, at: smoltcp::time::Instant) -> tokio::time::Instant {
        self.epoch + Duration::from_micros(u64::try_from(at.total_micros()).unwrap_or(0))
    }
}

/// A seed for smoltcp's sequence numbers and our ephemeral ports; it need not be
/// cryptographic, only different per process.
pub(super) fn random_seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    hasher.finish()
}

/// Marks the state stopped however the task ends (including the runtime dropping it), so
/// that waiting handles wake up and fail instead of hanging.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.lock().stop();
    }
}

pub(super) async fn run(
    shared: Arc<Shared>,
    clock: Clock,
    mut device: ChannelDevice,
    mut inbound: mpsc::Receiver<Bytes>,
    outbound: mpsc::Sender<Bytes>,
) {
    let _guard = StopGuard(shared.clone());
    let max_pending = outbound.max_capacity();
    let room_chunk = ROOM_CHUNK.min(max_pending).max(1);
    let mut batch: Vec<Bytes> = Vec::with_capacity(RX_BATCH);
    let mut inbound_open = true;
    let mut idle_rounds = 0u32;
    let timer = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(timer);

    loop {
        if shared.stop_requested() {
            break;
        }
        shared.polls.fetch_add(1, Ordering::Relaxed);
        while inbound_open && batch.len() < RX_BATCH {
            match inbound.try_recv() {
                Ok(packet) => batch.push(packet),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => inbound_open = false,
            }
        }
        let more_inbound = batch.len() >= RX_BATCH;
        let received = batch.len();

        let outbound_closed = outbound.is_closed();
        device.budget = if outbound_closed {
            usize::MAX
        } else {
            outbound.capacity().saturating_sub(device.tx.len())
        };
        device.exhausted = false;
        let queued_before = device.tx.len();
        let now = clock.now();
        let next_timer = {
            let mut state = shared.lock();
            if state.stopped {
                break;
            }
            for packet in batch.drain(..) {
                state.ingress(packet, &mut device, now);
            }
            state.due_timers(now);
            state.egress(&mut device, now);
            state.next_timer()
        };
        let emitted = device.tx.len() - queued_before.min(device.tx.len());
        flush(&mut device, &outbound, max_pending);
        let blocked = !outbound_closed && (device.exhausted || !device.tx.is_empty());

        if more_inbound {
            // Let the handles (and everyone else) run between batches.
            tokio::task::yield_now().await;
            continue;
        }

        let mut wake_at = next_timer.map(|at| clock.to_tokio(at));
        if next_timer.is_some_and(|at| at <= now) && received == 0 && emitted == 0 && !blocked {
            idle_rounds += 1;
            if idle_rounds > 2 {
                wake_at = Some(tokio::time::Instant::now() + SPIN_GUARD);
            }
        } else {
            idle_rounds = 0;
        }
        if let Some(at) = wake_at {
            timer.as_mut().reset(at);
        }

        tokio::select! {
            biased;
            () = shared.kick.notified() => {}
            packet = inbound.recv(), if inbound_open => match packet {
                Some(packet) => batch.push(packet),
                None => inbound_open = false,
            },
            permits = outbound.reserve_many(room_chunk), if blocked => {
                if let Ok(permits) = permits {
                    for permit in permits {
                        let Some(packet) = device.tx.pop_front() else { break };
                        permit.send(packet);
                    }
                }
            }
            () = &mut timer, if !blocked && wake_at.is_some() => {}
        }
    }

    // Stopping: reset every connection, send the RSTs if there is room, free the sockets.
    {
        let mut state = shared.lock();
        if !state.stopped {
            state.abort_all();
            device.budget = outbound.capacity();
            device.exhausted = false;
            state.egress(&mut device, clock.now());
            state.stop();
        }
    }
    flush(&mut device, &outbound, 0);
}

/// Moves emitted packets into the outbound channel while it has room; keeps at most
/// `max_pending` for later (only replies generated on receive can exceed the budget).
fn flush(device: &mut ChannelDevice, outbound: &mpsc::Sender<Bytes>, max_pending: usize) {
    while let Some(packet) = device.tx.pop_front() {
        match outbound.try_send(packet) {
            Ok(()) => {}
            Err(TrySendError::Full(packet)) => {
                device.tx.push_front(packet);
                break;
            }
            Err(TrySendError::Closed(_)) => {
                device.tx.clear();
                break;
            }
        }
    }
    if device.tx.len() > max_pending {
        let excess = device.tx.len() - max_pending;
        tracing::debug!(excess, "outbound channel full, dropping packets");
        device.tx.drain(..excess);
    }
}
