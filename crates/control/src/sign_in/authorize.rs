//! Auth code + PKCE for a CLI (`agentnet login --browser`): the CLI opens
//! `GET /auth/authorize` in a browser with its loopback redirect (RFC 8252 §7.3) and PKCE
//! challenge; the person signs in (at the IdP, which comes back to `GET /auth/callback`, or on
//! our local form, `POST /auth/authorize`); the browser is sent to the CLI's loopback address
//! with a one-time code that `POST /auth/token` exchanges, given the PKCE verifier.
//!
//! Only loopback redirects are accepted, so a code can only ever reach a program on the
//! person's own machine, and only the program that made the challenge can redeem it.

use std::time::{Duration, Instant};

use axum::{
    body::Bytes,
    extract::{Query, State},
    response::{IntoResponse, Redirect, Response},
};
use http::{StatusCode, Uri};
use identity::{issue_token, new_verifier, s256_challenge, TokenKind};
use secrecy::ExposeSecret;
use serde::Deserialize;
use store::SessionSource;

use super::{
    device::broker_failure,
    oauth::{client_label, form},
    pages,
    pending::{BrowserFlow, IssuedCode, Vouched},
    SignInState,
};

/// How long an issued authorization code may wait for its exchange.
const CODE_TTL: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
pub(crate) struct AuthorizeQuery {
    #[serde(default)]
    response_type: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    code_challenge: Option<String>,
    #[serde(default)]
    code_challenge_method: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    client: Option<String>,
}

/// `GET /auth/authorize`.
pub(crate) async fn start(
    State(state): State<SignInState>,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    // Until the redirect URI is known to be a loopback one, errors are shown, not redirected
    // (RFC 6749 §4.1.2.1).
    let Some(redirect_uri) = query.redirect_uri.as_deref().filter(|r| is_loopback_redirect(r))
    else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            "The sign-in link has no valid redirect_uri: it must be http://127.0.0.1:PORT/…, http://[::1]:PORT/… or http://localhost:PORT/…",
        );
    };
    let client_state = query.state.clone().unwrap_or_default();
    let refuse = |error: &str, description: &str| {
        redirect_with(
            redirect_uri,
            &[("error", error), ("error_description", description), ("state", &client_state)],
        )
    };
    if query.response_type.as_deref() != Some("code") {
        return refuse("unsupported_response_type", "response_type must be code");
    }
    if query.code_challenge_method.as_deref() != Some("S256") {
        return refuse("invalid_request", "code_challenge_method must be S256");
    }
    let Some(challenge) = query.code_challenge.clone().filter(|c| identity::is_valid_challenge(c))
    else {
        return refuse("invalid_request", "code_challenge is missing or malformed");
    };
    if client_state.len() > 512 {
        return refuse("invalid_request", "state is longer than 512 characters");
    }
    let Ok(flow_id) = issue_token(TokenKind::AuthCode) else {
        return refuse("server_error", "the server could not generate a random value");
    };
    let flow_id = flow_id.secret.expose_secret().to_owned();
    let settings = state.settings();
    let mut flow = BrowserFlow {
        redirect_uri: redirect_uri.to_owned(),
        state: client_state.clone(),
        challenge,
        client: client_label(query.client.as_deref()),
        expires_at: Instant::now() + settings.pending_ttl,
        idp_verifier: None,
        failures: 0,
    };
    let broker = match state.broker() {
        Ok(broker) => broker,
        Err(failure) => return refuse(failure.error(), failure.description()),
    };
    let next = match broker {
        None => None,
        Some((broker, _)) => {
            let Ok(verifier) = new_verifier() else {
                return refuse("server_error", "the server could not generate a random value");
            };
            let callback = callback_url(&state);
            let url = broker
                .client
                .authorization_url(
                    &callback,
                    &flow_id,
                    &s256_challenge(&verifier),
                    &broker.scope,
                    &flow_id,
                )
                .await;
            flow.idp_verifier = Some(verifier);
            match url {
                Ok(url) => Some(url),
                Err(err) => {
                    let failure = broker_failure(err);
                    return refuse(failure.error(), failure.description());
                }
            }
        }
    };
    let client = flow.client.clone();
    if state.pending().add_browser(flow_id.clone(), flow).is_err() {
        return refuse(
            "temporarily_unavailable",
            "too many sign-ins are pending; try again in a minute",
        );
    }
    match next {
        Some(url) => Redirect::to(&url).into_response(),
        None => pages::sign_in(&flow_id, client.as_deref(), None),
    }
}

