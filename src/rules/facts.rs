//! Gathers what the evaluator reads: plays from the database or the live view, the user,
//! their households. The only I/O of the rules engine besides actions.

use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::eval::{PlayFacts, UserFacts};
use crate::error::AppResult;
use crate::geo::Geo;
use crate::media::model::{Decision, MediaType, PlaybackState};
use crate::poller::live::LiveSession;
use crate::poller::tracker::Ms;

const HISTORY: &str = "SELECT p.id, p.user_id, p.server_id, s.name, p.title, p.device_id, p.player, p.product, \
     p.platform, p.ip, p.is_local, p.geo_country, p.geo_city, p.geo_lat, p.geo_lon, p.geo_asn, p.geo_isp, \
     p.media_type, p.library_name, p.library_id, p.source_resolution, p.stream_resolution, p.decision, \
     p.started_at, p.stopped_at, p.paused_ms \
     FROM plays p JOIN servers s ON s.id = p.server_id \
     WHERE p.user_id IN (SELECT value FROM json_each(?1)) AND p.status = 'stopped' AND p.started_at >= ?2 AND p.started_at <= ?3 \
     ORDER BY p.started_at DESC, p.id DESC LIMIT ?4";
const PERIOD: &str = "SELECT p.id, p.user_id, p.server_id, s.name, p.title, p.device_id, p.player, p.product, \
     p.platform, p.ip, p.is_local, p.geo_country, p.geo_city, p.geo_lat, p.geo_lon, p.geo_asn, p.geo_isp, \
     p.media_type, p.library_name, p.library_id, p.source_resolution, p.stream_resolution, p.decision, \
     p.started_at, p.stopped_at, p.paused_ms \
     FROM plays p JOIN servers s ON s.id = p.server_id \
     WHERE p.status != 'pending' AND p.started_at >= ?1 AND p.started_at < ?2 ORDER BY p.started_at, p.id LIMIT ?3";
const USER: &str =
    "SELECT id, name, trust_score, first_seen_at, last_seen_at FROM media_users WHERE id = ?1";
const USERS: &str = "SELECT id, name, trust_score, first_seen_at, last_seen_at FROM media_users";

#[cfg(test)]
pub(crate) fn statements() -> Vec<String> {
    vec![HISTORY.to_owned(), PERIOD.to_owned(), USER.to_owned(), USERS.to_owned()]
}

/// Most history rows one evaluation reads (window counts say when they reach past them).
pub const HISTORY_LIMIT: usize = 5_000;

fn play(r: &Row<'_>) -> rusqlite::Result<PlayFacts> {
    let ip: Option<String> = r.get(9)?;
    let media_type: String = r.get(17)?;
    let decision: String = r.get(22)?;
    let geo = Geo {
        country: r.get(11)?,
        city: r.get(12)?,
        lat: r.get(13)?,
        lon: r.get(14)?,
        asn: r.get(15)?,
        isp: r.get(16)?,
    };
    Ok(PlayFacts {
        play_id: r.get(0)?,
        user_id: r.get(1)?,
        server_id: r.get(2)?,
        server_name: r.get(3)?,
        title: r.get(4)?,
        device_id: r.get(5)?,
        player: r.get(6)?,
        product: r.get(7)?,
        platform: r.get(8)?,
        ip: ip.and_then(|ip| ip.parse().ok()),
        is_local: r.get(10)?,
        in_household: false,
        geo: (geo != Geo::default()).then_some(geo),
        media_type: MediaType::parse(&media_type),
        library: r.get(18)?,
        library_id: r.get(19)?,
        source_resolution: r.get(20)?,
        stream_resolution: r.get(21)?,
        decision: Decision::parse(&decision),
        source_bitrate_kbps: None,
        started_at: r.get(23)?,
        stopped_at: r.get(24)?,
        paused: false,
        paused_ms: r.get(25)?,
        paused_since: None,
    })
}

/// The finished plays of the accounts `user_ids` (a user, or all accounts of their person)
/// that started in `[since, until]`, newest first.
pub fn history(
    conn: &Connection,
    user_ids: &[i64],
    since: Ms,
    until: Ms,
) -> AppResult<Vec<PlayFacts>> {
    let mut stmt = conn.prepare_cached(HISTORY)?;
    let limit = i64::try_from(HISTORY_LIMIT).unwrap_or(i64::MAX);
    let ids = serde_json::to_string(user_ids).unwrap_or_else(|_| "[]".to_owned());
    let rows = stmt.query_map(params![ids, since, until, limit], play)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every confirmed play (finished or live) that started in `[from, to)`, oldest first.
pub fn period(conn: &Connection, from: Ms, to: Ms, limit: i64) -> AppResult<Vec<PlayFacts>> {
    let mut stmt = conn.prepare_cached(PERIOD)?;
    let rows = stmt.query_map(params![from, to, limit], play)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserFacts> {
    Ok(UserFacts {
        id: r.get(0)?,
        name: r.get(1)?,
        trust_score: r.get(2)?,
        first_seen_at: r.get(3)?,
        last_active_at: r.get(4)?,
    })
}

pub fn user(conn: &Connection, id: i64) -> AppResult<Option<UserFacts>> {
    Ok(conn.prepare_cached(USER)?.query_row([id], user_row).optional()?)
}

pub fn users(conn: &Connection) -> AppResult<Vec<UserFacts>> {
    let mut stmt = conn.prepare_cached(USERS)?;
    let rows = stmt.query_map([], user_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks the plays whose address is inside one of `networks`.
pub fn mark_households(plays: &mut [PlayFacts], networks: &[IpNet]) {
    if networks.is_empty() {
        return;
    }
    for p in plays {
        p.in_household =
            p.ip.is_some_and(|ip| networks.iter().any(|n| n.contains(&crate::geo::unmap(ip))));
    }
}

/// A live session as rules see it; `None` until it has a play row and a user.
pub fn from_live(s: &LiveSession) -> Option<PlayFacts> {
    let session = &s.session;
    let stream = &session.stream;
    let paused = session.state == PlaybackState::Paused;
    Some(PlayFacts {
        play_id: s.play_id?,
        user_id: s.user_id?,
        server_id: s.server_id,
        server_name: s.server_name.clone(),
        title: session.item.title.clone(),
        device_id: session.player.device_id.clone(),
        player: session.player.name.clone(),
        product: session.player.product.clone(),
        platform: session.player.platform.clone(),
        ip: session.ip,
        is_local: s.is_local,
        in_household: false,
        geo: s.geo.clone(),
        media_type: session.item.media_type,
        library: session.item.library_name.clone(),
        library_id: session.item.library_id.clone(),
        source_resolution: stream.source_resolution.clone(),
        stream_resolution: stream.stream_resolution.clone(),
        decision: Some(stream.decision),
        source_bitrate_kbps: stream.source_bitrate_kbps,
        started_at: s.started_at,
        stopped_at: None,
        paused,
        paused_ms: s.paused_ms,
        paused_since: s.paused_since,
    })
}

/// Whether a live session counts for rules: confirmed, not fading, written.
pub fn countable(s: &LiveSession) -> bool {
    !s.pending && !s.fading && s.play_id.is_some() && s.user_id.is_some()
}
