use crate::helpers::*;

use chrono::{DateTime, Duration, TimeZone, Utc};
use phonecalls::accounts::{self, Role};
use sqlx::postgres::PgDatabaseError;
use sqlx::PgPool;
use uuid::Uuid;

const CHECK: &str = "23514";
const FOREIGN_KEY: &str = "23503";
const UNIQUE: &str = "23505";
const NOT_NULL: &str = "23502";

/// Asserts that `result` failed with a database error of `sqlstate` raised by `constraint`.
fn assert_violation<T: std::fmt::Debug>(
    result: Result<T, sqlx::Error>,
    sqlstate: &str,
    constraint: &str,
    case: &str,
) {
    let error = result.expect_err(&format!("{case}: the database should refuse the row"));
    let db_error = match &error {
        sqlx::Error::Database(db_error) => db_error,
        other => panic!("{case}: expected a database error, got {other:?}"),
    };
    assert_eq!(
        db_error.code().as_deref(),
        Some(sqlstate),
        "{case}: {db_error}"
    );
    assert_eq!(
        db_error.constraint(),
        Some(constraint),
        "{case}: {db_error}"
    );
}

/// Asserts that `result` failed because `column` is NOT NULL.
fn assert_not_null<T: std::fmt::Debug>(result: Result<T, sqlx::Error>, column: &str, case: &str) {
    let error = result.expect_err(&format!("{case}: the database should refuse the row"));
    let db_error = error
        .as_database_error()
        .unwrap_or_else(|| panic!("{case}: expected a database error, got {error:?}"));
    assert_eq!(
        db_error.code().as_deref(),
        Some(NOT_NULL),
        "{case}: {db_error}"
    );
    let pg_error = db_error.downcast_ref::<PgDatabaseError>();
    assert_eq!(pg_error.column(), Some(column), "{case}: {db_error}");
}

async fn insert_user(
    pool: &PgPool,
    name: &str,
    role: &str,
    organization: Option<i64>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (name, role, organization_id) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(name)
    .bind(role)
    .bind(organization)
    .fetch_one(pool)
    .await
}

async fn insert_organization(pool: &PgPool, name: &str, code: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO organizations (name, code) VALUES ($1, $2) RETURNING id")
        .bind(name)
        .bind(code)
        .fetch_one(pool)
        .await
}

/// Inserts an extension row; `user_role` None leaves the column to its default.
async fn insert_extension(
    pool: &PgPool,
    organization: i64,
    code: &str,
    user: i64,
    user_role: Option<&str>,
    short_number: &str,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO extensions (organization_id, organization_code, user_id, user_role, short_number)
         VALUES ($1, $2, $3, COALESCE($4, 'user'), $5) RETURNING number",
    )
    .bind(organization)
    .bind(code)
    .bind(user)
    .bind(user_role)
    .bind(short_number)
    .fetch_one(pool)
    .await
}

/// An extension as the call tables reference it.
#[derive(Debug, Clone)]
struct Ext {
    id: i64,
    organization: i64,
    number: String,
}

async fn extension(pool: &PgPool, number: &str) -> Ext {
    let (id, organization): (i64, i64) =
        sqlx::query_as("SELECT id, organization_id FROM extensions WHERE number = $1")
            .bind(number)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("extension {number}: {e}"));
    Ext {
        id,
        organization,
        number: number.to_string(),
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 14, 40, 28).unwrap() + Duration::seconds(seconds)
}

/// A row of phone_calls.
#[derive(Debug, Clone)]
struct CallRow {
    id: Uuid,
    organization_id: i64,
    extension_id: i64,
    extension: String,
    nonce: Option<String>,
    published: Option<DateTime<Utc>>,
    answered: Option<DateTime<Utc>>,
    ended: Option<DateTime<Utc>>,
    sequence: Option<i64>,
}

impl CallRow {
    /// A valid live call charged to `ext`, answered five seconds after it was published.
    fn valid(ext: &Ext) -> Self {
        Self {
            id: Uuid::new_v4(),
            organization_id: ext.organization,
            extension_id: ext.id,
            extension: ext.number.clone(),
            nonce: Some("switch-nonce-1".into()),
            published: Some(at(0)),
            answered: Some(at(5)),
            ended: None,
            sequence: Some(0),
        }
    }

    async fn insert(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO phone_calls
                 (id, organization_id, extension_id, extension, nonce, published, answered, ended, sequence)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.id)
        .bind(self.organization_id)
        .bind(self.extension_id)
        .bind(&self.extension)
        .bind(&self.nonce)
        .bind(self.published)
        .bind(self.answered)
        .bind(self.ended)
        .bind(self.sequence)
        .execute(pool)
        .await
        .map(|_| ())
    }
}

