//! WireGuard keys: Curve25519 key pairs in WireGuard's base64 text form (as `wg genkey` and
//! `wg pubkey` print them and wg-quick configs carry them).
//!
//! A private key is generated where it is used (the server for its endpoint, a device for its
//! tunnel) and never leaves that place; its `Debug` form is redacted so that it cannot reach a
//! log line by accident.

use std::{fmt, str::FromStr};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use ring::rand::{SecureRandom, SystemRandom};

/// Why a key's text form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a WireGuard key is 44 characters of base64 (32 bytes); this one is not")]
    Malformed,
    #[error("the system random number generator failed")]
    Random,
}

/// A WireGuard private key (a clamped X25519 scalar).
#[derive(Clone)]
pub struct PrivateKey(x25519_dalek::StaticSecret);

/// A WireGuard public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(x25519_dalek::PublicKey);

impl PrivateKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| KeyError::Random)?;
        Ok(Self(x25519_dalek::StaticSecret::from(bytes)))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(x25519_dalek::PublicKey::from(&self.0))
    }

    /// The base64 text form, for the owner-only key file or a wg-quick config.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.to_bytes())
    }

    pub(crate) fn secret(&self) -> &x25519_dalek::StaticSecret {
        &self.0
    }
}

impl FromStr for PrivateKey {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<Self, KeyError> {
        Ok(Self(x25519_dalek::StaticSecret::from(decode(text)?)))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(public {})", self.public_key())
    }
}

impl PublicKey {
    /// Whether a key exchange with this key depends on the other side's secret. A low-order
    /// point (all zeros, and a handful of others) gives the same shared secret for every
    /// private key, so a peer registered with one could be impersonated by anyone.
    pub fn is_contributory(&self) -> bool {
        let probe = x25519_dalek::StaticSecret::from([0x5a; 32]);
        probe.diffie_hellman(&self.0).was_contributory()
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_bytes())
    }

    pub(crate) fn inner(&self) -> x25519_dalek::PublicKey {
        self.0
    }

    pub(crate) fn from_inner(key: x25519_dalek::PublicKey) -> Self {
        Self(key)
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<Self, KeyError> {
        Ok(Self(x25519_dalek::PublicKey::from(decode(text)?)))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

fn decode(text: &str) -> Result<[u8; 32], KeyError> {
    let text = text.trim();
    if text.len() != 44 {
        return Err(KeyError::Malformed);
    }
    let bytes = STANDARD.decode(text).map_err(|_| KeyError::Malformed)?;
    bytes.try_into().map_err(|_| KeyError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pair made by `wg genkey | tee priv | wg pubkey` (wireguard-tools 1.0.20210914).
    const WG_PRIVATE: &str = "yEiAzSguiW5jP+5Q+dCDQTcDRYIDPkka7YXRKAovnGM=";
    const WG_PUBLIC: &str = "VboEGAIZbjG/eSne9iIuNoolLWhlGqbqHqNzQN5geQM=";

    #[test]
    fn public_key_matches_wireguard_tools() {
        let private: PrivateKey = WG_PRIVATE.parse().unwrap();
        assert_eq!(private.public_key().to_base64(), WG_PUBLIC);
        assert_eq!(private.to_base64(), WG_PRIVATE);
    }

    #[test]
    fn generated_keys_round_trip_and_differ() {
        let a = PrivateKey::generate().unwrap();
        let b = PrivateKey::generate().unwrap();
        assert_ne!(a.public_key(), b.public_key());
        let again: PrivateKey = a.to_base64().parse().unwrap();
        assert_eq!(again.public_key(), a.public_key());
        let public: PublicKey = a.public_key().to_string().parse().unwrap();
        assert_eq!(public, a.public_key());
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "abc",
            "yEiAzSguiW5jP+5Q+dCDQTcDRYIDPkka7YXRKAovnGM",
            "!!!!hbfBQKaGvzefSSuufuaBUwZ5xBTaEYgq7zrymj0Y=",
        ] {
            assert_eq!(bad.parse::<PublicKey>(), Err(KeyError::Malformed), "{bad}");
        }
    }

    #[test]
    fn low_order_keys_are_not_contributory() {
        let zero: PublicKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".parse().unwrap();
        assert!(!zero.is_contributory());
        // The point of order 8 from the curve's small subgroup (RFC 7748 test list).
        let order8: PublicKey = "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=".parse().unwrap();
        assert!(!order8.is_contributory());
        assert!(PrivateKey::generate().unwrap().public_key().is_contributory());
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let private: PrivateKey = WG_PRIVATE.parse().unwrap();
        let shown = format!("{private:?}");
        assert!(!shown.contains(WG_PRIVATE), "{shown}");
        assert!(shown.contains(WG_PUBLIC));
    }
}
