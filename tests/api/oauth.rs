//! The OAuth 2.0 token endpoint (spec §3): the client-credentials grant for trusted apps, with
//! RFC 6749 §5.2 error bodies.

use crate::helpers::*;
use base64::Engine as _;
use phonecalls::accounts::{self, CreatedApp};
use serde_json::{json, Value};

struct Apps {
    trusted: CreatedApp,
    untrusted: CreatedApp,
    owner: i64,
}

async fn apps(app: &TestApp) -> Apps {
    let f = fixture(app.pool()).await;
    let trusted = accounts::create_app(app.pool(), f.alice, "Dashboard", true)
        .await
        .unwrap();
    let untrusted = accounts::create_app(app.pool(), f.alice, "Widget", false)
        .await
        .unwrap();
    Apps {
        trusted,
        untrusted,
        owner: f.alice,
    }
}

async fn assert_oauth_error(response: reqwest::Response, status: u16, error: &str) {
    assert_eq!(response.status(), status, "{error}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    if status == 401 {
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body.as_object()
            .unwrap()
            .keys()
            .all(|k| k == "error" || k == "error_description"),
        "{body}"
    );
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

#[tokio::test]
async fn a_trusted_app_gets_a_bearer_token_with_form_credentials() {
    let app = spawn_app().await;
    let a = apps(&app).await;
    let response = app
        .oauth_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &a.trusted.client_id),
            ("client_secret", &a.trusted.client_secret),
            ("type", "anything"),
            ("redirect_uri", "https://example.invalid/cb"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        body,
        json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})
    );
    assert!(
        token.len() >= 43
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );

    // The token acts for the app's account and is bound to the app.
    let (user_id, app_id): (i64, Option<i64>) =
        sqlx::query_as("SELECT user_id, app_id FROM access_tokens")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(user_id, a.owner);
    assert!(app_id.is_some());
    let caller = phonecalls::auth::token::authenticate(app.pool(), &token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(caller.user_id, a.owner);
}

#[tokio::test]
async fn http_basic_client_authentication_works_on_both_paths() {
    let app = spawn_app().await;
    let a = apps(&app).await;
    for path in ["/oauth/token.php", "/oauth/token"] {
        let response = app
            .client
            .post(app.url(path))
            .header(
                "Authorization",
                basic(&a.trusted.client_id, &a.trusted.client_secret),
            )
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
    }
    assert_eq!(count(app.pool(), "access_tokens").await, 2);
}

#[tokio::test]
async fn client_failures_are_invalid_client_and_issue_nothing() {
    let app = spawn_app().await;
    let a = apps(&app).await;
    let wrong_secret = phonecalls::auth::token::generate_client_secret();
    let cases: Vec<(&str, &str)> = vec![
        ("pca_unknownclient0000000", a.trusted.client_secret.as_str()),
        (a.trusted.client_id.as_str(), wrong_secret.as_str()),
        (
            a.trusted.client_id.as_str(),
            a.untrusted.client_secret.as_str(),
        ),
        (
            a.untrusted.client_id.as_str(),
            a.untrusted.client_secret.as_str(),
        ),
    ];
    for (id, secret) in &cases {
        let response = app
            .oauth_token(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .await;
        assert_oauth_error(response, 401, "invalid_client").await;
        let response = app
            .client
            .post(app.url("/oauth/token"))
            .header("Authorization", basic(id, secret))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 401, "invalid_client").await;
    }
    assert_eq!(count(app.pool(), "access_tokens").await, 0);
}

#[tokio::test]
async fn a_grant_other_than_client_credentials_is_unsupported() {
    let app = spawn_app().await;
    let a = apps(&app).await;
    for grant in [
        "password",
        "authorization_code",
        "refresh_token",
        "CLIENT_CREDENTIALS",
    ] {
        let response = app
            .oauth_token(&[
                ("grant_type", grant),
                ("client_id", &a.trusted.client_id),
                ("client_secret", &a.trusted.client_secret),
            ])
            .await;
        assert_oauth_error(response, 400, "unsupported_grant_type").await;
    }
    assert_eq!(count(app.pool(), "access_tokens").await, 0);
}

