//! stream-bench: live streams (server-sent events) of the phonecalls list against polling, under
//! the same switch feed, on one service instance. Run by `scripts/bench --stream`, which seeds
//! the accounts, issues the tokens and starts the service; see `usage()` for the arguments.
//!
//! 1. Opens N streams (admins, organization accounts and users, with and without filters, all
//!    with count=5000) and waits for every snapshot.
//! 2. Drives the switch feed at R reports/s for D s from several keep-alive connections (new
//!    calls, answers, transfers or caller-id changes, ends), each report with a unique `nonce`
//!    that the PhoneCall JSON shows, and records each report's 2xx time.
//! 3. Latency of every upsert/remove: from the 2xx of the report it reflects to its arrival (an
//!    upsert names its report by its nonce; a remove is tied to the first report after the state
//!    the stream held that takes the call out of the stream's list, by the list's rules).
//! 4. After the feed stopped and 2 s of quiet, each stream's state against a fresh GET of the
//!    same list: missed (absent or stale) and extra (present but not listed, duplicate upserts
//!    identical to the state held, removes of ids not held).
//! 5. The same N clients polling their list once per second under the same feed for D s:
//!    staleness (from a report's 2xx to the first poll showing its state, or showing the call
//!    gone), and the database statements per second either way from the service's /metrics.

mod http;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use http::Conn;

// ------------------------------------------------------------------------------------------
// Time, randomness, dates
// ------------------------------------------------------------------------------------------

static START: OnceLock<Instant> = OnceLock::new();

fn now_us() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

const NO_TIME: u64 = u64::MAX;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Now as xs:dateTime, UTC, second precision.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

// ------------------------------------------------------------------------------------------
// Arguments and accounts
// ------------------------------------------------------------------------------------------

struct Args {
    addr: String,
    metrics: Option<String>,
    pid: Option<u32>,
    accounts: String,
    streams: usize,
    rate: f64,
    duration: f64,
    feed_connections: usize,
    live: usize,
    quiet: f64,
    polling: bool,
    between: f64,
    json: Option<String>,
    after_populate: Option<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: stream-bench --addr 127.0.0.1:18080 --accounts FILE [--metrics 127.0.0.1:19090] [--pid PID]
       [--streams 1000] [--rate 1000] [--duration 60] [--feed-connections 48] [--live 1500]
       [--quiet 2] [--no-polling] [--between SECONDS] [--json FILE] [--after-populate 'SHELL COMMAND']
FILE: one account a line, tab-separated: role (admin|organization|user|switch), user id,
organization id (or -), extensions' full numbers comma-separated (or -), token."
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: String::new(),
        metrics: None,
        pid: None,
        accounts: String::new(),
        streams: 1000,
        rate: 1000.0,
        duration: 60.0,
        feed_connections: 48,
        live: 1500,
        quiet: 2.0,
        polling: true,
        between: 0.0,
        json: None,
        after_populate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--addr" => a.addr = v(),
            "--metrics" => a.metrics = Some(v()),
            "--pid" => a.pid = v().parse().ok(),
            "--accounts" => a.accounts = v(),
            "--streams" => a.streams = v().parse().unwrap_or_else(|_| usage()),
            "--rate" => a.rate = v().parse().unwrap_or_else(|_| usage()),
            "--duration" => a.duration = v().parse().unwrap_or_else(|_| usage()),
            "--feed-connections" => a.feed_connections = v().parse().unwrap_or_else(|_| usage()),
            "--live" => a.live = v().parse().unwrap_or_else(|_| usage()),
            "--quiet" => a.quiet = v().parse().unwrap_or_else(|_| usage()),
            "--no-polling" => a.polling = false,
            "--between" => a.between = v().parse().unwrap_or_else(|_| usage()),
            "--json" => a.json = Some(v()),
            "--after-populate" => a.after_populate = Some(v()),
            _ => usage(),
        }
    }
    if a.addr.is_empty()
        || a.accounts.is_empty()
        || a.streams == 0
        || a.rate <= 0.0
        || a.duration <= 0.0
    {
        usage();
    }
    a.feed_connections = a.feed_connections.max(1);
    a
}

struct Ext {
    full: String,
    short: String,
    user: i64,
}

struct User {
    id: i64,
    token: Arc<str>,
    exts: Vec<usize>,
}

#[allow(dead_code)]
struct Org {
    id: i64,
    account: Option<(i64, Arc<str>)>,
    users: Vec<User>,
}

struct World {
    exts: Vec<Ext>,
    orgs: Vec<Org>,
    admins: Vec<(i64, Arc<str>)>,
    switch: Arc<str>,
}

fn load_world(path: &str) -> World {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("stream-bench: cannot read {path}: {e}");
        std::process::exit(2)
    });
    let mut w = World {
        exts: Vec::new(),
        orgs: Vec::new(),
        admins: Vec::new(),
        switch: Arc::from(""),
    };
    let mut org_index: HashMap<i64, usize> = HashMap::new();
    let mut org_of = |w: &mut World, id: i64| -> usize {
        *org_index.entry(id).or_insert_with(|| {
            w.orgs.push(Org {
                id,
                account: None,
                users: Vec::new(),
            });
            w.orgs.len() - 1
        })
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 5 {
            eprintln!("stream-bench: bad accounts line {line:?}");
            std::process::exit(2)
        }
        let id: i64 = f[1].parse().unwrap_or(0);
        let token: Arc<str> = Arc::from(f[4].trim());
        match f[0] {
            "admin" => w.admins.push((id, token)),
            "switch" => w.switch = token,
            "organization" => {
                let o = org_of(&mut w, f[2].parse().unwrap_or(0));
                w.orgs[o].account = Some((id, token));
            }
            "user" => {
                let o = org_of(&mut w, f[2].parse().unwrap_or(0));
                let mut exts = Vec::new();
                for full in f[3].split(',').filter(|s| !s.is_empty() && *s != "-") {
                    let short = full.split('*').nth(1).unwrap_or(full).to_string();
                    w.exts.push(Ext {
                        full: full.to_string(),
                        short,
                        user: id,
                    });
                    exts.push(w.exts.len() - 1);
                }
                if !exts.is_empty() {
                    w.orgs[o].users.push(User { id, token, exts });
                }
            }
            r => {
                eprintln!("stream-bench: unknown role {r:?}");
                std::process::exit(2)
            }
        }
    }
    w.orgs.retain(|o| o.users.len() >= 3 && o.account.is_some());
    if w.orgs.is_empty() || w.admins.is_empty() || w.switch.is_empty() {
        eprintln!("stream-bench: the accounts need an admin, a switch and organizations with an account and 3 users or more");
        std::process::exit(2)
    }
    w
}

// ------------------------------------------------------------------------------------------
// Calls, reports and the list's rules (enough of them to tie a remove to its report)
// ------------------------------------------------------------------------------------------

#[derive(Clone)]
struct View {
    ext: usize,
    status: u8,
    dest: String,
}

