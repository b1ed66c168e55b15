//! Token contents: who a valid token is, and the right refusal for every kind of bad token.

use std::time::{Duration, SystemTime};

use domain::{Principal, PrincipalKind};
use identity::{AuthError, OidcSettings, TokenVerifier};
use serde_json::json;
use testkit::idp::{MockIdp, TokenSpec};

use super::{settings, verifier, verify};

#[tokio::test]
async fn user_token_is_a_user_with_groups() {
    let idp = MockIdp::start().await;
    let verifier = verifier(&idp);
    let token = idp.token(
        TokenSpec::user("alice@example.com")
            .groups(["engineering", "admins"])
            .audience("agentnet")
            .expires_in(120),
    );
    let principal = verify(&verifier, &token).await.unwrap();
    assert_eq!(
        principal,
        Principal::user(
            "user|alice@example.com",
            "alice@example.com",
            vec!["admins".into(), "engineering".into()]
        )
    );
    assert_eq!(principal.kind, PrincipalKind::User);
    assert!(principal.in_group("engineering"));
}

#[tokio::test]
async fn client_token_is_an_agent() {
    let idp = MockIdp::start().await;
    let verifier = verifier(&idp);
    let token = idp.token(TokenSpec::client("ci-bot").groups(["deployers"]));
    let principal = verify(&verifier, &token).await.unwrap();
    assert_eq!(principal, Principal::agent("ci-bot", vec!["deployers".into()]));

    // No client_id: azp names the agent, then sub.
    let azp =
        idp.token(TokenSpec::client("x").without_claim("client_id").claim("azp", json!("az")));
    assert_eq!(verify(&verifier, &azp).await.unwrap(), Principal::agent("az", vec![]));
    let sub = idp.token(TokenSpec::client("svc").without_claim("client_id"));
    assert_eq!(verify(&verifier, &sub).await.unwrap(), Principal::agent("svc", vec![]));
}

#[tokio::test]
async fn time_window() {
    let idp = MockIdp::start().await;
    let verifier = verifier(&idp);
    let expired = idp.token(TokenSpec::user("a@example.com").expires_in(-120));
    assert_eq!(verify(&verifier, &expired).await, Err(AuthError::Expired));
    let early = idp.token(TokenSpec::user("a@example.com").not_before(120));
    assert_eq!(verify(&verifier, &early).await, Err(AuthError::NotYetValid));
    // Within the 30 s leeway.
    let skewed = idp.token(TokenSpec::user("a@example.com").expires_in(-10).not_before(10));
    assert!(verify(&verifier, &skewed).await.is_ok());
    let no_exp = idp.token(TokenSpec::user("a@example.com").without_claim("exp"));
    assert_eq!(verify(&verifier, &no_exp).await, Err(AuthError::Malformed));
}

#[tokio::test]
async fn issuer_and_audience() {
    let idp = MockIdp::start().await;
    let verifier = verifier(&idp);
    let foreign = idp.token(TokenSpec::user("a@example.com").issuer("https://evil.example"));
    assert_eq!(verify(&verifier, &foreign).await, Err(AuthError::WrongIssuer));
    let other_aud = idp.token(TokenSpec::user("a@example.com").audience("another-app"));
    assert_eq!(verify(&verifier, &other_aud).await, Err(AuthError::WrongAudience));
    let no_aud = idp.token(TokenSpec::user("a@example.com").without_claim("aud"));
    assert_eq!(verify(&verifier, &no_aud).await, Err(AuthError::WrongAudience));
    let many = idp.token(TokenSpec::user("a@example.com").audiences(["account", "agentnet"]));
    assert!(verify(&verifier, &many).await.is_ok());

    // Any configured audience will do.
    let settings =
        OidcSettings { audiences: vec!["x".into(), "another-app".into()], ..settings(&idp) };
    let verifier = TokenVerifier::new(settings).unwrap();
    assert!(verify(&verifier, &other_aud).await.is_ok());
}

