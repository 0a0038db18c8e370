//! A seeded, reproducible fuzz test over every endpoint of the real application: thousands of
//! generated HTTP requests, most of them invalid, sent concurrently over real connections as raw
//! HTTP/1.1 (so that invalid UTF-8, NUL bytes, control characters, duplicate headers and bare CRs
//! reach the server exactly as generated). It asserts that
//!
//! 1. nothing answers 500, and no 5xx is answered but 503 `service_unavailable` and the 501
//!    `request_not_implemented` the contract gives POST/PUT/DELETE on the list (spec §2.4);
//! 2. every error has its documented shape: the envelope `{"error":{"code","message"}}` with a
//!    JSON content type and a request id everywhere, RFC 6749 §5.2 bodies on `POST /oauth/token…`
//!    (also for an over-size form, which is 400 `invalid_request`);
//! 3. no error message names a table, constraint or index of the database, nor carries SQL;
//! 4. a refused request stores nothing: the row counts of every table change exactly by what the
//!    accepted requests (tokens issued, reports applied) account for;
//!
//! and that a few things the contract says are invalid are refused: a JSON body with a duplicate
//! key, a list parameter given twice or holding a control character.
//!
//! `FUZZ_SEED` picks the sequence (default `DEFAULT_SEED`), `FUZZ_REQUESTS` its length (default
//! 5000). A failure prints the seed and the index of each offending request, which the same seed
//! generates again (only tokens and client credentials, which are random, differ).
//! Requests that are not valid HTTP/1.1 (NUL or raw non-ASCII in the target, control characters
//! or bare CRs in headers, conflicting framing) may be refused by the HTTP layer itself before
//! any route is chosen: for those, a bare 4xx without a request id, or a closed connection, is
//! accepted; whatever reaches the application (it carries a request id) is checked in full.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use phonecalls::accounts::{self, CreatedApp, Role};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const DEFAULT_SEED: u64 = 20_261_128;
const DEFAULT_REQUESTS: usize = 5000;
/// Requests in flight at once.
const CONCURRENCY: usize = 16;
/// Longest wait for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// Offenders printed per kind of failure.
const SHOWN_PER_KIND: usize = 3;

const FORM_LIMIT: usize = 16 * 1024;
const SINGLE_LIMIT: usize = 256 * 1024;
const BATCH_LIMIT: usize = 4 * 1024 * 1024;

/// Every table whose row count must not move but by the accepted requests.
const TABLES: [&str; 7] = [
    "phone_calls",
    "phone_call_views",
    "access_tokens",
    "apps",
    "users",
    "extensions",
    "organizations",
];

/// Schema names that are also ordinary English words and appear in legitimate messages; they
/// are not looked for. None clashes today: `users`, `apps`, `extensions` and `organizations`
/// are looked for like every other name, in any case.
const ENGLISH_WORDS: [&str; 0] = [];

/// SQL keywords looked for as whole, upper-case words.
const SQL_KEYWORDS: [&str; 11] = [
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "FROM",
    "WHERE",
    "JOIN",
    "RETURNING",
    "CONFLICT",
    "VALUES",
    "INTO",
];

/// Text of PostgreSQL, driver or panic messages, looked for case-insensitively.
const LEAK_PHRASES: [&str; 17] = [
    "violates",
    "duplicate key",
    "syntax error",
    "sqlx",
    "postgres",
    "sqlstate",
    "pg_",
    "relation \"",
    "constraint \"",
    "foreign key",
    "unique constraint",
    "check constraint",
    "null value in column",
    "invalid byte sequence",
    "panicked",
    "src/",
    ".rs:",
];

/// The list parameters (names are case-sensitive).
const LIST_PARAMS: [&str; 10] = [
    "count",
    "startIndex",
    "filterBy",
    "filterOp",
    "filterValue",
    "sortBy",
    "sortOrder",
    "updatedSince",
    "fields",
    "accessRequestToken",
];

const REPORT_KEYS: [&str; 8] = [
    "id",
    "sequence",
    "extension",
    "published",
    "answered",
    "ended",
    "nonce",
    "phoneCallView",
];

const VIEW_KEYS: [&str; 16] = [
    "id",
    "extension",
    "source",
    "destination",
    "flow",
    "status",
    "ringing",
    "callerId",
    "recording",
    "answered",
    "parked",
    "parkedPos",
    "parkedBy",
    "onHold",
    "holder",
    "disposition",
];

/// Live calls reported before the run, which the generated list requests ask for.
const SEEDED_CALLS: [&str; 4] = [
    "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
    "0b7e4d3c-9a57-4c1f-8e2d-4b113f2c9a56",
    "9a576c1f-0e2d-4b11-83f2-c9a560b7e4d3",
    "c9a560b7-e4d3-4c9a-976c-1f0e2d4b113f",
];

// ---------------------------------------------------------------------------------------------
// The accounts, tokens and calls the requests are generated over.

struct Tokens {
    alice: String,
    bob: String,
    org: String,
    admin: String,
    carol: String,
    switch: String,
    /// A switch account that serves only the second organization (0007).
    switch_globex: String,
    revoked: String,
    expired: String,
}

struct World {
    /// Numeric ids of existing accounts, as path segments.
    user_ids: Vec<String>,
    tokens: Tokens,
    trusted: CreatedApp,
    untrusted: CreatedApp,
}

impl World {
    fn valid_tokens(&self) -> [&str; 7] {
        let t = &self.tokens;
        [
            &t.alice,
            &t.bob,
            &t.org,
            &t.admin,
            &t.carol,
            &t.switch,
            &t.switch_globex,
        ]
    }
}

async fn setup(app: &TestApp) -> World {
    let pool = app.pool();
    let f = fixture(pool).await;
    let expires_soon = Instant::now() + Duration::from_millis(1200);
    let expired = accounts::issue_token(pool, f.alice, Duration::from_secs(1))
        .await
        .unwrap()
        .access_token;
    let switch_globex = accounts::create_user(pool, "Globex PBX", Role::Switch, Some(f.other_org))
        .await
        .unwrap()
        .id;
    let revoked = token_for(pool, f.bob).await;
    accounts::revoke_token(pool, &revoked).await.unwrap();
    let trusted = accounts::create_app(pool, f.org_account, "Wallboard", true)
        .await
        .unwrap();
    let untrusted = accounts::create_app(pool, f.alice, "Widget", false)
        .await
        .unwrap();
    let tokens = Tokens {
        alice: token_for(pool, f.alice).await,
        bob: token_for(pool, f.bob).await,
        org: token_for(pool, f.org_account).await,
        admin: token_for(pool, f.admin).await,
        carol: token_for(pool, f.carol).await,
        switch: token_for(pool, f.switch).await,
        switch_globex: token_for(pool, switch_globex).await,
        revoked,
        expired,
    };
    for id in SEEDED_CALLS {
        let response = app
            .put_report(&tokens.switch, id, &first_report(id, 1))
            .await;
        assert_eq!(response.status(), 201, "seeding call {id}");
    }
    tokio::time::sleep_until(expires_soon.into()).await;
    World {
        user_ids: [
            f.alice,
            f.bob,
            f.org_account,
            f.admin,
            f.carol,
            f.switch,
            switch_globex,
        ]
        .iter()
        .map(i64::to_string)
        .collect(),
        tokens,
        trusted,
        untrusted,
    }
}

/// Names of the tables, views, constraints and indexes of the public schema (an index of a
/// unique constraint or a unique index is what PostgreSQL names in a violation message).
async fn schema_names(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'i', 'I')
         UNION
         SELECT co.conname::text FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
          WHERE n.nspname = 'public'
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn row_counts(pool: &PgPool) -> BTreeMap<&'static str, i64> {
    let mut counts = BTreeMap::new();
    for table in TABLES {
        counts.insert(table, count(pool, table).await);
    }
    counts
}

// ---------------------------------------------------------------------------------------------
// Generated requests.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Endpoint {
    Uapi,
    SwitchPut,
    SwitchBatch,
    OAuth,
    Health,
    Unknown,
    RawHttp,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Self::Uapi => "uapi",
            Self::SwitchPut => "switch-put",
            Self::SwitchBatch => "switch-batch",
            Self::OAuth => "oauth",
            Self::Health => "health",
            Self::Unknown => "unknown-route",
            Self::RawHttp => "raw-http",
        }
    }
}

/// One generated request and what its answer must satisfy beyond the general rules.
struct Case {
    endpoint: Endpoint,
    method: String,
    /// The complete request as written to the socket.
    bytes: Vec<u8>,
    /// Where the body starts in `bytes`.
    body_at: usize,
    /// The body as the application reads it (de-chunked), for accounting accepted reports.
    body: Vec<u8>,
    /// `POST /oauth/token.php` or `/oauth/token`: errors are RFC 6749 bodies.
    oauth: bool,
    /// Not valid HTTP/1.1: the HTTP layer may refuse it before any route.
    malformed: bool,
    /// The status and code (or OAuth `error`) the answer must have, and what the request is.
    expect: Option<(u16, &'static str, &'static str)>,
    /// Why the answer must not be 2xx.
    must_reject: Option<&'static str>,
    /// Batch reports that hold a duplicate JSON key: their results must be refusals.
    dup_reports: Vec<usize>,
    /// Which key was duplicated, and where, for failure messages.
    note: String,
}

/// An Authorization header choice, and what it is.
struct Auth {
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Exactly one `Bearer <token>` of a switch account.
    switch: bool,
}

/// A JSON body and what was done to it.
struct Body {
    bytes: Vec<u8>,
    /// A duplicate key in the object at the top (single report, or batch wrapper).
    dup_top: bool,
    /// Reports of a batch with a duplicate key.
    dup_reports: Vec<usize>,
    /// Which key was duplicated, and where.
    note: String,
    oversize: bool,
}

struct Gen<'a> {
    rng: StdRng,
    w: &'a World,
}