#[derive(Clone)]
struct CallState {
    org: usize,
    charged: usize,
    views: Vec<View>,
    ended: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Scope {
    All,
    Org(usize),
    User(i64),
    Ext(usize),
}

#[derive(Clone, PartialEq)]
enum Filter {
    None,
    Status(u8),
    DestPrefix(&'static str),
}

#[allow(dead_code)]
struct Spec {
    kind: &'static str,
    label: &'static str,
    token: Arc<str>,
    path: String,
    scope: Scope,
    filter: Filter,
}

fn matches(spec: &Spec, s: &CallState, w: &World) -> bool {
    if s.ended {
        return false;
    }
    let involves = |f: &dyn Fn(usize) -> bool| f(s.charged) || s.views.iter().any(|v| f(v.ext));
    let scoped = match spec.scope {
        Scope::All => true,
        Scope::Org(o) => s.org == o,
        Scope::User(u) => involves(&|e| w.exts[e].user == u),
        Scope::Ext(x) => involves(&|e| e == x),
    };
    scoped
        && match &spec.filter {
            Filter::None => true,
            Filter::Status(v) => s.views.iter().any(|x| x.status == *v),
            Filter::DestPrefix(p) => s.views.iter().any(|x| x.dest.starts_with(p)),
        }
}

struct Call {
    id: String,
    state: CallState,
    seq: u32,
    stage: u8,
    local: bool,
    answers: bool,
    middle: bool,
    published: String,
    answered: Option<String>,
}

struct Report {
    call: u32,
    seq: u32,
    ok_us: AtomicU64,
    state: CallState,
}

/// Reports of one feed connection, shared with the analysis (2xx times are set as they come).
struct FeedLog {
    reports: std::sync::RwLock<Vec<Arc<Report>>>,
    /// Each call's reports, in order.
    chains: std::sync::RwLock<Vec<Vec<u32>>>,
}

struct FeedState {
    task: usize,
    rng: Rng,
    conn: Conn,
    calls: Vec<Call>,
    live: Vec<u32>,
    log: Arc<FeedLog>,
    ok: u64,
    failed: u64,
    last_error: Option<String>,
    stamp: u64,
    /// Each answered report's time from sending to its answer, µs.
    put_us: Vec<u64>,
}

fn other_user(rng: &mut Rng, org: &Org, not: i64) -> usize {
    loop {
        let u = rng.below(org.users.len());
        if org.users[u].id != not {
            return u;
        }
    }
}

impl FeedState {
    fn new_call(&mut self, w: &World) -> u32 {
        let o = self.rng.below(w.orgs.len());
        let org = &w.orgs[o];
        let ua = self.rng.below(org.users.len());
        let a = org.users[ua].exts[self.rng.below(org.users[ua].exts.len())];
        let local = self.rng.chance(0.4);
        let mut views = Vec::new();
        if local {
            let ub = other_user(&mut self.rng, org, org.users[ua].id);
            let b = org.users[ub].exts[0];
            let dest = w.exts[b].full.clone();
            views.push(View {
                ext: a,
                status: 4,
                dest: dest.clone(),
            });
            views.push(View {
                ext: b,
                status: 3,
                dest,
            });
        } else {
            let prefix = if self.rng.chance(0.5) {
                "+4420"
            } else {
                "+4430"
            };
            let dest = format!("{prefix}{:07}", self.rng.below(10_000_000));
            views.push(View {
                ext: a,
                status: 4,
                dest,
            });
        }
        let n = self.calls.len() as u64;
        let r = self.rng.next();
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (r >> 32) as u32,
            self.task & 0xffff,
            self.stamp & 0xfff,
            (r >> 20) & 0xfff,
            n
        );
        self.calls.push(Call {
            id,
            state: CallState {
                org: o,
                charged: a,
                views,
                ended: false,
            },
            seq: 1,
            stage: 0,
            local,
            answers: self.rng.chance(0.8),
            middle: self.rng.chance(0.4),
            published: utc_now(),
            answered: None,
        });
        self.log.chains.write().unwrap().push(Vec::new());
        (self.calls.len() - 1) as u32
    }

    /// Moves call `c` on by one report; whether it ended.
    fn advance(&mut self, c: u32, w: &World) -> bool {
        let answers = self.calls[c as usize].answers;
        let middle = self.calls[c as usize].middle;
        let stage = self.calls[c as usize].stage;
        let end = match stage {
            0 => !answers,
            1 => !middle,
            _ => true,
        };
        let call = &mut self.calls[c as usize];
        call.seq += 1;
        if end {
            call.state.ended = true;
            return true;
        }
        call.stage += 1;
        if call.stage == 1 {
            call.answered = Some(utc_now());
            for v in &mut call.state.views {
                v.status = 5;
            }
        } else if call.local {
            // Transferred: the second party's view moves to a third user's extension.
            let org = &w.orgs[call.state.org];
            let a_user = w.exts[call.state.views[0].ext].user;
            let b_user = w.exts[call.state.views[1].ext].user;
            let c = loop {
                let u = other_user(&mut self.rng, org, a_user);
                if org.users[u].id != b_user {
                    break org.users[u].exts[0];
                }
            };
            call.state.views[1].ext = c;
            call.state.views[1].status = 3;
        } else {
            // Put on hold, then back: the status stays, the far end changes.
            call.state.views[0].status = 5;
        }
        false
    }

    fn body(&self, c: u32, nonce: &str, w: &World) -> String {
        let call = &self.calls[c as usize];
        let s = &call.state;
        let charged = &w.exts[s.charged].full;
        let mut b = format!(
            "{{\"sequence\":{},\"extension\":\"{charged}\",\"published\":\"{}\",\"nonce\":\"{nonce}\"",
            call.seq, call.published
        );
        if let Some(a) = &call.answered {
            b.push_str(&format!(",\"answered\":\"{a}\""));
        }
        if s.ended {
            b.push_str(&format!(",\"ended\":\"{}\"", utc_now()));
        }
        b.push_str(",\"phoneCallView\":[");
        for (i, v) in s.views.iter().enumerate() {
            let source = &w.exts[s.views[0].ext].full;
            let flow = if call.local { 2 } else { 4 };
            let status = if s.ended { 0 } else { v.status };
            b.push_str(&format!(
                "{}{{\"id\":\"{:02}\",\"extension\":\"{}\",\"source\":[\"{source}\"],\"destination\":[\"{}\"],\"flow\":{flow},\"status\":{status}",
                if i > 0 { "," } else { "" },
                i,
                w.exts[v.ext].full,
                v.dest
            ));
            if !call.local && call.stage >= 2 {
                b.push_str(",\"callerId\":\"Hold <+442079460000>\"");
            }
            if s.ended {
                b.push_str(if call.answered.is_some() {
                    ",\"disposition\":0"
                } else {
                    ",\"disposition\":3"
                });
            }
            b.push('}');
        }
        b.push_str("]}");
        b
    }

    /// Sends the next report of call `c` (already advanced), recording it.
    async fn send(&mut self, c: u32, w: &World, token: &str) {
        let idx = {
            let mut reports = self.log.reports.write().unwrap();
            let call = &self.calls[c as usize];
            reports.push(Arc::new(Report {
                call: c,
                seq: call.seq,
                ok_us: AtomicU64::new(NO_TIME),
                state: call.state.clone(),
            }));
            reports.len() - 1
        };
        self.log.chains.write().unwrap()[c as usize].push(idx as u32);
        let nonce = format!("sb-{}-{}", self.task, idx);
        let body = self.body(c, &nonce, w);
        let req = http::put_request(
            &format!("/switch/v1/phoneCalls/{}", self.calls[c as usize].id),
            token,
            &body,
        );
        let sent = now_us();
        match self.conn.call(&req, Duration::from_secs(30)).await {
            Ok(r) if (200..300).contains(&r.status) => {
                let t = now_us();
                self.put_us.push(t - sent);
                self.log.reports.read().unwrap()[idx]
                    .ok_us
                    .store(t, Ordering::Relaxed);
                self.ok += 1;
            }
            Ok(r) => {
                self.failed += 1;
                self.last_error =
                    Some(format!("{} {}", r.status, String::from_utf8_lossy(&r.body)));
            }
            Err(e) => {
                self.failed += 1;
                self.last_error = Some(e.to_string());
            }
        }
    }

