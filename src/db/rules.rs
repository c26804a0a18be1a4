//! Rules, violations, what their actions did, and action cooldowns.

use std::collections::HashMap;
use std::fmt::Write as _;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension as _, Row, params, params_from_iter};
use serde::Serialize;

use crate::auth::model::Scope;
use crate::error::{AppError, AppResult};
use crate::rules::eval::Verdict;
use crate::rules::model::{Rule, RuleDef, Severity};

const LIST: &str = "SELECT id, name, description, severity, enabled, server_ids, exempt_user_ids, conditions, actions, preset \
     FROM rules ORDER BY name COLLATE NOCASE";
const GET: &str = "SELECT id, name, description, severity, enabled, server_ids, exempt_user_ids, conditions, actions, preset \
     FROM rules WHERE id = ?1";
const INSERT: &str = "INSERT INTO rules (name, description, severity, enabled, server_ids, exempt_user_ids, conditions, actions, preset, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) RETURNING id";
const UPDATE: &str = "UPDATE rules SET name = ?2, description = ?3, severity = ?4, enabled = ?5, server_ids = ?6, \
     exempt_user_ids = ?7, conditions = ?8, actions = ?9, updated_at = ?10 WHERE id = ?1";
const SET_ENABLED: &str = "UPDATE rules SET enabled = ?2, updated_at = ?3 WHERE id = ?1";
const DELETE: &str = "DELETE FROM rules WHERE id = ?1";
const NAME_TAKEN: &str =
    "SELECT EXISTS (SELECT 1 FROM rules WHERE name = ?1 COLLATE NOCASE AND id != ?2)";
const COUNTS: &str = "SELECT rule_id, sum(status = 'open'), count(*) FROM violations WHERE rule_id IS NOT NULL GROUP BY rule_id";

const INSERT_VIOLATION: &str = "INSERT INTO violations (rule_id, rule_name, severity, user_id, play_id, server_id, dedup_key, at, summary, evidence) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING RETURNING id";
const VIOLATION_COLUMNS: &str = "v.id, v.rule_id, v.rule_name, v.severity, v.user_id, u.name, v.play_id, v.server_id, s.name, \
     v.dedup_key, v.at, v.summary, v.evidence, v.status, v.resolved_at, v.resolved_by, v.note";
const VIOLATION_FROM: &str = " FROM violations v JOIN media_users u ON u.id = v.user_id LEFT JOIN servers s ON s.id = v.server_id";
const SET_STATUS: &str = "UPDATE violations SET status = ?2, resolved_at = ?3, resolved_by = ?4, note = coalesce(?5, note) WHERE id = ?1";

const INSERT_ACTION: &str = "INSERT INTO violation_actions (violation_id, action, spec, outcome, message, at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id";
const UPDATE_ACTION: &str =
    "UPDATE violation_actions SET outcome = ?2, message = ?3, at = ?4 WHERE id = ?1";
const ACTIONS_OF: &str = "SELECT id, action, spec, outcome, message, at FROM violation_actions WHERE violation_id = ?1 ORDER BY id";

const COOLDOWN: &str =
    "SELECT until FROM action_cooldowns WHERE rule_id = ?1 AND user_id = ?2 AND action = ?3";
const SET_COOLDOWN: &str = "INSERT INTO action_cooldowns (rule_id, user_id, action, until) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (rule_id, user_id, action) DO UPDATE SET until = excluded.until";

