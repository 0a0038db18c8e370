//! The read replica (`DATABASE_READ_URL`): list statements go to it while it is at most
//! `READ_MAX_LAG_MS` behind the primary, and to the primary otherwise. Tokens and path
//! resolution always read the primary, so that a revocation is seen at once.
//!
//! How far behind it is, is measured by WAL positions, not by clocks: at time `t` the primary
//! has flushed its WAL up to `P` (`pg_current_wal_flush_lsn()`, as far as a standby can be
//! sent); once the replica has replayed up to `P` (`pg_last_wal_replay_lsn()`), it holds
//! everything committed before `t`. The watcher keeps
//! the recent (time, position) pairs of the primary, and after each reading of the replica's
//! replay position, the replica is known to be as fresh as the latest time whose position it
//! has replayed. The lag is how long ago that was. This is right when the primary is idle too
//! (nothing new to replay: the replica is as fresh as the last reading), where the time of the
//! last replayed transaction (`pg_last_xact_replay_timestamp()`) would grow without end. If the
//! watcher cannot read either server, nothing new is learnt and the lag grows by itself, so the
//! lists go back to the primary.
//!
//! Commits acknowledged before their WAL is flushed (`synchronous_commit = off` on the primary)
//! may be missing from the replica for up to three times `wal_writer_delay` more than this says.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Pool;
use crate::metrics;

/// The read replica's pool and what is known of its freshness.
#[derive(Clone)]
pub struct Replica {
    pub pool: Pool,
    max_lag: Duration,
    /// Milliseconds since `started` up to which the replica holds everything the primary
    /// committed; 0 while nothing is known.
    fresh_as_of: Arc<AtomicU64>,
    started: Instant,
}

/// How often the watcher reads the two servers: four times within the bound, but at least four
/// and at most twenty times a second.
fn interval(max_lag: Duration) -> Duration {
    (max_lag / 4).clamp(Duration::from_millis(50), Duration::from_millis(250))
}

/// How long the primary's positions are kept: a replica further behind than this is as far
/// behind as the oldest one kept, which is far beyond any bound worth setting.
const HISTORY: Duration = Duration::from_secs(600);

impl Replica {
    pub fn new(pool: Pool, max_lag: Duration) -> Self {
        Self {
            pool,
            max_lag,
            fresh_as_of: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        // Never 0, which means "nothing known".
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// How far behind the primary the replica may be now; `None` while nothing is known.
    pub fn lag(&self) -> Option<Duration> {
        match self.fresh_as_of.load(Ordering::Acquire) {
            0 => None,
            as_of => Some(Duration::from_millis(self.now_ms().saturating_sub(as_of))),
        }
    }

    /// Whether lists may read the replica now.
    pub fn is_fresh(&self) -> bool {
        self.lag().is_some_and(|lag| lag <= self.max_lag)
    }

    /// Reads the two servers' positions for as long as the process runs (see the module's
    /// documentation).
    pub async fn watch(self, primary: Pool) {
        let mut history: VecDeque<(u64, i64)> = VecDeque::new();
        let mut every = tokio::time::interval(interval(self.max_lag));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            every.tick().await;
            let at = self.now_ms();
            let written = match position(&primary, "pg_current_wal_flush_lsn()").await {
                Ok(Some(p)) => p,
                Ok(None) | Err(_) => continue,
            };
            history.push_back((at, written));
            while history.len() > 1
                && history
                    .front()
                    .is_some_and(|(t, _)| at.saturating_sub(*t) > HISTORY.as_millis() as u64)
            {
                history.pop_front();
            }
            let replayed = match position(&self.pool, "pg_last_wal_replay_lsn()").await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    if !warned {
                        tracing::warn!("DATABASE_READ_URL is not a standby in recovery; lists stay on the primary");
                        warned = true;
                    }
                    continue;
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, "the read replica cannot be reached; lists stay on the primary");
                        warned = true;
                    }
                    continue;
                }
            };
            warned = false;
            // The latest time whose position the replica has replayed.
            if let Some((as_of, _)) = history.iter().rev().find(|(_, p)| *p <= replayed) {
                self.fresh_as_of.fetch_max(*as_of, Ordering::AcqRel);
            }
            if let Some(lag) = self.lag() {
                metrics::replica_lag(lag);
            }
        }
    }
}

/// A write position of `pool`'s server as a number of bytes, from `function` (NULL on a server
/// that is not in the state the function reports on).
async fn position(pool: &Pool, function: &str) -> Result<Option<i64>, sqlx::Error> {
    let mut session = pool.session().await?;
    let sql = format!("SELECT ({function} - '0/0'::pg_lsn)::bigint");
    let value: Option<i64> = sqlx::query_scalar(&sql)
        .persistent(pool.prepared())
        .fetch_one(&mut *session)
        .await?;
    session.end().await?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watcher_reads_four_times_within_the_bound_but_not_too_often() {
        assert_eq!(
            interval(Duration::from_millis(1000)),
            Duration::from_millis(250)
        );
        assert_eq!(
            interval(Duration::from_millis(400)),
            Duration::from_millis(100)
        );
        assert_eq!(
            interval(Duration::from_millis(1)),
            Duration::from_millis(50)
        );
        assert_eq!(
            interval(Duration::from_secs(60)),
            Duration::from_millis(250)
        );
    }
}
