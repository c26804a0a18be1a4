//! Statistics rollups (`stats_rollups`, `stats_concurrency`, `stats_dirty`): the SQL behind
//! `crate::stats`. A period is always given as the five bucket runs of
//! `stats::calendar::cover`, bound as parameters ?4 to ?13.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use crate::error::AppResult;

/// A local day: days since 1970-01-01 in the instance's calendar (as `stats::calendar`).
type Day = i32;

/// A period as five bucket runs, `[first, last]` each (`stats::calendar::Cover::bounds`).
pub type CoverBounds = [i64; 10];

const DIRTY: &str = "SELECT id, from_ms, to_ms, rebuild FROM stats_dirty ORDER BY id LIMIT ?1";
const HAS_DIRTY: &str = "SELECT EXISTS (SELECT 1 FROM stats_dirty)";
const CLEAN: &str = "DELETE FROM stats_dirty WHERE id <= ?1";
const MARK: &str = "INSERT INTO stats_dirty (from_ms, to_ms, rebuild) VALUES (?1, ?2, 1)";
const HISTORY_SPAN: &str =
    "SELECT min(started_at), max(stopped_at) FROM plays WHERE status = 'stopped'";
const LONGEST_PLAY: &str =
    "SELECT coalesce(max(stopped_at - started_at), 0) FROM plays WHERE status = 'stopped'";
const CLEAR_ROLLUPS: &str = "DELETE FROM stats_rollups";
const CLEAR_CONCURRENCY: &str = "DELETE FROM stats_concurrency";

/// Finished plays that started in `[?1, ?2)`.
const STARTED_IN: &str = "SELECT server_id, user_id, media_type, title, grandparent_title, year, \
     library_name, player, platform, decision, source_resolution, stream_resolution, \
     bandwidth_kbps, started_at, stopped_at, paused_ms, play_ms, is_local, geo_lat, geo_lon, geo_city, \
     geo_country FROM plays WHERE status = 'stopped' AND started_at >= ?1 AND started_at < ?2";
/// Finished plays running at some moment of `[?2, ?3)`, none of which started before ?1.
const RUNNING_IN: &str = "SELECT server_id, user_id, decision, started_at, stopped_at FROM plays \
     WHERE status = 'stopped' AND started_at >= ?1 AND started_at < ?3 AND stopped_at > ?2";

const DELETE_BUCKET: &str = "DELETE FROM stats_rollups WHERE level = ?1 AND bucket = ?2";
const INSERT_ROLLUP: &str = "INSERT INTO stats_rollups \
     (dim, server_id, user_id, level, bucket, key, plays, watch_ms, bytes) \
     VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8)";
/// Sums the buckets of level ?3 from ?4 to ?5 into bucket ?2 of level ?1.
const FOLD: &str = "INSERT INTO stats_rollups \
     (dim, server_id, user_id, level, bucket, key, plays, watch_ms, bytes) \
     SELECT dim, server_id, user_id, ?1, ?2, key, sum(plays), sum(watch_ms), sum(bytes) \
     FROM stats_rollups WHERE level = ?3 AND bucket BETWEEN ?4 AND ?5 \
     GROUP BY dim, server_id, user_id, key";
const DELETE_CONCURRENCY: &str = "DELETE FROM stats_concurrency WHERE day = ?1";
const INSERT_CONCURRENCY: &str = "INSERT INTO stats_concurrency \
     (server_id, user_id, day, peak, at, direct_play, direct_stream, transcode) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

const COVER: &str = "((level = 1 AND bucket BETWEEN ?4 AND ?5) OR (level = 2 AND bucket BETWEEN ?6 AND ?7) \
     OR (level = 3 AND bucket BETWEEN ?8 AND ?9) OR (level = 2 AND bucket BETWEEN ?10 AND ?11) \
     OR (level = 1 AND bucket BETWEEN ?12 AND ?13))";

static SUM_BY_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT key, sum(plays), sum(watch_ms), sum(bytes) FROM stats_rollups \
         WHERE dim = ?1 AND server_id = ?2 AND user_id = ?3 AND {COVER} GROUP BY key"
    )
});

/// Per user: `?2 = 0` any server, `?3 = 0` any user.
static SUM_BY_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT user_id, sum(plays), sum(watch_ms) FROM stats_rollups \
         WHERE dim = ?1 AND user_id > 0 AND (?2 = 0 OR server_id = ?2) AND (?3 = 0 OR user_id = ?3) \
         AND {COVER} GROUP BY user_id"
    )
});

