//! A switch report parsed from JSON into typed values, with every rule of spec §5 checked and a
//! message that names the offending field. Nothing here touches the database; the rules that
//! need it (extensions exist, one organization) are checked in `repo`.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::time::parse_xs_datetime;

/// Most views a call may carry.
pub const MAX_VIEWS: usize = 32;
/// Most numbers in a view's `source` or `destination`.
pub const MAX_NUMBERS: usize = 16;
/// Longest phone or extension number accepted in `source`, `destination` and `parkedBy`.
pub const MAX_NUMBER_LEN: usize = 64;
/// Longest `nonce` and `callerId`.
pub const MAX_TEXT_LEN: usize = 256;

pub use crate::call::View;

/// The full current state of a call as the switch reports it. `extension`, `published` and
/// `views` may be left out of any report but a call's first; left out, they keep their stored
/// values. Every other field is the call's state as of this report: left out means not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub id: Uuid,
    pub sequence: i64,
    pub extension: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub answered: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub nonce: Option<String>,
    pub views: Option<Vec<View>>,
}

/// Why a report was refused: the message names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

type Parsed<T> = Result<T, Invalid>;

fn invalid<T>(message: String) -> Parsed<T> {
    Err(Invalid(message))
}

/// Parses a call id as sent in a path or a batch entry.
pub fn parse_id(raw: &str, field: &str) -> Parsed<Uuid> {
    match Uuid::try_parse(raw) {
        Ok(id) if raw.len() == 36 => Ok(id),
        _ => invalid(format!(
            "{field} must be a UUID such as 3f2c9a56-0b7e-4d3c-9a57-6c1f0e2d4b11"
        )),
    }
}

/// Parses one report. `path_id` is the id of a `PUT` path; a batch entry carries its own `id`.
pub fn parse_report(value: &Value, path_id: Option<Uuid>) -> Parsed<Report> {
    let Some(map) = value.as_object() else {
        return invalid("the report must be a JSON object".into());
    };
    let obj = Obj {
        map,
        prefix: String::new(),
    };
    let body_id = obj.text("id", 36)?;
    let id = match (path_id, body_id) {
        (Some(path), None) => path,
        (Some(path), Some(body)) => {
            if parse_id(&body, "id")? != path {
                return invalid("id in the body differs from the id in the path".into());
            }
            path
        }
        (None, Some(body)) => parse_id(&body, "id")?,
        (None, None) => return invalid("id is missing".into()),
    };
    let sequence = match obj.integer("sequence", 0, i64::MAX)? {
        Some(n) => n,
        None => {
            return invalid(
                "sequence is missing: every report needs a sequence number (integer >= 0)".into(),
            )
        }
    };
    let extension = obj.extension_number("extension")?;
    let published = obj.date("published")?;
    let answered = obj.date("answered")?;
    let ended = obj.date("ended")?;
    if let Some(published) = published {
        if answered.is_some_and(|a| a < published) {
            return invalid("answered must not be before published".into());
        }
        if ended.is_some_and(|e| e < published) {
            return invalid("ended must not be before published".into());
        }
    }
    let nonce = obj.text("nonce", MAX_TEXT_LEN)?;
    let views = match obj.get("phoneCallView") {
        None => None,
        Some(Value::Array(items)) => {
            if items.is_empty() || items.len() > MAX_VIEWS {
                return invalid(format!("phoneCallView must hold 1 to {MAX_VIEWS} views"));
            }
            let mut views = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let view = parse_view(item, &format!("phoneCallView[{i}]"))?;
                if views.iter().any(|v: &View| v.id == view.id) {
                    return invalid(format!(
                        "phoneCallView[{i}].id {:?} is used by another view",
                        view.id
                    ));
                }
                views.push(view);
            }
            Some(views)
        }
        Some(_) => return invalid("phoneCallView must be an array of views".into()),
    };
    Ok(Report {
        id,
        sequence,
        extension,
        published,
        answered,
        ended,
        nonce,
        views,
    })
}

fn parse_view(value: &Value, prefix: &str) -> Parsed<View> {
    let Some(map) = value.as_object() else {
        return invalid(format!("{prefix} must be an object"));
    };
    let obj = Obj {
        map,
        prefix: format!("{prefix}."),
    };
    let id = obj.required(obj.text("id", 2)?, "id", "a two-digit id such as \"00\"")?;
    if id.len() != 2 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(format!("{prefix}.id must be two digits such as \"00\""));
    }
    let extension = obj.required(
        obj.extension_number("extension")?,
        "extension",
        "a full extension number",
    )?;
    let flow = obj.required(
        obj.integer("flow", i64::MIN, i64::MAX)?,
        "flow",
        "2, 4 or 8",
    )?;
    if ![2, 4, 8].contains(&flow) {
        return invalid(format!(
            "{prefix}.flow must be 2 (local), 4 (outgoing public) or 8 (incoming public)"
        ));
    }
    let status = obj.required(obj.integer("status", 0, 5)?, "status", "0 to 5")?;
    // The UAPI resource page spells it callerID in its example; accept both.
    let caller_id = match obj.text("callerId", MAX_TEXT_LEN)? {
        Some(c) => Some(c),
        None => obj.text("callerID", MAX_TEXT_LEN)?,
    };
    Ok(View {
        id,
        extension,
        source: obj.numbers("source")?,
        destination: obj.numbers("destination")?,
        flow: flow as i16,
        status: status as i16,
        ringing: obj.date("ringing")?,
        caller_id,
        recording: obj.date("recording")?,
        answered: obj.date("answered")?,
        parked: obj.date("parked")?,
        parked_pos: obj
            .integer("parkedPos", 0, i32::MAX as i64)?
            .map(|n| n as i32),
        parked_by: obj.text("parkedBy", MAX_NUMBER_LEN)?,
        on_hold: obj.date("onHold")?,
        holder: obj.integer("holder", 0, 1)?.map(|n| n as i16),
        disposition: obj.integer("disposition", 0, 5)?.map(|n| n as i16),
    })
}

