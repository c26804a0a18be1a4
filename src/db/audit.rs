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

/// Longest actor, action, target and address stored (characters). Whoever signs in may type
/// any username, and a failed sign-in is audited with it: the log must not store what the
/// request carried whole.
pub const MAX_NAME: usize = 128;
/// Longest text inside `details` (characters), and longest `details` as a whole (bytes).
pub const MAX_DETAIL_TEXT: usize = 512;
pub const MAX_DETAILS: usize = 8 * 1024;

pub fn record(conn: &Connection, entry: &NewEntry<'_>) -> AppResult<()> {
    let details = entry.details.clone().map(|mut d| {
        cut_strings(&mut d);
        let text = d.to_string();
        if text.len() > MAX_DETAILS {
            serde_json::json!({"truncated": true, "bytes": text.len()}).to_string()
        } else {
            text
        }
    });
    conn.prepare_cached(INSERT)?.execute(params![
        crate::time::now_ms(),
        cut(entry.actor, MAX_NAME),
        cut(entry.action, MAX_NAME),
        entry.target.map(|t| cut(t, MAX_NAME)),
        details,
        entry.ip.map(|ip| cut(ip, MAX_NAME)),
    ])?;
    Ok(())
}

/// `text`, or its first `max` characters followed by `…`.
fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => text.into(),
        Some((end, _)) => format!("{}…", &text[..end]).into(),
    }
}

/// Cuts every string in a JSON value (keys included) to [`MAX_DETAIL_TEXT`].
fn cut_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(short) = cut(s, MAX_DETAIL_TEXT) {
                *s = short;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(cut_strings),
        serde_json::Value::Object(map) => {
            let long_key = map.keys().any(|k| k.chars().count() > MAX_DETAIL_TEXT);
            if long_key {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (cut(&k, MAX_DETAIL_TEXT).into_owned(), v))
                    .collect();
            }
            map.values_mut().for_each(cut_strings);
        }
        _ => {}
    }
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

    #[test]
    fn entries_are_stored_within_their_caps() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("a.db")).unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        let huge = "é".repeat(200_000);
        let actor = format!("user:{huge}");
        record(
            &conn,
            &NewEntry {
                actor: &actor,
                action: "login.failed",
                target: Some(&huge),
                details: Some(
                    serde_json::json!({"username": huge, "list": [huge.clone()], huge.clone(): 1}),
                ),
                ip: Some("192.0.2.1"),
            },
        )
        .unwrap();
        let e = recent(&conn, None, 1).unwrap().remove(0);
        assert_eq!(e.actor.chars().count(), MAX_NAME + 1, "cut, with a mark");
        assert!(e.actor.starts_with("user:éé") && e.actor.ends_with('…'));
        assert_eq!(e.target.unwrap().chars().count(), MAX_NAME + 1);
        let details = e.details.unwrap();
        assert!(details.len() <= MAX_DETAILS, "{} bytes", details.len());
        let v: serde_json::Value = serde_json::from_str(&details).unwrap();
        assert_eq!(v["username"].as_str().unwrap().chars().count(), MAX_DETAIL_TEXT + 1);
        assert_eq!(e.ip.as_deref(), Some("192.0.2.1"));
    }
}
