//! Jellyfin and Emby: the Tracearr SSE plugin when it is installed, else the server's own
//! WebSocket.
//!
//! The plugin (`Tracearr/Media-Server-SSE`) sends `hello` first, then `playing`,
//! `progress`, `paused`, `stopped` with `{sessionId, itemId, userId, state, positionTicks}`,
//! `session.start|end`, and `ping` every 30 s. Its `sessionId` is the session list's `Id`;
//! its `itemId` is the list's item id on Jellyfin (a GUID without dashes) but not on Emby
//! (a GUID where the list has a number), so Emby's notes carry no item.
//!
//! The WebSocket takes `{"MessageType":"SessionsStart","Data":"0,1500"}` and answers with
//! `{"MessageType":"Sessions","Data":[...]}`, the rows of `GET /Sessions`: Jellyfin on
//! every session event, Emby every interval. `ForceKeepAlive` (Data: seconds) asks for our
//! `KeepAlive` messages, which the server echoes.

use rocket::futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Message;

use super::ws::{self, Refusal};
use super::{Ended, NoteState, Realtime, Signal, Timing, note, read_events, refused, sse};
use crate::media::jellyfin::{self, DEVICE_ID, Flavor};
use crate::media::{Connection, ServerKind};

const TICKS_PER_MS: i64 = 10_000;

/// `SessionsStart`'s data: first message at once, then every 1.5 s (Emby; Jellyfin sends
/// on events).
const SUBSCRIBE: &str = "0,1500";

pub(super) async fn session(
    connection: &Connection,
    timing: &Timing,
    signals: &UnboundedSender<Signal>,
) -> Ended {
    let headers = match jellyfin::auth_headers(connection) {
        Ok(h) => h,
        Err(e) => return Ended::before_up(e.to_string()),
    };
    let client = match super::client(connection, headers, timing) {
        Ok(c) => c,
        Err(e) => return Ended::before_up(e.to_string()),
    };
    match plugin(connection, &client, timing, signals).await {
        Plugin::Ended(ended) => ended,
        Plugin::Absent => websocket(connection, &client, timing, signals).await,
    }
}

enum Plugin {
    Absent,
    Ended(Ended),
}

/// The plugin's path under the server URL: Emby's routes live under `/emby`.
fn plugin_path(connection: &Connection) -> &'static str {
    match connection.kind {
        ServerKind::Emby if connection.url.trim_end_matches('/').ends_with("/emby") => {
            "/sse/events"
        }
        ServerKind::Emby => "/emby/sse/events",
        _ => "/api/sse/events",
    }
}

