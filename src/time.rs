//! Dates as the API writes them: UTC, second precision, `2026-11-28T14:40:28Z`.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};

/// Formats an instant the way every API response does.
pub fn format_utc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_with_z_and_whole_seconds() {
        let at = DateTime::parse_from_rfc3339("2026-11-28T16:40:28.987+02:00").unwrap();
        assert_eq!(format_utc(at.with_timezone(&Utc)), "2026-11-28T14:40:28Z");
    }
}

/// Parses an xs:dateTime that carries its timezone (`Z` or `±hh:mm`), such as
/// `2026-11-28T14:40:28Z` or `2026-11-28T16:40:28.5+02:00`. Anything else is `None`: no
/// timezone, a space instead of `T`, an impossible date such as `2024-02-30`, year 0.
pub fn parse_xs_datetime(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        range
            .clone()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    let shape_ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    // Leap seconds (`23:59:60`) are refused: chrono would store them as the next second, and
    // PostgreSQL does the same, so the instant a client meant cannot be kept.
    if !shape_ok || &text[0..4] == "0000" || &text[17..19] == "60" {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        rest = &fraction[n..];
    }
    let zone_ok = rest == "Z"
        || (rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[1..3].iter().all(u8::is_ascii_digit)
            && rest.as_bytes()[3] == b':'
            && rest.as_bytes()[4..6].iter().all(u8::is_ascii_digit));
    if !zone_ok {
        return None;
    }
    // Instants whose UTC year leaves 1..=9999 (0001-01-01T00:30:00+01:00) cannot be written
    // back in this format, and PostgreSQL refuses some of them as text.
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
        .filter(|at| (1..=9999).contains(&at.year()))
}

#[cfg(test)]
mod xs_tests {
    use super::*;

    #[test]
    fn dates_with_a_timezone_parse_to_the_same_instant() {
        let z = parse_xs_datetime("2026-11-28T14:40:28Z").unwrap();
        assert_eq!(parse_xs_datetime("2026-11-28T16:40:28+02:00"), Some(z));
        assert_eq!(parse_xs_datetime("2026-11-28T14:40:28.000Z"), Some(z));
        assert_eq!(
            format_utc(parse_xs_datetime("2026-11-28T10:40:28.9-04:00").unwrap()),
            "2026-11-28T14:40:28Z"
        );
    }

    #[test]
    fn malformed_or_impossible_dates_are_refused() {
        for bad in [
            "",
            "2026-11-28",
            "2026-11-28T14:40:28",
            "2026-11-28 14:40:28Z",
            "2026-11-28t14:40:28z",
            "2024-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "0000-01-01T00:00:00Z",
            "2026-11-28T14:40:28+0200",
            "2026-11-28T14:40:28.Z",
            "2026-11-28T14:40:28Z ",
            "+2026-11-28T14:40:28Z",
            "2026-11-28T14:40:28+02:00:00",
            "２０２６-11-28T14:40:28Z",
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:30:00-01:00",
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5Z",
        ] {
            assert_eq!(parse_xs_datetime(bad), None, "{bad:?}");
        }
    }
}
