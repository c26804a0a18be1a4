//! The audit trail: sign-ins, failed sign-ins and every settings change (who, when, what).

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::error::AppResult;

const INSERT: &str = "INSERT INTO audit_log (at, actor, action, target, details, ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const RECENT: &str = "SELECT id, at, actor, action, target, details, ip FROM audit_log
                      WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2";
/// Entries of some actions on one target, oldest first (the index on action and time finds
/// them without reading the whole log).
const OF_TARGET: &str = "SELECT id, at, actor, action, target, details, ip FROM audit_log
                         WHERE action IN (SELECT value FROM json_each(?1)) AND target = ?2
                         ORDER BY id";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[INSERT, RECENT, OF_TARGET];

/// One audit entry to record. `details` must never hold a secret.
#[derive(Debug, Clone, Default)]
pub struct NewEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub details: Option<serde_json::Value>,
    pub ip: Option<&'a str>,
}

/// A recorded audit entry.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub details: Option<String>,
    pub ip: Option<String>,
}

pub fn record(conn: &Connection, entry: &NewEntry<'_>) -> AppResult<()> {
    let details = entry.details.as_ref().map(serde_json::Value::to_string);
    conn.prepare_cached(INSERT)?.execute(params![
        crate::time::now_ms(),
        entry.actor,
        entry.action,
        entry.target,
        details,
        entry.ip
    ])?;
    Ok(())
}

/// Newest first; `before` is the id of the last entry of the previous page.
fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        details: r.get(5)?,
        ip: r.get(6)?,
    })
}

pub fn recent(conn: &Connection, before: Option<i64>, limit: u32) -> AppResult<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(RECENT)?;
    let rows = stmt.query_map(params![before, limit], entry_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What was done to `target` (`violation:7`) by any of `actions`, oldest first.
pub fn of_target(conn: &Connection, actions: &[&str], target: &str) -> AppResult<Vec<Entry>> {
    let actions = serde_json::to_string(actions).unwrap_or_else(|_| "[]".to_owned());
    let mut stmt = conn.prepare_cached(OF_TARGET)?;
    let rows = stmt.query_map(params![actions, target], entry_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_pages_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("a.db")).unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        for i in 0..5 {
            let target = format!("server:{i}");
            record(
                &conn,
                &NewEntry {
                    actor: "admin:alice",
                    action: "server.create",
                    target: Some(&target),
                    details: Some(serde_json::json!({"name": "Plex"})),
                    ip: Some("192.168.1.2"),
                },
            )
            .unwrap();
        }
        let first = recent(&conn, None, 3).unwrap();
        assert_eq!(
            first.iter().map(|e| e.target.as_deref().unwrap()).collect::<Vec<_>>(),
            ["server:4", "server:3", "server:2"]
        );
        let second = recent(&conn, Some(first[2].id), 3).unwrap();
        assert_eq!(second.len(), 2);
        assert_eq!(second[0].details.as_deref(), Some(r#"{"name":"Plex"}"#));
        let of_3 = of_target(&conn, &["server.create", "server.delete"], "server:3").unwrap();
        assert_eq!(of_3.iter().map(|e| e.id).collect::<Vec<_>>(), [first[1].id]);
        assert!(of_target(&conn, &["server.delete"], "server:3").unwrap().is_empty());
    }
}
