//! The overlay end to end, in one process: a person signs in, registers a device key, and an
//! in-process client tunnel (real WireGuard over loopback UDP, the userspace stack on both ends)
//! reaches the AI endpoint with no token at all — the tunnel says who calls. Group changes apply
//! to the next request on the same connection; revoking the peer resets its connections at once.
//! (Stock wireguard-go peers in network namespaces and the real CLIs are in tests/e2e.)

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::{
    sign_in::{add_user, sign_in},
    support::*,
};

fn overlay_config(anthropic: &str, openai: &str) -> String {
    format!(
        "{}\n[overlay]\nenabled = true\nlisten = \"127.0.0.1:0\"\n",
        default_config(anthropic, openai)
    )
}

/// Registers a fresh device key for the session; returns the key and the server's answer.
async fn register(gw: &TestGateway, access: &str, name: &str) -> (overlay::PrivateKey, Value) {
    let key = overlay::PrivateKey::generate().unwrap();
    let reply = gw
        .send_admin_body(
            Method::POST,
            "/api/v1/me/peers",
            &[("authorization", &format!("Bearer {access}")), ("content-type", "application/json")],
            &json!({"name": name, "public_key": key.public_key().to_base64()}).to_string(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    (key, reply.json())
}

async fn join(
    gw: &TestGateway,
    key: overlay::PrivateKey,
    tunnel: &Value,
) -> std::sync::Arc<overlay::ClientTunnel> {
    let address: Ipv4Addr =
        tunnel["address"].as_str().unwrap().split('/').next().unwrap().parse().unwrap();
    let server: Ipv4Addr = tunnel["server_address"].as_str().unwrap().parse().unwrap();
    overlay::ClientTunnel::start(overlay::ClientSettings {
        private_key: key,
        address,
        network: tunnel["allowed_ips"].as_str().unwrap().parse().unwrap(),
        server_public_key: tunnel["server_public_key"].as_str().unwrap().parse().unwrap(),
        endpoint: format!("127.0.0.1:{}", gw.overlay_port.unwrap()).parse().unwrap(),
        ai: SocketAddrV4::new(server, 80),
    })
    .await
    .unwrap()
}

type Sender = http1::SendRequest<Full<Bytes>>;

/// An HTTP/1.1 connection to the AI endpoint through the tunnel.
async fn connect(client: &overlay::ClientTunnel) -> Sender {
    let stream = client.connect_ai().await.expect("connect through the tunnel");
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

/// A Messages request with no credentials at all.
async fn ask(sender: &mut Sender) -> Result<Response, hyper::Error> {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/messages")
        .header("host", "ai.agentnet.internal")
        .header("content-type", "application/json")
        .header(ANTHROPIC_VERSION.0, ANTHROPIC_VERSION.1)
        .body(Full::new(Bytes::from(messages_body("claude-sonnet-4-5", false))))
        .unwrap();
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Response { status, headers, body })
}

#[tokio::test]
async fn a_registered_device_reaches_the_ai_endpoint_with_no_token_and_is_cut_on_revocation() {
    let gw = TestGateway::start_local(overlay_config).await;
    add_user(&gw, "alice", &["engineering"]).await;
    let session = sign_in(&gw, "alice").await;
    let access = session["access_token"].as_str().unwrap();

    let (key, tunnel) = register(&gw, access, "laptop").await;
    assert_eq!(tunnel["address"], "100.64.0.2/32");
    assert_eq!(tunnel["allowed_ips"], "100.64.0.0/10");
    assert_eq!(tunnel["peer"]["owner"], "alice@example.com");
    let port = gw.overlay_port.unwrap();
    assert_eq!(tunnel["endpoint"], format!("127.0.0.1:{port}"));

    let client = join(&gw, key, &tunnel).await;
    let mut sender = connect(&client).await;
    let ok = ask(&mut sender).await.unwrap();
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let record = gw.record(&ok.request_id()).await;
    assert_eq!(record.principal.as_deref(), Some("alice@example.com"));
    assert_eq!(record.groups, vec!["engineering"]);
    // The provider saw the server's key and the caller's identity, never a client credential.
    let seen = gw.anthropic.requests().pop().unwrap();
    assert_eq!(seen.headers.get("x-api-key").unwrap(), ANTHROPIC_KEY);

    // A web page that reached the local forward (DNS rebinding) is refused.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/messages")
        .header("host", "evil.example:4000")
        .header("origin", "http://evil.example:4000")
        .header("content-type", "application/json")
        .header(ANTHROPIC_VERSION.0, ANTHROPIC_VERSION.1)
        .body(Full::new(Bytes::from(messages_body("claude-sonnet-4-5", false))))
        .unwrap();
    let page = sender.send_request(req).await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert_eq!(page.headers()["x-agentnet-reason"], "browser_request");
    let _ = page.into_body().collect().await;

    // Out of the group: the next request on the same connection is refused.
    let (status, _) = gw
        .admin_json(
            Method::PUT,
            "/api/v1/users/alice",
            json!({"email": "alice@example.com", "groups": ["sales"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let refused = ask(&mut sender).await.unwrap();
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    let (status, _) = gw
        .admin_json(
            Method::PUT,
            "/api/v1/users/alice",
            json!({"email": "alice@example.com", "groups": ["engineering"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ask(&mut sender).await.unwrap().status, StatusCode::OK);

    // Revoked: the open connection is reset and a new one cannot be made.
    let peer_id = tunnel["peer"]["id"].as_str().unwrap();
    let revoked_at = Instant::now();
    let (status, body) =
        gw.admin_json(Method::DELETE, &format!("/api/v1/peers/{peer_id}"), Value::Null).await;
    assert!(status.is_success(), "{status} {body}");
    let cut = loop {
        let next = tokio::time::timeout(Duration::from_secs(1), ask(&mut sender)).await;
        if sender.is_closed() || matches!(next, Ok(Err(_))) {
            break revoked_at.elapsed();
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "the connection was neither reset nor refused within 1 s of revocation: {:?}",
            next.map(|r| r.map(|r| r.status))
        );
    };
    eprintln!("revoked peer cut after {cut:?}");
    let again = tokio::time::timeout(Duration::from_secs(3), client.connect_ai()).await;
    assert!(!matches!(again, Ok(Ok(_))), "a revoked peer connected again");
    gw.stop().await;
}

#[tokio::test]
async fn signing_out_removes_the_sessions_devices() {
    let gw = TestGateway::start_local(overlay_config).await;
    add_user(&gw, "bob", &["engineering"]).await;
    let session = sign_in(&gw, "bob").await;
    let access = session["access_token"].as_str().unwrap();
    let (key, tunnel) = register(&gw, access, "desk").await;
    let client = join(&gw, key, &tunnel).await;
    let mut sender = connect(&client).await;
    assert_eq!(ask(&mut sender).await.unwrap().status, StatusCode::OK);

    let revoked =
        gw.form("/auth/revoke", &[("token", session["refresh_token"].as_str().unwrap())]).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    let gone = tokio::time::timeout(Duration::from_secs(2), ask(&mut sender)).await;
    assert!(
        !matches!(gone, Ok(Ok(ref r)) if r.status == StatusCode::OK),
        "a signed-out device still got through"
    );
    gw.stop().await;
}

#[tokio::test]
async fn registration_needs_an_agentnet_session_and_a_valid_key() {
    let gw = TestGateway::start_local(overlay_config).await;
    let no_session = gw
        .send_admin_body(
            Method::POST,
            "/api/v1/me/peers",
            &[("authorization", "Bearer not-a-session"), ("content-type", "application/json")],
            &json!({"name": "x", "public_key": overlay::PrivateKey::generate().unwrap().public_key().to_base64()}).to_string(),
        )
        .await;
    assert_eq!(no_session.status, StatusCode::UNAUTHORIZED, "{}", no_session.text());

    add_user(&gw, "carol", &["engineering"]).await;
    let session = sign_in(&gw, "carol").await;
    let access = session["access_token"].as_str().unwrap();
    let bad_key = gw
        .send_admin_body(
            Method::POST,
            "/api/v1/me/peers",
            &[("authorization", &format!("Bearer {access}")), ("content-type", "application/json")],
            &json!({"name": "x", "public_key": "not a key"}).to_string(),
        )
        .await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST, "{}", bad_key.text());
    gw.stop().await;
}

#[tokio::test]
async fn a_server_restart_recovers_the_tunnel_without_the_client_doing_anything() {
    // A fixed port: the client keeps the endpoint it was given.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gw = TestGateway::start_local(move |a, o| {
        format!(
            "{}\n[overlay]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n",
            default_config(a, o)
        )
    })
    .await;
    add_user(&gw, "dave", &["engineering"]).await;
    let session = sign_in(&gw, "dave").await;
    let (key, tunnel) = register(&gw, session["access_token"].as_str().unwrap(), "box").await;
    let client = join(&gw, key, &tunnel).await;
    let mut sender = connect(&client).await;
    assert_eq!(ask(&mut sender).await.unwrap().status, StatusCode::OK);

    let gw = gw.restart().await;
    let restarted = Instant::now();
    // The endpoint wrote the peer's handshake, traffic and endpoint when it stopped.
    let peer_id = tunnel["peer"]["id"].as_str().unwrap();
    let stored = gw.store.peer(peer_id).await.unwrap().unwrap();
    assert!(stored.last_handshake_ms.is_some(), "{stored:?}");
    assert!(stored.rx_bytes > 0 && stored.tx_bytes > 0, "{stored:?}");
    let recovered = loop {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_secs(1), client.connect_ai()).await
        {
            let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
            tokio::spawn(conn);
            if matches!(ask(&mut sender).await, Ok(r) if r.status == StatusCode::OK) {
                break restarted.elapsed();
            }
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "no recovery within 30 s of a restart"
        );
    };
    eprintln!("recovered {recovered:?} after the server restarted");
    gw.stop().await;
}

#[tokio::test]
async fn a_registration_that_expires_is_removed_from_the_endpoint_at_once() {
    let gw = TestGateway::start_local(|a, o| {
        format!(
            "{}\n[overlay]\nenabled = true\nlisten = \"127.0.0.1:0\"\npeer_lifetime = \"2s\"\n",
            default_config(a, o)
        )
    })
    .await;
    add_user(&gw, "erin", &["engineering"]).await;
    let session = sign_in(&gw, "erin").await;
    let (key, tunnel) = register(&gw, session["access_token"].as_str().unwrap(), "short").await;
    let expires =
        api_types::time::parse_rfc3339(tunnel["peer"]["expires_at"].as_str().unwrap()).unwrap();
    let client = join(&gw, key, &tunnel).await;
    let mut sender = connect(&client).await;
    assert_eq!(ask(&mut sender).await.unwrap().status, StatusCode::OK);

    // Kept-alive connection, no request in flight: at expiry it is reset by the server.
    let cut = loop {
        if sender.is_closed() {
            break now_ms();
        }
        assert!(now_ms() < expires + 1_000, "the connection outlived the registration by 1 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("expired registration cut {} ms after its expiry", cut - expires);
    // Nothing gets through any more: no connection, or none that answers.
    let again = tokio::time::timeout(Duration::from_secs(2), async {
        let stream = client.connect_ai().await.ok()?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(conn);
        ask(&mut sender).await.ok().map(|r| r.status)
    })
    .await;
    assert!(!matches!(again, Ok(Some(StatusCode::OK))), "an expired peer got an answer: {again:?}");
    gw.stop().await;
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
    )
    .unwrap()
}
