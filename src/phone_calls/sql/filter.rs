//! The user's filter (`filterBy`, `filterOp`, `filterValue`) as SQL: one condition per field type
//! and operator, every value bound, `contains` literal, `startsWith` a range, `inArray` one array.
//! View-level fields match when any live view of the call matches.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::phone_calls::query::{FieldType, Filter, FilterField, FilterOp, FilterValue};

use super::{ceil_micros, floor_micros, whole_micros, Bind, Sql};

/// `%`, `_` and `\` are literal in contains: escape them for LIKE's default escape `\`.
pub fn like_contains(value: &str) -> String {
    let mut pattern = String::with_capacity(value.len() + 2);
    pattern.push('%');
    for ch in value.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// A LIKE pattern matching numbers joined by U+001F, each after a U+001F, when one of them
/// starts with `prefix` (which cannot contain U+001F: query parsing refuses control characters).
fn like_element_prefix(prefix: &str) -> String {
    let mut pattern = like_contains(prefix);
    pattern.insert(1, '\u{1f}');
    pattern
}

/// The least string greater than every string that starts with `prefix` (in byte order, which
/// for UTF-8 is code point order), or `None` when there is none.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The column of a call-level field, as text or as its own type.
fn call_column(field: FilterField, as_text: bool) -> &'static str {
    match (field, as_text) {
        (FilterField::Id, true) => "c.id::text",
        (FilterField::Id, false) => "c.id",
        (FilterField::Extension, _) => "c.extension",
        (FilterField::OwnerId, _) => "c.organization_id",
        (FilterField::Published, true) => "uapi_date(c.published)",
        (FilterField::Published, false) => "c.published",
        (FilterField::Answered, true) => "uapi_date(c.answered)",
        (FilterField::Answered, false) => "c.answered",
        (FilterField::CallerId, _) => "v.caller_id",
        (FilterField::Status, _) => "v.status",
        (FilterField::Flow, _) => "v.flow",
        (FilterField::Source, _) => "v.source",
        (FilterField::Destination, _) => "v.destination",
    }
}

pub(super) fn is_view_field(field: FilterField) -> bool {
    matches!(
        field,
        FilterField::Source
            | FilterField::Destination
            | FilterField::CallerId
            | FilterField::Status
            | FilterField::Flow
    )
}

/// A text comparison on a scalar text expression.
fn text_condition(sql: &mut Sql, column: &'static str, op: FilterOp, value: &FilterValue) {
    match (op, value) {
        (FilterOp::Equals, FilterValue::Text(v)) => {
            sql.push(column)
                .push(" COLLATE \"C\" = ")
                .bind(Bind::Text(v.clone()));
        }
        (FilterOp::Contains, FilterValue::Text(v)) => {
            sql.push(column)
                .push(" LIKE ")
                .bind(Bind::Text(like_contains(v)));
        }
        (FilterOp::StartsWith, FilterValue::Text(v)) => {
            sql.push("(")
                .push(column)
                .push(" COLLATE \"C\" >= ")
                .bind(Bind::Text(v.clone()));
            if let Some(upper) = prefix_upper_bound(v) {
                sql.push(" AND ")
                    .push(column)
                    .push(" COLLATE \"C\" < ")
                    .bind(Bind::Text(upper));
            }
            sql.push(")");
        }
        (FilterOp::GreaterThan, FilterValue::Text(v)) => {
            sql.push(column)
                .push(" COLLATE \"C\" > ")
                .bind(Bind::Text(v.clone()));
        }
        (FilterOp::LessThan, FilterValue::Text(v)) => {
            sql.push(column)
                .push(" COLLATE \"C\" < ")
                .bind(Bind::Text(v.clone()));
        }
        (FilterOp::InArray, FilterValue::TextList(items)) => {
            sql.push(column)
                .push(" COLLATE \"C\" = ANY(")
                .bind(Bind::Texts(items.clone()))
                .push(")");
        }
        (FilterOp::Present, _) => {
            sql.push("(")
                .push(column)
                .push(" IS NOT NULL AND ")
                .push(column)
                .push(" <> '')");
        }
        _ => unreachable!("query parsing pairs text operators with text values"),
    }
}

fn comparison(op: FilterOp) -> &'static str {
    match op {
        FilterOp::GreaterThan => " > ",
        FilterOp::LessThan => " < ",
        _ => " = ",
    }
}

