//! Actions of violations that wait for their time (`violation_actions.due_at`): a
//! terminate with a delay, a stream to stop or a client to message once the violation is
//! stored. The engine runs what is due; see `rules::engine`.

use rusqlite::{Connection, params};

use crate::error::AppResult;
use crate::rules::model::Action;

const SCHEDULE: &str = "INSERT INTO violation_actions (violation_id, action, spec, outcome, message, at, due_at) \
     VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6) RETURNING id";
const DUE: &str = "SELECT a.id, a.spec, a.due_at, v.id, v.rule_id, v.user_id, v.play_id, v.status \
     FROM violation_actions a JOIN violations v ON v.id = a.violation_id \
     WHERE a.outcome = 'pending' AND a.due_at <= ?1 ORDER BY a.due_at, a.id LIMIT ?2";
const NEXT_DUE: &str = "SELECT min(due_at) FROM violation_actions WHERE outcome = 'pending'";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[SCHEDULE, DUE, NEXT_DUE];

/// Stores `action` of violation `violation_id` as pending, due at `due_at`.
pub fn schedule(
    conn: &Connection,
    violation_id: i64,
    action: &Action,
    message: &str,
    now: i64,
    due_at: i64,
) -> AppResult<i64> {
    let spec = serde_json::to_string(action)
        .map_err(|e| crate::error::AppError::internal("encoding an action", e))?;
    Ok(conn
        .prepare_cached(SCHEDULE)?
        .query_row(params![violation_id, action.kind(), spec, message, now, due_at], |r| {
            r.get(0)
        })?)
}

/// A pending action that is due, with what it acts on.
#[derive(Debug, Clone)]
pub struct DueAction {
    pub id: i64,
    /// `None` when the stored spec is not an action this version knows.
    pub action: Option<Action>,
    pub due_at: i64,
    pub violation_id: i64,
    /// `None` when the rule was deleted since.
    pub rule_id: Option<i64>,
    pub user_id: i64,
    pub play_id: Option<i64>,
    /// The violation's status now (`open`, `acknowledged`, `dismissed`).
    pub violation_status: String,
}

/// Up to `limit` pending actions due at `now`, the earliest first.
pub fn due(conn: &Connection, now: i64, limit: u32) -> AppResult<Vec<DueAction>> {
    let rows = conn
        .prepare_cached(DUE)?
        .query_map(params![now, limit], |r| {
            let spec: String = r.get(1)?;
            Ok(DueAction {
                id: r.get(0)?,
                action: serde_json::from_str(&spec).ok(),
                due_at: r.get(2)?,
                violation_id: r.get(3)?,
                rule_id: r.get(4)?,
                user_id: r.get(5)?,
                play_id: r.get(6)?,
                violation_status: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// When the earliest pending action is due.
pub fn next_due(conn: &Connection) -> AppResult<Option<i64>> {
    Ok(conn.prepare_cached(NEXT_DUE)?.query_row([], |r| r.get(0))?)
}
