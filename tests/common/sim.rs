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
