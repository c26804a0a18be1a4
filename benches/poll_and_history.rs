//! Figures for the README: the cost of one poll cycle for 3 servers × 100 sessions (parse +
//! diff + write) and the time of a history page at 1,000,000 plays.
//!
//!     cargo bench --bench poll_and_history
//!
//! `BENCH_ROWS` changes the history size (default 1000000). Wall-clock figures on a
//! shared machine vary; each is a median (p50) or mean over many runs, never one sample.

#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    reason = "counters and percentiles of a benchmark are small numbers"
)]

use std::time::{Duration, Instant};

use rusqlite::params;
use streamwarden::Config;
use streamwarden::auth::Scope;
use streamwarden::db::plays::{self, Cursor, HistoryFilter};
use streamwarden::db::servers::{self, ServerInput, TOKEN_PURPOSE};
use streamwarden::db::{Db, media_users};
use streamwarden::media::jellyfin::{self, Flavor};
use streamwarden::media::model::MediaType;
use streamwarden::media::{ServerKind, plex};
use streamwarden::sim::Cluster;
use streamwarden::sim::formats;
use streamwarden::sim::world::{self, World};

const SESSIONS_PER_SERVER: usize = 100;
const CYCLES: usize = 240;

fn main() {
    if std::env::var("BENCH_ONLY").as_deref() != Ok("history") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(poll_cycle());
    }
    if std::env::var("BENCH_ONLY").as_deref() != Ok("poll") {
        history();
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A world of three servers with 100 playing sessions each, on distinct users and devices.
fn busy_world() -> World {
    let mut w = World::new();
    let users: Vec<(String, String)> =
        (0..SESSIONS_PER_SERVER).map(|i| (format!("{}", 100 + i), format!("user{i}"))).collect();
    let users: Vec<(&str, &str)> = users.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    for kind in ServerKind::ALL {
        w.add_server(kind, &format!("Bench {kind}"), &users);
    }
    for server in 0..3 {
        for i in 0..SESSIONS_PER_SERVER {
            let device = world::device(&format!("dev-{server}-{i}"), "TV", "Client", "Android");
            let item = if i % 2 == 0 {
                world::movie(&format!("{}", 1000 + i), &format!("Movie {i}"), 2010, 120, 1080)
            } else {
                world::episode(
                    &format!("{}", 2000 + i),
                    ("2", "Show"),
                    1,
                    i as i64,
                    &format!("Episode {i}"),
                    45,
                )
            };
            let ip = format!("81.2.{}.{}", server, i + 1).parse().unwrap();
            let key = w.start(server, &format!("user{i}"), &device, ip, false, &item);
            w.play_mut(&key).unwrap().transcode = i % 5 == 0;
        }
    }
    w
}

async fn poll_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let app = streamwarden::prepare_for_tests(Config::for_tests(dir.path())).unwrap();
    let cluster = Cluster::start(busy_world()).await.unwrap();
    let mut ids = Vec::new();
    for e in &cluster.endpoints {
        let input = ServerInput {
            name: e.name.clone(),
            kind: e.kind,
            url: e.url.clone(),
            token_sealed: app.secrets.seal(TOKEN_PURPOSE, &e.token),
            enabled: true,
            verify_tls: true,
        };
        ids.push(app.db.write(move |c| servers::insert(c, &input, 0)).await.unwrap().id);
    }
    app.control.registry.changed();
    let mut poller = app.poller.lock().await;

    // Parse + diff + write, the bodies rendered beforehand (that is the servers' work).
    let mut now = 1_800_000_000_000_i64;
    let mut first = Duration::ZERO;
    let mut steady = Vec::new();
    for cycle in 0..CYCLES {
        let bodies = cluster.with(|w| {
            w.advance(5_000);
            (
                formats::plex_sessions_xml(w, 0),
                formats::jellyfin_sessions(w, 1).to_string(),
                formats::jellyfin_sessions(w, 2).to_string(),
            )
        });
        now += 5_000;
        let started = Instant::now();
        let plex =
            plex::parse_sessions(&plex::parse_body(bodies.0.as_bytes(), None).unwrap()).unwrap();
        let jelly = jellyfin::parse_sessions(bodies.1.as_bytes(), Flavor::Jellyfin).unwrap();
        let emby = jellyfin::parse_sessions(bodies.2.as_bytes(), Flavor::Emby).unwrap();
        assert_eq!(plex.len() + jelly.len() + emby.len(), 3 * SESSIONS_PER_SERVER);
        let report = poller
            .apply_snapshots(vec![(ids[0], plex), (ids[1], jelly), (ids[2], emby)], now)
            .await;
        let took = started.elapsed();
        assert!(report.saved);
        if cycle == 0 {
            first = took;
        } else {
            steady.push(took);
        }
    }
    let mean = steady.iter().sum::<Duration>() / u32::try_from(steady.len()).unwrap();
    println!(
        "poll cycle, 3 servers x {SESSIONS_PER_SERVER} sessions (parse + diff + write, no network):"
    );
    println!("  first cycle (300 new plays inserted)      {}", ms(first));
    println!(
        "  steady cycles: mean {}  p50 {}  p95 {}  (progress written every 30 to 60 s)",
        ms(mean),
        ms(percentile(&mut steady.clone(), 0.5)),
        ms(percentile(&mut steady, 0.95))
    );

    // The same through HTTP on loopback to the simulated servers: a whole tick.
    let mut ticks = Vec::new();
    for _ in 0..40 {
        cluster.with(|w| w.advance(5_000));
        now += 5_000;
        let started = Instant::now();
        let report = poller.tick(now).await;
        ticks.push(started.elapsed());
        assert_eq!(report.polled, 3);
    }
    println!(
        "  whole tick over loopback HTTP: p50 {}  p95 {}",
        ms(percentile(&mut ticks.clone(), 0.5)),
        ms(percentile(&mut ticks, 0.95))
    );
}

