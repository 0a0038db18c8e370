//! A batch of reports, set-based.
//!
//! Every report is checked and answered as if the reports were applied one after the other in
//! their order. In one transaction: one statement reads the extensions the batch names and the
//! batch's stored calls, locking them in id order (so that concurrent batches do not deadlock);
//! the reports of each call are then played in order over what is stored; and one statement
//! writes only each call's final state: the calls, with the sequence guard, and their views.
//!
//! A call that did not exist when read may be created by someone else before the write; the
//! write then answers differently from the plan, and the transaction is rolled back and run
//! again (now reading, and locking, that call). A report the database refuses although the
//! checks passed, or a report that would move a call to another organization, sends the batch
//! the exact way: one report after the other, so that only that report is refused.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::facts::{fact_columns, fact_updates, PartyFacts};
use super::{
    back_off, changes_organization, is_data_error, is_foreign, is_retryable, known_from,
    log_foreign, numbers_of, resolve, stored_from, ApplyError, Outcome, Resolved, Stored, ViewRow,
    ATTEMPTS,
};
use crate::db::Sessions;
use crate::metrics;
use crate::switch_feed::report::Report;

/// Applies the reports of a batch. Answers one entry per report, in order: what applying it did,
/// or why it was refused (nothing of it is stored). A database failure fails the whole batch.
pub async fn apply_batch(
    pool: &impl Sessions,
    switch_organization: Option<i64>,
    reports: &[Report],
) -> Result<Vec<Result<Outcome, String>>, sqlx::Error> {
    let items: Vec<Item<'_>> = reports
        .iter()
        .map(|report| Item {
            switch_organization,
            report,
        })
        .collect();
    apply_items(pool, &items).await
}

/// A report and the organization its switch account serves (`None`: any).
#[derive(Clone, Copy)]
pub struct Item<'a> {
    pub switch_organization: Option<i64>,
    pub report: &'a Report,
}

/// Starts the transaction. Its statements take arrays whose sizes vary from batch to batch; their
/// plans do not depend on them, so they are planned once per connection instead of each time.
const BEGIN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";

