//! Starting with no config file: the embedded defaults give a working server with an owner-only
//! data directory, master key and admin socket; without an IdP every AI request is a clear 401.

use std::{collections::HashMap, os::unix::fs::PermissionsExt};

use http::StatusCode;
use server::{App, Config};
use tokio_util::sync::CancellationToken;

use crate::support::{TestGateway, ANTHROPIC_KEY, OPENAI_KEY};

#[tokio::test]
async fn defaults_without_a_config_file() {
    let dir = std::env::temp_dir().join(format!("agentnet-it-defaults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let env: HashMap<String, String> = [
        ("AGENTNET__DATA_DIR".to_owned(), dir.display().to_string()),
        ("AGENTNET__LISTEN__AI".to_owned(), "127.0.0.1:0".to_owned()),
        ("AGENTNET__LISTEN__ADMIN".to_owned(), "127.0.0.1:0".to_owned()),
    ]
    .into();
    let config = Config::load(None, &env).unwrap();
    let app = App::build(config, &env).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("master.key")), 0o600);
    assert_eq!(mode(app.socket_path().unwrap()), 0o600);
    assert!(dir.join("agentnet.db").exists());

    let ai = app.ai_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("http://{ai}/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "whatever")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["reason"], "identity_not_configured");

    // A second server on the same data directory refuses to start while the first runs.
    let config = Config::load(None, &env).unwrap();
    let err = App::build(config, &env).await.err().unwrap();
    assert!(format!("{err:#}").contains("already serving"), "{err:#}");

    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert!(!dir.join("admin.sock").exists(), "the socket is removed on shutdown");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn config_file_changes_are_audited_once() {
    let gw = TestGateway::start().await;
    let (_, audit) = gw
        .admin_json(http::Method::GET, "/api/v1/audit?actor=config-file", serde_json::Value::Null)
        .await;
    let entries = audit.as_array().unwrap();
    let mut seen: Vec<String> = entries
        .iter()
        .map(|e| format!("{} {}", e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "agent.create ci-bot",
            "policy.create ci",
            "policy.create engineering",
            "policy.create sales",
            "provider.create anthropic",
            "provider.create openai",
        ]
    );
    assert!(entries.iter().all(|e| e["actor_kind"] == "system"));
    // The provider appears with its key's fingerprint, never the key.
    let text = audit.to_string();
    assert!(!text.contains(ANTHROPIC_KEY) && !text.contains(OPENAI_KEY));

    // Applying the same file again changes nothing, so audits nothing.
    let gw = gw.restart().await;
    let (_, again) = gw
        .admin_json(http::Method::GET, "/api/v1/audit?actor=config-file", serde_json::Value::Null)
        .await;
    assert_eq!(again.as_array().unwrap().len(), entries.len());
    gw.stop().await;
}
