//! The rollups against a known set of plays and against a full scan of history, on a real
//! SQLite file, through every way a finished play is written, changed or deleted.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::{Connection, params};

use super::calendar::{self, Calendar, Day};
use super::query::{self, StatsQuery};
use super::{rollups, scan};
use crate::db::stats::Scope;
use crate::db::{media_users, migrations, servers};
use crate::media::ServerKind;
use crate::media::model::UserRef;

fn berlin() -> Calendar {
    Calendar::new(TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap())
}

fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
}

fn day(date: &str) -> Day {
    calendar::from_date(date.parse().unwrap())
}

struct Fixture {
    _dir: tempfile::TempDir,
    conn: Connection,
    servers: Vec<i64>,
    users: Vec<(i64, i64)>,
}

/// `n_servers` servers and `n_users` users spread over them in order (for 2 and 3: the
/// first two users on the first server, the third on the second).
fn fixture(n_servers: usize, n_users: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("stats.db")).unwrap();
    migrations::apply(&mut conn).unwrap();
    let kinds = ServerKind::ALL;
    let servers: Vec<i64> = (0..n_servers)
        .map(|i| {
            let input = servers::ServerInput {
                name: format!("S{i}"),
                kind: kinds[i % kinds.len()],
                url: "http://x".into(),
                token_sealed: "v1.x".into(),
                enabled: true,
                verify_tls: true,
            };
            servers::insert(&conn, &input, 0).unwrap().id
        })
        .collect();
    let users = (0..n_users)
        .map(|u| {
            let server = servers[u * n_servers / n_users];
            let user =
                UserRef { external_id: format!("{u}"), name: format!("user{u}"), thumb: None };
            (media_users::upsert_from_session(&conn, server, &user, 0).unwrap(), server)
        })
        .collect();
    Fixture { _dir: dir, conn, servers, users }
}

/// A play as an import or the poller writes it.
#[derive(Clone)]
#[expect(clippy::struct_field_names, reason = "the columns of plays")]
struct Play {
    server: i64,
    user: i64,
    status: &'static str,
    media_type: &'static str,
    title: String,
    show: Option<String>,
    year: Option<i64>,
    library: Option<String>,
    player: Option<&'static str>,
    platform: Option<&'static str>,
    decision: &'static str,
    source: Option<&'static str>,
    stream: Option<&'static str>,
    kbps: Option<i64>,
    started_at: i64,
    stopped_at: i64,
    paused_ms: i64,
    play_ms: Option<i64>,
}

fn insert(conn: &Connection, p: &Play) -> i64 {
    let stopped = p.status == "stopped";
    conn.query_row(
        "INSERT INTO plays (server_id, user_id, status, session_id, item_id, media_type, title, \
         grandparent_title, year, library_name, device_id, player, platform, decision, \
         source_resolution, stream_resolution, bandwidth_kbps, started_at, stopped_at, \
         last_seen_at, state, paused_ms, play_ms) VALUES (?1, ?2, ?3, 's', 'i', ?4, ?5, ?6, ?7, \
         ?8, 'd', ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, 'playing', ?18, ?19) RETURNING id",
        params![
            p.server,
            p.user,
            p.status,
            p.media_type,
            p.title,
            p.show,
            p.year,
            p.library,
            p.player,
            p.platform,
            p.decision,
            p.source,
            p.stream,
            p.kbps,
            p.started_at,
            stopped.then_some(p.stopped_at),
            p.stopped_at,
            p.paused_ms,
            if stopped { p.play_ms } else { None },
        ],
        |r| r.get(0),
    )
    .unwrap()
}

fn base(server: i64, user: i64, start: &str, stop: &str) -> Play {
    Play {
        server,
        user,
        status: "stopped",
        media_type: "movie",
        title: "Heat".into(),
        show: None,
        year: Some(1995),
        library: Some("Movies".into()),
        player: Some("Living room"),
        platform: Some("Roku"),
        decision: "direct_play",
        source: Some("1080"),
        stream: Some("1080"),
        kbps: Some(8000),
        started_at: ms(start),
        stopped_at: ms(stop),
        paused_ms: 0,
        play_ms: None,
    }
}

