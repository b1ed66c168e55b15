//! `IdpClient`: the server's OAuth 2.0 / OIDC client of the company IdP, with which it brokers
//! sign-in: the device flow (RFC 8628), authorization code with PKCE (RFC 6749 §4.1, RFC 7636),
//! refresh, and revocation (RFC 7009).
//!
//! Endpoints come from the issuer's discovery document, fetched on first use and cached once it
//! was fetched successfully. A confidential client authenticates with HTTP Basic
//! (`client_secret_basic`), a public one sends its `client_id` in the form. OAuth error answers
//! become [`BrokerError`] variants; everything else that goes wrong (network, timeouts, 5xx,
//! bad JSON) is [`BrokerError::Unavailable`]. Tokens, codes and the client secret never appear
//! in `Debug` output or errors.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, Uri};
use secrecy::{ExposeSecret as _, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::fetch::{discovery_url, endpoint_url, FetchError, Fetcher};
use crate::Error;

/// How agentnet identifies itself to the IdP.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// The client id registered at the IdP.
    pub client_id: String,
    /// The client secret of a confidential client; `None` (or empty) for a public client.
    pub client_secret: Option<SecretString>,
}

/// The IdP endpoints the broker uses, from discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpEndpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// Absent if the IdP does not offer the device flow.
    pub device_authorization_endpoint: Option<String>,
    /// Absent if the IdP does not offer token revocation.
    pub revocation_endpoint: Option<String>,
}

/// The IdP's answer to a device authorization request (RFC 8628 §3.2). `Debug` hides the
/// device code.
#[derive(Clone, Deserialize)]
pub struct DeviceAuthorization {
    /// What the server polls the token endpoint with. Secret.
    pub device_code: String,
    /// What the person types at `verification_uri`.
    pub user_code: String,
    /// Where the person goes (Google spells it `verification_url`).
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    /// `verification_uri` with the user code filled in, if the IdP offers one.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Lifetime of the codes, in seconds.
    #[serde(deserialize_with = "seconds")]
    pub expires_in: u64,
    /// Minimum seconds between two polls (5 if the IdP does not say).
    #[serde(default = "default_interval", deserialize_with = "seconds")]
    pub interval: u64,
}

fn default_interval() -> u64 {
    5
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"[REDACTED]")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("verification_uri_complete", &self.verification_uri_complete)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

/// Tokens from the IdP's token endpoint.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<SecretString>,
    /// Lifetime of the access token in seconds, if the IdP says.
    pub expires_in: Option<u64>,
}

/// Why a broker call failed. The first seven variants are the IdP's own answers; only
/// [`BrokerError::Unavailable`] carries a cause, meant for logs.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// RFC 8628 §3.5: the person has not approved yet; poll again after the interval.
    #[error("the sign-in has not been approved yet")]
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; add 5 seconds to the interval.
    #[error("polling too fast; slow down")]
    SlowDown,
    /// RFC 8628 §3.5: the device code expired; start again.
    #[error("the sign-in request expired")]
    ExpiredToken,
    /// RFC 8628 §3.5 (and RFC 6749 §4.1.2.1): the person or the IdP refused.
    #[error("the sign-in was denied")]
    AccessDenied,
    /// The refresh token or authorization code is not (or no longer) valid: sign in again.
    #[error("the identity provider refused the grant; sign in again")]
    InvalidGrant {
        /// The IdP's `error_description`, without control characters, at most 300 characters.
        description: Option<String>,
    },
    /// Any other OAuth error answer (RFC 6749 §5.2), e.g. `invalid_client`.
    #[error("the identity provider refused the request ({error})")]
    Rejected {
        /// The `error` code, reduced to `[a-z_]` and at most 64 characters.
        error: String,
        /// The IdP's `error_description`, without control characters, at most 300 characters.
        description: Option<String>,
    },
    /// The IdP does not offer what was asked (e.g. it has no device authorization endpoint).
    /// The value names it, e.g. `the device authorization grant`.
    #[error("the identity provider does not support {0}")]
    Unsupported(&'static str),
    /// The IdP could not be asked or gave an unusable answer.
    #[error("the identity provider is unavailable")]
    Unavailable(#[source] UnavailableError),
}

/// What went wrong talking to the IdP, for logs: URLs and statuses, never secrets.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UnavailableError(Box<FetchError>);

impl From<FetchError> for BrokerError {
    fn from(err: FetchError) -> Self {
        BrokerError::Unavailable(UnavailableError(Box::new(err)))
    }
}

/// An OAuth/OIDC client of one IdP. Cheap to clone (shared state); `Send + Sync`.
#[derive(Clone)]
pub struct IdpClient {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    discovery_url: Uri,
    https_only: bool,
    client_id: String,
    /// `Basic …` for a confidential client; `None` for a public one.
    basic: Option<HeaderValue>,
    fetcher: Fetcher,
    endpoints: tokio::sync::OnceCell<Resolved>,
}

/// Endpoints from discovery, validated and parsed.
#[derive(Debug, Clone)]
struct Resolved {
    public: IdpEndpoints,
    token: Uri,
    device: Option<Uri>,
    revocation: Option<Uri>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default, deserialize_with = "optional_seconds")]
    expires_in: Option<u64>,
}

