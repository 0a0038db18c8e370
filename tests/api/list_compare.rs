//! The list's answers are byte for byte what they were before issue 10. The service now reads
//! plain rows and writes the JSON with serde; `sql::baseline` keeps the statement of before,
//! which built the views' JSON in PostgreSQL. Over a seeded data set (with views made to carry
//! every field, quotes, backslashes, control characters and non-ASCII text, and calls without
//! views), hundreds of generated requests by every kind of caller go through the real service on
//! a real port, and each 200 answer must equal, byte for byte, the page the baseline statement
//! gives for the same request, rendered the way the service always did. `COMPARE_SEED` and
//! `COMPARE_REQUESTS` (default 600) vary the run; a failure names the request.

use phonecalls::auth::{Caller, Role};
use phonecalls::phone_calls::model::PageWriter;
use phonecalls::phone_calls::path::{self, CallRef};
use phonecalls::phone_calls::query::{self, Field, SortBy};
use phonecalls::phone_calls::repo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{settings_for, spawn_app_on, test_db, token_for};

/// Seeds the data set: `scripts/seed.sql` at a small size, then views and calls edited so that
/// every field and every kind of character the JSON must escape appear on the page.
async fn seed(url: &str, pool: &PgPool) {
    let mut command = std::process::Command::new("psql");
    command
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(["-v", "calls=3000", "-v", "live=1200", "-v", "orgs=3"])
        .args(["-v", "users=30", "-v", "extensions=60", "-v", "seed=0.25"])
        .arg("-f")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/seed.sql"))
        .arg(url);
    let status = tokio::task::spawn_blocking(move || command.status().expect("running psql"))
        .await
        .unwrap();
    assert!(status.success(), "scripts/seed.sql failed: {status}");
    sqlx::raw_sql(
        r#"
        WITH picked AS (SELECT id FROM phone_calls WHERE ended IS NULL ORDER BY id LIMIT 60)
        UPDATE phone_call_views v SET
            caller_id = 'Zoë "Q" \back\ ' || chr(9) || chr(10) || chr(1) || chr(127) || ' 😀 <12>',
            source = ARRAY['+44 "20"', 'a\b', 'ü'],
            recording = now() - interval '61.999999 seconds',
            answered = coalesce(v.answered, now() - interval '1.5 seconds'),
            parked = now() - interval '0.25 seconds', parked_pos = 0, parked_by = '1"2\3',
            on_hold = now() - interval '2 hours 0.5 seconds', holder = 1, disposition = 2
        FROM picked WHERE v.phone_call_id = picked.id AND v.view_id = '01';
        WITH picked AS (SELECT id FROM phone_calls WHERE ended IS NULL ORDER BY id DESC LIMIT 8)
        DELETE FROM phone_call_views v USING picked WHERE v.phone_call_id = picked.id;
        WITH picked AS (SELECT id FROM phone_calls WHERE ended IS NULL ORDER BY id DESC LIMIT 30)
        UPDATE phone_calls c SET nonce = 'n"\' || chr(31) || 'é'
        FROM picked WHERE c.id = picked.id;
        ANALYZE;
        "#,
    )
    .execute(pool)
    .await
    .expect("editing the seeded calls");
}

/// An extension's full and short numbers.
type Numbers = (String, String);

/// What a generated request may name.
struct World {
    /// Each caller with its token and its own extensions.
    callers: Vec<(Caller, String, Vec<Numbers>)>,
    user_ids: Vec<i64>,
    extensions: Vec<Numbers>,
    calls: Vec<Uuid>,
    names: Vec<String>,
}

