//! Local-account passwords: argon2id hashing into PHC strings, verification that costs the same
//! whether or not the account exists, the length policy, and generated initial passwords.
//!
//! Hashing and verifying take tens of milliseconds of CPU (and 19 MiB of memory) by design:
//! async callers run them in `tokio::task::spawn_blocking`.

#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::secret_token::{random_bytes, random_chars, RandomError};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest accepted password, in characters.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
/// Salt bytes (the PHC recommendation).
const SALT_LEN: usize = 16;

/// Bounds on the cost a stored hash may ask for: a hash beyond them is treated as malformed
/// rather than letting one row make every sign-in attempt burn a gigabyte.
const MAX_MEMORY_KIB: u32 = 256 * 1024;
const MAX_ITERATIONS: u32 = 16;
const MAX_PARALLELISM: u32 = 8;

/// Length of generated passwords: about 116 bits over [`GENERATED_ALPHABET`].
const GENERATED_LEN: usize = 20;
/// Letters and digits without the look-alikes `0 O o 1 l I`: 56 symbols.
pub(crate) const GENERATED_ALPHABET: &[u8] =
    b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz";

/// A password cannot be hashed: it breaks the policy, or hashing failed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_LEN} characters")]
    TooLong,
    #[error("cannot draw a salt")]
    Random(#[from] RandomError),
    #[error("cannot hash the password")]
    Hash(#[source] argon2::password_hash::Error),
}

/// Whether `password` may be set: between [`MIN_PASSWORD_LEN`] and [`MAX_PASSWORD_LEN`]
/// characters (NIST SP 800-63B: length, no composition rules).
pub fn check_password_policy(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        Err(PasswordError::TooShort)
    } else if len > MAX_PASSWORD_LEN {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

/// The argon2id PHC string of `password` (m=19456, t=2, p=1, random 16-byte salt), after
/// checking it against the policy. Slow on purpose: see the module documentation.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_password_policy(password)?;
    let salt: [u8; SALT_LEN] = random_bytes()?;
    hash_with_salt(password, &salt)
}

fn hash_with_salt(password: &str, salt: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(salt).map_err(PasswordError::Hash)?;
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|err| PasswordError::Hash(err.into()))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let hash = argon2.hash_password(password.as_bytes(), &salt).map_err(PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// A hash of a password nobody knows, with the production parameters: what an unknown account
/// or an unusable stored hash is verified against, so that a refusal takes as long as a wrong
/// password. `None` only if argon2 itself cannot hash (then nothing can be verified anyway).
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_with_salt("agentnet dummy password", &[0x5a; 16]).ok());

/// Whether `password` matches the PHC string `phc`.
///
/// `None` (no such account), a malformed hash, a hash of another algorithm than argon2id or an
/// exorbitant cost, and an over-long password are all refused after the same work as a real
/// verification, so the answer time does not reveal which accounts exist.
pub fn verify_password(password: &str, phc: Option<&str>) -> bool {
    let usable = phc.and_then(usable_hash);
    match usable {
        Some(hash) if password.chars().count() <= MAX_PASSWORD_LEN => {
            Argon2::default().verify_password(password.as_bytes(), &hash).is_ok()
        }
        _ => {
            burn_dummy();
            false
        }
    }
}

/// A stored hash worth verifying against: argon2id, within the cost bounds.
fn usable_hash(phc: &str) -> Option<PasswordHash<'_>> {
    let hash = PasswordHash::new(phc).ok()?;
    if hash.algorithm != Algorithm::Argon2id.ident() || hash.hash.is_none() {
        return None;
    }
    let params = Params::try_from(&hash).ok()?;
    let affordable = params.m_cost() <= MAX_MEMORY_KIB
        && params.t_cost() <= MAX_ITERATIONS
        && params.p_cost() <= MAX_PARALLELISM;
    affordable.then_some(hash)
}

/// Spends the time of one verification, and fails.
fn burn_dummy() {
    if let Some(hash) = DUMMY_HASH.as_deref().and_then(|phc| PasswordHash::new(phc).ok()) {
        let _ = Argon2::default().verify_password(b"not the dummy password", &hash);
    }
}

/// A new random password: 20 characters of letters and digits without look-alikes, meant to
/// be shown once (e.g. the first admin's initial password).
pub fn generate_password() -> Result<String, RandomError> {
    random_chars(GENERATED_ALPHABET, GENERATED_LEN)
}
