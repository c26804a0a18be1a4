//! The `streamwarden` command: wiring only. Configuration (fail fast) → logging → data
//! directory, keys and database → Rocket; background tasks start on liftoff and stop in
//! order on SIGTERM or Ctrl-C.

use std::process::ExitCode;

use streamwarden::{Config, StartupError, telemetry, web};

const USAGE: &str = "\
Streamwarden: who is streaming from your media servers, and is anyone sharing a login?

Usage: streamwarden [COMMAND]

Commands:
  serve        Run the server (the default)
  healthcheck  Exit 0 if the local server answers /healthz (for Docker's HEALTHCHECK)
  version      Print the version
  help         Print this help

Configuration comes from STREAMWARDEN_* environment variables (see the README).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map_or("serve", String::as_str);
    if args.len() > 1 {
        eprintln!("streamwarden: unexpected argument {:?}\n\n{USAGE}", args[1]);
        return ExitCode::from(2);
    }
    match command {
        "serve" => run(serve()),
        "healthcheck" => run(healthcheck()),
        "version" | "--version" | "-V" => {
            println!("streamwarden {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("streamwarden: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(result: Result<(), StartupError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streamwarden: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_config() -> Result<Config, StartupError> {
    let loaded = Config::load().map_err(|e| StartupError(e.to_string()))?;
    telemetry::init(&loaded.config.log);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded.config)
}

fn serve() -> Result<(), StartupError> {
    let config = load_config()?;
    let app = streamwarden::prepare(config)?;
    let rocket = streamwarden::rocket(app);
    rocket::execute(async move { rocket.launch().await })
        .map(|_| tracing::info!("stopped"))
        .map_err(|e| StartupError(format!("the web server failed: {e}")))
}

fn healthcheck() -> Result<(), StartupError> {
    let loaded = Config::load().map_err(|e| StartupError(e.to_string()))?;
    web::health::probe(&loaded.config).map_err(|e| StartupError(format!("unhealthy: {e}")))
}
