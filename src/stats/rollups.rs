//! Daily rollups of finished plays, and months and years folded from them.
//!
//! Triggers on `plays` (migration 0030) note the span of every finished play that is
//! written, changed or deleted in `stats_dirty`, whichever code does it. [`catch_up`] refolds
//! each local day those spans touch from history: the day's sums per dimension (one row per
//! key and scope), the day's concurrency peak, then the month and the year around it. So the
//! rollups equal a scan of history by construction, and a request never scans history.
//!
//! Conventions (shared with the scan in the tests): a play counts, with all its watch time,
//! on the local day and hour it started; concurrency counts every moment of a day, so a play
//! across midnight is concurrent on both days.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::Connection;

use crate::db::settings;
use crate::db::stats::{self as sql, DayRow, Interval, Peak, PlayFact};
use crate::error::AppResult;
use crate::stats::calendar::{self, Calendar, Day, LEVEL_DAY, LEVEL_MONTH, LEVEL_YEAR};

/// Settings keys: the time zone the rollups were folded in, and the longest play seen (it
/// bounds how far back a play running on a day can have started).
const ZONE_KEY: &str = "stats.time_zone";
const LONGEST_KEY: &str = "stats.longest_play_ms";

/// Dirty spans read per pass.
const BATCH: i64 = 10_000;

/// Separates the parts of a composite key (title and year, source and stream resolution).
pub const SEP: char = '\u{1f}';

/// Dimensions of the rollups.
pub const TYPE: &str = "type";
pub const HOUR: &str = "hour";
pub const PLATFORM: &str = "platform";
pub const PLAYER: &str = "player";
pub const QUALITY: &str = "quality";
pub const DECISION: &str = "decision";
pub const TITLE: &str = "title";
pub const LIBRARY: &str = "library";
pub const PLACE: &str = "place";

/// Place keys of plays from the local network and of plays without a location.
pub const PLACE_LOCAL: &str = "local";
pub const PLACE_UNKNOWN: &str = "unknown";

/// Where a play came from: `lat,lon` to two decimals (about a kilometre), city and
/// country; or [`PLACE_LOCAL`], or [`PLACE_UNKNOWN`].
pub fn place_key(p: &PlayFact) -> String {
    if p.is_local {
        return PLACE_LOCAL.to_owned();
    }
    match p.lat.zip(p.lon) {
        Some((lat, lon)) => format!(
            "{lat:.2},{lon:.2}{SEP}{}{SEP}{}",
            p.city.as_deref().unwrap_or_default(),
            p.country.as_deref().unwrap_or_default()
        ),
        None => PLACE_UNKNOWN.to_owned(),
    }
}

/// Time actually watched: as measured at the stop, or the span less the pauses (imports).
pub fn watch_ms(p: &PlayFact) -> i64 {
    p.play_ms.unwrap_or_else(|| (p.stopped_at - p.started_at - p.paused_ms).max(0)).max(0)
}

/// Estimated bytes sent: the stream's bandwidth over the time watched.
pub fn bytes(p: &PlayFact) -> i64 {
    p.bandwidth_kbps.unwrap_or(0).max(0) * watch_ms(p) / 8
}

/// The title a play counts for: a movie with its year, the show of an episode, the artist
/// of a track, or the item itself.
pub fn title_key(p: &PlayFact) -> String {
    let show = p.grandparent_title.as_deref().filter(|t| !t.is_empty()).unwrap_or(&p.title);
    match p.media_type.as_str() {
        "movie" => format!(
            "movie{SEP}{}{SEP}{}",
            p.title,
            p.year.map(|y| y.to_string()).unwrap_or_default()
        ),
        "episode" => format!("show{SEP}{show}"),
        "track" => format!("music{SEP}{show}"),
        other => format!("{other}{SEP}{}", p.title),
    }
}

/// The `(dimension, key)` pairs one play adds to.
pub fn keys(p: &PlayFact, hour: u8) -> [(&'static str, String); 9] {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        (TYPE, p.media_type.clone()),
        (HOUR, format!("{hour:02}")),
        (PLATFORM, text(&p.platform)),
        (PLAYER, text(&p.player)),
        (QUALITY, format!("{}{SEP}{}", text(&p.source_resolution), text(&p.stream_resolution))),
        (DECISION, p.decision.clone()),
        (TITLE, title_key(p)),
        (LIBRARY, format!("{}{SEP}{}", p.server_id, text(&p.library_name))),
        (PLACE, place_key(p)),
    ]
}

/// What [`catch_up`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Folded {
    pub days: usize,
    pub plays: usize,
}

