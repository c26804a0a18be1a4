//! Plays: the live set (pending and live rows) and the history (stopped rows).

use std::fmt::Write as _;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension as _, Row, params, params_from_iter};
use serde::Serialize;

use crate::auth::Scope;
use crate::error::{AppError, AppResult};
use crate::geo::Geo;
use crate::media::ServerKind;
use crate::media::model::{
    ActiveSession, Decision, Item, MediaType, PlaybackState, Player, StreamInfo, UserRef,
};
use crate::poller::tracker::{FinishedPlay, LiveEntry, LiveStatus, PlayMeta};

/// Columns written when a play is first stored.
const INSERT: &str = "INSERT INTO plays (server_id, user_id, status, session_id, control_id, item_id, \
     grandparent_item_id, media_type, title, parent_title, grandparent_title, season, episode, year, \
     library_id, library_name, thumb, duration_ms, device_id, player, product, platform, ip, is_local, \
     geo_country, geo_city, geo_lat, geo_lon, geo_asn, geo_isp, decision, video_decision, audio_decision, \
     source_resolution, stream_resolution, bandwidth_kbps, stream, started_at, stopped_at, last_seen_at, \
     state, progress_ms, paused_ms, paused_since, play_ms, watched, reference_id, stop_reason) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
     ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38, ?39, ?40, \
     ?41, ?42, ?43, ?44, ?45, ?46, ?47, ?48) RETURNING id";

/// What changes while a play runs (where it is from stays as it was at the start).
const UPDATE_LIVE: &str = "UPDATE plays SET status = ?2, session_id = ?3, control_id = ?4, decision = ?5, \
     video_decision = ?6, audio_decision = ?7, source_resolution = ?8, stream_resolution = ?9, \
     bandwidth_kbps = ?10, stream = ?11, last_seen_at = ?12, state = ?13, progress_ms = ?14, \
     paused_ms = ?15, paused_since = ?16, duration_ms = coalesce(?17, duration_ms) \
     WHERE id = ?1 AND status != 'stopped'";
const SET_REFERENCE: &str = "UPDATE plays SET reference_id = ?2 WHERE id = ?1";
const FINISH: &str = "UPDATE plays SET status = 'stopped', stopped_at = ?2, last_seen_at = ?3, state = ?4, \
     progress_ms = ?5, paused_ms = ?6, paused_since = NULL, play_ms = ?7, watched = ?8, stop_reason = ?9, \
     decision = ?10, stream_resolution = ?11, stream = ?12 WHERE id = ?1 AND status != 'stopped'";
const DISCARD: &str = "DELETE FROM plays WHERE id = ?1 AND status = 'pending'";
/// The latest unwatched play of the same item by the same user that stopped recently.
const RESUME_REFERENCE: &str = "SELECT coalesce(reference_id, id) FROM plays \
     WHERE user_id = ?1 AND item_id = ?2 AND status = 'stopped' AND watched = 0 AND stopped_at >= ?3 AND id != ?4 \
     ORDER BY stopped_at DESC LIMIT 1";
/// Whether the user has earlier plays, none of them from this device (a user's very first
/// plays are not "new devices": every device is new then).
const NEW_DEVICE: &str = "SELECT EXISTS (SELECT 1 FROM plays WHERE user_id = ?1 AND id != ?2) \
     AND NOT EXISTS (SELECT 1 FROM plays WHERE user_id = ?1 AND device_id = ?3 AND id != ?2)";
const LOAD_LIVE: &str = "SELECT p.id, p.server_id, p.user_id, p.status, p.session_id, p.control_id, p.item_id, \
     p.grandparent_item_id, p.media_type, p.title, p.parent_title, p.grandparent_title, p.season, p.episode, \
     p.year, p.library_id, p.library_name, p.thumb, p.duration_ms, p.device_id, p.player, p.product, \
     p.platform, p.ip, p.is_local, p.stream, p.started_at, p.last_seen_at, p.state, p.progress_ms, \
     p.paused_ms, p.paused_since, u.external_id, u.name, u.thumb, p.geo_country, p.geo_city, \
     p.geo_lat, p.geo_lon, p.geo_asn, p.geo_isp \
     FROM plays p JOIN media_users u ON u.id = p.user_id WHERE p.status != 'stopped' ORDER BY p.id";