fn callback_url(state: &SignInState) -> String {
    format!("{}{}/callback", state.settings().public_url, api_types::AUTH_PREFIX)
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    flow: Option<String>,
    #[serde(default)]
    login: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `POST /auth/authorize`: the local sign-in form.
pub(crate) async fn local_sign_in(State(state): State<SignInState>, body: Bytes) -> Response {
    if let Some(page) = state.local_only() {
        return page;
    }
    let Ok(input) = form::<SignInForm>(&body) else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            "The form was incomplete; start again.",
        );
    };
    let flow_id = input.flow.unwrap_or_default();
    let Some(client) = state.pending().browser_client(&flow_id) else {
        return expired_page();
    };
    let login = input.login.unwrap_or_default();
    let admitted = match state.sign_in_local(&login, &input.password.unwrap_or_default()).await {
        Ok(principal) => principal,
        Err(page) => return page,
    };
    let Some(principal) = admitted else {
        if let Some((redirect_uri, client_state)) = state.pending().browser_failed(&flow_id) {
            return redirect_with(
                &redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "too many failed sign-in attempts"),
                    ("state", &client_state),
                ],
            );
        }
        return pages::sign_in(&flow_id, client.as_deref(), Some("Wrong login or password."));
    };
    let Some(flow) = state.pending().take_browser(&flow_id) else { return expired_page() };
    let who = Vouched {
        groups: principal.groups.clone(),
        principal,
        source: SessionSource::Local,
        idp_refresh: None,
    };
    finish(&state, flow, who)
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// `GET /auth/callback`: the external IdP sends the browser back here.
pub(crate) async fn callback(
    State(state): State<SignInState>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Ok(Some((broker, verifier))) = state.broker() else {
        return pages::message(
            StatusCode::NOT_FOUND,
            "Not here",
            "This server does not sign people in through an identity provider.",
        );
    };
    let idp = &broker.client;
    let Some(flow) = query.state.as_deref().and_then(|id| state.pending().take_browser(id)) else {
        return expired_page();
    };
    let client_state = flow.state.clone();
    let refuse = |error: &str, description: &str| {
        redirect_with(
            &flow.redirect_uri,
            &[("error", error), ("error_description", description), ("state", &client_state)],
        )
    };
    if let Some(error) = &query.error {
        let error: String =
            error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
        let description: String = query
            .error_description
            .clone()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        tracing::info!(%error, %description, "the identity provider ended a browser sign-in with an error");
        return refuse(&error, &description);
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return refuse("invalid_request", "the identity provider returned no code");
    };
    let Some(idp_verifier) = flow.idp_verifier.as_deref() else {
        return refuse("server_error", "the sign-in was not started with the identity provider");
    };
    let tokens = match idp.exchange_code(code, &callback_url(&state), idp_verifier).await {
        Ok(tokens) => tokens,
        Err(err) => {
            let failure = broker_failure(err);
            return refuse(failure.error(), failure.description());
        }
    };
    // The flow id was sent as the ID token's nonce too.
    let nonce = query.state.as_deref();
    let who = match super::token::vouch_external(&state, broker, verifier, &tokens, nonce).await {
        Ok(who) => who,
        Err(failure) => return refuse(failure.error(), failure.description()),
    };
    finish(&state, flow, who)
}

/// Issues the one-time code for the CLI and sends the browser back to it.
fn finish(state: &SignInState, flow: BrowserFlow, who: Vouched) -> Response {
    let Ok(code) = issue_token(TokenKind::AuthCode) else {
        return redirect_with(
            &flow.redirect_uri,
            &[
                ("error", "server_error"),
                ("error_description", "the server could not generate a random value"),
                ("state", &flow.state),
            ],
        );
    };
    let issued = IssuedCode {
        vouched: who,
        redirect_uri: flow.redirect_uri.clone(),
        challenge: flow.challenge,
        client: flow.client,
        expires_at: Instant::now() + CODE_TTL,
    };
    if state.pending().add_code(code.digest, issued).is_err() {
        return redirect_with(
            &flow.redirect_uri,
            &[
                ("error", "temporarily_unavailable"),
                ("error_description", "too many sign-ins are pending; try again in a minute"),
                ("state", &flow.state),
            ],
        );
    }
    redirect_with(
        &flow.redirect_uri,
        &[("code", code.secret.expose_secret()), ("state", &flow.state)],
    )
}

fn expired_page() -> Response {
    pages::message(
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in is unknown or has expired. Start again from your terminal (agentnet login --browser).",
    )
}

/// A 303 to `uri` with `params` added to its query.
fn redirect_with(uri: &str, params: &[(&str, &str)]) -> Response {
    let params: Vec<(&str, &str)> = params.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    let query = serde_urlencoded::to_string(&params).unwrap_or_default();
    let separator = if uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{uri}{separator}{query}")).into_response()
}

/// Whether `uri` is a loopback redirect a native app may use (RFC 8252 §7.3, §8.3): plain http
/// to 127.0.0.1, [::1] or localhost, with a port, no fragment, and the path `/callback` that
/// agentnet's CLI listens on (so the code can reach nothing else on the machine).
pub(crate) fn is_loopback_redirect(uri: &str) -> bool {
    if uri.len() > 2048 || uri.contains('#') {
        return false;
    }
    let Ok(parsed) = uri.parse::<Uri>() else { return false };
    parsed.scheme_str() == Some("http")
        && parsed.port_u16().is_some()
        && parsed.path() == "/callback"
        && matches!(parsed.host(), Some("127.0.0.1" | "[::1]" | "localhost"))
        && parsed.authority().is_some_and(|a| !a.as_str().contains('@'))
}