async fn plugin(
    connection: &Connection,
    client: &reqwest::Client,
    timing: &Timing,
    signals: &UnboundedSender<Signal>,
) -> Plugin {
    let url = match super::url(connection, plugin_path(connection), &[]) {
        Ok(u) => u,
        Err(e) => return Plugin::Ended(Ended::before_up(e.to_string())),
    };
    let request = client.get(url).header("Accept", "text/event-stream").send();
    let response = match tokio::time::timeout(timing.connect_timeout, request).await {
        Err(_) => return Plugin::Ended(Ended::before_up("the server did not answer in time")),
        Ok(Err(e)) => return Plugin::Ended(Ended::before_up(super::describe(e))),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if matches!(status.as_u16(), 401 | 403) {
        return Plugin::Ended(Ended::before_up(refused(status, "the SSE plugin")));
    }
    let is_stream = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if !status.is_success() || !is_stream {
        // 404 and friends: no plugin. The WebSocket it is.
        return Plugin::Absent;
    }
    let flavor = jellyfin::Flavor::of(connection.kind);
    let mut up = false;
    let reason = read_events(response, timing.plugin_keepalive, |event| {
        let Some(read) = read_plugin(&event, flavor) else { return false };
        if event.name == "hello" && !up {
            up = true;
            let _ = signals.send(Signal::Up(Realtime::Sse));
        }
        for signal in read {
            let _ = signals.send(signal);
        }
        true
    })
    .await;
    Plugin::Ended(Ended { reason, was_up: up })
}

/// What one plugin event says: `None` when it is not the plugin's format.
pub(super) fn read_plugin(event: &sse::Event, flavor: Flavor) -> Option<Vec<Signal>> {
    let data = event.data.trim();
    let value: Value = if data.is_empty() { json!({}) } else { serde_json::from_str(data).ok()? };
    if !value.is_object() {
        return None;
    }
    let state = match event.name.as_str() {
        "playing" => NoteState::Started,
        "progress" => NoteState::Playing,
        "paused" => NoteState::Paused,
        "stopped" => NoteState::Stopped,
        "session.start" | "session.end" => return Some(vec![Signal::Changed]),
        "message" => return None,
        _ => return Some(Vec::new()),
    };
    let session_id = value.get("sessionId")?.as_str()?;
    let item = match flavor {
        Flavor::Jellyfin => value.get("itemId").and_then(Value::as_str),
        Flavor::Emby => None,
    };
    let position = value.get("positionTicks").and_then(Value::as_i64).map(|t| t / TICKS_PER_MS);
    Some(vec![note(session_id, item, state, position)])
}

async fn websocket(
    connection: &Connection,
    client: &reqwest::Client,
    timing: &Timing,
    signals: &UnboundedSender<Signal>,
) -> Ended {
    let flavor = jellyfin::Flavor::of(connection.kind);
    let (path, query): (&str, Vec<(&str, &str)>) = match flavor {
        Flavor::Jellyfin => ("/socket", vec![("deviceId", DEVICE_ID)]),
        // Emby authenticates its socket by the query; the URL is never logged.
        Flavor::Emby => (
            "/embywebsocket",
            vec![("api_key", connection.token.as_str()), ("deviceId", DEVICE_ID)],
        ),
    };
    let url = match super::url(connection, path, &query) {
        Ok(u) => u,
        Err(e) => return Ended::before_up(e.to_string()),
    };
    let socket = match tokio::time::timeout(timing.connect_timeout, ws::connect(client, url)).await
    {
        Err(_) => return Ended::before_up("the WebSocket did not open in time"),
        Ok(Err(Refusal::Status(status))) => {
            return Ended::before_up(match status.as_u16() {
                101 => "the upgrade failed".to_owned(),
                401 | 403 => refused(status, "the WebSocket"),
                code => format!(
                    "the WebSocket was refused (HTTP {code}); a proxy in between may not pass WebSockets"
                ),
            });
        }
        Ok(Err(Refusal::Failed(reason))) => return Ended::before_up(reason),
        Ok(Ok(socket)) => socket,
    };
    run_socket(socket, flavor, timing, signals).await
}

fn subscribe() -> Message {
    Message::text(json!({ "MessageType": "SessionsStart", "Data": SUBSCRIBE }).to_string())
}

fn keepalive() -> Message {
    Message::text(json!({ "MessageType": "KeepAlive" }).to_string())
}

async fn run_socket(
    mut socket: ws::Socket,
    flavor: Flavor,
    timing: &Timing,
    signals: &UnboundedSender<Signal>,
) -> Ended {
    if let Err(e) = socket.send(subscribe()).await {
        return Ended::before_up(format!("the WebSocket broke off: {e}"));
    }
    let start = tokio::time::Instant::now();
    let mut up = false;
    let mut resubscribed = false;
    let mut ping_every = timing.ws_ping_every;
    let mut next_ping = start + ping_every;
    let mut deadline = start + timing.ws_keepalive;
    let ended = |reason: String, up: bool| Ended { reason, was_up: up };
    loop {
        let resubscribe_at = (!up && !resubscribed).then(|| start + timing.ws_resubscribe_after);
        let wake = resubscribe_at.map_or(next_ping, |at| at.min(next_ping)).min(deadline);
        let message = tokio::select! {
            message = socket.next() => message,
            () = tokio::time::sleep_until(wake) => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return ended(
                        format!("nothing came back for {} s (keep-alive lost)", timing.ws_keepalive.as_secs()),
                        up,
                    );
                }
                let mut out = Vec::new();
                if resubscribe_at.is_some_and(|at| now >= at) {
                    resubscribed = true;
                    out.push(subscribe());
                }
                if now >= next_ping {
                    next_ping = now + ping_every;
                    out.push(Message::Ping(b"streamwarden".to_vec().into()));
                    out.push(keepalive());
                }
                for m in out {
                    if let Err(e) = socket.send(m).await {
                        return ended(format!("the WebSocket broke off: {e}"), up);
                    }
                }
                continue;
            }
        };
        let message = match message {
            None => return ended("the server closed the WebSocket".to_owned(), up),
            Some(Err(e)) => return ended(format!("the WebSocket broke off: {e}"), up),
            Some(Ok(m)) => m,
        };
        let understood = match message {
            Message::Text(text) => match read_message(text.as_str(), flavor) {
                Some(Read::Sessions(sessions)) => {
                    if !up {
                        up = true;
                        let _ = signals.send(Signal::Up(Realtime::WebSocket));
                    }
                    let _ = signals.send(Signal::Snapshot(sessions));
                    true
                }
                Some(Read::KeepAliveEvery(seconds)) => {
                    // Half the server's timeout, as its own clients do.
                    let asked = std::time::Duration::from_secs(seconds.max(2) / 2);
                    ping_every = ping_every.min(asked);
                    next_ping = next_ping.min(tokio::time::Instant::now() + ping_every);
                    true
                }
                Some(Read::Other) => true,
                None => false,
            },
            Message::Pong(_) => true,
            Message::Close(_) => return ended("the server closed the WebSocket".to_owned(), up),
            Message::Binary(_) | Message::Ping(_) | Message::Frame(_) => false,
        };
        if understood {
            deadline = tokio::time::Instant::now() + timing.ws_keepalive;
        }
    }
}