/// Columns of a history row, joined with its user and server.
const HISTORY_COLUMNS: &str = "p.id, p.server_id, s.name, s.kind, p.user_id, u.name, p.media_type, p.title, \
     p.parent_title, p.grandparent_title, p.season, p.episode, p.year, p.library_name, p.thumb, \
     p.duration_ms, p.device_id, p.player, p.product, p.platform, p.ip, p.is_local, p.geo_country, \
     p.geo_city, p.geo_lat, p.geo_lon, p.geo_asn, p.geo_isp, p.decision, p.video_decision, \
     p.audio_decision, p.source_resolution, p.stream_resolution, p.bandwidth_kbps, p.stream, \
     p.started_at, p.stopped_at, p.state, p.progress_ms, p.paused_ms, p.play_ms, p.watched, \
     p.reference_id, p.stop_reason, p.item_id, u.person_id, \
     (SELECT name FROM persons WHERE id = u.person_id)";
/// `CROSS JOIN` keeps `plays` the outer loop: SQLite would otherwise sometimes start from
/// the users and sort a whole month of plays instead of walking an index in order.
const HISTORY_FROM: &str = " FROM plays p CROSS JOIN media_users u ON u.id = p.user_id \
     CROSS JOIN servers s ON s.id = p.server_id";

#[cfg(test)]
pub(crate) fn statements() -> Vec<String> {
    let history = format!("SELECT {HISTORY_COLUMNS}{HISTORY_FROM} WHERE p.id = ?1");
    [INSERT, UPDATE_LIVE, SET_REFERENCE, FINISH, DISCARD, RESUME_REFERENCE, NEW_DEVICE, LOAD_LIVE]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([history])
        .collect()
}

fn status_str(status: LiveStatus) -> &'static str {
    match status {
        LiveStatus::Pending => "pending",
        LiveStatus::Live => "live",
    }
}

fn stream_json(stream: &StreamInfo) -> String {
    serde_json::to_string(stream).unwrap_or_else(|_| "{}".to_owned())
}

/// Stores a play that has no row yet (as `finished`, if given); returns its id.
pub fn insert(
    conn: &Connection,
    e: &LiveEntry,
    user_id: i64,
    finished: Option<&FinishedPlay>,
) -> AppResult<i64> {
    let s = &e.session;
    let geo = e.meta.geo.clone().unwrap_or_default();
    let (status, stopped_at, play_ms, watched, reason) = match finished {
        Some(f) => {
            ("stopped", Some(f.stopped_at), Some(f.play_ms), f.watched, Some(f.reason.as_str()))
        }
        None => (status_str(e.status), None, None, false, None),
    };
    let paused_since = if finished.is_some() { None } else { e.paused_since };
    let id = conn.prepare_cached(INSERT)?.query_row(
        params![
            e.server_id,
            user_id,
            status,
            s.session_id,
            s.control_id,
            s.item.id,
            s.item.grandparent_id,
            s.item.media_type.unwrap_or(MediaType::Other).as_str(),
            s.item.title,
            s.item.parent_title,
            s.item.grandparent_title,
            s.item.season,
            s.item.episode,
            s.item.year,
            s.item.library_id,
            s.item.library_name,
            s.item.thumb,
            s.item.duration_ms,
            s.player.device_id,
            s.player.name,
            s.player.product,
            s.player.platform,
            s.ip.map(|ip| ip.to_string()),
            e.meta.is_local,
            geo.country,
            geo.city,
            geo.lat,
            geo.lon,
            geo.asn,
            geo.isp,
            s.stream.decision.as_str(),
            s.stream.video_decision,
            s.stream.audio_decision,
            s.stream.source_resolution,
            s.stream.stream_resolution,
            s.stream.bandwidth_kbps,
            stream_json(&s.stream),
            e.started_at,
            stopped_at,
            e.last_seen_at,
            s.state.as_str(),
            s.progress_ms,
            finished.map_or(e.paused_ms, |f| f.entry.paused_ms),
            paused_since,
            play_ms,
            watched,
            Option::<i64>::None,
            reason,
        ],
        |r| r.get(0),
    )?;
    Ok(id)
}

