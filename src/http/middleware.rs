//! The request context wrapped around every route: a request id (echoed as `X-Request-Id`), a
//! tracing span, the request's deadline (`REQUEST_TIMEOUT_MS`: past it, 503
//! `service_unavailable`, or 408 `request_timeout` when the client was still sending its body),
//! the client limits of `client_limits`, one access-log line, and the guarantee that every error
//! answered carries the JSON envelope, even those produced by actix-web itself.

use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpResponse, ResponseError};
use tracing::Instrument;

use super::client_limits::{self, BodyWatch, ClientSocket};
use crate::http::error::{envelope, ApiError};
use crate::http::AppState;
use crate::metrics::{self, Refusal};

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
    mut req: ServiceRequest,
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
    // Metrics name the route by its pattern, never by the path a client sent.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let settings = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.settings.clone());
    let (deadline, min_rate, write_timeout) = settings
        .as_ref()
        .map_or((Duration::from_secs(30), 0, Duration::from_secs(30)), |s| {
            (s.request_timeout, s.body_min_rate, s.write_timeout)
        });
    let body = Rc::new(BodyWatch::default());
    // Most requests (every list) carry no body: nothing to watch, nothing to allocate.
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        req.set_payload(payload);
    } else {
        req.set_payload(client_limits::pace(payload, min_rate, body.clone()));
    }
    let socket = req.conn_data::<Rc<ClientSocket>>().cloned();
    // Handlers' and extractors' errors arrive here already turned into responses; an `Err` could
    // only come from an inner middleware, and there is none.
    let response =
        match tokio::time::timeout(deadline, next.call(req).instrument(span.clone())).await {
            Ok(response) => response?.map_into_boxed_body(),
            Err(_) => {
                // The request went with the cancelled handler (actix-web's routing needs it unshared,
                // so no copy was kept): the answer leaves as an error, which actix-web turns into a
                // response through `Cut`'s own `error_response`.
                let cut = Cut {
                    request_id,
                    body_too_slow: body.is_being_received(),
                    deadline,
                };
                let status = cut.status_code().as_u16();
                let latency_us = started.elapsed().as_micros() as u64;
                span.in_scope(|| tracing::warn!(status, latency_us, "request cut by its deadline"));
                metrics::refused(if cut.body_too_slow {
                    Refusal::BodyTooSlow
                } else {
                    Refusal::Deadline
                });
                metrics::request(&route, &method, status, started.elapsed());
                return Err(cut.into());
            }
        };
    let response = if body.was_too_slow() {
        metrics::refused(Refusal::BodyTooSlow);
        let (request, _) = response.into_parts();
        ServiceResponse::new(request, body_too_slow())
    } else {
        response
    };
    let mut response = ensure_envelope(response)
        .map_body(|_, body| client_limits::watch_writes(body, socket, write_timeout));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    span.in_scope(|| tracing::info!(status, latency_us, "request finished"));
    metrics::request(&route, &method, status, started.elapsed());
    Ok(response)
}

/// A request cut by its deadline: 408 when the client was still sending its body, 503 otherwise.
#[derive(Debug)]
struct Cut {
    request_id: String,
    body_too_slow: bool,
    deadline: Duration,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request's deadline of {} ms passed",
            self.deadline.as_millis()
        )
    }
}

impl ResponseError for Cut {
    fn status_code(&self) -> StatusCode {
        if self.body_too_slow {
            StatusCode::REQUEST_TIMEOUT
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = if self.body_too_slow {
            body_too_slow()
        } else {
            ApiError::Unavailable(self.to_string()).error_response()
        };
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        response
    }
}

/// 408 `request_timeout`: the client sent its body too slowly, or not all of it in time.
fn body_too_slow() -> HttpResponse {
    let mut response = envelope(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "The request body was not received in time.",
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
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
    if status == StatusCode::SERVICE_UNAVAILABLE
        && !replacement.headers().contains_key(header::RETRY_AFTER)
    {
        replacement
            .headers_mut()
            .insert(header::RETRY_AFTER, super::error::retry_after());
    }
    ServiceResponse::new(request, replacement)
}
