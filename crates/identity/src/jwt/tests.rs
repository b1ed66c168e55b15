//! Tests of compact JWS parsing: shapes, headers and the algorithm allowlist.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use expect_test::{expect, Expect};

use super::{parse, MAX_TOKEN_LEN};

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

fn token(header: &str) -> String {
    format!("{}.{}.{}", b64(header), b64(r#"{"sub":"x"}"#), b64("sig"))
}

fn check(token: &str, expect: Expect) {
    let shown = match parse(token) {
        Ok(jws) => format!(
            "{:?} kid={:?} payload={} sig={}",
            jws.alg,
            jws.kid,
            String::from_utf8_lossy(&jws.payload),
            jws.signature.len()
        ),
        Err(err) => format!("{err:?}"),
    };
    expect.assert_eq(&shown);
}

#[test]
fn allowed_algorithms() {
    check(
        &token(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#),
        expect![[r#"Rs256 kid=Some("k1") payload={"sub":"x"} sig=3"#]],
    );
    check(&token(r#"{"alg":"PS512"}"#), expect![[r#"Ps512 kid=None payload={"sub":"x"} sig=3"#]]);
    check(&token(r#"{"alg":"ES384"}"#), expect![[r#"Es384 kid=None payload={"sub":"x"} sig=3"#]]);
    check(&token(r#"{"alg":"EdDSA"}"#), expect![[r#"EdDsa kid=None payload={"sub":"x"} sig=3"#]]);
}

#[test]
fn refused_algorithms() {
    check(&token(r#"{"alg":"none"}"#), expect![[r#"UnsupportedAlgorithm("none")"#]]);
    check(&token(r#"{"alg":"HS256","kid":"k1"}"#), expect![[r#"UnsupportedAlgorithm("HS256")"#]]);
    check(&token(r#"{"alg":"HS512"}"#), expect![[r#"UnsupportedAlgorithm("HS512")"#]]);
    check(&token(r#"{"alg":"rs256"}"#), expect![[r#"UnsupportedAlgorithm("rs256")"#]]);
    check(&token(r#"{"alg":"ES512"}"#), expect![[r#"UnsupportedAlgorithm("ES512")"#]]);
    check(&token(r#"{"alg":""}"#), expect![[r#"UnsupportedAlgorithm("(empty)")"#]]);
    check(
        &token(r#"{"alg":"<script>alert(1)</script>and-a-very-long-tail"}"#),
        expect![[r#"UnsupportedAlgorithm("scriptalert1scri")"#]],
    );
    // alg none with the empty signature it comes with: refused for the algorithm, not the shape.
    let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"));
    check(&none, expect![[r#"UnsupportedAlgorithm("none")"#]]);
}

#[test]
fn malformed() {
    check("", expect![[r#"Missing"#]]);
    check("abc", expect![[r#"Malformed"#]]);
    check("a.b", expect![[r#"Malformed"#]]);
    check("a.b.c.d.e", expect![[r#"Malformed"#]]);
    check("...", expect![[r#"Malformed"#]]);
    check("..", expect![[r#"Malformed"#]]);
    check(&format!("{}.e30.", b64(r#"{"alg":"ES256"}"#)), expect![[r#"Malformed"#]]);
    check(&token(r#"{"kid":"k1"}"#), expect![[r#"Malformed"#]]);
    check(&token(r#"{"alg":256}"#), expect![[r#"Malformed"#]]);
    check(&token(r#"{"alg":"ES256","kid":7}"#), expect![[r#"Malformed"#]]);
    check(&token(r#"{"alg":"ES256","alg":"none"}"#), expect![[r#"Malformed"#]]);
    check(&token(r#"{"alg":"ES256","crit":["b64"],"b64":false}"#), expect![[r#"Malformed"#]]);
    check(&token("[1,2]"), expect![[r#"Malformed"#]]);
    check("!!!.e30.c2ln", expect![[r#"Malformed"#]]);
    let padded = format!("{}=.e30.c2ln", b64(r#"{"alg":"ES256"}"#));
    check(&padded, expect![[r#"Malformed"#]]);
    let bad_payload = format!("{}.***.c2ln", b64(r#"{"alg":"ES256"}"#));
    check(&bad_payload, expect![[r#"Malformed"#]]);
    let huge = format!("{}.{}.c2ln", b64(r#"{"alg":"ES256"}"#), "A".repeat(MAX_TOKEN_LEN));
    check(&huge, expect![[r#"Malformed"#]]);
    check("é.ü.ß", expect![[r#"Malformed"#]]);
}

#[test]
fn signing_input_is_the_first_two_segments() {
    let token = token(r#"{"alg":"ES256"}"#);
    let jws = parse(&token).unwrap();
    let (input, _) = token.rsplit_once('.').unwrap();
    assert_eq!(jws.signing_input, input.as_bytes());
}
