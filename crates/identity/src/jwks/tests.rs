//! Tests of JWKS parsing, key selection and ring signature checks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use expect_test::{expect, Expect};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use serde_json::json;

use super::{KeySet, Selection};
use crate::jwt::Alg;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn ec_key(kid: &str) -> (EcdsaKeyPair, serde_json::Value) {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": b64(&point[1..33]), "y": b64(&point[33..]),
    });
    (pair, jwk)
}

fn ed_key(kid: &str) -> (Ed25519KeyPair, serde_json::Value) {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = json!({
        "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pair.public_key().as_ref()),
    });
    (pair, jwk)
}

fn rsa_jwk(kid: &str, alg: Option<&str>) -> serde_json::Value {
    // Shape only (a 2048-bit modulus of 0x01 bytes): enough for parsing and selection.
    let mut jwk = json!({ "kty": "RSA", "kid": kid, "n": b64(&[1u8; 256]), "e": "AQAB" });
    if let Some(alg) = alg {
        jwk["alg"] = json!(alg);
    }
    jwk
}

fn set(keys: Vec<serde_json::Value>) -> KeySet {
    KeySet::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

fn check_select(set: &KeySet, kid: Option<&str>, alg: Alg, expect: Expect) {
    let shown = match set.select(kid, alg) {
        Selection::Keys(keys) => format!(
            "keys {:?}",
            keys.iter().map(|k| k.kid.as_deref().unwrap_or("-")).collect::<Vec<_>>()
        ),
        other => format!("{other:?}"),
    };
    expect.assert_eq(&shown);
}

#[test]
fn unusable_keys_are_skipped() {
    let (_, ec) = ec_key("ec");
    let keys = set(vec![
        ec,
        rsa_jwk("rsa", Some("RS256")),
        json!({ "kty": "RSA", "kid": "enc", "use": "enc", "n": b64(&[1u8; 256]), "e": "AQAB" }),
        rsa_jwk("oaep", Some("RSA-OAEP")),
        json!({ "kty": "RSA", "kid": "short", "n": b64(&[1u8; 128]), "e": "AQAB" }),
        json!({ "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" }),
        json!({ "kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA" }),
        json!({ "kty": "EC", "kid": "badlen", "crv": "P-256", "x": b64(&[1; 31]), "y": b64(&[1; 32]) }),
        json!({ "kty": "OKP", "kid": "x25519", "crv": "X25519", "x": b64(&[1; 32]) }),
        json!({ "kty": "EC", "kid": "liar", "crv": "P-256", "alg": "RS256", "x": b64(&[1; 32]), "y": b64(&[1; 32]) }),
        json!({ "kid": "no-kty" }),
        json!("not an object"),
        json!({ "kty": "RSA", "kid": "nonbase64", "n": "!!", "e": "AQAB" }),
    ]);
    assert_eq!(keys.len(), 2);
}

#[test]
fn documents_that_are_not_key_sets_fail() {
    assert!(KeySet::parse(b"{}").is_err());
    assert!(KeySet::parse(b"[]").is_err());
    assert!(KeySet::parse(b"not json").is_err());
    assert_eq!(KeySet::parse(br#"{"keys":[]}"#).unwrap().len(), 0);
}

#[test]
fn selection_by_kid_and_algorithm() {
    let (_, ec) = ec_key("ec");
    let (_, ed) = ed_key("ed");
    let keys = set(vec![ec, ed, rsa_jwk("rsa-any", None), rsa_jwk("rsa-ps", Some("PS256"))]);
    check_select(&keys, Some("ec"), Alg::Es256, expect![[r#"keys ["ec"]"#]]);
    check_select(&keys, Some("ec"), Alg::Es384, expect![[r#"Mismatch"#]]);
    check_select(&keys, Some("ec"), Alg::Rs256, expect![[r#"Mismatch"#]]);
    check_select(&keys, Some("ed"), Alg::EdDsa, expect![[r#"keys ["ed"]"#]]);
    check_select(&keys, Some("rsa-any"), Alg::Ps384, expect![[r#"keys ["rsa-any"]"#]]);
    check_select(&keys, Some("rsa-ps"), Alg::Rs256, expect![[r#"Mismatch"#]]);
    check_select(&keys, Some("rsa-ps"), Alg::Ps256, expect![[r#"keys ["rsa-ps"]"#]]);
    check_select(&keys, Some("nope"), Alg::Es256, expect![[r#"Unknown"#]]);
    check_select(&keys, None, Alg::Rs256, expect![[r#"keys ["rsa-any"]"#]]);
    check_select(&keys, None, Alg::Es384, expect![[r#"Unknown"#]]);
    assert!(keys.knows(Some("ec"), Alg::Rs256));
    assert!(!keys.knows(Some("nope"), Alg::Es256));
}

#[test]
fn ecdsa_and_ed25519_signatures() {
    let rng = SystemRandom::new();
    let (ec_pair, ec) = ec_key("ec");
    let (ed_pair, ed) = ed_key("ed");
    let (other_pair, _) = ec_key("other");
    let keys = set(vec![ec, ed]);
    let message = b"header.payload";

    let Selection::Keys(ec_keys) = keys.select(Some("ec"), Alg::Es256) else { panic!() };
    let good = ec_pair.sign(&rng, message).unwrap();
    assert!(ec_keys[0].verify(Alg::Es256, message, good.as_ref()));
    assert!(!ec_keys[0].verify(Alg::Es256, b"header.tampered", good.as_ref()));
    assert!(!ec_keys[0].verify(Alg::Es384, message, good.as_ref()));
    let forged = other_pair.sign(&rng, message).unwrap();
    assert!(!ec_keys[0].verify(Alg::Es256, message, forged.as_ref()));
    assert!(!ec_keys[0].verify(Alg::Es256, message, b""));

    let Selection::Keys(ed_keys) = keys.select(Some("ed"), Alg::EdDsa) else { panic!() };
    let good = ed_pair.sign(message);
    assert!(ed_keys[0].verify(Alg::EdDsa, message, good.as_ref()));
    assert!(!ed_keys[0].verify(Alg::EdDsa, b"other", good.as_ref()));
    assert!(!ed_keys[0].verify(Alg::Es256, message, good.as_ref()));
}

#[test]
fn rsa_garbage_signature_is_refused_without_panic() {
    let keys = set(vec![rsa_jwk("rsa", None)]);
    let Selection::Keys(rsa) = keys.select(Some("rsa"), Alg::Rs256) else { panic!() };
    assert!(!rsa[0].verify(Alg::Rs256, b"m", &[0u8; 256]));
    assert!(!rsa[0].verify(Alg::Ps512, b"m", &[]));
}

#[test]
fn padded_and_leading_zero_members_are_tolerated() {
    let mut n = vec![0u8];
    n.extend_from_slice(&[1u8; 256]);
    let jwk = json!({
        "kty": "RSA", "kid": "padded",
        "n": base64::engine::general_purpose::URL_SAFE.encode(&n), "e": "AQAB",
    });
    assert_eq!(set(vec![jwk]).len(), 1);
}
