//! Request dispatch: records the request, maps the path (with or without `/v1`, Azure
//! `/openai/deployments/{d}/…`) to an endpoint, takes the next reply and renders it with the
//! provider module, then applies the reply's delivery (delay, error, drip, cut, gzip).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::Value;

use super::conversation::{self, Api};
use super::record::RecordedRequest;
use super::script::{ErrorReply, Gzip, Reply};
use super::server::Shared;
use super::wire::{accepts_gzip, frames_body, gzip_all, id62, idhex, Delivery};
use super::{anthropic, control, openai, responses};

/// Largest request body read (Claude Code and Codex send tens to hundreds of KB).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// An endpoint of the mock.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    Messages,
    CountTokens,
    Models,
    Model(String),
    Chat,
    Responses,
    Embeddings,
}

/// Error-body flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    Anthropic,
    OpenAi,
}

/// Handles one request.
pub(crate) async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let body = match axum::body::to_bytes(Body::new(body), BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error_response(flavour_of(&parts.headers, &path), &ErrorReply::status(413));
        }
    };
    if path.starts_with("/_mock/") || path == "/_mock" {
        return control::handle(&shared, &parts.method, &path, &body);
    }
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body,
    };
    shared.record(recorded.clone());

    let flavour = flavour_of(&parts.headers, &path);
    let (endpoint, deployment) = match endpoint(&path) {
        Some(found) => found,
        None => return not_found(flavour, &path),
    };
    let expected = match endpoint {
        Endpoint::Models | Endpoint::Model(_) => Method::GET,
        _ => Method::POST,
    };
    if parts.method != expected {
        let err = ErrorReply::status(405)
            .message(format!("Method {} not allowed for {}", parts.method, path));
        return error_response(flavour, &err);
    }
    let state = Call { shared: &shared, headers: &parts.headers, recorded: &recorded, deployment };
    match endpoint {
        Endpoint::Models => {
            let models = &shared.config.models;
            if parts.headers.contains_key("anthropic-version") {
                json_response(StatusCode::OK, anthropic::models_json(models), Flavour::Anthropic)
            } else {
                json_response(StatusCode::OK, openai::models_json(models), Flavour::OpenAi)
            }
        }
        Endpoint::Model(id) => {
            let anthropic_style = parts.headers.contains_key("anthropic-version");
            let fl = if anthropic_style { Flavour::Anthropic } else { Flavour::OpenAi };
            if !shared.config.models.contains(&id) {
                let err = ErrorReply::status(404).message(format!("model: {id}"));
                return error_response(fl, &err);
            }
            let body = if anthropic_style {
                anthropic::model_object(&id).to_json()
            } else {
                openai::model_object(&id).to_json()
            };
            json_response(StatusCode::OK, body, fl)
        }
        Endpoint::CountTokens => {
            if parse_json(&recorded).is_none() {
                return invalid_json(Flavour::Anthropic);
            }
            let reply = shared.peek_reply();
            let input = reply.usage.unwrap_or(shared.config.usage).input;
            json_response(StatusCode::OK, anthropic::count_tokens_json(input), Flavour::Anthropic)
        }
        Endpoint::Messages => state.generate(Api::Anthropic).await,
        Endpoint::Chat => state.generate(Api::Chat).await,
        Endpoint::Responses => state.generate(Api::Responses).await,
        Endpoint::Embeddings => state.embeddings().await,
    }
}

/// One generation request in flight.
struct Call<'a> {
    shared: &'a Shared,
    headers: &'a HeaderMap,
    recorded: &'a RecordedRequest,
    deployment: Option<String>,
}

