//! Deleting candidates, only when an admin confirmed: through the media server's API, then
//! (best effort, each step with a timeout) Radarr, Sonarr and Seerr as the rule says.
//!
//! Per item, in order:
//! 1. Re-check just before: an item excluded since (by itself or its show) or being played
//!    right now is skipped and says why.
//! 2. The deletion is logged as pending before the media server is asked, so a crash in
//!    the middle leaves a trace, never nothing.
//! 3. The media server deletes it (404: it was already gone, which is fine). If the media
//!    server fails, the item's cascade does not run: the files are still there.
//! 4. Radarr, Sonarr and Seerr at once, each bounded by [`STEP_TIMEOUT`]; each outcome and
//!    error is logged.

use std::collections::HashSet;
use std::sync::Arc;

use crate::crypto::SecretBox;
use crate::db::Db;
use crate::db::libraries::{self, ItemRow};
use crate::db::maintenance::{self as store, CandidateRow, Cascade, NewDeletion, Step};
use crate::db::servers;
use crate::error::{AppError, AppResult};
use crate::integrations::{self, IntegrationKind, Outcome, STEP_TIMEOUT, Target};
use crate::media::library::ItemKind;
use crate::media::{MediaError, Removed};
use crate::poller::registry::Registry;
use crate::time::now_ms;

/// What happened to one selected candidate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemResult {
    pub candidate_id: i64,
    pub item_id: Option<i64>,
    pub title: String,
    pub size_bytes: i64,
    /// `deleted`, `already_gone`, `failed`, or `skipped` (excluded, being watched, no longer a
    /// candidate).
    pub server: &'static str,
    /// `deleted`, `not_found`, `skipped` or `failed`.
    pub radarr: &'static str,
    pub sonarr: &'static str,
    pub seerr: &'static str,
    /// What went wrong or why it was skipped, step by step.
    pub error: Option<String>,
    /// The entry in the deletion log.
    pub deletion_id: Option<i64>,
}

/// What a deletion needs.
pub struct Deleter<'a> {
    pub db: &'a Db,
    pub registry: &'a Arc<Registry>,
    pub secrets: &'a SecretBox,
    /// Who confirmed it, for the log: `user:alice`, `api-key:ci`.
    pub by: &'a str,
}

fn skipped(candidate_id: i64, item: Option<&ItemRow>, title: String, why: String) -> ItemResult {
    ItemResult {
        candidate_id,
        item_id: item.map(|i| i.id),
        title,
        size_bytes: 0,
        server: "skipped",
        radarr: "skipped",
        sonarr: "skipped",
        seerr: "skipped",
        error: Some(why),
        deletion_id: None,
    }
}

fn step(outcome: &Outcome) -> Step {
    Step { outcome: outcome.as_str().to_owned(), error: outcome.detail().map(str::to_owned) }
}

