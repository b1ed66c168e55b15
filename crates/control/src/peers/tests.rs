//! Overlay peers through the routers on an in-memory store, with real sessions (local accounts'
//! device flow, setup-key enrollment): registration and addresses, registering again, who may
//! register (agentnet sessions only), validation, a key of someone else's, removal, the admin
//! routes, and peers ending with their session.

use std::{
    net::Ipv4Addr,
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
use crate::{
    accounts_router, sign_in_router, Admit, AfterChange, DeviceRecheck, IdentitySource,
    SignInSettings,
};

const PASSWORD: &str = "correct horse battery";
const SERVER_PUBLIC: &str = "VboEGAIZbjG/eSne9iIuNoolLWhlGqbqHqNzQN5geQM=";

fn overlay_info(network: &str, lifetime: Duration) -> OverlayInfo {
    OverlayInfo {
        network: network.parse().unwrap(),
        server_address: Ipv4Addr::new(100, 64, 0, 1),
        server_public_key: SERVER_PUBLIC.into(),
        endpoint: Some("agentnet.test:51820".into()),
        listen_port: 51820,
        max_peers_per_owner: 3,
        domain: "agentnet.internal".into(),
        dns: true,
        peer_lifetime: lifetime,
        mtu: 1420,
        persistent_keepalive: 25,
    }
}

struct Harness {
    router: Router,
    store: store::Store,
    reloads: Arc<AtomicUsize>,
    state: SignInState,
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    json: Value,
}

async fn harness() -> Harness {
    harness_with(Some(overlay_info("100.64.0.0/10", Duration::from_secs(7 * 86_400)))).await
}

async fn harness_with(overlay: Option<OverlayInfo>) -> Harness {
    harness_full(overlay, None).await
}

async fn harness_full(overlay: Option<OverlayInfo>, access_ttl: Option<Duration>) -> Harness {
    let store = store::Store::in_memory(&store::MasterKey::generate().unwrap()).await.unwrap();
    let reloads = Arc::new(AtomicUsize::new(0));
    let counter = reloads.clone();
    let admit: Admit = Arc::new(Some);
    let after_change: AfterChange = Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    });
    let mut settings = SignInSettings::new("http://agentnet.test:4001");
    if let Some(ttl) = access_ttl {
        settings.access_ttl = ttl;
    }
    let mut state = SignInState::new(
        store.clone(),
        Arc::new(SessionTable::new()),
        IdentitySource::Local,
        settings,
        admit,
        after_change,
    );
    if let Some(overlay) = overlay {
        state = state.with_overlay(overlay);
    }
    let router = sign_in_router(state.clone())
        .merge(accounts_router(state.clone()))
        .merge(peers_router(state.clone()));
    Harness { router, store, reloads, state }
}

fn new_key() -> String {
    overlay::PrivateKey::generate().unwrap().public_key().to_base64()
}

impl Harness {
    async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        content_type: &str,
        body: String,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type)
            .header("x-request-id", "req-peers");
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response =
            self.router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer { status, headers, json: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    async fn json(&self, method: Method, path: &str, bearer: Option<&str>, body: Value) -> Answer {
        self.send(method, path, bearer, "application/json", body.to_string()).await
    }

    async fn call(&self, method: Method, path: &str, bearer: Option<&str>) -> Answer {
        self.send(method, path, bearer, "text/plain", String::new()).await
    }

    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(Method::POST, path, None, "application/x-www-form-urlencoded", body).await
    }

    /// A local account signed in through the device flow; its token response.
    async fn sign_in(&self, username: &str, email: &str, groups: &[&str]) -> Value {
        let user =
            json!({"username": username, "email": email, "groups": groups, "password": PASSWORD});
        let created = self.json(Method::POST, "/api/v1/users", None, user).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
        let started = self.form("/auth/device", &[]).await.json;
        let (device_code, user_code) =
            (started["device_code"].as_str().unwrap(), started["user_code"].as_str().unwrap());
        let approve = [
            ("user_code", user_code),
            ("login", username),
            ("password", PASSWORD),
            ("action", "approve"),
        ];
        assert_eq!(self.form("/auth/activate", &approve).await.status, StatusCode::OK);
        let grant = [("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", device_code)];
        let token = self.form("/auth/token", &grant).await;
        assert_eq!(token.status, StatusCode::OK, "{}", token.json);
        token.json
    }

    async fn register(&self, token: &Value, name: &str, key: &str) -> Answer {
        let body = json!({"name": name, "public_key": key});
        self.json(Method::POST, "/api/v1/me/peers", Some(access(token)), body).await
    }

    async fn overlay_ids(&self) -> Vec<String> {
        let peers = self.store.overlay_peers(now_ms()).await.unwrap();
        peers.into_iter().map(|p| p.peer.id).collect()
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        let query = store::AuditQuery { target_kind: Some("peer".into()), ..Default::default() };
        let mut entries = self.store.audit(&query).await.unwrap();
        entries.reverse();
        entries.into_iter().map(|e| (e.action, e.actor)).collect()
    }
}

