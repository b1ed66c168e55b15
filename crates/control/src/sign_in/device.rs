//! The device authorization grant (RFC 8628): `POST /auth/device` starts it; with local accounts
//! the person approves it on `/auth/activate` by signing in, with an external IdP on the IdP's
//! own page. Polling is `POST /auth/token` (in `token`).

use std::time::Instant;

use api_types::DeviceAuthorization;
use axum::{
    body::Bytes,
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use http::StatusCode;
use identity::{issue_token, new_user_code, normalize_user_code, BrokerError, TokenKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use store::SessionSource;

use super::{
    oauth::{client_label, form, no_store_json, Failure},
    pages,
    pending::{DeviceFlow, DeviceWait, Vouched, MAX_FAILED_PASSWORDS},
    SignInState,
};

#[derive(Deserialize)]
pub(crate) struct StartForm {
    #[serde(default)]
    client: Option<String>,
    /// Accepted and ignored: there is one client, the agentnet CLI.
    #[serde(default, rename = "client_id")]
    _client_id: Option<String>,
    #[serde(default, rename = "scope")]
    _scope: Option<String>,
}

/// `POST /auth/device`.
pub(crate) async fn start(State(state): State<SignInState>, body: Bytes) -> Response {
    match start_flow(&state, &body).await {
        Ok(answer) => no_store_json(StatusCode::OK, &answer),
        Err(failure) => failure.into_response(),
    }
}

async fn start_flow(state: &SignInState, body: &Bytes) -> Result<DeviceAuthorization, Failure> {
    let input: StartForm = form(body)?;
    let client = client_label(input.client.as_deref());
    let device_code = issue_token(TokenKind::DeviceCode)?;
    let settings = state.settings();
    let (flow, answer) = match state.broker()? {
        None => {
            let user_code = new_user_code()?;
            let base = format!("{}{}/activate", settings.public_url, api_types::AUTH_PREFIX);
            let answer = DeviceAuthorization {
                device_code: device_code.secret.expose_secret().to_owned(),
                verification_uri_complete: Some(format!("{base}?user_code={user_code}")),
                verification_uri: base,
                user_code: user_code.clone(),
                expires_in: settings.pending_ttl.as_secs(),
                interval: settings.device_interval.as_secs().max(1),
            };
            let flow = DeviceFlow {
                user_code,
                client,
                expires_at: Instant::now() + settings.pending_ttl,
                interval: settings.device_interval,
                last_poll: None,
                wait: DeviceWait::Local { approved: None, denied: false, failures: 0 },
            };
            (flow, answer)
        }
        Some((broker, _)) => {
            let started =
                broker.client.start_device(&broker.scope).await.map_err(broker_failure)?;
            let ttl = std::time::Duration::from_secs(started.expires_in.clamp(1, 3600));
            let interval = std::time::Duration::from_secs(started.interval.clamp(1, 60));
            let answer = DeviceAuthorization {
                device_code: device_code.secret.expose_secret().to_owned(),
                user_code: started.user_code.clone(),
                verification_uri: started.verification_uri.clone(),
                verification_uri_complete: started.verification_uri_complete.clone(),
                expires_in: ttl.as_secs(),
                interval: interval.as_secs(),
            };
            let flow = DeviceFlow {
                user_code: started.user_code.clone(),
                client,
                expires_at: Instant::now() + ttl,
                interval,
                last_poll: None,
                wait: DeviceWait::External {
                    idp_device_code: SecretString::from(started.device_code.clone()),
                },
            };
            (flow, answer)
        }
    };
    state.pending().add_device(device_code.digest, flow).map_err(|_| {
        Failure::unavailable("too many sign-ins are pending; try again in a minute")
    })?;
    Ok(answer)
}

/// An IdP failure while starting or polling, as our client should see it.
pub(crate) fn broker_failure(err: BrokerError) -> Failure {
    match err {
        BrokerError::AuthorizationPending => Failure::new(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "waiting for the person to approve the sign-in",
        ),
        BrokerError::SlowDown => {
            Failure::new(StatusCode::BAD_REQUEST, "slow_down", "polling too fast; wait longer")
        }
        BrokerError::ExpiredToken => Failure::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "the code expired before it was approved; start the sign-in again",
        ),
        BrokerError::AccessDenied => {
            Failure::access_denied("the sign-in was denied at the identity provider")
        }
        BrokerError::InvalidGrant { description } => Failure::invalid_grant(format!(
            "the identity provider refused the grant{}",
            description.map(|d| format!(": {d}")).unwrap_or_default()
        )),
        BrokerError::Rejected { error, description } => {
            tracing::warn!(%error, description = description.as_deref().unwrap_or(""), "the identity provider refused a sign-in request");
            Failure::new(
                StatusCode::BAD_GATEWAY,
                "server_error",
                format!(
                    "the identity provider refused the request ({error}{}); check the server's [oidc] client settings",
                    description.map(|d| format!(": {d}")).unwrap_or_default()
                ),
            )
        }
        BrokerError::Unsupported(what) => Failure::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("the identity provider does not support {what}"),
        ),
        err @ BrokerError::Unavailable(..) => {
            tracing::warn!(error = %crate::error::chain(&err), "identity provider unavailable during sign-in");
            Failure::unavailable("the identity provider is unreachable; try again shortly")
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ActivateQuery {
    #[serde(default)]
    user_code: Option<String>,
}

/// `GET /auth/activate`: the page where a person approves a device sign-in (local accounts).
pub(crate) async fn activate_page(
    State(state): State<SignInState>,
    Query(query): Query<ActivateQuery>,
) -> Response {
    if let Some(page) = state.local_only() {
        return page;
    }
    let code = query.user_code.as_deref().and_then(normalize_user_code);
    pages::activate(code.as_deref(), None)
}

#[derive(Deserialize)]
pub(crate) struct ActivateForm {
    #[serde(default)]
    user_code: Option<String>,
    #[serde(default)]
    login: Option<String>,
    #[serde(default)]
    password: Option<String>,
    /// `approve` or `deny`.
    #[serde(default)]
    action: Option<String>,
}

/// `POST /auth/activate`: the person signs in with their local account to approve (or denies)
/// the device sign-in with that user code.
pub(crate) async fn activate(State(state): State<SignInState>, body: Bytes) -> Response {
    if let Some(page) = state.local_only() {
        return page;
    }
    let Ok(input) = form::<ActivateForm>(&body) else {
        return pages::activate(None, Some("The form was incomplete; try again."));
    };
    let Some(code) = input.user_code.as_deref().and_then(normalize_user_code) else {
        return pages::activate(None, Some("That code is not valid; check it and try again."));
    };
    let known = state.pending().with_user_code(&code, |flow| flow.is_some());
    if !known {
        return pages::activate(
            None,
            Some("That code is unknown or has expired; start the sign-in again (agentnet login)."),
        );
    }
    if input.action.as_deref() == Some("deny") {
        state.pending().with_user_code(&code, |flow| {
            if let Some(DeviceFlow { wait: DeviceWait::Local { denied, .. }, .. }) = flow {
                *denied = true;
            }
        });
        return pages::message(
            StatusCode::OK,
            "Sign-in denied",
            "The device was not signed in. You can close this page.",
        );
    }
    let login = input.login.unwrap_or_default();
    let password = input.password.unwrap_or_default();
    let admitted = match state.sign_in_local(&login, &password).await {
        Ok(principal) => principal.map(|principal| Vouched {
            groups: principal.groups.clone(),
            principal,
            source: SessionSource::Local,
            idp_refresh: None,
        }),
        Err(page) => return page,
    };
    let outcome = state.pending().with_user_code(&code, |flow| {
        let Some(DeviceFlow { wait: DeviceWait::Local { approved, denied, failures }, .. }) = flow
        else {
            return Err("That code is unknown or has expired; start the sign-in again.");
        };
        if *denied || approved.is_some() {
            return Err("That code was already used; start the sign-in again.");
        }
        match admitted {
            Some(who) => {
                let name = who.principal.name.clone();
                *approved = Some(who);
                Ok(name)
            }
            None => {
                *failures += 1;
                if *failures >= MAX_FAILED_PASSWORDS {
                    *denied = true;
                    Err("Too many failed attempts: this sign-in is refused. Start again.")
                } else {
                    Err("")
                }
            }
        }
    });
    match outcome {
        Ok(name) => pages::message(
            StatusCode::OK,
            "Device signed in",
            &format!("Signed in as {name}. You can close this page and return to your terminal."),
        ),
        Err("") => pages::activate(Some(&code), Some("Wrong login or password.")),
        Err(message) => pages::message(StatusCode::BAD_REQUEST, "Sign-in not completed", message),
    }
}