/// A row of phone_call_views.
#[derive(Debug, Clone)]
struct ViewRow {
    phone_call_id: Uuid,
    view_id: String,
    organization_id: i64,
    call_live: bool,
    extension_id: i64,
    extension: String,
    source: Vec<String>,
    destination: Vec<String>,
    flow: Option<i16>,
    status: i16,
    caller_id: Option<String>,
    answered: Option<DateTime<Utc>>,
    parked_pos: Option<i32>,
    parked_by: Option<String>,
    holder: Option<i16>,
    disposition: Option<i16>,
}

impl ViewRow {
    /// A valid view `view_id` of `call`, from the perspective of `ext`.
    fn valid(call: &CallRow, view_id: &str, ext: &Ext) -> Self {
        Self {
            phone_call_id: call.id,
            view_id: view_id.to_string(),
            organization_id: call.organization_id,
            call_live: call.ended.is_none(),
            extension_id: ext.id,
            extension: ext.number.clone(),
            source: vec!["210".into()],
            destination: vec!["211".into()],
            flow: Some(2),
            status: 5,
            caller_id: Some("Alice <210>".into()),
            answered: Some(at(5)),
            parked_pos: None,
            parked_by: None,
            holder: Some(0),
            disposition: Some(0),
        }
    }

    async fn insert(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO phone_call_views
                 (phone_call_id, view_id, organization_id, extension_id, extension, source, destination,
                  flow, status, caller_id, answered, parked_pos, parked_by, holder, disposition, call_live)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(self.phone_call_id)
        .bind(&self.view_id)
        .bind(self.organization_id)
        .bind(self.extension_id)
        .bind(&self.extension)
        .bind(&self.source)
        .bind(&self.destination)
        .bind(self.flow)
        .bind(self.status)
        .bind(&self.caller_id)
        .bind(self.answered)
        .bind(self.parked_pos)
        .bind(&self.parked_by)
        .bind(self.holder)
        .bind(self.disposition)
        .bind(self.call_live)
        .execute(pool)
        .await
        .map(|_| ())
    }
}

/// The fixture's extensions: Alice's 0003*210 and Bob's 0003*211 in the first organization,
/// Carol's 0007*210 in the other.
struct Calls {
    f: Fixture,
    alice: Ext,
    bob: Ext,
    carol: Ext,
}

async fn calls_fixture(pool: &PgPool) -> Calls {
    let f = fixture(pool).await;
    Calls {
        f,
        alice: extension(pool, "0003*210").await,
        bob: extension(pool, "0003*211").await,
        carol: extension(pool, "0007*210").await,
    }
}

// ---------------------------------------------------------------------------------------------
// organizations and users
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn organizations_refuse_malformed_codes_duplicate_codes_and_blank_names() {
    let db = test_db().await;
    insert_organization(&db.pool, "Acme", "0003")
        .await
        .expect("a valid organization");
    for code in ["3", "abcd", "00033", "003", "003a", "", " 003", "0003\n"] {
        assert_violation(
            insert_organization(&db.pool, "Initech", code).await,
            CHECK,
            "organizations_code_check",
            &format!("code {code:?}"),
        );
    }
    assert_violation(
        insert_organization(&db.pool, "Initech", "0003").await,
        UNIQUE,
        "organizations_code_key",
        "duplicate code",
    );
    for name in ["", "   ", &"x".repeat(256)] {
        assert_violation(
            insert_organization(&db.pool, name, "0009").await,
            CHECK,
            "organizations_name_check",
            &format!("name {name:?}"),
        );
    }
    assert_eq!(count(&db.pool, "organizations").await, 1);
}

#[tokio::test]
async fn users_refuse_unknown_roles_and_organizations_that_do_not_fit_the_role() {
    let db = test_db().await;
    let org = insert_organization(&db.pool, "Acme", "0003")
        .await
        .expect("a valid organization");
    // What is allowed.
    insert_user(&db.pool, "Root", "admin", None)
        .await
        .expect("an admin without organization");
    insert_user(&db.pool, "Switch", "switch", None)
        .await
        .expect("a global switch");
    insert_user(&db.pool, "Local switch", "switch", Some(org))
        .await
        .expect("an organization's switch");
    insert_user(&db.pool, "Acme", "organization", Some(org))
        .await
        .expect("the organization account");
    insert_user(&db.pool, "Alice", "user", Some(org))
        .await
        .expect("a user");
    let before = count(&db.pool, "users").await;

    let cases: [(&str, &str, Option<i64>, &str, &str); 9] = [
        ("boss", "Boss", Some(org), CHECK, "users_role_check"),
        ("", "Nobody", Some(org), CHECK, "users_role_check"),
        ("Admin", "Root", Some(org), CHECK, "users_role_check"),
        (
            "admin",
            "Root",
            Some(org),
            CHECK,
            "users_role_organization_check",
        ),
        (
            "user",
            "Alice",
            None,
            CHECK,
            "users_role_organization_check",
        ),
        (
            "organization",
            "Acme",
            None,
            CHECK,
            "users_role_organization_check",
        ),
        ("user", "   ", Some(org), CHECK, "users_name_check"),
        (
            "user",
            "Ghost",
            Some(org + 1000),
            FOREIGN_KEY,
            "users_organization_id_fkey",
        ),
        (
            "organization",
            "Acme again",
            Some(org),
            UNIQUE,
            "users_one_organization_account",
        ),
    ];
    for (role, name, organization, sqlstate, constraint) in cases {
        assert_violation(
            insert_user(&db.pool, name, role, organization).await,
            sqlstate,
            constraint,
            &format!("role {role:?} name {name:?} organization {organization:?}"),
        );
    }
    assert_eq!(count(&db.pool, "users").await, before);
}

