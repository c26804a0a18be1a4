//! What the simulated servers push, in each vendor's format: Plex's event stream, the
//! Tracearr SSE plugin of Jellyfin and Emby, and Jellyfin's and Emby's WebSocket.
//!
//! Each connection watches the world (woken when the cluster changes it, and at least
//! every quarter second), and tells what changed the way the vendor does: a start, a
//! pause, a resume, a new item, a transcode, a stop, and every playing session's position
//! every `progress_ms`; pings every `ping_ms`. A server can go silent, send garbage, drop
//! its connections ([`SimPush::generation`](super::world::SimPush)) or refuse push.

use std::collections::BTreeMap;
use std::time::Duration;

use rocket::futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::http::{Request, Response};
use super::world::{SimPlay, World};
use super::{SharedWorld, formats, lock};
use crate::media::ServerKind;

/// The longest a connection sleeps without looking at the world.
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// Garbage comes this often.
const GARBAGE_EVERY: Duration = Duration::from_millis(100);
const TICKS_PER_MS: i64 = 10_000;

/// A session as a push connection last told it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    item: String,
    paused: bool,
    transcode: bool,
    position_ms: i64,
    user: String,
}

impl Seen {
    fn of(play: &SimPlay) -> Self {
        Self {
            item: play.item.id.clone(),
            paused: play.paused,
            transcode: play.transcode,
            position_ms: play.position_ms,
            user: play.user.id.clone(),
        }
    }
}

/// Something to tell.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Started(String, Seen),
    Paused(String, Seen),
    Resumed(String, Seen),
    Transcode(String, bool),
    Progress(String, Seen),
    Stopped(String, Seen),
}

/// What a connection does next.
enum Step {
    Tell(Vec<Change>),
    Silent,
    Garbage,
    Close,
}

/// One connection's memory of the world.
struct Feed {
    index: usize,
    generation: u64,
    seen: BTreeMap<String, Seen>,
    progress_due: BTreeMap<String, Instant>,
    next_ping: Instant,
}

impl Feed {
    /// Opens a connection on server `index` (counted), remembering the world as it is.
    fn open(world: &SharedWorld, index: usize) -> Self {
        let mut w = lock(world);
        let server = &mut w.servers[index];
        server.push.connections += 1;
        server.push.open += 1;
        let generation = server.push.generation;
        let ping = Duration::from_millis(server.push.ping_ms);
        let progress = Duration::from_millis(w.servers[index].push.progress_ms);
        let now = Instant::now();
        let seen: BTreeMap<String, Seen> =
            w.plays_on(index).map(|p| (p.session_key.clone(), Seen::of(p))).collect();
        let progress_due = seen.keys().map(|k| (k.clone(), now + progress)).collect();
        Self { index, generation, seen, progress_due, next_ping: now + ping }
    }

    fn close(&self, world: &SharedWorld) {
        let mut w = lock(world);
        let push = &mut w.servers[self.index].push;
        push.open = push.open.saturating_sub(1);
    }

    /// When to look again at the latest.
    fn wake(&self) -> Instant {
        let soonest = self.progress_due.values().min().copied();
        let mut at = (Instant::now() + LOOK_EVERY).min(self.next_ping);
        if let Some(p) = soonest {
            at = at.min(p);
        }
        at
    }

    /// Looks at the world: what changed since the last look, and whose position is due.
    fn step(&mut self, world: &SharedWorld, ping: &mut bool) -> Step {
        let w = lock(world);
        let push = &w.servers[self.index].push;
        if push.generation != self.generation || !push.enabled {
            return Step::Close;
        }
        if push.silent {
            return Step::Silent;
        }
        if push.garbage {
            return Step::Garbage;
        }
        let now = Instant::now();
        if now >= self.next_ping {
            *ping = true;
            self.next_ping = now + Duration::from_millis(push.ping_ms);
        }
        let progress = Duration::from_millis(push.progress_ms);
        let current: BTreeMap<String, Seen> =
            w.plays_on(self.index).map(|p| (p.session_key.clone(), Seen::of(p))).collect();
        drop(w);
        let mut changes = Vec::new();
        for (key, before) in &self.seen {
            if !current.contains_key(key) {
                changes.push(Change::Stopped(key.clone(), before.clone()));
            }
        }
        for (key, now_seen) in &current {
            match self.seen.get(key) {
                None => changes.push(Change::Started(key.clone(), now_seen.clone())),
                Some(before) if before.item != now_seen.item => {
                    changes.push(Change::Started(key.clone(), now_seen.clone()));
                }
                Some(before) => {
                    if before.paused != now_seen.paused {
                        changes.push(if now_seen.paused {
                            Change::Paused(key.clone(), now_seen.clone())
                        } else {
                            Change::Resumed(key.clone(), now_seen.clone())
                        });
                    }
                    if before.transcode != now_seen.transcode {
                        changes.push(Change::Transcode(key.clone(), now_seen.transcode));
                    }
                }
            }
        }
        self.progress_due.retain(|k, _| current.contains_key(k));
        for (key, seen) in &current {
            let due = self.progress_due.entry(key.clone()).or_insert(now + progress);
            if now >= *due {
                *due = now + progress;
                if !seen.paused {
                    changes.push(Change::Progress(key.clone(), seen.clone()));
                }
            }
        }
        self.seen = current;
        Step::Tell(changes)
    }
}

