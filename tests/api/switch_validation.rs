//! The switch feed's refusals (spec §5, error envelope §2.4): every invalid report, body, batch
//! and caller is answered with the exact error envelope and a message naming the field, and
//! leaves the database exactly as it was.

use crate::helpers::*;
use phonecalls::accounts::{self, Role};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

const BATCH: &str = "/switch/v1/phoneCalls";
const SINGLE_LIMIT: usize = 256 * 1024;
const BATCH_LIMIT: usize = 4 * 1024 * 1024;

fn call_path(id: &str) -> String {
    format!("/switch/v1/phoneCalls/{id}")
}

/// Checks the error envelope exactly as `assert_error` does (status, JSON content type, request
/// id, `{"error":{"code","message"}}` and nothing else, a non-empty message) and returns the
/// headers and the message, or a description of what is wrong.
async fn check_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> Result<(HeaderMap, String), String> {
    let headers = response.headers().clone();
    let got = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| format!("reading the body: {e}"))?;
    if got != status {
        return Err(format!("status {got}, expected {status} {code}: {body}"));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "content type {content_type:?} of a {status} {code}"
        ));
    }
    if !headers.contains_key("x-request-id") {
        return Err(format!("no X-Request-Id on a {status}"));
    }
    let value: Value =
        serde_json::from_str(&body).map_err(|e| format!("body is not JSON ({e}): {body}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| format!("body is not an object: {body}"))?;
    if object.len() != 1 {
        return Err(format!("only `error` at the top: {body}"));
    }
    let error = value["error"]
        .as_object()
        .ok_or_else(|| format!("`error` is not an object: {body}"))?;
    if error.len() != 2 {
        return Err(format!("only code and message: {body}"));
    }
    if error.get("code") != Some(&json!(code)) {
        return Err(format!("code is not {code:?}: {body}"));
    }
    match error.get("message").and_then(Value::as_str) {
        Some(message) if !message.is_empty() => Ok((headers, message.to_string())),
        _ => Err(format!("empty or missing message: {body}")),
    }
}

async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> (HeaderMap, String) {
    check_error(response, status, code)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Expects 400 `request_invalid` with a message containing `needle`; returns the message.
async fn expect_invalid(response: reqwest::Response, needle: &str) -> String {
    let (_, message) = expect_error(response, 400, "request_invalid").await;
    assert!(
        message.contains(needle),
        "message {message:?} should contain {needle:?}"
    );
    message
}

/// Everything the feed writes, for before/after comparisons: counts and full rows.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    calls: i64,
    views: i64,
    call_rows: Vec<String>,
    view_rows: Vec<String>,
}

async fn stored(pool: &PgPool) -> Stored {
    let call_rows =
        sqlx::query_scalar("SELECT row_to_json(c)::text FROM phone_calls c ORDER BY c.id")
            .fetch_all(pool)
            .await
            .unwrap();
    let view_rows = sqlx::query_scalar(
        "SELECT row_to_json(v)::text FROM phone_call_views v ORDER BY v.phone_call_id, v.view_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    Stored {
        calls: count(pool, "phone_calls").await,
        views: count(pool, "phone_call_views").await,
        call_rows,
        view_rows,
    }
}

async fn assert_nothing_stored(pool: &PgPool) {
    assert_eq!(count(pool, "phone_calls").await, 0, "phone_calls");
    assert_eq!(count(pool, "phone_call_views").await, 0, "phone_call_views");
}

/// `report` with the field at the JSON pointer set (added when absent).
fn with(mut report: Value, pointer: &str, new: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    report
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} in the report"))
        .as_object_mut()
        .unwrap()
        .insert(key.to_string(), new);
    report
}

/// `report` without the field at the JSON pointer.
fn without(mut report: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    report
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key)
        .unwrap_or_else(|| panic!("no {pointer} in the report"));
    report
}

/// A minimal valid view on `extension`.
fn view(id: usize, extension: &str) -> Value {
    json!({"id": format!("{id:02}"), "extension": extension, "flow": 2, "status": 0})
}

/// A request with full control over token, content type and raw body.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    request.send().await.expect("request to the switch feed")
}

/// JSON bytes of `wrap(report)`, where `report` gets an unknown `padding` field sized so that
/// the whole body is exactly `total` bytes. Unknown fields are ignored, so such a body is a
/// valid report of any size.
fn padded_body(report: Value, total: usize, wrap: impl Fn(Value) -> Value) -> Vec<u8> {
    let bare = serde_json::to_vec(&wrap(with(report.clone(), "/padding", json!("")))).unwrap();
    assert!(bare.len() <= total);
    let padding = "x".repeat(total - bare.len());
    let body = serde_json::to_vec(&wrap(with(report, "/padding", json!(padding)))).unwrap();
    assert_eq!(body.len(), total);
    body
}

