//! Applies switch reports to the database: the only place that writes calls. The sequence guard
//! is in the upsert itself, and a report's call row and views change atomically.
//!
//! `single` applies one report in two round trips (the accounts and the stored call in one
//! read, then one statement that writes the call and its views); `batch` applies many reports
//! in one transaction of two set-based statements, answering each report as applying them one
//! after the other would (the batch requests, and the single reports that `queue` groups). Both
//! check a report against the accounts and the stored call with the same [`resolve`], so a
//! report gets the same answer whichever way it comes in.

mod batch;
mod facts;
mod single;

/// Every statement the feed sends, whole, by name: what `phonecalls statements --feed` prints,
/// ready to paste into psql (`PREPARE name AS …`).
pub const STATEMENTS: &[(&str, &str)] = &[
    ("single_read", single::READ),
    ("single_write", single::WRITE),
    ("exact_upsert_call", single::UPSERT_CALL),
    ("exact_delete_views", single::DELETE_VIEWS),
    ("exact_insert_views", single::INSERT_VIEWS),
    ("batch_read_and_lock", batch::READ_AND_LOCK),
    ("batch_write", batch::WRITE),
];

use std::collections::HashMap;
use std::time::Duration;

use super::report::{Invalid, Report, View};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use batch::{apply_batch, apply_items, Item};
pub use single::apply;

/// What applying a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The report created the call.
    Created,
    /// The report's sequence was higher than the stored one: the call now reflects it.
    Updated,
    /// The stored sequence is equal or higher: nothing changed (a replay or a late report).
    Ignored,
}

impl Outcome {
    pub fn applied(self) -> bool {
        self != Self::Ignored
    }
}

/// Why a report was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The report contradicts the stored accounts or the call; nothing was stored.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<Invalid> for ApplyError {
    fn from(e: Invalid) -> Self {
        Self::Invalid(e.0)
    }
}

/// Attempts for a write that meets a deadlock or serialization failure.
const ATTEMPTS: u32 = 8;

/// Waits a little longer after each conflicted attempt.
async fn back_off(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(2 * u64::from(attempt))).await;
}

/// Deadlocks, serialization failures and insert races: the transaction is safe to run again.
fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
        || is_insert_race(e)
}

/// A unique violation on `phone_calls` can only be two transactions creating the same call at
/// once. `INSERT … ON CONFLICT (id)` settles a race on its arbiter, the primary key, but
/// `phone_calls` has further unique keys (`(id, organization_id)` and `(id, live)`, which the
/// views' foreign keys reference); when the other transaction commits first, the check of those
/// fails instead of waiting for the arbiter. Run again, the statement sees the committed call
/// and takes its `ON CONFLICT` branch.
fn is_insert_race(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23505") && db.table() == Some("phone_calls"))
}

/// A constraint violation means the report contradicts stored data (an account changed between
/// the checks and the write, say), and a data exception a value PostgreSQL cannot take: the
/// client's problem either way, answered as 400, never as 500. The message names no constraint:
/// a constraint's name is the schema's business, and what it guards may be another tenant's.
fn constraint_to_invalid(e: sqlx::Error) -> ApplyError {
    match &e {
        _ if is_insert_race(&e) => ApplyError::Database(e),
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("23")) => {
            tracing::debug!(
                constraint = db.constraint().unwrap_or(""),
                "report refused by a constraint"
            );
            ApplyError::Invalid("the report contradicts the stored accounts or call".into())
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => {
            ApplyError::Invalid("the report holds a value out of range for storage".into())
        }
        _ => ApplyError::Database(e),
    }
}

/// Whether a stored call belongs to another organization than the one a switch account serves.
/// Such a call does not exist for that switch: its reports are answered exactly as for an
/// unknown id (so a tenant cannot learn that the id is taken, nor anything of the call) and
/// store nothing, since the id cannot be given to a second call.
fn is_foreign(stored: &Stored, switch_organization: Option<i64>) -> bool {
    switch_organization.is_some_and(|org| org != stored.organization_id)
}

/// Logs a report that [`is_foreign`] kept away from another organization's call.
fn log_foreign(report: &Report, switch_organization: Option<i64>) {
    tracing::warn!(
        call_id = %report.id,
        switch_organization,
        "a switch reported a call id that belongs to another organization; answered as for a new call, nothing stored"
    );
}

/// Whether the database refused the data itself (see [`constraint_to_invalid`]).
fn is_data_error(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().is_some_and(|c| c.starts_with("23") || c.starts_with("22")))
}

#[derive(Debug, Clone, Copy)]
struct Extension {
    id: i64,
    organization_id: i64,
}

/// Extensions by full number.
type Known = HashMap<String, Extension>;

/// The extension numbers a report names, each once.
fn numbers_of(report: &Report) -> impl Iterator<Item = &str> {
    report
        .extension
        .iter()
        .map(String::as_str)
        .chain(report.views.iter().flatten().map(|v| v.extension.as_str()))
}

fn known_from(rows: impl IntoIterator<Item = (String, i64, i64)>) -> Known {
    rows.into_iter()
        .map(|(number, id, organization_id)| {
            (
                number,
                Extension {
                    id,
                    organization_id,
                },
            )
        })
        .collect()
}

/// What a report is checked against when it leaves out some of the call's fixed fields.
#[derive(Debug, Clone)]
struct Stored {
    organization_id: i64,
    extension_id: i64,
    extension: String,
    published: DateTime<Utc>,
    sequence: i64,
}

/// Later reports may leave out these fields; a report that does is checked against the stored
/// call, one that carries them all stands on its own.
fn leaves_out_something(report: &Report) -> bool {
    report.extension.is_none() || report.published.is_none() || report.views.is_none()
}

