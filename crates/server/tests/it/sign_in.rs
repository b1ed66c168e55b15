//! Sessions agentnet issues, end to end on a running server: a local account signs in with the
//! device flow over the admin listener and uses the AI endpoint with the session token; an
//! admin's group change or deactivation applies to the very next request; sessions survive a
//! restart; an agent enrolls with a setup key and loses access when its record is deleted.
//! (Sign-in brokered to an external IdP runs against a real OIDC provider in tests/e2e.)

use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

const PASSWORD: &str = "a long local password";

pub(crate) async fn add_user(gw: &TestGateway, username: &str, groups: &[&str]) {
    let (status, body) = gw
        .admin_json(
            Method::POST,
            "/api/v1/users",
            json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "groups": groups,
                "password": PASSWORD,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The device flow as `agentnet login` runs it, approved on the server's own page.
pub(crate) async fn sign_in(gw: &TestGateway, login: &str) -> Value {
    let started = gw.form("/auth/device", &[("client", "it")]).await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text());
    let started = started.json();
    let approved = gw
        .form(
            "/auth/activate",
            &[
                ("user_code", started["user_code"].as_str().unwrap()),
                ("login", login),
                ("password", PASSWORD),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text());
    let token = gw
        .form(
            "/auth/token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", started["device_code"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text());
    token.json()
}

async fn claude(gw: &TestGateway, token: &str) -> Response {
    gw.post("/v1/messages", token, &[ANTHROPIC_VERSION], &messages_body("claude-sonnet-4-5", false))
        .await
}

#[tokio::test]
async fn a_local_account_signs_in_and_admin_changes_apply_to_the_next_request() {
    let gw = TestGateway::start_local(default_config).await;
    add_user(&gw, "alice", &["engineering"]).await;
    let session = sign_in(&gw, "alice").await;
    let access = session["access_token"].as_str().unwrap();

    let ok = claude(&gw, access).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let record = gw.record(&ok.request_id()).await;
    assert_eq!(record.principal.as_deref(), Some("alice@example.com"));
    assert_eq!(record.principal_kind.as_deref(), Some("user"));
    assert_eq!(record.groups, vec!["engineering"]);
    assert_eq!(record.policy.as_deref(), Some("engineering"));

    // The session token is also the self-service credential.
    let me = gw
        .send_admin(Method::GET, "/api/v1/me", &[("authorization", &format!("Bearer {access}"))])
        .await;
    assert_eq!(me.json()["principal"], "alice@example.com");

    // Out of the group: the next request is refused, without signing in again.
    let (status, _) = gw
        .admin_json(
            Method::PUT,
            "/api/v1/users/alice",
            json!({"email": "alice@example.com", "groups": ["sales"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let refused = claude(&gw, access).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());

    // Deactivated: the session is gone.
    let (status, _) = gw
        .admin_json(
            Method::PUT,
            "/api/v1/users/alice",
            json!({"email": "alice@example.com", "groups": ["engineering"], "active": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let gone = claude(&gw, access).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "{}", gone.text());
    assert_eq!(gone.json()["error"]["type"], "authentication_error");
    let refresh = gw
        .form(
            "/auth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", session["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refresh.json()["error"], "invalid_grant");

    // Every step is in the audit log.
    let (_, audit) = gw.admin_json(Method::GET, "/api/v1/audit?action=session", Value::Null).await;
    let actions: Vec<&str> =
        audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["session.revoke", "session.sign_in.device"]);
    gw.stop().await;
}

#[tokio::test]
async fn sessions_survive_a_restart_and_refresh_after_it() {
    let gw = TestGateway::start_local(default_config).await;
    add_user(&gw, "bob", &["engineering"]).await;
    let session = sign_in(&gw, "bob").await;
    let gw = gw.restart().await;
    let access = session["access_token"].as_str().unwrap();
    assert_eq!(claude(&gw, access).await.status, StatusCode::OK);
    let refreshed = gw
        .form(
            "/auth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", session["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text());
    let new_access = refreshed.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claude(&gw, &new_access).await.status, StatusCode::OK);
    assert_eq!(
        claude(&gw, access).await.status,
        StatusCode::UNAUTHORIZED,
        "the old token was rotated out"
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_agent_enrolls_with_a_setup_key_and_loses_access_with_its_record() {
    let gw = TestGateway::start_local(default_config).await;
    let (status, created) = gw
        .admin_json(
            Method::POST,
            "/api/v1/setup-keys",
            json!({"name": "runners", "auto_groups": ["ci"], "max_uses": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap();
    let enrolled = gw
        .send_admin_body(
            Method::POST,
            "/auth/enroll",
            &[("content-type", "application/json")],
            &json!({"setup_key": key, "name": "runner-1"}).to_string(),
        )
        .await;
    assert_eq!(enrolled.status, StatusCode::OK, "{}", enrolled.text());
    let access = enrolled.json()["access_token"].as_str().unwrap().to_owned();

    // The enrollment answered only once the data plane knew the agent's groups.
    let ok =
        gw.post("/v1/chat/completions", &access, &[], r#"{"model":"gpt-5","messages":[]}"#).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let record = gw.record(&ok.request_id()).await;
    assert_eq!(record.principal.as_deref(), Some("runner-1"));
    assert_eq!(record.principal_kind.as_deref(), Some("agent"));
    assert_eq!(record.policy.as_deref(), Some("ci"));

    // Deleting the agent ends its session.
    let (status, _) = gw.admin_json(Method::DELETE, "/api/v1/agents/runner-1", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut status = StatusCode::OK;
    for _ in 0..100 {
        status = gw
            .post("/v1/chat/completions", &access, &[], r#"{"model":"gpt-5","messages":[]}"#)
            .await
            .status;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The data plane forgets the session first; the revocation is then written to the store.
    let mut reason = Value::Null;
    for _ in 0..100 {
        let (_, sessions) =
            gw.admin_json(Method::GET, "/api/v1/sessions?all=true", Value::Null).await;
        reason = sessions[0]["revoked_reason"].clone();
        if !reason.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(reason, "agent deleted");
    gw.stop().await;
}

#[tokio::test]
async fn an_admin_uses_the_admin_api_remotely_with_a_session() {
    let gw = TestGateway::start_local(|a, o| {
        format!("{}\n[admin]\ngroup = \"agentnet-admins\"\n", default_config(a, o))
    })
    .await;
    add_user(&gw, "root", &["agentnet-admins"]).await;
    add_user(&gw, "carl", &["engineering"]).await;
    let admin = sign_in(&gw, "root").await;
    let other = sign_in(&gw, "carl").await;
    let bearer = |s: &Value| format!("Bearer {}", s["access_token"].as_str().unwrap());

    let listed =
        gw.send_admin(Method::GET, "/api/v1/sessions", &[("authorization", &bearer(&admin))]).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    assert_eq!(listed.json().as_array().unwrap().len(), 2);
    let refused =
        gw.send_admin(Method::GET, "/api/v1/sessions", &[("authorization", &bearer(&other))]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // The admin revokes carl's sessions; carl's token stops working, audited under root's name.
    let revoked = gw
        .send_admin(
            Method::DELETE,
            "/api/v1/sessions?name=carl@example.com",
            &[("authorization", &bearer(&admin))],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    assert_eq!(
        claude(&gw, other["access_token"].as_str().unwrap()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let (_, audit) =
        gw.admin_json(Method::GET, "/api/v1/audit?action=session.revoke", Value::Null).await;
    assert_eq!(audit[0]["actor"], "root@example.com");
    assert_eq!(audit[0]["actor_kind"], "admin");
    gw.stop().await;
}
