//! The list's refusals and empty answers (spec §2.2–§2.4): every malformed path segment and
//! query parameter gets its own 400 code in the exact error envelope, the first failure in the
//! documented check order answers, "does not exist" and "not yours" cannot be told apart, empty
//! pages are 204 with no body, other methods get 501/405/404, and no error leaks internals.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

const LIST: &str = "/uapi/phoneCalls/@me/@self/";
const ALLOW: &str = "GET, HEAD, POST, PUT, DELETE";

const USER: &str = "user_invalid";
const EXTENSION: &str = "extension_invalid";
const COUNT: &str = "count_invalid";
const START: &str = "startindex_invalid";
const FILTER_BY: &str = "filterby_invalid";
const FILTER_OP: &str = "filterop_invalid";
const FILTER_VALUE: &str = "filtervalue_invalid";
const SORT_BY: &str = "sortby_invalid";
const SORT_ORDER: &str = "sortorder_invalid";
const UPDATED_SINCE: &str = "updatedsince_invalid";
const FIELDS: &str = "fields_invalid";

/// The list with a query string.
fn list(query: &str) -> String {
    format!("{LIST}?{query}")
}

/// Any path under the resource.
fn calls(tail: &str) -> String {
    format!("/uapi/phoneCalls/{tail}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// One catalogue row: the path with its query, and the code of its 400.
fn row(path: String, code: &'static str) -> (String, &'static str) {
    (path, code)
}

fn q(query: &str, code: &'static str) -> (String, &'static str) {
    row(list(query), code)
}

/// A path short enough for a failure message.
fn label(path: &str) -> String {
    if path.chars().count() <= 100 {
        path.to_string()
    } else {
        let head: String = path.chars().take(100).collect();
        format!("{head}… ({} bytes)", path.len())
    }
}

/// Text that would betray SQL, the driver, a source file or a panic.
fn leaks(body: &str) -> Vec<&'static str> {
    let lower = body.to_lowercase();
    let mut found = Vec::new();
    if body.contains("SELECT") {
        found.push("SELECT");
    }
    for needle in ["sqlx", "postgres", ".rs", "panicked", "src/"] {
        if lower.contains(needle) {
            found.push(needle);
        }
    }
    found
}

fn panic_text(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic without a message".into()),
        Err(error) => error.to_string(),
    }
}

/// Checks one 400 without panicking: the status, the code and the absence of leaks on one
/// request, and the exact envelope through `assert_error` on a second, identical one.
async fn check_rejected(
    app: &TestApp,
    authorization: &str,
    path: &str,
    code: &'static str,
) -> Vec<String> {
    let mut failures = Vec::new();
    let response = app.get_with_authorization(path, authorization).await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let got: Option<Value> = serde_json::from_str(&body).ok();
    let got_code = got
        .as_ref()
        .and_then(|v| v["error"]["code"].as_str())
        .unwrap_or("-");
    if status != 400 || got_code != code {
        failures.push(format!(
            "{}: expected 400 {code}, got {status} {got_code}: {}",
            label(path),
            label(&body)
        ));
    }
    let leaked = leaks(&body);
    if !leaked.is_empty() {
        failures.push(format!("{}: body leaks {leaked:?}: {body}", label(path)));
    }
    let response = app.get_with_authorization(path, authorization).await;
    if let Err(error) = tokio::spawn(assert_error(response, 400, code)).await {
        failures.push(format!("{}: envelope: {}", label(path), panic_text(error)));
    }
    failures
}