/// Whether the rollups lag behind history (a cheap check for readers).
pub fn is_stale(conn: &Connection) -> AppResult<bool> {
    sql::has_dirty(conn)
}

/// Days refolded per transaction, so that a big refold (the first start on a long
/// history, an import) never holds the writer for long. An interrupted refold is redone
/// from the start: the dirty spans go only when every day of theirs is done.
const DAYS_PER_TRANSACTION: usize = 31;

/// Refolds every day that history changed on since the last call. Cheap when nothing
/// changed.
pub fn catch_up(conn: &mut Connection, cal: &Calendar) -> AppResult<Folded> {
    let zone = cal.name();
    {
        let tx = conn.transaction()?;
        if settings::get::<String>(&tx, ZONE_KEY)?.as_deref() != Some(zone.as_str()) {
            // Another time zone moves every day boundary: start over.
            sql::clear(&tx)?;
            if let Some((from, to)) = sql::history_span(&tx)? {
                sql::mark(&tx, from, to)?;
            }
            settings::put(&tx, ZONE_KEY, &zone)?;
            settings::put(&tx, LONGEST_KEY, &sql::longest_play(&tx)?)?;
        }
        tx.commit()?;
    }
    let mut total = Folded::default();
    loop {
        let dirty = sql::dirty(conn, BATCH)?;
        let Some(last) = dirty.last().map(|d| d.id) else { break };
        let mut longest = settings::get::<i64>(conn, LONGEST_KEY)?.unwrap_or(0);
        let mut days = BTreeSet::new();
        let horizon = crate::time::now_ms() + 86_400_000;
        for d in &dirty {
            if !d.rebuild {
                longest = longest.max(d.to_ms - d.from_ms);
            }
            // A span stopping in the future is bogus: fold no more than up to tomorrow.
            let to = d.to_ms.min(horizon).max(d.from_ms);
            days.extend(cal.day_of(d.from_ms)..=cal.day_of(to));
        }
        settings::put(conn, LONGEST_KEY, &longest)?;
        let days: Vec<Day> = days.into_iter().collect();
        for chunk in days.chunks(DAYS_PER_TRANSACTION) {
            let tx = conn.transaction()?;
            let done = fold_days(&tx, cal, chunk, longest)?;
            tx.commit()?;
            total.days += done.days;
            total.plays += done.plays;
        }
        sql::clean(conn, last)?;
    }
    Ok(total)
}

/// Marks the local days `first..=last` to be refolded from history and folds them now:
/// for code that changed plays some other way than through `plays` (none does today) or
/// wants the rollups current at once (an import when it finishes).
pub fn rebuild_days(
    conn: &mut Connection,
    cal: &Calendar,
    first: Day,
    last: Day,
) -> AppResult<Folded> {
    sql::mark(conn, cal.start_ms(first), cal.start_ms(last + 1) - 1)?;
    catch_up(conn, cal)
}

/// Throws every rollup away and folds all of history again (`streamwarden stats rebuild`).
pub fn rebuild_all(conn: &mut Connection, cal: &Calendar) -> AppResult<Folded> {
    {
        let tx = conn.transaction()?;
        settings::delete(&tx, ZONE_KEY)?;
        tx.commit()?;
    }
    catch_up(conn, cal)
}

/// Refolds the given days, then the months and years around them.
fn fold_days(
    conn: &Connection,
    cal: &Calendar,
    days: &[Day],
    longest_ms: i64,
) -> AppResult<Folded> {
    let mut folded = Folded::default();
    let mut months = BTreeSet::new();
    for &day in days {
        let (start, end) = (cal.start_ms(day), cal.start_ms(day + 1));
        let plays = sql::started_in(conn, start, end)?;
        folded.plays += plays.len();
        write_day(conn, cal, day, &plays)?;
        let running = sql::running_in(conn, start, end, longest_ms)?;
        sql::delete_concurrency(conn, day)?;
        for ((server_id, user_id), peak) in peaks(&running, start, end) {
            sql::insert_concurrency(conn, server_id, user_id, day, &peak)?;
        }
        months.insert(calendar::month_start(day));
        folded.days += 1;
    }
    let mut years = BTreeSet::new();
    for &m in &months {
        sql::fold(conn, LEVEL_MONTH, m, LEVEL_DAY, m, calendar::next_month(m) - 1)?;
        years.insert(calendar::year_start(m));
    }
    for &y in &years {
        sql::fold(conn, LEVEL_YEAR, y, LEVEL_MONTH, y, calendar::next_year(y) - 1)?;
    }
    Ok(folded)
}

