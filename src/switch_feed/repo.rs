//! Applies switch reports to the database: the only place that writes calls. The sequence guard
//! is in the upsert itself, and a report's call row and views change in one transaction.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};

use super::report::{Invalid, Report, View};

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

/// Attempts for a report that meets a deadlock or serialization failure.
const ATTEMPTS: u32 = 8;

#[derive(Debug, Clone, Copy)]
struct Extension {
    id: i64,
    organization_id: i64,
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

/// The call row a report resolves to, with stored values filled in for what it left out.
struct Resolved<'a> {
    report: &'a Report,
    organization_id: i64,
    extension_id: i64,
    extension: String,
    published: DateTime<Utc>,
    views: Option<Vec<ViewRow<'a>>>,
}

/// Applies one report for a switch account (`switch_organization`: the one organization it
/// serves, or `None` for a global switch).
pub async fn apply(
    pool: &PgPool,
    switch_organization: Option<i64>,
    report: &Report,
) -> Result<Outcome, ApplyError> {
    let resolved = resolve(pool, switch_organization, report).await?;
    let mut attempt = 1;
    loop {
        match write(pool, &resolved).await {
            Err(ApplyError::Database(e)) if is_retryable(&e) && attempt < ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "switch report conflicted; retrying");
                tokio::time::sleep(Duration::from_millis(2 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Deadlocks and serialization failures: the transaction is safe to run again.
fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

/// Checks the report against the accounts and the stored call: extensions exist and belong to
/// the call's organization, and a first report carries everything a call needs.
async fn resolve<'a>(
    pool: &PgPool,
    switch_organization: Option<i64>,
    report: &'a Report,
) -> Result<Resolved<'a>, ApplyError> {
    let mut numbers: Vec<&str> = report.extension.iter().map(String::as_str).collect();
    for view in report.views.iter().flatten() {
        if !numbers.contains(&view.extension.as_str()) {
            numbers.push(&view.extension);
        }
    }
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT number, id, organization_id FROM extensions WHERE number = ANY($1)")
            .bind(&numbers)
            .fetch_all(pool)
            .await?;
    let known: HashMap<String, Extension> = rows
        .into_iter()
        .map(|(number, id, organization_id)| {
            (
                number,
                Extension {
                    id,
                    organization_id,
                },
            )
        })
        .collect();
    let lookup = |number: &str, field: &str| -> Result<Extension, ApplyError> {
        known.get(number).copied().ok_or_else(|| {
            ApplyError::Invalid(format!("{field} {number} is not a known extension"))
        })
    };

    let stored = if report.extension.is_none()
        || report.published.is_none()
        || report.views.is_none()
    {
        sqlx::query_as::<_, (i64, i64, String, DateTime<Utc>)>(
            "SELECT organization_id, extension_id, extension, published FROM phone_calls WHERE id = $1",
        )
        .bind(report.id)
        .fetch_optional(pool)
        .await?
    } else {
        None
    };
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
            return Err(ApplyError::Invalid(format!(
                "{} missing: the first report of a call needs extension, published and phoneCallView",
                missing.join(", ")
            )));
        }
    }

    let (organization_id, extension_id, extension) = match (&report.extension, &stored) {
        (Some(number), _) => {
            let ext = lookup(number, "extension")?;
            (ext.organization_id, ext.id, number.clone())
        }
        (None, Some((org, ext_id, number, _))) => (*org, *ext_id, number.clone()),
        (None, None) => unreachable!("checked above"),
    };
    if let Some((stored_org, ..)) = &stored {
        if *stored_org != organization_id {
            return Err(ApplyError::Invalid(format!(
                "extension {extension} belongs to another organization than the call"
            )));
        }
    }
    if switch_organization.is_some_and(|org| org != organization_id) {
        return Err(ApplyError::Invalid(format!(
            "extension {extension} belongs to an organization this switch account does not serve"
        )));
    }
    let published = match (report.published, &stored) {
        (Some(published), _) => published,
        (None, Some((.., published))) => *published,
        (None, None) => unreachable!("checked above"),
    };
    if report.answered.is_some_and(|a| a < published) {
        return Err(ApplyError::Invalid(
            "answered must not be before published".into(),
        ));
    }
    if report.ended.is_some_and(|e| e < published) {
        return Err(ApplyError::Invalid(
            "ended must not be before published".into(),
        ));
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
                        return Err(ApplyError::Invalid(format!(
                            "{field} {} belongs to another organization than the call",
                            view.extension
                        )));
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

/// The sequence guard: the update applies only when the stored sequence is lower, so replays
/// and late reports change nothing, whatever order they arrive in.
const UPSERT_CALL: &str = "
INSERT INTO phone_calls AS c
    (id, organization_id, extension_id, extension, nonce, published, answered, ended, updated, sequence)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), $9)
