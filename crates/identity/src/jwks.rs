//! JSON Web Key Sets: parsing the IdP's published keys (RFC 7517) into verification keys, and
//! checking signatures with ring. A key is used only for the algorithms its own `kty`, `crv` and
//! `alg` allow; keys we cannot use (encryption keys, unknown types) are skipped, not fatal.

#[cfg(test)]
mod tests;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ring::signature::{self, RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

use crate::jwt::Alg;

/// JWK members are base64url; tolerate the padding some IdPs add.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Bounds on RSA moduli accepted (bytes): ring verifies 2048 to 8192 bits.
const RSA_MIN_MODULUS: usize = 2048 / 8;
const RSA_MAX_MODULUS: usize = 8192 / 8;

/// Most keys a set may hold; the rest are ignored (real IdPs publish a handful).
const MAX_KEYS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    /// Big-endian modulus and exponent, without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed point `0x04 || x || y`.
    Ec { curve: Curve, point: Vec<u8> },
    /// The 32-byte public key.
    Ed25519(Vec<u8>),
}

/// One usable verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Jwk {
    kid: Option<String>,
    /// The key's own `alg`, when it pins one.
    alg: Option<Alg>,
    material: Material,
}

impl Jwk {
    /// Whether this key may verify a signature made with `alg`.
    pub(crate) fn supports(&self, alg: Alg) -> bool {
        if self.alg.is_some_and(|own| own != alg) {
            return false;
        }
        matches!(
            (&self.material, alg),
            (
                Material::Rsa { .. },
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
            ) | (Material::Ec { curve: Curve::P256, .. }, Alg::Es256)
                | (Material::Ec { curve: Curve::P384, .. }, Alg::Es384)
                | (Material::Ed25519(_), Alg::EdDsa)
        )
    }

    /// Whether `signature` over `message` verifies under this key with `alg`. False when the
    /// key does not support `alg`.
    pub(crate) fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        if !self.supports(alg) {
            return false;
        }
        match &self.material {
            Material::Rsa { n, e } => {
                let params: &RsaParameters = match alg {
                    Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    Alg::Es256 | Alg::Es384 | Alg::EdDsa => return false,
                };
                RsaPublicKeyComponents { n, e }.verify(params, message, signature).is_ok()
            }
            Material::Ec { curve, point } => {
                let algorithm = match curve {
                    Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
                };
                UnparsedPublicKey::new(algorithm, point).verify(message, signature).is_ok()
            }
            Material::Ed25519(x) => {
                UnparsedPublicKey::new(&signature::ED25519, x).verify(message, signature).is_ok()
            }
        }
    }
}

/// What a token's `kid` and `alg` find in a key set.
#[derive(Debug)]
pub(crate) enum Selection<'a> {
    /// Keys that may verify the token (usually one).
    Keys(Vec<&'a Jwk>),
    /// Keys named by `kid` exist, but none of them is for this algorithm.
    Mismatch,
    /// No key has this `kid` (or, without a `kid`, no key is for this algorithm).
    Unknown,
}

/// The usable keys of one JWKS document.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct KeySet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

impl KeySet {
    /// Parses a JWKS document. Fails only if it is not `{"keys": [...]}`; keys that are not
    /// usable signature keys are skipped.
    pub(crate) fn parse(document: &[u8]) -> Result<Self, serde_json::Error> {
        let raw: RawSet = serde_json::from_slice(document)?;
        let keys = raw
            .keys
            .into_iter()
            .take(MAX_KEYS)
            .filter_map(|value| serde_json::from_value::<RawJwk>(value).ok())
            .filter_map(parse_key)
            .collect();
        Ok(Self { keys })
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys a token with this `kid` (if any) and `alg` may be verified with.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Alg) -> Selection<'_> {
        let keys: Vec<&Jwk> = match kid {
            Some(kid) => {
                let named: Vec<&Jwk> =
                    self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect();
                if named.is_empty() {
                    return Selection::Unknown;
                }
                let usable: Vec<&Jwk> = named.into_iter().filter(|k| k.supports(alg)).collect();
                if usable.is_empty() {
                    return Selection::Mismatch;
                }
                usable
            }
            None => self.keys.iter().filter(|k| k.supports(alg)).collect(),
        };
        if keys.is_empty() {
            Selection::Unknown
        } else {
            Selection::Keys(keys)
        }
    }

    /// Whether [`KeySet::select`] would find this `kid` (or a key for `alg` without one).
    pub(crate) fn knows(&self, kid: Option<&str>, alg: Alg) -> bool {
        !matches!(self.select(kid, alg), Selection::Unknown)
    }
}

fn decode(value: Option<&str>) -> Option<Vec<u8>> {
    JWK_B64.decode(value?).ok()
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

fn parse_key(raw: RawJwk) -> Option<Jwk> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let alg = match raw.alg.as_deref() {
        Some(name) => Some(Alg::from_name(name)?),
        None => None,
    };
    let material = match raw.kty.as_str() {
        "RSA" => {
            let n = strip_leading_zeros(decode(raw.n.as_deref())?);
            let e = strip_leading_zeros(decode(raw.e.as_deref())?);
            if !(RSA_MIN_MODULUS..=RSA_MAX_MODULUS).contains(&n.len()) || e.is_empty() {
                return None;
            }
            Material::Rsa { n, e }
        }
        "EC" => {
            let (curve, len) = match raw.crv.as_deref()? {
                "P-256" => (Curve::P256, 32),
                "P-384" => (Curve::P384, 48),
                _ => return None,
            };
            let x = decode(raw.x.as_deref())?;
            let y = decode(raw.y.as_deref())?;
            if x.len() != len || y.len() != len {
                return None;
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Material::Ec { curve, point }
        }
        "OKP" => {
            if raw.crv.as_deref()? != "Ed25519" {
                return None;
            }
            let x = decode(raw.x.as_deref())?;
            if x.len() != 32 {
                return None;
            }
            Material::Ed25519(x)
        }
        _ => return None,
    };
    let key = Jwk { kid: raw.kid, alg: None, material };
    // A key whose own `alg` contradicts its type is unusable, not merely restricted.
    match alg {
        Some(alg) if !key.supports(alg) => None,
        _ => Some(Jwk { alg, ..key }),
    }
}
