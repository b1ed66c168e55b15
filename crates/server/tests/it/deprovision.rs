//! Deprovisioning through SCIM takes effect on the very next request: removing a person from
//! their only allowed group, or deactivating them, denies their next request and cuts their
//! in-flight stream. The latency from the SCIM response to the first denial is measured.

use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use testkit::llm::{MockConfig, Reply};
use tower::ServiceExt;

use crate::support::*;

async fn scim_secret(gw: &TestGateway) -> String {
    let req = Request::post("/api/v1/scim/token").body(Body::empty()).unwrap();
    let resp = gw.admin.clone().oneshot(req).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["token"].as_str().unwrap().to_owned()
}

/// Provisions alice in `engineering` through SCIM; returns (user id, group id).
async fn provision(gw: &TestGateway, secret: &str) -> (String, String) {
    let user = gw
        .scim(
            Method::POST,
            "/Users",
            secret,
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com",
                "name":{"givenName":"Alice","familyName":"A"},"emails":[{"value":"alice@example.com","primary":true}],
                "active":true}"#,
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.text());
    let user_id = user.json()["id"].as_str().unwrap().to_owned();
    let group = gw
        .scim(
            Method::POST,
            "/Groups",
            secret,
            &format!(
                r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"engineering",
                    "members":[{{"value":"{user_id}"}}]}}"#
            ),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.text());
    (user_id, group.json()["id"].as_str().unwrap().to_owned())
}

/// Starts a slow stream for `token`; returns the task that reads it to the end: `Ok` if it
/// ended cleanly, `Err` if it was cut.
fn slow_stream(gw: &TestGateway, token: &str) -> tokio::task::JoinHandle<Result<usize, String>> {
    let url = format!("{}/v1/messages", gw.ai);
    let token = token.to_owned();
    tokio::spawn(async move {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = Request::post(url)
            .header("authorization", format!("Bearer {token}"))
            .header("anthropic-version", "2023-06-01")
            .body(Full::new(Bytes::from(messages_body("claude-sonnet-4-5", true))))
            .unwrap();
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        if resp.status() != StatusCode::OK {
            return Err(format!("status {}", resp.status()));
        }
        let mut body = resp.into_body();
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            frame.map_err(|e| e.to_string())?;
            frames += 1;
        }
        Ok(frames)
    })
}

async fn deprovision_case(
    patch: impl Fn(&str) -> String,
    on_group: bool,
    reason: &str,
) -> Duration {
    let gw = TestGateway::start_with(
        MockConfig::default()
            .default_reply(Reply::text("a b c d e f g h i j k l").drip(Duration::from_millis(200))),
        MockConfig::default(),
        default_config,
    )
    .await;
    let secret = scim_secret(&gw).await;
    let (user_id, group_id) = provision(&gw, &secret).await;
    // SCIM decides the groups now: the token claims none.
    let token = gw.token(testkit::idp::TokenSpec::user("alice@example.com"));
    let quick_body = messages_body("claude-haiku-4-5", false);
    let quick = || gw.post("/v1/messages", &token, &[ANTHROPIC_VERSION], &quick_body);
    assert_eq!(quick().await.status, StatusCode::OK, "provisioned into engineering");

    let stream = slow_stream(&gw, &token);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stream.is_finished());

    let path = if on_group { format!("/Groups/{group_id}") } else { format!("/Users/{user_id}") };
    let resp = gw.scim(Method::PATCH, &path, &secret, &patch(&user_id)).await;
    assert!(resp.status.is_success(), "{}: {}", resp.status, resp.text());
    let answered = Instant::now();
    let denied = quick().await;
    let latency = answered.elapsed();
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.text());
    assert_eq!(denied.json()["error"]["reason"], reason);

    let cut = tokio::time::timeout(Duration::from_secs(5), stream).await.unwrap().unwrap();
    assert!(cut.is_err(), "the stream ran to its end: {cut:?}");
    let records = gw.records(3).await;
    assert!(records.iter().any(|r| r.reason == "access_revoked"), "{records:?}");
    gw.stop().await;
    latency
}

#[tokio::test]
async fn removal_from_the_only_allowed_group_applies_to_the_next_request() {
    // Okta's form: remove the member by a value filter in the path.
    let patch = |user: &str| {
        format!(
            r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations":[{{"op":"remove","path":"members[value eq \"{user}\"]"}}]}}"#
        )
    };
    let latency = deprovision_case(patch, true, "no_policy").await;
    eprintln!("deprovisioning latency, group removal: {latency:?} from SCIM response to denial");
}

#[tokio::test]
async fn deactivation_applies_to_the_next_request() {
    let patch = |_: &str| {
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations":[{"op":"replace","value":{"active":false}}]}"#
            .to_owned()
    };
    let latency = deprovision_case(patch, false, "user_deactivated").await;
    eprintln!("deprovisioning latency, deactivation: {latency:?} from SCIM response to denial");
}
