//! `agentnet usage`: token sources, the server URL, error messages, the human rendering, and
//! the whole exchange against the real self-service router with a fake data plane.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};

use api_types::{Limit, LimitPer};
use expect_test::expect;

use super::*;

#[test]
fn the_token_comes_from_an_environment_variable_or_a_command() {
    let env = HashMap::from([("TOKEN", " eyJ.abc.def\n"), ("EMPTY", "  ")]);
    let lookup = |var: &str| env.get(var).map(|v| (*v).to_owned());
    let read = |source: TokenSource| source.read(&lookup).map_err(|e| format!("{e:#}"));

    assert_eq!(read(TokenSource::Env("TOKEN".into())).unwrap(), "eyJ.abc.def");
    expect![
        "environment variable MISSING is not set (or not UTF-8): it should hold your access token"
    ]
    .assert_eq(&read(TokenSource::Env("MISSING".into())).unwrap_err());
    expect!["environment variable EMPTY gave an empty token"]
        .assert_eq(&read(TokenSource::Env("EMPTY".into())).unwrap_err());

    assert_eq!(read(TokenSource::Command("printf ' tok-123\\n'".into())).unwrap(), "tok-123");
    expect!["the --token-command failed (exit status 3): not signed in"].assert_eq(
        &read(TokenSource::Command("echo 'not signed in' >&2; exit 3".into())).unwrap_err(),
    );
    expect!["the --token-command failed (exit status 1)"]
        .assert_eq(&read(TokenSource::Command("false".into())).unwrap_err());
    expect!["the --token-command gave an empty token"]
        .assert_eq(&read(TokenSource::Command("true".into())).unwrap_err());
    expect!["the --token-command gave a token with characters a header cannot carry"]
        .assert_eq(&read(TokenSource::Command("printf 'a\\001b'".into())).unwrap_err());
}

#[test]
fn the_url_is_the_servers_plus_the_route() {
    let url = |s: &str| {
        Remote::new(s)
            .and_then(|r| r.url(&me_path()))
            .map(|u| u.to_string())
            .map_err(|e| e.to_string())
    };
    assert_eq!(url("http://127.0.0.1:4001").unwrap(), "http://127.0.0.1:4001/api/v1/me");
    assert_eq!(url(" https://gw.example.com/ ").unwrap(), "https://gw.example.com/api/v1/me");
    assert_eq!(
        url("https://x.example.com/agentnet/").unwrap(),
        "https://x.example.com/agentnet/api/v1/me"
    );
    expect![
        "--server '127.0.0.1:4001' must start with http:// or https://, e.g. http://gateway:4001"
    ]
    .assert_eq(&url("127.0.0.1:4001").unwrap_err());
    expect!["--server 'http://' has no host"].assert_eq(&url("http://").unwrap_err());
    expect!["--server 'http://x/?a=b' must be a base URL, without a query or fragment"]
        .assert_eq(&url("http://x/?a=b").unwrap_err());
}

