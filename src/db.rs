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

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};
use tokio::runtime::Handle;

use crate::config::{Pooler, Settings};
use crate::metrics;

pub mod replica;
pub use replica::Replica;

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
    pool_of(
        settings.connect_options(),
        settings.pool_size,
        settings.pool_acquire_timeout,
    )
}

/// A pool of one connection, for the readiness check.
pub fn single_connection_pool(settings: &Settings, acquire_timeout: Duration) -> PgPool {
    pool_of(settings.connect_options(), 1, acquire_timeout)
}

/// A pool of sessions straight to PostgreSQL (`DATABASE_LISTEN_URL`, else `DATABASE_URL`),
/// never through a pooler in transaction mode: for migrations, which hold an advisory lock for
/// the session, and for the administration commands, which set session settings of their own.
pub fn direct_pool(settings: &Settings, size: u32) -> PgPool {
    pool_of(
        settings.listen_connect_options(),
        size,
        settings.pool_acquire_timeout,
    )
}

/// The read replica's pool, as large as the request pool, when `DATABASE_READ_URL` is set.
pub fn replica_pool(settings: &Settings) -> Option<PgPool> {
    settings
        .read_connect_options()
        .map(|options| pool_of(options, settings.pool_size, settings.pool_acquire_timeout))
}

fn pool_of(options: PgConnectOptions, size: u32, acquire_timeout: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(acquire_timeout)
        .after_release(|connection, _| Box::pin(answers_within(connection, RELEASE_CHECK)))
        .connect_lazy_with(options)
}

/// One server's pool of connections, and how a unit of database work runs on it: every
/// request's statements go through [`Pool::session`] or [`Pool::begin_with`], and are made with
/// [`Pool::prepared`].
///
/// Directly connected (`DATABASE_POOLER=none`), a session is a connection, whose settings came
/// in its startup packet, and statements are prepared by name once per connection. Behind a
/// pooler in transaction mode, a server session serves one transaction of one client, then
/// another's: a session is then a transaction that starts by setting the session settings
/// (`SET LOCAL`, one round trip with the `BEGIN`), and statements are unnamed, since a statement
/// prepared by name on one server session would be unknown, or another client's, on the next.
#[derive(Clone)]
pub struct Pool {
    inner: PgPool,
    /// Behind a pooler: the `SET LOCAL`s that follow each `BEGIN`.
    settings: Option<Arc<str>>,
    /// The pool's name in the metrics.
    name: &'static str,
}

impl Pool {
    /// The connections themselves, for what is not a request's work: closing them, counting
    /// them, migrating.
    pub fn connections(&self) -> &PgPool {
        &self.inner
    }

    pub fn new(inner: PgPool, settings: &Settings, name: &'static str) -> Self {
        let per_transaction = (settings.pooler == Pooler::Transaction).then(|| {
            settings
                .session_settings()
                .iter()
                .map(|(name, value)| format!("; SET LOCAL {name} = '{value}'"))
                .collect::<String>()
                .into()
        });
        Self {
            inner,
            settings: per_transaction,
            name,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether statements may be prepared by name and kept on the connection (pass it to
    /// `persistent`): not behind a pooler in transaction mode.
    pub fn prepared(&self) -> bool {
        self.settings.is_none()
    }

    /// A session for one unit of work; [`Session::end`] it when done (dropped, its work is
    /// rolled back behind a pooler).
    pub async fn session(&self) -> Result<Session, sqlx::Error> {
        let connection = metrics::acquire(self.name, &self.inner).await?;
        Ok(Session(match &self.settings {
            None => Kind::Connection(connection),
            Some(settings) => Kind::Transaction(
                Transaction::begin(connection, Some(format!("BEGIN{settings}").into())).await?,
            ),
        }))
    }

    /// A transaction opened by `begin` (`BEGIN`, possibly followed by `SET LOCAL`s of its own),
    /// with the session settings behind a pooler.
    pub async fn begin_with(
        &self,
        begin: &'static str,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let connection = metrics::acquire(self.name, &self.inner).await?;
        let statement: Cow<'static, str> = match &self.settings {
            None => begin.into(),
            Some(settings) => format!("{begin}{settings}").into(),
        };
        Transaction::begin(connection, Some(statement)).await
    }
}

/// Where units of database work get their sessions: a [`Pool`] of the service, or a plain
/// `PgPool` (administration commands and tests, connected straight to PostgreSQL with the
/// session settings in the startup packet).
pub trait Sessions: Sync {
    /// A session for one unit of work; [`Session::end`] it when done.
    fn session(&self) -> impl Future<Output = Result<Session, sqlx::Error>> + Send;

    /// A transaction opened by `begin` (see [`Pool::begin_with`]).
    fn begin_with(
        &self,
        begin: &'static str,
    ) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send;

    /// Whether statements may be prepared by name (see [`Pool::prepared`]).
    fn prepared(&self) -> bool;
}

impl Sessions for Pool {
    fn session(&self) -> impl Future<Output = Result<Session, sqlx::Error>> + Send {
        Pool::session(self)
    }

    fn begin_with(
        &self,
        begin: &'static str,
    ) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        Pool::begin_with(self, begin)
    }

    fn prepared(&self) -> bool {
        Pool::prepared(self)
    }
}

impl Sessions for PgPool {
    async fn session(&self) -> Result<Session, sqlx::Error> {
        Ok(Session(Kind::Connection(
            metrics::acquire("direct", self).await?,
        )))
    }

