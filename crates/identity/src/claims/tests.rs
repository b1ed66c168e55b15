//! Tests of claim checks and the claims-to-principal mapping.

use expect_test::{expect, Expect};
use serde_json::{json, Value};

use super::{GroupsClaim, Rules};

const NOW: i64 = 1_700_000_000;

fn rules(groups_claim: &str) -> Rules {
    Rules {
        issuer: "https://idp.example".into(),
        audiences: vec!["agentnet".into(), "agentnet-staging".into()],
        groups: GroupsClaim::new(groups_claim),
        leeway_secs: 30,
    }
}

/// A valid user token's claims, with `changes` merged in (null removes a claim).
fn claims(changes: Value) -> Value {
    let mut claims = json!({
        "iss": "https://idp.example",
        "aud": "agentnet",
        "sub": "00u1",
        "exp": NOW + 300,
        "iat": NOW,
        "email": "alice@example.com",
        "groups": ["engineering", "admins"],
    });
    if let (Some(map), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        for (name, value) in changes {
            if value.is_null() {
                map.remove(name);
            } else {
                map.insert(name.clone(), value.clone());
            }
        }
    }
    claims
}

fn check_with(groups_claim: &str, claims: Value, expect: Expect) {
    let shown = match rules(groups_claim).validate(claims.to_string().as_bytes(), NOW) {
        Ok(v) => format!(
            "{} subject={} name={} groups={:?}",
            v.principal.kind.as_str(),
            v.principal.subject,
            v.principal.name,
            v.principal.groups
        ),
        Err(err) => format!("{err:?}"),
    };
    expect.assert_eq(&shown);
}

fn check(changes: Value, expect: Expect) {
    check_with("groups", claims(changes), expect);
}

