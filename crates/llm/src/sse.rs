//! An incremental Server-Sent Events decoder that taps a stream without owning it.
//!
//! Hand-written rather than taken from an eventsource crate: the gateway forwards the upstream
//! stream to the client unchanged and only *looks* at it, so it needs a decoder that borrows each
//! chunk as it passes, reports events the moment their blank line arrives, copies only the tail of
//! an event that straddles two chunks, and says where each event starts and ends in the raw byte
//! stream (to drop exactly one event when filtering). Eventsource crates take ownership of the
//! stream, re-frame it and allocate per event, which gives none of that.
//!
//! Parsing follows the WHATWG rules: lines end with `\r\n`, `\n` or `\r`; a line starting with
//! `:` is a comment; `data` lines are joined with `\n`; a blank line dispatches the event; an
//! event without `data` dispatches nothing; a leading byte-order mark is skipped; an incomplete
//! event at the end of the stream is discarded. `id` and `retry` are ignored (the gateway never
//! reconnects). Invalid UTF-8 is replaced, never a failure.

use std::borrow::Cow;

use memchr::{memchr, memchr2};

/// The largest event the decoder buffers; a larger one is dropped (reported as an oversized
/// frame without an event) instead of growing memory without bound.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Above this capacity the buffer is released after an event rather than kept for reuse.
const RETAINED_CAPACITY: usize = 64 * 1024;

/// One dispatched event. Borrows from the pushed chunk where it can, so it lives only for the
/// callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, `None` when absent or empty (the spec's default type, `message`).
    pub event: Option<&'a str>,
    /// All `data:` lines of the event, joined with `\n`.
    pub data: &'a str,
}

/// One complete frame of the raw stream: the bytes up to and including the blank line that ends
/// an event, with what they parse to. Frames partition the stream: each starts where the previous
/// one ended, whatever the chunking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The frame's bytes exactly as they appeared in the stream; empty when `oversized`.
    pub raw: &'a [u8],
    /// Offset of the frame's first byte, counted from the first byte ever pushed.
    pub start: u64,
    /// Offset just past the frame's last byte.
    pub end: u64,
    /// The event, `None` for a frame of comments only, without `data`, or oversized.
    pub event: Option<SseEvent<'a>>,
    /// The frame exceeded the decoder's bound; its bytes were not kept.
    pub oversized: bool,
}

