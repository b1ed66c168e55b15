//! [`ChatUsageFilter`]: forwards an OpenAI chat stream byte for byte, minus the usage-only chunk
//! that the gateway asked for on the client's behalf.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use domain::Endpoint;

use super::{TapOutcome, UsageTap};
use crate::sse::{Frame, SseDecoder};

/// The most bytes of an unfinished event held back. The usage-only chunk is a few hundred
/// bytes, so an event this large cannot be it and is forwarded as it arrives.
const MAX_HELD: usize = 64 * 1024;

/// Filters an OpenAI chat completions stream whose `stream_options.include_usage` the gateway
/// injected: the final chunk with `"choices":[]` and `usage` is metered but not forwarded.
///
/// Everything else passes byte for byte. Each event is released the moment its blank line
/// arrives; only the bytes of an event still incomplete at the end of a chunk are held, so a
/// chunk of whole events comes back as the same `Bytes`, without a copy. The filter meters the
/// stream itself (it wraps a [`UsageTap`]), so the chunks need not be fed to another tap.
/// A body that is JSON rather than SSE (an upstream error) passes through untouched.
#[derive(Debug)]
pub struct ChatUsageFilter {
    decoder: SseDecoder,
    tap: UsageTap,
    mode: Mode,
    /// Bytes pushed so far.
    pos: u64,
    /// Stream offset up to which every byte has been forwarded or dropped.
    decided: u64,
    /// The undecided bytes of earlier chunks, `decided..` up to the current chunk.
    held: Vec<u8>,
    /// The unfinished event outgrew `MAX_HELD` and is being forwarded as it arrives.
    streaming_through: bool,
    dropped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Start,
    Sse,
    PassThrough,
}

impl Default for ChatUsageFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatUsageFilter {
    /// A filter for one response.
    pub fn new() -> Self {
        Self {
            decoder: SseDecoder::default(),
            tap: UsageTap::new(Endpoint::ChatCompletions, true),
            mode: Mode::Start,
            pos: 0,
            decided: 0,
            held: Vec::new(),
            streaming_through: false,
            dropped: false,
        }
    }

    /// Takes the next upstream chunk; returns the bytes to forward now (possibly none).
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        if self.mode == Mode::Start && !chunk.is_empty() {
            let json = chunk.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
            self.mode = if json { Mode::PassThrough } else { Mode::Sse };
        }
        if self.mode == Mode::PassThrough {
            self.tap.feed(&chunk);
            return chunk;
        }
        let chunk_start = self.pos;
        self.pos += chunk.len() as u64;
        let mut out = Out::new(&chunk);
        let mut step = Step {
            tap: &mut self.tap,
            chunk_start,
            decided: &mut self.decided,
            held: &mut self.held,
            streaming_through: &mut self.streaming_through,
            dropped: &mut self.dropped,
            out: &mut out,
        };
        self.decoder.push_framed(&chunk, |frame| step.frame(&frame));
        // What is left is the start of an unfinished event.
        let tail = offset_in_chunk(self.decided, chunk_start)..chunk.len();
        if !self.streaming_through && self.held.len() + tail.len() > MAX_HELD {
            self.streaming_through = true;
            out.copy(&self.held);
            self.held.clear();
        }
        if self.streaming_through {
            out.slice(tail);
            self.decided = self.pos;
        } else {
            self.held.extend_from_slice(chunk.get(tail).unwrap_or_default());
        }
        out.into_bytes()
    }

    /// Ends the stream: returns the bytes still to forward (an unfinished last event is passed
    /// on as it came) and what the stream reported.
    pub fn finish(mut self) -> (Bytes, TapOutcome) {
        let empty = Bytes::new();
        let mut out = Out::new(&empty);
        let mut step = Step {
            tap: &mut self.tap,
            chunk_start: self.pos,
            decided: &mut self.decided,
            held: &mut self.held,
            streaming_through: &mut self.streaming_through,
            dropped: &mut self.dropped,
            out: &mut out,
        };
        // A stream that ends right after a final `\r` may still complete one event.
        self.decoder.finish_framed(|frame| step.frame(&frame));
        out.copy(&self.held);
        (out.into_bytes(), self.tap.finish())
    }
}

/// The filter's state, borrowed for the frames of one chunk.
struct Step<'s, 'c> {
    tap: &'s mut UsageTap,
    chunk_start: u64,
    decided: &'s mut u64,
    held: &'s mut Vec<u8>,
    streaming_through: &'s mut bool,
    dropped: &'s mut bool,
    out: &'s mut Out<'c>,
}

impl Step<'_, '_> {
    /// Meters a completed frame, then forwards or drops its undecided bytes: the held ones
    /// (which all belong to it) and its part of the current chunk.
    fn frame(&mut self, frame: &Frame<'_>) {
        let usage_only = frame.event.is_some_and(|event| self.tap.on_event(event));
        let drop = usage_only && !*self.dropped && !*self.streaming_through;
        if !drop {
            self.out.copy(self.held);
            let from = offset_in_chunk(*self.decided, self.chunk_start);
            self.out.slice(from..offset_in_chunk(frame.end, self.chunk_start));
        }
        self.held.clear();
        *self.decided = frame.end;
        *self.dropped |= drop;
        *self.streaming_through = false;
    }
}

/// Where stream offset `at` falls in a chunk starting at `chunk_start` (0 if before it).
fn offset_in_chunk(at: u64, chunk_start: u64) -> usize {
    usize::try_from(at.saturating_sub(chunk_start)).unwrap_or(usize::MAX)
}

/// The bytes to forward for one push: a single range of the chunk (returned without a copy)
/// until anything else is added, then a buffer.
struct Out<'c> {
    chunk: &'c Bytes,
    range: Option<Range<usize>>,
    buf: Option<BytesMut>,
}

impl<'c> Out<'c> {
    fn new(chunk: &'c Bytes) -> Self {
        Self { chunk, range: None, buf: None }
    }

    fn slice(&mut self, range: Range<usize>) {
        let Some(bytes) = self.chunk.get(range.clone()).filter(|b| !b.is_empty()) else {
            return;
        };
        match (&mut self.buf, &mut self.range) {
            (Some(buf), _) => buf.extend_from_slice(bytes),
            (None, Some(current)) if current.end == range.start => current.end = range.end,
            (None, Some(_)) => self.buffer().extend_from_slice(bytes),
            (None, None) => self.range = Some(range),
        }
    }

    fn copy(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.buffer().extend_from_slice(bytes);
        }
    }

    /// Switches to a buffer, moving the range so far into it.
    fn buffer(&mut self) -> &mut BytesMut {
        let (chunk, range) = (self.chunk, self.range.take());
        self.buf.get_or_insert_with(|| {
            let first = range.and_then(|r| chunk.get(r)).unwrap_or_default();
            let mut buf = BytesMut::with_capacity(first.len() + 512);
            buf.extend_from_slice(first);
            buf
        })
    }

    fn into_bytes(self) -> Bytes {
        match (self.buf, self.range) {
            (Some(buf), _) => buf.freeze(),
            (None, Some(range)) => self.chunk.slice(range),
            (None, None) => Bytes::new(),
        }
    }
}
