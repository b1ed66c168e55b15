//! Golden tests: every fixture's tap outcome and decoded event sequence, as insta snapshots;
//! for chat streams, also what the usage filter forwards.

use bytes::Bytes;
use domain::Endpoint;
use llm::{ChatUsageFilter, SseDecoder, TapOutcome, UsageTap};

use crate::fixtures::{self, Fixture};

/// The event names of a stream, runs of one name folded: `a, b×3, c`.
fn event_names(bytes: &[u8]) -> String {
    let mut names: Vec<(String, usize)> = Vec::new();
    let mut decoder = SseDecoder::default();
    let mut record = |name: String| match names.last_mut() {
        Some((last, count)) if *last == name => *count += 1,
        _ => names.push((name, 1)),
    };
    decoder.push(bytes, |e| {
        let name = match e.event {
            Some(name) => name.to_owned(),
            None if e.data == "[DONE]" => "[DONE]".to_owned(),
            None => "data".to_owned(),
        };
        record(name)
    });
    names
        .iter()
        .map(|(n, c)| if *c == 1 { n.clone() } else { format!("{n}×{c}") })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn tap(fixture: &Fixture, chunks: &[&[u8]]) -> TapOutcome {
    let mut tap = UsageTap::new(fixture.endpoint, fixture.streaming);
    for chunk in chunks {
        tap.feed(chunk);
    }
    tap.finish()
}

fn render(fixture: &Fixture) -> String {
    let outcome = tap(fixture, &[&fixture.bytes]);
    let mut out = String::new();
    if fixture.streaming {
        out.push_str(&format!("events: {}\n", event_names(&fixture.bytes)));
    }
    out.push_str(&format!("{outcome:#?}\n"));
    if let Some(usage) = outcome.usage {
        out.push_str(&format!("total_tokens: {}\n", usage.total_tokens()));
    }
    if fixture.streaming && fixture.endpoint == Endpoint::ChatCompletions {
        let (forwarded, filtered) = filter(&[Bytes::from(fixture.bytes.clone())]);
        assert_eq!(filtered, outcome, "{}: the filter meters like the tap", fixture.name);
        let removed = removed_frame(&fixture.bytes, &forwarded);
        let removed = removed.map(|frame| String::from_utf8_lossy(&frame).into_owned());
        out.push_str(&format!("filter removed: {removed:?}\n"));
    }
    out
}

pub(crate) fn filter(chunks: &[Bytes]) -> (Vec<u8>, TapOutcome) {
    let mut filter = ChatUsageFilter::new();
    let mut forwarded = Vec::new();
    for chunk in chunks {
        forwarded.extend_from_slice(&filter.push(chunk.clone()));
    }
    let (rest, outcome) = filter.finish();
    forwarded.extend_from_slice(&rest);
    (forwarded, outcome)
}

/// What the filter removed from `original` to give `forwarded`: nothing, or exactly one whole
/// SSE frame; anything else fails the test.
pub(crate) fn removed_frame(original: &[u8], forwarded: &[u8]) -> Option<Vec<u8>> {
    if original == forwarded {
        return None;
    }
    let mut frames = Vec::new();
    SseDecoder::default().push_framed(original, |f| frames.push(f.start as usize..f.end as usize));
    let removed = frames
        .into_iter()
        .find(|r| [&original[..r.start], &original[r.end..]].concat() == forwarded)
        .expect("the filter removes exactly one whole frame and nothing else");
    Some(original[removed].to_vec())
}

#[test]
fn fixtures_match_snapshots() {
    let fixtures = fixtures::all();
    assert!(fixtures.len() >= 20, "fixtures are missing: found {}", fixtures.len());
    for fixture in &fixtures {
        let name = fixture.name.replace('/', "__");
        insta::assert_snapshot!(name, render(fixture));
    }
}
