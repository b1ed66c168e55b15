//! HTTP(S) to a server's admin listener: the sign-in endpoints (`/auth/…`), the self-service
//! view (`/api/v1/me`) and, for `agentnet admin --url`, the admin API. Each exchange is bounded
//! by a timeout; a bearer token is marked sensitive and never put in an error message.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    header::{self, HeaderValue},
    Method, Request, StatusCode, Uri,
};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};

/// How long one exchange may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A server's admin listener, as `http(s)://host[:port][/prefix]` without a trailing `/`.
pub(crate) struct Remote {
    base: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// A server's answer: any status, and the body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) bytes: Bytes,
}

/// A request body and its content type.
pub(crate) enum Body {
    Empty,
    Json(Vec<u8>),
    Form(String),
}

impl Remote {
    pub(crate) fn new(server: &str) -> anyhow::Result<Self> {
        let base = base_url(server)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .context("cannot set up TLS")?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self { base, client })
    }

    /// The server's base URL, normalized.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `{base}{path}`.
    pub(crate) fn url(&self, path: &str) -> anyhow::Result<Uri> {
        let url = format!("{}{path}", self.base);
        url.parse().with_context(|| format!("'{url}' is not a valid URL"))
    }

    pub(crate) async fn get(&self, path: &str, bearer: Option<&str>) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, bearer, Body::Empty).await
    }

    /// POSTs `fields` as `application/x-www-form-urlencoded`.
    pub(crate) async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        self.send(Method::POST, path, None, Body::Form(form.finish())).await
    }

    /// Sends one request and returns the answer, whatever its status.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Body,
    ) -> anyhow::Result<Reply> {
        let url = self.url(path)?;
        let mut request = Request::builder()
            .method(method)
            .uri(url.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, concat!("agentnet/", env!("CARGO_PKG_VERSION")));
        if let Some(token) = bearer {
            let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| anyhow!("the token has characters a header cannot carry"))?;
            auth.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, auth);
        }
        let (content_type, bytes) = match body {
            Body::Empty => (None, Vec::new()),
            Body::Json(bytes) => (Some("application/json"), bytes),
            Body::Form(text) => (Some("application/x-www-form-urlencoded"), text.into_bytes()),
        };
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(Full::new(Bytes::from(bytes)))?;
        let exchange = async {
            let response = self.client.request(request).await.with_context(|| {
                format!("cannot reach the agentnet server at {url}: is --server the gateway's admin listener?")
            })?;
            let status = response.status();
            let bytes =
                response.into_body().collect().await.context("the answer was cut off")?.to_bytes();
            anyhow::Ok(Reply { status, bytes })
        };
        tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| {
            anyhow!("the agentnet server at {url} did not answer within {}s", TIMEOUT.as_secs())
        })?
    }
}

/// Checks a server URL given as `http(s)://host[:port][/prefix]` and returns it without a
/// trailing `/`.
pub(crate) fn base_url(server: &str) -> anyhow::Result<String> {
    let server = server.trim();
    let rest = server
        .strip_prefix("http://")
        .or_else(|| server.strip_prefix("https://"))
        .with_context(|| {
            format!(
                "--server '{server}' must start with http:// or https://, e.g. http://gateway:4001"
            )
        })?;
    if rest.is_empty() || rest.starts_with('/') {
        bail!("--server '{server}' has no host");
    }
    if rest.contains(['?', '#']) {
        bail!("--server '{server}' must be a base URL, without a query or fragment");
    }
    let base = server.trim_end_matches('/').to_owned();
    base.parse::<Uri>().with_context(|| format!("--server '{server}' is not a valid URL"))?;
    Ok(base)
}

/// `error.message` of a JSON error body (the admin API's shape and the AI endpoint's share it).
pub(crate) fn error_message(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    value["error"]["message"].as_str().map(str::to_owned)
}

/// `404 not found`.
pub(crate) fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {}", status.as_u16(), reason.to_lowercase()),
        None => status.as_u16().to_string(),
    }
}