#[cfg(test)]
pub(crate) fn statements() -> Vec<String> {
    [
        LIST,
        GET,
        INSERT,
        UPDATE,
        SET_ENABLED,
        DELETE,
        NAME_TAKEN,
        COUNTS,
        INSERT_VIOLATION,
        SET_STATUS,
        INSERT_ACTION,
        UPDATE_ACTION,
        ACTIONS_OF,
        COOLDOWN,
        SET_COOLDOWN,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("SELECT {VIOLATION_COLUMNS}{VIOLATION_FROM} WHERE v.id = ?1")])
    .collect()
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn rule_from_row(r: &Row<'_>) -> rusqlite::Result<AppResult<Rule>> {
    let id: i64 = r.get(0)?;
    let severity: String = r.get(3)?;
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let (server_ids, exempt, conditions, actions) = (text(5)?, text(6)?, text(7)?, text(8)?);
    let parsed = (|| -> Result<RuleDef, serde_json::Error> {
        Ok(RuleDef {
            name: r.get(1).unwrap_or_default(),
            description: r.get(2).unwrap_or_default(),
            severity: severity.trim().parse::<Severity>().ok().unwrap_or_default(),
            enabled: r.get(4).unwrap_or(false),
            server_ids: serde_json::from_str(&server_ids)?,
            exempt_user_ids: serde_json::from_str(&exempt)?,
            conditions: serde_json::from_str(&conditions)?,
            actions: serde_json::from_str(&actions)?,
        })
    })();
    let preset: Option<String> = r.get(9)?;
    Ok(parsed
        .map_err(|e| AppError::internal(format!("rule {id} holds unexpected JSON"), e))
        .and_then(|def| {
            def.compile().map_err(|e| {
                AppError::internal(format!("stored rule {id} is invalid"), e.to_string())
            })
        })
        .map(|mut rule| {
            rule.id = id;
            rule.preset = preset;
            rule
        }))
}

/// Every rule; a stored rule that no longer checks out is logged and left out.
pub fn list(conn: &Connection) -> AppResult<Vec<Rule>> {
    let mut stmt = conn.prepare_cached(LIST)?;
    let rows = stmt.query_map([], rule_from_row)?;
    let mut rules = Vec::new();
    for row in rows {
        match row? {
            Ok(rule) => rules.push(rule),
            Err(e) => tracing::error!(error = %e, "skipping a rule"),
        }
    }
    Ok(rules)
}

pub fn get(conn: &Connection, id: i64) -> AppResult<Option<Rule>> {
    conn.prepare_cached(GET)?.query_row([id], rule_from_row).optional()?.transpose()
}

fn check_name(conn: &Connection, name: &str, id: i64) -> AppResult<()> {
    let taken: bool =
        conn.prepare_cached(NAME_TAKEN)?.query_row(params![name, id], |r| r.get(0))?;
    if taken {
        return Err(AppError::Conflict(format!("A rule named {name:?} exists already.")));
    }
    Ok(())
}

fn def_columns(rule: &Rule) -> (String, String, String, String) {
    let def = rule.def();
    (json(&def.server_ids), json(&def.exempt_user_ids), json(&def.conditions), json(&def.actions))
}

pub fn insert(conn: &Connection, rule: &Rule, now: i64) -> AppResult<i64> {
    check_name(conn, &rule.name, 0)?;
    let (servers, exempt, conditions, actions) = def_columns(rule);
    Ok(conn.prepare_cached(INSERT)?.query_row(
        params![
            rule.name,
            rule.description,
            rule.severity.as_str(),
            rule.enabled,
            servers,
            exempt,
            conditions,
            actions,
            rule.preset,
            now
        ],
        |r| r.get(0),
    )?)
}

/// Replaces a rule; false if it does not exist.
pub fn update(conn: &Connection, id: i64, rule: &Rule, now: i64) -> AppResult<bool> {
    check_name(conn, &rule.name, id)?;
    let (servers, exempt, conditions, actions) = def_columns(rule);
    let n = conn.prepare_cached(UPDATE)?.execute(params![
        id,
        rule.name,
        rule.description,
        rule.severity.as_str(),
        rule.enabled,
        servers,
        exempt,
        conditions,
        actions,
        now
    ])?;
    Ok(n > 0)
}

pub fn set_enabled(conn: &Connection, id: i64, enabled: bool, now: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(SET_ENABLED)?.execute(params![id, enabled, now])? > 0)
}

/// Deletes a rule; its violations stay (with the rule's name as it was).
pub fn delete(conn: &Connection, id: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(DELETE)?.execute([id])? > 0)
}

/// Per rule: open violations and all violations.
pub fn counts(conn: &Connection) -> AppResult<HashMap<i64, (i64, i64)>> {
    let mut stmt = conn.prepare_cached(COUNTS)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A violation to record.
#[derive(Debug, Clone)]
pub struct NewViolation<'a> {
    pub rule: &'a Rule,
    pub user_id: i64,
    pub play_id: Option<i64>,
    pub server_id: Option<i64>,
    pub dedup_key: String,
    pub at: i64,
    pub summary: String,
    pub verdict: &'a Verdict,
}

