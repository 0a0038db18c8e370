//! `/livez` and `/readyz` for load balancers and orchestrators.

use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::http::ApiError;
use crate::http::AppState;

/// 200 while the process runs; never touches the database.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database answers within the readiness deadline and the schema is migrated;
/// 503 otherwise, and from the moment a shutdown starts.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.load(Ordering::SeqCst) {
        return Err(ApiError::Unavailable("draining for shutdown".into()));
    }
    if !state.migrated.load(Ordering::SeqCst) {
        return Err(ApiError::Unavailable(
            "migrations have not been applied yet".into(),
        ));
    }
    // Over a connection of its own: a busy request pool says nothing about the database.
    let ping = state.probe.run(|pool| async move {
        let mut session = pool.session().await?;
        let one = sqlx::query_scalar::<_, i32>("SELECT 1")
            .persistent(pool.prepared())
            .fetch_one(&mut *session)
            .await?;
        session.end().await?;
        Ok::<_, sqlx::Error>(one)
    });
    match tokio::time::timeout(state.settings.readiness_timeout, ping).await {
        Ok(Ok(_)) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Ok(Err(e)) => Err(ApiError::Unavailable(format!("database check failed: {e}"))),
        Err(_) => Err(ApiError::Unavailable(
            "database did not answer within the readiness deadline".into(),
        )),
    }
}
