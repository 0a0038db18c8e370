//! Test support: a fresh migrated database per test, the real application on a random port, the
//! real binary for command-line and signal tests, and typed helpers so tests read as use cases.

use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use phonecalls::accounts::{self, Role};
use phonecalls::config::Settings;
pub use phonecalls::phone_calls::query::{FieldType, FilterField, FilterOp, SortBy};
use phonecalls::startup::{self, Application, ShutdownHandle};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};

/// The server every test database is created on (set by `scripts/test`).
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a PostgreSQL server for the tests; run scripts/test")
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i);
    let root = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    format!("{root}/{name}{query}")
}

/// A database of its own for one test, already migrated. It is dropped when the last `TestDb`
/// that shares it goes (a test's databases would otherwise pile up on the server, each some
/// megabytes, and fill a small disk within a few runs of the suite); `TEST_KEEP_DATABASES=1`
/// keeps them to look into after a run.
#[derive(Clone)]
pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
    owned: Option<std::sync::Arc<DroppedWhenUnused>>,
}

impl TestDb {
    /// The same database reached at `url` (a proxy in front of it) with `pool`: it lives as long
    /// as either does.
    pub fn reached_at(&self, url: &str, pool: PgPool) -> TestDb {
        TestDb {
            url: url.to_string(),
            pool,
            owned: self.owned.clone(),
        }
    }
}

/// Drops the database it names, on the test server, when it is dropped itself.
pub struct DroppedWhenUnused {
    name: String,
}

impl DroppedWhenUnused {
    /// Creates the database `name` on the test server; it is dropped with the returned value.
    pub async fn create(name: &str) -> std::sync::Arc<DroppedWhenUnused> {
        let mut admin = PgConnection::connect(&server_url())
            .await
            .expect("connecting to the test server");
        sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut admin)
            .await
            .expect("creating the test database");
        admin.close().await.ok();
        std::sync::Arc::new(DroppedWhenUnused {
            name: name.to_string(),
        })
    }
}

impl Drop for DroppedWhenUnused {
    fn drop(&mut self) {
        if std::env::var_os("TEST_KEEP_DATABASES").is_some() {
            return;
        }
        let Ok(server) = std::env::var("DATABASE_URL") else {
            return;
        };
        let name = std::mem::take(&mut self.name);
        // Drop may run inside the test's runtime, which cannot be blocked on: a thread of its
        // own with a runtime of its own. WITH (FORCE) ends the sessions the test's applications
        // still hold. Nothing here may panic: this also runs while a failed test unwinds.
        let dropping = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&server).await {
                    let _ =
                        sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
                            .execute(&mut admin)
                            .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropping.join();
    }
}

static TRACING: Once = Once::new();

/// Creates and migrates a fresh database.
pub async fn test_db() -> TestDb {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            phonecalls::telemetry::init(
                phonecalls::config::LogFormat::Pretty,
                "debug",
                phonecalls::telemetry::LogTarget::Stderr,
            );
        }
    });
    let name = format!("phonecalls_test_{}", uuid::Uuid::new_v4().simple());
    let owned = DroppedWhenUnused::create(&name).await;
    let url = with_database(&server_url(), &name);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("connecting to the test database");
    phonecalls::db::migrate(&pool)
        .await
        .expect("migrating the test database");
    TestDb {
        url,
        pool,
        owned: Some(owned),
    }
}

/// Settings for a test application on `database_url`, listening on a random port.
pub fn settings_for(database_url: &str) -> Settings {
    settings_with(database_url, &[])
}

