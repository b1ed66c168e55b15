//! The benchmark's upstream: an OpenAI-compatible `POST /v1/chat/completions` that does as little
//! as possible, so that what the benchmark measures is the proxy in front of it.
//!
//! It is deliberately not `testkit`'s mock-llm: that one records requests, runs scripts and checks
//! the wire format, which costs more than the proxies under test. This one reads the body, answers
//! a small fixed completion (Nagle off), and streams on request:
//! - `"stream": true`: `events` content chunks, `event_interval` apart (the first at once), then a
//!   finish chunk, a usage chunk and `[DONE]`. Each content chunk's text is `@<unix ns>`, the
//!   moment it was written, so a client can tell how long each event took to reach it.
//! - model `bench-hold…` with `"stream": true`: one chunk at once, then one every `hold_interval`
//!   until the client goes away, to hold many streams open for the memory measurement.

use std::{
    convert::Infallible,
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::{body::Frame, server::conn::http1, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;

/// The prefix of a model name that asks for a held-open stream.
pub const HOLD_MODEL_PREFIX: &str = "bench-hold";

/// The token counts every answer reports.
pub const PROMPT_TOKENS: u64 = 12;
pub const COMPLETION_TOKENS: u64 = 8;

/// How the upstream streams.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamConfig {
    /// Content chunks per streamed answer.
    pub events: u32,
    /// Time between two content chunks.
    pub event_interval: Duration,
    /// Time between two chunks of a held-open stream.
    pub hold_interval: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            events: 10,
            event_interval: Duration::from_millis(2),
            hold_interval: Duration::from_secs(1),
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// Serves connections from `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, config: UpstreamConfig) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // EMFILE and friends: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, config));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

/// Binds `addr` and serves on a background task; returns the bound address.
pub async fn spawn(addr: SocketAddr, config: UpstreamConfig) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, config));
    Ok(bound)
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    stream: bool,
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    config: UpstreamConfig,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "cannot read the request body")),
    };
    match (method.as_str(), path.as_str()) {
        ("GET", "/health") => Ok(plain(StatusCode::OK, "ok")),
        ("POST", "/v1/chat/completions") => {
            let Ok(chat) = serde_json::from_slice::<ChatRequest>(&body) else {
                return Ok(plain(StatusCode::BAD_REQUEST, "the body is not a chat request"));
            };
            Ok(if !chat.stream {
                json(completion(&chat.model))
            } else if chat.model.starts_with(HOLD_MODEL_PREFIX) {
                sse(held_stream(chat.model, config.hold_interval))
            } else {
                sse(timed_stream(chat.model, config.events, config.event_interval))
            })
        }
        _ => Ok(plain(StatusCode::NOT_FOUND, "not found")),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed());
    *response.status_mut() = status;
    response
}

fn json(body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

fn sse<S>(events: S) -> Response<Body>
where
    S: futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync + 'static,
{
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(events)));
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/event-stream"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache"));
    response
}

/// The non-streaming answer.
pub fn completion(model: &str) -> String {
    let model = serde_json::Value::from(model);
    format!(
        r#"{{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":{model},"choices":[{{"index":0,"message":{{"role":"assistant","content":"Hello from the bench upstream."}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{PROMPT_TOKENS},"completion_tokens":{COMPLETION_TOKENS},"total_tokens":{}}}}}"#,
        PROMPT_TOKENS + COMPLETION_TOKENS
    )
}

/// Nanoseconds since the Unix epoch (the same clock in every process on the machine).
pub fn unix_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

fn content_chunk(model: &serde_json::Value) -> Frame<Bytes> {
    Frame::data(Bytes::from(format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":{model},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"@{}\"}},\"finish_reason\":null}}]}}\n\n",
        unix_nanos()
    )))
}

fn closing_chunks(model: &serde_json::Value) -> Frame<Bytes> {
    Frame::data(Bytes::from(format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":{model},\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\n\
         data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":{model},\"choices\":[],\"usage\":{{\"prompt_tokens\":{PROMPT_TOKENS},\"completion_tokens\":{COMPLETION_TOKENS},\"total_tokens\":{}}}}}\n\n\
         data: [DONE]\n\n",
        PROMPT_TOKENS + COMPLETION_TOKENS
    )))
}

fn timed_stream(
    model: String,
    events: u32,
    interval: Duration,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync {
    let model = serde_json::Value::from(model);
    stream::unfold(0u32, move |sent| {
        let model = model.clone();
        async move {
            if sent > events {
                return None;
            }
            if sent == events {
                return Some((Ok(closing_chunks(&model)), sent + 1));
            }
            if sent > 0 {
                tokio::time::sleep(interval).await;
            }
            Some((Ok(content_chunk(&model)), sent + 1))
        }
    })
}

fn held_stream(
    model: String,
    interval: Duration,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync {
    let model = serde_json::Value::from(model);
    stream::unfold(true, move |first| {
        let model = model.clone();
        async move {
            if !first {
                tokio::time::sleep(interval).await;
            }
            Some((Ok(content_chunk(&model)), false))
        }
    })
}
