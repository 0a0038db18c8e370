//! One report (`PUT`, and the batches that cannot be applied set-based).
//!
//! The usual way costs two round trips: one read of the extensions the report names together
//! with the stored call and the version of its row, then one statement that upserts the call
//! with the sequence guard and, only when that applied, upserts the report's views and deletes
//! the views it no longer carries. That statement also requires the row to be the version that
//! was read: a report that raced with another for the same call (or a first report racing with
//! another first report) changes nothing there and is applied the exact way instead, in a
//! transaction of separate statements, as reading and writing again under the row lock.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{Postgres, Transaction};

use super::facts::{fact_columns, fact_updates, PartyFacts};
use super::{
    back_off, constraint_to_invalid, is_foreign, is_retryable, known_from, log_foreign, numbers_of,
    resolve, ApplyError, Outcome, Resolved, Stored, ATTEMPTS,
};
use crate::db::Sessions;
use crate::metrics;
use crate::switch_feed::report::Report;

/// Applies one report for a switch account (`switch_organization`: the one organization it
/// serves, or `None` for a global switch).
pub async fn apply(
    pool: &impl Sessions,
    switch_organization: Option<i64>,
    report: &Report,
) -> Result<Outcome, ApplyError> {
    let Some((call, stored)) = read_and_resolve(pool, switch_organization, report).await? else {
        return Ok(Outcome::Created);
    };
    if let Some((s, _)) = &stored {
        // Stored sequences only grow: this report can never apply.
        if report.sequence <= s.sequence {
            return Ok(Outcome::Ignored);
        }
        if super::changes_organization(&call, Some(s)) {
            // The database refuses this (the views belong to the old organization); let it
            // say so exactly as it always has.
            return write_exactly(pool, &call).await;
        }
    }
    let version = stored.as_ref().map(|(_, version)| version.as_str());
    let mut attempt = 1;
    loop {
        match write(pool, &call, version).await {
            Ok(Some(created)) => {
                return Ok(if created {
                    Outcome::Created
                } else {
                    Outcome::Updated
                })
            }
            // The call changed since it was read: check and write again under its lock.
            Ok(None) => {
                tracing::debug!("switch report raced with another; applying it under the lock");
                return apply_exactly(pool, switch_organization, report).await;
            }
            Err(ApplyError::Database(e)) if is_retryable(&e) && attempt < ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "switch report conflicted; retrying");
                back_off(attempt).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads what the report names and checks it (see [`resolve`]): the call row it resolves to,
/// and the stored call with its row version, if there is one. `None` for a valid report on a
/// call of another organization than the switch's (see [`is_foreign`]): it is answered as
/// created, and nothing is written.
async fn read_and_resolve<'a>(
    pool: &impl Sessions,
    switch_organization: Option<i64>,
    report: &'a Report,
) -> Result<Option<(Resolved<'a>, Option<(Stored, String)>)>, ApplyError> {
    let (known, stored) = read(pool, report).await?;
    let foreign = stored
        .as_ref()
        .is_some_and(|(s, _)| is_foreign(s, switch_organization));
    let stored = stored.filter(|_| !foreign);
    let call = resolve(
        &known,
        stored.as_ref().map(|(s, _)| s),
        switch_organization,
        report,
    )
    .map_err(ApplyError::Invalid)?;
    if foreign {
        log_foreign(report, switch_organization);
        return Ok(None);
    }
    Ok(Some((call, stored)))
}

/// The extensions the report names and, when the call is stored, its row and the row's version.
async fn read(
    pool: &impl Sessions,
    report: &Report,
) -> Result<(super::Known, Option<(Stored, String)>), sqlx::Error> {
    type Row = (
        String,
        i64,
        i64,
        Option<DateTime<Utc>>,
        Option<i64>,
        Option<String>,
    );
    let numbers: Vec<&str> = numbers_of(report).collect();
    let mut session = pool.session().await?;
    let rows: Vec<Row> = metrics::statement(
        "feed_read",
        sqlx::query_as(READ)
            .persistent(pool.prepared())
            .bind(&numbers)
            .bind(report.id)
            .fetch_all(&mut *session),
    )
    .await?;
    session.end().await?;
    let mut stored = None;
    let mut extensions = Vec::with_capacity(rows.len());
    for (number, id, organization_id, published, sequence, version) in rows {
        match (published, sequence, version) {
            (Some(published), Some(sequence), Some(version)) => {
                let call = Stored {
                    organization_id,
                    extension_id: id,
                    extension: number,
                    published,
                    sequence,
                };
                stored = Some((call, version));
            }
            _ => extensions.push((number, id, organization_id)),
        }
    }
    Ok((known_from(extensions), stored))
}

pub(super) const READ: &str = "
SELECT number, id, organization_id, NULL::timestamptz, NULL::bigint, NULL::text
FROM extensions WHERE number = ANY($1)
UNION ALL
SELECT extension, extension_id, organization_id, published, sequence, xmin::text
FROM phone_calls WHERE id = $2";

/// Writes the call and its views in one statement. `version` is the row version the report was
/// checked against (`None`: there was no row). Answers whether the call was created, or `None`
/// when nothing was written because the row is not (or no longer) that version.
async fn write(
    pool: &impl Sessions,
    call: &Resolved<'_>,
    version: Option<&str>,
) -> Result<Option<bool>, ApplyError> {
    let facts = call.party_facts();
    let query = bind_call(sqlx::query_scalar(WRITE).persistent(pool.prepared()), call)
        .bind(version)
        .bind(call.views.as_ref().map(sqlx::types::Json))
        .bind(call.report.ended.is_none());
    let mut session = pool.session().await?;
    let created = metrics::statement(
        "feed_write",
        bind_facts(query, &facts).fetch_optional(&mut *session),
    )
    .await
    .map_err(constraint_to_invalid)?;
    session.end().await?;
    Ok(created)
}

/// Binds `$1` to `$9` of a call's upsert (its columns without `updated`).
fn bind_call<'q, O>(
    query: QueryScalar<'q, Postgres, O, PgArguments>,
    call: &'q Resolved<'_>,
) -> QueryScalar<'q, Postgres, O, PgArguments> {
    let report = call.report;
    query
        .bind(report.id)
        .bind(call.organization_id)
        .bind(call.extension_id)
        .bind(&call.extension)
        .bind(&report.nonce)
        .bind(call.published)
        .bind(report.answered)
        .bind(report.ended)
        .bind(report.sequence)
}