#[test]
fn failed_answers_say_what_to_do() {
    let url: Uri = "http://127.0.0.1:4001/api/v1/me".parse().unwrap();
    let check = |status: u16, body: &str| {
        check(StatusCode::from_u16(status).unwrap(), body.as_bytes(), &url)
            .map_err(|e| e.to_string())
    };
    assert!(check(200, "{}").is_ok());
    expect!["your token was refused: the token has expired"].assert_eq(
        &check(
            401,
            r#"{"error":{"code":"unauthenticated","message":"the token has expired","reason":"token_expired"}}"#,
        )
        .unwrap_err(),
    );
    expect!["the server cannot check your token right now: the identity provider is unreachable; try again shortly"]
        .assert_eq(&check(503, r#"{"error":{"code":"unavailable","message":"the identity provider is unreachable; try again shortly"}}"#).unwrap_err());
    expect!["http://127.0.0.1:4001/api/v1/me was not found: --server should be the gateway's admin listener (port 4001 by default), not its AI endpoint"]
        .assert_eq(&check(404, "").unwrap_err());
    expect!["the server answered 502 bad gateway: upstream down"]
        .assert_eq(&check(502, "upstream down\n").unwrap_err());
}

fn record(id: &str, at: &str, status: u16, reason: &str, cost: Option<f64>) -> UsageRecord {
    UsageRecord {
        id: id.into(),
        at: at.into(),
        principal_kind: Some("user".into()),
        principal: Some("alice@example.com".into()),
        subject: None,
        groups: vec!["engineering".into()],
        policy: Some("metered".into()),
        provider: Some("anthropic".into()),
        api: "anthropic".into(),
        endpoint: "messages".into(),
        model: Some("claude-sonnet-4-5".into()),
        stream: true,
        status,
        reason: reason.into(),
        latency_ms: 900,
        ttfb_ms: Some(200),
        input_tokens: if status == 200 { 1200 } else { 0 },
        output_tokens: if status == 200 { 300 } else { 0 },
        cache_creation_tokens: 0,
        cache_read_tokens: if status == 200 { 5000 } else { 0 },
        reasoning_tokens: 0,
        cost_micro_usd: cost.map(|c| (c * 1e6) as i64),
        cost_usd: cost,
        cost_known: cost.is_some(),
        usage_reported: status == 200,
        session_id: None,
    }
}

fn view() -> SelfView {
    let totals = |requests, failed, tokens, micro: i64, unknown| UsageTotals {
        requests,
        failed_requests: failed,
        total_tokens: tokens,
        cost_micro_usd: micro,
        cost_usd: micro as f64 / 1e6,
        unknown_cost_requests: unknown,
        ..UsageTotals::default()
    };
    SelfView {
        principal: "alice@example.com".into(),
        kind: "user".into(),
        groups: vec!["engineering".into(), "sre".into()],
        limits: vec![
            LimitUse {
                owner_kind: LimitOwnerKind::Global,
                owner: "team-rate".into(),
                limit: Limit::requests(600, LimitPer::Group, "1m"),
                applies_to: "group engineering".into(),
                used: 12.0,
                remaining: 588.0,
                cap: 600.0,
            },
            LimitUse {
                owner_kind: LimitOwnerKind::Policy,
                owner: "metered".into(),
                limit: Limit::spend(500.0, LimitPer::User, "30d"),
                applies_to: "you".into(),
                used: 123.456789,
                remaining: 376.543211,
                cap: 500.0,
            },
            LimitUse {
                owner_kind: LimitOwnerKind::Policy,
                owner: "sre".into(),
                limit: Limit::tokens(400_000, LimitPer::User, "1m"),
                applies_to: "you".into(),
                used: 0.0,
                remaining: 400_000.0,
                cap: 400_000.0,
            },
        ],
        last_24h: totals(41, 1, 260_000, 4_120_000, 0),
        last_30d: totals(1_302, 17, 9_800_000, 123_456_789, 2),
        recent: vec![
            record("r2", "2025-06-01T12:00:05.123Z", 429, "spend_cap_exceeded", Some(0.0)),
            record("r1", "2025-06-01T11:58:00.000Z", 200, "ok", Some(0.0123)),
            record("r0", "2025-06-01T11:50:00.000Z", 200, "ok", Some(0.004)),
        ],
    }
}

#[test]
fn the_human_view() {
    expect![[r#"
        alice@example.com (user), groups: engineering, sre

        Limits
        OWNER             APPLIES TO         WINDOW            CAP     USED  REMAINING
        global team-rate  group engineering  1m       600 requests       12        588
        policy metered    you                30d           $500.00  $123.46    $376.54
        policy sre        you                1m      400000 tokens        0     400000
        a request counts against every global limit, and against one policy: an uncapped one if any, else the one with the most room left

        Spend
        PERIOD     REQUESTS  FAILED   TOKENS          COST
        last 24 h        41       1   260000         $4.12
        last 30 d      1302      17  9800000  $123.46 (+2)
        (+N): N requests to models without a known price, whose cost is not in COST

        Recent requests
        TIME (UTC)           PROVIDER   MODEL              STATUS                  TOKENS     COST
        2025-06-01 12:00:05  anthropic  claude-sonnet-4-5  429 spend_cap_exceeded       0    $0.00
        2025-06-01 11:58:00  anthropic  claude-sonnet-4-5  200 ok                    6500    $0.01
        2025-06-01 11:50:00  anthropic  claude-sonnet-4-5  200 ok                    6500  $0.0040
    "#]]
    .assert_eq(&render(&view()));

    let mut empty = view();
    empty.groups.clear();
    empty.limits.clear();
    empty.recent.clear();
    empty.last_24h = UsageTotals::default();
    empty.last_30d = UsageTotals::default();
    expect![[r#"
        alice@example.com (user), in no groups

        Limits
        no limits apply to you

        Spend
        PERIOD     REQUESTS  FAILED  TOKENS   COST
        last 24 h         0       0       0  $0.00
        last 30 d         0       0       0  $0.00

        Recent requests
        no requests yet
    "#]]
    .assert_eq(&render(&empty));
}

#[test]
fn json_output_is_the_servers_answer() {
    let bytes = serde_json::to_vec(&view()).unwrap();
    let out = output(&bytes, true).unwrap();
    let back: SelfView = serde_json::from_str(&out).unwrap();
    assert_eq!(back, view());
    let err = output(br#"{"principal":"x"}"#, false).unwrap_err();
    assert_eq!(err.to_string(), "the server's answer is not what this agentnet version expects");
}

/// A data plane that knows one token.
struct Fake;

impl control::SelfService for Fake {
    fn identify<'a>(
        &'a self,
        headers: &'a hyper::HeaderMap,
    ) -> Pin<
        Box<dyn Future<Output = Result<domain::Principal, control::SelfServiceError>> + Send + 'a>,
    > {
        Box::pin(async move {
            match headers.get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
                Some("Bearer good-token") => Ok(domain::Principal::user(
                    "sub",
                    "alice@example.com",
                    vec!["engineering".into()],
                )),
                _ => Err(control::SelfServiceError::new(
                    StatusCode::UNAUTHORIZED,
                    "token_expired",
                    "the token has expired",
                )),
            }
        })
    }

    fn limits(&self, _: &domain::Principal) -> Vec<domain::LimitStatus> {
        vec![domain::LimitStatus {
            owner: domain::Owner::Policy("metered".into()),
            limit: domain::Limit {
                metric: domain::Metric::Spend,
                per: domain::Per::User,
                cap: 1_000_000,
                window_secs: 30 * 86_400,
            },
            subject: domain::Subject::Principal("user:alice@example.com".into()),
            used: 9_000,
            remaining: 991_000,
        }]
    }
}

#[tokio::test]
async fn the_whole_exchange_over_http() {
    let store = store::Store::in_memory(&store::MasterKey::generate().unwrap()).await.unwrap();
    let router = control::self_service_router(store, Arc::new(Fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let bytes = fetch(&server, "good-token").await.unwrap();
    let out = output(&bytes, false).unwrap();
    assert!(out.starts_with("alice@example.com (user), groups: engineering\n"), "{out}");
    assert!(out.contains("policy metered  you         30d     $1.00  $0.0090      $0.99"), "{out}");
    assert!(out.contains("no requests yet"), "{out}");

    let refused = fetch(&server, "stale-token").await.unwrap_err().to_string();
    assert_eq!(refused, "your token was refused: the token has expired");
    let wrong = fetch(&format!("{server}/nope"), "good-token").await;
    assert!(wrong.unwrap_err().to_string().contains("was not found: --server should be"));
    task.abort();

    let gone = fetch(&server, "good-token").await.unwrap_err();
    assert!(
        format!("{gone:#}").starts_with("cannot reach the agentnet server at http://127.0.0.1:"),
        "{gone:#}"
    );
}
