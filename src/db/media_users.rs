//! Accounts on the media servers (not Streamwarden accounts).

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::persons::PersonRef;
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
     u.first_seen_at, u.last_seen_at, (SELECT count(*) FROM plays p WHERE p.user_id = u.id AND p.status = 'stopped'), \
     u.person_id, (SELECT name FROM persons WHERE id = u.person_id) \
     FROM media_users u JOIN servers s ON s.id = u.server_id WHERE s.deleted_at IS NULL \
     ORDER BY u.name COLLATE NOCASE, s.name";
const GET: &str = "SELECT u.id, u.server_id, s.name, u.external_id, u.name, u.thumb, u.is_admin, u.trust_score, \
     u.first_seen_at, u.last_seen_at, (SELECT count(*) FROM plays p WHERE p.user_id = u.id AND p.status = 'stopped'), \
     u.person_id, (SELECT name FROM persons WHERE id = u.person_id) \
     FROM media_users u JOIN servers s ON s.id = u.server_id WHERE u.id = ?1";

const DEVICES: &str = "SELECT device_id, max(player), max(product), max(platform), count(*), max(started_at) \
     FROM plays WHERE user_id = ?1 AND status = 'stopped' GROUP BY device_id ORDER BY max(started_at) DESC LIMIT 100";
const LOCATIONS: &str = "SELECT ip, max(is_local), max(geo_country), max(geo_city), max(geo_isp), count(*), max(started_at) \
     FROM plays WHERE user_id = ?1 AND status = 'stopped' AND ip IS NOT NULL GROUP BY ip ORDER BY max(started_at) DESC LIMIT 100";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[UPSERT, SYNC, LIST, GET, DEVICES, LOCATIONS];

/// A device a user played from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub device_id: String,
    pub player: Option<String>,
    pub product: Option<String>,
    pub platform: Option<String>,
    pub plays: i64,
    /// Unix milliseconds.
    pub last_seen_at: i64,
}

/// An address a user played from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub ip: String,
    pub is_local: bool,
    pub country: Option<String>,
    pub city: Option<String>,
    pub isp: Option<String>,
    pub plays: i64,
    pub last_seen_at: i64,
}

/// Devices of a user's finished plays, most recent first.
pub fn devices(conn: &Connection, user_id: i64) -> AppResult<Vec<Device>> {
    let mut stmt = conn.prepare_cached(DEVICES)?;
    let rows = stmt.query_map([user_id], |r| {
        Ok(Device {
            device_id: r.get(0)?,
            player: r.get(1)?,
            product: r.get(2)?,
            platform: r.get(3)?,
            plays: r.get(4)?,
            last_seen_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Addresses of a user's finished plays, most recent first.
pub fn locations(conn: &Connection, user_id: i64) -> AppResult<Vec<Location>> {
    let mut stmt = conn.prepare_cached(LOCATIONS)?;
    let rows = stmt.query_map([user_id], |r| {
        Ok(Location {
            ip: r.get(0)?,
            is_local: r.get(1)?,
            country: r.get(2)?,
            city: r.get(3)?,
            isp: r.get(4)?,
            plays: r.get(5)?,
            last_seen_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

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
    /// The person this account belongs to, when an admin linked it.
    pub person: Option<PersonRef>,
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
        person: match (r.get::<_, Option<i64>>(11)?, r.get::<_, Option<String>>(12)?) {
            (Some(id), Some(name)) => Some(PersonRef { id, name }),
            _ => None,
        },
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
