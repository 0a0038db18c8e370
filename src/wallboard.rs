//! `GET /wallboard/`: a single static page (`static/wallboard.html`, built into the binary, no
//! external assets) where a person pastes a token and watches the live calls it may see, from
//! the list's live stream (`streams`). The page keeps the token in the browser only: it never
//! reaches a URL the page loads except the stream's own `accessRequestToken` (EventSource
//! cannot send headers).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::http::method_not_allowed;

const PAGE: &str = include_str!("../static/wallboard.html");

/// What the page may load: itself, its inline style and script, and the API of its origin.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/wallboard/")
            .route(web::get().to(page))
            .route(web::head().to(page))
            .default_service(method_not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/wallboard")
            .route(web::get().to(to_page))
            .route(web::head().to(to_page))
            .default_service(method_not_allowed("GET, HEAD")),
    );
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(PAGE)
}

async fn to_page() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/wallboard/"))
        .finish()
}