fn as_batch(report: Value) -> Value {
    json!({ "reports": [report] })
}

/// An application with the fixture and a token of the global switch account.
async fn feed() -> (TestApp, Fixture, String) {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    (app, f, token)
}

/// One invalid `PUT`: the path's id, the body, and what the message must contain.
struct Case {
    name: &'static str,
    path_id: String,
    body: Value,
    message: &'static str,
}

/// A case made by mutating a valid first report of a new call.
fn mutated(name: &'static str, mutate: impl FnOnce(Value) -> Value, message: &'static str) -> Case {
    let id = new_call_id();
    Case {
        name,
        body: mutate(first_report(&id, 1)),
        path_id: id,
        message,
    }
}

fn catalogue() -> Vec<Case> {
    let sequence = "sequence must be an integer from 0";
    let views_33: Vec<Value> = (0..33).map(|i| view(i, "0003*210")).collect();
    let numbers_17 = vec![json!("0003*210"); 17];
    vec![
        // Database checks.
        mutated(
            "unknown charged extension",
            |r| with(r, "/extension", json!("0003*999")),
            "extension 0003*999 is not a known extension",
        ),
        mutated(
            "unknown view extension",
            |r| with(r, "/phoneCallView/1/extension", json!("0003*999")),
            "phoneCallView[1].extension 0003*999 is not a known extension",
        ),
        mutated(
            "view on an extension of another organization",
            |r| with(r, "/phoneCallView/1/extension", json!("0007*210")),
            "phoneCallView[1].extension 0007*210 belongs to another organization",
        ),
        mutated(
            "charged to an extension of another organization than its views",
            |r| with(r, "/extension", json!("0007*210")),
            "belongs to another organization",
        ),
        // Extension numbers.
        mutated(
            "short extension number",
            |r| with(r, "/extension", json!("210")),
            "extension must be a full extension number",
        ),
        mutated(
            "extension with a dash",
            |r| with(r, "/extension", json!("0003-210")),
            "extension must be a full extension number",
        ),
        mutated(
            "malformed view extension",
            |r| with(r, "/phoneCallView/0/extension", json!("0003-210")),
            "phoneCallView[0].extension must be a full extension number",
        ),
        mutated(
            "extension that is not a string",
            |r| with(r, "/extension", json!(3210)),
            "extension must be a string",
        ),
        // Dates.
        mutated(
            "malformed published",
            |r| with(r, "/published", json!("yesterday")),
            "published must be a date with a timezone",
        ),
        mutated(
            "impossible published",
            |r| with(r, "/published", json!("2024-02-30T10:00:00Z")),
            "published must be a date with a timezone",
        ),
        mutated(
            "published without a timezone",
            |r| with(r, "/published", json!("2026-11-28T14:40:28")),
            "published must be a date with a timezone",
        ),
        mutated(
            "published in year 0000",
            |r| with(r, "/published", json!("0000-11-28T14:40:28Z")),
            "published must be a date with a timezone",
        ),
        mutated(
            "published as a number",
            |r| with(r, "/published", json!(1_764_340_828)),
            "published must be a date",
        ),
        mutated(
            "malformed answered",
            |r| with(r, "/answered", json!("2026-11-28 14:40:30Z")),
            "answered must be a date",
        ),
        mutated(
            "impossible ended",
            |r| with(r, "/ended", json!("2026-13-01T00:00:00Z")),
            "ended must be a date",
        ),
        mutated(
            "view ringing without a timezone",
            |r| with(r, "/phoneCallView/0/ringing", json!("2026-11-28T14:40:29")),
            "phoneCallView[0].ringing must be a date",
        ),
        // Ranges of view fields.
        mutated(
            "flow 3",
            |r| with(r, "/phoneCallView/0/flow", json!(3)),
            "phoneCallView[0].flow must be 2",
        ),
        mutated(
            "status 6",
            |r| with(r, "/phoneCallView/0/status", json!(6)),
            "phoneCallView[0].status must be an integer from 0 to 5",
        ),
        mutated(
            "status -1",
            |r| with(r, "/phoneCallView/1/status", json!(-1)),
            "phoneCallView[1].status must be an integer from 0 to 5",
        ),
        mutated(
            "disposition 6",
            |r| with(r, "/phoneCallView/0/disposition", json!(6)),
            "phoneCallView[0].disposition must be an integer from 0 to 5",
        ),
        mutated(
            "holder 2",
            |r| with(r, "/phoneCallView/0/holder", json!(2)),
            "phoneCallView[0].holder must be an integer from 0 to 1",
        ),
        mutated(
            "parkedPos -1",
            |r| with(r, "/phoneCallView/0/parkedPos", json!(-1)),
            "phoneCallView[0].parkedPos must be an integer from 0",
        ),
        mutated(
            "view without flow",
            |r| without(r, "/phoneCallView/0/flow"),
            "phoneCallView[0].flow is missing",
        ),
        // Order of dates.
        mutated(
            "answered before published",
            |r| with(r, "/answered", json!("2026-11-28T14:40:27Z")),
            "answered must not be before published",
        ),
        mutated(
            "answered before published, in another timezone",
            |r| with(r, "/answered", json!("2026-11-28T15:40:27+01:00")),
            "answered must not be before published",
        ),
        mutated(
            "ended before published",
            |r| with(r, "/ended", json!("2026-11-28T14:00:00Z")),
            "ended must not be before published",
        ),
        // Sequence.
        mutated(
            "missing sequence",
            |r| without(r, "/sequence"),
            "sequence is missing",
        ),
        mutated(
            "null sequence",
            |r| with(r, "/sequence", Value::Null),
            "sequence is missing",
        ),
        mutated(
            "negative sequence",
            |r| with(r, "/sequence", json!(-1)),
            sequence,
        ),
        mutated(
            "fractional sequence",
            |r| with(r, "/sequence", json!(1.5)),
            sequence,
        ),
        mutated(
            "sequence as a string",
            |r| with(r, "/sequence", json!("1")),
            sequence,
        ),
        mutated(
            "sequence beyond 64 bits",
            |r| with(r, "/sequence", json!(u64::MAX)),
            sequence,
        ),
        // What a first report needs.
        mutated(
            "first report without extension",
            |r| without(r, "/extension"),
            "extension missing",
        ),
        mutated(
            "first report without published",
            |r| without(r, "/published"),
            "published missing",
        ),
        mutated(
            "first report without phoneCallView",
            |r| without(r, "/phoneCallView"),
            "phoneCallView missing",
        ),
        // Views.
        mutated(
            "empty phoneCallView",
            |r| with(r, "/phoneCallView", json!([])),
            "phoneCallView must hold 1 to 32 views",
        ),
        mutated(
            "phoneCallView that is an object",
            |r| with(r, "/phoneCallView", json!({"id": "00"})),
            "phoneCallView must be an array",
        ),
        mutated(
            "duplicate view ids",
            |r| with(r, "/phoneCallView/1/id", json!("00")),
            "phoneCallView[1].id \"00\" is used by another view",
        ),
        mutated(
            "view id of one digit",
            |r| with(r, "/phoneCallView/1/id", json!("1")),
            "phoneCallView[1].id must be two digits",
        ),
        mutated(
            "33 views",
            move |r| with(r, "/phoneCallView", Value::Array(views_33)),
            "phoneCallView must hold 1 to 32 views",
        ),
        mutated(
            "17 source numbers",
            move |r| with(r, "/phoneCallView/0/source", Value::Array(numbers_17)),
            "phoneCallView[0].source must hold at most 16 numbers",
        ),
        mutated(
            "empty destination number",
            |r| with(r, "/phoneCallView/0/destination", json!(["0003*211", ""])),
            "phoneCallView[0].destination[1]",
        ),
        // Texts.
        mutated(
            "nonce of 257 characters",
            |r| with(r, "/nonce", json!("n".repeat(257))),
            "nonce must have at most 256 characters",
        ),
        mutated(
            "callerId with a NUL character",
            |r| with(r, "/phoneCallView/1/callerId", json!("Alice\u{0} <210>")),
            "phoneCallView[1].callerId must not contain control characters",
        ),
        mutated(
            "callerId with an escape character",
            |r| {
                with(
                    r,
                    "/phoneCallView/1/callerId",
                    json!("Alice \u{1b}[31m<210>"),
                )
            },
            "phoneCallView[1].callerId must not contain control characters",
        ),
        mutated(
            "nonce with a newline",
            |r| with(r, "/nonce", json!("n-1\nforged log line")),
            "nonce must not contain control characters",
        ),
        // Ids and the body's shape.
        Case {
            name: "path id that is not a UUID",
            path_id: "not-a-uuid".into(),
            body: without(first_report(&new_call_id(), 1), "/id"),
            message: "phoneCallId must be a UUID",
        },
        {
            let id = uuid::Uuid::new_v4();
            Case {
                name: "path id as a UUID without hyphens",
                path_id: id.simple().to_string(),
                body: without(first_report(&id.to_string(), 1), "/id"),
                message: "phoneCallId must be a UUID",
            }
        },
        Case {
            name: "body id different from the path id",
            path_id: new_call_id(),
            body: first_report(&new_call_id(), 1),
            message: "id in the body differs from the id in the path",
        },
        mutated(
            "body id that is not a UUID",
            |r| with(r, "/id", json!("call-1")),
            "id must be a UUID",
        ),
        Case {
            name: "body that is an array",
            path_id: new_call_id(),
            body: json!([first_report(&new_call_id(), 1)]),
            message: "the report must be a JSON object",
        },
        Case {
            name: "body that is a string",
            path_id: new_call_id(),
            body: json!("{\"sequence\":1}"),
            message: "the report must be a JSON object",
        },
        Case {
            name: "body that is null",
            path_id: new_call_id(),
            body: Value::Null,
            message: "the report must be a JSON object",
        },
    ]
}

