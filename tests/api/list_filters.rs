//! The list's query language end to end (spec §2.3–2.5): every filter operator on every
//! filterable field, sorting and paging, the response shape and the path forms. Calls enter only
//! through the switch feed (§5); every expected answer below is written out by hand from the
//! seed data, never computed by the database.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The list path the admin and the organization account use: everything they may see.
const ALL: &str = "/uapi/phoneCalls/@owner/@self/";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Sends reports through the switch feed's batch endpoint and checks each one was applied.
async fn seed(app: &TestApp, switch_token: &str, reports: &[Value]) {
    let response = app.post_batch(switch_token, reports).await;
    assert_eq!(response.status().as_u16(), 200, "batch answer");
    let body: Value = response.json().await.unwrap();
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), reports.len(), "{body}");
    for (report, result) in reports.iter().zip(results) {
        assert_eq!(result["applied"], true, "report {report} refused: {result}");
        assert!(
            [200, 201].contains(&result["status"].as_u64().unwrap_or(0)),
            "report {report}: {result}"
        );
    }
}

/// A GET of the list with a bearer token: the status and, unless it is a 204 (whose body must be
/// empty), the JSON body.
async fn get_list(app: &TestApp, token: &str, path: &str) -> (u16, Option<Value>) {
    let response = app.get_with_authorization(path, &bearer(token)).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    if status == 204 {
        assert!(
            text.is_empty(),
            "a 204 has an empty body: {path} -> {text:?}"
        );
        return (status, None);
    }
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path} -> {status}, body is not JSON ({e}): {text}"));
    (status, Some(body))
}

/// A 200 page of the list.
async fn page(app: &TestApp, token: &str, path: &str) -> Value {
    match get_list(app, token, path).await {
        (200, Some(body)) => body,
        (status, body) => panic!("{path}: expected 200, got {status} {body:?}"),
    }
}