    /// One report: a new call or the next report of a live one, keeping about `target` live.
    async fn step(&mut self, w: &World, token: &str, target: usize) {
        let new = self.live.is_empty()
            || (self.live.len() < target && self.rng.chance(0.5))
            || (self.live.len() >= target && self.rng.chance(0.15));
        if new {
            let c = self.new_call(w);
            self.live.push(c);
            self.send(c, w, token).await;
        } else {
            let pos = self.rng.below(self.live.len());
            let c = self.live[pos];
            if self.advance(c, w) {
                self.live.swap_remove(pos);
            }
            self.send(c, w, token).await;
        }
    }
}

fn parse_nonce(n: &str) -> Option<(usize, usize)> {
    let rest = n.strip_prefix("sb-")?;
    let (t, i) = rest.split_once('-')?;
    Some((t.parse().ok()?, i.parse().ok()?))
}

/// The feed for `duration` at `rate` reports/s over all its connections; returns the states and
/// the reports that got a 2xx.
async fn run_feed(
    feeds: Vec<FeedState>,
    w: Arc<World>,
    rate: f64,
    duration: Duration,
    live_target: usize,
) -> (Vec<FeedState>, u64, u64) {
    let n = feeds.len();
    let interval = Duration::from_secs_f64(n as f64 / rate);
    let started = Instant::now();
    let end = started + duration;
    let mut handles = Vec::new();
    for (k, mut f) in feeds.into_iter().enumerate() {
        let w = w.clone();
        let target = live_target.div_ceil(n);
        handles.push(tokio::spawn(async move {
            let token = w.switch.clone();
            let before = f.ok;
            let failed_before = f.failed;
            // Staggered starts, then one report per interval (no catching up beyond 1 s behind).
            let mut next = started + interval.mul_f64(k as f64 / n as f64);
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                f.step(&w, &token, target).await;
                next += interval;
                let now = Instant::now();
                if now > next + Duration::from_secs(1) {
                    next = now;
                }
            }
            let (ok, failed) = (f.ok - before, f.failed - failed_before);
            (f, ok, failed)
        }));
    }
    let mut out = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    for h in handles {
        let (f, o, e) = h.await.unwrap();
        ok += o;
        failed += e;
        out.push(f);
    }
    out.sort_by_key(|f| f.task);
    (out, ok, failed)
}

