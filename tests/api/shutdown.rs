//! The real binary under SIGTERM: readiness turns 503, in-flight requests finish, the process
//! exits within its drain time, and its JSON logs never carry a token, a secret or a query string.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::*;
use phonecalls::accounts;
use sqlx::{Connection, PgConnection};

/// The binary serving on a random port, with its stdout (the JSON log) collected.
struct Served {
    child: Child,
    address: String,
    log: Arc<Mutex<Vec<String>>>,
}

async fn serve(database_url: &str, env: &[(&str, &str)]) -> Served {
    let mut command = cli(database_url);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("starting phonecalls serve");
    let stdout = child.stdout.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) {
                if entry["message"] == "listening" {
                    let _ = port_tx.send(entry["address"].as_str().unwrap_or_default().to_string());
                }
            }
            sink.lock().unwrap().push(line);
        }
    });
    let address =
        tokio::task::spawn_blocking(move || port_rx.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("the server logs the address it listens on");
    let served = Served {
        child,
        address: format!("http://{address}"),
        log,
    };
    // Ready once migrations have run.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/readyz", served.address)).await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the server never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    served
}

fn sigterm(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit, up to `limit`; returns its exit status and how long it took.
async fn wait_exit(mut child: Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("the process did not exit within {limit:?} of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn trusted_app(pool: &sqlx::PgPool) -> (accounts::CreatedApp, i64) {
    let f = fixture(pool).await;
    (
        accounts::create_app(pool, f.alice, "Wallboard", true)
            .await
            .unwrap(),
        f.alice,
    )
}

async fn request_token(
    client: &reqwest::Client,
    address: &str,
    app: &accounts::CreatedApp,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{address}/oauth/token.php"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.as_str()),
        ])
        .send()
        .await
}

