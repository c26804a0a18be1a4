//! `/api/v1/sessions`: the live streams, and stopping one.

use std::collections::HashMap;
use std::sync::Arc;

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::{Deserialize, Serialize};

use super::{body, time};
use crate::auth::{ApiAdmin, ApiViewer};
use crate::db::Db;
use crate::db::persons::PersonRef;
use crate::error::{AppError, AppResult};
use crate::geo::Geo;
use crate::media::model::MediaType;
use crate::poller::control::Control;
use crate::poller::live::LiveSession;
use crate::web::{ClientAddr, audit};

#[derive(Serialize)]
pub struct UserRefJson {
    /// Media user id; `null` only while the database cannot be written.
    id: Option<i64>,
    name: String,
}

impl UserRefJson {
    pub fn new(id: Option<i64>, name: String) -> Self {
        Self { id, name }
    }
}

#[derive(Serialize)]
pub struct TranscodeJson {
    /// `transcode`, `copy` or `direct play`.
    video: Option<String>,
    audio: Option<String>,
}

impl TranscodeJson {
    pub fn new(video: Option<String>, audio: Option<String>) -> Self {
        Self { video, audio }
    }
}

#[derive(Serialize)]
pub struct SessionJson {
    id: Option<i64>,
    server_id: i64,
    server_name: String,
    user: UserRefJson,
    media_type: &'static str,
    title: String,
    grandparent_title: Option<String>,
    parent_title: Option<String>,
    season: Option<i64>,
    episode: Option<i64>,
    year: Option<i64>,
    /// `playing`, `paused` or `buffering`.
    state: &'static str,
    /// Seen, not yet past the confirmation window: not in history or rules yet.
    pending: bool,
    progress_ms: Option<i64>,
    duration_ms: Option<i64>,
    paused_ms: i64,
    ip: Option<String>,
    is_local: bool,
    geo: Option<Geo>,
    player: Option<String>,
    platform: Option<String>,
    product: Option<String>,
    device_id: String,
    /// `direct_play`, `direct_stream` or `transcode`.
    decision: &'static str,
    transcode: TranscodeJson,
    transcode_reasons: Vec<String>,
    source_resolution: Option<String>,
    stream_resolution: Option<String>,
    bandwidth_kbps: Option<i64>,
    started_at: Option<String>,
    /// The person the account is linked to, `null` when it stands alone.
    person: Option<PersonRef>,
}

pub fn json(s: &LiveSession, persons: &HashMap<i64, PersonRef>) -> SessionJson {
    let session = &s.session;
    let stream = &session.stream;
    SessionJson {
        id: s.play_id,
        server_id: s.server_id,
        server_name: s.server_name.clone(),
        user: UserRefJson { id: s.user_id, name: session.user.name.clone() },
        media_type: session.item.media_type.unwrap_or(MediaType::Other).as_str(),
        title: session.item.title.clone(),
        grandparent_title: session.item.grandparent_title.clone(),
        parent_title: session.item.parent_title.clone(),
        season: session.item.season,
        episode: session.item.episode,
        year: session.item.year,
        state: session.state.as_str(),
        pending: s.pending,
        progress_ms: session.progress_ms,
        duration_ms: session.item.duration_ms,
        paused_ms: s.paused_ms,
        ip: session.ip.map(|ip| ip.to_string()),
        is_local: s.is_local,
        geo: s.geo.clone(),
        player: session.player.name.clone(),
        platform: session.player.platform.clone(),
        product: session.player.product.clone(),
        device_id: session.player.device_id.clone(),
        decision: stream.decision.as_str(),
        transcode: TranscodeJson {
            video: stream.video_decision.clone(),
            audio: stream.audio_decision.clone(),
        },
        transcode_reasons: stream.transcode_reasons.clone(),
        source_resolution: stream.source_resolution.clone(),
        stream_resolution: stream.stream_resolution.clone(),
        bandwidth_kbps: stream.bandwidth_kbps,
        started_at: time(Some(s.started_at)),
        person: s.user_id.and_then(|u| persons.get(&u).cloned()),
    }
}

#[rocket::get("/api/v1/sessions")]
pub async fn list(
    caller: ApiViewer,
    control: &State<Arc<Control>>,
    db: &State<Db>,
) -> AppResult<Json<Vec<SessionJson>>> {
    let persons = db.read(crate::db::persons::refs).await?;
    let view = control.live();
    Ok(Json(view.visible(caller.0.scope()).map(|s| json(s, &persons)).collect()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TerminateBody {
    message: Option<String>,
}

#[derive(Serialize)]
pub struct TerminatedJson {
    terminated: bool,
    session: SessionJson,
}

/// Stops the stream on its media server. An empty body is fine.
#[rocket::post("/api/v1/sessions/<id>/terminate", data = "<data>")]
pub async fn terminate(
    caller: ApiAdmin,
    id: i64,
    data: Option<Result<Json<TerminateBody>, rocket::serde::json::Error<'_>>>,
    control: &State<Arc<Control>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Json<TerminatedJson>> {
    let request = match data {
        Some(data) => body(data)?,
        None => TerminateBody::default(),
    };
    let message = request
        .message
        .unwrap_or_else(|| "This stream was stopped by the server owner.".to_owned());
    if message.chars().count() > 200 {
        return Err(AppError::validation("message", "at most 200 characters"));
    }
    let live = control.terminate(id, &message).await?;
    let details = serde_json::json!({"user": live.session.user.name, "title": live.session.item.title, "server": live.server_name, "message": message});
    audit(db, &caller.0.actor(), "session.terminate", &format!("play:{id}"), details, ip.0).await;
    let persons = db.read(crate::db::persons::refs).await?;
    Ok(Json(TerminatedJson { terminated: true, session: json(&live, &persons) }))
}

/// Polls every server now (the answer comes before the poll finishes).
#[rocket::post("/api/v1/poll")]
pub fn poll(_caller: ApiAdmin, control: &State<Arc<Control>>) -> Status {
    control.poll_now();
    Status::Accepted
}
