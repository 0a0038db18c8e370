//! The service's bounds under bad input, faults and abusive clients: ambiguous input is refused,
//! one deadline bounds every request, a frozen database costs a request at most its deadline,
//! a tenant switch learns nothing of another organization's calls, slow and non-reading clients
//! are cut, and a flood of unknown tokens is not a flood of queries.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;
use phonecalls::accounts::{self, Role};
use sqlx::Connection as _;

/// Asserts an RFC 6749 §5.2 error body with `error` and `error_description` only.
async fn assert_oauth_error(response: reqwest::Response, status: u16, error: &str) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.expect("an OAuth error is JSON");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
}

#[tokio::test]
async fn oauth_refuses_nul_and_control_characters_before_the_database() {
    let app = spawn_app().await;
    for form in [
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "\0"),
            ("client_secret", "x"),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "a\u{1}b"),
            ("client_secret", "x"),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "pca_x"),
            ("client_secret", "\0"),
        ],
    ] {
        assert_oauth_error(app.oauth_token(&form).await, 400, "invalid_request").await;
    }
    // HTTP Basic `a%00b:x`, and two Authorization headers.
    let basic = base64_encode(b"a%00b:x");
    let response = app
        .client
        .post(app.url("/oauth/token.php"))
        .header("Authorization", format!("Basic {basic}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("Authorization", format!("Basic {}", base64_encode(b"a:b")))
        .header("Authorization", format!("Basic {}", base64_encode(b"c:d")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    assert_eq!(count(app.pool(), "access_tokens").await, 0);
}

#[tokio::test]
async fn an_oauth_form_over_the_size_limit_gets_an_rfc_6749_error() {
    let app = spawn_app().await;
    let padding = "x".repeat(17 * 1024);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "pca_x"),
        ("client_secret", padding.as_str()),
    ];
    assert_oauth_error(app.oauth_token(&form).await, 400, "invalid_request").await;
    // Without a Content-Length (chunked), the limit holds while reading.
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut request = String::from(
        "POST /oauth/token.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..40 {
        request.push_str(&format!("400\r\n{}\r\n", "a".repeat(1024)));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let body: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"], "invalid_request");
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn a_report_with_a_repeated_key_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    let id = new_call_id();
    let report = first_report(&id, 1).to_string();
    let repeated = report.replacen("\"sequence\":1", "\"sequence\":1,\"sequence\":9", 1);
    assert_ne!(report, repeated);
    let response = app
        .client
        .put(app.url(&format!("/switch/v1/phoneCalls/{id}")))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(repeated.clone())
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "request_invalid").await;
    let batch = format!(r#"{{"reports":[{repeated}]}}"#);
    let response = app
        .client
        .post(app.url("/switch/v1/phoneCalls"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(batch)
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "request_invalid").await;
    assert_eq!(count(app.pool(), "phone_calls").await, 0);
    // The same report without the repetition is fine.
    let response = app
        .client
        .put(app.url(&format!("/switch/v1/phoneCalls/{id}")))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(report)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn two_authorization_headers_are_refused_even_when_both_are_valid() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let alice = token_for(app.pool(), f.alice).await;
    let response = app
        .client
        .get(app.url("/uapi/phoneCalls/@me/@self/"))
        .header("Authorization", format!("Bearer {alice}"))
        .header("Authorization", format!("Bearer {alice}"))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "access_denied").await;
}

#[tokio::test]
async fn leap_seconds_are_refused_as_invalid_dates() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let alice = token_for(app.pool(), f.alice).await;
    let id = new_call_id();
    let mut report = first_report(&id, 1);
    report["published"] = json!("2016-12-31T23:59:60Z");
    assert_error(
        app.put_report(&switch, &id, &report).await,
        400,
        "request_invalid",
    )
    .await;
    let response = app
        .get_with_authorization(
            "/uapi/phoneCalls/@me/@self/?updatedSince=2016-12-31T23:59:60Z",
            &format!("Bearer {alice}"),
        )
        .await;
    assert_error(response, 400, "updatedsince_invalid").await;
    assert_eq!(count(app.pool(), "phone_calls").await, 0);
}

/// A report of the fixture's Carol (organization 0007) on her extension `0007*210`.
fn carol_report(id: &str, sequence: i64) -> Value {
    json!({
        "id": id, "sequence": sequence, "extension": "0007*210",
        "published": "2026-11-28T14:40:28Z",
        "phoneCallView": [{"id": "00", "extension": "0007*210", "source": ["0007*210"],
                           "destination": ["+15550100"], "flow": 4, "status": 5}]
    })
}

/// Sends the same report for `foreign` and for `unknown` and asserts the answers are the same,
/// byte for byte once the id is swapped.
async fn assert_same_answer(
    app: &TestApp,
    token: &str,
    foreign: &str,
    unknown: &str,
    report: Value,
) {
    let mut a = report.clone();
    a["id"] = json!(foreign);
    let mut b = report;
    b["id"] = json!(unknown);
    let b_first = b.clone();
    let (ra, rb) = (
        app.put_report(token, foreign, &a).await,
        app.put_report(token, unknown, &b_first).await,
    );
    let (sa, sb) = (ra.status(), rb.status());
    let (ba, bb) = (ra.text().await.unwrap(), rb.text().await.unwrap());
    assert_eq!(sa, sb, "{ba} / {bb}");
    assert_eq!(ba.replace(foreign, "ID"), bb.replace(unknown, "ID"));
    if !sa.is_success() {
        assert_names_no_schema(&ba);
    }
    // The batch answers alike too (on another unknown id: the first may now exist).
    let unknown = new_call_id();
    b["id"] = json!(unknown);
    let (ra, rb) = (
        app.post_batch(token, &[a]).await,
        app.post_batch(token, &[b]).await,
    );
    let (ba, bb) = (ra.text().await.unwrap(), rb.text().await.unwrap());
    assert_eq!(ba.replace(foreign, "ID"), bb.replace(&unknown, "ID"));
}

#[tokio::test]
async fn a_switch_of_one_organization_cannot_tell_another_organizations_call_from_an_unknown_id() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let acme_switch = accounts::create_user(app.pool(), "Acme PBX", Role::Switch, Some(f.org))
        .await
        .unwrap()
        .id;
    let acme = token_for(app.pool(), acme_switch).await;
    let global = token_for(app.pool(), f.switch).await;
    // Globex's call, stored at sequence 5.
    let foreign = new_call_id();
    let stored = carol_report(&foreign, 5);
    assert_eq!(
        app.put_report(&global, &foreign, &stored).await.status(),
        201
    );
    let before: Value =
        sqlx::query_scalar("SELECT to_jsonb(c) - 'updated' FROM phone_calls c WHERE id = $1::uuid")
            .bind(&foreign)
            .fetch_one(app.pool())
            .await
            .unwrap();

    let mut cases = vec![
        // Acme's own numbers, at, below and above the stored sequence.
        first_report("x", 1),
        first_report("x", 5),
        first_report("x", 9),
        // Globex's numbers, which Acme's switch may not report.
        carol_report("x", 9),
    ];
    // Without views, or without extension: a first report needs them.
    let mut no_views = first_report("x", 9);
    no_views.as_object_mut().unwrap().remove("phoneCallView");
    cases.push(no_views);
    let mut no_extension = first_report("x", 9);
    no_extension.as_object_mut().unwrap().remove("extension");
    cases.push(no_extension);
    for (i, report) in cases.into_iter().enumerate() {
        let unknown = new_call_id();
        assert_same_answer(&app, &acme, &foreign, &unknown, report).await;
        let after: Value = sqlx::query_scalar(
            "SELECT to_jsonb(c) - 'updated' FROM phone_calls c WHERE id = $1::uuid",
        )
        .bind(&foreign)
        .fetch_one(app.pool())
        .await
        .unwrap();
        assert_eq!(before, after, "case {i} changed Globex's call");
    }
    let views: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM phone_call_views WHERE phone_call_id = $1::uuid AND extension = '0007*210'",
    )
    .bind(&foreign)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(views, 1, "Globex's views are untouched");
}