#[tokio::test]
async fn every_invalid_report_is_refused_with_a_message_naming_its_field_and_stores_nothing() {
    let (app, _f, token) = feed().await;
    let pool = app.pool();
    let mut before = stored(pool).await;
    assert_eq!((before.calls, before.views), (0, 0));
    let cases = catalogue();
    let total = cases.len();
    let mut failures = Vec::new();
    for case in cases {
        let response = app.put_report(&token, &case.path_id, &case.body).await;
        match check_error(response, 400, "request_invalid").await {
            Ok((_, message)) if message.contains(case.message) => {}
            Ok((_, message)) => failures.push(format!(
                "{}: message {message:?} does not contain {:?}",
                case.name, case.message
            )),
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
        let after = stored(pool).await;
        if after != before {
            failures.push(format!("{}: something was stored: {after:?}", case.name));
            before = after;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The report every case mutates is valid as it is.
    let id = new_call_id();
    let response = app.put_report(&token, &id, &first_report(&id, 1)).await;
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(count(pool, "phone_calls").await, 1);
    assert_eq!(count(pool, "phone_call_views").await, 2);
}

#[tokio::test]
async fn the_limits_of_a_report_are_inclusive() {
    let (app, _f, token) = feed().await;
    let id = new_call_id();
    let report = first_report(&id, 1);
    let report = with(
        report,
        "/phoneCallView",
        Value::Array((0..32).map(|i| view(i, "0003*211")).collect()),
    );
    let report = with(
        report,
        "/phoneCallView/0/source",
        Value::Array(vec![json!("+44 20 7946 0000"); 16]),
    );
    let report = with(report, "/nonce", json!("é".repeat(256)));
    let report = with(report, "/phoneCallView/0/callerId", json!("ü".repeat(256)));
    let report = with(report, "/answered", json!("2026-11-28T14:40:28Z"));
    let report = with(report, "/sequence", json!(i64::MAX));
    let response = app.put_report(&token, &id, &report).await;
    let status = response.status().as_u16();
    assert_eq!(status, 201, "{}", response.text().await.unwrap());
    assert_eq!(count(app.pool(), "phone_calls").await, 1);
    assert_eq!(count(app.pool(), "phone_call_views").await, 32);
}

#[tokio::test]
async fn dates_at_the_edges_of_the_calendar_are_stored_or_refused_but_never_fail() {
    let (app, _f, token) = feed().await;
    let pool = app.pool();
    // Valid xs:dateTime values whose UTC instant falls in year 0 or year 10000.
    let edges = [
        ("/phoneCallView/0/ringing", "0001-01-01T00:30:00+01:00"),
        ("/phoneCallView/0/ringing", "9999-12-31T23:30:00-01:00"),
        ("/published", "0001-01-01T00:30:00+01:00"),
        ("/published", "9999-12-31T23:30:00-01:00"),
    ];
    let mut failures = Vec::new();
    for (pointer, date) in edges {
        let id = new_call_id();
        let before = stored(pool).await;
        let report = without(first_report(&id, 1), "/phoneCallView/0/ringing");
        let report = without(report, "/phoneCallView/1/ringing");
        let report = with(report, pointer, json!(date));
        let response = app.put_report(&token, &id, &report).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        let after = stored(pool).await;
        match status {
            201 => {
                if after.calls != before.calls + 1 {
                    failures.push(format!("{pointer} = {date}: 201 but not stored"));
                }
            }
            400 => {
                if after != before {
                    failures.push(format!("{pointer} = {date}: 400 but stored"));
                }
            }
            _ => failures.push(format!("{pointer} = {date}: {status} {body}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn unreadable_bodies_are_refused_and_store_nothing() {
    let (app, _f, token) = feed().await;
    let pool = app.pool();
    let id = new_call_id();
    let path = call_path(&id);
    let json = Some("application/json");
    let valid = serde_json::to_vec(&first_report(&id, 1)).unwrap();

    let response = send(
        &app,
        Method::PUT,
        &path,
        Some(&token),
        json,
        b"{\"sequence\":".to_vec(),
    )
    .await;
    expect_invalid(response, "not valid JSON").await;
    let response = send(
        &app,
        Method::POST,
        BATCH,
        Some(&token),
        json,
        b"{\"reports\":[".to_vec(),
    )
    .await;
    expect_invalid(response, "not valid JSON").await;

    let text = Some("text/plain");
    let response = send(&app, Method::PUT, &path, Some(&token), text, valid.clone()).await;
    expect_invalid(response, "Content-Type: application/json").await;
    let batch = serde_json::to_vec(&as_batch(first_report(&id, 1))).unwrap();
    let response = send(&app, Method::POST, BATCH, Some(&token), text, batch.clone()).await;
    expect_invalid(response, "Content-Type: application/json").await;
    let response = send(&app, Method::PUT, &path, Some(&token), None, valid).await;
    expect_invalid(response, "Content-Type: application/json").await;
    let response = send(&app, Method::POST, BATCH, Some(&token), None, batch).await;
    expect_invalid(response, "Content-Type: application/json").await;

    let response = send(&app, Method::PUT, &path, Some(&token), json, Vec::new()).await;
    expect_error(response, 400, "request_invalid").await;
    let response = send(&app, Method::POST, BATCH, Some(&token), json, Vec::new()).await;
    expect_error(response, 400, "request_invalid").await;

    assert_nothing_stored(pool).await;
}

#[tokio::test]
async fn a_single_report_over_256_kib_is_refused_and_one_of_exactly_256_kib_is_stored() {
    let (app, _f, token) = feed().await;
    let pool = app.pool();
    let json = Some("application/json");

    let id = new_call_id();
    let body = padded_body(first_report(&id, 1), SINGLE_LIMIT + 1, |r| r);
    let response = send(&app, Method::PUT, &call_path(&id), Some(&token), json, body).await;
    expect_invalid(response, "larger than 262144 bytes").await;
    assert_nothing_stored(pool).await;

    let body = padded_body(first_report(&id, 1), SINGLE_LIMIT, |r| r);
    let response = send(&app, Method::PUT, &call_path(&id), Some(&token), json, body).await;
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(count(pool, "phone_calls").await, 1);
}

#[tokio::test]
async fn a_batch_over_4_mib_is_refused_and_one_of_exactly_4_mib_is_stored() {
    let (app, _f, token) = feed().await;
    let pool = app.pool();
    let json = Some("application/json");

    let id = new_call_id();
    let body = padded_body(first_report(&id, 1), BATCH_LIMIT + 1, as_batch);
    let response = send(&app, Method::POST, BATCH, Some(&token), json, body).await;
    expect_invalid(response, "larger than 4194304 bytes").await;
    assert_nothing_stored(pool).await;

    let body = padded_body(first_report(&id, 1), BATCH_LIMIT, as_batch);
    let response = send(&app, Method::POST, BATCH, Some(&token), json, body).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["results"][0]["status"], 201, "{answer}");
    assert_eq!(count(pool, "phone_calls").await, 1);
}

#[tokio::test]
async fn an_invalid_later_report_is_refused_and_leaves_the_stored_call_as_it_was() {
    let (app, _f, token) = feed().await;
    let pool = app.pool();
    let id = new_call_id();
    let response = app.put_report(&token, &id, &first_report(&id, 1)).await;
    assert_eq!(response.status().as_u16(), 201);
    let before = stored(pool).await;
    assert_eq!((before.calls, before.views), (1, 2));

    let later = [
        (
            // The stored published is 14:40:28Z; this report does not repeat it.
            json!({"sequence": 2, "answered": "2026-11-28T14:40:00Z"}),
            "answered must not be before published",
        ),
        (
            json!({"sequence": 3, "ended": "2026-11-28T16:40:27+02:00"}),
            "ended must not be before published",
        ),
        (
            with(
                first_report(&id, 4),
                "/phoneCallView/1/extension",
                json!("0007*210"),
            ),
            "phoneCallView[1].extension 0007*210 belongs to another organization",
        ),
        (
            json!({"sequence": 5, "extension": "0007*210"}),
            "extension 0007*210 belongs to another organization than the call",
        ),
        (
            json!({"sequence": 6, "phoneCallView": [{"id": "00", "extension": "0003*210", "flow": 3, "status": 5}]}),
            "phoneCallView[0].flow must be 2",
        ),
        (
            json!({"sequence": 7, "phoneCallView": []}),
            "phoneCallView must hold 1 to 32 views",
        ),
        (
            json!({"sequence": 8, "extension": "0003*999"}),
            "extension 0003*999 is not a known extension",
        ),
        (
            json!({"sequence": 9, "published": "2026-11-28T14:41:00Z", "answered": "2026-11-28T14:40:59Z"}),
            "answered must not be before published",
        ),
    ];
    for (report, needle) in later {
        let response = app.put_report(&token, &id, &report).await;
        expect_invalid(response, needle).await;
        assert_eq!(stored(pool).await, before, "after {report}");
    }

    // The refusals did not move the stored sequence: a valid report with sequence 2 applies.
    let response = app
        .put_report(
            &token,
            &id,
            &json!({"sequence": 2, "answered": "2026-11-28T14:40:40Z"}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer, json!({"id": id, "sequence": 2, "applied": true}));
}

#[tokio::test]
async fn a_batch_of_the_wrong_shape_is_refused_and_stores_nothing() {
    let (app, _f, token) = feed().await;
    let pool = app.pool();
    let json = Some("application/json");
    let shape = "reports";
    let bodies = [
        (json!({}), shape),
        (
            json!({"reports": []}),
            "reports must hold 1 to 1000 reports",
        ),
        (json!({"reports": "x"}), shape),
        (json!({"reports": null}), shape),
        (
            json!({"reports": {"0": first_report(&new_call_id(), 1)}}),
            shape,
        ),
        (json!([first_report(&new_call_id(), 1)]), shape),
        (json!("reports"), shape),
        (
            json!({"reports": (0..1001).map(|_| first_report(&new_call_id(), 1)).collect::<Vec<_>>()}),
            "reports must hold 1 to 1000 reports",
        ),
    ];
    for (body, needle) in bodies {
        let bytes = serde_json::to_vec(&body).unwrap();
        let response = send(&app, Method::POST, BATCH, Some(&token), json, bytes).await;
        expect_invalid(response, needle).await;
        assert_nothing_stored(pool).await;
    }
}

#[tokio::test]
async fn a_batch_of_exactly_1000_reports_is_accepted() {
    let (app, _f, token) = feed().await;
    let reports: Vec<Value> = (0..1000).map(|_| first_report(&new_call_id(), 1)).collect();
    let response = app.post_batch(&token, &reports).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 1000);
    assert!(results.iter().all(|r| r["status"] == 201), "{answer}");
    assert_eq!(count(app.pool(), "phone_calls").await, 1000);
}

/// Checks one refused entry of a batch answer: exactly `id`, `status` 400 and the error.
fn assert_refused(result: &Value, index: usize, id: Option<&str>, needle: &str) {
    let object = result.as_object().expect("a result is an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    match id {
        Some(id) => {
            assert_eq!(keys, ["error", "id", "status"], "{result}");
            assert_eq!(result["id"], id, "{result}");
        }
        None => {
            assert!(
                keys == ["error", "id", "status"] || keys == ["error", "status"],
                "{result}"
            );
            assert!(result["id"].is_null(), "{result}");
        }
    }
    assert_eq!(result["status"], 400, "{result}");
    let error = result["error"].as_object().expect("error is an object");
    assert_eq!(error.len(), 2, "{result}");
    assert_eq!(error["code"], "request_invalid", "{result}");
    let message = error["message"].as_str().expect("a message");
    let prefix = format!("reports[{index}]: ");
    assert!(
        message.starts_with(&prefix),
        "{message:?} starts with {prefix:?}"
    );
    assert!(message.contains(needle), "{message:?} contains {needle:?}");
}

#[tokio::test]
async fn a_batch_answers_each_report_in_order_and_stores_only_the_good_ones() {
    let (app, _f, token) = feed().await;
    let pool = app.pool();
    let good: Vec<String> = (0..3).map(|_| new_call_id()).collect();
    let unknown = new_call_id();
    let flow = new_call_id();
    let not_object = json!(42);
    let reports = vec![
        first_report(&good[0], 1),
        with(first_report(&unknown, 1), "/extension", json!("0003*999")),
        first_report(&good[1], 1),
        with(first_report(&flow, 1), "/phoneCallView/0/flow", json!(3)),
        first_report(&good[2], 1),
        without(first_report(&new_call_id(), 1), "/id"),
        // A later report of a call created earlier in this batch, answered before its published.
        json!({"id": good[0], "sequence": 2, "answered": "2026-11-28T14:00:00Z"}),
        not_object,
    ];

    for round in ["first", "replay"] {
        let response = app.post_batch(&token, &reports).await;
        assert_eq!(response.status().as_u16(), 200, "{round}");
        assert!(response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")));
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer.as_object().unwrap().len(),
            1,
            "only results: {answer}"
        );
        let results = answer["results"].as_array().expect("results");
        assert_eq!(results.len(), reports.len(), "{answer}");
        let (status, applied) = if round == "first" {
            (201, true)
        } else {
            (200, false)
        };
        for (index, id) in [(0, &good[0]), (2, &good[1]), (4, &good[2])] {
            assert_eq!(
                results[index],
                json!({"id": id, "status": status, "sequence": 1, "applied": applied}),
                "{round}"
            );
        }
        assert_refused(
            &results[1],
            1,
            Some(&unknown),
            "extension 0003*999 is not a known extension",
        );
        assert_refused(
            &results[3],
            3,
            Some(&flow),
            "phoneCallView[0].flow must be 2",
        );
        assert_refused(&results[5], 5, None, "id is missing");
        assert_refused(
            &results[6],
            6,
            Some(&good[0]),
            "answered must not be before published",
        );
        assert_refused(&results[7], 7, None, "the report must be a JSON object");

        let mut ids: Vec<String> = sqlx::query_scalar("SELECT id::text FROM phone_calls")
            .fetch_all(pool)
            .await
            .unwrap();
        ids.sort();
        let mut expected = good.clone();
        expected.sort();
        assert_eq!(ids, expected, "{round}");
        assert_eq!(count(pool, "phone_call_views").await, 6, "{round}");
        let sequences: Vec<i64> = sqlx::query_scalar("SELECT sequence FROM phone_calls")
            .fetch_all(pool)
            .await
            .unwrap();
        assert_eq!(sequences, [1, 1, 1], "{round}");
    }
}

#[tokio::test]
async fn a_replayed_batch_changes_nothing_stored() {
    let (app, _f, token) = feed().await;
    let pool = app.pool();
    let reports: Vec<Value> = (0..3).map(|_| first_report(&new_call_id(), 1)).collect();
    let response = app.post_batch(&token, &reports).await;
    assert_eq!(response.status().as_u16(), 200);
    let before = stored(pool).await;
    let response = app.post_batch(&token, &reports).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    for result in answer["results"].as_array().unwrap() {
        assert_eq!(result["status"], 200, "{answer}");
        assert_eq!(result["applied"], false, "{answer}");
    }
    assert_eq!(stored(pool).await, before);
}

/// A request body under test: its name, content type, and the bodies for `PUT` and `POST`.
type Body = (&'static str, Option<&'static str>, Vec<u8>, Vec<u8>);

/// Sends every body to both endpoints as every caller that is not a switch: no token (401),
/// an unknown token (401), and tokens of an admin, an organization and a user (403). Returns
/// what did not get the expected `access_denied`; asserts that nothing was stored.
async fn refusals_of_non_switch_callers(
    app: &TestApp,
    f: &Fixture,
    bodies: &[Body],
) -> Vec<String> {
    let pool = app.pool();
    let item = call_path(&new_call_id());
    let mut callers = vec![("no token", None, 401)];
    for (name, user) in [
        ("admin", f.admin),
        ("organization", f.org_account),
        ("user", f.alice),
    ] {
        callers.push((name, Some(token_for(pool, user).await), 403));
    }
    callers.push((
        "unknown token",
        Some(phonecalls::auth::token::generate_token()),
        401,
    ));

    let mut failures = Vec::new();
    for (caller, token, status) in &callers {
        for (body_name, content_type, single, batch) in bodies {
            for (method, path, body) in [
                (Method::PUT, item.as_str(), single),
                (Method::POST, BATCH, batch),
            ] {
                let what = format!("{method} {path} by {caller} with {body_name}");
                let response = send(
                    app,
                    method.clone(),
                    path,
                    token.as_deref(),
                    *content_type,
                    body.clone(),
                )
                .await;
                match check_error(response, *status, "access_denied").await {
                    Ok((headers, _)) if *status == 401 => {
                        let expected = if token.is_some() {
                            r#"Bearer realm="uapi", error="invalid_token""#
                        } else {
                            r#"Bearer realm="uapi""#
                        };
                        let got = headers
                            .get("www-authenticate")
                            .and_then(|v| v.to_str().ok());
                        if got != Some(expected) {
                            failures.push(format!("{what}: WWW-Authenticate {got:?}"));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => failures.push(format!("{what}: {e}")),
                }
            }
        }
    }
    assert_nothing_stored(pool).await;
    failures
}

#[tokio::test]
async fn only_switch_accounts_may_report() {
    let (app, f, _switch_token) = feed().await;
    let json = Some("application/json");
    let id = new_call_id();
    let bodies: Vec<Body> = vec![
        (
            "a valid body",
            json,
            serde_json::to_vec(&without(first_report(&id, 1), "/id")).unwrap(),
            serde_json::to_vec(&as_batch(first_report(&id, 1))).unwrap(),
        ),
        (
            "a body of the wrong shape",
            json,
            b"[]".to_vec(),
            b"{\"reports\":\"x\"}".to_vec(),
        ),
    ];
    let failures = refusals_of_non_switch_callers(&app, &f, &bodies).await;
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_role_check_comes_before_the_body_is_read() {
    let (app, f, _switch_token) = feed().await;
    let json = Some("application/json");
    let id = new_call_id();
    let bodies: Vec<Body> = vec![
        (
            "malformed JSON",
            json,
            b"{\"sequence\":".to_vec(),
            b"{\"reports\":".to_vec(),
        ),
        (
            "a text/plain body",
            Some("text/plain"),
            serde_json::to_vec(&first_report(&id, 1)).unwrap(),
            serde_json::to_vec(&as_batch(first_report(&id, 1))).unwrap(),
        ),
        (
            "a body over the limit",
            json,
            padded_body(first_report(&id, 1), SINGLE_LIMIT + 1, |r| r),
            padded_body(first_report(&id, 1), BATCH_LIMIT + 1, as_batch),
        ),
    ];
    let failures = refusals_of_non_switch_callers(&app, &f, &bodies).await;
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_switch_of_one_organization_reports_only_that_organizations_calls() {
    let (app, f, global_token) = feed().await;
    let pool = app.pool();
    let pbx = accounts::create_user(pool, "PBX", Role::Switch, Some(f.org))
        .await
        .unwrap()
        .id;
    let token = token_for(pool, pbx).await;

    let own = new_call_id();
    let response = app.put_report(&token, &own, &first_report(&own, 1)).await;
    assert_eq!(response.status().as_u16(), 201);
    let before = stored(pool).await;

    let foreign = new_call_id();
    let report = with(first_report(&foreign, 1), "/extension", json!("0007*210"));
    let report = with(report, "/phoneCallView", json!([view(0, "0007*210")]));
    let response = app.put_report(&token, &foreign, &report).await;
    expect_invalid(
        response,
        "extension 0007*210 belongs to an organization this switch account does not serve",
    )
    .await;
    assert_eq!(stored(pool).await, before);

    let response = app.post_batch(&token, std::slice::from_ref(&report)).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_refused(&answer["results"][0], 0, Some(&foreign), "does not serve");
    assert_eq!(stored(pool).await, before);

    // A call of 0007 reported by the global switch cannot be changed by the switch of 0003,
    // even by a later report that names no extension: for that switch the call does not exist,
    // so such a report lacks what a first report needs (see hardening.rs for the whole rule).
    let response = app.put_report(&global_token, &foreign, &report).await;
    assert_eq!(response.status().as_u16(), 201);
    let before = stored(pool).await;
    let later = json!({"sequence": 2, "ended": "2026-11-28T15:00:00Z"});
    let response = app.put_report(&token, &foreign, &later).await;
    expect_invalid(response, "the first report of a call needs").await;
    assert_eq!(stored(pool).await, before);
}

#[tokio::test]
async fn other_methods_are_not_allowed_on_the_feed() {
    let (app, _f, token) = feed().await;
    let id = new_call_id();
    let item = call_path(&id);
    let body = serde_json::to_vec(&first_report(&id, 1)).unwrap();
    let json = Some("application/json");
    let cases = [
        (Method::PATCH, item.as_str(), "PUT"),
        (Method::GET, item.as_str(), "PUT"),
        (Method::POST, item.as_str(), "PUT"),
        (Method::DELETE, item.as_str(), "PUT"),
        (Method::GET, BATCH, "POST"),
        (Method::PUT, BATCH, "POST"),
        (Method::PATCH, BATCH, "POST"),
        (Method::DELETE, BATCH, "POST"),
    ];
    for (method, path, allow) in cases {
        for token in [Some(token.as_str()), None] {
            let response = send(&app, method.clone(), path, token, json, body.clone()).await;
            let (headers, _) = expect_error(response, 405, "method_not_allowed").await;
            assert_eq!(headers["allow"], allow, "{method} {path}");
        }
    }
    assert_nothing_stored(app.pool()).await;
}