    async fn begin_with(
        &self,
        begin: &'static str,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let connection = metrics::acquire("direct", self).await?;
        Transaction::begin(connection, Some(begin.into())).await
    }

    fn prepared(&self) -> bool {
        true
    }
}

/// A connection, or a transaction, for one unit of work (see [`Pool`]).
pub struct Session(Kind);

enum Kind {
    Connection(PoolConnection<Postgres>),
    Transaction(Transaction<'static, Postgres>),
}

impl std::ops::Deref for Session {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match &self.0 {
            Kind::Connection(c) => c,
            Kind::Transaction(t) => t,
        }
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match &mut self.0 {
            Kind::Connection(c) => c,
            Kind::Transaction(t) => t,
        }
    }
}

impl Session {
    /// Ends the unit of work: commits it behind a pooler.
    pub async fn end(self) -> Result<(), sqlx::Error> {
        match self.0 {
            Kind::Connection(_) => Ok(()),
            Kind::Transaction(t) => t.commit().await,
        }
    }
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

/// The request pool, the read replica's when there is one, and the runtime their connections
/// live on.
#[derive(Clone)]
pub struct Database {
    pub pool: Pool,
    replica: Option<Replica>,
    runtime: Handle,
}

impl Database {
    /// The pool, used from the runtime that is current now (the process's main one).
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            replica: None,
            runtime: Handle::current(),
        }
    }

    /// Sends list statements to `replica` while it is fresh enough (see [`replica`]).
    pub fn with_replica(mut self, replica: Replica) -> Self {
        self.replica = Some(replica);
        self
    }

    pub fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }

    /// Runs `work` on the main runtime and waits for it. If the waiting request is dropped (its
    /// deadline passed, or its client went away), the work is cancelled too.
    pub async fn run<F, T, E>(&self, work: impl FnOnce(Pool) -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        self.run_on(self.pool.clone(), work).await
    }

    /// Runs `work`, which only reads what lists show, on the replica while it is at most
    /// `READ_MAX_LAG_MS` behind the primary, on the primary otherwise.
    pub async fn run_read<F, T, E>(&self, work: impl FnOnce(Pool) -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let pool = match &self.replica {
            Some(replica) if replica.is_fresh() => replica.pool.clone(),
            _ => self.pool.clone(),
        };
        metrics::read_on(pool.name());
        self.run_on(pool, work).await
    }

    async fn run_on<F, T, E>(&self, pool: Pool, work: impl FnOnce(Pool) -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let task = self.runtime.spawn(work(pool));
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

/// Whether a database error means "try again later" rather than a bug: the server cannot be
/// reached, the pool is exhausted or closed, or a statement was cancelled by its timeout.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 57014 query_canceled (statement_timeout), 57P0x shutdown, 08xxx connection
            // exceptions, 53xxx insufficient resources (too many connections).
            code == "57014"
                || code.starts_with("57P")
                || code.starts_with("08")
                || code.starts_with("53")
        }),
        _ => false,
    }
}