#[tokio::test]
async fn missing_or_repeated_fields_are_invalid_requests() {
    let app = spawn_app().await;
    let a = apps(&app).await;
    let (id, secret) = (
        a.trusted.client_id.as_str(),
        a.trusted.client_secret.as_str(),
    );
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("client_id", id), ("client_secret", secret)],
        vec![
            ("grant_type", ""),
            ("client_id", id),
            ("client_secret", secret),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("client_secret", secret),
        ],
        vec![("grant_type", "client_credentials"), ("client_id", id)],
        vec![("grant_type", "client_credentials")],
        vec![
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_id", id),
            ("client_secret", secret),
        ],
    ];
    for form in cases {
        let response = app.oauth_token(&form).await;
        assert_oauth_error(response, 400, "invalid_request").await;
    }
    assert_eq!(count(app.pool(), "access_tokens").await, 0);
}

#[tokio::test]
async fn malformed_bodies_and_mixed_authentication_are_invalid_requests() {
    let app = spawn_app().await;
    let a = apps(&app).await;
    let (id, secret) = (
        a.trusted.client_id.as_str(),
        a.trusted.client_secret.as_str(),
    );
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    // Not a form.
    let json_body = app
        .client
        .post(app.url("/oauth/token.php"))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .send()
        .await
        .unwrap();
    assert_oauth_error(json_body, 400, "invalid_request").await;
    // Basic and a client_secret in the body at once.
    let both = app
        .client
        .post(app.url("/oauth/token.php"))
        .header("Authorization", basic(id, secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_oauth_error(both, 400, "invalid_request").await;
    // A Basic header that is not base64 of id:secret.
    for header in ["Basic !!!", "Basic", "Basic bm9jb2xvbg==", "Bearer abc"] {
        let response = app
            .client
            .post(app.url("/oauth/token.php"))
            .header("Authorization", header)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 400, "invalid_request").await;
    }
    assert_eq!(count(app.pool(), "access_tokens").await, 0);
}

#[tokio::test]
async fn an_oversized_body_is_refused_without_issuing() {
    let app = spawn_app().await;
    let a = apps(&app).await;
    let padding = "x".repeat(64 * 1024);
    let response = app
        .oauth_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &a.trusted.client_id),
            ("client_secret", &a.trusted.client_secret),
            ("padding", &padding),
        ])
        .await;
    // An RFC 6749 error like every other answer of this endpoint.
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_eq!(count(app.pool(), "access_tokens").await, 0);
}

#[tokio::test]
async fn issued_tokens_and_client_secrets_are_stored_only_as_digests() {
    let app = spawn_app().await;
    let a = apps(&app).await;
    let response = app
        .oauth_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &a.trusted.client_id),
            ("client_secret", &a.trusted.client_secret),
        ])
        .await;
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let cli_token = token_for(app.pool(), a.owner).await;
    let dump: String = sqlx::query_scalar(
        "SELECT string_agg(x, ' ') FROM (
            SELECT row_to_json(t)::text AS x FROM access_tokens t
            UNION ALL SELECT row_to_json(a)::text FROM apps a) rows",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    for secret in [
        token,
        cli_token.as_str(),
        a.trusted.client_secret.as_str(),
        a.untrusted.client_secret.as_str(),
    ] {
        assert!(!dump.contains(secret), "plaintext secret stored");
        // Not even the random part without its prefix.
        assert!(!dump.contains(&secret[4..]), "plaintext secret stored");
    }
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT token_sha256 FROM access_tokens WHERE app_id IS NOT NULL")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(stored, phonecalls::auth::token::digest(token).to_vec());
}

#[tokio::test]
async fn the_token_lifetime_follows_the_setting() {
    let db = test_db().await;
    let settings = settings_with(&db.url, &[("TOKEN_TTL_SECONDS", "120")]);
    let app = spawn_app_on(db, settings).await;
    let a = apps(&app).await;
    let response = app
        .oauth_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &a.trusted.client_id),
            ("client_secret", &a.trusted.client_secret),
        ])
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    let seconds: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM expires_at - created_at)::float8 FROM access_tokens",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!((seconds - 120.0).abs() < 1.0, "{seconds}");
}
