//! Tests of the broker's pure parts: discovery validation, error mapping and sanitising,
//! lenient numbers, Basic credentials, URL building and what `Debug` shows. The HTTP exchanges
//! are tested against a fake IdP in `tests/it/broker.rs`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use expect_test::{expect, Expect};
use http::StatusCode;
use secrecy::SecretString;

use super::{
    basic_authorization, oauth_error, resolve, with_query, BrokerError, ClientCredentials,
    DeviceAuthorization, Discovery, IdpClient, TokenResponse, TokenSet,
};
use crate::error::Chain;
use crate::Error;

fn discovery(issuer: &str, endpoint: &str) -> Discovery {
    Discovery {
        issuer: issuer.into(),
        authorization_endpoint: format!("{endpoint}/auth"),
        token_endpoint: format!("{endpoint}/token"),
        device_authorization_endpoint: Some(format!("{endpoint}/device")),
        revocation_endpoint: None,
    }
}

fn check_resolve(doc: Discovery, issuer: &str, https_only: bool, expect: Expect) {
    let shown = match resolve(doc, issuer, https_only) {
        Ok(resolved) => format!("{:?}", resolved.public),
        Err(err) => format!("error: {}", Chain(&err)),
    };
    expect.assert_eq(&shown);
}

#[test]
fn discovery_is_validated() {
    check_resolve(
        discovery("https://idp.example", "https://idp.example"),
        "https://idp.example",
        true,
        expect![[
            r#"IdpEndpoints { authorization_endpoint: "https://idp.example/auth", token_endpoint: "https://idp.example/token", device_authorization_endpoint: Some("https://idp.example/device"), revocation_endpoint: None }"#
        ]],
    );
    check_resolve(
        discovery("https://idp.example/", "https://idp.example"),
        "https://idp.example",
        true,
        expect![[
            r#"error: the identity provider is unavailable: discovery document names issuer "https://idp.example/", expected "https://idp.example""#
        ]],
    );
    // An https issuer must not send the browser or its tokens over plain http.
    check_resolve(
        discovery("https://idp.example", "http://idp.example"),
        "https://idp.example",
        true,
        expect![[
            r#"error: the identity provider is unavailable: discovery document names an unusable authorization_endpoint "http://idp.example/auth""#
        ]],
    );
    // A plain http issuer (a local IdP) may use http.
    check_resolve(
        discovery("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        "http://127.0.0.1:8080",
        false,
        expect![[
            r#"IdpEndpoints { authorization_endpoint: "http://127.0.0.1:8080/auth", token_endpoint: "http://127.0.0.1:8080/token", device_authorization_endpoint: Some("http://127.0.0.1:8080/device"), revocation_endpoint: None }"#
        ]],
    );
    let relative =
        Discovery { authorization_endpoint: "/auth".into(), ..discovery("i", "https://x") };
    check_resolve(
        relative,
        "i",
        false,
        expect![[
            r#"error: the identity provider is unavailable: discovery document names an unusable authorization_endpoint "/auth""#
        ]],
    );
    let fragment = Discovery {
        authorization_endpoint: "https://x/auth#f".into(),
        ..discovery("i", "https://x")
    };
    check_resolve(
        fragment,
        "i",
        false,
        expect![[
            r#"error: the identity provider is unavailable: discovery document names an unusable authorization_endpoint "https://x/auth#f""#
        ]],
    );
    let ftp = Discovery {
        revocation_endpoint: Some("ftp://x/revoke".into()),
        ..discovery("i", "https://x")
    };
    check_resolve(
        ftp,
        "i",
        false,
        expect![[
            r#"error: the identity provider is unavailable: discovery document names an unusable revocation_endpoint "ftp://x/revoke""#
        ]],
    );
}

fn check_error(status: u16, body: &str, expect: Expect) {
    let status = StatusCode::from_u16(status).unwrap();
    let shown = match oauth_error(status, body.as_bytes()) {
        Some(err) => format!("{err:?} / {err}"),
        None => "not an oauth error".into(),
    };
    expect.assert_eq(&shown);
}

#[test]
fn oauth_errors_are_mapped() {
    check_error(
        400,
        r#"{"error":"authorization_pending"}"#,
        expect!["AuthorizationPending / the sign-in has not been approved yet"],
    );
    check_error(400, r#"{"error":"slow_down"}"#, expect!["SlowDown / polling too fast; slow down"]);
    check_error(
        400,
        r#"{"error":"expired_token"}"#,
        expect!["ExpiredToken / the sign-in request expired"],
    );
    check_error(
        400,
        r#"{"error":"access_denied","error_description":"no"}"#,
        expect!["AccessDenied / the sign-in was denied"],
    );
    check_error(
        400,
        r#"{"error":"invalid_grant","error_description":"Token is not active"}"#,
        expect![[
            r#"InvalidGrant { description: Some("Token is not active") } / the identity provider refused the grant; sign in again"#
        ]],
    );
    check_error(
        401,
        r#"{"error":"invalid_client"}"#,
        expect![[
            r#"Rejected { error: "invalid_client", description: None } / the identity provider refused the request (invalid_client)"#
        ]],
    );
    // GitHub-style: an error in a 200 answer.
    check_error(
        200,
        r#"{"error":"authorization_pending"}"#,
        expect!["AuthorizationPending / the sign-in has not been approved yet"],
    );
    // Google answers device-flow polls with 428 and 403.
    check_error(
        428,
        r#"{"error":"authorization_pending"}"#,
        expect!["AuthorizationPending / the sign-in has not been approved yet"],
    );
    check_error(
        403,
        r#"{"error":"access_denied"}"#,
        expect!["AccessDenied / the sign-in was denied"],
    );
    // Not OAuth errors: success bodies, server errors, non-JSON, non-string codes.
    check_error(200, r#"{"access_token":"x"}"#, expect!["not an oauth error"]);
    check_error(500, r#"{"error":"server_error"}"#, expect!["not an oauth error"]);
    check_error(400, "Bad Request", expect!["not an oauth error"]);
    check_error(400, r#"{"error":{"code":400}}"#, expect!["not an oauth error"]);
}

#[test]
fn error_codes_and_descriptions_are_sanitised() {
    let long = "x".repeat(500);
    let body = serde_json::json!({
        "error": "Weird-Code!\u{1b}[31m <script>",
        "error_description": format!("  line one\nline two\u{7} {long}"),
    });
    let Some(BrokerError::Rejected { error, description }) =
        oauth_error(StatusCode::BAD_REQUEST, body.to_string().as_bytes())
    else {
        panic!("expected a rejection");
    };
    assert_eq!(error, "weirdcodemscript");
    let description = description.unwrap();
    assert!(description.starts_with("line oneline two xxx"), "{description}");
    assert_eq!(description.chars().count(), 300 - 2);
    assert!(!description.chars().any(char::is_control));

    let long_code = serde_json::json!({ "error": "a".repeat(100), "error_description": " \n " });
    let Some(BrokerError::Rejected { error, description }) =
        oauth_error(StatusCode::BAD_REQUEST, long_code.to_string().as_bytes())
    else {
        panic!("expected a rejection");
    };
    assert_eq!(error, "a".repeat(64));
    assert_eq!(description, None);

    let Some(BrokerError::Rejected { error, .. }) =
        oauth_error(StatusCode::BAD_REQUEST, br#"{"error":"42"}"#)
    else {
        panic!("expected a rejection");
    };
    assert_eq!(error, "unknown_error");
}

#[test]
fn lenient_seconds() {
    let expires = |json: &str| {
        serde_json::from_str::<TokenResponse>(&format!(
            r#"{{"access_token":"a","expires_in":{json}}}"#
        ))
        .map(|r| r.expires_in)
        .map_err(|e| e.to_string())
    };
    assert_eq!(expires("3599"), Ok(Some(3599)));
    assert_eq!(expires(r#""3599""#), Ok(Some(3599)));
    assert_eq!(expires("3600.0"), Ok(Some(3600)));
    assert_eq!(expires("null"), Ok(None));
    assert!(expires("-1").is_err());
    assert!(expires("1.5").is_err());
    // The message does not echo the value.
    let err = expires(r#""s3cr3t""#).unwrap_err();
    assert!(!err.contains("s3cr3t"), "{err}");
    let without = serde_json::from_str::<TokenResponse>(r#"{"access_token":"a"}"#).unwrap();
    assert_eq!(without.expires_in, None);
}

#[test]
fn device_authorization_defaults_and_debug() {
    let google = r#"{"device_code":"DC-secret","user_code":"ABCD-EFGH",
        "verification_url":"https://www.google.com/device","expires_in":"1800"}"#;
    let parsed: DeviceAuthorization = serde_json::from_str(google).unwrap();
    assert_eq!(parsed.verification_uri, "https://www.google.com/device");
    assert_eq!(parsed.expires_in, 1800);
    assert_eq!(parsed.interval, 5);
    expect![[
        r#"DeviceAuthorization { device_code: "[REDACTED]", user_code: "ABCD-EFGH", verification_uri: "https://www.google.com/device", verification_uri_complete: None, expires_in: 1800, interval: 5 }"#
    ]]
    .assert_eq(&format!("{parsed:?}"));
    let missing_expiry = r#"{"device_code":"d","user_code":"u","verification_uri":"v"}"#;
    assert!(serde_json::from_str::<DeviceAuthorization>(missing_expiry).is_err());
}

#[test]
fn basic_credentials_are_form_encoded_then_base64() {
    let header = basic_authorization("agent net", "s3:cr+t/é").unwrap();
    assert!(header.is_sensitive());
    let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
    let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
    assert_eq!(decoded, "agent+net:s3%3Acr%2Bt%2F%C3%A9");
}

#[test]
fn queries_are_appended() {
    assert_eq!(with_query("https://i/auth", "a=1"), "https://i/auth?a=1");
    assert_eq!(with_query("https://i/auth?p=B2C_1", "a=1"), "https://i/auth?p=B2C_1&a=1");
    assert_eq!(with_query("https://i/auth?", "a=1"), "https://i/auth?a=1");
}

#[test]
fn construction_is_validated_and_debug_hides_secrets() {
    let credentials = |secret: Option<&str>| ClientCredentials {
        client_id: "agentnet".into(),
        client_secret: secret.map(|s| SecretString::from(s.to_owned())),
    };
    let shown = |issuer: &str, client: ClientCredentials| match IdpClient::new(issuer, client) {
        Ok(client) => format!("{client:?}"),
        Err(err) => format!("error: {err}"),
    };
    expect![[r#"IdpClient { issuer: "https://idp.example", client_id: "agentnet", confidential: true, .. }"#]]
        .assert_eq(&shown("https://idp.example", credentials(Some("hunter2"))));
    // An empty secret is a public client.
    expect![[r#"IdpClient { issuer: "http://127.0.0.1:9", client_id: "agentnet", confidential: false, .. }"#]]
        .assert_eq(&shown("http://127.0.0.1:9", credentials(Some(""))));
    expect![[r#"error: oidc issuer "ftp://idp.example" must be an absolute http or https URL"#]]
        .assert_eq(&shown("ftp://idp.example", credentials(None)));
    expect![[r#"error: oidc issuer "not a url" is not a valid URL"#]]
        .assert_eq(&shown("not a url", credentials(None)));
    let empty_id = ClientCredentials { client_id: String::new(), client_secret: None };
    assert!(matches!(IdpClient::new("https://idp.example", empty_id), Err(Error::EmptyClientId)));

    let secret = credentials(Some("hunter2"));
    assert!(!format!("{secret:?}").contains("hunter2"));
    let tokens = TokenSet {
        access_token: SecretString::from("at-secret".to_owned()),
        refresh_token: Some(SecretString::from("rt-secret".to_owned())),
        id_token: None,
        expires_in: Some(60),
    };
    let shown = format!("{tokens:?}");
    assert!(!shown.contains("at-secret") && !shown.contains("rt-secret"), "{shown}");
}

#[tokio::test]
async fn unreachable_idp_is_unavailable() {
    // Port 9 (discard) on localhost: nothing listens.
    let client = IdpClient::new(
        "http://127.0.0.1:9",
        ClientCredentials { client_id: "agentnet".into(), client_secret: None },
    )
    .unwrap();
    let err = client.endpoints().await.unwrap_err();
    assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
    let chain = Chain(&err).to_string();
    assert!(
        chain.starts_with("the identity provider is unavailable: request to http://127.0.0.1:9/.well-known/openid-configuration failed"),
        "{chain}"
    );
}
