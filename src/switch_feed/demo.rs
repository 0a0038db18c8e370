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
    let now = Utc::now();
    for i in 0..count {
        let report = demo_report(i, &extensions, now);
        let report = parse_report(&report, None).map_err(ApplyError::from)?;
        repo::apply(pool, None, &report).await?;
    }
    Ok(count)
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
