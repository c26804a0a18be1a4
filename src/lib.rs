//! Streamwarden: who is streaming from my Plex, Jellyfin or Emby server right now, and is
//! anyone sharing a login?
//!
//! [`prepare`] turns a validated [`Config`] into the parts the server needs (data directory,
//! keys, database); [`rocket`] builds the Rocket instance from them. `main` and the tests
//! build the same instance.

pub mod auth;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod geo;
pub mod integrations;
pub mod jobs;
pub mod keys;
pub mod maintenance;
pub mod media;
pub mod notify;
pub mod persons;
pub mod poller;
pub mod rules;
pub mod servers;
pub mod sim;
pub mod stats;
pub mod tasks;
pub mod telemetry;
pub mod web;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rocket::config::LogLevel;
use rocket::data::{Limits, ToByteUnit as _};
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::{Build, Rocket};

pub use crate::config::Config;
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::keys::Keys;
use crate::poller::control::Control;
use crate::poller::live::LiveHub;
use crate::poller::registry::Registry;
use crate::poller::{Poller, SharedPoller};
use crate::tasks::Tasks;

/// How long background tasks get to stop after SIGTERM, before they are aborted. Rocket's
/// own connection grace and mercy come on top; the sum stays well under Docker's 10 s.
pub const TASK_STOP_BUDGET: Duration = Duration::from_secs(2);

/// A reason the server cannot start, as one line for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// Everything the server is built from.
pub struct App {
    pub config: Config,
    pub keys: Keys,
    pub db: Db,
    pub secrets: SecretBox,
    pub tasks: Arc<Tasks>,
    pub poller: SharedPoller,
    pub control: Arc<Control>,
    pub notifier: notify::Notifier,
    pub geo: Arc<geo::GeoIp>,
    pub geo_updater: Arc<geo::download::Updater>,
    pub rules: Arc<rules::engine::Engine>,
    pub jobs: jobs::Jobs,
    pub maintenance: Arc<maintenance::Maintenance>,
    pub stats: stats::StatsService,
    /// Run the poller in the background from liftoff. Tests turn it off and drive
    /// [`Poller::tick`] themselves.
    pub background: bool,
}

/// Checks the data directory, loads or creates the keys, opens and migrates the database,
/// and resumes the live sessions of the last run.
pub fn prepare(config: Config) -> Result<App, StartupError> {
    ensure_data_dir(&config.data_dir)?;
    let keys = Keys::load_or_create(&config)?;
    assemble(config, keys, true)
}

/// [`prepare`] with fixed test keys (no key files are written) and no background poller.
pub fn prepare_for_tests(config: Config) -> Result<App, StartupError> {
    ensure_data_dir(&config.data_dir)?;
    assemble(config, Keys::for_tests(), false)
}

fn assemble(config: Config, keys: Keys, background: bool) -> Result<App, StartupError> {
    let db = Db::open(&config.database_path()).map_err(|e| StartupError(e.to_string()))?;
    let secrets = SecretBox::new(&keys.encryption);
    let db_for_jobs = db.clone();
    let registry = Arc::new(Registry::new(secrets.clone()));
    let hub = Arc::new(LiveHub::new());
    let (commands, inbox) = tokio::sync::mpsc::unbounded_channel();
    let links = notify::message::Links::new(config.public_url.clone());
    let notifier = notify::Notifier::new(db.clone(), secrets.clone(), links);
    let geo = Arc::new(geo::GeoIp::new(config.data_dir.join("geoip")));
    let overrides = db
        .read_blocking(db::geo::list)
        .map_err(|e| StartupError(format!("cannot read the GeoIP overrides: {e}")))?;
    geo.set_overrides(overrides);
    let handoff = Arc::new(poller::handoff::Handoff::new());
    let poller = Poller::new(
        db.clone(),
        Arc::clone(&registry),
        Arc::clone(&hub),
        notifier.clone(),
        config.poll_interval,
        config.confirm_window,
        inbox,
        Arc::clone(&geo),
        Arc::clone(&handoff),
    )
    .map_err(|e| StartupError(format!("cannot resume the live sessions: {e}")))?;
    let tasks = Arc::new(Tasks::new());
    let jobs = jobs::Jobs::new(db_for_jobs);
    let maintenance = Arc::new(maintenance::Maintenance::new(
        db.clone(),
        Arc::clone(&registry),
        jobs.clone(),
        Arc::clone(&tasks),
        secrets.clone(),
    ));
    let control = Arc::new(Control::new(db.clone(), hub, registry, commands));
    let confirm_ms = i64::try_from(config.confirm_window.as_millis()).unwrap_or(30_000);
    let rules = Arc::new(rules::engine::Engine::new(
        db.clone(),
        Arc::clone(&control),
        handoff,
        notifier.clone(),
        confirm_ms,
    ));
    let geo_updater = Arc::new(geo::download::Updater::new(
        Arc::clone(&geo),
        db.clone(),
        secrets.clone(),
        config.maxmind_license_key.as_ref().map(|k| k.expose().to_owned()),
    ));
    let stats = stats::StatsService::new(db.clone(), stats::Calendar::system());
    Ok(App {
        config,
        keys,
        db,
        secrets,
        tasks,
        poller: Arc::new(tokio::sync::Mutex::new(poller)),
        control,
        notifier,
        geo,
        geo_updater,
        rules,
        jobs,
        maintenance,
        stats,
        background,
    })
}