// ---------------------------------------------------------------------------------------------
// extensions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn extensions_refuse_short_numbers_that_are_not_three_to_five_digits() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let number = insert_extension(&db.pool, f.org, "0003", f.alice, None, "12345")
        .await
        .expect("a valid five-digit extension");
    assert_eq!(number, "0003*12345");
    for short_number in ["21", "123456", "2a0", "", "21 ", "*210", "٢١٠"] {
        assert_violation(
            insert_extension(&db.pool, f.org, "0003", f.alice, None, short_number).await,
            CHECK,
            "extensions_short_number_check",
            &format!("short number {short_number:?}"),
        );
    }
}

#[tokio::test]
async fn extensions_refuse_a_full_number_that_already_exists() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    // 0003*210 is Alice's: neither Bob nor Alice may have it again.
    for user in [f.bob, f.alice] {
        assert_violation(
            insert_extension(&db.pool, f.org, "0003", user, None, "210").await,
            UNIQUE,
            "extensions_number_key",
            &format!("0003*210 again for user {user}"),
        );
    }
    // The same short number in another organization is another full number.
    let other_user = accounts::create_user(&db.pool, "Dave", Role::User, Some(f.other_org))
        .await
        .unwrap()
        .id;
    let number = insert_extension(&db.pool, f.other_org, "0007", other_user, None, "211")
        .await
        .expect("0007*211 is free");
    assert_eq!(number, "0007*211");
}

#[tokio::test]
async fn extensions_belong_only_to_user_accounts_of_their_own_organization() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let org_switch = accounts::create_user(&db.pool, "Local switch", Role::Switch, Some(f.org))
        .await
        .unwrap()
        .id;
    insert_extension(&db.pool, f.org, "0003", f.alice, None, "299")
        .await
        .expect("a valid extension");
    let before = count(&db.pool, "extensions").await;

    let cases = [
        (
            "the organization account",
            f.org,
            "0003",
            f.org_account,
            None,
            FOREIGN_KEY,
            "extensions_user_fkey",
        ),
        (
            "an admin",
            f.org,
            "0003",
            f.admin,
            None,
            FOREIGN_KEY,
            "extensions_user_fkey",
        ),
        (
            "a global switch",
            f.org,
            "0003",
            f.switch,
            None,
            FOREIGN_KEY,
            "extensions_user_fkey",
        ),
        (
            "the organization's switch",
            f.org,
            "0003",
            org_switch,
            None,
            FOREIGN_KEY,
            "extensions_user_fkey",
        ),
        (
            "an unknown user",
            f.org,
            "0003",
            f.alice + 1000,
            None,
            FOREIGN_KEY,
            "extensions_user_fkey",
        ),
        (
            "the organization account, claiming its role",
            f.org,
            "0003",
            f.org_account,
            Some("organization"),
            CHECK,
            "extensions_user_role_check",
        ),
        // Alice is in the first organization.
        (
            "a user of another organization",
            f.other_org,
            "0007",
            f.alice,
            None,
            FOREIGN_KEY,
            "extensions_user_fkey",
        ),
        // The code must be the organization's.
        (
            "the code of another organization",
            f.org,
            "0007",
            f.alice,
            None,
            FOREIGN_KEY,
            "extensions_organization_fkey",
        ),
        (
            "an unknown code",
            f.org,
            "0009",
            f.alice,
            None,
            FOREIGN_KEY,
            "extensions_organization_fkey",
        ),
    ];
    for (case, organization, code, user, user_role, sqlstate, constraint) in cases {
        assert_violation(
            insert_extension(&db.pool, organization, code, user, user_role, "298").await,
            sqlstate,
            constraint,
            case,
        );
    }
    assert_eq!(count(&db.pool, "extensions").await, before);
}

