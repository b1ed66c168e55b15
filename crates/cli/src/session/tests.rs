//! The session file (owner-only permissions, atomic round trip, loose permissions tightened) and
//! refreshing against a fake server: rotation stored, concurrent refreshes serialized, an ended
//! session deleted with a message saying how to sign in again.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::fake_server::{alice, session_file, FakeServer};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn session(server: &str, access_expires_at: u64) -> Session {
    Session {
        server: server.into(),
        access_token: "agentnet_at_secret".into(),
        access_expires_at,
        refresh_token: "agentnet_rt_secret".into(),
        identity: alice(),
    }
}

#[test]
fn the_file_is_owner_only_and_round_trips() {
    let (file, path, _dir) = session_file("session-file");
    assert!(file.load().unwrap().is_none());
    let stored = session("http://127.0.0.1:4001", 1_700_000_900);
    file.save(&stored).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(file.load().unwrap(), Some(stored.clone()));
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["session.json"]);

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["server"], "http://127.0.0.1:4001");
    assert_eq!(json["access_expires_at"], 1_700_000_900);
    assert_eq!(json["refresh_token"], "agentnet_rt_secret");
    assert_eq!(json["identity"]["name"], "alice@example.com");

    let debug = format!("{stored:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(debug.contains("alice@example.com"), "{debug}");

    // Saving again replaces the file, still owner-only.
    let mut next = stored.clone();
    next.refresh_token = "agentnet_rt_next".into();
    file.save(&next).unwrap();
    assert_eq!(file.load().unwrap().unwrap().refresh_token, "agentnet_rt_next");
    assert_eq!(mode(&path), 0o600);

    assert!(file.delete().unwrap());
    assert!(!file.delete().unwrap());
    assert!(file.load().unwrap().is_none());
}

#[test]
fn a_file_others_can_read_is_tightened() {
    let (file, path, _dir) = session_file("session-loose");
    file.save(&session("http://127.0.0.1:4001", 1)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(file.load().unwrap().is_some());
    assert_eq!(mode(&path), 0o600);

    std::fs::write(&path, "{\"server\": 1}").unwrap();
    let err = file.load().unwrap_err().to_string();
    assert!(
        err.ends_with(
            "is not a session this agentnet version understands; delete it and sign in again"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_fresh_token_is_used_as_is_and_an_expiring_one_is_refreshed() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("session-refresh");
    let now = 1_700_000_000;
    let tokens = server.issue();
    let first = Session::new(&server.url, tokens, now);
    file.save(&first).unwrap();

    // 900 s left: no request.
    assert_eq!(current(&file, now).await.unwrap(), first);
    assert!(server.requests_to("/auth/token").is_empty());

    // Less than a minute left: refreshed, and the rotated refresh token is stored.
    let later = now + 900 - 59;
    let fresh = current(&file, later).await.unwrap();
    assert_eq!(fresh.access_token, "agentnet_at_2");
    assert_eq!(fresh.refresh_token, "agentnet_rt_2");
    assert_eq!(fresh.access_expires_at, later + 900);
    assert_eq!(file.load().unwrap(), Some(fresh.clone()));
    let sent = server.requests_to("/auth/token");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].fields["grant_type"], "refresh_token");
    assert_eq!(sent[0].fields["refresh_token"], "agentnet_rt_1");
    // The old refresh token is spent at the server.
    assert!(!server.lock().refresh_tokens.contains("agentnet_rt_1"));
}

#[tokio::test]
async fn concurrent_refreshes_spend_the_refresh_token_once() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("session-concurrent");
    let now = 1_700_000_000;
    file.save(&Session::new(&server.url, server.issue(), now - 900)).unwrap();
    let (a, b, c) = tokio::join!(current(&file, now), current(&file, now), current(&file, now));
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(a, b);
    assert_eq!(b, c);
    assert_eq!(server.requests_to("/auth/token").len(), 1);
    assert_eq!(file.load().unwrap(), Some(a));
    assert!(!file.path.with_extension("json.lock").exists());
}

#[tokio::test]
async fn an_ended_session_is_deleted_with_a_way_forward() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("session-ended");
    let now = 1_700_000_000;
    let mut stale = session(&server.url, now + 10);
    file.save(&stale).unwrap();
    let err = current(&file, now).await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "your session has ended: the session has ended (invalid_grant); sign in again with `agentnet login --server {}`",
            server.url
        )
    );
    assert!(file.load().unwrap().is_none());

    // An agent is told to enroll again.
    stale.identity.kind = "agent".into();
    file.save(&stale).unwrap();
    let err = current(&file, now).await.unwrap_err().to_string();
    assert!(
        err.ends_with(&format!(
            "sign in again with `agentnet enroll --server {} with a new setup key`",
            server.url
        )),
        "{err}"
    );

    expect_test::expect!["not signed in; run `agentnet login --server URL`"]
        .assert_eq(&current(&file, now).await.unwrap_err().to_string());
}

#[tokio::test]
async fn an_unreachable_server_keeps_the_session() {
    let server = FakeServer::start().await;
    let url = server.url.clone();
    drop(server);
    let (file, _, _dir) = session_file("session-offline");
    let now = 1_700_000_000;
    file.save(&session(&url, now)).unwrap();
    let err = format!("{:#}", current(&file, now).await.unwrap_err());
    assert!(
        err.starts_with("cannot refresh your session: cannot reach the agentnet server at"),
        "{err}"
    );
    assert!(file.load().unwrap().is_some());
}