/// Incremental SSE decoder: push chunks as they arrive, get events as soon as they are complete.
#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes of the incomplete frame carried over from earlier chunks.
    buf: Vec<u8>,
    scanner: Scanner,
    /// Bytes pushed so far.
    pos: u64,
    /// Stream offset of the incomplete frame's first byte.
    frame_start: u64,
    /// The incomplete frame outgrew `max_event_bytes` and is being skipped.
    oversized: bool,
    max_event_bytes: usize,
    /// Scratch for data joined from several lines or repaired from invalid UTF-8.
    data: String,
    /// Scratch for an event name repaired from invalid UTF-8.
    name: String,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    /// A decoder that drops events whose frame is longer than `max_event_bytes`.
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            scanner: Scanner::default(),
            pos: 0,
            frame_start: 0,
            oversized: false,
            max_event_bytes,
            data: String::new(),
            name: String::new(),
        }
    }

    /// Feeds the next chunk of the stream and calls `on_event` for each event it completes.
    pub fn push(&mut self, chunk: &[u8], mut on_event: impl FnMut(SseEvent<'_>)) {
        self.push_framed(chunk, |frame| {
            if let Some(event) = frame.event {
                on_event(event);
            }
        });
    }

    /// Feeds the next chunk and calls `on_frame` for each frame it completes, in stream order.
    ///
    /// A frame whose blank line ends in `\r` as the very last byte pushed is reported only when
    /// the next byte shows whether a `\n` belongs to it (or at [`SseDecoder::finish_framed`]), so
    /// that frame boundaries never depend on chunking.
    pub fn push_framed(&mut self, chunk: &[u8], mut on_frame: impl FnMut(Frame<'_>)) {
        let chunk_start = self.pos;
        self.pos += chunk.len() as u64;
        let mut rest = chunk;
        loop {
            let Some(n) = self.scanner.find_end(rest) else {
                self.keep_incomplete(rest);
                return;
            };
            let Some((head, tail)) = rest.split_at_checked(n) else {
                // The scanner never returns more than it was given; stop rather than guess.
                return;
            };
            let end = chunk_start + (chunk.len() - tail.len()) as u64;
            self.emit(head, end, &mut on_frame);
            rest = tail;
        }
    }

    /// Ends the stream: reports a frame still waiting on a final `\r` and discards an incomplete
    /// event, as the spec says. The decoder can then be reused for a new stream.
    pub fn finish(&mut self, mut on_event: impl FnMut(SseEvent<'_>)) {
        self.finish_framed(|frame| {
            if let Some(event) = frame.event {
                on_event(event);
            }
        });
    }

    /// [`SseDecoder::finish`], reporting frames.
    pub fn finish_framed(&mut self, mut on_frame: impl FnMut(Frame<'_>)) {
        if self.scanner.ends_at_pending_cr() {
            self.emit(&[], self.pos, &mut on_frame);
        }
        *self = Self::with_max_event_bytes(self.max_event_bytes);
    }

    /// Bytes of the current incomplete frame that are being held (not counting skipped ones).
    pub fn pending_len(&self) -> usize {
        self.buf.len()
    }

    fn keep_incomplete(&mut self, rest: &[u8]) {
        if self.oversized {
            return;
        }
        let pending = self.pos - self.frame_start;
        if pending > self.max_event_bytes as u64 {
            self.oversized = true;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(rest);
        }
    }

    /// Reports the frame that ends with `head` (its last bytes, from the current chunk) at `end`.
    fn emit(&mut self, head: &[u8], end: u64, on_frame: &mut impl FnMut(Frame<'_>)) {
        let start = self.frame_start;
        if self.oversized || end - start > self.max_event_bytes as u64 {
            on_frame(Frame { raw: &[], start, end, event: None, oversized: true });
        } else {
            let raw: &[u8] = if self.buf.is_empty() {
                head
            } else {
                self.buf.extend_from_slice(head);
                &self.buf
            };
            let event = parse_frame(raw, start == 0, &mut self.data, &mut self.name);
            on_frame(Frame { raw, start, end, event, oversized: false });
        }
        self.frame_start = end;
        self.oversized = false;
        self.buf.clear();
        if self.buf.capacity() > RETAINED_CAPACITY {
            self.buf = Vec::new();
        }
    }
}

/// Finds where frames end: at the terminator of an empty line. Carries its state across chunks,
/// so a `\r\n` or a blank line split between two chunks is still recognized.
#[derive(Debug, Default, Clone, Copy)]
struct Scanner {
    /// The current line has at least one byte.
    line_has_content: bool,
    /// The last byte was a `\r` terminator; a `\n` right after it belongs to it.
    after_cr: bool,
    /// That `\r` ended an empty line, so the frame ends with it (or with its `\n`).
    cr_ended_blank: bool,
}

impl Scanner {
    /// Consumes `bytes` until a frame ends; returns how many bytes belong to that frame, or
    /// `None` if all of them belong to a frame that has not ended yet.
    fn find_end(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        loop {
            let rest = bytes.get(i..)?;
            if self.after_cr {
                let first = *rest.first()?;
                self.after_cr = false;
                if first == b'\n' {
                    i += 1;
                }
                if std::mem::take(&mut self.cr_ended_blank) {
                    *self = Self::default();
                    return Some(i);
                }
                continue;
            }
            let Some(k) = memchr2(b'\n', b'\r', rest) else {
                self.line_has_content |= !rest.is_empty();
                return None;
            };
            let blank = k == 0 && !self.line_has_content;
            self.line_has_content = false;
            let terminator = rest.get(k).copied();
            i += k + 1;
            if terminator == Some(b'\r') {
                self.after_cr = true;
                self.cr_ended_blank = blank;
            } else if blank {
                *self = Self::default();
                return Some(i);
            }
        }
    }

    /// A frame ended with a `\r` that was the last byte seen.
    fn ends_at_pending_cr(&self) -> bool {
        self.after_cr && self.cr_ended_blank
    }
}

/// Parses one complete frame into its event, if it dispatches one.
fn parse_frame<'a>(
    raw: &'a [u8],
    at_stream_start: bool,
    data_buf: &'a mut String,
    name_buf: &'a mut String,
) -> Option<SseEvent<'a>> {
    let raw = match raw.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) if at_stream_start => rest,
        _ => raw,
    };
    let mut name: Option<&[u8]> = None;
    let mut first_data: &[u8] = &[];
    let mut data_lines = 0usize;
    for line in Lines(raw) {
        if line.first().is_none_or(|&b| b == b':') {
            continue;
        }
        let (field, value) = match memchr(b':', line) {
            Some(colon) => {
                let (field, value) = line.split_at(colon);
                let value = value.get(1..).unwrap_or_default();
                (field, value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if data_lines == 0 {
                    first_data = value;
                } else {
                    if data_lines == 1 {
                        data_buf.clear();
                        data_buf.push_str(&String::from_utf8_lossy(first_data));
                    }
                    data_buf.push('\n');
                    data_buf.push_str(&String::from_utf8_lossy(value));
                }
                data_lines += 1;
            }
            b"event" => name = Some(value),
            _ => {}
        }
    }
    if data_lines == 0 {
        return None;
    }
    let data: &str = if data_lines == 1 { into_str(first_data, data_buf) } else { data_buf };
    let event = match name {
        Some(name) if !name.is_empty() => Some(into_str(name, name_buf)),
        _ => None,
    };
    Some(SseEvent { event, data })
}

/// Borrows `bytes` as text, or repairs invalid UTF-8 into `scratch`.
fn into_str<'a>(bytes: &'a [u8], scratch: &'a mut String) -> &'a str {
    match String::from_utf8_lossy(bytes) {
        Cow::Borrowed(text) => text,
        Cow::Owned(repaired) => {
            *scratch = repaired;
            scratch
        }
    }
}

/// The lines of a complete frame, split at `\r\n`, `\n` or `\r`.
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let Some(at) = memchr2(b'\n', b'\r', self.0) else {
            return Some(std::mem::take(&mut self.0));
        };
        let (line, rest) = self.0.split_at(at);
        self.0 = match rest {
            [b'\r', b'\n', after @ ..] | [_, after @ ..] => after,
            [] => &[],
        };
        Some(line)
    }
}

#[cfg(test)]
mod tests;
