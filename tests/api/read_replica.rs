//! The read replica (issue 12): against a real streaming replica of the test cluster, made by
//! `scripts/replica` with pg_basebackup (`TEST_REPLICA_URL`). `scripts/test` runs this module in
//! a pass of its own, one test at a time, after the others, so that the primary's WAL moves
//! only with what the test itself writes.
//!
//! Which server answered a list is read from the metrics (`phonecalls_db_reads_total`), and
//! from what the answer holds: a call written on the primary while the replica's replay is
//! paused can only come from the primary.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::helpers::*;

const MAX_LAG_MS: u64 = 500;

fn replica_root() -> String {
    std::env::var("TEST_REPLICA_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .expect(
            "TEST_REPLICA_URL must name a streaming replica of the test server; run scripts/test",
        )
}

/// The test database on the replica, once the replica has it.
async fn replica_connection(name: &str) -> PgConnection {
    let url = with_database(&replica_root(), name);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match PgConnection::connect(&url).await {
            Ok(connection) => return connection,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the replica never had {name}: {e}"),
        }
    }
}

/// An application whose lists may read the replica, with its metrics on.
async fn app_with_replica() -> (TestApp, PgConnection) {
    // A test that failed may have left the replay paused: nothing new would reach the replica.
    let mut server = PgConnection::connect(&replica_root()).await.unwrap();
    set_replay(&mut server, false).await;
    server.close().await.ok();
    let db = test_db().await;
    let name = db.url.rsplit_once('/').unwrap().1.to_string();
    let replica = replica_connection(&name).await;
    let settings = settings_with(
        &db.url,
        &[
            ("DATABASE_READ_URL", &with_database(&replica_root(), &name)),
            ("READ_MAX_LAG_MS", &MAX_LAG_MS.to_string()),
            ("METRICS_LISTEN_ADDR", "127.0.0.1:0"),
        ],
    );
    (spawn_app_on(db, settings).await, replica)
}

fn replica_of(app: &TestApp) -> phonecalls::db::Replica {
    app.state
        .as_ref()
        .unwrap()
        .db
        .replica()
        .expect("the application has a replica")
        .clone()
}

async fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// List statements the replica and the primary have run, from the metrics.
async fn reads(app: &TestApp) -> (f64, f64) {
    let port = app.metrics_port.unwrap();
    let text = app
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let of = |server: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("phonecalls_db_reads_total{{server=\"{server}\"}}")))
            .and_then(|l| l.rsplit_once(' '))
            .map_or(0.0, |(_, v)| v.parse().unwrap())
    };
    (of("replica"), of("primary"))
}

async fn set_replay(replica: &mut PgConnection, paused: bool) {
    let function = if paused {
        "pg_wal_replay_pause"
    } else {
        "pg_wal_replay_resume"
    };
    sqlx::query(&format!("SELECT {function}()"))
        .execute(&mut *replica)
        .await
        .unwrap();
}

