//! The `phonecalls` binary: parse the command line, load the configuration, dispatch.

use std::process::ExitCode;

use clap::Parser;
use phonecalls::cli::{self, Cli};
use phonecalls::config::Settings;

fn main() -> ExitCode {
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("invalid configuration: .env cannot be read: {e}");
            return ExitCode::from(2);
        }
    }
    let cli = Cli::parse();
    // Printing the API's document needs no configuration.
    if let Some(code) = cli::run_without_settings(&cli) {
        return code;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(cli::run(cli, settings));
    // Whatever is still running (a statement stuck on a frozen database, a farewell to it) is
    // abandoned: the exit is bounded, whatever the database does.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}
