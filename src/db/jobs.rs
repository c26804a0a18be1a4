//! Background jobs: one row per run of a library sync, an import or a backup.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::error::AppResult;

/// The columns `from_row` reads, in its order.
macro_rules! columns {
    () => {
        "id, kind, status, done, total, message, created_by, started_at, updated_at, finished_at"
    };
}
const INSERT: &str = "INSERT INTO jobs (kind, status, created_by, started_at, updated_at) VALUES (?1, 'running', ?2, ?3, ?3) RETURNING id";
const PROGRESS: &str = "UPDATE jobs SET done = ?2, total = ?3, message = ?4, updated_at = ?5 WHERE id = ?1 AND status = 'running'";
const FINISH: &str = "UPDATE jobs SET status = ?2, done = ?3, total = ?4, message = ?5, updated_at = ?6, finished_at = ?6 WHERE id = ?1";
const INTERRUPTED: &str = "UPDATE jobs SET status = 'failed', message = CASE WHEN message = '' THEN 'interrupted by a restart' ELSE message || ' (interrupted by a restart)' END, updated_at = ?1, finished_at = ?1 WHERE status = 'running'";
const BY_ID: &str = concat!("SELECT ", columns!(), " FROM jobs WHERE id = ?1");
const RECENT: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM jobs WHERE (?1 IS NULL OR kind = ?1) ORDER BY id DESC LIMIT ?2"
);

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[INSERT, PROGRESS, FINISH, INTERRUPTED, BY_ID, RECENT];

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl ToSql for JobStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for JobStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(FromSqlError::Other(format!("unknown job status {other:?}").into())),
        }
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: i64,
    /// `library_sync`, `import`, `backup`, ...
    pub kind: String,
    pub status: JobStatus,
    /// Units of work done (items, rows, bytes: the kind says which).
    pub done: i64,
    /// Units of work in all, once known.
    pub total: Option<i64>,
    /// The latest line about it: what it is doing, or why it failed.
    pub message: String,
    /// Who started it (an account, an API key, or `schedule`).
    pub created_by: String,
    /// Unix milliseconds.
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        status: r.get(2)?,
        done: r.get(3)?,
        total: r.get(4)?,
        message: r.get(5)?,
        created_by: r.get(6)?,
        started_at: r.get(7)?,
        updated_at: r.get(8)?,
        finished_at: r.get(9)?,
    })
}

pub fn insert(conn: &Connection, kind: &str, created_by: &str, now: i64) -> AppResult<i64> {
    Ok(conn.prepare_cached(INSERT)?.query_row(params![kind, created_by, now], |r| r.get(0))?)
}

pub fn progress(
    conn: &Connection,
    id: i64,
    done: i64,
    total: Option<i64>,
    message: &str,
    now: i64,
) -> AppResult<()> {
    conn.prepare_cached(PROGRESS)?.execute(params![id, done, total, message, now])?;
    Ok(())
}

pub fn finish(
    conn: &Connection,
    id: i64,
    status: JobStatus,
    done: i64,
    total: Option<i64>,
    message: &str,
    now: i64,
) -> AppResult<()> {
    conn.prepare_cached(FINISH)?.execute(params![id, status, done, total, message, now])?;
    Ok(())
}

/// Marks the jobs a previous run left running as failed; returns how many. Called at start.
pub fn mark_interrupted(conn: &Connection, now: i64) -> AppResult<usize> {
    Ok(conn.prepare_cached(INTERRUPTED)?.execute([now])?)
}

pub fn get(conn: &Connection, id: i64) -> AppResult<Option<JobRow>> {
    Ok(conn.prepare_cached(BY_ID)?.query_row([id], from_row).optional()?)
}

/// The newest jobs, of one kind or of all.
pub fn recent(conn: &Connection, kind: Option<&str>, limit: u32) -> AppResult<Vec<JobRow>> {
    let rows = conn
        .prepare_cached(RECENT)?
        .query_map(params![kind, limit], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_the_code_does_not_know_is_an_error_not_a_default() {
        let conn = Connection::open_in_memory().unwrap();
        let read: rusqlite::Result<JobStatus> = conn.query_row("SELECT 'paused'", [], |r| r.get(0));
        assert!(read.is_err());
    }
}
