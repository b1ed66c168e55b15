//! `whoami` and `token` against a fake server: the stored token used while it is fresh,
//! refreshed (and the rotation stored) when it is about to expire or is refused, and a clear
//! error without a session.

use expect_test::expect;

use super::*;
use crate::fake_server::{session_file, FakeServer};

#[tokio::test]
async fn token_prints_the_stored_token_or_refreshes_it() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("token");
    expect!["not signed in; run `agentnet login --server URL`"]
        .assert_eq(&token(&file, 1_000).await.unwrap_err().to_string());

    let now = 1_700_000_000;
    file.save(&Session::new(&server.url, server.issue(), now)).unwrap();
    assert_eq!(token(&file, now).await.unwrap(), "agentnet_at_1\n");
    assert_eq!(token(&file, now + 839).await.unwrap(), "agentnet_at_1\n");
    assert!(server.requests_to("/auth/token").is_empty(), "no request while the token is fresh");

    // 59 s left: refreshed first.
    assert_eq!(token(&file, now + 841).await.unwrap(), "agentnet_at_2\n");
    let stored = file.load().unwrap().unwrap();
    assert_eq!(
        (stored.refresh_token.as_str(), stored.access_expires_at),
        ("agentnet_rt_2", now + 841 + 900)
    );

    // The session ended at the server: the error says so, and the file is gone.
    server.lock().refresh_tokens.clear();
    let err = token(&file, now + 5_000).await.unwrap_err().to_string();
    assert!(
        err.starts_with("your session has ended: the session has ended (invalid_grant)"),
        "{err}"
    );
    assert!(file.load().unwrap().is_none());
}

#[tokio::test]
async fn whoami_asks_the_server() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("whoami");
    let now = unix_now().unwrap();
    file.save(&Session::new(&server.url, server.issue(), now)).unwrap();
    let out = whoami(&file, false, now).await.unwrap();
    assert_eq!(
        out,
        format!(
            "name     alice@example.com
kind     user
groups   engineering, sre
server   {}
session  ends 2030-01-01T00:00:00.000Z
",
            server.url
        )
    );
    assert_eq!(server.requests_to("/api/v1/me")[0].bearer.as_deref(), Some("agentnet_at_1"));
    let json: SelfView = serde_json::from_str(&whoami(&file, true, now).await.unwrap()).unwrap();
    assert_eq!(json.principal, "alice@example.com");
}

#[tokio::test]
async fn a_refused_access_token_is_refreshed_once() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("whoami-refused");
    let now = unix_now().unwrap();
    file.save(&Session::new(&server.url, server.issue(), now)).unwrap();
    // The server forgot the access token (say, its clock is ahead) but the session lives.
    server.lock().access_tokens.clear();
    let (session, _) = me(&file, None, now).await.unwrap();
    assert_eq!(session.access_token, "agentnet_at_2");
    let bearers: Vec<_> =
        server.requests_to("/api/v1/me").into_iter().map(|r| r.bearer.unwrap()).collect();
    assert_eq!(bearers, ["agentnet_at_1", "agentnet_at_2"]);
    assert_eq!(file.load().unwrap().unwrap().refresh_token, "agentnet_rt_2");

    // A token refused again is an error, not a loop.
    server.lock().refuse_all = true;
    let err = me(&file, None, now).await.unwrap_err().to_string();
    expect!["your token was refused: the token has expired"].assert_eq(&err);
    assert_eq!(server.requests_to("/api/v1/me").len(), 4);
    assert_eq!(server.requests_to("/auth/token").len(), 2);
}

#[tokio::test]
async fn usage_can_be_sent_to_another_server_with_the_session() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("whoami-server");
    let now = unix_now().unwrap();
    file.save(&Session::new("http://127.0.0.1:9", server.issue(), now)).unwrap();
    let (_, bytes) = me(&file, Some(&server.url), now).await.unwrap();
    let out = crate::usage::output(&bytes, false).unwrap();
    assert!(out.starts_with("alice@example.com (user), groups: engineering, sre\n"), "{out}");
}