/// Records a violation; `None` if this rule already raised one for this user and session.
pub fn insert_violation(conn: &Connection, v: &NewViolation<'_>) -> AppResult<Option<i64>> {
    Ok(conn
        .prepare_cached(INSERT_VIOLATION)?
        .query_row(
            params![
                v.rule.id,
                v.rule.name,
                v.rule.severity.as_str(),
                v.user_id,
                v.play_id,
                v.server_id,
                v.dedup_key,
                v.at,
                v.summary,
                json(v.verdict)
            ],
            |r| r.get(0),
        )
        .optional()?)
}

/// What became of a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Acknowledged,
    Dismissed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Dismissed => "dismissed",
        }
    }

    /// For people: `Open`, `Acknowledged`, `Dismissed`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Open => "Open",
            Status::Acknowledged => "Acknowledged",
            Status::Dismissed => "Dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Status::Open, Status::Acknowledged, Status::Dismissed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A recorded violation.
#[derive(Debug, Clone)]
pub struct ViolationRow {
    pub id: i64,
    pub rule_id: Option<i64>,
    pub rule_name: String,
    pub severity: Severity,
    pub user_id: i64,
    pub user_name: String,
    pub play_id: Option<i64>,
    pub server_id: Option<i64>,
    pub server_name: Option<String>,
    pub dedup_key: String,
    pub at: i64,
    pub summary: String,
    pub verdict: Verdict,
    pub status: Status,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
}

fn violation_from_row(r: &Row<'_>) -> rusqlite::Result<ViolationRow> {
    let severity: String = r.get(3)?;
    let evidence: String = r.get(12)?;
    let status: String = r.get(13)?;
    Ok(ViolationRow {
        id: r.get(0)?,
        rule_id: r.get(1)?,
        rule_name: r.get(2)?,
        severity: severity.trim().parse::<Severity>().ok().unwrap_or_default(),
        user_id: r.get(4)?,
        user_name: r.get(5)?,
        play_id: r.get(6)?,
        server_id: r.get(7)?,
        server_name: r.get(8)?,
        dedup_key: r.get(9)?,
        at: r.get(10)?,
        summary: r.get(11)?,
        verdict: serde_json::from_str(&evidence)
            .unwrap_or(Verdict { matched: true, groups: Vec::new() }),
        status: Status::parse(&status).unwrap_or(Status::Open),
        resolved_at: r.get(14)?,
        resolved_by: r.get(15)?,
        note: r.get(16)?,
    })
}

pub fn get_violation(conn: &Connection, id: i64) -> AppResult<Option<ViolationRow>> {
    let sql = format!("SELECT {VIOLATION_COLUMNS}{VIOLATION_FROM} WHERE v.id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], violation_from_row).optional()?)
}

/// Filters of the violations list (every one optional).
#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub rule_id: Option<i64>,
    pub user_id: Option<i64>,
    pub play_id: Option<i64>,
    pub server_id: Option<i64>,
    /// At or after, Unix milliseconds.
    pub from: Option<i64>,
    /// Before.
    pub to: Option<i64>,
}

/// Violations newest first; `before` is the id of the last one of the previous page.
pub fn list_violations(
    conn: &Connection,
    filter: &ViolationFilter,
    scope: Scope,
    before: Option<i64>,
    limit: u32,
) -> AppResult<Vec<ViolationRow>> {
    let mut sql = format!("SELECT {VIOLATION_COLUMNS}{VIOLATION_FROM} WHERE 1 = 1");
    let mut args: Vec<SqlValue> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: SqlValue| {
        args.push(value);
        let _ = write!(sql, " AND {}", clause.replace('?', &format!("?{}", args.len())));
    };
    match scope {
        Scope::All => {}
        Scope::MediaUser(id) => arg(&mut sql, "v.user_id = ?", id.into()),
        Scope::Nothing => return Ok(Vec::new()),
    }
    if let Some(s) = filter.status {
        arg(&mut sql, "v.status = ?", s.as_str().to_owned().into());
    }
    if let Some(s) = filter.severity {
        arg(&mut sql, "v.severity = ?", s.as_str().to_owned().into());
    }
    if let Some(id) = filter.rule_id {
        arg(&mut sql, "v.rule_id = ?", id.into());
    }
    if let Some(id) = filter.user_id {
        arg(&mut sql, "v.user_id = ?", id.into());
    }
    if let Some(id) = filter.play_id {
        arg(&mut sql, "v.play_id = ?", id.into());
    }
    if let Some(id) = filter.server_id {
        arg(&mut sql, "v.server_id = ?", id.into());
    }
    if let Some(from) = filter.from {
        arg(&mut sql, "v.at >= ?", from.into());
    }
    if let Some(to) = filter.to {
        arg(&mut sql, "v.at < ?", to.into());
    }
    if let Some(before) = before {
        arg(&mut sql, "v.id < ?", before.into());
    }
    // 501: a page of 500 and the one that says another page follows.
    let _ = write!(sql, " ORDER BY v.id DESC LIMIT {}", limit.clamp(1, 501));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), violation_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One page of violations and the cursor of the next (the id to list `before`), if any.
