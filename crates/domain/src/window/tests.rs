//! Tests for rolling windows: exact against a brute-force recomputation with the documented
//! bucket rule, and never below the exact rolling sum.

use proptest::prelude::*;

use super::*;

/// What the window promises: every amount whose bucket has not fully left the window counts.
fn brute_force(window_secs: u64, events: &[(u64, u64)], now: u64) -> u64 {
    let width = (window_secs / BUCKETS_PER_WINDOW).max(1);
    events
        .iter()
        .filter(|(t, _)| *t <= now && (t / width + 1) * width + window_secs > now)
        .map(|(_, a)| a)
        .sum()
}

fn exact(window_secs: u64, events: &[(u64, u64)], now: u64) -> u64 {
    events.iter().filter(|(t, _)| *t <= now && t + window_secs > now).map(|(_, a)| a).sum()
}

#[test]
fn slides_across_bucket_boundaries() {
    let mut w = RollingWindow::new(60);
    w.add(100, 5);
    w.add(130, 7);
    assert_eq!(w.sum(130), 12);
    // One-second buckets: the amount at t=100 sits in [100, 101), which leaves at 101 + 60.
    assert_eq!(w.sum(160), 12);
    assert_eq!(w.sum(161), 7);
    assert_eq!(w.sum(191), 0);
}

#[test]
fn expiry_is_bucket_end_plus_window() {
    let mut w = RollingWindow::new(60);
    w.add(100, 5);
    assert_eq!(w.frees_at(120, 5), Some(161));
    assert_eq!(w.frees_at(120, 6), None);
    assert_eq!(w.sum(160), 5);
    assert_eq!(w.sum(161), 0);

    let mut month = RollingWindow::new(30 * 86_400);
    assert_eq!(month.bucket_width_secs(), 10_800);
    month.add(10_800 * 5 + 17, 1_000);
    // Counted for the whole window after its bucket ends, then gone.
    assert_eq!(month.sum(10_800 * 6 + 30 * 86_400 - 1), 1_000);
    assert_eq!(month.sum(10_800 * 6 + 30 * 86_400), 0);
}

#[test]
fn frees_at_accumulates_oldest_first() {
    let mut w = RollingWindow::new(60);
    w.add(0, 3);
    w.add(10, 4);
    w.add(20, 5);
    assert_eq!(w.frees_at(30, 3), Some(61));
    assert_eq!(w.frees_at(30, 4), Some(71));
    assert_eq!(w.frees_at(30, 12), Some(81));
    assert_eq!(w.frees_at(30, 13), None);
    assert_eq!(w.frees_at(30, 0), Some(30));
}

proptest! {
    #[test]
    fn rolling_sum_equals_brute_force(
        window_secs in prop_oneof![Just(60u64), Just(3600), Just(86_400), 1u64..100_000],
        mut events in proptest::collection::vec((0u64..400_000, 1u64..1_000), 0..60),
        probes in proptest::collection::vec(0u64..500_000, 1..20),
    ) {
        events.sort();
        let mut probes = probes;
        probes.sort();
        let mut w = RollingWindow::new(window_secs);
        let mut added = Vec::new();
        let mut next = 0;
        for now in probes {
            while next < events.len() && events[next].0 <= now {
                w.add(events[next].0, events[next].1);
                added.push(events[next]);
                next += 1;
            }
            let sum = w.sum(now);
            prop_assert_eq!(sum, brute_force(window_secs, &added, now));
            // Conservative: never less than the exact rolling sum, and the surplus is only
            // amounts from the oldest bucket-width before the window.
            prop_assert!(sum >= exact(window_secs, &added, now));
            let width = w.bucket_width_secs();
            prop_assert!(sum <= exact(window_secs + width, &added, now));
        }
    }

    #[test]
    fn frees_at_is_when_the_sum_drops_enough(
        mut events in proptest::collection::vec((0u64..10_000, 1u64..100), 1..30),
        needed in 1u64..500,
    ) {
        events.sort();
        let mut w = RollingWindow::new(600);
        for (t, a) in &events {
            w.add(*t, *a);
        }
        let now = events.last().map(|e| e.0).unwrap_or(0);
        let before = w.clone().sum(now);
        match w.frees_at(now, needed) {
            Some(at) => {
                prop_assert!(before - w.clone().sum(at) >= needed);
                prop_assert!(at == now || before - w.clone().sum(at - 1) < needed);
            }
            None => prop_assert!(before < needed),
        }
    }
}