// ---------------------------------------------------------------------------------------------
// apps and access_tokens
// ---------------------------------------------------------------------------------------------

async fn insert_app(
    pool: &PgPool,
    user: i64,
    client_id: &str,
    digest: &[u8],
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO apps (user_id, name, client_id, client_secret_sha256) VALUES ($1, 'Dashboard', $2, $3)
         RETURNING id",
    )
    .bind(user)
    .bind(client_id)
    .bind(digest)
    .fetch_one(pool)
    .await
}

/// Inserts a token created at `created_at` (now when None).
async fn insert_token(
    pool: &PgPool,
    user: i64,
    digest: &[u8],
    created_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO access_tokens (user_id, token_sha256, created_at, expires_at, revoked_at)
         VALUES ($1, $2, COALESCE($3, now()), $4, $5) RETURNING id",
    )
    .bind(user)
    .bind(digest)
    .bind(created_at)
    .bind(expires_at)
    .bind(revoked_at)
    .fetch_one(pool)
    .await
}

#[tokio::test]
async fn apps_refuse_digests_that_are_not_32_bytes_and_malformed_client_ids() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    insert_app(&db.pool, f.alice, "pca_valid_client_id_1", &[7u8; 32])
        .await
        .expect("a valid app");
    for (case, digest) in [
        ("31 bytes", vec![7u8; 31]),
        ("33 bytes", vec![7u8; 33]),
        ("empty", vec![]),
    ] {
        assert_violation(
            insert_app(&db.pool, f.alice, "pca_valid_client_id_2", &digest).await,
            CHECK,
            "apps_client_secret_sha256_check",
            case,
        );
    }
    for client_id in ["short", "pca_has space in it", "pca_non*url*safe*chars"] {
        assert_violation(
            insert_app(&db.pool, f.alice, client_id, &[8u8; 32]).await,
            CHECK,
            "apps_client_id_check",
            client_id,
        );
    }
    assert_violation(
        insert_app(&db.pool, f.alice, "pca_valid_client_id_1", &[9u8; 32]).await,
        UNIQUE,
        "apps_client_id_key",
        "duplicate client id",
    );
    assert_violation(
        insert_app(
            &db.pool,
            f.alice + 1000,
            "pca_valid_client_id_3",
            &[9u8; 32],
        )
        .await,
        FOREIGN_KEY,
        "apps_user_id_fkey",
        "unknown user",
    );
    assert_eq!(count(&db.pool, "apps").await, 1);
}

#[tokio::test]
async fn access_tokens_refuse_short_digests_and_lifetimes_that_end_before_they_start() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let now = Utc::now();
    let hour = Duration::hours(1);
    insert_token(
        &db.pool,
        f.alice,
        &[1u8; 32],
        Some(now),
        now + hour,
        Some(now),
    )
    .await
    .expect("a valid token, revoked at once");
    let before = count(&db.pool, "access_tokens").await;
    assert_violation(
        insert_token(&db.pool, f.alice, &[2u8; 31], None, now + hour, None).await,
        CHECK,
        "access_tokens_token_sha256_check",
        "31-byte digest",
    );
    assert_violation(
        insert_token(&db.pool, f.alice, &[1u8; 32], None, now + hour, None).await,
        UNIQUE,
        "access_tokens_token_sha256_key",
        "duplicate digest",
    );
    for (case, expires_at) in [
        ("expires when created", now),
        ("expires before created", now - Duration::seconds(1)),
    ] {
        assert_violation(
            insert_token(&db.pool, f.alice, &[3u8; 32], Some(now), expires_at, None).await,
            CHECK,
            "access_tokens_expiry_check",
            case,
        );
    }
    assert_violation(
        insert_token(
            &db.pool,
            f.alice,
            &[4u8; 32],
            Some(now),
            now + hour,
            Some(now - Duration::seconds(1)),
        )
        .await,
        CHECK,
        "access_tokens_revoked_check",
        "revoked before created",
    );
    assert_violation(
        insert_token(&db.pool, f.alice + 1000, &[5u8; 32], None, now + hour, None).await,
        FOREIGN_KEY,
        "access_tokens_user_id_fkey",
        "unknown user",
    );
    assert_eq!(count(&db.pool, "access_tokens").await, before);
}