fn everything(first: Day, last: Day) -> StatsQuery {
    StatsQuery { first, last, scope: Scope::default(), top: query::DEFAULT_TOP }
}

#[test]
fn known_plays_across_midnight_and_the_start_of_summer_time() {
    let mut f = fixture(2, 3);
    let ((alice, s1), (bob, _), (carol, s2)) = (f.users[0], f.users[1], f.users[2]);
    // 23:30 local on Saturday 30 March to 03:30 (summer time) on Sunday: across midnight.
    insert(&f.conn, &base(s1, alice, "2024-03-30T22:30:00Z", "2024-03-31T01:30:00Z"));
    // Midnight local on Sunday: the same moment as the local day starts.
    let mut dark = base(s1, bob, "2024-03-30T23:00:00Z", "2024-03-30T23:45:00Z");
    dark.media_type = "episode";
    dark.title = "Episode 1".into();
    dark.show = Some("Dark".into());
    dark.decision = "transcode";
    dark.stream = Some("720");
    dark.library = Some("Shows".into());
    dark.platform = None;
    insert(&f.conn, &dark);
    let mut noon = dark.clone();
    noon.server = s2;
    noon.user = carol;
    noon.decision = "direct_stream";
    noon.started_at = ms("2024-03-31T10:00:00Z");
    noon.stopped_at = ms("2024-03-31T11:00:00Z");
    noon.play_ms = Some(1_800_000);
    insert(&f.conn, &noon);

    let cal = berlin();
    let folded = rollups::catch_up(&mut f.conn, &cal).unwrap();
    assert_eq!(folded.plays, 3);
    let (sat, sun) = (day("2024-03-30"), day("2024-03-31"));
    let s = query::stats(&f.conn, &cal, &everything(sat, sun)).unwrap();
    assert_eq!((s.totals.plays, s.totals.users, s.totals.titles), (3, 3, 2));
    assert_eq!(
        s.totals.watch_ms,
        3 * 3_600_000 + 45 * 60_000 + 1_800_000,
        "watch time: the span, or the play time measured"
    );
    assert_eq!(s.totals.bytes, 8000 * s.totals.watch_ms / 8);
    let by_day: Vec<_> = s.plays_by_day.iter().map(|d| (d.date.as_str(), d.plays)).collect();
    assert_eq!(by_day, [("2024-03-30", 1), ("2024-03-31", 2)]);
    assert_eq!(s.plays_by_day[1].by_type["episode"].plays, 2);
    assert_eq!((s.by_weekday[5].plays, s.by_weekday[6].plays), (1, 2), "Saturday, Sunday");
    let hours: Vec<_> =
        s.by_hour.iter().enumerate().filter(|(_, h)| h.plays > 0).map(|(i, _)| i).collect();
    assert_eq!(hours, [0, 12, 23], "local hours, summer time at noon");
    assert_eq!(
        (s.decisions.direct_play, s.decisions.direct_stream, s.decisions.transcode),
        (1, 1, 1)
    );
    assert_eq!(s.platforms[0].name, "Unknown");
    assert_eq!(s.platforms[0].plays, 2);
    assert_eq!(s.top_shows[0].title, "Dark");
    assert_eq!((s.top_shows[0].plays, s.top_shows[0].users), (2, 2));
    assert_eq!((s.top_movies[0].title.as_str(), s.top_movies[0].year), ("Heat", Some(1995)));
    // Saturday: the movie alone; Sunday starts with the movie and Dark together.
    let peaks: Vec<_> =
        s.concurrent.iter().map(|c| (c.date.as_str(), c.count, c.at.as_str())).collect();
    assert_eq!(
        peaks,
        [("2024-03-30", 1, "2024-03-30T22:30:00Z"), ("2024-03-31", 2, "2024-03-30T23:00:00Z"),]
    );
    assert_eq!((s.concurrent[1].direct_play, s.concurrent[1].transcode), (1, 1));
    assert_eq!(s.peak_concurrent.count, 2);
    assert_eq!(s.peak_concurrent.at.as_deref(), Some("2024-03-30T23:00:00Z"));
    assert_eq!(s.time_zone, "UTC+01");

    let only_s2 = StatsQuery { scope: Scope { server_id: s2, user_id: 0 }, ..everything(sat, sun) };
    let s = query::stats(&f.conn, &cal, &only_s2).unwrap();
    assert_eq!((s.totals.plays, s.top_users[0].user.name.as_str()), (1, "user2"));
    let bob_only =
        StatsQuery { scope: Scope { server_id: s1, user_id: bob }, ..everything(sat, sun) };
    let s = query::stats(&f.conn, &cal, &bob_only).unwrap();
    assert_eq!((s.totals.plays, s.peak_concurrent.count), (1, 1));

    // The same plays in UTC: the movie is on Saturday at 22h, both others on Sunday.
    let utc = Calendar::new(TimeZone::UTC);
    rollups::catch_up(&mut f.conn, &utc).unwrap();
    let s = query::stats(&f.conn, &utc, &everything(sat, sun)).unwrap();
    assert_eq!((s.plays_by_day[0].plays, s.by_hour[22].plays, s.by_hour[23].plays), (2, 1, 1));
    assert_eq!(s.time_zone, "UTC");
}

