//! An IdP that is down, failing or misconfigured: `IdpUnavailable` (a 503, not a 401), retried
//! at the refresh interval, and recovery without a restart.

use std::time::Duration;

use identity::AuthError;
use testkit::idp::{MockIdp, TokenSpec};

use super::{verifier_with_interval, verify};

#[tokio::test]
async fn idp_down_at_start_then_up() {
    let interval = Duration::from_millis(200);
    let idp = MockIdp::start().await;
    let token = idp.token(TokenSpec::user("a@example.com"));
    idp.stop().await;

    let verifier = verifier_with_interval(&idp, interval);
    assert_eq!(verify(&verifier, &token).await, Err(AuthError::IdpUnavailable));
    assert_eq!(verify(&verifier, &token).await, Err(AuthError::IdpUnavailable));

    idp.restart().await;
    // Retries are rate-limited: not before the interval has passed.
    assert_eq!(verify(&verifier, &token).await, Err(AuthError::IdpUnavailable));
    assert_eq!(idp.discovery_fetches(), 0);
    tokio::time::sleep(interval).await;
    assert!(verify(&verifier, &token).await.is_ok());
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn idp_errors_are_retried_at_the_interval() {
    let interval = Duration::from_millis(200);
    let idp = MockIdp::start().await;
    idp.set_unavailable(true);
    let verifier = verifier_with_interval(&idp, interval);
    let token = idp.token(TokenSpec::user("a@example.com"));
    for _ in 0..5 {
        assert_eq!(verify(&verifier, &token).await, Err(AuthError::IdpUnavailable));
    }
    assert_eq!(idp.discovery_fetches(), 1);

    idp.set_unavailable(false);
    tokio::time::sleep(interval).await;
    assert!(verify(&verifier, &token).await.is_ok());
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (2, 1));
}

#[tokio::test]
async fn jwks_failure_after_discovery_is_unavailable() {
    let interval = Duration::from_millis(150);
    let idp = MockIdp::start().await;
    let verifier = verifier_with_interval(&idp, interval);
    let token = idp.token(TokenSpec::user("a@example.com"));
    assert!(verify(&verifier, &token).await.is_ok());

    // Keys known, IdP failing, a token with a new kid: we cannot tell, so 503.
    idp.set_unavailable(true);
    tokio::time::sleep(interval).await;
    let rotated = idp.token(TokenSpec::user("a@example.com").kid("next-key"));
    assert_eq!(verify(&verifier, &rotated).await, Err(AuthError::IdpUnavailable));
    assert_eq!(verify(&verifier, &rotated).await, Err(AuthError::IdpUnavailable));
    // Tokens of known keys keep working.
    let other = idp.token(TokenSpec::client("bot"));
    assert!(verify(&verifier, &other).await.is_ok());
}

#[tokio::test]
async fn discovery_naming_another_issuer_is_refused() {
    let idp = MockIdp::start().await;
    idp.set_discovery_issuer(Some(format!("{}/", idp.issuer())));
    let verifier = verifier_with_interval(&idp, Duration::from_secs(30));
    let token = idp.token(TokenSpec::user("a@example.com"));
    assert_eq!(verify(&verifier, &token).await, Err(AuthError::IdpUnavailable));
    assert_eq!(idp.jwks_fetches(), 0);
}
