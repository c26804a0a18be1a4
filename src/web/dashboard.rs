//! The dashboard: who is streaming right now, updated live over one SSE stream per page.

use std::sync::Arc;

use askama::Template;
use rocket::Shutdown;
use rocket::State;
use rocket::response::content::RawHtml;
use rocket::response::stream::{Event, EventStream};

use crate::auth::{Scope, Viewer};
use crate::error::AppResult;
use crate::format;
use crate::media::model::{Decision, MediaType, PlaybackState};
use crate::media::push::Realtime;
use crate::poller::control::Control;
use crate::poller::live::{LiveSession, LiveView};
use crate::time::Ms;
use crate::web::layout::Layout;
use crate::web::render;

/// One stream's card.
pub struct Card {
    pub play_id: Option<i64>,
    pub user_name: String,
    pub user_id: Option<i64>,
    pub title: String,
    pub kind: &'static str,
    pub poster: Option<String>,
    pub player: String,
    pub product: String,
    pub platform: String,
    pub is_local: bool,
    pub ip: String,
    pub place: Option<String>,
    pub progress_pct: i64,
    pub progress_text: String,
    /// Position as of the view, milliseconds: where the page's clock starts from.
    pub progress_ms: i64,
    pub duration_ms: i64,
    pub state: &'static str,
    pub pending: bool,
    pub fading: bool,
    pub decision: Decision,
    pub reasons: Vec<String>,
    pub quality: String,
    pub hw: bool,
    pub bandwidth: Option<String>,
    pub server: String,
    pub started: String,
    pub can_stop: bool,
    /// Why the stream cannot be stopped, when the client refuses remote control.
    pub cannot_stop: Option<&'static str>,
}

/// One server's line in the summary.
pub struct ServerLine {
    pub name: String,
    pub streams: usize,
    pub bandwidth: String,
    pub failing: Option<String>,
    /// `websocket`, `sse` or `polling`.
    pub realtime: &'static str,
    pub realtime_label: &'static str,
    /// "Live over the event stream since 21:04", or how it is polled.
    pub realtime_title: String,
}

/// What the live region shows.
pub struct LiveData {
    pub base: String,
    pub is_admin: bool,
    pub polled: bool,
    pub cards: Vec<Card>,
    pub streams: usize,
    pub transcodes: usize,
    pub direct_streams: usize,
    pub direct_plays: usize,
    pub bandwidth: String,
    pub servers: Vec<ServerLine>,
}

fn card(s: &LiveSession, view_at: Ms, base: &str, is_admin: bool) -> Card {
    let session = &s.session;
    let item = &session.item;
    let media_type = item.media_type.unwrap_or(MediaType::Other);
    let duration = item.duration_ms.unwrap_or(0);
    // A playing stream has moved on since it was last seen (positions are pushed every
    // few seconds, polled every few more): show where it is now.
    let mut progress = session.progress_ms.unwrap_or(0);
    if session.state == PlaybackState::Playing && !s.fading && view_at > s.last_seen_at {
        progress += view_at - s.last_seen_at;
        if duration > 0 {
            progress = progress.min(duration);
        }
    }
    let stream = &session.stream;
    let quality = match (stream.source_resolution.as_deref(), stream.stream_resolution.as_deref()) {
        (Some(a), Some(b)) if a != b => format!("{a} → {b}"),
        (Some(a), _) | (None, Some(a)) => a.to_owned(),
        (None, None) => String::new(),
    };
    let place = s.geo.as_ref().and_then(|g| match (&g.city, &g.country) {
        (Some(city), Some(country)) => Some(format!("{city}, {country}")),
        (None, Some(country)) => Some(country.clone()),
        _ => None,
    });
    Card {
        play_id: s.play_id,
        user_name: session.user.name.clone(),
        user_id: s.user_id,
        title: format::full_title(
            &item.title,
            item.grandparent_title.as_deref(),
            item.season,
            item.episode,
            item.year,
            media_type.as_str(),
        ),
        kind: media_type.label(),
        poster: item.thumb.as_ref().and(s.play_id).map(|id| format!("{base}/sessions/{id}/poster")),
        player: session.player.name.clone().unwrap_or_else(|| "Unknown player".to_owned()),
        product: session.player.product.clone().unwrap_or_default(),
        platform: session.player.platform.clone().unwrap_or_default(),
        is_local: s.is_local,
        ip: session.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        place,
        progress_pct: format::percent(progress, duration),
        progress_ms: progress,
        duration_ms: duration,
        progress_text: if duration > 0 {
            format!("{} / {}", format::clock(progress), format::clock(duration))
        } else {
            format::clock(progress)
        },
        state: match session.state {
            PlaybackState::Playing => "playing",
            PlaybackState::Paused => "paused",
            PlaybackState::Buffering => "buffering",
        },
        pending: s.pending,
        fading: s.fading,
        decision: stream.decision,
        reasons: stream.transcode_reasons.clone(),
        quality,
        hw: stream.hw_decode || stream.hw_encode,
        bandwidth: stream.bandwidth_kbps.map(format::bandwidth),
        server: s.server_name.clone(),
        started: format::local_time(s.started_at),
        can_stop: is_admin && s.play_id.is_some() && session.can_control,
        cannot_stop: (is_admin && !session.can_control)
            .then_some("This client does not accept remote control, so its server cannot stop it."),
    }
}

