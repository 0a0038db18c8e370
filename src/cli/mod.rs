//! The command line of the `phonecalls` binary (spec §6): `serve`, `migrate`, and the
//! administration commands, each of which prints one JSON object on success.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::accounts::{self, AdminError};
use crate::auth::Role;
use crate::config::Settings;
use crate::startup::{self, Application};
use crate::switch_feed::demo;
use crate::switch_feed::repo::ApplyError;
use crate::{db, reporting, retention, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "phonecalls",
    version,
    about = "Live phone calls in PostgreSQL, served through the UAPI PhoneCalls interface"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (applies pending migrations first unless MIGRATE_ON_START=false).
    Serve {
        /// Address and port to listen on; overrides LISTEN_ADDR.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Organizations.
    Org {
        #[command(subcommand)]
        action: OrgAction,
    },
    /// Accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Extensions of user accounts.
    Extension {
        #[command(subcommand)]
        action: ExtensionAction,
    },
    /// OAuth apps registered to accounts.
    App {
        #[command(subcommand)]
        action: AppAction,
    },
    /// Access tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// SQL reporting: analysts' PostgreSQL roles (docs/reporting.md).
    Reporting {
        #[command(subcommand)]
        action: ReportingAction,
    },
    /// Stored call history.
    History {
        #[command(subcommand)]
        action: HistoryAction,
    },
    /// Stored calls.
    Calls {
        #[command(subcommand)]
        action: CallsAction,
    },
    /// Print the SQL statements the service sends for a list request by an account once its
    /// token and path are cached (TOKEN_CACHE_SECONDS=0: the path's resolution too), for
    /// EXPLAIN and benchmarks: JSON, or a pgbench script with --pgbench-script.
    Statements {
        /// The account making the request.
        #[arg(long, value_name = "ID")]
        user: i64,
        /// The request, such as '/uapi/phoneCalls/@me/@self/?count=20'.
        #[arg(long, value_name = "URI")]
        request: String,
        /// Write a pgbench script here and print its -D definitions, one per line.
        #[arg(long, value_name = "FILE")]
        pgbench_script: Option<std::path::PathBuf>,
        /// The page statement of before issue 10 instead of today's, kept as the benchmark's
        /// baseline.
        #[arg(long)]
        baseline: bool,
    },
    /// Print every statement the switch feed sends, whole, as `PREPARE name AS …;` lines ready
    /// to paste into psql.
    FeedStatements,
    /// Print the OpenAPI 3.1 document of the HTTP API (the one served at /openapi.json), or
    /// write it to a file.
    Openapi {
        /// Write it here (docs/openapi.json in the repository) instead of printing it.
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Demo data.
    Demo {
        #[command(subcommand)]
        action: DemoAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoAction {
    /// Create live calls in varied states among an organization's extensions, through the
    /// switch feed's write path: prints {"created":N}.
    Calls {
        #[arg(long = "org", value_name = "ID")]
        org: i64,
        #[arg(long, default_value_t = 36, value_parser = clap::value_parser!(u16).range(1..=10_000))]
        count: u16,
    },
    /// Create ended calls on each of the days before today, the same on every run, through the
    /// switch feed's write path, for docs/reporting.md: prints {"created":N}.
    History {
        #[arg(long = "org", value_name = "ID")]
        org: i64,
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=366))]
        days: u16,
        #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=1_000))]
        per_day: u16,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportingAction {
    /// Analysts' roles.
    Role {
        #[command(subcommand)]
        action: RoleAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleAction {
    /// Create a PostgreSQL login role that reads the reporting schema and nothing else:
    /// prints {"role":…,"password":…,…} (a generated password is shown only once).
    Create {
        /// Role name: lower case letters, digits and _.
        #[arg(long)]
        name: String,
        /// Show only this organization's rows (default: every organization's).
        #[arg(long = "org", value_name = "ID")]
        org: Option<i64>,
        /// The role's statement_timeout, such as 60s, 5m or 2h.
        #[arg(long, value_name = "DURATION", default_value = "60s")]
        statement_timeout: String,
        /// Read the password from the first line of standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Drop a role made by `reporting role create`: prints {"dropped":…}.
    Drop {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// Delete ended calls (and their views) that ended before a date, in batches, each its own
    /// transaction: prints {"deleted":N}. Safe to stop and run again.
    Prune {
        /// 2026-01-01 (midnight UTC) or an RFC 3339 instant.
        #[arg(long, value_name = "DATE")]
        ended_before: String,
        /// Calls deleted per transaction.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        batch: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum CallsAction {
    /// End live calls the switch has not updated for a while (a switch that died never reports
    /// them ended): prints {"ended":N}. A later report with a higher sequence still applies.
    EndStale {
        /// Such as 90m, 6h or 2d (at least 1m).
        #[arg(long, value_name = "DURATION")]
        not_updated_for: String,
        /// Calls ended per transaction.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        batch: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgAction {
    /// Create an organization: prints {"id":…,"code":"…"}.
    Create {
        #[arg(long)]
        name: String,
        /// Four-digit code that prefixes the organization's extension numbers.
        #[arg(long)]
        code: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account: prints {"id":…}.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Organization id (required for organization and user accounts).
        #[arg(long = "org", value_name = "ID")]
        org: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExtensionAction {
    /// Create an extension for a user account: prints {"id":…,"number":"0003*210"}.
    Create {
        #[arg(long, value_name = "ID")]
        user: i64,
        /// Short number, 3 to 5 digits.
        #[arg(long)]
        number: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppAction {
    /// Register an app: prints {"clientId":…,"clientSecret":…} (the secret is shown only once).
    Create {
        #[arg(long, value_name = "ID")]
        user: i64,
        #[arg(long)]
        name: String,
        /// Allow the client-credentials grant.
        #[arg(long)]
        trusted: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Issue an access token: prints {"accessToken":…,"expiresAt":…}.
    Issue {
        #[arg(long, value_name = "ID")]
        user: i64,
        /// Lifetime in seconds (default: TOKEN_TTL_SECONDS).
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
        ttl: Option<u64>,
    },
    /// Revoke an access token: prints {"revoked":true}.
    Revoke {
        /// The token, or `-` to read it from standard input (keeps it out of `ps` and shell
        /// history).
        #[arg(long)]
        token: String,
    },
}

fn parse_role(raw: &str) -> Result<Role, String> {
    raw.parse()
}

/// Runs the commands that need no settings (`openapi`, `feed-statements`); `None` for every
/// other command.
pub fn run_without_settings(cli: &Cli) -> Option<ExitCode> {
    if let Command::FeedStatements = &cli.command {
        for (name, sql) in crate::switch_feed::repo::STATEMENTS {
            println!("PREPARE {name} AS\n{};\n", sql.trim());
        }
        return Some(ExitCode::SUCCESS);
    }
    let Command::Openapi { output } = &cli.command else {
        return None;
    };
    let document = crate::openapi::json();
    Some(match output {
        None => {
            print!("{document}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, document) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
    })
}

/// Runs a parsed command line with the given settings.
pub async fn run(cli: Cli, mut settings: Settings) -> ExitCode {
    match cli.command {
        Command::Serve { listen } => {
            telemetry::init(
                settings.log_format,
                &settings.log_level,
                telemetry::LogTarget::Stdout,
            );
            if let Some(listen) = listen {
                settings.listen_addr = listen;
            }
            serve(settings).await
        }
        command => {
            telemetry::init(
                settings.log_format,
                &settings.log_level,
                telemetry::LogTarget::Stderr,
            );
            // One connection is all a command needs; fail fast when the database is down.
            settings.pool_size = 1;
            let pool = db::direct_pool(&settings, 1);
            let outcome = administer(command, &pool, &settings).await;
            pool.close().await;
            match outcome {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The first line of standard input, without its line ending.
fn read_stdin_line() -> Result<String, AdminError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| AdminError::Invalid(format!("cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// A demo command's failure in the switch feed, in the commands' terms.
fn feed_error(error: ApplyError) -> AdminError {
    match error {
        ApplyError::Invalid(message) => AdminError::Invalid(message),
        ApplyError::Database(e) => AdminError::Database(e),
    }
}

fn to_json(value: impl Serialize) -> Result<String, AdminError> {
    serde_json::to_string(&value).map_err(|e| AdminError::Invalid(e.to_string()))
}

async fn administer(
    command: Command,
    pool: &sqlx::PgPool,
    settings: &Settings,
) -> Result<String, AdminError> {
    match command {
        Command::Serve { .. } => unreachable!("serve is handled by run"),
        Command::Openapi { .. } | Command::FeedStatements => {
            unreachable!("handled by run_without_settings")
        }
        Command::Migrate => {
            db::migrate(pool)
                .await
                .map_err(|e| AdminError::Invalid(format!("migration failed: {e}")))?;
            to_json(
                serde_json::json!({"migrated": true, "version": db::MIGRATOR.iter().map(|m| m.version).max()}),
            )
        }
        Command::Org {
            action: OrgAction::Create { name, code },
        } => to_json(accounts::create_organization(pool, &name, &code).await?),
        Command::User {
            action: UserAction::Create { name, role, org },
        } => to_json(accounts::create_user(pool, &name, role, org).await?),
        Command::Extension {
            action: ExtensionAction::Create { user, number },
        } => to_json(accounts::create_extension(pool, user, &number).await?),
        Command::App {
            action:
                AppAction::Create {
                    user,
                    name,
                    trusted,
                },
        } => to_json(accounts::create_app(pool, user, &name, trusted).await?),
        Command::Token {
            action: TokenAction::Issue { user, ttl },
        } => {
            let ttl = ttl.map_or(settings.token_ttl, Duration::from_secs);
            to_json(accounts::issue_token(pool, user, ttl).await?)
        }
        Command::Token {
            action: TokenAction::Revoke { token },
        } => {
            let token = if token == "-" {
                read_stdin_line()?
            } else {
                token
            };
            accounts::revoke_token(pool, &token).await?;
            to_json(serde_json::json!({"revoked": true}))
        }
        Command::Reporting {
            action:
                ReportingAction::Role {
                    action:
                        RoleAction::Create {
                            name,
                            org,
                            statement_timeout,
                            password_stdin,
                        },
                },
        } => {
            let timeout = crate::retention::parse_duration_any(&statement_timeout)?;
            let password = if password_stdin {
                Some(read_stdin_line()?)
            } else {
                None
            };
            to_json(reporting::create_role(pool, &name, org, timeout, password).await?)
        }
        Command::Reporting {
            action:
                ReportingAction::Role {
                    action: RoleAction::Drop { name },
                },
        } => {
            reporting::drop_role(pool, &name).await?;
            to_json(serde_json::json!({ "dropped": name }))
        }
        Command::History {
            action:
                HistoryAction::Prune {
                    ended_before,
                    batch,
                },
        } => {
            let before = retention::parse_instant(&ended_before)?;
            let deleted = retention::prune_history(pool, before, batch).await?;
            to_json(serde_json::json!({ "deleted": deleted }))
        }
        Command::Calls {
            action:
                CallsAction::EndStale {
                    not_updated_for,
                    batch,
                },
        } => {
            let age = retention::parse_duration(&not_updated_for)?;
            let ended = retention::end_stale_calls(pool, age, batch).await?;
            to_json(serde_json::json!({ "ended": ended }))
        }
        Command::Statements {
            user,
            request,
            pgbench_script,
            baseline,
        } => {
            let paths_cached = !settings.token_cache.is_zero();
            let statements = crate::phone_calls::statements::for_request(
                pool,
                user,
                &request,
                paths_cached,
                baseline,
            )
            .await
            .map_err(|e| AdminError::Invalid(format!("{}: {e}", e.code())))?;
            match pgbench_script {
                None => {
                    let list: Vec<_> = statements
                        .iter()
                        .map(|s| serde_json::json!({"sql": s.text(), "binds": format!("{:?}", s.binds)}))
                        .collect();
                    to_json(serde_json::json!({ "statements": list }))
                }
                Some(file) => {
                    let (script, defines) = crate::phone_calls::statements::pgbench(&statements);
                    std::fs::write(&file, script).map_err(|e| {
                        AdminError::Invalid(format!("cannot write {}: {e}", file.display()))
                    })?;
                    Ok(defines.join("\n"))
                }
            }
        }
        Command::Demo {
            action: DemoAction::Calls { org, count },
        } => {
            let created = demo::create_live_calls(pool, org, usize::from(count))
                .await
                .map_err(feed_error)?;
            to_json(serde_json::json!({"created": created}))
        }
        Command::Demo {
            action: DemoAction::History { org, days, per_day },
        } => {
            let created = demo::create_history(pool, org, usize::from(days), usize::from(per_day))
                .await
                .map_err(feed_error)?;
            to_json(serde_json::json!({"created": created}))
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let listen = settings.listen_addr;
    let app = match Application::build(settings) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, %listen, "cannot listen");
            eprintln!("error: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(address = %format!("{}:{}", listen.ip(), app.port()), "listening");
    let state = app.state().clone();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());
    if state.settings.migrate_on_start {
        if let Err(e) = startup::migrate_when_reachable(&state).await {
            tracing::error!(error = %e, "migrations failed; stopping");
            eprintln!("error: migrations failed: {e}");
            shutdown.shutdown().await;
            let _ = server.await;
            return ExitCode::FAILURE;
        }
    }
    match server.await {
        Ok(Ok(())) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!(error = %e, "server task failed");
            ExitCode::FAILURE
        }
    }
}
