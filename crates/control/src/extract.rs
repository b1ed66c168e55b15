//! Request extractors whose failures are `Error`s (400 with the JSON error body naming the
//! field), instead of axum's plain-text rejections.
//!
//! JSON bodies are accepted whatever their `Content-Type`: `curl -d` sends a form type by
//! default, and refusing it would only get in the way of an operator.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::Error;

/// A JSON request body.
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes =
            Bytes::from_request(req, state).await.map_err(|rejection| Error::Malformed {
                field: None,
                message: format!(
                    "cannot read the request body: {}",
                    rejection.body_text().to_lowercase()
                ),
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::Malformed {
                field: None,
                message: "the request body is empty; send a JSON object".into(),
            });
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
            let path = err.path().to_string();
            Error::Malformed {
                field: (path != ".").then_some(path),
                message: format!("invalid request body: {err}"),
            }
        })?;
        de.end().map_err(|err| Error::Malformed {
            field: None,
            message: format!("invalid request body: {err}"),
        })?;
        Ok(Body(value))
    }
}

/// Query-string parameters.
pub(crate) struct Query<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(Query).map_err(|err| Error::Malformed {
            field: None,
            message: format!("invalid query string: {err}"),
        })
    }
}
