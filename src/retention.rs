//! Retention of stored calls (issue 11): deleting old history (`phonecalls history prune`) and
//! ending calls a switch stopped reporting (`phonecalls calls end-stale`). Besides the switch
//! feed (`switch_feed::repo`), this is the only code that changes stored calls.
//!
//! Both work in batches, each its own short transaction that skips rows another transaction
//! holds (the feed writing a call), so they can run while the feed and the list are under load
//! and can be stopped and run again at any point: what is left is exactly what a new run does.
//!
//! They run on a session of their own ([`maintenance_session`]), not as the service's requests
//! do: each batch is planned for its cut-off and size, and bounded by [`BATCH_TIMEOUT`] rather
//! than by the requests' statement timeout.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Connection, PgConnection, PgPool};

use crate::accounts::{invalid, AdminError};

/// Largest batch either command accepts.
pub const MAX_BATCH: u32 = 100_000;

/// The most one batch may take. A batch of 1000 calls takes about half a second at ten million
/// stored calls (BENCHMARKS.md), a few seconds when its rows are not in memory; the requests'
/// `DATABASE_STATEMENT_TIMEOUT_MS` (5 s by default) once cancelled a prune's first batch.
pub const BATCH_TIMEOUT: &str = "60s";

/// A connection of its own for a maintenance command, closed when the command ends.
/// Its statements get custom plans: the service's sessions force generic ones, which cannot
/// know that `LIMIT $2` is a thousand rows, and planned a prune's batch as a hash join over every
/// matching call of the table (4.4 s a batch at ten million calls, against 0.45 s).
///
/// The command's pool reaches PostgreSQL directly (`db::direct_pool`), with the service's
/// session settings in its startup packet. The command's own are added after them, and win, so
/// that not even its first statement runs under the requests' timeout (a `SET` sent first could
/// itself be cancelled by a timeout of a few milliseconds).
async fn maintenance_session(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let options = (*pool.connect_options()).clone().options([
        ("plan_cache_mode", "force_custom_plan"),
        ("statement_timeout", BATCH_TIMEOUT),
    ]);
    // Bounded as taking a connection from the pool would be.
    let within = pool.options().get_acquire_timeout();
    tokio::time::timeout(within, PgConnection::connect_with(&options))
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

/// Parses `--ended-before`: an RFC 3339 instant (`2026-01-01T00:00:00Z`) or a day
/// (`2026-01-01`, midnight UTC).
pub fn parse_instant(raw: &str) -> Result<DateTime<Utc>, AdminError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    invalid(format!(
        "{raw:?} is not a date: give 2026-01-01 (midnight UTC) or 2026-01-01T00:00:00Z"
    ))
}

/// Parses a duration of the command line: a whole number followed by `s`, `m`, `h` or `d`
/// (`60s`, `90m`, `6h`, `2d`), at least one second.
pub fn parse_duration_any(raw: &str) -> Result<Duration, AdminError> {
    let bad = || {
        AdminError::Invalid(format!(
            "{raw:?} is not a duration: give a whole number and s, m, h or d, such as 90m or 6h"
        ))
    };
    let unit_at = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = raw.split_at(unit_at);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    if seconds == 0 || seconds > 3650 * 86_400 {
        return invalid(format!("{raw:?} must be from 1s to 3650d"));
    }
    Ok(Duration::from_secs(seconds))
}

/// Parses `--not-updated-for` ([`parse_duration_any`]): at least one minute, since a call
/// between two reports of a busy switch is not stale.
pub fn parse_duration(raw: &str) -> Result<Duration, AdminError> {
    let age = parse_duration_any(raw)?;
    if age < Duration::from_secs(60) {
        return invalid("--not-updated-for must be at least one minute (1m)");
    }
    Ok(age)
}

/// Deletes ended calls that ended before `before`, with their views (the views' foreign key
/// cascades), `batch` calls per transaction, oldest first, until none is left. Returns how many
/// calls were deleted. Refuses an instant in the future: ended calls are all before now.
pub async fn prune_history(
    pool: &PgPool,
    before: DateTime<Utc>,
    batch: u32,
) -> Result<u64, AdminError> {
    if !(1..=MAX_BATCH).contains(&batch) {
        return invalid(format!("--batch must be from 1 to {MAX_BATCH}"));
    }
    if before > Utc::now() {
        return invalid("--ended-before must not be in the future");
    }
    let mut connection = maintenance_session(pool).await?;
    let mut deleted = 0;
    loop {
        // Oldest first through the ended calls' index; rows the feed holds are left for the
        // next batch (or the next run) rather than waited for.
        let done = sqlx::query(
            "DELETE FROM phone_calls c
             WHERE c.id IN (SELECT id FROM phone_calls
                            WHERE ended IS NOT NULL AND ended < $1
                            ORDER BY ended
                            LIMIT $2
                            FOR UPDATE SKIP LOCKED)
               AND c.ended IS NOT NULL AND c.ended < $1",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&mut connection)
        .await?
        .rows_affected();
        deleted += done;
        if done == 0 {
            connection.close().await.ok();
            return Ok(deleted);
        }
    }
}

/// Ends live calls whose last change is older than `not_updated_for`: `ended` becomes the last
/// time the call was heard of (its `updated`, or `published` if that is later), `updated` now.
/// The sequence stays, so a report the switch sends later with a higher sequence still
/// applies, and can reopen or correct the call. Returns how many calls were ended.
pub async fn end_stale_calls(
    pool: &PgPool,
    not_updated_for: Duration,
    batch: u32,
) -> Result<u64, AdminError> {
    if !(1..=MAX_BATCH).contains(&batch) {
        return invalid(format!("--batch must be from 1 to {MAX_BATCH}"));
    }
    let seconds = i64::try_from(not_updated_for.as_secs()).unwrap_or(i64::MAX);
    let mut connection = maintenance_session(pool).await?;
    let mut ended = 0;
    loop {
        // The live calls by last update (phone_calls_live_updated): the stale ones come first.
        let done = sqlx::query(
            "UPDATE phone_calls c
             SET ended = greatest(c.updated, c.published), updated = now()
             WHERE c.id IN (SELECT id FROM phone_calls
                            WHERE ended IS NULL AND updated < now() - make_interval(secs => $1)
                            ORDER BY updated
                            LIMIT $2
                            FOR UPDATE SKIP LOCKED)
               AND c.ended IS NULL AND c.updated < now() - make_interval(secs => $1)",
        )
        .bind(seconds as f64)
        .bind(i64::from(batch))
        .execute(&mut connection)
        .await?
        .rows_affected();
        ended += done;
        if done == 0 {
            connection.close().await.ok();
            return Ok(ended);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_days_or_rfc_3339() {
        assert_eq!(
            parse_instant("2026-01-02").unwrap().to_rfc3339(),
            "2026-01-02T00:00:00+00:00"
        );
        assert_eq!(
            parse_instant("2026-01-02T03:04:05+02:00")
                .unwrap()
                .to_rfc3339(),
            "2026-01-02T01:04:05+00:00"
        );
        for bad in ["", "yesterday", "2026-13-01", "2026-01-02 03:04"] {
            assert!(parse_instant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_have_a_unit_and_a_floor() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(21_600));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        for bad in [
            "",
            "6",
            "h",
            "59s",
            "-1h",
            "1.5h",
            "6 h",
            "6w",
            "99999999999999999999d",
            "4000d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