/// The cluster's "the world changed" signal.
pub type Changed = watch::Receiver<u64>;

async fn wait(changed: &mut Changed, until: Instant) {
    tokio::select! {
        _ = changed.changed() => {}
        () = tokio::time::sleep_until(until) => {}
    }
}

/// Plex: `GET /:/eventsource/notifications`.
pub fn plex_events(world: SharedWorld, index: usize, changed: Changed) -> Response {
    Response::takeover(move |stream| event_stream(stream, world, index, changed, Flavor::Plex))
}

/// Jellyfin `/api/sse/events`, Emby `/emby/sse/events`: the plugin.
pub fn plugin_events(world: SharedWorld, index: usize, changed: Changed, emby: bool) -> Response {
    let flavor = if emby { Flavor::EmbyPlugin } else { Flavor::JellyfinPlugin };
    Response::takeover(move |stream| event_stream(stream, world, index, changed, flavor))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Plex,
    JellyfinPlugin,
    EmbyPlugin,
}

fn sse(name: &str, data: &serde_json::Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The frames of one change, in the flavor's words.
fn frames(flavor: Flavor, change: &Change) -> Vec<String> {
    if flavor == Flavor::Plex {
        let note = |key: &str, seen: &Seen, state: &str| {
            sse(
                "playing",
                &json!({"PlaySessionStateNotification": {
                    "sessionKey": key, "clientIdentifier": "sim", "guid": "", "ratingKey": seen.item,
                    "url": "", "key": format!("/library/metadata/{}", seen.item),
                    "viewOffset": seen.position_ms, "state": state,
                }}),
            )
        };
        return match change {
            Change::Started(k, s) | Change::Resumed(k, s) | Change::Progress(k, s) => {
                vec![note(k, s, if s.paused { "paused" } else { "playing" })]
            }
            Change::Paused(k, s) => vec![note(k, s, "paused")],
            Change::Stopped(k, s) => vec![note(k, s, "stopped")],
            Change::Transcode(k, on) => vec![sse(
                if *on { "transcodeSession.start" } else { "transcodeSession.end" },
                &json!({"TranscodeSession": {"key": format!("/transcode/sessions/{k}")}}),
            )],
        };
    }
    // The plugin: Jellyfin's item ids match its session list; Emby's are GUIDs where the
    // list has numbers.
    let event = |name: &str, key: &str, seen: &Seen, state: &str| {
        let item = if flavor == Flavor::EmbyPlugin {
            format!("{:032x}", seen.item.bytes().fold(0_u128, |h, b| h * 31 + u128::from(b)))
        } else {
            seen.item.clone()
        };
        sse(
            name,
            &json!({"sessionId": key, "itemId": item, "userId": seen.user, "state": state,
                    "positionTicks": seen.position_ms * TICKS_PER_MS}),
        )
    };
    match change {
        Change::Started(k, s) => vec![event("playing", k, s, "playing")],
        Change::Resumed(k, s) | Change::Progress(k, s) => vec![event("progress", k, s, "playing")],
        Change::Paused(k, s) => vec![event("paused", k, s, "paused")],
        Change::Stopped(k, s) => vec![event("stopped", k, s, "stopped")],
        Change::Transcode(..) => Vec::new(),
    }
}

async fn event_stream(
    mut stream: TcpStream,
    world: SharedWorld,
    index: usize,
    mut changed: Changed,
    flavor: Flavor,
) -> std::io::Result<()> {
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n",
        )
        .await?;
    let mut feed = Feed::open(&world, index);
    let result = async {
        if flavor != Flavor::Plex {
            let server = if flavor == Flavor::EmbyPlugin { "emby" } else { "jellyfin" };
            let hello = sse("hello", &json!({"version": "0.3.0.0", "server": server}));
            stream.write_all(hello.as_bytes()).await?;
        }
        loop {
            let mut ping = false;
            let step = feed.step(&world, &mut ping);
            let until = if matches!(step, Step::Garbage) {
                Instant::now() + GARBAGE_EVERY
            } else {
                feed.wake()
            };
            let out = match step {
                Step::Close => return Ok(()),
                Step::Silent => String::new(),
                Step::Garbage => "event: playing\ndata: {this is not json\n\n".to_owned(),
                Step::Tell(news) => {
                    let mut out: String = news.iter().flat_map(|c| frames(flavor, c)).collect();
                    if ping {
                        out.push_str("event: ping\ndata: {}\n\n");
                    }
                    out
                }
            };
            if !out.is_empty() {
                stream.write_all(out.as_bytes()).await?;
            }
            wait(&mut changed, until).await;
        }
    }
    .await;
    feed.close(&world);
    result
}

