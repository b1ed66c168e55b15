//! The JSON control API under `/_mock/` (for the `mock-llm` binary's end-to-end users):
//! `GET /_mock/requests`, `POST /_mock/script`, `POST /_mock/default`, `POST /_mock/reset`,
//! `GET /_mock/health`. Control calls are not recorded.

use axum::body::Body;
use http::{header, Method, Response, StatusCode};
use serde_json::{json, Value};

use super::script::Reply;
use super::server::Shared;

pub(crate) fn handle(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
    let route = path.split('?').next().unwrap_or("").trim_end_matches('/');
    match (method.as_str(), route) {
        ("GET", "/_mock/health") => reply(StatusCode::OK, json!({"ok": true})),
        ("GET", "/_mock/requests") => {
            let requests: Vec<Value> = shared.requests().iter().map(|r| r.to_json()).collect();
            reply(StatusCode::OK, Value::Array(requests))
        }
        ("POST", "/_mock/script") => match parse_replies(body) {
            Ok(replies) => {
                let queued = shared.push(replies);
                reply(StatusCode::OK, json!({"queued": queued}))
            }
            Err(e) => bad_request(&e),
        },
        ("POST", "/_mock/default") => match serde_json::from_slice::<Reply>(body) {
            Ok(r) => {
                shared.set_default(r);
                reply(StatusCode::OK, json!({"ok": true}))
            }
            Err(e) => bad_request(&e.to_string()),
        },
        ("POST", "/_mock/reset") => {
            shared.reset();
            reply(StatusCode::OK, json!({"ok": true}))
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no control endpoint {method} {route}")}),
        ),
    }
}

/// A reply object or an array of them.
fn parse_replies(body: &[u8]) -> Result<Vec<Reply>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    match value {
        Value::Array(_) => serde_json::from_value(value).map_err(|e| e.to_string()),
        other => serde_json::from_value(other).map(|r| vec![r]).map_err(|e| e.to_string()),
    }
}

fn bad_request(message: &str) -> Response<Body> {
    reply(StatusCode::BAD_REQUEST, json!({"error": message}))
}

fn reply(status: StatusCode, body: Value) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp
}
