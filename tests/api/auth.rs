//! Bearer authentication (spec §2.1): every way a request can fail to authenticate gets 401
//! `access_denied` with `WWW-Authenticate`, and a valid token gets through; the token and path
//! caches forget what the database says changed.

use crate::helpers::*;
use phonecalls::accounts;
use serde_json::json;

const LIST: &str = "/uapi/phoneCalls/@me/@self/";
const REALM_ONLY: &str = r#"Bearer realm="uapi""#;
const INVALID_TOKEN: &str = r#"Bearer realm="uapi", error="invalid_token""#;

async fn assert_unauthorized(response: reqwest::Response, www_authenticate: &str) {
    let headers = assert_error(response, 401, "access_denied").await;
    assert_eq!(headers["www-authenticate"], www_authenticate);
}

#[tokio::test]
async fn a_request_without_credentials_is_denied_with_the_realm_only() {
    let app = spawn_app().await;
    assert_unauthorized(app.get(LIST).await, REALM_ONLY).await;
}

#[tokio::test]
async fn another_scheme_or_a_bare_bearer_carries_no_token() {
    let app = spawn_app().await;
    for header in [
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "Bearer",
        "Bearer    ",
        "Token abc",
        "",
    ] {
        let response = app.get_with_authorization(LIST, header).await;
        assert_unauthorized(response, REALM_ONLY).await;
    }
}

#[tokio::test]
async fn unknown_and_malformed_tokens_are_denied_as_invalid() {
    let app = spawn_app().await;
    let unknown = phonecalls::auth::token::generate_token();
    let malformed = [
        format!("Bearer {unknown}"),
        "Bearer pct_short".to_string(),
        "Bearer not-a-token-at-all".to_string(),
        format!("Bearer {}", unknown.replacen("pct_", "xyz_", 1)),
        format!("Bearer {unknown} trailing"),
        format!("Bearer {}", "A".repeat(64 * 1024)),
    ];
    for header in malformed {
        let response = app.get_with_authorization(LIST, &header).await;
        assert_unauthorized(response, INVALID_TOKEN).await;
    }
}

#[tokio::test]
async fn an_expired_token_is_denied() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.alice).await;
    sqlx::query("UPDATE access_tokens SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 second'")
        .execute(app.pool())
        .await
        .unwrap();
    let response = app
        .get_with_authorization(LIST, &format!("Bearer {token}"))
        .await;
    assert_unauthorized(response, INVALID_TOKEN).await;
}

#[tokio::test]
async fn a_token_expires_after_its_lifetime() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = accounts::issue_token(app.pool(), f.alice, std::time::Duration::from_secs(1))
        .await
        .unwrap()
        .access_token;
    let before = app
        .get_with_authorization(LIST, &format!("Bearer {token}"))
        .await;
    assert_ne!(before.status(), 401, "a fresh token is accepted");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let after = app
        .get_with_authorization(LIST, &format!("Bearer {token}"))
        .await;
    assert_unauthorized(after, INVALID_TOKEN).await;
}

#[tokio::test]
async fn a_revoked_token_is_denied_at_once_even_when_cached() {
    let db = test_db().await;
    // A cache lifetime of an hour: only the revocation notice can make the token fail soon.
    let settings = settings_with(&db.url, &[("TOKEN_CACHE_SECONDS", "3600")]);
    let app = spawn_app_on(db, settings).await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.alice).await;
    let bearer = format!("Bearer {token}");
    assert_eq!(
        app.get_with_authorization(LIST, &bearer).await.status(),
        204,
        "cached now"
    );
    accounts::revoke_token(app.pool(), &token).await.unwrap();
    assert_unauthorized(eventually_unauthorized(&app, &bearer).await, INVALID_TOKEN).await;
}

#[tokio::test]
async fn changing_an_accounts_role_drops_its_cached_tokens() {
    let db = test_db().await;
    let settings = settings_with(&db.url, &[("TOKEN_CACHE_SECONDS", "3600")]);
    let app = spawn_app_on(db, settings).await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    let id = new_call_id();
    assert_eq!(
        app.put_report(&token, &id, &first_report(&id, 1))
            .await
            .status(),
        201
    );
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1")
        .bind(f.switch)
        .execute(app.pool())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let status = app
            .put_report(&token, &id, &first_report(&id, 2))
            .await
            .status();
        if status == 403 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the old role was still served: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Repeats the request until it is denied; revocation notices arrive within milliseconds.
async fn eventually_unauthorized(app: &TestApp, bearer: &str) -> reqwest::Response {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let response = app.get_with_authorization(LIST, bearer).await;
        if response.status() == 401 || std::time::Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_valid_token_is_accepted_in_any_scheme_case_and_in_the_query() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.alice).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = app
            .get_with_authorization(LIST, &format!("{scheme} {token}"))
            .await;
        // Past authentication: Alice has no live calls, an empty page.
        assert_eq!(response.status(), 204, "{scheme}");
    }
    let response = app
        .get(&format!("{LIST}?accessRequestToken=Bearer%20{token}"))
        .await;
    assert_eq!(response.status(), 204);
    let response = app
        .get(&format!("{LIST}?accessRequestToken=Bearer%20pct_wrong"))
        .await;
    assert_unauthorized(response, INVALID_TOKEN).await;
}

#[tokio::test]
async fn a_token_of_a_deleted_account_is_denied() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(f.switch)
        .execute(app.pool())
        .await
        .unwrap();
    let response = app
        .get_with_authorization(LIST, &format!("Bearer {token}"))
        .await;
    assert_unauthorized(response, INVALID_TOKEN).await;
}

