//! `/map`: where streams come from, drawn over the vendored world outline (no tile server,
//! no internet needed), live markers over the page's own SSE stream; `GET /api/v1/map`.

use std::sync::Arc;

use askama::Template;
use rocket::response::content::RawHtml;
use rocket::response::stream::{Event, EventStream};
use rocket::serde::json::Json;
use rocket::{Shutdown, State};

use crate::auth::{ApiViewer, Scope as Visible, Viewer};
use crate::db::Db;
use crate::db::servers::{self, ServerRow};
use crate::db::settings;
use crate::db::stats::{Scope, UserChoice, user_choices};
use crate::error::{AppError, AppResult};
use crate::poller::control::Control;
use crate::poller::live::LiveView;
use crate::stats::StatsService;
use crate::stats::map::{self, History, Place};
use crate::web::htmx::CONTENT_SECURITY_POLICY;
use crate::web::layout::Layout;
use crate::web::render;
use crate::web::stats::{PERIODS, StatsParams};
use rocket::http::Header;

/// Settings key of the optional tile server (`https://tile.example/{z}/{x}/{y}.png`).
pub const TILE_URL_KEY: &str = "map.tile_url";

/// A tile URL as typed: http(s) with `{z}`, `{x}` and `{y}`; `None` when empty.
pub fn check_tile_url(raw: &str) -> AppResult<Option<String>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let url = reqwest::Url::parse(&raw.replace(['{', '}'], "_"))
        .map_err(|_| AppError::validation("tile_url", "not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(AppError::validation("tile_url", "an http or https URL"));
    }
    if !["{z}", "{x}", "{y}"].iter().all(|p| raw.contains(p)) {
        return Err(AppError::validation("tile_url", "must contain {z}, {x} and {y}"));
    }
    if raw.contains(['"', '\'', ' ', ';']) {
        return Err(AppError::validation("tile_url", "no quotes, spaces or semicolons"));
    }
    Ok(Some(raw.to_owned()))
}

/// The page's Content-Security-Policy: ours, plus the tile server's origin for images.
fn policy(tile_url: &str) -> String {
    let origin = reqwest::Url::parse(&tile_url.replace(['{', '}'], "_"))
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null");
    match origin {
        Some(o) => CONTENT_SECURITY_POLICY.replacen(
            "img-src 'self' data:",
            &format!("img-src 'self' data: {o}"),
            1,
        ),
        None => CONTENT_SECURITY_POLICY.to_owned(),
    }
}

/// A page with its own Content-Security-Policy (the fairing keeps one that is set).
#[derive(rocket::Responder)]
pub struct WithPolicy {
    page: RawHtml<String>,
    csp: Header<'static>,
}

/// The live streams `visible` may see, narrowed to a server or a user, as places.
pub fn live_places(view: &LiveView, visible: Visible, scope: Scope) -> Vec<Place> {
    map::live(view.visible(visible).filter_map(|s| {
        let user = s.user_id?;
        if s.pending || s.is_local {
            return None;
        }
        if (scope.server_id != 0 && s.server_id != scope.server_id)
            || (scope.user_id != 0 && user != scope.user_id)
        {
            return None;
        }
        let g = s.geo.as_ref()?;
        Some((g.lat?, g.lon?, g.city.clone(), g.country.clone(), user))
    }))
}

/// `live=true`: the live streams only; `live=false`: the period's history only; neither:
/// both, history first.
#[rocket::get("/api/v1/map?<live>&<params..>")]
pub async fn api(
    caller: ApiViewer,
    params: StatsParams,
    live: Option<bool>,
    db: &State<Db>,
    service: &State<StatsService>,
    control: &State<Arc<Control>>,
) -> AppResult<Json<Vec<Place>>> {
    let visible = caller.0.scope();
    let (query, _) = params.query(visible, db, service).await?;
    let mut out = Vec::new();
    if live != Some(true) {
        out.extend(service.places(query).await?.places);
    }
    if live != Some(false) {
        out.extend(live_places(&control.hub.current(), visible, query.scope));
    }
    Ok(Json(out))
}

