//! `agentnet admin users|setup-keys|sessions` against a fake admin API that records each
//! request (method, path, query, body) and answers with `api-types` DTOs, over the Unix socket
//! and, for `--url`, over TCP with a bearer token.

use std::sync::{Arc, Mutex};

use api_types::{LocalUser, Session, SessionsRevoked, SetupKey, SetupKeyCreated};
use axum::{
    body::Bytes,
    extract::{Request, State},
    http::{header, Method, StatusCode},
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
    remote::Remote,
};

/// One request: `METHOD /path?query`, then the JSON body if any, then the bearer token if any.
type Log = Arc<Mutex<Vec<String>>>;

fn user(active: bool) -> LocalUser {
    LocalUser {
        username: "alice".into(),
        email: "alice@example.com".into(),
        display_name: Some("Alice".into()),
        groups: vec!["eng".into()],
        active,
        created_at: "2025-06-01T12:00:00.000Z".into(),
        updated_at: "2025-06-01T12:00:00.000Z".into(),
    }
}

fn setup_key(state: &str) -> SetupKey {
    SetupKey {
        name: "runners".into(),
        prefix: "agentnet_sk_AbCd".into(),
        agent: None,
        auto_groups: vec!["ci".into()],
        max_uses: 10,
        uses: 3,
        expires_at: "2025-06-08T12:00:00.000Z".into(),
        state: state.into(),
        revoked_at: (state == "revoked").then(|| "2025-06-02T12:00:00.000Z".into()),
        last_used_at: None,
        created_at: "2025-06-01T12:00:00.000Z".into(),
        created_by: "local".into(),
    }
}

fn session(id: &str, expires_at: &str, revoked: bool) -> Session {
    Session {
        id: id.into(),
        kind: "user".into(),
        name: "alice@example.com".into(),
        subject: "local:alice".into(),
        groups: vec!["eng".into()],
        source: "local".into(),
        client: Some("laptop".into()),
        created_at: "2025-06-01T12:00:00.000Z".into(),
        refreshed_at: "2025-06-01T12:10:00.000Z".into(),
        expires_at: expires_at.into(),
        revoked_at: revoked.then(|| "2025-06-01T13:00:00.000Z".into()),
        revoked_reason: revoked.then(|| "signed out".into()),
    }
}

/// The fake admin API: records, then answers by route.
async fn fake(State(log): State<Log>, request: Request) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| format!("[{}]", v.to_str().unwrap()))
        .unwrap_or_default();
    let body: Bytes = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let line = [format!("{method} {uri}"), text.clone(), bearer]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    log.lock().unwrap().push(line);
    let input: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let path = uri.path().strip_prefix("/api/v1").unwrap_or_default();
    let json = |value: serde_json::Value| Json(value).into_response();
    let created = |password: &serde_json::Value, user: LocalUser| {
        let generated = password.is_null().then_some("generated-Pa55word!");
        json(serde_json::json!({"user": user, "generated_password": generated}))
    };
    match (method, path) {
        (Method::GET, "/users") => json(serde_json::json!([user(true)])),
        (Method::GET, "/users/alice") => json(serde_json::to_value(user(true)).unwrap()),
        (Method::POST, "/users") => {
            let mut u = user(true);
            u.email = input["email"].as_str().unwrap().into();
            (StatusCode::CREATED, created(&input["password"], u)).into_response()
        }
        (Method::PUT, "/users/alice") => {
            let mut u = user(input["active"].as_bool().unwrap());
            u.email = input["email"].as_str().unwrap().into();
            json(serde_json::to_value(u).unwrap())
        }
        (Method::DELETE, "/users/alice") => StatusCode::NO_CONTENT.into_response(),
        (Method::PUT, "/users/alice/password") => created(&input["password"], user(true)),
        (Method::GET, "/setup-keys") => {
            json(serde_json::json!([setup_key("valid"), setup_key("revoked")]))
        }
        (Method::GET, "/setup-keys/runners") => {
            json(serde_json::to_value(setup_key("valid")).unwrap())
        }
        (Method::POST, "/setup-keys") => {
            let mut key = setup_key("valid");
            key.agent = input["agent"].as_str().map(str::to_owned);
            key.uses = 0;
            let created = SetupKeyCreated { setup_key: key, key: "agentnet_sk_AbCdSECRET".into() };
            (StatusCode::CREATED, Json(created)).into_response()
        }
        (Method::DELETE, "/setup-keys/runners") => {
            json(serde_json::to_value(setup_key("revoked")).unwrap())
        }
        (Method::GET, "/sessions") => json(serde_json::json!([
            session("ses_2", "2999-01-01T00:00:00.000Z", false),
            session("ses_1", "2025-06-02T00:00:00.000Z", false),
            session("ses_0", "2999-01-01T00:00:00.000Z", true),
        ])),
        (Method::DELETE, "/sessions/ses_2") => {
            Json(SessionsRevoked { revoked: vec!["ses_2".into()] }).into_response()
        }
        (Method::DELETE, "/sessions/ses_0") => {
            Json(SessionsRevoked { revoked: Vec::new() }).into_response()
        }
        (Method::DELETE, "/sessions") => {
            Json(SessionsRevoked { revoked: vec!["ses_2".into(), "ses_3".into()] }).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            json(serde_json::json!({"error": {"code": "not_found", "message": format!("no route {path}")}})),
        )
            .into_response(),
    }
}

