//! Library maintenance: find what nobody watches, review it, delete it safely.
//!
//! - [`sync`]: every enabled server's libraries and items into SQLite (a `library_sync`
//!   job), then the roll-up of "last watched" from every source (`db::libraries::rollup`).
//! - [`schedule`]: the sync at start and daily at 03:00 local time.
//! - [`criteria`] (pure) and [`rules`]: what a rule is and what it proposes, with reasons;
//!   [`evaluate`] runs a rule over its libraries after every sync and on demand.
//! - [`delete`]: deleting confirmed candidates through the media server, then the cascade
//!   to Radarr, Sonarr and Seerr, every step logged.
//!
//! The pure parts (criteria, reasons, the daily schedule) take plain data and the time;
//! the I/O (media servers, SQLite, integrations) stays in the shell around them.

pub mod criteria;
pub mod delete;
pub mod evaluate;
pub mod rules;
pub mod schedule;
pub mod sync;
pub mod text;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use jiff::tz::TimeZone;

use self::criteria::Clock;
use self::evaluate::Evaluated;
use self::rules::{Rule, RuleChanges};
use crate::crypto::SecretBox;
use crate::db::maintenance as store;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::jobs::{JobHandle, Jobs, Outcome};
use crate::poller::registry::Registry;
use crate::tasks::{StopSignal, Tasks};
use crate::time::now_ms;

/// The kind of the sync's background jobs.
pub const SYNC_JOB: &str = "library_sync";

/// The maintenance service: managed state, shared by the pages, the API and the schedule.
pub struct Maintenance {
    db: Db,
    registry: Arc<Registry>,
    jobs: Jobs,
    tasks: Arc<Tasks>,
    secrets: SecretBox,
}

/// Who asks, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `user:alice`, `api-key:ci`.
    pub name: String,
    pub ip: Option<IpAddr>,
}

impl Maintenance {
    pub fn new(
        db: Db,
        registry: Arc<Registry>,
        jobs: Jobs,
        tasks: Arc<Tasks>,
        secrets: SecretBox,
    ) -> Self {
        Self { db, registry, jobs, tasks, secrets }
    }

