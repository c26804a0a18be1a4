//! The library sync: every enabled server's libraries and their items into SQLite, page by
//! page, as a background job (`library_sync`) with progress.
//!
//! What a sync never does: forget an item it merely failed to see. A library is pruned of
//! the items the sync did not see only when its listing ended whole and the library did not
//! change size while it was read; a server that fails keeps everything it had.

use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::Db;
use crate::db::libraries::{self as rows, LibraryRow};
use crate::db::servers::{self, ServerRow};
use crate::error::AppResult;
use crate::jobs::JobHandle;
use crate::maintenance::text::number;
use crate::media::{ItemSink, LibraryItem, Listed, MediaServer};
use crate::poller::registry::Registry;
use crate::tasks::StopSignal;
use crate::time::now_ms;

/// Items a sync saw for the first time in one library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub library_id: i64,
    pub item_ids: Vec<i64>,
    /// The library was being synced for the first time: everything in it is "new" to us,
    /// not new on the server.
    pub first_sync: bool,
}

/// What one sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Unix milliseconds; every item seen carries it.
    pub started_at: i64,
    pub servers: usize,
    pub libraries: usize,
    pub items: u64,
    /// New items per library: where a "media added" notification would start from.
    pub added: Vec<Added>,
    /// One line per server or library that failed or was read only in part.
    pub problems: Vec<String>,
    pub cancelled: bool,
    /// Every enabled server failed.
    pub all_failed: bool,
}

impl SyncReport {
    /// The line the job ends with.
    pub fn summary(&self) -> String {
        let added: usize =
            self.added.iter().filter(|a| !a.first_sync).map(|a| a.item_ids.len()).sum();
        let mut line = format!(
            "{} {}, {} {}, {} items",
            self.servers,
            if self.servers == 1 { "server" } else { "servers" },
            self.libraries,
            if self.libraries == 1 { "library" } else { "libraries" },
            number(i64::try_from(self.items).unwrap_or(i64::MAX)),
        );
        if added > 0 {
            let _ = write!(line, " ({} new)", number(i64::try_from(added).unwrap_or(0)));
        }
        for problem in &self.problems {
            line.push_str("; ");
            line.push_str(problem);
        }
        line
    }
}

/// What a sync needs.
pub struct Syncer<'a> {
    pub db: &'a Db,
    pub registry: &'a Arc<Registry>,
    pub job: &'a JobHandle,
    pub stop: &'a StopSignal,
    /// Entries the listings so far announced (the job's total grows library by library).
    pub expected: AtomicU64,
}

