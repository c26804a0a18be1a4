//! Maintenance rules, their candidates, exclusions and the deletion log.

use rusqlite::{Connection, OptionalExtension as _, Row, Transaction, params};
use serde::Serialize;

use super::libraries::{ItemRow, item_from_row};
use crate::error::AppResult;

const RULE_COLUMNS: &str = "r.id, r.name, r.enabled, r.match, r.criteria, r.cascade_radarr, r.cascade_sonarr, \
     r.cascade_seerr, r.created_at, r.updated_at, r.evaluated_at, \
     (SELECT group_concat(library_id) FROM maintenance_rule_libraries l WHERE l.rule_id = r.id), \
     (SELECT count(*) FROM maintenance_candidates c WHERE c.rule_id = r.id), \
     (SELECT coalesce(sum(size_bytes), 0) FROM maintenance_candidates c WHERE c.rule_id = r.id)";
const INSERT_RULE: &str = "INSERT INTO maintenance_rules (name, enabled, match, criteria, cascade_radarr, \
     cascade_sonarr, cascade_seerr, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING id";
const UPDATE_RULE: &str = "UPDATE maintenance_rules SET name = ?2, enabled = ?3, match = ?4, criteria = ?5, \
     cascade_radarr = ?6, cascade_sonarr = ?7, cascade_seerr = ?8, updated_at = ?9 WHERE id = ?1";
const DELETE_RULE: &str = "DELETE FROM maintenance_rules WHERE id = ?1";
const CLEAR_RULE_LIBRARIES: &str = "DELETE FROM maintenance_rule_libraries WHERE rule_id = ?1";
const ADD_RULE_LIBRARY: &str =
    "INSERT OR IGNORE INTO maintenance_rule_libraries (rule_id, library_id) VALUES (?1, ?2)";
const RULE_NAME_TAKEN: &str =
    "SELECT EXISTS (SELECT 1 FROM maintenance_rules WHERE name = ?1 COLLATE NOCASE AND id != ?2)";
const SET_EVALUATED: &str = "UPDATE maintenance_rules SET evaluated_at = ?2 WHERE id = ?1";

const UPSERT_CANDIDATE: &str = "INSERT INTO maintenance_candidates (rule_id, item_id, reasons, size_bytes, evaluated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (rule_id, item_id) DO UPDATE SET reasons = excluded.reasons, \
     size_bytes = excluded.size_bytes, evaluated_at = excluded.evaluated_at";
const DROP_STALE: &str =
    "DELETE FROM maintenance_candidates WHERE rule_id = ?1 AND evaluated_at != ?2";
const DROP_CANDIDATES_OF_ITEM: &str = "DELETE FROM maintenance_candidates WHERE item_id = ?1 OR item_id IN \
     (SELECT s.id FROM library_items s JOIN library_items p ON p.server_id = s.server_id \
      AND p.external_id = s.show_external_id WHERE p.id = ?1 AND s.kind = 'season')";
const CANDIDATE_TAIL: &str = ", c.id, c.rule_id, r.name, c.reasons, c.size_bytes, c.evaluated_at, \
     r.cascade_radarr, r.cascade_sonarr, r.cascade_seerr \
     FROM maintenance_candidates c JOIN maintenance_rules r ON r.id = c.rule_id \
     JOIN library_items i ON i.id = c.item_id";
const CANDIDATE_FILTER: &str =
    " WHERE (?1 IS NULL OR c.rule_id = ?1) AND (?2 IS NULL OR i.library_id = ?2)";
const CANDIDATE_TOTALS: &str = "SELECT count(*), coalesce(sum(size), 0) FROM (SELECT c.item_id, max(c.size_bytes) AS size \
     FROM maintenance_candidates c JOIN library_items i ON i.id = c.item_id \
     WHERE (?1 IS NULL OR c.rule_id = ?1) AND (?2 IS NULL OR i.library_id = ?2) GROUP BY c.item_id)";
const RECLAIMABLE_BY_LIBRARY: &str = "SELECT library_id, count(*), sum(size) FROM (SELECT i.library_id, c.item_id, \
     max(c.size_bytes) AS size FROM maintenance_candidates c JOIN library_items i ON i.id = c.item_id \
     GROUP BY c.item_id) GROUP BY library_id";