fn entry_ids(body: &Value) -> Vec<String> {
    body["entry"]
        .as_array()
        .unwrap_or_else(|| panic!("entry is an array: {body}"))
        .iter()
        .map(|e| e["id"].as_str().expect("entry id").to_string())
        .collect()
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

fn view(
    id: &str,
    extension: &str,
    source: &[&str],
    destination: &[&str],
    flow: i64,
    status: i64,
    caller_id: Option<&str>,
) -> Value {
    let mut view = json!({
        "id": id, "extension": extension, "source": source, "destination": destination,
        "flow": flow, "status": status,
    });
    if let Some(caller_id) = caller_id {
        view["callerId"] = json!(caller_id);
    }
    view
}

fn call(
    id: &str,
    extension: &str,
    published: &str,
    answered: Option<&str>,
    nonce: Option<&str>,
    views: Vec<Value>,
) -> Value {
    let mut call = json!({
        "id": id, "sequence": 1, "extension": extension, "published": published,
        "phoneCallView": views,
    });
    if let Some(answered) = answered {
        call["answered"] = json!(answered);
    }
    if let Some(nonce) = nonce {
        call["nonce"] = json!(nonce);
    }
    call
}

// ---------------------------------------------------------------------------------------------
// The filter seed
// ---------------------------------------------------------------------------------------------

const A: &str = "1a000000-0000-4000-8000-00000000beef";
const B: &str = "2b000000-0000-4000-8000-000000000002";
const C: &str = "3c000000-0000-4000-8000-0000beef0003";
const D: &str = "4d000000-0000-4000-8000-000000000004";
const E: &str = "5e000000-0000-4000-8000-000000000005";
const F: &str = "6f000000-0000-4000-8000-000000000006";
const G: &str = "1b000000-0000-4000-8000-000000000007";
const H: &str = "8b000000-0000-4000-8000-000000000008";
/// Org 0007 (Carol).
const K: &str = "9c000000-0000-4000-8000-00000000beef";
/// Ended: it would match most filters, and must never be listed.
const X: &str = "0e000000-0000-4000-8000-00000000beef";

/// Every live call in the default order (published ascending, then id): D is published on
/// 2026-11-27 UTC although reported as the 28th in +02:00; G and F share a published instant
/// and G's id is lower.
const ORDER: [&str; 9] = ["D", "A", "B", "K", "G", "F", "C", "E", "H"];
/// The live calls of organization 0003.
const ORG_0003: [&str; 8] = ["A", "B", "C", "D", "E", "F", "G", "H"];

fn label_of(id: &str) -> String {
    let label = [
        (A, "A"),
        (B, "B"),
        (C, "C"),
        (D, "D"),
        (E, "E"),
        (F, "F"),
        (G, "G"),
        (H, "H"),
        (K, "K"),
        (X, "X(ended)"),
    ]
    .into_iter()
    .find(|(known, _)| *known == id)
    .map(|(_, label)| label.to_string());
    label.unwrap_or_else(|| format!("?{id}"))
}

/// `labels` in the default order of the list.
fn in_order(labels: &[&str]) -> Vec<String> {
    for label in labels {
        assert!(ORDER.contains(label), "unknown label {label}");
    }
    ORDER
        .iter()
        .filter(|l| labels.contains(l))
        .map(|l| l.to_string())
        .collect()
}

/// Calls with deliberately chosen values: see each field's cases for what they exercise.
fn filter_seed() -> Vec<Value> {
    let ended_live = call(
        X,
        "0003*210",
        "2026-11-28T09:30:00Z",
        Some("2026-11-28T09:30:05Z"),
        Some("nonce-x"),
        vec![
            view(
                "00",
                "0003*210",
                &["0003*210", "+15005550100"],
                &["+442079460001", "50%off_x\\y", "+4420"],
                4,
                5,
                Some("Alice <210>"),
            ),
            view(
                "01",
                "0003*211",
                &["0003*210"],
                &["0003*211"],
                2,
                0,
                Some("Bob <211>"),
            ),
        ],
    );
    let mut ended = ended_live.clone();
    ended["sequence"] = json!(2);
    ended["ended"] = json!("2026-11-28T09:40:00Z");
    vec![
        call(
            A,
            "0003*210",
            "2026-11-28T09:00:00Z",
            Some("2026-11-28T09:00:10Z"),
            Some("nonce-a"),
            vec![view(
                "00",
                "0003*210",
                &["0003*210"],
                &["+442079460001"],
                4,
                5,
                Some("Alice <210>"),
            )],
        ),
        call(
            B,
            "0003*211",
            "2026-11-28T10:00:00Z",
            None,
            None,
            vec![view(
                "00",
                "0003*211",
                &["+442079460002"],
                &[],
                8,
                3,
                Some("London <+442079460002>"),
            )],
        ),
        call(
            C,
            "0003*210",
            "2026-11-29T01:30:00+02:00",
            Some("2026-11-29T01:31:00+02:00"),
            Some("nonce-c"),
            vec![
                view("00", "0003*210", &["0003*210"], &["0003*211"], 2, 4, None),
                view(
                    "01",
                    "0003*211",
                    &["0003*210"],
                    &["0003*211"],
                    2,
                    3,
                    Some("alice <210>"),
                ),
            ],
        ),
        call(
            D,
            "0003*211",
            "2026-11-28T01:30:00+02:00",
            None,
            Some("nonce-d"),
            vec![view(
                "00",
                "0003*211",
                &["0003*211"],
                &["+33145678900", "0x9"],
                4,
                2,
                Some(""),
            )],
        ),
        call(
            E,
            "0003*210",
            "2026-11-29T08:00:00Z",
            Some("2026-11-29T08:05:00Z"),
            None,
            vec![view(
                "00",
                "0003*210",
                &["0003*210"],
                &["50%off_x\\y"],
                4,
                1,
                Some("50% off"),
            )],
        ),
        call(
            F,
            "0003*211",
            "2026-11-28T12:00:00Z",
            Some("2026-11-28T12:00:30Z"),
            Some("nonce-f"),
            vec![
                view(
                    "00",
                    "0003*211",
                    &["+15005550100"],
                    &["0003*211"],
                    8,
                    5,
                    Some("Agent 500"),
                ),
                view(
                    "01",
                    "0003*210",
                    &["+15005550100"],
                    &["0003*210"],
                    8,
                    0,
                    None,
                ),
            ],
        ),
        call(
            G,
            "0003*210",
            "2026-11-28T14:00:00+02:00",
            None,
            None,
            vec![view(
                "00",
                "0003*210",
                &["0003*210"],
                &["+442071234567", "+4420"],
                4,
                2,
                None,
            )],
        ),
        call(
            H,
            "0003*211",
            "2026-11-30T00:00:00Z",
            Some("2026-11-30T02:00:00+02:00"),
            Some("nonce-h"),
            vec![view(
                "00",
                "0003*211",
                &[],
                &["+4421500000"],
                4,
                0,
                Some("Bob <211>"),
            )],
        ),
        call(
            K,
            "0007*210",
            "2026-11-28T11:00:00Z",
            Some("2026-11-28T11:00:05Z"),
            Some("nonce-k"),
            vec![view(
                "00",
                "0007*210",
                &["0007*210"],
                &["+442079460001"],
                4,
                5,
                Some("Carol <210>"),
            )],
        ),
        ended_live,
        ended,
    ]
}

/// One filter query and the calls it must answer.
struct Case {
    by: &'static str,
    op: Option<&'static str>,
    value: Option<String>,
    expected: Vec<String>,
}

fn case(by: &'static str, op: &'static str, value: &str, expected: &[&str]) -> Case {
    Case {
        by,
        op: Some(op),
        value: Some(value.to_string()),
        expected: in_order(expected),
    }
}

/// The field type's default operator (no `filterOp`).
fn default_op(by: &'static str, value: &str, expected: &[&str]) -> Case {
    Case {
        by,
        op: None,
        value: Some(value.to_string()),
        expected: in_order(expected),
    }
}

/// `present`, without a `filterValue`.
fn present(by: &'static str, expected: &[&str]) -> Case {
    Case {
        by,
        op: Some("present"),
        value: None,
        expected: in_order(expected),
    }
}

/// Runs every case and answers one line per mismatch, so a failure lists all of them at once.
async fn run_cases(app: &TestApp, token: &str, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let mut pairs = vec![
            ("count", "100".to_string()),
            ("filterBy", case.by.to_string()),
        ];
        if let Some(op) = case.op {
            pairs.push(("filterOp", op.to_string()));
        }
        if let Some(value) = &case.value {
            pairs.push(("filterValue", value.clone()));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap();
        let path = format!("{ALL}?{query}");
        let (status, body) = get_list(app, token, &path).await;
        let (got, total) = match (status, &body) {
            (204, None) => (Vec::new(), None),
            (200, Some(body)) => (
                entry_ids(body).iter().map(|id| label_of(id)).collect(),
                body["totalResults"].as_i64(),
            ),
            _ => {
                failures.push(format!("{query}: status {status}, body {body:?}"));
                continue;
            }
        };
        if got != case.expected {
            failures.push(format!(
                "{query}: expected {:?}, got {got:?}",
                case.expected
            ));
        } else if !got.is_empty() && total != Some(got.len() as i64) {
            failures.push(format!(
                "{query}: totalResults {total:?} for {} calls",
                got.len()
            ));
        }
    }
    failures
}

// ---------------------------------------------------------------------------------------------
// 1. Filters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_filter_operator_on_every_field_returns_exactly_the_matching_live_calls() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    seed(&app, &switch, &filter_seed()).await;
    assert!(
        f.other_org > f.org,
        "the fixture creates org 0003 before 0007"
    );
    let (org, other) = (f.org.to_string(), f.other_org.to_string());
    let all = ORDER.as_slice();
    let cases = vec![
        // id (text)
        case("id", "equals", A, &["A"]),
        case("id", "equals", &A.to_uppercase(), &[]),
        case("id", "equals", X, &[]),
        case("id", "contains", "beef", &["A", "C", "K"]),
        default_op("id", "beef", &["A", "C", "K"]),
        case("id", "contains", "BEEF", &[]),
        case("id", "startsWith", "1", &["A", "G"]),
        case("id", "startsWith", "1a", &["A"]),
        case("id", "greaterThan", "6", &["F", "H", "K"]),
        case("id", "lessThan", "3", &["A", "B", "G"]),
        present("id", all),
        case("id", "inArray", &format!("{A},{C},not-a-uuid"), &["A", "C"]),
        case("id", "inArray", X, &[]),
        // extension (text, the charged extension's full number)
        default_op("extension", "211", &["B", "D", "F", "H"]),
        case("extension", "contains", "0003", &ORG_0003),
        case("extension", "equals", "0003*210", &["A", "C", "E", "G"]),
        case("extension", "equals", "210", &[]),
        case("extension", "startsWith", "0007", &["K"]),
        present("extension", all),
        case(
            "extension",
            "greaterThan",
            "0003*210",
            &["B", "D", "F", "H", "K"],
        ),
        case("extension", "lessThan", "0003*211", &["A", "C", "E", "G"]),
        case(
            "extension",
            "inArray",
            "0003*211,0007*210",
            &["B", "D", "F", "H", "K"],
        ),
        // ownerId (integer)
        case("ownerId", "equals", &org, &ORG_0003),
        default_op("ownerId", &other, &["K"]),
        case("ownerId", "greaterThan", &org, &["K"]),
        case("ownerId", "lessThan", &other, &ORG_0003),
        case("ownerId", "inArray", &format!("{other},999999"), &["K"]),
        present("ownerId", all),
        // published (date): contains/startsWith on the UTC text, the rest on the instant
        case(
            "published",
            "startsWith",
            "2026-11-28",
            &["A", "B", "C", "F", "G", "K"],
        ),
        case("published", "startsWith", "2026-11-29", &["E"]),
        default_op("published", "T12:00", &["F", "G"]),
        case("published", "contains", "23:30", &["C", "D"]),
        case("published", "contains", "+02:00", &[]),
        case(
            "published",
            "equals",
            "2026-11-28T14:00:00+02:00",
            &["F", "G"],
        ),
        case("published", "equals", "2026-11-29T01:30:00+02:00", &["C"]),
        case("published", "equals", "2026-11-28T23:30:00Z", &["C"]),
        case(
            "published",
            "greaterThan",
            "2026-11-28T12:00:00Z",
            &["C", "E", "H"],
        ),
        case(
            "published",
            "greaterThan",
            "2026-11-28T13:00:00+02:00",
            &["G", "F", "C", "E", "H"],
        ),
        case("published", "lessThan", "2026-11-28T10:00:00Z", &["A", "D"]),
        case(
            "published",
            "inArray",
            "2026-11-28T09:00:00Z,2026-11-30T02:00:00+02:00",
            &["A", "H"],
        ),
        present("published", all),
        // answered (date, unset on B, D and G)
        present("answered", &["A", "C", "E", "F", "H", "K"]),
        case(
            "answered",
            "startsWith",
            "2026-11-28",
            &["A", "C", "F", "K"],
        ),
        case("answered", "startsWith", "2026-11-29", &["E"]),
        case("answered", "contains", "05", &["E", "K"]),
        case("answered", "equals", "2026-11-30T02:00:00+02:00", &["H"]),
        case(
            "answered",
            "greaterThan",
            "2026-11-28T12:00:30Z",
            &["C", "E", "H"],
        ),
        case("answered", "lessThan", "2026-11-28T12:00:00Z", &["A", "K"]),
        case(
            "answered",
            "inArray",
            "2026-11-28T09:00:10Z,2026-11-29T10:05:00+02:00",
            &["A", "E"],
        ),
        // source (text, any element of any view; H has none)
        default_op("source", "*211", &["D"]),
        case("source", "contains", "4420", &["B"]),
        case("source", "equals", "0003*210", &["A", "C", "E", "G"]),
        case("source", "startsWith", "+44", &["B"]),
        case("source", "startsWith", "+", &["B", "F"]),
        case("source", "greaterThan", "0003*210", &["D", "K"]),
        case("source", "lessThan", "0003", &["B", "F"]),
        case("source", "inArray", "+15005550100,0003*211", &["D", "F"]),
        present("source", &["A", "B", "C", "D", "E", "F", "G", "K"]),
        // destination (text, any element of any view; B has none)
        case("destination", "startsWith", "+4420", &["A", "G", "K"]),
        case("destination", "equals", "+4420", &["G"]),
        case("destination", "equals", "+442079460001", &["A", "K"]),
        case("destination", "contains", "4420", &["A", "G", "K"]),
        case("destination", "contains", "+44", &["A", "G", "H", "K"]),
        default_op("destination", "0003*21", &["C", "F"]),
        // `50%` must not match H's +4421500000, `_x` not D's 0x9.
        case("destination", "contains", "50%", &["E"]),
        case("destination", "contains", "_x", &["E"]),
        case("destination", "contains", "\\", &["E"]),
        case("destination", "contains", "%off_x\\y", &["E"]),
        case("destination", "contains", "0x9", &["D"]),
        // Never across two numbers of one view (+33145678900 and 0x9).
        case("destination", "contains", "9000x9", &[]),
        case("destination", "greaterThan", "0003*211", &["D", "E"]),
        case("destination", "lessThan", "+4420", &["D"]),
        case("destination", "inArray", "+4420,0x9", &["D", "G"]),
        present("destination", &["A", "C", "D", "E", "F", "G", "H", "K"]),
        // callerId (text, any view; D's is empty, C's first view and G have none)
        default_op("callerId", "Alice", &["A"]),
        case("callerId", "contains", "alice", &["C"]),
        case("callerId", "contains", "<210>", &["A", "C", "K"]),
        case("callerId", "contains", "50%", &["E"]),
        case("callerId", "contains", "%", &["E"]),
        case("callerId", "contains", "_", &[]),
        case("callerId", "equals", "Bob <211>", &["H"]),
        case("callerId", "equals", "bob <211>", &[]),
        case("callerId", "startsWith", "A", &["A", "F"]),
        case("callerId", "greaterThan", "B", &["B", "C", "H", "K"]),
        case("callerId", "lessThan", "B", &["A", "D", "E", "F"]),
        case(
            "callerId",
            "inArray",
            "Bob <211>,Carol <210>,nobody",
            &["H", "K"],
        ),
        present("callerId", &["A", "B", "C", "E", "F", "H", "K"]),
        // status (integer, any view)
        default_op("status", "3", &["B", "C"]),
        case("status", "equals", "0", &["F", "H"]),
        case("status", "greaterThan", "3", &["A", "C", "F", "K"]),
        case("status", "lessThan", "2", &["E", "F", "H"]),
        case("status", "inArray", "1,4", &["C", "E"]),
        present("status", all),
        // flow (integer, any view)
        case("flow", "equals", "2", &["C"]),
        default_op("flow", "8", &["B", "F"]),
        case("flow", "greaterThan", "4", &["B", "F"]),
        case("flow", "lessThan", "4", &["C"]),
        case("flow", "inArray", "2,8", &["B", "C", "F"]),
        present("flow", all),
    ];
    let failures = run_cases(&app, &admin, &cases).await;
    assert!(
        failures.is_empty(),
        "{} of {} filter cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn an_organization_account_filters_only_within_its_organization() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let org_account = token_for(app.pool(), f.org_account).await;
    seed(&app, &switch, &filter_seed()).await;
    let unfiltered = page(&app, &org_account, &format!("{ALL}?count=100")).await;
    let labels: Vec<String> = entry_ids(&unfiltered)
        .iter()
        .map(|id| label_of(id))
        .collect();
    assert_eq!(labels, in_order(&ORG_0003));
    assert_eq!(unfiltered["totalResults"], 8);
    let other = f.other_org.to_string();
    let cases = vec![
        case("destination", "startsWith", "+4420", &["A", "G"]),
        case("id", "contains", "beef", &["A", "C"]),
        case("callerId", "contains", "<210>", &["A", "C"]),
        default_op("ownerId", &other, &[]),
        case("extension", "startsWith", "0007", &[]),
        case(
            "published",
            "startsWith",
            "2026-11-28",
            &["A", "B", "C", "F", "G"],
        ),
        case("status", "equals", "5", &["A", "F"]),
    ];
    let failures = run_cases(&app, &org_account, &cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 2. Sorting and paging
// ---------------------------------------------------------------------------------------------

const LIVE: usize = 23;
const PAGE: usize = 5;

/// A seeded call as the test knows it.
#[derive(Debug, Clone)]
struct Known {
    id: String,
    published: DateTime<Utc>,
    answered: Option<DateTime<Utc>>,
    extension: &'static str,
}

/// 23 live calls in groups of three sharing a published instant, every fourth unanswered, the
/// answered ones answered 30 s after publication (so answered ties too), on three extensions;
/// some reported with a +02:00 offset. Plus one ended call.
fn paging_seed() -> (Vec<Known>, Vec<Value>) {
    let base: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
    let plus_two = FixedOffset::east_opt(2 * 3600).unwrap();
    let mut known = Vec::new();
    let mut reports = Vec::new();
    for i in 0..=LIVE {
        let id = new_call_id();
        let published = base + Duration::minutes((i / 3) as i64);
        let answered = (i % 4 != 1).then(|| published + Duration::seconds(30));
        let extension = ["0003*210", "0003*211", "0007*210"][i % 3];
        let write = |at: DateTime<Utc>| {
            if i % 5 == 0 {
                at.with_timezone(&plus_two)
                    .to_rfc3339_opts(SecondsFormat::Secs, false)
            } else {
                at.to_rfc3339_opts(SecondsFormat::Secs, true)
            }
        };
        let mut report = call(
            &id,
            extension,
            &write(published),
            answered.map(write).as_deref(),
            None,
            vec![view("00", extension, &[extension], &["+4420"], 4, 5, None)],
        );
        if i == LIVE {
            report["ended"] = json!(write(published + Duration::minutes(5)));
        } else {
            known.push(Known {
                id,
                published,
                answered,
                extension,
            });
        }
        reports.push(report);
    }
    (known, reports)
}

/// The expected ascending order of `sort_by`, ties broken by id (uuids order as their lowercase
/// text); answered NULLs last. Descending is exactly the reverse.
fn expected_order(calls: &[Known], sort_by: &str) -> Vec<String> {
    let mut calls = calls.to_vec();
    match sort_by {
        "published" => calls.sort_by(|a, b| (a.published, &a.id).cmp(&(b.published, &b.id))),
        "answered" => calls.sort_by(|a, b| {
            (a.answered.is_none(), a.answered, &a.id).cmp(&(
                b.answered.is_none(),
                b.answered,
                &b.id,
            ))
        }),
        "id" => calls.sort_by(|a, b| a.id.cmp(&b.id)),
        "extension" => calls.sort_by(|a, b| (a.extension, &a.id).cmp(&(b.extension, &b.id))),
        other => panic!("no sort {other}"),
    }
    calls.into_iter().map(|c| c.id).collect()
}

/// The `startIndex` of a page link, which must be a relative path of the list with the same
/// query apart from `startIndex`, and without any token.
fn link_start_index(link: &str, token: &str) -> usize {
    assert!(
        link.starts_with(&format!("{ALL}?")),
        "a relative link to the same list: {link}"
    );
    assert!(
        !link.contains("accessRequestToken") && !link.contains(token),
        "no token in links: {link}"
    );
    let query = link.split_once('?').unwrap().1;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let starts: Vec<&String> = pairs
        .iter()
        .filter(|(k, _)| k == "startIndex")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(starts.len(), 1, "one startIndex in {link}");
    starts[0].parse().unwrap()
}

/// Walks every page from `first` (whose `count` is `count`, over `total` matching calls)
/// following `next` exactly as returned, checking each envelope; answers the ids in the order
/// they came.
async fn walk(app: &TestApp, token: &str, first: &str, count: usize, total: usize) -> Vec<String> {
    let mut path = first.to_string();
    let mut ids = Vec::new();
    for number in 0.. {
        assert!(number <= total, "more pages than calls: {path}");
        let body = page(app, token, &path).await;
        let start = number * count;
        assert_eq!(body["startIndex"], start, "{path}: {body}");
        assert_eq!(body["itemsPerPage"], count, "{path}");
        assert_eq!(body["totalResults"], total, "{path}");
        let entries = entry_ids(&body);
        assert_eq!(entries.len(), count.min(total - start), "{path}");
        ids.extend(entries);
        match body.get("prev").and_then(Value::as_str) {
            None => assert_eq!(number, 0, "prev on every page but the first: {path}"),
            Some(prev) => {
                assert!(number > 0, "no prev on the first page: {path} {prev}");
                assert_eq!(link_start_index(prev, token), start - count, "{path}");
            }
        }
        match body.get("next").and_then(Value::as_str) {
            None => {
                assert!(start + count >= total, "next until the last page: {path}");
                break;
            }
            Some(next) => {
                assert!(
                    start + count < total,
                    "no next on the last page: {path} {next}"
                );
                assert_eq!(link_start_index(next, token), start + count, "{path}");
                path = next.to_string();
            }
        }
    }
    ids
}

#[tokio::test]
async fn paging_walks_every_sort_in_both_orders_without_overlap_or_gap() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    let (known, reports) = paging_seed();
    seed(&app, &switch, &reports).await;
    let everyone: BTreeSet<&String> = known.iter().map(|k| &k.id).collect();
    assert_eq!(everyone.len(), LIVE);
    for sort_by in ["published", "answered", "id", "extension"] {
        let ascending = expected_order(&known, sort_by);
        let mut descending = ascending.clone();
        descending.reverse();
        for (order, expected) in [("ascending", ascending), ("descending", descending)] {
            let first = format!("{ALL}?count={PAGE}&sortBy={sort_by}&sortOrder={order}");
            let walked = walk(&app, &admin, &first, PAGE, LIVE).await;
            let unique: BTreeSet<&String> = walked.iter().collect();
            assert_eq!(unique.len(), walked.len(), "{first}: a call twice");
            assert_eq!(unique, everyone, "{first}: every live call, and only those");
            assert_eq!(walked, expected, "{first}: order");
        }
    }
    // No sort parameters: published ascending.
    let walked = walk(&app, &admin, &format!("{ALL}?count={PAGE}"), PAGE, LIVE).await;
    assert_eq!(walked, expected_order(&known, "published"));
}

#[tokio::test]
async fn answered_nulls_come_last_ascending_and_first_descending() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    let (known, reports) = paging_seed();
    seed(&app, &switch, &reports).await;
    let unanswered = known.iter().filter(|k| k.answered.is_none()).count();
    assert!((2..LIVE).contains(&unanswered));
    let is_unanswered = |id: &String| known.iter().any(|k| &k.id == id && k.answered.is_none());
    let body = page(&app, &admin, &format!("{ALL}?count=100&sortBy=answered")).await;
    let ids = entry_ids(&body);
    assert!(ids[..LIVE - unanswered].iter().all(|id| !is_unanswered(id)));
    assert!(ids[LIVE - unanswered..].iter().all(is_unanswered));
    let body = page(
        &app,
        &admin,
        &format!("{ALL}?count=100&sortBy=answered&sortOrder=descending"),
    )
    .await;
    let ids = entry_ids(&body);
    assert!(ids[..unanswered].iter().all(is_unanswered));
    assert!(ids[unanswered..].iter().all(|id| !is_unanswered(id)));
    for entry in body["entry"].as_array().unwrap() {
        let id = entry["id"].as_str().unwrap().to_string();
        assert_eq!(
            entry.get("answered").is_none(),
            is_unanswered(&id),
            "{entry}"
        );
    }
}

#[tokio::test]
async fn page_links_never_carry_the_access_token() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    let (known, reports) = paging_seed();
    seed(&app, &switch, &reports).await;
    let expected = expected_order(&known, "id");
    let path = format!(
        "{ALL}?count={PAGE}&startIndex={PAGE}&sortBy=id&accessRequestToken=Bearer%20{admin}"
    );
    let response = app.get(&path).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(entry_ids(&body), expected[PAGE..2 * PAGE].to_vec());
    let next = body["next"].as_str().expect("next").to_string();
    let prev = body["prev"].as_str().expect("prev").to_string();
    assert_eq!(link_start_index(&next, &admin), 2 * PAGE);
    assert_eq!(link_start_index(&prev, &admin), 0);
    // The links work as they are, with the token in the header.
    let next_page = page(&app, &admin, &next).await;
    assert_eq!(entry_ids(&next_page), expected[2 * PAGE..3 * PAGE].to_vec());
    let prev_page = page(&app, &admin, &prev).await;
    assert_eq!(entry_ids(&prev_page), expected[..PAGE].to_vec());
    assert!(prev_page.get("prev").is_none());
    // Without a token in the header they are refused: the token was not carried along.
    assert_eq!(app.get(&next).await.status().as_u16(), 401);

    // An unaligned start moves by count, and prev stops at 0.
    let body = page(
        &app,
        &admin,
        &format!("{ALL}?count={PAGE}&startIndex=3&sortBy=id"),
    )
    .await;
    assert_eq!(entry_ids(&body), expected[3..3 + PAGE].to_vec());
    assert_eq!(link_start_index(body["prev"].as_str().unwrap(), &admin), 0);
    assert_eq!(
        link_start_index(body["next"].as_str().unwrap(), &admin),
        3 + PAGE
    );
}

