//! The connections to PostgreSQL, and the embedded migrations.
//!
//! Three pools, so that no one kind of work can starve another: requests share
//! `DATABASE_POOL_SIZE` connections; the notification listener has a connection of its own
//! (it holds it for good); and `/readyz` checks the database over a connection of its own, so
//! that a busy request pool never reads as an unreachable database.
//!
//! All database work of requests runs on the process's main runtime ([`Database::run`]): each
//! HTTP worker has a runtime of its own that stops when the worker does, and a connection opened
//! on a stopped runtime fails for whoever uses it next.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;
use tokio::runtime::Handle;

use crate::config::Settings;

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a connection returned to the pool has to prove it still answers. A request cut by
/// its deadline may leave its connection waiting on a frozen or unreachable server: such a
/// connection is closed and replaced, never reused, and never holds its place in the pool for
/// longer than this.
pub const RELEASE_CHECK: Duration = Duration::from_secs(1);

/// How long after a cut every released connection is checked. In steady state nothing is cut and
/// no check costs the database a round trip; sqlx's own ping on release, unbounded, remains.
const CHECK_AFTER_A_CUT: Duration = Duration::from_secs(10);

/// Until when (in milliseconds since [`EPOCH`]) released connections are checked.
static CHECK_RELEASES_UNTIL: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn millis_since_epoch() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Database work was cancelled midway: check the connections released for a while.
fn note_cut() {
    let until = millis_since_epoch() + CHECK_AFTER_A_CUT.as_millis() as u64;
    CHECK_RELEASES_UNTIL.fetch_max(until, Ordering::Relaxed);
}

fn checking_releases() -> bool {
    CHECK_RELEASES_UNTIL.load(Ordering::Relaxed) > millis_since_epoch()
}

/// The request pool. Connects on first use, so that the process starts (and answers `/livez`)
/// while the database is still down.
pub fn lazy_pool(settings: &Settings) -> PgPool {
    PgPoolOptions::new()
        .max_connections(settings.pool_size)
        .acquire_timeout(settings.pool_acquire_timeout)
        .after_release(|connection, _| Box::pin(answers_within(connection, RELEASE_CHECK)))
        .connect_lazy_with(settings.connect_options())
}

/// A pool of one connection, for the listener or the readiness check.
pub fn single_connection_pool(settings: &Settings, acquire_timeout: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(acquire_timeout)
        .after_release(|connection, _| Box::pin(answers_within(connection, RELEASE_CHECK)))
        .connect_lazy_with(settings.connect_options())
}

/// Keeps a released connection only if it answers a ping within `limit` (while cuts are recent;
/// see [`CHECK_AFTER_A_CUT`]). sqlx pings it once more afterwards, unbounded; by then it has just
/// answered.
async fn answers_within(
    connection: &mut PgConnection,
    limit: Duration,
) -> Result<bool, sqlx::Error> {
    if !checking_releases() {
        return Ok(true);
    }
    match tokio::time::timeout(limit, connection.ping()).await {
        Ok(Ok(())) => Ok(true),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            tracing::warn!("a database connection did not answer when released; replacing it");
            Ok(false)
        }
    }
}

/// The request pool, and the runtime its connections live on.
#[derive(Clone)]
pub struct Database {
    pub pool: PgPool,
    runtime: Handle,
}

impl Database {
    /// The pool, used from the runtime that is current now (the process's main one).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            runtime: Handle::current(),
        }
    }

    /// Runs `work` on the main runtime and waits for it. If the waiting request is dropped (its
    /// deadline passed, or its client went away), the work is cancelled too.
    pub async fn run<F, T, E>(&self, work: impl FnOnce(PgPool) -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let task = self.runtime.spawn(work(self.pool.clone()));
        let mut cancel_if_dropped = AbortOnDrop(Some(task.abort_handle()));
        let outcome = task.await;
        cancel_if_dropped.0 = None;
        match outcome {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down.
            Err(_) => Err(sqlx::Error::PoolClosed.into()),
        }
    }
}

impl Database {
    /// Starts `work` on the main runtime, not waiting for it.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(work);
    }
}

struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            note_cut();
        }
    }
}

/// Applies pending migrations. Concurrent callers are serialized by sqlx's advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
