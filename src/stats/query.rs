//! The statistics of a period, read from the rollups (`GET /api/v1/stats`, `/stats`).

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;

use crate::db::stats::{self as sql, Scope, Sum};
use crate::error::AppResult;
use crate::stats::calendar::{self, Calendar, Day};
use crate::stats::rollups::{self, SEP};

/// Top lists are this long unless asked otherwise.
pub const DEFAULT_TOP: usize = 10;
pub const MAX_TOP: usize = 100;

/// What to count: local days `first..=last`, narrowed to a server or a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsQuery {
    pub first: Day,
    pub last: Day,
    pub scope: Scope,
    /// How many entries the top lists keep.
    pub top: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub plays: i64,
    pub watch_ms: i64,
    /// Estimated bytes sent.
    pub bytes: i64,
    pub users: i64,
    pub titles: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub plays: i64,
    pub watch_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`, a local day.
    pub date: String,
    pub plays: i64,
    pub watch_ms: i64,
    pub bytes: i64,
    /// Plays and watch time per media type (movie, episode, track, ...).
    pub by_type: BTreeMap<String, Count>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Named {
    pub name: String,
    pub plays: i64,
    pub watch_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quality {
    pub source_resolution: String,
    pub stream_resolution: String,
    pub plays: i64,
    pub watch_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decisions {
    pub direct_play: i64,
    pub direct_stream: i64,
    pub transcode: i64,
}

/// The most streams at once on one local day, split as they were at that moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Concurrent {
    /// RFC 3339: when the day's peak was first reached.
    pub at: String,
    pub date: String,
    pub count: i64,
    pub direct_play: i64,
    pub direct_stream: i64,
    pub transcode: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeakConcurrent {
    pub count: i64,
    /// RFC 3339, `null` when nothing played.
    pub at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopUser {
    pub user: UserRef,
    pub plays: i64,
    pub watch_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopTitle {
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year: Option<i64>,
    pub plays: i64,
    pub watch_ms: i64,
    pub users: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopLibrary {
    pub server_id: i64,
    pub name: String,
    pub plays: i64,
    pub watch_ms: i64,
    pub users: i64,
}

/// Everything `/stats` shows, as `GET /api/v1/stats` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// The period, local days, both included.
    pub from: String,
    pub to: String,
    /// The time zone days and hours are counted in.
    pub time_zone: String,
    pub totals: Totals,
    pub plays_by_day: Vec<DayCount>,
    /// Monday first.
    pub by_weekday: Vec<Count>,
    /// Local hours 0 to 23.
    pub by_hour: Vec<Count>,
    pub platforms: Vec<Named>,
    pub players: Vec<Named>,
    pub quality: Vec<Quality>,
    pub decisions: Decisions,
    pub concurrent: Vec<Concurrent>,
    pub peak_concurrent: PeakConcurrent,
    pub top_users: Vec<TopUser>,
    pub top_movies: Vec<TopTitle>,
    pub top_shows: Vec<TopTitle>,
    pub top_libraries: Vec<TopLibrary>,
}

/// Unknown platforms, players and resolutions are stored empty.
fn shown(name: &str) -> String {
    if name.is_empty() { "Unknown".to_owned() } else { name.to_owned() }
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default()
}

/// Biggest first; ties by name so that answers are stable.
fn ranked<T>(mut items: Vec<(String, T)>, plays: impl Fn(&T) -> (i64, i64)) -> Vec<(String, T)> {
    items.sort_by(|a, b| plays(&b.1).cmp(&plays(&a.1)).then_with(|| a.0.cmp(&b.0)));
    items
}

fn named(sums: Vec<(String, Sum)>) -> Vec<Named> {
    ranked(sums, |s| (s.plays, s.watch_ms))
        .into_iter()
        .map(|(k, s)| Named { name: shown(&k), plays: s.plays, watch_ms: s.watch_ms })
        .collect()
}

/// The first day with plays in a scope (for "all time"), if any.
pub fn first_day(conn: &Connection, scope: Scope) -> AppResult<Option<Day>> {
    Ok(sql::first_last_day(conn, scope)?.map(|(first, _)| first))
}

/// Reads the statistics of a period from the rollups (which the caller has caught up).
pub fn stats(conn: &Connection, cal: &Calendar, q: &StatsQuery) -> AppResult<Stats> {
    let runs = calendar::cover(q.first, q.last);
    let c = calendar::bounds(&runs);
    let scope = q.scope;
    let sum = |dim: &str| sql::sum_by_key(conn, dim, scope, &c);

    // Days (and weekdays, and totals) from the day rows of the media types.
    let mut days: BTreeMap<Day, DayCount> = BTreeMap::new();
    let mut by_weekday = vec![Count::default(); 7];
    let mut totals = Totals::default();
    for (day, media_type, s) in sql::days(conn, scope, q.first, q.last)? {
        let d = days.entry(day).or_insert_with(|| DayCount {
            date: calendar::iso(day),
            plays: 0,
            watch_ms: 0,
            bytes: 0,
            by_type: BTreeMap::new(),
        });
        d.plays += s.plays;
        d.watch_ms += s.watch_ms;
        d.bytes += s.bytes;
        d.by_type.insert(media_type, Count { plays: s.plays, watch_ms: s.watch_ms });
        let w = &mut by_weekday[calendar::weekday(day)];
        w.plays += s.plays;
        w.watch_ms += s.watch_ms;
        totals.plays += s.plays;
        totals.watch_ms += s.watch_ms;
        totals.bytes += s.bytes;
    }
    let plays_by_day = (q.first..=q.last)
        .map(|day| {
            days.remove(&day).unwrap_or_else(|| DayCount {
                date: calendar::iso(day),
                plays: 0,
                watch_ms: 0,
                bytes: 0,
                by_type: BTreeMap::new(),
            })
        })
        .collect();

    let mut by_hour = vec![Count::default(); 24];
    for (key, s) in sum(rollups::HOUR)? {
        if let Some(h) = key.parse::<usize>().ok().filter(|h| *h < 24) {
            by_hour[h] = Count { plays: s.plays, watch_ms: s.watch_ms };
        }
    }

    let mut decisions = Decisions::default();
    for (key, s) in sum(rollups::DECISION)? {
        match key.as_str() {
            "direct_play" => decisions.direct_play += s.plays,
            "direct_stream" => decisions.direct_stream += s.plays,
            _ => decisions.transcode += s.plays,
        }
    }

    let quality = ranked(sum(rollups::QUALITY)?, |s| (s.plays, s.watch_ms))
        .into_iter()
        .map(|(k, s)| {
            let (src, stream) = k.split_once(SEP).unwrap_or((&k, ""));
            Quality {
                source_resolution: shown(src),
                stream_resolution: shown(stream),
                plays: s.plays,
                watch_ms: s.watch_ms,
            }
        })
        .collect();

    let mut concurrent = Vec::new();
    let mut peak_concurrent = PeakConcurrent::default();
    for (day, p) in sql::concurrency(conn, scope, q.first, q.last)? {
        if p.count > peak_concurrent.count {
            peak_concurrent = PeakConcurrent { count: p.count, at: Some(rfc3339(p.at)) };
        }
        concurrent.push(Concurrent {
            at: rfc3339(p.at),
            date: calendar::iso(day),
            count: p.count,
            direct_play: p.direct_play,
            direct_stream: p.direct_stream,
            transcode: p.transcode,
        });
    }

    let per_user = sql::sum_by_user(conn, scope, &c)?;
    totals.users = i64::try_from(per_user.len()).unwrap_or(i64::MAX);
    let mut users: Vec<(String, (i64, i64, i64))> =
        per_user.into_iter().map(|(id, p, w)| (format!("{id:020}"), (id, p, w))).collect();
    users = ranked(users, |(_, p, w)| (*p, *w));
    let mut top_users = Vec::new();
    for (_, (id, plays, watch_ms)) in users.into_iter().take(q.top) {
        let name = sql::user_name(conn, id)?.unwrap_or_else(|| format!("user {id}"));
        top_users.push(TopUser { user: UserRef { id, name }, plays, watch_ms });
    }

    let titles = sum(rollups::TITLE)?;
    totals.titles = i64::try_from(titles.len()).unwrap_or(i64::MAX);
    let (mut movies, mut shows) = (Vec::new(), Vec::new());
    for (key, s) in titles {
        match key.split_once(SEP) {
            Some(("movie", rest)) => movies.push((key.clone(), (rest.to_owned(), s))),
            Some(("show", rest)) => shows.push((key.clone(), (rest.to_owned(), s))),
            _ => {}
        }
    }
    let top_titles = |list: Vec<(String, (String, Sum))>| -> AppResult<Vec<TopTitle>> {
        let list = ranked(list, |(_, s)| (s.plays, s.watch_ms));
        list.into_iter()
            .take(q.top)
            .map(|(key, (rest, s))| {
                let (title, year) = match rest.split_once(SEP) {
                    Some((t, y)) => (t.to_owned(), y.parse().ok()),
                    None => (rest, None),
                };
                Ok(TopTitle {
                    title,
                    year,
                    plays: s.plays,
                    watch_ms: s.watch_ms,
                    users: sql::users_of_key(conn, rollups::TITLE, &key, scope, &c)?,
                })
            })
            .collect()
    };
    let top_movies = top_titles(movies)?;
    let top_shows = top_titles(shows)?;

    let libraries: Vec<(String, Sum)> =
        sum(rollups::LIBRARY)?.into_iter().filter(|(k, _)| !k.ends_with(SEP)).collect();
    let mut top_libraries = Vec::new();
    for (key, s) in ranked(libraries, |s| (s.plays, s.watch_ms)).into_iter().take(q.top) {
        let (server, name) = key.split_once(SEP).unwrap_or(("0", &key));
        top_libraries.push(TopLibrary {
            server_id: server.parse().unwrap_or(0),
            name: name.to_owned(),
            plays: s.plays,
            watch_ms: s.watch_ms,
            users: sql::users_of_key(conn, rollups::LIBRARY, &key, scope, &c)?,
        });
    }

    Ok(Stats {
        from: calendar::iso(q.first),
        to: calendar::iso(q.last),
        time_zone: cal.name(),
        totals,
        plays_by_day,
        by_weekday,
        by_hour,
        platforms: named(sum(rollups::PLATFORM)?),
        players: named(sum(rollups::PLAYER)?),
        quality,
        decisions,
        concurrent,
        peak_concurrent,
        top_users,
        top_movies,
        top_shows,
        top_libraries,
    })
}
