//! Admins' notes on media users (`user_notes`).

use rusqlite::{Connection, params};

use crate::error::AppResult;

const LIST: &str = "SELECT id, user_id, body, author, created_at FROM user_notes WHERE user_id = ?1 \
     ORDER BY created_at DESC, id DESC LIMIT 200";
const INSERT: &str = "INSERT INTO user_notes (user_id, body, author, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING id";
const DELETE: &str = "DELETE FROM user_notes WHERE id = ?1 AND user_id = ?2";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[LIST, INSERT, DELETE];

/// One note.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    pub id: i64,
    pub user_id: i64,
    pub body: String,
    pub author: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A user's notes, newest first.
pub fn list(conn: &Connection, user_id: i64) -> AppResult<Vec<Note>> {
    let mut stmt = conn.prepare_cached(LIST)?;
    let rows = stmt.query_map([user_id], |r| {
        Ok(Note {
            id: r.get(0)?,
            user_id: r.get(1)?,
            body: r.get(2)?,
            author: r.get(3)?,
            created_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert(
    conn: &Connection,
    user_id: i64,
    body: &str,
    author: &str,
    now: i64,
) -> AppResult<i64> {
    Ok(conn.prepare_cached(INSERT)?.query_row(params![user_id, body, author, now], |r| r.get(0))?)
}

/// Whether the note existed (on that user).
pub fn delete(conn: &Connection, user_id: i64, id: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(DELETE)?.execute(params![id, user_id])? > 0)
}
