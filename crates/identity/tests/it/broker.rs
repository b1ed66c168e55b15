//! `IdpClient` against the fake IdP: the requests it sends (form fields, client
//! authentication) and how each answer maps to a result or a `BrokerError`.

use std::collections::BTreeMap;

use identity::{BrokerError, ClientCredentials, IdpClient, TokenSet};
use secrecy::{ExposeSecret as _, SecretString};

use super::fake_idp::{
    expected_basic, FakeIdp, Options, Recorded, CLIENT_ID, CLIENT_SECRET, GOOD_CODE, GOOD_VERIFIER,
    REDIRECT_URI,
};

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn client(idp: &FakeIdp, client_secret: Option<&str>) -> IdpClient {
    let credentials =
        ClientCredentials { client_id: CLIENT_ID.into(), client_secret: client_secret.map(secret) };
    IdpClient::new(idp.issuer(), credentials).expect("valid client settings")
}

fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A confidential client's request: Basic credentials, no client_id in the form.
fn basic_post(path: &str, pairs: &[(&str, &str)]) -> Recorded {
    Recorded {
        path: path.into(),
        authorization: Some(expected_basic(CLIENT_ID, CLIENT_SECRET)),
        content_type: Some("application/x-www-form-urlencoded".into()),
        form: form(pairs),
    }
}

/// A public client's request: client_id in the form, no Authorization header.
fn public_post(path: &str, pairs: &[(&str, &str)]) -> Recorded {
    let mut pairs = pairs.to_vec();
    pairs.push(("client_id", CLIENT_ID));
    Recorded {
        path: path.into(),
        authorization: None,
        content_type: Some("application/x-www-form-urlencoded".into()),
        form: form(&pairs),
    }
}

fn shown(tokens: &TokenSet) -> String {
    let show = |s: &Option<SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
    format!(
        "access={} refresh={:?} id={:?} expires_in={:?}",
        tokens.access_token.expose_secret(),
        show(&tokens.refresh_token),
        show(&tokens.id_token),
        tokens.expires_in
    )
}

/// An error with its whole source chain.
fn chain(err: &dyn std::error::Error) -> String {
    let mut shown = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        shown.push_str(&format!(": {err}"));
        source = err.source();
    }
    shown
}

#[tokio::test]
async fn device_flow_with_a_confidential_client() {
    let idp = FakeIdp::start(Options::default()).await;
    let client = client(&idp, Some(CLIENT_SECRET));

    let started = client.start_device("openid email offline_access").await.unwrap();
    assert_eq!(started.device_code, "dc-1");
    assert_eq!(started.user_code, "WDJB-MJHT");
    assert_eq!(started.verification_uri, format!("{}/device", idp.issuer()));
    assert_eq!(
        started.verification_uri_complete,
        Some(format!("{}/device?user_code=WDJB-MJHT", idp.issuer()))
    );
    assert_eq!(started.expires_in, 600);
    assert_eq!(started.interval, 5, "the RFC 8628 default");
    assert!(!format!("{started:?}").contains("dc-1"));
    assert_eq!(
        idp.take_requests(),
        [basic_post("/device/auth", &[("scope", "openid email offline_access")])]
    );

    let first = client.poll_device("dc-1").await;
    assert!(matches!(first, Err(BrokerError::AuthorizationPending)), "{first:?}");
    let second = client.poll_device("dc-1").await;
    assert!(matches!(second, Err(BrokerError::SlowDown)), "{second:?}");
    let tokens = client.poll_device("dc-1").await.unwrap();
    assert_eq!(
        shown(&tokens),
        r#"access=at-device refresh=Some("rt-device") id=Some("id-at-device") expires_in=Some(300)"#
    );
    let poll = basic_post(
        "/token",
        &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", "dc-1")],
    );
    assert_eq!(idp.take_requests(), [poll.clone(), poll.clone(), poll]);

    let denied = client.poll_device("dc-denied").await;
    assert!(matches!(denied, Err(BrokerError::AccessDenied)), "{denied:?}");
    let expired = client.poll_device("dc-old").await;
    assert!(matches!(expired, Err(BrokerError::ExpiredToken)), "{expired:?}");
    // Discovery happened once for all of the above.
    assert_eq!(idp.discovery_hits(), 1);
}

