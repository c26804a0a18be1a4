//! Server-side sessions of signed-in accounts. Only the SHA-256 of a session token is stored.

use rusqlite::{Connection, OptionalExtension as _, params};

use super::accounts::{self, Account};
use crate::error::AppResult;

const INSERT: &str = "INSERT INTO sessions (token_hash, account_id, csrf_token, method, created_at, last_seen_at, expires_at, ip, user_agent, id_token_sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9)";
const LOOKUP: &str = "SELECT s.id, s.account_id, s.csrf_token, s.method, s.created_at, s.last_seen_at, s.expires_at, s.id_token_sealed FROM sessions s WHERE s.token_hash = ?1";
const TOUCH: &str = "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1";
const DELETE: &str = "DELETE FROM sessions WHERE id = ?1";
const DELETE_FOR_ACCOUNT: &str = "DELETE FROM sessions WHERE account_id = ?1";
const DELETE_OTHERS: &str = "DELETE FROM sessions WHERE account_id = ?1 AND id != ?2";
const DELETE_EXPIRED: &str = "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2";
const FOR_ACCOUNT: &str = "SELECT id, method, created_at, last_seen_at, ip, user_agent FROM sessions WHERE account_id = ?1 ORDER BY last_seen_at DESC";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[
    INSERT,
    LOOKUP,
    TOUCH,
    DELETE,
    DELETE_FOR_ACCOUNT,
    DELETE_OTHERS,
    DELETE_EXPIRED,
    FOR_ACCOUNT,
];

/// A session row.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: i64,
    pub account_id: i64,
    pub csrf_token: String,
    /// `password`, `oidc`, `demo` or `setup`.
    pub method: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub id_token_sealed: Option<String>,
}

/// A new session to insert.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub account_id: i64,
    pub csrf_token: &'a str,
    pub method: &'a str,
    pub expires_at: i64,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub id_token_sealed: Option<&'a str>,
}

/// A session as listed on the account page.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: i64,
    pub method: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub fn insert(conn: &Connection, new: &NewSession<'_>) -> AppResult<i64> {
    conn.prepare_cached(INSERT)?.execute(params![
        new.token_hash,
        new.account_id,
        new.csrf_token,
        new.method,
        crate::time::now_ms(),
        new.expires_at,
        new.ip,
        new.user_agent,
        new.id_token_sealed,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// The session with this token hash and its account.
pub fn lookup(conn: &Connection, token_hash: &str) -> AppResult<Option<(SessionRow, Account)>> {
    let row = conn
        .prepare_cached(LOOKUP)?
        .query_row([token_hash], |r| {
            Ok(SessionRow {
                id: r.get(0)?,
                account_id: r.get(1)?,
                csrf_token: r.get(2)?,
                method: r.get(3)?,
                created_at: r.get(4)?,
                last_seen_at: r.get(5)?,
                expires_at: r.get(6)?,
                id_token_sealed: r.get(7)?,
            })
        })
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    Ok(accounts::by_id(conn, row.account_id)?.map(|account| (row, account)))
}

pub fn touch(conn: &Connection, id: i64, at: i64) -> AppResult<()> {
    conn.prepare_cached(TOUCH)?.execute(params![id, at])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> AppResult<()> {
    conn.prepare_cached(DELETE)?.execute([id])?;
    Ok(())
}

/// Ends every session of an account; returns how many there were.
pub fn delete_for_account(conn: &Connection, account_id: i64) -> AppResult<usize> {
    Ok(conn.prepare_cached(DELETE_FOR_ACCOUNT)?.execute([account_id])?)
}

/// Ends every session of an account but `keep`.
pub fn delete_others(conn: &Connection, account_id: i64, keep: i64) -> AppResult<usize> {
    Ok(conn.prepare_cached(DELETE_OTHERS)?.execute([account_id, keep])?)
}

/// Deletes sessions past their absolute expiry or idle since `idle_before`.
pub fn delete_expired(conn: &Connection, now: i64, idle_before: i64) -> AppResult<usize> {
    Ok(conn.prepare_cached(DELETE_EXPIRED)?.execute([now, idle_before])?)
}

pub fn for_account(conn: &Connection, account_id: i64) -> AppResult<Vec<SessionInfo>> {
    let mut stmt = conn.prepare_cached(FOR_ACCOUNT)?;
    let rows = stmt.query_map([account_id], |r| {
        Ok(SessionInfo {
            id: r.get(0)?,
            method: r.get(1)?,
            created_at: r.get(2)?,
            last_seen_at: r.get(3)?,
            ip: r.get(4)?,
            user_agent: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
