//! Identity stamping: the caller's identity on the upstream request, as plain headers, as a
//! signed assertion an upstream can verify (EdDSA, keys at `/.well-known/jwks.json`), and as the
//! attribution headers of well-known gateways (LiteLLM, Portkey, Cloudflare AI Gateway, Bifrost).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use domain::{GatewayPreset, Principal, PrincipalKind};
use ed25519_dalek::{pkcs8::DecodePrivateKey as _, Signer as _, SigningKey};
use http::{HeaderMap, HeaderName, HeaderValue};
use ring::signature::Ed25519KeyPair;
use serde_json::json;

pub(crate) const USER: HeaderName = HeaderName::from_static("x-agentnet-user");
pub(crate) const GROUPS: HeaderName = HeaderName::from_static("x-agentnet-groups");
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-agentnet-request-id");
pub(crate) const ASSERTION: HeaderName = HeaderName::from_static("x-agentnet-assertion");

/// Header names that carry identity to some upstream. A client may not set any of them: they
/// are removed from every request before the gateway stamps its own.
pub(crate) fn is_identity_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("x-agentnet-")
        || name.starts_with("x-bf-dim-")
        || matches!(
            name,
            "x-litellm-end-user-id"
                | "x-litellm-tags"
                | "x-litellm-customer-id"
                | "x-portkey-metadata"
                | "cf-aig-metadata"
        )
}

/// Signs short-lived identity assertions (JWT, EdDSA).
///
/// The compact JWS is put together here rather than by `jsonwebtoken::encode`, which parses the
/// PKCS#8 key again for every signature: that parse derives the public key, a scalar
/// multiplication as costly as the signature itself, and under load it was a quarter of the
/// gateway's CPU (BENCHMARKS.md). The header is fixed per key and encoded once. The signature is
/// ed25519-dalek's (its precomputed base-point table signs in ~19 µs here, ring's in ~24 µs):
/// one signature per request is the largest single cost of the forwarding path.
pub struct AssertionSigner {
    kid: String,
    signing_key: SigningKey,
    /// `base64url({"alg":"EdDSA","typ":"JWT","kid":…})`.
    encoded_header: String,
    public_key: Vec<u8>,
    issuer: String,
    ttl: Duration,
}

/// Why a signing key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("the assertion signing key is not a valid Ed25519 PKCS#8 document")]
    BadKey,
    #[error("could not generate an assertion signing key")]
    Generate,
}

impl AssertionSigner {
    /// A new Ed25519 private key, PKCS#8-encoded (to be sealed in the store).
    pub fn generate_pkcs8() -> Result<Vec<u8>, SignerError> {
        let rng = ring::rand::SystemRandom::new();
        Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| SignerError::Generate)
    }

    pub fn from_pkcs8(
        kid: String,
        pkcs8: &[u8],
        issuer: String,
        ttl: Duration,
    ) -> Result<Self, SignerError> {
        // Checks the public key against the private one when the document carries both.
        let signing_key = SigningKey::from_pkcs8_der(pkcs8).map_err(|_| SignerError::BadKey)?;
        let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid });
        let encoded_header = URL_SAFE_NO_PAD.encode(header.to_string());
        Ok(Self {
            kid,
            public_key: signing_key.verifying_key().as_bytes().to_vec(),
            signing_key,
            encoded_header,
            issuer,
            ttl,
        })
    }

    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The JWKS document that upstreams fetch to verify assertions.
    pub fn jwks(&self) -> serde_json::Value {
        let x = URL_SAFE_NO_PAD.encode(&self.public_key);
        json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid,
            "alg": "EdDSA", "use": "sig",
        }]})
    }

    pub(crate) fn sign(
        &self,
        principal: &Principal,
        groups: &[String],
        audience: &str,
        request_id: &str,
        now: SystemTime,
    ) -> Option<String> {
        let iat = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut claims = json!({
            "iss": self.issuer,
            "sub": principal.subject,
            "aud": audience,
            "iat": iat,
            "exp": iat + self.ttl.as_secs(),
            "jti": request_id,
            "name": principal.name,
            "kind": principal.kind.as_str(),
            "groups": groups,
        });
        if principal.kind == PrincipalKind::User {
            claims["email"] = json!(principal.name);
        }
        let mut token = self.encoded_header.clone();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(&claims).ok()?, &mut token);
        let signature = self.signing_key.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        Some(token)
    }
}

/// What is stamped on one upstream request.
pub(crate) struct Stamp<'a> {
    pub principal: &'a Principal,
    /// The groups through which the admitting policy applies, sorted.
    pub groups: &'a [String],
    pub request_id: &'a str,
}

fn value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// Adds the identity headers for `preset` to `headers` (already cleaned of client identity).
pub(crate) fn stamp_headers(
    headers: &mut HeaderMap,
    stamp: &Stamp<'_>,
    preset: GatewayPreset,
    assertion: Option<String>,
) {
    let user = stamp.principal.name.as_str();
    let groups = stamp.groups.join(",");
    if let Some(v) = value(user) {
        headers.insert(USER, v);
    }
    if let Some(v) = value(&groups).filter(|_| !groups.is_empty()) {
        headers.insert(GROUPS, v);
    }
    if let Some(v) = value(stamp.request_id) {
        headers.insert(REQUEST_ID, v);
    }
    if let Some(v) = assertion.as_deref().and_then(value) {
        headers.insert(ASSERTION, v);
    }
    let metadata = |user_key: &str| {
        json!({ user_key: user, "groups": groups, "request_id": stamp.request_id }).to_string()
    };
    match preset {
        GatewayPreset::None | GatewayPreset::OpenRouter => {}
        GatewayPreset::LiteLlm => {
            if let Some(v) = value(user) {
                headers.insert(HeaderName::from_static("x-litellm-end-user-id"), v);
            }
            if let Some(v) = value(&groups).filter(|_| !groups.is_empty()) {
                headers.insert(HeaderName::from_static("x-litellm-tags"), v);
            }
        }
        GatewayPreset::Portkey => {
            if let Some(v) = value(&metadata("_user")) {
                headers.insert(HeaderName::from_static("x-portkey-metadata"), v);
            }
        }
        GatewayPreset::CloudflareAiGateway => {
            if let Some(v) = value(&metadata("user")) {
                headers.insert(HeaderName::from_static("cf-aig-metadata"), v);
            }
        }
        GatewayPreset::Bifrost => {
            if let Some(v) = value(user) {
                headers.insert(HeaderName::from_static("x-bf-dim-user"), v);
            }
            if let Some(v) = value(&groups).filter(|_| !groups.is_empty()) {
                headers.insert(HeaderName::from_static("x-bf-dim-groups"), v);
            }
        }
    }
}

#[cfg(test)]
mod tests;
