//! The simulated world: servers, their accounts, and who plays what from where. Pure
//! state with verbs; the HTTP side renders it in each vendor's format.

use std::net::IpAddr;

use super::library::SimLibrary;
use crate::media::ServerKind;
use crate::media::model::MediaType;

/// A simulated media server.
#[derive(Debug, Clone)]
pub struct SimServer {
    pub kind: ServerKind,
    pub name: String,
    pub token: String,
    pub machine_id: String,
    pub users: Vec<SimUser>,
    /// Answers 503 to everything (an outage).
    pub down: bool,
    /// Answers 200 with a body that is not the vendor's format.
    pub garbage: bool,
    /// Plex only: without a Plex Pass, terminate answers 401.
    pub plex_pass: bool,
    pub libraries: Vec<SimLibrary>,
    /// Deletes of library items answer 500 (a disk that refuses, a server bug).
    pub fail_deletes: bool,
    /// A movie that appears in the listed library right after the first page is served
    /// (the library changes while a sync reads it).
    pub appears_while_listing: Option<super::library::SimMovie>,
    /// Session listings are answered this late (real milliseconds), with the world as it
    /// was when they were asked for: a poll in flight while the world changes.
    pub sessions_delay_ms: u64,
    /// Session listings asked for so far.
    pub session_polls: u64,
    /// Requests of any kind so far (push connections included).
    pub requests: u64,
    /// What the server pushes.
    pub push: SimPush,
}

/// A simulated server's push: Plex's event stream, Jellyfin's and Emby's WebSocket, and
/// (when installed) the Tracearr SSE plugin on Jellyfin and Emby.
#[derive(Debug, Clone)]
pub struct SimPush {
    /// Offers push at all (off: the endpoints answer 404, as behind a proxy that blocks them).
    pub enabled: bool,
    /// Jellyfin and Emby: the SSE plugin is installed (it is preferred to the WebSocket).
    pub sse_plugin: bool,
    /// Jellyfin: the WebSocket accepts `SessionsStart` but never sends `Sessions`, as some
    /// versions do for API keys (jellyfin#13479).
    pub withholds_sessions: bool,
    /// Keep-alive pings, milliseconds (Plex every 10 s, the plugin every 30 s).
    pub ping_ms: u64,
    /// A playing session's position is pushed this often, milliseconds (Plex clients
    /// report every 10 s).
    pub progress_ms: u64,
    /// Open connections stay open and send nothing more (a source gone silent).
    pub silent: bool,
    /// Connections send frames that are not the vendor's format, and nothing else.
    pub garbage: bool,
    /// Bumping it drops every open push connection (the server restarts them).
    pub generation: u64,
    /// Push connections accepted so far.
    pub connections: u64,
    /// Push connections open now.
    pub open: u64,
}