/// Asserts every row and fails once, listing every broken row.
async fn assert_rows(app: &TestApp, authorization: &str, rows: &[(String, &'static str)]) {
    let mut failures = Vec::new();
    let mut broken = 0;
    for (path, code) in rows {
        let row_failures = check_rejected(app, authorization, path, code).await;
        broken += usize::from(!row_failures.is_empty());
        failures.extend(row_failures);
    }
    assert!(
        failures.is_empty(),
        "{broken} of {} rows failed:\n{}",
        rows.len(),
        failures.join("\n")
    );
}

/// A 400 with `code` in the exact envelope; returns the raw body of a second, identical request.
async fn rejected_body(
    app: &TestApp,
    authorization: &str,
    path: &str,
    code: &'static str,
) -> Vec<u8> {
    let response = app.get_with_authorization(path, authorization).await;
    assert_error(response, 400, code).await;
    let response = app.get_with_authorization(path, authorization).await;
    assert_eq!(response.status(), 400, "{path}");
    response.bytes().await.unwrap().to_vec()
}

/// A 204 with an empty body.
async fn assert_empty(app: &TestApp, authorization: &str, path: &str) {
    let response = app.get_with_authorization(path, authorization).await;
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    assert_eq!(
        status,
        204,
        "{}: {}",
        label(path),
        String::from_utf8_lossy(&body)
    );
    assert!(body.is_empty(), "{}: a 204 has no body", label(path));
}

/// A 200 page; returns its entries' ids.
async fn page_ids(app: &TestApp, authorization: &str, path: &str) -> Vec<String> {
    let response = app.get_with_authorization(path, authorization).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    body["entry"]
        .as_array()
        .expect("entry is an array")
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every bad query parameter of §2.3, and every malformed path segment of §2.2.
fn catalogue() -> Vec<(String, &'static str)> {
    let digits_10k = "1".repeat(10 * 1024);
    let long_257 = "x".repeat(257);
    let items_101 = ["1"; 101].join(",");
    let mut rows = vec![
        // count: integer 1..=5000, digits only.
        q("count=", COUNT),
        q("count", COUNT),
        q("count=abc", COUNT),
        q("count=-1", COUNT),
        q("count=0", COUNT),
        q("count=5001", COUNT),
        q("count=5000000000", COUNT),
        q("count=1.5", COUNT),
        q("count=%205", COUNT),
        // `+` is a space in a query string; `%2B` is a literal plus sign, not a digit.
        q("count=+5", COUNT),
        q("count=%2B5", COUNT),
        q("count=0x10", COUNT),
        q("count=%EF%BC%95", COUNT), // fullwidth 5
        q("count=%FF", COUNT),
        q("count=1&count=2", COUNT),
        q("count=5&count=5", COUNT),
        q(&format!("count={digits_10k}"), COUNT),
        // startIndex: integer 0..=5000.
        q("startIndex=", START),
        q("startIndex=-1", START),
        q("startIndex=5001", START),
        q("startIndex=abc", START),
        q("startIndex=1.5", START),
        q("startIndex=0&startIndex=0", START),
        q(&format!("startIndex={digits_10k}"), START),
        // filterBy: a filterable field, exactly spelled, once, and there when op/value are.
        q("filterBy=foo&filterValue=x", FILTER_BY),
        q("filterBy=ID&filterValue=x", FILTER_BY),
        q("filterBy=Extension&filterValue=x", FILTER_BY),
        q("filterBy=ownerName&filterValue=Acme", FILTER_BY),
        q("filterBy=nonce&filterValue=n-1", FILTER_BY),
        q("filterBy=phoneCallView.status&filterValue=3", FILTER_BY),
        q("filterBy=&filterValue=x", FILTER_BY),
        q("filterBy=id&filterBy=id&filterValue=x", FILTER_BY),
        q("filterOp=equals", FILTER_BY),
        q("filterValue=x", FILTER_BY),
        q("filterOp=present&filterValue=x", FILTER_BY),
        // filterOp: one of seven, exactly spelled, supported by the field's type.
        q("filterBy=id&filterOp=like&filterValue=x", FILTER_OP),
        q("filterBy=id&filterOp=Equals&filterValue=x", FILTER_OP),
        q("filterBy=id&filterOp=startswith&filterValue=x", FILTER_OP),
        q("filterBy=id&filterOp=INARRAY&filterValue=x", FILTER_OP),
        q("filterBy=id&filterOp=&filterValue=x", FILTER_OP),
        q("filterBy=status&filterOp=contains&filterValue=3", FILTER_OP),
        q(
            "filterBy=status&filterOp=startsWith&filterValue=3",
            FILTER_OP,
        ),
        q("filterBy=flow&filterOp=contains&filterValue=2", FILTER_OP),
        q(
            "filterBy=ownerId&filterOp=startsWith&filterValue=1",
            FILTER_OP,
        ),
        q(
            "filterBy=id&filterOp=equals&filterOp=equals&filterValue=x",
            FILTER_OP,
        ),
        // filterValue: present unless the op is `present`, typed, clean and bounded.
        q("filterBy=id&filterOp=equals", FILTER_VALUE),
        q("filterBy=callerId", FILTER_VALUE),
        q("filterBy=status", FILTER_VALUE),
        q("filterBy=callerId&filterValue=", FILTER_VALUE),
        q(
            "filterBy=published&filterOp=contains&filterValue=",
            FILTER_VALUE,
        ),
        q("filterBy=status&filterValue=abc", FILTER_VALUE),
        q("filterBy=status&filterValue=1e3", FILTER_VALUE),
        q("filterBy=ownerId&filterValue=1.5", FILTER_VALUE),
        q("filterBy=ownerId&filterValue=", FILTER_VALUE),
        q(
            "filterBy=ownerId&filterValue=99999999999999999999",
            FILTER_VALUE,
        ),
        q("filterBy=flow&filterValue=%202", FILTER_VALUE),
        q(
            "filterBy=flow&filterOp=greaterThan&filterValue=two",
            FILTER_VALUE,
        ),
        q("filterBy=callerId&filterValue=%00", FILTER_VALUE),
        q("filterBy=callerId&filterValue=Bob%00", FILTER_VALUE),
        q("filterBy=callerId&filterValue=%01", FILTER_VALUE),
        q("filterBy=callerId&filterValue=a%0Ab", FILTER_VALUE),
        q("filterBy=source&filterValue=%0D", FILTER_VALUE),
        q("filterBy=destination&filterValue=%7F", FILTER_VALUE),
        q("filterBy=callerId&filterValue=%C2%85", FILTER_VALUE), // U+0085, a C1 control
        q(
            "filterBy=published&filterOp=startsWith&filterValue=%00",
            FILTER_VALUE,
        ),
        q(
            &format!("filterBy=callerId&filterValue={long_257}"),
            FILTER_VALUE,
        ),
        q(
            &format!("filterBy=id&filterOp=equals&filterValue={long_257}"),
            FILTER_VALUE,
        ),
        q(
            &format!("filterBy=callerId&filterValue={}", "x".repeat(10 * 1024)),
            FILTER_VALUE,
        ),
        q(
            &format!("filterBy=status&filterOp=inArray&filterValue={items_101}"),
            FILTER_VALUE,
        ),
        q(
            &format!("filterBy=id&filterOp=inArray&filterValue={items_101}"),
            FILTER_VALUE,
        ),
        q(
            "filterBy=id&filterOp=inArray&filterValue=a,,b",
            FILTER_VALUE,
        ),
        q("filterBy=id&filterOp=inArray&filterValue=a,", FILTER_VALUE),
        q("filterBy=id&filterOp=inArray&filterValue=", FILTER_VALUE),
        q(
            "filterBy=callerId&filterOp=inArray&filterValue=a,%00",
            FILTER_VALUE,
        ),
        q(
            "filterBy=flow&filterOp=inArray&filterValue=2,,8",
            FILTER_VALUE,
        ),
        q(
            "filterBy=status&filterOp=inArray&filterValue=3,ringing",
            FILTER_VALUE,
        ),
        q(
            &format!("filterBy=callerId&filterOp=inArray&filterValue=a,{long_257}"),
            FILTER_VALUE,
        ),
        q(
            "filterBy=callerId&filterValue=a&filterValue=b",
            FILTER_VALUE,
        ),
        q("filterBy=status&filterValue=3&filterValue=3", FILTER_VALUE),
        // sortBy: one of four.
        q("sortBy=foo", SORT_BY),
        q("sortBy=ownerId", SORT_BY),
        q("sortBy=status", SORT_BY),
        q("sortBy=Published", SORT_BY),
        q("sortBy=", SORT_BY),
        q("sortBy=id&sortBy=id", SORT_BY),
        // sortOrder: ascending or descending.
        q("sortOrder=DESC", SORT_ORDER),
        q("sortOrder=desc", SORT_ORDER),
        q("sortOrder=asc", SORT_ORDER),
        q("sortOrder=Ascending", SORT_ORDER),
        q("sortOrder=", SORT_ORDER),
        q("sortOrder=ascending&sortOrder=ascending", SORT_ORDER),
        // updatedSince: xs:dateTime with a timezone.
        q("updatedSince=2026-11-28T14:40:28", UPDATED_SINCE),
        q("updatedSince=2026-11-28", UPDATED_SINCE),
        q("updatedSince=2024-02-30T00:00:00Z", UPDATED_SINCE),
        q("updatedSince=0000-01-01T00:00:00Z", UPDATED_SINCE),
        q("updatedSince=", UPDATED_SINCE),
        q("updatedSince=yesterday", UPDATED_SINCE),
        q("updatedSince=1764340828", UPDATED_SINCE),
        // An unencoded `+` is a space: the offset is lost.
        q("updatedSince=2026-11-28T14:40:28+02:00", UPDATED_SINCE),
        q(
            "updatedSince=2026-11-28T14:40:28Z&updatedSince=2026-11-28T14:40:28Z",
            UPDATED_SINCE,
        ),
        // fields: a comma list of PhoneCall field names.
        q("fields=foo", FIELDS),
        q("fields=", FIELDS),
        q("fields=id,,extension", FIELDS),
        q("fields=id,", FIELDS),
        q("fields=,id", FIELDS),
        q("fields=ID", FIELDS),
        q("fields=id%20", FIELDS),
        q("fields=phoneCallView.status", FIELDS),
        q("fields=id&fields=id", FIELDS),
        // userId: @me, @viewer, @owner or a positive decimal id.
        row(calls(""), USER),
        row("/uapi/phoneCalls".to_string(), USER),
        row(calls("me/@self/"), USER),
        row(calls("0/@self/"), USER),
        row(calls("012/@self/"), USER),
        row(calls("-3/@self/"), USER),
        row(calls("1.5/@self/"), USER),
        row(calls("@ME/@self/"), USER),
        row(calls("abc/@self/"), USER),
        row(calls("@me@self/"), USER),
        row(calls("99999999999999999999/@self/"), USER),
        row(calls(&format!("{digits_10k}/@self/")), USER),
        // extension: @self, a 3-5 digit short number or a full number.
        row(calls("@me/"), EXTENSION),
        row(calls("@me/21/"), EXTENSION),
        row(calls("@me/123456/"), EXTENSION),
        row(calls("@me/0003-210/"), EXTENSION),
        row(calls("@me/003*210/"), EXTENSION),
        row(calls("@me/0003*21/"), EXTENSION),
        row(calls("@me/0003*210*1/"), EXTENSION),
        row(calls("@me/self/"), EXTENSION),
        row(calls("@me/@SELF/"), EXTENSION),
        row(calls("@owner/abc/"), EXTENSION),
    ];
    // Dates that are not xs:dateTime with a timezone, with every operator that takes a date.
    for op in ["equals", "greaterThan", "lessThan", "inArray"] {
        for bad in [
            "2024-02-30T00:00:00Z",
            "2026-11-28",
            "0000-01-01T00:00:00Z",
            "2026-11-28T14:40:28",
        ] {
            rows.push(q(
                &format!("filterBy=published&filterOp={op}&filterValue={bad}"),
                FILTER_VALUE,
            ));
        }
        rows.push(q(
            &format!("filterBy=answered&filterOp={op}&filterValue=2026-02-29T00:00:00Z"),
            FILTER_VALUE,
        ));
    }
    rows.push(q(
        "filterBy=published&filterOp=inArray&filterValue=2026-11-28T14:40:28Z,2026-11-28",
        FILTER_VALUE,
    ));
    rows
}

#[tokio::test]
async fn every_bad_path_segment_and_query_parameter_gets_its_own_code() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let alice = bearer(&token_for(app.pool(), f.alice).await);
    let rows = catalogue();
    assert!(rows.len() >= 60, "the catalogue has {} rows", rows.len());
    for code in [
        USER,
        EXTENSION,
        COUNT,
        START,
        FILTER_BY,
        FILTER_OP,
        FILTER_VALUE,
        SORT_BY,
        SORT_ORDER,
        UPDATED_SINCE,
        FIELDS,
    ] {
        let n = rows.iter().filter(|(_, c)| *c == code).count();
        assert!(n >= 3, "{code} is covered {n} times");
    }
    assert_rows(&app, &alice, &rows).await;
}

#[tokio::test]
async fn the_accepted_boundaries_and_unknown_parameters_answer_an_empty_page() {
    // The other side of the catalogue: values at the limits are valid, so Alice (no calls yet)
    // gets 204 for each.
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let alice = bearer(&token_for(app.pool(), f.alice).await);
    let items_100 = ["a"; 100].join(",");
    for query in [
        String::new(),
        "count=1".into(),
        "count=5000".into(),
        "startIndex=0".into(),
        "startIndex=5000".into(),
        format!("filterBy=callerId&filterValue={}", "x".repeat(256)),
        format!("filterBy=callerId&filterValue={}", "%C3%A9".repeat(256)),
        format!("filterBy=id&filterOp=inArray&filterValue={items_100}"),
        format!(
            "filterBy=callerId&filterOp=inArray&filterValue=a,{}",
            "y".repeat(256)
        ),
        "filterBy=status&filterValue=-1".into(),
        "filterBy=flow&filterOp=inArray&filterValue=2,4,8".into(),
        "filterBy=published&filterOp=equals&filterValue=2026-11-28T14:40:28%2B02:00".into(),
        "filterBy=published&filterOp=startsWith&filterValue=2026-11-28".into(),
        "filterBy=answered&filterOp=present".into(),
        "filterBy=answered&filterOp=present&filterValue=%00".into(),
        "filterBy=callerId&filterValue=50%25_off%5C".into(),
        "sortBy=extension&sortOrder=descending".into(),
        "updatedSince=2026-11-28T10:40:28.5-04:00".into(),
        "fields=id,extension,ownerId,ownerName,published,answered,nonce,phoneCallView,links".into(),
        "unknown=1&Count=abc&SORTBY=nope".into(),
    ] {
        assert_empty(&app, &alice, &list(&query)).await;
    }
}

#[tokio::test]
async fn the_first_bad_parameter_in_the_tables_order_answers() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let alice = bearer(&token_for(app.pool(), f.alice).await);
    let nobody = f.switch + 1000;
    let rows = vec![
        q("count=0&startIndex=-1", COUNT),
        q("startIndex=-1&count=0", COUNT),
        q(
            "fields=nope&updatedSince=nope&sortOrder=nope&sortBy=nope&filterValue=x&startIndex=-1&count=0",
            COUNT,
        ),
        q("filterBy=nope&startIndex=x", START),
        q("filterBy=nope&filterOp=nope", FILTER_BY),
        q("filterOp=nope&filterBy=nope", FILTER_BY),
        q("filterValue=x&sortBy=nope", FILTER_BY),
        q("filterBy=status&filterOp=contains&filterValue=abc", FILTER_OP),
        q("filterBy=status&filterOp=nope&sortBy=nope", FILTER_OP),
        q("filterBy=id&filterOp=equals&sortBy=nope", FILTER_VALUE),
        q("sortBy=nope&filterBy=status&filterValue=abc", FILTER_VALUE),
        q("sortOrder=nope&sortBy=nope", SORT_BY),
        q("updatedSince=nope&sortOrder=nope", SORT_ORDER),
        q("fields=nope&updatedSince=nope", UPDATED_SINCE),
        q("fields=nope&fields=nope", FIELDS),
        // The path before the query, and the user before the extension.
        row(calls("me/@self/?count=0"), USER),
        row(calls("@me/21/?count=0"), EXTENSION),
        row(calls("me/21/?count=0&fields=nope"), USER),
        // Every syntactic check before the database is asked about the user or extension.
        row(calls(&format!("{}/@self/?count=0", f.carol)), COUNT),
        row(calls(&format!("{nobody}/@self/?fields=nope")), FIELDS),
        row(calls("@me/0003*999/?sortOrder=x"), SORT_ORDER),
        row(calls("@owner/0007*210/?filterBy=ownerName"), FILTER_BY),
    ];
    assert_rows(&app, &alice, &rows).await;
}

#[tokio::test]
async fn a_repeated_filter_parameter_does_not_jump_ahead_of_an_earlier_filter_check() {
    // "A parameter given twice is invalid", but the checks run in the table's order: a bad or
    // missing filterBy answers before a repeated filterOp, and an op the field does not support
    // answers before a repeated filterValue.
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let alice = bearer(&token_for(app.pool(), f.alice).await);
    let rows = vec![
        q("filterBy=nope&filterOp=equals&filterOp=equals", FILTER_BY),
        q("filterBy=nope&filterValue=a&filterValue=b", FILTER_BY),
        q("filterOp=equals&filterOp=equals", FILTER_BY),
        q(
            "filterBy=status&filterOp=contains&filterValue=1&filterValue=2",
            FILTER_OP,
        ),
    ];
    assert_rows(&app, &alice, &rows).await;
}

#[tokio::test]
async fn authentication_is_checked_before_anything_else() {
    let app = spawn_app().await;
    let _ = fixture(app.pool()).await;
    let path = calls("me/21/?count=0&startIndex=-1&fields=nope");
    let headers = assert_error(app.get(&path).await, 401, "access_denied").await;
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="uapi""#);
    let unknown = phonecalls::auth::token::generate_token();
    let response = app.get_with_authorization(&path, &bearer(&unknown)).await;
    let headers = assert_error(response, 401, "access_denied").await;
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer realm="uapi", error="invalid_token""#
    );
    let response = app
        .get_with_authorization(&list("count=0"), "Bearer not-a-token")
        .await;
    assert_error(response, 401, "access_denied").await;
}

