//! What the HTTP handlers of every feature share, and nothing feature-specific: the state
//! (`AppState`), reading a body up to a limit (`body`), the error type and its envelope (`error`), the request context wrapped around
//! every route (`middleware`: request id, log line, deadline), what one client may cost
//! (`client_limits`) and the fallbacks for wrong methods. Features use this module;
//! `startup` only wires it together.

pub mod body;
pub mod client_limits;
pub mod error;
pub mod middleware;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix_web::web;

use crate::config::Settings;
use crate::db::Database;
pub use error::ApiError;

/// What every handler shares. A feature's own state (the token cache, the list's path cache
/// and admission) is registered by `startup` as `web::Data` of its own type, so that this module
/// knows no feature.
#[derive(Clone)]
pub struct AppState {
    /// The request pool (see `db` for the other two).
    pub db: Database,
    /// `/readyz`'s own connection.
    pub probe: Database,
    pub settings: Arc<Settings>,
    /// Set when a shutdown starts: `/readyz` answers 503 from then on.
    pub draining: Arc<AtomicBool>,
    /// Set once the schema is known to be migrated: `/readyz` answers 503 until then.
    pub migrated: Arc<AtomicBool>,
}

/// A route's answer to the methods it does not take: 405 `method_not_allowed` with `Allow`.
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move {
        Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed { allow })
    })
}
