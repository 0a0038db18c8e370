//! SQL reporting (issue 11): the `reporting` schema's figures over a hand-built set of calls
//! with known answers, analysts' roles and what they cannot see, history pruning and ending
//! stale calls. Everything runs as a real analyst role logging in with its password.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, PgPool, Row};

use crate::helpers::*;

fn at(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw)
        .unwrap()
        .with_timezone(&Utc)
}

/// `url` logging in as `user` with `password`.
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let scheme_end = url.find("://").unwrap() + 3;
    let rest = &url[scheme_end..];
    let host_start = rest.find('@').map_or(0, |i| i + 1);
    format!(
        "{}{user}:{password}@{}",
        &url[..scheme_end],
        &rest[host_start..]
    )
}

/// A role name no other test (or earlier run on the same server) uses: roles are per server.
fn unique_role(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Creates an analyst role with the command line; returns its name and a connection as it.
async fn analyst(db_url: &str, org: Option<i64>) -> (String, PgConnection) {
    let name = unique_role("analyst");
    let mut args = vec!["reporting", "role", "create", "--name", &name];
    let org_text = org.map(|o| o.to_string());
    if let Some(org) = &org_text {
        args.extend(["--org", org]);
    }
    let created = run_cli(db_url, &args).await.json();
    assert_eq!(created["role"], name.as_str());
    let password = created["password"].as_str().expect("a generated password");
    assert_eq!(password.len(), 32);
    let connection = PgConnection::connect(&with_credentials(db_url, &name, password))
        .await
        .expect("the analyst logs in with the printed password");
    (name, connection)
}

async fn drop_analyst(db_url: &str, name: &str, connection: PgConnection) {
    connection.close().await.unwrap();
    let dropped = run_cli(db_url, &["reporting", "role", "drop", "--name", name])
        .await
        .json();
    assert_eq!(dropped, json!({ "dropped": name }));
}

struct Party<'a> {
    view: &'a str,
    extension: &'a str,
    flow: i16,
    status: i16,
    ringing: Option<&'a str>,
    answered: Option<&'a str>,
    disposition: Option<i16>,
    parked: bool,
    on_hold: bool,
    recording: bool,
}

fn party<'a>(view: &'a str, extension: &'a str, flow: i16) -> Party<'a> {
    Party {
        view,
        extension,
        flow,
        status: 5,
        ringing: None,
        answered: None,
        disposition: None,
        parked: false,
        on_hold: false,
        recording: false,
    }
}

/// Stores a call as the switch feed would have (its own tests cover that path), with fixed
/// times, straight into the tables.
async fn store_call(
    pool: &PgPool,
    extension: &str,
    published: &str,
    answered: Option<&str>,
    ended: Option<&str>,
    parties: &[Party<'_>],
) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO phone_calls (id, organization_id, extension_id, extension, published, answered, ended, updated, sequence)
         SELECT $1, e.organization_id, e.id, e.number, $3, $4, $5, coalesce($5, $3), 1
         FROM extensions e WHERE e.number = $2",
    )
    .bind(id)
    .bind(extension)
    .bind(at(published))
    .bind(answered.map(at))
    .bind(ended.map(at))
    .execute(pool)
    .await
    .unwrap();
    for p in parties {
        let answered = p.answered.map(at);
        sqlx::query(
            "INSERT INTO phone_call_views (phone_call_id, view_id, organization_id, extension_id, extension,
                 source, destination, flow, status, ringing, answered, disposition, parked, on_hold, recording, call_live)
             SELECT $1, $2, e.organization_id, e.id, e.number, ARRAY['+442079460001'], ARRAY[e.number],
                    $4, $5, $6, $7, $8,
                    CASE WHEN $9 THEN $7 END, CASE WHEN $10 THEN $7 END, CASE WHEN $11 THEN $7 END,
                    c.live
             FROM extensions e, phone_calls c WHERE e.number = $3 AND c.id = $1",
        )
        .bind(id)
        .bind(p.view)
        .bind(p.extension)
        .bind(p.flow)
        .bind(p.status)
        .bind(p.ringing.map(at))
        .bind(answered)
        .bind(p.disposition)
        .bind(p.parked)
        .bind(p.on_hold)
        .bind(p.recording)
        .execute(pool)
        .await
        .unwrap();
    }
    id
}

/// The hand-built calls (UTC). Acme (0003): Alice 210 and Bob 211; Globex (0007): Carol 210.
///
/// | call | published        | answered | ended            | notes |
/// |------|------------------|----------|------------------|-------|
/// | c1   | 03-10 10:00:00   | 10:00:12 | 10:05:12         | rang 10:00:02 (TTA 10 s), inbound, recorded |
/// | c2   | 03-10 10:30:00   | 10:30:35 | 11:30:35         | rang 10:30:05 (TTA 30 s), outbound, parked; spans 10:00 and 11:00 |
/// | c3   | 03-10 10:40:00   |          | 10:41:00         | charged party is view 01 (Alice): local, no answer; view 00 (Bob) busy |
/// | c4   | 03-10 23:50:00   | 23:50:20 | 03-11 00:10:00   | rang 23:50:00 (TTA 20 s), inbound, on hold; spans midnight |
/// | c5   | 03-11 09:00:00   |          | 09:00:30         | no parties at all |
/// | c6   | 03-11 12:00:00   | 12:00:10 | (live)           | no ringing reported (TTA from published: 10 s), inbound |
/// | c7   | 03-10 11:30:35   |          | 11:45:00         | starts the instant c2 ends (no overlap), local, busy |
/// | g1   | 03-10 10:15:00   | 10:15:05 | 10:20:00         | Globex, rang 10:15:00 (TTA 5 s), inbound |
struct Calls {
    c1: uuid::Uuid,
    c3: uuid::Uuid,
    c5: uuid::Uuid,
    c6: uuid::Uuid,
    g1: uuid::Uuid,
}