// ---------------------------------------------------------------------------------------------
// phone_calls and phone_call_views
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_valid_call_with_two_views_is_stored() {
    let db = test_db().await;
    let c = calls_fixture(&db.pool).await;
    let call = CallRow {
        ended: Some(at(65)),
        ..CallRow::valid(&c.alice)
    };
    call.insert(&db.pool).await.expect("a valid call");
    ViewRow::valid(&call, "00", &c.alice)
        .insert(&db.pool)
        .await
        .expect("Alice's view");
    let bob_view = ViewRow {
        source: vec!["210".into()],
        destination: vec!["211".into(), "+40 21 555 0100".into()],
        status: 3,
        answered: None,
        holder: None,
        disposition: None,
        parked_pos: Some(0),
        parked_by: Some("210".into()),
        ..ViewRow::valid(&call, "01", &c.bob)
    };
    bob_view.insert(&db.pool).await.expect("Bob's view");

    let stored: (i64, String, Option<DateTime<Utc>>, i64) = sqlx::query_as(
        "SELECT organization_id, extension, ended, sequence FROM phone_calls WHERE id = $1",
    )
    .bind(call.id)
    .fetch_one(&db.pool)
    .await
    .expect("the call");
    assert_eq!(stored, (c.f.org, "0003*210".to_string(), Some(at(65)), 0));
    let views: Vec<(String, String, Vec<String>, i16)> = sqlx::query_as(
        "SELECT view_id, extension, destination, status FROM phone_call_views WHERE phone_call_id = $1 ORDER BY view_id",
    )
    .bind(call.id)
    .fetch_all(&db.pool)
    .await
    .expect("the views");
    assert_eq!(
        views,
        [
            (
                "00".to_string(),
                "0003*210".to_string(),
                vec!["211".to_string()],
                5
            ),
            (
                "01".to_string(),
                "0003*211".to_string(),
                vec!["211".to_string(), "+40 21 555 0100".to_string()],
                3
            ),
        ]
    );

    // A call of the other organization, on its own extension, is fine too.
    let carol_call = CallRow::valid(&c.carol);
    carol_call.insert(&db.pool).await.expect("Carol's call");
    ViewRow::valid(&carol_call, "00", &c.carol)
        .insert(&db.pool)
        .await
        .expect("Carol's view");

    // Deleting a call deletes its views.
    sqlx::query("DELETE FROM phone_calls WHERE id = $1")
        .bind(call.id)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(count(&db.pool, "phone_call_views").await, 1);
}

#[tokio::test]
async fn phone_calls_refuse_times_before_publication_negative_sequences_and_missing_fields() {
    let db = test_db().await;
    let c = calls_fixture(&db.pool).await;
    let valid = CallRow::valid(&c.alice);
    valid.insert(&db.pool).await.expect("a valid call");
    // Answered and ended at the very moment of publication is allowed.
    CallRow {
        answered: Some(at(0)),
        ended: Some(at(0)),
        ..CallRow::valid(&c.alice)
    }
    .insert(&db.pool)
    .await
    .expect("a call answered and ended when published");
    let before = count(&db.pool, "phone_calls").await;

    let fresh = || CallRow::valid(&c.alice);
    let cases = [
        (
            "answered before published",
            CallRow {
                answered: Some(at(-1)),
                ..fresh()
            },
            "phone_calls_answered_check",
        ),
        (
            "ended before published",
            CallRow {
                ended: Some(at(-1)),
                ..fresh()
            },
            "phone_calls_ended_check",
        ),
        (
            "negative sequence",
            CallRow {
                sequence: Some(-1),
                ..fresh()
            },
            "phone_calls_sequence_check",
        ),
        (
            "nonce too long",
            CallRow {
                nonce: Some("n".repeat(257)),
                ..fresh()
            },
            "phone_calls_nonce_check",
        ),
    ];
    for (case, row, constraint) in cases {
        assert_violation(row.insert(&db.pool).await, CHECK, constraint, case);
    }
    assert_violation(
        CallRow {
            id: valid.id,
            ..fresh()
        }
        .insert(&db.pool)
        .await,
        UNIQUE,
        "phone_calls_pkey",
        "duplicate id",
    );
    assert_not_null(
        CallRow {
            published: None,
            ..fresh()
        }
        .insert(&db.pool)
        .await,
        "published",
        "no published",
    );
    assert_not_null(
        CallRow {
            sequence: None,
            ..fresh()
        }
        .insert(&db.pool)
        .await,
        "sequence",
        "no sequence",
    );
    assert_eq!(count(&db.pool, "phone_calls").await, before);
}

