//! RFC 3339 round trips, offsets, and the inputs that must be refused (never panicked on).

use expect_test::{expect, Expect};

use super::*;

fn check_parse(input: &str, expect: Expect) {
    let actual = match parse_rfc3339(input) {
        Ok(ms) => format!("{ms} {}", format_rfc3339(ms)),
        Err(err) => format!("error: {err}"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn formats_known_instants() {
    assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
    assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    // Extreme values format without panicking.
    let _ = format_rfc3339(i64::MIN);
    let _ = format_rfc3339(i64::MAX);
}

#[test]
fn parses_utc_offsets_and_fractions() {
    check_parse("1970-01-01T00:00:00Z", expect!["0 1970-01-01T00:00:00.000Z"]);
    check_parse("2023-11-14T22:13:20.123Z", expect!["1700000000123 2023-11-14T22:13:20.123Z"]);
    check_parse("2023-11-14T22:13:20.1Z", expect!["1700000000100 2023-11-14T22:13:20.100Z"]);
    check_parse(
        "2023-11-14T22:13:20.123456789z",
        expect!["1700000000123 2023-11-14T22:13:20.123Z"],
    );
    check_parse("2023-11-15T00:13:20+02:00", expect!["1700000000000 2023-11-14T22:13:20.000Z"]);
    check_parse("2023-11-14 17:13:20-05:00", expect!["1700000000000 2023-11-14T22:13:20.000Z"]);
    check_parse("2024-02-29T00:00:00Z", expect!["1709164800000 2024-02-29T00:00:00.000Z"]);
}

#[test]
fn refuses_malformed_input() {
    check_parse(
        "",
        expect![
            "error: '' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): it is too short"
        ],
    );
    check_parse("2023-11-14", expect!["error: '2023-11-14' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): expected 'T' between date and time"]);
    check_parse("2023-11-14T22:13:20", expect!["error: '2023-11-14T22:13:20' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): expected 'Z' or an offset like +02:00 at the end"]);
    check_parse("2023-02-29T00:00:00Z", expect!["error: '2023-02-29T00:00:00Z' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): the day is out of range"]);
    check_parse("2023-13-01T00:00:00Z", expect!["error: '2023-13-01T00:00:00Z' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): the month is out of range"]);
    check_parse("2023-01-01T24:00:00Z", expect!["error: '2023-01-01T24:00:00Z' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): the time of day is out of range"]);
    check_parse("2023-01-01T00:00:00.Z", expect!["error: '2023-01-01T00:00:00.Z' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): expected digits after '.'"]);
    check_parse("2023-01-01T00:00:00Zjunk", expect!["error: '2023-01-01T00:00:00Zjunk' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): expected 'Z' or an offset like +02:00 at the end"]);
    check_parse("24h", expect!["error: '24h' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): it is too short"]);
    check_parse("2023-01-01T00:00:00+2:00", expect!["error: '2023-01-01T00:00:00+2:00' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): expected 'Z' or an offset like +02:00 at the end"]);
    check_parse("２０２3-01-01T00:00:00Z", expect!["error: '２０２3-01-01T00:00:00Z' is not an RFC 3339 timestamp (e.g. 2025-06-01T12:00:00Z): expected a digit"]);
}

#[test]
fn every_day_of_four_centuries_round_trips() {
    // 1900-01-01 through 2300-01-01: leap rules for centuries included.
    let start = days_from_civil(1900, 1, 1);
    let end = days_from_civil(2300, 1, 1);
    for day in start..end {
        let ms = day * MS_PER_DAY + 45_296_789;
        assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Ok(ms), "day {day}");
    }
}
