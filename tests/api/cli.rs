use crate::helpers::*;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use phonecalls::accounts::Role;
use phonecalls::auth::token;
use serde_json::Value;
use sqlx::PgPool;

/// The tables the administration commands write to.
const ACCOUNT_TABLES: [&str; 5] = [
    "organizations",
    "users",
    "extensions",
    "apps",
    "access_tokens",
];

/// Row counts of every table the commands write to, so a refused command can be shown to have
/// written nothing.
async fn row_counts(pool: &PgPool) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for table in ACCOUNT_TABLES {
        counts.push((table, count(pool, table).await));
    }
    counts
}

/// The sorted keys of a JSON object.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("a JSON object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Runs the binary with extra environment variables set and others removed.
async fn run_cli_env(
    database_url: &str,
    set: &[(&str, &str)],
    remove: &[&str],
    args: &[&str],
) -> CliOutput {
    let mut command = cli(database_url);
    for (name, value) in set {
        command.env(name, value);
    }
    for name in remove {
        command.env_remove(name);
    }
    command.args(args);
    let output = tokio::task::spawn_blocking(move || command.output().expect("running phonecalls"))
        .await
        .expect("the blocking task runs to completion");
    CliOutput {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs a command that must be refused: non-zero exit, `needle` on stderr, nothing on stdout,
/// and no row written to any account table.
async fn assert_refused(db: &TestDb, args: &[&str], needle: &str) -> CliOutput {
    let before = row_counts(&db.pool).await;
    let out = run_cli(&db.url, args).await;
    assert!(
        !out.success,
        "{args:?} should fail but printed {:?}",
        out.stdout
    );
    assert!(
        matches!(out.code, Some(code) if code != 0),
        "{args:?} should exit with a non-zero code, got {:?}",
        out.code
    );
    assert_eq!(out.stdout, "", "{args:?} must print nothing on stdout");
    assert!(
        out.stderr.contains(needle),
        "{args:?}: stderr should mention {needle:?}, got {:?}",
        out.stderr
    );
    assert_eq!(
        row_counts(&db.pool).await,
        before,
        "{args:?} must write nothing"
    );
    out
}

/// Parses an `expiresAt` value: UTC, second precision, ending in `Z`.
fn parse_expiry(raw: &str) -> DateTime<Utc> {
    assert!(raw.ends_with('Z'), "expiresAt is UTC with a Z: {raw}");
    assert_eq!(
        raw.len(),
        "2026-11-28T14:40:28Z".len(),
        "expiresAt has second precision: {raw}"
    );
    DateTime::parse_from_rfc3339(raw)
        .unwrap_or_else(|e| panic!("expiresAt {raw:?} is RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// Issues a token through the command line and checks its expiry is `ttl` from now.
async fn issue_and_check_expiry(
    db: &TestDb,
    extra_env: &[(&str, &str)],
    args: &[&str],
    ttl: i64,
) -> String {
    let before = Utc::now();
    let out = run_cli_env(&db.url, extra_env, &[], args).await;
    let after = Utc::now();
    let json = out.json();
    assert_eq!(keys(&json), ["accessToken", "expiresAt"], "{json}");
    let access_token = json["accessToken"]
        .as_str()
        .expect("accessToken is a string")
        .to_string();
    assert!(token::looks_like_token(&access_token), "{access_token}");
    assert!(
        !out.stderr.contains(&access_token),
        "the token must not be logged: {}",
        out.stderr
    );
    let expires_at = parse_expiry(json["expiresAt"].as_str().expect("expiresAt is a string"));
    let ttl = ChronoDuration::seconds(ttl);
    // Printed with whole seconds, so it may be up to a second before the exact instant.
    assert!(
        expires_at >= before + ttl - ChronoDuration::seconds(2)
            && expires_at <= after + ttl + ChronoDuration::seconds(1),
        "expiresAt {expires_at} should be about {ttl} after {before}..{after}"
    );
    let stored: DateTime<Utc> =
        sqlx::query_scalar("SELECT expires_at FROM access_tokens WHERE token_sha256 = $1")
            .bind(token::digest(&access_token).as_slice())
            .fetch_one(&db.pool)
            .await
            .expect("the issued token is stored by its digest");
    let difference = stored - expires_at;
    assert!(
        difference >= ChronoDuration::zero() && difference < ChronoDuration::seconds(1),
        "printed {expires_at} is the stored {stored} truncated to the second"
    );
    access_token
}

/// When the token was revoked, if it was.
async fn revoked_at(pool: &PgPool, access_token: &str) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("SELECT revoked_at FROM access_tokens WHERE token_sha256 = $1")
        .bind(token::digest(access_token).as_slice())
        .fetch_one(pool)
        .await
        .expect("the token is stored by its digest")
}

/// Every row of every table of the public schema, as JSON text.
async fn dump_database(pool: &PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .expect("listing tables");
    assert!(
        tables.iter().any(|t| t == "access_tokens") && tables.iter().any(|t| t == "apps"),
        "{tables:?}"
    );
    let mut dump = String::new();
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!(r#"SELECT row_to_json(t)::text FROM "{table}" t"#))
                .fetch_all(pool)
                .await
                .expect("dumping a table");
        for row in rows {
            dump.push_str(&row);
            dump.push('\n');
        }
    }
    dump
}

/// Asserts that neither `secret`, nor its random tail, nor their bytes in hex occur anywhere.
fn assert_not_in(dump: &str, secret: &str) {
    let tail = &secret[secret.len() - 32..];
    for needle in [
        secret.to_string(),
        tail.to_string(),
        hex::encode(secret),
        hex::encode(tail),
    ] {
        assert!(
            !dump.contains(&needle),
            "{needle:?} is stored in plaintext:\n{dump}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Successful commands
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn org_create_prints_the_new_id_and_code() {
    let db = test_db().await;
    let json = run_cli(
        &db.url,
        &["org", "create", "--name", "Acme", "--code", "0003"],
    )
    .await
    .json();
    assert_eq!(keys(&json), ["code", "id"], "{json}");
    assert_eq!(json["code"], "0003");
    let id = json["id"].as_i64().expect("id is an integer");
    let (name, code): (String, String) =
        sqlx::query_as("SELECT name, code FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .expect("the printed id is the stored organization");
    assert_eq!((name.as_str(), code.as_str()), ("Acme", "0003"));
    assert_eq!(count(&db.pool, "organizations").await, 1);
}

#[tokio::test]
async fn user_create_prints_the_new_id_for_every_role() {
    let db = test_db().await;
    let org = run_cli(
        &db.url,
        &["org", "create", "--name", "Acme", "--code", "0003"],
    )
    .await
    .json()["id"]
        .as_i64()
        .expect("organization id");
    let org_arg = org.to_string();
    let cases: [(&str, Option<&str>, Option<i64>); 5] = [
        ("user", Some(org_arg.as_str()), Some(org)),
        ("organization", Some(org_arg.as_str()), Some(org)),
        ("admin", None, None),
        ("switch", None, None),
        ("switch", Some(org_arg.as_str()), Some(org)),
    ];
    let mut ids = Vec::new();
    for (role, org_flag, expected_org) in cases {
        let mut args = vec!["user", "create", "--name", "Someone", "--role", role];
        if let Some(org_flag) = org_flag {
            args.extend(["--org", org_flag]);
        }
        let json = run_cli(&db.url, &args).await.json();
        assert_eq!(keys(&json), ["id"], "{args:?}: {json}");
        let id = json["id"].as_i64().expect("id is an integer");
        let (stored_role, stored_org): (String, Option<i64>) =
            sqlx::query_as("SELECT role, organization_id FROM users WHERE id = $1")
                .bind(id)
                .fetch_one(&db.pool)
                .await
                .expect("the printed id is the stored account");
        assert_eq!(
            (stored_role.as_str(), stored_org),
            (role, expected_org),
            "{args:?}"
        );
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "every account gets its own id");
    assert_eq!(count(&db.pool, "users").await, 5);
}

#[tokio::test]
async fn extension_create_prints_the_id_and_full_number() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let user = f.alice.to_string();
    let json = run_cli(
        &db.url,
        &["extension", "create", "--user", &user, "--number", "212"],
    )
    .await
    .json();
    assert_eq!(keys(&json), ["id", "number"], "{json}");
    assert_eq!(json["number"], "0003*212");
    let id = json["id"].as_i64().expect("id is an integer");
    let (number, owner): (String, i64) =
        sqlx::query_as("SELECT number, user_id FROM extensions WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .expect("the printed id is the stored extension");
    assert_eq!((number.as_str(), owner), ("0003*212", f.alice));

    // The same short number in another organization is another extension.
    let carol = f.carol.to_string();
    let json = run_cli(
        &db.url,
        &["extension", "create", "--user", &carol, "--number", "212"],
    )
    .await
    .json();
    assert_eq!(json["number"], "0007*212");
    // Five digits are allowed.
    let json = run_cli(
        &db.url,
        &["extension", "create", "--user", &user, "--number", "12345"],
    )
    .await
    .json();
    assert_eq!(json["number"], "0003*12345");
}

#[tokio::test]
async fn app_create_prints_credentials_and_stores_whether_the_app_is_trusted() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let user = f.alice.to_string();
    let mut client_ids = Vec::new();
    for (extra, trusted) in [(None, false), (Some("--trusted"), true)] {
        let mut args = vec!["app", "create", "--user", &user, "--name", "Dashboard"];
        args.extend(extra);
        let json = run_cli(&db.url, &args).await.json();
        assert_eq!(keys(&json), ["clientId", "clientSecret"], "{json}");
        let client_id = json["clientId"]
            .as_str()
            .expect("clientId is a string")
            .to_string();
        let secret = json["clientSecret"]
            .as_str()
            .expect("clientSecret is a string");
        for value in [client_id.as_str(), secret] {
            assert!(
                value.len() >= 16
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{value:?}"
            );
        }
        assert!(secret.len() >= 43, "at least 32 random bytes: {secret}");
        assert_ne!(client_id, secret);
        let (stored_trusted, owner, name): (bool, i64, String) =
            sqlx::query_as("SELECT trusted, user_id, name FROM apps WHERE client_id = $1")
                .bind(&client_id)
                .fetch_one(&db.pool)
                .await
                .expect("the app is stored under its client id");
        assert_eq!(
            (stored_trusted, owner, name.as_str()),
            (trusted, f.alice, "Dashboard"),
            "{args:?}"
        );
        client_ids.push(client_id);
    }
    assert_ne!(client_ids[0], client_ids[1]);
    assert_eq!(count(&db.pool, "apps").await, 2);
}

#[tokio::test]
async fn token_issue_without_ttl_expires_after_the_configured_default() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let user = f.bob.to_string();
    // The built-in default is an hour.
    let first = issue_and_check_expiry(&db, &[], &["token", "issue", "--user", &user], 3600).await;
    // TOKEN_TTL_SECONDS changes the default.
    let second = issue_and_check_expiry(
        &db,
        &[("TOKEN_TTL_SECONDS", "600")],
        &["token", "issue", "--user", &user],
        600,
    )
    .await;
    assert_ne!(first, second);
    for access_token in [&first, &second] {
        let caller = token::authenticate(&db.pool, access_token)
            .await
            .expect("authenticating")
            .expect("the printed token authenticates");
        assert_eq!((caller.user_id, caller.role), (f.bob, Role::User));
    }
    assert_eq!(count(&db.pool, "access_tokens").await, 2);
}

#[tokio::test]
async fn token_issue_with_ttl_expires_that_many_seconds_from_now() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let user = f.admin.to_string();
    let access_token = issue_and_check_expiry(
        &db,
        &[],
        &["token", "issue", "--user", &user, "--ttl", "120"],
        120,
    )
    .await;
    let caller = token::authenticate(&db.pool, &access_token)
        .await
        .expect("authenticating")
        .expect("the printed token authenticates");
    assert_eq!((caller.user_id, caller.role), (f.admin, Role::Admin));
    // A ttl longer than the default wins over it.
    issue_and_check_expiry(
        &db,
        &[],
        &["token", "issue", "--user", &user, "--ttl", "86400"],
        86400,
    )
    .await;
    let app_ids: Vec<Option<i64>> = sqlx::query_scalar("SELECT app_id FROM access_tokens")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        app_ids,
        [None, None],
        "command-line tokens belong to no app"
    );
}

#[tokio::test]
async fn token_revoke_marks_the_token_revoked_and_it_stops_authenticating() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let user = f.alice.to_string();
    let access_token = run_cli(&db.url, &["token", "issue", "--user", &user])
        .await
        .json()["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_string();
    let other = token_for(&db.pool, f.bob).await;
    assert_eq!(revoked_at(&db.pool, &access_token).await, None);

    let out = run_cli(&db.url, &["token", "revoke", "--token", &access_token]).await;
    assert_eq!(out.json(), serde_json::json!({"revoked": true}));
    assert!(
        !out.stderr.contains(&access_token),
        "the token must not be logged: {}",
        out.stderr
    );
    let first = revoked_at(&db.pool, &access_token)
        .await
        .expect("revoked_at is set");
    assert!(
        (Utc::now() - first).num_seconds().abs() < 60,
        "revoked now: {first}"
    );
    assert_eq!(
        token::authenticate(&db.pool, &access_token)
            .await
            .expect("authenticating"),
        None
    );
    // Only that token: the other one still works.
    assert!(token::authenticate(&db.pool, &other)
        .await
        .expect("authenticating")
        .is_some());
    assert_eq!(revoked_at(&db.pool, &other).await, None);

    // Revoking again succeeds and keeps the first revocation time.
    let again = run_cli(&db.url, &["token", "revoke", "--token", &access_token]).await;
    assert_eq!(again.json(), serde_json::json!({"revoked": true}));
    assert_eq!(revoked_at(&db.pool, &access_token).await, Some(first));
}

#[tokio::test]
async fn migrate_applies_the_schema_to_an_empty_database_and_is_idempotent() {
    // An empty database of its own (test_db() would migrate it already).
    let name = format!("phonecalls_test_{}", uuid::Uuid::new_v4().simple());
    let _dropped_at_the_end = DroppedWhenUnused::create(&name).await;
    let url = with_database(&server_url(), &name);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .expect("connecting");
    let tables = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY($1)",
        )
        .bind(vec!["organizations", "users", "extensions", "apps", "access_tokens", "phone_calls", "phone_call_views"])
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert_eq!(tables(pool.clone()).await, 0);

    // Migrations are not held to the service's statement timeout: on a large database they
    // rewrite tables and build indexes for minutes. Every migration takes more than 1 ms.
    let mut command = cli(&url);
    command
        .args(["migrate"])
        .env("DATABASE_STATEMENT_TIMEOUT_MS", "1");
    let first = run_command(command).await;
    let json = first.json();
    assert_eq!(json["migrated"], true, "{json}");
    assert_eq!(tables(pool.clone()).await, 7);
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .expect("the migrations table");
    assert!(
        !applied.is_empty() && applied.iter().all(|(_, success)| *success),
        "{applied:?}"
    );
    assert_eq!(
        json["version"].as_i64(),
        applied.last().map(|(version, _)| *version),
        "{json}"
    );

    // Again, and on a database that test_db() already migrated: nothing to do, still success.
    let second = run_cli(&url, &["migrate"]).await;
    assert_eq!(second.json(), json);
    let again: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(again, applied);
    let db = test_db().await;
    assert_eq!(run_cli(&db.url, &["migrate"]).await.json(), json);

    // The migrated schema works with the other commands.
    let org = run_cli(&url, &["org", "create", "--name", "Acme", "--code", "0003"])
        .await
        .json();
    assert_eq!(org["code"], "0003");
    pool.close().await;
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn printed_tokens_and_client_secrets_are_stored_only_as_sha256_digests() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let user = f.alice.to_string();
    let app = run_cli(
        &db.url,
        &[
            "app",
            "create",
            "--user",
            &user,
            "--name",
            "Wallboard",
            "--trusted",
        ],
    )
    .await
    .json();
    let client_id = app["clientId"].as_str().expect("clientId").to_string();
    let secret = app["clientSecret"]
        .as_str()
        .expect("clientSecret")
        .to_string();
    let access_token = run_cli(&db.url, &["token", "issue", "--user", &user])
        .await
        .json()["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_string();

    let dump = dump_database(&db.pool).await;
    assert!(
        dump.contains(&client_id),
        "the dump covers the apps table:\n{dump}"
    );
    assert_not_in(&dump, &secret);
    assert_not_in(&dump, &access_token);

    let stored_secret: Vec<u8> =
        sqlx::query_scalar("SELECT client_secret_sha256 FROM apps WHERE client_id = $1")
            .bind(&client_id)
            .fetch_one(&db.pool)
            .await
            .expect("the app row");
    assert_eq!(stored_secret, token::digest(&secret));
    let stored_tokens: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_sha256 FROM access_tokens")
        .fetch_all(&db.pool)
        .await
        .expect("the token rows");
    assert_eq!(stored_tokens, [token::digest(&access_token).to_vec()]);
}

// ---------------------------------------------------------------------------------------------
// Refused commands
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn user_create_refuses_an_unknown_organization() {
    let db = test_db().await;
    fixture(&db.pool).await;
    for role in ["user", "organization", "switch"] {
        assert_refused(
            &db,
            &[
                "user", "create", "--name", "Ghost", "--role", role, "--org", "424242",
            ],
            "unknown organization 424242",
        )
        .await;
    }
}

#[tokio::test]
async fn commands_for_an_unknown_user_are_refused() {
    let db = test_db().await;
    fixture(&db.pool).await;
    let cases: [&[&str]; 4] = [
        &["extension", "create", "--user", "424242", "--number", "299"],
        &["app", "create", "--user", "424242", "--name", "Dashboard"],
        &["token", "issue", "--user", "424242"],
        &["token", "issue", "--user", "424242", "--ttl", "60"],
    ];
    for args in cases {
        assert_refused(&db, args, "unknown user 424242").await;
    }
}

#[tokio::test]
async fn org_create_refuses_a_code_already_taken() {
    let db = test_db().await;
    fixture(&db.pool).await;
    let out = assert_refused(
        &db,
        &["org", "create", "--name", "Initech", "--code", "0003"],
        "already taken",
    )
    .await;
    assert!(out.stderr.contains("0003"), "{}", out.stderr);
}

#[tokio::test]
async fn extension_create_refuses_a_number_that_exists_in_the_organization() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    // Alice has 0003*210; Bob is in the same organization.
    let out = assert_refused(
        &db,
        &[
            "extension",
            "create",
            "--user",
            &f.bob.to_string(),
            "--number",
            "210",
        ],
        "already exists",
    )
    .await;
    assert!(out.stderr.contains("0003*210"), "{}", out.stderr);
    // Also for its own owner.
    assert_refused(
        &db,
        &[
            "extension",
            "create",
            "--user",
            &f.alice.to_string(),
            "--number",
            "210",
        ],
        "0003*210",
    )
    .await;
}

#[tokio::test]
async fn user_create_refuses_an_unknown_role() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let org = f.org.to_string();
    for role in ["boss", ""] {
        let out = assert_refused(
            &db,
            &[
                "user", "create", "--name", "Boss", "--role", role, "--org", &org,
            ],
            "role",
        )
        .await;
        if !role.is_empty() {
            assert!(out.stderr.contains(role), "{}", out.stderr);
        }
    }
}

#[tokio::test]
async fn extension_create_refuses_accounts_that_are_not_users() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let org_switch =
        phonecalls::accounts::create_user(&db.pool, "Local switch", Role::Switch, Some(f.org))
            .await
            .expect("a switch of the organization")
            .id;
    for (account, role) in [
        (f.org_account, "organization"),
        (f.admin, "admin"),
        (f.switch, "switch"),
        (org_switch, "switch"),
    ] {
        let out = assert_refused(
            &db,
            &[
                "extension",
                "create",
                "--user",
                &account.to_string(),
                "--number",
                "299",
            ],
            "extensions belong to accounts of role user",
        )
        .await;
        assert!(
            out.stderr.contains(&format!("role {role}")),
            "{}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn user_create_refuses_an_admin_in_an_organization() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    assert_refused(
        &db,
        &[
            "user",
            "create",
            "--name",
            "Root",
            "--role",
            "admin",
            "--org",
            &f.org.to_string(),
        ],
        "leave out --org",
    )
    .await;
}

#[tokio::test]
async fn user_create_refuses_users_and_organization_accounts_without_an_organization() {
    let db = test_db().await;
    fixture(&db.pool).await;
    for role in ["user", "organization"] {
        assert_refused(
            &db,
            &["user", "create", "--name", "Nobody", "--role", role],
            "needs an organization",
        )
        .await;
    }
}

#[tokio::test]
async fn user_create_refuses_a_second_organization_account() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    assert_refused(
        &db,
        &[
            "user",
            "create",
            "--name",
            "Acme again",
            "--role",
            "organization",
            "--org",
            &f.org.to_string(),
        ],
        "already has its organization account",
    )
    .await;
    // The other organization may still get its own.
    let json = run_cli(
        &db.url,
        &[
            "user",
            "create",
            "--name",
            "Globex",
            "--role",
            "organization",
            "--org",
            &f.other_org.to_string(),
        ],
    )
    .await
    .json();
    assert!(json["id"].is_i64(), "{json}");
}

#[tokio::test]
async fn org_create_refuses_codes_that_are_not_four_digits() {
    let db = test_db().await;
    for code in ["3", "abcd", "00033", "003", "003a", " 0003", "٠٠٠٣"] {
        let out = assert_refused(
            &db,
            &["org", "create", "--name", "Acme", "--code", code],
            "four digits",
        )
        .await;
        assert!(
            out.stderr.contains(code.trim()),
            "the message shows the code: {}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn extension_create_refuses_numbers_that_are_not_three_to_five_digits() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let user = f.alice.to_string();
    for number in ["21", "123456", "2a0", "", "21 ", "0003*212"] {
        assert_refused(
            &db,
            &["extension", "create", "--user", &user, "--number", number],
            "3 to 5 digits",
        )
        .await;
    }
}

#[tokio::test]
async fn create_commands_refuse_an_empty_name() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let org = f.org.to_string();
    let user = f.alice.to_string();
    for name in ["", "   "] {
        let cases: [&[&str]; 3] = [
            &["org", "create", "--name", name, "--code", "0009"],
            &[
                "user", "create", "--name", name, "--role", "user", "--org", &org,
            ],
            &["app", "create", "--user", &user, "--name", name],
        ];
        for args in cases {
            assert_refused(&db, args, "name must have 1 to 255 characters").await;
        }
    }
    let long = "x".repeat(256);
    assert_refused(
        &db,
        &["org", "create", "--name", &long, "--code", "0009"],
        "name must have 1 to 255",
    )
    .await;
}

#[tokio::test]
async fn token_revoke_refuses_an_unknown_token() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let known = token_for(&db.pool, f.alice).await;
    let never_issued = token::generate_token();
    for candidate in [
        never_issued.as_str(),
        "not-a-token",
        &known[..known.len() - 1],
    ] {
        assert_refused(
            &db,
            &["token", "revoke", "--token", candidate],
            "unknown token",
        )
        .await;
    }
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM access_tokens WHERE revoked_at IS NOT NULL")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(revoked, 0, "no token was revoked");
    assert!(token::authenticate(&db.pool, &known)
        .await
        .expect("authenticating")
        .is_some());
}

#[tokio::test]
async fn token_issue_refuses_a_zero_ttl() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let user = f.alice.to_string();
    for ttl in ["0", "abc"] {
        assert_refused(
            &db,
            &["token", "issue", "--user", &user, "--ttl", ttl],
            "--ttl",
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_missing_database_url_exits_with_code_2_naming_it() {
    let db = test_db().await;
    let out = run_cli_env(
        &db.url,
        &[],
        &["DATABASE_URL"],
        &["org", "create", "--name", "Acme", "--code", "0003"],
    )
    .await;
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("DATABASE_URL"), "{:?}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(count(&db.pool, "organizations").await, 0);
}

#[tokio::test]
async fn an_invalid_setting_exits_with_code_2_and_one_line_naming_it() {
    let db = test_db().await;
    let cases = [
        ("DATABASE_POOL_SIZE", "abc"),
        ("TOKEN_TTL_SECONDS", "0"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_URL", "mysql://localhost/db"),
    ];
    for (setting, value) in cases {
        let out = run_cli_env(
            &db.url,
            &[(setting, value)],
            &[],
            &["org", "create", "--name", "Acme", "--code", "0003"],
        )
        .await;
        assert_eq!(out.code, Some(2), "{setting}={value}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{setting}={value}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{setting}={value}: one line: {:?}",
            out.stderr
        );
        assert!(
            lines[0].contains(setting),
            "{setting}={value}: {:?}",
            lines[0]
        );
        assert_eq!(
            count(&db.pool, "organizations").await,
            0,
            "{setting}={value} wrote nothing"
        );
    }
}
