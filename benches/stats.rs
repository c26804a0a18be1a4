//! Figures for the README: the statistics of any period at 1,000,000 plays, read from the
//! rollups, and what folding them costs.
//!
//!     cargo bench --bench stats
//!
//! `BENCH_ROWS` changes the history size (default 1000000). Each figure is the median (p50)
//! and p95 of many runs on a shared machine, never one sample.

#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    reason = "counters and percentiles of a benchmark are small numbers"
)]

use std::time::{Duration, Instant};

use rusqlite::params;
use streamwarden::db::servers::{self, ServerInput};
use streamwarden::db::stats::Scope;
use streamwarden::db::{Db, media_users};
use streamwarden::media::ServerKind;
use streamwarden::stats::{Calendar, StatsQuery, calendar, query, rollups};

fn main() {
    let rows: usize =
        std::env::var("BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("bench.db")).unwrap();
    let started = Instant::now();
    let (users, servers, last_ms) = fill(&db, rows);
    println!("history: {rows} plays written in {:.1} s", started.elapsed().as_secs_f64());
    let cal =
        Calendar::new(jiff::tz::TimeZone::get("Europe/Berlin").unwrap_or(jiff::tz::TimeZone::UTC));
    let started = Instant::now();
    let folded = db.write_blocking(|c| rollups::rebuild_all(c, &cal)).unwrap();
    println!(
        "full fold (streamwarden stats rebuild): {} plays over {} days in {:.1} s",
        folded.plays,
        folded.days,
        started.elapsed().as_secs_f64()
    );
    let rollup_rows: i64 = db
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM stats_rollups", [], |r| r.get(0))?))
        .unwrap();
    println!("rollup rows: {rollup_rows}");

    // One more finished play: what the background fold does after a stream stops.
    let mut samples = Vec::new();
    for i in 0..20 {
        db.write_blocking(|c| {
            c.execute(
                "INSERT INTO plays (server_id, user_id, status, session_id, item_id, media_type, title, device_id, \
                 decision, started_at, stopped_at, last_seen_at, state, play_ms) \
                 VALUES (?1, ?2, 'stopped', 'x', 'x', 'movie', 'Late', 'd', 'transcode', ?3, ?4, ?4, 'playing', 60000)",
                params![servers[0], users[0], last_ms - 3_600_000 - i, last_ms - i],
            )?;
            Ok(())
        })
        .unwrap();
        let t = Instant::now();
        db.write_blocking(|c| rollups::catch_up(c, &cal)).unwrap();
        samples.push(t.elapsed());
    }
    report("fold after one play finishes", &mut samples);

    let last = cal.day_of(last_ms);
    let first_play = db.read_blocking(|c| query::first_day(c, Scope::default())).unwrap().unwrap();
    let scopes = [
        ("all servers", Scope::default()),
        ("one server", Scope { server_id: servers[1], user_id: 0 }),
        ("one user", Scope { server_id: servers[0], user_id: users[0] }),
    ];
    for (days, label) in
        [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "365 days"), (0, "all (3 years)")]
    {
        for (scope_name, scope) in scopes {
            let first = if days == 0 { first_play } else { last - days + 1 };
            let q = StatsQuery { first, last, scope, top: query::DEFAULT_TOP };
            let mut samples = Vec::new();
            for _ in 0..30 {
                let t = Instant::now();
                let s = db.read_blocking(|c| query::stats(c, &cal, &q)).unwrap();
                let json = serde_json::to_string(&s).unwrap();
                std::hint::black_box(json);
                samples.push(t.elapsed());
            }
            report(&format!("stats {label}, {scope_name}"), &mut samples);
        }
    }
    let days = calendar::iso(first_play);
    println!("(history from {days} to {})", calendar::iso(last));
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let p = |q: f64| {
        samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0
    };
    println!("{what}: p50 {:.2} ms, p95 {:.2} ms", p(0.5), p(0.95));
}