/// The fields of an OAuth error answer (RFC 6749 §5.2).
#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const MAX_ERROR_CODE_LEN: usize = 64;
const MAX_DESCRIPTION_LEN: usize = 300;

impl IdpClient {
    /// A client of the IdP at `issuer` (validated as for [`crate::TokenVerifier::new`]). Does
    /// no IO. An empty client secret counts as none (a public client).
    pub fn new(issuer: &str, client: ClientCredentials) -> Result<Self, Error> {
        let (discovery_url, https_only) = discovery_url(issuer)?;
        if client.client_id.is_empty() {
            return Err(Error::EmptyClientId);
        }
        let secret =
            client.client_secret.as_ref().map(|s| s.expose_secret()).filter(|s| !s.is_empty());
        let basic =
            secret.map(|secret| basic_authorization(&client.client_id, secret)).transpose()?;
        let inner = Inner {
            issuer: issuer.to_owned(),
            discovery_url,
            https_only,
            client_id: client.client_id,
            basic,
            fetcher: Fetcher::new()?,
            endpoints: tokio::sync::OnceCell::new(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The IdP's endpoints, discovered on first use (and again after a failed discovery). The
    /// discovery document must name this issuer exactly, and its endpoints must be absolute
    /// http(s) URLs, https if the issuer is.
    pub async fn endpoints(&self) -> Result<IdpEndpoints, BrokerError> {
        Ok(self.resolved().await?.public.clone())
    }

    async fn resolved(&self) -> Result<&Resolved, BrokerError> {
        let inner = &*self.inner;
        inner
            .endpoints
            .get_or_try_init(|| async {
                let doc: Discovery = inner.fetcher.get_json(&inner.discovery_url).await?;
                let resolved = resolve(doc, &inner.issuer, inner.https_only)?;
                tracing::debug!(issuer = %inner.issuer, "discovered the identity provider's endpoints");
                Ok(resolved)
            })
            .await
    }

    /// Starts a device authorization (RFC 8628 §3.1) for `scope`.
    #[tracing::instrument(skip_all, fields(issuer = %self.inner.issuer))]
    pub async fn start_device(&self, scope: &str) -> Result<DeviceAuthorization, BrokerError> {
        let resolved = self.resolved().await?;
        let Some(url) = &resolved.device else {
            return Err(BrokerError::Unsupported("the device authorization grant"));
        };
        let started: DeviceAuthorization = self.call(url, &[("scope", scope)]).await?;
        if started.device_code.is_empty() || started.user_code.is_empty() {
            return Err(FetchError::Unusable {
                url: url.clone(),
                what: "an empty device or user code",
            }
            .into());
        }
        if started.verification_uri.is_empty() {
            return Err(
                FetchError::Unusable { url: url.clone(), what: "no verification uri" }.into()
            );
        }
        Ok(started)
    }

    /// Polls for the tokens of a device authorization (RFC 8628 §3.4). Until the person
    /// approves, this is [`BrokerError::AuthorizationPending`] (or [`BrokerError::SlowDown`]).
    #[tracing::instrument(skip_all, fields(issuer = %self.inner.issuer))]
    pub async fn poll_device(&self, device_code: &str) -> Result<TokenSet, BrokerError> {
        let pairs = [("grant_type", DEVICE_CODE_GRANT), ("device_code", device_code)];
        self.token(&pairs).await
    }

    /// Where to send a browser to sign in (RFC 6749 §4.1.1), with PKCE `S256` (the caller
    /// passes a valid challenge), an OIDC `nonce`, and `prompt=consent` (which many IdPs
    /// require before they issue a refresh token for `offline_access`).
    pub async fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        code_challenge: &str,
        scope: &str,
        nonce: &str,
    ) -> Result<String, BrokerError> {
        let resolved = self.resolved().await?;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.inner.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("prompt", "consent")
            .finish();
        Ok(with_query(&resolved.public.authorization_endpoint, &query))
    }

    /// Exchanges an authorization code (RFC 6749 §4.1.3) with its PKCE verifier.
    #[tracing::instrument(skip_all, fields(issuer = %self.inner.issuer))]
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Result<TokenSet, BrokerError> {
        let pairs = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ];
        self.token(&pairs).await
    }

    /// Refreshes (RFC 6749 §6). [`BrokerError::InvalidGrant`] means the IdP ended the sign-in.
    #[tracing::instrument(skip_all, fields(issuer = %self.inner.issuer))]
    pub async fn refresh(
        &self,
        refresh_token: &SecretString,
        scope: Option<&str>,
    ) -> Result<TokenSet, BrokerError> {
        let mut pairs =
            vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())];
        if let Some(scope) = scope {
            pairs.push(("scope", scope));
        }
        self.token(&pairs).await
    }

    /// Revokes a refresh token (RFC 7009); the IdP answers success for unknown tokens too.
    #[tracing::instrument(skip_all, fields(issuer = %self.inner.issuer))]
    pub async fn revoke(&self, token: &SecretString) -> Result<(), BrokerError> {
        let resolved = self.resolved().await?;
        let Some(url) = &resolved.revocation else {
            return Err(BrokerError::Unsupported("token revocation"));
        };
        let pairs = [("token", token.expose_secret()), ("token_type_hint", "refresh_token")];
        let (status, body) = self.post(url, &pairs).await?;
        if let Some(err) = oauth_error(status, &body) {
            return Err(err);
        }
        if !status.is_success() {
            return Err(FetchError::Status { url: url.clone(), status }.into());
        }
        Ok(())
    }

    /// A request to the token endpoint.
    async fn token(&self, pairs: &[(&str, &str)]) -> Result<TokenSet, BrokerError> {
        let url = &self.resolved().await?.token;
        let response: TokenResponse = self.call(url, pairs).await?;
        if response.access_token.is_empty() {
            return Err(
                FetchError::Unusable { url: url.clone(), what: "an empty access token" }.into()
            );
        }
        let secret =
            |s: String| Some(SecretString::from(s)).filter(|s| !s.expose_secret().is_empty());
        Ok(TokenSet {
            access_token: SecretString::from(response.access_token),
            refresh_token: response.refresh_token.and_then(secret),
            id_token: response.id_token.and_then(secret),
            expires_in: response.expires_in,
        })
    }

    /// POSTs `pairs` and parses a successful answer as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        url: &Uri,
        pairs: &[(&str, &str)],
    ) -> Result<T, BrokerError> {
        let (status, body) = self.post(url, pairs).await?;
        if let Some(err) = oauth_error(status, &body) {
            return Err(err);
        }
        if !status.is_success() {
            return Err(FetchError::Status { url: url.clone(), status }.into());
        }
        serde_json::from_slice(&body)
            .map_err(|source| FetchError::Json { url: url.clone(), source }.into())
    }

    /// POSTs `pairs` with the client's authentication.
    async fn post(
        &self,
        url: &Uri,
        pairs: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes), BrokerError> {
        // Built before the await: the serializer holds a `dyn Fn` that is not `Sync`, and the
        // future must stay `Send`.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(pairs);
            if self.inner.basic.is_none() {
                form.append_pair("client_id", &self.inner.client_id);
            }
            form.finish()
        };
        Ok(self.inner.fetcher.post_form(url, self.inner.basic.clone(), body).await?)
    }
}

