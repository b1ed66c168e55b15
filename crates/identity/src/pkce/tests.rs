//! Tests of PKCE, against the RFC 7636 Appendix B example.

use super::{is_valid_challenge, is_valid_verifier, new_verifier, s256_challenge, verify_s256};

const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[test]
fn rfc_7636_appendix_b() {
    assert!(is_valid_verifier(RFC_VERIFIER));
    assert_eq!(s256_challenge(RFC_VERIFIER), RFC_CHALLENGE);
    assert!(is_valid_challenge(RFC_CHALLENGE));
    assert!(verify_s256(RFC_VERIFIER, RFC_CHALLENGE));
}

#[test]
fn wrong_verifier_or_challenge_fails() {
    let other = RFC_VERIFIER.replace('d', "e");
    assert!(!verify_s256(&other, RFC_CHALLENGE));
    assert!(!verify_s256(RFC_VERIFIER, &RFC_CHALLENGE.replace('E', "F")));
    assert!(!verify_s256(RFC_VERIFIER, ""));
    // The challenge itself is not a verifier of itself, nor is the plain method accepted.
    assert!(!verify_s256(RFC_CHALLENGE, RFC_CHALLENGE));
    assert!(!verify_s256(RFC_VERIFIER, RFC_VERIFIER));
}

#[test]
fn invalid_verifiers_never_verify() {
    // Too short: valid characters, and the challenge computed from it, still refused.
    let short = "a".repeat(42);
    assert!(!is_valid_verifier(&short));
    assert!(!verify_s256(&short, &s256_challenge(&short)));
    let long = "a".repeat(129);
    assert!(!is_valid_verifier(&long));
    assert!(!verify_s256(&long, &s256_challenge(&long)));
    for bad in ["+", "/", "=", " ", "é", "%"] {
        let verifier = format!("{}{bad}", "a".repeat(43));
        assert!(!is_valid_verifier(&verifier), "{verifier:?}");
        assert!(!verify_s256(&verifier, &s256_challenge(&verifier)), "{verifier:?}");
    }
    assert!(is_valid_verifier(&"a".repeat(43)));
    assert!(is_valid_verifier(&"Az09-._~".repeat(16)));
}

#[test]
fn challenge_syntax() {
    assert!(!is_valid_challenge(""));
    assert!(!is_valid_challenge(&RFC_CHALLENGE[..42]));
    assert!(!is_valid_challenge(&format!("{RFC_CHALLENGE}=")));
    assert!(!is_valid_challenge(&RFC_CHALLENGE.replace('-', "+")));
    // 43 characters whose last one carries bits beyond the 32 bytes: not canonical.
    assert!(!is_valid_challenge(&format!("{}N", &RFC_CHALLENGE[..42])));
}

#[test]
fn new_verifiers_are_valid_and_fresh() {
    let a = new_verifier().unwrap();
    let b = new_verifier().unwrap();
    assert_eq!(a.len(), 43);
    assert!(is_valid_verifier(&a));
    assert_ne!(a, b);
    assert!(verify_s256(&a, &s256_challenge(&a)));
    assert!(is_valid_challenge(&s256_challenge(&a)));
}