async fn store_hand_built_calls(pool: &PgPool) -> Calls {
    let c1 = store_call(
        pool,
        "0003*210",
        "2026-03-10T10:00:00Z",
        Some("2026-03-10T10:00:12Z"),
        Some("2026-03-10T10:05:12Z"),
        &[
            Party {
                ringing: Some("2026-03-10T10:00:02Z"),
                answered: Some("2026-03-10T10:00:12Z"),
                disposition: Some(0),
                recording: true,
                ..party("00", "0003*210", 8)
            },
            Party {
                ringing: Some("2026-03-10T10:00:03Z"),
                disposition: Some(3),
                ..party("01", "0003*211", 8)
            },
        ],
    )
    .await;
    store_call(
        pool,
        "0003*210",
        "2026-03-10T10:30:00Z",
        Some("2026-03-10T10:30:35Z"),
        Some("2026-03-10T11:30:35Z"),
        &[Party {
            ringing: Some("2026-03-10T10:30:05Z"),
            answered: Some("2026-03-10T10:30:35Z"),
            disposition: Some(0),
            parked: true,
            ..party("00", "0003*210", 4)
        }],
    )
    .await;
    let c3 = store_call(
        pool,
        "0003*210",
        "2026-03-10T10:40:00Z",
        None,
        Some("2026-03-10T10:41:00Z"),
        &[
            Party {
                status: 2,
                ringing: Some("2026-03-10T10:40:01Z"),
                disposition: Some(1),
                ..party("00", "0003*211", 2)
            },
            Party {
                status: 3,
                ringing: Some("2026-03-10T10:40:01Z"),
                disposition: Some(3),
                ..party("01", "0003*210", 2)
            },
        ],
    )
    .await;
    store_call(
        pool,
        "0003*211",
        "2026-03-10T23:50:00Z",
        Some("2026-03-10T23:50:20Z"),
        Some("2026-03-11T00:10:00Z"),
        &[Party {
            ringing: Some("2026-03-10T23:50:00Z"),
            answered: Some("2026-03-10T23:50:20Z"),
            disposition: Some(0),
            on_hold: true,
            ..party("00", "0003*211", 8)
        }],
    )
    .await;
    let c5 = store_call(
        pool,
        "0003*211",
        "2026-03-11T09:00:00Z",
        None,
        Some("2026-03-11T09:00:30Z"),
        &[],
    )
    .await;
    let c6 = store_call(
        pool,
        "0003*210",
        "2026-03-11T12:00:00Z",
        Some("2026-03-11T12:00:10Z"),
        None,
        &[Party {
            answered: Some("2026-03-11T12:00:10Z"),
            ..party("00", "0003*210", 8)
        }],
    )
    .await;
    store_call(
        pool,
        "0003*210",
        "2026-03-10T11:30:35Z",
        None,
        Some("2026-03-10T11:45:00Z"),
        &[Party {
            status: 2,
            ringing: Some("2026-03-10T11:30:36Z"),
            disposition: Some(1),
            ..party("00", "0003*210", 2)
        }],
    )
    .await;
    let g1 = store_call(
        pool,
        "0007*210",
        "2026-03-10T10:15:00Z",
        Some("2026-03-10T10:15:05Z"),
        Some("2026-03-10T10:20:00Z"),
        &[Party {
            ringing: Some("2026-03-10T10:15:00Z"),
            answered: Some("2026-03-10T10:15:05Z"),
            disposition: Some(0),
            ..party("00", "0007*210", 8)
        }],
    )
    .await;
    // Written straight into the tables, the calls get the figures of their parties as the feed
    // would have kept them (its own test compares the two ways).
    let refreshed: i64 = sqlx::query_scalar("SELECT phone_calls_refresh_party_facts()")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(refreshed, 7, "every call but the one without parties");
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
    Calls { c1, c3, c5, c6, g1 }
}

/// Rows of a query as JSON objects (`to_jsonb` of each row), in the query's order.
async fn rows(connection: &mut PgConnection, query: &str) -> Vec<Value> {
    sqlx::query(&format!("SELECT to_jsonb(r) FROM ({query}) AS r"))
        .fetch_all(connection)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .iter()
        .map(|row: &PgRow| row.get::<Value, _>(0))
        .collect()
}

/// Seconds in a PostgreSQL interval's JSON text (`00:01:24.5`, `263 days 11:00:00`).
fn seconds(value: &Value) -> f64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("an interval: {value}"));
    let (days, time) = match text
        .split_once(" days ")
        .or_else(|| text.split_once(" day "))
    {
        Some((days, time)) => (days.parse::<f64>().unwrap(), time),
        None => (0.0, text),
    };
    let parts: Vec<f64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    days * 86_400.0 + parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

