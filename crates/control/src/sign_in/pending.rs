//! Sign-ins in progress, in memory: device codes waiting for approval, browser sign-ins waiting
//! for the IdP's callback or the local form, and authorization codes waiting to be exchanged.
//!
//! Each kind is bounded ([`MAX_PENDING`]) and expires; expired entries are dropped whenever a new
//! one is added. Device codes and authorization codes are keyed by their SHA-256 digest, so the
//! secrets themselves are not kept. Nothing here survives a restart, which only means that a
//! sign-in in progress must start over.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use domain::Principal;
use identity::TokenDigest;
use secrecy::SecretString;
use store::SessionSource;

/// The most sign-ins of one kind that may be pending at once.
pub const MAX_PENDING: usize = 10_000;

/// Wrong passwords a pending sign-in tolerates before it is refused for good.
pub(crate) const MAX_FAILED_PASSWORDS: u32 = 5;

/// Someone the IdP or a local account vouched for, not yet holding a session.
#[derive(Clone)]
pub(crate) struct Vouched {
    /// The principal the data plane will know the session by. An agent's has no groups: the
    /// data plane adds the agent record's current ones at each request.
    pub(crate) principal: Principal,
    /// The groups recorded with the session (for display): the token's, the account's or the
    /// agent's at sign-in.
    pub(crate) groups: Vec<String>,
    pub(crate) source: SessionSource,
    /// The IdP's refresh token, to re-check the person at each refresh.
    pub(crate) idp_refresh: Option<SecretString>,
}

pub(crate) enum DeviceWait {
    /// Local accounts: approved on our own page.
    Local { approved: Option<Vouched>, denied: bool, failures: u32 },
    /// External IdP: its device code, polled when the client polls us.
    External { idp_device_code: SecretString },
}

pub(crate) struct DeviceFlow {
    pub(crate) user_code: String,
    pub(crate) client: Option<String>,
    pub(crate) expires_at: Instant,
    pub(crate) interval: Duration,
    pub(crate) last_poll: Option<Instant>,
    pub(crate) wait: DeviceWait,
}

/// A browser sign-in for a CLI's loopback redirect.
pub(crate) struct BrowserFlow {
    /// The CLI's redirect URI, state and PKCE challenge.
    pub(crate) redirect_uri: String,
    pub(crate) state: String,
    pub(crate) challenge: String,
    pub(crate) client: Option<String>,
    pub(crate) expires_at: Instant,
    /// External IdP: the PKCE verifier of our own request to the IdP.
    pub(crate) idp_verifier: Option<String>,
    pub(crate) failures: u32,
}

/// An authorization code issued to a CLI, for `POST /auth/token`.
pub(crate) struct IssuedCode {
    pub(crate) vouched: Vouched,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: String,
    pub(crate) client: Option<String>,
    pub(crate) expires_at: Instant,
}

#[derive(Default)]
struct Maps {
    devices: HashMap<TokenDigest, DeviceFlow>,
    /// Local device flows by canonical user code.
    user_codes: HashMap<String, TokenDigest>,
    /// Browser flows by their id (the `state` we give the IdP, the hidden field of our form).
    browsers: HashMap<String, BrowserFlow>,
    codes: HashMap<TokenDigest, IssuedCode>,
}

#[derive(Default)]
pub(crate) struct Pending {
    maps: Mutex<Maps>,
}

/// Too many sign-ins are pending.
#[derive(Debug)]
pub(crate) struct Full;