impl Deleter<'_> {
    /// Deletes the candidates `ids`, one item after the other (an item two selected
    /// candidates name is deleted once, with the cascade either rule asks for).
    pub async fn run(&self, ids: &[i64]) -> AppResult<Vec<ItemResult>> {
        if ids.is_empty() {
            return Err(AppError::validation("candidate_ids", "select at least one candidate"));
        }
        if ids.len() > 1000 {
            return Err(AppError::validation("candidate_ids", "at most 1,000 at a time"));
        }
        let wanted = ids.to_vec();
        let found = self.db.read(move |conn| store::candidates_by_ids(conn, &wanted)).await?;
        let mut results = Vec::new();
        let mut done: HashSet<i64> = HashSet::new();
        for id in ids {
            let Some(first) = found.iter().find(|c| c.id == *id) else {
                results.push(skipped(
                    *id,
                    None,
                    String::new(),
                    format!("candidate {id} no longer exists: evaluate again"),
                ));
                continue;
            };
            if !done.insert(first.item.id) {
                continue;
            }
            let cascade = found.iter().filter(|c| c.item.id == first.item.id).fold(
                Cascade::default(),
                |a, c| Cascade {
                    radarr: a.radarr || c.cascade.radarr,
                    sonarr: a.sonarr || c.cascade.sonarr,
                    seerr: a.seerr || c.cascade.seerr,
                },
            );
            results.push(self.one(first, cascade).await?);
        }
        if results.iter().any(|r| matches!(r.server, "deleted" | "already_gone")) {
            // Shows lost seasons: their sizes and counts are made of what is left.
            self.db.write(libraries::rollup).await?;
        }
        Ok(results)
    }

    async fn one(&self, candidate: &CandidateRow, cascade: Cascade) -> AppResult<ItemResult> {
        let item = candidate.item.clone();
        let title = item.full_title();
        let now = now_ms();
        let check = item.clone();
        let (excluded, playing) = self
            .db
            .read(move |conn| {
                Ok((store::is_excluded(conn, check.id, now)?, store::playing_now(conn, &check)?))
            })
            .await?;
        if excluded {
            return Ok(skipped(
                candidate.id,
                Some(&item),
                title,
                "excluded since it was proposed: not deleted".to_owned(),
            ));
        }
        if playing {
            return Ok(skipped(
                candidate.id,
                Some(&item),
                title,
                "someone is watching it right now: not deleted".to_owned(),
            ));
        }
        let server_id = item.server_id;
        let (server, library, show) = {
            let lookup = item.clone();
            self.db
                .read(move |conn| {
                    Ok((
                        servers::get(conn, server_id)?,
                        libraries::get(conn, lookup.library_id)?,
                        libraries::show_of(conn, &lookup)?,
                    ))
                })
                .await?
        };
        let Some(server) = server else {
            return Ok(skipped(
                candidate.id,
                Some(&item),
                title,
                "its server was removed from Streamwarden".to_owned(),
            ));
        };
        let library_name = library.map_or_else(String::new, |l| l.name);
        let log = {
            let (item, server_name, rule_name, title, by) = (
                item.clone(),
                server.name.clone(),
                candidate.rule_name.clone(),
                title.clone(),
                self.by.to_owned(),
            );
            let (rule_id, size) = (candidate.rule_id, candidate.size_bytes);
            self.db
                .write(move |conn| {
                    store::insert_deletion(
                        conn,
                        &NewDeletion {
                            item: &item,
                            server_name: &server_name,
                            library_name: &library_name,
                            rule: Some((rule_id, &rule_name)),
                            title: &title,
                            size_bytes: size,
                            deleted_by: &by,
                            at: now,
                        },
                    )
                })
                .await?
        };

        let removed = match self.registry.client(&server) {
            Ok(client) => {
                client.delete_item(&item.external_id).await.map_err(|e: MediaError| e.to_string())
            }
            Err(e) => Err(e.public_message()),
        };
        let server_step = match &removed {
            Ok(Removed::Deleted) => Step { outcome: "deleted".into(), error: None },
            Ok(Removed::AlreadyGone) => Step { outcome: "already_gone".into(), error: None },
            Err(e) => {
                Step { outcome: "failed".into(), error: Some(format!("{}: {e}", server.name)) }
            }
        };
        {
            let s = server_step.clone();
            self.db.write(move |conn| store::set_server_step(conn, log, &s)).await?;
        }
        let (radarr, sonarr, seerr) = if removed.is_ok() {
            let gone = item.clone();
            self.db
                .write(move |conn| {
                    libraries::remove_deleted(conn, &gone)?;
                    libraries::refresh_totals(conn)
                })
                .await?;
            let target = Target {
                kind: item.kind,
                title: title.clone(),
                // A season is known to Sonarr and Seerr by its show's ids.
                ids: if item.kind == ItemKind::Season {
                    show.map(|s| s.ids).unwrap_or_default()
                } else {
                    item.ids.clone()
                },
                season: item.season_number.filter(|_| item.kind == ItemKind::Season),
            };
            tokio::join!(
                self.cascade(IntegrationKind::Radarr, cascade.radarr, &target),
                self.cascade(IntegrationKind::Sonarr, cascade.sonarr, &target),
                self.cascade(IntegrationKind::Seerr, cascade.seerr, &target),
            )
        } else {
            let why = || Outcome::Skipped("the media server did not delete it".to_owned());
            (why(), why(), why())
        };
        let steps = [server_step.clone(), step(&radarr), step(&sonarr), step(&seerr)];
        {
            let steps = steps.clone();
            self.db
                .write(move |conn| {
                    store::finish_deletion(
                        conn,
                        log,
                        [&steps[0], &steps[1], &steps[2], &steps[3]],
                        now_ms(),
                    )
                })
                .await?;
        }
        let errors: Vec<String> = [
            ("media server", &steps[0]),
            ("Radarr", &steps[1]),
            ("Sonarr", &steps[2]),
            ("Seerr", &steps[3]),
        ]
        .iter()
        .filter(|(_, s)| s.outcome == "failed")
        .filter_map(|(name, s)| s.error.as_ref().map(|e| format!("{name}: {e}")))
        .collect();
        tracing::info!(item = item.id, title = %title, server = %server_step.outcome, radarr = radarr.as_str(), sonarr = sonarr.as_str(), seerr = seerr.as_str(), by = self.by, "library item deleted");
        Ok(ItemResult {
            candidate_id: candidate.id,
            item_id: Some(item.id),
            title,
            size_bytes: candidate.size_bytes,
            server: match server_step.outcome.as_str() {
                "deleted" => "deleted",
                "already_gone" => "already_gone",
                _ => "failed",
            },
            radarr: radarr.as_str(),
            sonarr: sonarr.as_str(),
            seerr: seerr.as_str(),
            error: (!errors.is_empty()).then(|| errors.join("; ")),
            deletion_id: Some(log),
        })
    }

    /// One cascade step: every enabled instance of `kind`, each bounded by the step timeout.
    async fn cascade(&self, kind: IntegrationKind, on: bool, target: &Target) -> Outcome {
        if !on {
            return Outcome::Skipped(format!("the rule does not cascade to {}", kind.label()));
        }
        let instances = match integrations::admin::enabled_of(self.db, self.secrets, kind).await {
            Ok(i) => i,
            Err(e) => return Outcome::Failed(e.public_message()),
        };
        if instances.is_empty() {
            return Outcome::Skipped(format!(
                "no {} is set up in Settings → Integrations",
                kind.label()
            ));
        }
        let mut outcomes = Vec::new();
        for (name, client) in instances {
            let outcome = match client {
                Err(e) => Outcome::Failed(e.public_message()),
                Ok(client) => match tokio::time::timeout(STEP_TIMEOUT, client.remove(target)).await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Failed(format!(
                        "no answer within {} seconds",
                        STEP_TIMEOUT.as_secs()
                    )),
                },
            };
            outcomes.push((name, outcome));
        }
        Outcome::combine(outcomes)
    }
}
