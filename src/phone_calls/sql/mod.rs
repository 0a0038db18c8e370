//! Compiles a typed list request into parameterized SQL. At the base, the builder: SQL text
//! comes only from `&'static str` pieces of this module tree (identifiers from enums, never from
//! input), every value is a bind. `list` writes the resolution and page statements, `filter` the
//! user's filter; `repo` runs what they produce.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use uuid::Uuid;

mod filter;
mod list;

pub use filter::{like_contains, prefix_upper_bound};
pub use list::{list, resolution, Resolution, Scope};

/// A bound value, in the order of its `$n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Int(i64),
    Ints(Vec<i64>),
    Text(String),
    Texts(Vec<String>),
    Date(DateTime<Utc>),
    Dates(Vec<DateTime<Utc>>),
    Uuid(Uuid),
    Uuids(Vec<Uuid>),
}

/// SQL text with its binds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Sql {
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(crate) fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        let _ = write!(self.text, "${}", self.binds.len());
        self
    }
}

/// Renders `build` into a separate text that shares `sql`'s binds, for text used twice.
pub(crate) fn fragment(sql: &mut Sql, build: impl FnOnce(&mut Sql)) -> String {
    let mut part = Sql {
        text: String::new(),
        binds: std::mem::take(&mut sql.binds),
    };
    build(&mut part);
    sql.binds = part.binds;
    part.text
}

/// The instant itself when it has no part finer than a microsecond (PostgreSQL's precision).
pub(crate) fn whole_micros(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (at.timestamp_subsec_nanos() % 1000 == 0).then_some(at)
}

pub(crate) fn floor_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at - chrono::Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos() % 1000))
}

/// The least microsecond instant at or after `at`: for stored microsecond instants,
/// `stored < at` is `stored < ceil(at)` and `stored >= at` is `stored >= ceil(at)`.
pub(crate) fn ceil_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    match whole_micros(at) {
        Some(exact) => exact,
        None => floor_micros(at) + chrono::Duration::microseconds(1),
    }
}

/// A call involves an extension when it is charged to it or one of its live views is on it.
/// `member` completes `extension_id…` into a membership test (`= ANY($2)`, `IN (SELECT …)`).
/// One `IN` over a `UNION ALL` (rather than an `OR` of two) lets PostgreSQL find the few calls
/// through the two extension indexes and join them, instead of filtering every live call.
pub(crate) fn involves(sql: &mut Sql, member: &str) {
    let _ = write!(
        sql.text,
        "c.id IN (SELECT x.id FROM phone_calls x WHERE x.ended IS NULL AND x.extension_id{member} \
         UNION ALL SELECT v.phone_call_id FROM phone_call_views v WHERE v.call_live AND v.extension_id{member})"
    );
}
