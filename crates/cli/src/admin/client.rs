//! The admin API client: HTTP/1.1 over the server's Unix socket, one connection per request, or
//! HTTP(S) to a remote server's admin listener with the bearer token of the `agentnet login`
//! session (`--url`). JSON in and out through `api-types` DTOs.

use std::{path::PathBuf, time::Duration};

use anyhow::{anyhow, bail, Context};
use api_types::ErrorBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{de::DeserializeOwned, Serialize};
use tokio::net::UnixStream;

use crate::remote::{status_text, Body, Remote};

/// How long one admin request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct Client {
    transport: Transport,
}

enum Transport {
    Socket(PathBuf),
    /// A remote admin listener, with an access token of an admin.
    Remote {
        remote: Box<Remote>,
        token: String,
    },
}

/// A successful answer: its raw JSON (for `--json`) and how to decode it.
pub(crate) struct Answer {
    pub(crate) bytes: Bytes,
}

impl Answer {
    pub(crate) fn decode<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_slice(&self.bytes)
            .context("the server's answer is not what this agentnet version expects")
    }

    /// The JSON, pretty-printed (empty for a 204).
    pub(crate) fn pretty(&self) -> String {
        match serde_json::from_slice::<serde_json::Value>(&self.bytes) {
            Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
            Err(_) => String::from_utf8_lossy(&self.bytes).into_owned(),
        }
    }
}

impl Client {
    pub(crate) fn new(socket: PathBuf) -> Self {
        Self { transport: Transport::Socket(socket) }
    }

    /// A client of the admin API at `remote`, authenticating with `token`.
    pub(crate) fn remote(remote: Remote, token: String) -> Self {
        Self { transport: Transport::Remote { remote: Box::new(remote), token } }
    }

    /// The server's admin listener URL, when it is reached over HTTP.
    pub(crate) fn server_url(&self) -> Option<&str> {
        match &self.transport {
            Transport::Socket(_) => None,
            Transport::Remote { remote, .. } => Some(remote.base()),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::GET, path, None).await
    }

    pub(crate) async fn delete(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::DELETE, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: &impl Serialize) -> anyhow::Result<Answer> {
        self.send(Method::POST, path, Some(serde_json::to_vec(body)?)).await
    }

    pub(crate) async fn put(&self, path: &str, body: &impl Serialize) -> anyhow::Result<Answer> {
        self.send(Method::PUT, path, Some(serde_json::to_vec(body)?)).await
    }

    pub(crate) async fn patch(&self, path: &str, body: &impl Serialize) -> anyhow::Result<Answer> {
        self.send(Method::PATCH, path, Some(serde_json::to_vec(body)?)).await
    }

    /// Sends one request to `/api/v1{path}`; a non-2xx answer becomes an error carrying the
    /// server's message.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        let uri = format!("{}{path}", api_types::API_PREFIX);
        let socket = match &self.transport {
            Transport::Socket(socket) => socket,
            Transport::Remote { remote, token } => {
                let body = body.map_or(Body::Empty, Body::Json);
                let reply = remote.send(method, &uri, Some(token), body).await?;
                return answer(reply.status, reply.bytes);
            }
        };
        let exchange = async {
            let stream = UnixStream::connect(socket).await.with_context(|| {
                format!(
                    "cannot reach the agentnet server at {}: is `agentnet server` running?",
                    socket.display()
                )
            })?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .context("the admin socket does not speak HTTP")?;
            tokio::spawn(connection);
            let request = Request::builder()
                .method(method)
                .uri(&uri)
                .header(header::HOST, "localhost")
                .header(header::ACCEPT, "application/json")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
            let response =
                sender.send_request(request).await.context("the admin request failed")?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .context("the admin answer was cut off")?
                .to_bytes();
            anyhow::Ok((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| {
            anyhow!("the agentnet server did not answer within {}s", TIMEOUT.as_secs())
        })??;
        answer(status, bytes)
    }
}

/// A 2xx answer; otherwise an error carrying the server's message.
fn answer(status: StatusCode, bytes: Bytes) -> anyhow::Result<Answer> {
    if status.is_success() {
        return Ok(Answer { bytes });
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => bail!("{}", body.error.message),
        Err(_) => bail!(
            "the server answered {}: {}",
            status_text(status),
            String::from_utf8_lossy(&bytes).trim()
        ),
    }
}

/// A path segment, percent-encoded (record names are plain, but the CLI should not build a
/// different path from whatever it is given).
pub(crate) fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