const EXCLUSION_COLUMNS: &str = "e.id, e.item_id, e.until, e.reason, e.created_by, e.created_at";
const UPSERT_EXCLUSION: &str = "INSERT INTO maintenance_exclusions (item_id, until, reason, created_by, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (item_id) DO UPDATE SET until = excluded.until, reason = excluded.reason, \
     created_by = excluded.created_by, created_at = excluded.created_at RETURNING id";
const DELETE_EXCLUSION: &str = "DELETE FROM maintenance_exclusions WHERE id = ?1";
/// An item is excluded by its own exclusion or by its show's.
const EXCLUDED: &str = "SELECT EXISTS (SELECT 1 FROM maintenance_exclusions e JOIN library_items x ON x.id = e.item_id \
     WHERE (e.until IS NULL OR e.until > ?2) AND (x.id = ?1 OR (x.kind = 'show' AND EXISTS (SELECT 1 FROM library_items i \
     WHERE i.id = ?1 AND i.server_id = x.server_id AND i.show_external_id = x.external_id))))";
const ACTIVE_EXCLUSIONS: &str =
    "SELECT item_id FROM maintenance_exclusions WHERE until IS NULL OR until > ?1";

const DELETION_COLUMNS: &str = "id, item_id, server_id, server_name, library_name, rule_id, rule_name, kind, title, \
     external_id, size_bytes, deleted_by, deleted_at, server_outcome, server_error, radarr, radarr_error, sonarr, \
     sonarr_error, seerr, seerr_error, finished_at";
const INSERT_DELETION: &str = "INSERT INTO maintenance_deletions (item_id, server_id, server_name, library_name, \
     rule_id, rule_name, kind, title, external_id, size_bytes, deleted_by, deleted_at, server_outcome, radarr, sonarr, seerr) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', 'pending', 'pending', 'pending') RETURNING id";
const FINISH_DELETION: &str = "UPDATE maintenance_deletions SET server_outcome = ?2, server_error = ?3, radarr = ?4, \
     radarr_error = ?5, sonarr = ?6, sonarr_error = ?7, seerr = ?8, seerr_error = ?9, finished_at = ?10 WHERE id = ?1";
/// Someone is playing the item (a movie or episode), the show, or the season now.
const PLAYING_NOW: &str = "SELECT EXISTS (SELECT 1 FROM plays p WHERE p.server_id = ?1 AND p.status != 'stopped' \
     AND (p.item_id = ?2 OR (p.grandparent_item_id = ?3 AND (?4 IS NULL OR p.season = ?4))))";
const SET_SERVER_STEP: &str =
    "UPDATE maintenance_deletions SET server_outcome = ?2, server_error = ?3 WHERE id = ?1";

#[cfg(test)]
pub(crate) fn statements() -> Vec<String> {
    let mut all: Vec<String> = [
        INSERT_RULE,
        UPDATE_RULE,
        DELETE_RULE,
        CLEAR_RULE_LIBRARIES,
        ADD_RULE_LIBRARY,
        RULE_NAME_TAKEN,
        SET_EVALUATED,
        UPSERT_CANDIDATE,
        DROP_STALE,
        DROP_CANDIDATES_OF_ITEM,
        CANDIDATE_TOTALS,
        RECLAIMABLE_BY_LIBRARY,
        UPSERT_EXCLUSION,
        DELETE_EXCLUSION,
        EXCLUDED,
        ACTIVE_EXCLUSIONS,
        INSERT_DELETION,
        FINISH_DELETION,
        SET_SERVER_STEP,
        PLAYING_NOW,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    all.push(rule_by_id());
    all.push(list_rules_sql());
    all.push(candidate_page_sql());
    all.push(candidate_by_ids_sql());
    all.push(exclusion_list_sql());
    all.push(deletion_page_sql());
    all
}

fn list_rules_sql() -> String {
    format!("SELECT {RULE_COLUMNS} FROM maintenance_rules r ORDER BY r.name COLLATE NOCASE, r.id")
}

fn rule_by_id() -> String {
    format!("SELECT {RULE_COLUMNS} FROM maintenance_rules r WHERE r.id = ?1")
}

/// A maintenance rule as stored; `criteria` is the JSON the maintenance module reads.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    /// `all` or `any`.
    pub match_: String,
    pub criteria: serde_json::Value,
    pub cascade: Cascade,
    pub created_at: i64,
    pub updated_at: i64,
    pub evaluated_at: Option<i64>,
    pub library_ids: Vec<i64>,
    /// From its last evaluation.
    pub candidates: i64,
    pub size_bytes: i64,
}

