//! Through PgBouncer in transaction mode (issue 12): what only holds there. `scripts/test` runs
//! this module, with a part of the rest of the suite, against the PgBouncer it starts in front
//! of the test cluster (`TEST_POOLER_URL`); without one these tests fail, saying so.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

fn pooler() -> String {
    pooler_url().expect(
        "TEST_POOLER_URL must name the PgBouncer in front of the test server; run scripts/test",
    )
}

/// A service left with `DATABASE_POOLER=none` behind PgBouncer sends its session settings as a
/// startup option, which PgBouncer 1.18 refuses: it cannot run without them unnoticed.
#[tokio::test]
async fn a_service_not_told_about_the_pooler_is_refused_rather_than_run_without_its_settings() {
    let db = test_db().await;
    let name = db.url.rsplit_once('/').unwrap().1.to_string();
    let settings = settings_with(
        &with_database(&pooler(), &name),
        &[
            ("DATABASE_POOLER", "none"),
            ("DATABASE_ACQUIRE_TIMEOUT_MS", "2000"),
        ],
    );
    let pool = phonecalls::db::lazy_pool(&settings);
    let error = sqlx::query("SELECT 1")
        .execute(&pool)
        .await
        .expect_err("PgBouncer refuses the startup option");
    assert!(
        error.to_string().contains("unsupported startup parameter"),
        "{error}"
    );
}

/// Many clients' transactions on few server connections: lists, switch reports and token
/// issues at once from two instances, on a PgBouncer pool smaller than theirs. A statement
/// prepared by name on a server connection would be unknown, or another client's, on the next
/// one; every answer must be right.
#[tokio::test]
async fn two_instances_share_few_server_connections_without_a_wrong_answer() {
    let db = test_db().await;
    let url = db.url.clone();
    let settings = || {
        settings_with(
            &url,
            &[("DATABASE_POOL_SIZE", "6"), ("TOKEN_CACHE_SECONDS", "0")],
        )
    };
    assert_eq!(settings().pooler, phonecalls::config::Pooler::Transaction);
    let first = spawn_app_on(db, settings()).await;
    let second = spawn_app_on(first.same_database(), settings()).await;
    let f = fixture(first.pool()).await;
    let alice = format!("Bearer {}", token_for(first.pool(), f.alice).await);
    let switch = token_for(first.pool(), f.switch).await;

    let mut work = Vec::new();
    for i in 0..60 {
        let app = if i % 2 == 0 { &first } else { &second };
        let (alice, switch) = (alice.clone(), switch.clone());
        work.push(async move {
            let id = new_call_id();
            let put = app.put_report(&switch, &id, &first_report(&id, 1)).await;
            assert_eq!(put.status(), 201, "{}", put.text().await.unwrap());
            let list = app
                .get_with_authorization(&format!("/uapi/phoneCalls/@me/@self/{id}"), &alice)
                .await;
            assert_eq!(list.status(), 200);
            let body: serde_json::Value = list.json().await.unwrap();
            assert_eq!(body["entry"][0]["id"], json!(id));
        });
    }
    futures_util::future::join_all(work).await;
    // Both instances' pools are larger than PgBouncer's per database (scripts/test: 4): the
    // server connections were shared between clients.
    let server_connections: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'phonecalls' AND query NOT LIKE 'LISTEN%'",
    )
    .fetch_one(first.pool())
    .await
    .unwrap();
    assert!(
        server_connections <= 4,
        "{server_connections} server connections"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}
