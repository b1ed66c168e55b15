//! `agentnet login --browser`: auth code + PKCE (RFC 7636, S256) with a loopback redirect
//! (RFC 8252 §7.3). The CLI listens on `127.0.0.1:<ephemeral port>`, opens the server's
//! `/auth/authorize` page in a browser, and takes the first request to `/callback`: its `state`
//! must be the random one this sign-in sent, and its code is exchanged, with the verifier only
//! this process knows, at `POST /auth/token`.

use std::{
    convert::Infallible,
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use anyhow::{anyhow, bail, Context};
use api_types::TokenResponse;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    body::Incoming, header, server::conn::http1, service::service_fn, Method, Request, Response,
    StatusCode,
};
use hyper_util::rt::TokioIo;
use ring::rand::SecureRandom;
use tokio::{net::TcpListener, sync::mpsc};

use super::{open, Hooks, TIMEOUT};
use crate::{
    auth::{self, Grant},
    remote::Remote,
};

/// The PKCE pair: the secret verifier and the challenge sent ahead.
pub(crate) struct Pkce {
    pub(crate) verifier: String,
    pub(crate) challenge: String,
}

impl Pkce {
    /// A verifier of 32 random bytes from the OS (43 base64url characters) and its S256
    /// challenge.
    pub(crate) fn new() -> anyhow::Result<Self> {
        let verifier = random_b64(32)?;
        let challenge = s256(&verifier);
        Ok(Self { verifier, challenge })
    }
}

/// `BASE64URL(SHA256(verifier))`, unpadded.
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
}

/// `len` random bytes from the OS, base64url without padding.
fn random_b64(len: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; len];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow!("cannot get random bytes from the operating system"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

pub(super) async fn sign_in(
    remote: &Remote,
    client: Option<&str>,
    open_browser: bool,
    hooks: &Hooks,
) -> anyhow::Result<TokenResponse> {
    let pkce = Pkce::new()?;
    let state = random_b64(16)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("cannot listen on a loopback port for the browser's answer")?;
    let port = listener.local_addr().context("cannot read the loopback port")?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let url = authorize_url(remote, &redirect_uri, &pkce.challenge, &state, client);
    hooks.ui.say("To sign in, open this link in a browser on this machine:");
    hooks.ui.say(&format!("  {url}"));
    open(hooks, &url, open_browser);
    hooks.ui.status("waiting for the browser…", true);
    let received = tokio::time::timeout(TIMEOUT, receive(listener, state)).await;
    hooks.ui.clear_status();
    let code = match received {
        Ok(outcome) => outcome?,
        Err(_) => bail!(
            "no answer from the browser within {} minutes; run `agentnet login --browser` again",
            TIMEOUT.as_secs() / 60
        ),
    };
    let grant = Grant::AuthorizationCode {
        code: &code,
        verifier: &pkce.verifier,
        redirect_uri: &redirect_uri,
    };
    match auth::token(remote, grant).await? {
        Ok(tokens) => Ok(tokens),
        Err(err) => bail!("the server did not accept the sign-in: {}", auth::describe(&err)),
    }
}

/// The server's sign-in page for this flow.
pub(crate) fn authorize_url(
    remote: &Remote,
    redirect_uri: &str,
    challenge: &str,
    state: &str,
    client: Option<&str>,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", state);
    if let Some(client) = client {
        query.append_pair("client", client);
    }
    format!("{}{}/authorize?{}", remote.base(), api_types::AUTH_PREFIX, query.finish())
}

/// Serves the loopback address until the first `/callback` request; returns its code, or why
/// it carries none.
pub(crate) async fn receive(listener: TcpListener, state: String) -> anyhow::Result<String> {
    let (tx, mut rx) = mpsc::channel::<Result<String, String>>(1);
    let state: Arc<str> = Arc::from(state);
    let taken = Arc::new(AtomicBool::new(false));
    let accept = async {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => return err,
            };
            let (state, taken, tx) = (state.clone(), taken.clone(), tx.clone());
            // One task per connection: a browser may open connections it never uses.
            tokio::spawn(async move {
                let outcome: Arc<Mutex<Option<Result<String, String>>>> = Arc::default();
                let slot = outcome.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let response = respond(&request, &state, &taken, &slot);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                // Only now, with the page sent, does the sign-in go on (and may end the process).
                let outcome = outcome.lock().ok().and_then(|mut o| o.take());
                if let Some(outcome) = outcome {
                    let _ = tx.send(outcome).await;
                }
            });
        }
    };
    tokio::select! {
        outcome = rx.recv() => match outcome {
            Some(Ok(code)) => Ok(code),
            Some(Err(why)) => Err(anyhow!(why)),
            None => bail!("the loopback listener stopped"),
        },
        err = accept => Err(anyhow::Error::new(err).context("the loopback listener failed")),
    }
}

/// The answer to one request on the loopback address; a `/callback` request, the first one
/// only, also leaves its outcome in `slot`.
fn respond(
    request: &Request<Incoming>,
    state: &str,
    taken: &AtomicBool,
    slot: &Mutex<Option<Result<String, String>>>,
) -> Response<Full<Bytes>> {
    if request.uri().path() != "/callback" {
        return page(StatusCode::NOT_FOUND, "Not found", "This is agentnet's sign-in receiver.");
    }
    if request.method() != Method::GET {
        return page(StatusCode::METHOD_NOT_ALLOWED, "Not allowed", "Only GET is answered here.");
    }
    if taken.swap(true, Ordering::SeqCst) {
        return page(
            StatusCode::CONFLICT,
            "Already answered",
            "This sign-in is already finished; you can close this tab.",
        );
    }
    let outcome = callback_outcome(request.uri().query().unwrap_or_default(), state);
    let response = match &outcome {
        Ok(_) => {
            page(StatusCode::OK, "Signed in", "Signed in to agentnet; you can close this tab.")
        }
        Err(why) => page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            &format!("agentnet could not sign you in: {why}. You can close this tab."),
        ),
    };
    if let Ok(mut slot) = slot.lock() {
        *slot = Some(outcome);
    }
    response
}

/// The code of a callback's query, if its `state` is `expected` and it carries no error.
pub(crate) fn callback_outcome(query: &str, expected: &str) -> Result<String, String> {
    let (mut code, mut state, mut error, mut description) = (None, None, None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = Some(value.into_owned());
        match key.as_ref() {
            "code" => code = value,
            "state" => state = value,
            "error" => error = value,
            "error_description" => description = value,
            _ => {}
        }
    }
    if state.as_deref() != Some(expected) {
        return Err(
            "the answer does not belong to this sign-in (its state does not match); run `agentnet login --browser` again"
                .to_owned(),
        );
    }
    if let Some(error) = error {
        return Err(match description.filter(|d| !d.is_empty()) {
            Some(description) => format!("the sign-in failed: {description} ({error})"),
            None => format!("the sign-in failed: {error}"),
        });
    }
    code.filter(|c| !c.is_empty()).ok_or_else(|| "the answer carries no code".to_owned())
}

/// A small self-contained HTML page.
fn page(status: StatusCode, title: &str, message: &str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>agentnet: {}</title></head>\
         <body style=\"font-family: sans-serif; margin: 3em\"><h1>{}</h1><p>{}</p></body></html>\n",
        escape(title),
        escape(title),
        escape(message)
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