/// What a WebSocket text message says.
#[derive(Debug, PartialEq)]
pub(super) enum Read {
    Sessions(Vec<crate::media::ActiveSession>),
    /// `ForceKeepAlive`: the server wants a `KeepAlive` within this many seconds.
    KeepAliveEvery(u64),
    /// A message we do not need (`KeepAlive`, `UserDataChanged`, ...).
    Other,
}

/// `None` when the text is not the servers' message format.
pub(super) fn read_message(text: &str, flavor: Flavor) -> Option<Read> {
    let value: Value = serde_json::from_str(text).ok()?;
    let kind = value.get("MessageType")?.as_str()?;
    let data = value.get("Data").cloned().unwrap_or(Value::Null);
    match kind {
        "Sessions" => jellyfin::sessions_from_json(data, flavor).ok().map(Read::Sessions),
        "ForceKeepAlive" => {
            let seconds = data.as_u64().or_else(|| data.as_str().and_then(|s| s.parse().ok()))?;
            Some(Read::KeepAliveEvery(seconds))
        }
        _ => Some(Read::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::push::Note;

    fn event(name: &str, data: &str) -> sse::Event {
        sse::Event { name: name.into(), data: data.into() }
    }

    #[test]
    fn plugin_events_become_notes_with_items_only_where_the_ids_match() {
        let playing = r#"{"sessionId":"abc123","itemId":"def456","userId":"user1","state":"playing","positionTicks":50000000}"#;
        let expected = |item: Option<&str>| {
            vec![Signal::Note(Note {
                session_id: "abc123".into(),
                item_id: item.map(str::to_owned),
                state: NoteState::Started,
                position_ms: Some(5_000),
            })]
        };
        assert_eq!(
            read_plugin(&event("playing", playing), Flavor::Jellyfin).unwrap(),
            expected(Some("def456"))
        );
        assert_eq!(read_plugin(&event("playing", playing), Flavor::Emby).unwrap(), expected(None));
        let stopped = r#"{"sessionId":"abc123","itemId":"def456","state":"stopped","positionTicks":50000000,"playedToCompletion":true}"#;
        assert!(
            matches!(&read_plugin(&event("stopped", stopped), Flavor::Jellyfin).unwrap()[0], Signal::Note(n) if n.state == NoteState::Stopped)
        );
        assert_eq!(
            read_plugin(
                &event("session.end", r#"{"sessionId":"a","userId":"u"}"#),
                Flavor::Jellyfin
            )
            .unwrap(),
            vec![Signal::Changed]
        );
        for quiet in ["hello", "ping", "server.stats", "library.item.added", "task.progress"] {
            assert_eq!(
                read_plugin(&event(quiet, "{}"), Flavor::Jellyfin).unwrap(),
                vec![],
                "{quiet}"
            );
        }
        for garbage in [
            event("playing", "{]"),
            event("progress", r#"{"itemId":"x"}"#),
            event("message", "{}"),
            event("ping", "[]"),
        ] {
            assert!(read_plugin(&garbage, Flavor::Jellyfin).is_none(), "{garbage:?}");
        }
    }

    #[test]
    fn websocket_messages_are_read_and_garbage_is_refused() {
        let sessions = r#"{"MessageType":"Sessions","Data":[{"Id":"s1","UserId":"u1","UserName":"alice","DeviceId":"d1","DeviceName":"TV","Client":"Jellyfin Web","RemoteEndPoint":"10.0.0.9","NowPlayingItem":{"Id":"i1","Name":"Film","Type":"Movie","RunTimeTicks":60000000000},"PlayState":{"PositionTicks":600000000,"IsPaused":false}},{"Id":"idle","UserName":"bob"}]}"#;
        match read_message(sessions, Flavor::Jellyfin).unwrap() {
            Read::Sessions(list) => {
                assert_eq!(list.len(), 1, "idle clients are left out as in /Sessions");
                assert_eq!((list[0].session_id.as_str(), list[0].item.id.as_str()), ("s1", "i1"));
                assert_eq!(list[0].progress_ms, Some(60_000));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            read_message(r#"{"MessageType":"ForceKeepAlive","Data":60}"#, Flavor::Emby),
            Some(Read::KeepAliveEvery(60))
        );
        assert_eq!(read_message(r#"{"MessageType":"KeepAlive"}"#, Flavor::Emby), Some(Read::Other));
        for garbage in [
            "nope",
            "{}",
            r#"{"MessageType":"Sessions","Data":"x"}"#,
            r#"{"MessageType":"ForceKeepAlive","Data":"soon"}"#,
        ] {
            assert_eq!(read_message(garbage, Flavor::Jellyfin), None, "{garbage}");
        }
    }
}