#[tokio::test]
async fn code_flow_with_a_public_client() {
    let idp = FakeIdp::start(Options { secret: None, ..Options::default() }).await;
    let client = client(&idp, None);

    let url = client
        .authorization_url(
            REDIRECT_URI,
            "state 1/2",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "openid email",
            "nonce-1",
        )
        .await
        .unwrap();
    let (base, query) = url.split_once("/auth?").unwrap();
    assert_eq!(base, idp.issuer());
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        pairs,
        [
            // The endpoint's own query is kept.
            ("tenant", "corp"),
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid email"),
            ("state", "state 1/2"),
            ("nonce", "nonce-1"),
            ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            ("code_challenge_method", "S256"),
            ("prompt", "consent"),
        ]
    );
    // Reserved characters are percent-encoded, not passed raw.
    assert!(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A4000%2Fauth%2Fcallback"), "{url}");
    assert!(url.contains("state=state+1%2F2"), "{url}");
    assert!(idp.take_requests().is_empty(), "building the URL sends nothing");

    let tokens = client.exchange_code(GOOD_CODE, REDIRECT_URI, GOOD_VERIFIER).await.unwrap();
    assert_eq!(
        shown(&tokens),
        r#"access=at-code refresh=Some("rt-code") id=Some("id-at-code") expires_in=Some(300)"#
    );
    let wrong = client.exchange_code(GOOD_CODE, REDIRECT_URI, "another-verifier").await;
    match wrong {
        Err(BrokerError::InvalidGrant { description }) => {
            assert_eq!(description.as_deref(), Some("PKCE verification failed"));
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    let exchange = |verifier: &str| {
        public_post(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", GOOD_CODE),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier),
            ],
        )
    };
    assert_eq!(idp.take_requests(), [exchange(GOOD_VERIFIER), exchange("another-verifier")]);
}

#[tokio::test]
async fn refresh_outcomes() {
    let idp = FakeIdp::start(Options::default()).await;
    let client = client(&idp, Some(CLIENT_SECRET));

    let tokens = client.refresh(&secret("rt-good"), Some("openid offline_access")).await.unwrap();
    assert_eq!(
        shown(&tokens),
        r#"access=at-refreshed refresh=None id=Some("id-at-refreshed") expires_in=Some(3599)"#
    );
    let _ = client.refresh(&secret("rt-good"), None).await.unwrap();
    assert_eq!(
        idp.take_requests(),
        [
            basic_post(
                "/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "rt-good"),
                    ("scope", "openid offline_access")
                ]
            ),
            basic_post("/token", &[("grant_type", "refresh_token"), ("refresh_token", "rt-good")]),
        ]
    );

    match client.refresh(&secret("rt-revoked"), None).await {
        Err(BrokerError::InvalidGrant { description }) => {
            assert_eq!(description.as_deref(), Some("Token is not active"));
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    match client.refresh(&secret("rt-weird"), None).await {
        Err(BrokerError::Rejected { error, description }) => {
            assert_eq!(error, "invalidscopej");
            assert_eq!(description.as_deref(), Some("scopenot allowed"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    let token_url = format!("{}/token", idp.issuer());
    let unavailable = client.refresh(&secret("rt-unavailable"), None).await.unwrap_err();
    assert!(matches!(unavailable, BrokerError::Unavailable(_)), "{unavailable:?}");
    assert_eq!(
        chain(&unavailable),
        format!(
            "the identity provider is unavailable: {token_url} answered 503 Service Unavailable"
        )
    );
    let garbage = client.refresh(&secret("rt-garbage"), None).await.unwrap_err();
    let shown_garbage = chain(&garbage);
    assert!(
        shown_garbage.starts_with(&format!(
            "the identity provider is unavailable: {token_url} answered invalid json"
        )),
        "{shown_garbage}"
    );
    // No token appears in errors or their Debug output.
    for err in [&unavailable, &garbage] {
        let all = format!("{} {err:?}", chain(err));
        assert!(!all.contains("rt-") && !all.contains(CLIENT_SECRET), "{all}");
    }
}

#[tokio::test]
async fn client_authentication_failure_is_a_rejection() {
    let idp = FakeIdp::start(Options::default()).await;
    let client = client(&idp, Some("wrong secret"));
    match client.refresh(&secret("rt-good"), None).await {
        Err(BrokerError::Rejected { error, description }) => {
            assert_eq!(error, "invalid_client");
            assert_eq!(description.as_deref(), Some("client authentication failed"));
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
    let sent = idp.take_requests();
    assert_eq!(sent[0].authorization, Some(expected_basic(CLIENT_ID, "wrong secret")));
    // A public client where a confidential one is expected: refused too.
    let public = self::client(&idp, None);
    let refused = public.poll_device("dc-1").await;
    assert!(
        matches!(&refused, Err(BrokerError::Rejected { error, .. }) if error == "invalid_client"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn revocation() {
    let idp = FakeIdp::start(Options::default()).await;
    let client = client(&idp, Some(CLIENT_SECRET));
    client.revoke(&secret("rt-code")).await.unwrap();
    assert_eq!(
        idp.take_requests(),
        [basic_post("/revoke", &[("token", "rt-code"), ("token_type_hint", "refresh_token")])]
    );
    match client.revoke(&secret("rt-unsupported")).await {
        Err(BrokerError::Rejected { error, description: None }) => {
            assert_eq!(error, "unsupported_token_type");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_endpoints_are_unsupported() {
    let idp =
        FakeIdp::start(Options { device: false, revocation: false, ..Options::default() }).await;
    let client = client(&idp, Some(CLIENT_SECRET));
    let endpoints = client.endpoints().await.unwrap();
    assert_eq!(endpoints.token_endpoint, format!("{}/token", idp.issuer()));
    assert_eq!(endpoints.device_authorization_endpoint, None);
    assert_eq!(endpoints.revocation_endpoint, None);
    let device = client.start_device("openid").await.unwrap_err();
    assert!(matches!(device, BrokerError::Unsupported(_)), "{device:?}");
    assert_eq!(
        device.to_string(),
        "the identity provider does not support the device authorization grant"
    );
    let revoke = client.revoke(&secret("rt")).await.unwrap_err();
    assert_eq!(revoke.to_string(), "the identity provider does not support token revocation");
    assert!(idp.take_requests().is_empty());
    assert_eq!(idp.discovery_hits(), 1);
}

#[tokio::test]
async fn issuer_mismatch_is_unavailable_and_retried() {
    let idp = FakeIdp::start(Options {
        claimed_issuer: Some("https://evil.example".into()),
        ..Options::default()
    })
    .await;
    let client = client(&idp, Some(CLIENT_SECRET));
    for attempt in 1..=2 {
        let err = client.start_device("openid").await.unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                "the identity provider is unavailable: discovery document names issuer \"https://evil.example\", expected \"{}\"",
                idp.issuer()
            )
        );
        // A failed discovery is not cached.
        assert_eq!(idp.discovery_hits(), attempt);
    }
    assert!(idp.take_requests().is_empty(), "nothing is sent to an unverified IdP");
}
