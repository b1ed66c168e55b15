//! Tests for provider-shaped error bodies.

use expect_test::{expect, Expect};

use super::*;

fn check(api: Api, status: u16, expect: Expect) {
    let body = error_body(api, status, "budget_exceeded", "monthly budget \"team\" is spent");
    expect.assert_eq(&String::from_utf8_lossy(&body));
}

#[test]
fn anthropic_shape() {
    check(
        Api::Anthropic,
        429,
        expect![[
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"monthly budget \"team\" is spent","reason":"budget_exceeded"}}"#
        ]],
    );
}

#[test]
fn openai_shape() {
    check(
        Api::OpenAi,
        429,
        expect![[
            r#"{"error":{"message":"monthly budget \"team\" is spent","type":"rate_limit_error","param":null,"code":"budget_exceeded"}}"#
        ]],
    );
}

#[test]
fn types_by_status() {
    let statuses = [400, 401, 402, 403, 404, 409, 413, 422, 429, 500, 502, 503, 504, 529];
    let table: String = statuses
        .iter()
        .map(|&s| format!("{s} {} {}\n", error_type(Api::Anthropic, s), error_type(Api::OpenAi, s)))
        .collect();
    expect![[r#"
        400 invalid_request_error invalid_request_error
        401 authentication_error authentication_error
        402 billing_error invalid_request_error
        403 permission_error permission_error
        404 not_found_error not_found_error
        409 invalid_request_error invalid_request_error
        413 request_too_large invalid_request_error
        422 invalid_request_error invalid_request_error
        429 rate_limit_error rate_limit_error
        500 api_error server_error
        502 api_error server_error
        503 overloaded_error server_error
        504 api_error server_error
        529 overloaded_error server_error
    "#]]
    .assert_eq(&table);
}

#[test]
fn bodies_are_valid_json_whatever_the_text() {
    for api in [Api::Anthropic, Api::OpenAi] {
        let body = error_body(api, 502, "upstream\u{0}", "line\nbreak \u{2028} \\ \"");
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let message = match api {
            Api::Anthropic => &value["error"]["message"],
            Api::OpenAi => &value["error"]["message"],
        };
        assert_eq!(message, "line\nbreak \u{2028} \\ \"");
    }
}