/// Where a rule's deletions cascade to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Cascade {
    #[serde(default)]
    pub radarr: bool,
    #[serde(default)]
    pub sonarr: bool,
    #[serde(default)]
    pub seerr: bool,
}

fn rule_from_row(r: &Row<'_>) -> rusqlite::Result<RuleRow> {
    let criteria: String = r.get(4)?;
    let libraries: Option<String> = r.get(11)?;
    let mut library_ids: Vec<i64> =
        libraries.unwrap_or_default().split(',').filter_map(|s| s.parse().ok()).collect();
    library_ids.sort_unstable();
    Ok(RuleRow {
        id: r.get(0)?,
        name: r.get(1)?,
        enabled: r.get(2)?,
        match_: r.get(3)?,
        criteria: serde_json::from_str(&criteria).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?,
        cascade: Cascade { radarr: r.get(5)?, sonarr: r.get(6)?, seerr: r.get(7)? },
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        evaluated_at: r.get(10)?,
        library_ids,
        candidates: r.get(12)?,
        size_bytes: r.get(13)?,
    })
}

/// What a rule is made of, checked by the maintenance module.
#[derive(Debug, Clone)]
pub struct RuleInput {
    pub name: String,
    pub enabled: bool,
    pub match_: &'static str,
    pub criteria: serde_json::Value,
    pub cascade: Cascade,
    pub library_ids: Vec<i64>,
}

pub fn list_rules(conn: &Connection) -> AppResult<Vec<RuleRow>> {
    let rows = conn
        .prepare_cached(&list_rules_sql())?
        .query_map([], rule_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn get_rule(conn: &Connection, id: i64) -> AppResult<Option<RuleRow>> {
    Ok(conn.prepare_cached(&rule_by_id())?.query_row([id], rule_from_row).optional()?)
}

pub fn rule_name_taken(conn: &Connection, name: &str, except: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(RULE_NAME_TAKEN)?.query_row(params![name, except], |r| r.get(0))?)
}

fn set_libraries(tx: &Transaction<'_>, id: i64, library_ids: &[i64]) -> AppResult<()> {
    tx.prepare_cached(CLEAR_RULE_LIBRARIES)?.execute([id])?;
    let mut add = tx.prepare_cached(ADD_RULE_LIBRARY)?;
    for library in library_ids {
        add.execute(params![id, library])?;
    }
    Ok(())
}

pub fn insert_rule(conn: &mut Connection, input: &RuleInput, now: i64) -> AppResult<i64> {
    let tx = conn.transaction()?;
    let id: i64 = tx.prepare_cached(INSERT_RULE)?.query_row(
        params![
            input.name,
            input.enabled,
            input.match_,
            input.criteria.to_string(),
            input.cascade.radarr,
            input.cascade.sonarr,
            input.cascade.seerr,
            now
        ],
        |r| r.get(0),
    )?;
    set_libraries(&tx, id, &input.library_ids)?;
    tx.commit()?;
    Ok(id)
}

/// Changes a rule; its old candidates stay until it is evaluated again (which the
/// maintenance module does right after).
pub fn update_rule(conn: &mut Connection, id: i64, input: &RuleInput, now: i64) -> AppResult<bool> {
    let tx = conn.transaction()?;
    let changed = tx.prepare_cached(UPDATE_RULE)?.execute(params![
        id,
        input.name,
        input.enabled,
        input.match_,
        input.criteria.to_string(),
        input.cascade.radarr,
        input.cascade.sonarr,
        input.cascade.seerr,
        now
    ])? > 0;
    if changed {
        set_libraries(&tx, id, &input.library_ids)?;
    }
    tx.commit()?;
    Ok(changed)
}

pub fn delete_rule(conn: &Connection, id: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(DELETE_RULE)?.execute([id])? > 0)
}