#[tokio::test]
async fn the_calls_view_has_the_known_figures_of_each_call() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let calls = store_hand_built_calls(&db.pool).await;
    let (name, mut conn) = analyst(&db.url, None).await;

    let all = rows(
        &mut conn,
        "SELECT * FROM reporting.calls ORDER BY published",
    )
    .await;
    assert_eq!(all.len(), 8);
    let by_id = |id: uuid::Uuid| {
        all.iter()
            .find(|r| r["call_id"] == id.to_string())
            .unwrap_or_else(|| panic!("call {id}"))
            .clone()
    };
    let c1 = by_id(calls.c1);
    assert_eq!(c1["organization_id"], f.org);
    assert_eq!(c1["organization_code"], "0003");
    assert_eq!(c1["organization_name"], "Acme");
    assert_eq!(c1["extension"], "0003*210");
    assert_eq!(c1["user_id"], f.alice);
    assert_eq!(c1["user_name"], "Alice");
    assert_eq!(c1["flow"], "inbound");
    assert_eq!(c1["live"], false);
    assert_eq!(seconds(&c1["time_to_answer"]), 10.0);
    assert_eq!(seconds(&c1["talk_time"]), 300.0);
    assert_eq!(seconds(&c1["duration"]), 312.0);
    assert_eq!(c1["disposition"], "answered");
    assert_eq!(
        (
            &c1["recorded"],
            &c1["parked"],
            &c1["on_hold"],
            &c1["parties"]
        ),
        (&json!(true), &json!(false), &json!(false), &json!(2))
    );

    // The charged party is the view on the charged extension (Alice, view 01), not view 00.
    let c3 = by_id(calls.c3);
    assert_eq!(c3["flow"], "local");
    assert_eq!(c3["disposition"], "no answer");
    assert_eq!(c3["time_to_answer"], Value::Null);
    assert_eq!(c3["talk_time"], Value::Null);
    assert_eq!(seconds(&c3["duration"]), 60.0);

    let c5 = by_id(calls.c5);
    assert_eq!(
        (&c5["flow"], &c5["disposition"], &c5["parties"]),
        (&Value::Null, &json!("unknown"), &json!(0))
    );

    // A live call: no disposition yet, talk time and duration until now, and no ringing
    // reported, so its time to answer counts from published.
    let before = Utc::now();
    let c6 = by_id(calls.c6);
    assert_eq!(c6["live"], true);
    assert_eq!(c6["disposition"], Value::Null);
    assert_eq!(seconds(&c6["time_to_answer"]), 10.0);
    let talk = seconds(&c6["talk_time"]);
    let since_answer = (before - at("2026-03-11T12:00:10Z")).num_seconds() as f64;
    assert!(
        talk >= since_answer - 60.0 && talk <= since_answer + 60.0,
        "{talk} vs {since_answer}"
    );

    // Flags of parked and on-hold calls.
    let flags = rows(
        &mut conn,
        "SELECT published, parked, on_hold FROM reporting.calls WHERE parked OR on_hold ORDER BY published",
    )
    .await;
    assert_eq!(
        flags,
        vec![
            json!({"published": "2026-03-10T10:30:00+00:00", "parked": true, "on_hold": false}),
            json!({"published": "2026-03-10T23:50:00+00:00", "parked": false, "on_hold": true}),
        ]
    );

    // Parties: one row per view, with words for flow, status and disposition.
    let parties = rows(
        &mut conn,
        &format!(
            "SELECT view_id, extension, user_name, flow, status, disposition, talk_time, call_live
             FROM reporting.call_parties WHERE call_id = '{}' ORDER BY view_id",
            calls.c3
        ),
    )
    .await;
    assert_eq!(
        parties,
        vec![
            json!({"view_id": "00", "extension": "0003*211", "user_name": "Bob", "flow": "local",
                   "status": "trying", "disposition": "busy", "talk_time": null, "call_live": false}),
            json!({"view_id": "01", "extension": "0003*210", "user_name": "Alice", "flow": "local",
                   "status": "ringing", "disposition": "no answer", "talk_time": null, "call_live": false}),
        ]
    );
    let g1 = by_id(calls.g1);
    assert_eq!(g1["organization_code"], "0007");
    drop_analyst(&db.url, &name, conn).await;
}

#[tokio::test]
async fn daily_and_hourly_views_have_the_known_figures() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    store_hand_built_calls(&db.pool).await;
    let (name, mut conn) = analyst(&db.url, None).await;

    let daily = rows(
        &mut conn,
        "SELECT day, organization_code, calls, answered, answer_rate, avg_time_to_answer,
                p90_time_to_answer, talk_time, inbound, outbound, local
         FROM reporting.daily_organization
         WHERE day BETWEEN '2026-03-09' AND '2026-03-11' ORDER BY day, organization_code",
    )
    .await;
    assert_eq!(daily.len(), 3, "{daily:?}");
    // 03-10, Acme: c1, c2, c3, c4 (published before midnight, ended after) and c7. Answered
    // c1, c2, c4 with 10, 30 and 20 s to answer: average 20 s, 90th percentile
    // 20 + 0.8 * (30 - 20) = 28 s; talk 5:00 + 60:00 + 19:40.
    assert_eq!(
        daily[0],
        json!({"day": "2026-03-10", "organization_code": "0003", "calls": 5, "answered": 3,
               "answer_rate": 0.6, "avg_time_to_answer": "00:00:20", "p90_time_to_answer": "00:00:28",
               "talk_time": "01:24:40", "inbound": 2, "outbound": 1, "local": 2})
    );
    assert_eq!(
        daily[1],
        json!({"day": "2026-03-10", "organization_code": "0007", "calls": 1, "answered": 1,
               "answer_rate": 1.0, "avg_time_to_answer": "00:00:05", "p90_time_to_answer": "00:00:05",
               "talk_time": "00:04:55", "inbound": 1, "outbound": 0, "local": 0})
    );
    // 03-11, Acme: c5 (no parties: no flow) and the live c6, whose talk time runs until now.
    let d = &daily[2];
    assert_eq!(
        (
            &d["day"],
            &d["calls"],
            &d["answered"],
            &d["answer_rate"],
            &d["avg_time_to_answer"]
        ),
        (
            &json!("2026-03-11"),
            &json!(2),
            &json!(1),
            &json!(0.5),
            &json!("00:00:10")
        )
    );
    assert_eq!(
        (&d["inbound"], &d["outbound"], &d["local"]),
        (&json!(1), &json!(0), &json!(0))
    );

    let hourly = rows(
        &mut conn,
        "SELECT hour, organization_code, peak_calls FROM reporting.concurrency_hourly
         WHERE hour >= '2026-03-10T00:00:00Z' AND hour < '2026-03-11T14:00:00Z'
         ORDER BY hour, organization_code",
    )
    .await;
    let hour = |h: &str, org: &str, peak: i64| json!({"hour": format!("2026-03-{h}:00:00+00:00"), "organization_code": org, "peak_calls": peak});
    assert_eq!(
        hourly,
        vec![
            // c2 and c3 overlap at 10:40; c1 is alone; Globex's g1 is its own.
            hour("10T10", "0003", 2),
            hour("10T10", "0007", 1),
            // c7 starts the instant c2 ends: never two at once.
            hour("10T11", "0003", 1),
            // c4 spans midnight: it is in progress in both hours.
            hour("10T23", "0003", 1),
            hour("11T00", "0003", 1),
            hour("11T09", "0003", 1),
            // The live c6 counts from its start until now, every hour.
            hour("11T12", "0003", 1),
            hour("11T13", "0003", 1),
        ]
    );
    // The live call is still counted in the current hour.
    let now_hour = rows(
        &mut conn,
        "SELECT peak_calls FROM reporting.concurrency_hourly
         WHERE hour = date_trunc('hour', now(), 'UTC') AND organization_code = '0003'",
    )
    .await;
    assert_eq!(now_hour, vec![json!({"peak_calls": 1})]);

    // Another live call joining in the current hour makes two at once.
    store_call(
        &db.pool,
        "0003*211",
        &Utc::now().to_rfc3339(),
        None,
        None,
        &[],
    )
    .await;
    let now_hour = rows(
        &mut conn,
        "SELECT peak_calls FROM reporting.concurrency_hourly
         WHERE hour = date_trunc('hour', now(), 'UTC') AND organization_id = (SELECT organization_id FROM reporting.organizations WHERE organization_code = '0003')",
    )
    .await;
    assert_eq!(now_hour, vec![json!({"peak_calls": 2})]);
    let _ = f;
    drop_analyst(&db.url, &name, conn).await;
}