/// Binds the next eight parameters to a call's party figures, in [`fact_columns!`]'s order.
fn bind_facts<'q, O>(
    query: QueryScalar<'q, Postgres, O, PgArguments>,
    facts: &PartyFacts<'q>,
) -> QueryScalar<'q, Postgres, O, PgArguments> {
    query
        .bind(facts.parties)
        .bind(facts.first_ringing)
        .bind(facts.charged_flow)
        .bind(facts.charged_disposition)
        .bind(facts.charged_destination)
        .bind(facts.was_parked)
        .bind(facts.was_on_hold)
        .bind(facts.was_recorded)
}

/// The sequence guard (`c.sequence < EXCLUDED.sequence`) and the version check are in the upsert;
/// the views change only when it applied (they read `up`). The views upserted and the views
/// deleted are disjoint, so the statement never touches a row twice. The call's party figures
/// ([`super::facts`], `$13` to `$20`) are the report's when it carries views, and kept when it
/// leaves them out.
pub(super) const WRITE: &str = concat!(
    "
WITH up AS (
    INSERT INTO phone_calls AS c (id, organization_id, extension_id, extension, nonce, published, answered, ended, updated, sequence,
        ", fact_columns!(), ")
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), $9, $13, $14, $15, $16, $17, $18, $19, $20)
    ON CONFLICT (id) DO UPDATE SET
        organization_id = EXCLUDED.organization_id,
        extension_id = EXCLUDED.extension_id,
        extension = EXCLUDED.extension,
        nonce = EXCLUDED.nonce,
        published = EXCLUDED.published,
        answered = EXCLUDED.answered,
        ended = EXCLUDED.ended,
        updated = now(),
        sequence = EXCLUDED.sequence,
        ", fact_updates!("$11::jsonb IS NULL"), "
    WHERE c.sequence < EXCLUDED.sequence AND c.xmin::text = $10
    RETURNING (xmax = 0) AS created
),
incoming AS (
    SELECT * FROM jsonb_to_recordset($11) AS v(view_id text, extension_id bigint, extension text, source text[], destination text[],
        flow smallint, status smallint, ringing timestamptz, caller_id text, recording timestamptz,
        answered timestamptz, parked timestamptz, parked_pos integer, parked_by text,
        on_hold timestamptz, holder smallint, disposition smallint)
),
kept AS (
    INSERT INTO phone_call_views AS v (phone_call_id, view_id, organization_id, call_live, extension_id, extension, source, destination,
         flow, status, ringing, caller_id, recording, answered, parked, parked_pos, parked_by, on_hold,
         holder, disposition)
    SELECT $1, i.view_id, $2, $12, i.extension_id, i.extension, i.source, i.destination, i.flow, i.status,
           i.ringing, i.caller_id, i.recording, i.answered, i.parked, i.parked_pos, i.parked_by, i.on_hold,
           i.holder, i.disposition
    FROM up, incoming i
    ON CONFLICT (phone_call_id, view_id) DO UPDATE SET
        organization_id = EXCLUDED.organization_id,
        call_live = EXCLUDED.call_live,
        extension_id = EXCLUDED.extension_id,
        extension = EXCLUDED.extension,
        source = EXCLUDED.source,
        destination = EXCLUDED.destination,
        flow = EXCLUDED.flow,
        status = EXCLUDED.status,
        ringing = EXCLUDED.ringing,
        caller_id = EXCLUDED.caller_id,
        recording = EXCLUDED.recording,
        answered = EXCLUDED.answered,
        parked = EXCLUDED.parked,
        parked_pos = EXCLUDED.parked_pos,
        parked_by = EXCLUDED.parked_by,
        on_hold = EXCLUDED.on_hold,
        holder = EXCLUDED.holder,
        disposition = EXCLUDED.disposition
),
gone AS (
    DELETE FROM phone_call_views v
    USING up
    WHERE NOT up.created AND v.phone_call_id = $1 AND $11::jsonb IS NOT NULL
      AND NOT EXISTS (SELECT FROM incoming i WHERE i.view_id = v.view_id)
)
SELECT created FROM up"
);

