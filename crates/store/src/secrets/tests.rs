//! Tests for secret sealing.

use super::*;

#[test]
fn round_trip_and_binding() {
    let cipher = Cipher::new(&MasterKey::generate().unwrap()).unwrap();
    let sealed = cipher.seal(b"sk-ant-secret-1234", "provider:anthropic").unwrap();
    assert!(!sealed.windows(6).any(|w| w == b"secret"), "ciphertext must not contain plaintext");
    assert_eq!(cipher.open(&sealed, "provider:anthropic").unwrap(), b"sk-ant-secret-1234");
    // Bound to its context: the same bytes under another provider's name do not open.
    assert!(matches!(cipher.open(&sealed, "provider:openai"), Err(SecretError::Open)));
    // Another master key cannot open it.
    let other = Cipher::new(&MasterKey::generate().unwrap()).unwrap();
    assert!(matches!(other.open(&sealed, "provider:anthropic"), Err(SecretError::Open)));
    // Garbage and truncation are errors, not panics.
    for bad in [&[][..], &[1u8][..], &sealed[..5], &sealed[..sealed.len() - 1]] {
        assert!(cipher.open(bad, "provider:anthropic").is_err());
    }
}

#[test]
fn nonces_differ() {
    let cipher = Cipher::new(&MasterKey::generate().unwrap()).unwrap();
    assert_ne!(cipher.seal(b"x", "c").unwrap(), cipher.seal(b"x", "c").unwrap());
}

#[test]
fn fingerprint_shows_last_four_only() {
    assert_eq!(fingerprint(&SecretString::from("sk-ant-api03-abcdWXYZ")), "…WXYZ");
    assert_eq!(fingerprint(&SecretString::from("ab")), "…ab");
    assert_eq!(format!("{:?}", MasterKey::generate().unwrap()), "MasterKey(..)");
}