#[tokio::test]
async fn sigterm_turns_readiness_off_and_lets_a_slow_request_finish() {
    let db = test_db().await;
    let (app, alice) = trusted_app(&db.pool).await;
    let token = token_for(&db.pool, alice).await;
    let served = serve(
        &db.url,
        &[
            ("SHUTDOWN_DELAY_SECONDS", "1"),
            ("SHUTDOWN_DRAIN_SECONDS", "10"),
        ],
    )
    .await;
    let client = reqwest::Client::new();

    // Requests that carry secrets in every place a client may put them.
    client
        .get(format!(
            "{}/uapi/phoneCalls/@me/@self/?accessRequestToken=Bearer%20{token}",
            served.address
        ))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{}/uapi/phoneCalls/@me/@self/", served.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let issued: serde_json::Value = request_token(&client, &served.address, &app)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issued_token = issued["access_token"].as_str().unwrap().to_string();

    // A slow request: the app lookup waits on a lock held by this test.
    let mut locker = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE apps IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let slow = {
        let (client, address, app) = (client.clone(), served.address.clone(), app.clone());
        tokio::spawn(async move { request_token(&client, &address, &app).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!slow.is_finished(), "the request is held by the lock");

    sigterm(&served.child);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = client
        .get(format!("{}/readyz", served.address))
        .send()
        .await
        .unwrap();
    assert_error(ready, 503, "service_unavailable").await;
    assert_eq!(
        client
            .get(format!("{}/livez", served.address))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Past the delay the server stops accepting, but the in-flight request is still served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!slow.is_finished());
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    let finished = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(finished.status(), 200);
    let body: serde_json::Value = finished.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");

    let (status, _) = wait_exit(served.child, Duration::from_secs(10)).await;
    assert!(status.success(), "clean exit: {status:?}");

    let log = served.log.lock().unwrap().join("\n");
    assert!(log.contains("request_id"), "request lines carry their id");
    for secret in [
        token.as_str(),
        issued_token.as_str(),
        app.client_secret.as_str(),
        &token[4..],
    ] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    assert!(
        !log.contains("accessRequestToken"),
        "a query string reached the log"
    );
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every log line is JSON");
    }
}

#[tokio::test]
async fn a_request_that_outlives_the_drain_time_does_not_hold_the_process() {
    let db = test_db().await;
    let (app, _) = trusted_app(&db.pool).await;
    let served = serve(&db.url, &[("SHUTDOWN_DRAIN_SECONDS", "1")]).await;
    let client = reqwest::Client::new();
    let mut locker = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE apps IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let stuck = {
        let (client, address, app) = (client.clone(), served.address.clone(), app.clone());
        tokio::spawn(async move { request_token(&client, &address, &app).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&served.child);
    let (_, took) = wait_exit(served.child, Duration::from_secs(8)).await;
    assert!(
        took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM with a 1 s drain"
    );
    assert!(
        stuck.await.unwrap().is_err(),
        "the stuck request was cut off"
    );
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
}

#[tokio::test]
async fn sigterm_with_the_database_frozen_exits_within_the_delay_and_drain_plus_a_second() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let token = token_for(&db.pool, f.org_account).await;
    let proxy = DbProxy::start(&db.url).await;
    let served = serve(
        &proxy.url,
        &[
            ("SHUTDOWN_DELAY_SECONDS", "1"),
            ("SHUTDOWN_DRAIN_SECONDS", "2"),
            ("TOKEN_CACHE_SECONDS", "0"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    proxy.freeze();
    // Requests stuck on the frozen database when the signal comes.
    let mut stuck = Vec::new();
    for _ in 0..6 {
        let request = client
            .get(format!("{}/uapi/phoneCalls/@owner/@self/", served.address))
            .bearer_auth(&token)
            .send();
        stuck.push(tokio::spawn(request));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&served.child);
    let (_, took) = wait_exit(served.child, Duration::from_secs(15)).await;
    assert!(
        took <= Duration::from_secs(1 + 2 + 1),
        "exited {took:?} after SIGTERM, with 1 s delay and 2 s drain"
    );
    for request in stuck {
        if let Ok(response) = request.await.unwrap() {
            assert_eq!(
                response.status(),
                503,
                "an answered request was refused, not failed"
            );
        }
    }
    proxy.thaw();
}

#[tokio::test]
async fn writes_in_flight_at_sigterm_get_their_real_answers_from_every_worker() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let switch = token_for(&db.pool, f.switch).await;
    let served = serve(
        &db.url,
        &[("HTTP_WORKERS", "2"), ("SHUTDOWN_DRAIN_SECONDS", "10")],
    )
    .await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // Open connections on both workers first, so that the pool's connections are spread.
    for _ in 0..8 {
        let id = new_call_id();
        let response = client
            .put(format!("{}/switch/v1/phoneCalls/{id}", served.address))
            .bearer_auth(&switch)
            .json(&first_report(&id, 1))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let mut locker = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE phone_calls IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let mut writes = Vec::new();
    for i in 0..40 {
        let id = new_call_id();
        let (client, address, switch) = (client.clone(), served.address.clone(), switch.clone());
        writes.push(tokio::spawn(async move {
            // Alternately single reports and small batches.
            if i % 2 == 0 {
                client
                    .put(format!("{address}/switch/v1/phoneCalls/{id}"))
                    .bearer_auth(&switch)
                    .json(&first_report(&id, 1))
                    .send()
                    .await
            } else {
                client
                    .post(format!("{address}/switch/v1/phoneCalls"))
                    .bearer_auth(&switch)
                    .json(&serde_json::json!({"reports": [first_report(&id, 1)]}))
                    .send()
                    .await
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    sigterm(&served.child);
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    for write in writes {
        let response = write.await.unwrap().expect("answered");
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status == 201 || (status == 200 && body.contains("\"status\":201")),
            "{status} {body}"
        );
    }
    let (status, _) = wait_exit(served.child, Duration::from_secs(15)).await;
    assert!(status.success());
    assert_eq!(count(&db.pool, "phone_calls").await, 48);
}

#[tokio::test]
async fn sigterm_ends_live_streams_cleanly_and_they_do_not_hold_the_drain() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let tokens = [
        token_for(&db.pool, f.alice).await,
        token_for(&db.pool, f.org_account).await,
        token_for(&db.pool, f.admin).await,
    ];
    let served = serve(&db.url, &[("SHUTDOWN_DRAIN_SECONDS", "10")]).await;
    let client = reqwest::Client::new();
    let mut streams = Vec::new();
    for token in &tokens {
        let mut response = client
            .get(format!("{}/uapi/phoneCalls/@me/@self/", served.address))
            .header("Accept", "text/event-stream")
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // Its snapshot has come: the stream is under way.
        let mut read = String::new();
        while !read.contains("event: snapshot") {
            let chunk = response.chunk().await.unwrap().expect("the snapshot");
            read.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        streams.push(response);
    }
    sigterm(&served.child);
    let sent = Instant::now();
    for mut response in streams {
        // Each response ends properly (its last chunk), not cut: no error, then the end.
        loop {
            match tokio::time::timeout(Duration::from_secs(2), response.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => panic!("the stream was cut, not ended: {e}"),
                Err(_) => panic!("a stream was still open 2 s after SIGTERM"),
            }
        }
    }
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    let (status, took) = wait_exit(served.child, Duration::from_secs(12)).await;
    assert!(status.success());
    assert!(
        took < Duration::from_secs(3),
        "exited {took:?} after SIGTERM: the streams held the 10 s drain"
    );
}
