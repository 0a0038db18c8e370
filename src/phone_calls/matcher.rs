//! Whether one stored call is on a list, decided in Rust: the same answer as the page statement
//! that `visibility::calls` and `sql::filter` compile gives for that call, without asking the
//! database. Streams of live calls (issue 13) decide with it, per stream, which changed calls
//! each client must hear of. `tests/api/matcher.rs` holds the two equal over random calls,
//! callers, paths and filters on a real database; a change to the SQL's meaning changes this
//! file too.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::query::{Filter, FilterField, FilterOp, FilterValue};
use super::sql::{ceil_micros, floor_micros, whole_micros, Scope};
use crate::auth::{Caller, Role};
use crate::time::format_utc;

/// A call as stored, with its views.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCall {
    pub id: Uuid,
    pub organization_id: i64,
    pub extension_id: i64,
    pub extension: String,
    pub published: DateTime<Utc>,
    pub answered: Option<DateTime<Utc>>,
    /// `ended IS NULL`: only live calls are listed.
    pub live: bool,
    pub views: Vec<StoredView>,
}

/// One party's view of a call, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredView {
    pub extension_id: i64,
    pub caller_id: Option<String>,
    pub status: i16,
    pub flow: i16,
    pub source: Vec<String>,
    pub destination: Vec<String>,
    /// `call_live`: the view belongs to a live call (views of ended calls match nothing).
    pub live: bool,
}

/// Who is listing, and what the path names: what decides visibility.
#[derive(Debug, Clone)]
pub struct Audience {
    pub caller: Caller,
    /// The caller's own extensions, for a user (whose visibility is the calls involving them).
    pub own_extensions: Vec<i64>,
    /// What the path resolved to (`repo::resolve`).
    pub scope: Scope,
}

/// Whether `call` is on the list `audience` asks for, filtered by `filter`: live, visible to
/// the caller within the path's scope, and matching.
pub fn on_list(audience: &Audience, filter: Option<&Filter>, call: &StoredCall) -> bool {
    call.live && visible(audience, call) && filter.is_none_or(|f| matches(f, call))
}

/// The calls the caller may see among those the path asks for (`visibility::calls`).
pub fn visible(audience: &Audience, call: &StoredCall) -> bool {
    let path = match &audience.scope {
        Scope::Visible => None,
        Scope::Extensions(ids) => Some(ids.as_slice()),
    };
    let caller = &audience.caller;
    match (caller.role, caller.organization_id) {
        (Role::Admin, _) => path.is_none_or(|ids| involves(call, |e| ids.contains(&e))),
        (Role::Organization, Some(org)) => {
            call.organization_id == org
                && path.is_none_or(|ids| involves(call, |e| ids.contains(&e)))
        }
        (Role::User, _) => involves(call, |e| {
            audience.own_extensions.contains(&e) && path.is_none_or(|ids| ids.contains(&e))
        }),
        _ => false,
    }
}

/// The call is charged to one of the extensions, or one of its live views is on one (`involves`).
fn involves(call: &StoredCall, member: impl Fn(i64) -> bool) -> bool {
    (call.live && member(call.extension_id))
        || call.views.iter().any(|v| v.live && member(v.extension_id))
}

/// Whether `call` matches the user's filter (`sql::filter::condition`); a view-level field
/// matches when one of the call's live views does.
pub fn matches(filter: &Filter, call: &StoredCall) -> bool {
    let Filter { field, op, value } = filter;
    let (field, op) = (*field, *op);
    match field {
        FilterField::Source | FilterField::Destination => call.views.iter().any(|v| {
            let numbers = if field == FilterField::Source {
                &v.source
            } else {
                &v.destination
            };
            v.live && numbers_match(numbers, op, value)
        }),
        FilterField::CallerId => call
            .views
            .iter()
            .any(|v| v.live && text_match(v.caller_id.as_deref(), op, value)),
        FilterField::Status | FilterField::Flow => call.views.iter().any(|v| {
            let n = if field == FilterField::Status {
                v.status
            } else {
                v.flow
            };
            v.live && integer_match(i64::from(n), op, value)
        }),
        FilterField::OwnerId => integer_match(call.organization_id, op, value),
        FilterField::Extension => text_match(Some(&call.extension), op, value),
        FilterField::Id => id_match(call.id, op, value),
        FilterField::Published => date_match(Some(call.published), op, value),
        FilterField::Answered => date_match(call.answered, op, value),
    }
}