#[tokio::test]
async fn garbage_tokens_are_refused_without_asking_the_database() {
    // The database is unreachable: a lookup would answer 503, the shape check answers 401.
    let app = spawn_app_without_database().await;
    for header in ["Bearer pct_short", "Bearer garbage", "Basic abc"] {
        let response = app.get_with_authorization(LIST, header).await;
        assert_eq!(response.status(), 401, "{header}");
    }
    let well_formed = phonecalls::auth::token::generate_token();
    let response = app
        .get_with_authorization(LIST, &format!("Bearer {well_formed}"))
        .await;
    let headers = assert_error(response, 503, "service_unavailable").await;
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn writing_methods_on_phone_calls_need_a_token_then_are_not_implemented() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.alice).await;
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let anonymous = app
            .client
            .request(method.clone(), app.url(LIST))
            .send()
            .await
            .unwrap();
        assert_error(anonymous, 401, "access_denied").await;
        let response = app
            .client
            .request(method, app.url("/uapi/phoneCalls/@me/0003*210/abc"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_error(response, 501, "request_not_implemented").await;
    }
    let response = app
        .client
        .patch(app.url(LIST))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let headers = assert_error(response, 405, "method_not_allowed").await;
    assert_eq!(headers["allow"], "GET, HEAD, POST, PUT, DELETE");
}

/// Lists `path` as `token` until `done` holds for the answer (status, body), for at most two
/// seconds; answers the last one.
async fn list_until(
    app: &TestApp,
    token: &str,
    path: &str,
    done: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let bearer = format!("Bearer {token}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let response = app.get_with_authorization(path, &bearer).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        if done(status, &body) || std::time::Instant::now() >= deadline {
            return (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_new_extension_is_listed_at_once_although_paths_are_cached() {
    let db = test_db().await;
    // An hour: only the change notice can make the cached resolution go.
    let settings = settings_with(&db.url, &[("TOKEN_CACHE_SECONDS", "3600")]);
    let app = spawn_app_on(db, settings).await;
    let f = fixture(app.pool()).await;
    let alice = token_for(app.pool(), f.alice).await;
    let switch = token_for(app.pool(), f.switch).await;
    // Alice's @me/@self and the number 0003*299 are resolved (and remembered) before the
    // extension exists: nothing to list, and an unknown extension.
    let (status, _) = list_until(&app, &alice, "/uapi/phoneCalls/@me/@self/", |_, _| true).await;
    assert_eq!(status, 204);
    let (status, body) = list_until(&app, &alice, "/uapi/phoneCalls/@owner/0003*299/", |_, _| {
        true
    })
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("extension_invalid"), "{body}");

    accounts::create_extension(app.pool(), f.alice, "299")
        .await
        .unwrap();
    let id = new_call_id();
    let mut report = first_report(&id, 1);
    report["extension"] = json!("0003*299");
    report["phoneCallView"] = json!([{"id": "00", "extension": "0003*299", "source": ["0003*299"],
        "destination": ["+442079460000"], "flow": 4, "status": 4}]);
    assert_eq!(app.put_report(&switch, &id, &report).await.status(), 201);

    let (status, body) = list_until(&app, &alice, "/uapi/phoneCalls/@me/@self/", |s, b| {
        s == 200 && b.contains(&id)
    })
    .await;
    assert!(
        status == 200 && body.contains(&id),
        "the new extension's call was not listed: {status} {body}"
    );
    let (status, body) = list_until(&app, &alice, "/uapi/phoneCalls/@owner/0003*299/", |s, _| {
        s == 200
    })
    .await;
    assert!(
        status == 200 && body.contains(&id),
        "the new number still resolved to nothing: {status} {body}"
    );
}

#[tokio::test]
async fn a_cached_path_never_shows_calls_of_an_extension_taken_away() {
    let db = test_db().await;
    let settings = settings_with(&db.url, &[("TOKEN_CACHE_SECONDS", "3600")]);
    let app = spawn_app_on(db, settings).await;
    let f = fixture(app.pool()).await;
    let bob = token_for(app.pool(), f.bob).await;
    let switch = token_for(app.pool(), f.switch).await;
    // A call charged to Bob's 0003*211 only.
    let id = new_call_id();
    let mut report = first_report(&id, 1);
    report["extension"] = json!("0003*211");
    report["phoneCallView"] = json!([{"id": "00", "extension": "0003*211", "source": ["0003*211"],
        "destination": ["+442079460000"], "flow": 4, "status": 4}]);
    assert_eq!(app.put_report(&switch, &id, &report).await.status(), 201);
    let (status, body) = list_until(&app, &bob, "/uapi/phoneCalls/@me/@self/", |_, _| true).await;
    assert!(status == 200 && body.contains(&id), "{status} {body}");

    // The extension moves to Alice, with notifications off: Bob's resolution stays cached, yet
    // what he may see is checked by the page statement itself.
    let mut tx = app.pool().begin().await.unwrap();
    sqlx::query("ALTER TABLE extensions DISABLE TRIGGER extensions_changed")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE extensions SET user_id = $1 WHERE number = '0003*211'")
        .bind(f.alice)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE extensions ENABLE TRIGGER extensions_changed")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let bearer = format!("Bearer {bob}");
    let response = app
        .get_with_authorization("/uapi/phoneCalls/@me/@self/", &bearer)
        .await;
    assert_eq!(response.status(), 204, "Bob still saw the call");
}