/// Builds a well-formed HTTP/1.1 request: `Host`, the given headers, `Content-Length` and
/// `Connection: close`.
fn http(method: &str, target: &[u8], headers: &[(Vec<u8>, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 512);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

fn header(name: &str, value: impl AsRef<[u8]>) -> (Vec<u8>, Vec<u8>) {
    (name.as_bytes().to_vec(), value.as_ref().to_vec())
}

/// The path of a target (before `?`).
fn path_of(target: &[u8]) -> &[u8] {
    target.split(|&b| b == b'?').next().unwrap_or(target)
}

fn is_oauth(method: &str, target: &[u8]) -> bool {
    method == "POST" && matches!(path_of(target), b"/oauth/token.php" | b"/oauth/token")
}

/// Percent-encodes every byte but ASCII letters, digits and `keep`.
fn enc(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A path segment: `@`, `*`, `.`, `-`, `_` and `~` stay literal.
fn enc_segment(bytes: &[u8]) -> String {
    enc(bytes, b"@*.-_~")
}

impl<'a> Gen<'a> {
    fn new(seed: u64, w: &'a World) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            w,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items
            .choose(&mut self.rng)
            .expect("a non-empty list")
            .clone()
    }

    /// An index drawn with the given weights.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.rng.random_range(0..total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        unreachable!()
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string()
    }

    /// Random bytes: printable ASCII, controls and NUL, bytes that are not UTF-8, multi-byte
    /// characters (including bidi overrides, BOM, zero-width) and URL-special characters.
    fn garbage(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        let mut out = Vec::new();
        while out.len() < len {
            match self.weighted(&[50, 15, 10, 15, 10]) {
                0 => out.push(self.rng.random_range(0x20..0x7f)),
                1 => out.push(self.pick(&[0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f])),
                2 => out.push(self.rng.random_range(0x80..=0xff)),
                3 => {
                    let c = self.pick(&[
                        "é", "中", "😀", "\u{202e}", "\u{feff}", "\u{200b}", "\u{fffd}",
                    ]);
                    out.extend_from_slice(c.as_bytes());
                }
                _ => out.push(self.pick(b"%/*@.\\'\";")),
            }
        }
        out
    }

    fn garbage_string(&mut self, max_len: usize) -> String {
        let bytes = self.garbage(max_len);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// `s` with one control character inserted.
    fn with_control(&mut self, s: &str) -> String {
        let c = self.pick(&[
            '\0', '\u{1}', '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
        ]);
        let boundaries: Vec<usize> = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect();
        let at = self.pick(&boundaries);
        format!("{}{c}{}", &s[..at], &s[at..])
    }

    /// One token with one character changed, dropped or added: never a valid token.
    fn mutated_token(&mut self, token: &str) -> String {
        let mut bytes = token.as_bytes().to_vec();
        let at = self.below(bytes.len());
        match self.below(4) {
            0 => bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' },
            1 => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, b'x'),
            _ => bytes = bytes.to_ascii_uppercase(),
        }
        String::from_utf8(bytes).unwrap()
    }

    /// Any of the valid tokens; `switch_bias` prefers the switch accounts'.
    fn some_token(&mut self, switch_bias: bool) -> (String, bool) {
        let t = &self.w.tokens;
        if switch_bias && self.chance(0.75) {
            if self.chance(0.8) {
                (t.switch.clone(), true)
            } else {
                (t.switch_globex.clone(), true)
            }
        } else {
            let all = self.w.valid_tokens();
            let token = all[self.below(all.len())].to_string();
            let switch = token == t.switch || token == t.switch_globex;
            (token, switch)
        }
    }

    /// An Authorization header (or none, or several) for a bearer endpoint.
    fn bearer_auth(&mut self, switch_bias: bool) -> Auth {
        let auth = |headers, switch| Auth { headers, switch };
        match self.weighted(&[55, 5, 8, 10, 4, 8, 5, 5]) {
            0 => {
                let (token, switch) = self.some_token(switch_bias);
                auth(
                    vec![header("Authorization", format!("Bearer {token}"))],
                    switch,
                )
            }
            1 => {
                let (token, _) = self.some_token(switch_bias);
                let value = match self.below(3) {
                    0 => format!("bearer {token}"),
                    1 => format!("BEARER {token}"),
                    _ => format!("Bearer   {token}  "),
                };
                auth(vec![header("Authorization", value)], false)
            }
            2 => auth(vec![], false),
            3 => {
                let (token, _) = self.some_token(switch_bias);
                let token = self.mutated_token(&token);
                auth(
                    vec![header("Authorization", format!("Bearer {token}"))],
                    false,
                )
            }
            4 => {
                let token = if self.chance(0.5) {
                    self.w.tokens.revoked.clone()
                } else {
                    self.w.tokens.expired.clone()
                };
                auth(
                    vec![header("Authorization", format!("Bearer {token}"))],
                    false,
                )
            }
            5 => {
                let basic = base64::engine::general_purpose::STANDARD.encode("a:b");
                let value = self.pick(&[
                    format!("Basic {basic}"),
                    "Digest username=\"x\"".to_string(),
                    "Token abc".to_string(),
                    String::new(),
                    "Bearer".to_string(),
                    "Bearer ".to_string(),
                    format!("Bearer {}", "a".repeat(4000)),
                    "Bearer pct_".to_string(),
                    "Bearer a%00b".to_string(),
                ]);
                auth(vec![header("Authorization", value)], false)
            }
            6 => {
                let (token, _) = self.some_token(switch_bias);
                let bad = self.mutated_token(&token);
                let mut headers = vec![
                    header("Authorization", format!("Bearer {token}")),
                    header("Authorization", format!("Bearer {bad}")),
                ];
                headers.shuffle(&mut self.rng);
                auth(headers, false)
            }
            _ => {
                // obs-text (bytes 0x80-0xFF) is valid in a header value, but not UTF-8 here.
                let (token, _) = self.some_token(switch_bias);
                let mut value = format!("Bearer {token}").into_bytes();
                let at = self.rng.random_range(7..value.len());
                value.splice(at..at, [0xc3, 0x28, 0xff]);
                auth(vec![(b"Authorization".to_vec(), value)], false)
            }
        }
    }

    /// Headers added to any request now and then: request ids sane and not, content
    /// negotiation, junk.
    fn extra_headers(&mut self, headers: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        if self.chance(0.1) {
            let value: Vec<u8> = match self.below(5) {
                0 => b"lb-1234.abc:def_9".to_vec(),
                1 => "x".repeat(200).into_bytes(),
                2 => b"has space".to_vec(),
                3 => vec![b'r', 0xff, 0xfe],
                _ => b"".to_vec(),
            };
            headers.push((b"X-Request-Id".to_vec(), value));
        }
        if self.chance(0.05) {
            headers.push(header(
                "Accept",
                self.pick(&["text/html", "*/*", "application/xml"]),
            ));
        }
        if self.chance(0.03) {
            headers.push(header("X-Forwarded-For", "127.0.0.1, ::1"));
        }
    }

    fn case(&mut self) -> Case {
        match self.weighted(&[35, 20, 10, 20, 4, 5, 6]) {
            0 => self.uapi(),
            1 => self.switch_put(),
            2 => self.switch_batch(),
            3 => self.oauth(),
            4 => self.health(),
            5 => self.unknown(),
            _ => self.raw(),
        }
    }

    fn finish(
        &mut self,
        endpoint: Endpoint,
        method: &str,
        target: &[u8],
        mut headers: Vec<(Vec<u8>, Vec<u8>)>,
        body: Vec<u8>,
    ) -> Case {
        self.extra_headers(&mut headers);
        let bytes = http(method, target, &headers, &body);
        Case {
            endpoint,
            method: method.to_string(),
            body_at: bytes.len() - body.len(),
            bytes,
            body,
            oauth: is_oauth(method, target),
            malformed: false,
            expect: None,
            must_reject: None,
            dup_reports: Vec::new(),
            note: String::new(),
        }
    }

    // --- /uapi/phoneCalls ---------------------------------------------------------------

    fn uapi_user(&mut self) -> String {
        let ids = self.w.user_ids.clone();
        match self.weighted(&[40, 20, 30, 10]) {
            0 => self.pick(&["@me", "@viewer", "@owner"]).to_string(),
            1 => self.pick(&ids),
            2 => self
                .pick(&[
                    "0",
                    "-1",
                    "01",
                    "+1",
                    "1.0",
                    "999999999",
                    "9223372036854775807",
                    "9223372036854775808",
                    "99999999999999999999",
                    "@ME",
                    "me",
                    "@",
                    "%40me",
                    "@me%00",
                    "@me%20",
                    "@self",
                    "@owner%2F@self",
                    "%00",
                    "%FF",
                    "",
                ])
                .to_string(),
            _ => {
                let g = self.garbage(12);
                enc_segment(&g)
            }
        }
    }

    fn uapi_extension(&mut self) -> String {
        match self.weighted(&[60, 30, 10]) {
            0 => self
                .pick(&["@self", "0003*210", "0003*211", "210", "211", "0007*210"])
                .to_string(),
            1 => self
                .pick(&[
                    "0003%2A210",
                    "99999",
                    "12",
                    "123456",
                    "0003*",
                    "*210",
                    "0003**210",
                    "@SELF",
                    "%00",
                    "210%00",
                    "0003*210%0A",
                    "00003*210",
                    "0003*21a",
                    "%E2%80%8B210",
                    "%D9%A2%D9%A1%D9%A0",
                    "0003*99999",
                ])
                .to_string(),
            _ => {
                let g = self.garbage(12);
                enc_segment(&g)
            }
        }
    }

    fn uapi_call(&mut self) -> String {
        let seeded = self.pick(&SEEDED_CALLS).to_string();
        match self.below(10) {
            0..=3 => seeded,
            4 => self.uuid(),
            5 => seeded.to_uppercase(),
            6 => format!("%7B{seeded}%7D"),
            7 => seeded.replace('-', ""),
            8 => format!("{seeded}%00"),
            _ => self
                .pick(&[
                    "not-a-uuid",
                    "%00",
                    "urn:uuid:6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
                ])
                .to_string(),
        }
    }

    fn uapi_path(&mut self) -> String {
        match self.weighted(&[80, 5, 5, 5, 5]) {
            0 => {
                let mut path = format!(
                    "/uapi/phoneCalls/{}/{}",
                    self.uapi_user(),
                    self.uapi_extension()
                );
                if self.chance(0.4) {
                    path = format!("{path}/{}", self.uapi_call());
                }
                if self.chance(0.3) {
                    path.push('/');
                }
                path
            }
            1 => self
                .pick(&[
                    "/uapi/phoneCalls",
                    "/uapi/phoneCalls/",
                    "/uapi/phoneCalls/@me",
                    "/uapi/phoneCalls/@me/",
                ])
                .to_string(),
            2 => {
                let n = self.rng.random_range(4..7);
                let segments: Vec<String> = (0..n).map(|_| self.uapi_user()).collect();
                format!("/uapi/phoneCalls/{}", segments.join("/"))
            }
            3 => self
                .pick(&[
                    "/uapi/phonecalls/@me/@self",
                    "/UAPI/phoneCalls/@me/@self",
                    "/uapi//phoneCalls/@me/@self",
                    "/uapi/phoneCalls//@self",
                    "/uapi/phoneCalls/@me//",
                    "/uapi/phoneCalls/%40me/%40self",
                    "/uapi/phoneCalls/@me/@self/../../x",
                    "/uapi/phoneCalls/./@me/@self",
                    "/uapi/phoneCalls/@me/@self;x=1",
                    "/uapi/phoneCalls%2F@me%2F@self",
                ])
                .to_string(),
            _ => {
                let a = self.garbage(20);
                let b = self.garbage(20);
                format!("/uapi/phoneCalls/{}/{}", enc_segment(&a), enc_segment(&b))
            }
        }
    }

    /// A value for a list parameter, percent-encoded.
    fn param_value(&mut self, name: &str) -> String {
        let valid = self.chance(0.6);
        let v: &str = match (name, valid) {
            ("count" | "startIndex", true) => self.pick(&["1", "20", "100", "5000", "0", "4999"]),
            ("count" | "startIndex", false) => self.pick(&[
                "5001",
                "-1",
                "1e3",
                "abc",
                "",
                "%205",
                "05",
                "99999999999999999999",
                "4294967296",
                "1.5",
                "%2B1",
                "0x10",
                "%D9%A1",
            ]),
            ("filterBy", true) => self.pick(&FilterField::ALL.map(FilterField::name)),
            ("filterBy", false) => self.pick(&[
                "ID",
                "links",
                "phoneCallView",
                "nonce",
                "",
                "ownerName",
                "id%00",
            ]),
            ("filterOp", true) => self.pick(&FilterOp::ALL.map(FilterOp::name)),
            ("filterOp", false) => self.pick(&["Contains", "like", "", "eq", "in"]),
            ("filterValue", _) => return self.filter_value(),
            ("sortBy", true) => self.pick(&SortBy::ALL.map(SortBy::name)),
            ("sortBy", false) => self.pick(&["status", "", "published,id", "PUBLISHED"]),
            ("sortOrder", true) => self.pick(&["ascending", "descending"]),
            ("sortOrder", false) => self.pick(&["asc", "DESC", "", "random"]),
            ("updatedSince", _) => return self.date_value(),
            ("fields", true) => self.pick(&[
                "id",
                "id,extension",
                "phoneCallView",
                "extension,answered",
                "links,ownerName,nonce",
                "id,id",
            ]),
            ("fields", false) => self.pick(&["", ",", "id,,extension", "unknown", "ID", "id%2C"]),
            ("accessRequestToken", _) => {
                let (token, _) = self.some_token(false);
                return match self.below(5) {
                    0 => format!("Bearer%20{token}"),
                    1 => token,
                    2 => self.mutated_token(&token),
                    3 => format!("Basic%20{token}"),
                    _ => "%00".to_string(),
                };
            }
            _ => {
                let g = self.garbage(10);
                return enc(&g, b"");
            }
        };
        v.to_string()
    }

    fn date_value(&mut self) -> String {
        self.pick(&[
            "2026-11-28T14:40:28Z",
            "2000-01-01T00:00:00%2B02:00",
            "2026-11-28T14:40:28-05:30",
            "2024-02-30T00:00:00Z",
            "2026-11-28",
            "2026-11-28T14:40:28",
            "now",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "200000-01-01T00:00:00Z",
            "-200000-01-01T00:00:00Z",
            "-4714-11-24T00:00:00Z",
            "294277-01-01T00:00:00Z",
            "2026-11-28T14:40:28.123456789012Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T14:40:60Z",
            "2026-11-28T14:40:28%2B24:00",
            "2026-11-28T14:40:28%2B14:00",
            "2026-11-28T14:40:28z",
        ])
        .to_string()
    }

    fn filter_value(&mut self) -> String {
        match self.below(6) {
            0 => self
                .pick(&[
                    "0003*210",
                    "0003",
                    "%25",
                    "_",
                    "%5C",
                    "%27%3B--",
                    "Alice%20%3C210%3E",
                    "%2B4420",
                    "%E2%80%AE",
                    "%F0%9F%98%80",
                    "",
                ])
                .to_string(),
            1 => self.date_value(),
            2 => self
                .pick(&[
                    "0",
                    "5",
                    "-1",
                    "9223372036854775807",
                    "-9223372036854775808",
                    "9223372036854775808",
                    "1.5",
                    "1e3",
                    "%2B1",
                    "32768",
                    "2147483648",
                ])
                .to_string(),
            3 => {
                let n = self.pick(&[2usize, 3, 100, 101]);
                let item = self.pick(&["1", "0003*210", "2026-11-28T14:40:28Z", "", "x"]);
                vec![item; n].join(",")
            }
            4 => "a".repeat(self.pick(&[256usize, 257, 5000])),
            _ => {
                let g = self.garbage(16);
                enc(&g, b"")
            }
        }
    }

    /// One of the mutations of a value: NUL, other controls, invalid UTF-8 escapes, bad
    /// escapes, huge, spaces, garbage, empty.
    fn mutate_value(&mut self, v: String) -> String {
        match self.below(8) {
            0 => format!("{v}%00"),
            1 => {
                let c = self.pick(&["%01", "%0A", "%0D", "%1F", "%7F", "%09", "%C2%85"]);
                if self.chance(0.5) {
                    format!("{c}{v}")
                } else {
                    format!("{v}{c}")
                }
            }
            2 => self.pick(&[
                format!("%FF{v}"),
                format!("{v}%C3%28"),
                format!("{v}%ED%A0%80"),
            ]),
            3 => format!("{v}{}", "9".repeat(5000)),
            4 => format!("%zz{v}%"),
            5 => format!("+{v}+"),
            6 => {
                let g = self.garbage(30);
                enc(&g, b"")
            }
            _ => String::new(),
        }
    }

    /// A query string (with its `?`), and why a 2xx answer to it would be wrong.
    fn query(&mut self) -> (String, Option<&'static str>, bool) {
        if self.chance(0.25) {
            return (String::new(), None, false);
        }
        if self.chance(0.05) {
            let raw = self.pick(&[
                "?",
                "?&",
                "?=&=",
                "?count",
                "?%",
                "?%%%",
                "?count=1;startIndex=2",
                "?count=1&&&",
                "?a=%FF%FE",
                "?%00=%00",
                "?count=%",
                "?=1",
                "?count=1#frag",
            ]);
            return (raw.to_string(), None, false);
        }
        let mut params: Vec<(String, String)> = Vec::new();
        if self.chance(0.3) {
            // A coherent filter, so that values reach the statement.
            let by = self.param_value("filterBy");
            let op = self.param_value("filterOp");
            let value = self.filter_value();
            params.push(("filterBy".into(), by));
            params.push(("filterOp".into(), op));
            params.push(("filterValue".into(), value));
        }
        let n = self.below(5);
        for _ in 0..n {
            let name = if self.chance(0.9) {
                self.pick(&LIST_PARAMS).to_string()
            } else {
                self.pick(&["foo", "COUNT", "count[]", "", "filterby", "count%00", "%FF"])
                    .to_string()
            };
            let value = self.param_value(&name);
            params.push((name, value));
        }
        if !params.is_empty() && self.chance(0.1) {
            let (name, value) = params[self.below(params.len())].clone();
            let value = if self.chance(0.5) {
                value
            } else {
                self.param_value(&name)
            };
            params.push((name, value));
        }
        for param in params.iter_mut() {
            if self.chance(0.12) {
                let v = std::mem::take(&mut param.1);
                param.1 = self.mutate_value(v);
            }
        }
        if self.chance(0.3) {
            params.shuffle(&mut self.rng);
        }
        let text: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let query = text.join("&");
        let (must_reject, token_param) = judge_query(&query);
        (format!("?{query}"), must_reject, token_param)
    }

    /// A list request that is valid but for at most one mutation: a valid token, a valid path
    /// and a typed filter whose values sit at the edges (integer limits, extreme dates, LIKE
    /// wildcards, 256 characters, 100 items), so that requests reach the statement.
    fn uapi_near_valid(&mut self) -> Case {
        let method = if self.chance(0.85) { "GET" } else { "HEAD" };
        let t = &self.w.tokens;
        let tokens = [
            t.alice.clone(),
            t.bob.clone(),
            t.org.clone(),
            t.admin.clone(),
            t.carol.clone(),
        ];
        let token = self.pick(&tokens);
        let mut ids = vec![
            "@me".to_string(),
            "@viewer".into(),
            "@owner".into(),
            "@owner".into(),
        ];
        ids.extend(self.w.user_ids.iter().cloned());
        let user = self.pick(&ids);
        let extension = self.pick(&[
            "@self", "@self", "210", "211", "0003*210", "0003*211", "0007*210",
        ]);
        let mut path = format!("/uapi/phoneCalls/{user}/{extension}");
        if self.chance(0.25) {
            let call = if self.chance(0.7) {
                self.pick(&SEEDED_CALLS).to_string()
            } else {
                self.uuid()
            };
            path = format!("{path}/{call}");
        }
        if self.chance(0.5) {
            path.push('/');
        }
        let mut params: Vec<(String, String)> = Vec::new();
        if self.chance(0.7) {
            let field = self.pick(&FilterField::ALL);
            let kind = field.field_type();
            let op = self.pick(&filter_ops_for(kind));
            let one = |g: &mut Self| -> String {
                match kind {
                    FieldType::Text => g
                        .pick(&[
                            "0003*210",
                            "0003",
                            "%25",
                            "_",
                            "%5C",
                            "%25%25",
                            "Alice",
                            "%2B4420",
                            "%E2%80%AE",
                            "%F0%9F%98%80",
                            "%27",
                            "%22",
                            "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
                        ])
                        .to_string(),
                    FieldType::Date => g.date_value(),
                    FieldType::Integer => g
                        .pick(&[
                            "0",
                            "3",
                            "5",
                            "-1",
                            "9223372036854775807",
                            "-9223372036854775808",
                            "2147483648",
                            "32768",
                            "-32769",
                        ])
                        .to_string(),
                }
            };
            let value = match op {
                "inArray" => {
                    let n = self.pick(&[1usize, 2, 5, 100]);
                    (0..n).map(|_| one(self)).collect::<Vec<_>>().join(",")
                }
                // 256 characters in 512 bytes: the limit counts characters.
                _ if kind == FieldType::Text && self.chance(0.1) => "%C3%A9".repeat(256),
                _ => one(self),
            };
            params.push(("filterBy".into(), field.name().into()));
            if op != "contains" || self.chance(0.5) {
                params.push(("filterOp".into(), op.into()));
            }
            if op != "present" || self.chance(0.3) {
                params.push(("filterValue".into(), value));
            }
        }
        if self.chance(0.4) {
            let n = self.pick(&[1, 2, 20, 100, 5000]);
            params.push(("count".into(), n.to_string()));
        }
        if self.chance(0.3) {
            let n = self.pick(&[0, 1, 3, 5000]);
            params.push(("startIndex".into(), n.to_string()));
        }
        for (name, values) in [
            ("sortBy", &["published", "answered", "id", "extension"][..]),
            ("sortOrder", &["ascending", "descending"][..]),
            (
                "fields",
                &[
                    "id",
                    "extension,answered",
                    "phoneCallView",
                    "links,ownerName,nonce,ownerId",
                ][..],
            ),
        ] {
            if self.chance(0.3) {
                let value = self.pick(values).to_string();
                params.push((name.into(), value));
            }
        }
        if self.chance(0.2) {
            let v = self.date_value();
            params.push(("updatedSince".into(), v));
        }
        if !params.is_empty() && self.chance(0.15) {
            let i = self.below(params.len());
            let v = std::mem::take(&mut params[i].1);
            params[i].1 = self.mutate_value(v);
        }
        let mut headers = Vec::new();
        if self.chance(0.9) {
            headers.push(header("Authorization", format!("Bearer {token}")));
        } else {
            params.push(("accessRequestToken".into(), format!("Bearer%20{token}")));
        }
        let query: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let query = query.join("&");
        let (must_reject, _) = judge_query(&query);
        let target = format!("{path}?{query}");
        let mut case = self.finish(
            Endpoint::Uapi,
            method,
            target.as_bytes(),
            headers,
            Vec::new(),
        );
        case.must_reject = must_reject;
        case
    }

    fn uapi(&mut self) -> Case {
        if self.chance(0.35) {
            return self.uapi_near_valid();
        }
        let method = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "get",
        ][self.weighted(&[62, 10, 7, 7, 6, 3, 3, 1, 1, 1])];
        let path = self.uapi_path();
        let (query, query_must_reject, token_param) = self.query();
        let auth = if token_param && self.chance(0.8) {
            Auth {
                headers: Vec::new(),
                switch: false,
            }
        } else {
            self.bearer_auth(false)
        };
        let mut headers = auth.headers;
        let body = if matches!(method, "POST" | "PUT" | "PATCH") && self.chance(0.6) {
            headers.push(header("Content-Type", "application/json"));
            if self.chance(0.5) {
                let id = self.uuid();
                serde_json::to_vec(&first_report(&id, 1)).unwrap()
            } else {
                self.garbage(200)
            }
        } else {
            Vec::new()
        };
        let has_authorization = !headers.is_empty();
        let target = format!("{path}{query}");
        let mut case = self.finish(Endpoint::Uapi, method, target.as_bytes(), headers, body);
        // A list parameter given twice or holding a control character is invalid; the token
        // parameter is ignored when a header carries the credential.
        case.must_reject = match query_must_reject {
            Some(reason) if reason != TOKEN_PARAM_REASON || !has_authorization => Some(reason),
            _ => None,
        };
        case
    }

    // --- the switch feed ----------------------------------------------------------------

    fn weird_value(&mut self) -> Value {
        match self.below(21) {
            0 => Value::Null,
            1 => json!(true),
            2 => json!(0),
            3 => json!(-1),
            4 => json!(1.5),
            5 => json!(1e308),
            6 => json!(""),
            7 => json!("x"),
            8 => json!("\u{0}"),
            9 => json!([]),
            10 => json!({}),
            11 => json!([1, "2", null]),
            12 => json!({"a": {"b": [1]}}),
            13 => json!(i64::MAX),
            14 => json!(u64::MAX),
            15 => json!(i64::MIN),
            16 => json!("2026-11-28T14:40:28Z"),
            17 => json!("x".repeat(10_000)),
            18 => json!("0003*210"),
            19 => json!(vec!["0003*210"; 17]),
            _ => json!(self.garbage_string(20)),
        }
    }

    /// A report of the second organization (0007), valid for both switch accounts.
    fn globex_report(id: &str, sequence: i64) -> Value {
        json!({
            "id": id, "sequence": sequence, "extension": "0007*210",
            "published": "2026-11-28T14:40:28Z",
            "phoneCallView": [{"id": "00", "extension": "0007*210", "source": ["0007*210"],
                               "destination": ["+442079460000"], "flow": 4, "status": 4}]
        })
    }

    /// A report derived from a valid one by zero to three mutations.
    fn report(&mut self, id: &str, keep_id: bool) -> Value {
        let sequence = self.rng.random_range(0..1000);
        let mut r = if self.chance(0.15) {
            Self::globex_report(id, sequence)
        } else {
            first_report(id, sequence)
        };
        if !keep_id && self.chance(0.7) {
            r.as_object_mut().unwrap().remove("id");
        }
        let mutations = [0, 1, 2, 3][self.weighted(&[12, 45, 25, 18])];
        for _ in 0..mutations {
            self.mutate_report(&mut r);
        }
        r
    }

    /// Pointers of the views of a report (none when the report or its views were mangled).
    fn view_pointers(r: &Value) -> Vec<String> {
        match r.get("phoneCallView") {
            Some(Value::Array(views)) => views
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_object())
                .map(|(i, _)| format!("/phoneCallView/{i}"))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn set(r: &mut Value, pointer: &str, value: Value) {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        if let Some(Value::Object(map)) = r.pointer_mut(parent) {
            map.insert(key.to_string(), value);
        }
    }

    fn remove(r: &mut Value, pointer: &str) {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        if let Some(Value::Object(map)) = r.pointer_mut(parent) {
            map.remove(key);
        }
    }

    fn mutate_report(&mut self, r: &mut Value) {
        if !r.is_object() {
            return;
        }
        let views = Self::view_pointers(r);
        let view = if views.is_empty() {
            None
        } else {
            Some(self.pick(&views))
        };
        match self.below(13) {
            0 => {
                let key = self.pick(&REPORT_KEYS);
                Self::remove(r, &format!("/{key}"));
            }
            1 => {
                if let Some(view) = view {
                    let key = self.pick(&VIEW_KEYS);
                    Self::remove(r, &format!("{view}/{key}"));
                }
            }
            2 => {
                let key = self.pick(&REPORT_KEYS);
                let value = self.weird_value();
                Self::set(r, &format!("/{key}"), value);
            }
            3 => {
                if let Some(view) = view {
                    let key = self.pick(&VIEW_KEYS);
                    let value = self.weird_value();
                    Self::set(r, &format!("{view}/{key}"), value);
                }
            }
            4 => {
                let (pointer, value) = self.pick(&[
                    ("/sequence", json!(-1)),
                    ("/sequence", json!(9_223_372_036_854_775_808u64)),
                    ("/sequence", json!(1.5)),
                    ("/sequence", json!("1")),
                    ("/sequence", json!(i64::MAX)),
                    ("/phoneCallView/0/flow", json!(3)),
                    ("/phoneCallView/0/flow", json!(i64::MIN)),
                    ("/phoneCallView/0/status", json!(6)),
                    ("/phoneCallView/0/status", json!(-1)),
                    ("/phoneCallView/0/holder", json!(2)),
                    ("/phoneCallView/0/disposition", json!(6)),
                    ("/phoneCallView/0/parkedPos", json!(-1)),
                    ("/phoneCallView/0/parkedPos", json!(2_147_483_648i64)),
                    ("/phoneCallView/0/parkedPos", json!(2_147_483_647i64)),
                    ("/published", json!("2024-02-30T00:00:00Z")),
                    ("/published", json!("2026-11-28T14:40:28")),
                    ("/published", json!("-200000-01-01T00:00:00Z")),
                    ("/published", json!("200000-01-01T00:00:00Z")),
                    ("/published", json!("0000-01-01T00:00:00Z")),
                    ("/published", json!("2026-11-28T14:40:28.999999999999Z")),
                    ("/published", json!("2026-11-28T14:40:28+24:00")),
                    ("/answered", json!("2020-01-01T00:00:00Z")),
                    ("/ended", json!("2020-01-01T00:00:00Z")),
                    ("/ended", json!("2026-11-28T15:00:00Z")),
                    ("/ended", json!("294277-01-01T00:00:00Z")),
                    ("/phoneCallView/0/ringing", json!("9999-12-31T23:59:60Z")),
                    ("/phoneCallView/0/ringing", json!("-4714-11-24T00:00:00Z")),
                    ("/phoneCallView/0/id", json!("0")),
                    ("/phoneCallView/0/id", json!("000")),
                    ("/phoneCallView/0/id", json!("ab")),
                    ("/phoneCallView/0/id", json!("\u{0662}\u{0661}")),
                ]);
                Self::set(r, pointer, value);
            }
            5 => {
                let mut pointers = vec![
                    "/nonce".to_string(),
                    "/extension".into(),
                    "/published".into(),
                ];
                if r.get("id").is_some() {
                    pointers.push("/id".into());
                }
                if let Some(view) = &view {
                    for key in ["callerId", "extension", "id", "parkedBy", "ringing"] {
                        pointers.push(format!("{view}/{key}"));
                    }
                    pointers.push(format!("{view}/source/0"));
                    pointers.push(format!("{view}/destination/0"));
                }
                let pointer = self.pick(&pointers);
                let current = r
                    .pointer(&pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("abc")
                    .to_string();
                let value = self.with_control(&current);
                match r.pointer_mut(&pointer) {
                    Some(slot) => *slot = json!(value),
                    None => Self::set(r, &pointer, json!(value)),
                }
            }
            6 => {
                let number = self.pick(&[
                    "0003*999",
                    "0007*210",
                    "0003*210 ",
                    "210",
                    "0003*2100",
                    "9999*99999",
                    "0003*211",
                ]);
                let pointer = match &view {
                    Some(view) if self.chance(0.6) => format!("{view}/extension"),
                    _ => "/extension".to_string(),
                };
                Self::set(r, &pointer, json!(number));
            }
            7 => {
                let view = view.unwrap_or_else(|| "/phoneCallView/0".into());
                let (pointer, value) = match self.below(7) {
                    0 => (
                        "/nonce".to_string(),
                        json!("n".repeat(self.pick(&[256, 257]))),
                    ),
                    1 => (
                        format!("{view}/callerId"),
                        json!("c".repeat(self.pick(&[256, 257]))),
                    ),
                    2 => (
                        format!("{view}/source"),
                        json!(vec!["+4420"; self.pick(&[16, 17])]),
                    ),
                    3 => (
                        format!("{view}/destination"),
                        json!(["9".repeat(self.pick(&[64, 65]))]),
                    ),
                    4 => (
                        format!("{view}/parkedBy"),
                        json!("7".repeat(self.pick(&[64, 65]))),
                    ),
                    5 => {
                        let n = self.pick(&[32usize, 33]);
                        let views: Vec<Value> = (0..n)
                            .map(|i| json!({"id": format!("{i:02}"), "extension": "0003*210", "flow": 2, "status": 0}))
                            .collect();
                        ("/phoneCallView".to_string(), json!(views))
                    }
                    _ => ("/nonce".to_string(), json!("\u{1F600}".repeat(256))),
                };
                Self::set(r, &pointer, value);
            }
            8 => {
                if views.len() >= 2 {
                    let id = r.pointer(&format!("{}/id", views[0])).cloned();
                    if let Some(id) = id {
                        Self::set(r, &format!("{}/id", views[1]), id);
                    }
                }
            }
            9 => {
                let (key, value) = match self.below(5) {
                    0 => ("ownerId", json!(5)),
                    1 => ("links", json!({"self": "/x"})),
                    2 => ("padding", json!("\u{0}\u{1}")),
                    3 => ("x", self.weird_value()),
                    _ => ("Sequence", json!(-5)),
                };
                Self::set(r, &format!("/{key}"), value);
            }
            10 => {
                *r = self.pick(&[
                    json!([]),
                    Value::Null,
                    json!(1),
                    json!("report"),
                    json!([r.clone()]),
                ]);
            }
            11 => {
                let value = self.pick(&[
                    json!([]),
                    json!({}),
                    json!([null]),
                    json!([1]),
                    json!(["00"]),
                    json!([{}]),
                ]);
                Self::set(r, "/phoneCallView", value);
            }
            _ => {
                let value = match self.below(4) {
                    0 => json!(self.uuid()),
                    1 => json!("not-a-uuid"),
                    2 => json!(5),
                    _ => json!(self.uuid().to_uppercase()),
                };
                Self::set(r, "/id", value);
            }
        }
    }

    /// The JSON text of `value`, with a duplicate key inserted into the object at `pointer`.
    /// Returns None when that object has no key to duplicate; else the text and the key.
    fn with_duplicate(&mut self, value: &Value, pointer: &str) -> Option<(String, String)> {
        let keys: Vec<String> = value
            .pointer(pointer)?
            .as_object()?
            .keys()
            .cloned()
            .collect();
        if keys.is_empty() {
            return None;
        }
        let key = self.pick(&keys);
        let existing = value.pointer(pointer)?.get(&key)?.clone();
        let duplicate = if self.chance(0.4) {
            existing
        } else {
            self.weird_value()
        };
        let mut marked = value.clone();
        marked
            .pointer_mut(pointer)?
            .as_object_mut()?
            .insert(DUP_MARKER.into(), json!("M"));
        let text = serde_json::to_string(&marked).unwrap();
        let replacement = format!("{}:{}", json!(key), duplicate);
        let text = text.replacen(&format!("\"{DUP_MARKER}\":\"M\""), &replacement, 1);
        Some((text, key))
    }

    /// Serializes a body (a report, or a batch wrapper with `reports`), with text-level
    /// mutations: duplicate keys, truncation, deep nesting, huge arrays, broken syntax, and
    /// over-size padding.
    fn json_body(&mut self, value: Value, batch: bool, limit: usize) -> Body {
        let mut dup_top = false;
        let mut dup_reports = Vec::new();
        let mut note = String::new();
        let mut value = value;
        if self.chance(0.03) {
            let n = self.rng.random_range(1000..60_000);
            Self::set(&mut value, "/padding", json!(vec![0; n]));
        }
        let oversize = self.chance(0.012);
        if oversize {
            let n = limit + self.rng.random_range(1..4096);
            Self::set(&mut value, "/padding", json!("x".repeat(n)));
        }
        let mut text = None;
        if self.chance(0.1) {
            let mut targets = vec![(String::new(), None)];
            if batch {
                if let Some(Value::Array(reports)) = value.get("reports") {
                    for (i, report) in reports.iter().enumerate().take(8) {
                        targets.push((format!("/reports/{i}"), Some(i)));
                        for view in Self::view_pointers(report) {
                            targets.push((format!("/reports/{i}{view}"), Some(i)));
                        }
                    }
                }
            } else {
                for view in Self::view_pointers(&value) {
                    targets.push((view, None));
                }
            }
            let (pointer, report) = self.pick(&targets);
            if let Some((t, key)) = self.with_duplicate(&value, &pointer) {
                text = Some(t);
                let at = if pointer.is_empty() {
                    "the top"
                } else {
                    &pointer
                };
                note = format!("duplicate key {key:?} in the object at {at}");
                match report {
                    Some(i) => dup_reports.push(i),
                    None => dup_top = true,
                }
            }
        }
        let text = match text {
            Some(text) => text,
            None if self.chance(0.06) && value.is_object() => {
                // A raw value the serializer cannot produce.
                let raw = match self.below(8) {
                    0 => format!("{}{}", "[".repeat(200), "]".repeat(200)),
                    1 => format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)),
                    2 => format!("{}1{}", "{\"a\":".repeat(5000), "}".repeat(5000)),
                    3 => "NaN".into(),
                    4 => "\"\\ud800\"".into(),
                    5 => "1e400".into(),
                    6 => "01".into(),
                    _ => "\"\\u0000\"".into(),
                };
                let mut marked = value.clone();
                Self::set(&mut marked, &format!("/{RAW_MARKER}"), json!("M"));
                let text = serde_json::to_string(&marked).unwrap();
                text.replacen(
                    &format!("\"{RAW_MARKER}\":\"M\""),
                    &format!("\"zz\":{raw}"),
                    1,
                )
            }
            None => serde_json::to_string(&value).unwrap(),
        };
        let mut bytes = text.into_bytes();
        match self.weighted(&[88, 3, 9]) {
            0 => {}
            1 => {
                let at = self.below(bytes.len().max(1));
                bytes.truncate(at);
            }
            _ => match self.below(8) {
                0 => bytes.splice(0..0, [0xef, 0xbb, 0xbf]).for_each(drop),
                1 => bytes.extend_from_slice(b" x"),
                2 => bytes.extend_from_slice(b"}"),
                3 => {
                    let again = bytes.clone();
                    bytes.extend_from_slice(&again);
                }
                4 => bytes.splice(0..0, *b" \n\t ").for_each(drop),
                5 => {
                    // A raw control character or a byte that is not UTF-8 inside a string.
                    if let Some(at) = bytes.iter().position(|&b| b == b'"') {
                        let b = self.pick(&[0x00, 0x01, 0x0a, 0xff, 0xc3]);
                        bytes.insert(at + 1, b);
                    }
                }
                6 => bytes = b"".to_vec(),
                _ => {
                    bytes = self.pick(&[
                        b"null".to_vec(),
                        b"[]".to_vec(),
                        b"1".to_vec(),
                        b"\"s\"".to_vec(),
                    ])
                }
            },
        }
        Body {
            bytes,
            dup_top,
            dup_reports,
            note,
            oversize,
        }
    }

    fn json_content_type(&mut self) -> Option<&'static str> {
        match self.weighted(&[85, 4, 11]) {
            0 => Some("application/json"),
            1 => Some("application/json; charset=utf-8"),
            _ => self.pick(&[
                Some("text/plain"),
                Some(""),
                None,
                Some("application/x-www-form-urlencoded"),
                Some("application/jsonx"),
                Some("json"),
                Some("application/problem+json"),
                Some("APPLICATION/JSON"),
            ]),
        }
    }

    fn switch_put(&mut self) -> Case {
        let method = if self.chance(0.9) {
            "PUT"
        } else {
            self.pick(&["GET", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"])
        };
        let id = self.uuid();
        let (path_id, exact) = if self.chance(0.9) {
            (id.clone(), true)
        } else {
            let bad = self.pick(&[
                id.to_uppercase(),
                id.replace('-', ""),
                "%00".into(),
                "not-a-uuid".into(),
                format!("%7B{id}%7D"),
                format!("{id}%00"),
                "x".repeat(100),
                format!("{id}/x"),
                format!("{id}/"),
            ]);
            (bad, false)
        };
        let path = format!("/switch/v1/phoneCalls/{path_id}");
        let auth = self.bearer_auth(true);
        let mut headers = auth.headers;
        if let Some(ct) = self.json_content_type() {
            headers.push(header("Content-Type", ct));
        }
        let report = self.report(&id, false);
        let body = self.json_body(report, false, SINGLE_LIMIT);
        let mut case = self.finish(
            Endpoint::SwitchPut,
            method,
            path.as_bytes(),
            headers,
            body.bytes,
        );
        if body.dup_top {
            case.must_reject = Some("a report with a duplicate JSON key was accepted");
        }
        case.note = body.note;
        if body.oversize && auth.switch && method == "PUT" && exact {
            case.expect = Some((400, "request_invalid", "an over-size report"));
        }
        case
    }

    fn switch_batch(&mut self) -> Case {
        let method = if self.chance(0.9) {
            "POST"
        } else {
            self.pick(&["GET", "PUT", "DELETE", "PATCH", "HEAD"])
        };
        let path = if self.chance(0.95) {
            "/switch/v1/phoneCalls"
        } else {
            self.pick(&[
                "/switch/v1/phoneCalls/",
                "/switch/v1/phoneCalls?x=1",
                "/switch/v1/phonecalls",
                "/switch/v1/phoneCalls%2F",
            ])
        };
        let auth = self.bearer_auth(true);
        let mut headers = auth.headers;
        if let Some(ct) = self.json_content_type() {
            headers.push(header("Content-Type", ct));
        }
        let n = [0, 1, 2, 3, 4, 6][self.weighted(&[5, 30, 25, 20, 10, 10])];
        let mut ids: Vec<String> = Vec::new();
        let mut reports = Vec::new();
        for _ in 0..n {
            let id = if !ids.is_empty() && self.chance(0.2) {
                self.pick(&ids)
            } else {
                self.uuid()
            };
            ids.push(id.clone());
            reports.push(self.report(&id, true));
        }
        if self.chance(0.06) {
            // One call reported for both organizations in the same batch, with or without views
            // the second time: the batch must refuse the move without naming a constraint.
            let id = self.uuid();
            let sequence = self.rng.random_range(0..1000);
            let mut pair = [
                first_report(&id, sequence),
                Self::globex_report(&id, sequence + self.rng.random_range(1..10)),
            ];
            if self.chance(0.5) {
                pair.swap(0, 1);
                let first = pair[0]["sequence"].as_i64().unwrap();
                pair[1]["sequence"] = json!(first + 1);
            }
            if self.chance(0.5) {
                pair[1].as_object_mut().unwrap().remove("phoneCallView");
            }
            let at = self.below(reports.len() + 1);
            reports.splice(at..at, pair);
        }
        let wrapper = match self.weighted(&[85, 3, 3, 2, 2, 2, 1, 2]) {
            0 => json!({ "reports": reports }),
            1 => json!({ "reports": {} }),
            2 => json!({ "reports": null }),
            3 => json!({ "reports": "x" }),
            4 => json!({ "report": reports }),
            5 => json!({ "reports": reports, "extra": self.weird_value() }),
            6 => json!({ "reports": vec![json!({}); self.pick(&[1000, 1001])] }),
            _ => json!(reports),
        };
        let body = self.json_body(wrapper, true, BATCH_LIMIT);
        let mut case = self.finish(
            Endpoint::SwitchBatch,
            method,
            path.as_bytes(),
            headers,
            body.bytes,
        );
        if body.dup_top {
            case.must_reject = Some("a batch with a duplicate JSON key was accepted");
        }
        case.dup_reports = body.dup_reports;
        case.note = body.note;
        if body.oversize && auth.switch && method == "POST" && path == "/switch/v1/phoneCalls" {
            case.expect = Some((400, "request_invalid", "an over-size batch"));
        }
        case
    }

    // --- OAuth ----------------------------------------------------------------------------

    fn oauth(&mut self) -> Case {
        let path = match self.weighted(&[55, 35, 10]) {
            0 => "/oauth/token.php",
            1 => "/oauth/token",
            _ => self.pick(&[
                "/oauth/token.php/",
                "/oauth/Token",
                "/oauth/token.php?grant_type=client_credentials",
                "/oauth/token.phpx",
                "/oauth",
                "/oauth/token.php;x",
                "/oauth/token?client_id=%00",
            ]),
        };
        let method = if self.chance(0.9) {
            "POST"
        } else {
            self.pick(&["GET", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"])
        };
        let trusted_id = self.w.trusted.client_id.clone();
        let trusted_secret = self.w.trusted.client_secret.clone();
        let mut headers = Vec::new();
        match self.weighted(&[80, 5, 3, 12]) {
            0 => headers.push(header("Content-Type", "application/x-www-form-urlencoded")),
            1 => headers.push(header(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )),
            2 => headers.push(header("Content-Type", "APPLICATION/X-WWW-FORM-URLENCODED")),
            _ => {
                if let Some(ct) = self.pick(&[
                    Some("application/json"),
                    Some("text/plain"),
                    Some("multipart/form-data; boundary=x"),
                    None,
                    Some(""),
                    Some("application/x-www-form-urlencoded;"),
                ]) {
                    headers.push(header("Content-Type", ct));
                }
            }
        }
        let basic = self.chance(0.25);
        if basic {
            let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
            let value = match self.below(16) {
                0..=5 => format!(
                    "Basic {}",
                    b64(format!("{trusted_id}:{trusted_secret}").as_bytes())
                ),
                6 => format!("Basic {}", b64(b"a%00b:x")),
                7 => format!("Basic {}", b64(b"%00:%00")),
                8 => format!("Basic {}", b64(format!("{trusted_id}:wrong").as_bytes())),
                9 => format!("Basic {}", b64(&[0xff, 0xfe, b':', b'x'])),
                10 => format!("Basic {}", b64(b"nocolon")),
                11 => format!("Basic {}", b64(self.pick(&[&b":x"[..], b"x:", b":"]))),
                12 => self
                    .pick(&[
                        "Basic !!!notbase64",
                        "Basic",
                        "Basic ",
                        "Digest x",
                        "Bearer pct_x",
                    ])
                    .to_string(),
                13 => format!(
                    "basic {}",
                    b64(format!("{trusted_id}:{trusted_secret}").as_bytes())
                ),
                14 => format!("Basic {}", b64(b"%zz:%FF")),
                _ => format!(
                    "Basic {}",
                    b64(format!("{trusted_id}%00:{trusted_secret}").as_bytes())
                ),
            };
            headers.push(header("Authorization", value));
            if self.chance(0.08) {
                headers.push(header("Authorization", format!("Basic {}", b64(b"x:y"))));
            }
        }
        let mut fields: Vec<String> = Vec::new();
        if self.chance(0.9) {
            let grant = if self.chance(0.85) {
                "client_credentials".to_string()
            } else {
                self.pick(&[
                    "",
                    "authorization_code",
                    "password",
                    "CLIENT_CREDENTIALS",
                    "client_credentials%00",
                    "%00",
                    "client_credentials+",
                    "%FF",
                ])
                .to_string()
            };
            fields.push(format!("grant_type={grant}"));
        }
        if self.chance(if basic { 0.3 } else { 0.85 }) {
            let id = match self.weighted(&[55, 10, 8, 5, 3, 3, 2, 3, 2, 3, 2, 4]) {
                0 => trusted_id.clone(),
                1 => self.w.untrusted.client_id.clone(),
                2 => self.mutated_token(&trusted_id),
                3 => "%00".into(),
                4 => "a%00b".into(),
                5 => "%FF%FE".into(),
                6 => "%C3%28".into(),
                7 => self
                    .pick(&["%01", "%0A", format!("{trusted_id}%0D").as_str()])
                    .to_string(),
                8 => "a".repeat(5000),
                9 => String::new(),
                10 => "%E2%80%AE".into(),
                _ => {
                    let g = self.garbage(20);
                    format!("pca_{}", enc(&g, b""))
                }
            };
            fields.push(format!("client_id={id}"));
        }
        if self.chance(if basic { 0.2 } else { 0.8 }) {
            let secret = match self.weighted(&[60, 10, 10, 5, 5, 3, 7]) {
                0 => trusted_secret.clone(),
                1 => self.w.untrusted.client_secret.clone(),
                2 => self.mutated_token(&trusted_secret),
                3 => "%00".into(),
                4 => String::new(),
                5 => "s".repeat(3000),
                _ => {
                    let g = self.garbage(20);
                    enc(&g, b"")
                }
            };
            fields.push(format!("client_secret={secret}"));
        }
        if self.chance(0.3) {
            let extra = self.pick(&[
                "type=anything",
                "redirect_uri=https%3A%2F%2Fexample.invalid%2Fcb",
                "scope=all",
                "%00=%00",
                "a=b=c",
                "client_id",
                "=",
                "%zz=1",
                "grant_type[]=x",
            ]);
            fields.push(extra.to_string());
        }
        if !fields.is_empty() && self.chance(0.08) {
            let again = self.pick(&fields);
            fields.push(again);
        }
        if self.chance(0.3) {
            fields.shuffle(&mut self.rng);
        }
        let separator = self.pick(&["&", "&", "&", "&&", ";"]);
        let mut body = match self.weighted(&[88, 4, 4, 4]) {
            0 => fields.join(separator).into_bytes(),
            1 => serde_json::to_vec(&json!({"grant_type": "client_credentials", "client_id": trusted_id, "client_secret": trusted_secret})).unwrap(),
            2 => self.garbage(100),
            _ => Vec::new(),
        };
        let size = self.weighted(&[96, 3, 1]);
        if size == 1 {
            // Over the 16 KiB limit of the form.
            let n = FORM_LIMIT - body.len().min(FORM_LIMIT) + self.rng.random_range(1..4096);
            body.extend_from_slice(format!("&pad={}", "x".repeat(n)).as_bytes());
        } else if size == 2 && body.len() + 5 <= FORM_LIMIT {
            // Exactly at the limit.
            let n = FORM_LIMIT - body.len() - 5;
            body.extend_from_slice(format!("&pad={}", "x".repeat(n)).as_bytes());
        }
        let oversize = body.len() > FORM_LIMIT;
        let mut case = self.finish(Endpoint::OAuth, method, path.as_bytes(), headers, body);
        if oversize && case.oauth {
            case.expect = Some((400, "invalid_request", "an over-size OAuth form"));
        }
        case
    }

    // --- probes, unknown routes -----------------------------------------------------------

    fn maybe_auth(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        if self.chance(0.3) {
            self.bearer_auth(false).headers
        } else {
            Vec::new()
        }
    }

    fn health(&mut self) -> Case {
        let path = if self.chance(0.9) {
            self.pick(&["/livez", "/readyz"])
        } else {
            self.pick(&[
                "/livez/",
                "/readyz/",
                "/LIVEZ",
                "/livez%00",
                "/livez;x",
                "/readyz.json",
            ])
        };
        let query = if self.chance(0.2) {
            self.query().0
        } else {
            String::new()
        };
        let method = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
            [self.weighted(&[60, 20, 5, 5, 4, 3, 3])];
        let headers = self.maybe_auth();
        let target = format!("{path}{query}");
        self.finish(
            Endpoint::Health,
            method,
            target.as_bytes(),
            headers,
            Vec::new(),
        )
    }

    fn unknown(&mut self) -> Case {
        let id = self.uuid();
        let target: String = match self.below(4) {
            0 | 1 => self.pick(&[
                "/".to_string(),
                "/uapi".into(),
                "/uapi/".into(),
                "/switch".into(),
                "/switch/v1".into(),
                "/switch/v2/phoneCalls".into(),
                format!("/switch/v1/phoneCalls/{id}/views"),
                "/favicon.ico".into(),
                "/.env".into(),
                "/oauth".into(),
                "/livez/x".into(),
                "/%00".into(),
                "/%FF".into(),
                "/..%2F..%2Fetc%2Fpasswd".into(),
                "//".into(),
                "/uapi/phoneCalls/../../livez".into(),
                "http://127.0.0.1/livez".into(),
                "/index.php?x=%00".into(),
                "/%2e%2e/%2e%2e/".into(),
            ]),
            2 => format!("/{}", "a/".repeat(self.rng.random_range(100..3000))),
            _ => {
                let n = self.rng.random_range(1..4);
                let segments: Vec<String> = (0..n)
                    .map(|_| {
                        let g = self.garbage(16);
                        enc_segment(&g)
                    })
                    .collect();
                format!("/{}", segments.join("/"))
            }
        };
        let method = self.pick(&[
            "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
        ]);
        let headers = self.maybe_auth();
        let body = if method == "POST" && self.chance(0.5) {
            self.garbage(100)
        } else {
            Vec::new()
        };
        self.finish(Endpoint::Unknown, method, target.as_bytes(), headers, body)
    }

    // --- raw HTTP ----------------------------------------------------------------------------

    /// Requests built byte by byte: most are not valid HTTP/1.1 (and marked so); some are valid
    /// but beyond what an ordinary client sends.
    fn raw(&mut self) -> Case {
        let (method, target, form): (&str, &str, &[u8]) = self.pick(&[
            ("GET", "/livez", &b""[..]),
            ("GET", "/uapi/phoneCalls/@me/@self", b""),
            (
                "POST",
                "/oauth/token.php",
                b"grant_type=client_credentials&client_id=x&client_secret=y",
            ),
            (
                "PUT",
                "/switch/v1/phoneCalls/6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
                b"{\"sequence\":0}",
            ),
            ("POST", "/switch/v1/phoneCalls", b"{\"reports\":[{}]}"),
        ]);
        let token = self.w.tokens.switch.clone();
        let auth = format!("Authorization: Bearer {token}\r\n");
        let ct = if method == "POST" && target.starts_with("/oauth") {
            "Content-Type: application/x-www-form-urlencoded\r\n"
        } else {
            "Content-Type: application/json\r\n"
        };
        let cl = format!("Content-Length: {}\r\n", form.len());
        let mut malformed = true;
        let head: Vec<u8> = match self.below(24) {
            0 => format!("{method} {target}\0 HTTP/1.1\r\n{auth}{ct}{cl}").into_bytes(),
            1 => {
                let mut h = format!("{method} {target}").into_bytes();
                h.extend_from_slice(&[0xff, 0xfe, b'/', 0xc3, 0x28]);
                h.extend_from_slice(format!(" HTTP/1.1\r\n{auth}{ct}{cl}").as_bytes());
                h
            }
            2 => format!("{method} {target} HTTP/1.1\r\nX-A: a\rb\r\n{auth}{ct}{cl}").into_bytes(),
            3 => format!("{method} {target} HTTP/1.1\r\nX-A: a\u{1}b\r\n{auth}{ct}{cl}").into_bytes(),
            4 => format!("{method} {target} HTTP/1.1\r\nAuthorization: Bearer pct_\0x\r\n{ct}{cl}").into_bytes(),
            5 => format!("{method} {target} HTTP/1.1\r\nBad Header: x\r\n{auth}{ct}{cl}").into_bytes(),
            6 => format!("{method} {target} HTTP/1.1\r\nNoColon\r\n{auth}{ct}{cl}").into_bytes(),
            7 => format!("{method} {target} HTTP/1.1\r\nX-A: a\r\n b\r\n{auth}{ct}{cl}").into_bytes(),
            8 => format!(
                "{method} {target} HTTP/1.1\r\n{auth}{ct}Content-Length: {}\r\nContent-Length: {}\r\n",
                form.len(),
                form.len() + 1
            )
            .into_bytes(),
            9 => {
                let bad = self.pick(&["-1", "abc", "1, 2", "+5", "99999999999999999999999"]);
                format!("{method} {target} HTTP/1.1\r\n{auth}{ct}Content-Length: {bad}\r\n").into_bytes()
            }
            10 => format!(
                "{method} {target} HTTP/1.1\r\n{auth}{ct}{cl}Transfer-Encoding: chunked\r\n"
            )
            .into_bytes(),
            11 => {
                // A broken chunk size; the body is written by the head itself.
                let h = format!("{method} {target} HTTP/1.1\r\n{auth}{ct}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
                return self.raw_case(method, target, h.into_bytes(), Vec::new(), form, true);
            }
            12 => format!("{method} {target} HTTP/1.1\r\n{auth}{ct}Transfer-Encoding: gzip\r\n{cl}").into_bytes(),
            13 => {
                let version = self.pick(&["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "http/1.1", "HTTP/1.1x"]);
                format!("{method} {target} {version}\r\n{auth}{ct}{cl}").into_bytes()
            }
            14 => {
                let h = format!("{method} {target} HTTP/1.1\n{auth}{ct}{cl}Connection: close\n\n")
                    .replace("\r\n", "\n");
                return self.raw_case(method, target, h.into_bytes(), form.to_vec(), form, true);
            }
            15 => format!("GE\u{1}T {target} HTTP/1.1\r\n{auth}{ct}{cl}").into_bytes(),
            16 => format!("{method}  {target} HTTP/1.1\r\n{auth}{ct}{cl}").into_bytes(),
            17 => format!("{method} {} HTTP/1.1\r\n{auth}{ct}{cl}", &target[1..]).into_bytes(),
            18 => format!("\r\n{method} {target} HTTP/1.1\r\n{auth}{ct}{cl}").into_bytes(),
            19 => format!("{method} {target} HTTP/1.1\r\nX-A: a\u{7f}\r\n{auth}{ct}{cl}").into_bytes(),
            // Valid HTTP/1.1 from here on: the application must answer.
            20 => {
                // A chunked body.
                let mut body = format!("{:x}\r\n", form.len()).into_bytes();
                body.extend_from_slice(form);
                body.extend_from_slice(b"\r\n0\r\n\r\n");
                let h = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n{auth}{ct}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
                return self.raw_case(method, target, h.into_bytes(), body, form, false);
            }
            21 => {
                malformed = false;
                format!("{method} {target} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n{auth}{ct}{cl}").into_bytes()
            }
            22 => {
                malformed = false;
                format!("{method} {target} HTTP/1.0\r\n{auth}{ct}{cl}").into_bytes()
            }
            _ => {
                malformed = false;
                // Many headers, duplicated ones among them, and obs-text in a value.
                let mut h = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n{auth}{auth}{ct}{ct}{cl}").into_bytes();
                for i in 0..20 {
                    h.extend_from_slice(format!("X-Fuzz-{i}: v").as_bytes());
                    h.extend_from_slice(&[0xe9, 0xff]);
                    h.extend_from_slice(b"\r\n");
                }
                h
            }
        };
        let mut head = head;
        head.extend_from_slice(b"Connection: close\r\n\r\n");
        self.raw_case(method, target, head, form.to_vec(), form, malformed)
    }

    fn raw_case(
        &mut self,
        method: &str,
        target: &str,
        head: Vec<u8>,
        wire_body: Vec<u8>,
        body: &[u8],
        malformed: bool,
    ) -> Case {
        let mut bytes = head;
        let body_at = bytes.len();
        bytes.extend_from_slice(&wire_body);
        Case {
            endpoint: Endpoint::RawHttp,
            method: method.to_string(),
            bytes,
            body_at,
            body: body.to_vec(),
            oauth: is_oauth(method, target.as_bytes()),
            malformed,
            expect: None,
            must_reject: None,
            dup_reports: Vec::new(),
            note: String::new(),
        }
    }
}

const DUP_MARKER: &str = "__fuzz_dup__";
const RAW_MARKER: &str = "__fuzz_raw__";
const TOKEN_PARAM_REASON: &str = "accessRequestToken given twice or with a control character";

/// Why a list query must be refused, judged on the pairs as the service decodes them: a list
/// parameter given twice, or one holding a control character (`filterValue` is ignored with
/// `filterOp=present`). The token parameter has its own reason, since a header overrides it.
/// Also tells whether the query carries the token parameter.
fn judge_query(query: &str) -> (Option<&'static str>, bool) {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (name, _) in &pairs {
        *seen.entry(name.as_str()).or_default() += 1;
    }
    let present = pairs.iter().any(|(n, v)| n == "filterOp" && v == "present");
    let has_token = seen.contains_key("accessRequestToken");
    for name in LIST_PARAMS.iter().filter(|n| **n != "accessRequestToken") {
        if seen.get(name).copied().unwrap_or(0) > 1 {
            return (Some("a list parameter given twice was accepted"), has_token);
        }
    }
    for (name, value) in &pairs {
        let known = LIST_PARAMS.contains(&name.as_str()) && name != "accessRequestToken";
        let ignored = name == "filterValue" && present;
        if known && !ignored && value.chars().any(char::is_control) {
            return (
                Some("a list parameter holding a control character was accepted"),
                has_token,
            );
        }
    }
    let token_bad = seen.get("accessRequestToken").copied().unwrap_or(0) > 1
        || pairs
            .iter()
            .any(|(n, v)| n == "accessRequestToken" && v.chars().any(char::is_control));
    (token_bad.then_some(TOKEN_PARAM_REASON), has_token)
}

// ---------------------------------------------------------------------------------------------
// Sending and reading raw HTTP/1.1.

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

enum Outcome {
    Answer(Answer),
    /// No answer at all: why.
    Silent(String),
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("chunk size line")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

fn parse_answer(mut bytes: &[u8], head_request: bool) -> Result<Answer, String> {
    loop {
        let end = find(bytes, b"\r\n\r\n").ok_or("the answer has no complete head")?;
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let rest = &bytes[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        if (100..200).contains(&status) {
            bytes = rest;
            continue;
        }
        let mut headers = HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or("bad header line")?;
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| e.to_string())?;
            let value =
                HeaderValue::from_bytes(value.trim().as_bytes()).map_err(|e| e.to_string())?;
            headers.append(name, value);
        }
        let chunked = headers
            .get("transfer-encoding")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
        let length = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let body = if head_request || status == 204 || status == 304 {
            Vec::new()
        } else if chunked {
            dechunk(rest)?
        } else if let Some(length) = length {
            rest[..length.min(rest.len())].to_vec()
        } else {
            rest.to_vec()
        };
        return Ok(Answer {
            status,
            headers,
            body,
        });
    }
}

/// Writes the request (in a task of its own, so that an early answer is read while a large body
/// is still being written) and reads until the server closes the connection.
async fn exchange(port: u16, cases: Arc<Vec<Case>>, index: usize) -> Outcome {
    let stream = match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(stream) => stream,
        Err(e) => return Outcome::Silent(format!("connect: {e}")),
    };
    let (mut reader, mut writer) = stream.into_split();
    let for_writer = cases.clone();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&for_writer[index].bytes).await;
        let _ = writer.flush().await;
        // Keep the write half open (dropping it would half-close the connection).
        writer
    });
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let read = tokio::time::timeout(ANSWER_TIMEOUT, async {
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) => return None,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(e) => return Some(e.to_string()),
            }
        }
    })
    .await;
    let writer = writing.await;
    drop(writer);
    let head_request = cases[index].method == "HEAD";
    match read {
        Err(_) if received.is_empty() => {
            Outcome::Silent(format!("no answer within {ANSWER_TIMEOUT:?}"))
        }
        Err(_) => match parse_answer(&received, head_request) {
            Ok(answer) => Outcome::Answer(answer),
            Err(_) => Outcome::Silent(format!(
                "connection still open after {ANSWER_TIMEOUT:?} with a partial answer"
            )),
        },
        Ok(error) if received.is_empty() => Outcome::Silent(match error {
            Some(e) => format!("connection failed without an answer: {e}"),
            None => "connection closed without an answer".into(),
        }),
        Ok(_) => match parse_answer(&received, head_request) {
            Ok(answer) => Outcome::Answer(answer),
            Err(e) => Outcome::Silent(format!("unreadable answer ({e}): {}", show(&received, 300))),
        },
    }
}

