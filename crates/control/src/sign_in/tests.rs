//! Sign-in with local accounts, through the routers on an in-memory store: the device flow
//! approved on our page, the browser flow with PKCE, refresh rotation and re-checks, sign-out,
//! setup-key enrollment and its refusals, and the admin routes around them. (The external-IdP
//! flows run end to end against a real OIDC provider in tests/e2e.)

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{body::Body, Router};
use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use identity::SessionTable;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;
use crate::accounts_router;

const PASSWORD: &str = "correct horse battery";

struct Harness {
    router: Router,
    store: store::Store,
    sessions: Arc<SessionTable>,
    reloads: Arc<AtomicUsize>,
}

async fn harness() -> Harness {
    harness_with(Duration::ZERO).await
}

async fn harness_with(device_interval: Duration) -> Harness {
    harness_full(device_interval, Duration::ZERO).await
}

async fn harness_full(device_interval: Duration, reuse_grace: Duration) -> Harness {
    let store = store::Store::in_memory(&store::MasterKey::generate().unwrap()).await.unwrap();
    let sessions = Arc::new(SessionTable::new());
    let reloads = Arc::new(AtomicUsize::new(0));
    let counter = reloads.clone();
    let mut settings = SignInSettings::new("http://agentnet.test:4001/");
    settings.device_interval = device_interval;
    settings.reuse_grace = reuse_grace;
    // The store's reads see committed state only, so "deactivated" is what the store says.
    let admit: Admit = Arc::new(Some);
    let after_change: AfterChange = Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    });
    let state = SignInState::new(
        store.clone(),
        sessions.clone(),
        IdentitySource::Local,
        settings,
        admit,
        after_change,
    );
    let router = sign_in_router(state.clone()).merge(accounts_router(state));
    Harness { router, store, sessions, reloads }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn location(&self) -> String {
        self.headers.get(header::LOCATION).unwrap().to_str().unwrap().to_owned()
    }
}