struct Fake {
    log: Log,
    client: Client,
    task: tokio::task::JoinHandle<()>,
    _dir: Option<TempDir>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// The fake on a Unix socket, as `agentnet admin` reaches a local server.
    async fn on_socket() -> Self {
        let log = Log::default();
        let router = Router::new().fallback(fake).with_state(log.clone());
        let dir = temp_dir("accounts");
        let socket = dir.join("admin.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { log, client: Client::new(socket), task, _dir: Some(TempDir(dir)) }
    }

    /// The fake on TCP, as `agentnet admin --url` reaches a remote one.
    async fn on_tcp(token: &str) -> Self {
        let log = Log::default();
        let router = Router::new().fallback(fake).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let client = Client::remote(Remote::new(&url).unwrap(), token.into());
        Self { log, client, task, _dir: None }
    }

    /// Runs `agentnet admin <args>`; returns the output (or the error) and the requests made.
    async fn run(&self, args: &[&str]) -> (String, String) {
        let argv = ["agentnet", "admin"].into_iter().chain(args.iter().copied());
        let Command::Admin(admin) = Cli::try_parse_from(argv).unwrap().command else { panic!() };
        let password = |user: &str| Ok(format!("typed password of {user}"));
        let now = 1_750_000_000_000; // 2025-06-15
        let result = match admin.command {
            AdminCommand::Users(cmd) => users(&self.client, cmd, admin.json, &password).await,
            AdminCommand::SetupKeys(cmd) => setup_keys(&self.client, cmd, admin.json).await,
            AdminCommand::Sessions(cmd) => sessions(&self.client, cmd, admin.json, now).await,
            other => panic!("{other:?}"),
        };
        let out = result.unwrap_or_else(|err| format!("error: {err:#}\n"));
        let requests = std::mem::take(&mut *self.log.lock().unwrap());
        (out, requests.iter().map(|r| format!("{r}\n")).collect())
    }
}

#[tokio::test]
async fn users_over_the_socket() {
    let fake = Fake::on_socket().await;
    let (out, sent) = fake.run(&["users", "list"]).await;
    expect![[r#"
        USERNAME  EMAIL              DISPLAY NAME  GROUPS  ACTIVE
        alice     alice@example.com  Alice         eng     yes
    "#]]
    .assert_eq(&out);
    expect![[r#"
        GET /api/v1/users
    "#]]
    .assert_eq(&sent);

    let (out, sent) = fake.run(&["users", "show", "alice"]).await;
    expect![[r#"
        username     alice
        email        alice@example.com
        display name Alice
        groups       eng
        active       yes
        created      2025-06-01T12:00:00.000Z
        updated      2025-06-01T12:00:00.000Z
    "#]]
    .assert_eq(&out);
    expect![[r#"
        GET /api/v1/users/alice
    "#]]
    .assert_eq(&sent);

    // The server generates the password: it is printed, once.
    let (out, sent) = fake
        .run(&["users", "create", "alice", "--email", "alice@example.com", "--group", "eng"])
        .await;
    expect![[r#"
        added user 'alice' (alice@example.com)
        The generated password, shown this once (agentnet keeps only its hash):

            password: generated-Pa55word!

        Hand it over on a safe channel; they sign in with `agentnet login --server <admin listener URL>`.
    "#]]
    .assert_eq(&out);
    expect![[r#"
        POST /api/v1/users {"username":"alice","email":"alice@example.com","groups":["eng"]}
    "#]]
    .assert_eq(&sent);

    // A password of the admin's own is sent, and nothing is printed but the outcome.
    let (out, sent) = fake
        .run(&[
            "users",
            "create",
            "alice",
            "--email",
            "a@x.io",
            "--display-name",
            "A",
            "--password-stdin",
        ])
        .await;
    expect![[r#"
        added user 'alice' (a@x.io)
    "#]]
    .assert_eq(&out);
    expect![[r#"
        POST /api/v1/users {"username":"alice","email":"a@x.io","display_name":"A","groups":[],"password":"typed password of alice"}
    "#]]
    .assert_eq(&sent);

    // Update: the current record, with the changes, as a whole.
    let (out, sent) = fake.run(&["users", "update", "alice", "--deactivate"]).await;
    expect![[r#"
        updated user 'alice': deactivated, their sessions are revoked
    "#]]
    .assert_eq(&out);
    expect![[r#"
        GET /api/v1/users/alice
        PUT /api/v1/users/alice {"email":"alice@example.com","display_name":"Alice","groups":["eng"],"active":false}
    "#]]
    .assert_eq(&sent);
    let (out, sent) = fake
        .run(&["users", "update", "alice", "--email", "al@x.io", "--group", "a", "--group", "b"])
        .await;
    expect![[r#"
        updated user 'alice'
    "#]]
    .assert_eq(&out);
    expect![[r#"
        GET /api/v1/users/alice
        PUT /api/v1/users/alice {"email":"al@x.io","display_name":"Alice","groups":["a","b"],"active":true}
    "#]]
    .assert_eq(&sent);
    let (_, sent) =
        fake.run(&["users", "update", "alice", "--no-groups", "--display-name", ""]).await;
    expect![[r#"
        GET /api/v1/users/alice
        PUT /api/v1/users/alice {"email":"alice@example.com","display_name":"","groups":[],"active":true}
    "#]]
    .assert_eq(&sent);
    let (out, _) = fake.run(&["users", "update", "alice"]).await;
    expect![[r#"
        error: nothing to change: give --email, --display-name, --group, --no-groups, --activate or --deactivate
    "#]]
    .assert_eq(&out);

    let (out, sent) = fake.run(&["users", "set-password", "alice"]).await;
    assert!(out.starts_with("set the password of 'alice'; their sessions are revoked\nThe generated password, shown this once"), "{out}");
    assert!(out.contains("\n    password: generated-Pa55word!\n"), "{out}");
    expect![[r#"
        PUT /api/v1/users/alice/password {}
    "#]]
    .assert_eq(&sent);
    let (out, sent) = fake.run(&["users", "set-password", "alice", "--password-stdin"]).await;
    expect![[r#"
        set the password of 'alice'; their sessions are revoked
    "#]]
    .assert_eq(&out);
    expect![[r#"
        PUT /api/v1/users/alice/password {"password":"typed password of alice"}
    "#]]
    .assert_eq(&sent);

    let (out, sent) = fake.run(&["users", "delete", "alice"]).await;
    expect![[r#"
        removed user 'alice'; their sessions are revoked
    "#]]
    .assert_eq(&out);
    expect![[r#"
        DELETE /api/v1/users/alice
    "#]]
    .assert_eq(&sent);
    let (out, _) = fake.run(&["users", "show", "bob"]).await;
    expect![[r#"
        error: no route /users/bob
    "#]]
    .assert_eq(&out);
}

#[tokio::test]
async fn setup_keys_over_the_socket() {
    let fake = Fake::on_socket().await;
    let (out, sent) = fake.run(&["setup-keys", "list"]).await;
    expect![[r#"
        NAME     PREFIX             AGENT  GROUPS  USES  EXPIRES                   STATE    CREATED BY
        runners  agentnet_sk_AbCd…  -      ci      3/10  2025-06-08T12:00:00.000Z  valid    local
        runners  agentnet_sk_AbCd…  -      ci      3/10  2025-06-08T12:00:00.000Z  revoked  local
    "#]]
    .assert_eq(&out);
    expect![[r#"
        GET /api/v1/setup-keys
    "#]]
    .assert_eq(&sent);

    let (out, _) = fake.run(&["setup-keys", "show", "runners"]).await;
    expect![[r#"
        name        runners
        prefix      agentnet_sk_AbCd…
        agent       - (each agent names itself)
        groups      ci
        uses        3 of 10
        expires     2025-06-08T12:00:00.000Z
        state       valid
        last used   -
        created     2025-06-01T12:00:00.000Z
        created by  local
    "#]]
    .assert_eq(&out);

    let (out, sent) = fake
        .run(&[
            "setup-keys",
            "create",
            "runners",
            "--group",
            "ci",
            "--uses",
            "10",
            "--expires-in",
            "7d",
        ])
        .await;
    expect![[r#"
        created setup key 'runners' (10 uses, valid until 2025-06-08T12:00:00.000Z). The key, shown this once (agentnet keeps only its hash):

            agentnet_sk_AbCdSECRET

        On the agent's machine, put it in an environment variable (not on a command line, which other
        users can see) and enroll:

            read -rs AGENTNET_SETUP_KEY && export AGENTNET_SETUP_KEY    # paste the key, then Enter
            agentnet enroll --server <admin listener URL> --setup-key-env AGENTNET_SETUP_KEY --name <agent name>
    "#]]
    .assert_eq(&out);
    expect![[r#"
        POST /api/v1/setup-keys {"name":"runners","auto_groups":["ci"],"max_uses":10,"expires_in":"7d"}
    "#]]
    .assert_eq(&sent);
    // Bound to an agent: the agent's name comes with the key.
    let (out, sent) = fake.run(&["setup-keys", "create", "runners", "--agent", "ci-bot"]).await;
    assert!(out.contains("--setup-key-env AGENTNET_SETUP_KEY\n"), "{out}");
    expect![[r#"
        POST /api/v1/setup-keys {"name":"runners","agent":"ci-bot","auto_groups":[]}
    "#]]
    .assert_eq(&sent);
    // --json carries the key, for scripts.
    let (out, _) = fake.run(&["setup-keys", "create", "runners", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["key"], "agentnet_sk_AbCdSECRET");

    let (out, sent) = fake.run(&["setup-keys", "revoke", "runners"]).await;
    expect![[r#"
        revoked setup key 'runners': it enrolls no more agents
    "#]]
    .assert_eq(&out);
    expect![[r#"
        DELETE /api/v1/setup-keys/runners
    "#]]
    .assert_eq(&sent);
}

#[tokio::test]
async fn sessions_over_the_socket() {
    let fake = Fake::on_socket().await;
    let (out, sent) = fake.run(&["sessions", "list", "--name", "alice@example.com", "--all"]).await;
    expect![[r#"
        ID     KIND  NAME               SOURCE  CLIENT  CREATED                   EXPIRES                   STATE
        ses_2  user  alice@example.com  local   laptop  2025-06-01T12:00:00.000Z  2999-01-01T00:00:00.000Z  live
        ses_1  user  alice@example.com  local   laptop  2025-06-01T12:00:00.000Z  2025-06-02T00:00:00.000Z  expired
        ses_0  user  alice@example.com  local   laptop  2025-06-01T12:00:00.000Z  2999-01-01T00:00:00.000Z  revoked (signed out)
    "#]]
    .assert_eq(&out);
    expect![[r#"
        GET /api/v1/sessions?name=alice%40example.com&all=true
    "#]]
    .assert_eq(&sent);
    let (_, sent) = fake.run(&["sessions", "list"]).await;
    expect![[r#"
        GET /api/v1/sessions
    "#]]
    .assert_eq(&sent);

    let (out, sent) = fake.run(&["sessions", "revoke", "ses_2"]).await;
    expect![[r#"
        revoked session ses_2
    "#]]
    .assert_eq(&out);
    expect![[r#"
        DELETE /api/v1/sessions/ses_2
    "#]]
    .assert_eq(&sent);
    let (out, _) = fake.run(&["sessions", "revoke", "ses_0"]).await;
    expect![[r#"
        session ses_0 was already revoked
    "#]]
    .assert_eq(&out);
    let (out, sent) = fake.run(&["sessions", "revoke", "--name", "alice@example.com"]).await;
    expect![[r#"
        revoked 2 sessions of alice@example.com: ses_2, ses_3
    "#]]
    .assert_eq(&out);
    expect![[r#"
        DELETE /api/v1/sessions?name=alice%40example.com
    "#]]
    .assert_eq(&sent);
}

#[tokio::test]
async fn a_remote_admin_listener_gets_the_bearer_token() {
    let fake = Fake::on_tcp("agentnet_at_admin").await;
    let (out, sent) = fake.run(&["sessions", "revoke", "ses_2"]).await;
    assert_eq!(out, "revoked session ses_2\n");
    expect![[r#"
        DELETE /api/v1/sessions/ses_2 [Bearer agentnet_at_admin]
    "#]]
    .assert_eq(&sent);
    // The setup key's enroll example names the server.
    let (out, _) = fake.run(&["setup-keys", "create", "runners"]).await;
    let server = fake.client.server_url().unwrap().to_owned();
    assert!(out.contains(&format!("agentnet enroll --server {server} --setup-key-env")), "{out}");
    let (out, _) = fake.run(&["users", "show", "bob"]).await;
    assert_eq!(out, "error: no route /users/bob\n");
}