async fn call_ids(app: &TestApp, token: &str) -> Vec<String> {
    let response = app
        .get_with_authorization("/uapi/phoneCalls/@me/@self/", &format!("Bearer {token}"))
        .await;
    match response.status().as_u16() {
        204 => Vec::new(),
        200 => {
            let body: Value = response.json().await.unwrap();
            body["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect()
        }
        status => panic!("the list answered {status}"),
    }
}

/// An idle primary writes nothing, and a replica that has replayed everything stays fresh
/// however long that lasts: lists keep reading it. (Measured from the time of the last replayed
/// transaction instead, its lag would grow with the idle time.)
#[tokio::test]
async fn an_idle_primary_leaves_the_replica_fresh_and_lists_read_it() {
    let (app, _replica_db) = app_with_replica().await;
    let f = fixture(app.pool()).await;
    let alice = token_for(app.pool(), f.alice).await;
    let replica = replica_of(&app);
    wait_until("the replica is fresh", Duration::from_secs(5), || {
        replica.is_fresh()
    })
    .await;
    // Three seconds without a write: six times the bound.
    let idle_until = Instant::now() + Duration::from_secs(3);
    let mut worst = Duration::ZERO;
    while Instant::now() < idle_until {
        let lag = replica.lag().expect("a lag is known");
        worst = worst.max(lag);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        worst <= Duration::from_millis(MAX_LAG_MS),
        "the replica looked {worst:?} behind an idle primary"
    );
    let (replica_before, primary_before) = reads(&app).await;
    for _ in 0..5 {
        assert!(call_ids(&app, &alice).await.is_empty());
    }
    let (replica_after, primary_after) = reads(&app).await;
    assert_eq!(replica_after - replica_before, 5.0);
    assert_eq!(primary_after, primary_before);
}

/// The replica's replay stops: once it is further behind than `READ_MAX_LAG_MS`, lists read
/// the primary, and see what was written since. Its replay resumes: lists read it again.
#[tokio::test]
async fn lists_go_to_the_primary_while_the_replica_falls_behind_and_come_back_after() {
    let (app, mut replica_db) = app_with_replica().await;
    let f = fixture(app.pool()).await;
    let alice = token_for(app.pool(), f.alice).await;
    let switch = token_for(app.pool(), f.switch).await;
    let replica = replica_of(&app);
    wait_until("the replica is fresh", Duration::from_secs(5), || {
        replica.is_fresh()
    })
    .await;

    set_replay(&mut replica_db, true).await;
    let id = new_call_id();
    let report = first_report(&id, 1);
    assert_eq!(app.put_report(&switch, &id, &report).await.status(), 201);
    wait_until("the replica is seen behind", Duration::from_secs(5), || {
        !replica.is_fresh()
    })
    .await;
    let (replica_before, primary_before) = reads(&app).await;
    // Only the primary has the call.
    assert_eq!(call_ids(&app, &alice).await, vec![id.clone()]);
    let (replica_after, primary_after) = reads(&app).await;
    assert_eq!(primary_after - primary_before, 1.0);
    assert_eq!(replica_after, replica_before);
    let on_replica: i64 = sqlx::query_scalar("SELECT count(*) FROM phone_calls")
        .fetch_one(&mut replica_db)
        .await
        .unwrap();
    assert_eq!(on_replica, 0, "the replica's replay is paused");

    set_replay(&mut replica_db, false).await;
    wait_until(
        "the replica is fresh again",
        Duration::from_secs(10),
        || replica.is_fresh(),
    )
    .await;
    let (replica_before, _) = reads(&app).await;
    assert_eq!(call_ids(&app, &alice).await, vec![id]);
    let (replica_after, _) = reads(&app).await;
    assert_eq!(replica_after - replica_before, 1.0);
}

/// Tokens are looked up on the primary whatever the replica has: a token issued while the
/// replica's replay is paused works at once, on a request whose list reads the replica.
#[tokio::test]
async fn tokens_are_read_on_the_primary_even_when_lists_read_the_replica() {
    let (app, mut replica_db) = app_with_replica().await;
    let f = fixture(app.pool()).await;
    let replica = replica_of(&app);
    wait_until("the replica is fresh", Duration::from_secs(5), || {
        replica.is_fresh()
    })
    .await;
    set_replay(&mut replica_db, true).await;
    let (replica_before, _) = reads(&app).await;
    let fresh_token = token_for(app.pool(), f.alice).await;
    let on_replica: i64 = sqlx::query_scalar("SELECT count(*) FROM access_tokens")
        .fetch_one(&mut replica_db)
        .await
        .unwrap();
    assert_eq!(on_replica, 0, "the replica's replay is paused");
    // Within the bound, the list still reads the replica, which has no such token.
    assert!(replica.is_fresh());
    let ids = call_ids(&app, &fresh_token).await;
    set_replay(&mut replica_db, false).await;
    assert!(ids.is_empty());
    let (replica_after, _) = reads(&app).await;
    assert_eq!(
        replica_after - replica_before,
        1.0,
        "the list read the replica"
    );
}
