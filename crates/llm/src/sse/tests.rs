//! Tests for the SSE decoder: line endings, comments, chunk splits, bounds and frames.

use expect_test::{expect, Expect};
use proptest::prelude::*;

use super::*;

/// An owned copy of a frame, to compare frames across pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnedFrame {
    raw: Vec<u8>,
    start: u64,
    end: u64,
    event: Option<(Option<String>, String)>,
    oversized: bool,
}

fn frames(chunks: &[&[u8]], max: usize) -> Vec<OwnedFrame> {
    let mut decoder = SseDecoder::with_max_event_bytes(max);
    let mut out = Vec::new();
    let mut record = |f: Frame<'_>| {
        out.push(OwnedFrame {
            raw: f.raw.to_vec(),
            start: f.start,
            end: f.end,
            event: f.event.map(|e| (e.event.map(str::to_owned), e.data.to_owned())),
            oversized: f.oversized,
        })
    };
    for chunk in chunks {
        decoder.push_framed(chunk, &mut record);
    }
    decoder.finish_framed(&mut record);
    out
}

/// Renders the events of `input`, pushed in one chunk, one per line.
fn check(input: &str, expect: Expect) {
    let mut rendered = String::new();
    for frame in frames(&[input.as_bytes()], DEFAULT_MAX_EVENT_BYTES) {
        if let Some((event, data)) = frame.event {
            rendered.push_str(&format!("{event:?} {data:?}\n"));
        }
    }
    expect.assert_eq(&rendered);
}