impl Harness {
    async fn send(&self, method: Method, path: &str, content_type: &str, body: String) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(Method::POST, path, "application/x-www-form-urlencoded", body).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, "text/plain", String::new()).await
    }

    async fn json(&self, method: Method, path: &str, body: Value) -> Answer {
        self.send(method, path, "application/json", body.to_string()).await
    }

    async fn add_user(&self, username: &str, email: &str, groups: &[&str]) {
        let answer = self
            .json(
                Method::POST,
                "/api/v1/users",
                json!({"username": username, "email": email, "groups": groups, "password": PASSWORD}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    }

    /// Runs the device flow for `login` and returns the token response.
    async fn device_sign_in(&self, login: &str) -> Value {
        let started = self.form("/auth/device", &[("client", "laptop")]).await;
        assert_eq!(started.status, StatusCode::OK, "{}", started.text);
        let started = started.json();
        let device_code = started["device_code"].as_str().unwrap().to_owned();
        let user_code = started["user_code"].as_str().unwrap().to_owned();
        let approved = self
            .form(
                "/auth/activate",
                &[
                    ("user_code", &user_code),
                    ("login", login),
                    ("password", PASSWORD),
                    ("action", "approve"),
                ],
            )
            .await;
        assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
        let token = self
            .form(
                "/auth/token",
                &[("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", &device_code)],
            )
            .await;
        assert_eq!(token.status, StatusCode::OK, "{}", token.text);
        token.json()
    }

    fn principal_of(&self, access_token: &str) -> Result<domain::Principal, identity::AuthError> {
        self.sessions.verify(access_token, now_ms()).map(|entry| entry.principal)
    }
}

#[tokio::test]
async fn device_flow_with_a_local_account_issues_a_working_session() {
    let h = harness().await;
    h.add_user("alice", "alice@example.com", &["engineering"]).await;

    let started = h.form("/auth/device", &[]).await;
    assert_eq!(started.status, StatusCode::OK);
    assert_eq!(started.headers[header::CACHE_CONTROL], "no-store");
    let started = started.json();
    assert_eq!(started["verification_uri"], "http://agentnet.test:4001/auth/activate");
    let user_code = started["user_code"].as_str().unwrap();
    assert_eq!(
        started["verification_uri_complete"],
        format!("http://agentnet.test:4001/auth/activate?user_code={user_code}")
    );
    let device_code = started["device_code"].as_str().unwrap();
    assert!(device_code.starts_with("agentnet_dc_"));

    // Before approval: pending.
    let poll = h
        .form(
            "/auth/token",
            &[("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", device_code)],
        )
        .await;
    assert_eq!(poll.status, StatusCode::BAD_REQUEST);
    assert_eq!(poll.json()["error"], "authorization_pending");

    // The page shows the code prefilled; a wrong password is refused on the page.
    let page = h.get(&format!("/auth/activate?user_code={}", user_code.to_lowercase())).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains(&format!("value=\"{user_code}\"")), "{}", page.text);
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    let wrong = h
        .form(
            "/auth/activate",
            &[
                ("user_code", user_code),
                ("login", "alice"),
                ("password", "nope nope nope"),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text.contains("Wrong login or password"));

    // The right password (by email, any case) approves it.
    let ok = h
        .form(
            "/auth/activate",
            &[
                ("user_code", user_code),
                ("login", "Alice@Example.com"),
                ("password", PASSWORD),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let token = h
        .form(
            "/auth/token",
            &[("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", device_code)],
        )
        .await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    assert_eq!(token.headers[header::CACHE_CONTROL], "no-store");
    let token = token.json();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["identity"]["name"], "alice@example.com");
    assert_eq!(token["identity"]["kind"], "user");
    assert_eq!(token["identity"]["groups"], json!(["engineering"]));
    let access = token["access_token"].as_str().unwrap();
    assert!(access.starts_with("agentnet_at_"));
    assert!(token["refresh_token"].as_str().unwrap().starts_with("agentnet_rt_"));
    let principal = h.principal_of(access).unwrap();
    assert_eq!(principal.name, "alice@example.com");
    assert_eq!(principal.subject, "local:alice");

    // The device code worked once.
    let again = h
        .form(
            "/auth/token",
            &[("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", device_code)],
        )
        .await;
    assert_eq!(again.json()["error"], "expired_token");

    // The sign-in is in the audit log, without any token.
    let audit = h
        .store
        .audit(&store::AuditQuery { action: Some("session".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "session.sign_in.device");
    assert_eq!(audit[0].actor, "alice@example.com");
    let logged = serde_json::to_string(&audit[0].after).unwrap();
    assert!(!logged.contains(access) && !logged.contains("agentnet_rt_"));
}

#[tokio::test]
async fn device_flow_can_be_denied_and_gives_up_after_repeated_wrong_passwords() {
    let h = harness().await;
    h.add_user("bob", "bob@example.com", &[]).await;
    let started = h.form("/auth/device", &[]).await.json();
    let (device_code, user_code) =
        (started["device_code"].as_str().unwrap(), started["user_code"].as_str().unwrap());
    let denied = h.form("/auth/activate", &[("user_code", user_code), ("action", "deny")]).await;
    assert_eq!(denied.status, StatusCode::OK);
    let poll = h
        .form(
            "/auth/token",
            &[("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", device_code)],
        )
        .await;
    assert_eq!(poll.json()["error"], "access_denied");

    let started = h.form("/auth/device", &[]).await.json();
    let (device_code, user_code) =
        (started["device_code"].as_str().unwrap(), started["user_code"].as_str().unwrap());
    for _ in 0..pending::MAX_FAILED_PASSWORDS {
        h.form(
            "/auth/activate",
            &[
                ("user_code", user_code),
                ("login", "bob"),
                ("password", "wrong password"),
                ("action", "approve"),
            ],
        )
        .await;
    }
    // Even the right password is too late now.
    let late = h
        .form(
            "/auth/activate",
            &[
                ("user_code", user_code),
                ("login", "bob"),
                ("password", PASSWORD),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    let poll = h
        .form(
            "/auth/token",
            &[("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", device_code)],
        )
        .await;
    assert_eq!(poll.json()["error"], "access_denied");
}

#[tokio::test]
async fn polling_too_fast_is_told_to_slow_down() {
    let h = harness_with(Duration::from_secs(2)).await;
    let started = h.form("/auth/device", &[]).await.json();
    assert_eq!(started["interval"], 2);
    let code = started["device_code"].as_str().unwrap();
    let first = h
        .form("/auth/token", &[("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", code)])
        .await;
    assert_eq!(first.json()["error"], "authorization_pending");
    let second = h
        .form("/auth/token", &[("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", code)])
        .await;
    assert_eq!(second.json()["error"], "slow_down");
}

#[tokio::test]
async fn browser_flow_with_pkce_redirects_a_code_to_the_loopback_address() {
    let h = harness().await;
    h.add_user("carol", "carol@example.com", &["platform"]).await;
    let verifier = identity::new_verifier().unwrap();
    let challenge = identity::s256_challenge(&verifier);
    let redirect = "http://127.0.0.1:53123/callback";
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("redirect_uri", redirect),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
        ("client", "laptop <script>"),
    ])
    .unwrap();
    let page = h.get(&format!("/auth/authorize?{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("laptop &lt;script&gt;"), "client label escaped: {}", page.text);
    let flow = page
        .text
        .split("name=\"flow\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    let wrong = h
        .form(
            "/auth/authorize",
            &[("flow", &flow), ("login", "carol"), ("password", "not it at all")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let signed = h
        .form("/auth/authorize", &[("flow", &flow), ("login", "carol"), ("password", PASSWORD)])
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.text);
    let location = signed.location();
    assert!(
        location.starts_with("http://127.0.0.1:53123/callback?code=agentnet_ac_"),
        "{location}"
    );
    assert!(location.ends_with("&state=xyz"), "{location}");
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();

    // A wrong verifier fails, and the code is spent by that attempt.
    let other = identity::new_verifier().unwrap();
    let bad = h
        .form(
            "/auth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &other),
                ("redirect_uri", redirect),
            ],
        )
        .await;
    assert_eq!(bad.json()["error"], "invalid_grant");
    let spent = h
        .form(
            "/auth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", redirect),
            ],
        )
        .await;
    assert_eq!(spent.json()["error"], "invalid_grant");

    // A fresh flow with the right verifier signs in.
    let page = h.get(&format!("/auth/authorize?{query}")).await;
    let flow = page
        .text
        .split("name=\"flow\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let location = h
        .form("/auth/authorize", &[("flow", &flow), ("login", "carol"), ("password", PASSWORD)])
        .await
        .location();
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let token = h
        .form(
            "/auth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", redirect),
            ],
        )
        .await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    assert_eq!(token.json()["identity"]["name"], "carol@example.com");
}

#[tokio::test]
async fn authorize_refuses_non_loopback_redirects_and_plain_challenges() {
    let h = harness().await;
    let evil = h.get("/auth/authorize?response_type=code&redirect_uri=https://evil.example/cb&code_challenge=x&code_challenge_method=S256").await;
    assert_eq!(evil.status, StatusCode::BAD_REQUEST);
    assert!(evil.headers.get(header::LOCATION).is_none());
    let plain = h.get("/auth/authorize?response_type=code&redirect_uri=http://127.0.0.1:9/callback&code_challenge=abc&code_challenge_method=plain&state=s").await;
    assert_eq!(plain.status, StatusCode::SEE_OTHER);
    assert!(
        plain.location().starts_with("http://127.0.0.1:9/callback?error=invalid_request"),
        "{}",
        plain.location()
    );
    for (uri, ok) in [
        ("http://127.0.0.1:8080/callback", true),
        ("http://[::1]:8080/callback", true),
        ("http://localhost:1/callback", true),
        ("http://localhost:1/", false),
        ("http://127.0.0.1:8080/other", false),
        ("http://127.0.0.1/callback", false),
        ("https://127.0.0.1:8080/callback", false),
        ("http://127.0.0.1.evil.example:80/", false),
        ("http://user@127.0.0.1:80/", false),
        ("http://127.0.0.1:80/#frag", false),
    ] {
        assert_eq!(authorize::is_loopback_redirect(uri), ok, "{uri}");
    }
}

#[tokio::test]
async fn refresh_rotates_tokens_and_rechecks_the_local_account() {
    let h = harness().await;
    h.add_user("dave", "dave@example.com", &["a"]).await;
    let first = h.device_sign_in("dave").await;
    let (access, refresh) =
        (first["access_token"].as_str().unwrap(), first["refresh_token"].as_str().unwrap());

    // Groups changed by the admin show up at the next refresh.
    let updated = h
        .json(
            Method::PUT,
            "/api/v1/users/dave",
            json!({"email": "dave@example.com", "groups": ["a", "b"]}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let second =
        h.form("/auth/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let second = second.json();
    assert_eq!(second["identity"]["groups"], json!(["a", "b"]));
    assert_eq!(second["identity"]["session_id"], first["identity"]["session_id"]);
    let (access2, refresh2) =
        (second["access_token"].as_str().unwrap(), second["refresh_token"].as_str().unwrap());
    assert_ne!(access2, access);
    // The old access token is gone from the data plane; the old refresh token is spent.
    assert!(h.principal_of(access).is_err());
    assert_eq!(h.principal_of(access2).unwrap().groups, vec!["a", "b"]);
    // Deactivation revokes the session at once; a refresh then fails.
    let off = h
        .json(
            Method::PUT,
            "/api/v1/users/dave",
            json!({"email": "dave@example.com", "groups": ["a"], "active": false}),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK);
    assert!(h.principal_of(access2).is_err());
    let refused = h
        .form("/auth/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh2)])
        .await;
    assert_eq!(refused.json()["error"], "invalid_grant");
    assert!(h.reloads.load(Ordering::SeqCst) >= 2, "the data plane was told about the changes");
}

#[tokio::test]
async fn sign_out_revokes_the_session_and_lists_show_it() {
    let h = harness().await;
    h.add_user("erin", "erin@example.com", &[]).await;
    let token = h.device_sign_in("erin").await;
    let access = token["access_token"].as_str().unwrap();
    let id = token["identity"]["session_id"].as_str().unwrap();

    let listed = h.get("/api/v1/sessions").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["client"], "laptop");
    assert_eq!(listed[0]["source"], "local");

    let out = h.form("/auth/revoke", &[("token", token["refresh_token"].as_str().unwrap())]).await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(h.principal_of(access).is_err());
    // Unknown tokens are fine too (RFC 7009).
    assert_eq!(
        h.form("/auth/revoke", &[("token", "agentnet_rt_nothing")]).await.status,
        StatusCode::OK
    );
    assert!(h.get("/api/v1/sessions").await.json().as_array().unwrap().is_empty());
    let all = h.get("/api/v1/sessions?all=true").await.json();
    assert_eq!(all[0]["revoked_reason"], "signed out");

    // An admin revokes every session of a person.
    let again = h.device_sign_in("erin").await;
    let revoked = h
        .send(Method::DELETE, "/api/v1/sessions?name=ERIN@example.com", "text/plain", String::new())
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(revoked.json()["revoked"], json!([again["identity"]["session_id"]]));
    assert!(h.principal_of(again["access_token"].as_str().unwrap()).is_err());
}

#[tokio::test]
async fn setup_keys_enroll_agents_once_and_refuse_when_used_up_expired_or_revoked() {
    let h = harness().await;
    let created = h
        .json(
            Method::POST,
            "/api/v1/setup-keys",
            json!({"name": "ci", "auto_groups": ["ci"], "max_uses": 1}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let created = created.json();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("agentnet_sk_"));
    assert_eq!(created["setup_key"]["state"], "valid");
    assert_eq!(created["setup_key"]["prefix"], key[..16]);
    // The key is shown once: never in a listing.
    let listed = h.get("/api/v1/setup-keys").await;
    assert!(!listed.text.contains(&key));

    let enrolled = h
        .json(
            Method::POST,
            "/auth/enroll",
            json!({"setup_key": key, "name": "build-bot", "client": "runner-1"}),
        )
        .await;
    assert_eq!(enrolled.status, StatusCode::OK, "{}", enrolled.text);
    let enrolled = enrolled.json();
    assert_eq!(enrolled["identity"]["kind"], "agent");
    assert_eq!(enrolled["identity"]["name"], "build-bot");
    assert_eq!(enrolled["identity"]["groups"], json!(["ci"]));
    let principal = h.principal_of(enrolled["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(principal.kind, domain::PrincipalKind::Agent);
    let agent = h.store.agent("build-bot").await.unwrap().unwrap();
    assert_eq!(agent.groups, vec!["ci"]);

    let exhausted =
        h.json(Method::POST, "/auth/enroll", json!({"setup_key": key, "name": "other-bot"})).await;
    assert_eq!(exhausted.status, StatusCode::UNAUTHORIZED);
    assert_eq!(exhausted.json()["error"], "invalid_setup_key");
    assert!(
        exhausted.json()["error_description"].as_str().unwrap().contains("used up (1 of 1"),
        "{}",
        exhausted.text
    );
    assert!(h.store.agent("other-bot").await.unwrap().is_none());

    // Revoked.
    let key2 = h
        .json(Method::POST, "/api/v1/setup-keys", json!({"name": "ci2", "max_uses": 5}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked =
        h.send(Method::DELETE, "/api/v1/setup-keys/ci2", "text/plain", String::new()).await;
    assert_eq!(revoked.json()["state"], "revoked");
    let refused =
        h.json(Method::POST, "/auth/enroll", json!({"setup_key": key2, "name": "x"})).await;
    assert!(
        refused.json()["error_description"].as_str().unwrap().contains("revoked"),
        "{}",
        refused.text
    );

    // Expired: written straight to the store with a past expiry.
    let expired = identity::issue_token(identity::TokenKind::SetupKey).unwrap();
    let mut tx = h.store.begin().await.unwrap();
    tx.create_setup_key(
        &store::SetupKeyRecord {
            name: "old".into(),
            prefix: "agentnet_sk_old".into(),
            agent: None,
            auto_groups: vec![],
            max_uses: 1,
            uses: 0,
            expires_at_ms: now_ms() - 1000,
            revoked_at_ms: None,
            created_at_ms: now_ms() - 100_000,
            created_by: "test".into(),
            last_used_at_ms: None,
        },
        expired.digest.as_bytes(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    use secrecy::ExposeSecret;
    let refused = h
        .json(
            Method::POST,
            "/auth/enroll",
            json!({"setup_key": expired.secret.expose_secret(), "name": "y"}),
        )
        .await;
    assert!(
        refused.json()["error_description"].as_str().unwrap().contains("expired"),
        "{}",
        refused.text
    );

    // Unknown and malformed.
    let unknown = h
        .json(Method::POST, "/auth/enroll", json!({"setup_key": "agentnet_sk_nope", "name": "z"}))
        .await;
    assert_eq!(unknown.json()["error_description"], "the setup key is unknown");
    let malformed =
        h.json(Method::POST, "/auth/enroll", json!({"setup_key": "sk-ant-123", "name": "z"})).await;
    assert_eq!(malformed.json()["error"], "invalid_setup_key");
}

#[tokio::test]
async fn an_unbound_key_never_takes_over_an_existing_agent_and_a_bound_key_re_enrolls_it() {
    let h = harness().await;
    let key = h
        .json(Method::POST, "/api/v1/setup-keys", json!({"name": "k", "max_uses": 3}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let first =
        h.json(Method::POST, "/auth/enroll", json!({"setup_key": key, "name": "bot"})).await;
    assert_eq!(first.status, StatusCode::OK);
    let taken =
        h.json(Method::POST, "/auth/enroll", json!({"setup_key": key, "name": "bot"})).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);

    let bound = h
        .json(
            Method::POST,
            "/api/v1/setup-keys",
            json!({"name": "b", "agent": "bot", "max_uses": 2}),
        )
        .await;
    assert_eq!(bound.status, StatusCode::CREATED, "{}", bound.text);
    let bound_key = bound.json()["key"].as_str().unwrap().to_owned();
    let again = h.json(Method::POST, "/auth/enroll", json!({"setup_key": bound_key})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["identity"]["name"], "bot");
    let mismatch = h
        .json(Method::POST, "/auth/enroll", json!({"setup_key": bound_key, "name": "imposter"}))
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);

    let unknown_agent =
        h.json(Method::POST, "/api/v1/setup-keys", json!({"name": "c", "agent": "ghost"})).await;
    assert_eq!(unknown_agent.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn users_admin_generates_passwords_once_and_validates_input() {
    let h = harness().await;
    let created = h
        .json(
            Method::POST,
            "/api/v1/users",
            json!({"username": "Frank", "email": "frank@example.com"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let created = created.json();
    assert_eq!(created["user"]["username"], "frank");
    let password = created["generated_password"].as_str().unwrap();
    assert!(password.len() >= 12);
    assert!(h.get("/api/v1/users").await.text.find(password).is_none());
    let stored = h.store.local_user_for_login("frank").await.unwrap().unwrap().1;
    assert!(stored.starts_with("$argon2id$") && !stored.contains(password));

    let short = h
        .json(
            Method::POST,
            "/api/v1/users",
            json!({"username": "g", "email": "g@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert_eq!(short.json()["error"]["field"], "password");
    let dup = h
        .json(
            Method::POST,
            "/api/v1/users",
            json!({"username": "frank2", "email": "FRANK@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.text);
    let bad_email = h
        .json(
            Method::POST,
            "/api/v1/users",
            json!({"username": "h", "email": "not-an-email", "password": PASSWORD}),
        )
        .await;
    assert_eq!(bad_email.json()["error"]["field"], "email");

    // A password change revokes sessions.
    let token = h.device_sign_in_with("frank", password).await;
    let changed =
        h.json(Method::PUT, "/api/v1/users/frank/password", json!({"password": PASSWORD})).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert!(changed.json().get("generated_password").is_none());
    assert!(h.principal_of(token["access_token"].as_str().unwrap()).is_err());
    let audit = h
        .store
        .audit(&store::AuditQuery { action: Some("user".into()), ..Default::default() })
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "user.password.set"));
    assert!(!serde_json::to_string(
        &audit.iter().map(|e| (&e.before, &e.after)).collect::<Vec<_>>()
    )
    .unwrap()
    .contains("argon2"));
}

impl Harness {
    async fn device_sign_in_with(&self, login: &str, password: &str) -> Value {
        let started = self.form("/auth/device", &[]).await.json();
        let (device_code, user_code) =
            (started["device_code"].as_str().unwrap(), started["user_code"].as_str().unwrap());
        let approved = self
            .form(
                "/auth/activate",
                &[
                    ("user_code", user_code),
                    ("login", login),
                    ("password", password),
                    ("action", "approve"),
                ],
            )
            .await;
        assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
        self.form(
            "/auth/token",
            &[("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", device_code)],
        )
        .await
        .json()
    }
}

#[tokio::test]
async fn token_endpoint_errors_are_oauth_shaped() {
    let h = harness().await;
    let missing = h.form("/auth/token", &[]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json()["error"], "invalid_request");
    let unknown = h.form("/auth/token", &[("grant_type", "password")]).await;
    assert_eq!(unknown.json()["error"], "unsupported_grant_type");
    let bad_refresh = h
        .form("/auth/token", &[("grant_type", "refresh_token"), ("refresh_token", "agentnet_rt_x")])
        .await;
    assert_eq!(bad_refresh.json()["error"], "invalid_grant");
    let junk = h
        .send(Method::POST, "/auth/token", "application/x-www-form-urlencoded", "%%%".into())
        .await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_session() {
    let h = harness().await;
    h.add_user("rita", "rita@example.com", &[]).await;
    let first = h.device_sign_in("rita").await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let second = h
        .form("/auth/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await
        .json();
    let access2 = second["access_token"].as_str().unwrap();
    assert!(h.principal_of(access2).is_ok());

    // The spent token again: someone holds a copy. The session ends for everyone.
    let reused =
        h.form("/auth/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(reused.json()["error"], "invalid_grant");
    assert!(h.principal_of(access2).is_err());
    let current = h
        .form(
            "/auth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", second["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(current.json()["error"], "invalid_grant");
    let sessions = h.get("/api/v1/sessions?all=true").await.json();
    assert_eq!(sessions[0]["revoked_reason"], "refresh token reused");
    let audit = h
        .store
        .audit(&store::AuditQuery { action: Some("session.revoke".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(
        (audit[0].actor_kind, audit[0].actor.as_str()),
        (store::ActorKind::System, "refresh")
    );
}

#[tokio::test]
async fn a_refresh_retried_moments_after_its_rotation_is_refused_without_revoking() {
    let h = harness_full(Duration::ZERO, Duration::from_secs(60)).await;
    h.add_user("sam", "sam@example.com", &[]).await;
    let first = h.device_sign_in("sam").await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let second = h
        .form("/auth/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await
        .json();
    let retried =
        h.form("/auth/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(retried.json()["error"], "invalid_grant");
    assert!(h.principal_of(second["access_token"].as_str().unwrap()).is_ok(), "not revoked");
}

#[tokio::test]
async fn repeated_wrong_passwords_for_one_login_lock_it_for_a_while() {
    let h = harness().await;
    h.add_user("tess", "tess@example.com", &[]).await;
    // Each flow tolerates a few failures; the per-login count spans flows.
    for _ in 0..throttle::MAX_FAILURES {
        let started = h.form("/auth/device", &[]).await.json();
        let code = started["user_code"].as_str().unwrap();
        let wrong = h
            .form(
                "/auth/activate",
                &[
                    ("user_code", code),
                    ("login", "tess"),
                    ("password", "guess guess guess"),
                    ("action", "approve"),
                ],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let started = h.form("/auth/device", &[]).await.json();
    let code = started["user_code"].as_str().unwrap();
    let right = h
        .form(
            "/auth/activate",
            &[
                ("user_code", code),
                ("login", "TESS@example.com"),
                ("password", PASSWORD),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(
        right.status,
        StatusCode::UNAUTHORIZED,
        "even the right password waits out the window"
    );
}
