//! Usage records leave the forwarding path through a bounded channel to one writer task that
//! batches them into store transactions. The forwarding path never awaits the database: when
//! the channel is full the record waits in a spawned task (counted as `backlogged`), so a slow
//! disk shows up as a metric, never as a dropped record or a stalled stream.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_util::FutureExt as _;
use store::{Store, UsageRecord};
use tokio::sync::mpsc;

const BATCH: usize = 256;

/// How long the writer waits for more records after the first of a batch. Without it, a busy
/// gateway wrote a transaction for every one or two records (a commit writes each touched page of
/// the table and its indexes again): a sixth of its CPU at 10k requests/s (BENCHMARKS.md). 5 ms
/// adds nothing anyone can see to a record's way to the usage log.
const LINGER: Duration = Duration::from_millis(5);

/// The sending side, shared by all requests.
#[derive(Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<UsageRecord>,
    stats: Arc<UsageSinkStats>,
    /// The runtime the sink was made on (the server's main one), which outlives the per-core
    /// runtimes of the AI listener: a record waiting for room must not die with one of those.
    home: Option<tokio::runtime::Handle>,
}

/// Counters for the record pipeline.
#[derive(Default, Debug)]
pub struct UsageSinkStats {
    pub sent: AtomicU64,
    /// Records that found the channel full and waited for room off the request path.
    pub backlogged: AtomicU64,
    pub written: AtomicU64,
    pub write_errors: AtomicU64,
}

impl UsageSink {
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<UsageRecord>) {
        let (tx, rx) = mpsc::channel(capacity);
        let home = tokio::runtime::Handle::try_current().ok();
        (Self { tx, stats: Arc::default(), home }, rx)
    }

    pub fn stats(&self) -> Arc<UsageSinkStats> {
        self.stats.clone()
    }

    pub(crate) fn send(&self, record: UsageRecord) {
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(record)) => {
                self.stats.backlogged.fetch_add(1, Ordering::Relaxed);
                let tx = self.tx.clone();
                let wait = async move {
                    if tx.send(record).await.is_err() {
                        tracing::error!("usage writer has stopped; a usage record was not saved");
                    }
                };
                match &self.home {
                    Some(home) => drop(home.spawn(wait)),
                    None => drop(tokio::spawn(wait)),
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("usage writer has stopped; a usage record was not saved");
            }
        }
    }
}

/// One line per request, written here rather than where the request ends, where the last
/// bytes of a response waited for its formatting and writing (~5 µs of the median; BENCHMARKS.md).
fn log_settled(record: &UsageRecord) {
    tracing::info!(
        request_id = %record.id,
        principal = record.principal.as_deref().unwrap_or("-"),
        provider = record.provider.as_deref().unwrap_or("-"),
        model = record.model.as_deref().unwrap_or("-"),
        status = record.status,
        reason = %record.reason,
        input_tokens = record.input_tokens,
        output_tokens = record.output_tokens,
        cost_micro_usd = record.cost_micro_usd,
        latency_ms = record.latency_ms,
        "request settled"
    );
}

/// Writes records in batches until every sender is gone and the channel is drained (so a
/// graceful shutdown loses nothing). A failed batch is retried with backoff, never dropped while
/// the process lives.
pub async fn run_usage_writer(
    store: Store,
    mut rx: mpsc::Receiver<UsageRecord>,
    stats: Arc<UsageSinkStats>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        if batch.len() < BATCH {
            // Sleep rather than wait on the channel: a waiting receiver is woken by every send
            // (a thread wake-up per request); a sleeping one is not.
            tokio::time::sleep(LINGER).await;
            // Only what is there now (`try_recv` would park the thread on a send in progress).
            while batch.len() < BATCH {
                let room = BATCH - batch.len();
                match rx.recv_many(&mut batch, room).now_or_never() {
                    Some(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
        let mut delay = Duration::from_millis(50);
        loop {
            match store.insert_usage(&batch).await {
                Ok(()) => {
                    stats.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    batch.iter().for_each(log_settled);
                    break;
                }
                Err(err) => {
                    stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %err, records = batch.len(), "writing usage records failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        batch.clear();
    }
}
