//! Chunking invariance: however a body is cut into chunks, the taps report the same outcome
//! and the chat usage filter forwards the same bytes.

use bytes::Bytes;
use proptest::prelude::*;

use crate::fixtures;
use crate::golden::{filter, removed_frame, tap};

fn split(bytes: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.iter_mut().for_each(|c| *c %= bytes.len() + 1);
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for cut in cuts {
        chunks.push(&bytes[last..cut]);
        last = cut;
    }
    chunks.push(&bytes[last..]);
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn tap_outcome_is_independent_of_chunking(cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
        for fixture in fixtures::all() {
            let whole = tap(&fixture, &[&fixture.bytes]);
            let chunked = tap(&fixture, &split(&fixture.bytes, cuts.clone()));
            prop_assert_eq!(whole, chunked, "{}", fixture.name);
        }
    }

    #[test]
    fn filter_output_is_independent_of_chunking(cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
        for fixture in fixtures::all().into_iter().filter(|f| f.name.starts_with("openai_chat/")) {
            let whole = filter(&[Bytes::from(fixture.bytes.clone())]);
            let chunks: Vec<Bytes> =
                split(&fixture.bytes, cuts.clone()).into_iter().map(Bytes::copy_from_slice).collect();
            let chunked = filter(&chunks);
            prop_assert_eq!(&whole, &chunked, "{}", fixture.name);
            // Whatever the chunking, at most one whole frame is removed.
            removed_frame(&fixture.bytes, &chunked.0);
        }
    }
}