fn access(token: &Value) -> &str {
    token["access_token"].as_str().unwrap()
}

fn reason(answer: &Answer) -> &str {
    answer.json["error"]["reason"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn devices_register_get_the_lowest_free_addresses_and_register_again_idempotently() {
    let h = harness().await;
    let alice = h.sign_in("alice", "alice@example.com", &["eng"]).await;
    let (key1, key2) = (new_key(), new_key());

    let first = h.register(&alice, "laptop", &key1).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.json);
    let config: TunnelConfig = serde_json::from_value(first.json.clone()).unwrap();
    assert_eq!(config.peer.address, "100.64.0.2");
    assert_eq!(config.address, "100.64.0.2/32");
    assert_eq!(config.peer.owner, "alice@example.com");
    assert_eq!(config.peer.owner_kind, "user");
    assert_eq!(config.peer.status, "active");
    assert_eq!(config.peer.public_key, key1);
    assert_eq!(config.peer.session_id.as_deref(), alice["identity"]["session_id"].as_str());
    assert_eq!(config.server_public_key, SERVER_PUBLIC);
    assert_eq!(config.endpoint, "agentnet.test:51820");
    assert_eq!(config.allowed_ips, "100.64.0.0/10");
    assert_eq!(config.dns.as_deref(), Some("100.64.0.1"));
    assert_eq!(config.ai_url, "http://ai.agentnet.internal");
    assert_eq!((config.mtu, config.persistent_keepalive), (1420, 25));
    let expires = api_types::time::parse_rfc3339(&config.peer.expires_at).unwrap();
    let week = now_ms() + 7 * 86_400_000;
    assert!((week - 5_000..=week).contains(&expires), "{}", config.peer.expires_at);

    let second = h.register(&alice, "desktop", &key2).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.json["peer"]["address"], "100.64.0.3");

    // The same key again (a new `agentnet peer config`): the same peer and address, renamed.
    let reloads = h.reloads.load(Ordering::SeqCst);
    let again = h.register(&alice, "laptop-2", &format!("  {key1} ")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json);
    assert_eq!(again.json["peer"]["id"], first.json["peer"]["id"]);
    assert_eq!(again.json["peer"]["address"], "100.64.0.2");
    assert_eq!(again.json["peer"]["name"], "laptop-2");
    assert_eq!(h.reloads.load(Ordering::SeqCst), reloads + 1, "the data plane is told");

    let mine = h.call(Method::GET, "/api/v1/me/peers", Some(access(&alice))).await;
    assert_eq!(mine.status, StatusCode::OK);
    let names: Vec<&str> =
        mine.json.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["desktop", "laptop-2"]);

    // What the data plane serves: both, speaking for alice with her session's groups.
    let overlay = h.store.overlay_peers(now_ms()).await.unwrap();
    assert_eq!(overlay.len(), 2);
    assert_eq!(overlay[0].subject, "local:alice");
    assert_eq!(overlay[0].groups, ["eng"]);

    let actions = h.audit_actions().await;
    let alice_name = "alice@example.com".to_owned();
    assert_eq!(actions, vec![("peer.register".to_owned(), alice_name.clone()); 3]);
    let entries = h
        .store
        .audit(&store::AuditQuery { action: Some("peer.register".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(entries[0].before.as_ref().unwrap()["name"], "laptop");
    assert_eq!(entries[0].after.as_ref().unwrap()["name"], "laptop-2");
    assert_eq!(entries[0].request_id.as_deref(), Some("req-peers"));
}

#[tokio::test]
async fn agents_register_with_their_enrolled_session() {
    let h = harness().await;
    let created = h
        .json(
            Method::POST,
            "/api/v1/setup-keys",
            None,
            json!({"name": "ci", "auto_groups": ["ci"]}),
        )
        .await;
    let key = created.json["key"].as_str().unwrap().to_owned();
    let enrolled = h
        .json(Method::POST, "/auth/enroll", None, json!({"setup_key": key, "name": "build-bot"}))
        .await;
    assert_eq!(enrolled.status, StatusCode::OK, "{}", enrolled.json);
    let answer = h.register(&enrolled.json, "runner-1", &new_key()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.json);
    assert_eq!(answer.json["peer"]["owner_kind"], "agent");
    assert_eq!(answer.json["peer"]["owner"], "build-bot");
    let overlay = h.store.overlay_peers(now_ms()).await.unwrap();
    assert_eq!(
        (overlay[0].subject.as_str(), overlay[0].groups.as_slice()),
        ("build-bot", &["ci".to_owned()][..])
    );
}

#[tokio::test]
async fn only_agentnet_sessions_register_devices() {
    let h = harness().await;
    let body = json!({"name": "laptop", "public_key": new_key()});
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";
    for (bearer, why) in [
        (None, "token_missing"),
        (Some(jwt), "not_a_session"),
        (Some("garbage"), "not_a_session"),
        (Some("agentnet_rt_refresh-is-not-access"), "not_a_session"),
        (Some("agentnet_at_unknown"), "session_unknown"),
    ] {
        let answer = h.json(Method::POST, "/api/v1/me/peers", bearer, body.clone()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{bearer:?}");
        assert_eq!(reason(&answer), why, "{bearer:?}");
        assert_eq!(answer.json["error"]["code"], "unauthenticated");
        let message = answer.json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("register devices after `agentnet login` (agents: `agentnet enroll`)"),
            "{message}"
        );
        assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer");
        let listed = h.call(Method::GET, "/api/v1/me/peers", bearer).await;
        assert_eq!(listed.status, StatusCode::UNAUTHORIZED);
    }
    assert!(h.store.peers(&store::PeerQuery::default(), now_ms()).await.unwrap().is_empty());
}

#[tokio::test]
async fn registrations_are_validated() {
    let h = harness().await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    let bad_key = h.register(&alice, "laptop", "not-a-key").await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_key.json["error"]["field"], "public_key");
    assert!(
        bad_key.json["error"]["message"].as_str().unwrap().contains("not a WireGuard public key"),
        "{}",
        bad_key.json
    );
    let server_key = h.register(&alice, "laptop", SERVER_PUBLIC).await;
    assert_eq!(server_key.status, StatusCode::BAD_REQUEST);
    for name in ["", "has space", "ünïcode", &"x".repeat(65), "a/b"] {
        let bad_name = h.register(&alice, name, &new_key()).await;
        assert_eq!(bad_name.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(bad_name.json["error"]["field"], "name");
    }
    let unknown_field = h
        .json(
            Method::POST,
            "/api/v1/me/peers",
            Some(access(&alice)),
            json!({"name": "x", "public_key": new_key(), "private_key": "no"}),
        )
        .await;
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);
    let ok = h.register(&alice, &"x.y_z-0".repeat(9), &new_key()).await;
    assert_eq!(ok.status, StatusCode::CREATED, "63 characters are fine: {}", ok.json);
}

#[tokio::test]
async fn without_an_overlay_the_self_service_routes_say_so() {
    let h = harness_with(None).await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    let answer = h.register(&alice, "laptop", &new_key()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(reason(&answer), "overlay_disabled");
    assert_eq!(
        answer.json["error"]["message"],
        "the overlay is not enabled on this server ([overlay] enabled = true)"
    );
    let listed = h.call(Method::GET, "/api/v1/me/peers", Some(access(&alice))).await;
    assert_eq!(reason(&listed), "overlay_disabled");
    // The admin routes still list what is stored.
    assert_eq!(h.call(Method::GET, "/api/v1/peers", None).await.json, json!([]));
}

#[tokio::test]
async fn a_key_of_someone_else_is_refused_while_their_peer_lives() {
    let h = harness().await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    let bob = h.sign_in("bob", "bob@example.com", &[]).await;
    let key = new_key();
    assert_eq!(h.register(&alice, "laptop", &key).await.status, StatusCode::CREATED);
    let taken = h.register(&bob, "laptop", &key).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.json);
    assert_eq!(taken.json["error"]["code"], "already_exists");
    assert_eq!(reason(&taken), "public_key_taken");
    assert_eq!(h.overlay_ids().await.len(), 1);
}

#[tokio::test]
async fn an_expired_peer_of_someone_else_gives_its_key_up() {
    // Registrations that expire at once.
    let h = harness_with(Some(overlay_info("100.64.0.0/10", Duration::ZERO))).await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    let bob = h.sign_in("bob", "bob@example.com", &[]).await;
    let key = new_key();
    let first = h.register(&alice, "laptop", &key).await;
    assert_eq!(first.json["peer"]["status"], "expired");
    let second = h.register(&bob, "laptop", &key).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.json);
    assert_eq!(second.json["peer"]["owner"], "bob@example.com");
    let old = h.store.peer(first.json["peer"]["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(old.revoked_reason.as_deref(), Some("expired; its key was registered again"));
    // Its address was freed with it.
    assert_eq!(second.json["peer"]["address"], "100.64.0.2");
}

#[tokio::test]
async fn a_full_overlay_network_answers_503() {
    // A /30 has one peer address: .2 (.1 is the server's, .3 the broadcast address).
    let h = harness_with(Some(overlay_info("100.64.0.0/30", Duration::from_secs(3600)))).await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    assert_eq!(h.register(&alice, "one", &new_key()).await.status, StatusCode::CREATED);
    let full = h.register(&alice, "two", &new_key()).await;
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reason(&full), "overlay_exhausted");
    assert!(full.json["error"]["message"].as_str().unwrap().contains("every address"));
}

#[tokio::test]
async fn the_expiry_never_passes_the_session_end() {
    let h =
        harness_with(Some(overlay_info("100.64.0.0/10", Duration::from_secs(365 * 86_400)))).await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    let answer = h.register(&alice, "laptop", &new_key()).await;
    assert_eq!(answer.json["peer"]["expires_at"], alice["identity"]["session_expires_at"]);
}

#[tokio::test]
async fn owners_remove_their_own_peers_only() {
    let h = harness().await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    let bob = h.sign_in("bob", "bob@example.com", &[]).await;
    let peer = h.register(&alice, "laptop", &new_key()).await.json["peer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/me/peers/{peer}");
    let not_bobs = h.call(Method::DELETE, &path, Some(access(&bob))).await;
    assert_eq!(not_bobs.status, StatusCode::NOT_FOUND);
    assert_eq!(h.overlay_ids().await, std::slice::from_ref(&peer));

    let removed = h.call(Method::DELETE, &path, Some(access(&alice))).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.json);
    assert_eq!(removed.json["status"], "revoked");
    assert_eq!(removed.json["revoked_reason"], "removed by alice@example.com");
    assert!(h.overlay_ids().await.is_empty());
    let mine = h.call(Method::GET, "/api/v1/me/peers", Some(access(&alice))).await;
    assert_eq!(mine.json, json!([]));
    // Again: nothing changes.
    let again = h.call(Method::DELETE, &path, Some(access(&alice))).await;
    assert_eq!(again.json["revoked_reason"], "removed by alice@example.com");
    let actions = h.audit_actions().await;
    assert_eq!(
        actions.last().unwrap(),
        &("peer.revoke".to_owned(), "alice@example.com".to_owned())
    );
    assert_eq!(actions.len(), 2);
}

