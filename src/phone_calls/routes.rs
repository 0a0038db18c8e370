//! Handlers of `/uapi/phoneCalls/...`: thin, in the check order of spec §2.4 (authentication,
//! then every syntactic check of path and query, then resolution against the database).

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use super::admission::Rows;
use super::model::PageWriter;
use super::path::{self, CallRef};
use super::query::{self, Field, ParamError};
use super::repo::{self, ResolveError};
use super::PathCache;
use crate::auth::Caller;
use crate::http::ApiError;
use crate::http::{method_not_allowed, AppState};
use crate::streams::{self, Hub};

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
    hub: web::Data<Hub>,
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
    // The same list as a live stream (`streams`), once everything a page checks has passed.
    if req.method() == actix_web::http::Method::GET && streams::wants_stream(&req) {
        let opening = streams::Opening {
            caller,
            path: list_path,
            scope,
            call,
            request,
        };
        return streams::open(
            &req,
            &state,
            &hub.into_inner(),
            &paths.into_inner(),
            &rows.into_inner(),
            opening,
        )
        .await;
    }
    let with_views = request.fields.contains(Field::PhoneCallView);
    let largest = if call.is_some() {
        1
    } else {
        request.count as usize
    };
    // A large page is admitted for the rows it asks for, then its statement waits for its turn
    // (see `admission`); both are held until its JSON is built.
    let _rows = rows.admit(largest).await;
    let _turn = rows.statement_turn(largest).await;
    let (path, query) = (req.path().to_string(), req.query_string().to_string());
    // The page's JSON is written as its calls arrive (see `model::PageWriter`).
    // Lists may read the replica (`DATABASE_READ_URL`); tokens and paths were resolved on the
    // primary, so that a revocation or a moved extension is seen at once.
    let page = state
        .db
        .run_read(|pool| async move {
            let mut page = PageWriter::new(&request, path, query);
            repo::list(
                &pool,
                &caller,
                &scope,
                call,
                &request,
                with_views,
                |call, total| {
                    page.push(call, total);
                },
            )
            .await?;
            Ok::<_, sqlx::Error>(page)
        })
        .await?;
    let Some(body) = page
        .finish()
        .map_err(|e| ApiError::Internal(e.to_string()))?
    else {
        return Ok(HttpResponse::NoContent().finish());
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