/// The canonical text of a call id, which is all an id filter can equal.
fn canonical_uuid(text: &str) -> Option<Uuid> {
    Uuid::try_parse(text)
        .ok()
        .filter(|id| id.to_string() == text)
}

/// A condition on one call (alias `c`) or, for view fields, on one view (alias `v`).
pub(super) fn condition(sql: &mut Sql, filter: &Filter) {
    let Filter { field, op, value } = filter;
    let (field, op) = (*field, *op);
    match (field, field.field_type(), value) {
        // Ids equal only their canonical text: compare as uuid so the primary key serves.
        (FilterField::Id, _, FilterValue::Text(v)) if op == FilterOp::Equals => {
            match canonical_uuid(v) {
                Some(id) => {
                    sql.push("c.id = ").bind(Bind::Uuid(id));
                }
                None => {
                    sql.push("FALSE");
                }
            }
        }
        (FilterField::Id, _, FilterValue::TextList(items)) => {
            let ids: Vec<Uuid> = items.iter().filter_map(|v| canonical_uuid(v)).collect();
            sql.push("c.id = ANY(").bind(Bind::Uuids(ids)).push(")");
        }
        (FilterField::Source | FilterField::Destination, _, _) => {
            numbers_condition(sql, call_column(field, true), op, value)
        }
        (_, FieldType::Text, _) => text_condition(sql, call_column(field, true), op, value),
        (_, FieldType::Date, FilterValue::Date(at)) => match (op, whole_micros(*at)) {
            // Stored instants have microsecond precision: nothing equals a finer one.
            (FilterOp::Equals, None) => {
                sql.push("FALSE");
            }
            (FilterOp::LessThan, None) => {
                sql.push(call_column(field, false))
                    .push(" < ")
                    .bind(Bind::Date(ceil_micros(*at)));
            }
            _ => {
                sql.push(call_column(field, false))
                    .push(comparison(op))
                    .bind(Bind::Date(floor_micros(*at)));
            }
        },
        (_, FieldType::Date, FilterValue::DateList(ats)) => {
            let exact: Vec<DateTime<Utc>> = ats.iter().filter_map(|at| whole_micros(*at)).collect();
            sql.push(call_column(field, false))
                .push(" = ANY(")
                .bind(Bind::Dates(exact))
                .push(")");
        }
        (_, FieldType::Date, _) if op == FilterOp::Present => {
            sql.push(call_column(field, false)).push(" IS NOT NULL");
        }
        (_, FieldType::Date, _) => text_condition(sql, call_column(field, true), op, value),
        (_, FieldType::Integer, FilterValue::Integer(n)) => {
            sql.push(call_column(field, false))
                .push(comparison(op))
                .bind(Bind::Int(*n));
        }
        (_, FieldType::Integer, FilterValue::IntegerList(ns)) => {
            sql.push(call_column(field, false))
                .push(" = ANY(")
                .bind(Bind::Ints(ns.clone()))
                .push(")");
        }
        (_, FieldType::Integer, _) => {
            // present: the column is NOT NULL, so any call (or any view) has it.
            sql.push("TRUE");
        }
    }
}

/// A condition on a view's `source` or `destination`: true when any element matches.
fn numbers_condition(sql: &mut Sql, column: &'static str, op: FilterOp, value: &FilterValue) {
    match (op, value) {
        (FilterOp::Equals, FilterValue::Text(v)) => {
            sql.push(column)
                .push(" @> ARRAY[")
                .bind(Bind::Text(v.clone()))
                .push("::text]");
        }
        (FilterOp::InArray, FilterValue::TextList(items)) => {
            sql.push(column)
                .push(" && ")
                .bind(Bind::Texts(items.clone()))
                .push("::text[]");
        }
        (FilterOp::Contains, FilterValue::Text(v)) => {
            // Numbers are joined by U+001F, which a filter value cannot contain.
            sql.push("uapi_numbers(")
                .push(column)
                .push(") LIKE ")
                .bind(Bind::Text(like_contains(v)));
        }
        (FilterOp::Present, _) => {
            sql.push("cardinality(").push(column).push(") > 0");
        }
        (FilterOp::StartsWith, FilterValue::Text(v)) => {
            // Some number starts with the prefix: the numbers, each after a U+001F, contain
            // U+001F and the prefix. Two built-in functions and one LIKE per view, where
            // unnesting the numbers ran a subquery per view.
            sql.push("(chr(31) || array_to_string(")
                .push(column)
                .push(", chr(31))) LIKE ")
                .bind(Bind::Text(like_element_prefix(v)));
        }
        _ => {
            sql.push("EXISTS (SELECT 1 FROM unnest(")
                .push(column)
                .push(") AS n(number) WHERE ");
            text_condition(sql, "n.number", op, value);
            sql.push(")");
        }
    }
}

