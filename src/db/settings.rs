//! Key-value settings changed in the UI, stored as JSON.

use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};

const GET: &str = "SELECT value FROM settings WHERE key = ?1";
const PUT: &str = "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
const DELETE: &str = "DELETE FROM settings WHERE key = ?1";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[GET, PUT, DELETE];

/// The setting `key`, or `None` if it was never set.
pub fn get<T: DeserializeOwned>(conn: &Connection, key: &str) -> AppResult<Option<T>> {
    let raw: Option<String> =
        conn.prepare_cached(GET)?.query_row([key], |r| r.get(0)).optional()?;
    raw.map(|json| {
        serde_json::from_str(&json)
            .map_err(|e| AppError::internal(format!("setting {key} holds unexpected JSON"), e))
    })
    .transpose()
}

pub fn put<T: Serialize>(conn: &Connection, key: &str, value: &T) -> AppResult<()> {
    let json =
        serde_json::to_string(value).map_err(|e| AppError::internal("encoding a setting", e))?;
    conn.prepare_cached(PUT)?.execute(params![key, json, crate::time::now_ms()])?;
    Ok(())
}

pub fn delete(conn: &Connection, key: &str) -> AppResult<()> {
    conn.prepare_cached(DELETE)?.execute([key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_overwrite_delete() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("s.db")).unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        assert_eq!(get::<u32>(&conn, "watched_percent").unwrap(), None);
        put(&conn, "watched_percent", &85u32).unwrap();
        put(&conn, "watched_percent", &90u32).unwrap();
        assert_eq!(get::<u32>(&conn, "watched_percent").unwrap(), Some(90));
        assert!(
            get::<String>(&conn, "watched_percent").is_err(),
            "wrong type is an error, not a panic"
        );
        delete(&conn, "watched_percent").unwrap();
        assert_eq!(get::<u32>(&conn, "watched_percent").unwrap(), None);
    }
}
