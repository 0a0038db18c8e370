//! Handlers of `/uapi/phoneCalls/...`: thin, in the check order of spec §2.4 (authentication,
//! then every syntactic check of path and query, then resolution against the database).

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use super::admission::{self, Rows};
use super::model::ListResponse;
use super::path::{self, CallRef};
use super::query::{self, Field, ParamError};
use super::repo::{self, ResolveError};
use super::PathCache;
use crate::auth::Caller;
use crate::http::ApiError;
use crate::http::{method_not_allowed, AppState};

/// Mounts the resource.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/uapi/phoneCalls/{tail:.*}", "/uapi/phoneCalls"])
            .route(web::get().to(list))
            .route(web::head().to(list))
            .route(web::post().to(not_implemented))
            .route(web::put().to(not_implemented))
            .route(web::delete().to(not_implemented))
            .default_service(method_not_allowed("GET, HEAD, POST, PUT, DELETE")),
    );
}

/// `GET /uapi/phoneCalls/{userId}/{extension}[/{phoneCallId}]`.
async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    paths: web::Data<PathCache>,
    rows: web::Data<Rows>,
) -> Result<HttpResponse, ApiError> {
    // Authentication first, before anything about the request is looked at.
    let caller = Caller::from_request(&req, &mut Payload::None).await?;
    let tail = req.match_info().get("tail").unwrap_or("");
    let list_path = path::parse(tail)
        .ok_or(ApiError::NotFound)?
        .map_err(ApiError::from)?;
    let request = query::parse(req.query_string()).map_err(ApiError::from)?;
    let scope = paths.resolve(&state.db, &caller, &list_path).await?;
    let call = match list_path.call {
        CallRef::Any => None,
        CallRef::Id(id) => Some(id),
        CallRef::Malformed => return Ok(HttpResponse::NoContent().finish()),
    };
    let with_views = request.fields.contains(Field::PhoneCallView);
    // A request that may return many rows waits for its turn (see `admission`), and keeps it
    // until its JSON is built.
    let largest = if call.is_some() {
        1
    } else {
        request.count as usize
    };
    let _turn = rows.statement_turn(largest).await;
    let page = {
        let (caller, request) = (caller.clone(), request.clone());
        state
            .db
            .run(|pool| async move {
                repo::list(&pool, &caller, &scope, call, &request, with_views).await
            })
            .await?
    };
    if page.calls.is_empty() {
        return Ok(HttpResponse::NoContent().finish());
    }
    let page_rows = page.calls.len();
    // The page's rows and its JSON are held in memory together: bound how many rows large
    // pages hold at once.
    let _rows = rows.admit(page_rows).await;
    let (path, query) = (req.path().to_string(), req.query_string().to_string());
    let render = move || {
        ListResponse::new(&page, &request, &path, &query)
            .to_json()
            .map_err(|e| ApiError::Internal(e.to_string()))
    };
    // A large page's JSON takes milliseconds of processor time: built on a thread of its own,
    // it does not hold up the small requests this worker serves meanwhile.
    let body = if admission::is_small(page_rows) {
        render()?
    } else {
        tokio::task::spawn_blocking(render)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// The list's parameter errors, answered with their own UAPI code and message.
impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError::Param {
            code: e.code(),
            message: e.message(),
        }
    }
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Param(e) => e.into(),
            ResolveError::Database(e) => e.into(),
        }
    }
}

/// Making, controlling and hanging up calls is the switch's job (spec §2.4).
async fn not_implemented(_caller: Caller) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotImplemented)
}