/// Whether one organization's views matching the filter are found in an index without the table
/// by seeking, not scanning a range: an equality or a list of status or flow, whose live
/// indexes are led by value and organization (migration 0011). Probing a call's views is then
/// one index lookup.
pub(super) fn probes_by_index(filter: &Filter) -> bool {
    matches!(filter.field, FilterField::Status | FilterField::Flow)
        && matches!(filter.op, FilterOp::Equals | FilterOp::InArray)
}

/// A call-level filter as a condition on call `c`.
pub(super) fn on_call(sql: &mut Sql, filter: &Filter) {
    debug_assert!(!is_view_field(filter.field));
    condition(sql, filter);
}

/// A view-level filter as a condition on call `c`: one of its live views matches, found by
/// probing that call's own views. `OFFSET 0` keeps the probe a subplan that PostgreSQL cannot
/// turn into a join, so that whatever it estimates, the calls drive: used where they are few
/// (a user's) or walked in order and few are needed (an organization's status and flow).
/// `organization`: the one organization every visible call belongs to, when the caller sees
/// only one. The views are read by the call's key, then tested; but for an organization's
/// status or flow, which one lookup of its index answers ([`probes_by_index`]). Given the test
/// itself, a generic plan (which cannot know how many views a value matches) read the call's
/// views out of the filter's own index, scanning every view of a caller id prefix for each call.
pub(super) fn probe_views(sql: &mut Sql, filter: &Filter, organization: Option<i64>) {
    match organization {
        Some(org) if probes_by_index(filter) => {
            sql.push(
                "EXISTS (SELECT 1 FROM phone_call_views v WHERE v.phone_call_id = c.id \
                 AND v.call_live AND v.organization_id = ",
            )
            .bind(Bind::Int(org))
            .push(" AND ");
            condition(sql, filter);
            sql.push(" OFFSET 0)");
        }
        _ => {
            sql.push(
                "EXISTS (SELECT 1 FROM (SELECT * FROM phone_call_views v WHERE v.phone_call_id = c.id \
                 OFFSET 0) AS v WHERE v.call_live AND ",
            );
            condition(sql, filter);
            sql.push(")");
        }
    }
}

/// The ids of the calls one of whose live views matches a view-level filter (a `SELECT` of
/// distinct `phone_call_id`), for the views to drive: found through the views' own indexes.
/// `organization` as for [`probe_views`].
pub(super) fn matching_views(sql: &mut Sql, filter: &Filter, organization: Option<i64>) {
    sql.push("SELECT DISTINCT v.phone_call_id FROM phone_call_views v WHERE v.call_live AND ");
    if let Some(org) = organization {
        // A view is in its call's organization, on an extension of it (the database enforces
        // both), so when every visible call is in one organization, so are the views worth
        // testing. Saying so lets PostgreSQL read only the organization's live views: through
        // the status and flow indexes, or through its extensions (the live extension index),
        // where it tests the filter, which may be costly (a prefix of any number of a view,
        // say), on those alone; without it, it tested the filter on every live view.
        let org = sql.fragment(|f| {
            f.bind(Bind::Int(org));
        });
        sql.push("v.organization_id = ").push_fragment(&org);
        if !probes_by_index(filter) {
            sql.push(
                " AND v.extension_id IN (SELECT e.id FROM extensions e WHERE e.organization_id = ",
            )
            .push_fragment(&org)
            .push(")");
        }
        sql.push(" AND ");
    }
    condition(sql, filter);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_prefix_follows_a_separator_and_keeps_wildcards_literal() {
        assert_eq!(like_element_prefix("+4420"), "%\u{1f}+4420%");
        assert_eq!(like_element_prefix("5%_\\"), "%\u{1f}5\\%\\_\\\\%");
    }

    #[test]
    fn prefix_bounds_step_the_last_character() {
        assert_eq!(prefix_upper_bound("abc").as_deref(), Some("abd"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
    }
}