fn history() {
    let rows: usize =
        std::env::var("BENCH_ROWS").ok().and_then(|r| r.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    // BENCH_DB keeps the filled database at that path, to study query plans afterwards.
    let path = std::env::var("BENCH_DB").map_or_else(|_| dir.path().join("history.db"), Into::into);
    let db = Db::open(&path).unwrap();
    let started = Instant::now();
    // BENCH_REUSE: the database at BENCH_DB is already filled.
    let (user_ids, server_ids) = if std::env::var_os("BENCH_REUSE").is_some() {
        db.read_blocking(|c| {
            let ids = |sql: &str| -> rusqlite::Result<Vec<i64>> {
                c.prepare(sql)?.query_map([], |r| r.get(0))?.collect()
            };
            Ok((
                ids("SELECT id FROM media_users ORDER BY id")?,
                ids("SELECT id FROM servers ORDER BY id")?,
            ))
        })
        .unwrap()
    } else {
        fill(&db, rows)
    };
    println!("\nhistory with {rows} plays (filled in {:.1} s):", started.elapsed().as_secs_f64());

    let t0 = 1_700_000_000_000_i64;
    let month = 30 * 86_400_000_i64;
    let deep = db.read_blocking(|c| {
        Ok(c.query_row("SELECT started_at, id FROM plays WHERE status = 'stopped' ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET ?1", [rows as i64 / 2], |r| Ok(Cursor { started_at: r.get(0)?, id: r.get(1)? }))?)
    }).unwrap();
    let cases: Vec<(&str, HistoryFilter, Scope, Option<Cursor>)> = vec![
        ("newest page, no filter", HistoryFilter::default(), Scope::All, None),
        (
            "one user",
            HistoryFilter { user_id: Some(user_ids[7]), ..HistoryFilter::default() },
            Scope::All,
            None,
        ),
        (
            "one server",
            HistoryFilter { server_id: Some(server_ids[1]), ..HistoryFilter::default() },
            Scope::All,
            None,
        ),
        (
            "movies only",
            HistoryFilter { media_type: Some(MediaType::Movie), ..HistoryFilter::default() },
            Scope::All,
            None,
        ),
        (
            "one month",
            HistoryFilter {
                from: Some(t0 + 3 * month),
                to: Some(t0 + 4 * month),
                ..HistoryFilter::default()
            },
            Scope::All,
            None,
        ),
        (
            "title search, 1% match (\"96\")",
            HistoryFilter { q: Some("96".into()), ..HistoryFilter::default() },
            Scope::All,
            None,
        ),
        (
            "title search, 24% match (\"star\")",
            HistoryFilter { q: Some("star".into()), ..HistoryFilter::default() },
            Scope::All,
            None,
        ),
        (
            "search + user",
            HistoryFilter {
                q: Some("night".into()),
                user_id: Some(user_ids[3]),
                ..HistoryFilter::default()
            },
            Scope::All,
            None,
        ),
        ("page 10,000 (cursor halfway)", HistoryFilter::default(), Scope::All, Some(deep)),
        ("a viewer's own plays", HistoryFilter::default(), Scope::MediaUser(user_ids[11]), None),
    ];
    for (label, filter, scope, cursor) in cases {
        if std::env::var_os("BENCH_PLAN").is_some() {
            let (sql, args) = plays::history_query(&filter, scope, cursor, 50).unwrap();
            let plan: Vec<String> = db
                .read_blocking(move |c| {
                    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let rows = stmt
                        .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))?;
                    Ok(rows.collect::<Result<_, _>>()?)
                })
                .unwrap();
            println!("  plan of {label}: {}", plan.join(" | "));
        }
        let mut samples = Vec::new();
        for _ in 0..40 {
            let f = filter.clone();
            let started = Instant::now();
            let page = db.read_blocking(move |c| plays::history(c, &f, scope, cursor, 50)).unwrap();
            samples.push(started.elapsed());
            assert!(!page.items.is_empty(), "{label}");
        }
        println!(
            "  {label:<36} p50 {}  p95 {}",
            ms(percentile(&mut samples.clone(), 0.5)),
            ms(percentile(&mut samples, 0.95))
        );
    }
}

