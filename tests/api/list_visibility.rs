//! Who sees which calls through the list (spec §1, §2.2), and the list's filters, sorting and
//! paging (spec §2.3), each checked against a plain Rust model of the seeded calls: the model
//! needs no database, so what the service answers is compared with what the spec says.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use phonecalls::accounts::{self, Role};
use phonecalls::time::format_utc;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// The seeded world: accounts, extensions and calls, kept in Rust so the model needs no database.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    Admin,
    Org3,
    Org7,
    A,
    B,
    C,
    D,
    Switch,
}

#[derive(Debug, Clone)]
struct Account {
    who: Who,
    id: i64,
    role: Role,
    org: Option<i64>,
    /// The organization's code, for resolving short numbers.
    code: Option<&'static str>,
    /// Full numbers of the account's extensions.
    extensions: Vec<&'static str>,
    token: String,
}

#[derive(Debug, Clone)]
struct SeedView {
    extension: &'static str,
    source: Vec<&'static str>,
    destination: Vec<&'static str>,
    flow: i64,
    status: i64,
    caller_id: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct SeedCall {
    id: Uuid,
    org: i64,
    extension: &'static str,
    published: DateTime<Utc>,
    answered: Option<DateTime<Utc>>,
    ended: bool,
    views: Vec<SeedView>,
}

impl SeedCall {
    /// The call involves one of `extensions`: charged to it or a view on it (spec §1).
    fn involves(&self, extensions: &[&str]) -> bool {
        extensions.contains(&self.extension)
            || self.views.iter().any(|v| extensions.contains(&v.extension))
    }
}

struct World {
    app: TestApp,
    accounts: Vec<Account>,
    calls: Vec<SeedCall>,
    org3: i64,
    org7: i64,
}

impl World {
    fn account(&self, who: Who) -> &Account {
        self.accounts.iter().find(|a| a.who == who).unwrap()
    }

    fn live(&self) -> impl Iterator<Item = &SeedCall> {
        self.calls.iter().filter(|c| !c.ended)
    }

    /// The ids of every live call `caller` may see (spec §1).
    fn visible(&self, caller: &Account) -> BTreeSet<Uuid> {
        self.live()
            .filter(|c| sees(caller, c))
            .map(|c| c.id)
            .collect()
    }
}

/// Whether `caller` may see `call` through the list (spec §1): live calls only; admin all,
/// organization account its organization's, user those involving its extensions, switch none.
fn sees(caller: &Account, call: &SeedCall) -> bool {
    !call.ended
        && match caller.role {
            Role::Admin => true,
            Role::Organization => caller.org == Some(call.org),
            Role::User => call.involves(&caller.extensions),
            Role::Switch => false,
        }
}

/// Charged extension and the extensions of the views, in view order.
const SHAPES: [(&str, &[&str]); 12] = [
    ("0003*210", &["0003*210"]),             // A only
    ("0003*212", &["0003*212", "0003*210"]), // A only, both of A's extensions
    ("0003*210", &["0003*210", "0003*211"]), // charged to A, a view on B
    ("0003*211", &["0003*210"]),             // charged to B, its only party view on A
    ("0003*211", &["0003*211", "0003*212"]), // charged to B, views on B and A
    ("0003*210", &["0003*211"]),             // charged to A, B the only party
    ("0003*211", &["0003*211"]),             // B only
    ("0007*210", &["0007*210"]),             // C only (same short number as A's 210)
    ("0007*213", &["0007*211", "0007*210"]), // charged to C, views on D and C
    ("0007*211", &["0007*211"]),             // D only
    ("0003*212", &["0003*212"]),             // A only, second extension
    ("0007*211", &["0007*213"]),             // charged to D, view on C
];
const ROUNDS: usize = 3;

/// Seconds after 2026-11-28T14:40:28Z; repeats make ties, 32400/33000 cross the UTC day in +02:00.
const PUBLISHED: [i64; 13] = [
    0, 0, 3600, -86400, 59, 172799, 7, 33000, -1, 3600, 32400, 12, 600,
];
/// Seconds after published, or unanswered.
const ANSWERED: [Option<i64>; 7] = [None, Some(5), Some(0), None, Some(30), Some(5), Some(3600)];
const CALLER_IDS: [Option<&str>; 8] = [
    None,
    Some("Alice <210>"),
    Some("alice <210>"),
    Some("100% Bob_1"),
    Some("back\\slash"),
    Some("Émile"),
    Some("Zed"),
    Some(""),
];
const SOURCES: [&[&str]; 5] = [
    &[],
    &["@ext"],
    &["@ext", "+4420123"],
    &["+40%21_x"],
    &["back\\slash", "0003*210"],
];
const DESTINATIONS: [&[&str]; 4] = [&["+4420999"], &[], &["0003*211"], &["+4420123", "0040721"]];

fn base() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T14:40:28Z")
        .unwrap()
        .to_utc()
}

