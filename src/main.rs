use std::process::ExitCode;

use clap::Parser;
use tally::config::{Cli, Command};
use tally::startup::Application;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tally: {}", tally::config::one_line_error(&e));
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Openapi) => {
            // No trailing newline: the file must be byte-identical to /openapi.json.
            print!("{}", tally::api::spec_json());
            ExitCode::SUCCESS
        }
        Some(Command::Simulator) => simulator(cli.settings).await,
        Some(Command::Serve) | None => serve(cli.settings).await,
    }
}

async fn simulator(settings: tally::config::Settings) -> ExitCode {
    let _traces = match tally::telemetry::init(&settings.log) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("tally: {e}");
            return ExitCode::from(2);
        }
    };
    match tally::upstream::simulator::run(&settings, tally::startup::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tally: simulator: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: tally::config::Settings) -> ExitCode {
    // Dropped at the end of this function: flushes the spans.
    let _traces = match tally::telemetry::init(&settings.log) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("tally: {e}");
            return ExitCode::from(2);
        }
    };
    tally::server::raise_file_limit(settings.server.max_connections);
    // Installed before the listener is bound, so an early SIGTERM still drains.
    let stop = tally::startup::shutdown_signal();
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("tally: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until(stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tally: server error: {e}");
            ExitCode::FAILURE
        }
    }
}