#[tokio::test]
async fn a_call_is_charged_only_to_an_extension_of_its_own_organization() {
    let db = test_db().await;
    let c = calls_fixture(&db.pool).await;
    CallRow::valid(&c.alice)
        .insert(&db.pool)
        .await
        .expect("a valid call");
    let before = count(&db.pool, "phone_calls").await;
    let fresh = || CallRow::valid(&c.alice);
    let cases = [
        (
            "Carol's extension on a call of the first organization",
            CallRow {
                extension_id: c.carol.id,
                extension: c.carol.number.clone(),
                ..fresh()
            },
        ),
        (
            "Carol's extension with its organization's id but the wrong number",
            CallRow {
                organization_id: c.f.other_org,
                extension_id: c.carol.id,
                ..fresh()
            },
        ),
        (
            "Alice's extension id with Bob's number",
            CallRow {
                extension: c.bob.number.clone(),
                ..fresh()
            },
        ),
        (
            "an unknown extension",
            CallRow {
                extension_id: c.alice.id + 1000,
                ..fresh()
            },
        ),
    ];
    for (case, row) in cases {
        assert_violation(
            row.insert(&db.pool).await,
            FOREIGN_KEY,
            "phone_calls_extension_fkey",
            case,
        );
    }
    assert_eq!(count(&db.pool, "phone_calls").await, before);
}

#[tokio::test]
async fn phone_call_views_refuse_codes_out_of_range() {
    let db = test_db().await;
    let c = calls_fixture(&db.pool).await;
    let call = CallRow::valid(&c.alice);
    call.insert(&db.pool).await.expect("a valid call");
    ViewRow::valid(&call, "00", &c.alice)
        .insert(&db.pool)
        .await
        .expect("a valid view");
    for flow in [2, 4, 8] {
        let view_id = format!("1{flow}");
        ViewRow {
            flow: Some(flow),
            ..ViewRow::valid(&call, &view_id, &c.bob)
        }
        .insert(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("flow {flow} is valid: {e}"));
    }
    let before = count(&db.pool, "phone_call_views").await;

    let fresh = || ViewRow::valid(&call, "20", &c.bob);
    let cases = [
        (
            "flow 3",
            ViewRow {
                flow: Some(3),
                ..fresh()
            },
            "phone_call_views_flow_check",
        ),
        (
            "flow 0",
            ViewRow {
                flow: Some(0),
                ..fresh()
            },
            "phone_call_views_flow_check",
        ),
        (
            "flow 16",
            ViewRow {
                flow: Some(16),
                ..fresh()
            },
            "phone_call_views_flow_check",
        ),
        (
            "status 6",
            ViewRow {
                status: 6,
                ..fresh()
            },
            "phone_call_views_status_check",
        ),
        (
            "status -1",
            ViewRow {
                status: -1,
                ..fresh()
            },
            "phone_call_views_status_check",
        ),
        (
            "disposition 6",
            ViewRow {
                disposition: Some(6),
                ..fresh()
            },
            "phone_call_views_disposition_check",
        ),
        (
            "disposition -1",
            ViewRow {
                disposition: Some(-1),
                ..fresh()
            },
            "phone_call_views_disposition_check",
        ),
        (
            "holder 2",
            ViewRow {
                holder: Some(2),
                ..fresh()
            },
            "phone_call_views_holder_check",
        ),
        (
            "holder -1",
            ViewRow {
                holder: Some(-1),
                ..fresh()
            },
            "phone_call_views_holder_check",
        ),
        (
            "view id x",
            ViewRow {
                view_id: "x".into(),
                ..fresh()
            },
            "phone_call_views_view_id_check",
        ),
        (
            "view id 1",
            ViewRow {
                view_id: "1".into(),
                ..fresh()
            },
            "phone_call_views_view_id_check",
        ),
        (
            "view id 001",
            ViewRow {
                view_id: "001".into(),
                ..fresh()
            },
            "phone_call_views_view_id_check",
        ),
        (
            "parked position -1",
            ViewRow {
                parked_pos: Some(-1),
                ..fresh()
            },
            "phone_call_views_parked_pos_check",
        ),
        (
            "parked by too long",
            ViewRow {
                parked_by: Some("9".repeat(65)),
                ..fresh()
            },
            "phone_call_views_parked_by_check",
        ),
        (
            "caller id too long",
            ViewRow {
                caller_id: Some("c".repeat(257)),
                ..fresh()
            },
            "phone_call_views_caller_id_check",
        ),
    ];
    for (case, row, constraint) in cases {
        assert_violation(row.insert(&db.pool).await, CHECK, constraint, case);
    }
    assert_violation(
        ViewRow::valid(&call, "00", &c.bob).insert(&db.pool).await,
        UNIQUE,
        "phone_call_views_pkey",
        "view 00 twice",
    );
    assert_not_null(
        ViewRow {
            flow: None,
            ..fresh()
        }
        .insert(&db.pool)
        .await,
        "flow",
        "no flow",
    );
    assert_eq!(count(&db.pool, "phone_call_views").await, before);
}