/// A text comparison in byte order (`COLLATE "C"`), on a value that may be NULL (which matches
/// nothing).
fn text_match(text: Option<&str>, op: FilterOp, value: &FilterValue) -> bool {
    let Some(text) = text else {
        return false;
    };
    match (op, value) {
        (FilterOp::Equals, FilterValue::Text(v)) => text == v,
        // LIKE with the value's wildcards escaped: a substring.
        (FilterOp::Contains, FilterValue::Text(v)) => text.contains(v.as_str()),
        // A range from the value to the least string above every one it starts.
        (FilterOp::StartsWith, FilterValue::Text(v)) => text.starts_with(v.as_str()),
        (FilterOp::GreaterThan, FilterValue::Text(v)) => text > v.as_str(),
        (FilterOp::LessThan, FilterValue::Text(v)) => text < v.as_str(),
        (FilterOp::InArray, FilterValue::TextList(items)) => items.iter().any(|i| i == text),
        (FilterOp::Present, _) => !text.is_empty(),
        _ => false,
    }
}

fn integer_match(n: i64, op: FilterOp, value: &FilterValue) -> bool {
    match (op, value) {
        (FilterOp::GreaterThan, FilterValue::Integer(v)) => n > *v,
        (FilterOp::LessThan, FilterValue::Integer(v)) => n < *v,
        (_, FilterValue::Integer(v)) => n == *v,
        (_, FilterValue::IntegerList(vs)) => vs.contains(&n),
        // present: the column is never NULL.
        _ => true,
    }
}

/// Ids equal only their canonical text; other operators compare that text.
fn id_match(id: Uuid, op: FilterOp, value: &FilterValue) -> bool {
    let canonical = |text: &str| {
        Uuid::try_parse(text)
            .ok()
            .filter(|parsed| parsed.to_string() == text)
    };
    match (op, value) {
        (FilterOp::Equals, FilterValue::Text(v)) => canonical(v) == Some(id),
        (_, FilterValue::TextList(items)) => items.iter().any(|i| canonical(i) == Some(id)),
        _ => text_match(Some(&id.to_string()), op, value),
    }
}

/// A date compared as an instant (to the microsecond, as stored), or as its UTC text.
fn date_match(at: Option<DateTime<Utc>>, op: FilterOp, value: &FilterValue) -> bool {
    let Some(at) = at else {
        return false;
    };
    match (op, value) {
        (FilterOp::Equals, FilterValue::Date(v)) => whole_micros(*v) == Some(at),
        (FilterOp::LessThan, FilterValue::Date(v)) => match whole_micros(*v) {
            Some(v) => at < v,
            None => at < ceil_micros(*v),
        },
        (FilterOp::GreaterThan, FilterValue::Date(v)) => at > floor_micros(*v),
        (_, FilterValue::Date(v)) => at == floor_micros(*v),
        (_, FilterValue::DateList(vs)) => vs.iter().any(|v| whole_micros(*v) == Some(at)),
        (FilterOp::Present, _) => true,
        _ => text_match(Some(&format_utc(at)), op, value),
    }
}

/// A condition on a view's numbers: some number matches (`numbers_condition`).
fn numbers_match(numbers: &[String], op: FilterOp, value: &FilterValue) -> bool {
    match (op, value) {
        (FilterOp::Equals, FilterValue::Text(v)) => numbers.iter().any(|n| n == v),
        (FilterOp::InArray, FilterValue::TextList(items)) => {
            numbers.iter().any(|n| items.contains(n))
        }
        // LIKE on the numbers joined by U+001F, which no value contains: an empty value
        // matches any view, even one without numbers.
        (FilterOp::Contains, FilterValue::Text(v)) => {
            v.is_empty() || numbers.iter().any(|n| n.contains(v.as_str()))
        }
        (FilterOp::Present, _) => !numbers.is_empty(),
        // LIKE on U+001F and each number after it: a number starts with the value, or the
        // value is empty (U+001F alone matches).
        (FilterOp::StartsWith, FilterValue::Text(v)) => {
            v.is_empty() || numbers.iter().any(|n| n.starts_with(v.as_str()))
        }
        _ => numbers.iter().any(|n| text_match(Some(n), op, value)),
    }
}