/// `(dimension, server_id, user_id, key)` of a rollup row.
type RowKey = (&'static str, i64, i64, String);

/// Writes one day's rows: every key of every play, for all servers, its server and its user.
fn write_day(conn: &Connection, cal: &Calendar, day: Day, plays: &[PlayFact]) -> AppResult<()> {
    let mut sums: HashMap<RowKey, (i64, i64, i64)> = HashMap::new();
    for p in plays {
        let (_, hour) = cal.day_and_hour(p.started_at);
        let (w, b) = (watch_ms(p), bytes(p));
        for (dim, key) in keys(p, hour) {
            for (server_id, user_id) in [(0, 0), (p.server_id, 0), (p.server_id, p.user_id)] {
                let e = sums.entry((dim, server_id, user_id, key.clone())).or_default();
                e.0 += 1;
                e.1 += w;
                e.2 += b;
            }
        }
    }
    sql::delete_bucket(conn, LEVEL_DAY, day)?;
    for ((dim, server_id, user_id, key), (plays, watch_ms, bytes)) in &sums {
        sql::insert_day_row(
            conn,
            day,
            &DayRow {
                dim,
                server_id: *server_id,
                user_id: *user_id,
                key,
                plays: *plays,
                watch_ms: *watch_ms,
                bytes: *bytes,
            },
        )?;
    }
    Ok(())
}

/// The peak of streams at once within `[start, end)` for every scope that has plays
/// there: all servers `(0, 0)`, each server `(s, 0)`, each user `(s, u)`.
pub fn peaks(running: &[Interval], start: i64, end: i64) -> BTreeMap<(i64, i64), Peak> {
    let mut scopes: BTreeMap<(i64, i64), Vec<&Interval>> = BTreeMap::new();
    for p in running {
        for scope in [(0, 0), (p.server_id, 0), (p.server_id, p.user_id)] {
            scopes.entry(scope).or_default().push(p);
        }
    }
    scopes
        .into_iter()
        .filter_map(|(scope, plays)| peak(&plays, start, end).map(|p| (scope, p)))
        .collect()
}

/// A sweep over the starts and stops clipped to the day; a stop at the moment another play
/// starts is not overlap. `None` when nothing runs for a moment of the day.
fn peak(plays: &[&Interval], start: i64, end: i64) -> Option<Peak> {
    // (time, +1 start / -1 stop, decision index); stops sort before starts at one time.
    let mut events: Vec<(i64, i8, usize)> = Vec::with_capacity(plays.len() * 2);
    for p in plays {
        let (a, b) = (p.started_at.max(start), p.stopped_at.min(end));
        if a >= b {
            continue;
        }
        let d = match p.decision.as_str() {
            "direct_play" => 0,
            "direct_stream" => 1,
            _ => 2,
        };
        events.push((a, 1, d));
        events.push((b, -1, d));
    }
    events.sort_unstable();
    let mut now = [0_i64; 3];
    let mut best: Option<Peak> = None;
    for (at, step, d) in events {
        now[d] += i64::from(step);
        let count = now.iter().sum::<i64>();
        if step > 0 && best.is_none_or(|b| count > b.count) {
            best = Some(Peak {
                count,
                at,
                direct_play: now[0],
                direct_stream: now[1],
                transcode: now[2],
            });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(server_id: i64, user_id: i64, decision: &str, a: i64, b: i64) -> Interval {
        Interval { server_id, user_id, decision: decision.into(), started_at: a, stopped_at: b }
    }

    #[test]
    fn peak_counts_overlap_not_touching_and_clips_to_the_day() {
        let plays = [
            iv(1, 10, "direct_play", 0, 100),
            iv(1, 11, "transcode", 50, 150),
            iv(2, 12, "direct_stream", 100, 200), // starts as the first stops
            iv(2, 12, "transcode", 120, 130),
            iv(2, 13, "transcode", 990, 2000), // runs past the end of the day
        ];
        let p = peaks(&plays, 0, 1000);
        assert_eq!(
            p[&(0, 0)],
            Peak { count: 3, at: 120, direct_play: 0, direct_stream: 1, transcode: 2 }
        );
        assert_eq!(p[&(1, 0)].count, 2);
        assert_eq!(
            p[&(2, 12)],
            Peak { count: 2, at: 120, direct_play: 0, direct_stream: 1, transcode: 1 }
        );
        assert_eq!(
            p[&(2, 13)],
            Peak { count: 1, at: 990, direct_play: 0, direct_stream: 0, transcode: 1 }
        );
        let next_day = peaks(&plays, 1000, 2000);
        assert_eq!(next_day[&(0, 0)].at, 1000, "a play across midnight runs at the next midnight");
        assert!(peaks(&[iv(1, 1, "direct_play", 5, 5)], 0, 10).is_empty());
    }
}
