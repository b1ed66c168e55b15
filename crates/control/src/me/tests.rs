//! The self-service view with a fake data plane: identification failures answer in the error
//! shape, limits come out in their own units, totals and recent requests are the caller's only,
//! and the route merges into the admin router.

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::body::Body;
use expect_test::expect;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;

/// Knows a few tokens; `down` stands for an unreachable IdP.
struct FakeService {
    principals: HashMap<&'static str, domain::Principal>,
}

impl FakeService {
    fn new() -> Self {
        let principals = HashMap::from([
            (
                "alice-token",
                domain::Principal::user("sub-alice", "alice@example.com", vec!["eng".into()]),
            ),
            ("bot-token", domain::Principal::agent("ci-bot", vec![])),
        ]);
        Self { principals }
    }
}

impl SelfService for FakeService {
    fn identify<'a>(
        &'a self,
        headers: &'a HeaderMap,
    ) -> Pin<Box<dyn Future<Output = Result<domain::Principal, SelfServiceError>> + Send + 'a>>
    {
        Box::pin(async move {
            let token = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match token {
                None => Err(SelfServiceError::new(
                    StatusCode::UNAUTHORIZED,
                    "token_missing",
                    "no bearer token",
                )),
                Some("down") => Err(SelfServiceError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "idp_unavailable",
                    "the identity provider is unreachable; try again shortly",
                )),
                Some(token) => self.principals.get(token).cloned().ok_or_else(|| {
                    SelfServiceError::new(
                        StatusCode::UNAUTHORIZED,
                        "token_malformed",
                        "the token is not a JWT",
                    )
                }),
            }
        })
    }

    fn limits(&self, principal: &domain::Principal) -> Vec<domain::LimitStatus> {
        if principal.kind == domain::PrincipalKind::Agent {
            return vec![];
        }
        let limit = |metric, per, cap, window_secs| domain::Limit { metric, per, cap, window_secs };
        vec![
            domain::LimitStatus {
                owner: Owner::Global("team-rate".into()),
                limit: limit(Metric::Requests, domain::Per::Group, 600, 60),
                subject: Subject::Group("eng".into()),
                used: 12,
                remaining: 588,
            },
            domain::LimitStatus {
                owner: Owner::Policy("eng".into()),
                limit: limit(Metric::Spend, domain::Per::User, 500_000_000, 30 * 86_400),
                subject: domain::limits::subject_of(principal),
                used: 1_250_000,
                remaining: 498_750_000,
            },
            domain::LimitStatus {
                owner: Owner::Policy("eng".into()),
                limit: limit(Metric::Tokens, domain::Per::Group, 1_000_000, 86_400),
                subject: Subject::All,
                used: 1_000_500,
                remaining: 0,
            },
        ]
    }
}

async fn fixture() -> (Router, store::Store) {
    let store = store::Store::in_memory(&store::MasterKey::generate().unwrap()).await.unwrap();
    let router = self_service_router(store.clone(), Arc::new(FakeService::new()));
    (router, store)
}

