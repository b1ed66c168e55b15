//! Tests of password hashing, verification, policy and generation.

use std::collections::HashSet;

use super::{
    check_password_policy, generate_password, hash_password, hash_with_salt, verify_password,
    PasswordError, GENERATED_ALPHABET, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN,
};

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn round_trip() {
    let phc = hash_password(PASSWORD).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(verify_password(PASSWORD, Some(&phc)));
    assert!(!verify_password("correct horse battery stapler", Some(&phc)));
    assert!(!verify_password("", Some(&phc)));
    // Same password, new salt, new hash; both verify.
    let again = hash_password(PASSWORD).unwrap();
    assert_ne!(phc, again);
    assert!(verify_password(PASSWORD, Some(&again)));
}

#[test]
fn unknown_account_and_malformed_hashes_are_refused() {
    assert!(!verify_password(PASSWORD, None));
    let phc = hash_password(PASSWORD).unwrap();
    let malformed = [
        String::new(),
        "not a hash".into(),
        PASSWORD.into(),
        phc[..phc.len() - 10].to_string(),
        phc.replace("$argon2id$", "$argon2i$"),
        phc.replace("$argon2id$", "$scrypt$"),
        // Cost beyond the bounds: refused without computing it.
        phc.replace("m=19456", "m=4194304"),
        phc.replace("t=2", "t=1000"),
    ];
    for hash in &malformed {
        assert!(!verify_password(PASSWORD, Some(hash)), "{hash}");
    }
}

#[test]
fn known_hash_verifies() {
    // From the reference implementation (the `argon2` CLI of the phc-winner-argon2 project):
    // `printf 'fixed salt password' | argon2 "$(printf '\x07%.0s' $(seq 16))" -id -t 2 -k 19456
    // -p 1 -l 32 -e`.
    const REFERENCE: &str = "$argon2id$v=19$m=19456,t=2,p=1$BwcHBwcHBwcHBwcHBwcHBw$\
                             StaxNTp6e+mzLzq142ICoY+9JhSiQ+dmHVaV1RPgpB0";
    assert_eq!(hash_with_salt("fixed salt password", &[7; 16]).unwrap(), REFERENCE);
    assert!(verify_password("fixed salt password", Some(REFERENCE)));
    assert!(!verify_password("fixed salt passwore", Some(REFERENCE)));
}

#[test]
fn policy() {
    let shown = |password: &str| match check_password_policy(password) {
        Ok(()) => "ok".to_string(),
        Err(err) => err.to_string(),
    };
    assert_eq!(shown(&"a".repeat(MIN_PASSWORD_LEN - 1)), "password must be at least 12 characters");
    assert_eq!(shown(&"a".repeat(MIN_PASSWORD_LEN)), "ok");
    // Characters, not bytes: 11 two-byte characters are too short.
    assert_eq!(shown(&"é".repeat(11)), "password must be at least 12 characters");
    assert_eq!(shown(&"é".repeat(MAX_PASSWORD_LEN)), "ok");
    assert_eq!(
        shown(&"a".repeat(MAX_PASSWORD_LEN + 1)),
        "password must be at most 1024 characters"
    );
    assert!(matches!(hash_password("short"), Err(PasswordError::TooShort)));
    assert!(matches!(
        hash_password(&"a".repeat(MAX_PASSWORD_LEN + 1)),
        Err(PasswordError::TooLong)
    ));
}

#[test]
fn over_long_password_never_verifies() {
    let long = "a".repeat(MAX_PASSWORD_LEN + 1);
    // Even against a hash of exactly that string (made without the policy check).
    let phc = hash_with_salt(&long, &[1; 16]).unwrap();
    assert!(!verify_password(&long, Some(&phc)));
}

#[test]
fn generated_passwords() {
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let password = generate_password().unwrap();
        assert_eq!(password.len(), 20);
        assert!(password.bytes().all(|b| GENERATED_ALPHABET.contains(&b)), "{password}");
        assert!(!password.contains(['0', 'O', 'o', '1', 'l', 'I']), "{password}");
        assert!(check_password_policy(&password).is_ok());
        seen.insert(password);
    }
    assert_eq!(seen.len(), 20);
    let password = generate_password().unwrap();
    assert!(verify_password(&password, Some(&hash_password(&password).unwrap())));
}