#[tokio::test]
async fn phone_call_views_stay_inside_their_calls_organization() {
    let db = test_db().await;
    let c = calls_fixture(&db.pool).await;
    let call = CallRow::valid(&c.alice);
    call.insert(&db.pool).await.expect("a valid call");
    ViewRow::valid(&call, "00", &c.alice)
        .insert(&db.pool)
        .await
        .expect("a valid view");
    let before = count(&db.pool, "phone_call_views").await;

    // Carol's extension belongs to the other organization: with the call's organization the
    // extension does not match...
    assert_violation(
        ViewRow::valid(&call, "01", &c.carol).insert(&db.pool).await,
        FOREIGN_KEY,
        "phone_call_views_extension_fkey",
        "a view on an extension of another organization",
    );
    // ... and with the extension's organization the call does not.
    assert_violation(
        ViewRow {
            organization_id: c.f.other_org,
            ..ViewRow::valid(&call, "01", &c.carol)
        }
        .insert(&db.pool)
        .await,
        FOREIGN_KEY,
        "phone_call_views_call_fkey",
        "a view whose organization is not its call's",
    );
    assert_violation(
        ViewRow {
            extension: c.alice.number.clone(),
            ..ViewRow::valid(&call, "01", &c.bob)
        }
        .insert(&db.pool)
        .await,
        FOREIGN_KEY,
        "phone_call_views_extension_fkey",
        "Bob's extension id with Alice's number",
    );
    assert_violation(
        ViewRow {
            phone_call_id: Uuid::new_v4(),
            ..ViewRow::valid(&call, "01", &c.bob)
        }
        .insert(&db.pool)
        .await,
        FOREIGN_KEY,
        "phone_call_views_call_fkey",
        "a view of an unknown call",
    );
    assert_eq!(count(&db.pool, "phone_call_views").await, before);

    // The views' key cascades updates of their call, organization included; the cascaded views
    // then name an extension of the old organization, so the call cannot move to Carol's.
    assert_violation(
        sqlx::query(
            "UPDATE phone_calls SET organization_id = $2, extension_id = $3, extension = $4 WHERE id = $1",
        )
        .bind(call.id)
        .bind(c.f.other_org)
        .bind(c.carol.id)
        .bind(&c.carol.number)
        .execute(&db.pool)
        .await,
        FOREIGN_KEY,
        "phone_call_views_extension_fkey",
        "moving a call with views to another organization",
    );
    let organization: i64 =
        sqlx::query_scalar("SELECT organization_id FROM phone_calls WHERE id = $1")
            .bind(call.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(organization, c.f.org);
}

#[tokio::test]
async fn changing_an_organization_code_renumbers_its_extensions_calls_and_views() {
    let db = test_db().await;
    let c = calls_fixture(&db.pool).await;
    let call = CallRow::valid(&c.alice);
    call.insert(&db.pool).await.expect("a valid call");
    ViewRow::valid(&call, "00", &c.alice)
        .insert(&db.pool)
        .await
        .expect("Alice's view");
    ViewRow::valid(&call, "01", &c.bob)
        .insert(&db.pool)
        .await
        .expect("Bob's view");
    let carol_call = CallRow::valid(&c.carol);
    carol_call.insert(&db.pool).await.expect("Carol's call");
    ViewRow::valid(&carol_call, "00", &c.carol)
        .insert(&db.pool)
        .await
        .expect("Carol's view");

    sqlx::query("UPDATE organizations SET code = '0042' WHERE id = $1")
        .bind(c.f.org)
        .execute(&db.pool)
        .await
        .expect("changing the code cascades instead of failing");

    let numbers: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, organization_code, number FROM extensions ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let number_of = |id: i64| {
        numbers
            .iter()
            .find(|(ext, _, _)| *ext == id)
            .map(|(_, _, n)| n.as_str())
    };
    assert_eq!(number_of(c.alice.id), Some("0042*210"), "{numbers:?}");
    assert_eq!(number_of(c.bob.id), Some("0042*211"), "{numbers:?}");
    assert_eq!(
        number_of(c.carol.id),
        Some("0007*210"),
        "the other organization keeps its numbers"
    );
    assert!(
        numbers
            .iter()
            .all(|(_, code, number)| number.starts_with(&format!("{code}*"))),
        "{numbers:?}"
    );

    let charged: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, extension FROM phone_calls")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert!(
        charged.contains(&(call.id, "0042*210".to_string())),
        "{charged:?}"
    );
    assert!(
        charged.contains(&(carol_call.id, "0007*210".to_string())),
        "{charged:?}"
    );
    let views: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT phone_call_id, view_id, extension FROM phone_call_views ORDER BY phone_call_id, view_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert!(
        views.contains(&(call.id, "00".to_string(), "0042*210".to_string())),
        "{views:?}"
    );
    assert!(
        views.contains(&(call.id, "01".to_string(), "0042*211".to_string())),
        "{views:?}"
    );
    assert!(
        views.contains(&(carol_call.id, "00".to_string(), "0007*210".to_string())),
        "{views:?}"
    );

    // The renumbered extension can still be charged, under its new number only.
    CallRow::valid(&Ext {
        number: "0042*211".into(),
        ..c.bob.clone()
    })
    .insert(&db.pool)
    .await
    .expect("a call on the new number");
    assert_violation(
        CallRow::valid(&c.bob).insert(&db.pool).await,
        FOREIGN_KEY,
        "phone_calls_extension_fkey",
        "a call on the old number",
    );
    // A code taken by another organization cannot be chosen.
    assert_violation(
        sqlx::query("UPDATE organizations SET code = '0007' WHERE id = $1")
            .bind(c.f.org)
            .execute(&db.pool)
            .await,
        UNIQUE,
        "organizations_code_key",
        "taking another organization's code",
    );
}