/// A small deterministic generator (no dependency for one test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::try_from(self.next(items.len() as u64)).unwrap()]
    }
}

fn random_play(f: &Fixture, g: &mut Lcg, t0: i64, span_ms: u64) -> Play {
    let (user, server) = f.users[usize::try_from(g.next(f.users.len() as u64)).unwrap()];
    let start = t0 + i64::try_from(g.next(span_ms)).unwrap();
    let length = i64::try_from(g.next(5 * 3_600_000)).unwrap();
    let movie = g.next(2) == 0;
    let n = g.next(40);
    Play {
        server,
        user,
        status: "stopped",
        media_type: if movie { "movie" } else { g.pick(&["episode", "episode", "track", "live"]) },
        title: format!("Title {n}"),
        show: (!movie).then(|| format!("Show {}", n % 7)).filter(|_| g.next(10) > 0),
        year: g.pick(&[None, Some(1999), Some(2020)]),
        library: g.pick(&[None, Some("Movies"), Some("Shows"), Some("")]).map(str::to_owned),
        player: g.pick(&[None, Some("TV"), Some("Phone"), Some("Browser")]),
        platform: g.pick(&[None, Some("Roku"), Some("iOS"), Some("Chrome")]),
        decision: g.pick(&["direct_play", "direct_stream", "transcode"]),
        source: g.pick(&[None, Some("4k"), Some("1080")]),
        stream: g.pick(&[None, Some("1080"), Some("720")]),
        kbps: g.pick(&[None, Some(2000), Some(20_000)]),
        started_at: start,
        stopped_at: start + length,
        paused_ms: i64::try_from(g.next(600_000)).unwrap().min(length),
        play_ms: g.pick(&[None, Some(length / 2)]),
    }
}