/// The PgBouncer in front of the test server (transaction pooling), when `scripts/test` runs
/// the part of the suite that goes through it: `postgres://user:password@host:port`.
pub fn pooler_url() -> Option<String> {
    std::env::var("TEST_POOLER_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// The root (`scheme://user:password@host:port`) of a database URL.
fn root_of(url: &str) -> &str {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    match url[authority_start..].find('/') {
        Some(i) => &url[..authority_start + i],
        None => url,
    }
}

/// `database_url` as the application should reach it: through the PgBouncer when the suite
/// runs through it (the settings it then needs come with it), straight otherwise. URLs of
/// other servers (a proxy, nothing at all) are left alone.
fn through_pooler(database_url: &str, env: &mut std::collections::HashMap<String, String>) {
    let Some(pooler) = pooler_url() else {
        return;
    };
    if root_of(database_url) != root_of(&server_url()) {
        return;
    }
    let name = database_url
        .rsplit_once('/')
        .map_or("postgres", |(_, name)| name);
    env.insert("DATABASE_URL".into(), with_database(&pooler, name));
    env.insert("DATABASE_LISTEN_URL".into(), database_url.into());
    env.insert("DATABASE_POOLER".into(), "transaction".into());
}

/// Test settings with some values overridden (names as in `.env.example`).
pub fn settings_with(database_url: &str, overrides: &[(&str, &str)]) -> Settings {
    let mut env: std::collections::HashMap<String, String> = [
        ("DATABASE_URL", database_url),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("HTTP_WORKERS", "2"),
        ("DATABASE_POOL_SIZE", "4"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "1000"),
        ("READINESS_TIMEOUT_MS", "500"),
        ("SHUTDOWN_DRAIN_SECONDS", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    through_pooler(database_url, &mut env);
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::from_lookup(move |name| env.get(name).cloned()).expect("test settings are valid")
}

/// A URL on which no PostgreSQL answers (nothing listens on port 1).
pub const UNREACHABLE_DATABASE: &str = "postgres://nobody:nothing@127.0.0.1:1/nowhere";

/// The application over a database that cannot be reached. No migration is attempted.
pub async fn spawn_app_without_database() -> TestApp {
    let settings = settings_with(UNREACHABLE_DATABASE, &[("MIGRATE_ON_START", "false")]);
    let app = Application::build(settings).expect("building the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_handle();
    let streams = app.streams();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        db: None,
        client: client(),
        shutdown,
        metrics_port: None,
        state: None,
        streams,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The real application, serving on a random port of 127.0.0.1.
pub struct TestApp {
    pub address: String,
    /// None for an application whose database is unreachable.
    pub db: Option<TestDb>,
    pub client: reqwest::Client,
    pub shutdown: ShutdownHandle,
    /// The port of `GET /metrics`, when the settings ask for it.
    pub metrics_port: Option<u16>,
    /// The application's shared state (None for an application without a database).
    pub state: Option<startup::AppState>,
    /// Its live streams' hub.
    pub streams: std::sync::Arc<phonecalls::streams::Hub>,
}

/// Spawns the application on a fresh database.
pub async fn spawn_app() -> TestApp {
    let db = test_db().await;
    let settings = settings_for(&db.url);
    spawn_app_on(db, settings).await
}

/// Spawns the application with the given settings over an existing database.
pub async fn spawn_app_on(db: TestDb, settings: Settings) -> TestApp {
    let app = Application::build(settings).expect("building the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_port = app.metrics_port();
    let state = app.state().clone();
    let tokens = app.tokens();
    let streams = app.streams();
    let shutdown = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    if state.settings.migrate_on_start {
        startup::migrate_when_reachable(&state)
            .await
            .expect("migrations");
    }
    // Tokens cached before the revocation listener is up are dropped when it connects: wait for
    // it, so that what a test caches stays cached.
    if !state.settings.token_cache.is_zero() {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !tokens.is_listening() {
            assert!(
                std::time::Instant::now() < deadline,
                "the token listener never connected"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    TestApp {
        address,
        db: Some(db),
        client: client(),
        shutdown,
        metrics_port,
        state: Some(state),
        streams,
    }
}

impl TestApp {
    /// The application's database pool (panics for an app without a database).
    pub fn pool(&self) -> &PgPool {
        &self.db.as_ref().expect("this test app has a database").pool
    }

    /// This app's database, for another app on it (it lives as long as either app).
    pub fn same_database(&self) -> TestDb {
        self.db.clone().expect("this test app has a database")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_with_authorization(
        &self,
        path: &str,
        authorization: &str,
    ) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("Authorization", authorization)
            .send()
            .await
            .expect("GET")
    }

    /// PUTs one switch report (`body` is sent as JSON).
    pub async fn put_report(&self, token: &str, id: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/switch/v1/phoneCalls/{id}")))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("PUT /switch/v1/phoneCalls/{id}")
    }

    /// POSTs a batch of switch reports: `{"reports": reports}`.
    pub async fn post_batch(&self, token: &str, reports: &[Value]) -> reqwest::Response {
        self.client
            .post(self.url("/switch/v1/phoneCalls"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "reports": reports }))
            .send()
            .await
            .expect("POST /switch/v1/phoneCalls")
    }

    /// POSTs a form to the OAuth token endpoint.
    pub async fn oauth_token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token.php"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .expect("POST /oauth/token.php")
    }
}

/// Accounts most tests need: one organization with its account, two users with an extension
/// each, a second organization with a user, an admin and a switch account.
pub struct Fixture {
    pub org: i64,
    pub org_account: i64,
    pub alice: i64,
    pub bob: i64,
    pub other_org: i64,
    pub carol: i64,
    pub admin: i64,
    pub switch: i64,
}

pub async fn fixture(pool: &PgPool) -> Fixture {
    let org = accounts::create_organization(pool, "Acme", "0003")
        .await
        .unwrap()
        .id;
    let other_org = accounts::create_organization(pool, "Globex", "0007")
        .await
        .unwrap()
        .id;
    let org_account = accounts::create_user(pool, "Acme", Role::Organization, Some(org))
        .await
        .unwrap()
        .id;
    let alice = accounts::create_user(pool, "Alice", Role::User, Some(org))
        .await
        .unwrap()
        .id;
    let bob = accounts::create_user(pool, "Bob", Role::User, Some(org))
        .await
        .unwrap()
        .id;
    let carol = accounts::create_user(pool, "Carol", Role::User, Some(other_org))
        .await
        .unwrap()
        .id;
    let admin = accounts::create_user(pool, "Root", Role::Admin, None)
        .await
        .unwrap()
        .id;
    let switch = accounts::create_user(pool, "Switch", Role::Switch, None)
        .await
        .unwrap()
        .id;
    accounts::create_extension(pool, alice, "210")
        .await
        .unwrap();
    accounts::create_extension(pool, bob, "211").await.unwrap();
    accounts::create_extension(pool, carol, "210")
        .await
        .unwrap();
    Fixture {
        org,
        org_account,
        alice,
        bob,
        other_org,
        carol,
        admin,
        switch,
    }
}

/// Issues a one-hour token for `user`.
pub async fn token_for(pool: &PgPool, user: i64) -> String {
    accounts::issue_token(pool, user, Duration::from_secs(3600))
        .await
        .unwrap()
        .access_token
}

/// Asserts the exact error envelope: status, JSON content type, `{"error":{"code","message"}}`
/// with nothing else, a non-empty message, and a request id. Returns the response headers.
pub async fn assert_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> reqwest::header::HeaderMap {
    let headers = response.headers().clone();
    assert_eq!(
        response.status(),
        StatusCode::from_u16(status).unwrap(),
        "status (expected code {code})"
    );
    assert!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")),
        "content type of a {status} {code}: {:?}",
        headers.get("content-type")
    );
    assert!(
        headers.contains_key("x-request-id"),
        "X-Request-Id on a {status}"
    );
    let body: Value = response.json().await.expect("an error body is JSON");
    let object = body.as_object().expect("error body is an object");
    assert_eq!(object.len(), 1, "only `error` at the top: {body}");
    let error = body["error"].as_object().expect("`error` is an object");
    assert_eq!(error.len(), 2, "only code and message: {body}");
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_names_no_schema(error["message"].as_str().unwrap_or_default());
    headers
}

/// The tables of the schema: no error message may name one.
pub const TABLES: &[&str] = &[
    "organizations",
    "users",
    "extensions",
    "apps",
    "access_tokens",
    "phone_calls",
    "phone_call_views",
    "_sqlx_migrations",
];

/// Asserts that an error message names no table, constraint or index, and carries no SQL: what
/// the schema looks like is nobody's business but the service's, and a constraint's name can tell
/// of another tenant's data. Every error the suite checks with `assert_error` passes through
/// here.
pub fn assert_names_no_schema(message: &str) {
    let words = message.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    for word in words.filter(|w| !w.is_empty()) {
        let lower = word.to_ascii_lowercase();
        assert!(
            !TABLES.contains(&lower.as_str()),
            "an error message names the table {word}: {message}"
        );
        for suffix in ["_fkey", "_pkey", "_key", "_check", "_idx", "_excl"] {
            assert!(
                !lower.ends_with(suffix),
                "an error message names a constraint or index ({word}): {message}"
            );
        }
        for sql in [
            "select",
            "insert",
            "violates",
            "constraint",
            "relation",
            "sqlstate",
        ] {
            assert_ne!(lower, sql, "an error message carries SQL: {message}");
        }
    }
}

/// The real `phonecalls` binary, configured for `database_url`, with a clean environment.
pub fn cli(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_phonecalls"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("LOG_LEVEL", "warn")
        // Keep the binary from reading a developer's .env in the crate root.
        .current_dir(std::env::temp_dir());
    command
}

/// Output of a command-line run.
pub struct CliOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn json(&self) -> Value {
        assert!(self.success, "command failed: {}", self.stderr);
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "one JSON object on one line: {:?}",
            self.stdout
        );
        serde_json::from_str(lines[0]).expect("stdout is JSON")
    }
}

/// Runs the binary with `args` (blocking work is moved off the async runtime).
pub async fn run_cli(database_url: &str, args: &[&str]) -> CliOutput {
    let mut command = cli(database_url);
    command.args(args);
    run_command(command).await
}

/// Runs a command made by [`cli`] (blocking work is moved off the async runtime).
pub async fn run_command(mut command: Command) -> CliOutput {
    let output = tokio::task::spawn_blocking(move || command.output().expect("running phonecalls"))
        .await
        .unwrap();
    CliOutput {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Counts rows of a table.
pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A complete first report for a call charged to `0003*210` with views on `0003*210` and
/// `0003*211` (the fixture's Alice and Bob).
pub fn first_report(id: &str, sequence: i64) -> Value {
    serde_json::json!({
        "id": id,
        "sequence": sequence,
        "extension": "0003*210",
        "published": "2026-11-28T14:40:28Z",
        "nonce": "n-1",
        "phoneCallView": [
            {"id": "00", "extension": "0003*210", "source": ["0003*210"], "destination": ["0003*211"],
             "flow": 2, "status": 4, "ringing": "2026-11-28T14:40:29Z"},
            {"id": "01", "extension": "0003*211", "source": ["0003*210"], "destination": ["0003*211"],
             "flow": 2, "status": 3, "callerId": "Alice <210>", "ringing": "2026-11-28T14:40:29Z"}
        ]
    })
}

/// A new call id.
pub fn new_call_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `url` with its host and port replaced.
pub fn with_host_port(url: &str, host: &str, port: u16) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let userinfo = authority.rfind('@').map_or("", |i| &authority[..=i]);
    format!(
        "{}{userinfo}{host}:{port}{}",
        &url[..authority_start],
        &rest[authority_end..]
    )
}

/// A TCP proxy in front of the test PostgreSQL server that a test can cut or freeze, to make the
/// database unreachable or unresponsive for an application without touching the server other
/// tests use.
pub struct DbProxy {
    /// The database URL through the proxy.
    pub url: String,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Copies one direction of a proxied connection, holding bytes back while the proxy is frozen.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

impl DbProxy {
    pub async fn start(database_url: &str) -> Self {
        use std::str::FromStr;
        let options = sqlx::postgres::PgConnectOptions::from_str(database_url).unwrap();
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let registry = tasks.clone();
        let held = frozen.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let target = target.clone();
                let held = held.clone();
                let connection = tokio::spawn(async move {
                    // A frozen server accepts nothing new either.
                    while held.load(std::sync::atomic::Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    if let Ok(outbound) = tokio::net::TcpStream::connect(&target).await {
                        let (in_read, in_write) = inbound.into_split();
                        let (out_read, out_write) = outbound.into_split();
                        tokio::join!(
                            forward(in_read, out_write, held.clone()),
                            forward(out_read, in_write, held.clone())
                        );
                    }
                });
                registry.lock().unwrap().push(connection.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        DbProxy {
            url: with_host_port(database_url, "127.0.0.1", port),
            tasks,
            frozen,
        }
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Holds every byte in both directions, as a frozen server or a network partition does:
    /// connections stay open and nothing answers.
    pub fn freeze(&self) {
        self.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Lets the held bytes and everything after them through again.
    pub fn thaw(&self) {
        self.frozen
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// An app whose database connections go through a proxy the test can cut or freeze, a token of
/// the fixture account `who` picks, and a pool that reaches the database directly.
pub async fn app_behind_a_proxy(
    who: impl Fn(&Fixture) -> i64,
    extra: &[(&str, &str)],
) -> (TestApp, DbProxy, String, sqlx::PgPool) {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let token = token_for(&db.pool, who(&f)).await;
    let proxy = DbProxy::start(&db.url).await;
    let mut settings = vec![
        ("TOKEN_CACHE_SECONDS", "600"),
        ("MIGRATE_ON_START", "false"),
    ];
    settings.extend_from_slice(extra);
    let settings = settings_with(&proxy.url, &settings);
    let pool = db.pool.clone();
    let app = spawn_app_on(db.reached_at(&proxy.url, db.pool.clone()), settings).await;
    (app, proxy, token, pool)
}

/// The `filterOp`s a field of `kind` takes, by name. The property tests, the matcher's test and
/// the fuzzer draw fields, operators and sorts from the service's own lists (`FilterField::ALL`,
/// `FilterOp::ALL`, `SortBy::ALL`), so that a new one is drawn by all of them at once.
pub fn filter_ops_for(kind: FieldType) -> Vec<&'static str> {
    FilterOp::ALL
        .into_iter()
        .filter(|op| op.supports(kind))
        .map(FilterOp::name)
        .collect()
}

#[tokio::test]
async fn a_tests_database_is_dropped_once_nothing_uses_it_any_more() {
    if std::env::var_os("TEST_KEEP_DATABASES").is_some() {
        return;
    }
    let exists = |name: String| async move {
        let mut admin = PgConnection::connect(&server_url()).await.unwrap();
        let found: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await
                .unwrap();
        admin.close().await.ok();
        found
    };
    let db = test_db().await;
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let app = spawn_app_on(db.clone(), settings_for(&db.url)).await;
    let view = db.reached_at("postgres://elsewhere/x", db.pool.clone());
    drop(db);
    assert!(
        exists(name.clone()).await,
        "still used by the app and the view"
    );
    drop(app);
    assert!(exists(name.clone()).await, "still used by the view");
    // The application's sessions are still open: the drop ends them.
    drop(view);
    assert!(!exists(name).await, "the last user is gone");
}