#[tokio::test]
async fn a_start_index_past_the_end_answers_204_with_an_empty_body() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    let (known, reports) = paging_seed();
    seed(&app, &switch, &reports).await;
    let last = page(&app, &admin, &format!("{ALL}?count={PAGE}&startIndex=22")).await;
    assert_eq!(
        entry_ids(&last),
        expected_order(&known, "published")[22..].to_vec()
    );
    assert!(last.get("next").is_none());
    // A last page that ends exactly at the last call has no next either.
    let whole = page(&app, &admin, &format!("{ALL}?count={LIVE}")).await;
    assert_eq!(whole["entry"].as_array().unwrap().len(), LIVE);
    assert!(
        whole.get("next").is_none() && whole.get("prev").is_none(),
        "{whole}"
    );
    let walked = walk(&app, &admin, &format!("{ALL}?count=1"), 1, LIVE).await;
    assert_eq!(walked, expected_order(&known, "published"));
    for start in [LIVE, LIVE + 1, 5000] {
        let (status, body) = get_list(
            &app,
            &admin,
            &format!("{ALL}?count={PAGE}&startIndex={start}"),
        )
        .await;
        assert_eq!((status, body), (204, None), "startIndex={start}");
    }
}

/// Query parameters as name/value pairs.
type Params<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn page_links_repeat_the_filter_with_its_special_characters() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    seed(&app, &switch, &filter_seed()).await;
    let labels = |ids: Vec<String>| -> Vec<String> { ids.iter().map(|id| label_of(id)).collect() };
    // `+`, `<`, `>`, `%`, `\\` and spaces must survive the round trip through `next`.
    let cases: [(Params<'_>, &[&str]); 5] = [
        (
            &[
                ("filterBy", "published"),
                ("filterOp", "greaterThan"),
                ("filterValue", "2026-11-28T13:00:00+02:00"),
            ],
            &["G", "F", "C", "E", "H"],
        ),
        (
            &[
                ("filterBy", "destination"),
                ("filterOp", "startsWith"),
                ("filterValue", "+44"),
            ],
            &["A", "K", "G", "H"],
        ),
        (
            &[("filterBy", "callerId"), ("filterValue", "<210>")],
            &["A", "K", "C"],
        ),
        (
            &[
                ("filterBy", "callerId"),
                ("filterOp", "inArray"),
                ("filterValue", "50% off,Bob <211>,Alice <210>"),
            ],
            &["A", "E", "H"],
        ),
        (
            &[
                ("filterBy", "destination"),
                ("filterValue", "%off_x\\y"),
                ("sortOrder", "descending"),
            ],
            &["E"],
        ),
    ];
    for (params, expected) in cases {
        let query = serde_urlencoded::to_string(params).unwrap();
        let expected: Vec<String> = expected.iter().map(|l| l.to_string()).collect();
        for count in [1, 2] {
            let first = format!("{ALL}?count={count}&{query}");
            let walked = walk(&app, &admin, &first, count, expected.len()).await;
            assert_eq!(labels(walked), expected, "{first}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Response shape
// ---------------------------------------------------------------------------------------------

/// S1: every optional field, reported with offsets and views out of order; S2: the bare minimum,
/// charged to Bob; S3: ended.
fn shape_seed(s1: &str, s2: &str, s3: &str) -> Vec<Value> {
    let mut ended = call(
        s3,
        "0003*210",
        "2026-11-28T14:00:00Z",
        None,
        Some("nonce-s3"),
        vec![view(
            "00",
            "0003*210",
            &["0003*210"],
            &["0003*211"],
            2,
            5,
            None,
        )],
    );
    ended["ended"] = json!("2026-11-28T14:05:00Z");
    vec![
        json!({
            "id": s1, "sequence": 1, "extension": "0003*210",
            "published": "2026-11-28T16:40:28+02:00", "answered": "2026-11-28T16:40:40+02:00",
            "nonce": "nonce-s1",
            "phoneCallView": [
                {"id": "01", "extension": "0003*211", "source": ["0003*210"], "destination": ["0003*211"],
                 "flow": 2, "status": 5, "callerId": "Alice <210>", "ringing": "2026-11-28T16:40:30+02:00",
                 "answered": "2026-11-28T14:40:40Z", "disposition": 0},
                {"id": "00", "extension": "0003*210", "source": ["0003*210"], "destination": ["0003*211"],
                 "flow": 2, "status": 5, "recording": "2026-11-28T09:40:41-05:00",
                 "onHold": "2026-11-28T14:41:00Z", "holder": 1, "parked": "2026-11-28T14:41:10Z",
                 "parkedPos": 3, "parkedBy": "0003*211"}
            ]
        }),
        call(
            s2,
            "0003*211",
            "2026-11-28T15:00:00Z",
            None,
            None,
            vec![view(
                "00",
                "0003*211",
                &["+442079460001"],
                &["0003*211"],
                8,
                3,
                None,
            )],
        ),
        ended,
    ]
}

fn expected_s1(s1: &str, f: &Fixture) -> Value {
    json!({
        "id": s1,
        "extension": "0003*210",
        "ownerId": f.org.to_string(),
        "ownerName": "Acme",
        "published": "2026-11-28T14:40:28Z",
        "answered": "2026-11-28T14:40:40Z",
        "nonce": "nonce-s1",
        "phoneCallView": [
            {"id": "00", "extension": "0003*210", "source": ["0003*210"], "destination": ["0003*211"],
             "flow": 2, "status": 5, "recording": "2026-11-28T14:40:41Z",
             "onHold": "2026-11-28T14:41:00Z", "holder": 1, "parked": "2026-11-28T14:41:10Z",
             "parkedPos": 3, "parkedBy": "0003*211"},
            {"id": "01", "extension": "0003*211", "source": ["0003*210"], "destination": ["0003*211"],
             "flow": 2, "status": 5, "callerId": "Alice <210>", "ringing": "2026-11-28T14:40:30Z",
             "answered": "2026-11-28T14:40:40Z", "disposition": 0}
        ],
        "links": {"self": format!("/uapi/phoneCalls/{}/0003*210/{s1}", f.alice)}
    })
}

fn expected_s2(s2: &str, f: &Fixture) -> Value {
    json!({
        "id": s2,
        "extension": "0003*211",
        "ownerId": f.org.to_string(),
        "ownerName": "Acme",
        "published": "2026-11-28T15:00:00Z",
        "phoneCallView": [
            {"id": "00", "extension": "0003*211", "source": ["+442079460001"],
             "destination": ["0003*211"], "flow": 8, "status": 3}
        ],
        "links": {"self": format!("/uapi/phoneCalls/{}/0003*211/{s2}", f.bob)}
    })
}

#[tokio::test]
async fn a_phone_call_leaves_out_null_fields_and_writes_dates_in_utc() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    let (s1, s2, s3) = (new_call_id(), new_call_id(), new_call_id());
    seed(&app, &switch, &shape_seed(&s1, &s2, &s3)).await;
    let body = page(&app, &admin, ALL).await;
    assert_eq!(
        keys(&body),
        set(&["startIndex", "itemsPerPage", "totalResults", "entry"]),
        "{body}"
    );
    assert_eq!(body["startIndex"], 0);
    assert_eq!(body["itemsPerPage"], 20);
    assert_eq!(body["totalResults"], 2);
    let entry = body["entry"].as_array().unwrap();
    assert_eq!(entry.len(), 2, "{body}");
    assert_eq!(entry[0], expected_s1(&s1, &f));
    assert_eq!(entry[1], expected_s2(&s2, &f));
    assert!(entry[0]["ownerId"].is_string());
    // The same through the organization account.
    let org_account = token_for(app.pool(), f.org_account).await;
    assert_eq!(page(&app, &org_account, ALL).await, body);
}

#[tokio::test]
async fn a_single_phone_call_id_still_answers_an_entry_array() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    let alice = token_for(app.pool(), f.alice).await;
    let (s1, s2, s3) = (new_call_id(), new_call_id(), new_call_id());
    seed(&app, &switch, &shape_seed(&s1, &s2, &s3)).await;
    for (token, path) in [
        (&admin, format!("{ALL}{s1}")),
        (&alice, format!("/uapi/phoneCalls/@me/@self/{s1}")),
        (&alice, format!("/uapi/phoneCalls/@me/210/{s1}/")),
    ] {
        let body = page(&app, token, &path).await;
        assert_eq!(
            keys(&body),
            set(&["startIndex", "itemsPerPage", "totalResults", "entry"]),
            "{path}: {body}"
        );
        assert_eq!(body["totalResults"], 1, "{path}");
        assert_eq!(body["entry"], json!([expected_s1(&s1, &f)]), "{path}");
    }
    let body = page(&app, &admin, &format!("{ALL}{s2}")).await;
    assert_eq!(body["entry"], json!([expected_s2(&s2, &f)]));
    // Ended, or not involving the path's extension: 204.
    assert_eq!(
        get_list(&app, &admin, &format!("{ALL}{s3}")).await,
        (204, None)
    );
    assert_eq!(
        get_list(&app, &alice, &format!("/uapi/phoneCalls/@me/@self/{s2}")).await,
        (204, None)
    );
}

#[tokio::test]
async fn fields_projects_the_entries_and_always_keeps_the_id() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    let (s1, s2, s3) = (new_call_id(), new_call_id(), new_call_id());
    seed(&app, &switch, &shape_seed(&s1, &s2, &s3)).await;

    let body = page(&app, &admin, &format!("{ALL}?fields=extension,answered")).await;
    assert_eq!(
        body["entry"],
        json!([
            {"id": s1, "extension": "0003*210", "answered": "2026-11-28T14:40:40Z"},
            {"id": s2, "extension": "0003*211"}
        ])
    );
    assert_eq!(body["totalResults"], 2);

    let body = page(&app, &admin, &format!("{ALL}?fields=phoneCallView")).await;
    let s1_views = expected_s1(&s1, &f)["phoneCallView"].clone();
    let s2_views = expected_s2(&s2, &f)["phoneCallView"].clone();
    assert_eq!(
        body["entry"],
        json!([
            {"id": s1, "phoneCallView": s1_views},
            {"id": s2, "phoneCallView": s2_views}
        ])
    );

    let body = page(&app, &admin, &format!("{ALL}?fields=nonce,links")).await;
    assert_eq!(
        body["entry"],
        json!([
            {"id": s1, "nonce": "nonce-s1",
             "links": {"self": format!("/uapi/phoneCalls/{}/0003*210/{s1}", f.alice)}},
            {"id": s2, "links": {"self": format!("/uapi/phoneCalls/{}/0003*211/{s2}", f.bob)}}
        ])
    );

    let body = page(&app, &admin, &format!("{ALL}?fields=id")).await;
    assert_eq!(body["entry"], json!([{"id": s1}, {"id": s2}]));

    // Every field named is the same as no projection at all.
    let all = "id,extension,ownerId,ownerName,published,answered,nonce,phoneCallView,links";
    assert_eq!(
        page(&app, &admin, &format!("{ALL}?fields={all}")).await,
        page(&app, &admin, ALL).await
    );
}

async fn db_now(app: &TestApp) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT now()")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

async fn updated_of(app: &TestApp, id: &str) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT updated FROM phone_calls WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// The ids listed with `updatedSince` set to `since` (written with microseconds, in `offset`).
async fn updated_since(
    app: &TestApp,
    token: &str,
    since: DateTime<Utc>,
    offset: &FixedOffset,
) -> Vec<String> {
    let text = since
        .with_timezone(offset)
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    let query = serde_urlencoded::to_string([("updatedSince", text.as_str())]).unwrap();
    match get_list(app, token, &format!("{ALL}?{query}")).await {
        (204, None) => Vec::new(),
        (200, Some(body)) => entry_ids(&body),
        other => panic!("updatedSince={text}: {other:?}"),
    }
}

#[tokio::test]
async fn updated_since_keeps_calls_changed_at_or_after_it() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    let utc = FixedOffset::east_opt(0).unwrap();
    let plus_two = FixedOffset::east_opt(2 * 3600).unwrap();
    let (first, second) = (new_call_id(), new_call_id());

    seed(&app, &switch, &[first_report(&first, 1)]).await;
    let between = db_now(&app).await;
    let mut report = first_report(&second, 1);
    report["published"] = json!("2026-11-28T14:50:00Z");
    seed(&app, &switch, &[report]).await;

    assert_eq!(
        updated_since(&app, &admin, between, &utc).await,
        vec![second.clone()]
    );
    assert_eq!(
        updated_since(&app, &admin, between, &plus_two).await,
        vec![second.clone()],
        "the same instant in another timezone"
    );
    // At the stored instant itself: kept; a microsecond later: not.
    let second_updated = updated_of(&app, &second).await;
    assert!(updated_of(&app, &first).await < second_updated);
    assert_eq!(
        updated_since(&app, &admin, second_updated, &utc).await,
        vec![second.clone()]
    );
    assert_eq!(
        updated_since(
            &app,
            &admin,
            second_updated + Duration::microseconds(1),
            &utc
        )
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        updated_since(&app, &admin, between - Duration::hours(1), &utc).await,
        vec![first.clone(), second.clone()]
    );

    // A replay changes nothing, so it does not count as a change; a new state does.
    let later = db_now(&app).await;
    let response = app
        .post_batch(
            &switch,
            &[first_report(&first, 1), first_report(&second, 1)],
        )
        .await;
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["results"][0]["applied"], false, "{answer}");
    assert_eq!(answer["results"][1]["applied"], false, "{answer}");
    assert_eq!(
        updated_since(&app, &admin, later, &utc).await,
        Vec::<String>::new()
    );
    let mut answered = first_report(&first, 2);
    answered["answered"] = json!("2026-11-28T14:40:35Z");
    seed(&app, &switch, &[answered]).await;
    assert_eq!(
        updated_since(&app, &admin, later, &utc).await,
        vec![first.clone()]
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Path forms
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn short_extension_and_self_forms_resolve_to_the_users_calls() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    let admin = token_for(app.pool(), f.admin).await;
    let org_account = token_for(app.pool(), f.org_account).await;
    let alice = token_for(app.pool(), f.alice).await;
    let bob = token_for(app.pool(), f.bob).await;
    let carol = token_for(app.pool(), f.carol).await;
    seed(&app, &switch, &filter_seed()).await;

    let labels =
        |body: &Value| -> Vec<String> { entry_ids(body).iter().map(|id| label_of(id)).collect() };
    // Alice's extension is charged for A, C, E and G and has a view of F.
    let alices = in_order(&["A", "C", "E", "F", "G"]);
    let reference = page(&app, &alice, "/uapi/phoneCalls/@me/210/").await;
    assert_eq!(labels(&reference), alices);
    assert_eq!(reference["totalResults"], 5);
    for path in [
        "/uapi/phoneCalls/@me/210".to_string(),
        "/uapi/phoneCalls/@viewer/210/".to_string(),
        "/uapi/phoneCalls/@viewer/210".to_string(),
        "/uapi/phoneCalls/@me/@self/".to_string(),
        "/uapi/phoneCalls/@viewer/@self/".to_string(),
        "/uapi/phoneCalls/@me/0003*210/".to_string(),
        "/uapi/phoneCalls/@owner/210/".to_string(),
        format!("/uapi/phoneCalls/{}/0003*210", f.alice),
        format!("/uapi/phoneCalls/{}/0003*210/", f.alice),
        format!("/uapi/phoneCalls/{}/210", f.alice),
    ] {
        assert_eq!(page(&app, &alice, &path).await, reference, "{path}");
    }
    for token in [&admin, &org_account] {
        for path in [
            format!("/uapi/phoneCalls/{}/0003*210", f.alice),
            "/uapi/phoneCalls/@owner/0003*210/".to_string(),
        ] {
            assert_eq!(page(&app, token, &path).await, reference, "{path}");
        }
    }
    // A filter inside the path's scope: only F has a view with status 0 among Alice's calls.
    let body = page(
        &app,
        &alice,
        "/uapi/phoneCalls/@me/210/?filterBy=status&filterValue=0",
    )
    .await;
    assert_eq!(labels(&body), vec!["F".to_string()]);

    // Bob's extension is charged for B, D, F and H and has a view of C.
    let bobs = in_order(&["B", "C", "D", "F", "H"]);
    let bob_page = page(&app, &bob, "/uapi/phoneCalls/@me/211/").await;
    assert_eq!(labels(&bob_page), bobs);
    assert_eq!(
        page(&app, &bob, "/uapi/phoneCalls/@viewer/@self").await,
        bob_page
    );
    assert_eq!(
        page(&app, &org_account, "/uapi/phoneCalls/@owner/211/").await,
        bob_page
    );
    assert_eq!(
        page(
            &app,
            &admin,
            &format!("/uapi/phoneCalls/{}/0003*211/", f.bob)
        )
        .await,
        bob_page
    );

    // Carol's short 210 is 0007*210, in her own organization.
    let carol_page = page(&app, &carol, "/uapi/phoneCalls/@me/210/").await;
    assert_eq!(labels(&carol_page), vec!["K".to_string()]);
    assert_eq!(
        page(&app, &carol, "/uapi/phoneCalls/@viewer/0007*210").await,
        carol_page
    );
}
