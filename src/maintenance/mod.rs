//! Library maintenance: find what nobody watches, review it, delete it safely.
//!
//! - [`sync`]: every enabled server's libraries and items into SQLite (a `library_sync`
//!   job), then the roll-up of "last watched" from every source (`db::libraries::rollup`).
//! - [`schedule`]: the sync at start and daily at 03:00 local time.
//!
//! The pure parts (criteria, reasons, the daily schedule) take plain data and the time;
//! the I/O (media servers, SQLite, integrations) stays in the shell around them.

pub mod schedule;
pub mod sync;
pub mod text;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::db::{self, Db};
use crate::error::AppResult;
use crate::jobs::{JobHandle, Jobs, Outcome};
use crate::poller::registry::Registry;
use crate::tasks::{StopSignal, Tasks};

/// The kind of the sync's background jobs.
pub const SYNC_JOB: &str = "library_sync";

/// The maintenance service: managed state, shared by the pages, the API and the schedule.
pub struct Maintenance {
    db: Db,
    registry: Arc<Registry>,
    jobs: Jobs,
    tasks: Arc<Tasks>,
}

impl Maintenance {
    pub fn new(db: Db, registry: Arc<Registry>, jobs: Jobs, tasks: Arc<Tasks>) -> Self {
        Self { db, registry, jobs, tasks }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Starts a sync in the background on behalf of `by` and returns its job's id; when one
    /// is running already, returns that one's (pressing "Sync now" twice follows one job).
    pub async fn start_sync(self: &Arc<Self>, by: &str) -> AppResult<i64> {
        match self.jobs.start_unique(SYNC_JOB, by).await? {
            Err(running) => Ok(running),
            Ok(job) => {
                let id = job.id();
                let this = Arc::clone(self);
                self.tasks.spawn("library sync", move |stop| async move {
                    this.run_sync(job, stop).await;
                });
                Ok(id)
            }
        }
    }

    /// Runs a sync to its end and records how it went on `job`.
    pub async fn run_sync(&self, job: JobHandle, stop: StopSignal) {
        let syncer = sync::Syncer {
            db: &self.db,
            registry: &self.registry,
            job: &job,
            stop: &stop,
            expected: AtomicU64::new(0),
        };
        let outcome = match syncer.run().await {
            Ok(report) if report.cancelled => Outcome::Cancelled,
            Ok(report) => match self.after_sync().await {
                Err(e) => Outcome::Failed(format!(
                    "{}; then: cannot merge what was watched: {}",
                    report.summary(),
                    e.public_message()
                )),
                Ok(()) if report.all_failed => Outcome::Failed(report.summary()),
                Ok(()) => Outcome::Done(report.summary()),
            },
            Err(e) => Outcome::Failed(e.public_message()),
        };
        job.finish(outcome).await;
    }

    /// What follows every sync: last watched merged from every source.
    async fn after_sync(&self) -> AppResult<()> {
        self.db.write(db::libraries::rollup).await
    }
}
