//! With the database cut off (and the caller's token still in the short-lived cache): the
//! list's syntactic errors never touch it, so every one of them is still answered, and what
//! needs it, the list and the switch feed, answers 503 without hanging or storing anything.

use crate::helpers::*;

#[tokio::test]
async fn every_syntactic_400_is_answered_while_the_database_is_unreachable() {
    let (app, proxy, token, _) = app_behind_a_proxy(|f| f.alice, &[]).await;
    let bearer = format!("Bearer {token}");
    // Authenticate once while the database answers, so the token is cached.
    assert_eq!(
        app.get_with_authorization("/uapi/phoneCalls/@me/@self/", &bearer)
            .await
            .status(),
        204
    );

    proxy.cut();
    let cases = [
        ("/uapi/phoneCalls/me/@self/", "user_invalid"),
        ("/uapi/phoneCalls/@me/21/", "extension_invalid"),
        ("/uapi/phoneCalls/@me/@self/?count=0", "count_invalid"),
        ("/uapi/phoneCalls/@me/@self/?startIndex=5001", "startindex_invalid"),
        ("/uapi/phoneCalls/@me/@self/?filterBy=nope", "filterby_invalid"),
        ("/uapi/phoneCalls/@me/@self/?filterBy=status&filterOp=contains&filterValue=1", "filterop_invalid"),
        ("/uapi/phoneCalls/@me/@self/?filterBy=published&filterOp=equals&filterValue=2024-02-30T00:00:00Z", "filtervalue_invalid"),
        ("/uapi/phoneCalls/@me/@self/?sortBy=duration", "sortby_invalid"),
        ("/uapi/phoneCalls/@me/@self/?sortOrder=up", "sortorder_invalid"),
        ("/uapi/phoneCalls/@me/@self/?updatedSince=yesterday", "updatedsince_invalid"),
        ("/uapi/phoneCalls/@me/@self/?fields=id,,extension", "fields_invalid"),
    ];
    for (path, code) in cases {
        let started = std::time::Instant::now();
        assert_error(app.get_with_authorization(path, &bearer).await, 400, code).await;
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "{path} waited for the database"
        );
    }
    // A valid request needs the database to resolve the path: 503, not a hang.
    let valid = app
        .get_with_authorization("/uapi/phoneCalls/@me/@self/", &bearer)
        .await;
    let headers = assert_error(valid, 503, "service_unavailable").await;
    assert!(headers.contains_key("retry-after"));
    assert_error(app.get("/readyz").await, 503, "service_unavailable").await;
}

#[tokio::test]
async fn the_feed_answers_503_and_stores_nothing_while_the_database_is_unreachable() {
    let (app, proxy, token, pool) =
        app_behind_a_proxy(|f| f.switch, &[("DATABASE_ACQUIRE_TIMEOUT_MS", "500")]).await;
    // One report while the database answers: the token is cached from now on.
    let id = new_call_id();
    assert_eq!(
        app.put_report(&token, &id, &first_report(&id, 1))
            .await
            .status(),
        201
    );

    proxy.cut();
    let started = std::time::Instant::now();
    let other = new_call_id();
    let headers = assert_error(
        app.put_report(&token, &other, &first_report(&other, 1))
            .await,
        503,
        "service_unavailable",
    )
    .await;
    assert!(headers.contains_key("retry-after"));
    let batch = serde_json::json!({"reports": [first_report(&other, 1)]});
    let response = app
        .client
        .post(app.url("/switch/v1/phoneCalls"))
        .bearer_auth(&token)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_error(response, 503, "service_unavailable").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the feed waited too long for the database"
    );
    assert_eq!(
        count(&pool, "phone_calls").await,
        1,
        "nothing more was stored"
    );
}
