//! Radarr, Sonarr and Seerr instances. The API key is sealed; rows never carry it open.

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use crate::error::AppResult;

/// `SecretBox` purpose of the sealed API keys.
pub const API_KEY_PURPOSE: &str = "integrations.api_key";

const COLUMNS: &str =
    "id, kind, name, url, api_key_sealed, enabled, verify_tls, version, created_at, updated_at";
const LIST: &str = "SELECT id, kind, name, url, api_key_sealed, enabled, verify_tls, version, created_at, updated_at \
     FROM integrations ORDER BY kind, name COLLATE NOCASE, id";
const INSERT: &str = "INSERT INTO integrations (kind, name, url, api_key_sealed, enabled, verify_tls, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id";
const UPDATE: &str = "UPDATE integrations SET kind = ?2, name = ?3, url = ?4, api_key_sealed = ?5, enabled = ?6, \
     verify_tls = ?7, updated_at = ?8 WHERE id = ?1";
const DELETE: &str = "DELETE FROM integrations WHERE id = ?1";
const SET_VERSION: &str = "UPDATE integrations SET version = ?2 WHERE id = ?1";
const NAME_TAKEN: &str =
    "SELECT EXISTS (SELECT 1 FROM integrations WHERE name = ?1 COLLATE NOCASE AND id != ?2)";

#[cfg(test)]
pub(crate) fn statements() -> Vec<String> {
    [LIST, INSERT, UPDATE, DELETE, SET_VERSION, NAME_TAKEN]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([format!("SELECT {COLUMNS} FROM integrations WHERE id = ?1")])
        .collect()
}

/// A configured instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationRow {
    pub id: i64,
    /// `radarr`, `sonarr` or `seerr`.
    pub kind: String,
    pub name: String,
    pub url: String,
    pub api_key_sealed: String,
    pub enabled: bool,
    pub verify_tls: bool,
    /// The version its last connection test found.
    pub version: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<IntegrationRow> {
    Ok(IntegrationRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        url: r.get(3)?,
        api_key_sealed: r.get(4)?,
        enabled: r.get(5)?,
        verify_tls: r.get(6)?,
        version: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

/// What is written (checked by the integrations module).
#[derive(Debug, Clone)]
pub struct IntegrationInput {
    pub kind: &'static str,
    pub name: String,
    pub url: String,
    pub api_key_sealed: String,
    pub enabled: bool,
    pub verify_tls: bool,
}

pub fn list(conn: &Connection) -> AppResult<Vec<IntegrationRow>> {
    let rows =
        conn.prepare_cached(LIST)?.query_map([], from_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn get(conn: &Connection, id: i64) -> AppResult<Option<IntegrationRow>> {
    let sql = format!("SELECT {COLUMNS} FROM integrations WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], from_row).optional()?)
}

pub fn name_taken(conn: &Connection, name: &str, except: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(NAME_TAKEN)?.query_row(params![name, except], |r| r.get(0))?)
}

pub fn insert(conn: &Connection, input: &IntegrationInput, now: i64) -> AppResult<i64> {
    Ok(conn.prepare_cached(INSERT)?.query_row(
        params![
            input.kind,
            input.name,
            input.url,
            input.api_key_sealed,
            input.enabled,
            input.verify_tls,
            now
        ],
        |r| r.get(0),
    )?)
}

pub fn update(conn: &Connection, id: i64, input: &IntegrationInput, now: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(UPDATE)?.execute(params![
        id,
        input.kind,
        input.name,
        input.url,
        input.api_key_sealed,
        input.enabled,
        input.verify_tls,
        now
    ])? > 0)
}

pub fn delete(conn: &Connection, id: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(DELETE)?.execute([id])? > 0)
}

pub fn set_version(conn: &Connection, id: i64, version: Option<&str>) -> AppResult<()> {
    conn.prepare_cached(SET_VERSION)?.execute(params![id, version])?;
    Ok(())
}
