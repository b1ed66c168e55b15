//! Tests for stamping and assertions.

use super::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

fn alice() -> Principal {
    Principal::user("sub-1", "alice@example.com", vec!["eng".into(), "all".into()])
}

#[test]
fn assertion_verifies_against_jwks() {
    let pkcs8 = AssertionSigner::generate_pkcs8().unwrap();
    let signer = AssertionSigner::from_pkcs8(
        "k1".into(),
        &pkcs8,
        "agentnet".into(),
        Duration::from_secs(300),
    )
    .unwrap();
    let token =
        signer.sign(&alice(), &["eng".into()], "anthropic", "req-1", SystemTime::now()).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(signer.jwks()).unwrap();
    let jwk = jwks.find("k1").unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["anthropic"]);
    validation.set_issuer(&["agentnet"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(data.claims["email"], "alice@example.com");
    assert_eq!(data.claims["groups"], json!(["eng"]));
    assert_eq!(data.claims["jti"], "req-1");
    assert_eq!(data.header.kid.as_deref(), Some("k1"));
    assert_eq!(data.header.alg, Algorithm::EdDSA);
    assert_eq!(data.header.typ.as_deref(), Some("JWT"));
}

/// Keys already sealed in stores were made by ring (PKCS#8 v2, public key included): they load,
/// and the published public key is the one ring derives; a document whose public key does not
/// belong to its private key is refused.
#[test]
fn ring_made_keys_load_with_the_same_public_key() {
    use ring::signature::KeyPair as _;
    let pkcs8 = AssertionSigner::generate_pkcs8().unwrap();
    let ring_pair = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
    let signer =
        AssertionSigner::from_pkcs8("k".into(), &pkcs8, "agentnet".into(), Duration::from_secs(60))
            .unwrap();
    assert_eq!(signer.public_key(), ring_pair.public_key().as_ref());

    let other = Ed25519KeyPair::from_pkcs8(&AssertionSigner::generate_pkcs8().unwrap()).unwrap();
    let mut mismatched = pkcs8.clone();
    let at = mismatched.len() - 32;
    mismatched[at..].copy_from_slice(other.public_key().as_ref());
    assert!(matches!(
        AssertionSigner::from_pkcs8("k".into(), &mismatched, "a".into(), Duration::from_secs(60)),
        Err(SignerError::BadKey)
    ));
    assert!(matches!(
        AssertionSigner::from_pkcs8("k".into(), b"junk", "a".into(), Duration::from_secs(60)),
        Err(SignerError::BadKey)
    ));
}

#[test]
fn presets() {
    let principal = alice();
    let groups = vec!["all".to_string(), "eng".to_string()];
    let stamp = Stamp { principal: &principal, groups: &groups, request_id: "r1" };
    let mut h = HeaderMap::new();
    stamp_headers(&mut h, &stamp, GatewayPreset::LiteLlm, None);
    assert_eq!(h["x-agentnet-user"], "alice@example.com");
    assert_eq!(h["x-agentnet-groups"], "all,eng");
    assert_eq!(h["x-agentnet-request-id"], "r1");
    assert_eq!(h["x-litellm-end-user-id"], "alice@example.com");
    assert_eq!(h["x-litellm-tags"], "all,eng");

    let mut h = HeaderMap::new();
    stamp_headers(&mut h, &stamp, GatewayPreset::Portkey, None);
    let meta: serde_json::Value =
        serde_json::from_str(h["x-portkey-metadata"].to_str().unwrap()).unwrap();
    assert_eq!(meta["_user"], "alice@example.com");

    let mut h = HeaderMap::new();
    stamp_headers(&mut h, &stamp, GatewayPreset::CloudflareAiGateway, None);
    assert!(h["cf-aig-metadata"].to_str().unwrap().contains("\"user\":\"alice@example.com\""));

    let mut h = HeaderMap::new();
    stamp_headers(&mut h, &stamp, GatewayPreset::Bifrost, None);
    assert_eq!(h["x-bf-dim-user"], "alice@example.com");
}

#[test]
fn identity_header_names() {
    for name in ["x-agentnet-user", "x-agentnet-anything", "x-litellm-end-user-id", "x-bf-dim-team"]
    {
        assert!(is_identity_header(&HeaderName::from_static(name)), "{name}");
    }
    for name in ["anthropic-version", "content-type", "x-claude-code-session-id"] {
        assert!(!is_identity_header(&HeaderName::from_static(name)), "{name}");
    }
}
