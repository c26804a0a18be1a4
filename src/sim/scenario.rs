//! The demo's story: three servers, a household, travellers and a shared login, on a
//! fifteen-minute loop that repeats forever. Items are short so that autoplay, pauses,
//! transcodes and stops all happen while a newcomer watches.
//!
//! Addresses come from MaxMind's test databases, so the demo geolocates without a real
//! GeoLite2: 81.2.69.142 is London, 216.160.83.56 Milton (US), 89.160.20.112 Linköping,
//! 175.16.199.0 Changchun, 2.125.160.216 Boxford (UK).

use std::collections::HashMap;

use super::SharedWorld;
use super::world::{SimDevice, SimItem, World, device, episode, movie, track};
use crate::media::ServerKind;
use crate::tasks::StopSignal;

/// Length of one loop of the story, seconds.
pub const CYCLE_SECONDS: i64 = 900;

/// The demo's world: its servers and their accounts.
pub fn demo_world() -> World {
    let mut world = World::new();
    world.add_server(
        ServerKind::Plex,
        "Demo Plex",
        &[("1", "owner"), ("21", "alice"), ("22", "dave"), ("23", "mallory")],
    );
    world.add_server(
        ServerKind::Jellyfin,
        "Demo Jellyfin",
        &[
            ("5f1a0c2e9b7d4e3f8a6b1c0d2e3f4a5b", "admin"),
            ("7c3e5a1f2b4d4c6e8f0a1b2c3d4e5f60", "bob"),
            ("9a8b7c6d5e4f4a3b2c1d0e9f8a7b6c5d", "erin"),
        ],
    );
    let emby = world.add_server(ServerKind::Emby, "Demo Emby", &[("e1", "root"), ("e2", "carol")]);
    // Each server shows another live source: Plex its event stream, Jellyfin its
    // WebSocket, Emby the SSE plugin.
    world.servers[emby].push.sse_plugin = true;
    add_libraries(&mut world, crate::time::now_ms());
    world
}

/// A few hundred library items so that the Libraries pages have something to propose at
/// once: some never watched, some huge, some in low resolution, long shows with many
/// seasons. The story's own titles are in them (same ids), so their plays count.
fn add_libraries(world: &mut World, now: i64) {
    use super::library::{self, SimLibrary};
    use crate::media::library::LibraryKind;
    const DAY: i64 = 86_400_000;
    // A small deterministic spread (no randomness: the demo looks the same every time).
    let pick = |i: i64, m: i64| (i * 7_919 + 13) % m;
    let film = |id: String, title: String, i: i64| {
        let height = [480, 720, 1080, 1080, 2160][usize::try_from(pick(i, 5)).unwrap_or(0)];
        #[expect(clippy::cast_precision_loss, reason = "small simulated numbers")]
        let gigabytes = [1.4, 4.0, 8.5, 14.0, 42.0][usize::try_from(pick(i + 3, 5)).unwrap_or(0)]
            + (i % 10) as f64 / 10.0;
        let mut m = library::movie(
            &id,
            &title,
            1980 + pick(i, 45),
            now - (20 + pick(i, 900)) * DAY,
            gigabytes,
            height,
        );
        m.tmdb = Some((10_000 + i).to_string());
        if pick(i, 3) == 0 {
            m.file.view_count = 1 + pick(i, 4);
            m.file.last_viewed_at = Some(now - (1 + pick(i + 1, 700)) * DAY);
        }
        m
    };
    let mut movies: Vec<_> = [
        ("3001", "Big Buck Bunny"),
        ("3002", "Sintel"),
        ("3003", "Tears of Steel"),
        ("3004", "Elephants Dream"),
        ("3005", "Spring"),
    ]
    .iter()
    .zip(1..)
    .map(|((id, title), i)| film((*id).to_owned(), (*title).to_owned(), i))
    .collect();
    movies.extend((6..=240).map(|i| film(format!("6{i:03}"), format!("Open Movie {i}"), i)));
    let mut shows = vec![library::show("4100", "Cosmos Shorts", 2020, now - 400 * DAY, 1, 6, 0.4)];
    shows.extend((1..=12).map(|i| {
        let mut s = library::show(
            &format!("8{i:02}"),
            &format!("Series {i}"),
            2000 + i,
            now - (100 + pick(i, 1_000)) * DAY,
            1 + pick(i, 7),
            6 + pick(i, 6),
            2.5,
        );
        s.tvdb = Some((70_000 + i).to_string());
        s
    }));
    world.add_library(
        0,
        SimLibrary {
            key: "1".into(),
            name: "Movies".into(),
            kind: Some(LibraryKind::Movie),
            movies: movies[..180].to_vec(),
            ..SimLibrary::default()
        },
    );
    world.add_library(
        0,
        SimLibrary {
            key: "2".into(),
            name: "TV Shows".into(),
            kind: Some(LibraryKind::Show),
            shows,
            ..SimLibrary::default()
        },
    );
    world.add_library(
        0,
        SimLibrary {
            key: "3".into(),
            name: "Music".into(),
            kind: Some(LibraryKind::Music),
            count: 120,
            ..SimLibrary::default()
        },
    );
    world.add_library(
        1,
        SimLibrary {
            key: "f0a1b2c3d4e5f60718293a4b5c6d7e8f".into(),
            name: "Films".into(),
            kind: Some(LibraryKind::Movie),
            movies: movies[..5].iter().chain(&movies[180..]).cloned().collect(),
            ..SimLibrary::default()
        },
    );
}

