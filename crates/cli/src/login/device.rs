//! The device flow (RFC 8628): the server hands out a code, the person enters it at the
//! verification page (on this machine or any other), and the CLI polls `POST /auth/token` at the
//! given interval until the sign-in is approved, denied or expired. `slow_down` adds five
//! seconds to the interval (§3.5); the CLI gives up after five minutes in any case.

use std::time::{Duration, Instant};

use anyhow::bail;
use api_types::{DeviceAuthorization, TokenResponse};

use super::{open, Hooks, TIMEOUT};
use crate::{
    auth::{self, Grant},
    remote::Remote,
};

pub(super) async fn sign_in(
    remote: &Remote,
    client: Option<&str>,
    open_browser: bool,
    hooks: &Hooks,
) -> anyhow::Result<TokenResponse> {
    let started = hooks.clock.now();
    let device = match auth::start_device(remote, client).await? {
        Ok(device) => device,
        Err(err) => bail!("the server cannot start a sign-in: {}", auth::describe(&err)),
    };
    hooks.ui.say(&format!(
        "To sign in, open {} and enter the code {}",
        device.verification_uri, device.user_code
    ));
    if let Some(complete) = &device.verification_uri_complete {
        hooks.ui.say(&format!("or open this link, which has the code filled in:\n  {complete}"));
    }
    let link = device.verification_uri_complete.as_deref().unwrap_or(&device.verification_uri);
    open(hooks, link, open_browser);
    let result = poll(remote, &device, started, hooks).await;
    hooks.ui.clear_status();
    result
}

/// Polls until the sign-in ends one way or the other.
async fn poll(
    remote: &Remote,
    device: &DeviceAuthorization,
    started: Instant,
    hooks: &Hooks,
) -> anyhow::Result<TokenResponse> {
    let limit = Duration::from_secs(device.expires_in).min(TIMEOUT);
    // At least a second apart, whatever the server says.
    let mut interval = Duration::from_secs(device.interval.max(1));
    hooks.ui.status("waiting for approval…", true);
    loop {
        wait(hooks, interval, started).await;
        match auth::token(remote, Grant::DeviceCode(&device.device_code)).await? {
            Ok(tokens) => return Ok(tokens),
            Err(err) => match err.error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += Duration::from_secs(5),
                "expired_token" => {
                    bail!("the sign-in code expired before it was approved; run `agentnet login` again")
                }
                "access_denied" => bail!("the sign-in was denied: {}", auth::describe(&err)),
                _ => bail!("the sign-in failed: {}", auth::describe(&err)),
            },
        }
        if hooks.clock.now().duration_since(started) >= limit {
            if limit < TIMEOUT {
                bail!(
                    "the sign-in code expired before it was approved; run `agentnet login` again"
                );
            }
            bail!(
                "no approval within {} minutes; run `agentnet login` again",
                TIMEOUT.as_secs() / 60
            );
        }
    }
}

/// Sleeps `duration`, redrawing the elapsed time every second on a terminal.
async fn wait(hooks: &Hooks, duration: Duration, started: Instant) {
    if !hooks.ui.tty {
        hooks.clock.sleep(duration).await;
        return;
    }
    let end = hooks.clock.now() + duration;
    loop {
        let now = hooks.clock.now();
        if now >= end {
            return;
        }
        let elapsed = now.duration_since(started).as_secs();
        hooks.ui.status(&format!("waiting for approval… {elapsed}s"), false);
        hooks.clock.sleep((end - now).min(Duration::from_secs(1))).await;
    }
}