/// Jellyfin `/socket`, Emby `/embywebsocket`: the handshake, then the socket.
pub fn websocket(world: SharedWorld, index: usize, changed: Changed, req: &Request) -> Response {
    let upgrade = req.header("Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.header("Sec-WebSocket-Key").filter(|_| upgrade).map(str::to_owned) else {
        return Response::new(400, "text/plain", "WebSocket upgrade required");
    };
    let emby = lock(&world).servers[index].kind == ServerKind::Emby;
    Response::takeover(move |mut stream: TcpStream| async move {
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        stream.write_all(head.as_bytes()).await?;
        let socket = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
        let mut feed = Feed::open(&world, index);
        let result = run_socket(socket, &world, &mut feed, changed, emby).await;
        feed.close(&world);
        result
    })
}

fn message(kind: &str, data: serde_json::Value) -> Message {
    Message::text(json!({"MessageType": kind, "Data": data}).to_string())
}

async fn run_socket(
    mut socket: WebSocketStream<TcpStream>,
    world: &SharedWorld,
    feed: &mut Feed,
    mut changed: Changed,
    emby: bool,
) -> std::io::Result<()> {
    let io = |e: tokio_tungstenite::tungstenite::Error| std::io::Error::other(e.to_string());
    if !emby {
        socket.send(message("ForceKeepAlive", json!(60))).await.map_err(io)?;
    }
    // `SessionsStart` starts the `Sessions` messages: Jellyfin on every change, Emby every
    // interval as well.
    let mut subscribed: Option<Duration> = None;
    let mut next_periodic = Instant::now();
    loop {
        let index = feed.index;
        let sessions_now = |w: &World| formats::jellyfin_sessions(w, index);
        let mut ping = false;
        match feed.step(world, &mut ping) {
            Step::Close => return socket.close(None).await.map_err(io),
            Step::Silent => {
                // Not even a pong: nothing is read until the server is told otherwise.
                wait(&mut changed, Instant::now() + LOOK_EVERY).await;
                continue;
            }
            Step::Garbage => socket.send(Message::text("{garbage")).await.map_err(io)?,
            Step::Tell(news) => {
                let withheld = lock(world).servers[feed.index].push.withholds_sessions;
                if let Some(every) = subscribed.filter(|_| !withheld) {
                    let periodic = emby && Instant::now() >= next_periodic;
                    if !news.is_empty() || periodic {
                        if periodic {
                            next_periodic = Instant::now() + every;
                        }
                        let data = sessions_now(&lock(world));
                        socket.send(message("Sessions", data)).await.map_err(io)?;
                    }
                }
            }
        }
        let mut until = feed.wake();
        if emby && subscribed.is_some() {
            until = until.min(next_periodic);
        }
        let incoming = tokio::select! {
            incoming = socket.next() => incoming,
            _ = changed.changed() => continue,
            () = tokio::time::sleep_until(until) => continue,
        };
        let text = match incoming {
            None | Some(Err(_) | Ok(Message::Close(_))) => return Ok(()),
            Some(Ok(Message::Text(text))) => text,
            // Pings are answered by the socket itself.
            Some(Ok(_)) => continue,
        };
        let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        match value["MessageType"].as_str() {
            Some("SessionsStart") => {
                let interval = value["Data"]
                    .as_str()
                    .and_then(|d| d.split(',').nth(1))
                    .and_then(|ms| ms.trim().parse().ok())
                    .unwrap_or(1500);
                subscribed = Some(Duration::from_millis(interval));
                next_periodic = Instant::now();
                let withheld = lock(world).servers[feed.index].push.withholds_sessions;
                if emby && !withheld {
                    let data = sessions_now(&lock(world));
                    socket.send(message("Sessions", data)).await.map_err(io)?;
                    next_periodic = Instant::now() + Duration::from_millis(interval);
                }
            }
            Some("SessionsStop") => subscribed = None,
            Some("KeepAlive") => {
                socket.send(message("KeepAlive", serde_json::Value::Null)).await.map_err(io)?;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(item: &str, paused: bool, position_ms: i64) -> Seen {
        Seen { item: item.into(), paused, transcode: false, position_ms, user: "u".into() }
    }

    #[test]
    fn plex_frames_read_back_as_notes() {
        let frames = frames(Flavor::Plex, &Change::Paused("5".into(), seen("900", true, 61_000)));
        let mut reader = crate::media::push::sse::Reader::new();
        let events = reader.feed(frames[0].as_bytes()).unwrap();
        assert_eq!(events[0].name, "playing");
        let value: serde_json::Value = serde_json::from_str(&events[0].data).unwrap();
        let n = &value["PlaySessionStateNotification"];
        assert_eq!(
            (
                n["sessionKey"].as_str(),
                n["ratingKey"].as_str(),
                n["state"].as_str(),
                n["viewOffset"].as_i64()
            ),
            (Some("5"), Some("900"), Some("paused"), Some(61_000))
        );
    }

    #[test]
    fn the_plugin_names_emby_items_differently_from_the_list() {
        let change = Change::Started("s".into(), seen("42", false, 0));
        assert!(frames(Flavor::JellyfinPlugin, &change)[0].contains("\"itemId\":\"42\""));
        assert!(!frames(Flavor::EmbyPlugin, &change)[0].contains("\"itemId\":\"42\""));
    }
}
