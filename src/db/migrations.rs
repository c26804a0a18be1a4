//! Numbered SQL migrations from `migrations/`, embedded in the binary.
//!
//! Files are named `NNNN_description.sql` and applied in order, each in its own transaction,
//! and recorded with a checksum. An applied file must never change: if one did, or if the
//! database was migrated by a newer Streamwarden, we refuse to start rather than guess.

use rusqlite::{Connection, OptionalExtension as _, params};
use rust_embed::RustEmbed;

use crate::crypto::sha256_hex;

#[derive(RustEmbed)]
#[folder = "migrations/"]
struct Files;

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    pub sql: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("migration {0}: file name must look like 0001_description.sql")]
    BadName(String),
    #[error("migration {name} failed: {source}")]
    Failed { name: String, source: rusqlite::Error },
    #[error(
        "migration {name} was changed after it was applied; restore the original file or the database"
    )]
    Changed { name: String },
    #[error(
        "the database has migration {version} ({name}), which this version of Streamwarden does not know; run the newer version or restore a backup"
    )]
    FromTheFuture { version: i64, name: String },
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Every embedded migration, ordered by version.
pub fn all() -> Result<Vec<Migration>, MigrationError> {
    let mut migrations = Files::iter()
        .filter(|name| name.ends_with(".sql"))
        .map(|name| {
            let version = name
                .split_once('_')
                .and_then(|(n, _)| n.parse::<i64>().ok())
                .ok_or_else(|| MigrationError::BadName(name.to_string()))?;
            let file = Files::get(&name).expect("listed files exist");
            let sql = String::from_utf8(file.data.into_owned())
                .map_err(|_| MigrationError::BadName(name.to_string()))?;
            Ok(Migration { version, name: name.into_owned(), sql })
        })
        .collect::<Result<Vec<_>, MigrationError>>()?;
    migrations.sort_by_key(|m| m.version);
    Ok(migrations)
}

/// Applies every pending migration; returns how many were applied.
pub fn apply(conn: &mut Connection) -> Result<usize, MigrationError> {
    apply_list(conn, &all()?)
}

fn apply_list(conn: &mut Connection, migrations: &[Migration]) -> Result<usize, MigrationError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            checksum   TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT;",
    )?;
    let newest_known = migrations.last().map_or(0, |m| m.version);
    let future: Option<(i64, String)> = conn
        .query_row(
            "SELECT version, name FROM schema_migrations WHERE version > ?1 ORDER BY version LIMIT 1",
            [newest_known],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((version, name)) = future {
        return Err(MigrationError::FromTheFuture { version, name });
    }

    let mut applied = 0;
    for migration in migrations {
        let checksum = sha256_hex(migration.sql.as_bytes());
        let recorded: Option<String> = conn
            .query_row(
                "SELECT checksum FROM schema_migrations WHERE version = ?1",
                [migration.version],
                |r| r.get(0),
            )
            .optional()?;
        match recorded {
            Some(sum) if sum == checksum => continue,
            Some(_) => return Err(MigrationError::Changed { name: migration.name.clone() }),
            None => {}
        }
        let failed = |source| MigrationError::Failed { name: migration.name.clone(), source };
        let tx = conn.transaction().map_err(failed)?;
        tx.execute_batch(&migration.sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            params![migration.version, migration.name, checksum, crate::time::now_ms()],
        )
        .map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::info!(migration = %migration.name, "applied database migration");
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("m.db")).unwrap();
        (dir, conn)
    }

    #[test]
    fn every_migration_applies_to_a_fresh_database_once() {
        let (_dir, mut conn) = fresh();
        let all = all().unwrap();
        assert!(!all.is_empty());
        assert!(all.windows(2).all(|w| w[0].version < w[1].version), "versions must be unique");
        assert_eq!(apply(&mut conn).unwrap(), all.len());
        assert_eq!(apply(&mut conn).unwrap(), 0, "a second start applies nothing");
        let fk_errors: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk_errors, 0);
        for table in ["settings", "audit_log"] {
            let n: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_schema WHERE name = ?1", [table], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(n, 1, "{table} exists");
        }
    }

    #[test]
    fn a_failing_migration_leaves_nothing_half_applied() {
        let (_dir, mut conn) = fresh();
        let broken = vec![Migration {
            version: 1,
            name: "0001_broken.sql".into(),
            sql: "CREATE TABLE a (x INTEGER); CREATE TABLE oops (".into(),
        }];
        assert!(matches!(apply_list(&mut conn, &broken), Err(MigrationError::Failed { .. })));
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE name = 'a'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn changed_and_future_migrations_are_refused() {
        let (_dir, mut conn) = fresh();
        let v1 =
            Migration { version: 1, name: "0001_a.sql".into(), sql: "CREATE TABLE a (x);".into() };
        apply_list(&mut conn, std::slice::from_ref(&v1)).unwrap();
        let edited = Migration { sql: "CREATE TABLE a (x, y);".into(), ..v1.clone() };
        assert!(matches!(apply_list(&mut conn, &[edited]), Err(MigrationError::Changed { .. })));

        let v2 =
            Migration { version: 2, name: "0002_b.sql".into(), sql: "CREATE TABLE b (x);".into() };
        apply_list(&mut conn, &[v1.clone(), v2]).unwrap();
        let err = apply_list(&mut conn, &[v1]).unwrap_err();
        assert!(matches!(err, MigrationError::FromTheFuture { version: 2, .. }), "{err}");
    }
}