#[derive(Template)]
#[template(path = "map/index.html")]
struct MapPage {
    layout: Layout,
    params: StatsParams,
    filters: String,
    history: History,
    live: Vec<Place>,
    from: String,
    to: String,
    time_zone: String,
    users: Vec<UserChoice>,
    servers: Vec<ServerRow>,
    periods: &'static [(&'static str, &'static str)],
    user_name: Option<String>,
    tile_url: String,
    /// The biggest place's plays, which sizes the markers.
    max_plays: i64,
}

impl MapPage {
    /// A marker's radius in degrees at the whole-world zoom (the script rescales it).
    pub fn radius(&self, plays: impl crate::format::Num) -> f64 {
        let plays = plays.get();
        #[expect(clippy::cast_precision_loss, reason = "marker sizes")]
        let share = (plays as f64 / self.max_plays.max(1) as f64).sqrt();
        (1.0 + 4.0 * share * 10.0).round() / 10.0
    }

    pub fn place_name(p: &Place) -> String {
        match (&p.city, &p.country) {
            (Some(c), Some(k)) => format!("{c}, {k}"),
            (None, Some(k)) => k.clone(),
            (Some(c), None) => c.clone(),
            (None, None) => format!("{:.2}, {:.2}", p.lat, p.lon),
        }
    }
}

#[rocket::get("/map?<params..>")]
pub async fn index(
    viewer: Viewer,
    layout: Layout,
    params: StatsParams,
    db: &State<Db>,
    service: &State<StatsService>,
    control: &State<Arc<Control>>,
) -> AppResult<WithPolicy> {
    let visible = viewer.0.scope();
    let (query, user_name) = params.query(visible, db, service).await?;
    let history = service.places(query).await?;
    let live = live_places(&control.hub.current(), visible, query.scope);
    let (users, servers, tile_url) = db
        .read(|c| {
            Ok((
                user_choices(c)?,
                servers::list(c)?,
                settings::get::<String>(c, TILE_URL_KEY)?.unwrap_or_default(),
            ))
        })
        .await?;
    let users = users.into_iter().filter(|u| visible.allows(u.0)).collect();
    let servers = if visible == Visible::All { servers } else { Vec::new() };
    let max_plays = history.places.iter().chain(&live).map(|p| p.plays).max().unwrap_or(1);
    let csp = Header::new("Content-Security-Policy", policy(&tile_url));
    let page = render(&MapPage {
        layout: layout.nav("map"),
        filters: params.to_query(),
        params,
        history,
        live,
        from: crate::stats::calendar::iso(query.first),
        to: crate::stats::calendar::iso(query.last),
        time_zone: service.calendar().name(),
        users,
        servers,
        periods: &PERIODS,
        user_name,
        tile_url,
        max_plays,
    })?;
    Ok(WithPolicy { page, csp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_urls_are_checked_and_let_into_the_policy() {
        let osm = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
        assert_eq!(check_tile_url(&format!(" {osm} ")).unwrap().as_deref(), Some(osm));
        assert_eq!(check_tile_url("").unwrap(), None);
        for bad in [
            "ftp://x/{z}/{x}/{y}",
            "https://x/{z}/{x}.png",
            "not a url",
            "https://x/{z}/{x}/{y}'; script-src *",
        ] {
            assert!(check_tile_url(bad).is_err(), "{bad}");
        }
        assert!(policy(osm).contains("img-src 'self' data: https://tile.openstreetmap.org;"));
        assert_eq!(policy(""), CONTENT_SECURITY_POLICY);
    }
}

/// The map's live markers: the live places as JSON whenever they change.
#[rocket::get("/events/map?<server_id>&<user>")]
pub fn events(
    viewer: Viewer,
    server_id: Option<i64>,
    user: Option<i64>,
    control: &State<Arc<Control>>,
    mut shutdown: Shutdown,
) -> crate::web::Sse<EventStream![Event + 'static]> {
    let mut updates = control.hub.subscribe();
    let visible = viewer.0.scope();
    let scope = Scope { server_id: server_id.unwrap_or(0), user_id: user.unwrap_or(0) };
    crate::web::Sse(EventStream! {
        let mut last = String::new();
        loop {
            let view = updates.borrow_and_update().clone();
            let json = serde_json::to_string(&live_places(&view, visible, scope)).unwrap_or_default();
            if json != last {
                yield Event::data(json.clone()).event("places");
                last = json;
            }
            tokio::select! {
                changed = updates.changed() => if changed.is_err() { break },
                () = &mut shutdown => break,
            }
        }
    })
}