#[tokio::test]
async fn signing_out_revokes_the_sessions_peers() {
    let h = harness().await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    let other = {
        let started = h.form("/auth/device", &[]).await.json;
        let user_code = started["user_code"].as_str().unwrap().to_owned();
        let approve = [
            ("user_code", user_code.as_str()),
            ("login", "alice"),
            ("password", PASSWORD),
            ("action", "approve"),
        ];
        h.form("/auth/activate", &approve).await;
        let device_code = started["device_code"].as_str().unwrap();
        let grant = [("grant_type", api_types::DEVICE_CODE_GRANT), ("device_code", device_code)];
        h.form("/auth/token", &grant).await.json
    };
    let laptop = h.register(&alice, "laptop", &new_key()).await.json["peer"]["id"].clone();
    let desktop = h.register(&other, "desktop", &new_key()).await.json["peer"]["id"].clone();
    assert_eq!(h.overlay_ids().await.len(), 2);

    let reloads = h.reloads.load(Ordering::SeqCst);
    let refresh = alice["refresh_token"].as_str().unwrap();
    assert_eq!(h.form("/auth/revoke", &[("token", refresh)]).await.status, StatusCode::OK);
    assert!(h.reloads.load(Ordering::SeqCst) > reloads, "the data plane reconciles");
    assert_eq!(h.overlay_ids().await, [desktop.as_str().unwrap()]);
    let shown =
        h.call(Method::GET, &format!("/api/v1/peers/{}", laptop.as_str().unwrap()), None).await;
    assert_eq!(shown.json["status"], "revoked");
    assert_eq!(shown.json["revoked_reason"], "signed out");

    // An admin revoking the other session ends its peer too.
    let session = other["identity"]["session_id"].as_str().unwrap();
    let revoked = h.call(Method::DELETE, &format!("/api/v1/sessions/{session}"), None).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(h.overlay_ids().await.is_empty());
    // The revoked session's token registers nothing.
    let late = h.register(&other, "desktop", &new_key()).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admins_list_show_rename_and_revoke_peers() {
    let h = harness().await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    let bob = h.sign_in("bob", "bob@example.com", &[]).await;
    let a = h.register(&alice, "laptop", &new_key()).await.json["peer"].clone();
    let b = h.register(&bob, "desktop", &new_key()).await.json["peer"].clone();
    let id = |peer: &Value| peer["id"].as_str().unwrap().to_owned();

    let all = h.call(Method::GET, "/api/v1/peers", None).await;
    assert_eq!(all.json.as_array().unwrap().len(), 2);
    let bobs = h.call(Method::GET, "/api/v1/peers?owner=BOB@example.com", None).await;
    assert_eq!(bobs.json, json!([b]));
    let shown = h.call(Method::GET, &format!("/api/v1/peers/{}", id(&a)), None).await;
    assert_eq!(shown.json, a);
    let missing = h.call(Method::GET, "/api/v1/peers/nope", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let typo = h.call(Method::GET, "/api/v1/peers?ownr=x", None).await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);

    let path = format!("/api/v1/peers/{}", id(&a));
    let renamed = h.json(Method::PATCH, &path, None, json!({"name": "work-laptop"})).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.json);
    assert_eq!(renamed.json["name"], "work-laptop");
    let bad = h.json(Method::PATCH, &path, None, json!({"name": "no spaces"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let nobody = h.json(Method::PATCH, "/api/v1/peers/nope", None, json!({"name": "x"})).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);

    let revoked = h.call(Method::DELETE, &path, None).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.json["status"], "revoked");
    assert_eq!(revoked.json["revoked_reason"], "admin");
    assert_eq!(h.overlay_ids().await, [id(&b)]);
    let live = h.call(Method::GET, "/api/v1/peers", None).await;
    assert_eq!(live.json.as_array().unwrap().len(), 1);
    let everything = h.call(Method::GET, "/api/v1/peers?all=true", None).await;
    assert_eq!(everything.json.as_array().unwrap().len(), 2);

    let actions = h.audit_actions().await;
    let admin = |action: &str| (action.to_owned(), "local".to_owned());
    assert_eq!(actions[2..], [admin("peer.rename"), admin("peer.revoke")]);
    let entry = &h
        .store
        .audit(&store::AuditQuery { action: Some("peer.revoke".into()), ..Default::default() })
        .await
        .unwrap()[0];
    assert_eq!(entry.before.as_ref().unwrap()["status"], "active");
    assert_eq!(entry.after.as_ref().unwrap()["status"], "revoked");
}

#[tokio::test]
async fn one_owner_holds_at_most_the_configured_number_of_devices() {
    let h = harness().await; // at most 3 per owner
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    for name in ["a", "b", "c"] {
        assert_eq!(h.register(&alice, name, &new_key()).await.status, StatusCode::CREATED);
    }
    let refused = h.register(&alice, "d", &new_key()).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.json);
    assert_eq!(reason(&refused), "too_many_devices");
    assert!(refused.json["error"]["message"].as_str().unwrap().contains("agentnet peer remove"));
    // Others are not affected, and a removed device makes room.
    let bob = h.sign_in("bob", "bob@example.com", &[]).await;
    assert_eq!(h.register(&bob, "a", &new_key()).await.status, StatusCode::CREATED);
    let mine = h.call(Method::GET, "/api/v1/me/peers", Some(access(&alice))).await;
    let id = mine.json[0]["id"].as_str().unwrap().to_owned();
    let removed =
        h.call(Method::DELETE, &format!("/api/v1/me/peers/{id}"), Some(access(&alice))).await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(h.register(&alice, "d", &new_key()).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn expired_registrations_give_their_addresses_back() {
    // Registrations that expire at once.
    let h = harness_with(Some(overlay_info("100.64.0.0/10", Duration::ZERO))).await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    let bob = h.sign_in("bob", "bob@example.com", &[]).await;
    let first = h.register(&alice, "laptop", &new_key()).await;
    assert_eq!(first.json["peer"]["address"], "100.64.0.2");
    let second = h.register(&bob, "desk", &new_key()).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.json);
    assert_eq!(
        second.json["peer"]["address"], "100.64.0.2",
        "the expired peer's address is reused"
    );
    let old = h.store.peer(first.json["peer"]["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(old.revoked_reason.as_deref(), Some("expired"));
    let actions = h.audit_actions().await;
    assert!(actions.contains(&("peer.revoke".to_owned(), "expiry".to_owned())), "{actions:?}");
}

#[tokio::test]
async fn weak_keys_are_refused() {
    let h = harness().await;
    let alice = h.sign_in("alice", "alice@example.com", &[]).await;
    let zero = h.register(&alice, "laptop", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").await;
    assert_eq!(zero.status, StatusCode::BAD_REQUEST, "{}", zero.json);
    assert!(zero.json["error"]["message"].as_str().unwrap().contains("low-order"));
}

#[tokio::test]
async fn the_server_rechecks_device_owners_as_a_refresh_would() {
    // Access tokens short enough that sessions come due for their re-check within the test.
    let overlay = overlay_info("100.64.0.0/10", Duration::from_secs(3600));
    let h = harness_full(Some(overlay), Some(Duration::from_secs(1))).await;
    let alice = h.sign_in("alice", "alice@example.com", &["eng"]).await;
    let peer = h.register(&alice, "laptop", &new_key()).await;
    assert_eq!(peer.status, StatusCode::CREATED);
    // Not due yet: nothing to do.
    assert_eq!(h.state.recheck_device_sessions().await.unwrap(), DeviceRecheck::default());

    // Groups changed at the source (written straight to the store, as an IdP would change
    // them): the re-check carries them to the session the overlay reads.
    let mut tx = h.store.begin().await.unwrap();
    let mut user = tx.local_user("alice").await.unwrap().unwrap();
    user.groups = vec!["ops".into()];
    tx.update_local_user(&user).await.unwrap();
    tx.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reloads = h.reloads.load(Ordering::SeqCst);
    let done = h.state.recheck_device_sessions().await.unwrap();
    assert_eq!(done, DeviceRecheck { current: 1, ..Default::default() });
    assert_eq!(h.store.overlay_peers(now_ms()).await.unwrap()[0].groups, ["ops"]);
    assert_eq!(h.reloads.load(Ordering::SeqCst), reloads + 1, "the overlay is told");
    // Re-checked just now: not due again.
    assert_eq!(h.state.recheck_device_sessions().await.unwrap(), DeviceRecheck::default());

    // The account is gone at the source: the session ends, and its device with it.
    let mut tx = h.store.begin().await.unwrap();
    assert!(tx.delete_local_user("alice").await.unwrap());
    tx.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let done = h.state.recheck_device_sessions().await.unwrap();
    assert_eq!(done, DeviceRecheck { ended: 1, ..Default::default() });
    assert!(h.overlay_ids().await.is_empty());
    let revoked = h.store.peer(peer.json["peer"]["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert!(revoked.revoked_reason.unwrap().contains("deleted or deactivated"));
}