impl Default for SimPush {
    fn default() -> Self {
        Self {
            enabled: true,
            sse_plugin: false,
            withholds_sessions: false,
            ping_ms: 10_000,
            progress_ms: 10_000,
            silent: false,
            garbage: false,
            generation: 0,
            connections: 0,
            open: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    pub id: String,
    pub name: String,
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDevice {
    pub id: String,
    pub name: String,
    pub product: String,
    pub platform: String,
}

/// Something that can be played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimItem {
    pub id: String,
    pub kind: MediaType,
    pub title: String,
    /// Show (episodes) or artist (tracks), with its id.
    pub parent: Option<(String, String)>,
    pub season: Option<i64>,
    pub episode: Option<i64>,
    pub year: Option<i64>,
    pub duration_ms: i64,
    /// Height of the source video (0 for audio).
    pub height: i64,
    pub video_codec: String,
    pub audio_codec: String,
    pub bitrate_kbps: i64,
    pub library: String,
}

/// A playback in progress.
#[derive(Debug, Clone)]
pub struct SimPlay {
    /// Index of the server in [`World::servers`].
    pub server: usize,
    /// The session key the server reports (Plex sessionKey, Jellyfin/Emby session Id).
    pub session_key: String,
    /// Plex's `Session@id`, used to terminate.
    pub control_id: String,
    pub user: SimUser,
    pub device: SimDevice,
    pub ip: IpAddr,
    /// The player is on the server's LAN.
    pub local: bool,
    pub item: SimItem,
    pub position_ms: i64,
    pub paused: bool,
    /// Video transcoded to 720p.
    pub transcode: bool,
    /// Jellyfin `SupportsMediaControl` / Emby `SupportsRemoteControl`.
    pub can_control: bool,
}

/// Something a client did to the world, for tests to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Terminated {
        server: usize,
        session_key: String,
        reason: String,
    },
    Message {
        server: usize,
        session_key: String,
        header: String,
        text: String,
    },
    /// A library item was deleted through the API.
    Deleted {
        server: usize,
        id: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct World {
    pub servers: Vec<SimServer>,
    pub plays: Vec<SimPlay>,
    pub actions: Vec<Action>,
    next_id: u64,
}

impl World {
    pub fn new() -> Self {
        Self::default()
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds a server with `users`; returns its index.
    pub fn add_server(&mut self, kind: ServerKind, name: &str, users: &[(&str, &str)]) -> usize {
        let n = self.next();
        self.servers.push(SimServer {
            kind,
            name: name.to_owned(),
            token: format!("sim-token-{n}-{}", kind.as_str()),
            machine_id: format!("{:032x}", 0x5eed_0000_u64 + n),
            users: users
                .iter()
                .enumerate()
                .map(|(i, (id, name))| SimUser {
                    id: (*id).to_owned(),
                    name: (*name).to_owned(),
                    admin: i == 0,
                })
                .collect(),
            down: false,
            garbage: false,
            plex_pass: true,
            libraries: Vec::new(),
            fail_deletes: false,
            appears_while_listing: None,
            sessions_delay_ms: 0,
            session_polls: 0,
            requests: 0,
            push: SimPush::default(),
        });
        self.servers.len() - 1
    }

    /// Starts playing `item`; returns the session key.
    pub fn start(
        &mut self,
        server: usize,
        user: &str,
        device: &SimDevice,
        ip: IpAddr,
        local: bool,
        item: &SimItem,
    ) -> String {
        let n = self.next();
        let user = self.servers[server]
            .users
            .iter()
            .find(|u| u.name == user)
            .cloned()
            .unwrap_or_else(|| panic!("no user {user} on server {server}"));
        let session_key = match self.servers[server].kind {
            ServerKind::Plex => n.to_string(),
            _ => format!("{n:032x}"),
        };
        self.plays.push(SimPlay {
            server,
            control_id: format!("{:08x}-0000-4000-8000-{n:012x}", n * 7919),
            session_key: session_key.clone(),
            user,
            device: device.clone(),
            ip,
            local,
            item: item.clone(),
            position_ms: 0,
            paused: false,
            transcode: false,
            can_control: true,
        });
        session_key
    }

    pub fn play_mut(&mut self, session_key: &str) -> Option<&mut SimPlay> {
        self.plays.iter_mut().find(|p| p.session_key == session_key)
    }

    pub fn play(&self, session_key: &str) -> Option<&SimPlay> {
        self.plays.iter().find(|p| p.session_key == session_key)
    }

    pub fn pause(&mut self, session_key: &str, paused: bool) {
        if let Some(p) = self.play_mut(session_key) {
            p.paused = paused;
        }
    }

    pub fn stop(&mut self, session_key: &str) -> Option<SimPlay> {
        let i = self.plays.iter().position(|p| p.session_key == session_key)?;
        Some(self.plays.remove(i))
    }

    /// The same session moves on to `item` (autoplay of the next episode).
    pub fn autoplay(&mut self, session_key: &str, item: &SimItem) {
        if let Some(p) = self.play_mut(session_key) {
            p.item = item.clone();
            p.position_ms = 0;
            p.paused = false;
        }
    }

    /// Plex restarts a playback under a new key when quality changes: same user, device,
    /// item and position, new session key. Returns the new key.
    pub fn requalify(&mut self, session_key: &str, transcode: bool) -> Option<String> {
        let n = self.next();
        let p = self.play_mut(session_key)?;
        p.transcode = transcode;
        p.session_key = n.to_string();
        Some(p.session_key.clone())
    }

    /// Moves time forward: playing sessions progress, and stop at the end.
    pub fn advance(&mut self, ms: i64) {
        for p in &mut self.plays {
            if !p.paused {
                p.position_ms = (p.position_ms + ms).min(p.item.duration_ms);
            }
        }
    }

    /// Adds a library to `server`; returns its index there.
    pub fn add_library(&mut self, server: usize, library: SimLibrary) -> usize {
        let libraries = &mut self.servers[server].libraries;
        libraries.push(library);
        libraries.len() - 1
    }

    /// The plays of one server.
    pub fn plays_on(&self, server: usize) -> impl Iterator<Item = &SimPlay> {
        self.plays.iter().filter(move |p| p.server == server)
    }

    /// Ends the play a client asked to terminate (by Plex `Session@id` or session key).
    pub fn terminate(&mut self, server: usize, id: &str, reason: &str) -> bool {
        let Some(i) = self
            .plays
            .iter()
            .position(|p| p.server == server && (p.control_id == id || p.session_key == id))
        else {
            return false;
        };
        let play = self.plays.remove(i);
        self.actions.push(Action::Terminated {
            server,
            session_key: play.session_key,
            reason: reason.to_owned(),
        });
        true
    }
}

/// A device.
pub fn device(id: &str, name: &str, product: &str, platform: &str) -> SimDevice {
    SimDevice {
        id: id.to_owned(),
        name: name.to_owned(),
        product: product.to_owned(),
        platform: platform.to_owned(),
    }
}

/// A movie of `minutes`.
pub fn movie(id: &str, title: &str, year: i64, minutes: i64, height: i64) -> SimItem {
    SimItem {
        id: id.to_owned(),
        kind: MediaType::Movie,
        title: title.to_owned(),
        parent: None,
        season: None,
        episode: None,
        year: Some(year),
        duration_ms: minutes * 60_000,
        height,
        video_codec: if height > 1080 { "hevc" } else { "h264" }.to_owned(),
        audio_codec: "eac3".to_owned(),
        bitrate_kbps: if height > 1080 { 40_000 } else { 10_000 },
        library: "Movies".to_owned(),
    }
}

/// An episode of `show`.
pub fn episode(
    id: &str,
    show: (&str, &str),
    season: i64,
    episode: i64,
    title: &str,
    minutes: i64,
) -> SimItem {
    SimItem {
        id: id.to_owned(),
        kind: MediaType::Episode,
        title: title.to_owned(),
        parent: Some((show.0.to_owned(), show.1.to_owned())),
        season: Some(season),
        episode: Some(episode),
        year: Some(2019),
        duration_ms: minutes * 60_000,
        height: 1080,
        video_codec: "h264".to_owned(),
        audio_codec: "aac".to_owned(),
        bitrate_kbps: 8_000,
        library: "TV Shows".to_owned(),
    }
}

/// A music track.
pub fn track(id: &str, artist: (&str, &str), title: &str, seconds: i64) -> SimItem {
    SimItem {
        id: id.to_owned(),
        kind: MediaType::Track,
        title: title.to_owned(),
        parent: Some((artist.0.to_owned(), artist.1.to_owned())),
        season: None,
        episode: None,
        year: None,
        duration_ms: seconds * 1000,
        height: 0,
        video_codec: String::new(),
        audio_codec: "flac".to_owned(),
        bitrate_kbps: 1_000,
        library: "Music".to_owned(),
    }
}