async fn run_all(port: u16, cases: Arc<Vec<Case>>) -> Vec<Outcome> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, cases) = (next.clone(), cases.clone());
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= cases.len() {
                    return done;
                }
                done.push((index, exchange(port, cases.clone(), index).await));
            }
        }));
    }
    let mut outcomes: Vec<Option<Outcome>> = (0..cases.len()).map(|_| None).collect();
    for worker in workers {
        for (index, outcome) in worker.await.expect("a sending task") {
            outcomes[index] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every request was sent"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Judging the answers.

/// The header checks of `helpers::assert_error`, without panicking: a JSON content type and a
/// request id.
fn check_error_headers(headers: &HeaderMap) -> Result<(), String> {
    let content_type = headers
        .get("content-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if !content_type
        .as_deref()
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return Err(format!(
            "content type {content_type:?}, not application/json"
        ));
    }
    if !headers.contains_key("x-request-id") {
        return Err("no X-Request-Id".into());
    }
    Ok(())
}

/// The shape checks of `helpers::assert_error` on an error of any status, without panicking:
/// the headers of `check_error_headers` and a body of exactly `{"error":{"code":"…","message":"…"}}`
/// with a non-empty code and message. Returns the code and the message, or what is wrong.
fn check_error_envelope(headers: &HeaderMap, body: &[u8]) -> Result<(String, String), String> {
    check_error_headers(headers)?;
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let object = value.as_object().ok_or("body is not an object")?;
    if object.len() != 1 {
        return Err("not only `error` at the top".into());
    }
    let error = value["error"]
        .as_object()
        .ok_or("`error` is missing or not an object")?;
    if error.len() != 2 {
        return Err("`error` holds more or less than code and message".into());
    }
    match (error.get("code"), error.get("message")) {
        (Some(Value::String(code)), Some(Value::String(message)))
            if !code.is_empty() && !message.is_empty() =>
        {
            Ok((code.clone(), message.clone()))
        }
        _ => Err("code and message must be non-empty strings".into()),
    }
}

/// Checks an error of the OAuth token endpoint (RFC 6749 §5.2) without panicking: a body with
/// `error` and at most `error_description` and `error_uri` besides, whose description uses only
/// the characters §5.2 allows; 400 with `invalid_request` or `unsupported_grant_type`, or 401
/// with `invalid_client` and `WWW-Authenticate`; a JSON content type, a request id and
/// `Cache-Control: no-store` (as `oauth.rs` tests). Returns the error and its description, or
/// what is wrong.
fn check_oauth_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Option<String>), String> {
    check_error_headers(headers)?;
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let object = value.as_object().ok_or("body is not an object")?;
    let error = object
        .get("error")
        .and_then(Value::as_str)
        .ok_or("no `error` string: not an RFC 6749 error body")?;
    if let Some(key) = object
        .keys()
        .find(|k| !["error", "error_description", "error_uri"].contains(&k.as_str()))
    {
        return Err(format!("unexpected member {key:?} in an RFC 6749 error"));
    }
    let allowed: &[&str] = match status {
        400 => &["invalid_request", "unsupported_grant_type"],
        401 => &["invalid_client"],
        _ => return Err(format!("status {status} is not an RFC 6749 error status")),
    };
    if !allowed.contains(&error) {
        return Err(format!("error {error:?} with status {status}"));
    }
    let description = match object.get("error_description") {
        None => None,
        Some(Value::String(d))
            if d.bytes()
                .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)) =>
        {
            Some(d.clone())
        }
        Some(other) => return Err(format!("error_description {other} is not RFC 6749 text")),
    };
    let no_store = headers
        .get("cache-control")
        .is_some_and(|v| v.as_bytes() == b"no-store");
    if !no_store {
        return Err("no Cache-Control: no-store".into());
    }
    if status == 401 && !headers.contains_key("www-authenticate") {
        return Err("401 without WWW-Authenticate".into());
    }
    Ok((error.to_string(), description))
}

