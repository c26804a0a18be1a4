//! Background jobs with progress: a library sync, an import, a backup.
//!
//! A job is a row in `jobs` plus, while it runs, a [`JobHandle`] its task holds. The task
//! reports progress through the handle (cheap: atomics in memory), and the handle writes it
//! to the database at most once a second, so the page and `GET /api/v1/jobs/{id}` can follow
//! it without the job paying a write per row. A job is cancelled cooperatively: the task
//! asks [`JobHandle::is_cancelled`] between steps. Jobs that a restart cut short are marked
//! failed at start ([`Jobs::recover`]); a kind that can resume (imports) keeps its own cursor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::db::Db;
use crate::db::jobs::{self as sql, JobRow, JobStatus};
use crate::error::{AppError, AppResult};
use crate::time::now_ms;

/// Progress is written at most this often while a job runs (milliseconds).
const WRITE_EVERY_MS: i64 = 1_000;

/// The jobs of this instance. Cheap to clone; managed state.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    running: Mutex<HashMap<i64, Arc<Live>>>,
}

/// What a running job has reported, shared by its handle and the readers.
struct Live {
    kind: &'static str,
    done: AtomicI64,
    /// -1 while unknown.
    total: AtomicI64,
    message: Mutex<String>,
    cancel: AtomicBool,
    written_at: AtomicI64,
}

impl Live {
    fn total(&self) -> Option<i64> {
        Some(self.total.load(Ordering::Relaxed)).filter(|t| *t >= 0)
    }

    fn message(&self) -> String {
        self.message.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// How a job ended, as its task tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Finished; the line says what it did ("1,204 items in 3 libraries").
    Done(String),
    /// Gave up; the line says why, for the operator (no secrets).
    Failed(String),
    /// Stopped because it was asked to.
    Cancelled,
}

impl Jobs {
    pub fn new(db: Db) -> Self {
        Self { inner: Arc::new(Inner { db, running: Mutex::new(HashMap::new()) }) }
    }

    /// Marks the jobs a previous run left running as failed (interrupted); at liftoff,
    /// before any job starts. Returns how many there were.
    pub async fn recover(&self) -> AppResult<usize> {
        let interrupted = self.inner.db.write(|conn| sql::mark_interrupted(conn, now_ms())).await?;
        if interrupted > 0 {
            tracing::warn!(jobs = interrupted, "background jobs were cut short by the last stop");
        }
        Ok(interrupted)
    }

    /// Starts a job of `kind` on behalf of `created_by`: the row exists when this returns.
    pub async fn start(&self, kind: &'static str, created_by: &str) -> AppResult<JobHandle> {
        let by = created_by.to_owned();
        let now = now_ms();
        let id = self.inner.db.write(move |conn| sql::insert(conn, kind, &by, now)).await?;
        let live = Arc::new(Live {
            kind,
            done: AtomicI64::new(0),
            total: AtomicI64::new(-1),
            message: Mutex::new(String::new()),
            cancel: AtomicBool::new(false),
            written_at: AtomicI64::new(now),
        });
        self.running().insert(id, Arc::clone(&live));
        Ok(JobHandle { id, jobs: self.clone(), live, finished: false })
    }

    /// Starts a job of `kind` unless one is running already: then `Err` with its id, so
    /// that pressing "Sync now" twice follows the same job instead of starting a second.
    pub async fn start_unique(
        &self,
        kind: &'static str,
        created_by: &str,
    ) -> AppResult<Result<JobHandle, i64>> {
        if let Some(id) = self.running_of(kind) {
            return Ok(Err(id));
        }
        let handle = self.start(kind, created_by).await?;
        // Two callers may have raced past the check: the older job wins.
        let oldest = self.running_of(kind).unwrap_or(handle.id);
        if oldest != handle.id {
            handle.finish(Outcome::Cancelled).await;
            return Ok(Err(oldest));
        }
        Ok(Ok(handle))
    }

    /// The oldest running job of `kind`.
    pub fn running_of(&self, kind: &str) -> Option<i64> {
        self.running().iter().filter(|(_, live)| live.kind == kind).map(|(id, _)| *id).min()
    }

    /// One job as it is now (a running job's progress from memory).
    pub async fn get(&self, id: i64) -> AppResult<JobRow> {
        let row = self.inner.db.read(move |conn| sql::get(conn, id)).await?;
        let row = row.ok_or_else(|| AppError::not_found(format!("job {id}")))?;
        Ok(self.overlay(row))
    }

    /// The newest jobs, of one kind or all, newest first.
    pub async fn recent(&self, kind: Option<String>, limit: u32) -> AppResult<Vec<JobRow>> {
        let rows =
            self.inner.db.read(move |conn| sql::recent(conn, kind.as_deref(), limit)).await?;
        Ok(rows.into_iter().map(|row| self.overlay(row)).collect())
    }

    /// Asks a running job to stop; it does at its next step. A job that is not running is
    /// a conflict (it has already ended).
    pub async fn cancel(&self, id: i64) -> AppResult<()> {
        if let Some(live) = self.running().get(&id) {
            live.cancel.store(true, Ordering::SeqCst);
            return Ok(());
        }
        let row = self.get(id).await?;
        Err(AppError::Conflict(format!("job {id} has already ended ({})", row.status.as_str())))
    }

