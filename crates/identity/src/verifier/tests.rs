//! Tests of `TokenVerifier` construction and of the paths that need no IdP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use expect_test::{expect, Expect};

use super::{unix_secs, TokenVerifier};
use crate::{AuthError, OidcSettings};

fn check_new(settings: OidcSettings, expect: Expect) {
    let shown = match TokenVerifier::new(settings) {
        Ok(verifier) => format!("{verifier:?}"),
        Err(err) => format!("error: {err}"),
    };
    expect.assert_eq(&shown);
}

#[test]
fn settings_are_validated_without_io() {
    check_new(
        OidcSettings::new("https://idp.example/realms/corp", ["agentnet"]),
        expect![[
            r#"TokenVerifier { issuer: "https://idp.example/realms/corp", audiences: ["agentnet"], .. }"#
        ]],
    );
    check_new(
        OidcSettings::new("http://127.0.0.1:8080/", vec!["a".to_string(), "b".to_string()]),
        expect![[
            r#"TokenVerifier { issuer: "http://127.0.0.1:8080/", audiences: ["a", "b"], .. }"#
        ]],
    );
    check_new(
        OidcSettings::new("idp.example", ["agentnet"]),
        expect![[r#"error: oidc issuer "idp.example" is not a valid URL"#]],
    );
    check_new(
        OidcSettings::new("ftp://idp.example", ["agentnet"]),
        expect![[
            r#"error: oidc issuer "ftp://idp.example" must be an absolute http or https URL"#
        ]],
    );
    check_new(
        OidcSettings::new("https://idp example", ["agentnet"]),
        expect![[r#"error: oidc issuer "https://idp example" is not a valid URL"#]],
    );
    check_new(
        OidcSettings::new("https://idp.example", Vec::<String>::new()),
        expect![[r#"error: oidc settings name no audience"#]],
    );
    check_new(
        OidcSettings::new("https://idp.example", [""]),
        expect![[r#"error: oidc settings name no audience"#]],
    );
    check_new(
        OidcSettings {
            groups_claim: String::new(),
            ..OidcSettings::new("https://i.example", ["a"])
        },
        expect![[r#"error: oidc groups claim name is empty"#]],
    );
}

#[test]
fn defaults() {
    let settings = OidcSettings::new("https://idp.example", ["agentnet"]);
    assert_eq!(settings.groups_claim, "groups");
    assert_eq!(settings.leeway, Duration::from_secs(30));
    assert_eq!(settings.jwks_min_refresh_interval, Duration::from_secs(30));
    assert_eq!(settings.jwks_max_age, Duration::from_secs(3600));
    assert_eq!(settings.cache_capacity, 10_000);
}

#[test]
fn verifier_is_shareable() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<TokenVerifier>();
}

#[tokio::test]
async fn refusals_that_need_no_keys() {
    // Port 9 (discard) on localhost: never contacted, every refusal below happens before.
    let verifier =
        TokenVerifier::new(OidcSettings::new("http://127.0.0.1:9", ["agentnet"])).unwrap();
    let now = SystemTime::now();
    assert_eq!(verifier.verify("", now).await, Err(AuthError::Missing));
    assert_eq!(verifier.verify("garbage", now).await, Err(AuthError::Malformed));
    let huge = "a".repeat(crate::jwt::MAX_TOKEN_LEN + 1);
    assert_eq!(verifier.verify(&huge, now).await, Err(AuthError::Malformed));
    // {"alg":"none"}.{}.
    assert_eq!(
        verifier.verify("eyJhbGciOiJub25lIn0.e30.", now).await,
        Err(AuthError::UnsupportedAlgorithm("none".into()))
    );
    // {"alg":"HS256","kid":"k"}.{}.sig
    assert_eq!(
        verifier.verify("eyJhbGciOiJIUzI1NiIsImtpZCI6ImsifQ.e30.c2ln", now).await,
        Err(AuthError::UnsupportedAlgorithm("HS256".into()))
    );
    assert_eq!(verifier.cached_tokens(), 0);
}

#[test]
fn unix_seconds() {
    assert_eq!(unix_secs(UNIX_EPOCH), 0);
    assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), 0);
    assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_millis(1_999)), 1);
}

#[test]
fn reasons_and_messages() {
    let all = [
        AuthError::Missing,
        AuthError::Malformed,
        AuthError::UnsupportedAlgorithm("none".into()),
        AuthError::UnknownKey,
        AuthError::KeyMismatch,
        AuthError::BadSignature,
        AuthError::Expired,
        AuthError::NotYetValid,
        AuthError::WrongIssuer,
        AuthError::WrongAudience,
        AuthError::UnverifiedEmail,
        AuthError::IdpUnavailable,
        AuthError::SessionUnknown,
    ];
    let shown: Vec<String> = all.iter().map(|e| format!("{}: {e}", e.reason())).collect();
    expect![[r#"
        token_missing: no access token
        token_malformed: access token is malformed
        token_algorithm_unsupported: token algorithm none is not allowed
        token_key_unknown: token signing key is unknown
        token_key_mismatch: token algorithm does not match its signing key
        token_signature_invalid: token signature is invalid
        token_expired: token expired
        token_not_yet_valid: token is not yet valid
        token_issuer_invalid: token issuer is not trusted
        token_audience_invalid: token audience is not this gateway
        token_email_unverified: token email address is not verified
        idp_unavailable: identity provider is unavailable
        session_unknown: session is unknown, expired or revoked; sign in again (agentnet login)"#]]
    .assert_eq(&shown.join("\n"));
    assert!(AuthError::IdpUnavailable.is_unavailable());
    assert!(!AuthError::Expired.is_unavailable());
}
