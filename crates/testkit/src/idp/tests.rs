//! Unit tests of the mock IdP: its documents, and that its tokens verify with an independent JWT
//! implementation (jsonwebtoken) against the published JWKS.

use std::net::SocketAddr;

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::*;

/// A minimal HTTP/1.1 GET (no client dependency): status and body.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let status = raw.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

async fn jwks(idp: &MockIdp) -> JwkSet {
    let (status, body) = get(idp.addr(), JWKS_PATH).await.unwrap();
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

/// Decodes `token` with jsonwebtoken using the published key named by its kid.
async fn decode(idp: &MockIdp, token: &str) -> jsonwebtoken::errors::Result<Value> {
    let header = jsonwebtoken::decode_header(token)?;
    let set = jwks(idp).await;
    let jwk = set.find(header.kid.as_deref().unwrap_or_default()).expect("kid is published");
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[DEFAULT_AUDIENCE]);
    validation.set_issuer(&[idp.issuer()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|data| data.claims)
}

#[tokio::test]
async fn discovery_announces_issuer_and_jwks() {
    let idp = MockIdp::start().await;
    let (status, body) = get(idp.addr(), "/.well-known/openid-configuration").await.unwrap();
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["issuer"], idp.issuer());
    assert_eq!(doc["jwks_uri"], idp.jwks_uri());
    assert_eq!(idp.discovery_fetches(), 1);

    idp.set_discovery_issuer(Some("https://elsewhere.example".into()));
    let (_, body) = get(idp.addr(), "/.well-known/openid-configuration").await.unwrap();
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["issuer"], "https://elsewhere.example");
}

#[tokio::test]
async fn tokens_of_every_algorithm_verify_against_the_jwks() {
    for alg in [
        SigningAlg::Es256,
        SigningAlg::Es384,
        SigningAlg::EdDsa,
        SigningAlg::Rs256,
        SigningAlg::Ps256,
    ] {
        let idp = MockIdp::start_with(alg).await;
        let token = idp.token(TokenSpec::user("alice@example.com").groups(["engineering"]));
        let claims = decode(&idp, &token).await.unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(claims["sub"], "user|alice@example.com");
        assert_eq!(claims["groups"], serde_json::json!(["engineering"]));
        assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid, Some(idp.current_kid()));
    }
}

#[tokio::test]
async fn client_token_has_client_id_and_no_email() {
    let idp = MockIdp::start().await;
    let token = idp.token(TokenSpec::client("ci-bot").audiences(["agentnet", "other"]));
    let claims = decode(&idp, &token).await.unwrap();
    assert_eq!(claims["client_id"], "ci-bot");
    assert_eq!(claims["sub"], "ci-bot");
    assert!(claims.get("email").is_none());
    assert_eq!(claims["aud"], serde_json::json!(["agentnet", "other"]));
}

#[tokio::test]
async fn unknown_key_signature_does_not_verify() {
    for alg in [SigningAlg::Es256, SigningAlg::Rs256] {
        let idp = MockIdp::start_with(alg).await;
        let token = idp.token(TokenSpec::user("mallory@example.com").signed_with_unknown_key());
        assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid, Some(idp.current_kid()));
        let err = decode(&idp, &token).await.unwrap_err();
        assert_eq!(*err.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature, "{alg:?}");
    }
}

#[tokio::test]
async fn rotation_keeps_or_drops_the_old_key() {
    let idp = MockIdp::start().await;
    let first = idp.current_kid();
    let second = idp.rotate_key(OldKey::Keep);
    assert_ne!(first, second);
    assert_eq!(idp.published_kids(), [first.clone(), second.clone()]);
    let third = idp.rotate_key_to(SigningAlg::Rs256, OldKey::Drop);
    assert_eq!(idp.published_kids(), [first, third.clone()]);
    assert_eq!(idp.current_kid(), third);
    assert_eq!(jwks(&idp).await.keys.len(), 2);
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn spec_shapes_claims() {
    let spec = TokenSpec::user("bob@example.com")
        .subject("00u1")
        .expires_in(-60)
        .not_before(30)
        .issuer("https://other.example")
        .claim("realm_access", serde_json::json!({ "roles": ["admin"] }))
        .without_claim("iat");
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
    let claims = spec.claims("http://ignored", now);
    let expected = serde_json::json!({
        "iss": "https://other.example",
        "sub": "00u1",
        "aud": "agentnet",
        "exp": 940,
        "nbf": 1030,
        "email": "bob@example.com",
        "realm_access": { "roles": ["admin"] },
    });
    assert_eq!(claims, expected);
}

#[tokio::test]
async fn attack_tokens_have_the_claimed_headers() {
    let idp = MockIdp::start().await;
    let none = idp.alg_none_token(TokenSpec::user("eve@example.com"));
    assert!(none.ends_with('.'));
    assert_eq!(none.split('.').count(), 3);
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(none.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "none");

    let hs = idp.hs256_token(TokenSpec::user("eve@example.com"), b"secret");
    let header = jsonwebtoken::decode_header(&hs).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.kid, Some(idp.current_kid()));
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[DEFAULT_AUDIENCE]);
    let claims =
        jsonwebtoken::decode::<Value>(&hs, &DecodingKey::from_secret(b"secret"), &validation)
            .unwrap()
            .claims;
    assert_eq!(claims["email"], "eve@example.com");
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_serves_again() {
    let idp = MockIdp::start().await;
    idp.stop().await;
    assert!(TcpStream::connect(idp.addr()).await.is_err());
    idp.restart().await;
    let (status, _) = get(idp.addr(), JWKS_PATH).await.unwrap();
    assert_eq!(status, 200);

    idp.set_unavailable(true);
    let (status, _) = get(idp.addr(), JWKS_PATH).await.unwrap();
    assert_eq!(status, 503);
    assert_eq!(idp.jwks_fetches(), 2);
}