/// The instants where the peak of calls in progress is decided: calls that end the instant
/// another starts, a call that ends exactly when its hour does, calls that last no time at all,
/// and a call in progress when its hour starts. Asked by an analyst of every organization and
/// by one of Acme's, whose hour by hour reads take another index.
#[tokio::test]
async fn peak_concurrency_counts_what_is_in_progress_at_each_instant() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    for (extension, published, ended) in [
        // In progress when 10:00 starts: the level the hour starts from.
        ("0003*210", "09:50:00", "10:20:00"),
        // Starts the instant the first ends: one call at that instant, not two.
        ("0003*211", "10:20:00", "10:30:00"),
        // Ends exactly when the hour does: not in progress during 11:00.
        ("0003*210", "10:25:00", "11:00:00"),
        // With the two before it: three at once from 10:26 to 10:27.
        ("0003*211", "10:26:00", "10:27:00"),
        // Lasts no time: never in progress, in an hour with calls or alone in its hour.
        ("0003*210", "10:26:30", "10:26:30"),
        ("0003*210", "12:00:00", "12:00:00"),
        // Globex's call at the same instants counts for Globex only.
        ("0007*210", "10:26:00", "10:40:00"),
    ] {
        let on = |time: &str| format!("2026-04-01T{time}Z");
        store_call(
            &db.pool,
            extension,
            &on(published),
            None,
            Some(&on(ended)),
            &[],
        )
        .await;
    }
    sqlx::query("ANALYZE").execute(&db.pool).await.unwrap();
    let hour = |h: &str, org: &str, peak: i64| json!({"hour": format!("2026-04-01T{h}:00:00+00:00"), "organization_code": org, "peak_calls": peak});
    let query = "SELECT hour, organization_code, peak_calls FROM reporting.concurrency_hourly
                 WHERE hour >= '2026-04-01' AND hour < '2026-04-02' ORDER BY hour, organization_code";

    let (all_name, mut all) = analyst(&db.url, None).await;
    assert_eq!(
        rows(&mut all, query).await,
        vec![
            hour("09", "0003", 1),
            hour("10", "0003", 3),
            hour("10", "0007", 1)
        ]
    );
    let (acme_name, mut acme) = analyst(&db.url, Some(f.org)).await;
    assert_eq!(
        rows(&mut acme, query).await,
        vec![hour("09", "0003", 1), hour("10", "0003", 3)]
    );
    drop_analyst(&db.url, &all_name, all).await;
    drop_analyst(&db.url, &acme_name, acme).await;
}

/// Runs `query` and returns its error's SQLSTATE (panics when it succeeds).
async fn refused(connection: &mut PgConnection, query: &str) -> String {
    match sqlx::query(query).execute(&mut *connection).await {
        Ok(_) => panic!("{query} should have been refused"),
        Err(sqlx::Error::Database(e)) => e.code().unwrap_or_default().into_owned(),
        Err(e) => panic!("{query}: {e}"),
    }
}

/// Every value of another organization that must never reach an analyst of Acme: its name,
/// code, extension and user, and its call's id.
fn globex_values(calls: &Calls) -> Vec<String> {
    vec![
        "Globex".into(),
        "0007".into(),
        "0007*210".into(),
        "Carol".into(),
        calls.g1.to_string(),
    ]
}

/// EXPLAIN ANALYZE of `query`, without what differs between two runs (times, costs).
async fn plan_of(conn: &mut PgConnection, query: String) -> String {
    let query = format!("EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) {query}");
    let lines: Vec<String> = sqlx::query_scalar(&query)
        .fetch_all(conn)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    lines.join("\n")
}