fn show(n: i64) -> SimItem {
    let titles = [
        "Pale Blue Dot",
        "The Shores",
        "Harmony",
        "Star Stuff",
        "Heaven and Hell",
        "Blues for a Red Planet",
    ];
    let i = usize::try_from((n - 1).rem_euclid(6)).unwrap_or(0);
    episode(&format!("41{n:02}"), ("4100", "Cosmos Shorts"), 1, n, titles[i], 4)
}

fn catalog() -> HashMap<&'static str, SimItem> {
    HashMap::from([
        ("bunny", movie("3001", "Big Buck Bunny", 2008, 10, 1080)),
        ("sintel", movie("3002", "Sintel", 2010, 15, 2160)),
        ("tears", movie("3003", "Tears of Steel", 2012, 12, 2160)),
        ("elephants", movie("3004", "Elephants Dream", 2006, 11, 1080)),
        ("spring", movie("3005", "Spring", 2019, 8, 1080)),
        ("track", track("5001", ("5000", "Kevin MacLeod"), "Local Forecast", 180)),
        ("ep1", show(1)),
    ])
}

/// Who streams from where.
struct Viewer {
    server: usize,
    user: &'static str,
    device: SimDevice,
    ip: &'static str,
    local: bool,
}

fn viewers() -> HashMap<&'static str, Viewer> {
    let v = |server, user, device, ip, local| Viewer { server, user, device, ip, local };
    HashMap::from([
        (
            "alice-tv",
            v(
                0,
                "alice",
                device("alice-shield", "Living Room TV", "Plex for Android (TV)", "Android"),
                "192.168.1.20",
                true,
            ),
        ),
        (
            "alice-phone",
            v(
                0,
                "alice",
                device("alice-iphone", "Alice's iPhone", "Plex for iOS", "iOS"),
                "192.168.1.21",
                true,
            ),
        ),
        (
            "dave-tv",
            v(
                0,
                "dave",
                device("dave-roku", "Roku Ultra", "Plex for Roku", "Roku"),
                "2.125.160.216",
                false,
            ),
        ),
        (
            "dave-tablet",
            v(
                0,
                "dave",
                device("dave-ipad", "Kids' iPad", "Plex for iOS", "iOS"),
                "2.125.160.216",
                false,
            ),
        ),
        (
            "dave-laptop",
            v(
                0,
                "dave",
                device("dave-macbook", "MacBook", "Plex Web", "Chrome"),
                "2.125.160.216",
                false,
            ),
        ),
        (
            "mallory-london",
            v(
                0,
                "mallory",
                device("mal-laptop", "ThinkPad", "Plex Web", "Firefox"),
                "81.2.69.142",
                false,
            ),
        ),
        (
            "mallory-milton",
            v(
                0,
                "mallory",
                device("mal-friend-tv", "Samsung TV", "Plex for Samsung", "Tizen"),
                "216.160.83.56",
                false,
            ),
        ),
        (
            "mallory-changchun",
            v(
                0,
                "mallory",
                device("mal-friend2", "Xiaomi TV", "Plex for Android (TV)", "Android"),
                "175.16.199.0",
                false,
            ),
        ),
        (
            "bob-phone",
            v(
                1,
                "bob",
                device("bob-pixel", "Pixel 8", "Jellyfin Android", "Phone"),
                "216.160.83.56",
                false,
            ),
        ),
        (
            "erin-web",
            v(
                1,
                "erin",
                device("erin-firefox", "Firefox", "Jellyfin Web", "Desktop"),
                "192.168.1.40",
                true,
            ),
        ),
        (
            "carol-tv",
            v(
                2,
                "carol",
                device("carol-lgtv", "LG OLED", "Emby for LG", "TV"),
                "89.160.20.112",
                false,
            ),
        ),
    ])
}

