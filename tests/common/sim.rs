//! The app against simulated media servers, with time driven by the test: every `tick`
//! moves the simulated world and the poller's clock forward together.

use streamwarden::crypto::SecretBox;
use streamwarden::db::servers::{self, ServerInput, TOKEN_PURPOSE};
use streamwarden::media::ServerKind;
use streamwarden::poller::{SharedPoller, TickReport};
use streamwarden::sim::world::{self, SimDevice, SimItem};
use streamwarden::sim::{Cluster, World};

use super::TestEnv;

/// A moment in 2027, far from any real clock, so tests never depend on today.
pub const T0: i64 = 1_800_000_000_000;

pub struct Sim {
    pub cluster: Cluster,
    /// The poller's clock, Unix milliseconds.
    pub now: i64,
    /// Database ids of the servers, by world index.
    pub server_ids: Vec<i64>,
}

impl Sim {
    /// Starts `world`'s servers and configures them in `env`.
    pub async fn start(env: &TestEnv, world: World) -> Self {
        let cluster = Cluster::start(world).await.expect("simulated servers start");
        let secrets = env.client.rocket().state::<SecretBox>().expect("managed").clone();
        let mut server_ids = Vec::new();
        for e in &cluster.endpoints {
            let input = ServerInput {
                name: e.name.clone(),
                kind: e.kind,
                url: e.url.clone(),
                token_sealed: secrets.seal(TOKEN_PURPOSE, &e.token),
                enabled: true,
                verify_tls: true,
            };
            let row = env
                .db()
                .write(move |conn| servers::insert(conn, &input, T0))
                .await
                .expect("server row");
            server_ids.push(row.id);
        }
        env.control().registry.changed();
        Self { cluster, now: T0, server_ids }
    }

    /// Moves time `seconds` forward (the world plays on) and polls once.
    pub async fn tick(&mut self, env: &TestEnv, seconds: i64) -> TickReport {
        self.cluster.with(|w| w.advance(seconds * 1000));
        self.now += seconds * 1000;
        poller(env).lock().await.tick(self.now).await
    }

    /// Polls every `step` seconds for `seconds` seconds.
    pub async fn run(&mut self, env: &TestEnv, seconds: i64, step: i64) {
        let mut elapsed = 0;
        while elapsed < seconds {
            self.tick(env, step).await;
            elapsed += step;
        }
    }

    pub fn with<T>(&self, change: impl FnOnce(&mut World) -> T) -> T {
        self.cluster.with(change)
    }
}

pub fn poller(env: &TestEnv) -> &SharedPoller {
    env.client.rocket().state::<SharedPoller>().expect("managed poller")
}

/// One server of each kind, each with the users `owner`, `alice`, `bob`, `mallory`.
pub fn three_servers() -> World {
    let mut w = World::new();
    let users = [("1", "owner"), ("11", "alice"), ("12", "bob"), ("13", "mallory")];
    w.add_server(ServerKind::Plex, "Sim Plex", &users);
    w.add_server(ServerKind::Jellyfin, "Sim Jellyfin", &users);
    w.add_server(ServerKind::Emby, "Sim Emby", &users);
    w
}

pub const PLEX: usize = 0;
pub const JELLYFIN: usize = 1;
pub const EMBY: usize = 2;

pub fn tv() -> SimDevice {
    world::device("tv-1", "Living Room TV", "Plex for Android (TV)", "Android")
}

pub fn phone() -> SimDevice {
    world::device("phone-1", "Pixel", "Jellyfin Android", "Android")
}

/// A 100-minute movie.
pub fn film() -> SimItem {
    world::movie("900", "Sintel", 2010, 100, 1080)
}

pub fn ep(n: i64) -> SimItem {
    world::episode(&format!("70{n}"), ("700", "The Show"), 1, n, &format!("Episode {n}"), 40)
}

/// The poller's own loop (a follower per server, push included) on the real clock, for
/// the tests of push and of independent polling. [`Following::stop`] ends it.
pub struct Following {
    tasks: streamwarden::tasks::Tasks,
}

impl Following {
    pub fn start(env: &TestEnv, timing: streamwarden::poller::follow::Timing) -> Self {
        let tasks = streamwarden::tasks::Tasks::new();
        let poller = std::sync::Arc::clone(poller(env));
        let registry = std::sync::Arc::clone(&env.control().registry);
        let hub = std::sync::Arc::clone(&env.control().hub);
        tasks.spawn("poller", move |stop| {
            streamwarden::poller::run(poller, registry, hub, timing, stop)
        });
        Self { tasks }
    }

    pub async fn stop(self) {
        let aborted = self.tasks.shutdown(std::time::Duration::from_secs(5)).await;
        assert!(aborted.is_empty(), "the poller stops when asked");
    }
}

/// Timings for tests: polls every `poll_ms`, reconciles every `reconcile_ms`, and push
/// keep-alives and reconnects in fractions of a second (the simulated servers ping every
/// 100 ms in [`quick_push`]).
pub fn timing(poll_ms: u64, reconcile_ms: u64) -> streamwarden::poller::follow::Timing {
    use std::time::Duration;
    let ms = Duration::from_millis;
    streamwarden::poller::follow::Timing {
        poll_every: ms(poll_ms),
        reconcile_every: ms(reconcile_ms),
        min_refresh_gap: ms(50),
        positions_every: ms(100),
        push: streamwarden::media::push::Timing {
            plex_keepalive: ms(800),
            plugin_keepalive: ms(800),
            ws_ping_every: ms(150),
            ws_keepalive: ms(800),
            ws_resubscribe_after: ms(300),
            connect_timeout: Duration::from_secs(5),
            reconnect_min: ms(50),
            reconnect_max: ms(200),
            stable_after: Duration::from_secs(1),
        },
    }
}