#[test]
fn single_and_named_events() {
    check(
        "data: hello\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
        expect![[r#"
            None "hello"
            Some("ping") "{\"type\": \"ping\"}"
        "#]],
    );
}

#[test]
fn line_endings_crlf_and_cr() {
    check(
        "event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\rdata: 3\n\n",
        expect![[r#"
            Some("a") "1"
            Some("b") "2"
            None "3"
        "#]],
    );
}

#[test]
fn multi_line_data_is_joined_with_newlines() {
    check(
        "data: first\ndata:second\ndata\ndata:  two spaces\n\n",
        expect![[r#"
            None "first\nsecond\n\n two spaces"
        "#]],
    );
}

#[test]
fn comments_ids_retries_and_empty_events_dispatch_nothing() {
    check(
        ": keep-alive\n\nid: 7\nretry: 100\n\nevent: lonely\n\n\n\ndata: x\nid: 8\n\n",
        expect![[r#"
            None "x"
        "#]],
    );
}

#[test]
fn empty_data_line_still_dispatches() {
    check(
        "data\n\nevent:\ndata:\n\n",
        expect![[r#"
            None ""
            None ""
        "#]],
    );
}

#[test]
fn last_event_name_wins_and_unknown_fields_are_ignored() {
    check(
        "event: a\nevent: b\nfoo: bar\ndata: d\n\n",
        expect![[r#"
            Some("b") "d"
        "#]],
    );
}

#[test]
fn leading_bom_is_skipped_only_at_stream_start() {
    check(
        "\u{feff}data: a\n\n\u{feff}data: b\n\n",
        expect![[r#"
            None "a"
        "#]],
    );
}

#[test]
fn invalid_utf8_is_replaced() {
    let out = frames(&[b"event: \xff\ndata: a\xfeb\ndata: c\n\ndata: \xc3\n\n"], 1024);
    let events: Vec<_> = out.into_iter().filter_map(|f| f.event).collect();
    assert_eq!(
        events,
        vec![
            (Some("\u{fffd}".to_owned()), "a\u{fffd}b\nc".to_owned()),
            (None, "\u{fffd}".to_owned())
        ]
    );
}

#[test]
fn incomplete_event_at_end_is_discarded() {
    check(
        "data: done\n\ndata: cut",
        expect![[r#"
        None "done"
    "#]],
    );
}

#[test]
fn events_are_reported_as_soon_as_complete() {
    let mut decoder = SseDecoder::default();
    let mut seen = Vec::new();
    decoder.push(b"data: a\n", |e| seen.push(e.data.to_owned()));
    assert!(seen.is_empty());
    decoder.push(b"\ndata: b\n\nda", |e| seen.push(e.data.to_owned()));
    assert_eq!(seen, ["a", "b"]);
    decoder.push(b"ta: c\r\n\r\n", |e| seen.push(e.data.to_owned()));
    assert_eq!(seen, ["a", "b", "c"]);
    assert_eq!(decoder.pending_len(), 0);
}

#[test]
fn cr_at_chunk_end_waits_for_the_next_byte() {
    let whole = frames(&[b"data: a\r\r\ndata: b\r\r"], 1024);
    let split = frames(&[b"data: a\r\r", b"\ndata: b\r\r"], 1024);
    assert_eq!(whole, split);
    assert_eq!(whole[0].raw, b"data: a\r\r\n");
    // The final frame, ended by a bare `\r`, is reported at finish.
    assert_eq!(whole[1].raw, b"data: b\r\r");
    assert_eq!(whole[1].end, 19);
}

#[test]
fn frames_partition_the_stream() {
    let input = b": hi\n\ndata: a\r\n\r\nevent: x\ndata: b\n\n\ndata: tail";
    let out = frames(&[input], 1024);
    let mut joined = Vec::new();
    let mut at = 0;
    for frame in &out {
        assert_eq!(frame.start, at);
        assert_eq!(frame.end, frame.start + frame.raw.len() as u64);
        joined.extend_from_slice(&frame.raw);
        at = frame.end;
    }
    assert_eq!(joined, b": hi\n\ndata: a\r\n\r\nevent: x\ndata: b\n\n\n");
    assert_eq!(out.len(), 4);
    assert_eq!(out[3].raw, b"\n");
    assert_eq!(out[3].event, None);
}

#[test]
fn oversized_events_are_dropped_and_decoding_resumes() {
    let big = format!("data: {}\n\n", "x".repeat(100));
    let input = format!("data: a\n\n{big}data: b\n\n");
    for chunks in [vec![input.as_bytes()], input.as_bytes().chunks(7).collect()] {
        let out = frames(&chunks, 64);
        let summary: Vec<_> =
            out.iter().map(|f| (f.start, f.end, f.oversized, f.event.clone())).collect();
        assert_eq!(
            summary,
            vec![
                (0, 9, false, Some((None, "a".to_owned()))),
                (9, 117, true, None),
                (117, 126, false, Some((None, "b".to_owned()))),
            ]
        );
    }
}

#[test]
fn oversized_partial_event_does_not_grow_the_buffer() {
    let mut decoder = SseDecoder::with_max_event_bytes(1024);
    let chunk = [b'x'; 512];
    decoder.push(b"data: ", |_| {});
    for _ in 0..100 {
        decoder.push(&chunk, |_| panic!("no event expected"));
        assert!(decoder.pending_len() <= 1024);
    }
    let mut seen = Vec::new();
    decoder.push(b"\n\ndata: ok\n\n", |e| seen.push(e.data.to_owned()));
    assert_eq!(seen, ["ok"]);
}

/// Cuts `input` at the given (sorted, deduplicated) offsets.
fn split_at<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut last = 0;
    for &cut in cuts {
        chunks.push(&input[last..cut]);
        last = cut;
    }
    chunks.push(&input[last..]);
    chunks
}

fn cuts(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..=len, 0..12).prop_map(|mut cuts| {
        cuts.sort_unstable();
        cuts
    })
}

/// Streams built from SSE-like lines with mixed line endings, so splits land everywhere that
/// matters: inside `\r\n`, between the two terminators of a blank line, inside field names.
fn sse_stream() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just("data: x".to_owned()),
        Just("data:{\"a\":1}".to_owned()),
        Just("data".to_owned()),
        Just("event: message_delta".to_owned()),
        Just(": comment".to_owned()),
        Just("id: 3".to_owned()),
        Just(String::new()),
        "[a-z: é]{0,12}".prop_map(|s| s),
    ];
    let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
    proptest::collection::vec((line, ending), 0..24).prop_map(|lines| {
        lines.into_iter().flat_map(|(l, e)| [l, e.to_owned()]).collect::<String>().into_bytes()
    })
}

proptest! {
    #[test]
    fn any_split_yields_the_same_frames(
        (input, cuts) in sse_stream().prop_flat_map(|s| { let n = s.len(); (Just(s), cuts(n)) }),
        max in prop_oneof![Just(8usize), Just(DEFAULT_MAX_EVENT_BYTES)],
    ) {
        let whole = frames(&[&input], max);
        let split = frames(&split_at(&input, &cuts), max);
        prop_assert_eq!(&whole, &split);
        // Frames are contiguous from the start and their bytes are the stream's bytes.
        let mut at = 0u64;
        for frame in &whole {
            prop_assert_eq!(frame.start, at);
            if !frame.oversized {
                prop_assert_eq!(&frame.raw[..], &input[frame.start as usize..frame.end as usize]);
            }
            at = frame.end;
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_invariantly(
        (input, cuts) in proptest::collection::vec(any::<u8>(), 0..256)
            .prop_flat_map(|s| { let n = s.len(); (Just(s), cuts(n)) }),
    ) {
        prop_assert_eq!(frames(&[&input], 32), frames(&split_at(&input, &cuts), 32));
    }
}