#[tokio::test]
async fn an_organization_analyst_sees_its_rows_only_whatever_it_writes() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let calls = store_hand_built_calls(&db.pool).await;
    token_for(&db.pool, f.carol).await;
    let (name, mut conn) = analyst(&db.url, Some(f.org)).await;

    // Every view shows Acme's rows and only them.
    for (view, expected) in [
        ("reporting.organizations", 1),
        ("reporting.extensions", 2),
        ("reporting.calls", 7),
        ("reporting.call_parties", 8),
    ] {
        let orgs = rows(
            &mut conn,
            &format!("SELECT DISTINCT organization_id FROM {view}"),
        )
        .await;
        assert_eq!(orgs, vec![json!({"organization_id": f.org})], "{view}");
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {view}"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, expected, "{view}");
    }
    for view in [
        "reporting.daily_organization",
        "reporting.concurrency_hourly",
    ] {
        let orgs = rows(
            &mut conn,
            &format!(
                "SELECT DISTINCT organization_code FROM {view} WHERE {} >= '2026-03-01'",
                if view.ends_with("daily_organization") {
                    "day"
                } else {
                    "hour"
                }
            ),
        )
        .await;
        assert_eq!(orgs, vec![json!({"organization_code": "0003"})], "{view}");
    }
    // Asking for Globex by any column finds nothing.
    for query in [
        "SELECT * FROM reporting.calls WHERE organization_code = '0007'".to_string(),
        format!("SELECT * FROM reporting.calls WHERE call_id = '{}'", calls.g1),
        format!("SELECT * FROM reporting.call_parties WHERE call_id = '{}'", calls.g1),
        "SELECT * FROM reporting.call_parties WHERE extension = '0007*210'".to_string(),
        format!("SELECT * FROM reporting.daily_organization WHERE organization_id = {}", f.other_org),
        format!("SELECT * FROM reporting.concurrency_hourly WHERE organization_id = {} AND hour >= '2026-03-01'", f.other_org),
        "SELECT * FROM reporting.extensions WHERE user_name = 'Carol'".to_string(),
        "SELECT * FROM reporting.organizations WHERE organization_name = 'Globex'".to_string(),
    ] {
        assert_eq!(rows(&mut conn, &query).await, Vec::<Value>::new(), "{query}");
    }

    // No table, and none of the private views and functions' tables, is readable: only the
    // reporting schema is.
    for table in [
        "phone_calls",
        "phone_call_views",
        "organizations",
        "users",
        "extensions",
        "apps",
        "access_tokens",
        "reporting_roles",
        "reporting_scoped_calls",
        "reporting_call_facts",
        "reporting_extension_names",
        "reporting_organization_names",
        "_sqlx_migrations",
    ] {
        assert_eq!(
            refused(&mut conn, &format!("SELECT * FROM public.{table}")).await,
            "42501",
            "{table}"
        );
    }
    // Read-only by default, and no write privilege even when asking for a writable
    // transaction; no role to become.
    assert_eq!(
        refused(&mut conn, "CREATE TEMP TABLE t (x int)").await,
        "25006"
    );
    let settings = rows(
        &mut conn,
        "SELECT current_setting('default_transaction_read_only') AS read_only,
                current_setting('statement_timeout') AS timeout, current_setting('jit') AS jit,
                current_setting('constraint_exclusion') AS exclusion",
    )
    .await;
    assert_eq!(
        settings,
        vec![json!({"read_only": "on", "timeout": "1min", "jit": "off", "exclusion": "on"})]
    );
    sqlx::query("BEGIN READ WRITE")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        refused(&mut conn, "DELETE FROM public.phone_calls").await,
        "42501"
    );
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    let service_role: String = sqlx::query_scalar("SELECT current_user")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        refused(&mut conn, &format!("SET ROLE \"{service_role}\"")).await,
        "42501"
    );
    assert_eq!(
        refused(
            &mut conn,
            &format!("SET SESSION AUTHORIZATION \"{service_role}\"")
        )
        .await,
        "42501"
    );
    // The planner's statistics of the tables are not readable either.
    let stats: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_stats WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(stats, 0);

    // A function of the analyst's own that records every value it is shown, made as cheap as
    // possible so the planner would run it first if it could, sees only Acme's rows. (A
    // temporary function needs a writable transaction, which the analyst may ask for.)
    sqlx::query("BEGIN READ WRITE")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("CREATE TEMP TABLE seen (value text)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "CREATE FUNCTION pg_temp.peek(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
         $$ BEGIN INSERT INTO pg_temp.seen VALUES ($1); RETURN true; END $$",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for query in [
        "SELECT * FROM reporting.calls WHERE pg_temp.peek(organization_name) AND pg_temp.peek(call_id::text) AND pg_temp.peek(extension) AND pg_temp.peek(user_name)",
        "SELECT * FROM reporting.call_parties WHERE pg_temp.peek(extension) AND pg_temp.peek(call_id::text) AND pg_temp.peek(user_name)",
        "SELECT * FROM reporting.extensions WHERE pg_temp.peek(extension) AND pg_temp.peek(user_name)",
        "SELECT * FROM reporting.organizations WHERE pg_temp.peek(organization_name) AND pg_temp.peek(organization_code)",
        "SELECT * FROM reporting.daily_organization WHERE day >= '2026-03-01' AND pg_temp.peek(organization_name)",
        "SELECT * FROM reporting.concurrency_hourly WHERE hour >= '2026-03-10' AND hour < '2026-03-12' AND pg_temp.peek(organization_name)",
        "SELECT * FROM reporting.calls c JOIN reporting.call_parties p USING (call_id) WHERE pg_temp.peek(p.extension || c.organization_code)",
    ] {
        sqlx::query(query).execute(&mut conn).await.unwrap();
    }
    let seen: Vec<String> = sqlx::query_scalar("SELECT DISTINCT value FROM pg_temp.seen")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(
        seen.iter().any(|v| v == "Acme"),
        "the function ran: {seen:?}"
    );
    for secret in globex_values(&calls) {
        assert!(
            !seen.iter().any(|v| v.contains(&secret)),
            "{secret} reached the analyst's function: {seen:?}"
        );
    }
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();

    // EXPLAIN tells nothing either: a plan never shows another organization's values, and
    // asking for one of its values gives the very same plan, rows and all, as asking for a
    // value nobody has.
    for (column, view, theirs, nobody) in [
        (
            "organization_name",
            "reporting.calls",
            "Globex",
            "Nobody Ltd",
        ),
        ("user_name", "reporting.calls", "Carol", "Nobody"),
        (
            "extension",
            "reporting.call_parties",
            "0007*210",
            "0009*999",
        ),
        (
            "organization_code",
            "reporting.daily_organization",
            "0007",
            "0009",
        ),
        ("user_name", "reporting.extensions", "Carol", "Nobody"),
        (
            "organization_name",
            "reporting.organizations",
            "Globex",
            "Nobody Ltd",
        ),
    ] {
        let theirs_plan = plan_of(
            &mut conn,
            format!("SELECT * FROM {view} WHERE {column} = '{theirs}'"),
        )
        .await;
        let nobody_plan = plan_of(
            &mut conn,
            format!("SELECT * FROM {view} WHERE {column} = '{nobody}'"),
        )
        .await;
        assert_eq!(
            theirs_plan.replace(theirs, "X"),
            nobody_plan.replace(nobody, "X"),
            "{view}.{column}"
        );
    }
    let everything = plan_of(
        &mut conn,
        "SELECT * FROM reporting.calls c JOIN reporting.call_parties p USING (call_id)".into(),
    )
    .await;
    for secret in globex_values(&calls) {
        assert!(
            !everything.contains(&secret),
            "{secret} in a plan:\n{everything}"
        );
    }
    drop_analyst(&db.url, &name, conn).await;
}

