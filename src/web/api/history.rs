//! `/api/v1/history`: finished plays, newest first, with cursor paging.

use rocket::State;
use rocket::serde::json::Json;
use serde::Serialize;

use super::time;
use crate::auth::ApiViewer;
use crate::db::Db;
use crate::db::plays::{self, Cursor, HistoryRow};
use crate::error::AppResult;
use crate::geo::Geo;
use crate::web::history::{HistoryQuery, PAGE_SIZE};

#[derive(Serialize)]
pub struct PlayJson {
    id: i64,
    server_id: i64,
    server_name: String,
    user: super::sessions::UserRefJson,
    media_type: String,
    title: String,
    grandparent_title: Option<String>,
    parent_title: Option<String>,
    season: Option<i64>,
    episode: Option<i64>,
    year: Option<i64>,
    library: Option<String>,
    player: Option<String>,
    platform: Option<String>,
    product: Option<String>,
    device_id: String,
    ip: Option<String>,
    is_local: bool,
    geo: Geo,
    decision: String,
    transcode: super::sessions::TranscodeJson,
    source_resolution: Option<String>,
    stream_resolution: Option<String>,
    bandwidth_kbps: Option<i64>,
    started_at: Option<String>,
    stopped_at: Option<String>,
    duration_ms: Option<i64>,
    progress_ms: Option<i64>,
    /// Time actually watched (the span minus the pauses).
    play_ms: Option<i64>,
    paused_ms: i64,
    watched: bool,
    /// The first play of the resume chain this play continues.
    reference_id: Option<i64>,
    stop_reason: Option<String>,
    /// The person the account is linked to, `null` when it stands alone.
    person: Option<crate::db::persons::PersonRef>,
}

pub fn json(r: HistoryRow) -> PlayJson {
    PlayJson {
        id: r.id,
        server_id: r.server_id,
        server_name: r.server_name,
        user: super::sessions::UserRefJson::new(Some(r.user_id), r.user_name),
        media_type: r.media_type,
        title: r.title,
        grandparent_title: r.grandparent_title,
        parent_title: r.parent_title,
        season: r.season,
        episode: r.episode,
        year: r.year,
        library: r.library_name,
        player: r.player,
        platform: r.platform,
        product: r.product,
        device_id: r.device_id,
        ip: r.ip,
        is_local: r.is_local,
        geo: r.geo,
        decision: r.decision,
        transcode: super::sessions::TranscodeJson::new(r.video_decision, r.audio_decision),
        source_resolution: r.source_resolution,
        stream_resolution: r.stream_resolution,
        bandwidth_kbps: r.bandwidth_kbps,
        started_at: time(Some(r.started_at)),
        stopped_at: time(r.stopped_at),
        duration_ms: r.duration_ms,
        progress_ms: r.progress_ms,
        play_ms: r.play_ms,
        paused_ms: r.paused_ms,
        watched: r.watched,
        reference_id: r.reference_id,
        stop_reason: r.stop_reason,
        person: r.person,
    }
}

#[derive(Serialize)]
pub struct HistoryJson {
    items: Vec<PlayJson>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next_cursor: Option<String>,
}

#[rocket::get("/api/v1/history?<query..>")]
pub async fn list(
    caller: ApiViewer,
    query: HistoryQuery,
    db: &State<Db>,
) -> AppResult<Json<HistoryJson>> {
    let filter = query.filter()?;
    let cursor = query.cursor()?;
    let limit = query.limit.unwrap_or(PAGE_SIZE);
    let scope = caller.0.scope();
    let page = db.read(move |conn| plays::history(conn, &filter, scope, cursor, limit)).await?;
    Ok(Json(HistoryJson {
        items: page.items.into_iter().map(json).collect(),
        next_cursor: page.next.map(Cursor::encode),
    }))
}