/// Replaces a rule's candidates with `proposals` (item id, reasons, bytes), keeping the ids
/// of those that stay. One transaction with the evaluation that produced them.
pub fn store_candidates(
    tx: &Transaction<'_>,
    rule_id: i64,
    proposals: &[(i64, Vec<String>, i64)],
    now: i64,
) -> AppResult<()> {
    let mut upsert = tx.prepare_cached(UPSERT_CANDIDATE)?;
    for (item, reasons, size) in proposals {
        let reasons = serde_json::to_string(reasons).unwrap_or_else(|_| "[]".to_owned());
        upsert.execute(params![rule_id, item, reasons, size, now])?;
    }
    tx.prepare_cached(DROP_STALE)?.execute(params![rule_id, now])?;
    tx.prepare_cached(SET_EVALUATED)?.execute(params![rule_id, now])?;
    Ok(())
}

/// A candidate with its item and rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateRow {
    pub item: ItemRow,
    pub id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    pub reasons: Vec<String>,
    pub size_bytes: i64,
    pub evaluated_at: i64,
    pub cascade: Cascade,
}

fn candidate_from_row(r: &Row<'_>) -> rusqlite::Result<CandidateRow> {
    let reasons: String = r.get(30)?;
    Ok(CandidateRow {
        item: item_from_row(r)?,
        id: r.get(27)?,
        rule_id: r.get(28)?,
        rule_name: r.get(29)?,
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        size_bytes: r.get(31)?,
        evaluated_at: r.get(32)?,
        cascade: Cascade { radarr: r.get(33)?, sonarr: r.get(34)?, seerr: r.get(35)? },
    })
}

fn candidate_page_sql() -> String {
    format!(
        "SELECT {}{CANDIDATE_TAIL}{CANDIDATE_FILTER} AND (?3 IS NULL OR c.size_bytes < ?3 OR (c.size_bytes = ?3 AND c.id < ?4)) \
         ORDER BY c.size_bytes DESC, c.id DESC LIMIT ?5",
        crate::db::libraries::library_item_columns!()
    )
}

fn candidate_by_ids_sql() -> String {
    format!(
        "SELECT {}{CANDIDATE_TAIL} WHERE c.id IN (SELECT value FROM json_each(?1)) ORDER BY c.size_bytes DESC, c.id DESC",
        crate::db::libraries::library_item_columns!()
    )
}

/// Where the next page of candidates starts (they come biggest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateCursor {
    pub size_bytes: i64,
    pub id: i64,
}

impl CandidateCursor {
    pub fn encode(self) -> String {
        format!("{}.{}", self.size_bytes, self.id)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (size, id) = raw.split_once('.')?;
        Some(Self { size_bytes: size.parse().ok()?, id: id.parse().ok()? })
    }
}

/// A page of candidates, the biggest first.
pub fn candidates(
    conn: &Connection,
    rule_id: Option<i64>,
    library_id: Option<i64>,
    cursor: Option<CandidateCursor>,
    limit: u32,
) -> AppResult<(Vec<CandidateRow>, Option<CandidateCursor>)> {
    let mut rows = conn
        .prepare_cached(&candidate_page_sql())?
        .query_map(
            params![
                rule_id,
                library_id,
                cursor.map(|c| c.size_bytes),
                cursor.map(|c| c.id),
                i64::from(limit) + 1
            ],
            candidate_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|c| CandidateCursor { size_bytes: c.size_bytes, id: c.id })
    } else {
        None
    };
    Ok((rows, next))
}

