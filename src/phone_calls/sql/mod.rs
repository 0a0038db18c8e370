//! Compiles a typed list request into parameterized SQL. At the base, the builder: SQL text
//! comes only from `&'static str` pieces of this module tree (identifiers from enums, never from
//! input), every value is a bind. `list` writes the resolution and page statements, `filter` the
//! user's filter; `repo` runs what they produce.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub mod baseline;
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

/// A piece of a statement: SQL text of this module tree, or the place of a bound value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(&'static str),
    /// The value at this index of the statement's binds.
    Param(usize),
}

/// A statement being built: SQL text only from `&'static str` pieces (so never from input),
/// every value a bind. Placeholders are numbered when the statement is finished ([`Sql::text`]),
/// so a piece can be built once and used twice with the same values ([`Sql::fragment`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sql {
    parts: Vec<Part>,
    pub binds: Vec<Bind>,
}

/// A piece of text with its placeholders, over the binds of the statement that made it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fragment(Vec<Part>);

impl Sql {
    pub(crate) fn push(&mut self, text: &'static str) -> &mut Self {
        self.parts.push(Part::Text(text));
        self
    }

    pub(crate) fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        self.parts.push(Part::Param(self.binds.len() - 1));
        self
    }

    /// Builds a piece to be pushed (once or more) with [`Sql::push_fragment`]; its values are
    /// bound in this statement once, however many times the piece is used.
    pub(crate) fn fragment(&mut self, build: impl FnOnce(&mut Sql)) -> Fragment {
        let mut piece = Sql {
            parts: Vec::new(),
            binds: std::mem::take(&mut self.binds),
        };
        build(&mut piece);
        self.binds = piece.binds;
        Fragment(piece.parts)
    }

    pub(crate) fn push_fragment(&mut self, fragment: &Fragment) -> &mut Self {
        self.parts.extend(fragment.0.iter().cloned());
        self
    }

    /// A statement written out whole, with its placeholders already in the text (tests only).
    #[cfg(test)]
    pub(crate) fn literal(text: &'static str, binds: Vec<Bind>) -> Self {
        Self {
            parts: vec![Part::Text(text)],
            binds,
        }
    }

    /// The finished statement's text, its placeholders numbered `$1`, `$2`, … in the order of
    /// [`Sql::binds`].
    pub fn text(&self) -> String {
        let mut text = String::new();
        for part in &self.parts {
            match part {
                Part::Text(piece) => text.push_str(piece),
                Part::Param(index) => {
                    let _ = write!(text, "${}", index + 1);
                }
            }
        }
        text
    }
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
pub(crate) fn involves(sql: &mut Sql, member: &Fragment) {
    sql.push("c.id IN (SELECT x.id FROM phone_calls x WHERE x.ended IS NULL AND x.extension_id")
        .push_fragment(member)
        .push(" UNION ALL SELECT v.phone_call_id FROM phone_call_views v WHERE v.call_live AND v.extension_id")
        .push_fragment(member)
        .push(")");
}