/// Writes the changing columns of a live play; false if the row is gone or stopped.
pub fn update_live(conn: &Connection, play_id: i64, entry: &LiveEntry) -> AppResult<bool> {
    let s = &entry.session;
    let changed = conn.prepare_cached(UPDATE_LIVE)?.execute(params![
        play_id,
        status_str(entry.status),
        s.session_id,
        s.control_id,
        s.stream.decision.as_str(),
        s.stream.video_decision,
        s.stream.audio_decision,
        s.stream.source_resolution,
        s.stream.stream_resolution,
        s.stream.bandwidth_kbps,
        stream_json(&s.stream),
        entry.last_seen_at,
        s.state.as_str(),
        s.progress_ms,
        entry.paused_ms,
        entry.paused_since,
        s.item.duration_ms,
    ])?;
    Ok(changed > 0)
}

/// Links a confirmed play to the chain of an earlier, unfinished play of the same item.
pub fn link_resume(
    conn: &Connection,
    play_id: i64,
    user_id: i64,
    item_id: &str,
    since: i64,
) -> AppResult<Option<i64>> {
    let reference: Option<i64> = conn
        .prepare_cached(RESUME_REFERENCE)?
        .query_row(params![user_id, item_id, since, play_id], |r| r.get(0))
        .optional()?;
    if let Some(reference) = reference {
        conn.prepare_cached(SET_REFERENCE)?.execute(params![play_id, reference])?;
    }
    Ok(reference)
}

/// True when `device_id` is new for a user who has played before (see [`NEW_DEVICE`]).
pub fn is_new_device(
    conn: &Connection,
    play_id: i64,
    user_id: i64,
    device_id: &str,
) -> AppResult<bool> {
    Ok(conn
        .prepare_cached(NEW_DEVICE)?
        .query_row(params![user_id, play_id, device_id], |r| r.get(0))?)
}

/// Closes a play; inserts it whole if it was never written (a database outage while it
/// ran must not lose it). Returns its id.
pub fn finish(conn: &Connection, finished: &FinishedPlay, user_id: i64) -> AppResult<i64> {
    let e = &finished.entry;
    let s = &e.session;
    if let Some(id) = e.play_id {
        let changed = conn.prepare_cached(FINISH)?.execute(params![
            id,
            finished.stopped_at,
            e.last_seen_at,
            s.state.as_str(),
            s.progress_ms,
            e.paused_ms,
            finished.play_ms,
            finished.watched,
            finished.reason.as_str(),
            s.stream.decision.as_str(),
            s.stream.stream_resolution,
            stream_json(&s.stream),
        ])?;
        if changed > 0 {
            return Ok(id);
        }
        // Already stopped (a retried write): nothing to do.
        let exists: bool =
            conn.query_row("SELECT EXISTS (SELECT 1 FROM plays WHERE id = ?1)", [id], |r| {
                r.get(0)
            })?;
        if exists {
            return Ok(id);
        }
    }
    insert(conn, e, user_id, Some(finished))
}

/// Forgets a pending play that never counted.
pub fn discard(conn: &Connection, play_id: i64) -> AppResult<()> {
    conn.prepare_cached(DISCARD)?.execute([play_id])?;
    Ok(())
}

