//! `agentnet admin peers` against a fake admin API on a Unix socket that records each request
//! and answers with `PeerView`s.

use std::sync::{Arc, Mutex};

use axum::{
    body::Bytes,
    extract::{Request, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
    Json, Router,
};
use clap::Parser;
use expect_test::expect;

use super::*;
use crate::{
    admin::tests::temp_dir,
    args::{AdminCommand, Cli, Command},
    fake_server::TempDir,
};

type Log = Arc<Mutex<Vec<String>>>;

fn peer(id: &str, name: &str, status: &str) -> PeerView {
    PeerView {
        id: id.into(),
        name: name.into(),
        owner_kind: "user".into(),
        owner: "alice@example.com".into(),
        public_key: "VboEGAIZbjG/eSne9iIuNoolLWhlGqbqHqNzQN5geQM=".into(),
        address: "100.64.0.2".into(),
        status: status.into(),
        session_id: Some("ses_1".into()),
        created_at: "2025-06-01T12:00:00.000Z".into(),
        expires_at: "2025-07-01T12:00:00.000Z".into(),
        revoked_at: (status == "revoked").then(|| "2025-06-02T12:00:00.000Z".into()),
        revoked_reason: (status == "revoked").then(|| "admin".into()),
        last_handshake_at: Some("2025-06-01T12:05:00.000Z".into()),
        rx_bytes: 2048,
        tx_bytes: 3 * 1024 * 1024,
    }
}

async fn fake(State(log): State<Log>, request: Request) -> Response {
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let body: Bytes = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    log.lock().unwrap().push(format!("{method} {uri} {text}").trim_end().to_owned());
    let path = uri.path().strip_prefix("/api/v1").unwrap_or_default();
    match (method, path) {
        (Method::GET, "/peers") => {
            let mut peers = vec![peer("p2", "desktop", "active")];
            if uri.query().is_some_and(|q| q.contains("all=true")) {
                peers.push(peer("p1", "old", "revoked"));
            }
            Json(peers).into_response()
        }
        (Method::PATCH, "/peers/p2") => {
            let input: PeerRename = serde_json::from_str(&text).unwrap();
            Json(peer("p2", &input.name, "active")).into_response()
        }
        (Method::DELETE, "/peers/p2") => Json(peer("p2", "desktop", "revoked")).into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": {"code": "not_found", "message": "peer 'nope' does not exist"}})),
        )
            .into_response(),
    }
}

async fn run(client: &Client, log: &Log, args: &[&str]) -> (String, String) {
    let argv = ["agentnet", "admin"].into_iter().chain(args.iter().copied());
    let Command::Admin(admin) = Cli::try_parse_from(argv).unwrap().command else { panic!() };
    let AdminCommand::Peers(cmd) = admin.command else { panic!() };
    let out = peers(client, cmd, admin.json).await.unwrap_or_else(|e| format!("error: {e:#}\n"));
    let sent = std::mem::take(&mut *log.lock().unwrap());
    (out, sent.iter().map(|r| format!("{r}\n")).collect())
}

#[tokio::test]
async fn peers_list_rename_and_revoke() {
    let log = Log::default();
    let router = Router::new().fallback(fake).with_state(log.clone());
    let dir = TempDir(temp_dir("admin-peers"));
    let socket = dir.0.join("admin.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = Client::new(socket);

    let (out, sent) =
        run(&client, &log, &["peers", "list", "--owner", "alice@example.com", "--all"]).await;
    expect![[r#"
        ID  NAME     OWNER                     ADDRESS     STATUS           EXPIRES                   LAST HANDSHAKE                 RX       TX
        p2  desktop  alice@example.com (user)  100.64.0.2  active           2025-07-01T12:00:00.000Z  2025-06-01T12:05:00.000Z  2.0 KiB  3.0 MiB
        p1  old      alice@example.com (user)  100.64.0.2  revoked (admin)  2025-07-01T12:00:00.000Z  2025-06-01T12:05:00.000Z  2.0 KiB  3.0 MiB
    "#]]
    .assert_eq(&out);
    expect![[r#"
        GET /api/v1/peers?owner=alice%40example.com&all=true
    "#]]
    .assert_eq(&sent);

    let (out, sent) = run(&client, &log, &["peers", "rename", "p2", "work-desktop"]).await;
    expect![[r#"
        renamed peer p2 of alice@example.com to 'work-desktop'
    "#]]
    .assert_eq(&out);
    expect![[r#"
        PATCH /api/v1/peers/p2 {"name":"work-desktop"}
    "#]]
    .assert_eq(&sent);

    let (out, sent) = run(&client, &log, &["peers", "revoke", "p2"]).await;
    expect![[r#"
        revoked peer p2 ('desktop' of alice@example.com, 100.64.0.2): its tunnel no longer works
    "#]]
    .assert_eq(&out);
    expect![[r#"
        DELETE /api/v1/peers/p2
    "#]]
    .assert_eq(&sent);

    let (out, _) = run(&client, &log, &["peers", "revoke", "nope"]).await;
    expect![[r#"
        error: peer 'nope' does not exist
    "#]]
    .assert_eq(&out);
    let (out, _) = run(&client, &log, &["--json", "peers", "list"]).await;
    let listed: Vec<PeerView> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed, [peer("p2", "desktop", "active")]);
    task.abort();
}