/// A viewer of the story as history remembers them.
pub struct CastMember {
    /// Index of the server in [`demo_world`].
    pub server: usize,
    pub user: &'static str,
    pub device: SimDevice,
    pub ip: &'static str,
    pub local: bool,
}

/// Who the story's viewers are and what they watch: the demo's generated history plays
/// the same people, devices, addresses and titles.
pub fn cast() -> (Vec<CastMember>, Vec<SimItem>) {
    let mut members: Vec<CastMember> = viewers()
        .into_values()
        .map(|v| CastMember {
            server: v.server,
            user: v.user,
            device: v.device,
            ip: v.ip,
            local: v.local,
        })
        .collect();
    members.sort_by(|a, b| a.device.id.cmp(&b.device.id));
    let mut items: Vec<SimItem> = catalog().into_values().collect();
    items.extend((2..=6).map(show));
    items.sort_by(|a, b| a.id.cmp(&b.id));
    (members, items)
}

/// One step of the story.
#[derive(Debug, Clone, Copy)]
enum Step {
    Start {
        viewer: &'static str,
        item: &'static str,
        transcode: bool,
    },
    Pause(&'static str),
    Resume(&'static str),
    Stop(&'static str),
    /// Plex moves the stream to a new key as it starts transcoding.
    Transcode(&'static str),
}

/// The story, second by second within a cycle. Keys are viewers: one stream per viewer.
const STORY: &[(i64, Step)] = &[
    (0, Step::Start { viewer: "alice-tv", item: "ep1", transcode: false }),
    (2, Step::Start { viewer: "carol-tv", item: "sintel", transcode: true }),
    (4, Step::Start { viewer: "bob-phone", item: "bunny", transcode: false }),
    (6, Step::Start { viewer: "mallory-london", item: "tears", transcode: false }),
    (8, Step::Start { viewer: "dave-tv", item: "elephants", transcode: false }),
    (10, Step::Start { viewer: "dave-tablet", item: "bunny", transcode: false }),
    (12, Step::Start { viewer: "dave-laptop", item: "spring", transcode: false }),
    (15, Step::Start { viewer: "erin-web", item: "track", transcode: false }),
    (60, Step::Stop("mallory-london")),
    (70, Step::Pause("bob-phone")),
    // Twenty seconds later the same account plays from Milton, US: the demo's rules flag
    // the impossible travel within the first minute and a half.
    (80, Step::Start { viewer: "mallory-milton", item: "tears", transcode: true }),
    (130, Step::Resume("bob-phone")),
    (200, Step::Transcode("alice-tv")),
    (300, Step::Stop("dave-laptop")),
    (330, Step::Start { viewer: "mallory-changchun", item: "spring", transcode: false }),
    (420, Step::Start { viewer: "alice-phone", item: "track", transcode: false }),
    (480, Step::Stop("mallory-changchun")),
    (540, Step::Stop("mallory-milton")),
    (600, Step::Pause("carol-tv")),
    (660, Step::Resume("carol-tv")),
    (840, Step::Stop("dave-tv")),
    (845, Step::Stop("dave-tablet")),
    (850, Step::Stop("bob-phone")),
    (855, Step::Stop("carol-tv")),
    (860, Step::Stop("alice-phone")),
    (865, Step::Stop("erin-web")),
    (870, Step::Stop("alice-tv")),
];

/// Plays the story on `world`, one second at a time, until shutdown.
pub async fn run(
    world: SharedWorld,
    changed: tokio::sync::watch::Sender<u64>,
    mut stop: StopSignal,
) {
    let mut state = Story::default();
    let mut second = 0_i64;
    loop {
        {
            let mut world = world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            state.step(&mut world, second);
        }
        // The servers push what changed at once, as real ones do.
        changed.send_modify(|n| *n += 1);
        if stop.sleep(std::time::Duration::from_secs(1)).await {
            break;
        }
        second += 1;
    }
}

/// The running story's memory: which session each viewer has.
#[derive(Default)]
pub struct Story {
    sessions: HashMap<&'static str, String>,
}

impl Story {
    /// Applies second `second` of the story (any second: it loops), then moves time on.
    pub fn step(&mut self, world: &mut World, second: i64) {
        let at = second.rem_euclid(CYCLE_SECONDS);
        let items = catalog();
        let viewers = viewers();
        // Sessions the server ended (a terminate) are forgotten.
        self.sessions.retain(|_, key| world.play(key).is_some());
        for (_, step) in STORY.iter().filter(|(s, _)| *s == at) {
            match *step {
                Step::Start { viewer, item, transcode } => {
                    if self.sessions.contains_key(viewer) {
                        continue;
                    }
                    let v = &viewers[viewer];
                    let ip = v.ip.parse().expect("valid demo address");
                    let key = world.start(v.server, v.user, &v.device, ip, v.local, &items[item]);
                    if let Some(play) = world.play_mut(&key) {
                        play.transcode = transcode;
                        // Erin's browser tab does not accept remote control.
                        play.can_control = viewer != "erin-web";
                    }
                    self.sessions.insert(viewer, key);
                }
                Step::Pause(viewer) | Step::Resume(viewer) => {
                    if let Some(key) = self.sessions.get(viewer) {
                        world.pause(key, matches!(step, Step::Pause(_)));
                    }
                }
                Step::Stop(viewer) => {
                    if let Some(key) = self.sessions.remove(viewer) {
                        world.stop(&key);
                    }
                }
                Step::Transcode(viewer) => {
                    if let Some(key) = self.sessions.get_mut(viewer)
                        && let Some(new_key) = world.requalify(key, true)
                    {
                        *key = new_key;
                    }
                }
            }
        }
        // At the end of an episode the next one starts on the same session (autoplay);
        // anything else that ends stops.
        let ended: Vec<(&'static str, String)> = self
            .sessions
            .iter()
            .filter(|(_, key)| world.play(key).is_some_and(|p| p.position_ms >= p.item.duration_ms))
            .map(|(v, k)| (*v, k.clone()))
            .collect();
        for (viewer, key) in ended {
            let next = world.play(&key).and_then(|p| p.item.episode).map(|n| show(n + 1));
            match next {
                Some(item) => world.autoplay(&key, &item),
                None => {
                    world.stop(&key);
                    self.sessions.remove(viewer);
                }
            }
        }
        world.advance(1000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_story_runs_a_whole_cycle_and_cleans_up() {
        let mut world = demo_world();
        let mut story = Story::default();
        let mut peak = 0;
        let mut saw_pause = false;
        for second in 0..CYCLE_SECONDS {
            story.step(&mut world, second);
            peak = peak.max(world.plays.len());
            saw_pause |= world.plays.iter().any(|p| p.paused);
        }
        assert!(peak >= 8, "a busy evening: {peak}");
        assert!(saw_pause);
        assert!(world.plays.is_empty(), "everyone stops before the loop restarts");
        // And the next cycle starts again.
        story.step(&mut world, CYCLE_SECONDS);
        assert_eq!(world.plays.len(), 1);
    }
}