    fn overlay(&self, mut row: JobRow) -> JobRow {
        if row.status == JobStatus::Running
            && let Some(live) = self.running().get(&row.id)
        {
            row.done = live.done.load(Ordering::Relaxed);
            row.total = live.total();
            row.message = live.message();
        }
        row
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<Live>>> {
        self.inner.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Held by the task doing a job. Call [`JobHandle::finish`] at the end; a handle dropped
/// without it (a panic) leaves the job to be marked interrupted at the next start.
pub struct JobHandle {
    id: i64,
    jobs: Jobs,
    live: Arc<Live>,
    finished: bool,
}

impl JobHandle {
    pub fn id(&self) -> i64 {
        self.id
    }

    pub fn set_total(&self, total: u64) {
        self.live.total.store(i64::try_from(total).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Adds `n` units to what is done.
    pub fn advance(&self, n: u64) {
        self.live.done.fetch_add(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    pub fn set_done(&self, done: u64) {
        self.live.done.store(i64::try_from(done).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// What the job is doing now ("Movies: 1,200 of 4,000").
    pub fn note(&self, message: impl Into<String>) {
        *self.live.message.lock().unwrap_or_else(PoisonError::into_inner) = message.into();
    }

    pub fn done(&self) -> u64 {
        u64::try_from(self.live.done.load(Ordering::Relaxed)).unwrap_or(0)
    }

    pub fn is_cancelled(&self) -> bool {
        self.live.cancel.load(Ordering::SeqCst)
    }

    /// Writes the progress if the last write is older than a second. Cheap to call per step.
    pub async fn checkpoint(&self) {
        let now = now_ms();
        let last = self.live.written_at.load(Ordering::Relaxed);
        if now - last < WRITE_EVERY_MS
            || self
                .live
                .written_at
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let (id, done, total, message) = (
            self.id,
            self.live.done.load(Ordering::Relaxed),
            self.live.total(),
            self.live.message(),
        );
        let written = self
            .jobs
            .inner
            .db
            .write(move |conn| sql::progress(conn, id, done, total, &message, now))
            .await;
        if let Err(e) = written {
            tracing::warn!(job = id, error = %e, "cannot record a job's progress");
        }
    }

    /// Records how the job ended.
    pub async fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        let (status, message) = match outcome {
            Outcome::Done(line) => (JobStatus::Done, line),
            Outcome::Failed(line) => (JobStatus::Failed, line),
            Outcome::Cancelled => (JobStatus::Cancelled, "cancelled".to_owned()),
        };
        let (id, done, total) =
            (self.id, self.live.done.load(Ordering::Relaxed), self.live.total());
        let kind = self.live.kind;
        let line = message.clone();
        let written = self
            .jobs
            .inner
            .db
            .write(move |conn| sql::finish(conn, id, status, done, total, &line, now_ms()))
            .await;
        match written {
            Ok(()) if status == JobStatus::Failed => {
                tracing::warn!(job = id, kind, %message, "background job failed");
            }
            Ok(()) => {
                tracing::info!(job = id, kind, status = status.as_str(), %message, "background job ended");
            }
            Err(e) => tracing::error!(job = id, kind, error = %e, "cannot record how a job ended"),
        }
        self.jobs.running().remove(&self.id);
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        if !self.finished {
            tracing::error!(
                job = self.id,
                kind = self.live.kind,
                "a background job ended without a result"
            );
            self.jobs.running().remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs() -> (tempfile::TempDir, Db, Jobs) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("j.db")).unwrap();
        let jobs = Jobs::new(db.clone());
        (dir, db, jobs)
    }

    #[tokio::test]
    async fn progress_is_read_live_and_the_end_is_stored() {
        let (_dir, _db, jobs) = jobs();
        let job = jobs.start("library_sync", "admin").await.unwrap();
        job.set_total(10);
        job.advance(4);
        job.note("Movies");
        let seen = jobs.get(job.id()).await.unwrap();
        assert_eq!((seen.status, seen.done, seen.total), (JobStatus::Running, 4, Some(10)));
        assert_eq!(seen.message, "Movies");
        let id = job.id();
        job.advance(6);
        job.finish(Outcome::Done("10 items".into())).await;
        let row = jobs.get(id).await.unwrap();
        assert_eq!((row.status, row.done, row.total), (JobStatus::Done, 10, Some(10)));
        assert_eq!(row.message, "10 items");
        assert!(row.finished_at.is_some());
        assert!(matches!(jobs.cancel(id).await, Err(AppError::Conflict(_))));
    }

    #[tokio::test]
    async fn one_job_of_a_kind_at_a_time_and_cancel_reaches_the_task() {
        let (_dir, _db, jobs) = jobs();
        let first = jobs.start_unique("backup", "admin").await.unwrap().unwrap();
        let second = jobs.start_unique("backup", "api key").await.unwrap();
        assert_eq!(second.err(), Some(first.id()));
        let other = jobs.start_unique("import", "admin").await.unwrap().unwrap();
        jobs.cancel(first.id()).await.unwrap();
        assert!(first.is_cancelled() && !other.is_cancelled());
        first.finish(Outcome::Cancelled).await;
        other.finish(Outcome::Failed("the file is not a backup".into())).await;
        assert!(jobs.start_unique("backup", "admin").await.unwrap().is_ok(), "free again");
        assert!(matches!(jobs.get(999).await, Err(AppError::NotFound(_))));
    }

    #[tokio::test]
    async fn a_restart_marks_running_jobs_interrupted() {
        let (_dir, db, jobs) = jobs();
        let job = jobs.start("import", "admin").await.unwrap();
        let id = job.id();
        std::mem::forget(job); // the process died
        let after = Jobs::new(db);
        assert_eq!(after.recover().await.unwrap(), 1);
        let row = after.get(id).await.unwrap();
        assert_eq!(row.status, JobStatus::Failed);
        assert_eq!(row.message, "interrupted by a restart");
    }
}
