//! Handlers of `/uapi/phoneCalls/...`: thin, in the check order of spec §2.4 (authentication,
//! then every syntactic check of path and query, then resolution against the database).

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use super::model::ListResponse;
use super::path::{self, CallRef};
use super::query::{self, Field};
use super::repo;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::startup::{method_not_allowed, AppState};

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
async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // Authentication first, before anything about the request is looked at.
    let caller = Caller::from_request(&req, &mut Payload::None).await?;
    let tail = req.match_info().get("tail").unwrap_or("");
    let list_path = path::parse(tail)
        .ok_or(ApiError::NotFound)?
        .map_err(ApiError::Param)?;
    let request = query::parse(req.query_string()).map_err(ApiError::Param)?;
    let scope = state
        .paths
        .resolve(&state.pool, &caller, &list_path)
        .await?;
    let call = match list_path.call {
        CallRef::Any => None,
        CallRef::Id(id) => Some(id),
        CallRef::Malformed => return Ok(HttpResponse::NoContent().finish()),
    };
    let with_views = request.fields.contains(Field::PhoneCallView);
    // The page's rows and its JSON are held in memory together: bound how many rows all
    // requests hold at once (count <= 5000 <= LIST_ROWS_IN_FLIGHT, so the permits exist).
    let _rows = state
        .rows_in_flight
        .acquire_many(request.count)
        .await
        .map_err(|_| ApiError::Unavailable("shutting down".into()))?;
    let page = repo::list(&state.pool, &caller, &scope, call, &request, with_views).await?;
    if page.calls.is_empty() {
        return Ok(HttpResponse::NoContent().finish());
    }
    let body = serde_json::to_vec(&ListResponse::new(
        &page,
        &request,
        req.path(),
        req.query_string(),
    ))
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    drop(page);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// Making, controlling and hanging up calls is the switch's job (spec §2.4).
async fn not_implemented(_caller: Caller) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotImplemented)
}
