//! Live streams (issue 13): `GET` of the list with `Accept: text/event-stream`, through the real
//! application on a real port, with the switch feed writing real calls and PostgreSQL's own
//! notifications telling the instance what changed.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

const STREAM: &str = "text/event-stream";

/// One server-sent event.
#[derive(Debug, Clone)]
struct Event {
    id: String,
    event: String,
    data: Value,
}

impl Event {
    /// Asserts that this is the `upsert` of call `id`.
    #[track_caller]
    fn assert_upsert_of(&self, id: &str, context: &str) {
        assert_eq!(
            (self.event.as_str(), &self.data["id"]),
            ("upsert", &json!(id)),
            "{context}: {self:?}"
        );
    }
}

/// A client of one stream: its response, read as it arrives.
struct Stream {
    response: reqwest::Response,
    buffer: String,
    heartbeats: usize,
    ended: bool,
}

impl Stream {
    async fn open(app: &TestApp, path: &str, token: &str) -> Stream {
        Self::open_after(app, path, token, None).await
    }

    async fn open_after(app: &TestApp, path: &str, token: &str, last: Option<&str>) -> Stream {
        let response = Self::request(app, path, token, last).await;
        assert_eq!(response.status(), 200, "a stream opens with 200");
        let headers = response.headers();
        assert_eq!(headers["content-type"], STREAM);
        assert_eq!(headers["cache-control"], "no-cache");
        assert_eq!(headers["x-accel-buffering"], "no");
        Stream {
            response,
            buffer: String::new(),
            heartbeats: 0,
            ended: false,
        }
    }

    async fn request(
        app: &TestApp,
        path: &str,
        token: &str,
        last: Option<&str>,
    ) -> reqwest::Response {
        let mut request = app
            .client
            .get(app.url(path))
            .header("Accept", STREAM)
            .bearer_auth(token);
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last);
        }
        request.send().await.expect("GET of a stream")
    }

    /// The next event, or `None` when none comes within `wait` or the stream ended.
    async fn next_within(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..at + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.to_string();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    } else if line.starts_with(": heartbeat") {
                        self.heartbeats += 1;
                    }
                }
                if event.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return Some(Event { id, event, data });
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(bytes))) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(_) => self.ended = true,
            }
        }
    }

    async fn next(&mut self) -> Event {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("an event within 5 s")
    }

    /// Asserts that nothing but heartbeats comes for `quiet`.
    async fn assert_quiet(&mut self, quiet: Duration) {
        if let Some(e) = self.next_within(quiet).await {
            panic!("no event expected, got {e:?}");
        }
    }

    /// Waits until the server ends the stream; how long it took.
    async fn wait_end(&mut self, wait: Duration) -> Result<Duration, Vec<Event>> {
        let started = Instant::now();
        let mut seen = Vec::new();
        while started.elapsed() < wait {
            match self
                .next_within(wait.saturating_sub(started.elapsed()))
                .await
            {
                Some(e) => seen.push(e),
                None if self.ended => return Ok(started.elapsed()),
                None => break,
            }
        }
        Err(seen)
    }
}

/// A report that puts a call on Alice's extension `0003*210` alone (status 4: ringing).
fn alice_call(id: &str, sequence: i64, status: i64) -> Value {
    json!({
        "id": id,
        "sequence": sequence,
        "extension": "0003*210",
        "published": "2026-11-28T14:40:28Z",
        "nonce": format!("n-{sequence}"),
        "phoneCallView": [
            {"id": "00", "extension": "0003*210", "source": ["0003*210"], "destination": ["+44 20 7946 0000"],
             "flow": 2, "status": status, "ringing": "2026-11-28T14:40:29Z"}
        ]
    })
}

fn ended(mut report: Value) -> Value {
    report["ended"] = json!("2026-11-28T14:45:00Z");
    report
}

async fn report(app: &TestApp, switch: &str, body: &Value) {
    let id = body["id"].as_str().unwrap();
    let response = app.put_report(switch, id, body).await;
    assert!(
        response.status().is_success(),
        "report: {}",
        response.status()
    );
}