/// A view as `jsonb_to_recordset` reads it.
#[derive(Serialize)]
struct ViewRow<'a> {
    view_id: &'a str,
    extension_id: i64,
    extension: &'a str,
    source: &'a [String],
    destination: &'a [String],
    flow: i16,
    status: i16,
    ringing: Option<DateTime<Utc>>,
    caller_id: Option<&'a str>,
    recording: Option<DateTime<Utc>>,
    answered: Option<DateTime<Utc>>,
    parked: Option<DateTime<Utc>>,
    parked_pos: Option<i32>,
    parked_by: Option<&'a str>,
    on_hold: Option<DateTime<Utc>>,
    holder: Option<i16>,
    disposition: Option<i16>,
}

fn view_row(view: &View, extension_id: i64) -> ViewRow<'_> {
    ViewRow {
        view_id: &view.id,
        extension_id,
        extension: &view.extension,
        source: &view.source,
        destination: &view.destination,
        flow: view.flow,
        status: view.status,
        ringing: view.ringing,
        caller_id: view.caller_id.as_deref(),
        recording: view.recording,
        answered: view.answered,
        parked: view.parked,
        parked_pos: view.parked_pos,
        parked_by: view.parked_by.as_deref(),
        on_hold: view.on_hold,
        holder: view.holder,
        disposition: view.disposition,
    }
}

/// The call row a report resolves to, with stored values filled in for what it left out.
struct Resolved<'a> {
    report: &'a Report,
    organization_id: i64,
    extension_id: i64,
    extension: String,
    published: DateTime<Utc>,
    views: Option<Vec<ViewRow<'a>>>,
}

impl Resolved<'_> {
    /// What the report's views say about the call (all zero and none when it carries no views:
    /// the statements then keep the stored figures, see [`facts`]).
    fn party_facts(&self) -> facts::PartyFacts<'_> {
        self.views
            .as_deref()
            .map(|views| facts::PartyFacts::of(views, self.extension_id))
            .unwrap_or_default()
    }

    /// The stored call once this report is applied.
    fn stored(&self) -> Stored {
        Stored {
            organization_id: self.organization_id,
            extension_id: self.extension_id,
            extension: self.extension.clone(),
            published: self.published,
            sequence: self.report.sequence,
        }
    }
}

/// Checks the report against the accounts (`known`: at least every extension it names that
/// exists) and the stored call (`None` when there is none): extensions exist and belong to the
/// call's organization, and a first report carries everything a call needs. The stored call is
/// consulted only for a report that leaves out `extension`, `published` or `phoneCallView`.
fn resolve<'a>(
    known: &Known,
    stored: Option<&Stored>,
    switch_organization: Option<i64>,
    report: &'a Report,
) -> Result<Resolved<'a>, String> {
    let lookup = |number: &str, field: &str| -> Result<Extension, String> {
        known
            .get(number)
            .copied()
            .ok_or_else(|| format!("{field} {number} is not a known extension"))
    };
    let stored = stored.filter(|_| leaves_out_something(report));
    if stored.is_none() {
        let missing: Vec<&str> = [
            ("extension", report.extension.is_none()),
            ("published", report.published.is_none()),
            ("phoneCallView", report.views.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} missing: the first report of a call needs extension, published and phoneCallView",
                missing.join(", ")
            ));
        }
    }

    let (organization_id, extension_id, extension) = match (&report.extension, stored) {
        (Some(number), _) => {
            let ext = lookup(number, "extension")?;
            (ext.organization_id, ext.id, number.clone())
        }
        (None, Some(s)) => (s.organization_id, s.extension_id, s.extension.clone()),
        (None, None) => unreachable!("checked above"),
    };
    if let Some(s) = stored {
        if s.organization_id != organization_id {
            return Err(format!(
                "extension {extension} belongs to another organization than the call"
            ));
        }
    }
    if switch_organization.is_some_and(|org| org != organization_id) {
        return Err(format!(
            "extension {extension} belongs to an organization this switch account does not serve"
        ));
    }
    let published = match (report.published, stored) {
        (Some(published), _) => published,
        (None, Some(s)) => s.published,
        (None, None) => unreachable!("checked above"),
    };
    if report.answered.is_some_and(|a| a < published) {
        return Err("answered must not be before published".into());
    }
    if report.ended.is_some_and(|e| e < published) {
        return Err("ended must not be before published".into());
    }

    let views = match &report.views {
        None => None,
        Some(views) => Some(
            views
                .iter()
                .enumerate()
                .map(|(i, view)| {
                    let field = format!("phoneCallView[{i}].extension");
                    let ext = lookup(&view.extension, &field)?;
                    if ext.organization_id != organization_id {
                        return Err(format!(
                            "{field} {} belongs to another organization than the call",
                            view.extension
                        ));
                    }
                    Ok(view_row(view, ext.id))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Resolved {
        report,
        organization_id,
        extension_id,
        extension,
        published,
        views,
    })
}

/// Whether writing `call` over `stored` would move the call to another organization. Its views
/// still belong to the old one, so the database refuses such a write; [`resolve`] does not see
/// it for a report that carries every field, and `single` leaves it to the database.
fn changes_organization(call: &Resolved<'_>, stored: Option<&Stored>) -> bool {
    stored.is_some_and(|s| s.organization_id != call.organization_id)
}

/// The call row of a call id, for `stored`.
fn stored_from(
    (organization_id, extension_id, extension, published, sequence): (
        i64,
        i64,
        String,
        DateTime<Utc>,
        i64,
    ),
) -> Stored {
    Stored {
        organization_id,
        extension_id,
        extension,
        published,
        sequence,
    }
}
