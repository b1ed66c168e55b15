//! [`MockLlm`]: the listener, its accept loop (HTTP/1.1 and h2c, `TCP_NODELAY` on every
//! accepted socket) and the state shared by the handlers: the reply queue and the recording.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::record::RecordedRequest;
use super::route;
use super::script::{MockConfig, Reply, Script};

/// State shared by the connection handlers.
pub(crate) struct Shared {
    pub(crate) config: MockConfig,
    state: Mutex<State>,
}

struct State {
    queue: VecDeque<Reply>,
    default_reply: Reply,
    requests: VecDeque<RecordedRequest>,
}

impl Shared {
    pub(crate) fn new(config: MockConfig) -> Self {
        let state = State {
            queue: config.script.replies.iter().cloned().collect(),
            default_reply: config.default_reply.clone(),
            requests: VecDeque::new(),
        };
        Shared { config, state: Mutex::new(state) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A handler never panics while holding the lock; recover rather than propagate anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next scripted reply, or the default one.
    pub(crate) fn next_reply(&self) -> Reply {
        let mut st = self.state();
        match st.queue.pop_front() {
            Some(reply) => reply,
            None => st.default_reply.clone(),
        }
    }

    /// The reply the next request would get, without consuming it.
    pub(crate) fn peek_reply(&self) -> Reply {
        let st = self.state();
        st.queue.front().cloned().unwrap_or_else(|| st.default_reply.clone())
    }

    pub(crate) fn record(&self, req: RecordedRequest) {
        let max = self.config.max_recorded;
        let mut st = self.state();
        while !st.requests.is_empty() && st.requests.len() >= max {
            st.requests.pop_front();
        }
        if max > 0 {
            st.requests.push_back(req);
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.iter().cloned().collect()
    }

    pub(crate) fn last_request(&self) -> Option<RecordedRequest> {
        self.state().requests.back().cloned()
    }

    pub(crate) fn push(&self, replies: impl IntoIterator<Item = Reply>) -> usize {
        let mut st = self.state();
        st.queue.extend(replies);
        st.queue.len()
    }

    pub(crate) fn set_default(&self, reply: Reply) {
        self.state().default_reply = reply;
    }

    pub(crate) fn pending(&self) -> usize {
        self.state().queue.len()
    }

    pub(crate) fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// Back to the state at start: the configured script and default reply, no recordings.
    pub(crate) fn reset(&self) {
        let mut st = self.state();
        st.queue = self.config.script.replies.iter().cloned().collect();
        st.default_reply = self.config.default_reply.clone();
        st.requests.clear();
    }
}

/// A mock LLM provider upstream on `127.0.0.1:<ephemeral>`, speaking the Anthropic Messages,
/// OpenAI Chat Completions, Responses and Embeddings wire formats, with scripted replies,
/// failure modes and request recording. Stops (closing every connection) on drop or [`stop`].
///
/// [`stop`]: MockLlm::stop
pub struct MockLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MockLlm {
    /// Starts on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no loopback port can be bound (a broken test environment).
    pub async fn start(config: MockConfig) -> MockLlm {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match MockLlm::bind(addr, config).await {
            Ok(mock) => mock,
            Err(e) => panic!("mock llm: cannot bind 127.0.0.1:0: {e}"),
        }
    }

    /// Starts on `addr`.
    pub async fn bind(addr: SocketAddr, config: MockConfig) -> std::io::Result<MockLlm> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(run_accept(listener, Arc::clone(&shared), rx));
        Ok(MockLlm { addr, shared, shutdown, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash, no `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, oldest first (control-API calls excluded; at most
    /// [`MockConfig::max_recorded`], the latest).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// The most recent request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.last_request()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Queues a reply after the ones already queued.
    pub fn push(&self, reply: Reply) {
        self.shared.push([reply]);
    }

    /// Queues a script's replies.
    pub fn push_script(&self, script: impl Into<Script>) {
        self.shared.push(script.into().replies);
    }

    /// Replaces the reply given when the queue is empty.
    pub fn set_default(&self, reply: Reply) {
        self.shared.set_default(reply);
    }

    /// Scripted replies not yet consumed.
    pub fn pending(&self) -> usize {
        self.shared.pending()
    }

    /// Back to the configured script and default reply; recordings dropped.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops serving and closes every open connection (the same as dropping).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

impl std::fmt::Debug for MockLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockLlm").field("addr", &self.addr).finish_non_exhaustive()
    }
}

async fn run_accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(route::handle(shared, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(tcp), service);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}