/// Reports, then waits until the instance has taken the change into a read of its own. Changes
/// notified while a read is under way are read together in the next one (a stream then sends
/// only the latest state): tests that count on one batch per report wait for each.
async fn report_read_alone(app: &TestApp, switch: &str, body: &Value) {
    let before = app.streams.reads();
    report(app, switch, body).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.streams.reads() == before {
        assert!(Instant::now() < deadline, "the change was never read");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The list's page for the same request, as a plain GET answers it.
async fn page(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app
        .get_with_authorization(path, &format!("Bearer {token}"))
        .await;
    if response.status() == 204 {
        return Value::Null;
    }
    response.json().await.unwrap()
}

/// The entry of `id` in the list's page for `path`.
async fn entry(app: &TestApp, path: &str, token: &str, id: &str) -> Value {
    let page = page(app, path, token).await;
    page["entry"]
        .as_array()
        .and_then(|e| e.iter().find(|c| c["id"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

struct Setup {
    app: TestApp,
    f: Fixture,
    switch: String,
}

async fn setup(overrides: &[(&str, &str)]) -> Setup {
    let db = test_db().await;
    let mut all = vec![("STREAM_HEARTBEAT_MS", "300")];
    all.extend_from_slice(overrides);
    let settings = settings_with(&db.url, &all);
    let app = spawn_app_on(db, settings).await;
    let f = fixture(app.pool()).await;
    let switch = token_for(app.pool(), f.switch).await;
    Setup { app, f, switch }
}

#[tokio::test]
async fn a_stream_starts_with_the_page_then_sends_each_change_as_the_list_would_show_it() {
    let Setup { app, f, switch } = setup(&[]).await;
    let alice = token_for(app.pool(), f.alice).await;
    let before = new_call_id();
    report(&app, &switch, &alice_call(&before, 1, 4)).await;
    let path = "/uapi/phoneCalls/@me/@self/?count=10";

    let mut stream = Stream::open(&app, path, &alice).await;
    let snapshot = stream.next().await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(
        snapshot.data,
        page(&app, path, &alice).await,
        "the page, exactly"
    );
    assert_eq!(snapshot.data["totalResults"], 1);

    // A new report of the snapshot's call that leaves its JSON as it was: the client holds that
    // state already, so no event (the next one is the new call's).
    let mut same = alice_call(&before, 2, 4);
    same["nonce"] = json!("n-1");
    report_read_alone(&app, &switch, &same).await;

    let id = new_call_id();
    report(&app, &switch, &alice_call(&id, 1, 4)).await;
    let upsert = stream.next().await;
    assert_eq!(upsert.event, "upsert");
    assert_eq!(upsert.data, entry(&app, path, &alice, &id).await);

    report(&app, &switch, &alice_call(&id, 2, 5)).await;
    let changed = stream.next().await;
    assert_eq!(changed.event, "upsert");
    assert_eq!(changed.data["phoneCallView"][0]["status"], 5);
    assert_eq!(changed.data, entry(&app, path, &alice, &id).await);

    // A replay changes nothing: no event.
    report(&app, &switch, &alice_call(&id, 2, 5)).await;
    report(&app, &switch, &ended(alice_call(&id, 3, 5))).await;
    let removed = stream.next().await;
    assert_eq!(removed.event, "remove");
    assert_eq!(removed.data, json!({ "id": id }));

    // Event ids are one stream's cursor, increasing.
    let numbers: Vec<u64> = [&snapshot, &upsert, &changed, &removed]
        .iter()
        .map(|e| e.id.rsplit_once('-').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(numbers, vec![0, 1, 2, 3]);
    let key = snapshot.id.split_once('-').unwrap().0;
    assert!(removed.id.starts_with(key));

    // Heartbeats keep it open while nothing happens.
    stream.assert_quiet(Duration::from_millis(800)).await;
    assert!(stream.heartbeats >= 2, "heartbeats: {}", stream.heartbeats);
}

#[tokio::test]
async fn streams_see_only_what_their_list_shows() {
    let Setup { app, f, switch } = setup(&[]).await;
    let tokens = [
        token_for(app.pool(), f.alice).await,
        token_for(app.pool(), f.bob).await,
        token_for(app.pool(), f.carol).await,
        token_for(app.pool(), f.org_account).await,
        token_for(app.pool(), f.admin).await,
    ];
    let [alice, bob, carol, org, admin] = &tokens;
    let mut alices = Stream::open(&app, "/uapi/phoneCalls/@me/@self/", alice).await;
    let mut bobs = Stream::open(&app, "/uapi/phoneCalls/@me/@self/", bob).await;
    let mut carols = Stream::open(&app, "/uapi/phoneCalls/@me/@self/", carol).await;
    let mut orgs = Stream::open(&app, "/uapi/phoneCalls/@owner/@self/", org).await;
    // An admin, filtered on the view's status: 5 only.
    let mut admins = Stream::open(
        &app,
        "/uapi/phoneCalls/@owner/@self/?filterBy=status&filterValue=5&fields=id,extension",
        admin,
    )
    .await;
    for stream in [&mut alices, &mut bobs, &mut carols, &mut orgs, &mut admins] {
        let snapshot = stream.next().await;
        assert_eq!(snapshot.event, "snapshot");
        assert_eq!(snapshot.data["entry"], json!([]));
        assert_eq!(snapshot.data["totalResults"], 0);
    }

    let id = new_call_id();
    report(&app, &switch, &alice_call(&id, 1, 4)).await;
    assert_eq!(alices.next().await.event, "upsert");
    assert_eq!(orgs.next().await.event, "upsert");

    // Now answered (status 5): the admin's filter matches, with its fields only.
    report(&app, &switch, &alice_call(&id, 2, 5)).await;
    assert_eq!(alices.next().await.event, "upsert");
    assert_eq!(orgs.next().await.event, "upsert");
    let matched = admins.next().await;
    assert_eq!(matched.event, "upsert");
    assert_eq!(matched.data, json!({"id": id, "extension": "0003*210"}));

    // Back to ringing: off the admin's list.
    report(&app, &switch, &alice_call(&id, 3, 4)).await;
    assert_eq!(alices.next().await.event, "upsert");
    assert_eq!(orgs.next().await.event, "upsert");
    let gone = admins.next().await;
    assert_eq!(
        (gone.event.as_str(), &gone.data),
        ("remove", &json!({"id": id}))
    );

    // The call moves to Bob's extension: it leaves Alice's list and comes onto Bob's.
    let mut moved = alice_call(&id, 4, 4);
    moved["extension"] = json!("0003*211");
    moved["phoneCallView"][0]["extension"] = json!("0003*211");
    report(&app, &switch, &moved).await;
    assert_eq!(alices.next().await.event, "remove");
    assert_eq!(bobs.next().await.event, "upsert");
    assert_eq!(orgs.next().await.event, "upsert");

    // Carol, of another organization, heard of none of it; nor did the admin since.
    carols.assert_quiet(Duration::from_millis(500)).await;
    admins.assert_quiet(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_stream_is_refused_as_the_list_is_before_it_starts() {
    let Setup { app, f, .. } = setup(&[]).await;
    let alice = token_for(app.pool(), f.alice).await;
    let get = |path: &str, token: Option<&str>| {
        let mut request = app.client.get(app.url(path)).header("Accept", STREAM);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let response = get("/uapi/phoneCalls/@me/@self/", None).await.unwrap();
    assert_error(response, 401, "access_denied").await;
    let response = get("/uapi/phoneCalls/@me/@self/", Some("not-a-token"))
        .await
        .unwrap();
    assert_error(response, 401, "access_denied").await;
    let response = get(
        &format!("/uapi/phoneCalls/{}/@self/", f.carol),
        Some(&alice),
    )
    .await
    .unwrap();
    assert_error(response, 400, "user_invalid").await;
    let response = get("/uapi/phoneCalls/@me/999/", Some(&alice))
        .await
        .unwrap();
    assert_error(response, 400, "extension_invalid").await;
    let response = get("/uapi/phoneCalls/@me/@self/?filterBy=nope", Some(&alice))
        .await
        .unwrap();
    assert_error(response, 400, "filterby_invalid").await;
    let response = get("/uapi/phoneCalls/@me/@self/?fields=", Some(&alice))
        .await
        .unwrap();
    assert_error(response, 400, "fields_invalid").await;

    // A browser's EventSource cannot send headers: the token comes in the query.
    let response = app
        .client
        .get(app.url(&format!(
            "/uapi/phoneCalls/@me/@self/?accessRequestToken={alice}"
        )))
        .header("Accept", STREAM)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], STREAM);
    // Without the Accept header, the same request is a page.
    let response = app
        .get_with_authorization("/uapi/phoneCalls/@me/@self/", &format!("Bearer {alice}"))
        .await;
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn last_event_id_resumes_with_exactly_the_missed_events_or_starts_over() {
    let Setup { app, f, switch } = setup(&[]).await;
    let alice = token_for(app.pool(), f.alice).await;
    let path = "/uapi/phoneCalls/@me/@self/";
    let (a, b) = (new_call_id(), new_call_id());
    let mut stream = Stream::open(&app, path, &alice).await;
    let snapshot = stream.next().await;
    report(&app, &switch, &alice_call(&a, 1, 4)).await;
    let first = stream.next().await;
    assert_eq!(first.event, "upsert");
    drop(stream);

    // While the client is away: a changes, b starts, a ends.
    report_read_alone(&app, &switch, &alice_call(&a, 2, 5)).await;
    report_read_alone(&app, &switch, &alice_call(&b, 1, 4)).await;
    report_read_alone(&app, &switch, &ended(alice_call(&a, 3, 5))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut resumed = Stream::open_after(&app, path, &alice, Some(&first.id)).await;
    let got: Vec<(String, Value)> = {
        let mut got = Vec::new();
        while let Some(e) = resumed.next_within(Duration::from_millis(700)).await {
            got.push((e.event.clone(), e.data["id"].clone()));
        }
        got
    };
    assert_eq!(
        got,
        vec![
            ("upsert".to_string(), json!(a)),
            ("upsert".to_string(), json!(b)),
            ("remove".to_string(), json!(a)),
        ],
        "exactly the changes since the cursor, no snapshot"
    );

    // A cursor this instance does not know (another instance's, or one forgotten): `reset`,
    // then a new snapshot, on a stream of its own.
    let mut other = Stream::open_after(&app, path, &alice, Some("00000000000000ff-3")).await;
    let reset = other.next().await;
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data, json!({"reason": "cursor_unknown"}));
    let fresh = other.next().await;
    assert_eq!(fresh.event, "snapshot");
    assert_eq!(fresh.data["totalResults"], 1, "b is live");
    assert_ne!(
        fresh.id.split_once('-').unwrap().0,
        snapshot.id.split_once('-').unwrap().0
    );
}

#[tokio::test]
async fn each_notification_is_read_once_whatever_the_number_of_streams() {
    let Setup { app, f, switch } = setup(&[]).await;
    let accounts = [
        f.alice,
        f.alice,
        f.bob,
        f.carol,
        f.org_account,
        f.admin,
        f.admin,
    ];
    let mut streams = Vec::new();
    for (i, account) in accounts.into_iter().enumerate() {
        let token = token_for(app.pool(), account).await;
        let path = if i % 2 == 0 {
            "/uapi/phoneCalls/@me/@self/"
        } else {
            "/uapi/phoneCalls/@owner/@self/?filterBy=status&filterValue=4"
        };
        let mut stream = Stream::open(&app, path, &token).await;
        assert_eq!(stream.next().await.event, "snapshot");
        streams.push(stream);
    }
    let reads_before = app.streams.reads();
    // One batch of five calls: one statement, so one notification, so one read.
    let ids: Vec<String> = (0..5).map(|_| new_call_id()).collect();
    let reports: Vec<Value> = ids.iter().map(|id| alice_call(id, 1, 4)).collect();
    let response = app.post_batch(&switch, &reports).await;
    assert_eq!(response.status(), 200);
    // Alice's two streams, the organization's and the admin's see the five calls; Bob and
    // Carol see none.
    for (i, stream) in streams.iter_mut().enumerate() {
        let expected = match i {
            0 | 1 | 4 | 5 | 6 => 5,
            _ => 0,
        };
        let mut seen = 0;
        while let Some(e) = stream.next_within(Duration::from_millis(400)).await {
            assert_eq!(e.event, "upsert");
            seen += 1;
        }
        assert_eq!(seen, expected, "stream {i}");
    }
    assert_eq!(
        app.streams.reads() - reads_before,
        1,
        "one read for seven streams"
    );
}

#[tokio::test]
async fn a_change_of_accounts_makes_streams_start_over_with_what_they_may_see_now() {
    let Setup { app, f, switch } = setup(&[]).await;
    let alice = token_for(app.pool(), f.alice).await;
    let mut stream = Stream::open(&app, "/uapi/phoneCalls/@me/@self/", &alice).await;
    assert_eq!(stream.next().await.event, "snapshot");
    phonecalls::accounts::create_extension(app.pool(), f.alice, "212")
        .await
        .unwrap();
    let reset = stream.next().await;
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data, json!({"reason": "accounts_changed"}));
    assert_eq!(stream.next().await.event, "snapshot");
    // The new extension is Alice's: its calls come onto her stream.
    let id = new_call_id();
    let mut on_212 = alice_call(&id, 1, 4);
    on_212["extension"] = json!("0003*212");
    on_212["phoneCallView"][0]["extension"] = json!("0003*212");
    report(&app, &switch, &on_212).await;
    stream
        .next()
        .await
        .assert_upsert_of(&id, "the call moved onto the path");
}

#[tokio::test]
async fn streams_beyond_the_limits_are_refused_with_503_and_retry_after() {
    // Heartbeats far apart: a client that leaves is noticed without a write.
    let Setup { app, f, .. } = setup(&[
        ("MAX_STREAMS", "2"),
        ("MAX_STREAMS_PER_TOKEN", "1"),
        ("STREAM_HEARTBEAT_MS", "15000"),
    ])
    .await;
    let alice = token_for(app.pool(), f.alice).await;
    let bob = token_for(app.pool(), f.bob).await;
    let carol = token_for(app.pool(), f.carol).await;
    let path = "/uapi/phoneCalls/@me/@self/";
    let mut first = Stream::open(&app, path, &alice).await;
    first.next().await;
    let again = Stream::request(&app, path, &alice, None).await;
    let headers = assert_error(again, 503, "service_unavailable").await;
    assert!(headers.contains_key("retry-after"));
    let mut bobs = Stream::open(&app, path, &bob).await;
    bobs.next().await;
    let third = Stream::request(&app, path, &carol, None).await;
    let headers = assert_error(third, 503, "service_unavailable").await;
    assert!(headers.contains_key("retry-after"));
    // Pages are not streams: they are still served.
    let page = app
        .get_with_authorization(path, &format!("Bearer {carol}"))
        .await;
    assert_eq!(page.status(), 204);
    // A stream whose client leaves gives its place back within a second or so.
    drop(first);
    let deadline = Instant::now() + Duration::from_millis(2500);
    loop {
        let response = Stream::request(&app, path, &carol, None).await;
        if response.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the place never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn revoking_or_expiry_of_the_token_closes_its_streams_within_a_second() {
    let Setup { app, f, switch } = setup(&[]).await;
    let alice = token_for(app.pool(), f.alice).await;
    let bob = token_for(app.pool(), f.bob).await;
    let path = "/uapi/phoneCalls/@me/@self/";
    let mut revoked = Stream::open(&app, path, &alice).await;
    let mut kept = Stream::open(&app, path, &bob).await;
    revoked.next().await;
    kept.next().await;
    phonecalls::accounts::revoke_token(app.pool(), &alice)
        .await
        .unwrap();
    let took = revoked
        .wait_end(Duration::from_secs(1))
        .await
        .expect("the revoked token's stream ends within 1 s");
    assert!(took < Duration::from_secs(1));
    // Bob's stream goes on.
    let id = new_call_id();
    let mut bobs_call = alice_call(&id, 1, 4);
    bobs_call["extension"] = json!("0003*211");
    bobs_call["phoneCallView"][0]["extension"] = json!("0003*211");
    report(&app, &switch, &bobs_call).await;
    assert_eq!(kept.next().await.event, "upsert");
    // A revoked token cannot open another.
    let again = Stream::request(&app, path, &alice, None).await;
    assert_error(again, 401, "access_denied").await;

    // A token that expires: its stream ends when it does.
    let short = phonecalls::accounts::issue_token(app.pool(), f.alice, Duration::from_secs(2))
        .await
        .unwrap()
        .access_token;
    let opened = Instant::now();
    let mut expiring = Stream::open(&app, path, &short).await;
    expiring.next().await;
    expiring
        .wait_end(Duration::from_secs(4))
        .await
        .expect("the stream ends with its token");
    let lived = opened.elapsed();
    assert!(
        lived > Duration::from_millis(900) && lived < Duration::from_millis(3000),
        "{lived:?}"
    );
}

#[tokio::test]
async fn shutting_down_ends_streams_at_once_and_refuses_new_ones() {
    let Setup { app, f, .. } = setup(&[("SHUTDOWN_DELAY_SECONDS", "1")]).await;
    let alice = token_for(app.pool(), f.alice).await;
    let path = "/uapi/phoneCalls/@me/@self/";
    let mut stream = Stream::open(&app, path, &alice).await;
    stream.next().await;
    // What SIGTERM runs (`startup::ShutdownHandle`).
    let shutdown = app.shutdown.clone();
    let stopping = tokio::spawn(async move { shutdown.shutdown().await });
    let took = stream
        .wait_end(Duration::from_millis(500))
        .await
        .expect("the stream ends as the shutdown starts");
    assert!(took < Duration::from_millis(500));
    // During the shutdown delay the instance still answers, but takes no new stream.
    let refused = Stream::request(&app, path, &alice, None).await;
    assert_error(refused, 503, "service_unavailable").await;
    let started = Instant::now();
    stopping.await.unwrap();
    // The drain (5 s here) did not wait for any stream.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A report whose JSON is large (32 views of 16 long numbers each, some 40 KB as the list shows
/// it): a few of them fill a socket's buffers.
fn large_call(id: &str) -> Value {
    let numbers: Vec<String> = (0..16)
        .map(|i| format!("+44 20 7946 {i:04} 0000000000000000000000"))
        .collect();
    let views: Vec<Value> = (0..32)
        .map(|v| {
            json!({"id": format!("{v:02}"), "extension": "0003*210", "source": numbers,
                   "destination": numbers, "flow": 2, "status": 4})
        })
        .collect();
    json!({"id": id, "sequence": 1, "extension": "0003*210", "published": "2026-11-28T14:40:28Z",
           "phoneCallView": views})
}

/// Opens a stream on a raw connection and reads nothing.
async fn raw_stream(app: &TestApp, token: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address = app.address.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /uapi/phoneCalls/@owner/@self/ HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    socket
}

/// Reads a connection to its end, bounded by `wait`; what it read, or `None` if it never ended.
async fn read_to_end(socket: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    let mut buffer = vec![0u8; 1 << 16];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&all).into_owned()),
            Ok(Ok(n)) => all.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test]
async fn a_client_that_cannot_keep_up_is_reset_and_disconnected() {
    let Setup { app, f, switch } = setup(&[
        ("STREAM_QUEUE", "2"),
        // Long enough for the paused client to come back however slowly the reports went in
        // (it is told `too_slow` only if it reads within the write timeout of being found so).
        ("WRITE_TIMEOUT_MS", "6000"),
        ("STREAM_HEARTBEAT_MS", "15000"),
    ])
    .await;
    let admin = token_for(app.pool(), f.admin).await;
    // One client never reads again; the other stops for a second, then reads everything.
    let mut stuck = raw_stream(&app, &admin).await;
    let mut paused = raw_stream(&app, &admin).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.streams.streams_open() < 2 {
        assert!(Instant::now() < deadline, "the streams never opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Some 40 MB of upserts for each stream, in ten notifications.
    for _ in 0..10 {
        let reports: Vec<Value> = (0..25).map(|_| large_call(&new_call_id())).collect();
        let response = app.post_batch(&switch, &reports).await;
        assert_eq!(response.status(), 200);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let read = read_to_end(&mut paused, Duration::from_secs(10))
        .await
        .expect("the slow client's stream ends");
    // (The raw bytes are chunked: the last event is what follows the last `event:`.)
    let last = read.rsplit("event: ").next().unwrap_or_default();
    assert!(
        last.starts_with("reset") && last.contains("too_slow"),
        "its last event is a reset: {}",
        &last[..last.len().min(300)]
    );
    assert!(read.ends_with("0\r\n\r\n"), "and the response ended");
    // The client that never reads is cut off within the write timeout (twice, at most: one
    // wait for the event, one for the connection to take the reset); its memory goes with it.
    let started = Instant::now();
    while app.streams.streams_open() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "a stuck stream was kept"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        read_to_end(&mut stuck, Duration::from_secs(10))
            .await
            .is_some(),
        "the stuck client's connection was closed"
    );
    assert!(!app.streams.is_followed(), "a too slow stream is not kept");
}

#[tokio::test]
async fn another_tokens_cursor_resumes_nothing_and_disturbs_nothing() {
    let Setup { app, f, switch } = setup(&[]).await;
    let alice = token_for(app.pool(), f.alice).await;
    let org = token_for(app.pool(), f.org_account).await;
    let path = "/uapi/phoneCalls/@me/@self/";
    let mut alices = Stream::open(&app, path, &alice).await;
    let snapshot = alices.next().await;
    // The organization's account sees Alice's calls too, but her stream is hers.
    let mut intruder = Stream::open_after(&app, path, &org, Some(&snapshot.id)).await;
    assert_eq!(intruder.next().await.event, "reset");
    assert_eq!(intruder.next().await.event, "snapshot");
    // Alice's stream is still connected and goes on.
    let id = new_call_id();
    report(&app, &switch, &alice_call(&id, 1, 4)).await;
    assert_eq!(alices.next().await.data["id"], json!(id));
    assert_eq!(intruder.next().await.data["id"], json!(id));
    // Parked, it is still not the other token's to take.
    let last = alices.next_within(Duration::from_millis(100)).await;
    assert!(last.is_none());
    drop(alices);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = Stream::open_after(&app, path, &org, Some(&snapshot.id)).await;
    assert_eq!(again.next().await.event, "reset");
    let mut back = Stream::open_after(&app, path, &alice, Some(&snapshot.id)).await;
    back.next()
        .await
        .assert_upsert_of(&id, "Alice resumes where she was");
}

#[tokio::test]
async fn once_no_stream_is_left_the_instance_reads_no_more_changes() {
    let Setup { app, f, switch } = setup(&[("STREAM_RESUME_SECONDS", "1")]).await;
    let alice = token_for(app.pool(), f.alice).await;
    let mut stream = Stream::open(&app, "/uapi/phoneCalls/@me/@self/", &alice).await;
    stream.next().await;
    report(&app, &switch, &alice_call(&new_call_id(), 1, 4)).await;
    assert_eq!(stream.next().await.event, "upsert");
    assert!(app.streams.reads() >= 1);
    drop(stream);
    // Gone, then kept for a second for its client to resume, then forgotten.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.streams.is_followed() {
        assert!(
            Instant::now() < deadline,
            "a closed stream is still followed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reads = app.streams.reads();
    for sequence in 1..=3 {
        report(&app, &switch, &alice_call(&new_call_id(), sequence, 4)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.streams.reads(), reads, "changes read for nobody");
}

#[tokio::test]
async fn a_resumed_stream_that_missed_too_much_while_away_starts_over_on_the_same_connection() {
    let Setup { app, f, switch } = setup(&[("STREAM_QUEUE", "2")]).await;
    let alice = token_for(app.pool(), f.alice).await;
    let path = "/uapi/phoneCalls/@me/@self/";
    let mut stream = Stream::open(&app, path, &alice).await;
    let snapshot = stream.next().await;
    drop(stream);
    // Noticed gone (within a second) and kept; then more changes than STREAM_QUEUE, one
    // notification each.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..4 {
        report_read_alone(&app, &switch, &alice_call(&new_call_id(), 1, 4)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut back = Stream::open_after(&app, path, &alice, Some(&snapshot.id)).await;
    let reset = back.next().await;
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data, json!({"reason": "changes_lost"}));
    let fresh = back.next().await;
    assert_eq!(fresh.event, "snapshot");
    assert_eq!(fresh.data, page(&app, path, &alice).await);
    assert_eq!(fresh.data["totalResults"], 4);
    let id = new_call_id();
    report(&app, &switch, &alice_call(&id, 1, 4)).await;
    assert_eq!(back.next().await.data["id"], json!(id), "and it goes on");
}

#[tokio::test]
async fn a_stream_whose_start_was_held_up_loses_nothing_and_goes_on() {
    let Setup { app, f, switch } = setup(&[("STREAM_QUEUE", "2")]).await;
    let alice = token_for(app.pool(), f.alice).await;
    let path = "/uapi/phoneCalls/@me/@self/";
    // Both tokens and the path resolved once and cached: only the stream's own check of its
    // token reads `access_tokens`, and the lock below holds the stream there.
    page(&app, path, &alice).await;
    report(&app, &switch, &alice_call(&new_call_id(), 1, 4)).await;
    let mut lock = app.pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE access_tokens IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let opening = Stream::open(&app, path, &alice);
    let meanwhile = async {
        let deadline = Instant::now() + Duration::from_secs(5);
        while app.streams.streams_open() == 0 {
            assert!(Instant::now() < deadline, "the stream never began");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Four batches for a queue of two, while the stream waits for its token.
        for _ in 0..4 {
            report_read_alone(&app, &switch, &alice_call(&new_call_id(), 1, 4)).await;
        }
        lock.commit().await.unwrap();
    };
    let (mut stream, ()) = tokio::join!(opening, meanwhile);
    // What it missed was older than its snapshot, which shows it all; then it goes on.
    let snapshot = stream.next().await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data["totalResults"], 5);
    let id = new_call_id();
    report(&app, &switch, &alice_call(&id, 1, 4)).await;
    stream.next().await.assert_upsert_of(&id, "and it goes on");
}

#[tokio::test]
async fn a_change_written_through_one_instance_reaches_the_streams_of_every_instance() {
    let db = test_db().await;
    let url = db.url.clone();
    let settings = || settings_with(&url, &[("STREAM_HEARTBEAT_MS", "300")]);
    let writer = spawn_app_on(db, settings()).await;
    let f = fixture(writer.pool()).await;
    let mut instances = vec![writer];
    for _ in 0..2 {
        let same = instances[0].same_database();
        instances.push(spawn_app_on(same, settings()).await);
    }
    let switch = token_for(instances[0].pool(), f.switch).await;
    let alice = token_for(instances[0].pool(), f.alice).await;
    let org = token_for(instances[0].pool(), f.org_account).await;
    // On each instance, Alice's stream and the organization's.
    let mut streams = Vec::new();
    for app in &instances {
        for (token, path) in [
            (&alice, "/uapi/phoneCalls/@me/@self/"),
            (&org, "/uapi/phoneCalls/@owner/@self/"),
        ] {
            let mut stream = Stream::open(app, path, token).await;
            assert_eq!(stream.next().await.event, "snapshot");
            streams.push(stream);
        }
    }
    // Reports through the first instance only (the balancer sent them there). Each is awaited
    // on every stream before the next: an instance that reads both notifications at once has
    // only the ended call to tell, which its clients never held, and rightly sends nothing.
    let id = new_call_id();
    report(&instances[0], &switch, &alice_call(&id, 1, 4)).await;
    for (i, stream) in streams.iter_mut().enumerate() {
        let context = format!("stream {i} (instance {})", i / 2);
        stream.next().await.assert_upsert_of(&id, &context);
    }
    report(&instances[0], &switch, &ended(alice_call(&id, 2, 4))).await;
    for (i, stream) in streams.iter_mut().enumerate() {
        let removed = stream.next().await;
        assert_eq!(
            (removed.event.as_str(), &removed.data),
            ("remove", &json!({ "id": id })),
            "stream {i} (instance {})",
            i / 2
        );
    }
    // Each instance read the changes for its own streams: once per notification.
    for (i, app) in instances.iter().enumerate() {
        assert_eq!(app.streams.reads(), 2, "instance {i}");
    }
}