static USERS_OF_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT count(DISTINCT user_id) FROM stats_rollups \
         WHERE dim = ?1 AND key = ?14 AND user_id > 0 AND (?2 = 0 OR server_id = ?2) \
         AND (?3 = 0 OR user_id = ?3) AND {COVER}"
    )
});

/// Plays, watch time and users per key over the period, for one scope's keys (the users
/// from the per-user rows under it).
static USERS_BY_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT key, count(DISTINCT user_id) FROM stats_rollups \
         WHERE dim = ?1 AND user_id > 0 AND (?2 = 0 OR server_id = ?2) AND (?3 = 0 OR user_id = ?3) \
         AND {COVER} GROUP BY key"
    )
});

const DAYS: &str = "SELECT bucket, key, plays, watch_ms, bytes FROM stats_rollups \
     WHERE dim = 'type' AND server_id = ?1 AND user_id = ?2 AND level = 1 AND bucket BETWEEN ?3 AND ?4 \
     ORDER BY bucket";
const FIRST_LAST_DAY: &str = "SELECT min(bucket), max(bucket) FROM stats_rollups \
     WHERE dim = 'type' AND server_id = ?1 AND user_id = ?2 AND level = 1";
const CONCURRENCY: &str = "SELECT day, peak, at, direct_play, direct_stream, transcode \
     FROM stats_concurrency WHERE server_id = ?1 AND user_id = ?2 AND day BETWEEN ?3 AND ?4 ORDER BY day";

#[cfg(test)]
pub(crate) fn statements() -> Vec<String> {
    [
        DIRTY,
        HAS_DIRTY,
        CLEAN,
        MARK,
        HISTORY_SPAN,
        LONGEST_PLAY,
        CLEAR_ROLLUPS,
        CLEAR_CONCURRENCY,
        STARTED_IN,
        RUNNING_IN,
        DELETE_BUCKET,
        INSERT_ROLLUP,
        FOLD,
        DELETE_CONCURRENCY,
        INSERT_CONCURRENCY,
        DAYS,
        FIRST_LAST_DAY,
        CONCURRENCY,
        USER_NAME,
        USER_CHOICES,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([SUM_BY_KEY.clone(), SUM_BY_USER.clone(), USERS_OF_KEY.clone(), USERS_BY_KEY.clone()])
    .collect()
}

/// A span of time whose rollups are stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirty {
    pub id: i64,
    pub from_ms: i64,
    pub to_ms: i64,
    /// A span to refold whole rather than the span of one play.
    pub rebuild: bool,
}