/// The candidates with these ids (those that still exist), biggest first.
pub fn candidates_by_ids(conn: &Connection, ids: &[i64]) -> AppResult<Vec<CandidateRow>> {
    let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned());
    let rows = conn
        .prepare_cached(&candidate_by_ids_sql())?
        .query_map([ids], candidate_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Distinct items and the bytes they free (an item two rules propose counts once).
pub fn candidate_totals(
    conn: &Connection,
    rule_id: Option<i64>,
    library_id: Option<i64>,
) -> AppResult<(i64, i64)> {
    Ok(conn
        .prepare_cached(CANDIDATE_TOTALS)?
        .query_row(params![rule_id, library_id], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Per library: (library id, distinct candidate items, bytes they free).
pub fn reclaimable_by_library(conn: &Connection) -> AppResult<Vec<(i64, i64, i64)>> {
    let rows = conn
        .prepare_cached(RECLAIMABLE_BY_LIBRARY)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// An exclusion, with the item it keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct ExclusionRow {
    pub id: i64,
    pub item_id: i64,
    /// Unix milliseconds; `None`: forever.
    pub until: Option<i64>,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    pub item: ItemRow,
}

fn exclusion_list_sql() -> String {
    format!(
        "SELECT {}, {EXCLUSION_COLUMNS} FROM maintenance_exclusions e JOIN library_items i ON i.id = e.item_id \
         ORDER BY e.created_at DESC, e.id DESC",
        crate::db::libraries::library_item_columns!()
    )
}

pub fn exclusions(conn: &Connection) -> AppResult<Vec<ExclusionRow>> {
    let rows = conn
        .prepare_cached(&exclusion_list_sql())?
        .query_map([], |r| {
            Ok(ExclusionRow {
                item: item_from_row(r)?,
                id: r.get(27)?,
                item_id: r.get(28)?,
                until: r.get(29)?,
                reason: r.get(30)?,
                created_by: r.get(31)?,
                created_at: r.get(32)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Excludes an item (replacing an earlier exclusion of it) and drops its candidates (and
/// its seasons' when it is a show); returns the exclusion's id.
pub fn exclude(
    conn: &mut Connection,
    item_id: i64,
    until: Option<i64>,
    reason: &str,
    by: &str,
    now: i64,
) -> AppResult<i64> {
    let tx = conn.transaction()?;
    let id = tx
        .prepare_cached(UPSERT_EXCLUSION)?
        .query_row(params![item_id, until, reason, by, now], |r| r.get(0))?;
    tx.prepare_cached(DROP_CANDIDATES_OF_ITEM)?.execute([item_id])?;
    tx.commit()?;
    Ok(id)
}

pub fn delete_exclusion(conn: &Connection, id: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(DELETE_EXCLUSION)?.execute([id])? > 0)
}

/// Whether an item is excluded at `now`, by itself or by its show.
pub fn is_excluded(conn: &Connection, item_id: i64, now: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(EXCLUDED)?.query_row(params![item_id, now], |r| r.get(0))?)
}

/// Ids of the items excluded at `now` (shows stand for their seasons too).
pub fn active_exclusions(conn: &Connection, now: i64) -> AppResult<std::collections::HashSet<i64>> {
    let ids = conn
        .prepare_cached(ACTIVE_EXCLUSIONS)?
        .query_map([now], |r| r.get(0))?
        .collect::<Result<std::collections::HashSet<i64>, _>>()?;
    Ok(ids)
}

/// One step's outcome in the log: `pending`, `deleted`, `already_gone` (the media server
/// only), `not_found`, `skipped` or `failed`, with the error when there was one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub outcome: String,
    pub error: Option<String>,
}

/// A logged deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRow {
    pub id: i64,
    pub item_id: Option<i64>,
    pub server_id: i64,
    pub server_name: String,
    pub library_name: String,
    pub rule_id: Option<i64>,
    pub rule_name: Option<String>,
    pub kind: String,
    pub title: String,
    pub external_id: String,
    pub size_bytes: i64,
    pub deleted_by: String,
    pub deleted_at: i64,
    pub server: Step,
    pub radarr: Step,
    pub sonarr: Step,
    pub seerr: Step,
    pub finished_at: Option<i64>,
}

fn deletion_from_row(r: &Row<'_>) -> rusqlite::Result<DeletionRow> {
    let step = |o: usize| -> rusqlite::Result<Step> {
        Ok(Step { outcome: r.get(o)?, error: r.get(o + 1)? })
    };
    Ok(DeletionRow {
        id: r.get(0)?,
        item_id: r.get(1)?,
        server_id: r.get(2)?,
        server_name: r.get(3)?,
        library_name: r.get(4)?,
        rule_id: r.get(5)?,
        rule_name: r.get(6)?,
        kind: r.get(7)?,
        title: r.get(8)?,
        external_id: r.get(9)?,
        size_bytes: r.get(10)?,
        deleted_by: r.get(11)?,
        deleted_at: r.get(12)?,
        server: step(13)?,
        radarr: step(15)?,
        sonarr: step(17)?,
        seerr: step(19)?,
        finished_at: r.get(21)?,
    })
}

/// What a deletion is about, written before the media server is asked.
pub struct NewDeletion<'a> {
    pub item: &'a ItemRow,
    pub server_name: &'a str,
    pub library_name: &'a str,
    pub rule: Option<(i64, &'a str)>,
    pub title: &'a str,
    pub size_bytes: i64,
    pub deleted_by: &'a str,
    pub at: i64,
}

pub fn insert_deletion(conn: &Connection, d: &NewDeletion<'_>) -> AppResult<i64> {
    Ok(conn.prepare_cached(INSERT_DELETION)?.query_row(
        params![
            d.item.id,
            d.item.server_id,
            d.server_name,
            d.library_name,
            d.rule.map(|r| r.0),
            d.rule.map(|r| r.1),
            d.item.kind.as_str(),
            d.title,
            d.item.external_id,
            d.size_bytes,
            d.deleted_by,
            d.at
        ],
        |r| r.get(0),
    )?)
}

/// Records the media server's step as soon as it is known.
pub fn set_server_step(conn: &Connection, id: i64, step: &Step) -> AppResult<()> {
    conn.prepare_cached(SET_SERVER_STEP)?.execute(params![id, step.outcome, step.error])?;
    Ok(())
}

/// Records every step's outcome and when the deletion ended.
pub fn finish_deletion(conn: &Connection, id: i64, steps: [&Step; 4], at: i64) -> AppResult<()> {
    let [server, radarr, sonarr, seerr] = steps;
    conn.prepare_cached(FINISH_DELETION)?.execute(params![
        id,
        server.outcome,
        server.error,
        radarr.outcome,
        radarr.error,
        sonarr.outcome,
        sonarr.error,
        seerr.outcome,
        seerr.error,
        at
    ])?;
    Ok(())
}

fn deletion_page_sql() -> String {
    format!(
        "SELECT {DELETION_COLUMNS} FROM maintenance_deletions WHERE (?1 IS NULL OR deleted_at < ?1 OR (deleted_at = ?1 AND id < ?2)) \
         ORDER BY deleted_at DESC, id DESC LIMIT ?3"
    )
}

/// Where a page of the deletion log starts: `(deleted_at, id)` of the previous page's last row.
pub type DeletionCursor = (i64, i64);

/// The log, newest first, after `before`; the rows and where the next page starts.
pub fn deletions(
    conn: &Connection,
    before: Option<DeletionCursor>,
    limit: u32,
) -> AppResult<(Vec<DeletionRow>, Option<DeletionCursor>)> {
    let mut rows = conn
        .prepare_cached(&deletion_page_sql())?
        .query_map(
            params![before.map(|b| b.0), before.map(|b| b.1), i64::from(limit) + 1],
            deletion_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|d| (d.deleted_at, d.id))
    } else {
        None
    };
    Ok((rows, next))
}

/// Whether someone is playing `item` right now (for a show, any of its episodes; for a
/// season, any of its episodes).
pub fn playing_now(conn: &Connection, item: &ItemRow) -> AppResult<bool> {
    use crate::media::library::ItemKind;
    let (show, season) = match item.kind {
        ItemKind::Show => (Some(item.external_id.as_str()), None),
        ItemKind::Season => (item.show_external_id.as_deref(), item.season_number),
        ItemKind::Movie | ItemKind::Episode => (None, None),
    };
    Ok(conn
        .prepare_cached(PLAYING_NOW)?
        .query_row(params![item.server_id, item.external_id, show, season], |r| r.get(0))?)
}
