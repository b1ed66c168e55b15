//! Wire-level building blocks shared by the provider modules: an ordered JSON value (the real
//! APIs put `type` first and tests read streams by eye), SSE framing, provider-like ids, and the
//! response body that applies drip delays, mid-stream cuts and gzip.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;

/// A JSON value whose objects keep insertion order when written.
#[derive(Clone, Debug)]
pub(crate) enum J {
    Null,
    Bool(bool),
    U(u64),
    F(f64),
    S(String),
    A(Vec<J>),
    O(Vec<(String, J)>),
    /// An arbitrary value taken from a request or a script (written with serde_json's order).
    V(serde_json::Value),
}

/// Builds an ordered JSON object: `obj! { "type" => "message", "index" => 0u64 }`.
macro_rules! obj {
    ($($k:expr => $v:expr),* $(,)?) => {
        $crate::llm::wire::J::O(vec![$((String::from($k), $crate::llm::wire::J::from($v))),*])
    };
}
pub(crate) use obj;

impl J {
    /// Writes compact JSON.
    pub(crate) fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::U(n) => {
                let _ = write!(out, "{n}");
            }
            J::F(f) => out.push_str(&serde_json::Value::from(*f).to_string()),
            J::S(s) => write_str(out, s),
            J::A(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            J::O(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
            J::V(v) => out.push_str(&v.to_string()),
        }
    }

    /// Appends a field to an object (no-op on other kinds).
    pub(crate) fn push(&mut self, key: &str, value: impl Into<J>) {
        if let J::O(fields) = self {
            fields.push((key.to_owned(), value.into()));
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    // serde_json's escaping of a plain string cannot fail.
    out.push_str(&serde_json::Value::from(s).to_string());
}

impl From<&str> for J {
    fn from(s: &str) -> J {
        J::S(s.to_owned())
    }
}
impl From<String> for J {
    fn from(s: String) -> J {
        J::S(s)
    }
}
impl From<&String> for J {
    fn from(s: &String) -> J {
        J::S(s.clone())
    }
}
impl From<u64> for J {
    fn from(n: u64) -> J {
        J::U(n)
    }
}
impl From<usize> for J {
    fn from(n: usize) -> J {
        J::U(n as u64)
    }
}
impl From<f64> for J {
    fn from(f: f64) -> J {
        J::F(f)
    }
}
impl From<bool> for J {
    fn from(b: bool) -> J {
        J::Bool(b)
    }
}
impl From<serde_json::Value> for J {
    fn from(v: serde_json::Value) -> J {
        J::V(v)
    }
}
impl From<Vec<J>> for J {
    fn from(items: Vec<J>) -> J {
        J::A(items)
    }
}
impl<T: Into<J>> From<Option<T>> for J {
    fn from(v: Option<T>) -> J {
        v.map_or(J::Null, Into::into)
    }
}

/// One SSE frame: `event: NAME\ndata: JSON\n\n` (or only `data:` when `event` is `None`).
pub(crate) fn sse(event: Option<&str>, data: &str) -> Bytes {
    let mut s = String::with_capacity(data.len() + 32);
    if let Some(event) = event {
        s.push_str("event: ");
        s.push_str(event);
        s.push('\n');
    }
    s.push_str("data: ");
    s.push_str(data);
    s.push_str("\n\n");
    Bytes::from(s)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn next_random() -> u64 {
    let seed =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    splitmix(seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `prefix` + `len` base62 characters, e.g. `id62("msg_01", 22)` like Anthropic's ids.
pub(crate) fn id62(prefix: &str, len: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    let mut r = next_random();
    for i in 0..len {
        if i % 10 == 9 {
            r = next_random();
        }
        s.push(char::from(BASE62[(r % 62) as usize]));
        r /= 62;
    }
    s
}

/// `prefix` + `len` lowercase hex characters, like OpenAI's Responses ids.
pub(crate) fn idhex(prefix: &str, len: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    while s.len() < prefix.len() + len {
        let _ = write!(s, "{:016x}", next_random());
    }
    s.truncate(prefix.len() + len);
    s
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Splits text into token-like pieces: words with their leading whitespace.
pub(crate) fn text_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut seen_word = false;
    for ch in text.chars() {
        if ch.is_whitespace() && seen_word {
            pieces.push(std::mem::take(&mut cur));
            seen_word = false;
        }
        if !ch.is_whitespace() {
            seen_word = true;
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        pieces.push(cur);
    }
    pieces
}

/// Splits a string into pieces of at most `n` characters (on char boundaries).
pub(crate) fn char_pieces(s: &str, n: usize) -> Vec<String> {
    let n = n.max(1);
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

/// How a body is delivered: delays, cut, compression.
#[derive(Clone, Debug, Default)]
pub(crate) struct Delivery {
    /// Delay before each frame after the first.
    pub(crate) drip: Duration,
    /// Abort the body after this many frames (never sending the end of the body).
    pub(crate) cut_after: Option<usize>,
    /// Gzip the bytes (the caller sets `content-encoding`).
    pub(crate) gzip: bool,
}

/// A streaming body of `frames` delivered per `delivery`.
pub(crate) fn frames_body(frames: Vec<Bytes>, delivery: Delivery) -> Body {
    struct St {
        frames: std::vec::IntoIter<Bytes>,
        sent: usize,
        enc: Option<GzEncoder<Vec<u8>>>,
        delivery: Delivery,
        done: bool,
    }
    let st = St {
        frames: frames.into_iter(),
        sent: 0,
        enc: delivery.gzip.then(|| GzEncoder::new(Vec::new(), Compression::fast())),
        delivery,
        done: false,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        let cut_now = st.delivery.cut_after.is_some_and(|n| st.sent >= n);
        let next = if cut_now { None } else { st.frames.next() };
        let Some(frame) = next else {
            st.done = true;
            if st.delivery.cut_after.is_some() {
                // Let the server flush what was sent before aborting the connection.
                tokio::time::sleep(Duration::from_millis(30)).await;
                let err = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "mock cut");
                return Some((Err(err), st));
            }
            return match st.enc.take().map(GzEncoder::finish) {
                Some(Ok(tail)) => Some((Ok(Bytes::from(tail)), st)),
                Some(Err(e)) => Some((Err(e), st)),
                None => None,
            };
        };
        if st.sent > 0 && !st.delivery.drip.is_zero() {
            tokio::time::sleep(st.delivery.drip).await;
        }
        st.sent += 1;
        let out = match st.enc.as_mut() {
            Some(enc) => match enc.write_all(&frame).and_then(|()| enc.flush()) {
                Ok(()) => Bytes::from(std::mem::take(enc.get_mut())),
                Err(e) => return Some((Err(e), st)),
            },
            None => frame,
        };
        Some((Ok(out), st))
    });
    Body::from_stream(stream)
}

/// Gzips a whole buffer.
pub(crate) fn gzip_all(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Whether an `Accept-Encoding` value allows gzip.
pub(crate) fn accepts_gzip(header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    header.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if name != "gzip" && name != "x-gzip" && name != "*" {
            return false;
        }
        !parts.any(|p| {
            let p = p.trim().replace(' ', "");
            p.strip_prefix("q=")
                .is_some_and(|q| q.parse::<f32>().map(|q| q <= 0.0).unwrap_or(false))
        })
    })
}