impl Syncer<'_> {
    fn expect(&self, count: u64) {
        let total = self.expected.fetch_add(count, Ordering::Relaxed) + count;
        self.job.set_total(total);
    }

    fn stopping(&self) -> bool {
        self.job.is_cancelled() || self.stop.is_stopped()
    }

    /// Syncs every enabled server, one after the other.
    pub async fn run(&self) -> AppResult<SyncReport> {
        let mut report = SyncReport { started_at: now_ms(), ..SyncReport::default() };
        let servers: Vec<ServerRow> =
            self.db.read(servers::list).await?.into_iter().filter(|s| s.enabled).collect();
        let mut failed = 0;
        for server in &servers {
            if self.stopping() {
                report.cancelled = true;
                break;
            }
            report.servers += 1;
            if let Err(problem) = self.server(server, &mut report).await {
                failed += 1;
                report.problems.push(format!("{}: {problem}", server.name));
            }
        }
        report.all_failed = !servers.is_empty() && failed == servers.len();
        Ok(report)
    }

    /// One server: its libraries, then each library's items. `Err` when the server could
    /// not be read at all.
    async fn server(&self, server: &ServerRow, report: &mut SyncReport) -> Result<(), String> {
        let client = self.registry.client(server).map_err(|e| e.public_message())?;
        let libraries = client.libraries().await.map_err(|e| e.to_string())?;
        let (server_id, started) = (server.id, report.started_at);
        let listed = libraries.clone();
        let stored: Vec<LibraryRow> = self
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let before = rows::of_server(&tx, server_id)?;
                for library in &listed {
                    rows::upsert(&tx, server_id, library, started)?;
                }
                // A server that lists no library at all is more likely starting up than
                // emptied: keep what we had.
                if !listed.is_empty() {
                    for gone in before
                        .iter()
                        .filter(|b| !listed.iter().any(|l| l.external_id == b.external_id))
                    {
                        rows::delete(&tx, gone.id)?;
                    }
                }
                let after = rows::of_server(&tx, server_id)?;
                tx.commit()?;
                Ok(after)
            })
            .await
            .map_err(|e| e.public_message())?;
        for library in stored {
            if self.stopping() {
                report.cancelled = true;
                return Ok(());
            }
            report.libraries += 1;
            if let Err(problem) = self.library(&*client, server, &library, report).await {
                report.problems.push(format!("{} · {}: {problem}", server.name, library.name));
            }
        }
        Ok(())
    }

    async fn library(
        &self,
        client: &dyn MediaServer,
        server: &ServerRow,
        library: &LibraryRow,
        report: &mut SyncReport,
    ) -> Result<(), String> {
        let id = library.id;
        let started = report.started_at;
        if !library.kind.has_items() {
            let count =
                client.library_count(&library.library()).await.map_err(|e| e.to_string())?;
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            self.db
                .write(move |conn| {
                    rows::set_count(conn, id, count)?;
                    rows::set_synced(conn, id, started)
                })
                .await
                .map_err(|e| e.public_message())?;
            return Ok(());
        }
        let mut sink = Sink {
            syncer: self,
            label: format!("{} · {}", server.name, library.name),
            library_id: id,
            server_id: server.id,
            started,
            expected: 0,
            done: 0,
            added: Vec::new(),
            failed: None,
        };
        let listed = client.library_items(&library.library(), &mut sink).await;
        let (done, added, failed) = (sink.done, sink.added, sink.failed);
        report.items += done;
        report.added.push(Added {
            library_id: id,
            item_ids: added,
            first_sync: library.synced_at.is_none(),
        });
        if let Some(failed) = failed {
            return Err(failed);
        }
        match listed.map_err(|e| e.to_string())? {
            Listed::Complete => {
                self.db
                    .write(move |conn| {
                        let tx = conn.transaction()?;
                        let pruned = rows::prune(&tx, id, started)?;
                        rows::set_synced(&tx, id, started)?;
                        tx.commit()?;
                        Ok(pruned)
                    })
                    .await
                    .map_err(|e| e.public_message())?;
                Ok(())
            }
            Listed::Partial if self.stopping() => {
                report.cancelled = true;
                Ok(())
            }
            Listed::Partial => Err(
                "the library changed while it was read; items not seen are kept until the next sync"
                    .to_owned(),
            ),
        }
    }
}

/// Writes pages into one library and reports progress.
struct Sink<'a> {
    syncer: &'a Syncer<'a>,
    label: String,
    library_id: i64,
    server_id: i64,
    started: i64,
    expected: u64,
    done: u64,
    added: Vec<i64>,
    failed: Option<String>,
}

#[rocket::async_trait]
impl ItemSink for Sink<'_> {
    fn expect(&mut self, count: u64) {
        self.expected += count;
        self.syncer.expect(count);
    }

    async fn page(&mut self, items: Vec<LibraryItem>, entries: u64) -> ControlFlow<()> {
        if self.syncer.stopping() {
            return ControlFlow::Break(());
        }
        let (library_id, server_id, started) = (self.library_id, self.server_id, self.started);
        let written = self
            .syncer
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let upserted = rows::upsert_items(&tx, library_id, server_id, &items, started)?;
                tx.commit()?;
                Ok(upserted)
            })
            .await;
        match written {
            Ok(upserted) => {
                self.added.extend(upserted.added);
                self.done += entries;
                let job = self.syncer.job;
                job.advance(entries);
                job.note(format!(
                    "{}: {} of {}",
                    self.label,
                    number(i64::try_from(self.done).unwrap_or(0)),
                    number(i64::try_from(self.expected).unwrap_or(0))
                ));
                job.checkpoint().await;
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.failed = Some(format!("cannot store the items: {}", e.public_message()));
                ControlFlow::Break(())
            }
        }
    }
}