/// Reports new calls, unpaced, until about `live_target` are live.
async fn populate(feeds: Vec<FeedState>, w: Arc<World>, live_target: usize) -> Vec<FeedState> {
    let n = feeds.len();
    let mut handles = Vec::new();
    for mut f in feeds {
        let w = w.clone();
        let target = live_target.div_ceil(n);
        handles.push(tokio::spawn(async move {
            let token = w.switch.clone();
            while f.live.len() < target {
                let c = f.new_call(&w);
                f.live.push(c);
                f.send(c, &w, &token).await;
            }
            f
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out.sort_by_key(|f| f.task);
    out
}

// ------------------------------------------------------------------------------------------
// What a client saw, and its analysis
// ------------------------------------------------------------------------------------------

type NonceRef = Option<(usize, usize)>;

#[derive(Default)]
struct Seen {
    /// (report, arrival) of each new state shown (an upsert, or a poll showing a new nonce).
    shown: Vec<(usize, usize, u64)>,
    /// (report held before, arrival) of each call seen leaving.
    gone: Vec<(usize, usize, u64)>,
    untied: u64,
}

struct Stats {
    samples: Vec<u64>,
    no_2xx: u64,
    unattributed: u64,
}

fn attribute(seen: &[(usize, Seen)], specs: &[Spec], logs: &[Arc<FeedLog>], w: &World) -> Stats {
    let mut st = Stats {
        samples: Vec::new(),
        no_2xx: 0,
        unattributed: 0,
    };
    let reports: Vec<_> = logs.iter().map(|l| l.reports.read().unwrap()).collect();
    let chains: Vec<_> = logs.iter().map(|l| l.chains.read().unwrap()).collect();
    let push = |ok: u64, at: u64, st: &mut Stats| {
        if ok == NO_TIME {
            st.no_2xx += 1;
        } else {
            st.samples.push(at.saturating_sub(ok));
        }
    };
    for (spec_i, s) in seen {
        let spec = &specs[*spec_i];
        for &(t, i, at) in &s.shown {
            match reports.get(t).and_then(|r| r.get(i)) {
                Some(r) => push(r.ok_us.load(Ordering::Relaxed), at, &mut st),
                None => st.unattributed += 1,
            }
        }
        for &(t, i, at) in &s.gone {
            let Some(held) = reports.get(t).and_then(|r| r.get(i)) else {
                st.unattributed += 1;
                continue;
            };
            let chain = &chains[t][held.call as usize];
            let found = chain
                .iter()
                .map(|&j| &reports[t][j as usize])
                .find(|r| r.seq > held.seq && !matches(spec, &r.state, w));
            match found {
                Some(r) => push(r.ok_us.load(Ordering::Relaxed), at, &mut st),
                None => st.unattributed += 1,
            }
        }
    }
    st.samples.sort_unstable();
    st
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

fn nonce_of(v: &Value) -> NonceRef {
    v.get("nonce").and_then(Value::as_str).and_then(parse_nonce)
}

fn entries(page: &Value) -> HashMap<String, Value> {
    let mut m = HashMap::new();
    if let Some(a) = page.get("entry").and_then(Value::as_array) {
        for e in a {
            if let Some(id) = e.get("id").and_then(Value::as_str) {
                m.insert(id.to_string(), e.clone());
            }
        }
    }
    m
}

// ------------------------------------------------------------------------------------------
// Streams
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct StreamOut {
    state: HashMap<String, Value>,
    seen: Seen,
    upserts: u64,
    removes: u64,
    duplicates: u64,
    removes_unheld: u64,
    snapshots: u64,
    resets: u64,
    heartbeats: u64,
    reconnects: u64,
    errors: Vec<String>,
    other_events: u64,
    late_events: u64,
    open_status: Option<u16>,
    /// From the first connection to the first snapshot, µs.
    first_snapshot_us: Option<u64>,
    /// When (µs since start) the opening permit was taken, the answer's head arrived, and the
    /// first snapshot was read, for the first connection that got a snapshot.
    t_permit: u64,
    t_head: u64,
    t_snapshot: u64,
}

struct Shared {
    snapshots_in: AtomicUsize,
    stop: AtomicBool,
    stop_notify: tokio::sync::Notify,
    /// Events arriving after this (µs) count as late (after the feed stopped and the quiet began).
    feed_stopped_us: AtomicU64,
    bytes: AtomicU64,
    /// Streams opening at once (until their first snapshot): clients arrive over time, not all
    /// in the same millisecond.
    opening: Arc<tokio::sync::Semaphore>,
}

async fn stream_task(
    addr: String,
    spec_path: String,
    token: Arc<str>,
    shared: Arc<Shared>,
) -> StreamOut {
    let mut out = StreamOut::default();
    let mut first_snapshot = true;
    let mut attempts = 0;
    let began = now_us();
    'connect: loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        attempts += 1;
        if attempts > 1 {
            out.reconnects += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if attempts > 20 {
            out.errors.push("gave up after 20 connections".into());
            break;
        }
        let mut permit = if first_snapshot {
            Some(shared.opening.clone().acquire_owned().await.unwrap())
        } else {
            None
        };
        if first_snapshot {
            out.t_permit = now_us();
        }
        let mut conn = Conn::new(&addr);
        let req = http::get_request(&spec_path, Some(&token), "text/event-stream");
        let head = async {
            conn.send(&req).await?;
            conn.read_head().await
        };
        let head = match tokio::time::timeout(Duration::from_secs(120), head).await {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                out.errors.push(format!("open: {e}"));
                continue;
            }
            Err(_) => {
                out.errors.push("open: no answer in 120 s".into());
                continue;
            }
        };
        out.open_status = Some(head.status);
        if first_snapshot {
            out.t_head = now_us();
        }
        let ct = head
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if head.status != 200 || !ct.starts_with("text/event-stream") {
            let mut body = Vec::new();
            if let Some(n) = head.length {
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Ok(Some(p)) = conn.next_piece(false).await {
                        body.extend_from_slice(&p);
                        if body.len() >= n {
                            break;
                        }
                    }
                })
                .await;
            }
            let body: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            out.errors
                .push(format!("open: {} {ct} {body}", head.status));
            if head.status == 503 || head.status == 429 {
                drop(permit.take());
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            break;
        }
        let mut line_buf: Vec<u8> = Vec::new();
        let mut event = String::new();
        let mut data = String::new();
        let mut has_data = false;
        loop {
            let piece = tokio::select! {
                p = conn.next_piece(head.chunked) => p,
                _ = shared.stop_notify.notified() => break 'connect,
            };
            if shared.stop.load(Ordering::Relaxed) {
                break 'connect;
            }
            let piece = match piece {
                Ok(Some(p)) => p,
                Ok(None) => {
                    out.errors.push("the server ended the stream".into());
                    continue 'connect;
                }
                Err(e) => {
                    out.errors.push(format!("read: {e}"));
                    continue 'connect;
                }
            };
            shared
                .bytes
                .fetch_add(piece.len() as u64, Ordering::Relaxed);
            let at = now_us();
            line_buf.extend_from_slice(&piece);
            let mut start = 0;
            while let Some(nl) = line_buf[start..].iter().position(|&b| b == b'\n') {
                let mut line = &line_buf[start..start + nl];
                start += nl + 1;
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                if line.is_empty() {
                    // Dispatch.
                    if has_data || !event.is_empty() {
                        let late = at > shared.feed_stopped_us.load(Ordering::Relaxed);
                        handle_event(
                            &mut out,
                            &event,
                            &data,
                            at,
                            late,
                            &mut first_snapshot,
                            &shared,
                        );
                        if !first_snapshot && permit.is_some() {
                            drop(permit.take());
                            out.first_snapshot_us = Some(now_us() - began);
                            out.t_snapshot = now_us();
                        }
                    }
                    event.clear();
                    data.clear();
                    has_data = false;
                    continue;
                }
                if line[0] == b':' {
                    out.heartbeats += 1;
                    continue;
                }
                let text = String::from_utf8_lossy(line);
                let (field, value) = match text.split_once(':') {
                    Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
                    None => (text.to_string(), String::new()),
                };
                match field.as_str() {
                    "event" => event = value,
                    "data" => {
                        if has_data {
                            data.push('\n');
                        }
                        data.push_str(&value);
                        has_data = true;
                    }
                    _ => {}
                }
            }
            line_buf.drain(..start);
        }
    }
    out
}

fn handle_event(
    out: &mut StreamOut,
    event: &str,
    data: &str,
    at: u64,
    late: bool,
    first_snapshot: &mut bool,
    shared: &Shared,
) {
    let v: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            out.errors
                .push(format!("event {event}: data not JSON ({e}): {:.200}", data));
            return;
        }
    };
    if late && (event == "upsert" || event == "remove") {
        out.late_events += 1;
    }
    match event {
        "snapshot" => {
            out.snapshots += 1;
            if v.get("entry").map(|e| !e.is_array()).unwrap_or(true) {
                out.errors
                    .push(format!("snapshot without an entry array: {:.200}", data));
            }
            out.state = entries(&v);
            if *first_snapshot {
                *first_snapshot = false;
                shared.snapshots_in.fetch_add(1, Ordering::SeqCst);
            }
        }
        "upsert" => {
            out.upserts += 1;
            let Some(id) = v.get("id").and_then(Value::as_str).map(str::to_string) else {
                out.errors
                    .push(format!("upsert without an id: {:.200}", data));
                return;
            };
            match nonce_of(&v) {
                Some((t, i)) => out.seen.shown.push((t, i, at)),
                None => out.seen.untied += 1,
            }
            if out.state.get(&id) == Some(&v) {
                out.duplicates += 1;
            }
            out.state.insert(id, v);
        }
        "remove" => {
            out.removes += 1;
            let Some(id) = v.get("id").and_then(Value::as_str) else {
                out.errors
                    .push(format!("remove without an id: {:.200}", data));
                return;
            };
            match out.state.remove(id) {
                Some(held) => match nonce_of(&held) {
                    Some((t, i)) => out.seen.gone.push((t, i, at)),
                    None => out.seen.untied += 1,
                },
                None => out.removes_unheld += 1,
            }
        }
        "reset" => {
            out.resets += 1;
            out.state.clear();
        }
        _ => out.other_events += 1,
    }
}

// ------------------------------------------------------------------------------------------
// Polling
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct PollOut {
    seen: Seen,
    /// Each poll's time from sending to its answer, µs.
    waits: Vec<u64>,
    polls: u64,
    errors: u64,
    last_error: Option<String>,
    late: u64,
}

async fn poll_task(
    addr: String,
    path: String,
    token: Arc<str>,
    offset: Duration,
    until: Instant,
) -> PollOut {
    let mut out = PollOut::default();
    let mut conn = Conn::new(&addr);
    let req = http::get_request(&path, Some(&token), "application/json");
    let mut held: HashMap<String, (usize, usize)> = HashMap::new();
    let mut first = true;
    let mut next = Instant::now() + offset;
    while next < until {
        tokio::time::sleep_until(next.into()).await;
        next += Duration::from_secs(1);
        let sent = now_us();
        let r = conn.call(&req, Duration::from_secs(30)).await;
        let at = now_us();
        out.waits.push(at - sent);
        if Instant::now() > next {
            out.late += 1;
        }
        let page = match r {
            Ok(r) if r.status == 204 => Value::Null,
            Ok(r) if r.status == 200 => match serde_json::from_slice::<Value>(&r.body) {
                Ok(v) => v,
                Err(e) => {
                    out.errors += 1;
                    out.last_error = Some(format!("not JSON: {e}"));
                    continue;
                }
            },
            Ok(r) => {
                out.errors += 1;
                out.last_error = Some(format!("{} {}", r.status, String::from_utf8_lossy(&r.body)));
                continue;
            }
            Err(e) => {
                out.errors += 1;
                out.last_error = Some(e.to_string());
                continue;
            }
        };
        out.polls += 1;
        let now: HashMap<String, Value> = entries(&page);
        let mut next_held = HashMap::with_capacity(now.len());
        for (id, v) in &now {
            let Some(n) = nonce_of(v) else {
                out.seen.untied += 1;
                continue;
            };
            if !first && held.get(id) != Some(&n) {
                out.seen.shown.push((n.0, n.1, at));
            }
            next_held.insert(id.clone(), n);
        }
        if !first {
            for (id, n) in &held {
                if !now.contains_key(id) {
                    out.seen.gone.push((n.0, n.1, at));
                }
            }
        }
        held = next_held;
        first = false;
    }
    out
}

// ------------------------------------------------------------------------------------------
// Metrics
// ------------------------------------------------------------------------------------------

#[derive(Default, Clone)]
struct Scrape {
    statements: HashMap<String, f64>,
    /// Seconds spent, by statement (the histogram's _sum).
    seconds: HashMap<String, f64>,
    refused: HashMap<String, f64>,
    http_requests: f64,
    streams_open: f64,
    ok: bool,
}

impl Scrape {
    fn get(&self, s: &str) -> f64 {
        self.statements.get(s).copied().unwrap_or(0.0)
    }
    /// Mean ms of a statement between two scrapes, and how many ran.
    fn mean_ms(&self, before: &Scrape, st: &str) -> String {
        let n = self.get(st) - before.get(st);
        let t = self.seconds.get(st).copied().unwrap_or(0.0)
            - before.seconds.get(st).copied().unwrap_or(0.0);
        if n > 0.0 {
            format!("{st} {n:.0} x {:.2} ms", t * 1000.0 / n)
        } else {
            format!("{st} 0")
        }
    }
    /// Every statement that ran between two scrapes, per second.
    fn all_per_s(&self, before: &Scrape, secs: f64) -> String {
        let mut v: Vec<(String, f64)> = self
            .statements
            .iter()
            .map(|(k, x)| (k.clone(), (x - before.get(k)) / secs))
            .filter(|(_, d)| *d > 0.0)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.iter()
            .map(|(k, d)| format!("{k} {d:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
    /// Requests refused between two scrapes, by reason.
    fn refusals(&self, before: &Scrape) -> String {
        let mut v: Vec<String> = self
            .refused
            .iter()
            .map(|(k, x)| (k, x - before.refused.get(k).copied().unwrap_or(0.0)))
            .filter(|(_, d)| *d > 0.0)
            .map(|(k, d)| format!("{k} {d:.0}"))
            .collect();
        v.sort();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    }
    fn lists(&self) -> f64 {
        self.get("list_page") + self.get("resolve_user") + self.get("resolve_extension")
    }
}

async fn scrape(metrics: &Option<String>) -> Scrape {
    let Some(addr) = metrics else {
        return Scrape::default();
    };
    let mut conn = Conn::new(addr);
    let r = match conn
        .call(
            &http::get_request("/metrics", None, "text/plain"),
            Duration::from_secs(10),
        )
        .await
    {
        Ok(r) if r.status == 200 => r,
        _ => return Scrape::default(),
    };
    let text = String::from_utf8_lossy(&r.body);
    let mut s = Scrape {
        ok: true,
        ..Default::default()
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        let (name, labels) = name_labels.split_once('{').unwrap_or((name_labels, ""));
        if name == "phonecalls_db_statement_duration_seconds_count" {
            if let Some(i) = labels.find("statement=\"") {
                let rest = &labels[i + 11..];
                let st = &rest[..rest.find('"').unwrap_or(rest.len())];
                *s.statements.entry(st.to_string()).or_default() += value;
            }
        } else if name == "phonecalls_db_statement_duration_seconds_sum" {
            if let Some(i) = labels.find("statement=\"") {
                let rest = &labels[i + 11..];
                let st = &rest[..rest.find('"').unwrap_or(rest.len())];
                *s.seconds.entry(st.to_string()).or_default() += value;
            }
        } else if name == "phonecalls_requests_refused_total" {
            if let Some(i) = labels.find("reason=\"") {
                let rest = &labels[i + 8..];
                let r = &rest[..rest.find('"').unwrap_or(rest.len())];
                *s.refused.entry(r.to_string()).or_default() += value;
            }
        } else if name == "phonecalls_streams_open" {
            s.streams_open = value;
        } else if name == "phonecalls_http_requests_total" {
            s.http_requests += value;
        }
    }
    s
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn peak_rss_mib(pid: Option<u32>) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

// ------------------------------------------------------------------------------------------
// The mix of lists
// ------------------------------------------------------------------------------------------

fn enc(s: &str) -> String {
    s.replace('+', "%2B").replace('*', "%2A")
}

fn build_specs(w: &World, n: usize) -> Vec<Spec> {
    let admins = (n / 200).max((n / 10).min(4)).max(1).min(n);
    let orgs = (n / 10).min(n - admins);
    let users = n - admins - orgs;
    let q = "count=5000";
    let status = "&filterBy=status&filterValue=5";
    let dest = format!(
        "&filterBy=destination&filterOp=startsWith&filterValue={}",
        enc("+4420")
    );
    let mut specs = Vec::with_capacity(n);
    for i in 0..admins {
        let (_, token) = &w.admins[i % w.admins.len()];
        let (label, suffix, filter) = match i % 4 {
            0 => ("@owner/@self", String::new(), Filter::None),
            1 => ("@owner/@self status 5", status.to_string(), Filter::None),
            2 => (
                "@owner/@self destination ^+4420",
                dest.clone(),
                Filter::DestPrefix("+4420"),
            ),
            _ => (
                "@owner/@self fields",
                "&fields=nonce,extension,phoneCallView".to_string(),
                Filter::None,
            ),
        };
        let filter = if i % 4 == 1 {
            Filter::Status(5)
        } else {
            filter
        };
        specs.push(Spec {
            kind: "admin",
            label,
            token: token.clone(),
            path: format!("/uapi/phoneCalls/@owner/@self/?{q}{suffix}"),
            scope: Scope::All,
            filter,
        });
    }
    for i in 0..orgs {
        let o = i % w.orgs.len();
        let org = &w.orgs[o];
        let (_, token) = org.account.as_ref().unwrap();
        let round = i / w.orgs.len();
        let spec = match round % 4 {
            0 => Spec {
                kind: "organization",
                label: "@owner/@self",
                token: token.clone(),
                path: format!("/uapi/phoneCalls/@owner/@self/?{q}"),
                scope: Scope::Org(o),
                filter: Filter::None,
            },
            1 => Spec {
                kind: "organization",
                label: "@owner/@self status 5",
                token: token.clone(),
                path: format!("/uapi/phoneCalls/@owner/@self/?{q}{status}"),
                scope: Scope::Org(o),
                filter: Filter::Status(5),
            },
            2 => Spec {
                kind: "organization",
                label: "@owner/@self destination ^+4420",
                token: token.clone(),
                path: format!("/uapi/phoneCalls/@owner/@self/?{q}{dest}"),
                scope: Scope::Org(o),
                filter: Filter::DestPrefix("+4420"),
            },
            _ => {
                let u = &org.users[(round / 4) % org.users.len()];
                let e = u.exts[0];
                Spec {
                    kind: "organization",
                    label: "@owner/{extension}",
                    token: token.clone(),
                    path: format!("/uapi/phoneCalls/@owner/{}/?{q}", enc(&w.exts[e].full)),
                    scope: Scope::Ext(e),
                    filter: Filter::None,
                }
            }
        };
        specs.push(spec);
    }
    let all_users: Vec<&User> = {
        // Round-robin over organizations so that every organization gets user streams.
        let mut v = Vec::new();
        let most = w.orgs.iter().map(|o| o.users.len()).max().unwrap_or(0);
        for k in 0..most {
            for o in &w.orgs {
                if let Some(u) = o.users.get(k) {
                    v.push(u);
                }
            }
        }
        v
    };
    for i in 0..users {
        let u = all_users[i % all_users.len()];
        let e = u.exts[0];
        let (label, path, scope, filter) = match i % 20 {
            0..=11 => (
                "@me/@self",
                format!("/uapi/phoneCalls/@me/@self/?{q}"),
                Scope::User(u.id),
                Filter::None,
            ),
            12..=14 => (
                "@me/{extension}",
                format!("/uapi/phoneCalls/@me/{}/?{q}", w.exts[e].short),
                Scope::Ext(e),
                Filter::None,
            ),
            15..=17 => (
                "@me/@self status 5",
                format!("/uapi/phoneCalls/@me/@self/?{q}{status}"),
                Scope::User(u.id),
                Filter::Status(5),
            ),
            _ => (
                "@me/@self destination ^+4420",
                format!("/uapi/phoneCalls/@me/@self/?{q}{dest}"),
                Scope::User(u.id),
                Filter::DestPrefix("+4420"),
            ),
        };
        specs.push(Spec {
            kind: "user",
            label,
            token: u.token.clone(),
            path,
            scope,
            filter,
        });
    }
    specs
}

// ------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------

fn log(msg: impl AsRef<str>) {
    eprintln!("stream-bench: {}", msg.as_ref());
}

fn fmt_ms(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.1}")
    }
}

fn main() {
    let args = parse_args();
    START.get_or_init(Instant::now);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    std::process::exit(rt.block_on(run(args)));
}

async fn get_list(addr: &str, spec: &Spec) -> io::Result<Option<HashMap<String, Value>>> {
    let mut conn = Conn::new(addr);
    let r = conn
        .call(
            &http::get_request(&spec.path, Some(&spec.token), "application/json"),
            Duration::from_secs(60),
        )
        .await?;
    match r.status {
        204 => Ok(Some(HashMap::new())),
        200 => {
            let v: Value =
                serde_json::from_slice(&r.body).map_err(|e| http::other(e.to_string()))?;
            Ok(Some(entries(&v)))
        }
        s => Err(http::other(format!(
            "{s} {}",
            String::from_utf8_lossy(&r.body)
        ))),
    }
}

async fn run(args: Args) -> i32 {
    let w = Arc::new(load_world(&args.accounts));
    let specs = Arc::new(build_specs(&w, args.streams));
    let n = specs.len();
    let count = |k: &str| specs.iter().filter(|s| s.kind == k).count();
    let (n_admin, n_org, n_user) = (count("admin"), count("organization"), count("user"));
    log(format!(
        "{} organizations, {} users with extensions; {n} lists: {n_admin} admin, {n_org} organization, {n_user} user",
        w.orgs.len(),
        w.orgs.iter().map(|o| o.users.len()).sum::<usize>()
    ));
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut feeds: Vec<FeedState> = (0..args.feed_connections)
        .map(|k| FeedState {
            task: k,
            rng: Rng(stamp.wrapping_mul(1_000_003) ^ (k as u64).wrapping_mul(0x9e37_79b9)),
            conn: Conn::new(&args.addr),
            calls: Vec::new(),
            live: Vec::new(),
            log: Arc::new(FeedLog {
                reports: std::sync::RwLock::new(Vec::new()),
                chains: std::sync::RwLock::new(Vec::new()),
            }),
            ok: 0,
            failed: 0,
            last_error: None,
            stamp,
            put_us: Vec::new(),
        })
        .collect();
    let logs: Vec<Arc<FeedLog>> = feeds.iter().map(|f| f.log.clone()).collect();
    let duration = Duration::from_secs_f64(args.duration);

    // 0. The live set the snapshots start from.
    log(format!("reporting {} live calls", args.live));
    feeds = populate(feeds, w.clone(), args.live).await;
    let failed: u64 = feeds.iter().map(|f| f.failed).sum();
    if failed > 0 {
        log(format!(
            "{failed} reports failed while populating; last: {}",
            feeds
                .iter()
                .filter_map(|f| f.last_error.clone())
                .next()
                .unwrap_or_default()
        ));
        if feeds.iter().map(|f| f.ok).sum::<u64>() == 0 {
            return 1;
        }
    }
    if let Some(cmd) = &args.after_populate {
        // E.g. ANALYZE: the live set went from nothing to its size in a second, and plans made
        // on an empty table's statistics are not what a service in production runs.
        let status = std::process::Command::new("sh").arg("-c").arg(cmd).status();
        if !matches!(status, Ok(s) if s.success()) {
            log(format!("--after-populate failed: {status:?}"));
            return 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 1. Streams.
    let m0 = scrape(&args.metrics).await;
    if args.metrics.is_some() && !m0.ok {
        log("the metrics could not be scraped: no database figures");
    }
    let shared = Arc::new(Shared {
        snapshots_in: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        stop_notify: tokio::sync::Notify::new(),
        feed_stopped_us: AtomicU64::new(u64::MAX),
        bytes: AtomicU64::new(0),
        opening: Arc::new(tokio::sync::Semaphore::new(32)),
    });
    log(format!("opening {n} streams"));
    let open_started = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for (i, spec) in specs.iter().enumerate() {
        let (addr, path, token, shared) = (
            args.addr.clone(),
            spec.path.clone(),
            spec.token.clone(),
            shared.clone(),
        );
        handles.push(tokio::spawn(async move {
            (i, stream_task(addr, path, token, shared).await)
        }));
        if i % 50 == 49 {
            tokio::task::yield_now().await;
        }
    }
    let open_deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let inn = shared.snapshots_in.load(Ordering::SeqCst);
        if inn >= n {
            break;
        }
        let gone = handles.iter().filter(|h| h.is_finished()).count();
        if gone > 0 && inn + gone >= n {
            log(format!("{gone} streams ended before their first snapshot"));
            break;
        }
        if Instant::now() > open_deadline {
            log(format!("only {inn} of {n} snapshots after 180 s; going on"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_secs = open_started.elapsed().as_secs_f64();
    let snapshots_in = shared.snapshots_in.load(Ordering::SeqCst);
    log(format!("{snapshots_in} snapshots in {open_secs:.1} s"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m1 = scrape(&args.metrics).await;
    let rss_open = peak_rss_mib(args.pid);

    log(format!(
        "feed: {} reports/s for {} s from {} connections, with {n} streams",
        args.rate, args.duration, args.feed_connections
    ));
    let svc = args.pid.map(|p| p.to_string());
    let cpu0 = (cpu_seconds("self"), svc.as_deref().and_then(cpu_seconds));
    for f in &mut feeds {
        f.put_us.clear();
    }
    let bytes0 = shared.bytes.load(Ordering::Relaxed);
    let t_feed = Instant::now();
    let (f, stream_ok, stream_failed) =
        run_feed(feeds, w.clone(), args.rate, duration, args.live).await;
    feeds = f;
    let feed_secs = t_feed.elapsed().as_secs_f64();
    let put_line = |feeds: &mut Vec<FeedState>| {
        let mut v: Vec<u64> = feeds.iter_mut().flat_map(|f| f.put_us.drain(..)).collect();
        v.sort_unstable();
        format!(
            "PUT answered in p50 {} / p99 {} / max {} ms",
            fmt_ms(pct(&v, 0.5)),
            fmt_ms(pct(&v, 0.99)),
            fmt_ms(pct(&v, 1.0))
        )
    };
    let stream_put = put_line(&mut feeds);
    let cpu1 = (cpu_seconds("self"), svc.as_deref().and_then(cpu_seconds));
    let cpu_share = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.0}%", (b - a) * 100.0 / feed_secs),
        _ => "-".into(),
    };
    let cpu_line = format!(
        "CPU during the streams' feed (of one core): the service {}, this tool (feed, streams and checks) {}",
        cpu_share(cpu0.1, cpu1.1),
        cpu_share(cpu0.0, cpu1.0)
    );
    shared
        .feed_stopped_us
        .store(now_us() + (args.quiet * 1e6) as u64, Ordering::Relaxed);
    let m2_feed = scrape(&args.metrics).await;
    tokio::time::sleep(Duration::from_secs_f64(args.quiet)).await;
    let m2 = scrape(&args.metrics).await;
    let rss_streams = peak_rss_mib(args.pid);
    let stream_bytes = shared.bytes.load(Ordering::Relaxed) - bytes0;

    // The truth, fetched while the streams are still open and nothing changes, then the streams'
    // states. One more quiet second after the GETs catches any event still on its way.
    log("fetching every list to compare");
    let mut truths: Vec<Option<HashMap<String, Value>>> = Vec::with_capacity(n);
    {
        let sem = Arc::new(tokio::sync::Semaphore::new(8));
        let mut gets = Vec::with_capacity(n);
        for spec_i in 0..n {
            let (addr, specs, sem) = (args.addr.clone(), specs.clone(), sem.clone());
            gets.push(tokio::spawn(async move {
                let _p = sem.acquire().await.unwrap();
                get_list(&addr, &specs[spec_i]).await
            }));
        }
        for g in gets {
            truths.push(match g.await.unwrap() {
                Ok(t) => t,
                Err(e) => {
                    log(format!("GET for the comparison failed: {e}"));
                    None
                }
            });
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    shared.stop.store(true, Ordering::SeqCst);
    shared.stop_notify.notify_waiters();
    let mut outs: Vec<Option<StreamOut>> = (0..n).map(|_| None).collect();
    for h in handles {
        match tokio::time::timeout(Duration::from_secs(30), h).await {
            Ok(Ok((i, o))) => outs[i] = Some(o),
            _ => log("a stream task did not stop"),
        }
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let m_closed = scrape(&args.metrics).await;

    // Comparison.
    let (mut missing, mut stale, mut present_extra, mut compared) = (0u64, 0u64, 0u64, 0usize);
    let mut examples: Vec<String> = Vec::new();
    for i in 0..n {
        let (Some(o), Some(truth)) = (&outs[i], &truths[i]) else {
            continue;
        };
        if o.snapshots == 0 {
            continue;
        }
        compared += 1;
        for (id, v) in truth {
            match o.state.get(id) {
                None => {
                    missing += 1;
                    if examples.len() < 12 {
                        examples.push(format!(
                            "missed (absent) {} on stream {i} {}: listed with nonce {}",
                            id,
                            specs[i].path,
                            v.get("nonce").unwrap_or(&Value::Null)
                        ));
                    }
                }
                Some(h) if h != v => {
                    stale += 1;
                    if examples.len() < 12 {
                        examples.push(format!(
                            "missed (stale) {} on stream {i} {}: held nonce {}, listed nonce {}",
                            id,
                            specs[i].path,
                            h.get("nonce").unwrap_or(&Value::Null),
                            v.get("nonce").unwrap_or(&Value::Null)
                        ));
                    }
                }
                _ => {}
            }
        }
        for (id, h) in &o.state {
            if !truth.contains_key(id) {
                present_extra += 1;
                if examples.len() < 12 {
                    examples.push(format!(
                        "extra (not listed) {} on stream {i} {}: held nonce {}",
                        id,
                        specs[i].path,
                        h.get("nonce").unwrap_or(&Value::Null)
                    ));
                }
            }
        }
    }
    let outs: Vec<StreamOut> = outs.into_iter().map(Option::unwrap_or_default).collect();
    let sum = |f: &dyn Fn(&StreamOut) -> u64| outs.iter().map(f).sum::<u64>();
    let upserts = sum(&|o| o.upserts);
    let removes = sum(&|o| o.removes);
    let duplicates = sum(&|o| o.duplicates);
    let removes_unheld = sum(&|o| o.removes_unheld);
    let resets = sum(&|o| o.resets);
    let reconnects = sum(&|o| o.reconnects);
    let heartbeats = sum(&|o| o.heartbeats);
    let snapshots = sum(&|o| o.snapshots);
    let late_events = sum(&|o| o.late_events);
    let other_events = sum(&|o| o.other_events);
    let untied = sum(&|o| o.seen.untied);
    let stream_errors: Vec<String> = outs
        .iter()
        .enumerate()
        .flat_map(|(i, o)| o.errors.iter().map(move |e| format!("stream {i}: {e}")))
        .collect();
    let mut opens: Vec<u64> = outs.iter().filter_map(|o| o.first_snapshot_us).collect();
    opens.sort_unstable();
    // Where opening time went: waiting for the head (the service's snapshot), then the body.
    let mut to_head: Vec<u64> = outs
        .iter()
        .filter(|o| o.t_snapshot > 0)
        .map(|o| o.t_head.saturating_sub(o.t_permit))
        .collect();
    let mut head_to_snap: Vec<u64> = outs
        .iter()
        .filter(|o| o.t_snapshot > 0)
        .map(|o| o.t_snapshot.saturating_sub(o.t_head))
        .collect();
    to_head.sort_unstable();
    head_to_snap.sort_unstable();
    let open_by_kind: Vec<String> = ["admin", "organization", "user"]
        .iter()
        .map(|k| {
            let mut v: Vec<u64> = outs
                .iter()
                .enumerate()
                .filter(|(i, o)| specs[*i].kind == *k && o.t_snapshot > 0)
                .map(|(_, o)| o.t_head.saturating_sub(o.t_permit))
                .collect();
            v.sort_unstable();
            let refused: u64 = outs
                .iter()
                .enumerate()
                .filter(|(i, _)| specs[*i].kind == *k)
                .map(|(_, o)| o.errors.iter().filter(|e| e.contains("open: 503")).count() as u64)
                .sum();
            format!(
                "{k} p50 {} / p99 {} / max {} ms, {refused} refused",
                fmt_ms(pct(&v, 0.5)),
                fmt_ms(pct(&v, 0.99)),
                fmt_ms(pct(&v, 1.0))
            )
        })
        .collect();
    let missed = missing + stale;
    let extra = present_extra + duplicates + removes_unheld;
    let seen: Vec<(usize, Seen)> = outs
        .into_iter()
        .enumerate()
        .map(|(i, o)| (i, o.seen))
        .collect();
    let lat = attribute(&seen, &specs, &logs, &w);
    let by_kind: Vec<String> = ["admin", "organization", "user"]
        .iter()
        .map(|k| {
            let part: Vec<(usize, Seen)> = seen
                .iter()
                .filter(|(i, _)| specs[*i].kind == *k)
                .map(|(i, s)| {
                    (
                        *i,
                        Seen {
                            shown: s.shown.clone(),
                            gone: s.gone.clone(),
                            untied: 0,
                        },
                    )
                })
                .collect();
            let l = attribute(&part, &specs, &logs, &w);
            format!(
                "{k} {} events p50 {} p99 {} max {} ms",
                l.samples.len(),
                fmt_ms(pct(&l.samples, 0.5)),
                fmt_ms(pct(&l.samples, 0.99)),
                fmt_ms(pct(&l.samples, 1.0))
            )
        })
        .collect();
    drop(seen);
    let stream_rate = stream_ok as f64 / feed_secs;
    let stream_changes = m2.get("stream_changes") - m1.get("stream_changes");
    let stream_changes_feed = m2_feed.get("stream_changes") - m1.get("stream_changes");
    let stream_lists = m2.lists() - m1.lists();
    let snapshot_statements = m1.lists() - m0.lists();
    let stream_db_per_s = (stream_changes + stream_lists) / feed_secs;
    {
        // Errors by kind (their first words), with one example of each.
        let mut kinds: Vec<(String, usize, String)> = Vec::new();
        for e in &stream_errors {
            let msg = e.split_once(": ").map(|x| x.1).unwrap_or(e);
            let key: String = msg.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            match kinds.iter_mut().find(|k| k.0 == key) {
                Some(k) => k.1 += 1,
                None => kinds.push((key, 1, e.chars().take(400).collect())),
            }
        }
        for (_, count, example) in &kinds {
            log(format!("{count} stream errors like: {example}"));
        }
    }
    for e in &examples {
        log(e);
    }

    // 2. Polling, under the same feed.
    let mut poll = None;
    let mut poll_extra = String::new();
    if args.polling {
        if args.between > 0.0 {
            // Closed streams may be kept for their clients to resume, and keep reading changes
            // meanwhile: the polling phase starts once they are gone.
            log(format!(
                "waiting {} s for the closed streams to be forgotten",
                args.between
            ));
            tokio::time::sleep(Duration::from_secs_f64(args.between)).await;
        }
        log(format!(
            "polling: {n} clients once per second for {} s, same feed",
            args.duration
        ));
        let m3 = scrape(&args.metrics).await;
        let t_poll = Instant::now();
        let until = t_poll + duration + Duration::from_millis(200);
        let mut ph = Vec::with_capacity(n);
        for (i, spec) in specs.iter().enumerate() {
            let offset = Duration::from_secs_f64(i as f64 / n as f64);
            let (addr, path, token) = (args.addr.clone(), spec.path.clone(), spec.token.clone());
            ph.push(tokio::spawn(async move {
                (i, poll_task(addr, path, token, offset, until).await)
            }));
        }
        // The first poll of each client (its starting state) comes in the first second; the
        // feed starts with it.
        let (f, poll_ok, poll_failed) =
            run_feed(feeds, w.clone(), args.rate, duration, args.live).await;
        feeds = f;
        let poll_secs = t_poll.elapsed().as_secs_f64();
        let poll_put = put_line(&mut feeds);
        let mut pouts = Vec::with_capacity(n);
        for h in ph {
            pouts.push(h.await.unwrap());
        }
        let m4 = scrape(&args.metrics).await;
        let polls: u64 = pouts.iter().map(|(_, o)| o.polls).sum();
        let poll_errors: u64 = pouts.iter().map(|(_, o)| o.errors).sum();
        let poll_late: u64 = pouts.iter().map(|(_, o)| o.late).sum();
        if poll_errors > 0 {
            log(format!(
                "{poll_errors} polls failed; e.g. {}",
                pouts
                    .iter()
                    .filter_map(|(_, o)| o.last_error.clone())
                    .next()
                    .unwrap_or_default()
            ));
        }
        let mut waits: Vec<u64> = pouts
            .iter()
            .flat_map(|(_, o)| o.waits.iter().copied())
            .collect();
        waits.sort_unstable();
        let seen: Vec<(usize, Seen)> = pouts.into_iter().map(|(i, o)| (i, o.seen)).collect();
        let untied_p: u64 = seen.iter().map(|(_, s)| s.untied).sum();
        let plat = attribute(&seen, &specs, &logs, &w);
        // The lists' statements only: stream_changes that still run now are the closed streams'
        // (kept for resuming), not the polling's; they are shown apart.
        let db = (m4.lists() - m3.lists()) / poll_secs;
        poll_extra = format!(
            "the feed's {poll_put} during polling\nstatements/s during polling (the feed's own included): {}\npolling phase: each poll answered in p50 {} / p99 {} ms; refused {}; {}; streams still counted open at the service {}",
            m4.all_per_s(&m3, poll_secs),
            fmt_ms(pct(&waits, 0.5)),
            fmt_ms(pct(&waits, 0.99)),
            m4.refusals(&m3),
            m4.mean_ms(&m3, "list_page"),
            m4.streams_open
        );
        poll = Some((
            poll_ok as f64 / poll_secs,
            poll_failed,
            polls,
            poll_errors,
            poll_late,
            plat,
            db,
            untied_p,
            m4.ok && m3.ok,
        ));
    }
    let rss_end = peak_rss_mib(args.pid);
    let _ = feeds;

    // 3. The table.
    let mib = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    let dbf = |ok: bool, x: f64| if ok { format!("{x:.1}") } else { "-".into() };
    let metrics_ok = m0.ok && m1.ok && m2.ok;
    println!();
    println!(
        "phonecalls stream benchmark: {n} lists ({n_admin} admin, {n_org} organization, {n_user} user; count=5000), feed {} reports/s for {} s from {} connections, about {} live calls, {} cores",
        args.rate,
        args.duration,
        args.feed_connections,
        args.live,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let fmtrow = |a: &str, b: String, c: String, d: &str| println!("{a:<44} {b:>22} {c:>22}   {d}");
    fmtrow("", "streams".into(), "polling (1/s)".into(), "target");
    fmtrow(
        "clients with their first list",
        format!("{snapshots_in}/{n}"),
        poll.as_ref().map(|_| format!("{n}")).unwrap_or("-".into()),
        "",
    );
    fmtrow(
        "reports/s achieved (failed)",
        format!("{stream_rate:.1} ({stream_failed})"),
        poll.as_ref()
            .map(|p| format!("{:.1} ({})", p.0, p.1))
            .unwrap_or("-".into()),
        "",
    );
    fmtrow(
        "events received: upsert / remove",
        format!("{upserts} / {removes}"),
        poll.as_ref()
            .map(|p| format!("{} polls", p.2))
            .unwrap_or("-".into()),
        "",
    );
    fmtrow(
        "latency p50 / p99 / max ms (polls: staleness)",
        format!(
            "{} / {} / {}",
            fmt_ms(pct(&lat.samples, 0.5)),
            fmt_ms(pct(&lat.samples, 0.99)),
            fmt_ms(pct(&lat.samples, 1.0))
        ),
        poll.as_ref()
            .map(|p| {
                format!(
                    "{} / {} / {}",
                    fmt_ms(pct(&p.5.samples, 0.5)),
                    fmt_ms(pct(&p.5.samples, 0.99)),
                    fmt_ms(pct(&p.5.samples, 1.0))
                )
            })
            .unwrap_or("-".into()),
        "streams p99 <= 100 ms",
    );
    fmtrow(
        "missed (absent / stale)",
        format!("{missed} ({missing} / {stale})"),
        "-".into(),
        "0",
    );
    fmtrow(
        "extra (not listed / dup upserts / unheld rm)",
        format!("{extra} ({present_extra} / {duplicates} / {removes_unheld})"),
        "-".into(),
        "0",
    );
    fmtrow(
        "peak RSS MiB (VmHWM, after each phase)",
        mib(rss_streams),
        mib(rss_end),
        "streams <= 256",
    );
    fmtrow(
        "DB statements/s (stream_changes+lists | lists)",
        dbf(metrics_ok, stream_db_per_s),
        poll.as_ref().map(|p| dbf(p.8, p.6)).unwrap_or("-".into()),
        "",
    );
    println!(
        "streams: opened in {open_secs:.1} s ({snapshots} snapshots, {} list+resolve statements for them, peak RSS {} MiB then); stream_changes {stream_changes} ({stream_changes_feed} by the feed's end), {:.1}/s; {resets} resets, {reconnects} reconnections, {heartbeats} heartbeats, {other_events} other events, {late_events} events in the {} s after the feed stopped; {:.1} MB of events ({:.0} events/s)",
        snapshot_statements,
        mib(rss_open),
        stream_changes / feed_secs,
        args.quiet,
        stream_bytes as f64 / 1e6,
        (upserts + removes) as f64 / feed_secs
    );
    println!(
        "latency samples: {} (reports without a 2xx: {}, not tied to a report: {}, events without a nonce: {untied}); compared {compared} streams with a fresh GET; {} stream errors",
        lat.samples.len(),
        lat.no_2xx,
        lat.unattributed,
        stream_errors.len()
    );
    println!("stream latency by account: {}", by_kind.join("; "));
    println!(
        "opening: first snapshot p50 {} / p99 {} / max {} ms after connecting (32 opening at once); requests refused while opening: {}; {}, {}",
        fmt_ms(pct(&opens, 0.5)),
        fmt_ms(pct(&opens, 0.99)),
        fmt_ms(pct(&opens, 1.0)),
        m1.refusals(&m0),
        m1.mean_ms(&m0, "list_page"),
        m1.mean_ms(&m0, "resolve_user")
    );
    println!(
        "opening, per stream: from connecting to the answer's head p50 {} / p99 {} ms, from the head to the snapshot read p50 {} / p99 {} ms; streams open at the service: {} after opening, {} after closing ours",
        fmt_ms(pct(&to_head, 0.5)),
        fmt_ms(pct(&to_head, 0.99)),
        fmt_ms(pct(&head_to_snap, 0.5)),
        fmt_ms(pct(&head_to_snap, 0.99)),
        m1.streams_open,
        m_closed.streams_open
    );
    println!("{cpu_line}; the feed's {stream_put}");
    println!(
        "opening, to the head by account (the last, successful connection): {}",
        open_by_kind.join("; ")
    );
    println!(
        "statements/s during the streams' feed (the feed's own included): {}",
        m2.all_per_s(&m1, feed_secs)
    );
    println!(
        "streams' feed phase: refused {}; {}; {}",
        m2.refusals(&m1),
        m2.mean_ms(&m1, "stream_changes"),
        m2.mean_ms(&m1, "list_page")
    );
    if let Some(p) = &poll {
        println!(
            "polling: {} polls ({} failed, {} behind schedule), {} states seen (reports without a 2xx {}, not tied {}, entries without a nonce {})",
            p.2,
            p.3,
            p.4,
            p.5.samples.len(),
            p.5.no_2xx,
            p.5.unattributed,
            p.7
        );
        println!("{poll_extra}");
    }
    let j = serde_json::json!({
        "streams": n, "admin": n_admin, "organization": n_org, "user": n_user,
        "snapshots": snapshots_in, "open_seconds": open_secs,
        "rate_target": args.rate, "duration": args.duration,
        "reports_per_s": stream_rate, "reports_failed": stream_failed,
        "upserts": upserts, "removes": removes,
        "latency_ms": {"p50": pct(&lat.samples, 0.5), "p99": pct(&lat.samples, 0.99), "max": pct(&lat.samples, 1.0), "samples": lat.samples.len(), "unattributed": lat.unattributed, "no_2xx": lat.no_2xx},
        "missed": missed, "missing": missing, "stale": stale,
        "extra": extra, "extra_listed": present_extra, "duplicate_upserts": duplicates, "removes_unheld": removes_unheld,
        "resets": resets, "reconnects": reconnects, "heartbeats": heartbeats, "stream_errors": stream_errors.len(),
        "peak_rss_mib_streams": rss_streams, "peak_rss_mib_end": rss_end,
        "db_statements_per_s_streams": if metrics_ok { Some(stream_db_per_s) } else { None },
        "stream_changes": stream_changes, "snapshot_statements": snapshot_statements,
        "polling": poll.as_ref().map(|p| serde_json::json!({
            "reports_per_s": p.0, "reports_failed": p.1, "polls": p.2, "poll_errors": p.3,
            "staleness_ms": {"p50": pct(&p.5.samples, 0.5), "p99": pct(&p.5.samples, 0.99), "max": pct(&p.5.samples, 1.0), "samples": p.5.samples.len()},
            "db_statements_per_s": if p.8 { Some(p.6) } else { None },
        })),
    });
    let line = j.to_string().replace("NaN", "null");
    println!("{line}");
    if let Some(path) = &args.json {
        let _ = std::fs::write(path, format!("{line}\n"));
    }
    0
}