impl Call<'_> {
    async fn generate(&self, api: Api) -> Response<Body> {
        let flavour = if api == Api::Anthropic { Flavour::Anthropic } else { Flavour::OpenAi };
        let Some(req) = parse_json(self.recorded) else {
            return invalid_json(flavour);
        };
        let reply = self.shared.next_reply();
        if let Some(ms) = reply.delay_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(err) = &reply.error {
            return error_response(flavour, err);
        }
        let cfg = &self.shared.config;
        let model = conversation::model(&req, self.deployment.as_deref().unwrap_or("mock-model"));
        let outcome = conversation::resolve(api, &req, &reply, &cfg.text, cfg.usage);
        let delivery = self.delivery(&reply);
        if conversation::streaming(&req) {
            let mut frames = match api {
                Api::Anthropic => anthropic::stream_frames(&model, &outcome),
                Api::Chat => {
                    let include_usage = req
                        .pointer("/stream_options/include_usage")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    openai::chat_frames(&model, &outcome, include_usage)
                }
                Api::Responses => {
                    responses::stream_frames(&req, &model, &outcome, reply.error_event_after)
                }
            };
            if let Some(n) = reply.error_event_after {
                match api {
                    Api::Anthropic => {
                        frames.truncate(n);
                        frames.push(anthropic::error_frame());
                    }
                    Api::Chat => {
                        frames.truncate(n);
                        frames.push(openai::chat_error_frame());
                    }
                    Api::Responses => {}
                }
            }
            sse_response(flavour, frames, delivery)
        } else {
            let body = match api {
                Api::Anthropic => anthropic::message_json(&model, &outcome),
                Api::Chat => openai::chat_json(&model, &outcome),
                Api::Responses => responses::response_json(&req, &model, &outcome),
            };
            full_response(flavour, body, delivery)
        }
    }

    async fn embeddings(&self) -> Response<Body> {
        let Some(req) = parse_json(self.recorded) else {
            return invalid_json(Flavour::OpenAi);
        };
        let reply = self.shared.next_reply();
        if let Some(ms) = reply.delay_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(err) = &reply.error {
            return error_response(Flavour::OpenAi, err);
        }
        let cfg = &self.shared.config;
        let model =
            conversation::model(&req, self.deployment.as_deref().unwrap_or("mock-embedding"));
        let usage = reply.usage.unwrap_or(cfg.usage);
        let body = openai::embeddings_json(&req, &model, &usage);
        full_response(Flavour::OpenAi, body, self.delivery(&reply))
    }

    fn delivery(&self, reply: &Reply) -> Delivery {
        let cfg = &self.shared.config;
        let gzip = match reply.gzip.unwrap_or(cfg.gzip) {
            Gzip::Off => false,
            Gzip::Auto => accepts_gzip(
                self.headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()),
            ),
            Gzip::Force => true,
        };
        Delivery {
            drip: reply.drip_ms.map_or(cfg.drip, Duration::from_millis),
            cut_after: reply.cut_after_events,
            gzip,
        }
    }
}

impl ErrorReply {
    /// An error with a status and provider defaults.
    pub(crate) fn status(status: u16) -> Self {
        ErrorReply { status, retry_after: None, message: None, error_type: None, body: None }
    }

    fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

fn parse_json(recorded: &RecordedRequest) -> Option<Value> {
    recorded.json().filter(Value::is_object)
}

fn invalid_json(flavour: Flavour) -> Response<Body> {
    error_response(flavour, &ErrorReply::status(400).message("The request body is not valid JSON."))
}

/// Maps a path to an endpoint and, for Azure paths, the deployment name.
fn endpoint(path: &str) -> Option<(Endpoint, Option<String>)> {
    let path = path.split('?').next().unwrap_or("");
    let path = path.trim_end_matches('/');
    let mut deployment = None;
    let mut rest = path;
    if let Some(azure) = rest.strip_prefix("/openai") {
        rest = azure;
        if let Some(dep) = rest.strip_prefix("/deployments/") {
            let (name, tail) = dep.split_once('/')?;
            deployment = Some(name.to_owned());
            rest = tail;
        }
    }
    let rest = rest.trim_start_matches('/');
    let rest = rest.strip_prefix("v1/").unwrap_or(rest);
    let endpoint = match rest {
        "messages" => Endpoint::Messages,
        "messages/count_tokens" => Endpoint::CountTokens,
        "models" => Endpoint::Models,
        "chat/completions" => Endpoint::Chat,
        "responses" => Endpoint::Responses,
        "embeddings" => Endpoint::Embeddings,
        other => match other.strip_prefix("models/") {
            Some(id) if !id.is_empty() && !id.contains('/') => Endpoint::Model(id.to_owned()),
            _ => return None,
        },
    };
    Some((endpoint, deployment))
}

fn flavour_of(headers: &HeaderMap, path: &str) -> Flavour {
    if headers.contains_key("anthropic-version") || path.contains("/messages") {
        Flavour::Anthropic
    } else {
        Flavour::OpenAi
    }
}

fn not_found(flavour: Flavour, path: &str) -> Response<Body> {
    let message = match flavour {
        Flavour::Anthropic => "Not found".to_owned(),
        Flavour::OpenAi => format!("Invalid URL ({path})"),
    };
    error_response(flavour, &ErrorReply::status(404).message(message))
}

fn request_id(flavour: Flavour) -> (&'static str, String) {
    match flavour {
        Flavour::Anthropic => ("request-id", id62("req_011C", 20)),
        Flavour::OpenAi => ("x-request-id", idhex("req_", 32)),
    }
}

fn base_headers(builder: http::response::Builder, flavour: Flavour) -> http::response::Builder {
    let (name, id) = request_id(flavour);
    let builder = builder.header(name, id);
    match flavour {
        Flavour::Anthropic => builder,
        Flavour::OpenAi => {
            builder.header("openai-processing-ms", "1").header("openai-version", "2020-10-01")
        }
    }
}

fn finish(builder: http::response::Builder, body: Body) -> Response<Body> {
    builder.body(body).unwrap_or_else(|_| {
        let mut resp = Response::new(Body::from("mock: cannot build response"));
        *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}

/// A provider-shaped error response.
fn error_response(flavour: Flavour, err: &ErrorReply) -> Response<Body> {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (name, id) = request_id(flavour);
    let body = match flavour {
        Flavour::Anthropic => anthropic::error_json(err, &id),
        Flavour::OpenAi => openai::error_json(err),
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(name, id);
    if let Some(secs) = err.retry_after {
        builder = builder.header(header::RETRY_AFTER, secs.to_string());
    }
    if flavour == Flavour::Anthropic {
        let retry = matches!(err.status, 408 | 409 | 429) || err.status >= 500;
        builder = builder.header("x-should-retry", if retry { "true" } else { "false" });
    }
    finish(builder, Body::from(body))
}

fn json_response(status: StatusCode, body: String, flavour: Flavour) -> Response<Body> {
    let builder =
        Response::builder().status(status).header(header::CONTENT_TYPE, "application/json");
    finish(base_headers(builder, flavour), Body::from(body))
}

fn sse_response(flavour: Flavour, frames: Vec<Bytes>, delivery: Delivery) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache");
    if delivery.gzip {
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
    }
    finish(base_headers(builder, flavour), frames_body(frames, delivery))
}

/// A complete (non-streaming) JSON body; with a cut, half of it and then an abort under a
/// `content-length` of the whole.
fn full_response(flavour: Flavour, body: String, delivery: Delivery) -> Response<Body> {
    let bytes =
        if delivery.gzip { Bytes::from(gzip_all(body.as_bytes())) } else { Bytes::from(body) };
    let mut builder =
        Response::builder().status(StatusCode::OK).header(header::CONTENT_TYPE, "application/json");
    if delivery.gzip {
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
    }
    let body = match delivery.cut_after {
        Some(_) => {
            builder = builder.header(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let half = bytes.slice(..bytes.len() / 2);
            frames_body(
                vec![half],
                Delivery { drip: Duration::ZERO, cut_after: Some(1), gzip: false },
            )
        }
        None => Body::from(bytes),
    };
    finish(base_headers(builder, flavour), body)
}
