//! Handlers of `/uapi/phoneCalls/...`. Every method authenticates first (spec §2.4 check order).

use actix_web::web;

use crate::auth::Caller;
use crate::error::ApiError;

/// Mounts the resource.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/uapi/phoneCalls/{tail:.*}", "/uapi/phoneCalls"])
            .route(web::get().to(list))
            .route(web::post().to(not_implemented))
            .route(web::put().to(not_implemented))
            .route(web::delete().to(not_implemented))
            .default_service(crate::startup::method_not_allowed("GET, POST, PUT, DELETE")),
    );
}

/// Listing lands with the list issue; until then an authenticated GET is answered as a UAPI
/// method this service does not carry out yet.
async fn list(_caller: Caller) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotImplemented)
}

/// Making, controlling and hanging up calls is the switch's job (spec §2.4).
async fn not_implemented(_caller: Caller) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotImplemented)
}