impl Pending {
    fn lock(&self) -> MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn add_device(&self, digest: TokenDigest, flow: DeviceFlow) -> Result<(), Full> {
        let now = Instant::now();
        let mut maps = self.lock();
        if maps.devices.len() >= MAX_PENDING {
            maps.devices.retain(|_, f| f.expires_at > now);
            let Maps { devices, user_codes, .. } = &mut *maps;
            user_codes.retain(|_, d| devices.contains_key(d));
        }
        if maps.devices.len() >= MAX_PENDING {
            return Err(Full);
        }
        if matches!(flow.wait, DeviceWait::Local { .. }) {
            if maps.user_codes.contains_key(&flow.user_code) {
                // Two pending sign-ins must never share a code. (With 20^8 codes this is all but
                // impossible; the client just starts again.)
                return Err(Full);
            }
            maps.user_codes.insert(flow.user_code.clone(), digest);
        }
        maps.devices.insert(digest, flow);
        Ok(())
    }

    /// Runs `f` on the device flow of `digest`; `f` returns whether to keep it.
    pub(crate) fn with_device<R>(
        &self,
        digest: &TokenDigest,
        f: impl FnOnce(Option<&mut DeviceFlow>) -> (R, bool),
    ) -> R {
        let mut maps = self.lock();
        let (result, keep) = f(maps.devices.get_mut(digest));
        if !keep {
            if let Some(flow) = maps.devices.remove(digest) {
                maps.user_codes.remove(&flow.user_code);
            }
        }
        result
    }

    /// Runs `f` on the local device flow with `user_code`.
    pub(crate) fn with_user_code<R>(
        &self,
        user_code: &str,
        f: impl FnOnce(Option<&mut DeviceFlow>) -> R,
    ) -> R {
        let mut maps = self.lock();
        let Maps { devices, user_codes, .. } = &mut *maps;
        let flow = user_codes
            .get(user_code)
            .and_then(|digest| devices.get_mut(digest))
            .filter(|flow| flow.expires_at > Instant::now());
        f(flow)
    }

    pub(crate) fn add_browser(&self, id: String, flow: BrowserFlow) -> Result<(), Full> {
        let now = Instant::now();
        let mut maps = self.lock();
        if maps.browsers.len() >= MAX_PENDING {
            maps.browsers.retain(|_, f| f.expires_at > now);
        }
        if maps.browsers.len() >= MAX_PENDING {
            return Err(Full);
        }
        maps.browsers.insert(id, flow);
        Ok(())
    }

    /// Takes the browser flow `id` out, if it has not expired.
    pub(crate) fn take_browser(&self, id: &str) -> Option<BrowserFlow> {
        self.lock().browsers.remove(id).filter(|f| f.expires_at > Instant::now())
    }

    /// Counts a wrong password on browser flow `id`; returns the flow's redirect and state once
    /// it has had too many (and forgets it), so the CLI can be told.
    pub(crate) fn browser_failed(&self, id: &str) -> Option<(String, String)> {
        let mut maps = self.lock();
        let flow = maps.browsers.get_mut(id)?;
        flow.failures += 1;
        if flow.failures < MAX_FAILED_PASSWORDS {
            return None;
        }
        maps.browsers.remove(id).map(|f| (f.redirect_uri, f.state))
    }

    /// The browser flow `id`'s client label, if it is pending.
    pub(crate) fn browser_client(&self, id: &str) -> Option<Option<String>> {
        self.lock()
            .browsers
            .get(id)
            .filter(|f| f.expires_at > Instant::now())
            .map(|f| f.client.clone())
    }

    pub(crate) fn add_code(&self, digest: TokenDigest, code: IssuedCode) -> Result<(), Full> {
        let now = Instant::now();
        let mut maps = self.lock();
        if maps.codes.len() >= MAX_PENDING {
            maps.codes.retain(|_, c| c.expires_at > now);
        }
        if maps.codes.len() >= MAX_PENDING {
            return Err(Full);
        }
        maps.codes.insert(digest, code);
        Ok(())
    }

    /// Takes an authorization code out (it works once), if it has not expired.
    pub(crate) fn take_code(&self, digest: &TokenDigest) -> Option<IssuedCode> {
        self.lock().codes.remove(digest).filter(|c| c.expires_at > Instant::now())
    }
}