#[tokio::test]
async fn reporting_roles_are_made_and_dropped_by_the_command_line_only_as_asked() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    store_hand_built_calls(&db.pool).await;

    // A password from standard input, and a statement timeout of its own.
    let name = unique_role("bi");
    let mut command = cli(&db.url);
    command.args([
        "reporting",
        "role",
        "create",
        "--name",
        &name,
        "--statement-timeout",
        "5m",
        "--password-stdin",
    ]);
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "correct-horse-battery-staple").unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(created["role"], name.as_str());
    assert_eq!(
        created["password"],
        Value::Null,
        "a password of one's own is not printed"
    );
    assert_eq!(created["organizationId"], Value::Null);
    assert_eq!(created["statementTimeoutMs"], 300_000);
    let url = with_credentials(&db.url, &name, "correct-horse-battery-staple");
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(timeout, "5min");
    // It sees every organization, and its timeout bounds what it runs.
    let orgs = rows(
        &mut conn,
        "SELECT organization_code FROM reporting.organizations ORDER BY 1",
    )
    .await;
    assert_eq!(
        orgs,
        vec![
            json!({"organization_code": "0003"}),
            json!({"organization_code": "0007"})
        ]
    );
    sqlx::query("SET statement_timeout = 100")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(refused(&mut conn, "SELECT pg_sleep(1)").await, "57014");
    // Not even the password's verifier is readable to it.
    let verifiers: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_authid")
        .fetch_optional(&mut conn)
        .await
        .map(|n| n.unwrap_or(0))
        .unwrap_or(0);
    assert_eq!(verifiers, 0);
    // The database keeps a SCRAM verifier, never the password.
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&name)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    assert!(!stored.contains("correct-horse"));

    // Refusals: each says why, exits non-zero and changes nothing.
    let unknown_org = (f.other_org + 100).to_string();
    for (args, message) in [
        (
            vec!["reporting", "role", "create", "--name", &name],
            "already exists",
        ),
        (
            vec!["reporting", "role", "create", "--name", "Bad-Name"],
            "lower case",
        ),
        (
            vec!["reporting", "role", "create", "--name", "pg_mine"],
            "reserved",
        ),
        (
            vec![
                "reporting",
                "role",
                "create",
                "--name",
                "fresh_x",
                "--org",
                &unknown_org,
            ],
            "does not exist",
        ),
        (
            vec![
                "reporting",
                "role",
                "create",
                "--name",
                "fresh_x",
                "--statement-timeout",
                "0s",
            ],
            "from 1s",
        ),
        (
            vec![
                "reporting",
                "role",
                "create",
                "--name",
                "fresh_x",
                "--statement-timeout",
                "soon",
            ],
            "not a duration",
        ),
        (
            vec!["reporting", "role", "drop", "--name", "postgres"],
            "not a reporting role",
        ),
        (
            vec!["reporting", "role", "drop", "--name", "no_such_role"],
            "not a reporting role",
        ),
    ] {
        let out = run_cli(&db.url, &args).await;
        assert!(!out.success, "{args:?} succeeded");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
    // Roles belong to the server, which other tests share: look for these names only.
    let made: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_roles WHERE rolname IN ('fresh_x', 'pg_mine', 'Bad-Name', 'bad-name')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(made, 0);
    assert_eq!(count(&db.pool, "reporting_roles").await, 1);

    // Dropping it: its open session sees nothing from then on, and it can no longer log in.
    let dropped_while_open =
        run_cli(&db.url, &["reporting", "role", "drop", "--name", &name]).await;
    if dropped_while_open.success {
        let seen = sqlx::query("SELECT * FROM reporting.calls")
            .fetch_all(&mut conn)
            .await;
        assert!(
            seen.map_or(true, |rows| rows.is_empty()),
            "a dropped role's session still sees rows"
        );
        conn.close().await.ok();
    } else {
        // PostgreSQL may refuse while the session holds objects; close it and drop again.
        conn.close().await.unwrap();
        let again = run_cli(&db.url, &["reporting", "role", "drop", "--name", &name])
            .await
            .json();
        assert_eq!(again, json!({ "dropped": name }));
    }
    assert!(PgConnection::connect(&url).await.is_err());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM reporting_roles")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// Ended and live calls at known times relative to now, for retention.
async fn ended_at(pool: &PgPool, ended: DateTime<Utc>) -> uuid::Uuid {
    let published = (ended - ChronoDuration::minutes(5)).to_rfc3339();
    store_call(
        pool,
        "0003*210",
        &published,
        None,
        Some(&ended.to_rfc3339()),
        &[party("00", "0003*210", 2), party("01", "0003*211", 2)],
    )
    .await
}

#[tokio::test]
async fn history_prune_deletes_old_ended_calls_and_their_views_in_batches() {
    let db = test_db().await;
    fixture(&db.pool).await;
    let now = Utc::now();
    let mut old = Vec::new();
    for days in 40..47 {
        old.push(ended_at(&db.pool, now - ChronoDuration::days(days)).await);
    }
    let recent = ended_at(&db.pool, now - ChronoDuration::days(3)).await;
    let live = store_call(
        &db.pool,
        "0003*211",
        &(now - ChronoDuration::days(60)).to_rfc3339(),
        None,
        None,
        &[party("00", "0003*211", 8)],
    )
    .await;
    let cutoff = (now - ChronoDuration::days(30)).date_naive().to_string();

    // Batches of 3: 7 calls take three transactions, and the count is the total. The batches
    // are not held to the requests' statement timeout (1 ms here; each takes more).
    let mut command = cli(&db.url);
    command
        .args([
            "history",
            "prune",
            "--ended-before",
            &cutoff,
            "--batch",
            "3",
        ])
        .env("DATABASE_STATEMENT_TIMEOUT_MS", "1");
    let out = run_command(command).await;
    assert_eq!(out.json(), json!({"deleted": 7}));
    let left: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM phone_calls ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let mut expected = vec![recent, live];
    expected.sort();
    assert_eq!(
        left, expected,
        "old ended calls are gone; recent and live ones stay"
    );
    let orphans: i64 =
        sqlx::query_scalar("SELECT count(*) FROM phone_call_views WHERE phone_call_id = ANY($1)")
            .bind(&old)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(orphans, 0, "their views went with them");
    assert_eq!(count(&db.pool, "phone_call_views").await, 3);

    // Running it again finds nothing left to do.
    let again = run_cli(&db.url, &["history", "prune", "--ended-before", &cutoff]).await;
    assert_eq!(again.json(), json!({"deleted": 0}));

    // Bad input changes nothing.
    let tomorrow = (now + ChronoDuration::days(1)).date_naive().to_string();
    for (args, message) in [
        (
            vec!["history", "prune", "--ended-before", tomorrow.as_str()],
            "future",
        ),
        (
            vec!["history", "prune", "--ended-before", "last week"],
            "not a date",
        ),
        (
            vec![
                "history",
                "prune",
                "--ended-before",
                "2026-01-01",
                "--batch",
                "0",
            ],
            "--batch",
        ),
        (
            vec![
                "history",
                "prune",
                "--ended-before",
                "2026-01-01",
                "--batch",
                "100001",
            ],
            "--batch",
        ),
    ] {
        let out = run_cli(&db.url, &args).await;
        assert!(!out.success, "{args:?}");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
    assert_eq!(count(&db.pool, "phone_calls").await, 2);
}

#[tokio::test]
async fn maintenance_commands_give_up_on_a_database_that_does_not_answer() {
    let db = test_db().await;
    let proxy = DbProxy::start(&db.url).await;
    proxy.freeze();
    for args in [
        ["calls", "end-stale", "--not-updated-for", "2h"],
        ["history", "prune", "--ended-before", "2026-01-01"],
    ] {
        let mut command = cli(&proxy.url);
        command.args(args).env("DATABASE_ACQUIRE_TIMEOUT_MS", "500");
        command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let started = std::time::Instant::now();
        let mut child = command.spawn().unwrap();
        let out = loop {
            if child.try_wait().unwrap().is_some() {
                break child.wait_with_output().unwrap();
            }
            if started.elapsed() > std::time::Duration::from_secs(10) {
                child.kill().ok();
                panic!("{args:?} still waits after 10 s");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let took = started.elapsed();
        assert!(!out.status.success(), "{args:?}");
        assert!(
            took < std::time::Duration::from_secs(5),
            "{args:?} took {took:?}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("timed out"), "{args:?} says why: {stderr}");
    }
}

#[tokio::test]
async fn end_stale_ends_calls_the_switch_forgot_and_the_switch_can_still_correct_them() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let pool = app.pool();
    let switch = token_for(pool, f.switch).await;
    // Two live calls through the feed; one of them last heard of three hours ago.
    let stale = new_call_id();
    let fresh = new_call_id();
    for id in [&stale, &fresh] {
        assert_eq!(
            app.put_report(&switch, id, &first_report(id, 5))
                .await
                .status(),
            201
        );
    }
    let heard = Utc::now() - ChronoDuration::hours(3);
    sqlx::query("UPDATE phone_calls SET updated = $2 WHERE id = $1::uuid")
        .bind(&stale)
        .bind(heard)
        .execute(pool)
        .await
        .unwrap();

    for (args, message) in [
        (
            vec!["calls", "end-stale", "--not-updated-for", "30s"],
            "at least one minute",
        ),
        (
            vec!["calls", "end-stale", "--not-updated-for", "2 hours"],
            "not a duration",
        ),
        (
            vec![
                "calls",
                "end-stale",
                "--not-updated-for",
                "2h",
                "--batch",
                "0",
            ],
            "--batch",
        ),
    ] {
        let out = run_cli(&app.db.as_ref().unwrap().url, &args).await;
        assert!(!out.success, "{args:?}");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
    let url = &app.db.as_ref().unwrap().url;
    let mut command = cli(url);
    command
        .args(["calls", "end-stale", "--not-updated-for", "2h"])
        .env("DATABASE_STATEMENT_TIMEOUT_MS", "1");
    let out = run_command(command).await;
    assert_eq!(out.json(), json!({"ended": 1}));
    let (ended, sequence, views_live): (Option<DateTime<Utc>>, i64, bool) = sqlx::query_as(
        "SELECT c.ended, c.sequence, bool_or(v.call_live) FROM phone_calls c
         JOIN phone_call_views v ON v.phone_call_id = c.id WHERE c.id = $1::uuid GROUP BY 1, 2",
    )
    .bind(&stale)
    .fetch_one(pool)
    .await
    .unwrap();
    // It ended when it was last heard of (the published time of the report is later than that
    // here, and a call cannot end before it started).
    let published = at("2026-11-28T14:40:28Z");
    assert_eq!(
        ended,
        Some(heard.max(published)).map(|t| t.trunc_subsecs_to_micros())
    );
    assert_eq!(
        sequence, 5,
        "the sequence stays, so the switch can still correct the call"
    );
    assert!(!views_live, "its views left the live set with it");
    // The list no longer shows it; the fresh call is untouched.
    let org = token_for(pool, f.org_account).await;
    let listed: Value = app
        .get_with_authorization("/uapi/phoneCalls/@owner/@self/", &format!("Bearer {org}"))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![fresh.as_str()]);
    // Running it again ends nothing more.
    let again = run_cli(url, &["calls", "end-stale", "--not-updated-for", "2h"]).await;
    assert_eq!(again.json(), json!({"ended": 0}));

    // A report with a lower or equal sequence is still a replay; a higher one applies and
    // brings the call back as the switch describes it.
    let replay = app
        .put_report(&switch, &stale, &first_report(&stale, 5))
        .await;
    assert_eq!(replay.status(), 200);
    let live: bool =
        sqlx::query_scalar("SELECT ended IS NULL FROM phone_calls WHERE id = $1::uuid")
            .bind(&stale)
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(!live);
    let corrected = app
        .put_report(&switch, &stale, &first_report(&stale, 6))
        .await;
    assert_eq!(corrected.status(), 200);
    let live: bool =
        sqlx::query_scalar("SELECT ended IS NULL FROM phone_calls WHERE id = $1::uuid")
            .bind(&stale)
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(live, "the switch's later report wins");
}

/// Microsecond precision, as PostgreSQL stores timestamps.
trait TruncMicros {
    fn trunc_subsecs_to_micros(self) -> Self;
}

impl TruncMicros for DateTime<Utc> {
    fn trunc_subsecs_to_micros(self) -> Self {
        use chrono::DurationRound as _;
        self.duration_trunc(ChronoDuration::microseconds(1))
            .unwrap()
    }
}

#[tokio::test]
async fn a_service_role_with_createrole_only_can_run_everything_reporting_needs() {
    // The README's promise: the service's role needs CREATEROLE for the role commands, and no
    // superuser. A role like that owns a database of its own, migrates it, and makes and drops
    // an analyst there.
    let server = server_url();
    let service = unique_role("service");
    let database = format!("phonecalls_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&server).await.unwrap();
    sqlx::query(&format!(
        "CREATE ROLE \"{service}\" LOGIN CREATEROLE NOSUPERUSER NOCREATEDB PASSWORD 'service-password-1'"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(&format!(
        "CREATE DATABASE \"{database}\" OWNER \"{service}\""
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let url = with_credentials(
        &with_database(&server, &database),
        &service,
        "service-password-1",
    );
    let out = run_cli(&url, &["migrate"]).await;
    assert!(out.success, "{}", out.stderr);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!superuser);
    fixture(&pool).await;
    store_hand_built_calls(&pool).await;

    let (name, mut conn) = analyst(&url, None).await;
    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM calls")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(calls, 8);
    drop_analyst(&url, &name, conn).await;
    pool.close().await;
    sqlx::query(&format!("DROP DATABASE \"{database}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("DROP ROLE \"{service}\""))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn every_reporting_view_and_column_is_described() {
    let db = test_db().await;
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname || coalesce('.' || a.attname, '')
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'reporting'
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE coalesce(col_description(c.oid, a.attnum), '') = ''
            OR obj_description(c.oid, 'pg_class') IS NULL
         ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(missing, Vec::<String>::new());
    let views: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_views WHERE schemaname = 'reporting'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(views, 6);
}

#[tokio::test]
async fn the_demo_history_of_scripts_serve_is_what_the_reports_show() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let org = f.org.to_string();
    let out = run_cli(
        &db.url,
        &[
            "demo",
            "history",
            "--org",
            &org,
            "--days",
            "3",
            "--per-day",
            "8",
        ],
    )
    .await;
    assert_eq!(out.json(), json!({"created": 24}));
    let (name, mut conn) = analyst(&db.url, Some(f.org)).await;
    // Eight ended calls on each of the three days before today, three answered in four.
    let daily = rows(
        &mut conn,
        "SELECT calls, answered FROM daily_organization
         WHERE day >= current_date - 3 AND day < current_date ORDER BY day",
    )
    .await;
    assert_eq!(daily, vec![json!({"calls": 8, "answered": 6}); 3]);
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM calls WHERE live")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(live, 0);
    drop_analyst(&db.url, &name, conn).await;
    // An organization without extensions (here: none at all) gets no demo calls.
    let unknown = (f.other_org + 100).to_string();
    let empty = run_cli(&db.url, &["demo", "history", "--org", &unknown]).await;
    assert!(!empty.success);
    assert!(
        empty.stderr.contains("has no extensions"),
        "{}",
        empty.stderr
    );
}
