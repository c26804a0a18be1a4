//! Trust scores and their history: every change is an entry with its reason.

use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::error::{AppError, AppResult};
use crate::rules::trust::{Change, Reason};

const SCORE: &str = "SELECT trust_score FROM media_users WHERE id = ?1";
const SET_SCORE: &str = "UPDATE media_users SET trust_score = ?2 WHERE id = ?1";
const INSERT_EVENT: &str = "INSERT INTO trust_events (user_id, at, delta, score, reason, violation_id, actor, note) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const TIMELINE: &str = "SELECT t.id, t.at, t.delta, t.score, t.reason, t.violation_id, t.actor, t.note, v.rule_name \
     FROM trust_events t LEFT JOIN violations v ON v.id = t.violation_id \
     WHERE t.user_id = ?1 ORDER BY t.id DESC LIMIT ?2";
const OF_VIOLATION: &str = "SELECT t.id, t.at, t.delta, t.score, t.reason, t.violation_id, t.actor, t.note, v.rule_name \
     FROM trust_events t LEFT JOIN violations v ON v.id = t.violation_id \
     WHERE t.violation_id = ?1 ORDER BY t.id";
const RULE_DELTAS: &str =
    "SELECT coalesce(sum(delta), 0) FROM trust_events WHERE violation_id = ?1 AND reason = 'rule'";
const REVERSED: &str =
    "SELECT EXISTS (SELECT 1 FROM trust_events WHERE violation_id = ?1 AND reason = 'dismissed')";
/// Users below 100, with their last violation and their last recovery.
const RECOVERY_CANDIDATES: &str = "SELECT u.id, u.trust_score, \
     (SELECT max(at) FROM violations v WHERE v.user_id = u.id AND v.status != 'dismissed'), \
     (SELECT max(at) FROM trust_events t WHERE t.user_id = u.id AND t.reason = 'recovery') \
     FROM media_users u WHERE u.trust_score < 100";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[
    SCORE,
    SET_SCORE,
    INSERT_EVENT,
    TIMELINE,
    OF_VIOLATION,
    RULE_DELTAS,
    REVERSED,
    RECOVERY_CANDIDATES,
];

/// One entry of a user's trust timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustEvent {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub delta: i64,
    pub score: i64,
    pub reason: String,
    pub violation_id: Option<i64>,
    pub actor: Option<String>,
    pub note: String,
    /// The name of the rule whose violation caused it, as it was when it matched.
    pub rule_name: Option<String>,
}

/// Applies a change and records it. Returns (applied delta, new score); a change that
/// moves nothing (already at 100, say) is not recorded.
pub fn apply(
    conn: &Connection,
    user_id: i64,
    change: Change,
    reason: Reason,
    violation_id: Option<i64>,
    actor: Option<&str>,
    note: &str,
    now: i64,
) -> AppResult<(i64, i64)> {
    let before: i64 = conn
        .prepare_cached(SCORE)?
        .query_row([user_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| AppError::not_found(format!("user {user_id}")))?;
    let after = change.apply(before);
    let delta = after - before;
    if delta != 0 {
        conn.prepare_cached(SET_SCORE)?.execute(params![user_id, after])?;
        conn.prepare_cached(INSERT_EVENT)?.execute(params![
            user_id,
            now,
            delta,
            after,
            reason.as_str(),
            violation_id,
            actor,
            note
        ])?;
    }
    Ok((delta, after))
}

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TrustEvent> {
    Ok(TrustEvent {
        id: r.get(0)?,
        at: r.get(1)?,
        delta: r.get(2)?,
        score: r.get(3)?,
        reason: r.get(4)?,
        violation_id: r.get(5)?,
        actor: r.get(6)?,
        note: r.get(7)?,
        rule_name: r.get(8)?,
    })
}

/// The newest `limit` changes of a user's score, newest first.
pub fn timeline(conn: &Connection, user_id: i64, limit: u32) -> AppResult<Vec<TrustEvent>> {
    let mut stmt = conn.prepare_cached(TIMELINE)?;
    let rows = stmt.query_map(params![user_id, limit], event_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What one violation did to trust, and its reversal, oldest first.
pub fn of_violation(conn: &Connection, violation_id: i64) -> AppResult<Vec<TrustEvent>> {
    let mut stmt = conn.prepare_cached(OF_VIOLATION)?;
    let rows = stmt.query_map([violation_id], event_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Reverses what a violation's actions did to trust (once). Returns the delta applied.
pub fn reverse_violation(
    conn: &Connection,
    user_id: i64,
    violation_id: i64,
    actor: &str,
    now: i64,
) -> AppResult<i64> {
    let done: bool = conn.prepare_cached(REVERSED)?.query_row([violation_id], |r| r.get(0))?;
    if done {
        return Ok(0);
    }
    let sum: i64 = conn.prepare_cached(RULE_DELTAS)?.query_row([violation_id], |r| r.get(0))?;
    if sum == 0 {
        return Ok(0);
    }
    let (delta, _) = apply(
        conn,
        user_id,
        Change::Adjust(-sum),
        Reason::Dismissed,
        Some(violation_id),
        Some(actor),
        "violation dismissed",
        now,
    )?;
    Ok(delta)
}

/// (user id, score, last violation, last recovery).
pub type RecoveryCandidate = (i64, i64, Option<i64>, Option<i64>);

/// Every user below 100.
pub fn recovery_candidates(conn: &Connection) -> AppResult<Vec<RecoveryCandidate>> {
    let mut stmt = conn.prepare_cached(RECOVERY_CANDIDATES)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
