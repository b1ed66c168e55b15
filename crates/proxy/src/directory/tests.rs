//! Tests for the directory snapshot.

use super::*;

fn dir(enabled: bool) -> Directory {
    Directory::new(
        enabled,
        vec![
            DirectoryUser {
                user_name: "Alice@Example.com".into(),
                emails: vec!["alice.work@example.com".into()],
                active: true,
                groups: vec!["sales".into(), "engineering".into()],
            },
            DirectoryUser {
                user_name: "bob@example.com".into(),
                emails: vec![],
                active: false,
                groups: vec!["engineering".into()],
            },
        ],
    )
}

#[test]
fn scim_groups_replace_token_groups() {
    let alice = Principal::user("s", "alice@example.com", vec!["from-token".into()]);
    assert_eq!(dir(true).apply(alice.clone()).unwrap().groups, vec!["engineering", "sales"]);
    let by_email = Principal::user("s", "ALICE.WORK@example.com", vec![]);
    assert_eq!(dir(true).apply(by_email).unwrap().groups.len(), 2);
    // SCIM off: the token decides.
    assert_eq!(dir(false).apply(alice).unwrap().groups, vec!["from-token"]);
}

#[test]
fn deactivated_and_unknown_people() {
    let bob = Principal::user("s", "bob@example.com", vec!["engineering".into()]);
    assert_eq!(dir(true).apply(bob), None);
    let carol = Principal::user("s", "carol@example.com", vec!["engineering".into()]);
    assert!(dir(true).apply(carol).unwrap().groups.is_empty());
    // Agents are not provisioned by SCIM.
    let bot = Principal::agent("ci-bot", vec!["ci".into()]);
    assert_eq!(dir(true).apply(bot).unwrap().groups, vec!["ci"]);
}
