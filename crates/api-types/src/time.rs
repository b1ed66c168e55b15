//! RFC 3339 timestamps for the admin API: unix milliseconds to `2025-06-01T12:00:00.000Z` and
//! back.
//!
//! Written by hand rather than pulling in `humantime` (whose parser accepts only the `Z` offset,
//! while people paste `+02:00` timestamps) or `chrono`/`time` (far more than the two conversions
//! needed here). The calendar math is Howard Hinnant's `days_from_civil`/`civil_from_days`,
//! exact for the proleptic Gregorian calendar. Output is always UTC.

const MS_PER_DAY: i64 = 86_400_000;

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): {problem}")]
pub struct TimeError {
    input: String,
    problem: &'static str,
}

/// Formats unix milliseconds as RFC 3339 in UTC, with milliseconds: `1970-01-01T00:00:00.000Z`.
pub fn format_rfc3339(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(MS_PER_DAY);
    let ms_of_day = unix_ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

/// Parses an RFC 3339 timestamp (`Z` or a `±HH:MM` offset, optional fraction, `T`, `t` or a
/// space between date and time) into unix milliseconds. Digits past milliseconds are dropped.
pub fn parse_rfc3339(input: &str) -> Result<i64, TimeError> {
    let fail = |problem| TimeError { input: input.to_owned(), problem };
    let s = input.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<i64, TimeError> {
        let digits = s.get(range).ok_or_else(|| fail("it is too short"))?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(fail("expected a digit"));
        }
        Ok(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let expect = |at: usize, allowed: &[u8], problem| match s.get(at) {
        Some(c) if allowed.contains(c) => Ok(()),
        _ => Err(fail(problem)),
    };
    let year = num(0..4)?;
    expect(4, b"-", "expected '-' after the year")?;
    let month = num(5..7)?;
    expect(7, b"-", "expected '-' after the month")?;
    let day = num(8..10)?;
    expect(10, b"Tt ", "expected 'T' between date and time")?;
    let hour = num(11..13)?;
    expect(13, b":", "expected ':' after the hour")?;
    let minute = num(14..16)?;
    expect(16, b":", "expected ':' after the minutes")?;
    let second = num(17..19)?;
    if !(1..=12).contains(&month) {
        return Err(fail("the month is out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(fail("the day is out of range"));
    }
    // 60 is a leap second; it is counted as the next minute's first second.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(fail("the time of day is out of range"));
    }
    let mut at = 19;
    let mut millis = 0;
    if s.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while s.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + i64::from(s[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return Err(fail("expected digits after '.'"));
        }
        for _ in (at - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match s.get(at) {
        Some(b'Z' | b'z') if at + 1 == s.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == s.len() => {
            let hours = num(at + 1..at + 3)?;
            expect(at + 3, b":", "expected ':' in the offset")?;
            let minutes = num(at + 4..at + 6)?;
            if hours > 23 || minutes > 59 {
                return Err(fail("the offset is out of range"));
            }
            let offset = hours * 60 + minutes;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return Err(fail("expected 'Z' or an offset like +02:00 at the end")),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(secs * 1000 + millis)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day number since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
