//! Rolling windows: the sum of what was committed in the last `window` seconds, kept as a ring
//! of buckets so that a sum costs O(1) amortized and memory stays bounded per counter.
//!
//! Buckets are `window / 240` wide (at least one second): a 1-minute window has 60 one-second
//! buckets, 1 hour has 15-second buckets, 30 days 3-hour buckets. An amount is counted until the
//! whole bucket it fell in has left the window, so a sum may include up to one bucket-width of
//! amounts older than the window — never less than the exact rolling sum. The error is bounded
//! by that: a cap frees up at most `window / 240` (0.42 % of the window) later than an exact
//! rolling window would. Windows are not calendar-aligned: there is no reset at midnight.

use std::collections::VecDeque;

/// Buckets per window (the resolution of the rolling sum).
pub const BUCKETS_PER_WINDOW: u64 = 240;

/// A rolling sum over the last `window_secs` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollingWindow {
    window_secs: u64,
    width_secs: u64,
    /// `(bucket index, amount)`, oldest first; only non-empty buckets are kept.
    buckets: VecDeque<(u64, u64)>,
    total: u64,
}

impl RollingWindow {
    pub fn new(window_secs: u64) -> Self {
        let window_secs = window_secs.max(1);
        Self {
            window_secs,
            width_secs: (window_secs / BUCKETS_PER_WINDOW).max(1),
            buckets: VecDeque::new(),
            total: 0,
        }
    }

    pub fn window_secs(&self) -> u64 {
        self.window_secs
    }

    pub fn bucket_width_secs(&self) -> u64 {
        self.width_secs
    }

    /// When the bucket `index` stops counting: its end plus the window.
    fn expiry(&self, index: u64) -> u64 {
        (index + 1).saturating_mul(self.width_secs).saturating_add(self.window_secs)
    }

    fn evict(&mut self, now: u64) {
        while let Some(&(index, amount)) = self.buckets.front() {
            if self.expiry(index) > now {
                break;
            }
            self.total -= amount;
            self.buckets.pop_front();
        }
    }

    /// Adds `amount` at time `now` (seconds). Times never go backwards in practice; an older
    /// `now` lands in the newest bucket, which only makes the sum more conservative.
    pub fn add(&mut self, now: u64, amount: u64) {
        if amount == 0 {
            return;
        }
        self.evict(now);
        let index = now / self.width_secs;
        match self.buckets.back_mut() {
            Some((last, sum)) if *last >= index => *sum = sum.saturating_add(amount),
            _ => self.buckets.push_back((index, amount)),
        }
        self.total = self.total.saturating_add(amount);
    }

    /// The rolling sum at `now`.
    pub fn sum(&mut self, now: u64) -> u64 {
        self.evict(now);
        self.total
    }

    /// The earliest time at which at least `needed` of the current sum has left the window, if
    /// the committed amounts can free that much at all.
    pub fn frees_at(&self, now: u64, needed: u64) -> Option<u64> {
        if needed == 0 {
            return Some(now);
        }
        let mut freed = 0u64;
        for &(index, amount) in &self.buckets {
            let expiry = self.expiry(index);
            if expiry <= now {
                continue;
            }
            freed = freed.saturating_add(amount);
            if freed >= needed {
                return Some(expiry);
            }
        }
        None
    }

    /// Non-empty buckets currently held (for memory accounting).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests;
