//! The client side of the server's sign-in endpoints under `/auth` (OAuth-shaped: RFC 6749,
//! RFC 8628 device flow, RFC 7636 PKCE, RFC 7009 revocation, plus setup-key enrollment).
//!
//! An endpoint's answer is either its value or an [`OAuthError`] (`authorization_pending`,
//! `invalid_grant`, …), which callers match on; a transport failure, or an answer that is
//! neither, is an `anyhow` error that says what to check.

use anyhow::{bail, Context};
use api_types::{DeviceAuthorization, EnrollRequest, OAuthError, TokenResponse};
use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::remote::{error_message, status_text, Body, Remote, Reply};

/// What an OAuth endpoint answered: its value, or its error.
pub(crate) type Answer<T> = Result<T, OAuthError>;

/// A grant exchanged at `POST /auth/token`.
pub(crate) enum Grant<'a> {
    DeviceCode(&'a str),
    AuthorizationCode { code: &'a str, verifier: &'a str, redirect_uri: &'a str },
    RefreshToken(&'a str),
}

fn path(endpoint: &str) -> String {
    format!("{}{endpoint}", api_types::AUTH_PREFIX)
}

/// `POST /auth/device`: starts a device flow; `client` labels this device in session lists.
pub(crate) async fn start_device(
    remote: &Remote,
    client: Option<&str>,
) -> anyhow::Result<Answer<DeviceAuthorization>> {
    let fields: Vec<(&str, &str)> = client.map(|c| ("client", c)).into_iter().collect();
    let path = path("/device");
    decode(remote, &path, remote.post_form(&path, &fields).await?)
}

/// `POST /auth/token`.
pub(crate) async fn token(
    remote: &Remote,
    grant: Grant<'_>,
) -> anyhow::Result<Answer<TokenResponse>> {
    let fields: Vec<(&str, &str)> = match grant {
        Grant::DeviceCode(code) => {
            vec![("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", code)]
        }
        Grant::AuthorizationCode { code, verifier, redirect_uri } => vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ],
        Grant::RefreshToken(token) => {
            vec![("grant_type", "refresh_token"), ("refresh_token", token)]
        }
    };
    let path = path("/token");
    decode(remote, &path, remote.post_form(&path, &fields).await?)
}

/// `POST /auth/revoke` (RFC 7009): ends the session the refresh token belongs to.
pub(crate) async fn revoke(remote: &Remote, refresh_token: &str) -> anyhow::Result<()> {
    let path = path("/revoke");
    let reply = remote.post_form(&path, &[("token", refresh_token)]).await?;
    if reply.status.is_success() {
        return Ok(());
    }
    match decode::<serde_json::Value>(remote, &path, reply)? {
        Ok(_) => Ok(()),
        Err(err) => bail!("the server refused: {}", describe(&err)),
    }
}

/// `POST /auth/enroll`: trades a setup key for an agent's session.
pub(crate) async fn enroll(
    remote: &Remote,
    request: &EnrollRequest,
) -> anyhow::Result<Answer<TokenResponse>> {
    let path = path("/enroll");
    let body = serde_json::to_vec(request).context("cannot encode the enrollment")?;
    let reply = remote.send(Method::POST, &path, None, Body::Json(body)).await?;
    decode(remote, &path, reply)
}

/// An OAuth error as a person reads it: its description, else its code.
pub(crate) fn describe(err: &OAuthError) -> String {
    match err.error_description.as_deref().filter(|d| !d.is_empty()) {
        Some(description) => format!("{description} ({})", err.error),
        None => err.error.clone(),
    }
}

/// A 2xx answer as `T`, an RFC 6749 error body as the error; anything else fails.
fn decode<T: DeserializeOwned>(
    remote: &Remote,
    path: &str,
    reply: Reply,
) -> anyhow::Result<Answer<T>> {
    if reply.status.is_success() {
        let value = serde_json::from_slice(&reply.bytes)
            .context("the server's answer is not what this agentnet version expects")?;
        return Ok(Ok(value));
    }
    if let Ok(err) = serde_json::from_slice::<OAuthError>(&reply.bytes) {
        return Ok(Err(err));
    }
    if reply.status == StatusCode::NOT_FOUND {
        bail!(
            "{}{path} was not found: --server should be the gateway's admin listener (port 4001 by default), not its AI endpoint",
            remote.base()
        );
    }
    let message = error_message(&reply.bytes).unwrap_or_else(|| {
        String::from_utf8_lossy(&reply.bytes).trim().chars().take(300).collect()
    });
    bail!("the server answered {}: {message}", status_text(reply.status))
}
