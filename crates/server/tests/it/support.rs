//! `TestGateway`: a running server wired to two mock upstreams (Anthropic and OpenAI kinds) and
//! a mock IdP, plus a small HTTP client.

use std::{collections::HashMap, path::PathBuf, sync::atomic::AtomicU32, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use server::{App, Config};
use store::{Store, UsageQuery, UsageRecord};
use testkit::{
    idp::{MockIdp, TokenSpec},
    llm::{MockConfig, MockLlm},
};
use tokio_util::sync::CancellationToken;

pub(crate) const ANTHROPIC_KEY: &str = "sk-ant-api03-SERVERSIDE-secret-key-AbCd";
pub(crate) const OPENAI_KEY: &str = "sk-proj-SERVERSIDE-secret-key-WxYz";

pub(crate) struct TestGateway {
    pub(crate) ai: String,
    /// The overlay's WireGuard UDP port, when the config turns the overlay on.
    pub(crate) overlay_port: Option<u16>,
    /// The admin TCP listener's base URL (health, JWKS, the self-service view).
    pub(crate) admin_tcp: String,
    /// The admin API router, as the Unix socket serves it.
    pub(crate) admin: axum::Router,
    pub(crate) store: Store,
    pub(crate) anthropic: MockLlm,
    pub(crate) openai: MockLlm,
    pub(crate) idp: MockIdp,
    pub(crate) data_dir: PathBuf,
    config_path: PathBuf,
    env: HashMap<String, String>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Config shared by most tests: two providers, engineering may use both, sales only OpenAI's
/// `gpt-5-mini`, the `ci-bot` agent (group `ci`) only OpenAI.
pub(crate) fn default_config(anthropic: &str, openai: &str) -> String {
    format!(
        r#"
        [[providers]]
        name = "anthropic"
        kind = "anthropic"
        base_url = "{anthropic}"
        api_key_env = "TEST_ANTHROPIC_KEY"

        [[providers]]
        name = "openai"
        kind = "openai"
        base_url = "{openai}"
        api_key_env = "TEST_OPENAI_KEY"
        preset = "litellm"

        [[agents]]
        name = "ci-bot"
        groups = ["ci"]

        [[policies]]
        name = "engineering"
        groups = ["engineering"]
        providers = ["anthropic", "openai"]

        [[policies]]
        name = "sales"
        groups = ["sales"]
        providers = ["openai"]
        models = ["gpt-5-mini*"]

        [[policies]]
        name = "ci"
        groups = ["ci"]
        providers = ["openai"]
        "#
    )
}

struct Launched {
    ai: String,
    overlay_port: Option<u16>,
    admin_tcp: String,
    admin: axum::Router,
    store: Store,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestGateway {
    pub(crate) async fn start() -> Self {
        Self::start_with(MockConfig::default(), MockConfig::default(), default_config).await
    }

    pub(crate) async fn start_with(
        anthropic: MockConfig,
        openai: MockConfig,
        config: impl FnOnce(&str, &str) -> String,
    ) -> Self {
        Self::start_full(anthropic, openai, config, true, &[]).await
    }

    /// As [`Self::start_with`], with settings overridden by environment (`AGENTNET__…`), as an
    /// operator would (the `[limits]` section is the harness's own).
    pub(crate) async fn start_with_env(
        anthropic: MockConfig,
        openai: MockConfig,
        config: impl FnOnce(&str, &str) -> String,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_full(anthropic, openai, config, true, env).await
    }

    /// A server without an external IdP: people sign in with local accounts.
    pub(crate) async fn start_local(config: impl FnOnce(&str, &str) -> String) -> Self {
        Self::start_full(MockConfig::default(), MockConfig::default(), config, false, &[]).await
    }

    async fn start_full(
        anthropic: MockConfig,
        openai: MockConfig,
        config: impl FnOnce(&str, &str) -> String,
        external_idp: bool,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let anthropic = MockLlm::start(anthropic).await;
        let openai = MockLlm::start(openai).await;
        let idp = MockIdp::start().await;
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let data_dir = std::env::temp_dir().join(format!("agentnet-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir).unwrap();
        let text = format!(
            r#"
            data_dir = "{dir}"
            [listen]
            ai = "127.0.0.1:0"
            admin = "127.0.0.1:0"
            {oidc}
            [limits]
            disconnect_drain_timeout = "10s"
            {rest}
            "#,
            dir = data_dir.display(),
            oidc = if external_idp {
                format!("[oidc]\nissuer = \"{}\"", idp.issuer())
            } else {
                String::new()
            },
            rest = config(&anthropic.base_url(), &openai.base_url()),
        );
        let path = data_dir.join("agentnet.toml");
        std::fs::write(&path, text).unwrap();
        let mut env: HashMap<String, String> = [
            ("TEST_ANTHROPIC_KEY".to_owned(), ANTHROPIC_KEY.to_owned()),
            ("TEST_OPENAI_KEY".to_owned(), OPENAI_KEY.to_owned()),
        ]
        .into();
        env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let Launched { ai, overlay_port, admin_tcp, admin, store, shutdown, task } =
            Self::launch(&path, &env).await;
        Self {
            ai,
            overlay_port,
            admin_tcp,
            admin,
            store,
            anthropic,
            openai,
            idp,
            data_dir,
            config_path: path,
            env,
            shutdown,
            task: Some(task),
        }
    }

    async fn launch(path: &std::path::Path, env: &HashMap<String, String>) -> Launched {
        let config = Config::load(Some(path), env).unwrap();
        let app = App::build(config, env).await.unwrap();
        let ai = format!("http://{}", app.ai_addr().unwrap());
        let overlay_port = match app.overlay() {
            Some(overlay) => Some(overlay.listen_port().await),
            None => None,
        };
        let admin_tcp = format!("http://{}", app.admin_addr().unwrap());
        let admin = app.admin_router();
        let store = app.store().clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone()));
        Launched { ai, overlay_port, admin_tcp, admin, store, shutdown, task }
    }

    /// Stops the server and starts a new one on the same data directory and config (the
    /// mocks keep running): what a process restart looks like.
    pub(crate) async fn restart(mut self) -> Self {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let Launched { ai, overlay_port, admin_tcp, admin, store, shutdown, task } =
            Self::launch(&self.config_path, &self.env).await;
        self.ai = ai;
        self.overlay_port = overlay_port;
        self.admin_tcp = admin_tcp;
        self.admin = admin;
        self.store = store;
        self.shutdown = shutdown;
        self.task = Some(task);
        self
    }

    pub(crate) fn token(&self, spec: TokenSpec) -> String {
        self.idp.token(spec)
    }

    pub(crate) fn alice(&self) -> String {
        self.token(TokenSpec::user("alice@example.com").groups(["engineering"]))
    }

    /// Calls the admin API as the Unix socket serves it; `Null` sends no body.
    pub(crate) async fn admin_json(
        &self,
        method: Method,
        path: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        use tower::ServiceExt;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(if body.is_null() {
                axum::body::Body::empty()
            } else {
                axum::body::Body::from(body.to_string())
            })
            .unwrap();
        let resp = self.admin.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// Posts a form to the admin TCP listener (the sign-in endpoints).
    pub(crate) async fn form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        send_to(&self.admin_tcp, Method::POST, path, &headers, &body).await
    }

    /// Sends a request to the AI endpoint and reads the whole response.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        send_to(&self.ai, method, path, headers, body).await
    }

    /// Sends a request to the admin TCP listener and reads the whole response.
    pub(crate) async fn send_admin(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        send_to(&self.admin_tcp, method, path, headers, "").await
    }

    /// Sends a request with a body to the admin TCP listener.
    pub(crate) async fn send_admin_body(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        send_to(&self.admin_tcp, method, path, headers, body).await
    }

    /// Sends a SCIM request (JSON body) to the admin TCP listener with the SCIM bearer secret.
    pub(crate) async fn scim(
        &self,
        method: Method,
        path: &str,
        secret: &str,
        body: &str,
    ) -> Response {
        let auth = format!("Bearer {secret}");
        let headers = [("authorization", auth.as_str()), ("content-type", "application/scim+json")];
        send_to(&self.admin_tcp, method, &format!("/scim/v2{path}"), &headers, body).await
    }

    /// Alice's Messages request (Claude Sonnet), for a client of the test's own that reads the
    /// response as it comes or hangs up part-way.
    pub(crate) fn messages_request(&self, stream: bool) -> Request<Full<Bytes>> {
        Request::post(format!("{}/v1/messages", self.ai))
            .header("authorization", format!("Bearer {}", self.alice()))
            .header("anthropic-version", "2023-06-01")
            .body(Full::new(Bytes::from(messages_body("claude-sonnet-4-5", stream))))
            .unwrap()
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let auth = format!("Bearer {token}");
        let mut headers =
            vec![("authorization", auth.as_str()), ("content-type", "application/json")];
        headers.extend_from_slice(extra);
        self.send(Method::POST, path, &headers, body).await
    }

    /// Waits until the store holds at least `n` usage records, newest first.
    pub(crate) async fn records(&self, n: usize) -> Vec<UsageRecord> {
        for _ in 0..200 {
            let records = self
                .store
                .usage(&UsageQuery { limit: Some(1000), ..Default::default() })
                .await
                .unwrap();
            if records.len() >= n {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("fewer than {n} usage records after 5 s");
    }

    pub(crate) async fn record(&self, request_id: &str) -> UsageRecord {
        for _ in 0..400 {
            let records = self
                .store
                .usage(&UsageQuery { limit: Some(1000), ..Default::default() })
                .await
                .unwrap();
            if let Some(r) = records.into_iter().find(|r| r.id == request_id) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no usage record for request {request_id} after 10 s");
    }

    pub(crate) async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Sends a request to `base` and reads the whole response.
pub(crate) async fn send_to(
    base: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder().method(method).uri(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp =
        client.request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Response { status, headers, body }
}

pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Response {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn request_id(&self) -> String {
        self.headers["x-agentnet-request-id"].to_str().unwrap().to_owned()
    }
}

pub(crate) const ANTHROPIC_VERSION: (&str, &str) = ("anthropic-version", "2023-06-01");

pub(crate) fn messages_body(model: &str, stream: bool) -> String {
    format!(
        r#"{{"model":"{model}","max_tokens":1024,"stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

/// Percent-encodes a form value (everything but unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}