#[test]
fn users_and_agents() {
    check(
        json!({}),
        expect![[r#"user subject=00u1 name=alice@example.com groups=["admins", "engineering"]"#]],
    );
    check(
        json!({ "email_verified": true }),
        expect![[r#"user subject=00u1 name=alice@example.com groups=["admins", "engineering"]"#]],
    );
    check(
        json!({ "email": null, "client_id": "ci-bot", "azp": "other", "sub": "svc-1" }),
        expect![[r#"agent subject=ci-bot name=ci-bot groups=["admins", "engineering"]"#]],
    );
    check(
        json!({ "email": null, "azp": "deployer", "sub": "svc-1", "groups": null }),
        expect![[r#"agent subject=deployer name=deployer groups=[]"#]],
    );
    check(
        json!({ "email": null, "client_id": "", "sub": "svc-1" }),
        expect![[r#"agent subject=svc-1 name=svc-1 groups=["admins", "engineering"]"#]],
    );
}

#[test]
fn identity_claims_must_be_usable() {
    check(json!({ "email": null, "sub": null }), expect![[r#"Malformed"#]]);
    check(json!({ "sub": null }), expect![[r#"Malformed"#]]);
    check(json!({ "sub": "" }), expect![[r#"Malformed"#]]);
    check(json!({ "email": 42 }), expect![[r#"Malformed"#]]);
    check(json!({ "email": "" }), expect![[r#"Malformed"#]]);
    check(json!({ "email_verified": false }), expect![[r#"UnverifiedEmail"#]]);
    check(json!({ "email_verified": "false" }), expect![[r#"UnverifiedEmail"#]]);
}

#[test]
fn issuer_and_audience() {
    check(json!({ "iss": "https://evil.example" }), expect![[r#"WrongIssuer"#]]);
    check(json!({ "iss": "https://idp.example/" }), expect![[r#"WrongIssuer"#]]);
    check(json!({ "iss": null }), expect![[r#"WrongIssuer"#]]);
    check(json!({ "iss": ["https://idp.example"] }), expect![[r#"WrongIssuer"#]]);
    check(json!({ "aud": "someone-else" }), expect![[r#"WrongAudience"#]]);
    check(json!({ "aud": null }), expect![[r#"WrongAudience"#]]);
    check(json!({ "aud": [] }), expect![[r#"WrongAudience"#]]);
    check(json!({ "aud": [1, "x"] }), expect![[r#"WrongAudience"#]]);
    check(
        json!({ "aud": ["account", "agentnet-staging"] }),
        expect![[r#"user subject=00u1 name=alice@example.com groups=["admins", "engineering"]"#]],
    );
}

fn accepted(changes: Value) -> bool {
    rules("groups").validate(claims(changes).to_string().as_bytes(), NOW).is_ok()
}

#[test]
fn validity_window_with_leeway() {
    assert!(accepted(json!({ "exp": NOW - 29 })));
    check(json!({ "exp": NOW - 30 }), expect![[r#"Expired"#]]);
    check(json!({ "exp": NOW - 3600 }), expect![[r#"Expired"#]]);
    check(json!({ "exp": null }), expect![[r#"Malformed"#]]);
    check(json!({ "exp": "tomorrow" }), expect![[r#"Malformed"#]]);
    assert!(accepted(json!({ "exp": (NOW + 300) as f64 + 0.5 })));
    assert!(accepted(json!({ "exp": u64::MAX })));
    assert!(accepted(json!({ "nbf": NOW + 30 })));
    check(json!({ "nbf": NOW + 31 }), expect![[r#"NotYetValid"#]]);
    check(json!({ "nbf": "now" }), expect![[r#"Malformed"#]]);
    check(json!({ "exp": -1 }), expect![[r#"Expired"#]]);
    check(json!({ "exp": -1.0e300 }), expect![[r#"Expired"#]]);
}

#[test]
fn groups_shapes() {
    check(
        json!({ "groups": "solo" }),
        expect![[r#"user subject=00u1 name=alice@example.com groups=["solo"]"#]],
    );
    check(
        json!({ "groups": "" }),
        expect![[r#"user subject=00u1 name=alice@example.com groups=[]"#]],
    );
    check(
        json!({ "groups": ["b", "a", "b", 7, null, ""] }),
        expect![[r#"user subject=00u1 name=alice@example.com groups=["a", "b"]"#]],
    );
    check(
        json!({ "groups": { "a": 1 } }),
        expect![[r#"user subject=00u1 name=alice@example.com groups=[]"#]],
    );
    check(
        json!({ "groups": 3 }),
        expect![[r#"user subject=00u1 name=alice@example.com groups=[]"#]],
    );
}

#[test]
fn groups_claim_paths() {
    let keycloak = claims(json!({ "groups": null, "realm_access": { "roles": ["dev", "ops"] } }));
    check_with(
        "realm_access.roles",
        keycloak.clone(),
        expect![[r#"user subject=00u1 name=alice@example.com groups=["dev", "ops"]"#]],
    );
    check_with(
        "realm_access.missing",
        keycloak.clone(),
        expect![[r#"user subject=00u1 name=alice@example.com groups=[]"#]],
    );
    check_with(
        "realm_access.roles.deeper",
        keycloak,
        expect![[r#"user subject=00u1 name=alice@example.com groups=[]"#]],
    );
    // Auth0-style namespaced claim names contain dots: the literal name wins.
    let auth0 = claims(json!({ "https://corp.example/groups": ["finance"] }));
    check_with(
        "https://corp.example/groups",
        auth0,
        expect![[r#"user subject=00u1 name=alice@example.com groups=["finance"]"#]],
    );
    check_with(
        "roles",
        claims(json!({})),
        expect![[r#"user subject=00u1 name=alice@example.com groups=[]"#]],
    );
}

#[test]
fn payloads_that_are_not_claim_objects() {
    for payload in ["", "null", "[]", "\"x\"", "{"] {
        assert_eq!(
            rules("groups").validate(payload.as_bytes(), NOW),
            Err(crate::AuthError::Malformed),
            "{payload}"
        );
    }
}
