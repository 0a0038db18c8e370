//! `PUT /switch/v1/phoneCalls/{phoneCallId}` and the batch `POST /switch/v1/phoneCalls`, for
//! `switch` accounts only.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::body;
use super::queue::{Queue, QueueError};
use super::repo::{ApplyError, Outcome};
use super::report::{self, parse_report};
use crate::auth::Caller;
use crate::auth::Role;
use crate::http::ApiError;
use crate::http::{method_not_allowed, AppState};
use crate::metrics::{self, ReportOutcome};

/// Most reports in one batch.
pub const MAX_BATCH: usize = 1000;
/// Largest body of a single report.
const SINGLE_LIMIT: usize = 256 * 1024;
/// Largest body of a batch.
const BATCH_LIMIT: usize = 4 * 1024 * 1024;

/// Mounts the feed.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // `configure` runs once per worker: each worker groups its own single reports.
    cfg.app_data(web::Data::new(Queue::default()))
        .service(
            web::resource("/switch/v1/phoneCalls/{phoneCallId}")
                .route(web::put().to(put_report))
                .default_service(method_not_allowed("PUT")),
        )
        .service(
            web::resource("/switch/v1/phoneCalls")
                .route(web::post().to(post_batch))
                .default_service(method_not_allowed("POST")),
        );
}

/// A caller whose account is a switch: 401 without a valid token, 403 for any other role.
pub struct SwitchCaller(pub Caller);

/// Authenticates the switch, and only then reads the JSON body (at most `limit` bytes). actix-web
/// runs a handler's extractors concurrently, so a body argument could answer 400 for a bad body
/// before a caller without the right token got its 401 or 403; reading the body here keeps the
/// order.
async fn switch_and_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<(Caller, Value), actix_web::Error> {
    let SwitchCaller(caller) = SwitchCaller::from_request(req, &mut Payload::None).await?;
    let body = body::read_json(req, payload, limit).await?;
    Ok((caller, body))
}

impl FromRequest for SwitchCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            if caller.role == Role::Switch {
                Ok(SwitchCaller(caller))
            } else {
                Err(ApiError::Forbidden)
            }
        })
    }
}

#[derive(Serialize)]
struct Applied {
    id: Uuid,
    sequence: i64,
    applied: bool,
}

fn outcome_of(applied: bool) -> ReportOutcome {
    if applied {
        ReportOutcome::Applied
    } else {
        ReportOutcome::Stale
    }
}

fn status_of(outcome: Outcome) -> StatusCode {
    if outcome == Outcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Invalid(message) => ApiError::RequestInvalid(message),
            ApplyError::Database(e) => e.into(),
        }
    }
}

/// The feed's answers to what the queue could not apply.
impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Invalid(message) => ApiError::RequestInvalid(message),
            QueueError::Unavailable(detail) => ApiError::Unavailable(detail),
            QueueError::Failed(detail) => ApiError::Internal(detail),
        }
    }
}

async fn put_report(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    queue: web::Data<Queue>,
) -> Result<HttpResponse, actix_web::Error> {
    let (caller, body) = switch_and_body(&req, payload, SINGLE_LIMIT).await?;
    let invalid = |e: report::Invalid| ApiError::RequestInvalid(e.0);
    let id = report::parse_id(
        req.match_info().get("phoneCallId").unwrap_or_default(),
        "phoneCallId",
    )
    .map_err(invalid)?;
    let report = parse_report(&body, Some(id)).map_err(|e| {
        metrics::switch_reports(ReportOutcome::Rejected, 1);
        invalid(e)
    })?;
    let (id, sequence) = (report.id, report.sequence);
    let wait = state.settings.pool_acquire_timeout;
    let outcome = queue
        .apply(&state.db, wait, caller.organization_id, report)
        .await
        .map_err(|e| {
            if matches!(e, QueueError::Invalid(_)) {
                metrics::switch_reports(ReportOutcome::Rejected, 1);
            }
            ApiError::from(e)
        })?;
    metrics::switch_reports(outcome_of(outcome.applied()), 1);
    Ok(HttpResponse::build(status_of(outcome)).json(Applied {
        id,
        sequence,
        applied: outcome.applied(),
    }))
}

/// One entry of a batch answer, in the order of the reports.
#[derive(Serialize)]
#[serde(untagged)]
enum BatchResult {
    Done {
        id: Uuid,
        status: u16,
        sequence: i64,
        applied: bool,
    },
    Refused {
        id: Option<String>,
        status: u16,
        error: ErrorBody,
    },
}

#[derive(Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
}

async fn post_batch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    queue: web::Data<Queue>,
) -> Result<HttpResponse, actix_web::Error> {
    let (caller, body) = switch_and_body(&req, payload, BATCH_LIMIT).await?;
    let reports = match body.get("reports") {
        Some(Value::Array(reports)) if !reports.is_empty() && reports.len() <= MAX_BATCH => reports,
        Some(Value::Array(_)) => {
            return Err(ApiError::RequestInvalid(format!(
                "reports must hold 1 to {MAX_BATCH} reports"
            ))
            .into())
        }
        _ => {
            return Err(
                ApiError::RequestInvalid("the body must be {\"reports\":[...]}".into()).into(),
            )
        }
    };
    let refused = |i: usize, value: &Value, message: &str| BatchResult::Refused {
        id: value.get("id").and_then(Value::as_str).map(str::to_string),
        status: 400,
        error: ErrorBody {
            code: "request_invalid",
            message: format!("reports[{i}]: {message}"),
        },
    };
    // Reports that parse are applied together; the others are refused on their own.
    let mut parsed = Vec::with_capacity(reports.len());
    let mut results: Vec<Option<BatchResult>> = Vec::with_capacity(reports.len());
    for (i, value) in reports.iter().enumerate() {
        match parse_report(value, None) {
            Ok(report) => {
                parsed.push(report);
                results.push(None);
            }
            Err(e) => results.push(Some(refused(i, value, &e.0))),
        }
    }
    // If the database fails, nothing of the batch may be stored, or only some of it: the switch
    // can resend the whole batch, since replays change nothing.
    let wait = state.settings.pool_acquire_timeout;
    let keys: Vec<(Uuid, i64)> = parsed.iter().map(|r| (r.id, r.sequence)).collect();
    let outcomes = queue
        .apply_batch(&state.db, wait, caller.organization_id, parsed)
        .await
        .map_err(ApiError::from)?;
    let mut applied = keys.into_iter().zip(outcomes);
    let results: Vec<BatchResult> = results
        .into_iter()
        .enumerate()
        .map(|(i, result)| match result {
            Some(refusal) => refusal,
            None => match applied.next().expect("one outcome per parsed report") {
                ((id, sequence), Ok(outcome)) => BatchResult::Done {
                    id,
                    status: status_of(outcome).as_u16(),
                    sequence,
                    applied: outcome.applied(),
                },
                (_, Err(message)) => refused(i, &reports[i], &message),
            },
        })
        .collect();
    for result in &results {
        metrics::switch_reports(
            match result {
                BatchResult::Done { applied, .. } => outcome_of(*applied),
                BatchResult::Refused { .. } => ReportOutcome::Rejected,
            },
            1,
        );
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "results": results })))
}