/// `rows` finished plays over three years, 3 servers, 60 users, 3,000 movies and 300 shows,
/// evenings busier than mornings.
fn fill(db: &Db, rows: usize) -> (Vec<i64>, Vec<i64>, i64) {
    db.write_blocking(|c| {
        let tx = c.transaction()?;
        let mut server_ids = Vec::new();
        for (i, kind) in ServerKind::ALL.into_iter().enumerate() {
            let input = ServerInput { name: format!("S{i}"), kind, url: "http://x".into(), token_sealed: "v1.x".into(), enabled: true, verify_tls: true };
            server_ids.push(servers::insert(&tx, &input, 0)?.id);
        }
        let mut user_ids = Vec::new();
        for u in 0..60 {
            let user = streamwarden::media::model::UserRef { external_id: format!("{u}"), name: format!("user{u}"), thumb: None };
            user_ids.push(media_users::upsert_from_session(&tx, server_ids[u % 3], &user, 0)?);
        }
        tx.commit()?;
        let t0 = 1_700_000_000_000_i64;
        let step = 3 * 365 * 86_400_000_i64 / rows as i64;
        let platforms = ["Roku", "Android", "iOS", "Chrome", "Tizen", "webOS"];
        let decisions = ["direct_play", "direct_play", "direct_stream", "transcode"];
        let resolutions = ["4k", "1080", "1080", "720", "sd"];
        let places = [(51.51, -0.09, "London", "GB"), (48.85, 2.35, "Paris", "FR"), (40.71, -74.0, "New York", "US"), (52.52, 13.4, "Berlin", "DE")];
        let mut done = 0;
        while done < rows {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO plays (server_id, user_id, status, session_id, item_id, media_type, title, grandparent_title, \
                     year, library_name, device_id, player, platform, ip, decision, source_resolution, stream_resolution, \
                     bandwidth_kbps, started_at, stopped_at, last_seen_at, state, progress_ms, paused_ms, play_ms, \
                     duration_ms, watched, is_local, geo_lat, geo_lon, geo_city, geo_country) \
                     VALUES (?1, ?2, 'stopped', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
                     ?19, ?19, 'playing', 1000, 0, ?20, 2000, 0, ?21, ?22, ?23, ?24, ?25)",
                )?;
                for n in done..(done + 50_000).min(rows) {
                    let user = n % 60;
                    let movie = n % 3 == 0;
                    let (title, show, year) = if movie {
                        (format!("Movie {}", (n * 7) % 3000), None, Some(1980 + (n % 40) as i64))
                    } else {
                        (format!("Episode {}", n % 24), Some(format!("Show {}", (n * 11) % 300)), None)
                    };
                    let started = t0 + n as i64 * step;
                    let length = 1_200_000 + (n % 7) as i64 * 900_000;
                    let place = places[n % 4];
                    let local = n % 5 == 0;
                    stmt.execute(params![
                        server_ids[user % 3],
                        user_ids[user],
                        format!("s{n}"),
                        format!("i{}", n % 5000),
                        if movie { "movie" } else { "episode" },
                        title,
                        show,
                        year,
                        if movie { "Movies" } else { "TV Shows" },
                        format!("d{}", n % 200),
                        format!("Player {}", n % 9),
                        platforms[n % 6],
                        format!("81.2.{}.{}", n % 200, user),
                        decisions[n % 4],
                        resolutions[n % 5],
                        resolutions[(n / 5) % 5],
                        (n % 20) as i64 * 1000,
                        started,
                        started + length,
                        length,
                        local,
                        (!local).then_some(place.0),
                        (!local).then_some(place.1),
                        (!local).then_some(place.2),
                        (!local).then_some(place.3),
                    ])?;
                }
            }
            tx.commit()?;
            done = (done + 50_000).min(rows);
        }
        c.execute_batch("ANALYZE")?;
        Ok((user_ids, server_ids, t0 + rows as i64 * step))
    })
    .unwrap()
}
