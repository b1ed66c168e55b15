//! Tests for the usage taps and the chat usage filter: edge cases the golden fixtures don't
//! cover (no `event:` lines, nulls, bounds, JSON error bodies, filter buffering).

use bytes::Bytes;
use expect_test::{expect, Expect};

use super::*;

fn outcome(endpoint: Endpoint, streaming: bool, chunks: &[&str]) -> TapOutcome {
    let mut tap = UsageTap::new(endpoint, streaming);
    for chunk in chunks {
        tap.feed(chunk.as_bytes());
    }
    tap.finish()
}

fn check(endpoint: Endpoint, streaming: bool, chunks: &[&str], expect: Expect) {
    expect.assert_eq(&format!("{:?}", outcome(endpoint, streaming, chunks)));
}

#[test]
fn anthropic_stream_without_event_lines() {
    check(
        Endpoint::Messages,
        true,
        &[
            "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\\"type\\\":\\\"message_stop\\\"\"}}\n\n",
            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":7}}\n\n",
        ],
        expect![[r#"TapOutcome { usage: Some(Usage { input_tokens: 5, output_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, reasoning_tokens: 0 }), model: Some("claude-x"), stop_reason: Some("max_tokens"), complete: false }"#]],
    );
}

#[test]
fn anthropic_delta_takes_latest_non_null_values() {
    check(
        Endpoint::Messages,
        true,
        &[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":null,\"output_tokens\":1}}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},\"usage\":{\"input_tokens\":null,\"cache_creation_input_tokens\":20,\"output_tokens\":30}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":40}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ],
        expect![[r#"TapOutcome { usage: Some(Usage { input_tokens: 10, output_tokens: 40, cache_creation_input_tokens: 20, cache_read_input_tokens: 100, reasoning_tokens: 0 }), model: None, stop_reason: Some("end_turn"), complete: true }"#]],
    );
}

#[test]
fn malformed_events_are_skipped() {
    check(
        Endpoint::Messages,
        true,
        &[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":\"many\"}}}\n\n",
            "event: message_delta\ndata: {not json\n\n",
            "event: message_delta\ndata: {\"usage\":{\"output_tokens\":3}}\n\n",
        ],
        expect![[r#"TapOutcome { usage: Some(Usage { input_tokens: 0, output_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, reasoning_tokens: 0 }), model: None, stop_reason: None, complete: false }"#]],
    );
}

#[test]
fn streamed_request_answered_with_json_error() {
    check(
        Endpoint::Messages,
        true,
        &[
            "\n{\"type\":\"error\",",
            "\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}",
        ],
        expect![[r#"TapOutcome { usage: None, model: None, stop_reason: None, complete: true }"#]],
    );
}

#[test]
fn chat_pretty_printed_chunks_and_cached_above_prompt() {
    check(
        Endpoint::ChatCompletions,
        true,
        &[
            "data: {\"model\": \"m\", \"choices\": [{\"delta\": {\"content\": \"hi\"}, \"finish_reason\": null}], \"usage\": null}\n\n",
            "data: {\"model\": \"m\", \"choices\": [{\"delta\": {}, \"finish_reason\": \"stop\"}], \"usage\": null}\n\n",
            "data: {\"model\": \"m\", \"choices\": [], \"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 2, \"prompt_tokens_details\": {\"cached_tokens\": 9}, \"completion_tokens_details\": null}}\n\n",
            "data: [DONE]\n\n",
        ],
        expect![[r#"TapOutcome { usage: Some(Usage { input_tokens: 0, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 5, reasoning_tokens: 0 }), model: Some("m"), stop_reason: Some("stop"), complete: true }"#]],
    );
}

#[test]
fn chat_usage_on_every_chunk_keeps_the_last() {
    // Some OpenAI-compatible servers report running usage on every chunk.
    check(
        Endpoint::ChatCompletions,
        true,
        &[
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1}}\n\n",
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\n",
        ],
        expect![[r#"TapOutcome { usage: Some(Usage { input_tokens: 4, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, reasoning_tokens: 0 }), model: None, stop_reason: Some("stop"), complete: false }"#]],
    );
}

#[test]
fn responses_stream_without_event_lines() {
    check(
        Endpoint::Responses,
        true,
        &[
            "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"model\":\"gpt-5\",\"usage\":null}}\n\n",
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"\\\"type\\\":\\\"response.completed\\\"\"}\n\n",
            "data: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":10,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":3,\"output_tokens_details\":{\"reasoning_tokens\":2}}}}\n\n",
        ],
        expect![[r#"TapOutcome { usage: Some(Usage { input_tokens: 6, output_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 4, reasoning_tokens: 2 }), model: Some("gpt-5"), stop_reason: Some("completed"), complete: true }"#]],
    );
}

#[test]
fn json_bodies_fed_in_pieces() {
    check(
        Endpoint::Embeddings,
        false,
        &[
            "{\"object\":\"list\",\"data\":[{\"embedding\":[0.1,",
            "0.2]}],\"model\":\"te\",\"usage\":{\"prompt_tokens\":8,",
            "\"total_tokens\":8}}",
        ],
        expect![[
            r#"TapOutcome { usage: Some(Usage { input_tokens: 8, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, reasoning_tokens: 0 }), model: Some("te"), stop_reason: None, complete: true }"#
        ]],
    );
    check(
        Endpoint::ChatCompletions,
        false,
        &["{\"model\":\"m\",\"choices\":[{\"message\":{}", ",\"finish_reason\":\"stop\"}]"],
        expect![[r#"TapOutcome { usage: None, model: None, stop_reason: None, complete: false }"#]],
    );
    check(
        Endpoint::CountTokens,
        false,
        &["{\"input_tokens\":2095}"],
        expect![[r#"TapOutcome { usage: None, model: None, stop_reason: None, complete: true }"#]],
    );
    check(
        Endpoint::Messages,
        false,
        &[],
        expect![[r#"TapOutcome { usage: None, model: None, stop_reason: None, complete: false }"#]],
    );
}

#[test]
fn oversized_json_body_reads_usage_from_its_tail() {
    let mut tap = UsageTap::new(Endpoint::Embeddings, false);
    tap.feed(b"{\"object\":\"list\",\"data\":[");
    let piece = vec![b'1'; 1024 * 1024];
    for _ in 0..MAX_JSON_BODY / piece.len() + 2 {
        tap.feed(b"{\"embedding\":[");
        tap.feed(&piece);
        tap.feed(b"]},");
    }
    tap.feed(b"{}],\"model\":\"text-embedding-3-large\",\"usage\":{\"prompt_tokens\":123456,\"total_tokens\":123456}}\n");
    expect![[r#"TapOutcome { usage: Some(Usage { input_tokens: 123456, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, reasoning_tokens: 0 }), model: Some("text-embedding-3-large"), stop_reason: None, complete: true }"#]]
        .assert_eq(&format!("{:?}", tap.finish()));
}

const CONTENT: &str = "data: {\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}],\"usage\":null}\n\n";
const USAGE: &str = "data: {\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n";
const DONE: &str = "data: [DONE]\n\n";

fn run_filter(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, TapOutcome) {
    let mut filter = ChatUsageFilter::new();
    let mut outputs: Vec<Vec<u8>> =
        chunks.iter().map(|c| filter.push(Bytes::copy_from_slice(c)).to_vec()).collect();
    let (rest, outcome) = filter.finish();
    outputs.push(rest.to_vec());
    (outputs, outcome)
}

#[test]
fn filter_returns_whole_event_chunks_without_copying() {
    let mut filter = ChatUsageFilter::new();
    let chunk = Bytes::from(format!("{CONTENT}{CONTENT}"));
    let out = filter.push(chunk.clone());
    assert_eq!((out.as_ptr(), out.len()), (chunk.as_ptr(), chunk.len()));
}

#[test]
fn filter_drops_only_the_usage_chunk_and_meters_it() {
    let stream = format!("{CONTENT}{USAGE}{DONE}");
    let (outputs, outcome) = run_filter(&[stream.as_bytes()]);
    assert_eq!(outputs.concat(), format!("{CONTENT}{DONE}").as_bytes());
    assert_eq!(outcome.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((3, 1)));
    assert!(outcome.complete);
}

#[test]
fn filter_releases_each_event_as_soon_as_it_completes() {
    let (head, tail) = CONTENT.split_at(30);
    let (u1, u2) = USAGE.split_at(20);
    let (outputs, _) = run_filter(&[
        head.as_bytes(),
        tail.as_bytes(),
        u1.as_bytes(),
        u2.as_bytes(),
        DONE.as_bytes(),
    ]);
    let outputs: Vec<String> =
        outputs.into_iter().map(|o| String::from_utf8_lossy(&o).into_owned()).collect();
    assert_eq!(outputs, ["", CONTENT, "", "", DONE, ""]);
}

#[test]
fn filter_drops_at_most_one_usage_chunk() {
    let stream = format!("{USAGE}{USAGE}{DONE}");
    let (outputs, _) = run_filter(&[stream.as_bytes()]);
    assert_eq!(outputs.concat(), format!("{USAGE}{DONE}").as_bytes());
}

#[test]
fn filter_handles_a_usage_chunk_ended_by_a_final_cr() {
    let stream = USAGE.replace('\n', "\r");
    let (outputs, outcome) = run_filter(&[stream.as_bytes()]);
    assert_eq!(outputs.concat(), b"");
    assert!(outcome.usage.is_some());
}

#[test]
fn filter_forwards_an_unfinished_last_event_at_finish() {
    let stream = format!("{CONTENT}data: {{\"choices\":[],\"usage\":{{");
    let (outputs, outcome) = run_filter(&[stream.as_bytes()]);
    assert_eq!(outputs.concat(), stream.as_bytes());
    assert!(!outcome.complete);
}

#[test]
fn filter_streams_huge_events_through_instead_of_holding_them() {
    let big = "x".repeat(40 * 1024);
    let event = format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{big}{big}\"}}}}]}}\n\n");
    let (a, rest) = event.split_at(40 * 1024);
    let (b, c) = rest.split_at(40 * 1024);
    let (outputs, _) = run_filter(&[a.as_bytes(), b.as_bytes(), c.as_bytes(), USAGE.as_bytes()]);
    let lens: Vec<usize> = outputs.iter().map(Vec::len).collect();
    assert_eq!(lens, [0, 80 * 1024, c.len(), 0, 0]);
    assert_eq!(outputs.concat(), event.as_bytes());
}

#[test]
fn filter_passes_json_bodies_through() {
    let body =
        br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#;
    let (outputs, outcome) = run_filter(&[&body[..10], &body[10..]]);
    assert_eq!(outputs.concat(), body);
    assert!(outcome.complete && outcome.usage.is_none());
}
