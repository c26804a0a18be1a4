//! The shell around the pure criteria: reads a rule's libraries row by row, asks
//! [`criteria::evaluate`] about each movie and show, and stores what it proposes.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use super::criteria::{self, Clock, Facts};
use super::rules::Rule;
use crate::db::libraries::{self, FactsRow};
use crate::db::maintenance;
use crate::error::AppResult;
use crate::media::library::ItemKind;

/// What one evaluation found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evaluated {
    pub candidates: i64,
    pub size_bytes: i64,
}

fn facts(row: &FactsRow) -> Facts {
    Facts {
        id: row.id,
        kind: Some(row.kind),
        added_at: row.added_at,
        last_watched_at: row.last_watched_at,
        size_bytes: row.size_bytes,
        width: row.width,
        height: row.height,
        episode_count: row.episode_count.unwrap_or(0),
        watched_episode_count: row.watched_episode_count.unwrap_or(0),
        season_number: row.season_number,
    }
}

/// Evaluates `rule` over its libraries and replaces its candidates, in one transaction. A
/// disabled rule proposes nothing. Excluded items (and the seasons of excluded shows) are
/// never candidates.
pub fn evaluate(conn: &mut Connection, rule: &Rule, clock: &Clock) -> AppResult<Evaluated> {
    let tx = conn.transaction()?;
    let excluded = maintenance::active_exclusions(&tx, clock.now)?;
    let trims_seasons =
        rule.criteria.iter().any(|c| matches!(c, criteria::Criterion::KeepLatestSeasons { .. }));
    let mut proposals: Vec<(i64, Vec<String>, i64)> = Vec::new();
    if rule.row.enabled {
        for library in &rule.row.library_ids {
            let seasons = if trims_seasons {
                seasons_by_show(&tx, *library, &excluded)?
            } else {
                HashMap::new()
            };
            for kind in [ItemKind::Movie, ItemKind::Show] {
                libraries::each_fact(&tx, *library, kind, |row| {
                    if excluded.contains(&row.id) {
                        return Ok(());
                    }
                    let own = seasons.get(&row.external_id).map_or(&[][..], Vec::as_slice);
                    for p in criteria::evaluate(rule.how, &rule.criteria, &facts(&row), own, clock)
                    {
                        proposals.push((p.item_id, p.reasons, p.size_bytes));
                    }
                    Ok(())
                })?;
            }
        }
    }
    maintenance::store_candidates(&tx, rule.row.id, &proposals, clock.now)?;
    tx.commit()?;
    Ok(Evaluated {
        candidates: i64::try_from(proposals.len()).unwrap_or(i64::MAX),
        size_bytes: proposals.iter().map(|p| p.2).sum(),
    })
}

/// The seasons of a library by their show's external id, excluded seasons left out.
fn seasons_by_show(
    conn: &Connection,
    library: i64,
    excluded: &HashSet<i64>,
) -> AppResult<HashMap<String, Vec<Facts>>> {
    let mut by_show: HashMap<String, Vec<Facts>> = HashMap::new();
    libraries::each_fact(conn, library, ItemKind::Season, |row| {
        if let Some(show) = row.show_external_id.clone()
            && !excluded.contains(&row.id)
        {
            by_show.entry(show).or_default().push(facts(&row));
        }
        Ok(())
    })?;
    Ok(by_show)
}