/// Creates the data directory if needed and proves that we can write into it, so that a
/// wrong volume mapping fails at start with the path named, not at the first write.
fn ensure_data_dir(dir: &Path) -> Result<(), StartupError> {
    let shown = dir.display();
    fs::create_dir_all(dir)
        .map_err(|e| StartupError(format!("cannot create the data directory {shown}: {e}")))?;
    let probe = dir.join(".write-test");
    fs::write(&probe, b"ok")
        .and_then(|()| fs::remove_file(&probe))
        .map_err(|e| StartupError(format!("the data directory {shown} is not writable: {e}")))
}

/// Builds the Rocket instance: configuration, managed state, fairings, routes.
pub fn rocket(app: App) -> Rocket<Build> {
    let App {
        config,
        keys,
        db,
        secrets,
        tasks,
        poller,
        control,
        geo,
        geo_updater,
        rules,
        notifier,
        jobs,
        maintenance,
        stats,
        background,
    } = app;
    let limits = Limits::default()
        .limit("form", 256.kibibytes())
        .limit("data-form", 64.mebibytes())
        .limit("json", 2.mebibytes());
    let figment = Figment::from(rocket::Config::default())
        .merge(("address", config.address))
        .merge(("port", config.port))
        .merge(("secret_key", base64::engine::general_purpose::STANDARD.encode(&keys.cookie)))
        // Client IPs come from our trusted-proxy logic, never from a header anyone can set.
        .merge(("ip_header", false))
        .merge(("ident", false))
        .merge(("cli_colors", false))
        // Rocket logs through `log`; our subscriber shows its errors, we log the rest.
        .merge(("log_level", LogLevel::Critical))
        .merge(("limits", limits))
        .merge(("shutdown.grace", 2))
        .merge(("shutdown.mercy", 2));

    let base = if config.base_path.is_empty() { "/".to_owned() } else { config.base_path.clone() };
    let interval = config.poll_interval;

    let mut rocket = rocket::custom(figment);
    if !config.base_path.is_empty() {
        rocket = rocket.mount("/", web::root_redirect());
    }
    rocket
        .manage(config)
        .manage(db)
        .manage(secrets)
        .manage(auth::Auth::new())
        .manage(Arc::clone(&tasks))
        .manage(Arc::clone(&poller))
        .manage(control)
        .manage(notifier)
        .manage(geo)
        .manage(Arc::clone(&geo_updater))
        .manage(Arc::clone(&rules))
        .manage(jobs.clone())
        .manage(Arc::clone(&maintenance))
        .manage(stats.clone())
        .attach(web::htmx::SecurityHeaders)
        .attach(web::RequestLog)
        .attach(AdHoc::on_liftoff("Announce", |rocket| {
            Box::pin(async move {
                let config = rocket.state::<Config>().expect("managed");
                tracing::info!(
                    address = %rocket.config().address,
                    port = rocket.config().port,
                    base_path = %config.base_path,
                    data_dir = %config.data_dir.display(),
                    version = env!("CARGO_PKG_VERSION"),
                    "Streamwarden is listening"
                );
            })
        }))
        .attach(AdHoc::on_liftoff("Start the rules worker", move |rocket| {
            Box::pin(async move {
                if let Err(e) = jobs.recover().await {
                    tracing::warn!(error = %e, "cannot mark the jobs the last run left unfinished");
                }
                let tasks = rocket.state::<Arc<Tasks>>().expect("managed");
                tasks.spawn("rules", move |stop| rules.run(stop));
                if background {
                    tasks.spawn("geoip", move |stop| geo_updater.run(stop));
                    tasks.spawn("library schedule", move |stop| {
                        maintenance::schedule::run(maintenance, stop)
                    });
                }
            })
        }))
        .attach(AdHoc::on_liftoff("Start the poller", move |rocket| {
            Box::pin(async move {
                if !background {
                    return;
                }
                let tasks = rocket.state::<Arc<Tasks>>().expect("managed");
                let control = rocket.state::<Arc<Control>>().expect("managed");
                let registry = Arc::clone(&control.registry);
                let hub = Arc::clone(&control.hub);
                let timing = poller::follow::Timing::for_interval(interval);
                tasks.spawn("poller", move |stop| poller::run(poller, registry, hub, timing, stop));
            })
        }))
        .attach(AdHoc::on_liftoff("Fold statistics", move |rocket| {
            Box::pin(async move {
                if background {
                    let tasks = rocket.state::<Arc<Tasks>>().expect("managed");
                    tasks.spawn("statistics", move |stop| stats.run(stop));
                }
            })
        }))
        .attach(AdHoc::on_liftoff("Notification delivery", |rocket| {
            Box::pin(async move {
                let (Some(tasks), Some(notifier)) =
                    (rocket.state::<Arc<Tasks>>(), rocket.state::<notify::Notifier>())
                else {
                    return;
                };
                let worker = notifier.worker();
                tasks.spawn("notification delivery", |stop| worker.run(stop));
            })
        }))
        .attach(AdHoc::on_shutdown("Stop background tasks, then the database", |rocket| {
            Box::pin(async move {
                tracing::info!("shutdown requested");
                if let Some(tasks) = rocket.state::<Arc<Tasks>>() {
                    let aborted = tasks.shutdown(TASK_STOP_BUDGET).await;
                    tracing::info!(aborted = aborted.len(), "background tasks stopped");
                }
                if let Some(db) = rocket.state::<Db>() {
                    match db.checkpoint().await {
                        Ok(()) => tracing::info!("database checkpointed"),
                        Err(e) => tracing::warn!(error = %e, "database checkpoint failed"),
                    }
                }
            })
        }))
        .mount(base.as_str(), web::routes())
        .register(base.as_str(), web::catchers())
}
