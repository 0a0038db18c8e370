//! Settings from the environment. Every setting has a default except `DATABASE_URL`; a value
//! that does not parse stops the process at start with one line naming the setting.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable lines (development).
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("expected json or pretty".into()),
        }
    }
}

/// A setting that is missing or does not parse. Displays as the one line printed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: {} {}",
            self.setting, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}

/// The names of every setting, as documented in `.env.example`.
pub const SETTING_NAMES: &[&str] = &[
    "DATABASE_URL",
    "LISTEN_ADDR",
    "HTTP_WORKERS",
    "DATABASE_POOL_SIZE",
    "DATABASE_ACQUIRE_TIMEOUT_MS",
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "REQUEST_TIMEOUT_MS",
    "READINESS_TIMEOUT_MS",
    "MAX_CONNECTIONS",
    "BODY_MIN_BYTES_PER_SECOND",
    "WRITE_TIMEOUT_MS",
    "TOKEN_TTL_SECONDS",
    "TOKEN_CACHE_SECONDS",
    "LIST_ROWS_IN_FLIGHT",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "SHUTDOWN_DELAY_SECONDS",
    "SHUTDOWN_DRAIN_SECONDS",
    "MIGRATE_ON_START",
    "METRICS_LISTEN_ADDR",
    "DATABASE_POOLER",
    "DATABASE_LISTEN_URL",
    "DATABASE_READ_URL",
    "READ_MAX_LAG_MS",
];

/// What stands between the service and PostgreSQL (`DATABASE_POOLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooler {
    /// Nothing, or a pooler that gives each client a server session of its own: session
    /// settings go in the startup packet, and statements are prepared by name and reused.
    None,
    /// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`): a server session
    /// serves one transaction, then another client. Nothing may outlive a transaction, so
    /// statements are not prepared by name, and the session settings are set in each
    /// transaction (see `db::Pool`).
    Transaction,
}

impl FromStr for Pooler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "transaction" => Ok(Self::Transaction),
            _ => Err("must be none or transaction".into()),
        }
    }
}