impl std::fmt::Debug for IdpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpClient")
            .field("issuer", &self.inner.issuer)
            .field("client_id", &self.inner.client_id)
            .field("confidential", &self.inner.basic.is_some())
            .finish_non_exhaustive()
    }
}

/// `client_secret_basic` (RFC 6749 §2.3.1): id and secret form-urlencoded, joined by `:`,
/// base64. Marked sensitive so that HTTP tooling does not print it.
fn basic_authorization(client_id: &str, secret: &str) -> Result<HeaderValue, Error> {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = format!("{}:{}", encode(client_id), encode(secret));
    let mut value = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(credentials)))
        .map_err(|_| Error::ClientCredentials)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Checks a discovery document against the configured issuer and validates its endpoints.
fn resolve(doc: Discovery, issuer: &str, https_only: bool) -> Result<Resolved, BrokerError> {
    if doc.issuer != issuer {
        let mismatch =
            FetchError::IssuerMismatch { found: doc.issuer, expected: issuer.to_owned() };
        return Err(mismatch.into());
    }
    let required = |name: &'static str, raw: &str| {
        endpoint_url(raw, https_only)
            .ok_or_else(|| BrokerError::from(FetchError::Endpoint { name, uri: raw.to_owned() }))
    };
    let optional =
        |name: &'static str, raw: Option<&str>| raw.map(|raw| required(name, raw)).transpose();
    required("authorization_endpoint", &doc.authorization_endpoint)?;
    let token = required("token_endpoint", &doc.token_endpoint)?;
    let device =
        optional("device_authorization_endpoint", doc.device_authorization_endpoint.as_deref())?;
    let revocation = optional("revocation_endpoint", doc.revocation_endpoint.as_deref())?;
    Ok(Resolved {
        public: IdpEndpoints {
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            device_authorization_endpoint: doc.device_authorization_endpoint,
            revocation_endpoint: doc.revocation_endpoint,
        },
        token,
        device,
        revocation,
    })
}

