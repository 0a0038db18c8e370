//! The connection pool and the embedded migrations.

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::config::Settings;

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pool that connects on first use, so that the process starts (and answers `/livez`) while
/// the database is still down.
pub fn lazy_pool(settings: &Settings) -> PgPool {
    PgPoolOptions::new()
        .max_connections(settings.pool_size)
        .acquire_timeout(settings.pool_acquire_timeout)
        .connect_lazy_with(settings.connect_options())
}

/// Applies pending migrations. Concurrent callers are serialized by sqlx's advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
