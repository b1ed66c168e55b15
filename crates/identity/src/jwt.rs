//! Compact JWS parsing: split `header.payload.signature`, decode the header and refuse any
//! algorithm outside the asymmetric allowlist before a key is ever looked up.

#[cfg(test)]
mod tests;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use crate::AuthError;

/// Longest token accepted (bytes). Real access tokens are a few KiB at most.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The allowed signature algorithms. `none` and HMAC (`HS*`) are deliberately absent: a
/// verifier holding only public keys must never accept a shared-secret MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Alg {
    /// The algorithm named by a JOSE `alg` value, if allowed (case-sensitive, as RFC 7518).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug)]
pub(crate) struct Jws<'a> {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<String>,
    /// `header.payload` exactly as received: what the signature covers.
    pub(crate) signing_input: &'a [u8],
    /// Decoded payload (JSON claims, unparsed until the signature holds).
    pub(crate) payload: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Critical extensions: we understand none, so their presence refuses the token.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// Parses a compact JWS. Checks, in order: shape, header, algorithm allowlist, then decodes
/// payload and signature. Never panics, whatever the input.
pub(crate) fn parse(token: &str) -> Result<Jws<'_>, AuthError> {
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let raw: RawHeader = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(AuthError::Malformed)?;
    let alg = Alg::from_name(&raw.alg).ok_or_else(|| AuthError::unsupported_algorithm(&raw.alg))?;
    if raw.crit.is_some() {
        return Err(AuthError::Malformed);
    }
    let payload_bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| AuthError::Malformed)?;
    let signature_bytes = URL_SAFE_NO_PAD.decode(signature).map_err(|_| AuthError::Malformed)?;
    if signature_bytes.is_empty() {
        return Err(AuthError::Malformed);
    }
    let signing_input =
        token.as_bytes().get(..header.len() + 1 + payload.len()).ok_or(AuthError::Malformed)?;
    Ok(Jws { alg, kid: raw.kid, signing_input, payload: payload_bytes, signature: signature_bytes })
}