/// `endpoint` with `query` appended, after the endpoint's own query if it has one (RFC 6749
/// §3.1: it must be kept).
fn with_query(endpoint: &str, query: &str) -> String {
    let separator = match endpoint.find('?') {
        None => "?",
        Some(_) if endpoint.ends_with(['?', '&']) => "",
        Some(_) => "&",
    };
    format!("{endpoint}{separator}{query}")
}

/// The OAuth error in an answer, if it is one: a JSON object with a string `error`, in a 4xx
/// answer (RFC 6749 §5.2 says 400 or 401; Google answers device-flow polls with 428 and 403)
/// or in a 200 one (as some IdPs answer device-flow polls).
fn oauth_error(status: StatusCode, body: &[u8]) -> Option<BrokerError> {
    let may_be_error = status.is_success() || status.is_client_error();
    if !may_be_error {
        return None;
    }
    let response: ErrorResponse = serde_json::from_slice(body).ok()?;
    let error = error_code(&response.error?);
    let description = response.error_description.as_deref().and_then(description);
    Some(match error.as_str() {
        "authorization_pending" => BrokerError::AuthorizationPending,
        "slow_down" => BrokerError::SlowDown,
        "expired_token" => BrokerError::ExpiredToken,
        "access_denied" => BrokerError::AccessDenied,
        "invalid_grant" => BrokerError::InvalidGrant { description },
        _ => BrokerError::Rejected { error, description },
    })
}

/// An IdP's `error` code made safe to log and show: ASCII lowercase, only `[a-z_]`, at most 64
/// characters; `unknown_error` if nothing is left.
fn error_code(raw: &str) -> String {
    let code: String = raw
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_lowercase() || *c == '_')
        .take(MAX_ERROR_CODE_LEN)
        .collect();
    if code.is_empty() {
        "unknown_error".into()
    } else {
        code
    }
}

/// An IdP's `error_description` made safe to log and show: no control characters (no forged
/// log lines), trimmed, at most 300 characters; `None` if nothing is left.
fn description(raw: &str) -> Option<String> {
    let shown: String = raw.chars().filter(|c| !c.is_control()).take(MAX_DESCRIPTION_LEN).collect();
    let shown = shown.trim();
    (!shown.is_empty()).then(|| shown.to_owned())
}

/// Seconds as a JSON number, or as a string of digits (as some IdPs send `expires_in`).
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    optional_seconds(deserializer)?
        .ok_or_else(|| serde::de::Error::custom("expected a number of seconds"))
}

/// Like [`seconds`], also accepting `null`.
fn optional_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let invalid = || serde::de::Error::custom("expected a number of seconds");
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(n) => Ok(Some(n)),
            // 3600.0: whole, non-negative floats are accepted too.
            None => n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f <= u64::MAX as f64)
                .map(|f| Some(f as u64))
                .ok_or_else(invalid),
        },
        serde_json::Value::String(s) => s.trim().parse().map(Some).map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

/// The client's futures are `Send`: the server runs them on a multi-threaded runtime. (A
/// compile-time check.)
#[cfg(test)]
#[allow(dead_code)]
fn futures_are_send(client: &IdpClient, token: &SecretString) {
    fn send<T: Send>(_: T) {}
    send(client.start_device(""));
    send(client.poll_device(""));
    send(client.exchange_code("", "", ""));
    send(client.refresh(token, None));
    send(client.revoke(token));
    send(client.authorization_url("", "", "", "", ""));
}