#[tokio::test]
async fn an_unknown_user_and_a_user_out_of_sight_get_byte_identical_answers() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let alice = bearer(&token_for(app.pool(), f.alice).await);
    let organization = bearer(&token_for(app.pool(), f.org_account).await);
    let nobody = f.switch + 1000;

    let unknown = rejected_body(&app, &alice, &calls(&format!("{nobody}/@self/")), USER).await;
    let cases = [
        (&alice, format!("{}/@self/", f.carol)),
        (&alice, format!("{}/@self/", f.bob)),
        (&alice, format!("{}/0003*211/", f.bob)),
        (&alice, format!("{}/0007*210/", f.carol)),
        (&alice, format!("{}/210/", f.carol)),
        (&alice, format!("{}/@self/", f.org_account)),
        (&alice, format!("{}/@self/", f.admin)),
        (&alice, format!("{nobody}/0003*210/")),
        (&organization, format!("{nobody}/@self/")),
        (&organization, format!("{}/@self/", f.carol)),
        (&organization, format!("{}/0007*210/", f.carol)),
        (&organization, format!("{}/@self/", f.admin)),
    ];
    for (authorization, tail) in cases {
        let body = rejected_body(&app, authorization, &calls(&tail), USER).await;
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&unknown),
            "{tail}"
        );
        assert_eq!(body, unknown, "{tail}: byte-identical");
    }
}