/// The live region's data for what `scope` may see.
pub fn live_data(view: &LiveView, scope: Scope, base: &str, is_admin: bool) -> LiveData {
    let visible: Vec<&LiveSession> = view.visible(scope).collect();
    let count = |d: Decision| visible.iter().filter(|s| s.session.stream.decision == d).count();
    let kbps = |sessions: &mut dyn Iterator<Item = &&LiveSession>| -> i64 {
        sessions.filter_map(|s| s.session.stream.bandwidth_kbps).sum()
    };
    let servers = if is_admin {
        view.servers
            .iter()
            .map(|srv| {
                let mut on = visible.iter().filter(|s| s.server_id == srv.id);
                let streams = visible.iter().filter(|s| s.server_id == srv.id).count();
                let since = srv
                    .realtime_since
                    .map(|at| format!(" since {}", format::local_time(at)))
                    .unwrap_or_default();
                ServerLine {
                    name: srv.name.clone(),
                    streams,
                    bandwidth: format::bandwidth(kbps(&mut on)),
                    failing: (!srv.is_healthy()).then(|| {
                        srv.last_error.clone().unwrap_or_else(|| "not answering".to_owned())
                    }),
                    realtime: srv.realtime.as_str(),
                    realtime_label: srv.realtime.label(),
                    realtime_title: match srv.realtime {
                        Realtime::Polling => format!("Polled{since}"),
                        other => format!("Live over the server's {}{since}", other.label()),
                    },
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    LiveData {
        base: base.to_owned(),
        is_admin,
        polled: view.at > 0,
        cards: visible.iter().map(|s| card(s, view.at, base, is_admin)).collect(),
        streams: visible.len(),
        transcodes: count(Decision::Transcode),
        direct_streams: count(Decision::DirectStream),
        direct_plays: count(Decision::DirectPlay),
        bandwidth: format::bandwidth(kbps(&mut visible.iter())),
        servers,
    }
}

#[derive(Template)]
#[template(path = "dashboard/index.html")]
pub struct DashboardPage {
    layout: Layout,
    live: LiveData,
    has_servers: bool,
    /// No GeoIP City database is installed: places, travel and distances are unknown.
    no_geoip: bool,
}

#[derive(Template)]
#[template(path = "dashboard/index.html", block = "live")]
pub struct LiveFragment {
    live: LiveData,
}

#[rocket::get("/")]
pub fn index(
    viewer: Viewer,
    layout: Layout,
    control: &State<Arc<Control>>,
    geo: &State<Arc<crate::geo::GeoIp>>,
) -> AppResult<RawHtml<String>> {
    let view = control.live();
    let live = live_data(&view, viewer.0.scope(), &layout.base, viewer.0.is_admin());
    let has_servers = !view.servers.is_empty() || view.at == 0;
    let no_geoip = viewer.0.is_admin() && !geo.status().has_city();
    render(&DashboardPage { layout: layout.nav("dashboard"), live, has_servers, no_geoip })
}

/// How often an idle stream checks that its session still holds (besides before each event).
const RECHECK_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Server-sent events for the dashboard: the live region, re-rendered whenever the poller
/// publishes a change. The session is checked again before every event (and every
/// [`RECHECK_IDLE`]): signing out, disabling the account or changing its role ends the
/// stream. Ends at shutdown so it never holds the server up.
#[rocket::get("/events/dashboard")]
pub fn events(
    viewer: Viewer,
    watch: crate::auth::session::Watch,
    layout: Layout,
    control: &State<Arc<Control>>,
    db: &State<crate::db::Db>,
    mut shutdown: Shutdown,
) -> crate::web::Sse<EventStream![Event + 'static]> {
    let mut updates = control.hub.subscribe();
    let scope = viewer.0.scope();
    let is_admin = viewer.0.is_admin();
    let base = layout.base;
    let db = db.inner().clone();
    crate::web::Sse(EventStream! {
        let mut last = String::new();
        loop {
            if !watch.still_valid(&db).await {
                break;
            }
            let view = updates.borrow_and_update().clone();
            let html = LiveFragment { live: live_data(&view, scope, &base, is_admin) }.render();
            match html {
                Ok(html) if html != last => {
                    yield Event::data(html.clone()).event("live");
                    last = html;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "rendering the live dashboard failed"),
            }
            tokio::select! {
                changed = updates.changed() => if changed.is_err() { break },
                () = tokio::time::sleep(RECHECK_IDLE) => {}
                () = &mut shutdown => break,
            }
        }
    })
}