#[derive(Debug, Clone)]
pub struct ViolationPage {
    pub items: Vec<ViolationRow>,
    pub next: Option<i64>,
}

/// [`list_violations`] a page at a time: `limit` (at most 500) rows and whether more follow.
pub fn violations_page(
    conn: &Connection,
    filter: &ViolationFilter,
    scope: Scope,
    before: Option<i64>,
    limit: u32,
) -> AppResult<ViolationPage> {
    let limit = limit.clamp(1, 500);
    let mut items = list_violations(conn, filter, scope, before, limit + 1)?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more { items.last().map(|v| v.id) } else { None };
    Ok(ViolationPage { items, next })
}

/// Acknowledges or dismisses (or reopens) a violation; false if it does not exist.
pub fn set_status(
    conn: &Connection,
    id: i64,
    status: Status,
    by: &str,
    note: Option<&str>,
    now: i64,
) -> AppResult<bool> {
    let resolved = (status != Status::Open).then_some(now);
    let by = (status != Status::Open).then_some(by);
    Ok(conn.prepare_cached(SET_STATUS)?.execute(params![
        id,
        status.as_str(),
        resolved,
        by,
        note
    ])? > 0)
}

/// An action's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pending,
    Done,
    Failed,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "done" => Outcome::Done,
            "failed" => Outcome::Failed,
            "skipped" => Outcome::Skipped,
            _ => Outcome::Pending,
        }
    }
}

/// What one action of a violation did.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRow {
    pub id: i64,
    pub action: String,
    pub spec: serde_json::Value,
    pub outcome: Outcome,
    pub message: String,
    pub at: i64,
}

pub fn record_action(
    conn: &Connection,
    violation_id: i64,
    action: &crate::rules::model::Action,
    outcome: Outcome,
    message: &str,
    now: i64,
) -> AppResult<i64> {
    Ok(conn.prepare_cached(INSERT_ACTION)?.query_row(
        params![violation_id, action.kind(), json(action), outcome.as_str(), message, now],
        |r| r.get(0),
    )?)
}

pub fn update_action(
    conn: &Connection,
    id: i64,
    outcome: Outcome,
    message: &str,
    now: i64,
) -> AppResult<()> {
    conn.prepare_cached(UPDATE_ACTION)?.execute(params![id, outcome.as_str(), message, now])?;
    Ok(())
}

pub fn actions_of(conn: &Connection, violation_id: i64) -> AppResult<Vec<ActionRow>> {
    let mut stmt = conn.prepare_cached(ACTIONS_OF)?;
    let rows = stmt.query_map([violation_id], |r| {
        let spec: String = r.get(2)?;
        let outcome: String = r.get(3)?;
        Ok(ActionRow {
            id: r.get(0)?,
            action: r.get(1)?,
            spec: serde_json::from_str(&spec).unwrap_or_default(),
            outcome: Outcome::parse(&outcome),
            message: r.get(4)?,
            at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Until when `action` of `rule_id` rests for `user_id`.
pub fn cooldown_until(
    conn: &Connection,
    rule_id: i64,
    user_id: i64,
    action: &str,
) -> AppResult<Option<i64>> {
    Ok(conn
        .prepare_cached(COOLDOWN)?
        .query_row(params![rule_id, user_id, action], |r| r.get(0))
        .optional()?)
}

pub fn set_cooldown(
    conn: &Connection,
    rule_id: i64,
    user_id: i64,
    action: &str,
    until: i64,
) -> AppResult<()> {
    conn.prepare_cached(SET_COOLDOWN)?.execute(params![rule_id, user_id, action, until])?;
    Ok(())
}
