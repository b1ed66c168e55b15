//! `--since`/`--until` values: an RFC 3339 time, or a duration back from now (`30m`, `24h`,
//! `7d`, `2w`), turned into the RFC 3339 time the admin API takes.

use anyhow::{bail, Context};

/// Resolves `value` against `now_ms` (unix milliseconds) into RFC 3339.
pub(crate) fn resolve(flag: &str, value: &str, now_ms: i64) -> anyhow::Result<String> {
    if let Some(ms) = duration_ms(value) {
        return Ok(api_types::time::format_rfc3339(now_ms.saturating_sub(ms)));
    }
    let ms = api_types::time::parse_rfc3339(value).with_context(|| {
        format!("--{flag} takes an RFC 3339 time or a duration such as 30m, 24h, 7d")
    })?;
    Ok(api_types::time::format_rfc3339(ms))
}

/// `90s`, `30m`, `24h`, `7d`, `2w` (or combinations such as `1h30m`) in milliseconds.
fn duration_ms(value: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in value.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            _ => return None,
        };
        let n: i64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (digits.is_empty() && total > 0).then_some(total)
}

/// Now, in unix milliseconds.
pub(crate) fn now_ms() -> anyhow::Result<i64> {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    match i64::try_from(since_epoch.as_millis()) {
        Ok(ms) => Ok(ms),
        Err(_) => bail!("the system clock is out of range"),
    }
}
