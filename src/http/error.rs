//! `ApiError`: every error the HTTP API answers, each with one status and one UAPI code, in the
//! envelope `{"error":{"code":"…","message":"…"}}`. Inner causes go to the log, never to clients.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 `access_denied`: missing, malformed, unknown, expired or revoked token.
    /// `token_sent` adds `error="invalid_token"` to `WWW-Authenticate`.
    #[error("authentication required")]
    Unauthorized { token_sent: bool },
    /// 403 `access_denied`: authenticated, but the account's role may not use this endpoint.
    #[error("forbidden")]
    Forbidden,
    /// 400 `request_invalid`: a request body or parameter that does not parse; the message names it.
    #[error("invalid request: {0}")]
    RequestInvalid(String),
    /// 400 with the list parameter's own code (`count_invalid`, `user_invalid`, ...) and the
    /// message the UAPI gives it (made from `phone_calls::query::ParamError`).
    #[error("invalid list parameter: {code}")]
    Param {
        code: &'static str,
        message: &'static str,
    },
    /// 404 `not_found`: no such route.
    #[error("no such route")]
    NotFound,
    /// 405 `method_not_allowed`, with the methods the route does take in `Allow`.
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// 501 `request_not_implemented`: a UAPI method this service does not carry out.
    #[error("not implemented")]
    NotImplemented,
    /// 503 `service_unavailable`, with `Retry-After`: the database is unreachable, the pool is
    /// exhausted, a statement timed out, or the process is draining.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 500 `internal_server_error`: a bug. The detail is logged only.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// The UAPI error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } | Self::Forbidden => "access_denied",
            Self::RequestInvalid(_) => "request_invalid",
            Self::Param { code, .. } => code,
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::NotImplemented => "request_not_implemented",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_server_error",
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Unauthorized { .. } => "Access denied. A valid access token is required: send it as Authorization: Bearer <token>.",
            Self::Forbidden => "Access denied. The account of this access token may not use this resource.",
            Self::RequestInvalid(message) => message,
            Self::Param { message, .. } => message,
            Self::NotFound => "The requested resource does not exist.",
            Self::MethodNotAllowed { .. } => "The HTTP method is not allowed on this resource.",
            Self::NotImplemented => "The request is not implemented by this service.",
            Self::Unavailable(_) => "The service is temporarily unavailable. Retry later.",
            Self::Internal(_) => "The server encountered an internal error.",
        }
    }
}

/// Builds the error envelope for any status and code; used by `ApiError` and by the OAuth
/// endpoint's fallbacks.
pub fn envelope(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(Envelope {
        error: Body { code, message },
    })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RequestInvalid(_) | Self::Param { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(detail) => tracing::error!(detail = %detail, "internal error"),
            Self::Unavailable(detail) => tracing::warn!(detail = %detail, "service unavailable"),
            _ => {}
        }
        let mut response = envelope(self.status_code(), self.code(), self.message());
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized { token_sent } => {
                let value = if *token_sent {
                    r#"Bearer realm="uapi", error="invalid_token""#
                } else {
                    r#"Bearer realm="uapi""#
                };
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            }
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, retry_after());
            }
            _ => {}
        }
        response
    }
}

/// The fewest and most seconds `Retry-After` asks a client to wait.
pub const RETRY_AFTER_SECONDS: std::ops::RangeInclusive<u32> = 1..=5;

/// A `Retry-After` drawn evenly from [`RETRY_AFTER_SECONDS`], so that the clients refused in one
/// burst do not all come back in the same second.
pub fn retry_after() -> HeaderValue {
    let seconds = rand::random_range(RETRY_AFTER_SECONDS);
    HeaderValue::from(seconds)
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&error) {
            Self::Unavailable(error.to_string())
        } else {
            Self::Internal(error.to_string())
        }
    }
}