/// A JSON object with the path of its fields, for messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
}

impl Obj<'_> {
    fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// The field's value; JSON `null` counts as absent.
    fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn required<T>(&self, value: Option<T>, field: &str, expected: &str) -> Parsed<T> {
        match value {
            Some(v) => Ok(v),
            None => invalid(format!(
                "{} is missing: it must be {expected}",
                self.name(field)
            )),
        }
    }

    fn text(&self, field: &str, max_chars: usize) -> Parsed<Option<String>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => {
                check_text(s, &self.name(field), max_chars)?;
                Ok(Some(s.clone()))
            }
            Some(_) => invalid(format!("{} must be a string", self.name(field))),
        }
    }

    fn extension_number(&self, field: &str) -> Parsed<Option<String>> {
        let Some(number) = self.text(field, 10)? else {
            return Ok(None);
        };
        let ok = match number.split_once('*') {
            Some((code, short)) => {
                code.len() == 4
                    && code.bytes().all(|b| b.is_ascii_digit())
                    && (3..=5).contains(&short.len())
                    && short.bytes().all(|b| b.is_ascii_digit())
            }
            None => false,
        };
        if !ok {
            return invalid(format!(
                "{} must be a full extension number such as 0003*210",
                self.name(field)
            ));
        }
        Ok(Some(number))
    }

    fn integer(&self, field: &str, min: i64, max: i64) -> Parsed<Option<i64>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ if min == i64::MIN => invalid(format!("{} must be an integer", self.name(field))),
                _ => invalid(format!(
                    "{} must be an integer from {min} to {max}",
                    self.name(field)
                )),
            },
        }
    }

    fn date(&self, field: &str) -> Parsed<Option<DateTime<Utc>>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => match parse_xs_datetime(s) {
                // The API speaks in whole seconds; storing anything finer would make a call
                // unfindable by the very date the API shows for it.
                Some(at) => Ok(Some(at.trunc_subsecs(0))),
                None => invalid(format!(
                    "{} must be a date with a timezone such as 2026-11-28T14:40:28Z",
                    self.name(field)
                )),
            },
            Some(_) => invalid(format!(
                "{} must be a date string such as 2026-11-28T14:40:28Z",
                self.name(field)
            )),
        }
    }

    fn numbers(&self, field: &str) -> Parsed<Vec<String>> {
        let name = self.name(field);
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                if items.len() > MAX_NUMBERS {
                    return invalid(format!("{name} must hold at most {MAX_NUMBERS} numbers"));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::String(s) if !s.is_empty() => {
                            check_text(s, &format!("{name}[{i}]"), MAX_NUMBER_LEN)?;
                            Ok(s.clone())
                        }
                        _ => invalid(format!("{name}[{i}] must be a non-empty string")),
                    })
                    .collect()
            }
            Some(_) => invalid(format!("{name} must be an array of numbers")),
        }
    }
}

