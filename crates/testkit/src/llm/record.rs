//! Requests as the mock received them, for assertions on what the upstream saw (auth headers,
//! stamped identity, byte-for-byte bodies).

use std::io::Read as _;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

/// One request received by the mock (control-API calls under `/_mock/` are not recorded).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `POST`, `GET`, `HEAD`…
    pub method: String,
    /// Path and query, e.g. `/v1/messages?beta=true`.
    pub path: String,
    pub headers: HeaderMap,
    /// The raw body bytes, as received (still compressed if the client compressed them).
    pub body: Bytes,
}

impl RecordedRequest {
    /// The path without the query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// The first value of a header, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// All values of a header.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
    }

    /// The body, gunzipped when `content-encoding: gzip`.
    pub fn decoded_body(&self) -> Bytes {
        let gz =
            self.header("content-encoding").is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        if gz {
            let mut out = Vec::new();
            if flate2::read::GzDecoder::new(&self.body[..]).read_to_end(&mut out).is_ok() {
                return Bytes::from(out);
            }
        }
        self.body.clone()
    }

    /// The body as (lossy) UTF-8 text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.decoded_body()).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.decoded_body()).ok()
    }

    /// JSON for the control API: headers as an object (repeated headers joined with `, `),
    /// body as a string.
    pub fn to_json(&self) -> Value {
        let mut headers = serde_json::Map::new();
        for name in self.headers.keys() {
            headers.insert(
                name.as_str().to_owned(),
                Value::from(self.header_all(name.as_str()).join(", ")),
            );
        }
        serde_json::json!({
            "method": self.method,
            "path": self.path,
            "headers": headers,
            "body": self.body_text(),
        })
    }
}
