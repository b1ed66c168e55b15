//! Building the upstream request: the provider's URL for the operation, the client's headers
//! cleaned of credentials, identity and hop-by-hop fields, the provider key in the provider's
//! own header, and the gateway's identity stamp.

use std::time::Duration;

use bytes::Bytes;
use domain::{Endpoint, ProviderKind};
use http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use secrecy::{ExposeSecret, SecretString};

use crate::stamp::is_identity_header;

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One pooled client for all upstreams: keep-alive, HTTP/1.1 and HTTP/2 (ALPN), TCP_NODELAY.
pub(crate) fn http_client(connect_timeout: Duration) -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(https)
}

/// The header carrying a provider's key, ready to insert (marked sensitive so it never prints).
pub(crate) fn auth_header(
    kind: ProviderKind,
    key: &SecretString,
) -> Option<(HeaderName, HeaderValue)> {
    let key = key.expose_secret();
    let (name, value) = match kind {
        ProviderKind::Anthropic => (HeaderName::from_static("x-api-key"), key.to_owned()),
        ProviderKind::AzureOpenAi => (HeaderName::from_static("api-key"), key.to_owned()),
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
            (header::AUTHORIZATION, format!("Bearer {key}"))
        }
    };
    let mut value = HeaderValue::from_str(&value).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

/// The upstream URL for `endpoint` on a provider.
///
/// A base URL that already ends in `/v1` (OpenRouter, vLLM, LiteLLM are often configured that
/// way) is not given a second one. Azure uses its deployment layout, the model naming the
/// deployment.
pub(crate) fn upstream_uri(
    kind: ProviderKind,
    base_url: &str,
    azure_api_version: Option<&str>,
    endpoint: Endpoint,
    model: Option<&str>,
    client_query: Option<&str>,
) -> Option<Uri> {
    let base = base_url.trim_end_matches('/');
    let path = endpoint.path();
    let url = if kind == ProviderKind::AzureOpenAi {
        let version = azure_api_version.unwrap_or("2024-10-21");
        let op = path.trim_start_matches("/v1/");
        match (endpoint, model) {
            (Endpoint::ChatCompletions | Endpoint::Embeddings, Some(model)) => {
                format!("{base}/openai/deployments/{model}/{op}?api-version={version}")
            }
            _ => format!("{base}/openai/{}", path.trim_start_matches('/')),
        }
    } else {
        let path = if base.ends_with("/v1") { &path[3..] } else { path };
        match client_query {
            Some(q) if !q.is_empty() => format!("{base}{path}?{q}"),
            _ => format!("{base}{path}"),
        }
    };
    url.parse().ok()
}

/// Headers that describe one hop, not the request (RFC 9110 §7.6.1), plus those the gateway
/// recomputes.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// Client credentials, in every header that any provider or gateway reads one from.
fn is_credential(name: &HeaderName) -> bool {
    matches!(name.as_str(), "authorization" | "x-api-key" | "api-key" | "cookie")
}

/// The client's headers as they may go upstream: no credentials, no identity claims, no
/// hop-by-hop fields. `Accept-Encoding` is replaced by `identity` so the usage tap can read the
/// response as it streams (a compressed response is still decoded for the tap; see `meter`).
pub(crate) fn forward_headers(client: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(client.len() + 6);
    for (name, value) in client {
        if is_hop_by_hop(name)
            || is_credential(name)
            || is_identity_header(name)
            || name == header::ACCEPT_ENCODING
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    out
}

/// Response headers from upstream as they go to the client.
pub(crate) fn response_headers(upstream: &HeaderMap, drop_length: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(upstream.len() + 1);
    for (name, value) in upstream {
        if (drop_length || name != header::CONTENT_LENGTH) && is_hop_by_hop(name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

#[cfg(test)]
mod tests;
