//! Figures for the README: what following the servers' push buys, through the poller's own
//! loop (a follower per server) against the simulated servers on loopback.
//!
//!     cargo bench --bench push
//!
//! 1. A new stream on the server → in the live view that the dashboard's SSE frames are
//!    rendered from: on a Plex that pushes (event stream), and on one that does not (polled
//!    at the 2 s floor).
//! 2. 50 sessions starting in the same instant on a pushing Plex: time until all are shown
//!    and the requests Plex received meanwhile.
//! 3. CPU of 50 sessions each reporting its position every 10 s over push, for an hour,
//!    compressed 100 times (every cadence, the servers' and ours, divided by 100: 36 s of
//!    wall time carry an hour's 18,000 notes and 120 reconciliation polls). The process's
//!    CPU time includes the simulated server's own work, so it is an upper bound.
//!
//! Wall-clock figures on a shared machine vary; latencies are medians over many runs.

#![expect(clippy::cast_precision_loss, reason = "CPU clock ticks are small numbers")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use streamwarden::Config;
use streamwarden::db::servers::{self, ServerInput, TOKEN_PURPOSE};
use streamwarden::media::ServerKind;
use streamwarden::poller::follow::Timing;
use streamwarden::poller::live::LiveView;
use streamwarden::sim::Cluster;
use streamwarden::sim::world::{self, World};

const PUSHING: usize = 0;
const POLLED: usize = 1;
const TRIALS: usize = 15;
const CROWD: usize = 50;

fn main() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        latency().await;
        crowd_and_cpu().await;
    });
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A world with two Plex servers (the second refuses push) and `viewers` users on each.
fn world(viewers: usize) -> World {
    let mut w = World::new();
    let users: Vec<(String, String)> =
        (0..viewers).map(|i| (format!("{}", 100 + i), format!("viewer{i}"))).collect();
    let users: Vec<(&str, &str)> = users.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    w.add_server(ServerKind::Plex, "Pushing Plex", &users);
    w.add_server(ServerKind::Plex, "Polled Plex", &users);
    w.servers[POLLED].push.enabled = false;
    w
}

/// The app, the servers configured, and the poller's loop running with `timing`.
async fn start(
    w: World,
    timing: Timing,
) -> (streamwarden::App, Cluster, Vec<i64>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = streamwarden::prepare_for_tests(Config::for_tests(dir.path())).unwrap();
    let cluster = Cluster::start(w).await.unwrap();
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
    let poller = Arc::clone(&app.poller);
    let registry = Arc::clone(&app.control.registry);
    let hub = Arc::clone(&app.control.hub);
    app.tasks.spawn("poller", move |stop| {
        streamwarden::poller::run(poller, registry, hub, timing, stop)
    });
    (app, cluster, ids, dir)
}