/// Escaped, shortened bytes for a failure message.
fn show(bytes: &[u8], max: usize) -> String {
    let escaped = bytes.escape_ascii().to_string();
    if escaped.len() <= max {
        escaped
    } else {
        let mut end = max;
        while !escaped.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &escaped[..end], bytes.len())
    }
}

/// What error messages must not contain.
struct LeakCheck {
    names: HashSet<String>,
}

impl LeakCheck {
    fn new(names: &[String]) -> Self {
        Self {
            names: names
                .iter()
                .filter(|n| !ENGLISH_WORDS.contains(&n.as_str()))
                .map(|n| n.to_ascii_lowercase())
                .collect(),
        }
    }

    /// What `text` leaks: schema names and SQL keywords as whole words, and driver text.
    fn find(&self, text: &str) -> (Vec<String>, Vec<String>) {
        let mut names = Vec::new();
        let mut sql = Vec::new();
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            // Schema names in any case (PostgreSQL folds unquoted identifiers).
            if self.names.contains(&word.to_ascii_lowercase()) && !names.iter().any(|n| n == word) {
                names.push(word.to_string());
            }
            if SQL_KEYWORDS.contains(&word) && !sql.iter().any(|s| s == word) {
                sql.push(word.to_string());
            }
        }
        let lower = text.to_lowercase();
        for phrase in LEAK_PHRASES {
            if lower.contains(phrase) {
                sql.push(phrase.to_string());
            }
        }
        (names, sql)
    }
}

