//! The HTTP client for the IdP: one pooled hyper client (https with webpki roots, plain http
//! for local IdPs), bounded in connect time, total time and body size. GETs JSON documents and
//! POSTs forms (the OAuth endpoints). Also the validation of the issuer and endpoint URLs.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;

use crate::Error;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 1024 * 1024;

/// Why a document could not be fetched. Logged by the verifier; never shown to clients.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("cannot build a request for {url}")]
    Request {
        url: Uri,
        #[source]
        source: http::Error,
    },
    #[error("request to {url} failed")]
    Send {
        url: Uri,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("request to {url} timed out after {timeout:?}")]
    Timeout { url: Uri, timeout: Duration },
    #[error("{url} answered {status}")]
    Status { url: Uri, status: StatusCode },
    #[error("{url} answered more than {limit} bytes")]
    TooLarge { url: Uri, limit: usize },
    #[error("reading the answer of {url} failed")]
    Body {
        url: Uri,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{url} answered invalid json")]
    Json {
        url: Uri,
        #[source]
        source: serde_json::Error,
    },
    #[error("discovery document names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch { found: String, expected: String },
    #[error("discovery document names an unusable jwks_uri {uri:?}")]
    JwksUri { uri: String },
    #[error("discovery document names an unusable {name} {uri:?}")]
    Endpoint { name: &'static str, uri: String },
    #[error("{url} answered {what}")]
    Unusable { url: Uri, what: &'static str },
}

/// The discovery URL of `issuer`, and whether the IdP's other URLs must be https (they must
/// when the issuer is). The issuer must be an absolute http or https URL with a host.
pub(crate) fn discovery_url(issuer: &str) -> Result<(Uri, bool), Error> {
    let discovery = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let url: Uri = discovery
        .parse()
        .map_err(|source| Error::IssuerUrl { issuer: issuer.to_owned(), source })?;
    let https_only = match url.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(Error::IssuerScheme { issuer: issuer.to_owned() }),
    };
    if url.host().is_none_or(str::is_empty) {
        return Err(Error::IssuerScheme { issuer: issuer.to_owned() });
    }
    Ok((url, https_only))
}

/// `raw` as an endpoint URL of the IdP: absolute, with a host, https (or http if the issuer is
/// plain http, as local test IdPs are), without a fragment.
pub(crate) fn endpoint_url(raw: &str, https_only: bool) -> Option<Uri> {
    if raw.contains('#') {
        return None;
    }
    let uri: Uri = raw.parse().ok()?;
    let scheme_ok = match uri.scheme_str() {
        Some("https") => true,
        // An https issuer must not downgrade its endpoints to plain http.
        Some("http") => !https_only,
        _ => false,
    };
    (scheme_ok && uri.host().is_some_and(|host| !host.is_empty())).then_some(uri)
}

/// GETs JSON documents, POSTs forms.
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Fetcher {
    pub(crate) fn new() -> Result<Self, Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(Error::Tls)?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(https);
        Ok(Self { client })
    }

    /// Fetches `url` and parses its body as JSON. Raw bytes go to `parse` so that callers can
    /// use their own tolerant parsers.
    pub(crate) async fn get<T>(
        &self,
        url: &Uri,
        parse: impl FnOnce(&[u8]) -> Result<T, serde_json::Error>,
    ) -> Result<T, FetchError> {
        let body = tokio::time::timeout(FETCH_TIMEOUT, self.get_bytes(url))
            .await
            .map_err(|_| FetchError::Timeout { url: url.clone(), timeout: FETCH_TIMEOUT })??;
        parse(&body).map_err(|source| FetchError::Json { url: url.clone(), source })
    }

    /// Fetches and deserializes a JSON document.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: &Uri) -> Result<T, FetchError> {
        self.get(url, |bytes| serde_json::from_slice(bytes)).await
    }

    async fn get_bytes(&self, url: &Uri) -> Result<Bytes, FetchError> {
        let (status, body) = self.send(Method::GET, url, None, Bytes::new()).await?;
        if !status.is_success() {
            return Err(FetchError::Status { url: url.clone(), status });
        }
        Ok(body)
    }

    /// POSTs an `application/x-www-form-urlencoded` `form` (already encoded) to `url`, with an
    /// optional `Authorization` header, and returns the status and body whatever the status:
    /// OAuth endpoints answer errors as JSON bodies of 400 responses. Bounded like GETs.
    pub(crate) async fn post_form(
        &self,
        url: &Uri,
        authorization: Option<HeaderValue>,
        form: String,
    ) -> Result<(StatusCode, Bytes), FetchError> {
        tokio::time::timeout(
            FETCH_TIMEOUT,
            self.send(Method::POST, url, authorization, form.into()),
        )
        .await
        .map_err(|_| FetchError::Timeout { url: url.clone(), timeout: FETCH_TIMEOUT })?
    }

    /// One request: a form body if `body` is not empty. The status is not judged here.
    async fn send(
        &self,
        method: Method,
        url: &Uri,
        authorization: Option<HeaderValue>,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), FetchError> {
        let mut request = Request::builder()
            .method(method)
            .uri(url.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, concat!("agentnet/", env!("CARGO_PKG_VERSION")));
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        if let Some(mut authorization) = authorization {
            authorization.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|source| FetchError::Request { url: url.clone(), source })?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|source| FetchError::Send { url: url.clone(), source })?;
        let status = response.status();
        let collected = Limited::new(response.into_body(), MAX_BODY).collect().await;
        match collected {
            Ok(body) => Ok((status, body.to_bytes())),
            Err(source) if source.is::<LengthLimitError>() => {
                Err(FetchError::TooLarge { url: url.clone(), limit: MAX_BODY })
            }
            Err(source) => Err(FetchError::Body { url: url.clone(), source }),
        }
    }
}
