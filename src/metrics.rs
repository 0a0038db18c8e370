//! Metrics in the Prometheus text format, served at `GET /metrics` on `METRICS_LISTEN_ADDR`, a
//! listener of their own that is off unless set, so that they never reach the public port.
//!
//! This module is the one home of every metric: its name, its help text and its labels are
//! here, and the rest of the code records through the functions below, never through the
//! `metrics` macros directly. docs/operations.md lists them with the alerts to set.
//!
//! Without `METRICS_LISTEN_ADDR` no recorder is installed, and every function here is a no-op
//! that costs a relaxed atomic load. The recorder is global to the process: applications built
//! in the same process (tests) share it.

use std::future::Future;
use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use metrics::Unit;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

const HTTP_REQUESTS: &str = "phonecalls_http_requests_total";
const HTTP_DURATION: &str = "phonecalls_http_request_duration_seconds";
const HTTP_CONNECTIONS: &str = "phonecalls_http_connections_open";
const REFUSED: &str = "phonecalls_requests_refused_total";
const POOL_CONNECTIONS: &str = "phonecalls_db_pool_connections";
const POOL_WAITING: &str = "phonecalls_db_pool_waiting";
const POOL_ACQUIRE: &str = "phonecalls_db_pool_acquire_duration_seconds";
const STATEMENT_DURATION: &str = "phonecalls_db_statement_duration_seconds";
const SWITCH_REPORTS: &str = "phonecalls_switch_reports_total";
const GROUP_COMMIT: &str = "phonecalls_switch_group_commit_reports";
const CACHE_LOOKUPS: &str = "phonecalls_cache_lookups_total";
const REPLICA_LAG: &str = "phonecalls_db_replica_lag_seconds";
const READS: &str = "phonecalls_db_reads_total";
const STREAMS_OPEN: &str = "phonecalls_streams_open";
const STREAM_EVENTS: &str = "phonecalls_stream_events_total";
const STREAM_ENDS: &str = "phonecalls_stream_ends_total";
const STREAM_BATCHES: &str = "phonecalls_stream_change_batch_calls";

/// Latency buckets, in seconds, from 0.5 ms to the longest request deadline worth telling apart.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How many reports one group commit of the switch feed wrote (the queue writes at most 64).
const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
/// Calls per read of the streams' change reader.
const BATCH_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(GROUP_COMMIT.into()), GROUP_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(STREAM_BATCHES.into()), BATCH_BUCKETS)
                })
                .expect("the buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route pattern, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its answer's head, by route pattern and method."
    );
    describe_gauge!(
        HTTP_CONNECTIONS,
        "Client connections open on the public listener."
    );
    describe_counter!(
        REFUSED,
        "Requests refused before their work was done, by reason: deadline (REQUEST_TIMEOUT_MS passed, waits for admission of large pages included), body_too_slow, pool_timeout (no database connection within DATABASE_ACQUIRE_TIMEOUT_MS), feed_queue (a switch report waited too long for its turn), streams (MAX_STREAMS or MAX_STREAMS_PER_TOKEN reached, or draining)."
    );
    describe_gauge!(
        POOL_CONNECTIONS,
        "Database connections of a pool, by pool and state (in_use, idle), read when scraped."
    );
    describe_gauge!(
        POOL_WAITING,
        "Database work waiting for a connection of the pool, by pool."
    );
    describe_histogram!(
        POOL_ACQUIRE,
        Unit::Seconds,
        "Time to get a connection from a pool, by pool."
    );
    describe_histogram!(
        STATEMENT_DURATION,
        Unit::Seconds,
        "Time of database statements, by statement kind and outcome (ok, error)."
    );
    describe_counter!(
        SWITCH_REPORTS,
        "Switch reports by outcome: applied (created or updated a call), stale (a sequence already stored; nothing changed), rejected (not valid)."
    );
    describe_histogram!(
        GROUP_COMMIT,
        "Reports written by one group commit of the switch feed's queue."
    );
    describe_counter!(
        CACHE_LOOKUPS,
        "Lookups in the in-process caches, by cache (tokens, paths) and result (hit, miss)."
    );
    describe_gauge!(
        REPLICA_LAG,
        "How far the read replica's replay is behind the primary, as last measured (seconds)."
    );
    describe_counter!(
        READS,
        "List statements by the server that ran them: replica, or primary (no replica set, or it lagged)."
    );
    describe_gauge!(
        STREAMS_OPEN,
        "Live streams (text/event-stream) connected to this instance."
    );
    describe_counter!(
        STREAM_EVENTS,
        "Events sent on live streams, by event (snapshot, upsert, remove, reset, heartbeat)."
    );
    describe_counter!(
        STREAM_ENDS,
        "Live streams ended by the service, by reason: client_gone, too_slow, token (revoked or expired), shutdown, path (no longer resolves), failed (a database error while starting over)."
    );
    describe_histogram!(
        STREAM_BATCHES,
        "Changed calls read by one statement of the streams' change reader (one per notification at most)."
    );
}

