//! API keys: named, scoped, stored as SHA-256 only.

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::error::{AppError, AppResult};

const INSERT: &str = "INSERT INTO api_keys (name, key_hash, prefix, scope, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const BY_HASH: &str = "SELECT id, name, prefix, scope, created_by, created_at, last_used_at, revoked_at FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL";
const ACTIVE: &str = "SELECT id, name, prefix, scope, created_by, created_at, last_used_at, revoked_at FROM api_keys WHERE revoked_at IS NULL ORDER BY name COLLATE NOCASE";
const BY_ID: &str = "SELECT id, name, prefix, scope, created_by, created_at, last_used_at, revoked_at FROM api_keys WHERE id = ?1";
const TOUCH: &str = "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1";
const REVOKE: &str = "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[INSERT, BY_HASH, ACTIVE, BY_ID, TOUCH, REVOKE];

/// A stored API key (never the key itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    /// `read` or `admin`.
    pub scope: String,
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    pub fn is_admin(&self) -> bool {
        self.scope == "admin"
    }
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        name: r.get(1)?,
        prefix: r.get(2)?,
        scope: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

pub fn insert(
    conn: &Connection,
    name: &str,
    key_hash: &str,
    prefix: &str,
    admin: bool,
    created_by: &str,
) -> AppResult<i64> {
    let scope = if admin { "admin" } else { "read" };
    let result = conn.prepare_cached(INSERT)?.execute(params![
        name,
        key_hash,
        prefix,
        scope,
        created_by,
        crate::time::now_ms()
    ]);
    match result {
        Ok(_) => Ok(conn.last_insert_rowid()),
        Err(e) if super::accounts::is_unique_violation(&e) => {
            Err(AppError::Conflict(format!("An API key named {name} already exists.")))
        }
        Err(e) => Err(e.into()),
    }
}

/// The active key with this hash.
pub fn by_hash(conn: &Connection, key_hash: &str) -> AppResult<Option<ApiKey>> {
    Ok(conn.prepare_cached(BY_HASH)?.query_row([key_hash], from_row).optional()?)
}

pub fn by_id(conn: &Connection, id: i64) -> AppResult<Option<ApiKey>> {
    Ok(conn.prepare_cached(BY_ID)?.query_row([id], from_row).optional()?)
}

/// Keys that are not revoked, by name.
pub fn active(conn: &Connection) -> AppResult<Vec<ApiKey>> {
    let mut stmt = conn.prepare_cached(ACTIVE)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn touch(conn: &Connection, id: i64, at: i64) -> AppResult<()> {
    conn.prepare_cached(TOUCH)?.execute(params![id, at])?;
    Ok(())
}

/// Revokes a key; false if it did not exist or was already revoked.
pub fn revoke(conn: &Connection, id: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(REVOKE)?.execute(params![id, crate::time::now_ms()])? == 1)
}