fn check_text(s: &str, name: &str, max_chars: usize) -> Parsed<()> {
    if s.chars().count() > max_chars {
        return invalid(format!("{name} must have at most {max_chars} characters"));
    }
    if s.chars().any(char::is_control) {
        return invalid(format!("{name} must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "3f2c9a56-0b7e-4d3c-9a57-6c1f0e2d4b11";

    fn full() -> Value {
        json!({
            "id": ID, "sequence": 3, "extension": "0003*210",
            "published": "2026-11-28T14:40:28Z", "answered": "2026-11-28T14:40:40+00:00",
            "nonce": "abc",
            "phoneCallView": [
                {"id": "00", "extension": "0003*210", "source": ["0003*210"], "destination": ["+4420123"],
                 "flow": 4, "status": 5, "callerID": "Alice <210>", "onHold": "2026-11-28T14:41:00Z", "holder": 1},
                {"id": "01", "extension": "0003*211", "flow": 2, "status": 3, "parkedPos": 2, "disposition": 0}
            ]
        })
    }

    fn message(value: Value) -> String {
        parse_report(&value, None).unwrap_err().0
    }

    /// `value` with the field at `pointer` set (added when absent).
    fn with(mut value: Value, pointer: &str, new: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        value
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(key.to_string(), new);
        value
    }

    #[test]
    fn a_full_report_parses_with_every_field() {
        let report = parse_report(&full(), None).unwrap();
        assert_eq!(report.id.to_string(), ID);
        assert_eq!(report.sequence, 3);
        let views = report.views.unwrap();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].caller_id.as_deref(), Some("Alice <210>"));
        assert_eq!(views[0].holder, Some(1));
        assert_eq!(views[1].parked_pos, Some(2));
        assert_eq!(views[1].source, Vec::<String>::new());
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases = [
            (with(full(), "/sequence", json!(-1)), "sequence"),
            (with(full(), "/sequence", json!(1.5)), "sequence"),
            (with(full(), "/sequence", json!("3")), "sequence"),
            (
                with(full(), "/sequence", Value::Null),
                "sequence is missing",
            ),
            (with(full(), "/id", json!("nope")), "id must be a UUID"),
            (
                with(full(), "/extension", json!("210")),
                "extension must be a full extension number",
            ),
            (
                with(full(), "/published", json!("2024-02-30T00:00:00Z")),
                "published must be a date",
            ),
            (
                with(full(), "/published", json!("2026-11-28T14:40:28")),
                "published must be a date",
            ),
            (
                with(full(), "/answered", json!("2026-11-28T14:00:00Z")),
                "answered must not be before published",
            ),
            (
                with(full(), "/nonce", json!("a\u{0}b")),
                "nonce must not contain control characters",
            ),
            (
                with(full(), "/nonce", json!("x".repeat(257))),
                "nonce must have at most 256",
            ),
            (
                with(full(), "/phoneCallView", json!([])),
                "phoneCallView must hold 1 to 32",
            ),
            (
                with(full(), "/phoneCallView", json!({})),
                "phoneCallView must be an array",
            ),
            (
                with(full(), "/phoneCallView/1/id", json!("00")),
                "phoneCallView[1].id \"00\" is used",
            ),
            (
                with(full(), "/phoneCallView/1/flow", json!(3)),
                "phoneCallView[1].flow must be 2",
            ),
            (
                with(full(), "/phoneCallView/0/status", json!(6)),
                "phoneCallView[0].status must be an integer from 0 to 5",
            ),
            (
                with(full(), "/phoneCallView/0/disposition", json!(6)),
                "phoneCallView[0].disposition",
            ),
            (
                with(full(), "/phoneCallView/0/holder", json!(2)),
                "phoneCallView[0].holder",
            ),
            (
                with(
                    full(),
                    "/phoneCallView/0/source",
                    Value::Array(vec![json!("x"); 17]),
                ),
                "phoneCallView[0].source must hold at most 16",
            ),
            (
                with(full(), "/phoneCallView/0/destination", json!([""])),
                "phoneCallView[0].destination[0]",
            ),
            (
                with(full(), "/phoneCallView/0/ringing", json!(12)),
                "phoneCallView[0].ringing must be a date",
            ),
            (
                with(full(), "/phoneCallView/0/extension", Value::Null),
                "phoneCallView[0].extension is missing",
            ),
        ];
        for (value, expected) in cases {
            let got = message(value);
            assert!(
                got.starts_with(expected),
                "expected {expected:?}, got {got:?}"
            );
        }
        let too_many: Vec<Value> = (0..33).map(|i| json!({"id": format!("{i:02}"), "extension": "0003*210", "flow": 2, "status": 0})).collect();
        assert!(
            message(with(full(), "/phoneCallView", Value::Array(too_many)))
                .starts_with("phoneCallView must hold")
        );
    }

    #[test]
    fn dates_are_kept_to_the_second_as_the_api_shows_them() {
        let mut value = full();
        value["published"] = json!("2026-11-28T14:40:28.900+00:00");
        value["answered"] = json!("2026-11-28T14:40:28.100Z");
        let report = parse_report(&value, None).unwrap();
        assert_eq!(
            crate::time::format_utc(report.published.unwrap()),
            "2026-11-28T14:40:28Z"
        );
        assert_eq!(
            report.published, report.answered,
            "both fall in the same second"
        );
        assert_eq!(report.published.unwrap().timestamp_subsec_nanos(), 0);
    }

    #[test]
    fn the_path_id_must_match_a_body_id() {
        let path = Uuid::parse_str(ID).unwrap();
        assert_eq!(parse_report(&full(), Some(path)).unwrap().id, path);
        let other = Uuid::new_v4();
        assert!(parse_report(&full(), Some(other))
            .unwrap_err()
            .0
            .contains("differs"));
        let mut no_id = full();
        no_id.as_object_mut().unwrap().remove("id");
        assert_eq!(parse_report(&no_id, Some(other)).unwrap().id, other);
        assert!(parse_report(&no_id, None)
            .unwrap_err()
            .0
            .contains("id is missing"));
    }

    #[test]
    fn later_reports_may_leave_out_extension_published_and_views() {
        let report = parse_report(
            &json!({"id": ID, "sequence": 9, "ended": "2026-11-28T15:00:00Z"}),
            None,
        )
        .unwrap();
        assert_eq!(report.extension, None);
        assert_eq!(report.published, None);
        assert_eq!(report.views, None);
        assert!(report.ended.is_some());
    }
}