/// The writes the accepted requests made.
#[derive(Default)]
struct Ledger {
    tokens_issued: i64,
    calls_created: i64,
    /// Views currently stored for each call the fuzzer created.
    views: HashMap<String, i64>,
}

impl Ledger {
    /// Records an applied report; `created` when it was the call's first.
    fn applied(&mut self, id: &str, created: bool, report: Option<&Value>) -> Result<(), String> {
        let views = report
            .and_then(|r| r.get("phoneCallView"))
            .and_then(Value::as_array)
            .map(|v| v.len() as i64);
        if created {
            self.calls_created += 1;
            let views = views.ok_or("a call was created without views in its report")?;
            self.views.insert(id.to_string(), views);
        } else {
            let stored = self.views.get_mut(id).ok_or_else(|| {
                format!("call {id}, which no accepted report created, was updated")
            })?;
            if let Some(views) = views {
                *stored = views;
            }
        }
        Ok(())
    }
}

struct Failure {
    index: usize,
    detail: String,
}

struct Judge<'a> {
    cases: &'a [Case],
    leaks: LeakCheck,
    ledger: Ledger,
    failures: BTreeMap<String, Vec<Failure>>,
    /// Answers by endpoint and status, for the summary.
    statuses: BTreeMap<(Endpoint, u16), usize>,
    protocol_refusals: usize,
    silent_malformed: usize,
    unavailable: usize,
    checked_messages: usize,
}

