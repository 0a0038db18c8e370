//! What a call's parties say about it, kept on the call's row (migration 0013): how many there
//! are, when the first rang, the charged party's flow, disposition and destination (the charged
//! party is the view with the lowest id on the call's extension), and whether any parked, held
//! or recorded the call. The reports of `reporting` read these instead of the parties, one row
//! per call.
//!
//! A report that carries views carries every party of the call, so its figures are computed
//! here, from the report ([`PartyFacts::of`]), and written with the call: the database does no
//! work for them. A report that leaves its views out keeps the stored ones, and so the figures,
//! except that a new extension may make another party the charged one: then, and only then, the
//! statement reads the charged party from the stored views ([`fact_updates!`]).
//!
//! The same rule over stored parties is the database's view `phone_call_party_facts`; a test
//! applies reports through every write path and compares the two for every call.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ViewRow;

/// The figures of a call whose parties are `views`, charged to extension `charged_extension`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(super) struct PartyFacts<'a> {
    pub parties: i16,
    pub first_ringing: Option<DateTime<Utc>>,
    pub charged_flow: Option<i16>,
    pub charged_disposition: Option<i16>,
    pub charged_destination: Option<&'a [String]>,
    pub was_parked: bool,
    pub was_on_hold: bool,
    pub was_recorded: bool,
}

impl<'a> PartyFacts<'a> {
    pub(super) fn of(views: &'a [ViewRow<'a>], charged_extension: i64) -> Self {
        let charged = views
            .iter()
            .filter(|v| v.extension_id == charged_extension)
            .min_by_key(|v| v.view_id);
        Self {
            // A report holds at most 32 views (report::MAX_VIEWS).
            parties: i16::try_from(views.len()).unwrap_or(i16::MAX),
            first_ringing: views.iter().filter_map(|v| v.ringing).min(),
            charged_flow: charged.map(|v| v.flow),
            charged_disposition: charged.and_then(|v| v.disposition),
            charged_destination: charged.map(|v| v.destination),
            was_parked: views.iter().any(|v| v.parked.is_some()),
            was_on_hold: views.iter().any(|v| v.on_hold.is_some()),
            was_recorded: views.iter().any(|v| v.recording.is_some()),
        }
    }
}

/// The columns of `phone_calls` that [`PartyFacts`] holds, in its order.
macro_rules! fact_columns {
    () => {
        "parties, first_ringing, charged_flow, charged_disposition, charged_destination, \
         was_parked, was_on_hold, was_recorded"
    };
}

/// The `ON CONFLICT … DO UPDATE` assignments of those columns, `c` being the stored row.
/// `$no_views` is a condition true when the report left its views out: the stored figures are
/// then kept, and only the charged party's are read again from the stored views, when the
/// report moved the call to another extension (a `CASE` evaluates that read only then).
macro_rules! fact_updates {
    ($no_views:literal) => {
        concat!(
            "parties = CASE WHEN ",
            $no_views,
            " THEN c.parties ELSE EXCLUDED.parties END,
        first_ringing = CASE WHEN ",
            $no_views,
            " THEN c.first_ringing ELSE EXCLUDED.first_ringing END,
        was_parked = CASE WHEN ",
            $no_views,
            " THEN c.was_parked ELSE EXCLUDED.was_parked END,
        was_on_hold = CASE WHEN ",
            $no_views,
            " THEN c.was_on_hold ELSE EXCLUDED.was_on_hold END,
        was_recorded = CASE WHEN ",
            $no_views,
            " THEN c.was_recorded ELSE EXCLUDED.was_recorded END,
        charged_flow = CASE WHEN NOT (",
            $no_views,
            ") THEN EXCLUDED.charged_flow
            WHEN c.extension_id = EXCLUDED.extension_id THEN c.charged_flow
            ELSE (SELECT v.flow FROM phone_call_views v WHERE v.phone_call_id = c.id
                  AND v.extension_id = EXCLUDED.extension_id ORDER BY v.view_id LIMIT 1) END,
        charged_disposition = CASE WHEN NOT (",
            $no_views,
            ") THEN EXCLUDED.charged_disposition
            WHEN c.extension_id = EXCLUDED.extension_id THEN c.charged_disposition
            ELSE (SELECT v.disposition FROM phone_call_views v WHERE v.phone_call_id = c.id
                  AND v.extension_id = EXCLUDED.extension_id ORDER BY v.view_id LIMIT 1) END,
        charged_destination = CASE WHEN NOT (",
            $no_views,
            ") THEN EXCLUDED.charged_destination
            WHEN c.extension_id = EXCLUDED.extension_id THEN c.charged_destination
            ELSE (SELECT v.destination FROM phone_call_views v WHERE v.phone_call_id = c.id
                  AND v.extension_id = EXCLUDED.extension_id ORDER BY v.view_id LIMIT 1) END"
        )
    };
}

pub(super) use {fact_columns, fact_updates};

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: u32) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(2026, 11, 28, 14, 40, second).unwrap())
    }

    fn view<'a>(
        view_id: &'a str,
        extension_id: i64,
        flow: i16,
        destination: &'a [String],
    ) -> ViewRow<'a> {
        ViewRow {
            view_id,
            extension_id,
            extension: "",
            source: &[],
            destination,
            flow,
            status: 5,
            ringing: None,
            caller_id: None,
            recording: None,
            answered: None,
            parked: None,
            parked_pos: None,
            parked_by: None,
            on_hold: None,
            holder: None,
            disposition: None,
        }
    }

    #[test]
    fn the_charged_party_is_the_lowest_view_on_the_calls_extension() {
        let (dialled, heard) = (
            vec!["+15551230000".to_string()],
            vec!["0003*210".to_string()],
        );
        let views = [
            ViewRow {
                ringing: at(9),
                disposition: Some(3),
                ..view("02", 7, 4, &dialled)
            },
            ViewRow {
                ringing: at(5),
                on_hold: at(20),
                ..view("01", 8, 8, &heard)
            },
            ViewRow {
                disposition: Some(0),
                recording: at(30),
                ..view("03", 7, 2, &heard)
            },
        ];
        let facts = PartyFacts::of(&views, 7);
        assert_eq!(
            facts,
            PartyFacts {
                parties: 3,
                first_ringing: at(5),
                charged_flow: Some(4),
                charged_disposition: Some(3),
                charged_destination: Some(&dialled),
                was_parked: false,
                was_on_hold: true,
                was_recorded: true,
            }
        );
        // No view on the charged extension: no charged party.
        let facts = PartyFacts::of(&views, 9);
        assert_eq!(
            (
                facts.charged_flow,
                facts.charged_disposition,
                facts.charged_destination
            ),
            (None, None, None)
        );
        assert_eq!(PartyFacts::of(&[], 7), PartyFacts::default());
    }
}
