//! Demo calls for `scripts/serve`: live calls in varied states (ringing, talking, on hold,
//! parked, recorded), sent through the same parsing and write path as the switch's reports.

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::repo::{self, ApplyError};
use super::report::parse_report;
use crate::time::format_utc;

/// Creates `count` live calls among the extensions of `organization`. Returns how many were
/// created.
pub async fn create_live_calls(
    pool: &PgPool,
    organization: i64,
    count: usize,
) -> Result<usize, ApplyError> {
    let extensions = extensions_of(pool, organization).await?;
    let now = Utc::now();
    for i in 0..count {
        let report = demo_report(i, &extensions, now);
        let report = parse_report(&report, None).map_err(ApplyError::from)?;
        repo::apply(pool, None, &report).await?;
    }
    Ok(count)
}

/// The full numbers of an organization's extensions, which the demo calls are charged to; an
/// organization without any cannot have calls.
async fn extensions_of(pool: &PgPool, organization: i64) -> Result<Vec<String>, ApplyError> {
    let extensions: Vec<String> = sqlx::query_scalar(
        "SELECT number FROM extensions WHERE organization_id = $1 ORDER BY number",
    )
    .bind(organization)
    .fetch_all(pool)
    .await?;
    if extensions.is_empty() {
        return Err(ApplyError::Invalid(format!(
            "organization {organization} has no extensions"
        )));
    }
    Ok(extensions)
}

fn demo_report(i: usize, extensions: &[String], now: chrono::DateTime<Utc>) -> Value {
    let at = |seconds_ago: i64| format_utc(now - Duration::seconds(seconds_ago));
    let caller = &extensions[i % extensions.len()];
    let callee = &extensions[(i + 1) % extensions.len()];
    let public = format!("+44207946{:04}", (i * 7919) % 10_000);
    let age = 5 + ((i * 37) % 900) as i64;
    // Flow: local between two extensions, outgoing to or incoming from a public number.
    let (flow, source, destination) = match i % 3 {
        0 if extensions.len() > 1 => (2, caller.clone(), callee.clone()),
        1 => (8, public.clone(), caller.clone()),
        _ => (4, caller.clone(), public.clone()),
    };
    let mut view = json!({
        "id": "00", "extension": caller, "source": [source], "destination": [destination],
        "flow": flow, "callerId": format!("Demo caller {i} <{source}>"),
    });
    let mut call = json!({
        "id": Uuid::new_v4().to_string(), "sequence": 1, "extension": caller,
        "published": at(age), "nonce": format!("demo-{i}"),
    });
    match i % 6 {
        0 => {
            view["status"] = json!(3);
            view["ringing"] = json!(at(age.min(40)));
        }
        1 => {
            view["status"] = json!(5);
            view["answered"] = json!(at(age - 3));
            call["answered"] = json!(at(age - 3));
        }
        2 => {
            view["status"] = json!(5);
            view["answered"] = json!(at(age - 2));
            view["onHold"] = json!(at(age / 2));
            view["holder"] = json!(1);
            call["answered"] = json!(at(age - 2));
        }
        3 => {
            view["status"] = json!(5);
            view["answered"] = json!(at(age - 4));
            view["parked"] = json!(at(age / 3));
            view["parkedPos"] = json!(1 + i % 9);
            view["parkedBy"] = json!(caller);
            call["answered"] = json!(at(age - 4));
        }
        4 => {
            view["status"] = json!(5);
            view["answered"] = json!(at(age - 1));
            view["recording"] = json!(at(age - 1));
            call["answered"] = json!(at(age - 1));
        }
        _ => {
            view["status"] = json!(if i % 2 == 0 { 1 } else { 2 });
        }
    }
    let mut views = vec![view];
    if flow == 2 {
        // The other party of a local call sees it ringing or talking too.
        let answered = call.get("answered").cloned();
        let mut other = json!({
            "id": "01", "extension": callee, "source": [caller], "destination": [callee],
            "flow": 2, "status": if answered.is_some() { 5 } else { 3 },
        });
        if let Some(answered) = answered {
            other["answered"] = answered;
        }
        views.push(other);
    }
    call["phoneCallView"] = Value::Array(views);
    call
}

