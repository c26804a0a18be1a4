//! OpenID Connect authorization requests waiting for their callback: single use, short-lived.

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::error::AppResult;

const INSERT: &str = "INSERT INTO oidc_flows (state_hash, binding_hash, nonce, pkce_verifier, next, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const TAKE: &str = "DELETE FROM oidc_flows WHERE state_hash = ?1 RETURNING binding_hash, nonce, pkce_verifier, next, expires_at";
const DELETE_EXPIRED: &str = "DELETE FROM oidc_flows WHERE expires_at <= ?1";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[INSERT, TAKE, DELETE_EXPIRED];

/// A pending flow, as taken back at the callback.
#[derive(Debug, Clone)]
pub struct Flow {
    pub binding_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

pub fn insert(conn: &Connection, state_hash: &str, flow: &Flow) -> AppResult<()> {
    conn.execute(DELETE_EXPIRED, [crate::time::now_ms()])?;
    conn.prepare_cached(INSERT)?.execute(params![
        state_hash,
        flow.binding_hash,
        flow.nonce,
        flow.pkce_verifier,
        flow.next,
        crate::time::now_ms(),
        flow.expires_at,
    ])?;
    Ok(())
}

/// Removes and returns the flow for this state: a state works once.
pub fn take(conn: &Connection, state_hash: &str) -> AppResult<Option<Flow>> {
    Ok(conn
        .prepare_cached(TAKE)?
        .query_row([state_hash], |r| {
            Ok(Flow {
                binding_hash: r.get(0)?,
                nonce: r.get(1)?,
                pkce_verifier: r.get(2)?,
                next: r.get(3)?,
                expires_at: r.get(4)?,
            })
        })
        .optional()?)
}