/// Every setting of the service. See `.env.example` for their meaning.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: SecretString,
    pub listen_addr: SocketAddr,
    pub http_workers: usize,
    pub pool_size: u32,
    pub pool_acquire_timeout: Duration,
    pub statement_timeout: Duration,
    /// The deadline of every request, around everything it waits for.
    pub request_timeout: Duration,
    pub readiness_timeout: Duration,
    /// Open client connections per instance.
    pub max_connections: usize,
    /// Slowest request body accepted (after its first second).
    pub body_min_rate: u64,
    /// A response that makes no progress this long is dropped with its connection.
    pub write_timeout: Duration,
    pub token_ttl: Duration,
    pub token_cache: Duration,
    pub list_rows_in_flight: u32,
    pub log_format: LogFormat,
    pub log_level: String,
    pub shutdown_delay: Duration,
    pub shutdown_drain: Duration,
    pub migrate_on_start: bool,
    /// Where `GET /metrics` is served; no metrics at all when unset.
    pub metrics_listen_addr: Option<SocketAddr>,
    pub pooler: Pooler,
    /// The notification listener's server: it needs a session of its own, so it never goes
    /// through a pooler in transaction mode. `DATABASE_URL` when unset.
    pub database_listen_url: Option<SecretString>,
    /// A streaming replica for list statements; none when unset.
    pub database_read_url: Option<SecretString>,
    /// The replica serves lists while it is at most this far behind the primary.
    pub read_max_lag: Duration,
    /// Live streams open at once on this instance, and with one token (`streams::Limits`).
    pub max_streams: usize,
    pub max_streams_per_token: usize,
    pub stream_heartbeat: Duration,
    pub stream_queue: usize,
    pub stream_resume: Duration,
    pub stream_replay: usize,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can supply their own environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let database_url =
            match lookup("DATABASE_URL") {
                Some(url) if !url.trim().is_empty() => url,
                _ => return Err(ConfigError {
                    setting: "DATABASE_URL",
                    problem:
                        "is not set (example: postgres://user:password@localhost:5432/phonecalls)"
                            .into(),
                }),
            };
        if let Err(problem) = postgres_url(&database_url) {
            return Err(ConfigError {
                setting: "DATABASE_URL",
                problem,
            });
        }
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let default_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings = Self {
            database_url: SecretString::from(database_url),
            listen_addr: parse(
                &get,
                "LISTEN_ADDR",
                "127.0.0.1:8080".parse().unwrap(),
                |v| {
                    v.parse()
                        .map_err(|_| "must be an IP address and port such as 127.0.0.1:8080".into())
                },
            )?,
            http_workers: parse(&get, "HTTP_WORKERS", default_workers, |v| {
                bounded(v, 1, 256).map(|n| n as usize)
            })?,
            pool_size: parse(&get, "DATABASE_POOL_SIZE", 10, |v| {
                bounded(v, 1, 1000).map(|n| n as u32)
            })?,
            pool_acquire_timeout: parse(
                &get,
                "DATABASE_ACQUIRE_TIMEOUT_MS",
                Duration::from_secs(2),
                |v| bounded(v, 1, 600_000).map(Duration::from_millis),
            )?,
            statement_timeout: parse(
                &get,
                "DATABASE_STATEMENT_TIMEOUT_MS",
                Duration::from_secs(5),
                |v| bounded(v, 1, 3_600_000).map(Duration::from_millis),
            )?,
            // Set below from the two timeouts it must cover, unless given.
            request_timeout: Duration::ZERO,
            readiness_timeout: parse(
                &get,
                "READINESS_TIMEOUT_MS",
                Duration::from_millis(1000),
                |v| bounded(v, 1, 60_000).map(Duration::from_millis),
            )?,
            max_connections: parse(&get, "MAX_CONNECTIONS", 10_000, |v| {
                bounded(v, 1, 1_000_000).map(|n| n as usize)
            })?,
            body_min_rate: parse(&get, "BODY_MIN_BYTES_PER_SECOND", 1024, |v| {
                bounded(v, 0, 1_000_000_000)
            })?,
            write_timeout: parse(&get, "WRITE_TIMEOUT_MS", Duration::from_secs(10), |v| {
                bounded(v, 1, 3_600_000).map(Duration::from_millis)
            })?,
            token_ttl: parse(&get, "TOKEN_TTL_SECONDS", Duration::from_secs(3600), |v| {
                bounded(v, 1, 31_536_000).map(Duration::from_secs)
            })?,
            token_cache: parse(&get, "TOKEN_CACHE_SECONDS", Duration::from_secs(10), |v| {
                bounded(v, 0, 3600).map(Duration::from_secs)
            })?,
            list_rows_in_flight: parse(&get, "LIST_ROWS_IN_FLIGHT", 10_000, |v| {
                bounded(v, 5000, 10_000_000).map(|n| n as u32)
            })?,
            log_format: parse(&get, "LOG_FORMAT", LogFormat::Json, |v| v.parse())?,
            log_level: parse(&get, "LOG_LEVEL", "info,sqlx=warn".to_string(), |v| {
                tracing_subscriber::EnvFilter::try_new(v)
                    .map(|_| v.to_string())
                    .map_err(|_| {
                        "must be a level (error, warn, info, debug, trace) or a tracing filter"
                            .into()
                    })
            })?,
            shutdown_delay: parse(&get, "SHUTDOWN_DELAY_SECONDS", Duration::ZERO, |v| {
                bounded(v, 0, 600).map(Duration::from_secs)
            })?,
            shutdown_drain: parse(
                &get,
                "SHUTDOWN_DRAIN_SECONDS",
                Duration::from_secs(10),
                |v| bounded(v, 0, 3600).map(Duration::from_secs),
            )?,
            migrate_on_start: parse(&get, "MIGRATE_ON_START", true, |v| match v {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err("must be true or false".into()),
            })?,
            metrics_listen_addr: parse(&get, "METRICS_LISTEN_ADDR", None, |v| {
                v.parse()
                    .map(Some)
                    .map_err(|_| "must be an IP address and port such as 127.0.0.1:9090".into())
            })?,
            pooler: parse(&get, "DATABASE_POOLER", Pooler::None, |v| v.parse())?,
            database_listen_url: parse(&get, "DATABASE_LISTEN_URL", None, |v| {
                postgres_url(v).map(Some)
            })?,
            database_read_url: parse(&get, "DATABASE_READ_URL", None, |v| {
                postgres_url(v).map(Some)
            })?,
            read_max_lag: parse(&get, "READ_MAX_LAG_MS", Duration::from_millis(1000), |v| {
                bounded(v, 1, 3_600_000).map(Duration::from_millis)
            })?,
            max_streams: parse(&get, "MAX_STREAMS", 2000, |v| {
                bounded(v, 0, 1_000_000).map(|n| n as usize)
            })?,
            max_streams_per_token: parse(&get, "MAX_STREAMS_PER_TOKEN", 16, |v| {
                bounded(v, 0, 1_000_000).map(|n| n as usize)
            })?,
            stream_heartbeat: parse(&get, "STREAM_HEARTBEAT_MS", Duration::from_secs(15), |v| {
                bounded(v, 100, 3_600_000).map(Duration::from_millis)
            })?,
            stream_queue: parse(&get, "STREAM_QUEUE", 1024, |v| {
                bounded(v, 1, 1_000_000).map(|n| n as usize)
            })?,
            stream_resume: parse(
                &get,
                "STREAM_RESUME_SECONDS",
                Duration::from_secs(30),
                |v| bounded(v, 0, 3600).map(Duration::from_secs),
            )?,
            stream_replay: parse(&get, "STREAM_REPLAY_EVENTS", 256, |v| {
                bounded(v, 1, 100_000).map(|n| n as usize)
            })?,
        };
        settings.with_request_timeout(&get)
    }

    /// The margin a request's deadline leaves beyond its longest wait for the pool plus its
    /// longest statement, for the work around them (parsing, the JSON, the network).
    pub const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

    /// Sets the request deadline, and refuses the combinations of settings that cannot serve.
    fn with_request_timeout(
        mut self,
        get: &impl Fn(&'static str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let default = self.pool_acquire_timeout + self.statement_timeout + Self::DEADLINE_MARGIN;
        self.request_timeout = parse(get, "REQUEST_TIMEOUT_MS", default, |v| {
            bounded(v, 1, 3_600_000).map(Duration::from_millis)
        })?;
        if self.request_timeout <= self.pool_acquire_timeout {
            return Err(ConfigError {
                setting: "REQUEST_TIMEOUT_MS",
                problem: format!(
                    "must be longer than DATABASE_ACQUIRE_TIMEOUT_MS ({} ms): no request could wait for a connection as long as that promises",
                    self.pool_acquire_timeout.as_millis()
                ),
            });
        }
        if self.max_connections < self.http_workers {
            return Err(ConfigError {
                setting: "MAX_CONNECTIONS",
                problem: format!(
                    "must be at least HTTP_WORKERS ({}): every worker needs a connection",
                    self.http_workers
                ),
            });
        }
        Ok(self)
    }

    /// Connection options for the request pool (see [`Self::options_for`]).
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options_for(&self.database_url)
    }

    /// Connection options for the read replica's pool, when one is set.
    pub fn read_connect_options(&self) -> Option<PgConnectOptions> {
        self.database_read_url
            .as_ref()
            .map(|url| self.options_for(url))
    }

    /// Connection options for the notification listener: a session of its own, straight to
    /// PostgreSQL (`DATABASE_LISTEN_URL`), with the session settings in its startup packet.
    pub fn listen_connect_options(&self) -> PgConnectOptions {
        let url = self
            .database_listen_url
            .as_ref()
            .unwrap_or(&self.database_url);
        with_session_settings(parsed(url), &self.session_settings())
    }

    /// The settings every session of the service runs with, as (name, value) pairs.
    ///
    /// No JIT compilation: it pays off for long analytical queries, while the list's are a few
    /// milliseconds long. PostgreSQL decides from the plan's estimated cost, which grows with
    /// the stored history, so with JIT on, the same page of live calls got ~12 ms slower at ten
    /// million stored calls than at a hundred thousand.
    ///
    /// Generic plans, always: every statement is planned once per connection, without its
    /// values, and that plan is kept. The list's statements are written so that their generic
    /// plans are the good ones (see `phone_calls::sql::list`; `scripts/plans` checks each shape
    /// against its custom plan). Left to choose, PostgreSQL planned each run anew for its first
    /// five, then kept whichever its estimates favoured: a user's page spent 0.7 ms planning for
    /// 0.65 ms of work, and at ten million stored calls a custom plan of a recent `published`
    /// filter took 181 ms where the generic one takes 2 ms.
    ///
    /// No parallel workers: a page is bounded by the live set, and a worker is a process
    /// PostgreSQL starts for the statement. Under load, a generic plan that expected many rows
    /// spent 40 ms starting workers for a page it found in 2 ms.
    pub fn session_settings(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "statement_timeout",
                self.statement_timeout.as_millis().to_string(),
            ),
            ("jit", "off".into()),
            ("plan_cache_mode", "force_generic_plan".into()),
            ("max_parallel_workers_per_gather", "0".into()),
        ]
    }

    /// Options for a pool of the service's statements on the server at `url`. Without a
    /// pooler, the session settings go in the startup packet, so that they cost no round trip,
    /// and statements are prepared by name once per connection. Behind a pooler in transaction
    /// mode neither survives: PgBouncer refuses startup options, and a statement prepared on
    /// one server session is unknown on the next. Statements are then sent unnamed, and the
    /// settings are set in each transaction (`db::Pool`).
    fn options_for(&self, url: &SecretString) -> PgConnectOptions {
        let options = parsed(url);
        match self.pooler {
            Pooler::None => with_session_settings(options, &self.session_settings()),
            Pooler::Transaction => options.statement_cache_capacity(0),
        }
    }
}