ON CONFLICT (id) DO UPDATE SET
    organization_id = EXCLUDED.organization_id,
    extension_id = EXCLUDED.extension_id,
    extension = EXCLUDED.extension,
    nonce = EXCLUDED.nonce,
    published = EXCLUDED.published,
    answered = EXCLUDED.answered,
    ended = EXCLUDED.ended,
    updated = now(),
    sequence = EXCLUDED.sequence
WHERE c.sequence < EXCLUDED.sequence
RETURNING (xmax = 0) AS created";

const INSERT_VIEWS: &str = "
INSERT INTO phone_call_views
    (phone_call_id, view_id, organization_id, call_live, extension_id, extension, source, destination, flow,
     status, ringing, caller_id, recording, answered, parked, parked_pos, parked_by, on_hold, holder, disposition)
SELECT $1, v.view_id, $2, $4, v.extension_id, v.extension, v.source, v.destination, v.flow, v.status,
       v.ringing, v.caller_id, v.recording, v.answered, v.parked, v.parked_pos, v.parked_by, v.on_hold,
       v.holder, v.disposition
FROM jsonb_to_recordset($3) AS v(
    view_id text, extension_id bigint, extension text, source text[], destination text[], flow smallint,
    status smallint, ringing timestamptz, caller_id text, recording timestamptz, answered timestamptz,
    parked timestamptz, parked_pos integer, parked_by text, on_hold timestamptz, holder smallint,
    disposition smallint)";

async fn write(pool: &PgPool, call: &Resolved<'_>) -> Result<Outcome, ApplyError> {
    let mut tx: Transaction<'_, Postgres> = pool.begin().await?;
    let report = call.report;
    let created: Option<bool> = sqlx::query_scalar(UPSERT_CALL)
        .bind(report.id)
        .bind(call.organization_id)
        .bind(call.extension_id)
        .bind(&call.extension)
        .bind(&report.nonce)
        .bind(call.published)
        .bind(report.answered)
        .bind(report.ended)
        .bind(report.sequence)
        .fetch_optional(&mut *tx)
        .await
        .map_err(constraint_to_invalid)?;
    let outcome = match created {
        None => {
            tx.commit().await?;
            return Ok(Outcome::Ignored);
        }
        Some(true) => Outcome::Created,
        Some(false) => Outcome::Updated,
    };
    if let Some(views) = &call.views {
        if outcome == Outcome::Updated {
            sqlx::query("DELETE FROM phone_call_views WHERE phone_call_id = $1")
                .bind(report.id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(INSERT_VIEWS)
            .bind(report.id)
            .bind(call.organization_id)
            .bind(sqlx::types::Json(views))
            .bind(report.ended.is_none())
            .execute(&mut *tx)
            .await
            .map_err(constraint_to_invalid)?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// A constraint violation means the report contradicts stored data (an account changed between
/// the checks and the write, say), and a data exception a value PostgreSQL cannot take: the
/// client's problem either way, answered as 400, never as 500.
fn constraint_to_invalid(e: sqlx::Error) -> ApplyError {
    match &e {
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("23")) => {
            ApplyError::Invalid(format!(
                "the report contradicts the stored accounts or call ({})",
                db.constraint().unwrap_or("constraint")
            ))
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => {
            ApplyError::Invalid("the report holds a value out of range for storage".into())
        }
        _ => ApplyError::Database(e),
    }
}