// ---------------------------------------------------------------------------------------------
// Documentation
// ---------------------------------------------------------------------------------------------

const TABLES: [&str; 7] = [
    "organizations",
    "users",
    "extensions",
    "apps",
    "access_tokens",
    "phone_calls",
    "phone_call_views",
];

/// Columns whose name says all: ids, names, creation times, foreign keys to another table's id.
fn obviously_named(column: &str) -> bool {
    matches!(column, "id" | "name" | "created_at" | "expires_at") || column.ends_with("_id")
}

#[tokio::test]
async fn every_table_and_every_column_not_obviously_named_has_a_comment() {
    let db = test_db().await;
    let tables: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text, obj_description(c.oid, 'pg_class')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> '_sqlx_migrations'
         ORDER BY c.relname",
    )
    .fetch_all(&db.pool)
    .await
    .expect("listing tables");
    for table in TABLES {
        assert!(
            tables.iter().any(|(name, _)| name == table),
            "table {table} exists: {tables:?}"
        );
    }
    for (table, comment) in &tables {
        assert!(
            comment.as_deref().is_some_and(|c| c.trim().len() >= 10),
            "table {table} needs a comment, has {comment:?}"
        );
    }

    let columns: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text, col_description(c.oid, a.attnum)
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relname = ANY($1)
         ORDER BY c.relname, a.attnum",
    )
    .bind(TABLES.to_vec())
    .fetch_all(&db.pool)
    .await
    .expect("listing columns");
    assert!(
        columns.len() > 50,
        "every column is listed: {}",
        columns.len()
    );
    let missing: Vec<String> = columns
        .iter()
        .filter(|(_, column, comment)| {
            !obviously_named(column) && comment.as_deref().is_none_or(|c| c.trim().is_empty())
        })
        .map(|(table, column, _)| format!("{table}.{column}"))
        .collect();
    assert!(missing.is_empty(), "columns without a comment: {missing:?}");
    // The codes the API documents are spelled out where they are stored.
    let comment_of = |table: &str, column: &str| {
        columns
            .iter()
            .find(|(t, c, _)| t == table && c == column)
            .and_then(|(_, _, comment)| comment.clone())
            .unwrap_or_default()
    };
    assert!(
        comment_of("phone_call_views", "flow").contains("8 incoming"),
        "flow comment"
    );
    assert!(
        comment_of("phone_call_views", "status").contains("5 on call"),
        "status comment"
    );
    assert!(
        comment_of("phone_call_views", "disposition").contains("5 not allowed"),
        "disposition comment"
    );
}

#[tokio::test]
async fn views_follow_their_calls_liveness() {
    let db = test_db().await;
    let c = calls_fixture(&db.pool).await;
    let call = CallRow::valid(&c.alice);
    call.insert(&db.pool).await.expect("a live call");
    let view = ViewRow::valid(&call, "00", &c.alice);
    assert_violation(
        ViewRow {
            call_live: false,
            ..ViewRow::valid(&call, "01", &c.alice)
        }
        .insert(&db.pool)
        .await,
        FOREIGN_KEY,
        "phone_call_views_call_fkey",
        "a view marked ended on a live call",
    );
    view.insert(&db.pool).await.expect("a live view");
    let live_views = |pool: PgPool| async move {
        sqlx::query_scalar::<_, bool>("SELECT bool_and(call_live) FROM phone_call_views")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert!(live_views(db.pool.clone()).await);
    sqlx::query("UPDATE phone_calls SET ended = published + interval '1 minute'")
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(
        !live_views(db.pool.clone()).await,
        "ending the call ends its views"
    );
    sqlx::query("UPDATE phone_calls SET ended = NULL")
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(
        live_views(db.pool.clone()).await,
        "reopening the call reopens its views"
    );
}