/// Deterministic ids spread over the whole range, so their text order differs from seed order.
fn seed_id(i: usize) -> Uuid {
    Uuid::from_u128(
        (i as u128 + 1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
            .rotate_left(17),
    )
}

fn seed_calls(org3: i64, org7: i64) -> Vec<SeedCall> {
    let org_of = |ext: &str| if ext.starts_with("0003*") { org3 } else { org7 };
    let mut calls = Vec::new();
    for i in 0..SHAPES.len() * ROUNDS {
        let (charged, parties) = SHAPES[i % SHAPES.len()];
        let published = base() + Duration::seconds(PUBLISHED[i % PUBLISHED.len()]);
        let answered = ANSWERED[i % ANSWERED.len()].map(|s| published + Duration::seconds(s));
        let views = parties
            .iter()
            .enumerate()
            .map(|(j, &extension)| {
                let numbers = |list: &[&'static str]| -> Vec<&'static str> {
                    list.iter()
                        .map(|&n| if n == "@ext" { extension } else { n })
                        .collect()
                };
                SeedView {
                    extension,
                    source: numbers(SOURCES[(i + 2 * j) % SOURCES.len()]),
                    destination: numbers(DESTINATIONS[(i + 3 * j) % DESTINATIONS.len()]),
                    flow: [2, 4, 8][(i + j) % 3],
                    status: ((i / 2 + j) % 6) as i64,
                    caller_id: CALLER_IDS[(i + 5 * j) % CALLER_IDS.len()],
                }
            })
            .collect();
        calls.push(SeedCall {
            id: seed_id(i),
            org: org_of(charged),
            extension: charged,
            published,
            answered,
            ended: false,
            views,
        });
    }
    // An ended call in each organization, with values no live call has, involving A and C.
    for (k, (charged, other)) in [("0003*210", "0003*211"), ("0007*210", "0007*211")]
        .into_iter()
        .enumerate()
    {
        let published = base() + Duration::seconds(100 + k as i64);
        calls.push(SeedCall {
            id: seed_id(1000 + k),
            org: org_of(charged),
            extension: charged,
            published,
            answered: Some(published + Duration::seconds(1)),
            ended: true,
            views: vec![
                SeedView {
                    extension: charged,
                    source: vec![charged],
                    destination: vec!["+9999ended"],
                    flow: 4,
                    status: 5,
                    caller_id: Some("Ended secret"),
                },
                SeedView {
                    extension: other,
                    source: vec![charged],
                    destination: vec![other],
                    flow: 2,
                    status: 5,
                    caller_id: Some("Ended secret"),
                },
            ],
        });
    }
    calls
}

/// A full report of `call`; dates are written in several equivalent forms.
fn report(call: &SeedCall, i: usize, sequence: i64, ended: Option<DateTime<Utc>>) -> Value {
    let date = |at: DateTime<Utc>| match i % 4 {
        1 => (at + Duration::hours(2))
            .format("%Y-%m-%dT%H:%M:%S+02:00")
            .to_string(),
        3 => at.format("%Y-%m-%dT%H:%M:%S.000Z").to_string(),
        _ => format_utc(at),
    };
    let views: Vec<Value> = call
        .views
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let mut view = json!({
                "id": format!("{j:02}"), "extension": v.extension, "source": v.source,
                "destination": v.destination, "flow": v.flow, "status": v.status,
            });
            if let Some(caller_id) = v.caller_id {
                view["callerId"] = json!(caller_id);
            }
            view
        })
        .collect();
    let mut report = json!({
        "id": call.id.to_string(), "sequence": sequence, "extension": call.extension,
        "published": date(call.published), "nonce": format!("nonce-{i}"), "phoneCallView": views,
    });
    if let Some(answered) = call.answered {
        report["answered"] = json!(date(answered));
    }
    if let Some(ended) = ended {
        report["ended"] = json!(date(ended));
    }
    report
}

async fn post_all(app: &TestApp, token: &str, reports: &[Value]) {
    let response = app.post_batch(token, reports).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), reports.len());
    for result in results {
        assert!(
            result.get("error").is_none(),
            "seed report refused: {result}"
        );
        assert_eq!(result["applied"], true, "{result}");
    }
}

/// Who, name, role, organization and short numbers of the extensions of a seeded account.
type AccountSpec = (
    Who,
    &'static str,
    Role,
    Option<i64>,
    &'static [&'static str],
);

/// Two organizations (0003, 0007), each with its organization account and two users (A and B in
/// 0003, C and D in 0007) with one or two extensions each; an admin; a switch; and the calls of
/// `seed_calls`, reported through the switch feed.
async fn world() -> World {
    let app = spawn_app().await;
    let pool = app.pool().clone();
    let org3 = accounts::create_organization(&pool, "Acme", "0003")
        .await
        .unwrap()
        .id;
    let org7 = accounts::create_organization(&pool, "Globex", "0007")
        .await
        .unwrap()
        .id;
    let specs: [AccountSpec; 8] = [
        (Who::Admin, "Root", Role::Admin, None, &[]),
        (Who::Org3, "Acme", Role::Organization, Some(org3), &[]),
        (Who::Org7, "Globex", Role::Organization, Some(org7), &[]),
        (Who::A, "Alice", Role::User, Some(org3), &["210", "212"]),
        (Who::B, "Bob", Role::User, Some(org3), &["211"]),
        (Who::C, "Carol", Role::User, Some(org7), &["210", "213"]),
        (Who::D, "Dave", Role::User, Some(org7), &["211"]),
        (Who::Switch, "Switch", Role::Switch, None, &[]),
    ];
    let mut all = Vec::new();
    for (who, name, role, org, shorts) in specs {
        let id = accounts::create_user(&pool, name, role, org)
            .await
            .unwrap()
            .id;
        let code = org.map(|o| if o == org3 { "0003" } else { "0007" });
        let mut extensions = Vec::new();
        for short in shorts {
            let created = accounts::create_extension(&pool, id, short).await.unwrap();
            let full: &'static str = Box::leak(created.number.into_boxed_str());
            assert_eq!(full, format!("{}*{short}", code.unwrap()));
            extensions.push(full);
        }
        all.push(Account {
            who,
            id,
            role,
            org,
            code,
            extensions,
            token: token_for(&pool, id).await,
        });
    }
    let calls = seed_calls(org3, org7);
    let switch = all
        .iter()
        .find(|a| a.who == Who::Switch)
        .unwrap()
        .token
        .clone();
    let first: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| report(c, i, 1, None))
        .collect();
    post_all(&app, &switch, &first).await;
    // The ended calls were live first; now the switch ends them.
    let ends: Vec<Value> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.ended)
        .map(|(i, c)| report(c, i, 2, Some(c.published + Duration::seconds(60))))
        .collect();
    assert_eq!(ends.len(), 2);
    post_all(&app, &switch, &ends).await;
    World {
        app,
        accounts: all,
        calls,
        org3,
        org7,
    }
}

