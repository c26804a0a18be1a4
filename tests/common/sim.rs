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
