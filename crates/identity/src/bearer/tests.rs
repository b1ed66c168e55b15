//! Tests of `bearer_token`: header forms as real clients send them.

use expect_test::{expect, Expect};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::bearer_token;

fn check(headers: &[(&str, &str)], expect: Expect) {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    expect.assert_eq(&format!("{:?}", bearer_token(&map)));
}

#[test]
fn authorization_bearer() {
    check(&[("authorization", "Bearer abc.def.ghi")], expect![[r#"Some("abc.def.ghi")"#]]);
    check(&[("authorization", "bearer abc")], expect![[r#"Some("abc")"#]]);
    check(&[("authorization", "BEARER   abc  ")], expect![[r#"Some("abc")"#]]);
    check(&[("authorization", "Bearer")], expect![[r#"None"#]]);
    check(&[("authorization", "Bearer   ")], expect![[r#"None"#]]);
    check(&[("authorization", "Basic dXNlcjpwYXNz")], expect![[r#"None"#]]);
    check(&[("authorization", "Bearerabc")], expect![[r#"None"#]]);
}

#[test]
fn x_api_key() {
    check(&[("x-api-key", "sk-ant-xyz")], expect![[r#"Some("sk-ant-xyz")"#]]);
    check(&[("x-api-key", "  ")], expect![[r#"None"#]]);
    check(&[], expect![[r#"None"#]]);
}

#[test]
fn authorization_wins_and_falls_back() {
    // Claude Code's apiKeyHelper: the same value in both.
    check(&[("authorization", "Bearer tok"), ("x-api-key", "tok")], expect![[r#"Some("tok")"#]]);
    check(&[("authorization", "Bearer a"), ("x-api-key", "b")], expect![[r#"Some("a")"#]]);
    check(&[("authorization", "Basic zzz"), ("x-api-key", "b")], expect![[r#"Some("b")"#]]);
}

#[test]
fn non_ascii_values_are_ignored() {
    let mut map = HeaderMap::new();
    map.insert("authorization", HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap());
    assert_eq!(bearer_token(&map), None);
}