// ---------------------------------------------------------------------------------------------
// Paths, and what the spec says each one means for a caller.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum UserForm {
    Me,
    Viewer,
    Owner,
    Id(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ExtForm {
    All,
    Full(String),
    Short(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PathCase {
    user: UserForm,
    ext: ExtForm,
    call: Option<Uuid>,
}

impl PathCase {
    fn render(&self) -> String {
        let user = match &self.user {
            UserForm::Me => "@me".to_string(),
            UserForm::Viewer => "@viewer".to_string(),
            UserForm::Owner => "@owner".to_string(),
            UserForm::Id(id) => id.to_string(),
        };
        let ext = match &self.ext {
            ExtForm::All => "@self",
            ExtForm::Full(n) | ExtForm::Short(n) => n.as_str(),
        };
        match self.call {
            None => format!("/uapi/phoneCalls/{user}/{ext}/"),
            Some(id) => format!("/uapi/phoneCalls/{user}/{ext}/{id}"),
        }
    }
}

/// What the path asks for once resolved: every call the caller may see, or those involving
/// these extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Visible,
    Extensions(Vec<&'static str>),
}

/// Resolves a path for `caller` by the rules of spec §2.2:
/// - `@me`/`@viewer` is the caller; for an organization or admin account, which owns no
///   extensions, it is the caller's whole context, exactly as `@owner`. A numeric id must be the
///   caller, a user of the caller's organization (organization account) or anyone (admin);
///   otherwise, or unknown: `user_invalid`.
/// - the extension must belong to the resolved user (`@self`: all of them); a short number is
///   resolved in that user's organization; otherwise `extension_invalid`.
/// - `@owner/@self` is everything the caller may see; `@owner/{number}` is that extension's
///   owner, who must be visible to the caller as above. Since "does not exist" and "exists but
///   not yours" must answer alike, an owner the caller may not see is `extension_invalid`, like
///   an unknown number. A short number with `@owner` is resolved in the caller's organization
///   (an admin or a global switch has none, so it resolves to nothing).
fn resolve(world: &World, caller: &Account, path: &PathCase) -> Result<Scope, &'static str> {
    let may_see_user = |target: &Account| {
        target.id == caller.id
            || caller.role == Role::Admin
            || (caller.role == Role::Organization
                && target.org.is_some()
                && target.org == caller.org)
    };
    let owned = |target: &Account, ext: &ExtForm| -> Result<Scope, &'static str> {
        match ext {
            ExtForm::All => Ok(Scope::Extensions(target.extensions.clone())),
            ExtForm::Full(n) => target
                .extensions
                .iter()
                .find(|e| **e == n.as_str())
                .map(|e| Scope::Extensions(vec![*e]))
                .ok_or("extension_invalid"),
            ExtForm::Short(s) => target
                .extensions
                .iter()
                .find(|e| e.split_once('*').unwrap().1 == s.as_str())
                .map(|e| Scope::Extensions(vec![*e]))
                .ok_or("extension_invalid"),
        }
    };
    match &path.user {
        UserForm::Me | UserForm::Viewer
            if matches!(caller.role, Role::Organization | Role::Admin) =>
        {
            let as_owner = PathCase {
                user: UserForm::Owner,
                ..path.clone()
            };
            resolve(world, caller, &as_owner)
        }
        UserForm::Me | UserForm::Viewer => owned(caller, &path.ext),
        UserForm::Id(id) => match world.accounts.iter().find(|a| a.id == *id) {
            Some(target) if may_see_user(target) => owned(target, &path.ext),
            _ => Err("user_invalid"),
        },
        UserForm::Owner => {
            let number = match &path.ext {
                ExtForm::All => return Ok(Scope::Visible),
                ExtForm::Full(n) => Some(n.clone()),
                ExtForm::Short(s) => caller.code.map(|code| format!("{code}*{s}")),
            };
            let owner = number.and_then(|n| {
                world
                    .accounts
                    .iter()
                    .find(|a| a.extensions.contains(&n.as_str()))
                    .map(|a| (a, n))
            });
            match owner {
                Some((owner, n)) if may_see_user(owner) => owned(owner, &ExtForm::Full(n)),
                _ => Err("extension_invalid"),
            }
        }
    }
}

/// The calls of the path as the caller may see them (unordered), or the 400's code.
fn expected_calls<'w>(
    world: &'w World,
    caller: &Account,
    path: &PathCase,
) -> Result<Vec<&'w SeedCall>, &'static str> {
    let scope = resolve(world, caller, path)?;
    Ok(world
        .live()
        .filter(|c| sees(caller, c))
        .filter(|c| match &scope {
            Scope::Visible => true,
            Scope::Extensions(exts) => c.involves(exts),
        })
        .filter(|c| path.call.is_none_or(|id| id == c.id))
        .collect())
}

/// Targets: the caller itself, the two users of 0003 and a user of 0007.
fn targets<'w>(world: &'w World, caller: &'w Account) -> Vec<&'w Account> {
    let mut out = vec![caller];
    for who in [Who::A, Who::B, Who::C] {
        let target = world.account(who);
        if !out.iter().any(|t| t.who == who) {
            out.push(target);
        }
    }
    out
}