pub fn dirty(conn: &Connection, limit: i64) -> AppResult<Vec<Dirty>> {
    let mut stmt = conn.prepare_cached(DIRTY)?;
    let rows = stmt.query_map([limit], |r| {
        Ok(Dirty { id: r.get(0)?, from_ms: r.get(1)?, to_ms: r.get(2)?, rebuild: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn has_dirty(conn: &Connection) -> AppResult<bool> {
    Ok(conn.prepare_cached(HAS_DIRTY)?.query_row([], |r| r.get(0))?)
}

pub fn clean(conn: &Connection, up_to_id: i64) -> AppResult<()> {
    conn.prepare_cached(CLEAN)?.execute([up_to_id])?;
    Ok(())
}

/// Marks `[from_ms, to_ms]` to be refolded from history.
pub fn mark(conn: &Connection, from_ms: i64, to_ms: i64) -> AppResult<()> {
    conn.prepare_cached(MARK)?.execute([from_ms, to_ms])?;
    Ok(())
}

/// The first start and last stop of all finished plays.
pub fn history_span(conn: &Connection) -> AppResult<Option<(i64, i64)>> {
    let span: (Option<i64>, Option<i64>) =
        conn.prepare_cached(HISTORY_SPAN)?.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(span.0.zip(span.1))
}

/// The longest finished play, in milliseconds.
pub fn longest_play(conn: &Connection) -> AppResult<i64> {
    Ok(conn.prepare_cached(LONGEST_PLAY)?.query_row([], |r| r.get(0))?)
}

pub fn clear(conn: &Connection) -> AppResult<()> {
    conn.prepare_cached(CLEAR_ROLLUPS)?.execute([])?;
    conn.prepare_cached(CLEAR_CONCURRENCY)?.execute([])?;
    Ok(())
}

/// What one finished play adds to the rollups.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayFact {
    pub server_id: i64,
    pub user_id: i64,
    pub media_type: String,
    pub title: String,
    pub grandparent_title: Option<String>,
    pub year: Option<i64>,
    pub library_name: Option<String>,
    pub player: Option<String>,
    pub platform: Option<String>,
    pub decision: String,
    pub source_resolution: Option<String>,
    pub stream_resolution: Option<String>,
    pub bandwidth_kbps: Option<i64>,
    pub started_at: i64,
    pub stopped_at: i64,
    pub paused_ms: i64,
    pub play_ms: Option<i64>,
    pub is_local: bool,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub city: Option<String>,
    pub country: Option<String>,
}

impl PlayFact {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            server_id: r.get(0)?,
            user_id: r.get(1)?,
            media_type: r.get(2)?,
            title: r.get(3)?,
            grandparent_title: r.get(4)?,
            year: r.get(5)?,
            library_name: r.get(6)?,
            player: r.get(7)?,
            platform: r.get(8)?,
            decision: r.get(9)?,
            source_resolution: r.get(10)?,
            stream_resolution: r.get(11)?,
            bandwidth_kbps: r.get(12)?,
            started_at: r.get(13)?,
            stopped_at: r.get(14)?,
            paused_ms: r.get(15)?,
            play_ms: r.get(16)?,
            is_local: r.get(17)?,
            lat: r.get(18)?,
            lon: r.get(19)?,
            city: r.get(20)?,
            country: r.get(21)?,
        })
    }
}

/// Finished plays that started in `[from_ms, until_ms)`.
pub fn started_in(conn: &Connection, from_ms: i64, until_ms: i64) -> AppResult<Vec<PlayFact>> {
    let mut stmt = conn.prepare_cached(STARTED_IN)?;
    let rows = stmt.query_map([from_ms, until_ms], PlayFact::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A finished play as an interval, for concurrency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub server_id: i64,
    pub user_id: i64,
    pub decision: String,
    pub started_at: i64,
    pub stopped_at: i64,
}

/// Finished plays running at some moment of `[from_ms, until_ms)`; `longest_ms` bounds how
/// long before `from_ms` one can have started.
pub fn running_in(
    conn: &Connection,
    from_ms: i64,
    until_ms: i64,
    longest_ms: i64,
) -> AppResult<Vec<Interval>> {
    let mut stmt = conn.prepare_cached(RUNNING_IN)?;
    let rows = stmt.query_map(params![from_ms - longest_ms, from_ms, until_ms], |r| {
        Ok(Interval {
            server_id: r.get(0)?,
            user_id: r.get(1)?,
            decision: r.get(2)?,
            started_at: r.get(3)?,
            stopped_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete_bucket(conn: &Connection, level: i64, bucket: Day) -> AppResult<()> {
    conn.prepare_cached(DELETE_BUCKET)?.execute(params![level, bucket])?;
    Ok(())
}

/// One day row: `(dim, server_id, user_id, key)` and its sums.
pub struct DayRow<'a> {
    pub dim: &'a str,
    pub server_id: i64,
    pub user_id: i64,
    pub key: &'a str,
    pub plays: i64,
    pub watch_ms: i64,
    pub bytes: i64,
}

pub fn insert_day_row(conn: &Connection, day: Day, row: &DayRow<'_>) -> AppResult<()> {
    conn.prepare_cached(INSERT_ROLLUP)?.execute(params![
        row.dim,
        row.server_id,
        row.user_id,
        day,
        row.key,
        row.plays,
        row.watch_ms,
        row.bytes
    ])?;
    Ok(())
}

/// Rewrites bucket `bucket` of `level` as the sum of the `from_level` buckets `first..=last`.
pub fn fold(
    conn: &Connection,
    level: i64,
    bucket: Day,
    from_level: i64,
    first: Day,
    last: Day,
) -> AppResult<()> {
    delete_bucket(conn, level, bucket)?;
    conn.prepare_cached(FOLD)?.execute(params![level, bucket, from_level, first, last])?;
    Ok(())
}

/// The peak of one scope on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peak {
    pub count: i64,
    /// Unix ms when the peak was first reached.
    pub at: i64,
    pub direct_play: i64,
    pub direct_stream: i64,
    pub transcode: i64,
}

pub fn delete_concurrency(conn: &Connection, day: Day) -> AppResult<()> {
    conn.prepare_cached(DELETE_CONCURRENCY)?.execute([day])?;
    Ok(())
}

pub fn insert_concurrency(
    conn: &Connection,
    server_id: i64,
    user_id: i64,
    day: Day,
    p: &Peak,
) -> AppResult<()> {
    conn.prepare_cached(INSERT_CONCURRENCY)?.execute(params![
        server_id,
        user_id,
        day,
        p.count,
        p.at,
        p.direct_play,
        p.direct_stream,
        p.transcode
    ])?;
    Ok(())
}

/// A scope of the rollups: `(0, 0)` everything, `(s, 0)` one server, `(s, u)` one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scope {
    pub server_id: i64,
    pub user_id: i64,
}

/// Sums of one key over a period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sum {
    pub plays: i64,
    pub watch_ms: i64,
    pub bytes: i64,
}

/// Each key of `dim` with its sums over the period, for one scope.
pub fn sum_by_key(
    conn: &Connection,
    dim: &str,
    scope: Scope,
    c: &CoverBounds,
) -> AppResult<Vec<(String, Sum)>> {
    let mut stmt = conn.prepare_cached(&SUM_BY_KEY)?;
    let rows = stmt.query_map(
        params![
            dim,
            scope.server_id,
            scope.user_id,
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            c[6],
            c[7],
            c[8],
            c[9]
        ],
        |r| Ok((r.get(0)?, Sum { plays: r.get(1)?, watch_ms: r.get(2)?, bytes: r.get(3)? })),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Plays and watch time per user over the period (`scope` narrows to a server or a user).
pub fn sum_by_user(
    conn: &Connection,
    scope: Scope,
    c: &CoverBounds,
) -> AppResult<Vec<(i64, i64, i64)>> {
    let mut stmt = conn.prepare_cached(&SUM_BY_USER)?;
    let rows = stmt.query_map(
        params![
            "type",
            scope.server_id,
            scope.user_id,
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            c[6],
            c[7],
            c[8],
            c[9]
        ],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many users played `key` of `dim` in the period.
pub fn users_of_key(
    conn: &Connection,
    dim: &str,
    key: &str,
    scope: Scope,
    c: &CoverBounds,
) -> AppResult<i64> {
    Ok(conn.prepare_cached(&USERS_OF_KEY)?.query_row(
        params![
            dim,
            scope.server_id,
            scope.user_id,
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            c[6],
            c[7],
            c[8],
            c[9],
            key
        ],
        |r| r.get(0),
    )?)
}

/// How many users played each key of `dim` in the period.
pub fn users_by_key(
    conn: &Connection,
    dim: &str,
    scope: Scope,
    c: &CoverBounds,
) -> AppResult<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(&USERS_BY_KEY)?;
    let rows = stmt.query_map(
        params![
            dim,
            scope.server_id,
            scope.user_id,
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            c[6],
            c[7],
            c[8],
            c[9]
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The day rows of the media types: `(day, media_type, sums)`, by day.
pub fn days(
    conn: &Connection,
    scope: Scope,
    first: Day,
    last: Day,
) -> AppResult<Vec<(Day, String, Sum)>> {
    let mut stmt = conn.prepare_cached(DAYS)?;
    let rows = stmt.query_map(params![scope.server_id, scope.user_id, first, last], |r| {
        Ok((r.get(0)?, r.get(1)?, Sum { plays: r.get(2)?, watch_ms: r.get(3)?, bytes: r.get(4)? }))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The first and last day with plays in a scope.
pub fn first_last_day(conn: &Connection, scope: Scope) -> AppResult<Option<(Day, Day)>> {
    let span: Option<(Option<Day>, Option<Day>)> = conn
        .prepare_cached(FIRST_LAST_DAY)?
        .query_row(params![scope.server_id, scope.user_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(span.and_then(|(a, b)| a.zip(b)))
}

/// The daily peaks of a scope, by day.
pub fn concurrency(
    conn: &Connection,
    scope: Scope,
    first: Day,
    last: Day,
) -> AppResult<Vec<(Day, Peak)>> {
    let mut stmt = conn.prepare_cached(CONCURRENCY)?;
    let rows = stmt.query_map(params![scope.server_id, scope.user_id, first, last], |r| {
        Ok((
            r.get(0)?,
            Peak {
                count: r.get(1)?,
                at: r.get(2)?,
                direct_play: r.get(3)?,
                direct_stream: r.get(4)?,
                transcode: r.get(5)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const USER_NAME: &str = "SELECT name FROM media_users WHERE id = ?1";

/// A media user's name.
pub fn user_name(conn: &Connection, user_id: i64) -> AppResult<Option<String>> {
    Ok(conn.prepare_cached(USER_NAME)?.query_row([user_id], |r| r.get(0)).optional()?)
}

const USER_CHOICES: &str = "SELECT u.id, u.name, s.name FROM media_users u JOIN servers s ON s.id = u.server_id \
     WHERE s.deleted_at IS NULL ORDER BY u.name COLLATE NOCASE, s.name";

/// A user to pick in a filter: `(id, name, server name)`.
pub type UserChoice = (i64, String, String);

/// Every media user of a live server, for filters (without counting their plays).
pub fn user_choices(conn: &Connection) -> AppResult<Vec<UserChoice>> {
    let mut stmt = conn.prepare_cached(USER_CHOICES)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
