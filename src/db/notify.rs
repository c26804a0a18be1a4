//! Notification channels, the outbox (which doubles as the delivery log) and cooldowns.
//!
//! Plain SQL only; what the values mean lives in `crate::notify`.

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use crate::error::AppResult;

// ---- channels ---------------------------------------------------------------------------

/// The columns `channel_from_row` reads, in its order.
macro_rules! channel_columns {
    () => {
        "id, kind, name, enabled, events, min_severity, user_cooldown_minutes, config, \
         secrets_sealed, hold_until, created_at, updated_at"
    };
}

const CHANNEL_LIST: &str =
    concat!("SELECT ", channel_columns!(), " FROM notifiers ORDER BY name COLLATE NOCASE, id");
const CHANNEL_GET: &str = concat!("SELECT ", channel_columns!(), " FROM notifiers WHERE id = ?1");
const CHANNEL_NAME_TAKEN: &str =
    "SELECT EXISTS (SELECT 1 FROM notifiers WHERE name = ?1 COLLATE NOCASE AND id != ?2)";
const CHANNEL_INSERT: &str = concat!("INSERT INTO notifiers
     (kind, name, enabled, events, min_severity, user_cooldown_minutes, config, secrets_sealed, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
     RETURNING ", channel_columns!());
const CHANNEL_UPDATE: &str = concat!("UPDATE notifiers SET name = ?2, enabled = ?3, events = ?4, min_severity = ?5,
     user_cooldown_minutes = ?6, config = ?7, secrets_sealed = ?8, hold_until = NULL, updated_at = ?9
     WHERE id = ?1
     RETURNING ", channel_columns!());
const CHANNEL_SET_ENABLED: &str =
    "UPDATE notifiers SET enabled = ?2, updated_at = ?3 WHERE id = ?1 RETURNING id";
const CHANNEL_DELETE: &str = "DELETE FROM notifiers WHERE id = ?1 RETURNING id";
const CHANNEL_HOLD: &str =
    "UPDATE notifiers SET hold_until = max(coalesce(hold_until, 0), ?2) WHERE id = ?1";

/// One stored channel, as in the table.
#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub enabled: bool,
    /// JSON array of event names.
    pub events: String,
    pub min_severity: String,
    pub user_cooldown_minutes: i64,
    /// JSON object without secrets.
    pub config: String,
    pub secrets_sealed: Option<String>,
    /// Unix ms before which nothing is sent to this channel (rate limits).
    pub hold_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of a channel that are written.
#[derive(Debug, Clone)]
pub struct ChannelWrite<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub enabled: bool,
    pub events: &'a str,
    pub min_severity: &'a str,
    pub user_cooldown_minutes: i64,
    pub config: &'a str,
    pub secrets_sealed: Option<&'a str>,
}

fn channel_from_row(r: &Row<'_>) -> rusqlite::Result<ChannelRow> {
    Ok(ChannelRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        enabled: r.get(3)?,
        events: r.get(4)?,
        min_severity: r.get(5)?,
        user_cooldown_minutes: r.get(6)?,
        config: r.get(7)?,
        secrets_sealed: r.get(8)?,
        hold_until: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

pub fn list_channels(conn: &Connection) -> AppResult<Vec<ChannelRow>> {
    let mut stmt = conn.prepare_cached(CHANNEL_LIST)?;
    let rows = stmt.query_map([], channel_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get_channel(conn: &Connection, id: i64) -> AppResult<Option<ChannelRow>> {
    Ok(conn.prepare_cached(CHANNEL_GET)?.query_row([id], channel_from_row).optional()?)
}

/// Whether another channel (not `except_id`) already has this name, ignoring case.
pub fn channel_name_taken(conn: &Connection, name: &str, except_id: i64) -> AppResult<bool> {
    Ok(conn
        .prepare_cached(CHANNEL_NAME_TAKEN)?
        .query_row(params![name, except_id], |r| r.get(0))?)
}

pub fn insert_channel(conn: &Connection, c: &ChannelWrite<'_>) -> AppResult<ChannelRow> {
    Ok(conn.prepare_cached(CHANNEL_INSERT)?.query_row(
        params![
            c.kind,
            c.name,
            c.enabled,
            c.events,
            c.min_severity,
            c.user_cooldown_minutes,
            c.config,
            c.secrets_sealed,
            crate::time::now_ms()
        ],
        channel_from_row,
    )?)
}

/// Updates everything but the kind; `None` if the channel does not exist.
pub fn update_channel(
    conn: &Connection,
    id: i64,
    c: &ChannelWrite<'_>,
) -> AppResult<Option<ChannelRow>> {
    Ok(conn
        .prepare_cached(CHANNEL_UPDATE)?
        .query_row(
            params![
                id,
                c.name,
                c.enabled,
                c.events,
                c.min_severity,
                c.user_cooldown_minutes,
                c.config,
                c.secrets_sealed,
                crate::time::now_ms()
            ],
            channel_from_row,
        )
        .optional()?)
}

/// True if the channel exists.
pub fn set_channel_enabled(conn: &Connection, id: i64, enabled: bool) -> AppResult<bool> {
    let found: Option<i64> = conn
        .prepare_cached(CHANNEL_SET_ENABLED)?
        .query_row(params![id, enabled, crate::time::now_ms()], |r| r.get(0))
        .optional()?;
    Ok(found.is_some())
}

/// Deletes the channel and (by cascade) its messages; true if it existed.
pub fn delete_channel(conn: &Connection, id: i64) -> AppResult<bool> {
    let found: Option<i64> =
        conn.prepare_cached(CHANNEL_DELETE)?.query_row([id], |r| r.get(0)).optional()?;
    Ok(found.is_some())
}

/// Sends nothing to the channel before `until` (Unix ms); never shortens a longer hold.
pub fn hold_channel(conn: &Connection, id: i64, until: i64) -> AppResult<()> {
    conn.prepare_cached(CHANNEL_HOLD)?.execute(params![id, until])?;
    Ok(())
}

// ---- outbox -----------------------------------------------------------------------------

/// The columns `outbox_from_row` reads, in its order.
macro_rules! outbox_columns {
    () => {
        "id, notifier_id, uid, kind, severity, title, event, status, is_test, attempts, \
         next_attempt_at, last_attempt_at, last_error, created_at, sent_at"
    };
}

const OUTBOX_INSERT: &str = "INSERT INTO notify_outbox
     (notifier_id, uid, kind, severity, title, event, status, is_test, attempts, next_attempt_at,
      last_attempt_at, last_error, created_at, sent_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
     RETURNING id";
const OUTBOX_GET: &str = concat!("SELECT ", outbox_columns!(), " FROM notify_outbox WHERE id = ?1");
/// The rank of a severity in the outbox: most severe first. The same expression as in the
/// `notify_outbox_next` index (migration 0060), which only a query spelling it alike uses.
macro_rules! severity_rank {
    ($t:literal) => {
        concat!("(CASE ", $t, ".severity WHEN 'high' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END)")
    };
}

/// The next message due at ?1 of each enabled channel that is not held: the most severe,
/// then the oldest. At most ?2 channels, the most severe heads first.
const OUTBOX_DUE: &str = concat!(
    "SELECT o.id, o.notifier_id, o.uid, o.kind, o.severity, o.title, o.event, o.status, \
     o.is_test, o.attempts, o.next_attempt_at, o.last_attempt_at, o.last_error, o.created_at, o.sent_at
     FROM notifiers n JOIN notify_outbox o ON o.id = (
         SELECT p.id FROM notify_outbox p
         WHERE p.notifier_id = n.id AND p.status = 'pending' AND p.next_attempt_at <= ?1
         ORDER BY ",
    severity_rank!("p"),
    ", p.id LIMIT 1)
     WHERE n.enabled AND coalesce(n.hold_until, 0) <= ?1
     ORDER BY ",
    severity_rank!("o"),
    ", o.id LIMIT ?2"
);
/// When the earliest pending message becomes sendable: per channel, its earliest retry or
/// the end of its hold.
const OUTBOX_NEXT_DUE: &str = "SELECT min(max(
         (SELECT min(p.next_attempt_at) FROM notify_outbox p
          WHERE p.notifier_id = n.id AND p.status = 'pending'),
         coalesce(n.hold_until, 0)))
     FROM notifiers n
     WHERE n.enabled
       AND EXISTS (SELECT 1 FROM notify_outbox p WHERE p.notifier_id = n.id AND p.status = 'pending')";
const OUTBOX_MARK_SENT: &str = "UPDATE notify_outbox
     SET status = 'sent', attempts = attempts + 1, last_attempt_at = ?2, sent_at = ?2, last_error = NULL
     WHERE id = ?1 AND status = 'pending'";
const OUTBOX_MARK_RETRY: &str = "UPDATE notify_outbox
     SET attempts = attempts + 1, last_attempt_at = ?2, next_attempt_at = ?3, last_error = ?4
     WHERE id = ?1 AND status = 'pending'";
const OUTBOX_MARK_FAILED: &str = "UPDATE notify_outbox
     SET status = 'failed', attempts = attempts + 1, last_attempt_at = ?2, last_error = ?3
     WHERE id = ?1 AND status = 'pending'";
/// After a success: retry the channel's other failed-before messages now.
const OUTBOX_PULL_FORWARD: &str = "UPDATE notify_outbox SET next_attempt_at = ?2
     WHERE notifier_id = ?1 AND status = 'pending' AND next_attempt_at > ?2";
const OUTBOX_CANCEL_PENDING: &str = "UPDATE notify_outbox
     SET status = 'cancelled', last_error = ?2
     WHERE notifier_id = ?1 AND status = 'pending'";
const OUTBOX_RETRY_FAILED: &str = "UPDATE notify_outbox
     SET status = 'pending', attempts = 0, next_attempt_at = ?2
     WHERE notifier_id = ?1 AND status = 'failed' AND NOT is_test";
const OUTBOX_RETRY_ONE: &str = "UPDATE notify_outbox
     SET status = 'pending', attempts = 0, next_attempt_at = ?3
     WHERE id = ?1 AND notifier_id = ?2 AND status IN ('failed', 'cancelled') AND NOT is_test";
const OUTBOX_LOG: &str = concat!(
    "SELECT ",
    outbox_columns!(),
    "
     FROM notify_outbox
     WHERE notifier_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR id < ?3)
     ORDER BY id DESC LIMIT ?4"
);
const OUTBOX_COUNTS: &str = "SELECT notifier_id,
       sum(status = 'pending'), sum(status = 'pending' AND attempts > 0),
       sum(status = 'sent'), sum(status = 'failed'),
       max(CASE WHEN status = 'sent' THEN sent_at END)
     FROM notify_outbox GROUP BY notifier_id";
const OUTBOX_PRUNE: &str = "DELETE FROM notify_outbox
     WHERE (status = 'sent' AND created_at < ?1) OR (status IN ('failed', 'cancelled') AND created_at < ?2)";

/// One message in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub notifier_id: i64,
    pub uid: String,
    pub kind: String,
    pub severity: String,
    pub title: String,
    /// JSON of `notify::Event`.
    pub event: String,
    pub status: String,
    pub is_test: bool,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub notifier_id: i64,
    pub uid: &'a str,
    pub kind: &'a str,
    pub severity: &'a str,
    pub title: &'a str,
    pub event: &'a str,
    pub status: &'a str,
    pub is_test: bool,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_error: Option<&'a str>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// Message counts of one channel, for the channel list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: i64,
    /// Pending after at least one failed attempt.
    pub retrying: i64,
    pub sent: i64,
    pub failed: i64,
    pub last_sent_at: Option<i64>,
}

fn outbox_from_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        notifier_id: r.get(1)?,
        uid: r.get(2)?,
        kind: r.get(3)?,
        severity: r.get(4)?,
        title: r.get(5)?,
        event: r.get(6)?,
        status: r.get(7)?,
        is_test: r.get(8)?,
        attempts: r.get(9)?,
        next_attempt_at: r.get(10)?,
        last_attempt_at: r.get(11)?,
        last_error: r.get(12)?,
        created_at: r.get(13)?,
        sent_at: r.get(14)?,
    })
}

pub fn insert_message(conn: &Connection, m: &NewMessage<'_>) -> AppResult<i64> {
    Ok(conn.prepare_cached(OUTBOX_INSERT)?.query_row(
        params![
            m.notifier_id,
            m.uid,
            m.kind,
            m.severity,
            m.title,
            m.event,
            m.status,
            m.is_test,
            m.attempts,
            m.next_attempt_at,
            m.last_attempt_at,
            m.last_error,
            m.created_at,
            m.sent_at
        ],
        |r| r.get(0),
    )?)
}

pub fn get_message(conn: &Connection, id: i64) -> AppResult<Option<OutboxRow>> {
    Ok(conn.prepare_cached(OUTBOX_GET)?.query_row([id], outbox_from_row).optional()?)
}

/// The message each channel sends next, of those that may be sent at `now` (most severe
/// first, then oldest): one per channel, at most `limit` channels.
pub fn due_messages(conn: &Connection, now: i64, limit: u32) -> AppResult<Vec<OutboxRow>> {
    let mut stmt = conn.prepare_cached(OUTBOX_DUE)?;
    let rows = stmt.query_map(params![now, limit], outbox_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When the next pending message becomes sendable (Unix ms), if there is one.
pub fn next_due_at(conn: &Connection) -> AppResult<Option<i64>> {
    Ok(conn.prepare_cached(OUTBOX_NEXT_DUE)?.query_row([], |r| r.get(0))?)
}

/// Each returns false when the message was no longer pending (cancelled or deleted meanwhile).
pub fn mark_sent(conn: &Connection, id: i64, at: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(OUTBOX_MARK_SENT)?.execute(params![id, at])? == 1)
}

pub fn mark_retry(conn: &Connection, id: i64, at: i64, next: i64, error: &str) -> AppResult<bool> {
    Ok(conn.prepare_cached(OUTBOX_MARK_RETRY)?.execute(params![id, at, next, error])? == 1)
}

pub fn mark_failed(conn: &Connection, id: i64, at: i64, error: &str) -> AppResult<bool> {
    Ok(conn.prepare_cached(OUTBOX_MARK_FAILED)?.execute(params![id, at, error])? == 1)
}

/// Makes the channel's pending messages due at `now`; returns how many moved.
pub fn pull_forward(conn: &Connection, notifier_id: i64, now: i64) -> AppResult<usize> {
    Ok(conn.prepare_cached(OUTBOX_PULL_FORWARD)?.execute(params![notifier_id, now])?)
}

pub fn cancel_pending(conn: &Connection, notifier_id: i64, reason: &str) -> AppResult<usize> {
    Ok(conn.prepare_cached(OUTBOX_CANCEL_PENDING)?.execute(params![notifier_id, reason])?)
}

/// Queues the channel's failed messages again from scratch; returns how many.
pub fn retry_failed(conn: &Connection, notifier_id: i64, now: i64) -> AppResult<usize> {
    Ok(conn.prepare_cached(OUTBOX_RETRY_FAILED)?.execute(params![notifier_id, now])?)
}

/// Queues one failed or cancelled message again; false if there is no such message.
pub fn retry_message(conn: &Connection, notifier_id: i64, id: i64, now: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(OUTBOX_RETRY_ONE)?.execute(params![id, notifier_id, now])? == 1)
}

/// The channel's messages, newest first; `status` filters, `before` is the last id seen.
pub fn delivery_log(
    conn: &Connection,
    notifier_id: i64,
    status: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> AppResult<Vec<OutboxRow>> {
    let mut stmt = conn.prepare_cached(OUTBOX_LOG)?;
    let rows = stmt.query_map(params![notifier_id, status, before, limit], outbox_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Counts per channel id.
pub fn outbox_counts(conn: &Connection) -> AppResult<Vec<(i64, OutboxCounts)>> {
    let mut stmt = conn.prepare_cached(OUTBOX_COUNTS)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            OutboxCounts {
                pending: r.get(1)?,
                retrying: r.get(2)?,
                sent: r.get(3)?,
                failed: r.get(4)?,
                last_sent_at: r.get(5)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Forgets sent messages created before `sent_before` and failed or cancelled ones created
/// before `failed_before`; returns how many.
pub fn prune_outbox(conn: &Connection, sent_before: i64, failed_before: i64) -> AppResult<usize> {
    Ok(conn.prepare_cached(OUTBOX_PRUNE)?.execute(params![sent_before, failed_before])?)
}

// ---- cooldowns --------------------------------------------------------------------------

const COOLDOWN_ACTIVE: &str =
    "SELECT EXISTS (SELECT 1 FROM notify_cooldowns WHERE key = ?1 AND until_at > ?2)";
const COOLDOWN_SET: &str = "INSERT INTO notify_cooldowns (key, until_at) VALUES (?1, ?2)
     ON CONFLICT (key) DO UPDATE SET until_at = max(until_at, excluded.until_at)";
const COOLDOWN_PRUNE: &str = "DELETE FROM notify_cooldowns WHERE until_at <= ?1";

pub fn cooldown_active(conn: &Connection, key: &str, now: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(COOLDOWN_ACTIVE)?.query_row(params![key, now], |r| r.get(0))?)
}

pub fn set_cooldown(conn: &Connection, key: &str, until: i64) -> AppResult<()> {
    conn.prepare_cached(COOLDOWN_SET)?.execute(params![key, until])?;
    Ok(())
}

pub fn prune_cooldowns(conn: &Connection, now: i64) -> AppResult<usize> {
    Ok(conn.prepare_cached(COOLDOWN_PRUNE)?.execute([now])?)
}

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[
    CHANNEL_LIST,
    CHANNEL_GET,
    CHANNEL_NAME_TAKEN,
    CHANNEL_INSERT,
    CHANNEL_UPDATE,
    CHANNEL_SET_ENABLED,
    CHANNEL_DELETE,
    CHANNEL_HOLD,
    OUTBOX_INSERT,
    OUTBOX_GET,
    OUTBOX_DUE,
    OUTBOX_NEXT_DUE,
    OUTBOX_MARK_SENT,
    OUTBOX_MARK_RETRY,
    OUTBOX_MARK_FAILED,
    OUTBOX_PULL_FORWARD,
    OUTBOX_CANCEL_PENDING,
    OUTBOX_RETRY_FAILED,
    OUTBOX_RETRY_ONE,
    OUTBOX_LOG,
    OUTBOX_COUNTS,
    OUTBOX_PRUNE,
    COOLDOWN_ACTIVE,
    COOLDOWN_SET,
    COOLDOWN_PRUNE,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("n.db")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        (dir, conn)
    }

    fn channel(conn: &Connection, name: &str) -> ChannelRow {
        insert_channel(
            conn,
            &ChannelWrite {
                kind: "ntfy",
                name,
                enabled: true,
                events: r#"["violation"]"#,
                min_severity: "low",
                user_cooldown_minutes: 0,
                config: "{}",
                secrets_sealed: None,
            },
        )
        .unwrap()
    }

    fn message(conn: &Connection, notifier_id: i64, uid: &str, next: i64) -> i64 {
        message_of(conn, notifier_id, uid, next, "high")
    }

    fn message_of(
        conn: &Connection,
        notifier_id: i64,
        uid: &str,
        next: i64,
        severity: &str,
    ) -> i64 {
        insert_message(
            conn,
            &NewMessage {
                notifier_id,
                uid,
                kind: "violation",
                severity,
                title: "t",
                event: "{}",
                status: "pending",
                is_test: false,
                attempts: 0,
                next_attempt_at: next,
                last_attempt_at: None,
                last_error: None,
                created_at: next,
                sent_at: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn names_are_unique_ignoring_case() {
        let (_dir, conn) = db();
        let a = channel(&conn, "Phone");
        assert!(channel_name_taken(&conn, "phone", 0).unwrap());
        assert!(!channel_name_taken(&conn, "phone", a.id).unwrap(), "its own name is free");
        let dup = insert_channel(
            &conn,
            &ChannelWrite {
                kind: "ntfy",
                name: "PHONE",
                enabled: true,
                events: "[]",
                min_severity: "low",
                user_cooldown_minutes: 0,
                config: "{}",
                secrets_sealed: None,
            },
        );
        assert!(dup.is_err());
    }

    #[test]
    fn due_respects_time_holds_and_disabled_channels() {
        let (_dir, conn) = db();
        let a = channel(&conn, "a");
        let b = channel(&conn, "b");
        let m1 = message(&conn, a.id, "u1", 100);
        let m2 = message(&conn, b.id, "u2", 200);
        let ids =
            |now| due_messages(&conn, now, 10).unwrap().iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(99), Vec::<i64>::new());
        assert_eq!(ids(150), [m1]);
        assert_eq!(ids(250), [m1, m2]);
        assert_eq!(next_due_at(&conn).unwrap(), Some(100));

        hold_channel(&conn, a.id, 300).unwrap();
        hold_channel(&conn, a.id, 250).unwrap(); // never shortens
        assert_eq!(ids(250), [m2]);
        assert_eq!(ids(300), [m1, m2]);

        set_channel_enabled(&conn, b.id, false).unwrap();
        assert_eq!(ids(300), [m1]);
        assert_eq!(next_due_at(&conn).unwrap(), Some(300));
    }

    #[test]
    fn each_channel_sends_its_most_severe_message_first() {
        let (_dir, conn) = db();
        let a = channel(&conn, "a");
        let b = channel(&conn, "b");
        let low = message_of(&conn, a.id, "low", 10, "low");
        let warning = message_of(&conn, a.id, "warning", 20, "warning");
        let high = message_of(&conn, a.id, "high", 30, "high");
        let later_high = message_of(&conn, a.id, "later-high", 500, "high");
        let b_low = message_of(&conn, b.id, "b-low", 5, "low");
        let heads =
            |now| due_messages(&conn, now, 10).unwrap().iter().map(|m| m.id).collect::<Vec<_>>();
        // One message per channel: the most severe that is due; the most severe heads first.
        assert_eq!(heads(100), [high, b_low]);
        assert!(mark_sent(&conn, high, 100).unwrap());
        assert_eq!(heads(100), [warning, b_low]);
        assert!(mark_sent(&conn, warning, 100).unwrap());
        assert_eq!(heads(100), [low, b_low], "then the oldest");
        assert_eq!(heads(600), [later_high, b_low]);
        assert_eq!(due_messages(&conn, 600, 1).unwrap()[0].id, later_high, "limit: severest head");
        assert!(mark_retry(&conn, later_high, 600, 900, "down").unwrap());
        assert!(mark_sent(&conn, low, 600).unwrap());
        assert!(mark_sent(&conn, b_low, 600).unwrap());
        assert_eq!(next_due_at(&conn).unwrap(), Some(900));
    }

    /// The plan SQLite chooses for `sql`, one line per step.
    fn plan(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(args, |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn the_next_message_is_found_through_indexes_not_by_reading_the_log() {
        let (_dir, conn) = db();
        // A long delivery log, as after weeks of alerts: the planner sees its size.
        let a = channel(&conn, "a");
        for i in 0..2_000 {
            message(&conn, a.id, &format!("u{i}"), i);
        }
        conn.execute(
            "UPDATE notify_outbox SET status = 'sent', sent_at = 1 WHERE id % 10 != 0",
            [],
        )
        .unwrap();
        conn.execute_batch("ANALYZE").unwrap();
        let due = plan(&conn, OUTBOX_DUE, params![1_000_000, 8]);
        let next = plan(&conn, OUTBOX_NEXT_DUE, []);
        for (steps, index) in
            [(&due, "notify_outbox_next"), (&next, "notify_outbox_due_by_channel")]
        {
            assert!(steps.iter().any(|s| s.contains(index)), "uses {index}: {steps:#?}");
            // Only the few channels may be read whole; the outbox (aliases o and p) never.
            let scans_outbox = |s: &String| {
                s.starts_with("SCAN")
                    && (s.contains(" o") || s.contains(" p") || s.contains("notify_outbox"))
            };
            assert!(!steps.iter().any(scans_outbox), "the outbox is never scanned: {steps:#?}");
        }
    }

    #[test]
    fn status_transitions_only_from_pending() {
        let (_dir, conn) = db();
        let a = channel(&conn, "a");
        let m = message(&conn, a.id, "u1", 0);
        assert!(mark_retry(&conn, m, 10, 1000, "down").unwrap());
        let row = get_message(&conn, m).unwrap().unwrap();
        assert_eq!(
            (row.attempts, row.next_attempt_at, row.last_error.as_deref()),
            (1, 1000, Some("down"))
        );
        assert_eq!(pull_forward(&conn, a.id, 20).unwrap(), 1);
        assert!(mark_sent(&conn, m, 30).unwrap());
        assert!(!mark_sent(&conn, m, 40).unwrap(), "sent once");
        assert!(!mark_failed(&conn, m, 40, "x").unwrap());
        let row = get_message(&conn, m).unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.attempts, row.sent_at), ("sent", 2, Some(30)));
        assert_eq!(row.last_error, None);

        let f = message(&conn, a.id, "u2", 0);
        assert!(mark_failed(&conn, f, 50, "gave up").unwrap());
        assert_eq!(retry_failed(&conn, a.id, 60).unwrap(), 1);
        let row = get_message(&conn, f).unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.attempts, row.next_attempt_at), ("pending", 0, 60));
        assert_eq!(cancel_pending(&conn, a.id, "disabled").unwrap(), 1);
        assert!(retry_message(&conn, a.id, f, 70).unwrap());

        let counts = outbox_counts(&conn).unwrap();
        assert_eq!(
            counts,
            [(
                a.id,
                OutboxCounts {
                    pending: 1,
                    retrying: 0,
                    sent: 1,
                    failed: 0,
                    last_sent_at: Some(30)
                }
            )]
        );
        assert!(delete_channel(&conn, a.id).unwrap());
        assert!(get_message(&conn, m).unwrap().is_none(), "messages go with their channel");
    }

    #[test]
    fn cooldowns_expire() {
        let (_dir, conn) = db();
        set_cooldown(&conn, "k", 100).unwrap();
        set_cooldown(&conn, "k", 50).unwrap(); // never shortens
        assert!(cooldown_active(&conn, "k", 99).unwrap());
        assert!(!cooldown_active(&conn, "k", 100).unwrap());
        assert_eq!(prune_cooldowns(&conn, 100).unwrap(), 1);
    }
}