#[tokio::test]
async fn signature_and_algorithm_attacks() {
    let idp = MockIdp::start().await;
    let verifier = verifier(&idp);
    let spec = || TokenSpec::user("mallory@example.com").groups(["admins"]);

    let none = idp.alg_none_token(spec());
    assert_eq!(verify(&verifier, &none).await, Err(AuthError::UnsupportedAlgorithm("none".into())));
    // HS256 keyed with the public key itself: the classic algorithm confusion.
    let public_key = idp.current_jwk().to_string();
    let hs = idp.hs256_token(spec(), public_key.as_bytes());
    assert_eq!(verify(&verifier, &hs).await, Err(AuthError::UnsupportedAlgorithm("HS256".into())));
    // Refused before any key lookup: the IdP was never asked.
    assert_eq!(idp.discovery_fetches(), 0);
    assert_eq!(idp.jwks_fetches(), 0);

    let forged = idp.token(spec().signed_with_unknown_key());
    assert_eq!(verify(&verifier, &forged).await, Err(AuthError::BadSignature));
    let unknown_kid = idp.token(spec().kid("no-such-key"));
    assert_eq!(verify(&verifier, &unknown_kid).await, Err(AuthError::UnknownKey));

    // A forged payload under a genuine header and signature.
    let genuine = idp.token(TokenSpec::user("bob@example.com"));
    let evil = idp.token(spec());
    let mut parts: Vec<&str> = genuine.split('.').collect();
    parts[1] = evil.split('.').nth(1).unwrap();
    assert_eq!(verify(&verifier, &parts.join(".")).await, Err(AuthError::BadSignature));
    assert!(verify(&verifier, &genuine).await.is_ok());
}

#[tokio::test]
async fn garbage_is_malformed() {
    let idp = MockIdp::start().await;
    let verifier = verifier(&idp);
    assert_eq!(verify(&verifier, "").await, Err(AuthError::Missing));
    for garbage in ["-", "sk-ant-api03-xxxx", "a.b.c", "e30.e30.e30", "....", "\u{0}"] {
        let outcome = verify(&verifier, garbage).await;
        assert_eq!(outcome, Err(AuthError::Malformed), "{garbage:?}");
    }
}

#[tokio::test]
async fn groups_claim_path() {
    let idp = MockIdp::start().await;
    let settings = OidcSettings { groups_claim: "realm_access.roles".into(), ..settings(&idp) };
    let verifier = TokenVerifier::new(settings).unwrap();
    let token = idp.token(
        TokenSpec::user("kc@example.com")
            .groups(["ignored"])
            .claim("realm_access", json!({ "roles": ["ops", "dev"] })),
    );
    let principal = verify(&verifier, &token).await.unwrap();
    assert_eq!(principal.groups, ["dev", "ops"]);

    let single = idp
        .token(TokenSpec::user("kc@example.com").claim("realm_access", json!({ "roles": "ops" })));
    assert_eq!(verify(&verifier, &single).await.unwrap().groups, ["ops"]);
    let none = idp.token(TokenSpec::user("kc@example.com"));
    assert!(verify(&verifier, &none).await.unwrap().groups.is_empty());
}

#[tokio::test]
async fn unverified_email_is_refused() {
    let idp = MockIdp::start().await;
    let verifier = verifier(&idp);
    let token = idp.token(TokenSpec::user("a@example.com").claim("email_verified", json!(false)));
    assert_eq!(verify(&verifier, &token).await, Err(AuthError::UnverifiedEmail));
}

#[tokio::test]
async fn cached_tokens_still_expire() {
    let idp = MockIdp::start().await;
    let verifier = verifier(&idp);
    let token = idp.token(TokenSpec::user("a@example.com").expires_in(60));
    let now = SystemTime::now();
    assert!(verifier.verify(&token, now).await.is_ok());
    assert!(verifier.verify(&token, now + Duration::from_secs(60)).await.is_ok(), "leeway");
    let later = now + Duration::from_secs(3600);
    assert_eq!(verifier.verify(&token, later).await, Err(AuthError::Expired));
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn id_tokens_are_checked_for_the_client_audience_and_the_sign_in_nonce() {
    let idp = MockIdp::start().await;
    let ids = TokenVerifier::new(OidcSettings::new(idp.issuer(), ["agentnet-server"])).unwrap();
    let now = SystemTime::now();
    let id_token = |nonce: Option<&str>| {
        let spec =
            TokenSpec::user("dana@example.com").groups(["engineering"]).audience("agentnet-server");
        idp.token(match nonce {
            Some(nonce) => spec.claim("nonce", json!(nonce)),
            None => spec,
        })
    };
    let principal = ids.verify_id_token(&id_token(Some("n-1")), now, Some("n-1")).await.unwrap();
    assert_eq!(principal.name, "dana@example.com");
    assert_eq!(principal.groups, vec!["engineering"]);
    assert_eq!(
        ids.verify_id_token(&id_token(Some("n-2")), now, Some("n-1")).await,
        Err(AuthError::NonceMismatch)
    );
    assert_eq!(
        ids.verify_id_token(&id_token(None), now, Some("n-1")).await,
        Err(AuthError::NonceMismatch)
    );
    // Without an expected nonce (device flow, refresh) any is fine.
    assert!(ids.verify_id_token(&id_token(None), now, None).await.is_ok());
    // An access token for the gateway is not an ID token for the client.
    let access = idp.token(TokenSpec::user("dana@example.com").audience("agentnet"));
    assert_eq!(ids.verify_id_token(&access, now, None).await, Err(AuthError::WrongAudience));
}