/// Applies pending migrations. Concurrent callers are serialized by sqlx's advisory lock.
///
/// They run on a connection taken out of the pool, without the service's statement timeout: on
/// a large database a migration rewrites a table or builds an index for minutes (migration 0013
/// at ten million calls, BENCHMARKS.md), which a timeout made for requests would cancel on every
/// start. The connection is closed afterwards, so that no request ever runs without the timeout.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut connection = pool.acquire().await?.detach();
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut connection)
        .await?;
    let result = MIGRATOR.run(&mut connection).await;
    connection.close().await.ok();
    result
}

#[cfg(test)]
mod tests {
    use super::MIGRATOR;

    /// Every released migration: its version and the SHA-384 of its SQL, as sqlx records them in
    /// `_sqlx_migrations`. A released migration is never edited nor renumbered (a database that
    /// applied it would refuse to start); a change of schema is a new migration, added here.
    const RELEASED: &[(i64, &str)] = &[
        (1, "fb5a284d48f8cf8aa388de6225bee4f235b4a5188a487510edb7e28989c23548ad3e05cae9b84c41ab2d809d3c6f5ad4"),
        (2, "c5f477eea9d0817f2105769ae6a0fefcb4196d3111aef41469a41b21507fa3ee440b4a98146bd191e2165a3c3bcd0ae9"),
        (3, "8f0a488df8493bc3607287b931346f9ada1c70ba630554f1f9ff385a9e5dbae63abb8f1ce96ab6ea909418a6b3dc5272"),
        (4, "32e4857a7bcd37d9cb1257796c585ce11fe38411a8e606008aed24c8f69f58d3bf8db700ceb609a2ad7f6c0358bc7c87"),
        (5, "5f256c7f0683ae66972988e0fcba90ca4e91e66ad32a6cbb0a5a39e36f5ed5595ae3ceb6fe032e7778c70b7aee0d28eb"),
        (6, "33f197996535233a861de2d8a51ab0e26e80f1163e2b7ea837e0ed54877a7de55ef08c3417140b9c2a0055140f5ff345"),
        (7, "1fb7960d8a681f36dad8f73741ebf4e31691193323b0e3c78baa5de541bf587aa9be34b900caad4d1e4ca27f2eeacfce"),
        (8, "2ee10d3a1e056b4eac72940660bc91675607ac2d7aa787e4d1692eaf498827c9ad2cc07a6f335046dee2621c645062e4"),
        (9, "c44b6bede0e7f39955244ff80bdc636c34e78c51ef4cebf4532c351a94fa1be327e576343ef6c7a8c1ac581d41a9dc0e"),
        (10, "cc43ec3f768c807ceb66a57bb3119e5d49ea922c39684a9aa658a929fb6d5e216abfdb6a213089560e4e07f10c38d6d7"),
        (11, "81872aaea5437ddaf198a5dbffbbc40d9bd8a0531c8fe5f202180a9ab6e7ab822e507f15e4db11e2bd3eaa6de27901e5"),
        (12, "a9b566ea50d19ebfb2deaa3207d11023eca4249ba60b79b2392466b870e19c01e43319c9ea9a70cfbef30028ffc9fa41"),
        (13, "c3e942e03c7c77e88d1cc91530278c7e85367b284404a1dcf76b489f9e06e6b87828482e193792ad201e86ce1d70b7a3"),
        (14, "3ff8176bf3da813071f51cb9757ddd45d0b71d0805833d6ccfc471619f055c26e3b9610b09e4886b8cd8c04ac1cdc80d"),
        (15, "534beef8911a0de6e620e1b7a6e4dc37362eed24e09d44efaf4f10ffb8bb711b746eea5f5628d879004519fe05c01a35"),
    ];

    #[test]
    fn released_migrations_are_never_edited_nor_renumbered() {
        let embedded: Vec<(i64, String)> = MIGRATOR
            .iter()
            .map(|m| (m.version, hex::encode(&m.checksum)))
            .collect();
        for (i, (version, checksum)) in RELEASED.iter().enumerate() {
            let Some((found, sum)) = embedded.get(i) else {
                panic!("released migration {version} is gone");
            };
            assert_eq!(found, version, "migrations were renumbered");
            assert_eq!(
                sum, checksum,
                "migration {version} was edited after its release; add a new migration instead"
            );
        }
        if let Some((version, checksum)) = embedded.get(RELEASED.len()) {
            panic!("migration {version} is new: pin it in RELEASED as ({version}, \"{checksum}\")");
        }
    }
}