async fn world(pool: &PgPool) -> World {
    let accounts: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
        "(SELECT id, role, organization_id FROM users WHERE role IN ('admin', 'organization', 'switch'))
         UNION ALL
         (SELECT u.id, u.role, u.organization_id FROM users u WHERE u.role = 'user'
          ORDER BY (SELECT count(*) FROM phone_call_views v JOIN extensions e ON e.id = v.extension_id
                    WHERE v.call_live AND e.user_id = u.id) DESC, u.id LIMIT 8)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut callers = Vec::new();
    for (id, role, organization_id) in accounts {
        let own: Vec<Numbers> =
            sqlx::query_as("SELECT number, short_number FROM extensions WHERE user_id = $1")
                .bind(id)
                .fetch_all(pool)
                .await
                .unwrap();
        let caller = Caller {
            user_id: id,
            role: role.parse::<Role>().unwrap(),
            organization_id,
        };
        callers.push((caller, token_for(pool, id).await, own));
    }
    let user_ids = sqlx::query_scalar("SELECT id FROM users ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    let extensions = sqlx::query_as("SELECT number, short_number FROM extensions ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    let calls = sqlx::query_scalar("SELECT id FROM phone_calls WHERE ended IS NULL ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    let names = sqlx::query_scalar(
        "SELECT DISTINCT split_part(caller_id, ' ', 1) FROM phone_call_views
         WHERE call_live AND caller_id IS NOT NULL ORDER BY 1 LIMIT 20",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    World {
        callers,
        user_ids,
        extensions,
        calls,
        names,
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A request's path and query for `caller` (index into `world.callers`).
fn request(rng: &mut StdRng, world: &World, caller: usize) -> String {
    let (_, _, own) = &world.callers[caller];
    let extension = |rng: &mut StdRng| {
        let (full, short) = if !own.is_empty() && rng.random_bool(0.8) {
            pick(rng, own).clone()
        } else {
            pick(rng, &world.extensions).clone()
        };
        if rng.random_bool(0.5) {
            full
        } else {
            short
        }
    };
    let user = match rng.random_range(0..10) {
        0..=3 => "@me".to_string(),
        4..=7 => "@owner".to_string(),
        8 => world.callers[caller].0.user_id.to_string(),
        _ => pick(rng, &world.user_ids).to_string(),
    };
    let extension = if rng.random_bool(0.75) {
        "@self".to_string()
    } else {
        extension(rng)
    };
    let mut path = format!("/uapi/phoneCalls/{user}/{}/", extension.replace('*', "%2A"));
    if rng.random_bool(0.1) {
        path.push_str(&pick(rng, &world.calls).to_string());
    }
    let mut params: Vec<String> = Vec::new();
    if rng.random_bool(0.7) {
        params.push(format!(
            "count={}",
            pick(rng, &[1, 2, 3, 7, 20, 50, 100, 400])
        ));
    }
    if rng.random_bool(0.4) {
        params.push(format!(
            "startIndex={}",
            pick(rng, &[0, 1, 2, 5, 20, 60, 150])
        ));
    }
    if rng.random_bool(0.5) {
        params.push(format!(
            "sortBy={}",
            pick(rng, &SortBy::ALL.map(SortBy::name))
        ));
    }
    if rng.random_bool(0.5) {
        params.push(format!(
            "sortOrder={}",
            pick(rng, &["ascending", "descending"])
        ));
    }
    if rng.random_bool(0.3) {
        let all = Field::ALL.map(Field::name);
        let chosen: Vec<&str> = all
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.5))
            .collect();
        if !chosen.is_empty() {
            params.push(format!("fields={}", chosen.join(",")));
        }
    }
    if rng.random_bool(0.7) {
        let name = pick(rng, &world.names).clone();
        let call = pick(rng, &world.calls).to_string();
        let (full, short) = pick(rng, &world.extensions).clone();
        let (field, op, value) = match rng.random_range(0..16) {
            0 => ("status", "equals", rng.random_range(0..6).to_string()),
            1 => ("status", "inArray", "3,5".to_string()),
            2 => ("flow", "equals", pick(rng, &[2, 4, 8]).to_string()),
            3 => ("status", "greaterThan", rng.random_range(0..6).to_string()),
            4 => ("callerId", "contains", name),
            5 => ("callerId", "startsWith", name),
            6 => ("destination", "startsWith", "%2B44".to_string()),
            7 => ("destination", "startsWith", full.replace('*', "%2A")),
            8 => ("source", "equals", full.replace('*', "%2A")),
            9 => ("source", "contains", short),
            10 => ("extension", "startsWith", full[..6].replace('*', "%2A")),
            11 => ("id", "equals", call),
            12 => ("answered", "present", String::new()),
            13 => (
                "published",
                "greaterThan",
                published_minutes_ago(rng.random_range(5..60)),
            ),
            14 => ("published", "contains", "T".to_string()),
            _ => ("ownerId", "equals", rng.random_range(1..4).to_string()),
        };
        params.push(format!(
            "filterBy={field}&filterOp={op}&filterValue={value}"
        ));
    }
    if params.is_empty() {
        path
    } else {
        format!("{path}?{}", params.join("&"))
    }
}

fn published_minutes_ago(minutes: i64) -> String {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes);
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The answer the baseline statement gives for `uri`, its views' JSON as PostgreSQL built it and
/// the rest written as the service writes a page: `None` when it is not a page (an error or no
/// call).
async fn baseline_answer(pool: &PgPool, caller: &Caller, uri: &str) -> Option<Vec<u8>> {
    let (raw_path, raw_query) = uri.split_once('?').unwrap_or((uri, ""));
    let tail = raw_path.strip_prefix("/uapi/phoneCalls/").unwrap();
    let tail = percent_encoding::percent_decode_str(tail)
        .decode_utf8()
        .unwrap();
    let list_path = path::parse(&tail)?.ok()?;
    let request = query::parse(raw_query).ok()?;
    let scope = repo::resolve(pool, caller, &list_path).await.ok()?;
    let call = match list_path.call {
        CallRef::Any => None,
        CallRef::Id(id) => Some(id),
        CallRef::Malformed => return None,
    };
    let with_views = request.fields.contains(Field::PhoneCallView);
    let mut page = PageWriter::new(&request, raw_path.to_string(), raw_query.to_string());
    repo::list_baseline(
        pool,
        caller,
        &scope,
        call,
        &request,
        with_views,
        |call, total| {
            page.push(call, total);
        },
    )
    .await
    .unwrap();
    page.finish().unwrap()
}

#[tokio::test]
async fn pages_are_byte_for_byte_those_of_the_baseline_statement() {
    let seed: u64 = std::env::var("COMPARE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261129);
    let requests: usize = std::env::var("COMPARE_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let db = test_db().await;
    seed_and_check(db, seed, requests).await;
}

async fn seed_and_check(db: crate::helpers::TestDb, seed: u64, requests: usize) {
    let url = db.url.clone();
    let pool = db.pool.clone();
    self::seed(&url, &pool).await;
    let world = world(&pool).await;
    let app = spawn_app_on(db, settings_for(&url)).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut pages, mut with_views, mut empty, mut refused) = (0, 0, 0, 0);
    let mut escaped = 0;
    for n in 0..requests {
        let caller = rng.random_range(0..world.callers.len());
        let uri = request(&mut rng, &world, caller);
        let (who, token, _) = &world.callers[caller];
        let response = app
            .get_with_authorization(&uri, &format!("Bearer {token}"))
            .await;
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap();
        let expected = baseline_answer(&pool, who, &uri).await;
        match (status, expected) {
            (200, Some(expected)) => {
                assert!(
                    body[..] == expected[..],
                    "request {n} (seed {seed}) {uri} by {who:?}:\nservice:  {}\nbaseline: {}",
                    String::from_utf8_lossy(&body),
                    String::from_utf8_lossy(&expected)
                );
                pages += 1;
                if expected.windows(16).any(|w| w == b"\"phoneCallView\":") {
                    with_views += 1;
                }
                if expected.windows(6).any(|w| w == b"\\u0001") {
                    escaped += 1;
                }
            }
            (204, None) => empty += 1,
            (400..=499, None) => refused += 1,
            (status, expected) => panic!(
                "request {n} (seed {seed}) {uri} by {who:?}: the service answered {status} ({}), the baseline {}",
                String::from_utf8_lossy(&body),
                match expected {
                    Some(page) => format!("a page: {}", String::from_utf8_lossy(&page)),
                    None => "no page".to_string(),
                }
            ),
        }
    }
    println!(
        "{pages} pages ({with_views} with views, {escaped} with escaped control characters), \
         {empty} empty, {refused} refused"
    );
    // The comparison means something only if many requests got pages, most of them with views,
    // some with the edited views, and the other answers occurred too.
    assert!(
        pages * 3 > requests,
        "only {pages} of {requests} requests got a page"
    );
    assert!(escaped > 0, "no page showed the edited views");
    assert!(
        with_views * 2 > pages,
        "only {with_views} of {pages} pages had views"
    );
    assert!(
        empty > 0 && refused > 0,
        "{empty} empty pages, {refused} refusals"
    );
}
