//! Builds the HTTP application: the shared state, the routes, the server bound to its listener,
//! and the graceful shutdown that drains it.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::error::{PathError, QueryPayloadError, UrlencodedError};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::auth::cache::TokenCache;
use crate::auth::oauth;
use crate::config::Settings;
use crate::db::{self, Database, Pool, Replica};
pub use crate::http::AppState;
use crate::http::{client_limits, method_not_allowed, middleware, ApiError};
use crate::metrics;
use crate::phone_calls::admission::Rows;
use crate::phone_calls::PathCache;
use crate::streams::{self, Hub};
use crate::{health, notifications, phone_calls, switch_feed};
use metrics_exporter_prometheus::PrometheusHandle;

/// Longest wait for each pool to close at exit (the drain is over by then).
const CLOSE_WAIT: Duration = Duration::from_millis(300);

/// The application bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    caches: notifications::Caches,
    /// `GET /metrics`, when `METRICS_LISTEN_ADDR` is set: its server, port and recorder.
    metrics: Option<(Server, u16, PrometheusHandle)>,
}

/// Stops a running application gracefully, as SIGTERM does.
#[derive(Clone)]
pub struct ShutdownHandle {
    server: ServerHandle,
    draining: Arc<AtomicBool>,
    delay: Duration,
    streams: Arc<Hub>,
}

impl ShutdownHandle {
    /// Turns readiness to 503, keeps serving for the shutdown delay (so that a load balancer
    /// sees the 503 and stops sending traffic), then stops accepting connections, lets in-flight
    /// requests finish (up to the drain time), and returns once the server has stopped.
    /// Live streams end at once (their clients reconnect, through the balancer, to another
    /// instance), and new ones are refused with 503.
    pub async fn shutdown(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.streams.shut_down();
        if !self.delay.is_zero() {
            tracing::info!(
                delay_ms = self.delay.as_millis() as u64,
                "shutdown: readiness is 503, still serving"
            );
            tokio::time::sleep(self.delay).await;
        }
        tracing::info!("shutdown: no new connections; draining in-flight requests");
        self.server.stop(true).await;
    }
}

impl Application {
    /// Binds `settings.listen_addr` (port 0 picks a free port) and builds the server over a lazy
    /// pool. Nothing touches the database yet.
    pub fn build(settings: Settings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.listen_addr)?;
        let port = listener.local_addr()?.port();
        let metrics_listener = match settings.metrics_listen_addr {
            Some(addr) => Some(TcpListener::bind(addr)?),
            None => None,
        };
        let mut database = Database::new(Pool::new(db::lazy_pool(&settings), &settings, "primary"));
        if let Some(replica) = db::replica_pool(&settings) {
            database = database.with_replica(Replica::new(
                Pool::new(replica, &settings, "replica"),
                settings.read_max_lag,
            ));
        }
        let probe = Pool::new(
            db::single_connection_pool(&settings, settings.readiness_timeout),
            &settings,
            "probe",
        );
        let state = AppState {
            db: database,
            probe: Database::new(probe),
            migrated: Arc::new(AtomicBool::new(!settings.migrate_on_start)),
            settings: Arc::new(settings),
            draining: Arc::new(AtomicBool::new(false)),
        };
        let settings = &state.settings;
        let caches = notifications::Caches {
            tokens: Arc::new(TokenCache::new(settings.token_cache)),
            paths: Arc::new(PathCache::new(settings.token_cache)),
            streams: Hub::new(streams::Limits::of(settings)),
        };
        let features = Features {
            tokens: web::Data::from(caches.tokens.clone()),
            paths: web::Data::from(caches.paths.clone()),
            rows: web::Data::new(Rows::new(settings.list_rows_in_flight, settings.pool_size)),
            streams: web::Data::from(caches.streams.clone()),
        };
        let server = server(state.clone(), features, listener)?;
        let metrics = match metrics_listener {
            Some(listener) => {
                let port = listener.local_addr()?.port();
                let handle = metrics::install();
                let mut pools = metrics::Pools::default()
                    .with(&state.db.pool)
                    .with(&state.probe.pool);
                if let Some(replica) = state.db.replica() {
                    pools = pools.with(&replica.pool);
                }
                let server = metrics::server(listener, handle.clone(), pools)?;
                Some((server, port, handle))
            }
            None => None,
        };
        Ok(Self {
            port,
            server,
            state,
            caches,
            metrics,
        })
    }

    /// The port of `GET /metrics`, when `METRICS_LISTEN_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port, _)| *port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The token cache (tests wait for its listener).
    pub fn tokens(&self) -> Arc<TokenCache> {
        self.caches.tokens.clone()
    }

    /// The live streams' hub (tests count its reads).
    pub fn streams(&self) -> Arc<Hub> {
        self.caches.streams.clone()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            server: self.server.handle(),
            draining: self.state.draining.clone(),
            delay: self.state.settings.shutdown_delay,
            streams: self.caches.streams.clone(),
        }
    }

    /// Serves until SIGTERM or SIGINT (or a `ShutdownHandle`), then drains and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = self.shutdown_handle();
        let signals = tokio::spawn(async move {
            wait_for_termination().await;
            shutdown.shutdown().await;
        });
        let notifications = tokio::spawn(notifications::listen(
            self.state.settings.listen_connect_options(),
            self.caches.clone(),
        ));
        let changes = tokio::spawn(streams::changes::read(
            self.caches.streams.clone(),
            self.state.db.pool.clone(),
        ));
        let watcher = self
            .state
            .db
            .replica()
            .map(|replica| tokio::spawn(replica.clone().watch(self.state.db.pool.clone())));
        let metrics = self.metrics.map(|(server, _, handle)| {
            let stop = server.handle();
            (
                tokio::spawn(server),
                tokio::spawn(metrics::upkeep(handle)),
                stop,
            )
        });
        let result = self.server.await;
        signals.abort();
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        if let Some((server, upkeep, stop)) = metrics {
            upkeep.abort();
            // Scrapes during the drain were answered; none is waited for now.
            stop.stop(false).await;
            server.abort();
        }
        // The listener's connection is dropped with its task, not closed politely: closing runs
        // `UNLISTEN *`, which would wait for a frozen database.
        notifications.abort();
        changes.abort();
        // Requests are over; closing says goodbye to the server, but never waits long for it.
        let replica = self.state.db.replica().map(|r| &r.pool);
        for pool in [
            Some(&self.state.db.pool),
            Some(&self.state.probe.pool),
            replica,
        ]
        .into_iter()
        .flatten()
        {
            if tokio::time::timeout(CLOSE_WAIT, pool.connections().close())
                .await
                .is_err()
            {
                tracing::warn!("database connections did not close in time; leaving them");
            }
        }
        result
    }
}