#[tokio::test]
async fn an_unknown_extension_and_one_out_of_sight_get_byte_identical_answers() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let alice = bearer(&token_for(app.pool(), f.alice).await);
    let organization = bearer(&token_for(app.pool(), f.org_account).await);
    let admin = bearer(&token_for(app.pool(), f.admin).await);

    let unknown = rejected_body(&app, &alice, &calls("@me/0003*999/"), EXTENSION).await;
    let cases = [
        // Bob's, in Alice's own organization.
        (&alice, "@me/0003*211/".to_string()),
        (&alice, "@me/211/".to_string()),
        (&alice, "@owner/0003*211/".to_string()),
        (&alice, "@owner/211/".to_string()),
        (&alice, format!("{}/0003*211/", f.alice)),
        // Carol's, in another organization.
        (&alice, "@owner/0007*210/".to_string()),
        (&alice, "@me/0007*210/".to_string()),
        (&organization, "@owner/0007*210/".to_string()),
        // Unknown ones, by every form.
        (&alice, "@me/999/".to_string()),
        (&alice, "@owner/0003*999/".to_string()),
        (&alice, "@owner/0009*210/".to_string()),
        (&organization, "@owner/0003*999/".to_string()),
        (&organization, "@owner/999/".to_string()),
        // A user's extension named under another user of the same organization.
        (&organization, format!("{}/0003*211/", f.alice)),
        (&organization, format!("{}/211/", f.alice)),
        // A short number means one of the caller's organization, and an admin has none.
        (&admin, "@owner/210/".to_string()),
        (&admin, format!("{}/211/", f.alice)),
    ];
    for (authorization, tail) in cases {
        let body = rejected_body(&app, authorization, &calls(&tail), EXTENSION).await;
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&unknown),
            "{tail}"
        );
        assert_eq!(body, unknown, "{tail}: byte-identical");
    }
}

