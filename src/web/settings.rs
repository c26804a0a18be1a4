//! Settings → General: what the environment set (read-only) and the tracking settings.

use std::sync::Arc;

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;

use crate::auth::{Admin, CsrfForm};
use crate::config::Config;
use crate::db::{self, Db};
use crate::error::AppResult;
use crate::poller::TrackingSettings;
use crate::poller::control::Control;
use crate::web::htmx::HxRequest;
use crate::web::htmx::{Done, done};
use crate::web::layout::Layout;
use crate::web::{ClientAddr, audit, render};

#[derive(Template)]
#[template(path = "settings/general.html")]
pub struct GeneralPage {
    layout: Layout,
    tab: &'static str,
    data_dir: String,
    public_url: Option<String>,
    poll_seconds: u64,
    confirm_seconds: u64,
    tracking: TrackingSettings,
    /// The map's tile server, or empty (the built-in outline).
    tile_url: String,
}

#[rocket::get("/settings")]
pub async fn general(
    _admin: Admin,
    layout: Layout,
    config: &State<Config>,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let (tracking, tile_url) = db
        .read(|c| {
            let tile = db::settings::get::<String>(c, crate::web::map::TILE_URL_KEY)?;
            Ok((TrackingSettings::load(c)?, tile.unwrap_or_default()))
        })
        .await?;
    render(&GeneralPage {
        layout: layout.nav("settings"),
        tab: "general",
        data_dir: config.data_dir.display().to_string(),
        public_url: config.public_url.as_ref().map(ToString::to_string),
        poll_seconds: config.poll_interval.as_secs(),
        confirm_seconds: config.confirm_window.as_secs(),
        tracking,
        tile_url,
    })
}

#[derive(Debug, rocket::FromForm)]
pub struct MapForm {
    #[field(default = String::new())]
    tile_url: String,
}

/// Settings → General → Map: the optional tile server (empty: the built-in outline).
#[rocket::post("/settings/map", data = "<form>")]
pub async fn save_map(
    admin: Admin,
    form: CsrfForm<MapForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let url = crate::web::map::check_tile_url(&form.0.tile_url)?;
    let stored = url.clone();
    db.write(move |conn| match stored {
        Some(u) => db::settings::put(conn, crate::web::map::TILE_URL_KEY, &u),
        None => db::settings::delete(conn, crate::web::map::TILE_URL_KEY),
    })
    .await?;
    audit(
        db,
        &admin.0.actor(),
        "settings.map",
        "settings:map",
        serde_json::json!({"tile_url": url}),
        ip.0,
    )
    .await;
    Ok(done(&hx, format!("{}/settings", layout.base)))
}

#[derive(Debug, rocket::FromForm)]
pub struct TrackingForm {
    watched_percent: u8,
    stop_grace_minutes: u32,
    resume_window_minutes: u32,
}

#[rocket::post("/settings/tracking", data = "<form>")]
pub async fn save_tracking(
    admin: Admin,
    form: CsrfForm<TrackingForm>,
    db: &State<Db>,
    control: &State<Arc<Control>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let f = form.0;
    let settings = TrackingSettings {
        watched_percent: f.watched_percent,
        stop_grace_minutes: f.stop_grace_minutes,
        resume_window_minutes: f.resume_window_minutes,
    };
    settings.validate()?;
    db.write(move |conn| db::settings::put(conn, TrackingSettings::KEY, &settings)).await?;
    audit(
        db,
        &admin.0.actor(),
        "settings.tracking",
        "settings:tracking",
        serde_json::to_value(settings).unwrap_or_default(),
        ip.0,
    )
    .await;
    control.registry.changed();
    Ok(done(&hx, format!("{}/settings", layout.base)))
}