/// Checks and writes a report the exact way: read again, then the call and its views in a
/// transaction of separate statements, each of which sees what the ones before it did.
pub(super) async fn apply_exactly(
    pool: &impl Sessions,
    switch_organization: Option<i64>,
    report: &Report,
) -> Result<Outcome, ApplyError> {
    match read_and_resolve(pool, switch_organization, report).await? {
        Some((call, _)) => write_exactly(pool, &call).await,
        None => Ok(Outcome::Created),
    }
}

async fn write_exactly(pool: &impl Sessions, call: &Resolved<'_>) -> Result<Outcome, ApplyError> {
    let mut attempt = 1;
    loop {
        match write_in_transaction(pool, call).await {
            Err(ApplyError::Database(e)) if is_retryable(&e) && attempt < ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "switch report conflicted; retrying");
                back_off(attempt).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The sequence guard: the update applies only when the stored sequence is lower, so replays
/// and late reports change nothing, whatever order they arrive in.
///
/// The call's party figures (`$11` to `$18`) are the report's when it carries views (`$10`),
/// and kept when it leaves them out, as the statements after this one keep the views.
pub(super) const UPSERT_CALL: &str = concat!(
    "
INSERT INTO phone_calls AS c (id, organization_id, extension_id, extension, nonce, published, answered, ended, updated, sequence,
    ", fact_columns!(), ")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), $9, $11, $12, $13, $14, $15, $16, $17, $18)
    ON CONFLICT (id) DO UPDATE SET
        organization_id = EXCLUDED.organization_id,
        extension_id = EXCLUDED.extension_id,
        extension = EXCLUDED.extension,
        nonce = EXCLUDED.nonce,
        published = EXCLUDED.published,
        answered = EXCLUDED.answered,
        ended = EXCLUDED.ended,
        updated = now(),
        sequence = EXCLUDED.sequence,
        ", fact_updates!("NOT $10::boolean"), "
WHERE c.sequence < EXCLUDED.sequence
RETURNING (xmax = 0) AS created"
);

pub(super) const DELETE_VIEWS: &str = "DELETE FROM phone_call_views WHERE phone_call_id = $1";

pub(super) const INSERT_VIEWS: &str = "
INSERT INTO phone_call_views (phone_call_id, view_id, organization_id, call_live, extension_id, extension, source, destination,
         flow, status, ringing, caller_id, recording, answered, parked, parked_pos, parked_by, on_hold,
         holder, disposition)
SELECT $1, v.view_id, $2, $4, v.extension_id, v.extension, v.source, v.destination, v.flow, v.status,
       v.ringing, v.caller_id, v.recording, v.answered, v.parked, v.parked_pos, v.parked_by, v.on_hold,
       v.holder, v.disposition
FROM jsonb_to_recordset($3) AS v(view_id text, extension_id bigint, extension text, source text[], destination text[],
        flow smallint, status smallint, ringing timestamptz, caller_id text, recording timestamptz,
        answered timestamptz, parked timestamptz, parked_pos integer, parked_by text,
        on_hold timestamptz, holder smallint, disposition smallint)";

async fn write_in_transaction(
    pool: &impl Sessions,
    call: &Resolved<'_>,
) -> Result<Outcome, ApplyError> {
    let mut tx: Transaction<'_, Postgres> = pool.begin_with("BEGIN").await?;
    let report = call.report;
    let facts = call.party_facts();
    let prepared = pool.prepared();
    let query = bind_call(sqlx::query_scalar(UPSERT_CALL).persistent(prepared), call)
        .bind(call.views.is_some());
    let created: Option<bool> = metrics::statement(
        "feed_upsert_call",
        bind_facts(query, &facts).fetch_optional(&mut *tx),
    )
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
            metrics::statement(
                "feed_delete_views",
                sqlx::query(DELETE_VIEWS)
                    .persistent(prepared)
                    .bind(report.id)
                    .execute(&mut *tx),
            )
            .await?;
        }
        metrics::statement(
            "feed_insert_views",
            sqlx::query(INSERT_VIEWS)
                .persistent(prepared)
                .bind(report.id)
                .bind(call.organization_id)
                .bind(sqlx::types::Json(views))
                .bind(report.ended.is_none())
                .execute(&mut *tx),
        )
        .await
        .map_err(constraint_to_invalid)?;
    }
    tx.commit().await?;
    Ok(outcome)
}
