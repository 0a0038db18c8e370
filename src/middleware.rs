//! The request context wrapped around every route: a request id (echoed as `X-Request-Id`), a
//! tracing span, one access-log line, and the guarantee that every error answered carries the
//! JSON envelope, even those produced by actix-web itself.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::Error;
use tracing::Instrument;

use crate::error::envelope;

/// The request id header, read from the load balancer when it sends a sane one.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    sane.then(|| value.to_string())
}

/// Middleware entry point (`actix_web::middleware::from_fn`).
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request_id = incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // The path only: the query string may carry accessRequestToken.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    // Handlers' and extractors' errors arrive here already turned into responses; an `Err` could
    // only come from an inner middleware, and there is none.
    let response = next.call(req).instrument(span.clone()).await?;
    let mut response = ensure_envelope(response.map_into_boxed_body());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    span.in_scope(|| tracing::info!(status, latency_us, "request finished"));
    Ok(response)
}

/// Replaces a non-JSON error body (as actix-web writes for its own errors) with the envelope.
fn ensure_envelope(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (status, code, message) = match status {
        StatusCode::NOT_FOUND => (
            status,
            "not_found",
            "The requested resource does not exist.",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            status,
            "method_not_allowed",
            "The HTTP method is not allowed on this resource.",
        ),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            (status, "access_denied", "Access denied.")
        }
        StatusCode::PAYLOAD_TOO_LARGE => (
            StatusCode::BAD_REQUEST,
            "request_invalid",
            "The request body is too large.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            status,
            "service_unavailable",
            "The service is temporarily unavailable. Retry later.",
        ),
        s if s.is_client_error() => (
            StatusCode::BAD_REQUEST,
            "request_invalid",
            "The request is not valid.",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "The server encountered an internal error.",
        ),
    };
    let (request, original) = response.into_parts();
    let mut replacement = envelope(status, code, message);
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = original.headers().get(&name) {
            replacement.headers_mut().insert(name, value.clone());
        }
    }
    ServiceResponse::new(request, replacement)
}