fn rollup_tables(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT dim, server_id, user_id, level, bucket, key, plays, watch_ms, bytes FROM stats_rollups ORDER BY 1, 2, 3, 4, 5, 6",
        "SELECT server_id, user_id, day, peak, at, direct_play, direct_stream, transcode, 0, 0 FROM stats_concurrency ORDER BY 1, 2, 3",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((0..9)
                    .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

#[test]
fn rollups_equal_a_full_scan_through_inserts_finishes_edits_and_deletions() {
    let mut f = fixture(3, 12);
    let cal = berlin();
    let mut g = Lcg(7);
    // 26 months from mid-November 2023: two new years, two starts and ends of summer time.
    let t0 = ms("2023-11-15T00:00:00Z");
    let span = 26 * 30 * 86_400_000;
    // An existing history the first fold picks up.
    for _ in 0..1200 {
        insert(&f.conn, &random_play(&f, &mut g, t0, span));
    }
    rollups::catch_up(&mut f.conn, &cal).unwrap();
    // Live plays that finish later, as the poller finishes them.
    let live: Vec<i64> = (0..300)
        .map(|_| {
            let mut p = random_play(&f, &mut g, t0, span);
            p.status = "live";
            insert(&f.conn, &p)
        })
        .collect();
    rollups::catch_up(&mut f.conn, &cal).unwrap();
    for id in &live {
        f.conn
            .execute(
                "UPDATE plays SET status = 'stopped', stopped_at = last_seen_at, play_ms = 60000 WHERE id = ?1",
                [id],
            )
            .unwrap();
    }
    // Edits of finished plays (a title fixed, a user merged), deletions (retention
    // pruning, an import undone), and a few more imported plays.
    f.conn
        .execute("UPDATE plays SET title = 'Renamed', decision = 'transcode' WHERE id % 11 = 0", [])
        .unwrap();
    let (other_user, other_server) = f.users[3];
    f.conn
        .execute(
            "UPDATE plays SET user_id = ?1, server_id = ?2 WHERE id % 17 = 0",
            [other_user, other_server],
        )
        .unwrap();
    f.conn.execute("DELETE FROM plays WHERE id % 13 = 0", []).unwrap();
    f.conn
        .execute("DELETE FROM plays WHERE started_at < ?1", [ms("2023-12-01T00:00:00Z")])
        .unwrap();
    for _ in 0..200 {
        insert(&f.conn, &random_play(&f, &mut g, t0, span));
    }
    rollups::catch_up(&mut f.conn, &cal).unwrap();
    assert!(!rollups::is_stale(&f.conn).unwrap());

    let first_play = query::first_day(&f.conn, Scope::default()).unwrap().unwrap();
    let periods = [
        (day("2024-03-31"), day("2024-03-31")),
        (day("2024-10-26"), day("2024-10-28")),
        (day("2024-02-01"), day("2024-02-29")),
        (day("2023-12-20"), day("2024-01-10")),
        (day("2024-01-01"), day("2024-12-31")),
        (day("2023-11-10"), day("2026-02-01")),
        (first_play, day("2025-06-17")),
        (day("2024-06-10"), day("2025-03-03")),
    ];
    let mut scopes = vec![Scope::default()];
    scopes.extend(f.servers.iter().map(|&s| Scope { server_id: s, user_id: 0 }));
    scopes.extend(f.users.iter().take(4).map(|&(u, s)| Scope { server_id: s, user_id: u }));
    for (first, last) in periods {
        for &scope in &scopes {
            let q = StatsQuery { first, last, scope, top: 5 };
            let fast = query::stats(&f.conn, &cal, &q).unwrap();
            let slow = scan::stats(&f.conn, &cal, &q);
            if scope == Scope::default() && first != last {
                assert!(fast.totals.plays > 0 || slow.totals.plays == 0, "the periods hold plays");
            }
            assert_eq!(
                fast,
                slow,
                "{} .. {} for {scope:?}",
                calendar::iso(first),
                calendar::iso(last)
            );
        }
    }

    // Refolding everything from scratch gives the very same rows.
    let incremental = rollup_tables(&f.conn);
    rollups::rebuild_all(&mut f.conn, &cal).unwrap();
    assert_eq!(rollup_tables(&f.conn), incremental);
    let (a, b) = (day("2024-05-01"), day("2024-05-31"));
    rollups::rebuild_days(&mut f.conn, &cal, a, b).unwrap();
    assert_eq!(rollup_tables(&f.conn), incremental);
}

#[test]
fn a_fresh_database_and_an_empty_period_have_zero_statistics() {
    let mut f = fixture(1, 1);
    let cal = berlin();
    assert_eq!(rollups::catch_up(&mut f.conn, &cal).unwrap(), rollups::Folded::default());
    let s = query::stats(&f.conn, &cal, &everything(day("2024-01-01"), day("2024-01-07"))).unwrap();
    assert_eq!(s.totals, query::Totals::default());
    assert_eq!(s.plays_by_day.len(), 7);
    assert_eq!((s.by_weekday.len(), s.by_hour.len()), (7, 24));
    assert_eq!(s.peak_concurrent, query::PeakConcurrent::default());
    assert!(query::first_day(&f.conn, Scope::default()).unwrap().is_none());
}