    fn clock() -> Clock {
        Clock { now: now_ms(), tz: TimeZone::system() }
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

    /// What follows every sync: last watched merged from every source, then every enabled
    /// rule evaluated.
    async fn after_sync(&self) -> AppResult<()> {
        self.db.write(db::libraries::rollup).await?;
        for rule in self.rules().await? {
            let id = rule.row.id;
            if let Err(e) = self.evaluate_rule(rule).await {
                tracing::warn!(rule = id, error = %e, "cannot evaluate a maintenance rule");
            }
        }
        Ok(())
    }

    pub async fn rules(&self) -> AppResult<Vec<Rule>> {
        self.db.read(store::list_rules).await?.into_iter().map(Rule::from_row).collect()
    }

    pub async fn rule(&self, id: i64) -> AppResult<Rule> {
        let row = self.db.read(move |conn| store::get_rule(conn, id)).await?;
        Rule::from_row(row.ok_or_else(|| AppError::not_found(format!("maintenance rule {id}")))?)
    }

    async fn evaluate_rule(&self, rule: Rule) -> AppResult<Evaluated> {
        self.db.write(move |conn| evaluate::evaluate(conn, &rule, &Self::clock())).await
    }

    /// Evaluates a rule now, with what was watched since the last sync merged first.
    pub async fn evaluate(&self, id: i64) -> AppResult<Evaluated> {
        let rule = self.rule(id).await?;
        self.db.write(db::libraries::rollup).await?;
        self.evaluate_rule(rule).await
    }

    async fn audit(
        &self,
        actor: &Actor,
        action: &'static str,
        target: String,
        details: serde_json::Value,
    ) {
        let (name, ip) = (actor.name.clone(), actor.ip.map(|i| i.to_string()));
        let written = self
            .db
            .write(move |conn| {
                db::audit::record(
                    conn,
                    &db::audit::NewEntry {
                        actor: &name,
                        action,
                        target: Some(&target),
                        details: (!details.is_null()).then_some(details),
                        ip: ip.as_deref(),
                    },
                )
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, action, "could not write the audit log");
        }
    }

    async fn name_free(&self, name: &str, except: i64) -> AppResult<()> {
        let n = name.to_owned();
        if self.db.read(move |conn| store::rule_name_taken(conn, &n, except)).await? {
            return Err(AppError::validation(
                "name",
                format!("there is already a rule named {name:?}"),
            ));
        }
        Ok(())
    }

    /// Adds a rule and evaluates it at once.
    pub async fn create_rule(&self, changes: RuleChanges, actor: &Actor) -> AppResult<Rule> {
        let libraries = self.db.read(db::libraries::list).await?;
        let input = rules::check(changes, None, &libraries)?;
        self.name_free(&input.name, 0).await?;
        let details = serde_json::json!({"name": input.name, "criteria": input.criteria});
        let id = self.db.write(move |conn| store::insert_rule(conn, &input, now_ms())).await?;
        self.audit(actor, "maintenance_rule.create", format!("maintenance_rule:{id}"), details)
            .await;
        self.evaluate_rule(self.rule(id).await?).await?;
        self.rule(id).await
    }

    /// Changes a rule (what `changes` leaves out stays) and evaluates it again.
    pub async fn update_rule(
        &self,
        id: i64,
        changes: RuleChanges,
        actor: &Actor,
    ) -> AppResult<Rule> {
        let base = self.rule(id).await?;
        let libraries = self.db.read(db::libraries::list).await?;
        let input = rules::check(changes, Some(&base), &libraries)?;
        self.name_free(&input.name, id).await?;
        let details = serde_json::json!({"name": input.name, "enabled": input.enabled, "criteria": input.criteria});
        if !self.db.write(move |conn| store::update_rule(conn, id, &input, now_ms())).await? {
            return Err(AppError::not_found(format!("maintenance rule {id}")));
        }
        self.audit(actor, "maintenance_rule.update", format!("maintenance_rule:{id}"), details)
            .await;
        self.evaluate_rule(self.rule(id).await?).await?;
        self.rule(id).await
    }

    /// Deletes a rule and its candidates (the deletion log keeps its name).
    pub async fn delete_rule(&self, id: i64, actor: &Actor) -> AppResult<()> {
        if !self.db.write(move |conn| store::delete_rule(conn, id)).await? {
            return Err(AppError::not_found(format!("maintenance rule {id}")));
        }
        self.audit(
            actor,
            "maintenance_rule.delete",
            format!("maintenance_rule:{id}"),
            serde_json::Value::Null,
        )
        .await;
        Ok(())
    }

    /// Keeps an item out of every rule, forever or until `until`, and drops its candidates.
    pub async fn exclude(
        &self,
        item_id: i64,
        until: Option<i64>,
        reason: String,
        actor: &Actor,
    ) -> AppResult<i64> {
        let reason = reason.trim().to_owned();
        if reason.chars().count() > 500 {
            return Err(AppError::validation("reason", "at most 500 characters"));
        }
        let now = now_ms();
        if until.is_some_and(|u| u <= now) {
            return Err(AppError::validation(
                "until",
                "must be in the future (leave it out for forever)",
            ));
        }
        let item = self
            .db
            .read(move |conn| db::libraries::get_item(conn, item_id))
            .await?
            .ok_or_else(|| AppError::not_found(format!("library item {item_id}")))?;
        if item.kind == crate::media::library::ItemKind::Episode {
            return Err(AppError::validation(
                "item_id",
                "exclude the show or the season, not an episode",
            ));
        }
        let (by, why) = (actor.name.clone(), reason.clone());
        let id =
            self.db.write(move |conn| store::exclude(conn, item_id, until, &why, &by, now)).await?;
        let details =
            serde_json::json!({"item": item.full_title(), "until": until, "reason": reason});
        self.audit(
            actor,
            "maintenance_exclusion.create",
            format!("library_item:{item_id}"),
            details,
        )
        .await;
        Ok(id)
    }

    /// Removes an exclusion; the item may be a candidate again at the next evaluation.
    pub async fn delete_exclusion(&self, id: i64, actor: &Actor) -> AppResult<()> {
        if !self.db.write(move |conn| store::delete_exclusion(conn, id)).await? {
            return Err(AppError::not_found(format!("exclusion {id}")));
        }
        self.audit(
            actor,
            "maintenance_exclusion.delete",
            format!("maintenance_exclusion:{id}"),
            serde_json::Value::Null,
        )
        .await;
        Ok(())
    }

    /// Deletes the confirmed candidates `ids` (see [`delete`]). The work runs as a task of
    /// its own, so a browser that goes away mid-way does not cut an item's steps short.
    pub async fn delete(
        self: &Arc<Self>,
        ids: Vec<i64>,
        actor: &Actor,
    ) -> AppResult<Vec<delete::ItemResult>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let this = Arc::clone(self);
        let by = actor.name.clone();
        self.tasks.spawn("maintenance delete", move |_stop| async move {
            let deleter = delete::Deleter {
                db: &this.db,
                registry: &this.registry,
                secrets: &this.secrets,
                by: &by,
            };
            let _ = tx.send(deleter.run(&ids).await);
        });
        let results = rx.await.map_err(|_| {
            AppError::Unavailable("the deletion was interrupted by a shutdown".to_owned())
        })??;
        let details = serde_json::json!({"items": results.iter().map(|r| serde_json::json!({"title": r.title, "server": r.server})).collect::<Vec<_>>()});
        self.audit(actor, "maintenance.delete", "library".to_owned(), details).await;
        Ok(results)
    }
}