/// Creates `per_day` ended calls on each of the `days` UTC days before today among the
/// extensions of `organization`, through the same path as the switch's reports, for the reports
/// of docs/reporting.md. The calls are the same on every run (only their dates follow today):
/// office hours, three answered calls in four, local, outgoing and incoming calls, some parked,
/// held or recorded. Returns how many were created.
pub async fn create_history(
    pool: &PgPool,
    organization: i64,
    days: usize,
    per_day: usize,
) -> Result<usize, ApplyError> {
    let extensions = extensions_of(pool, organization).await?;
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let mut created = 0;
    for day in 1..=days {
        let midnight = today - Duration::days(day as i64);
        for k in 0..per_day {
            let report = history_report(day * per_day + k, &extensions, midnight);
            let report = parse_report(&report, None).map_err(ApplyError::from)?;
            repo::apply(pool, None, &report).await?;
            created += 1;
        }
    }
    Ok(created)
}

fn history_report(i: usize, extensions: &[String], midnight: chrono::DateTime<Utc>) -> Value {
    let caller = &extensions[i % extensions.len()];
    let callee = &extensions[(i + 1) % extensions.len()];
    // Public numbers from four places: London, UK mobiles, New York, Berlin.
    let public = match i % 4 {
        0 => format!("+44207946{:04}", (i * 7919) % 10_000),
        1 => format!("+44770090{:04}", (i * 104_729) % 10_000),
        2 => format!("+1212555{:04}", (i * 1_299_709) % 10_000),
        _ => format!("+49305550{:04}", (i * 15_485_863) % 10_000),
    };
    // Office hours, busiest late in the morning: 08:00 to 18:00 UTC.
    let second_of_day = 8 * 3600 + ((i * 7_919) % 36_000) as i64 - ((i % 7) as i64) * 600;
    let published = midnight + Duration::seconds(second_of_day.max(8 * 3600));
    let ring = 2 + (i % 23) as i64;
    let answered = i % 4 != 3;
    let talk = 30 + ((i * 131) % 870) as i64;
    let ended = if answered {
        published + Duration::seconds(ring + talk)
    } else {
        published + Duration::seconds(ring + 20)
    };
    let (flow, source, destination) = match i % 3 {
        0 if extensions.len() > 1 => (2, caller.clone(), callee.clone()),
        1 => (8, public.clone(), caller.clone()),
        _ => (4, caller.clone(), public.clone()),
    };
    let at = |t: chrono::DateTime<Utc>| format_utc(t);
    // Unanswered calls end busy, with no answer, or failed.
    let disposition = if answered {
        0
    } else {
        [1, 3, 3, 2][(i / 4) % 4]
    };
    let mut view = json!({
        "id": "00", "extension": caller, "source": [source], "destination": [destination],
        "flow": flow, "status": if answered { 5 } else { 3 }, "ringing": at(published + Duration::seconds(1)),
        "disposition": disposition,
    });
    let mut call = json!({
        "id": Uuid::new_v4().to_string(), "sequence": 1, "extension": caller,
        "published": at(published), "ended": at(ended), "nonce": format!("history-{i}"),
    });
    if answered {
        let answer = published + Duration::seconds(ring);
        view["answered"] = json!(at(answer));
        call["answered"] = json!(at(answer));
        match i % 10 {
            0 => {
                view["parked"] = json!(at(answer + Duration::seconds(talk / 2)));
                view["parkedPos"] = json!(1 + i % 9);
                view["parkedBy"] = json!(caller);
            }
            1 | 2 => {
                view["onHold"] = json!(at(answer + Duration::seconds(talk / 3)));
                view["holder"] = json!(1);
            }
            3 => view["recording"] = json!(at(answer)),
            _ => {}
        }
    }
    let mut views = vec![view];
    if flow == 2 {
        let mut other = json!({
            "id": "01", "extension": callee, "source": [caller], "destination": [callee],
            "flow": 2, "status": if answered { 5 } else { 3 },
            "ringing": at(published + Duration::seconds(1)), "disposition": disposition,
        });
        if answered {
            other["answered"] = call["answered"].clone();
        }
        views.push(other);
    }
    call["phoneCallView"] = Value::Array(views);
    call
}