/// Applies reports, possibly of several switch accounts, as [`apply_batch`] does.
pub async fn apply_items(
    pool: &impl Sessions,
    items: &[Item<'_>],
) -> Result<Vec<Result<Outcome, String>>, sqlx::Error> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut numbers: Vec<&str> = items.iter().flat_map(|i| numbers_of(i.report)).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let mut ids: Vec<Uuid> = items.iter().map(|i| i.report.id).collect();
    ids.sort_unstable();
    ids.dedup();

    for attempt in 1..=ATTEMPTS {
        let tx = pool.begin_with(BEGIN).await?;
        match attempt_batch(tx, pool.prepared(), &numbers, &ids, items).await {
            Ok(Attempt::Done(answers)) => return Ok(answers),
            Ok(Attempt::OneByOne) => {
                tracing::debug!("switch batch moves a call to another organization; one by one");
                break;
            }
            Ok(Attempt::Raced) => {
                tracing::debug!(attempt, "switch batch raced with another writer; retrying");
            }
            Err(e) if is_retryable(&e) => {
                tracing::debug!(error = %e, attempt, "switch batch conflicted; retrying");
                back_off(attempt).await;
            }
            Err(e) if is_data_error(&e) => {
                tracing::debug!(error = %e, "switch batch refused by the database; one by one");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    one_by_one(pool, items).await
}

/// Applies the reports one after the other, as separate requests would.
async fn one_by_one(
    pool: &impl Sessions,
    items: &[Item<'_>],
) -> Result<Vec<Result<Outcome, String>>, sqlx::Error> {
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        match super::apply(pool, item.switch_organization, item.report).await {
            Ok(outcome) => answers.push(Ok(outcome)),
            Err(ApplyError::Invalid(message)) => answers.push(Err(message)),
            Err(ApplyError::Database(e)) => return Err(e),
        }
    }
    Ok(answers)
}

enum Attempt {
    /// Written and committed.
    Done(Vec<Result<Outcome, String>>),
    /// A call was created by someone else after it was read: rolled back.
    Raced,
    /// Some report needs the exact way: rolled back.
    OneByOne,
}

/// A call's state after the batch's reports, to be written: the last applied report, resolved,
/// with the views of the last applied report that carried views.
struct Write<'a> {
    call: Resolved<'a>,
    /// Whether the call is stored already (the upsert then updates it).
    existed: bool,
}

/// A call of the batch while its reports are played.
struct Call<'a> {
    stored: Option<Stored>,
    write: Option<Write<'a>>,
    /// For a call of another organization than a report's switch serves (see [`is_foreign`]):
    /// the call as that switch's reports would have made it had the id been free. Never written.
    shadow: Option<Stored>,
}

async fn attempt_batch(
    mut tx: Transaction<'_, Postgres>,
    prepared: bool,
    numbers: &[&str],
    ids: &[Uuid],
    items: &[Item<'_>],
) -> Result<Attempt, sqlx::Error> {
    type Row = (
        Option<Uuid>,
        i64,
        i64,
        String,
        Option<DateTime<Utc>>,
        Option<i64>,
    );
    let rows: Vec<Row> = metrics::statement(
        "feed_batch_read",
        sqlx::query_as(READ_AND_LOCK)
            .persistent(prepared)
            .bind(ids)
            .bind(numbers)
            .fetch_all(&mut *tx),
    )
    .await?;
    let mut calls: HashMap<Uuid, Call<'_>> = ids
        .iter()
        .map(|id| {
            let call = Call {
                stored: None,
                write: None,
                shadow: None,
            };
            (*id, call)
        })
        .collect();
    let mut extensions = Vec::new();
    for (id, org, ext_id, ext, published, sequence) in rows {
        match (id, published, sequence) {
            (Some(id), Some(published), Some(sequence)) => {
                if let Some(call) = calls.get_mut(&id) {
                    call.stored = Some(stored_from((org, ext_id, ext, published, sequence)));
                }
            }
            _ => extensions.push((ext, ext_id, org)),
        }
    }
    let known = known_from(extensions);

    // Play the reports in order.
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        let report = item.report;
        let call = calls.get_mut(&report.id).expect("every id was listed");
        if call
            .stored
            .as_ref()
            .is_some_and(|s| is_foreign(s, item.switch_organization))
        {
            answers.push(play_on_shadow(&known, &mut call.shadow, item));
            continue;
        }
        let resolved = match resolve(
            &known,
            call.stored.as_ref(),
            item.switch_organization,
            report,
        ) {
            Ok(resolved) => resolved,
            Err(message) => {
                answers.push(Err(message));
                continue;
            }
        };
        let outcome = match &call.stored {
            None => Outcome::Created,
            Some(s) if report.sequence > s.sequence => {
                if changes_organization(&resolved, Some(s)) {
                    return Ok(Attempt::OneByOne);
                }
                Outcome::Updated
            }
            Some(_) => {
                answers.push(Ok(Outcome::Ignored));
                continue;
            }
        };
        call.stored = Some(resolved.stored());
        let mut resolved = resolved;
        let existed = match call.write.take() {
            Some(earlier) => {
                resolved.views = resolved.views.or(earlier.call.views);
                earlier.existed
            }
            None => outcome == Outcome::Updated,
        };
        call.write = Some(Write {
            call: resolved,
            existed,
        });
        answers.push(Ok(outcome));
    }

    let writes: BTreeMap<Uuid, Write<'_>> = calls
        .into_iter()
        .filter_map(|(id, call)| call.write.map(|w| (id, w)))
        .collect();
    if writes.is_empty() {
        tx.commit().await?;
        return Ok(Attempt::Done(answers));
    }
    if !write(&mut tx, prepared, &writes).await? {
        tx.rollback().await?;
        return Ok(Attempt::Raced);
    }
    tx.commit().await?;
    Ok(Attempt::Done(answers))
}

/// Answers a report of a call that is foreign to its switch as for an unknown id, playing it over
/// the shadow that the switch's earlier reports in the batch made.
fn play_on_shadow(
    known: &super::Known,
    shadow: &mut Option<Stored>,
    item: &Item<'_>,
) -> Result<Outcome, String> {
    let resolved = resolve(
        known,
        shadow.as_ref(),
        item.switch_organization,
        item.report,
    )?;
    log_foreign(item.report, item.switch_organization);
    let outcome = match shadow {
        None => Outcome::Created,
        Some(s) if item.report.sequence > s.sequence => Outcome::Updated,
        Some(_) => return Ok(Outcome::Ignored),
    };
    *shadow = Some(resolved.stored());
    Ok(outcome)
}

/// The batch's stored calls, locked in id order, and the extensions its reports name.
pub(super) const READ_AND_LOCK: &str = "
WITH locked AS (
    SELECT id, organization_id, extension_id, extension, published, sequence
    FROM phone_calls WHERE id = ANY($1) ORDER BY id FOR UPDATE
)
SELECT id, organization_id, extension_id, extension, published, sequence FROM locked
UNION ALL
SELECT NULL, organization_id, id, number, NULL, NULL FROM extensions WHERE number = ANY($2)";

/// Upserts the calls (in id order) and replaces the views of those whose applied reports carried
/// views: upserts the new ones and deletes those no longer reported. Answers whether every call
/// was created or updated as planned; when not, the caller rolls back.
async fn write(
    tx: &mut Transaction<'_, Postgres>,
    prepared: bool,
    writes: &BTreeMap<Uuid, Write<'_>>,
) -> Result<bool, sqlx::Error> {
    let n = writes.len();
    let mut ids = Vec::with_capacity(n);
    let mut organizations = Vec::with_capacity(n);
    let mut extension_ids = Vec::with_capacity(n);
    let mut extensions = Vec::with_capacity(n);
    let mut nonces = Vec::with_capacity(n);
    let mut published = Vec::with_capacity(n);
    let mut answered = Vec::with_capacity(n);
    let mut ended = Vec::with_capacity(n);
    let mut sequences = Vec::with_capacity(n);
    let mut existed = Vec::with_capacity(n);
    let mut with_views = Vec::with_capacity(n);
    let mut facts = Vec::with_capacity(n);
    let mut views = Vec::new();
    let mut replaced = Vec::new();
    for (id, Write { call, existed: was }) in writes {
        let report = call.report;
        ids.push(*id);
        organizations.push(call.organization_id);
        extension_ids.push(call.extension_id);
        extensions.push(call.extension.as_str());
        nonces.push(report.nonce.as_deref());
        published.push(call.published);
        answered.push(report.answered);
        ended.push(report.ended);
        sequences.push(report.sequence);
        existed.push(*was);
        with_views.push(call.views.is_some());
        facts.push(BatchFacts {
            id: *id,
            facts: call.party_facts(),
        });
        let Some(rows) = &call.views else { continue };
        if *was {
            replaced.push(*id);
        }
        views.extend(rows.iter().map(|view| BatchView {
            phone_call_id: *id,
            organization_id: call.organization_id,
            call_live: report.ended.is_none(),
            view,
        }));
    }
    let rows = sqlx::query_as::<_, (Uuid, bool)>(WRITE)
        .persistent(prepared)
        .bind(&ids)
        .bind(&organizations)
        .bind(&extension_ids)
        .bind(&extensions)
        .bind(&nonces)
        .bind(&published)
        .bind(&answered)
        .bind(&ended)
        .bind(&sequences)
        .bind(sqlx::types::Json(&views))
        .bind(&replaced)
        .bind(&existed)
        .bind(&with_views)
        .bind(sqlx::types::Json(&facts));
    let rows = metrics::statement("feed_batch_write", rows.fetch_all(&mut **tx)).await?;
    let as_planned = rows.len() == n
        && rows
            .iter()
            .all(|(id, created)| writes.get(id).is_some_and(|w| *created != w.existed));
    Ok(as_planned)
}

/// The party figures of one of the batch's calls, as `jsonb_to_recordset` reads them.
#[derive(Serialize)]
struct BatchFacts<'a> {
    id: Uuid,
    #[serde(flatten)]
    facts: PartyFacts<'a>,
}

