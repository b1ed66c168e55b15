//! Human durations in config files: `250ms`, `30s`, `5m`, `1h`, `7d`.
//!
//! Hand-written: five units and an integer are all config needs, and it keeps the error
//! messages ours.

use std::time::Duration;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (expected e.g. 30s, 5m, 1h, 7d)"))?;
    let seconds = |mult: u64| n.checked_mul(mult).map(Duration::from_secs);
    let duration = match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" | "" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        other => return Err(format!("'{text}': unknown unit '{other}' (use ms, s, m, h or d)")),
    };
    duration.ok_or_else(|| format!("'{text}' is too large"))
}

/// Serde adapter: a duration field written as a string.
pub(crate) mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
