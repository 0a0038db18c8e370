//! `GET /metrics` (issue 12): served on `METRICS_LISTEN_ADDR` only, in a format Prometheus's
//! own `promtool check metrics` accepts, with what each kind of request did counted under its
//! route pattern, never under the path a client sent.
//!
//! The recorder is global to the test process, so other tests' requests may be counted too:
//! every figure is checked as a growth between two scrapes, at least what this test did.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::helpers::*;

/// Every sample of a scrape, by its full name with labels as printed (`name{a="b"}`).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the sample named `name` whose labels include every one of `labels`.
fn value(samples: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(key, _)| {
            let (n, rest) = key.split_once('{').unwrap_or((key, ""));
            n == name
                && labels
                    .iter()
                    .all(|(l, v)| rest.contains(&format!("{l}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .sum()
}

async fn scrape(app: &TestApp) -> (reqwest::StatusCode, String, String) {
    let port = app.metrics_port.expect("the metrics listener is on");
    let response = app
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("scraping /metrics");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// `promtool check metrics` (Debian's `prometheus` package) on `text`: its exit status and what
/// it printed.
fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[tokio::test]
async fn metrics_count_what_requests_did_under_their_route_and_promtool_accepts_them() {
    let db = test_db().await;
    let settings = settings_with(&db.url, &[("METRICS_LISTEN_ADDR", "127.0.0.1:0")]);
    let app = spawn_app_on(db, settings).await;
    let f = fixture(app.pool()).await;
    let alice = format!("Bearer {}", token_for(app.pool(), f.alice).await);
    let switch = token_for(app.pool(), f.switch).await;
    let (_, _, before) = scrape(&app).await;
    let before = samples(&before);

    // Lists by two paths of one route, the second from the token cache; one refused.
    let list = format!("/uapi/phoneCalls/{}/@self/", f.alice);
    for path in ["/uapi/phoneCalls/@me/@self/", list.as_str()] {
        let r = app.get_with_authorization(path, &alice).await;
        assert_eq!(r.status(), 204, "{path}");
    }
    let refused = app
        .get_with_authorization("/uapi/phoneCalls/@me/@self/", "Bearer nope")
        .await;
    assert_eq!(refused.status(), 401);
    // Switch reports: applied, then the same again (stale), then one that is not valid.
    let id = new_call_id();
    let report = first_report(&id, 1);
    assert_eq!(app.put_report(&switch, &id, &report).await.status(), 201);
    assert_eq!(app.put_report(&switch, &id, &report).await.status(), 200);
    let invalid = json!({"id": id, "sequence": "two"});
    assert_eq!(app.put_report(&switch, &id, &invalid).await.status(), 400);
    // A batch of two: one applied, one refused.
    let other = new_call_id();
    let batch = app
        .post_batch(&switch, &[first_report(&other, 1), json!({"id": other})])
        .await;
    assert_eq!(batch.status(), 200);

    let (status, content_type, text) = scrape(&app).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let (accepted, said) = promtool_check(&text);
    assert!(
        accepted,
        "promtool check metrics refused the scrape:\n{said}\n{text}"
    );
    assert!(said.trim().is_empty(), "promtool has remarks: {said}");
    let after = samples(&text);
    let grew = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };

    let route = "/uapi/phoneCalls/{tail}";
    assert!(
        grew(
            "phonecalls_http_requests_total",
            &[("route", route), ("method", "GET"), ("status", "204")]
        ) >= 2.0
    );
    assert!(
        grew(
            "phonecalls_http_requests_total",
            &[("route", route), ("method", "GET"), ("status", "401")]
        ) >= 1.0
    );
    assert!(
        grew(
            "phonecalls_http_request_duration_seconds_count",
            &[("route", route), ("method", "GET")]
        ) >= 3.0
    );
    // Paths as clients sent them never become labels.
    assert!(!text.contains("@me"), "a raw path is a label:\n{text}");
    assert!(!text.contains(&list), "a raw path is a label:\n{text}");
    assert!(!text.contains(&id), "a call id is a label:\n{text}");

    assert!(grew("phonecalls_switch_reports_total", &[("outcome", "applied")]) >= 2.0);
    assert!(grew("phonecalls_switch_reports_total", &[("outcome", "stale")]) >= 1.0);
    assert!(
        grew(
            "phonecalls_switch_reports_total",
            &[("outcome", "rejected")]
        ) >= 2.0
    );
    assert!(grew("phonecalls_switch_group_commit_reports_count", &[]) >= 2.0);
    assert!(
        grew(
            "phonecalls_cache_lookups_total",
            &[("cache", "tokens"), ("result", "hit")]
        ) >= 1.0
    );
    assert!(
        grew(
            "phonecalls_cache_lookups_total",
            &[("cache", "tokens"), ("result", "miss")]
        ) >= 2.0
    );
    for statement in ["token_lookup", "list_page", "feed_write"] {
        assert!(
            grew(
                "phonecalls_db_statement_duration_seconds_count",
                &[("statement", statement), ("outcome", "ok")]
            ) >= 1.0,
            "{statement}"
        );
    }
    assert!(
        grew(
            "phonecalls_db_pool_acquire_duration_seconds_count",
            &[("pool", "primary")]
        ) >= 4.0
    );
    // Read at the scrape: the pool has connections, one of them at least idle now.
    assert!(
        value(
            &after,
            "phonecalls_db_pool_connections",
            &[("pool", "primary"), ("state", "idle")]
        ) >= 1.0
    );
    assert!(value(&after, "phonecalls_db_pool_waiting", &[("pool", "primary")]) >= 0.0);
    // This test's client keeps its connection to the public port open.
    assert!(value(&after, "phonecalls_http_connections_open", &[]) >= 1.0);
    for family in [
        "phonecalls_http_requests_total",
        "phonecalls_db_statement_duration_seconds",
        "phonecalls_switch_reports_total",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no help"
        );
    }

    // Never on the public port.
    assert_eq!(app.get("/metrics").await.status(), 404);
}

#[tokio::test]
async fn without_a_metrics_address_there_is_no_metrics_listener() {
    let app = spawn_app().await;
    assert_eq!(app.metrics_port, None);
    assert_eq!(app.get("/metrics").await.status(), 404);
}

/// Requests refused for the database's sake are counted by reason: a list whose statement waits
/// on a lock is cut by its deadline, and one that finds the only connection taken meanwhile
/// gives up waiting for it.
#[tokio::test]
async fn refusals_by_the_deadline_and_by_the_pool_are_counted_by_reason() {
    let db = test_db().await;
    let settings = settings_with(
        &db.url,
        &[
            ("METRICS_LISTEN_ADDR", "127.0.0.1:0"),
            ("DATABASE_POOL_SIZE", "1"),
            ("DATABASE_ACQUIRE_TIMEOUT_MS", "300"),
            ("REQUEST_TIMEOUT_MS", "1000"),
        ],
    );
    let app = spawn_app_on(db, settings).await;
    let f = fixture(app.pool()).await;
    let bearer = format!("Bearer {}", token_for(app.pool(), f.alice).await);
    // Token and path resolved, and cached, before the table is locked.
    let first = app
        .get_with_authorization("/uapi/phoneCalls/@me/@self/", &bearer)
        .await;
    assert_eq!(first.status(), 204);
    let (_, _, before) = scrape(&app).await;
    let before = samples(&before);

    let mut lock = app.pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE phone_calls IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let cut = app.get_with_authorization("/uapi/phoneCalls/@me/@self/", &bearer);
    let waiting = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        app.get_with_authorization("/uapi/phoneCalls/@me/@self/", &bearer)
            .await
    };
    let (cut, waiting) = tokio::join!(cut, waiting);
    lock.rollback().await.unwrap();
    assert_eq!(cut.status(), 503);
    assert_eq!(waiting.status(), 503);

    let (_, _, text) = scrape(&app).await;
    let after = samples(&text);
    let grew = |reason: &str| {
        value(
            &after,
            "phonecalls_requests_refused_total",
            &[("reason", reason)],
        ) - value(
            &before,
            "phonecalls_requests_refused_total",
            &[("reason", reason)],
        )
    };
    assert!(grew("deadline") >= 1.0, "{text}");
    assert!(grew("pool_timeout") >= 1.0, "{text}");
}
