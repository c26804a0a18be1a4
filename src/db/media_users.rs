//! Accounts on the media servers (not Streamwarden accounts).

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use crate::error::AppResult;
use crate::media::ServerUser;
use crate::media::model::UserRef;

const UPSERT: &str = "INSERT INTO media_users (server_id, external_id, name, thumb, first_seen_at, last_seen_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?5) \
     ON CONFLICT (server_id, external_id) DO UPDATE SET name = excluded.name, \
       thumb = coalesce(excluded.thumb, thumb), last_seen_at = excluded.last_seen_at \
     RETURNING id";
const SYNC: &str = "INSERT INTO media_users (server_id, external_id, name, is_admin, first_seen_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (server_id, external_id) DO UPDATE SET name = excluded.name, is_admin = excluded.is_admin";
const LIST: &str = "SELECT u.id, u.server_id, s.name, u.external_id, u.name, u.thumb, u.is_admin, u.trust_score, \
     u.first_seen_at, u.last_seen_at, (SELECT count(*) FROM plays p WHERE p.user_id = u.id AND p.status = 'stopped') \
     FROM media_users u JOIN servers s ON s.id = u.server_id WHERE s.deleted_at IS NULL \
     ORDER BY u.name COLLATE NOCASE, s.name";
const GET: &str = "SELECT u.id, u.server_id, s.name, u.external_id, u.name, u.thumb, u.is_admin, u.trust_score, \
     u.first_seen_at, u.last_seen_at, (SELECT count(*) FROM plays p WHERE p.user_id = u.id AND p.status = 'stopped') \
     FROM media_users u JOIN servers s ON s.id = u.server_id WHERE u.id = ?1";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[UPSERT, SYNC, LIST, GET];

/// A media server account with a few facts about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaUserRow {
    pub id: i64,
    pub server_id: i64,
    pub server_name: String,
    pub external_id: String,
    pub name: String,
    pub thumb: Option<String>,
    pub is_admin: bool,
    pub trust_score: i64,
    pub first_seen_at: i64,
    /// Last time they streamed.
    pub last_seen_at: Option<i64>,
    /// Finished plays.
    pub plays: i64,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<MediaUserRow> {
    Ok(MediaUserRow {
        id: r.get(0)?,
        server_id: r.get(1)?,
        server_name: r.get(2)?,
        external_id: r.get(3)?,
        name: r.get(4)?,
        thumb: r.get(5)?,
        is_admin: r.get(6)?,
        trust_score: r.get(7)?,
        first_seen_at: r.get(8)?,
        last_seen_at: r.get(9)?,
        plays: r.get(10)?,
    })
}

/// The id of the user a session belongs to, created on first sight.
pub fn upsert_from_session(
    conn: &Connection,
    server_id: i64,
    user: &UserRef,
    now: i64,
) -> AppResult<i64> {
    Ok(conn
        .prepare_cached(UPSERT)?
        .query_row(params![server_id, user.external_id, user.name, user.thumb, now], |r| {
            r.get(0)
        })?)
}

/// Records the accounts a server lists (names and admin flags stay current).
pub fn sync(conn: &Connection, server_id: i64, users: &[ServerUser], now: i64) -> AppResult<()> {
    let mut stmt = conn.prepare_cached(SYNC)?;
    for user in users {
        stmt.execute(params![server_id, user.external_id, user.name, user.is_admin, now])?;
    }
    Ok(())
}

pub fn list(conn: &Connection) -> AppResult<Vec<MediaUserRow>> {
    let mut stmt = conn.prepare_cached(LIST)?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn get(conn: &Connection, id: i64) -> AppResult<Option<MediaUserRow>> {
    Ok(conn.prepare_cached(GET)?.query_row([id], from_row).optional()?)
}