impl Judge<'_> {
    fn fail(&mut self, index: usize, kind: &str, detail: String) {
        let endpoint = self.cases[index].endpoint.name();
        self.failures
            .entry(format!("{kind} [{endpoint}]"))
            .or_default()
            .push(Failure { index, detail });
    }

    fn check_message(&mut self, index: usize, text: &str) {
        self.checked_messages += 1;
        let (names, sql) = self.leaks.find(text);
        if !names.is_empty() {
            self.fail(
                index,
                "message names a table/constraint/index",
                format!("{names:?} in {text:?}"),
            );
        }
        if !sql.is_empty() {
            self.fail(
                index,
                "message carries SQL or driver text",
                format!("{sql:?} in {text:?}"),
            );
        }
    }

    fn judge(&mut self, index: usize, outcome: &Outcome) {
        let case = &self.cases[index];
        let answer = match outcome {
            Outcome::Silent(why) if case.malformed && !why.contains("within") => {
                self.silent_malformed += 1;
                return;
            }
            Outcome::Silent(why) => {
                let why = why.clone();
                self.fail(index, "no answer", why);
                return;
            }
            Outcome::Answer(answer) => answer,
        };
        let status = answer.status;
        *self.statuses.entry((case.endpoint, status)).or_default() += 1;
        let through_app = answer.headers.contains_key("x-request-id");
        if case.malformed && !through_app && (400..500).contains(&status) {
            self.protocol_refusals += 1;
            return;
        }
        // 503 and 501 (POST/PUT/DELETE on the list) are documented answers; any other 5xx is a
        // failure of its own, whose body is only searched for leaks.
        let server_error = status >= 500 && status != 503 && status != 501;
        if status == 500 {
            self.fail(index, "500", String::new());
        } else if server_error {
            self.fail(index, "5xx other than 503 and 501", String::new());
        }
        if status == 503 {
            self.unavailable += 1;
        }
        if server_error {
            let text = String::from_utf8_lossy(&answer.body).into_owned();
            self.check_message(index, &text);
            return;
        }
        // The error's shape by family; `got` is its code (or OAuth `error`) when the shape holds.
        let mut got: Option<String> = None;
        let mut shape_problem: Option<(&str, String)> = None;
        if status >= 400 {
            if case.oauth && status != 503 {
                match check_oauth_error(status, &answer.headers, &answer.body) {
                    Ok((error, description)) => {
                        got = Some(error);
                        if let Some(description) = description {
                            self.check_message(index, &description);
                        }
                    }
                    Err(why) => shape_problem = Some(("not an RFC 6749 error body", why)),
                }
            } else if case.method == "HEAD" {
                if let Err(why) = check_error_headers(&answer.headers) {
                    shape_problem = Some(("error headers", why));
                }
            } else {
                match check_error_envelope(&answer.headers, &answer.body) {
                    Ok((code, message)) => {
                        let documented = match status {
                            503 => Some("service_unavailable"),
                            501 => Some("request_not_implemented"),
                            _ => None,
                        };
                        if documented.is_some_and(|d| d != code) {
                            self.fail(index, "5xx with another code", code.clone());
                        }
                        self.check_message(index, &message);
                        got = Some(code);
                    }
                    Err(why) => shape_problem = Some(("not the error envelope", why)),
                }
            }
        }
        if shape_problem.is_some() {
            let text = String::from_utf8_lossy(&answer.body).into_owned();
            self.check_message(index, &text);
        }
        match (case.expect, shape_problem) {
            // What the request is names the failure, with the shape problem if any.
            (Some((want_status, want, what)), problem)
                if status != want_status || got.as_deref() != Some(want) =>
            {
                let detail = problem
                    .map(|(kind, why)| format!("{kind}: {why}"))
                    .unwrap_or_default();
                self.fail(
                    index,
                    &format!("{what} not answered {want_status} {want}"),
                    detail,
                );
            }
            (_, Some((kind, why))) => self.fail(index, kind, why),
            _ => {}
        }
        if (200..300).contains(&status) {
            if let Some(reason) = case.must_reject {
                let note = case.note.clone();
                self.fail(index, reason, note);
            }
            self.account(index, answer);
        }
    }

    /// Checks a 2xx answer that writes: a token, an applied report, a batch.
    fn account(&mut self, index: usize, answer: &Answer) {
        let case = &self.cases[index];
        let path = {
            let start = case
                .bytes
                .iter()
                .position(|&b| b == b' ')
                .map_or(0, |i| i + 1);
            let end = case.bytes[start..]
                .iter()
                .position(|&b| b == b' ')
                .map_or(start, |i| start + i);
            case.bytes[start..end].to_vec()
        };
        let path = path_of(&path).to_vec();
        let answer_json: Option<Value> = serde_json::from_slice(&answer.body).ok();
        if case.oauth {
            if answer.status == 200 {
                if answer_json
                    .as_ref()
                    .and_then(|v| v.get("access_token"))
                    .is_some()
                {
                    self.ledger.tokens_issued += 1;
                } else {
                    self.fail(
                        index,
                        "unaccounted 200 from the token endpoint",
                        String::new(),
                    );
                }
            }
            return;
        }
        if !path.starts_with(b"/switch/") || case.method == "HEAD" || case.method == "GET" {
            return;
        }
        let sent: Option<Value> = serde_json::from_slice(&case.body).ok();
        let Some(answer_json) = answer_json else {
            self.fail(
                index,
                "unaccounted 2xx from the switch feed",
                "answer is not JSON".into(),
            );
            return;
        };
        if let Some(results) = answer_json.get("results").and_then(Value::as_array) {
            let reports = sent
                .as_ref()
                .and_then(|s| s.get("reports"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if results.len() != reports.len() {
                self.fail(
                    index,
                    "batch result shape",
                    format!("{} results for {} reports", results.len(), reports.len()),
                );
            }
            let dup_reports = case.dup_reports.clone();
            for (i, result) in results.iter().enumerate() {
                let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
                if let Some(error) = result.get("error") {
                    let shape_ok = error.as_object().is_some_and(|e| e.len() == 2)
                        && error.get("code") == Some(&json!("request_invalid"))
                        && error
                            .get("message")
                            .and_then(Value::as_str)
                            .is_some_and(|m| !m.is_empty());
                    if !shape_ok || status != 400 {
                        self.fail(
                            index,
                            "batch result shape",
                            format!("reports[{i}]: {result}"),
                        );
                    }
                    if let Some(message) = error.get("message").and_then(Value::as_str) {
                        self.check_message(index, message);
                    }
                    continue;
                }
                if dup_reports.contains(&i) {
                    self.fail(
                        index,
                        "a batch report with a duplicate JSON key was accepted",
                        format!("{}; reports[{i}]: {result}", case.note),
                    );
                }
                let applied = result.get("applied").and_then(Value::as_bool);
                let id = result.get("id").and_then(Value::as_str);
                match (status, applied, id) {
                    (201 | 200, Some(true), Some(id)) => {
                        if let Err(why) = self.ledger.applied(id, status == 201, reports.get(i)) {
                            self.fail(index, "unaccounted write", why);
                        }
                    }
                    (200, Some(false), Some(_)) => {}
                    _ => self.fail(
                        index,
                        "batch result shape",
                        format!("reports[{i}]: {result}"),
                    ),
                }
            }
        } else {
            let applied = answer_json.get("applied").and_then(Value::as_bool);
            let id = answer_json.get("id").and_then(Value::as_str);
            match (applied, id) {
                (Some(true), Some(id)) => {
                    let id = id.to_string();
                    if let Err(why) = self
                        .ledger
                        .applied(&id, answer.status == 201, sent.as_ref())
                    {
                        self.fail(index, "unaccounted write", why);
                    }
                }
                (Some(false), Some(_)) => {}
                _ => self.fail(
                    index,
                    "unaccounted 2xx from the switch feed",
                    show(&answer.body, 200),
                ),
            }
        }
    }

    /// The failures, grouped by kind, each with its count and its first offenders.
    fn report(&self, outcomes: &[Outcome]) -> String {
        let mut out = String::new();
        for (kind, failures) in &self.failures {
            let mut requests: Vec<usize> = failures.iter().map(|f| f.index).collect();
            requests.dedup();
            out.push_str(&format!("\n== {kind}: {} request(s)\n", requests.len()));
            for failure in failures.iter().take(SHOWN_PER_KIND) {
                let case = &self.cases[failure.index];
                let head = &case.bytes[..case.body_at];
                let body = &case.bytes[case.body_at..];
                out.push_str(&format!(
                    "  #{} {}\n     request: {}\n     body:    {}\n",
                    failure.index,
                    failure.detail,
                    show(head, 600),
                    show(body, 300),
                ));
                match &outcomes[failure.index] {
                    Outcome::Answer(a) => out.push_str(&format!(
                        "     answer:  {} {:?} {}\n",
                        a.status,
                        a.headers
                            .get("content-type")
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                        show(&a.body, 500)
                    )),
                    Outcome::Silent(why) => out.push_str(&format!("     answer:  none ({why})\n")),
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_never_fail_the_server_leak_the_schema_or_store_a_refusal() {
    let seed: u64 = env_or("FUZZ_SEED", DEFAULT_SEED);
    let requests: usize = env_or("FUZZ_REQUESTS", DEFAULT_REQUESTS);
    let reproduce =
        format!("FUZZ_SEED={seed} FUZZ_REQUESTS={requests} SKIP_LINT=1 scripts/test fuzz");
    println!("fuzz: FUZZ_SEED={seed} FUZZ_REQUESTS={requests}");

    let app = spawn_app().await;
    let world = setup(&app).await;
    let names = schema_names(app.pool()).await;
    let before = row_counts(app.pool()).await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();

    let mut generator = Gen::new(seed, &world);
    let cases: Arc<Vec<Case>> = Arc::new((0..requests).map(|_| generator.case()).collect());
    let started = Instant::now();
    let outcomes = run_all(port, cases.clone()).await;
    let elapsed = started.elapsed();

    let mut judge = Judge {
        cases: &cases,
        leaks: LeakCheck::new(&names),
        ledger: Ledger::default(),
        failures: BTreeMap::new(),
        statuses: BTreeMap::new(),
        protocol_refusals: 0,
        silent_malformed: 0,
        unavailable: 0,
        checked_messages: 0,
    };
    for (index, outcome) in outcomes.iter().enumerate() {
        judge.judge(index, outcome);
    }

    let after = row_counts(app.pool()).await;
    let mut expected = before.clone();
    *expected.get_mut("access_tokens").unwrap() += judge.ledger.tokens_issued;
    *expected.get_mut("phone_calls").unwrap() += judge.ledger.calls_created;
    *expected.get_mut("phone_call_views").unwrap() += judge.ledger.views.values().sum::<i64>();
    let mut count_failures = Vec::new();
    for table in TABLES {
        if after[table] != expected[table] {
            count_failures.push(format!(
                "{table}: {} rows, expected {} ({} before the run)",
                after[table], expected[table], before[table]
            ));
        }
    }

    let mut by_endpoint: BTreeMap<Endpoint, BTreeMap<u16, usize>> = BTreeMap::new();
    for ((endpoint, status), n) in &judge.statuses {
        by_endpoint
            .entry(*endpoint)
            .or_default()
            .insert(*status, *n);
    }
    let mut summary = format!(
        "fuzz: {requests} requests in {:.1} s (seed {seed}); {} schema names looked for; {} messages checked; \
         {} tokens issued, {} calls created by accepted requests; {} answers 503; \
         {} malformed requests refused by the HTTP layer, {} closed without an answer\n",
        elapsed.as_secs_f64(),
        names.len(),
        judge.checked_messages,
        judge.ledger.tokens_issued,
        judge.ledger.calls_created,
        judge.unavailable,
        judge.protocol_refusals,
        judge.silent_malformed,
    );
    for (endpoint, statuses) in &by_endpoint {
        let total: usize = statuses.values().sum();
        let list: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        summary.push_str(&format!(
            "  {:<13} {total:>5}: {}\n",
            endpoint.name(),
            list.join(" ")
        ));
    }
    println!("{summary}");

    if !judge.failures.is_empty() || !count_failures.is_empty() {
        let mut kinds: Vec<String> = judge
            .failures
            .iter()
            .map(|(kind, f)| format!("  {:>5}  {kind}", f.len()))
            .collect();
        kinds.extend(count_failures.iter().map(|c| format!("  rows   {c}")));
        panic!(
            "the fuzz test found problems (reproduce with {reproduce}):\n{}\n{summary}{}",
            kinds.join("\n"),
            judge.report(&outcomes)
        );
    }
}