/// `rows` finished plays over a year, 3 servers, 60 users, titles from a small vocabulary.
fn fill(db: &Db, rows: usize) -> (Vec<i64>, Vec<i64>) {
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
        let words = ["Star", "Night", "River", "Winter", "Ghost", "Empire", "Garden", "Ocean", "Shadow", "Crown", "Silver", "Storm"];
        let t0 = 1_700_000_000_000_i64;
        let step = 365 * 86_400_000_i64 / rows as i64;
        let mut done = 0;
        while done < rows {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO plays (server_id, user_id, status, session_id, item_id, media_type, title, grandparent_title, \
                     device_id, player, ip, decision, started_at, stopped_at, last_seen_at, state, progress_ms, paused_ms, play_ms, duration_ms, watched) \
                     VALUES (?1, ?2, 'stopped', ?3, ?4, ?5, ?6, ?7, ?8, 'TV', ?9, 'direct_play', ?10, ?11, ?11, 'playing', 1000, 0, 1000, 2000, 0)",
                )?;
                for n in done..(done + 50_000).min(rows) {
                    let user = n % 60;
                    let movie = n % 3 == 0;
                    let title = format!("{} {} {}", words[n % 12], words[(n / 12) % 12], n % 97);
                    let show = (!movie).then(|| format!("{} of {}", words[(n / 7) % 12], words[(n / 5) % 12]));
                    let started = t0 + n as i64 * step;
                    stmt.execute(params![
                        server_ids[user % 3],
                        user_ids[user],
                        format!("s{n}"),
                        format!("i{}", n % 5000),
                        if movie { "movie" } else { "episode" },
                        title,
                        show,
                        format!("d{}", n % 200),
                        format!("81.2.{}.{}", n % 200, user),
                        started,
                        started + 1_800_000,
                    ])?;
                }
            }
            tx.commit()?;
            done = (done + 50_000).min(rows);
        }
        c.execute_batch("ANALYZE")?;
        Ok((user_ids, server_ids))
    })
    .unwrap()
}