/// Every server of `world` pings every 100 ms and reports positions every 200 ms.
pub fn quick_push(world: &mut World) {
    for server in &mut world.servers {
        server.push.ping_ms = 100;
        server.push.progress_ms = 200;
    }
}

/// Waits for `check` to hold, looking every 20 ms, at most `seconds`.
pub async fn eventually<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A day in milliseconds.
pub const DAY: i64 = 86_400_000;

/// [`three_servers`] with libraries. Plex: "Movies" (Sintel `900` as [`film`] plays it, with
/// TMDB 45745; Big Buck Bunny, never watched, 480p; Huge, 60 GB 4K; Watched by the owner),
/// "Shows" (The Show `700` as [`ep`] plays it: season 1 with episodes `701`-`703`, season 2
/// with `7201`, `7202`; TVDB 1234), "Music" (40 artists). Jellyfin: "Films" with its own copy
/// of Sintel (TMDB 45745) and Elephants Dream. Emby: "Movies" with Spring. Times count back
/// from `now`.
pub fn library_world(now: i64) -> World {
    use streamwarden::media::library::LibraryKind;
    use streamwarden::sim::library::{self, SimEpisode, SimFile, SimLibrary, SimSeason, SimShow};
    let mut w = three_servers();
    let mut sintel = library::movie("900", "Sintel", 2010, now - 400 * DAY, 4.0, 1080);
    sintel.tmdb = Some("45745".into());
    let bunny = library::movie("3001", "Big Buck Bunny", 2008, now - 500 * DAY, 1.2, 480);
    let huge = library::movie("3002", "Huge", 2020, now - 30 * DAY, 60.0, 2160);
    let mut watched = library::movie("3003", "Watched", 2019, now - 800 * DAY, 8.0, 1080);
    watched.file.view_count = 3;
    watched.file.last_viewed_at = Some(now - 10 * DAY);
    let episode = |id: &str, n: i64| SimEpisode {
        id: id.into(),
        number: n,
        title: format!("Episode {n}"),
        file: SimFile {
            added_at: now - 300 * DAY,
            size_bytes: 2_000_000_000,
            width: 1920,
            height: 1080,
            ..SimFile::default()
        },
    };
    let the_show = SimShow {
        id: "700".into(),
        title: "The Show".into(),
        year: 2019,
        tvdb: Some("1234".into()),
        tmdb: None,
        added_at: now - 300 * DAY,
        seasons: vec![
            SimSeason {
                id: "700s1".into(),
                number: 1,
                episodes: vec![episode("701", 1), episode("702", 2), episode("703", 3)],
            },
            SimSeason {
                id: "700s2".into(),
                number: 2,
                episodes: vec![episode("7201", 1), episode("7202", 2)],
            },
        ],
    };
    w.add_library(
        PLEX,
        SimLibrary {
            key: "1".into(),
            name: "Movies".into(),
            kind: Some(LibraryKind::Movie),
            movies: vec![sintel, bunny, huge, watched],
            ..SimLibrary::default()
        },
    );
    w.add_library(
        PLEX,
        SimLibrary {
            key: "2".into(),
            name: "Shows".into(),
            kind: Some(LibraryKind::Show),
            shows: vec![the_show],
            ..SimLibrary::default()
        },
    );
    w.add_library(
        PLEX,
        SimLibrary {
            key: "3".into(),
            name: "Music".into(),
            kind: Some(LibraryKind::Music),
            count: 40,
            ..SimLibrary::default()
        },
    );
    let mut copy = library::movie("9f0e", "Sintel", 2010, now - 200 * DAY, 3.0, 720);
    copy.tmdb = Some("45745".into());
    let elephants = library::movie("9f0f", "Elephants Dream", 2006, now - 100 * DAY, 2.0, 1080);
    w.add_library(
        JELLYFIN,
        SimLibrary {
            key: "jf-films".into(),
            name: "Films".into(),
            kind: Some(LibraryKind::Movie),
            movies: vec![copy, elephants],
            ..SimLibrary::default()
        },
    );
    w.add_library(
        EMBY,
        SimLibrary {
            key: "em-movies".into(),
            name: "Movies".into(),
            kind: Some(LibraryKind::Movie),
            movies: vec![library::movie("e300", "Spring", 2019, now - 50 * DAY, 1.0, 1080)],
            ..SimLibrary::default()
        },
    );
    w
}

/// Starts a library sync through the API and waits (polling, with a deadline) until its
/// job ends; returns the job.
pub async fn sync(env: &TestEnv) -> serde_json::Value {
    let started = env.post_json("/api/v1/libraries/sync", &serde_json::json!({})).await;
    assert_eq!(started.status, rocket::http::Status::Accepted, "{}", started.body);
    let id = started.json()["job_id"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let job = env.get(&format!("/api/v1/jobs/{id}")).await.json();
        if job["status"] != "running" {
            return job;
        }
        assert!(std::time::Instant::now() < deadline, "the sync did not end: {job}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
