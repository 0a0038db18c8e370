//! Operational endpoints (spec §4) and the error envelope of routes that do not exist.

use crate::helpers::*;

#[tokio::test]
async fn livez_and_readyz_answer_200_when_the_database_is_up() {
    let app = spawn_app().await;
    let live = app.get("/livez").await;
    assert_eq!(live.status(), 200);
    assert!(live.headers().contains_key("x-request-id"));
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn readyz_is_503_and_livez_200_while_the_database_is_unreachable() {
    let app = spawn_app_without_database().await;
    assert_eq!(app.get("/livez").await.status(), 200);
    let started = std::time::Instant::now();
    let headers = assert_error(app.get("/readyz").await, 503, "service_unavailable").await;
    let retry: u32 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry), "Retry-After {retry} within 1..=5");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "readiness answers within its deadline"
    );
}

#[tokio::test]
async fn readyz_is_503_until_the_schema_is_migrated() {
    let db = test_db().await;
    // MIGRATE_ON_START is on and nobody has run the migrations through this app yet.
    let settings = settings_with(&db.url, &[]);
    let app = phonecalls::startup::Application::build(settings).unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let response = reqwest::get(format!("{address}/readyz")).await.unwrap();
    assert_error(response, 503, "service_unavailable").await;
}

#[tokio::test]
async fn an_unknown_route_is_404_not_found_in_the_envelope() {
    let app = spawn_app().await;
    for path in ["/", "/nope", "/uapi/phoneCall/@me/@self", "/livez/extra"] {
        assert_error(app.get(path).await, 404, "not_found").await;
    }
}

#[tokio::test]
async fn an_unsupported_method_is_405_with_allow() {
    let app = spawn_app().await;
    let cases = [
        (reqwest::Method::POST, "/livez", "GET, HEAD"),
        (reqwest::Method::DELETE, "/readyz", "GET, HEAD"),
        (reqwest::Method::GET, "/oauth/token.php", "POST"),
        (reqwest::Method::PUT, "/oauth/token", "POST"),
    ];
    for (method, path, allow) in cases {
        let response = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        let headers = assert_error(response, 405, "method_not_allowed").await;
        assert_eq!(headers["allow"], allow, "{path}");
    }
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_an_insane_one_replaced() {
    let app = spawn_app().await;
    let echoed = app
        .client
        .get(app.url("/livez"))
        .header("X-Request-Id", "lb-1234.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "lb-1234.abc");
    let replaced = app
        .client
        .get(app.url("/livez"))
        .header("X-Request-Id", "has spaces and <html>")
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let a = app.get("/livez").await.headers()["x-request-id"].clone();
    let b = app.get("/livez").await.headers()["x-request-id"].clone();
    assert_ne!(a, b, "each request gets its own id");
}

#[tokio::test]
async fn readyz_is_503_as_soon_as_a_shutdown_starts() {
    let db = test_db().await;
    let settings = settings_with(&db.url, &[("SHUTDOWN_DELAY_SECONDS", "2")]);
    let app = spawn_app_on(db, settings).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let shutdown = app.shutdown.clone();
    let stopping = tokio::spawn(async move { shutdown.shutdown().await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_error(app.get("/readyz").await, 503, "service_unavailable").await;
    assert_eq!(
        app.get("/livez").await.status(),
        200,
        "still serving during the delay"
    );
    stopping.await.unwrap();
    assert!(
        app.client.get(app.url("/livez")).send().await.is_err(),
        "stopped after the delay"
    );
}
