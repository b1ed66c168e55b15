//! Signing keys of the mock IdP: generation (ECDSA and Ed25519 with ring, RSA from fixed test
//! keys), their public JWK form, and raw JWS signing for hand-built attack tokens.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{json, Value};

use super::rsa_keys::RSA_KEYS;

/// The algorithm a mock IdP key signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256 (the default).
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit fixed test keys).
    Rs256,
    /// RSASSA-PSS with SHA-256 (2048-bit fixed test keys).
    Ps256,
}

impl SigningAlg {
    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::Es384 => "ES384",
            SigningAlg::EdDsa => "EdDSA",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Ps256 => "PS256",
        }
    }

    pub(crate) fn jwt_algorithm(self) -> Algorithm {
        match self {
            SigningAlg::Es256 => Algorithm::ES256,
            SigningAlg::Es384 => Algorithm::ES384,
            SigningAlg::EdDsa => Algorithm::EdDSA,
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Ps256 => Algorithm::PS256,
        }
    }
}

/// A private signing key with its key id and public JWK.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) alg: SigningAlg,
    pub(crate) encoding: EncodingKey,
    pub(crate) jwk: Value,
}

impl SigningKey {
    /// Generates a fresh key (RSA: the fixed test key number `rsa_index`, modulo the set).
    ///
    /// Panics only if ring fails to generate or parse a key, which is a broken test environment.
    pub(crate) fn generate(alg: SigningAlg, kid: String, rsa_index: usize) -> Self {
        let rng = SystemRandom::new();
        let (encoding, mut jwk) = match alg {
            SigningAlg::Es256 | SigningAlg::Es384 => {
                let (signing, crv, coord_len) = if alg == SigningAlg::Es256 {
                    (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                } else {
                    (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                };
                let pkcs8 =
                    EcdsaKeyPair::generate_pkcs8(signing, &rng).expect("generate ECDSA key");
                let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng)
                    .expect("parse generated ECDSA key");
                // Uncompressed point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                let (x, y) = point[1..].split_at(coord_len);
                let jwk = json!({
                    "kty": "EC",
                    "crv": crv,
                    "x": URL_SAFE_NO_PAD.encode(x),
                    "y": URL_SAFE_NO_PAD.encode(y),
                });
                (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
            }
            SigningAlg::EdDsa => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("generate Ed25519 key");
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                    .expect("parse generated Ed25519 key");
                let jwk = json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                });
                (EncodingKey::from_ed_der(pkcs8.as_ref()), jwk)
            }
            SigningAlg::Rs256 | SigningAlg::Ps256 => {
                let der = STANDARD
                    .decode(RSA_KEYS[rsa_index % RSA_KEYS.len()])
                    .expect("embedded RSA test key is base64");
                let pair = RsaKeyPair::from_der(&der).expect("embedded RSA test key parses");
                let public: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
                let jwk = json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(&public.n),
                    "e": URL_SAFE_NO_PAD.encode(&public.e),
                });
                (EncodingKey::from_rsa_der(&der), jwk)
            }
        };
        if let Some(map) = jwk.as_object_mut() {
            map.insert("kid".into(), Value::String(kid.clone()));
            map.insert("use".into(), Value::String("sig".into()));
            map.insert("alg".into(), Value::String(alg.as_str().into()));
        }
        Self { kid, alg, encoding, jwk }
    }
}

/// Base64url (no padding) of a JSON value, as a JWS segment.
pub(crate) fn segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `header.payload.signature` with an HMAC-SHA256 signature over the first two segments.
pub(crate) fn hs256_jws(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let signing_input = format!("{}.{}", segment(header), segment(claims));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}
