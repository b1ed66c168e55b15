//! Keys: algorithms, caching, rotation and the JWKS refresh rate limit.

use std::time::Duration;

use identity::{AuthError, TokenVerifier};
use testkit::idp::{MockIdp, OldKey, SigningAlg, TokenSpec};
use tokio::task::JoinSet;

use super::{verifier, verifier_with_interval, verify};

#[tokio::test]
async fn every_idp_algorithm_verifies() {
    for alg in [
        SigningAlg::Es256,
        SigningAlg::Es384,
        SigningAlg::EdDsa,
        SigningAlg::Rs256,
        SigningAlg::Ps256,
    ] {
        let idp = MockIdp::start_with(alg).await;
        let verifier = verifier(&idp);
        let token = idp.token(TokenSpec::user("a@example.com"));
        assert!(verify(&verifier, &token).await.is_ok(), "{alg:?}");
        let forged = idp.token(TokenSpec::user("a@example.com").signed_with_unknown_key());
        assert_eq!(verify(&verifier, &forged).await, Err(AuthError::BadSignature), "{alg:?}");
    }
}

#[tokio::test]
async fn key_type_must_match_the_header() {
    let idp = MockIdp::start().await;
    let ec_kid = idp.current_kid();
    idp.rotate_key_to(SigningAlg::Rs256, OldKey::Keep);
    let verifier = verifier(&idp);
    // RS256 header naming the EC key.
    let confused = idp.token(TokenSpec::user("a@example.com").kid(ec_kid));
    assert_eq!(verify(&verifier, &confused).await, Err(AuthError::KeyMismatch));
}

#[tokio::test]
async fn token_without_kid_uses_a_key_of_its_algorithm() {
    let idp = MockIdp::start().await;
    let verifier = verifier(&idp);
    let token = idp.token(TokenSpec::user("a@example.com").without_kid());
    assert!(verify(&verifier, &token).await.is_ok());
    let forged =
        idp.token(TokenSpec::user("a@example.com").without_kid().signed_with_unknown_key());
    assert_eq!(verify(&verifier, &forged).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn cache_hit_needs_no_idp() {
    let idp = MockIdp::start().await;
    let verifier = verifier(&idp);
    let token = idp.token(TokenSpec::user("a@example.com").groups(["g"]));
    let other = idp.token(TokenSpec::client("bot"));
    let first = verify(&verifier, &token).await.unwrap();
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
    idp.stop().await;
    // Same token: answered from the cache. Another token: keys are cached too.
    assert_eq!(verify(&verifier, &token).await.unwrap(), first);
    assert!(verify(&verifier, &other).await.is_ok());
    // Clones share the cache and the keys.
    let clone = verifier.clone();
    assert_eq!(verify(&clone, &token).await.unwrap(), first);
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn rotation_is_picked_up_after_one_refresh() {
    let interval = Duration::from_millis(200);
    let idp = MockIdp::start().await;
    let verifier = verifier_with_interval(&idp, interval);
    assert!(verify(&verifier, &idp.token(TokenSpec::user("a@example.com"))).await.is_ok());
    let by_old_key = idp.token(TokenSpec::user("old@example.com"));
    assert_eq!(idp.jwks_fetches(), 1);

    tokio::time::sleep(interval).await;
    idp.rotate_key(OldKey::Keep);
    let by_new_key = idp.token(TokenSpec::user("new@example.com"));
    assert!(verify(&verifier, &by_new_key).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 2);
    // The old key is still published: its tokens still verify, without a refresh.
    assert!(verify(&verifier, &by_old_key).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 2);

    // Dropping a key: once refreshed, its tokens are refused.
    let by_second_key = idp.token(TokenSpec::user("second@example.com"));
    tokio::time::sleep(interval).await;
    idp.rotate_key(OldKey::Drop);
    let by_third_key = idp.token(TokenSpec::user("third@example.com"));
    assert!(verify(&verifier, &by_third_key).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 3);
    assert_eq!(verify(&verifier, &by_second_key).await, Err(AuthError::UnknownKey));
    assert_eq!(idp.jwks_fetches(), 3, "within the interval: no refetch");
}

async fn flood(verifier: &TokenVerifier, idp: &MockIdp, n: usize) {
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let verifier = verifier.clone();
        let token = idp.token(TokenSpec::user("m@example.com").kid(format!("garbage-{i}")));
        tasks.spawn(async move { verify(&verifier, &token).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.unwrap(), Err(AuthError::UnknownKey));
    }
}

#[tokio::test]
async fn unknown_kid_flood_refetches_at_most_once_per_interval() {
    let interval = Duration::from_millis(300);
    let idp = MockIdp::start().await;
    let verifier = verifier_with_interval(&idp, interval);
    assert!(verify(&verifier, &idp.token(TokenSpec::user("a@example.com"))).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 1);

    // Right after a fetch: no refetch at all.
    flood(&verifier, &idp, 50).await;
    assert_eq!(idp.jwks_fetches(), 1);

    // After the interval: exactly one, however many tokens arrive at once.
    tokio::time::sleep(interval).await;
    flood(&verifier, &idp, 50).await;
    assert_eq!(idp.jwks_fetches(), 2);
    flood(&verifier, &idp, 50).await;
    assert_eq!(idp.jwks_fetches(), 2);
    assert_eq!(idp.discovery_fetches(), 1);

    // Valid tokens are unaffected throughout.
    assert!(verify(&verifier, &idp.token(TokenSpec::client("bot"))).await.is_ok());
}

#[tokio::test]
async fn keys_older_than_max_age_are_refetched() {
    let idp = MockIdp::start().await;
    let settings = identity::OidcSettings {
        jwks_min_refresh_interval: Duration::from_millis(50),
        jwks_max_age: Duration::from_millis(150),
        ..super::settings(&idp)
    };
    let verifier = TokenVerifier::new(settings).unwrap();
    assert!(verify(&verifier, &idp.token(TokenSpec::user("a@example.com"))).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 1);
    tokio::time::sleep(Duration::from_millis(160)).await;

    // Stale keys and an unreachable IdP: the stale keys stay in use.
    idp.stop().await;
    assert!(verify(&verifier, &idp.token(TokenSpec::user("b@example.com"))).await.is_ok());

    // Once the IdP is back, the next miss refreshes.
    idp.restart().await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(verify(&verifier, &idp.token(TokenSpec::user("c@example.com"))).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 2);
    // Fresh again: no more fetches.
    assert!(verify(&verifier, &idp.token(TokenSpec::user("d@example.com"))).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 2);
}
