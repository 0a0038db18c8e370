//! The switch feed's write path (spec §5): calls enter, change and end; replays, duplicates,
//! reordering and races leave exactly the state of the highest sequence.

use std::collections::BTreeMap;

use crate::helpers::*;
use serde_json::{json, Value};

/// The stored call (without `id` and `updated`, which differ between equal histories) and its
/// views (without `phone_call_id`), as JSON for comparison.
async fn stored(pool: &sqlx::PgPool, id: &str) -> Option<(Value, Vec<Value>)> {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let call: Option<Value> = sqlx::query_scalar(
        "SELECT to_jsonb(c) - 'id' - 'updated' FROM phone_calls c WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .unwrap();
    let views: Vec<Value> = sqlx::query_scalar(
        "SELECT to_jsonb(v) - 'phone_call_id' FROM phone_call_views v WHERE phone_call_id = $1 ORDER BY view_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap();
    call.map(|c| (c, views))
}

async fn updated_at(pool: &sqlx::PgPool, id: &str) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT updated FROM phone_calls WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn is_live(pool: &sqlx::PgPool, id: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM phone_calls WHERE id = $1::uuid AND ended IS NULL)",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_first_report_creates_the_call_with_its_views() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    let id = new_call_id();
    let (status, answer) = body(app.put_report(&token, &id, &first_report(&id, 1)).await).await;
    assert_eq!(status, 201);
    assert_eq!(answer, json!({"id": id, "sequence": 1, "applied": true}));
    let (call, views) = stored(app.pool(), &id).await.unwrap();
    assert_eq!(call["organization_id"], f.org);
    assert_eq!(call["extension"], "0003*210");
    assert_eq!(call["nonce"], "n-1");
    assert_eq!(call["sequence"], 1);
    assert_eq!(call["ended"], Value::Null);
    assert_eq!(views.len(), 2);
    assert_eq!(views[0]["view_id"], "00");
    assert_eq!(views[0]["status"], 4);
    assert_eq!(views[1]["extension"], "0003*211");
    assert_eq!(views[1]["caller_id"], "Alice <210>");
    assert_eq!(views[1]["source"], json!(["0003*210"]));
    assert!(is_live(app.pool(), &id).await);
}

#[tokio::test]
async fn a_higher_sequence_replaces_the_state_and_views_and_moves_updated() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    let id = new_call_id();
    app.put_report(&token, &id, &first_report(&id, 1)).await;
    let first_updated = updated_at(app.pool(), &id).await;
    let answered = json!({
        "sequence": 2, "extension": "0003*210", "published": "2026-11-28T14:40:28Z",
        "answered": "2026-11-28T14:40:35Z",
        "phoneCallView": [{"id": "00", "extension": "0003*210", "flow": 2, "status": 5,
                           "answered": "2026-11-28T14:40:35Z", "recording": "2026-11-28T14:40:36Z"}]
    });
    let (status, answer) = body(app.put_report(&token, &id, &answered).await).await;
    assert_eq!(
        (status, answer),
        (200, json!({"id": id, "sequence": 2, "applied": true}))
    );
    let (call, views) = stored(app.pool(), &id).await.unwrap();
    assert_eq!(call["sequence"], 2);
    assert_eq!(
        call["nonce"],
        Value::Null,
        "a field left out of a report is no longer set"
    );
    assert!(call["answered"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-28T14:40:35"));
    assert_eq!(views.len(), 1, "views are replaced, not merged");
    assert_eq!(views[0]["status"], 5);
    assert!(updated_at(app.pool(), &id).await > first_updated);
}

#[tokio::test]
async fn replays_and_late_reports_change_nothing_and_still_succeed() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    let id = new_call_id();
    let mut latest = first_report(&id, 5);
    latest["phoneCallView"][0]["status"] = json!(5);
    app.put_report(&token, &id, &latest).await;
    let before = stored(app.pool(), &id).await;
    let updated = updated_at(app.pool(), &id).await;
    for sequence in [5, 4, 0] {
        let (status, answer) = body(
            app.put_report(&token, &id, &first_report(&id, sequence))
                .await,
        )
        .await;
        assert_eq!(
            (status, answer),
            (
                200,
                json!({"id": id, "sequence": sequence, "applied": false})
            )
        );
    }
    assert_eq!(stored(app.pool(), &id).await, before);
    assert_eq!(
        updated_at(app.pool(), &id).await,
        updated,
        "updated moves only when a report applies"
    );
}

#[tokio::test]
async fn later_reports_may_leave_out_extension_published_and_views() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    let id = new_call_id();
    app.put_report(&token, &id, &first_report(&id, 1)).await;
    let (_, views_before) = stored(app.pool(), &id).await.unwrap();
    let (status, _) = body(
        app.put_report(
            &token,
            &id,
            &json!({"sequence": 2, "answered": "2026-11-28T14:41:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let (call, views) = stored(app.pool(), &id).await.unwrap();
    assert_eq!(call["extension"], "0003*210");
    assert!(call["published"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-28T14:40:28"));
    assert!(call["answered"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-28T14:41:00"));
    assert_eq!(
        views, views_before,
        "views are kept when a report carries none"
    );
}

#[tokio::test]
async fn an_ended_call_leaves_the_live_set_and_stays_stored_until_corrected() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    let id = new_call_id();
    app.put_report(&token, &id, &first_report(&id, 1)).await;
    let mut ended = first_report(&id, 2);
    ended["ended"] = json!("2026-11-28T14:45:00Z");
    ended["phoneCallView"][0]["disposition"] = json!(3);
    assert_eq!(app.put_report(&token, &id, &ended).await.status(), 200);
    assert!(!is_live(app.pool(), &id).await, "ended calls are not live");
    let (call, views) = stored(app.pool(), &id).await.unwrap();
    assert!(call["ended"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-28T14:45:00"));
    assert_eq!(views.len(), 2, "the final views are kept for reporting");
    assert_eq!(views[0]["disposition"], 3);

    // A late report of the live state changes nothing...
    let (_, answer) = body(app.put_report(&token, &id, &first_report(&id, 1)).await).await;
    assert_eq!(answer["applied"], false);
    assert!(!is_live(app.pool(), &id).await);
    // ...but a higher sequence may still correct the call.
    let mut corrected = ended.clone();
    corrected["sequence"] = json!(3);
    corrected["ended"] = json!("2026-11-28T14:46:00Z");
    assert_eq!(app.put_report(&token, &id, &corrected).await.status(), 200);
    let (call, _) = stored(app.pool(), &id).await.unwrap();
    assert!(call["ended"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-28T14:46:00"));
}

#[tokio::test]
async fn a_batch_applies_each_report_and_answers_in_order() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    let (a, b) = (new_call_id(), new_call_id());
    let reports = vec![
        first_report(&a, 1),
        first_report(&b, 1),
        first_report(&a, 2),
        first_report(&a, 2),
    ];
    let (status, answer) = body(app.post_batch(&token, &reports).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"results": [
            {"id": a, "status": 201, "sequence": 1, "applied": true},
            {"id": b, "status": 201, "sequence": 1, "applied": true},
            {"id": a, "status": 200, "sequence": 2, "applied": true},
            {"id": a, "status": 200, "sequence": 2, "applied": false},
        ]})
    );
    assert_eq!(count(app.pool(), "phone_calls").await, 2);
    assert_eq!(count(app.pool(), "phone_call_views").await, 4);
}

#[tokio::test]
async fn racing_reports_for_one_call_end_at_the_highest_sequence() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    let id = new_call_id();
    let mut sequences: Vec<i64> = (1..=60).collect();
    // A fixed but scrambled order: the highest sequence is neither first nor last.
    sequences.sort_by_key(|s| (s * 37) % 61);
    let mut tasks = Vec::new();
    for sequence in sequences {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/switch/v1/phoneCalls/{id}")),
            token.clone(),
        );
        let mut report = first_report(&id, sequence);
        report["nonce"] = json!(format!("seq-{sequence}"));
        report["phoneCallView"][0]["parkedPos"] = json!(sequence);
        tasks.push(tokio::spawn(async move {
            let response = client
                .put(url)
                .bearer_auth(token)
                .json(&report)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }));
    }
    let mut statuses = BTreeMap::new();
    let mut refusals = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        *statuses.entry(status).or_insert(0) += 1;
        if status != 200 && status != 201 {
            refusals.push(body);
        }
    }
    assert!(
        refusals.is_empty(),
        "every report succeeds: {statuses:?} {refusals:?}"
    );
    assert_eq!(
        statuses.get(&201),
        Some(&1),
        "exactly one report created the call"
    );
    let (call, views) = stored(app.pool(), &id).await.unwrap();
    assert_eq!(call["sequence"], 60);
    assert_eq!(call["nonce"], "seq-60");
    assert_eq!(views.len(), 2);
    assert_eq!(
        views[0]["parked_pos"], 60,
        "the views are those of the highest sequence"
    );
}

/// Writers creating the same call at once: `ON CONFLICT (id)` settles the primary key, but the
/// table's other unique keys would answer a unique violation (once a 400) to the loser. Each
/// round creates one new call with a few concurrent `PUT`s and a batch, which the feed writes
/// side by side; many rounds make the unlucky interleaving likely.
#[tokio::test]
async fn first_reports_racing_through_put_and_batches_all_succeed() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;
    for _ in 0..200 {
        let id = new_call_id();
        let mut tasks = Vec::new();
        for sequence in 1..=3 {
            let request = app
                .client
                .put(app.url(&format!("/switch/v1/phoneCalls/{id}")))
                .bearer_auth(&token)
                .json(&first_report(&id, sequence));
            tasks.push(tokio::spawn(async move { request.send().await }));
        }
        let batch = json!({ "reports": [first_report(&id, 4)] });
        let request = app
            .client
            .post(app.url("/switch/v1/phoneCalls"))
            .bearer_auth(&token)
            .json(&batch);
        tasks.push(tokio::spawn(async move { request.send().await }));
        let mut created = 0;
        for task in tasks {
            let response = task.await.unwrap().unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let status = match body["results"][0]["status"].as_u64() {
                Some(of_report) if status == 200 => of_report as u16,
                _ => status,
            };
            match status {
                201 => created += 1,
                200 => {}
                _ => panic!("a first report failed: {status} {body}"),
            }
        }
        assert_eq!(created, 1, "the call was created exactly once");
        let (call, views) = stored(app.pool(), &id).await.unwrap();
        assert_eq!(call["sequence"], 4);
        assert_eq!(views.len(), 2);
    }
}

mod property {
    //! Random report streams, applied in order versus shuffled with duplicates, end identical.

    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    /// One report's state, independent of the call id.
    #[derive(Debug, Clone)]
    struct State {
        extension: &'static str,
        answered_after: Option<i64>,
        ended_after: Option<i64>,
        nonce: Option<u8>,
        views: Vec<(&'static str, i64, i64, Option<i64>, bool)>,
    }

    fn state() -> impl Strategy<Value = State> {
        let view = (
            prop_oneof![Just("0003*210"), Just("0003*211")],
            prop_oneof![Just(2i64), Just(4), Just(8)],
            0i64..=5,
            proptest::option::of(0i64..=5),
            any::<bool>(),
        );
        (
            prop_oneof![Just("0003*210"), Just("0003*211")],
            proptest::option::of(0i64..600),
            proptest::option::of(0i64..3600),
            proptest::option::of(any::<u8>()),
            proptest::collection::vec(view, 1..=3),
        )
            .prop_map(
                |(extension, answered_after, ended_after, nonce, views)| State {
                    extension,
                    answered_after,
                    ended_after,
                    nonce,
                    views,
                },
            )
    }

    /// Several calls, each a stream of reports with increasing sequences (with gaps).
    fn streams() -> impl Strategy<Value = Vec<Vec<(i64, State)>>> {
        let stream = proptest::collection::vec((1i64..4, state()), 1..=5).prop_map(|steps| {
            let mut sequence = 0;
            steps
                .into_iter()
                .map(|(gap, state)| {
                    sequence += gap;
                    (sequence, state)
                })
                .collect::<Vec<_>>()
        });
        proptest::collection::vec(stream, 1..=3)
    }

    fn report(id: &str, sequence: i64, state: &State) -> Value {
        let at = |offset: i64| {
            phonecalls::time::format_utc(
                chrono::DateTime::parse_from_rfc3339("2026-11-28T14:00:00Z")
                    .unwrap()
                    .to_utc()
                    + chrono::Duration::seconds(offset),
            )
        };
        let views: Vec<Value> = state
            .views
            .iter()
            .enumerate()
            .map(|(i, (extension, flow, status, disposition, on_hold))| {
                let mut view = json!({
                    "id": format!("{i:02}"), "extension": extension, "flow": flow, "status": status,
                    "source": [extension], "destination": ["+4420"],
                });
                if let Some(d) = disposition {
                    view["disposition"] = json!(d);
                }
                if *on_hold {
                    view["onHold"] = json!(at(30));
                    view["holder"] = json!(1);
                }
                view
            })
            .collect();
        let mut report = json!({
            "id": id, "sequence": sequence, "extension": state.extension,
            "published": at(0), "phoneCallView": views,
        });
        if let Some(a) = state.answered_after {
            report["answered"] = json!(at(a));
        }
        if let Some(e) = state.ended_after {
            report["ended"] = json!(at(e));
        }
        if let Some(n) = state.nonce {
            report["nonce"] = json!(format!("nonce-{n}"));
        }
        report
    }

    #[test]
    fn shuffled_and_duplicated_streams_end_like_ordered_ones() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let (app, token) = runtime.block_on(async {
            let app = spawn_app().await;
            let f = fixture(app.pool()).await;
            let token = token_for(app.pool(), f.switch).await;
            (app, token)
        });
        let mut runner = TestRunner::new(Config {
            cases: 24,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (
            streams(),
            any::<u64>(),
            proptest::collection::vec(1usize..=3, 64),
        );
        runner
            .run(&strategy, |(streams, seed, repeats)| {
                runtime.block_on(async {
                    let ordered_ids: Vec<String> = streams.iter().map(|_| new_call_id()).collect();
                    let shuffled_ids: Vec<String> = streams.iter().map(|_| new_call_id()).collect();
                    // In order, one PUT at a time.
                    for (id, stream) in ordered_ids.iter().zip(&streams) {
                        for (sequence, state) in stream {
                            let status = app
                                .put_report(&token, id, &report(id, *sequence, state))
                                .await
                                .status();
                            prop_assert!(status == 200 || status == 201, "{status}");
                        }
                    }
                    // Shuffled, every report sent one to three times, in batches.
                    let mut deliveries = Vec::new();
                    for (id, stream) in shuffled_ids.iter().zip(&streams) {
                        for (sequence, state) in stream {
                            let copies = repeats[deliveries.len() % repeats.len()];
                            for _ in 0..copies {
                                deliveries.push(report(id, *sequence, state));
                            }
                        }
                    }
                    shuffle(&mut deliveries, seed);
                    for chunk in deliveries.chunks(4) {
                        let response = app.post_batch(&token, chunk).await;
                        prop_assert_eq!(response.status().as_u16(), 200);
                        let answer: Value = response.json().await.unwrap();
                        for result in answer["results"].as_array().unwrap() {
                            prop_assert!(result.get("error").is_none(), "{}", result);
                        }
                    }
                    for (a, b) in ordered_ids.iter().zip(&shuffled_ids) {
                        let ordered = stored(app.pool(), a).await;
                        let shuffled = stored(app.pool(), b).await;
                        prop_assert!(ordered.is_some());
                        prop_assert_eq!(ordered, shuffled);
                    }
                    // Whatever way each call was written, its party figures are its views'.
                    let disagree = super::party_facts_that_disagree(app.pool()).await;
                    prop_assert!(disagree.is_empty(), "{:?}", disagree);
                    Ok::<(), TestCaseError>(())
                })
            })
            .unwrap();
    }

    /// A deterministic Fisher-Yates shuffle driven by `seed` (so proptest can replay it).
    fn shuffle<T>(items: &mut [T], mut seed: u64) {
        for i in (1..items.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let j = (seed >> 33) as usize % (i + 1);
            items.swap(i, j);
        }
    }
}

#[tokio::test]
async fn demo_calls_go_through_the_feed_and_are_live_in_varied_states() {
    let db = test_db().await;
    let f = fixture(&db.pool).await;
    let output = run_cli(
        &db.url,
        &[
            "demo",
            "calls",
            "--org",
            &f.org.to_string(),
            "--count",
            "30",
        ],
    )
    .await;
    assert_eq!(output.json(), json!({"created": 30}));
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM phone_calls WHERE ended IS NULL AND organization_id = $1",
    )
    .bind(f.org)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(live, 30);
    let (ringing, talking, on_hold, parked, recording): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 3), count(*) FILTER (WHERE status = 5),
                count(*) FILTER (WHERE on_hold IS NOT NULL), count(*) FILTER (WHERE parked IS NOT NULL),
                count(*) FILTER (WHERE recording IS NOT NULL)
         FROM phone_call_views",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    for (state, n) in [
        ("ringing", ringing),
        ("talking", talking),
        ("on hold", on_hold),
        ("parked", parked),
        ("recording", recording),
    ] {
        assert!(n > 0, "no demo call is {state}");
    }
    let unknown = run_cli(
        &db.url,
        &[
            "demo",
            "calls",
            "--org",
            &f.other_org.to_string(),
            "--count",
            "0",
        ],
    )
    .await;
    assert!(!unknown.success);
    assert_eq!(count(&db.pool, "phone_calls").await, 30);
}

#[tokio::test]
async fn every_feed_statement_printed_by_the_cli_prepares_as_it_is_printed() {
    let db = test_db().await;
    let output = run_cli(&db.url, &["feed-statements"]).await;
    assert!(output.success, "{}", output.stderr);
    let statements: Vec<&str> = output
        .stdout
        .split(";\n\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        statements.len(),
        phonecalls::switch_feed::repo::STATEMENTS.len()
    );
    for statement in statements {
        assert!(statement.starts_with("PREPARE "), "{statement}");
        sqlx::raw_sql(statement)
            .execute(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}: {statement}"));
    }
}

/// The party figures the feed keeps on each call (`phone_calls.parties` to `was_recorded`),
/// next to what its stored views give (`phone_call_party_facts`), for every call that differs.
async fn party_facts_that_disagree(pool: &sqlx::PgPool) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT jsonb_build_object('id', c.id, 'kept', to_jsonb(k), 'views', to_jsonb(f))
         FROM phone_calls c
         JOIN phone_call_party_facts f ON f.id = c.id
         CROSS JOIN LATERAL (SELECT c.parties, c.first_ringing, c.charged_flow, c.charged_disposition,
                                    c.charged_destination, c.was_parked, c.was_on_hold, c.was_recorded) AS k
         WHERE (k.parties, k.first_ringing, k.charged_flow, k.charged_disposition, k.charged_destination,
                k.was_parked, k.was_on_hold, k.was_recorded)
               IS DISTINCT FROM
               (f.parties, f.first_ringing, f.charged_flow, f.charged_disposition, f.charged_destination,
                f.was_parked, f.was_on_hold, f.was_recorded)",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The figures kept on one call, as JSON.
async fn kept_facts(pool: &sqlx::PgPool, id: &str) -> Value {
    sqlx::query_scalar(
        "SELECT jsonb_build_object('parties', parties, 'first_ringing', first_ringing,
                'charged_flow', charged_flow, 'charged_disposition', charged_disposition,
                'charged_destination', charged_destination, 'was_parked', was_parked,
                'was_on_hold', was_on_hold, 'was_recorded', was_recorded)
         FROM phone_calls WHERE id = $1::uuid",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Reports reach the database three ways (one statement per report, the exact transaction after
/// a race, and a batch's set-based statements), with and without views; each way must keep the
/// call's party figures equal to what its stored views give, since the reports read only them.
#[tokio::test]
async fn every_write_path_keeps_each_calls_party_figures_equal_to_its_views() {
    let app = spawn_app().await;
    let f = fixture(app.pool()).await;
    let token = token_for(app.pool(), f.switch).await;

    // One statement: a first report. The charged party is view 00, on 0003*210.
    let a = new_call_id();
    let mut first = first_report(&a, 1);
    first["phoneCallView"][1]["flow"] = json!(8);
    first["phoneCallView"][1]["destination"] = json!(["+442079460000"]);
    first["phoneCallView"][1]["recording"] = json!("2026-11-28T14:40:31Z");
    first["phoneCallView"][0]["ringing"] = json!("2026-11-28T14:40:30Z");
    assert_eq!(app.put_report(&token, &a, &first).await.status(), 201);
    assert_eq!(
        kept_facts(app.pool(), &a).await,
        json!({"parties": 2, "first_ringing": "2026-11-28T14:40:29+00:00", "charged_flow": 2,
               "charged_disposition": null, "charged_destination": ["0003*211"],
               "was_parked": false, "was_on_hold": false, "was_recorded": true})
    );
    // A report without views that moves the charge to 0003*211 and ends the call: the stored
    // views decide, and view 01 is now the charged party.
    let moved = json!({"sequence": 2, "extension": "0003*211", "ended": "2026-11-28T14:45:00Z"});
    assert_eq!(app.put_report(&token, &a, &moved).await.status(), 200);
    let kept = kept_facts(app.pool(), &a).await;
    assert_eq!(kept["charged_flow"], 8);
    assert_eq!(kept["charged_destination"], json!(["+442079460000"]));
    assert_eq!(kept["parties"], 2);

    // A batch: a new call and a stored one, the stored one twice (views, then none), and a
    // report leaving out views for a call whose views the batch does not carry.
    let b = new_call_id();
    let mut b_first = first_report(&b, 1);
    b_first["phoneCallView"][0]["parked"] = json!("2026-11-28T14:41:00Z");
    let mut a_views = first_report(&a, 3);
    a_views["phoneCallView"] = json!([
        {"id": "00", "extension": "0003*211", "source": ["0003*210"], "destination": ["+15551230000"],
         "flow": 4, "status": 5, "onHold": "2026-11-28T14:42:00Z", "holder": 1, "disposition": 0}
    ]);
    let c = new_call_id();
    let mut c_first = first_report(&c, 1);
    c_first["phoneCallView"][1]["flow"] = json!(8);
    c_first["phoneCallView"][1]["destination"] = json!(["+442079460001"]);
    app.put_report(&token, &c, &c_first).await;
    let reports = vec![
        b_first,
        a_views,
        json!({"id": a, "sequence": 4, "extension": "0003*210"}),
        json!({"id": c, "sequence": 2, "extension": "0003*211"}),
    ];
    let (status, answer) = body(app.post_batch(&token, &reports).await).await;
    assert_eq!(status, 200, "{answer}");
    let kept = kept_facts(app.pool(), &a).await;
    assert_eq!(
        (
            kept["parties"].clone(),
            kept["charged_flow"].clone(),
            kept["was_on_hold"].clone()
        ),
        (json!(1), Value::Null, json!(true)),
        "charged to 0003*210 again, on which no view is left"
    );
    assert_eq!(kept_facts(app.pool(), &b).await["was_parked"], true);
    assert_eq!(kept_facts(app.pool(), &c).await["charged_flow"], 8);
    assert_eq!(
        kept_facts(app.pool(), &c).await["charged_destination"],
        json!(["+442079460001"])
    );

    // Racing reports, which the feed settles in its exact transaction, each with other views.
    let d = new_call_id();
    let mut tasks = Vec::new();
    for sequence in 1..=30 {
        let mut report = first_report(&d, sequence);
        report["phoneCallView"][0]["flow"] = json!([2, 4, 8][sequence as usize % 3]);
        if sequence % 2 == 0 {
            report["phoneCallView"].as_array_mut().unwrap().truncate(1);
        }
        let request = app
            .client
            .put(app.url(&format!("/switch/v1/phoneCalls/{d}")))
            .bearer_auth(&token)
            .json(&report);
        tasks.push(tokio::spawn(async move { request.send().await }));
    }
    for task in tasks {
        let status = task.await.unwrap().unwrap().status().as_u16();
        assert!(status == 200 || status == 201, "{status}");
    }
    let kept = kept_facts(app.pool(), &d).await;
    assert_eq!(
        (kept["parties"].clone(), kept["charged_flow"].clone()),
        (json!(1), json!(2))
    );

    assert_eq!(
        party_facts_that_disagree(app.pool()).await,
        Vec::<Value>::new()
    );
}