fn parsed(url: &SecretString) -> PgConnectOptions {
    PgConnectOptions::from_str(url.expose_secret())
        .expect("database URLs are validated when the settings are read")
        .application_name("phonecalls")
}

fn with_session_settings(
    options: PgConnectOptions,
    settings: &[(&'static str, String)],
) -> PgConnectOptions {
    options.options(settings.iter().map(|(name, value)| (*name, value.as_str())))
}

/// A database URL as the service takes it, or why not.
fn postgres_url(url: &str) -> Result<SecretString, String> {
    let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !scheme_ok || PgConnectOptions::from_str(url).is_err() {
        return Err("is not a valid postgres:// connection URL".into());
    }
    Ok(SecretString::from(url.to_string()))
}

fn parse<T>(
    get: &impl Fn(&'static str) -> Option<String>,
    setting: &'static str,
    default: T,
    convert: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    match get(setting) {
        None => Ok(default),
        Some(raw) => convert(raw.trim()).map_err(|problem| ConfigError { setting, problem }),
    }
}

fn bounded(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    match raw.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from {min} to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| env.get(name).cloned())
    }

    const URL: (&str, &str) = ("DATABASE_URL", "postgres://u:p@localhost/db");

    #[test]
    fn defaults_apply_when_only_the_database_url_is_set() {
        let s = settings(&[URL]).unwrap();
        assert_eq!(s.listen_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.pool_size, 10);
        assert_eq!(s.token_ttl, Duration::from_secs(3600));
        assert_eq!(s.log_format, LogFormat::Json);
        assert!(s.migrate_on_start);
    }

    #[test]
    fn sessions_get_the_statement_timeout_no_jit_and_generic_plans() {
        let s = settings(&[URL, ("DATABASE_STATEMENT_TIMEOUT_MS", "2500")]).unwrap();
        let options = s.connect_options();
        let options = options.get_options().unwrap_or_default();
        assert!(options.contains("statement_timeout=2500"), "{options}");
        assert!(options.contains("jit=off"), "{options}");
        assert!(
            options.contains("plan_cache_mode=force_generic_plan"),
            "{options}"
        );
        assert!(
            options.contains("max_parallel_workers_per_gather=0"),
            "{options}"
        );
    }

    #[test]
    fn env_example_documents_every_setting_and_every_setting_is_read() {
        let example = include_str!("../.env.example");
        for name in SETTING_NAMES {
            assert!(
                example.contains(&format!("{name}=")),
                "{name} is missing from .env.example"
            );
        }
        // A value that is read and invalid is reported, proving the name is really consulted.
        for name in SETTING_NAMES.iter().filter(|n| **n != "DATABASE_URL") {
            let err = settings(&[URL, (name, "\u{1}invalid")]).unwrap_err();
            assert_eq!(err.setting, *name);
        }
    }

    #[test]
    fn the_request_deadline_covers_the_pool_wait_and_the_statement_by_default() {
        let s = settings(&[
            URL,
            ("DATABASE_ACQUIRE_TIMEOUT_MS", "1500"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "3000"),
        ])
        .unwrap();
        assert_eq!(s.request_timeout, Duration::from_millis(4750));
        let s = settings(&[URL, ("REQUEST_TIMEOUT_MS", "9000")]).unwrap();
        assert_eq!(s.request_timeout, Duration::from_secs(9));
    }

    #[test]
    fn settings_that_cannot_serve_are_refused_naming_the_setting() {
        let err = settings(&[
            URL,
            ("DATABASE_ACQUIRE_TIMEOUT_MS", "2000"),
            ("REQUEST_TIMEOUT_MS", "2000"),
        ])
        .unwrap_err();
        assert_eq!(err.setting, "REQUEST_TIMEOUT_MS");
        assert!(
            err.to_string().contains("DATABASE_ACQUIRE_TIMEOUT_MS"),
            "{err}"
        );
        let err = settings(&[URL, ("HTTP_WORKERS", "8"), ("MAX_CONNECTIONS", "4")]).unwrap_err();
        assert_eq!(err.setting, "MAX_CONNECTIONS");
        assert!(
            settings(&[URL, ("DATABASE_POOL_SIZE", "1")]).is_ok(),
            "one connection serves"
        );
    }

    #[test]
    fn a_missing_database_url_names_the_setting() {
        let err = settings(&[]).unwrap_err();
        assert_eq!(err.setting, "DATABASE_URL");
        assert!(err
            .to_string()
            .starts_with("invalid configuration: DATABASE_URL"));
    }

    #[test]
    fn each_invalid_value_names_its_setting() {
        let cases = [
            ("DATABASE_URL", "mysql://x"),
            ("LISTEN_ADDR", "localhost"),
            ("HTTP_WORKERS", "0"),
            ("DATABASE_POOL_SIZE", "ten"),
            ("DATABASE_ACQUIRE_TIMEOUT_MS", "-1"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "0"),
            ("READINESS_TIMEOUT_MS", "1.5"),
            ("REQUEST_TIMEOUT_MS", "0"),
            ("MAX_CONNECTIONS", "none"),
            ("BODY_MIN_BYTES_PER_SECOND", "-5"),
            ("WRITE_TIMEOUT_MS", "0"),
            ("TOKEN_TTL_SECONDS", "99999999999"),
            ("TOKEN_CACHE_SECONDS", "3601"),
            ("LIST_ROWS_IN_FLIGHT", "4999"),
            ("LOG_FORMAT", "xml"),
            ("LOG_LEVEL", "loud=[["),
            ("SHUTDOWN_DELAY_SECONDS", "-2"),
            ("SHUTDOWN_DRAIN_SECONDS", "forever"),
            ("MIGRATE_ON_START", "maybe"),
        ];
        for (name, value) in cases {
            let mut pairs = vec![URL];
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            let err = settings(&pairs).unwrap_err();
            assert_eq!(err.setting, name, "{name}={value}");
        }
    }
}