#[tokio::test]
async fn users_and_extensions_the_caller_may_see_are_resolved() {
    // The positive side of resolution: with no calls stored, each of these is an empty page.
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let alice = bearer(&token_for(app.pool(), f.alice).await);
    let organization = bearer(&token_for(app.pool(), f.org_account).await);
    let admin = bearer(&token_for(app.pool(), f.admin).await);
    let cases = [
        (&alice, format!("{}/@self/", f.alice)),
        (&alice, "@viewer/210/".to_string()),
        (&alice, "@owner/0003*210/".to_string()),
        (&alice, "@owner/210".to_string()),
        (&organization, format!("{}/@self/", f.alice)),
        (&organization, format!("{}/210/", f.alice)),
        (&organization, format!("{}/0003*211", f.bob)),
        (&organization, "@owner/211/".to_string()),
        (&organization, "@owner/@self/".to_string()),
        (&admin, format!("{}/@self/", f.carol)),
        (&admin, format!("{}/210/", f.carol)),
        (&admin, "@owner/0007*210/".to_string()),
        (&admin, "@owner/@self/".to_string()),
    ];
    for (authorization, tail) in cases {
        assert_empty(&app, authorization, &calls(&tail)).await;
    }
}

#[tokio::test]
async fn empty_pages_and_unmatched_call_ids_are_204_without_a_body() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let alice = bearer(&token_for(app.pool(), f.alice).await);
    let organization = bearer(&token_for(app.pool(), f.org_account).await);
    let admin = bearer(&token_for(app.pool(), f.admin).await);
    let switch = token_for(app.pool(), f.switch).await;

    // Nothing stored yet.
    assert_empty(&app, &alice, LIST).await;

    // A live call of Alice and Bob.
    let live = new_call_id();
    let response = app
        .put_report(&switch, &live, &first_report(&live, 1))
        .await;
    assert_eq!(response.status(), 201);
    // An ended call of Alice and Bob.
    let ended = new_call_id();
    let mut report = first_report(&ended, 1);
    report["ended"] = json!("2026-11-28T14:45:00Z");
    assert_eq!(app.put_report(&switch, &ended, &report).await.status(), 201);
    // A live call of Bob's alone.
    let bobs = new_call_id();
    let mut report = first_report(&bobs, 1);
    report["extension"] = json!("0003*211");
    report["phoneCallView"] = json!([report["phoneCallView"][1].clone()]);
    assert_eq!(app.put_report(&switch, &bobs, &report).await.status(), 201);
    // A live call of the other organization.
    let globex = new_call_id();
    let mut report = first_report(&globex, 1);
    report["extension"] = json!("0007*210");
    report["phoneCallView"] = json!([{
        "id": "00", "extension": "0007*210", "source": ["0007*210"], "destination": ["+4420123"],
        "flow": 4, "status": 2
    }]);
    assert_eq!(
        app.put_report(&switch, &globex, &report).await.status(),
        201
    );

    // The controls: what is there is found.
    assert_eq!(page_ids(&app, &alice, LIST).await, vec![live.clone()]);
    assert_eq!(
        page_ids(&app, &alice, &calls(&format!("@me/@self/{live}"))).await,
        vec![live.clone()]
    );
    assert_eq!(
        page_ids(
            &app,
            &organization,
            &calls(&format!("@owner/0003*211/{bobs}"))
        )
        .await,
        vec![bobs.clone()]
    );
    assert_eq!(
        page_ids(&app, &admin, &calls(&format!("@owner/@self/{globex}/"))).await,
        vec![globex.clone()]
    );

    // Nothing matches the filter.
    assert_empty(&app, &alice, &list("filterBy=callerId&filterValue=nobody")).await;
    assert_empty(&app, &alice, &list("updatedSince=9999-01-01T00:00:00Z")).await;
    // startIndex past the end.
    assert_empty(&app, &alice, &list("startIndex=1")).await;
    assert_empty(&app, &alice, &list("count=1&startIndex=1")).await;
    assert_empty(&app, &alice, &list("startIndex=5000")).await;
    // A malformed phoneCallId.
    for malformed in [
        "not-a-uuid".to_string(),
        live.replace('-', ""),
        format!("{{{live}}}"),
        format!("{live}0"),
        live[..35].to_string(),
    ] {
        assert_empty(&app, &alice, &calls(&format!("@me/@self/{malformed}"))).await;
    }
    // An unknown one.
    assert_empty(
        &app,
        &alice,
        &calls(&format!("@me/@self/{}/", new_call_id())),
    )
    .await;
    // An ended call, also for those who see everything.
    assert_empty(&app, &alice, &calls(&format!("@me/@self/{ended}"))).await;
    assert_empty(&app, &admin, &calls(&format!("@owner/@self/{ended}"))).await;
    // A call out of sight: the other organization's, and Bob's alone for Alice.
    assert_empty(&app, &alice, &calls(&format!("@me/@self/{globex}"))).await;
    assert_empty(
        &app,
        &organization,
        &calls(&format!("@owner/@self/{globex}")),
    )
    .await;
    assert_empty(&app, &alice, &calls(&format!("@me/@self/{bobs}"))).await;
    // A visible call that does not involve the path's extension.
    assert_empty(
        &app,
        &organization,
        &calls(&format!("@owner/0003*210/{bobs}")),
    )
    .await;
    assert_empty(
        &app,
        &organization,
        &calls(&format!("{}/@self/{bobs}", f.alice)),
    )
    .await;
    assert_empty(&app, &admin, &calls(&format!("{}/210/{bobs}", f.alice))).await;
    assert_empty(&app, &admin, &calls(&format!("{}/@self/{live}", f.carol))).await;
}

