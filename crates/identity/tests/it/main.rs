//! Integration tests of `identity::TokenVerifier` against `testkit::idp::MockIdp`: real HTTP,
//! real keys, real time (short intervals; no test sleeps more than about half a second); and of
//! `identity::IdpClient` against a scripted fake IdP (`fake_idp`).

mod availability;
mod broker;
mod fake_idp;
mod keys;
mod tokens;

use std::time::{Duration, SystemTime};

use identity::{AuthError, OidcSettings, TokenVerifier};
use testkit::idp::MockIdp;

/// Settings for `idp` with the default audience of its tokens.
fn settings(idp: &MockIdp) -> OidcSettings {
    OidcSettings::new(idp.issuer(), [testkit::idp::DEFAULT_AUDIENCE])
}

/// A verifier for `idp` whose refresh interval is `interval`.
fn verifier_with_interval(idp: &MockIdp, interval: Duration) -> TokenVerifier {
    let settings = OidcSettings { jwks_min_refresh_interval: interval, ..settings(idp) };
    TokenVerifier::new(settings).expect("valid settings")
}

/// A verifier for `idp` with default settings.
fn verifier(idp: &MockIdp) -> TokenVerifier {
    TokenVerifier::new(settings(idp)).expect("valid settings")
}

async fn verify(verifier: &TokenVerifier, token: &str) -> Result<domain::Principal, AuthError> {
    verifier.verify(token, SystemTime::now()).await
}