/// Every path of the matrix for `caller`, without a phoneCallId: each userId form (`@me`,
/// `@viewer`, `@owner`, the id of each target) with each extension form (`@self`, the full and
/// the short number of each target's extensions, and an unknown full and short number).
fn paths(world: &World, caller: &Account) -> Vec<PathCase> {
    let targets = targets(world, caller);
    let mut users = vec![UserForm::Me, UserForm::Viewer, UserForm::Owner];
    users.extend(targets.iter().map(|t| UserForm::Id(t.id)));
    let mut exts = vec![ExtForm::All];
    for target in &targets {
        for full in &target.extensions {
            exts.push(ExtForm::Full(full.to_string()));
            exts.push(ExtForm::Short(full.split_once('*').unwrap().1.to_string()));
        }
    }
    exts.push(ExtForm::Full("0003*999".into()));
    exts.push(ExtForm::Short("999".into()));
    let mut seen = HashSet::new();
    exts.retain(|e| seen.insert(e.clone()));
    let mut out = Vec::new();
    for user in &users {
        for ext in &exts {
            out.push(PathCase {
                user: user.clone(),
                ext: ext.clone(),
                call: None,
            });
        }
    }
    out
}

/// The phoneCallIds to try with a path: none; the first live call the path names, whether the
/// caller may see it or not; a call the caller may see but the path does not name; a call the
/// caller may not see; an ended call the path names.
fn call_variants(world: &World, caller: &Account, path: &PathCase) -> Vec<Option<Uuid>> {
    let mut out = vec![None];
    let hidden = world
        .calls
        .iter()
        .filter(|c| !c.ended && !sees(caller, c))
        .max_by_key(|c| c.org == world.org7);
    let ended = world.calls.iter().find(|c| c.ended && c.org == world.org3);
    match resolve(world, caller, path) {
        Err(_) => out.extend([hidden.or(ended).map(|c| c.id)]),
        Ok(scope) => {
            let named = |c: &SeedCall| match &scope {
                Scope::Visible => true,
                Scope::Extensions(exts) => c.involves(exts),
            };
            out.push(world.live().find(|c| named(c)).map(|c| c.id));
            out.push(
                world
                    .live()
                    .find(|c| sees(caller, c) && !named(c))
                    .map(|c| c.id),
            );
            out.push(hidden.map(|c| c.id));
            out.push(
                world
                    .calls
                    .iter()
                    .find(|c| c.ended && named(c))
                    .or(ended)
                    .map(|c| c.id),
            );
        }
    }
    let mut seen = HashSet::new();
    out.into_iter()
        .enumerate()
        .filter(|(i, id)| (*i == 0 || id.is_some()) && seen.insert(*id))
        .map(|(_, id)| id)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Talking to the list.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// 200: the entries' ids in order and totalResults.
    Page(Vec<Uuid>, i64),
    /// 204.
    Empty,
    /// 400 with this code.
    Invalid(String),
    /// Anything else.
    Other(u16, String),
}

async fn get(app: &TestApp, token: &str, url: &str) -> Answer {
    let response = app
        .get_with_authorization(url, &format!("Bearer {token}"))
        .await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    match status {
        200 => {
            let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            let ids = body["entry"]
                .as_array()
                .unwrap_or_else(|| panic!("entry is an array: {text}"))
                .iter()
                .map(|e| Uuid::parse_str(e["id"].as_str().unwrap()).unwrap())
                .collect();
            Answer::Page(ids, body["totalResults"].as_i64().unwrap())
        }
        204 => {
            assert!(text.is_empty(), "a 204 has no body: {url} {text:?}");
            Answer::Empty
        }
        400 => {
            let body: Value = serde_json::from_str(&text).unwrap();
            Answer::Invalid(body["error"]["code"].as_str().unwrap().to_string())
        }
        _ => Answer::Other(status, text),
    }
}