/// A view of one of the batch's calls, as `jsonb_to_recordset` reads it.
#[derive(Serialize)]
struct BatchView<'a> {
    phone_call_id: Uuid,
    organization_id: i64,
    call_live: bool,
    #[serde(flatten)]
    view: &'a ViewRow<'a>,
}

/// The sequence guard, as for a single report, for the calls that were stored when the batch
/// read (and locked) them. The others are inserted with `DO NOTHING`: if someone created one
/// since, it is left alone (or, when the race shows on the table's other unique key, the
/// statement fails and the batch runs again, see [`super::is_insert_race`]) rather than waited
/// for, which could deadlock with a batch that locked it meanwhile. Views change only for the
/// calls written (they read `fresh`, `renewed` or `up`): a new call's views are plainly inserted
/// (no view can exist for a call that did not), a stored call's views are upserted, and the
/// views upserted and the views deleted are disjoint, so the statement never touches a row
/// twice. Each call's party figures ([`super::facts`], `$14`) are those of its views in the
/// batch; a stored call whose applied reports carried no views (`with_views`, `$13`) keeps its
/// own (`renewed_keeping`).
pub(super) const WRITE: &str = concat!(
    "
WITH planned AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[],
                         $7::timestamptz[], $8::timestamptz[], $9::bigint[], $12::boolean[], $13::boolean[])
        AS u(id, organization_id, extension_id, extension, nonce, published, answered, ended, sequence, existed, with_views)
),
facts AS (
    SELECT * FROM jsonb_to_recordset($14) AS f(id uuid, parties smallint, first_ringing timestamptz,
        charged_flow smallint, charged_disposition smallint, charged_destination text[],
        was_parked boolean, was_on_hold boolean, was_recorded boolean)
),
fresh AS (
    INSERT INTO phone_calls AS c (id, organization_id, extension_id, extension, nonce, published, answered, ended, updated, sequence,
        ", fact_columns!(), ")
    SELECT p.id, p.organization_id, p.extension_id, p.extension, p.nonce, p.published, p.answered, p.ended, now(), p.sequence,
        ", fact_columns!(), "
    FROM planned p JOIN facts USING (id) WHERE NOT p.existed
    ON CONFLICT (id) DO NOTHING
    RETURNING id, (xmax = 0) AS created
),
renewed AS (
    INSERT INTO phone_calls AS c (id, organization_id, extension_id, extension, nonce, published, answered, ended, updated, sequence,
        ", fact_columns!(), ")
    SELECT p.id, p.organization_id, p.extension_id, p.extension, p.nonce, p.published, p.answered, p.ended, now(), p.sequence,
        ", fact_columns!(), "
    FROM planned p JOIN facts USING (id) WHERE p.existed AND p.with_views
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
        ", fact_updates!("false"), "
    WHERE c.sequence < EXCLUDED.sequence
    RETURNING id, (xmax = 0) AS created
),
renewed_keeping AS (
    INSERT INTO phone_calls AS c (id, organization_id, extension_id, extension, nonce, published, answered, ended, updated, sequence,
        ", fact_columns!(), ")
    SELECT p.id, p.organization_id, p.extension_id, p.extension, p.nonce, p.published, p.answered, p.ended, now(), p.sequence,
        ", fact_columns!(), "
    FROM planned p JOIN facts USING (id) WHERE p.existed AND NOT p.with_views
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
        ", fact_updates!("true"), "
    WHERE c.sequence < EXCLUDED.sequence
    RETURNING id, (xmax = 0) AS created
),
up AS (
    SELECT id, created FROM fresh UNION ALL SELECT id, created FROM renewed
    UNION ALL SELECT id, created FROM renewed_keeping
),
incoming AS (
    SELECT * FROM jsonb_to_recordset($10) AS v(phone_call_id uuid, organization_id bigint, call_live boolean, view_id text, extension_id bigint, extension text, source text[], destination text[],
        flow smallint, status smallint, ringing timestamptz, caller_id text, recording timestamptz,
        answered timestamptz, parked timestamptz, parked_pos integer, parked_by text,
        on_hold timestamptz, holder smallint, disposition smallint)
),
gone AS (
    DELETE FROM phone_call_views v
    USING up
    WHERE v.phone_call_id = up.id AND up.id = ANY($11)
      AND NOT EXISTS (SELECT FROM incoming i WHERE i.phone_call_id = v.phone_call_id AND i.view_id = v.view_id)
),
added AS (
    INSERT INTO phone_call_views (phone_call_id, view_id, organization_id, call_live, extension_id, extension, source, destination,
         flow, status, ringing, caller_id, recording, answered, parked, parked_pos, parked_by, on_hold,
         holder, disposition)
    SELECT i.phone_call_id, i.view_id, i.organization_id, i.call_live, i.extension_id, i.extension, i.source,
           i.destination, i.flow, i.status, i.ringing, i.caller_id, i.recording, i.answered, i.parked,
           i.parked_pos, i.parked_by, i.on_hold, i.holder, i.disposition
    FROM incoming i JOIN fresh ON fresh.id = i.phone_call_id
),
kept AS (
    INSERT INTO phone_call_views AS v (phone_call_id, view_id, organization_id, call_live, extension_id, extension, source, destination,
         flow, status, ringing, caller_id, recording, answered, parked, parked_pos, parked_by, on_hold,
         holder, disposition)
    SELECT i.phone_call_id, i.view_id, i.organization_id, i.call_live, i.extension_id, i.extension, i.source,
           i.destination, i.flow, i.status, i.ringing, i.caller_id, i.recording, i.answered, i.parked,
           i.parked_pos, i.parked_by, i.on_hold, i.holder, i.disposition
    FROM incoming i JOIN renewed ON renewed.id = i.phone_call_id
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
)
SELECT id, created FROM up"
);
