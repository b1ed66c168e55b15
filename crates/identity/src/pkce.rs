//! PKCE (RFC 7636) with the `S256` method only: verifier and challenge syntax, the challenge of
//! a verifier, and verification of a verifier against the challenge sent earlier.

#[cfg(test)]
mod tests;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::secret_token::{random_bytes, RandomError};

/// Shortest code verifier (RFC 7636 §4.1).
pub const MIN_VERIFIER_LEN: usize = 43;
/// Longest code verifier (RFC 7636 §4.1).
pub const MAX_VERIFIER_LEN: usize = 128;
/// Length of an `S256` challenge: base64url of a SHA-256 digest, without padding.
const CHALLENGE_LEN: usize = 43;

/// Whether `v` is a code verifier: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn is_valid_verifier(v: &str) -> bool {
    (MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `c` can be an `S256` challenge: the canonical unpadded base64url of 32 bytes.
pub fn is_valid_challenge(c: &str) -> bool {
    c.len() == CHALLENGE_LEN && URL_SAFE_NO_PAD.decode(c).is_ok_and(|bytes| bytes.len() == 32)
}

/// The `S256` challenge of `verifier`: `BASE64URL(SHA256(verifier))`.
pub fn s256_challenge(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Whether `verifier` is a valid verifier whose `S256` challenge is `challenge`.
///
/// A plain comparison is enough: the challenge is public (it travelled in a URL), and timing
/// only tells about the SHA-256 of the attacker's own input.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    is_valid_verifier(verifier) && s256_challenge(verifier) == challenge
}

/// A new code verifier: 32 random bytes, base64url (43 characters).
pub fn new_verifier() -> Result<String, RandomError> {
    let bytes: [u8; 32] = random_bytes()?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