async fn get(router: &Router, token: Option<&str>) -> (StatusCode, HeaderMap, Value) {
    let mut request = Request::get("/api/v1/me");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn record(id: &str, at_ms: i64, kind: &str, who: &str, cost: Option<i64>) -> store::UsageRecord {
    store::UsageRecord {
        id: id.into(),
        at_ms,
        principal_kind: Some(kind.into()),
        principal: Some(who.into()),
        groups: vec!["eng".into()],
        policy: Some("eng".into()),
        provider: Some("anthropic".into()),
        api: "anthropic".into(),
        endpoint: "messages".into(),
        model: Some("claude-sonnet-4-5".into()),
        status: 200,
        reason: "ok".into(),
        input_tokens: 100,
        output_tokens: 50,
        cost_micro_usd: cost,
        usage_reported: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_view_holds_the_callers_limits_totals_and_newest_requests() {
    let (router, store) = fixture().await;
    let now = now();
    let hour = 3_600_000;
    let mut records: Vec<store::UsageRecord> = (0..21)
        .map(|i| {
            record(&format!("day-{i:02}"), now - hour + i, "user", "alice@example.com", Some(1_000))
        })
        .collect();
    let mut refused = record("refused", now - 2 * hour, "user", "alice@example.com", None);
    refused.status = 429;
    refused.reason = "spend_cap_exceeded".into();
    refused.input_tokens = 0;
    refused.output_tokens = 0;
    records.push(refused);
    records.push(record("week", now - 7 * 24 * hour, "user", "alice@example.com", Some(5_000)));
    records.push(record("old", now - 40 * 24 * hour, "user", "alice@example.com", Some(9_000)));
    // Not alice: another user, and an agent that happens to carry her name.
    records.push(record("bob", now - hour, "user", "bob@example.com", Some(7_000)));
    records.push(record("namesake", now - hour, "agent", "alice@example.com", Some(7_000)));
    store.insert_usage(&records).await.unwrap();

    let (status, _, view) = get(&router, Some("alice-token")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(
        (&view["principal"], &view["kind"], &view["groups"]),
        (&json!("alice@example.com"), &json!("user"), &json!(["eng"]))
    );
    expect![[r#"
        [
          {
            "applies_to": "group eng",
            "cap": 600.0,
            "limit": {
              "per": "group",
              "requests": 600,
              "window": "1m"
            },
            "owner": "team-rate",
            "owner_kind": "global",
            "remaining": 588.0,
            "used": 12.0
          },
          {
            "applies_to": "you",
            "cap": 500.0,
            "limit": {
              "per": "user",
              "spend_usd": 500.0,
              "window": "30d"
            },
            "owner": "eng",
            "owner_kind": "policy",
            "remaining": 498.75,
            "used": 1.25
          },
          {
            "applies_to": "everyone",
            "cap": 1000000.0,
            "limit": {
              "per": "group",
              "tokens": 1000000,
              "window": "1d"
            },
            "owner": "eng",
            "owner_kind": "policy",
            "remaining": 0.0,
            "used": 1000500.0
          }
        ]"#]]
    .assert_eq(&serde_json::to_string_pretty(&view["limits"]).unwrap());

    let day = &view["last_24h"];
    assert_eq!((day["requests"].as_u64(), day["failed_requests"].as_u64()), (Some(22), Some(1)));
    assert_eq!(day["cost_micro_usd"], 21_000);
    assert_eq!(day["cost_usd"], 0.021);
    assert_eq!(day["unknown_cost_requests"], 1);
    assert_eq!(day["total_tokens"], 21 * 150);
    let month = &view["last_30d"];
    assert_eq!(
        (month["requests"].as_u64(), month["cost_micro_usd"].as_i64()),
        (Some(23), Some(26_000))
    );

    let recent: Vec<&str> =
        view["recent"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(recent.len(), RECENT_REQUESTS as usize);
    assert_eq!(recent[0], "day-20", "newest first");
    assert_eq!(recent[19], "day-01");
    assert_eq!(view["recent"][0]["cost_usd"], 0.001);

    // An agent sees its own (here: nothing yet), and no limits.
    let (status, _, bot) = get(&router, Some("bot-token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&bot["principal"], &bot["kind"]), (&json!("ci-bot"), &json!("agent")));
    assert_eq!(bot["limits"], json!([]));
    assert_eq!(bot["recent"], json!([]));
    assert_eq!(bot["last_30d"]["requests"], 0);
}

#[tokio::test]
async fn callers_who_cannot_be_identified_get_the_error_shape() {
    let (router, _) = fixture().await;
    let (status, headers, body) = get(&router, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    expect![[r#"{"error":{"code":"unauthenticated","message":"no bearer token","reason":"token_missing"}}"#]]
        .assert_eq(&body.to_string());
    let (status, _, body) = get(&router, Some("forged")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["reason"], "token_malformed");
    let (status, headers, body) = get(&router, Some("down")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!headers.contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(
        (&body["error"]["code"], &body["error"]["reason"]),
        (&json!("unavailable"), &json!("idp_unavailable"))
    );

    // An implementation that reports a success status as a failure still answers an error.
    let odd = SelfServiceError::new(StatusCode::OK, "odd", "odd").into_response();
    assert_eq!(odd.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn the_route_merges_into_the_admin_router() {
    let (me, store) = fixture().await;
    let admin = crate::router(crate::ControlState::new(store, || {})).merge(me);
    let (status, _, view) = get(&admin, Some("alice-token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["principal"], "alice@example.com");
    let call = |method: http::Method, path: &str| {
        let request = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        admin.clone().oneshot(request)
    };
    let wrong = call(http::Method::POST, "/api/v1/me").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bytes = wrong.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert_eq!(call(http::Method::GET, "/api/v1/groups").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        call(http::Method::GET, "/api/v1/nope").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}
