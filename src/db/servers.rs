//! Media servers as configured by the admin, with the health the poller records.

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use crate::error::{AppError, AppResult};
use crate::media::model::ServerKind;

const LIST: &str = "SELECT id, name, kind, url, token_sealed, enabled, verify_tls, machine_id, product_name, \
     version, created_at, updated_at, last_ok_at, last_error_at, last_error, consecutive_failures, \
     push_enabled FROM servers WHERE deleted_at IS NULL ORDER BY name COLLATE NOCASE, id";
const GET: &str = "SELECT id, name, kind, url, token_sealed, enabled, verify_tls, machine_id, product_name, \
     version, created_at, updated_at, last_ok_at, last_error_at, last_error, consecutive_failures, \
     push_enabled FROM servers WHERE id = ?1 AND deleted_at IS NULL";
const INSERT: &str = "INSERT INTO servers (name, kind, url, token_sealed, enabled, verify_tls, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id";
const UPDATE: &str = "UPDATE servers SET name = ?2, kind = ?3, url = ?4, token_sealed = ?5, enabled = ?6, \
     verify_tls = ?7, updated_at = ?8 WHERE id = ?1 AND deleted_at IS NULL";
const SOFT_DELETE: &str = "UPDATE servers SET deleted_at = ?2, enabled = 0, updated_at = ?2 WHERE id = ?1 AND deleted_at IS NULL";
const SET_IDENTITY: &str =
    "UPDATE servers SET machine_id = ?2, product_name = ?3, version = ?4 WHERE id = ?1";
const RECORD_OK: &str =
    "UPDATE servers SET last_ok_at = ?2, consecutive_failures = 0 WHERE id = ?1";
const RECORD_ERROR: &str = "UPDATE servers SET last_error_at = ?2, last_error = ?3, consecutive_failures = ?4 WHERE id = ?1";
/// Push is a setting of its own, so that every writer of [`ServerInput`] keeps working;
/// changing it changes `updated_at`, which rebuilds the server's client and follower.
const SET_PUSH: &str = "UPDATE servers SET push_enabled = ?2, updated_at = ?3 \
     WHERE id = ?1 AND deleted_at IS NULL AND push_enabled != ?2";
const NAME_TAKEN: &str = "SELECT EXISTS (SELECT 1 FROM servers WHERE name = ?1 COLLATE NOCASE AND deleted_at IS NULL AND id != ?2)";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[
    LIST,
    GET,
    INSERT,
    UPDATE,
    SOFT_DELETE,
    SET_IDENTITY,
    RECORD_OK,
    RECORD_ERROR,
    SET_PUSH,
    NAME_TAKEN,
];

/// A configured media server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRow {
    pub id: i64,
    pub name: String,
    pub kind: ServerKind,
    pub url: String,
    /// The token, sealed (purpose [`TOKEN_PURPOSE`]).
    pub token_sealed: String,
    pub enabled: bool,
    pub verify_tls: bool,
    pub machine_id: Option<String>,
    pub product_name: Option<String>,
    pub version: Option<String>,
    /// Unix milliseconds, like every time below.
    pub created_at: i64,
    pub updated_at: i64,
    pub last_ok_at: Option<i64>,
    pub last_error_at: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: i64,
    /// Follow the server's own push (event stream or WebSocket) besides polling it.
    pub push_enabled: bool,
}

/// `SecretBox` purpose of server tokens.
pub const TOKEN_PURPOSE: &str = "servers.token";

/// The fields an admin sets.
#[derive(Debug, Clone)]
pub struct ServerInput {
    pub name: String,
    pub kind: ServerKind,
    pub url: String,
    pub token_sealed: String,
    pub enabled: bool,
    pub verify_tls: bool,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<ServerRow> {
    let kind: String = r.get(2)?;
    Ok(ServerRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: ServerKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown server kind {kind}").into(),
            )
        })?,
        url: r.get(3)?,
        token_sealed: r.get(4)?,
        enabled: r.get(5)?,
        verify_tls: r.get(6)?,
        machine_id: r.get(7)?,
        product_name: r.get(8)?,
        version: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        last_ok_at: r.get(12)?,
        last_error_at: r.get(13)?,
        last_error: r.get(14)?,
        consecutive_failures: r.get(15)?,
        push_enabled: r.get(16)?,
    })
}

