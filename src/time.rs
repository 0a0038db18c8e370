//! Dates as the API writes them: UTC, second precision, `2026-11-28T14:40:28Z`.

use chrono::{DateTime, SecondsFormat, Utc};

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