fn enabled() -> bool {
    HANDLE.get().is_some()
}

/// The metrics listener: `GET /metrics` and nothing else, one worker.
pub fn server(
    listener: TcpListener,
    handle: PrometheusHandle,
    pools: Pools,
) -> std::io::Result<Server> {
    let state = web::Data::new((handle, pools));
    Ok(HttpServer::new(move || {
        App::new().app_data(state.clone()).route(
            "/metrics",
            web::get().to(|state: web::Data<(PrometheusHandle, Pools)>| async move {
                let (handle, pools) = state.get_ref();
                pools.sample();
                HttpResponse::Ok()
                    .content_type("text/plain; version=0.0.4; charset=utf-8")
                    .body(handle.render())
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

/// Keeps histograms' storage bounded between scrapes.
pub async fn upkeep(handle: PrometheusHandle) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

/// The pools whose connections are read at each scrape.
#[derive(Clone, Default)]
pub struct Pools(Vec<(&'static str, PgPool)>);

impl Pools {
    /// Adds `pool`, under its own name.
    pub fn with(mut self, pool: &crate::db::Pool) -> Self {
        self.0.push((pool.name(), pool.connections().clone()));
        self
    }

    fn sample(&self) {
        for (name, pool) in &self.0 {
            let idle = pool.num_idle() as f64;
            let size = f64::from(pool.size());
            gauge!(POOL_CONNECTIONS, "pool" => *name, "state" => "idle").set(idle);
            gauge!(POOL_CONNECTIONS, "pool" => *name, "state" => "in_use")
                .set((size - idle).max(0.0));
        }
    }
}

/// A route pattern as a label: its segments' patterns left out (`/a/{tail:.*}` is `/a/{tail}`).
fn route_label(pattern: &str) -> String {
    let mut label = String::with_capacity(pattern.len());
    // Depth of braces, and whether the segment's name (before any `:`) is being read.
    let (mut depth, mut naming) = (0, false);
    for c in pattern.chars() {
        match c {
            '{' => {
                if depth == 0 {
                    label.push(c);
                    naming = true;
                }
                depth += 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    label.push(c);
                    naming = false;
                }
            }
            ':' if naming => naming = false,
            _ if depth == 0 || naming => label.push(c),
            _ => {}
        }
    }
    label
}

/// One answered request.
pub fn request(route: &str, method: &str, status: u16, elapsed: Duration) {
    if !enabled() {
        return;
    }
    let (route, method) = (route_label(route), method.to_owned());
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status.to_string()).increment(1);
    histogram!(HTTP_DURATION, "route" => route, "method" => method).record(elapsed.as_secs_f64());
}

/// Why a request was refused (see [`REFUSED`]'s help).
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    Deadline,
    BodyTooSlow,
    PoolTimeout,
    FeedQueue,
    Streams,
}

pub fn refused(reason: Refusal) {
    if !enabled() {
        return;
    }
    let reason = match reason {
        Refusal::Deadline => "deadline",
        Refusal::BodyTooSlow => "body_too_slow",
        Refusal::PoolTimeout => "pool_timeout",
        Refusal::FeedQueue => "feed_queue",
        Refusal::Streams => "streams",
    };
    counter!(REFUSED, "reason" => reason).increment(1);
}

/// Counts a live stream open until dropped (held by the stream's permit).
pub struct OpenStream(());

impl OpenStream {
    pub fn new() -> Option<Self> {
        enabled().then(|| {
            gauge!(STREAMS_OPEN).increment(1.0);
            Self(())
        })
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        gauge!(STREAMS_OPEN).decrement(1.0);
    }
}

/// Events sent on a live stream.
pub fn stream_events(event: &'static str, n: u64) {
    if enabled() && n > 0 {
        counter!(STREAM_EVENTS, "event" => event).increment(n);
    }
}

/// A live stream the service ended, and why (see [`STREAM_ENDS`]'s help).
pub fn stream_ended(reason: &'static str) {
    if enabled() {
        counter!(STREAM_ENDS, "reason" => reason).increment(1);
    }
}

/// The calls one read of the streams' change reader returned.
pub fn stream_batch(calls: usize) {
    if enabled() {
        histogram!(STREAM_BATCHES).record(calls as f64);
    }
}

/// Counts a public connection open until dropped (kept in the connection's data).
pub struct OpenConnection(());

impl OpenConnection {
    pub fn new() -> Option<Self> {
        enabled().then(|| {
            gauge!(HTTP_CONNECTIONS).increment(1.0);
            Self(())
        })
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        gauge!(HTTP_CONNECTIONS).decrement(1.0);
    }
}

/// Gets a connection of `pool` (named `name` in the metrics), counting the wait.
pub async fn acquire(
    name: &'static str,
    pool: &PgPool,
) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, sqlx::Error> {
    if !enabled() {
        return pool.acquire().await;
    }
    let started = Instant::now();
    let waiting = gauge!(POOL_WAITING, "pool" => name);
    waiting.increment(1.0);
    let connection = pool.acquire().await;
    waiting.decrement(1.0);
    histogram!(POOL_ACQUIRE, "pool" => name).record(started.elapsed().as_secs_f64());
    if matches!(connection, Err(sqlx::Error::PoolTimedOut)) {
        refused(Refusal::PoolTimeout);
    }
    connection
}

/// Runs `statement` (a kind named by a constant of the caller's module), timing it.
pub async fn statement<T>(
    kind: &'static str,
    statement: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    if !enabled() {
        return statement.await;
    }
    let started = Instant::now();
    let result = statement.await;
    statement_finished(kind, result.is_ok(), started.elapsed());
    result
}

/// A statement of `kind` took `elapsed`, and succeeded or not (for statements whose rows are
/// read as they come, timed by their reader).
pub fn statement_finished(kind: &'static str, ok: bool, elapsed: Duration) {
    if enabled() {
        let outcome = if ok { "ok" } else { "error" };
        histogram!(STATEMENT_DURATION, "statement" => kind, "outcome" => outcome)
            .record(elapsed.as_secs_f64());
    }
}

/// What became of switch reports.
#[derive(Debug, Clone, Copy)]
pub enum ReportOutcome {
    Applied,
    Stale,
    Rejected,
}

pub fn switch_reports(outcome: ReportOutcome, n: u64) {
    if !enabled() || n == 0 {
        return;
    }
    let outcome = match outcome {
        ReportOutcome::Applied => "applied",
        ReportOutcome::Stale => "stale",
        ReportOutcome::Rejected => "rejected",
    };
    counter!(SWITCH_REPORTS, "outcome" => outcome).increment(n);
}

/// One group commit of the feed's queue, of `reports` reports.
pub fn group_commit(reports: usize) {
    if enabled() {
        histogram!(GROUP_COMMIT).record(reports as f64);
    }
}

/// One lookup in the cache named `cache`.
pub fn cache_lookup(cache: &'static str, hit: bool) {
    if enabled() {
        let result = if hit { "hit" } else { "miss" };
        counter!(CACHE_LOOKUPS, "cache" => cache, "result" => result).increment(1);
    }
}

/// The replica's replay lag, as just measured.
pub fn replica_lag(lag: Duration) {
    if enabled() {
        gauge!(REPLICA_LAG).set(lag.as_secs_f64());
    }
}

/// A list statement sent to `server` (`replica` or `primary`).
pub fn read_on(server: &'static str) {
    if enabled() {
        counter!(READS, "server" => server).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_label_is_its_pattern_without_the_segments_patterns() {
        assert_eq!(
            route_label("/uapi/phoneCalls/{tail:.*}"),
            "/uapi/phoneCalls/{tail}"
        );
        assert_eq!(
            route_label("/switch/v1/phoneCalls/{phoneCallId}"),
            "/switch/v1/phoneCalls/{phoneCallId}"
        );
        assert_eq!(route_label("/a/{x:[0-9]{2}}/b"), "/a/{x}/b");
        assert_eq!(route_label("/oauth/token.php"), "/oauth/token.php");
    }
}