/// Applies pending migrations, retrying while the database is unreachable, then marks the
/// application ready. Gives up on errors that a retry cannot fix, and when a shutdown starts.
pub async fn migrate_when_reachable(state: &AppState) -> Result<(), sqlx::migrate::MigrateError> {
    loop {
        // Straight to PostgreSQL: a pooler in transaction mode cannot hold the migrations'
        // advisory lock for the session.
        let direct = db::direct_pool(&state.settings, 1);
        let migrated = db::migrate(&direct).await;
        direct.close().await;
        match migrated {
            Ok(()) => {
                state.migrated.store(true, Ordering::SeqCst);
                tracing::info!("database schema is up to date");
                return Ok(());
            }
            Err(sqlx::migrate::MigrateError::Execute(e)) if db::is_unavailable(&e) => {
                if state.draining.load(Ordering::SeqCst) {
                    return Err(sqlx::migrate::MigrateError::Execute(e));
                }
                tracing::warn!(error = %e, "database unreachable; migrations will be retried");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn wait_for_termination() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// `GET /openapi.json`: the document of `crate::openapi`, built once.
async fn openapi_document() -> actix_web::HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.get_or_init(crate::openapi::json).as_str())
}

/// The features' own state, shared by every worker.
struct Features {
    tokens: web::Data<TokenCache>,
    paths: web::Data<PathCache>,
    rows: web::Data<Rows>,
    streams: web::Data<Hub>,
}

fn server(state: AppState, features: Features, listener: TcpListener) -> std::io::Result<Server> {
    let drain = state.settings.shutdown_drain;
    let workers = state.settings.http_workers;
    // actix-web counts connections per worker.
    let per_worker = state.settings.max_connections.div_ceil(workers);
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(features.tokens.clone())
            .app_data(features.paths.clone())
            .app_data(features.rows.clone())
            .app_data(features.streams.clone())
            .app_data(
                web::QueryConfig::default().error_handler(|e: QueryPayloadError, _| {
                    ApiError::RequestInvalid(format!("The query string is not valid: {e}.")).into()
                }),
            )
            .app_data(web::PathConfig::default().error_handler(|e: PathError, _| {
                ApiError::RequestInvalid(format!("The path is not valid: {e}.")).into()
            }))
            .app_data(
                web::FormConfig::default().error_handler(|e: UrlencodedError, _| {
                    ApiError::RequestInvalid(format!("The form body is not valid: {e}.")).into()
                }),
            )
            .wrap(from_fn(middleware::request_context))
            .service(
                web::resource("/livez")
                    .route(web::get().to(health::livez))
                    .route(web::head().to(health::livez))
                    .default_service(method_not_allowed("GET, HEAD")),
            )
            .service(
                web::resource("/readyz")
                    .route(web::get().to(health::readyz))
                    .route(web::head().to(health::readyz))
                    .default_service(method_not_allowed("GET, HEAD")),
            )
            .service(
                web::resource(["/oauth/token.php", "/oauth/token"])
                    .route(web::post().to(oauth::issue_token))
                    .default_service(method_not_allowed("POST")),
            )
            .service(
                web::resource("/openapi.json")
                    .route(web::get().to(openapi_document))
                    .default_service(method_not_allowed("GET")),
            )
            .configure(phone_calls::routes::configure)
            .configure(switch_feed::routes::configure)
            .configure(crate::wallboard::configure)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound)
            }))
    })
    .workers(workers)
    .max_connections(per_worker)
    .on_connect(|connection, data| {
        if let Some(socket) = client_limits::ClientSocket::of(connection) {
            data.insert(socket);
        }
        // Counted open until actix-web drops the connection's data, when it closes.
        if let Some(open) = metrics::OpenConnection::new() {
            data.insert(open);
        }
    })
    .disable_signals()
    .shutdown_timeout(drain.as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}
