//! Tests of opaque tokens, their digests and user codes.

use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use expect_test::{expect, Expect};
use secrecy::ExposeSecret as _;

use super::{
    issue_token, new_user_code, normalize_user_code, random_chars, sample, TokenDigest, TokenKind,
    USER_CODE_ALPHABET,
};

#[test]
fn issued_tokens_have_their_prefix_and_256_random_bits() {
    for kind in TokenKind::ALL {
        let issued = issue_token(kind).unwrap();
        let token = issued.secret.expose_secret();
        assert_eq!(token.len(), kind.prefix().len() + 43, "{token}");
        let body = token.strip_prefix(kind.prefix()).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert_eq!(TokenKind::of(token), Some(kind));
        assert_eq!(issued.digest, TokenDigest::of(token));
    }
    let tokens: HashSet<String> = (0..100)
        .map(|_| issue_token(TokenKind::Access).unwrap().secret.expose_secret().to_owned())
        .collect();
    assert_eq!(tokens.len(), 100);
}

#[test]
fn kinds_by_prefix() {
    let shown: Vec<String> =
        TokenKind::ALL.into_iter().map(|kind| format!("{kind:?} {}", kind.prefix())).collect();
    expect![[r#"
        Access agentnet_at_
        Refresh agentnet_rt_
        SetupKey agentnet_sk_
        DeviceCode agentnet_dc_
        AuthCode agentnet_ac_"#]]
    .assert_eq(&shown.join("\n"));
    assert_eq!(TokenKind::of("agentnet_rt_abc"), Some(TokenKind::Refresh));
    assert_eq!(TokenKind::of("agentnet_xx_abc"), None);
    assert_eq!(TokenKind::of("AGENTNET_AT_abc"), None);
    assert_eq!(TokenKind::of("eyJhbGciOiJFUzI1NiJ9.e30.sig"), None);
    assert_eq!(TokenKind::of(""), None);
}

#[test]
fn issued_token_debug_hides_the_secret() {
    let issued = issue_token(TokenKind::SetupKey).unwrap();
    let shown = format!("{issued:?}");
    let token = issued.secret.expose_secret();
    assert!(!shown.contains(token), "{shown}");
    assert!(!shown.contains(&token[TokenKind::SetupKey.prefix().len()..][..8]), "{shown}");
}

#[test]
fn digest_is_sha256_of_the_whole_token() {
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    let digest = TokenDigest::of("abc");
    let hex: String = digest.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect![[r#"TokenDigest(ba7816bf…)"#]].assert_eq(&format!("{digest:?}"));

    assert_eq!(TokenDigest::from_bytes(*digest.as_bytes()), digest);
    assert_eq!(TokenDigest::try_from_slice(digest.as_bytes()), Some(digest));
    assert_eq!(TokenDigest::try_from_slice(&digest.as_bytes()[..31]), None);
    assert_eq!(TokenDigest::try_from_slice(&[0; 33]), None);
    assert_ne!(TokenDigest::of("agentnet_at_a"), TokenDigest::of("agentnet_rt_a"));
}

#[test]
fn user_codes_are_well_formed_and_vary() {
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let code = new_user_code().unwrap();
        assert_eq!(code.len(), 9, "{code}");
        assert_eq!(&code[4..5], "-", "{code}");
        assert!(code.bytes().filter(|&b| b != b'-').all(|b| USER_CODE_ALPHABET.contains(&b)));
        assert_eq!(normalize_user_code(&code).as_deref(), Some(code.as_str()));
        seen.insert(code);
    }
    assert!(seen.len() > 190, "{}", seen.len());
}

fn check_normalize(input: &str, expect: Expect) {
    let shown = normalize_user_code(input).unwrap_or_else(|| "(none)".into());
    expect.assert_eq(&shown);
}

#[test]
fn user_codes_are_normalized() {
    check_normalize("BCDF-GHJK", expect!["BCDF-GHJK"]);
    check_normalize("bcdfghjk", expect!["BCDF-GHJK"]);
    check_normalize(" bcdf - ghjk\n", expect!["BCDF-GHJK"]);
    check_normalize("B-C-D-F-G-H-J-K", expect!["BCDF-GHJK"]);
    // Vowels and digits are not in the alphabet.
    check_normalize("BCDF-GHJA", expect!["(none)"]);
    check_normalize("BCDF-GHJ0", expect!["(none)"]);
    // Wrong lengths.
    check_normalize("BCDF-GHJ", expect!["(none)"]);
    check_normalize("BCDF-GHJKL", expect!["(none)"]);
    check_normalize("", expect!["(none)"]);
    check_normalize("--", expect!["(none)"]);
    // Non-ASCII whose uppercase could look like a letter of the alphabet.
    check_normalize("BCDF-GHJſ", expect!["(none)"]);
    check_normalize("ＢCDF-GHJK", expect!["(none)"]);
}

#[test]
fn sampling_is_exactly_uniform_over_all_bytes() {
    // Each of the 256 byte values once: every symbol must come out equally often, and the
    // bytes that would favour the first symbols must be rejected.
    for alphabet in [&USER_CODE_ALPHABET[..], crate::password::GENERATED_ALPHABET, b"ab", b"abc"] {
        let mut counts: HashMap<u8, usize> = HashMap::new();
        for byte in 0..=255u8 {
            if let Some(symbol) = sample(alphabet, byte) {
                *counts.entry(symbol).or_default() += 1;
            }
        }
        let expected = 256 / alphabet.len();
        assert_eq!(counts.len(), alphabet.len());
        assert!(counts.values().all(|&n| n == expected), "{counts:?}");
    }
    assert_eq!(sample(USER_CODE_ALPHABET, 239), Some(b'Z'));
    assert_eq!(sample(USER_CODE_ALPHABET, 240), None);
    assert_eq!(sample(b"", 0), None);
}

#[test]
fn random_chars_draws_from_the_alphabet() {
    let drawn = random_chars(USER_CODE_ALPHABET, 2_000).unwrap();
    assert_eq!(drawn.len(), 2_000);
    // Every symbol shows up (each is expected 100 times).
    for symbol in USER_CODE_ALPHABET {
        assert!(drawn.bytes().any(|b| b == *symbol), "{} never drawn", char::from(*symbol));
    }
    assert!(drawn.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
    assert_eq!(random_chars(b"", 3), Err(super::RandomError));
    assert_eq!(random_chars(b"ab", 0).unwrap(), "");
}