#[tokio::test]
async fn a_flood_of_one_unknown_token_costs_one_lookup_and_a_token_issued_later_works_at_once() {
    let (app, proxy, _, pool) = app_behind_a_proxy(|f| f.alice, &[]).await;
    let f_alice: i64 = sqlx::query_scalar("SELECT id FROM users WHERE name = 'Alice'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let unknown = format!("pct_{}", "A".repeat(43));
    assert!(phonecalls::auth::token::looks_like_token(&unknown));
    let bearer = format!("Bearer {unknown}");
    let first = app
        .get_with_authorization("/uapi/phoneCalls/@me/@self/", &bearer)
        .await;
    assert_error(first, 401, "access_denied").await;
    // With the database unreachable, the unknown token is still refused from memory, many times.
    proxy.freeze();
    for _ in 0..50 {
        let again = app
            .get_with_authorization("/uapi/phoneCalls/@me/@self/", &bearer)
            .await;
        assert_error(again, 401, "access_denied").await;
    }
    proxy.thaw();
    // Someone issues exactly that token (as another service would): it works at once.
    sqlx::query(
        "INSERT INTO access_tokens (token_sha256, user_id, expires_at) VALUES ($1, $2, now() + interval '1 hour')",
    )
    .bind(phonecalls::auth::token::digest(&unknown).as_slice())
    .bind(f_alice)
    .execute(&pool)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let response = app
            .get_with_authorization("/uapi/phoneCalls/@me/@self/", &bearer)
            .await;
        if response.status() == StatusCode::NO_CONTENT {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the issued token was still refused: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_frozen_database_costs_each_request_at_most_its_deadline_and_the_service_recovers() {
    let (app, proxy, token, pool) = app_behind_a_proxy(
        |f| f.org_account,
        &[
            ("DATABASE_ACQUIRE_TIMEOUT_MS", "500"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "800"),
            ("REQUEST_TIMEOUT_MS", "1500"),
            ("TOKEN_CACHE_SECONDS", "0"),
        ],
    )
    .await;
    let switch: i64 = sqlx::query_scalar("SELECT id FROM users WHERE role = 'switch'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let switch = token_for(&pool, switch).await;
    let bearer = format!("Bearer {token}");
    assert_eq!(
        app.get_with_authorization("/uapi/phoneCalls/@owner/@self/", &bearer)
            .await
            .status(),
        204
    );
    proxy.freeze();
    let started = Instant::now();
    let mut requests = Vec::new();
    for i in 0..12 {
        let (client, url, bearer, switch) = (
            app.client.clone(),
            app.url(""),
            bearer.clone(),
            switch.clone(),
        );
        requests.push(tokio::spawn(async move {
            let began = Instant::now();
            let response = if i % 2 == 0 {
                client
                    .get(format!("{url}/uapi/phoneCalls/@owner/@self/"))
                    .header("Authorization", bearer)
                    .send()
                    .await
                    .unwrap()
            } else {
                let id = new_call_id();
                client
                    .put(format!("{url}/switch/v1/phoneCalls/{id}"))
                    .bearer_auth(switch)
                    .json(&first_report(&id, 1))
                    .send()
                    .await
                    .unwrap()
            };
            (response, began.elapsed())
        }));
    }
    for request in requests {
        let (response, took) = request.await.unwrap();
        assert!(
            took < Duration::from_millis(1500 + 700),
            "a request took {took:?} against a 1.5 s deadline"
        );
        let retry: u32 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=5).contains(&retry), "Retry-After {retry}");
        assert_error(response, 503, "service_unavailable").await;
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    proxy.thaw();
    // Connections that were stuck are replaced, not reused: the service answers again soon.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app
            .get_with_authorization("/uapi/phoneCalls/@owner/@self/", &bearer)
            .await;
        if response.status().is_success() {
            break;
        }
        assert!(Instant::now() < deadline, "the service did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Writes answered 503 may or may not have been stored; none of them is half-stored.
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM phone_calls c WHERE NOT EXISTS (SELECT FROM phone_call_views v WHERE v.phone_call_id = c.id)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0);
}

#[tokio::test]
async fn one_pooled_connection_serves_lists_and_readiness_is_not_the_pools_business() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let token = token_for(&db.pool, f.org_account).await;
    let url = db.url.clone();
    let pool = db.pool.clone();
    let settings = settings_with(
        &url,
        &[("DATABASE_POOL_SIZE", "1"), ("TOKEN_CACHE_SECONDS", "10")],
    );
    let app = spawn_app_on(db, settings).await;
    let bearer = format!("Bearer {token}");
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(
        app.get_with_authorization("/uapi/phoneCalls/@owner/@self/", &bearer)
            .await
            .status(),
        204
    );
    // The one request connection is busy (a list waits on a lock): readiness is still 200.
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE phone_calls IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let busy = {
        let (client, url, bearer) = (
            app.client.clone(),
            app.url("/uapi/phoneCalls/@owner/@self/"),
            bearer.clone(),
        );
        tokio::spawn(async move { client.get(url).header("Authorization", bearer).send().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!busy.is_finished());
    assert_eq!(app.get("/readyz").await.status(), 200);
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    assert_eq!(busy.await.unwrap().unwrap().status(), 204);
    drop(pool);
}

/// Sends `head` and then `body` a few bytes at a time, `pause` apart; answers the status code and
/// body the server sent, and how long after the head it came.
async fn slow_request(
    address: &str,
    head: &str,
    body: &[u8],
    pause: Duration,
) -> (u16, String, Duration) {
    let mut stream = TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let body = body.to_vec();
    let sender = tokio::spawn(async move {
        for piece in body.chunks(10) {
            if writer.write_all(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut answer)).await;
    let took = started.elapsed();
    sender.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body, took)
}

#[tokio::test]
async fn a_body_sent_slower_than_the_minimum_rate_is_cut_with_408() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    let id = new_call_id();
    let body = first_report(&id, 1).to_string();
    let head = format!(
        "PUT /switch/v1/phoneCalls/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // 10 bytes every 100 ms: 100 bytes/s, far below the default 1024.
    let (status, answer, took) = slow_request(
        &app.address,
        &head,
        body.as_bytes(),
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(status, 408, "{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("an envelope");
    assert_eq!(answer["error"]["code"], "request_timeout");
    assert!(took < Duration::from_secs(4), "cut after {took:?}");
    assert_eq!(count(app.pool(), "phone_calls").await, 0);
}

#[tokio::test]
async fn a_body_that_keeps_its_rate_but_outlasts_the_deadline_is_cut_with_408() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let token = token_for(&db.pool, f.switch).await;
    let settings = settings_with(
        &db.url.clone(),
        &[
            ("REQUEST_TIMEOUT_MS", "1500"),
            ("BODY_MIN_BYTES_PER_SECOND", "10"),
        ],
    );
    let app = spawn_app_on(db, settings).await;
    let id = new_call_id();
    let body = first_report(&id, 1).to_string();
    let head = format!(
        "PUT /switch/v1/phoneCalls/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (status, _, took) = slow_request(
        &app.address,
        &head,
        body.as_bytes(),
        Duration::from_millis(50),
    )
    .await;
    assert_eq!(status, 408);
    assert!(
        took < Duration::from_millis(1500 + 1000),
        "cut after {took:?}"
    );
    assert_eq!(count(app.pool(), "phone_calls").await, 0);
}

#[tokio::test]
async fn a_client_that_stops_reading_a_large_page_is_dropped_after_the_write_timeout() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let org_token = token_for(&db.pool, f.org_account).await;
    let switch = token_for(&db.pool, f.switch).await;
    let url = db.url.clone();
    let settings = settings_with(&url, &[("WRITE_TIMEOUT_MS", "500")]);
    let app = spawn_app_on(db, settings).await;
    // Twelve megabytes or so of live calls: more than the kernel's socket buffers hold
    // (4 MiB at most for sending here), so most of the page stays with the service.
    let reports: Vec<Value> = (0..5000)
        .map(|_| {
            let mut report = first_report(&new_call_id(), 1);
            let views: Vec<Value> = (0..12)
                .map(|i| {
                    let mut view = report["phoneCallView"][i % 2].clone();
                    view["id"] = json!(format!("{i:02}"));
                    view
                })
                .collect();
            report["phoneCallView"] = json!(views);
            report
        })
        .collect();
    for chunk in reports.chunks(500) {
        assert_eq!(app.post_batch(&switch, chunk).await.status(), 200);
    }
    let full = app
        .get_with_authorization(
            "/uapi/phoneCalls/@owner/@self/?count=5000",
            &format!("Bearer {org_token}"),
        )
        .await
        .bytes()
        .await
        .unwrap()
        .len();
    assert!(full > 8_000_000, "a large page: {full} bytes");

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address = app.address.trim_start_matches("http://").parse().unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let request = format!(
        "GET /uapi/phoneCalls/@owner/@self/?count=5000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {org_token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Not reading, from the moment the response begins (however long the page took to make),
    // for three times the write timeout.
    tokio::time::timeout(Duration::from_secs(30), stream.readable())
        .await
        .expect("the response begins")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut received = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(
        received.len() < full,
        "the stalled response was dropped: {} of {full} bytes arrived",
        received.len()
    );
    // Everyone else is served as before.
    let response = app
        .get_with_authorization(
            "/uapi/phoneCalls/@owner/@self/?count=5",
            &format!("Bearer {org_token}"),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn connections_beyond_max_connections_wait_until_one_closes() {
    let db = test_db().await;
    let settings = settings_with(
        &db.url.clone(),
        &[("MAX_CONNECTIONS", "2"), ("HTTP_WORKERS", "1")],
    );
    let app = spawn_app_on(db, settings).await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        // A request head in progress holds the connection.
        stream.write_all(b"GET /livez HTTP/1.1\r\n").await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = {
        let url = app.url("/livez");
        tokio::spawn(async move { reqwest::get(url).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served while two were open"
    );
    drop(held);
    let response = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a connection closed")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Sends raw bytes and answers the status line's code and the rest of the answer.
async fn raw(address: &str, bytes: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn the_answers_of_the_http_parser_are_bare_as_the_readme_says() {
    let app = spawn_app().await;
    // More than 96 headers: 431 with no body, as documented.
    let mut request = String::from("GET /livez HTTP/1.1\r\nHost: x\r\n");
    for i in 0..100 {
        request.push_str(&format!("X-H{i}: v\r\n"));
    }
    request.push_str("\r\n");
    let (status, answer) = raw(&app.address, request.as_bytes()).await;
    assert_eq!(status, 431, "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("x-request-id"),
        "{answer}"
    );
    // A malformed request line: 400, bare.
    let (status, answer) = raw(&app.address, b"GET\x01 / HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("content-type"),
        "{answer}"
    );
    // 96 headers are fine, and get the service's own answer.
    let mut request = String::from("GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..90 {
        request.push_str(&format!("X-H{i}: v\r\n"));
    }
    request.push_str("\r\n");
    let (status, answer) = raw(&app.address, request.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("x-request-id"));
}

#[tokio::test]
async fn token_revoke_reads_the_token_from_standard_input() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let token = token_for(&db.pool, f.alice).await;
    let mut command = cli(&db.url);
    command
        .args(["token", "revoke", "--token", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let line = format!("{token}\n");
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"{"revoked":true}"#
    );
    let revoked: bool = sqlx::query_scalar("SELECT revoked_at IS NOT NULL FROM access_tokens")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(revoked);
}

/// The service's sessions get their settings (in the startup packet; through a pooler in
/// transaction mode, in each transaction): checked on real sessions of the pool the service
/// builds, not only in the options it sends. Through PgBouncer (`TEST_POOLER_URL`), many
/// sessions run at once on fewer server connections, so that each server connection is shared.
#[tokio::test]
async fn service_sessions_run_generic_plans_without_jit_nor_workers_under_the_statement_timeout() {
    let db = test_db().await;
    let settings = settings_with(
        &db.url,
        &[
            ("DATABASE_STATEMENT_TIMEOUT_MS", "2345"),
            ("DATABASE_POOL_SIZE", "8"),
        ],
    );
    let pool =
        phonecalls::db::Pool::new(phonecalls::db::lazy_pool(&settings), &settings, "primary");
    let sessions = (0..32).map(|_| {
        let pool = pool.clone();
        async move {
            let mut session = pool.session().await.unwrap();
            let settings: (String, String, String, String) = sqlx::query_as(
                "SELECT current_setting('jit'), current_setting('plan_cache_mode'), \
                 current_setting('max_parallel_workers_per_gather'), current_setting('statement_timeout')",
            )
            .persistent(pool.prepared())
            .fetch_one(&mut *session)
            .await
            .unwrap();
            session.end().await.unwrap();
            settings
        }
    });
    for settings in futures_util::future::join_all(sessions).await {
        assert_eq!(
            settings,
            (
                "off".to_string(),
                "force_generic_plan".to_string(),
                "0".to_string(),
                "2345ms".to_string()
            )
        );
    }
}
