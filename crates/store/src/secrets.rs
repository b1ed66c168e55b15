//! Secret encryption at rest: AEAD (AES-256-GCM, from `ring`) under the master key.
//!
//! Each ciphertext is `version (1 byte) || nonce (12 bytes) || sealed`, with a fresh random
//! nonce and the owning record's identity as associated data, so a ciphertext copied to another
//! row does not decrypt there.

use ring::{
    aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN},
    rand::{SecureRandom, SystemRandom},
};
use secrecy::{ExposeSecret, SecretBox, SecretString};

const VERSION: u8 = 1;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key must be 32 bytes, got {0}")]
    KeyLength(usize),
    #[error("the system random source failed")]
    Random,
    #[error("a stored secret does not decrypt under this master key (wrong key, or tampered)")]
    Open,
    #[error("a stored secret is not valid UTF-8")]
    NotUtf8,
}

/// The 32-byte master key. Never printed: `Debug` shows nothing of it.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::KeyLength(bytes.len()))?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    /// A fresh random key (the server writes it to the data directory on first start).
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = [0u8; 32];
        SystemRandom::new().fill(&mut key).map_err(|_| SecretError::Random)?;
        Self::from_bytes(&key)
    }

    pub fn expose_bytes(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Seals and opens secrets under the master key.
pub(crate) struct Cipher {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Cipher {
    pub(crate) fn new(master: &MasterKey) -> Result<Self, SecretError> {
        let unbound = UnboundKey::new(&AES_256_GCM, master.expose_bytes())
            .map_err(|_| SecretError::KeyLength(32))?;
        Ok(Self { key: LessSafeKey::new(unbound), rng: SystemRandom::new() })
    }

    pub(crate) fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SecretError::Random)?;
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SecretError::Random)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub(crate) fn open(&self, ciphertext: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        let (version, rest) = ciphertext.split_first().ok_or(SecretError::Open)?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Open)?;
        let mut buf = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SecretError::Open)?;
        Ok(plain.to_vec())
    }

    pub(crate) fn open_string(
        &self,
        ciphertext: &[u8],
        context: &str,
    ) -> Result<SecretString, SecretError> {
        let bytes = self.open(ciphertext, context)?;
        String::from_utf8(bytes).map(SecretString::from).map_err(|_| SecretError::NotUtf8)
    }
}

/// What operators may see of a key: its last four characters.
pub fn fingerprint(secret: &SecretString) -> String {
    let key = secret.expose_secret();
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests;