#[tokio::test]
async fn post_put_and_delete_are_not_implemented() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.alice).await;
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        for path in [
            LIST.to_string(),
            calls(&format!("@me/@self/{}", new_call_id())),
        ] {
            let response = app
                .client
                .request(method.clone(), app.url(&path))
                .bearer_auth(&token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_error(response, 501, "request_not_implemented").await;
        }
    }
}

#[tokio::test]
async fn other_methods_are_not_allowed_and_name_the_allowed_ones() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.alice).await;
    for method in [Method::PATCH, Method::OPTIONS, Method::TRACE] {
        let response = app
            .client
            .request(method.clone(), app.url(LIST))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let headers = assert_error(response, 405, "method_not_allowed").await;
        assert_eq!(headers["allow"], ALLOW, "{method}");
    }
    // HEAD answers as GET does, without a body (RFC 9110 requires it of every server).
    let get = app
        .get_with_authorization(LIST, &format!("Bearer {token}"))
        .await;
    let response = app
        .client
        .head(app.url(LIST))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), get.status());
    assert!(response.headers().contains_key("x-request-id"));
    assert!(
        response.bytes().await.unwrap().is_empty(),
        "HEAD has no body"
    );
    let anonymous = app.client.head(app.url(LIST)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.bytes().await.unwrap().is_empty(),
        "HEAD has no body"
    );
    let live = app.client.head(app.url("/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert!(live.bytes().await.unwrap().is_empty(), "HEAD has no body");
}

#[tokio::test]
async fn a_path_with_too_many_segments_is_no_route() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let alice = bearer(&token_for(app.pool(), f.alice).await);
    for path in [
        calls("@me/@self/x/y"),
        calls("@me/@self/x/y/"),
        calls(&format!("@me/@self/{}/extra", new_call_id())),
        calls("me/21/x/y?count=0"),
    ] {
        let response = app.get_with_authorization(&path, &alice).await;
        assert_error(response, 404, "not_found").await;
    }
}
