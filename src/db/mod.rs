//! The embedded SQLite database.
//!
//! One writer connection (SQLite has one writer at a time anyway, so queuing writers here
//! instead of in `busy_timeout` keeps them fair and fast) and a few read-only reader
//! connections, which WAL lets run beside the writer. Every call runs on tokio's blocking
//! pool, so a slow query never stalls the async executor.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod demo_history;
pub mod geo;
pub mod households;
pub mod integrations;
pub mod jobs;
pub mod libraries;
pub mod maintenance;
pub mod media_users;
pub mod migrations;
pub mod notify;
pub mod oidc_flows;
pub mod persons;
pub mod plays;
pub mod rules;
pub mod scheduled_actions;
pub mod servers;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod trust;
pub mod user_notes;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Reader connections; beyond this, reads queue.
const READERS: usize = 4;
/// How long a connection waits on a lock held by another process (a backup tool, the CLI).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Arc<tokio::sync::Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    reader_permits: Arc<Semaphore>,
}

/// A failure to open or migrate the database at start.
#[derive(Debug, thiserror::Error)]
#[error("database {path}: {message}")]
pub struct OpenError {
    pub path: String,
    pub message: String,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// Blocking: call before the runtime serves requests.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let fail = |message: String| OpenError { path: path.display().to_string(), message };
        let mut writer = open_connection(path, false).map_err(|e| fail(e.to_string()))?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| fail(format!("cannot enable WAL: {e}")))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(fail(format!("the file system refused WAL mode (got {mode})")));
        }
        migrations::apply(&mut writer).map_err(|e| fail(e.to_string()))?;
        let readers = (0..READERS)
            .map(|_| open_connection(path, true))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Arc::new(tokio::sync::Mutex::new(writer)),
                readers: Mutex::new(readers),
                reader_permits: Arc::new(Semaphore::new(READERS)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs read-only work on a reader connection.
    pub async fn read<T, F>(&self, work: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.inner.reader_permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = inner.take_reader()?;
            let result = work(&conn);
            inner.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(conn);
            result
        })
        .await?
    }

    /// Runs work on the single writer connection. Use a transaction for several statements.
    pub async fn write<T, F>(&self, work: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> AppResult<T> + Send + 'static,
    {
        let mut conn = Arc::clone(&self.inner.writer).lock_owned().await;
        tokio::task::spawn_blocking(move || work(&mut conn)).await?
    }

    /// [`Db::write`] for code outside the async runtime (command-line tools, benchmarks).
    /// Panics when called from async code: use [`Db::write`] there.
    pub fn write_blocking<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> AppResult<T>,
    ) -> AppResult<T> {
        work(&mut self.inner.writer.blocking_lock())
    }

    /// [`Db::read`] for code outside the async runtime.
    pub fn read_blocking<T>(&self, work: impl FnOnce(&Connection) -> AppResult<T>) -> AppResult<T> {
        let conn = self.inner.take_reader()?;
        let result = work(&conn);
        self.inner.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(conn);
        result
    }

    /// Folds the WAL back into the database file, so a copy of the data directory taken
    /// after we stop is complete. Called on shutdown.
    pub async fn checkpoint(&self) -> AppResult<()> {
        self.write(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            conn.execute_batch("PRAGMA optimize")?;
            Ok(())
        })
        .await
    }
}

impl Inner {
    /// A pooled reader; a fresh one if a panic lost one.
    fn take_reader(&self) -> AppResult<Connection> {
        let pooled = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => open_connection(&self.path, true).map_err(AppError::from),
        }
    }
}

/// Opens one connection with the settings every connection needs.
fn open_connection(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // NORMAL is durable across application crashes in WAL mode; only an OS crash or power
    // loss can undo the last transactions, never corrupt the file.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    if read_only {
        conn.execute_batch("PRAGMA query_only = ON;")?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The current time in Unix milliseconds, the unit of every timestamp column.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Every SQL statement the application prepares, so one test can check them all against
/// the migrated schema (rusqlite has no compile-time SQL checks).
#[cfg(test)]
pub(crate) fn all_statements() -> Vec<String> {
    [
        settings::STATEMENTS,
        audit::STATEMENTS,
        servers::STATEMENTS,
        media_users::STATEMENTS,
        accounts::STATEMENTS,
        sessions::STATEMENTS,
        api_keys::STATEMENTS,
        oidc_flows::STATEMENTS,
        notify::STATEMENTS,
        geo::STATEMENTS,
        households::STATEMENTS,
        trust::STATEMENTS,
        jobs::STATEMENTS,
        demo_history::STATEMENTS,
        user_notes::STATEMENTS,
        persons::STATEMENTS,
        scheduled_actions::STATEMENTS,
    ]
    .concat()
    .into_iter()
    .map(str::to_owned)
    .chain(plays::statements())
    .chain(rules::statements())
    .chain(libraries::statements())
    .chain(maintenance::statements())
    .chain(integrations::statements())
    .chain(stats::statements())
    .chain(crate::rules::facts::statements())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_prepares_against_the_migrated_schema() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("p.db")).unwrap();
        migrations::apply(&mut conn).unwrap();
        for sql in all_statements() {
            if let Err(e) = conn.prepare(&sql) {
                panic!("{e}\n{sql}");
            }
        }
    }

    #[tokio::test]
    async fn pragmas_and_read_only_readers() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let (mode, fk, sync): (String, i64, i64) = db
            .read(|c| {
                Ok((
                    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                    c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
                    c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!((mode.as_str(), fk, sync), ("wal", 1, 1));

        let err = db
            .read(|c| {
                Ok(c.execute(
                    "INSERT INTO settings(key, value, updated_at) VALUES ('a', '1', 0)",
                    [],
                )?)
            })
            .await;
        assert!(err.is_err(), "readers must be read-only");
        db.write(|c| {
            Ok(c.execute("INSERT INTO settings(key, value, updated_at) VALUES ('a', '1', 0)", [])?)
        })
        .await
        .unwrap();
        let n: i64 = db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM settings", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 1);
        db.checkpoint().await.unwrap();
    }

    #[tokio::test]
    async fn a_panicking_reader_does_not_shrink_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        for _ in 0..=READERS {
            let r: AppResult<()> = db.read(|_| panic!("bug in a query")).await;
            assert!(r.is_err());
        }
        let one: i64 = db.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(one, 1);
    }
}
