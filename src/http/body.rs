//! Reading a request body whole, up to a limit: the OAuth form and the feed's JSON both need it,
//! and each answers the two ways it can fail in its own error format.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt as _;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// It is (or says it is, in `Content-Length`) larger than the limit.
    TooLarge,
    /// The connection failed or was too slow (see `client_limits`) while it was read.
    Unreadable,
}

/// Reads the body, refusing at once one whose `Content-Length` is over `limit` bytes, and
/// stopping as soon as a body without one grows past it.
pub async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