fn page_ids(answer: &Answer) -> Vec<Uuid> {
    match answer {
        Answer::Page(ids, _) => ids.clone(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The visibility matrix.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_path_form_shows_a_caller_a_call_it_may_not_see() {
    let world = world().await;
    let mut requests = 0;
    let mut tally = std::collections::BTreeMap::<&str, usize>::new();
    let mut failures = Vec::new();
    for who in [Who::Admin, Who::Org3, Who::A, Who::Switch] {
        let caller = world.account(who);
        let visible = world.visible(caller);
        for base_path in paths(&world, caller) {
            for call in call_variants(&world, caller, &base_path) {
                let path = PathCase {
                    call,
                    ..base_path.clone()
                };
                let url = format!("{}?count=5000", path.render());
                let answer = get(&world.app, &caller.token, &url).await;
                requests += 1;
                // Above all: nothing the caller may not see, whatever else is wrong.
                let leaked: Vec<Uuid> = page_ids(&answer)
                    .into_iter()
                    .filter(|id| !visible.contains(id))
                    .collect();
                assert!(
                    leaked.is_empty(),
                    "{who:?} GET {url} shows calls it may not see: {leaked:?}"
                );
                let expected = match expected_calls(&world, caller, &path) {
                    Err(code) => Answer::Invalid(code.to_string()),
                    Ok(calls) if calls.is_empty() => Answer::Empty,
                    Ok(calls) => {
                        let ids: BTreeSet<Uuid> = calls.iter().map(|c| c.id).collect();
                        Answer::Page(ids.into_iter().collect(), calls.len() as i64)
                    }
                };
                // Compare pages as sets here; the order is the property test's business.
                let got = match &answer {
                    Answer::Page(ids, total) => {
                        let set: BTreeSet<Uuid> = ids.iter().copied().collect();
                        assert_eq!(set.len(), ids.len(), "{who:?} GET {url}: duplicate entries");
                        Answer::Page(set.into_iter().collect(), *total)
                    }
                    other => other.clone(),
                };
                *tally
                    .entry(match &expected {
                        Answer::Page(..) => "200",
                        Answer::Empty => "204",
                        _ => "400",
                    })
                    .or_default() += 1;
                if got != expected {
                    failures.push(format!(
                        "{who:?} GET {url}: expected {expected:?}, got {got:?}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {requests} requests answered against the spec:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The matrix is only worth something if it reaches every kind of answer often.
    eprintln!("{requests} requests, expected answers {tally:?}");
    assert!(requests > 700, "{requests} requests");
    for status in ["200", "204", "400"] {
        assert!(tally.get(status).copied().unwrap_or(0) > 100, "{tally:?}");
    }
}

#[tokio::test]
async fn owner_self_lists_exactly_what_each_caller_may_see_and_me_self_a_users_own_calls() {
    let world = world().await;
    let live: Vec<&SeedCall> = world.live().collect();
    assert_eq!(live.len(), SHAPES.len() * ROUNDS);
    let ids = |pred: &dyn Fn(&SeedCall) -> bool| -> BTreeSet<Uuid> {
        live.iter().filter(|c| pred(c)).map(|c| c.id).collect()
    };
    let a_exts = ["0003*210", "0003*212"];
    // Written out from spec §1, independently of `sees`.
    let cases: [(Who, BTreeSet<Uuid>); 4] = [
        (Who::Admin, ids(&|_| true)),
        (Who::Org3, ids(&|c| c.extension.starts_with("0003*"))),
        (Who::A, ids(&|c| c.involves(&a_exts))),
        (Who::Switch, BTreeSet::new()),
    ];
    for (who, expected) in &cases {
        assert_eq!(*expected, world.visible(world.account(*who)), "{who:?}");
        let answer = get(
            &world.app,
            &world.account(*who).token,
            "/uapi/phoneCalls/@owner/@self/?count=5000",
        )
        .await;
        let got: BTreeSet<Uuid> = page_ids(&answer).into_iter().collect();
        assert_eq!(got, *expected, "{who:?} @owner/@self: {answer:?}");
        // An organization or admin account owns no extensions: its `@me` is `@owner`.
        if matches!(who, Who::Admin | Who::Org3) {
            for me in ["@me", "@viewer"] {
                let path = format!("/uapi/phoneCalls/{me}/@self/?count=5000");
                let answer = get(&world.app, &world.account(*who).token, &path).await;
                let got: BTreeSet<Uuid> = page_ids(&answer).into_iter().collect();
                assert_eq!(got, *expected, "{who:?} {path}");
            }
        }
        if expected.is_empty() {
            assert_eq!(answer, Answer::Empty, "{who:?}");
        } else {
            assert_eq!(
                answer,
                Answer::Page(page_ids(&answer), expected.len() as i64),
                "{who:?}"
            );
        }
    }
    // The seed has what the matrix needs: A sees calls charged to B and calls it is not a party
    // of, and not every call of its organization.
    let a_sees = &cases[2].1;
    assert!(live
        .iter()
        .any(|c| c.extension == "0003*211" && a_sees.contains(&c.id)));
    assert!(live
        .iter()
        .any(|c| c.extension == "0003*210" && !c.views.iter().any(|v| v.extension == "0003*210")));
    assert!(a_sees.len() < cases[1].1.len() && cases[1].1.len() < cases[0].1.len());

    for (who, exts) in [
        (Who::A, &["0003*210", "0003*212"][..]),
        (Who::B, &["0003*211"][..]),
        (Who::C, &["0007*210", "0007*213"][..]),
    ] {
        let expected = ids(&|c| c.involves(exts));
        for path in ["@me/@self", "@viewer/@self"] {
            let answer = get(
                &world.app,
                &world.account(who).token,
                &format!("/uapi/phoneCalls/{path}/?count=5000"),
            )
            .await;
            let got: BTreeSet<Uuid> = page_ids(&answer).into_iter().collect();
            assert_eq!(got, expected, "{who:?} {path}");
        }
    }
}

#[tokio::test]
async fn hand_written_answers_agree_with_the_model_and_the_service() {
    let world = world().await;
    let id = |who| world.account(who).id.to_string();
    let (a, b, c) = (id(Who::A), id(Who::B), id(Who::C));
    let sw = id(Who::Switch);
    // (caller, path, expected status, expected code)
    let table: Vec<(Who, String, u16, &str)> = vec![
        (Who::A, "@me/0003*211".into(), 400, "extension_invalid"),
        (Who::A, "@me/210".into(), 200, ""),
        (Who::A, "@me/0007*210".into(), 400, "extension_invalid"),
        (Who::A, format!("{b}/@self"), 400, "user_invalid"),
        (Who::A, format!("{c}/210"), 400, "user_invalid"),
        (Who::A, format!("{a}/212"), 200, ""),
        (Who::A, "@owner/211".into(), 400, "extension_invalid"),
        (Who::A, "@owner/0003*212".into(), 200, ""),
        (Who::A, "@owner/0007*210".into(), 400, "extension_invalid"),
        (Who::A, "@owner/999".into(), 400, "extension_invalid"),
        (Who::Org3, format!("{c}/@self"), 400, "user_invalid"),
        (Who::Org3, format!("{a}/212"), 200, ""),
        (Who::Org3, format!("{a}/211"), 400, "extension_invalid"),
        (Who::Org3, "@owner/211".into(), 200, ""),
        (
            Who::Org3,
            "@owner/0007*211".into(),
            400,
            "extension_invalid",
        ),
        // An organization's `@me` is its whole context, as `@owner` (spec §2.2).
        (Who::Org3, "@me/@self".into(), 200, ""),
        (Who::Org3, "@viewer/211".into(), 200, ""),
        (Who::Org3, "@me/0003*212".into(), 200, ""),
        (Who::Org3, "@me/0007*211".into(), 400, "extension_invalid"),
        (Who::Admin, format!("{c}/210"), 200, ""),
        (Who::Admin, "@owner/0007*213".into(), 200, ""),
        (Who::Admin, "@owner/210".into(), 400, "extension_invalid"),
        (Who::Admin, "@me/@self".into(), 200, ""),
        (Who::Admin, "@me/0003*210".into(), 200, ""),
        (Who::Admin, "@viewer/210".into(), 400, "extension_invalid"),
        (Who::Switch, "@owner/@self".into(), 204, ""),
        (Who::Switch, format!("{sw}/@self"), 204, ""),
        (Who::Switch, format!("{a}/@self"), 400, "user_invalid"),
        (
            Who::Switch,
            "@owner/0003*210".into(),
            400,
            "extension_invalid",
        ),
    ];
    for (who, path, status, code) in table {
        let caller = world.account(who);
        let url = format!("/uapi/phoneCalls/{path}/?count=5000");
        let response = world
            .app
            .get_with_authorization(&url, &format!("Bearer {}", caller.token))
            .await;
        assert_eq!(response.status().as_u16(), status, "{who:?} {url}");
        if status == 400 {
            assert_error(response, 400, code).await;
        }
        // The model the matrix trusts says the same.
        let (user, ext) = path.split_once('/').unwrap();
        let model = PathCase {
            user: match user {
                "@me" => UserForm::Me,
                "@viewer" => UserForm::Viewer,
                "@owner" => UserForm::Owner,
                n => UserForm::Id(n.parse().unwrap()),
            },
            ext: match ext {
                "@self" => ExtForm::All,
                n if n.contains('*') => ExtForm::Full(n.into()),
                n => ExtForm::Short(n.into()),
            },
            call: None,
        };
        let modelled = match expected_calls(&world, caller, &model) {
            Err(code) => (400, code),
            Ok(calls) if calls.is_empty() => (204, ""),
            Ok(_) => (200, ""),
        };
        assert_eq!(modelled, (status, code), "model for {who:?} {path}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Filters, sorting and paging against a Rust reference.
// ---------------------------------------------------------------------------------------------

mod property {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    const RESOURCE_FIELDS: [&str; 9] = [
        "id",
        "extension",
        "ownerId",
        "ownerName",
        "published",
        "answered",
        "nonce",
        "phoneCallView",
        "links",
    ];

    /// A request as drawn; the world turns it into a concrete one.
    #[derive(Debug, Clone)]
    struct Draw {
        caller: usize,
        path: Index,
        call: Option<Index>,
        /// Field, operator (None: left out, the default applies), value picks.
        filter: Option<(usize, Option<Index>, Vec<Index>)>,
        sort_by: Option<usize>,
        descending: Option<bool>,
        count: u32,
        start_index: u32,
        /// Some(true): far in the future; Some(false): far in the past.
        updated_since_future: Option<bool>,
        fields: Option<Vec<Index>>,
    }

    fn draws() -> impl Strategy<Value = Draw> {
        let filter = (
            0usize..FilterField::ALL.len(),
            proptest::option::weighted(0.8, any::<Index>()),
            proptest::collection::vec(any::<Index>(), 1..=3),
        );
        (
            (
                0usize..4,
                any::<Index>(),
                proptest::option::weighted(0.2, any::<Index>()),
                proptest::option::weighted(0.85, filter),
            ),
            (
                proptest::option::weighted(0.8, 0usize..SortBy::ALL.len()),
                proptest::option::weighted(0.8, any::<bool>()),
                1u32..=50,
                prop_oneof![3 => 0u32..=3, 1 => 0u32..=60],
                proptest::option::weighted(0.2, any::<bool>()),
                proptest::option::weighted(0.2, proptest::collection::vec(any::<Index>(), 1..=3)),
            ),
        )
            .prop_map(
                |(
                    (caller, path, call, filter),
                    (sort_by, descending, count, start_index, updated_since_future, fields),
                )| Draw {
                    caller,
                    path,
                    call,
                    filter,
                    sort_by,
                    descending,
                    count,
                    start_index,
                    updated_since_future,
                    fields,
                },
            )
    }

    /// A concrete filter.
    #[derive(Debug, Clone)]
    struct Filter {
        field: &'static str,
        /// The operator in force (the default when the request leaves it out).
        op: &'static str,
        op_given: bool,
        value: Option<String>,
    }

    /// Variations of a seed value: itself, parts of it, and values just beside it.
    fn near_texts(value: &str, out: &mut Vec<String>) {
        let chars: Vec<char> = value.chars().collect();
        let n = chars.len();
        let take = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
        out.push(value.to_string());
        out.push(take(0, n.min(1)));
        out.push(take(0, n.min(3)));
        out.push(take(0, n.saturating_sub(1)));
        out.push(take(n / 3, n));
        out.push(take(n / 3, (2 * n / 3).max(n / 3)));
        out.push(format!("{value}x"));
        out.push(value.to_uppercase());
        out.push(value.to_lowercase());
    }

    fn text_pool(world: &World, field: &str) -> Vec<String> {
        let mut seeds: Vec<String> = Vec::new();
        for call in &world.calls {
            match field {
                "id" => seeds.push(call.id.to_string()),
                "extension" => seeds.push(call.extension.to_string()),
                _ => {
                    for view in &call.views {
                        match field {
                            "source" => seeds.extend(view.source.iter().map(|s| s.to_string())),
                            "destination" => {
                                seeds.extend(view.destination.iter().map(|s| s.to_string()))
                            }
                            _ => seeds.extend(view.caller_id.map(str::to_string)),
                        }
                    }
                }
            }
        }
        let mut pool = Vec::new();
        for seed in seeds {
            near_texts(&seed, &mut pool);
        }
        pool.extend(
            [
                "%",
                "_",
                "\\",
                "0003*21",
                "Z",
                "É",
                "é",
                "+44",
                "<",
                "nonexistent",
            ]
            .map(str::to_string),
        );
        clean(pool)
    }

    /// Non-empty, no comma (inArray would split it), no duplicates, in a stable order.
    fn clean(pool: Vec<String>) -> Vec<String> {
        let mut seen = HashSet::new();
        pool.into_iter()
            .filter(|v| !v.is_empty() && !v.contains(',') && seen.insert(v.clone()))
            .collect()
    }

    fn date_instants(world: &World, field: &str) -> Vec<DateTime<Utc>> {
        world
            .calls
            .iter()
            .filter_map(|c| {
                if field == "published" {
                    Some(c.published)
                } else {
                    c.answered
                }
            })
            .collect()
    }

    /// xs:dateTime values at and beside the seed's instants, in several equivalent spellings.
    fn date_pool(world: &World, field: &str) -> Vec<String> {
        let mut pool = Vec::new();
        for at in date_instants(world, field) {
            pool.push(format_utc(at));
            pool.push(format_utc(at + Duration::seconds(1)));
            pool.push(format_utc(at - Duration::seconds(1)));
            pool.push(
                (at + Duration::hours(2))
                    .format("%Y-%m-%dT%H:%M:%S+02:00")
                    .to_string(),
            );
            pool.push(
                (at - Duration::minutes(90))
                    .format("%Y-%m-%dT%H:%M:%S-01:30")
                    .to_string(),
            );
            pool.push(at.format("%Y-%m-%dT%H:%M:%S.5Z").to_string());
            // Finer than PostgreSQL's microseconds: still compared as exact instants.
            pool.push(at.format("%Y-%m-%dT%H:%M:%S.0000001Z").to_string());
            pool.push(
                (at - Duration::seconds(1))
                    .format("%Y-%m-%dT%H:%M:%S.9999999Z")
                    .to_string(),
            );
        }
        pool.push("2000-01-01T00:00:00Z".into());
        pool.push("2100-01-01T00:00:00Z".into());
        clean(pool)
    }

    /// Substrings of the seed's dates as UTC text, for contains and startsWith.
    fn date_text_pool(world: &World, field: &str) -> Vec<String> {
        let mut pool = Vec::new();
        for at in date_instants(world, field) {
            let text = format_utc(at);
            for (a, b) in [
                (0, 4),
                (0, 10),
                (0, 13),
                (0, 16),
                (0, 20),
                (10, 13),
                (11, 16),
                (17, 20),
                (5, 10),
            ] {
                pool.push(text[a..b].to_string());
            }
        }
        pool.extend(
            [
                "Z",
                "2026-11-29",
                "T23",
                "2026-12",
                "2026-11-28T14:40:28+00:00",
            ]
            .map(str::to_string),
        );
        clean(pool)
    }

    fn integer_pool(world: &World, field: &str) -> Vec<String> {
        let values: Vec<i64> = match field {
            "ownerId" => vec![
                world.org3,
                world.org7,
                world.org3 - 1,
                world.org3 + 1,
                world.org7 + 1,
                0,
                -1,
            ],
            "status" => (-1..=6).collect(),
            _ => vec![0, 2, 3, 4, 8, 9],
        };
        values.into_iter().map(|v| v.to_string()).collect()
    }

    fn pick<'a>(pool: &'a [String], index: &Index) -> &'a str {
        &pool[index.index(pool.len())]
    }

    fn concrete_filter(
        world: &World,
        (field, op, picks): &(usize, Option<Index>, Vec<Index>),
    ) -> Filter {
        let field = FilterField::ALL[*field];
        let (name, kind) = (field.name(), field.field_type());
        let ops = filter_ops_for(kind);
        let (op_name, op_given) = match op {
            Some(i) => (ops[i.index(ops.len())], true),
            None if kind == FieldType::Integer => ("equals", false),
            None => ("contains", false),
        };
        let pool = match (kind, op_name) {
            (FieldType::Text, _) => text_pool(world, name),
            (FieldType::Date, "contains" | "startsWith") => date_text_pool(world, name),
            (FieldType::Date, _) => date_pool(world, name),
            (FieldType::Integer, _) => integer_pool(world, name),
        };
        let value = match op_name {
            // present ignores the value; send one half of the time anyway.
            "present" => (picks.len() > 1).then(|| pick(&pool, &picks[0]).to_string()),
            "inArray" => Some(
                picks
                    .iter()
                    .map(|i| pick(&pool, i))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => Some(pick(&pool, &picks[0]).to_string()),
        };
        Filter {
            field: name,
            op: op_name,
            op_given,
            value,
        }
    }

    fn instant(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn text_matches(op: &str, value: Option<&str>, text: &str) -> bool {
        let v = value.unwrap_or_default();
        match op {
            "contains" => text.contains(v),
            "startsWith" => text.starts_with(v),
            "equals" => text == v,
            "greaterThan" => text > v,
            "lessThan" => text < v,
            "inArray" => v.split(',').any(|item| item == text),
            "present" => !text.is_empty(),
            _ => unreachable!(),
        }
    }

    fn integer_matches(op: &str, value: Option<&str>, n: i64) -> bool {
        let parse = |s: &str| s.parse::<i64>().unwrap();
        match op {
            "equals" => n == parse(value.unwrap()),
            "greaterThan" => n > parse(value.unwrap()),
            "lessThan" => n < parse(value.unwrap()),
            "inArray" => value.unwrap().split(',').any(|item| parse(item) == n),
            "present" => true,
            _ => unreachable!(),
        }
    }

    fn date_matches(op: &str, value: Option<&str>, at: Option<DateTime<Utc>>) -> bool {
        let Some(at) = at else { return false };
        match op {
            "present" => true,
            "contains" | "startsWith" => text_matches(op, value, &format_utc(at)),
            "equals" => at == instant(value.unwrap()),
            "greaterThan" => at > instant(value.unwrap()),
            "lessThan" => at < instant(value.unwrap()),
            "inArray" => value.unwrap().split(',').any(|item| instant(item) == at),
            _ => unreachable!(),
        }
    }

    /// Spec §2.3: view-level fields match when any view matches; source and destination when
    /// any of their elements does.
    fn filter_matches(f: &Filter, call: &SeedCall) -> bool {
        let v = f.value.as_deref();
        let text = |s: &str| text_matches(f.op, v, s);
        match f.field {
            "id" => text(&call.id.to_string()),
            "extension" => text(call.extension),
            "ownerId" => integer_matches(f.op, v, call.org),
            "published" => date_matches(f.op, v, Some(call.published)),
            "answered" => date_matches(f.op, v, call.answered),
            "source" => call.views.iter().any(|w| w.source.iter().any(|s| text(s))),
            "destination" => call
                .views
                .iter()
                .any(|w| w.destination.iter().any(|s| text(s))),
            "callerId" => call.views.iter().any(|w| w.caller_id.is_some_and(text)),
            "status" => call
                .views
                .iter()
                .any(|w| integer_matches(f.op, v, w.status)),
            "flow" => call.views.iter().any(|w| integer_matches(f.op, v, w.flow)),
            other => unreachable!("{other}"),
        }
    }

    /// The reference: the caller's visible live calls the path names, filtered, sorted with id
    /// as tie-breaker in the same direction (answered NULLs last ascending, first descending),
    /// paged. Returns the page's ids and the count of every match.
    fn reference(
        world: &World,
        caller: &Account,
        path: &PathCase,
        filter: Option<&Filter>,
        draw: &Draw,
    ) -> (Vec<Uuid>, usize) {
        let sort_by = draw.sort_by.map_or("published", |i| SortBy::ALL[i].name());
        let descending = draw.descending.unwrap_or(false);
        let mut calls = expected_calls(world, caller, path).expect("a valid path");
        calls.retain(|c| filter.is_none_or(|f| filter_matches(f, c)));
        if draw.updated_since_future == Some(true) {
            calls.clear();
        }
        calls.sort_by(|x, y| {
            let primary = match sort_by {
                "published" => x.published.cmp(&y.published),
                // None after every date when ascending.
                "answered" => match (x.answered, y.answered) {
                    (Some(a), Some(b)) => a.cmp(&b),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                },
                "extension" => x.extension.as_bytes().cmp(y.extension.as_bytes()),
                _ => std::cmp::Ordering::Equal,
            };
            primary.then_with(|| x.id.to_string().cmp(&y.id.to_string()))
        });
        if descending {
            calls.reverse();
        }
        let total = calls.len();
        let page = calls
            .into_iter()
            .skip(draw.start_index as usize)
            .take(draw.count as usize)
            .map(|c| c.id)
            .collect();
        (page, total)
    }

    const CALLERS: [Who; 4] = [Who::Admin, Who::Org3, Who::A, Who::B];

    #[test]
    fn filtered_sorted_pages_match_a_rust_reference_over_the_visible_calls() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let world = runtime.block_on(world());
        let valid_paths: Vec<Vec<PathCase>> = CALLERS
            .iter()
            .map(|who| {
                let caller = world.account(*who);
                paths(&world, caller)
                    .into_iter()
                    .filter(|p| resolve(&world, caller, p).is_ok())
                    .collect()
            })
            .collect();
        let all_ids: Vec<Uuid> = world.calls.iter().map(|c| c.id).collect();
        let pages = std::sync::atomic::AtomicUsize::new(0);
        let mut runner = TestRunner::new(Config {
            cases: 40,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&draws(), |draw| {
                runtime.block_on(async {
                    let caller = world.account(CALLERS[draw.caller]);
                    let candidates = &valid_paths[draw.caller];
                    let mut path = candidates[draw.path.index(candidates.len())].clone();
                    path.call = draw.call.as_ref().map(|i| all_ids[i.index(all_ids.len())]);
                    let filter = draw.filter.as_ref().map(|f| concrete_filter(&world, f));

                    let mut query: Vec<(&str, String)> = vec![
                        ("count", draw.count.to_string()),
                        ("startIndex", draw.start_index.to_string()),
                    ];
                    if let Some(f) = &filter {
                        query.push(("filterBy", f.field.to_string()));
                        if f.op_given {
                            query.push(("filterOp", f.op.to_string()));
                        }
                        if let Some(v) = &f.value {
                            query.push(("filterValue", v.clone()));
                        }
                    }
                    if let Some(i) = draw.sort_by {
                        query.push(("sortBy", SortBy::ALL[i].name().to_string()));
                    }
                    if let Some(d) = draw.descending {
                        let order = if d { "descending" } else { "ascending" };
                        query.push(("sortOrder", order.to_string()));
                    }
                    if let Some(future) = draw.updated_since_future {
                        let at = if future {
                            "2100-01-01T00:00:00Z"
                        } else {
                            "2000-01-01T00:00:00+02:00"
                        };
                        query.push(("updatedSince", at.to_string()));
                    }
                    if let Some(fields) = &draw.fields {
                        let names: Vec<&str> = fields
                            .iter()
                            .map(|i| RESOURCE_FIELDS[i.index(RESOURCE_FIELDS.len())])
                            .collect();
                        query.push(("fields", names.join(",")));
                    }
                    let url = format!(
                        "{}?{}",
                        path.render(),
                        serde_urlencoded::to_string(&query).unwrap()
                    );

                    let (page, total) = reference(&world, caller, &path, filter.as_ref(), &draw);
                    let expected = if page.is_empty() {
                        Answer::Empty
                    } else {
                        Answer::Page(page.clone(), total as i64)
                    };
                    if !page.is_empty() {
                        pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let got = get(&world.app, &caller.token, &url).await;
                    prop_assert_eq!(
                        &got,
                        &expected,
                        "{:?} GET {} (filter {:?})",
                        CALLERS[draw.caller],
                        url,
                        filter
                    );
                    Ok::<(), TestCaseError>(())
                })
            })
            .unwrap();
        // Most cases must reach a non-empty page, or the comparison says little.
        let pages = pages.into_inner();
        assert!(pages >= 4, "only {pages} of 40 cases had a non-empty page");
    }
}