pub fn list(conn: &Connection) -> AppResult<Vec<ServerRow>> {
    let mut stmt = conn.prepare_cached(LIST)?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn get(conn: &Connection, id: i64) -> AppResult<Option<ServerRow>> {
    Ok(conn.prepare_cached(GET)?.query_row([id], from_row).optional()?)
}

fn ensure_name_free(conn: &Connection, name: &str, except: i64) -> AppResult<()> {
    let taken: bool =
        conn.prepare_cached(NAME_TAKEN)?.query_row(params![name, except], |r| r.get(0))?;
    if taken {
        return Err(AppError::validation(
            "name",
            format!("a server named {name:?} already exists"),
        ));
    }
    Ok(())
}

pub fn insert(conn: &Connection, input: &ServerInput, now: i64) -> AppResult<ServerRow> {
    ensure_name_free(conn, &input.name, 0)?;
    let id: i64 = conn.prepare_cached(INSERT)?.query_row(
        params![
            input.name,
            input.kind.as_str(),
            input.url,
            input.token_sealed,
            input.enabled,
            input.verify_tls,
            now
        ],
        |r| r.get(0),
    )?;
    get(conn, id)?.ok_or_else(|| AppError::internal("inserting a server", "the new row is missing"))
}

pub fn update(
    conn: &Connection,
    id: i64,
    input: &ServerInput,
    now: i64,
) -> AppResult<Option<ServerRow>> {
    ensure_name_free(conn, &input.name, id)?;
    let changed = conn.prepare_cached(UPDATE)?.execute(params![
        id,
        input.name,
        input.kind.as_str(),
        input.url,
        input.token_sealed,
        input.enabled,
        input.verify_tls,
        now
    ])?;
    if changed == 0 { Ok(None) } else { get(conn, id) }
}

/// Turns push on or off; true if it changed.
pub fn set_push_enabled(conn: &Connection, id: i64, enabled: bool, now: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(SET_PUSH)?.execute(params![id, enabled, now])? > 0)
}

/// Hides the server; its history stays (it points at the row).
pub fn soft_delete(conn: &Connection, id: i64, now: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(SOFT_DELETE)?.execute(params![id, now])? > 0)
}

pub fn set_identity(
    conn: &Connection,
    id: i64,
    machine_id: Option<&str>,
    product_name: Option<&str>,
    version: Option<&str>,
) -> AppResult<()> {
    conn.prepare_cached(SET_IDENTITY)?.execute(params![id, machine_id, product_name, version])?;
    Ok(())
}

pub fn record_ok(conn: &Connection, id: i64, at: i64) -> AppResult<()> {
    conn.prepare_cached(RECORD_OK)?.execute(params![id, at])?;
    Ok(())
}

pub fn record_error(
    conn: &Connection,
    id: i64,
    at: i64,
    error: &str,
    failures: i64,
) -> AppResult<()> {
    conn.prepare_cached(RECORD_ERROR)?.execute(params![id, at, error, failures])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn migrated() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("t.db")).unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        (dir, conn)
    }

    fn input(name: &str) -> ServerInput {
        ServerInput {
            name: name.into(),
            kind: ServerKind::Plex,
            url: "http://10.0.0.5:32400".into(),
            token_sealed: "v1.sealed".into(),
            enabled: true,
            verify_tls: true,
        }
    }

    #[test]
    fn crud_with_unique_names_and_soft_delete() {
        let (_d, conn) = migrated();
        let a = insert(&conn, &input("Home Plex"), 1).unwrap();
        assert_eq!((a.name.as_str(), a.kind, a.enabled), ("Home Plex", ServerKind::Plex, true));
        let dup = insert(&conn, &input("home plex"), 2).unwrap_err();
        assert!(matches!(dup, AppError::Validation { ref field, .. } if field == "name"), "{dup}");
        let mut changed = input("Renamed");
        changed.enabled = false;
        let b = update(&conn, a.id, &changed, 3).unwrap().unwrap();
        assert_eq!((b.name.as_str(), b.enabled, b.updated_at), ("Renamed", false, 3));
        assert!(b.push_enabled, "push is on by default");
        assert!(set_push_enabled(&conn, a.id, false, 4).unwrap());
        assert!(!set_push_enabled(&conn, a.id, false, 5).unwrap(), "no change, no new version");
        let quiet = get(&conn, a.id).unwrap().unwrap();
        assert_eq!((quiet.push_enabled, quiet.updated_at), (false, 4));
        record_error(&conn, a.id, 4, "down", 2).unwrap();
        assert_eq!(get(&conn, a.id).unwrap().unwrap().consecutive_failures, 2);
        record_ok(&conn, a.id, 5).unwrap();
        let healthy = get(&conn, a.id).unwrap().unwrap();
        assert_eq!((healthy.consecutive_failures, healthy.last_ok_at), (0, Some(5)));
        assert!(soft_delete(&conn, a.id, 6).unwrap());
        assert!(get(&conn, a.id).unwrap().is_none());
        assert!(list(&conn).unwrap().is_empty());
        // The name is free again once the old server is gone.
        insert(&conn, &input("Renamed"), 7).unwrap();
    }
}
