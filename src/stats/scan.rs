//! The reference the rollups are checked against: the same statistics computed the slow,
//! obvious way, straight from every finished play, with none of the rollup code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use rusqlite::Connection;

use crate::stats::calendar::{self, Calendar, Day};
use crate::stats::query::{
    Concurrent, Count, DayCount, Decisions, Named, PeakConcurrent, Quality, Stats, StatsQuery,
    TopLibrary, TopTitle, TopUser, Totals, UserRef,
};

struct P {
    server_id: i64,
    user_id: i64,
    media_type: String,
    title: String,
    show: Option<String>,
    year: Option<i64>,
    library: Option<String>,
    player: Option<String>,
    platform: Option<String>,
    decision: String,
    source: Option<String>,
    stream: Option<String>,
    kbps: Option<i64>,
    started_at: i64,
    stopped_at: i64,
    paused_ms: i64,
    play_ms: Option<i64>,
}

fn all_plays(conn: &Connection) -> Vec<P> {
    let mut stmt = conn
        .prepare(
            "SELECT server_id, user_id, media_type, title, grandparent_title, year, library_name, \
             player, platform, decision, source_resolution, stream_resolution, bandwidth_kbps, \
             started_at, stopped_at, paused_ms, play_ms FROM plays WHERE status = 'stopped'",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok(P {
            server_id: r.get(0)?,
            user_id: r.get(1)?,
            media_type: r.get(2)?,
            title: r.get(3)?,
            show: r.get(4)?,
            year: r.get(5)?,
            library: r.get(6)?,
            player: r.get(7)?,
            platform: r.get(8)?,
            decision: r.get(9)?,
            source: r.get(10)?,
            stream: r.get(11)?,
            kbps: r.get(12)?,
            started_at: r.get(13)?,
            stopped_at: r.get(14)?,
            paused_ms: r.get(15)?,
            play_ms: r.get(16)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Keys rank as stored (unknown is empty, so first among ties); shown as "Unknown".
fn raw(v: Option<&str>) -> String {
    v.unwrap_or_default().to_owned()
}

fn shown(v: &str) -> String {
    if v.is_empty() { "Unknown".to_owned() } else { v.to_owned() }
}

#[derive(Default, Clone)]
struct Acc {
    plays: i64,
    watch: i64,
    users: BTreeSet<i64>,
}

fn add(map: &mut HashMap<String, Acc>, key: String, p: &P, watch: i64) {
    let a = map.entry(key).or_default();
    a.plays += 1;
    a.watch += watch;
    a.users.insert(p.user_id);
}

fn top<T>(map: HashMap<String, Acc>, n: usize, make: impl Fn(&str, &Acc) -> T) -> Vec<T> {
    let mut v: Vec<_> = map.into_iter().collect();
    v.sort_by(|a, b| (b.1.plays, b.1.watch).cmp(&(a.1.plays, a.1.watch)).then(a.0.cmp(&b.0)));
    v.iter().take(n).map(|(k, a)| make(k, a)).collect()
}

fn rfc(ms: i64) -> String {
    Timestamp::from_millisecond(ms).unwrap().to_string()
}

/// The statistics of `q` from a full scan of history.
#[expect(clippy::many_single_char_names, reason = "a scan over plays p, days d, hours h")]
pub fn stats(conn: &Connection, cal: &Calendar, q: &StatsQuery) -> Stats {
    let in_scope = |p: &P| {
        (q.scope.server_id == 0 || p.server_id == q.scope.server_id)
            && (q.scope.user_id == 0 || p.user_id == q.scope.user_id)
    };
    let everything = all_plays(conn);
    let scoped: Vec<&P> = everything.iter().filter(|p| in_scope(p)).collect();
    let plays: Vec<&P> = scoped
        .iter()
        .copied()
        .filter(|p| (q.first..=q.last).contains(&cal.day_of(p.started_at)))
        .collect();

    let mut totals = Totals::default();
    let mut days: BTreeMap<Day, DayCount> = (q.first..=q.last)
        .map(|d| {
            let dc = DayCount {
                date: calendar::iso(d),
                plays: 0,
                watch_ms: 0,
                bytes: 0,
                by_type: BTreeMap::new(),
            };
            (d, dc)
        })
        .collect();
    let mut weekday = vec![Count::default(); 7];
    let mut hour = vec![Count::default(); 24];
    let (mut platforms, mut players, mut quality) =
        (HashMap::new(), HashMap::new(), HashMap::new());
    let (mut users, mut movies, mut shows, mut libraries) =
        (HashMap::new(), HashMap::new(), HashMap::new(), HashMap::new());
    let mut titles = BTreeSet::new();
    let mut decisions = Decisions::default();
    for p in &plays {
        let watch = p.play_ms.unwrap_or((p.stopped_at - p.started_at - p.paused_ms).max(0)).max(0);
        let bytes = p.kbps.unwrap_or(0).max(0) * watch / 8;
        let z =
            Timestamp::from_millisecond(p.started_at).unwrap().to_zoned(cal.time_zone().clone());
        let day = calendar::from_date(z.date());
        totals.plays += 1;
        totals.watch_ms += watch;
        totals.bytes += bytes;
        let d = days.get_mut(&day).unwrap();
        d.plays += 1;
        d.watch_ms += watch;
        d.bytes += bytes;
        let t = d.by_type.entry(p.media_type.clone()).or_default();
        t.plays += 1;
        t.watch_ms += watch;
        let w = &mut weekday[usize::try_from(z.weekday().to_monday_zero_offset()).unwrap()];
        w.plays += 1;
        w.watch_ms += watch;
        let h = &mut hour[usize::try_from(z.hour()).unwrap()];
        h.plays += 1;
        h.watch_ms += watch;
        add(&mut platforms, raw(p.platform.as_deref()), p, watch);
        add(&mut players, raw(p.player.as_deref()), p, watch);
        add(
            &mut quality,
            format!("{}\u{1f}{}", raw(p.source.as_deref()), raw(p.stream.as_deref())),
            p,
            watch,
        );
        match p.decision.as_str() {
            "direct_play" => decisions.direct_play += 1,
            "direct_stream" => decisions.direct_stream += 1,
            _ => decisions.transcode += 1,
        }
        add(&mut users, format!("{:020}", p.user_id), p, watch);
        let show = p.show.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| p.title.clone());
        match p.media_type.as_str() {
            "movie" => {
                let year = p.year.map(|y| y.to_string()).unwrap_or_default();
                add(&mut movies, format!("{}\u{1f}{year}", p.title), p, watch);
                titles.insert(format!("movie {} {year}", p.title));
            }
            "episode" => {
                add(&mut shows, show.clone(), p, watch);
                titles.insert(format!("show {show}"));
            }
            "track" => {
                titles.insert(format!("music {show}"));
            }
            other => {
                titles.insert(format!("{other} {}", p.title));
            }
        }
        if let Some(lib) = p.library.as_deref().filter(|l| !l.is_empty()) {
            add(&mut libraries, format!("{}\u{1f}{lib}", p.server_id), p, watch);
        }
    }
    totals.users = i64::try_from(users.len()).unwrap();
    totals.titles = i64::try_from(titles.len()).unwrap();

    // Concurrency: at every moment a play starts (or the day starts under a running play),
    // count what runs.
    let mut concurrent = Vec::new();
    let mut peak_concurrent = PeakConcurrent::default();
    for day in q.first..=q.last {
        let (start, end) = (cal.start_ms(day), cal.start_ms(day + 1));
        let mut best: Option<(i64, i64, [i64; 3])> = None;
        let mut instants: Vec<i64> = scoped
            .iter()
            .filter(|p| p.started_at.max(start) < p.stopped_at.min(end))
            .map(|p| p.started_at.max(start))
            .collect();
        instants.sort_unstable();
        for t in instants {
            let mut split = [0; 3];
            for p in scoped.iter().filter(|p| p.started_at <= t && t < p.stopped_at) {
                split[match p.decision.as_str() {
                    "direct_play" => 0,
                    "direct_stream" => 1,
                    _ => 2,
                }] += 1;
            }
            let n = split.iter().sum();
            if best.is_none_or(|b| n > b.0) {
                best = Some((n, t, split));
            }
        }
        if let Some((n, t, s)) = best {
            if n > peak_concurrent.count {
                peak_concurrent = PeakConcurrent { count: n, at: Some(rfc(t)) };
            }
            concurrent.push(Concurrent {
                at: rfc(t),
                date: calendar::iso(day),
                count: n,
                direct_play: s[0],
                direct_stream: s[1],
                transcode: s[2],
            });
        }
    }

    let named = |k: &str, a: &Acc| Named { name: shown(k), plays: a.plays, watch_ms: a.watch };
    let user_names: HashMap<i64, String> = conn
        .prepare("SELECT id, name FROM media_users")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    Stats {
        from: calendar::iso(q.first),
        to: calendar::iso(q.last),
        time_zone: cal.name(),
        totals,
        plays_by_day: days.into_values().collect(),
        by_weekday: weekday,
        by_hour: hour,
        platforms: top(platforms, usize::MAX, named),
        players: top(players, usize::MAX, named),
        quality: top(quality, usize::MAX, |k, a| {
            let (s, t) = k.split_once('\u{1f}').unwrap();
            Quality {
                source_resolution: shown(s),
                stream_resolution: shown(t),
                plays: a.plays,
                watch_ms: a.watch,
            }
        }),
        decisions,
        concurrent,
        peak_concurrent,
        top_users: top(users, q.top, |k, a| {
            let id: i64 = k.parse().unwrap();
            TopUser {
                user: UserRef { id, name: user_names[&id].clone() },
                plays: a.plays,
                watch_ms: a.watch,
            }
        }),
        top_movies: top(movies, q.top, |k, a| {
            let (t, y) = k.split_once('\u{1f}').unwrap();
            let users = i64::try_from(a.users.len()).unwrap();
            TopTitle {
                title: t.into(),
                year: y.parse().ok(),
                plays: a.plays,
                watch_ms: a.watch,
                users,
            }
        }),
        top_shows: top(shows, q.top, |k, a| TopTitle {
            title: k.into(),
            year: None,
            plays: a.plays,
            watch_ms: a.watch,
            users: i64::try_from(a.users.len()).unwrap(),
        }),
        top_libraries: top(libraries, q.top, |k, a| {
            let (s, n) = k.split_once('\u{1f}').unwrap();
            TopLibrary {
                server_id: s.parse().unwrap(),
                name: n.into(),
                plays: a.plays,
                watch_ms: a.watch,
                users: i64::try_from(a.users.len()).unwrap(),
            }
        }),
    }
}
