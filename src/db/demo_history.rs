//! The demo's generated history (`sim::demo::seed_history`): finished plays written as an
//! import would write them.

use rusqlite::Connection;

use crate::error::AppResult;

const HAS_HISTORY: &str = "SELECT EXISTS (SELECT 1 FROM plays WHERE status = 'stopped')";

/// One finished play: started at ?30, stopped at ?31 after ?32 ms watched.
pub const INSERT: &str = "INSERT INTO plays (server_id, user_id, status, session_id, item_id, grandparent_item_id, \
     media_type, title, grandparent_title, season, episode, year, library_name, duration_ms, device_id, player, \
     product, platform, ip, is_local, geo_country, geo_city, geo_lat, geo_lon, geo_asn, geo_isp, decision, \
     source_resolution, stream_resolution, bandwidth_kbps, started_at, stopped_at, last_seen_at, state, \
     progress_ms, play_ms, watched, stop_reason) \
     VALUES (?1, ?2, 'stopped', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
     ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?31, 'playing', ?32, ?32, ?33, 'demo history')";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[HAS_HISTORY, INSERT];

/// Whether any play has finished yet.
pub fn has_history(conn: &Connection) -> AppResult<bool> {
    Ok(conn.prepare_cached(HAS_HISTORY)?.query_row([], |r| r.get(0))?)
}