/// Waits (on the hub's own signal, no polling) until `check` holds for the live view.
async fn until(app: &streamwarden::App, what: &str, check: impl Fn(&LiveView) -> bool) {
    let mut view = app.control.hub.subscribe();
    let wait = async {
        loop {
            if check(&view.borrow_and_update()) {
                return;
            }
            view.changed().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_mins(1), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

fn on(view: &LiveView, server_id: i64) -> usize {
    view.sessions.iter().filter(|s| s.server_id == server_id && !s.fading).count()
}

async fn latency() {
    let timing = Timing::for_interval(Duration::from_secs(2));
    let (app, cluster, ids, _dir) = start(world(1), timing).await;
    until(&app, "push up", |v| {
        v.servers.iter().any(|s| s.id == ids[PUSHING] && s.realtime.as_str() == "sse")
    })
    .await;
    println!("new stream on the server -> in the live view (SSE frames are rendered from it):");
    for (index, label) in
        [(PUSHING, "Plex pushing (event stream)"), (POLLED, "Plex polled every 2 s")]
    {
        let id = ids[index];
        let mut samples = Vec::new();
        for trial in 0..TRIALS {
            let device = world::device(&format!("d{index}-{trial}"), "TV", "Plex for LG", "webOS");
            let item = world::movie(&format!("{}", 500 + trial), "Film", 2020, 100, 1080);
            let ip = "81.2.69.142".parse().unwrap();
            let started = Instant::now();
            let key = cluster.with(|w| w.start(index, "viewer0", &device, ip, false, &item));
            until(&app, "the new stream", |v| on(v, id) == 1).await;
            samples.push(started.elapsed());
            cluster.with(|w| w.stop(&key));
            until(&app, "the stream gone", |v| v.sessions.iter().all(|s| s.server_id != id)).await;
        }
        let max = *samples.iter().max().unwrap();
        println!(
            "  {label:<30} median {}  max {}  ({TRIALS} starts)",
            ms(median(&mut samples)),
            ms(max)
        );
    }
    app.tasks.shutdown(Duration::from_secs(5)).await;
}

/// Every cadence divided by 100: the servers' pings and position reports, our
/// reconciliation, keep-alives and position batches.
fn compressed() -> Timing {
    let mut t = Timing::for_interval(Duration::from_millis(50));
    t.reconcile_every = Duration::from_millis(300);
    t.positions_every = Duration::from_millis(10);
    t.push.plex_keepalive = Duration::from_millis(300);
    t
}

fn cpu_seconds() -> f64 {
    // utime and stime of /proc/self/stat, in clock ticks of 1/100 s (Linux's USER_HZ).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

async fn crowd_and_cpu() {
    let mut w = world(CROWD);
    w.servers[PUSHING].push.ping_ms = 100;
    w.servers[PUSHING].push.progress_ms = 100;
    let (app, cluster, ids, _dir) = start(w, compressed()).await;
    let id = ids[PUSHING];
    until(&app, "push up", |v| {
        v.servers.iter().any(|s| s.id == id && s.realtime.as_str() == "sse")
    })
    .await;
    // Let the first polls (sessions and accounts) pass.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cluster.with(|w| w.servers[PUSHING].requests);
    let started = Instant::now();
    cluster.with(|w| {
        for n in 0..CROWD {
            let device = world::device(&format!("dev-{n}"), "TV", "Plex for LG", "webOS");
            let item = world::movie("900", "Film", 2020, 600, 1080);
            let ip = "81.2.69.142".parse().unwrap();
            w.start(PUSHING, &format!("viewer{n}"), &device, ip, false, &item);
        }
    });
    until(&app, "50 streams", |v| on(v, id) == CROWD).await;
    let took = started.elapsed();
    let requests = cluster.with(|w| w.servers[PUSHING].requests) - before;
    println!("{CROWD} sessions starting in the same instant on a pushing Plex:");
    println!("  all shown after {}, {requests} requests to Plex", ms(took));

    // Past the confirm window, so nothing is in transition and push alone carries them.
    until(&app, "confirmed", |v| {
        v.sessions.iter().filter(|s| s.server_id == id && !s.pending).count() == CROWD
    })
    .await;
    let polls_before = cluster.with(|w| w.servers[PUSHING].session_polls);
    let cpu_before = cpu_seconds();
    let wall = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while wall.elapsed() < Duration::from_secs(36) {
        tick.tick().await;
        // 10 s of playback per 100 ms: positions move as they would.
        cluster.with(|w| w.advance(10_000));
    }
    let cpu = cpu_seconds() - cpu_before;
    let polls = cluster.with(|w| w.servers[PUSHING].session_polls) - polls_before;
    println!(
        "{CROWD} sessions, positions every 10 s over push, one hour compressed 100x into 36 s:"
    );
    println!(
        "  {cpu:.1} CPU-s for the hour (whole process, simulator included); {polls} session-list reads"
    );
    app.tasks.shutdown(Duration::from_secs(5)).await;
}