/// The pending and live plays of an earlier run, their facts attached.
pub fn load_live(conn: &Connection) -> AppResult<Vec<LiveEntry>> {
    let mut stmt = conn.prepare_cached(LOAD_LIVE)?;
    let rows = stmt.query_map([], |r| {
        let status: String = r.get(3)?;
        let media_type: String = r.get(8)?;
        let stream: Option<String> = r.get(25)?;
        let state: String = r.get(28)?;
        let ip: Option<String> = r.get(23)?;
        let session = ActiveSession {
            session_id: r.get(4)?,
            control_id: r.get(5)?,
            user: UserRef { external_id: r.get(32)?, name: r.get(33)?, thumb: r.get(34)? },
            item: Item {
                id: r.get(6)?,
                grandparent_id: r.get(7)?,
                media_type: MediaType::parse(&media_type),
                title: r.get(9)?,
                parent_title: r.get(10)?,
                grandparent_title: r.get(11)?,
                season: r.get(12)?,
                episode: r.get(13)?,
                year: r.get(14)?,
                library_id: r.get(15)?,
                library_name: r.get(16)?,
                thumb: r.get(17)?,
                duration_ms: r.get(18)?,
            },
            player: Player {
                device_id: r.get(19)?,
                name: r.get(20)?,
                product: r.get(21)?,
                platform: r.get(22)?,
                version: None,
            },
            ip: ip.and_then(|ip| ip.parse().ok()),
            server_says_local: false,
            state: PlaybackState::parse(&state).unwrap_or(PlaybackState::Playing),
            progress_ms: r.get(29)?,
            stream: stream.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default(),
            can_control: true,
        };
        let country: Option<String> = r.get(35)?;
        let geo = Geo {
            country,
            city: r.get(36)?,
            lat: r.get(37)?,
            lon: r.get(38)?,
            asn: r.get(39)?,
            isp: r.get(40)?,
        };
        let last_seen_at: i64 = r.get(27)?;
        Ok(LiveEntry {
            play_id: Some(r.get(0)?),
            server_id: r.get(1)?,
            session,
            status: if status == "live" { LiveStatus::Live } else { LiveStatus::Pending },
            started_at: r.get(26)?,
            last_seen_at,
            paused_ms: r.get(30)?,
            paused_since: r.get(31)?,
            missing_polls: 0,
            meta: PlayMeta {
                user_id: Some(r.get(2)?),
                is_local: r.get(24)?,
                geo: (geo != Geo::default()).then_some(geo),
                dirty: false,
                needs_resume_link: false,
                flushed_at: last_seen_at,
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One finished play as the history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub id: i64,
    pub server_id: i64,
    pub server_name: String,
    pub server_kind: ServerKind,
    pub user_id: i64,
    pub user_name: String,
    pub media_type: String,
    pub title: String,
    pub parent_title: Option<String>,
    pub grandparent_title: Option<String>,
    pub season: Option<i64>,
    pub episode: Option<i64>,
    pub year: Option<i64>,
    pub library_name: Option<String>,
    pub thumb: Option<String>,
    pub duration_ms: Option<i64>,
    pub device_id: String,
    pub player: Option<String>,
    pub product: Option<String>,
    pub platform: Option<String>,
    pub ip: Option<String>,
    pub is_local: bool,
    pub geo: Geo,
    pub decision: String,
    pub video_decision: Option<String>,
    pub audio_decision: Option<String>,
    pub source_resolution: Option<String>,
    pub stream_resolution: Option<String>,
    pub bandwidth_kbps: Option<i64>,
    pub stream: StreamInfo,
    pub started_at: i64,
    pub stopped_at: Option<i64>,
    pub state: String,
    pub progress_ms: Option<i64>,
    pub paused_ms: i64,
    pub play_ms: Option<i64>,
    pub watched: bool,
    pub reference_id: Option<i64>,
    pub stop_reason: Option<String>,
    pub item_id: String,
    /// The person the account is linked to.
    pub person: Option<super::persons::PersonRef>,
}

impl HistoryRow {
    pub fn decision(&self) -> Decision {
        Decision::parse(&self.decision).unwrap_or(Decision::DirectPlay)
    }

    /// "Show · S01E03 · Title" or "Title (2010)".
    pub fn full_title(&self) -> String {
        crate::web::format::full_title(
            &self.title,
            self.grandparent_title.as_deref(),
            self.season,
            self.episode,
            self.year,
            &self.media_type,
        )
    }
}

fn history_row(r: &Row<'_>) -> rusqlite::Result<HistoryRow> {
    let kind: String = r.get(3)?;
    let stream: Option<String> = r.get(34)?;
    Ok(HistoryRow {
        id: r.get(0)?,
        server_id: r.get(1)?,
        server_name: r.get(2)?,
        server_kind: ServerKind::parse(&kind).unwrap_or(ServerKind::Plex),
        user_id: r.get(4)?,
        user_name: r.get(5)?,
        media_type: r.get(6)?,
        title: r.get(7)?,
        parent_title: r.get(8)?,
        grandparent_title: r.get(9)?,
        season: r.get(10)?,
        episode: r.get(11)?,
        year: r.get(12)?,
        library_name: r.get(13)?,
        thumb: r.get(14)?,
        duration_ms: r.get(15)?,
        device_id: r.get(16)?,
        player: r.get(17)?,
        product: r.get(18)?,
        platform: r.get(19)?,
        ip: r.get(20)?,
        is_local: r.get(21)?,
        geo: Geo {
            country: r.get(22)?,
            city: r.get(23)?,
            lat: r.get(24)?,
            lon: r.get(25)?,
            asn: r.get(26)?,
            isp: r.get(27)?,
        },
        decision: r.get(28)?,
        video_decision: r.get(29)?,
        audio_decision: r.get(30)?,
        source_resolution: r.get(31)?,
        stream_resolution: r.get(32)?,
        bandwidth_kbps: r.get(33)?,
        stream: stream.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default(),
        started_at: r.get(35)?,
        stopped_at: r.get(36)?,
        state: r.get(37)?,
        progress_ms: r.get(38)?,
        paused_ms: r.get(39)?,
        play_ms: r.get(40)?,
        watched: r.get(41)?,
        reference_id: r.get(42)?,
        stop_reason: r.get(43)?,
        item_id: r.get(44)?,
        person: match (r.get::<_, Option<i64>>(45)?, r.get::<_, Option<String>>(46)?) {
            (Some(id), Some(name)) => Some(super::persons::PersonRef { id, name }),
            _ => None,
        },
    })
}

/// A finished play by id (any status, so a detail page can show a live one too).
pub fn get(conn: &Connection, id: i64) -> AppResult<Option<HistoryRow>> {
    let sql = format!("SELECT {HISTORY_COLUMNS}{HISTORY_FROM} WHERE p.id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], history_row).optional()?)
}

/// The other plays of a resume chain, oldest first.
pub fn chain(conn: &Connection, reference_id: i64) -> AppResult<Vec<HistoryRow>> {
    let sql = format!(
        "SELECT {HISTORY_COLUMNS}{HISTORY_FROM} WHERE (p.id = ?1 OR p.reference_id = ?1) AND p.status = 'stopped' ORDER BY p.started_at, p.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([reference_id], history_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Where a history page starts: after the play at `(started_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub started_at: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(self) -> String {
        format!("{}.{}", self.started_at, self.id)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (at, id) = raw.split_once('.')?;
        Some(Self { started_at: at.parse().ok()?, id: id.parse().ok()? })
    }
}

/// Filters of the history (every one optional).
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub user_id: Option<i64>,
    pub server_id: Option<i64>,
    pub media_type: Option<MediaType>,
    /// Started at or after, Unix milliseconds.
    pub from: Option<i64>,
    /// Started before, Unix milliseconds.
    pub to: Option<i64>,
    /// Title search: every word must start a word of the title or the show's title.
    pub q: Option<String>,
    /// Exactly this platform (`Roku`), player name, client address or country (ISO code).
    pub platform: Option<String>,
    pub player: Option<String>,
    pub ip: Option<String>,
    pub country: Option<String>,
    /// `direct_play`, `direct_stream` or `transcode`.
    pub decision: Option<String>,
    /// Watched (85 %) or not.
    pub watched: Option<bool>,
}

/// One page of history.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub items: Vec<HistoryRow>,
    pub next: Option<Cursor>,
}

/// Turns what a user typed into an FTS5 query: each word a quoted prefix, all required.
fn fts_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The SQL of a history page and its arguments (`None`: the scope sees nothing). Only the
/// filters in use reach the SQL, so the planner can pick the index made for them.
pub fn history_query(
    filter: &HistoryFilter,
    scope: Scope,
    after: Option<Cursor>,
    limit: u32,
) -> Option<(String, Vec<Value>)> {
    let mut sql = format!("SELECT {HISTORY_COLUMNS}{HISTORY_FROM} WHERE p.status = 'stopped'");
    let mut args: Vec<Value> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: Value| {
        args.push(value);
        let _ = write!(sql, " AND {}", clause.replace('?', &format!("?{}", args.len())));
    };
    match scope {
        Scope::All => {}
        Scope::MediaUser(id) => arg(&mut sql, "p.user_id = ?", id.into()),
        Scope::Nothing => return None,
    }
    if let Some(id) = filter.user_id {
        arg(&mut sql, "p.user_id = ?", id.into());
    }
    if let Some(id) = filter.server_id {
        arg(&mut sql, "p.server_id = ?", id.into());
    }
    if let Some(kind) = filter.media_type {
        arg(&mut sql, "p.media_type = ?", kind.as_str().to_owned().into());
    }
    if let Some(from) = filter.from {
        arg(&mut sql, "p.started_at >= ?", from.into());
    }
    if let Some(to) = filter.to {
        arg(&mut sql, "p.started_at < ?", to.into());
    }
    for (column, value) in [
        ("p.platform", &filter.platform),
        ("p.player", &filter.player),
        ("p.ip", &filter.ip),
        ("p.geo_country", &filter.country),
        ("p.decision", &filter.decision),
    ] {
        if let Some(v) = value {
            arg(&mut sql, &format!("{column} = ? COLLATE NOCASE"), v.clone().into());
        }
    }
    if let Some(w) = filter.watched {
        arg(&mut sql, "p.watched = ?", i64::from(w).into());
    }
    if let Some(q) = filter.q.as_deref().and_then(fts_query) {
        // `+p.id`: walk the history index in order and look each play up in the matches,
        // rather than fetch every match and sort them (a common word matches thousands).
        arg(&mut sql, "+p.id IN (SELECT rowid FROM plays_fts WHERE plays_fts MATCH ?)", q.into());
    }
    if let Some(c) = after {
        args.push(c.started_at.into());
        args.push(c.id.into());
        let (a, b) = (args.len() - 1, args.len());
        let _ = write!(sql, " AND (p.started_at, p.id) < (?{a}, ?{b})");
    }
    // One more than asked, to know whether there is a next page.
    let _ = write!(sql, " ORDER BY p.started_at DESC, p.id DESC LIMIT {}", limit + 1);
    Some((sql, args))
}

/// A page of finished plays, newest first.
pub fn history(
    conn: &Connection,
    filter: &HistoryFilter,
    scope: Scope,
    after: Option<Cursor>,
    limit: u32,
) -> AppResult<HistoryPage> {
    let limit = limit.clamp(1, 500);
    let Some((sql, args)) = history_query(filter, scope, after, limit) else {
        return Ok(HistoryPage { items: Vec::new(), next: None });
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut items: Vec<HistoryRow> = stmt
        .query_map(params_from_iter(args), history_row)?
        .collect::<Result<_, _>>()
        .map_err(|e| AppError::internal("reading history", e))?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|r| Cursor { started_at: r.started_at, id: r.id })
    } else {
        None
    };
    Ok(HistoryPage { items, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{media_users, servers};
    use crate::media::model::UserRef;
    use crate::poller::tracker::StopReason;

    fn setup() -> (tempfile::TempDir, Connection, i64, i64) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("p.db")).unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        let server = servers::insert(
            &conn,
            &servers::ServerInput {
                name: "Plex".into(),
                kind: ServerKind::Plex,
                url: "http://x".into(),
                token_sealed: "t".into(),
                enabled: true,
                verify_tls: true,
            },
            0,
        )
        .unwrap();
        let user = UserRef { external_id: "1".into(), name: "alice".into(), thumb: None };
        let user_id = media_users::upsert_from_session(&conn, server.id, &user, 0).unwrap();
        (dir, conn, server.id, user_id)
    }

    fn entry(server_id: i64, item: &str, started_at: i64) -> LiveEntry {
        LiveEntry {
            play_id: None,
            server_id,
            session: ActiveSession {
                session_id: "s1".into(),
                control_id: Some("c1".into()),
                user: UserRef { external_id: "1".into(), name: "alice".into(), thumb: None },
                item: Item {
                    id: item.into(),
                    title: format!("Title {item}"),
                    media_type: Some(MediaType::Movie),
                    duration_ms: Some(100_000),
                    ..Item::default()
                },
                player: Player { device_id: "tv".into(), ..Player::default() },
                ip: Some("81.2.69.142".parse().unwrap()),
                server_says_local: false,
                state: PlaybackState::Playing,
                progress_ms: Some(10_000),
                stream: StreamInfo::default(),
                can_control: true,
            },
            status: LiveStatus::Pending,
            started_at,
            last_seen_at: started_at,
            paused_ms: 0,
            paused_since: None,
            missing_polls: 0,
            meta: PlayMeta::default(),
        }
    }

    #[test]
    fn a_play_goes_pending_live_stopped_and_restores_in_between() {
        let (_d, conn, server_id, user_id) = setup();
        let mut e = entry(server_id, "m1", 1_000);
        let id = insert(&conn, &e, user_id, None).unwrap();
        e.play_id = Some(id);
        e.status = LiveStatus::Live;
        e.session.progress_ms = Some(50_000);
        e.last_seen_at = 40_000;
        assert!(update_live(&conn, id, &e).unwrap());

        let restored = load_live(&conn).unwrap();
        assert_eq!(restored.len(), 1);
        e.meta = PlayMeta { user_id: Some(user_id), flushed_at: 40_000, ..PlayMeta::default() };
        assert_eq!(restored[0], e, "everything the tracker needs survives a restart");

        let finished = FinishedPlay {
            entry: e.clone(),
            stopped_at: 40_000,
            reason: StopReason::Stopped,
            play_ms: 39_000,
            watched: false,
        };
        assert_eq!(finish(&conn, &finished, user_id).unwrap(), id);
        assert_eq!(finish(&conn, &finished, user_id).unwrap(), id, "a retried finish is harmless");
        assert!(load_live(&conn).unwrap().is_empty());
        let page = history(&conn, &HistoryFilter::default(), Scope::All, None, 10).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(
            (page.items[0].play_ms, page.items[0].stop_reason.as_deref()),
            (Some(39_000), Some("stopped"))
        );
        assert_eq!(page.items[0].ip.as_deref(), Some("81.2.69.142"));
    }

    #[test]
    fn a_play_never_written_is_inserted_whole_when_it_finishes_and_pending_ones_vanish() {
        let (_d, conn, server_id, user_id) = setup();
        let mut e = entry(server_id, "m1", 1_000);
        e.status = LiveStatus::Live;
        let finished = FinishedPlay {
            entry: e,
            stopped_at: 9_000,
            reason: StopReason::ServerLost,
            play_ms: 8_000,
            watched: true,
        };
        let id = finish(&conn, &finished, user_id).unwrap();
        let row = get(&conn, id).unwrap().unwrap();
        assert_eq!(
            (row.stopped_at, row.watched, row.stop_reason.as_deref()),
            (Some(9_000), true, Some("server_lost"))
        );

        let pending = entry(server_id, "m2", 2_000);
        let pid = insert(&conn, &pending, user_id, None).unwrap();
        discard(&conn, pid).unwrap();
        assert!(get(&conn, pid).unwrap().is_none());
        // A finished play is never discarded.
        discard(&conn, id).unwrap();
        assert!(get(&conn, id).unwrap().is_some());
    }

    #[test]
    fn resumes_chain_to_the_first_unwatched_play() {
        let (_d, conn, server_id, user_id) = setup();
        let mut ids = Vec::new();
        for start in [1_000, 10_000, 20_000] {
            let mut e = entry(server_id, "m1", start);
            e.status = LiveStatus::Live;
            let id = insert(&conn, &e, user_id, None).unwrap();
            // The window reaches back 9 s: each play is within it of the previous stop.
            let reference = link_resume(&conn, id, user_id, "m1", start - 9_000).unwrap();
            e.play_id = Some(id);
            let finished = FinishedPlay {
                entry: e,
                stopped_at: start + 2_000,
                reason: StopReason::Stopped,
                play_ms: 2_000,
                watched: false,
            };
            finish(&conn, &finished, user_id).unwrap();
            ids.push((id, reference));
        }
        assert_eq!(ids[0].1, None);
        assert_eq!(ids[1].1, Some(ids[0].0));
        assert_eq!(ids[2].1, Some(ids[0].0), "the chain keeps its first play");
        assert_eq!(chain(&conn, ids[0].0).unwrap().len(), 3);
        // Outside the window: a new chain.
        let mut e = entry(server_id, "m1", 100_000);
        e.status = LiveStatus::Live;
        let id = insert(&conn, &e, user_id, None).unwrap();
        assert_eq!(link_resume(&conn, id, user_id, "m1", 90_000).unwrap(), None);
    }

    #[test]
    fn history_filters_search_scope_and_cursor_paging() {
        let (_d, conn, server_id, user_id) = setup();
        let bob = media_users::upsert_from_session(
            &conn,
            server_id,
            &UserRef { external_id: "2".into(), name: "bob".into(), thumb: None },
            0,
        )
        .unwrap();
        for i in 0..25_i64 {
            let mut e = entry(server_id, &format!("m{i}"), 1_000 * (i + 1));
            e.status = LiveStatus::Live;
            e.session.item.title =
                if i % 5 == 0 { format!("Star Wars {i}") } else { format!("Other {i}") };
            e.session.item.media_type =
                Some(if i % 2 == 0 { MediaType::Movie } else { MediaType::Episode });
            let who = if i < 20 { user_id } else { bob };
            let finished = FinishedPlay {
                entry: e,
                stopped_at: 1_000 * (i + 1) + 500,
                reason: StopReason::Stopped,
                play_ms: 500,
                watched: false,
            };
            finish(&conn, &finished, who).unwrap();
        }
        let all = |f: &HistoryFilter, scope| {
            let mut out = Vec::new();
            let mut after = None;
            loop {
                let page = history(&conn, f, scope, after, 7).unwrap();
                out.extend(page.items.iter().map(|r| r.title.clone()));
                match page.next {
                    Some(c) => after = Some(c),
                    None => break out,
                }
            }
        };
        let everything = all(&HistoryFilter::default(), Scope::All);
        assert_eq!(everything.len(), 25, "paging visits every row once");
        assert_eq!(everything[0], "Other 24", "newest first");
        let star = all(
            &HistoryFilter { q: Some("sta WARS".into()), ..HistoryFilter::default() },
            Scope::All,
        );
        assert_eq!(
            star,
            ["Star Wars 20", "Star Wars 15", "Star Wars 10", "Star Wars 5", "Star Wars 0"]
        );
        assert_eq!(
            all(&HistoryFilter { user_id: Some(bob), ..HistoryFilter::default() }, Scope::All)
                .len(),
            5
        );
        assert_eq!(
            all(
                &HistoryFilter { media_type: Some(MediaType::Movie), ..HistoryFilter::default() },
                Scope::All
            )
            .len(),
            13
        );
        assert_eq!(
            all(
                &HistoryFilter { from: Some(10_000), to: Some(15_000), ..HistoryFilter::default() },
                Scope::All
            )
            .len(),
            5
        );
        assert_eq!(
            all(&HistoryFilter::default(), Scope::MediaUser(bob)).len(),
            5,
            "a viewer sees only their plays"
        );
        assert!(all(&HistoryFilter::default(), Scope::Nothing).is_empty());
        assert!(
            all(&HistoryFilter { q: Some("\"*)(".into()), ..HistoryFilter::default() }, Scope::All)
                .len()
                == 25,
            "punctuation only: no search"
        );
        assert_eq!(Cursor::decode("12.34"), Some(Cursor { started_at: 12, id: 34 }));
        assert_eq!(Cursor::decode("x"), None);
    }
}
