//! The `streamwarden` command: wiring only. Configuration (fail fast) → logging → data
//! directory, keys and database → Rocket; background tasks start on liftoff and stop in
//! order on SIGTERM or Ctrl-C.

use std::process::ExitCode;

use streamwarden::{Config, StartupError, sim, telemetry, web};

const USAGE: &str = "\
Streamwarden: who is streaming from your media servers, and is anyone sharing a login?

Usage: streamwarden [COMMAND]

Commands:
  serve        Run the server (the default)
  demo         Run with simulated Plex, Jellyfin and Emby servers and a story of viewers
  healthcheck  Exit 0 if the local server answers /healthz (for Docker's HEALTHCHECK)
  stats rebuild
               Fold the statistics again from all of history (they are kept up to date
               by themselves; this is for a changed TZ or peace of mind)
  version      Print the version
  help         Print this help

Configuration comes from STREAMWARDEN_* environment variables (see the README).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map_or("serve", String::as_str);
    if args.len() == 2 && command == "stats" && args[1] == "rebuild" {
        return run(stats_rebuild());
    }
    if args.len() > 1 {
        eprintln!("streamwarden: unexpected argument {:?}\n\n{USAGE}", args[1]);
        return ExitCode::from(2);
    }
    match command {
        "serve" => run(serve()),
        "demo" => run(demo()),
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

/// `streamwarden stats rebuild`: refolds every rollup from history, in the time zone of
/// this process (`TZ`), beside a running server or not.
fn stats_rebuild() -> Result<(), StartupError> {
    let config = load_config()?;
    let db = streamwarden::db::Db::open(&config.database_path())
        .map_err(|e| StartupError(e.to_string()))?;
    let cal = streamwarden::stats::Calendar::system();
    let started = std::time::Instant::now();
    let folded = db
        .write_blocking(|c| streamwarden::stats::rollups::rebuild_all(c, &cal))
        .map_err(|e| StartupError(format!("cannot rebuild the statistics: {e}")))?;
    println!(
        "statistics rebuilt in {} ({}): {} plays over {} days, {:.1} s",
        config.database_path().display(),
        cal.name(),
        folded.plays,
        folded.days,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn serve() -> Result<(), StartupError> {
    let config = load_config()?;
    let app = streamwarden::prepare(config)?;
    let rocket = streamwarden::rocket(app);
    rocket::execute(async move { rocket.launch().await })
        .map(|_| tracing::info!("stopped"))
        .map_err(|e| StartupError(format!("the web server failed: {e}")))
}

/// The app against simulated servers. Unless the environment says otherwise it keeps its
/// data in `./data-demo`, listens on 127.0.0.1 only (the demo admin is one click away),
/// polls every 2 s and confirms streams after 10 s, so that everything shows quickly.
fn demo() -> Result<(), StartupError> {
    let mut config = load_config()?;
    let unset = |name: &str| std::env::var_os(name).is_none();
    config.demo = true;
    if unset("STREAMWARDEN_DATA_DIR") {
        config.data_dir = "./data-demo".into();
    }
    if unset("STREAMWARDEN_ADDRESS") {
        config.address = std::net::Ipv4Addr::LOCALHOST.into();
    }
    if unset("STREAMWARDEN_POLL_INTERVAL") {
        config.poll_interval = streamwarden::config::MIN_POLL_INTERVAL;
    }
    if unset("STREAMWARDEN_CONFIRM_SECONDS") {
        config.confirm_window = std::time::Duration::from_secs(10);
    }
    rocket::execute(async move {
        let cluster = sim::Cluster::start(sim::scenario::demo_world())
            .await
            .map_err(|e| StartupError(format!("cannot start the simulated servers: {e}")))?;
        sim::demo::install_geoip(&config.data_dir)
            .map_err(|e| StartupError(format!("cannot write the demo GeoIP databases: {e}")))?;
        let app = streamwarden::prepare(config)?;
        sim::demo::configure(&app, &cluster)
            .await
            .map_err(|e| StartupError(format!("cannot configure the demo servers: {e}")))?;
        sim::demo::add_rules(&app)
            .await
            .map_err(|e| StartupError(format!("cannot add the demo rules: {e}")))?;
        let seeded = sim::demo::seed_history(&app, &cluster)
            .await
            .map_err(|e| StartupError(format!("cannot write the demo history: {e}")))?;
        if seeded > 0 {
            tracing::info!(plays = seeded, "demo: wrote a few months of history");
        }
        let world = std::sync::Arc::clone(&cluster.world);
        let changed = cluster.notifier();
        app.tasks.spawn("demo story", move |stop| sim::scenario::run(world, changed, stop));
        tracing::info!(
            servers = cluster.endpoints.len(),
            "demo: simulated servers are playing; open the web UI"
        );
        let result = streamwarden::rocket(app).launch().await;
        drop(cluster);
        result
            .map(|_| tracing::info!("stopped"))
            .map_err(|e| StartupError(format!("the web server failed: {e}")))
    })
}

fn healthcheck() -> Result<(), StartupError> {
    let loaded = Config::load().map_err(|e| StartupError(e.to_string()))?;
    web::health::probe(&loaded.config).map_err(|e| StartupError(format!("unhealthy: {e}")))
}
