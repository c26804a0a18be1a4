//! Plex's event stream: `GET /:/eventsource/notifications`, named events with JSON data.
//!
//! ```text
//! event: playing
//! data: {"PlaySessionStateNotification":{"sessionKey":"45","ratingKey":"217468","viewOffset":26530,"state":"paused",...}}
//!
//! event: ping
//! data: {}
//! ```
//!
//! `playing` comes on every start, pause, resume, stop and client timeline report (every
//! ~10 s while playing); `transcodeSession.start|end` when a transcode begins or ends (a
//! quality change). The WebSocket form of the same notifications wraps them as
//! `{"NotificationContainer":{"type":"playing","PlaySessionStateNotification":[...]}}`,
//! which some servers also send as unnamed `message` events; both are read.

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::{Ended, NoteState, Realtime, Signal, Timing, note, read_events, refused, sse};
use crate::media::Connection;

/// Only what concerns sessions; pings come whatever the filter.
pub(super) const FILTERS: &str = "playing,transcodeSession.start,transcodeSession.end";

pub(super) async fn session(
    connection: &Connection,
    timing: &Timing,
    signals: &UnboundedSender<Signal>,
) -> Ended {
    let headers = match crate::media::plex::auth_headers(connection) {
        Ok(h) => h,
        Err(e) => return Ended::before_up(e.to_string()),
    };
    let client = match super::client(connection, headers, timing) {
        Ok(c) => c,
        Err(e) => return Ended::before_up(e.to_string()),
    };
    let url = match super::url(connection, "/:/eventsource/notifications", &[("filters", FILTERS)])
    {
        Ok(u) => u,
        Err(e) => return Ended::before_up(e.to_string()),
    };
    let request = client.get(url).header("Accept", "text/event-stream").send();
    let response = match tokio::time::timeout(timing.connect_timeout, request).await {
        Err(_) => return Ended::before_up("the event stream did not answer in time"),
        Ok(Err(e)) => return Ended::before_up(super::describe(e)),
        Ok(Ok(r)) => r,
    };
    if !response.status().is_success() {
        return Ended::before_up(refused(response.status(), "the event stream"));
    }
    let is_stream = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if !is_stream {
        return Ended::before_up(
            "the event stream answered with something else than text/event-stream",
        );
    }
    // Up only once it has said something in Plex's words (a ping comes every 10 s): a
    // stream that opens and stays mute (a proxy that buffers it) would otherwise count as
    // healthy and slow the polls down to the reconciliation interval.
    let mut up = false;
    let reason = read_events(response, timing.plex_keepalive, |event| {
        let Some(read) = read(&event) else { return false };
        if !up {
            up = true;
            let _ = signals.send(Signal::Up(Realtime::Sse));
        }
        for signal in read {
            let _ = signals.send(signal);
        }
        true
    })
    .await;
    Ended { reason, was_up: up }
}

/// What one event says: `None` when it is not Plex's format (garbage), else the signals
/// (none for pings and events we do not need).
pub(super) fn read(event: &sse::Event) -> Option<Vec<Signal>> {
    let data = event.data.trim();
    let value: Value =
        if data.is_empty() { Value::Null } else { serde_json::from_str(data).ok()? };
    match event.name.as_str() {
        "ping" => Some(Vec::new()),
        "transcodeSession.start" | "transcodeSession.end" => Some(vec![Signal::Changed]),
        "playing" => notifications(value.get("PlaySessionStateNotification")?),
        "message" | "notification" => {
            let container = value.get("NotificationContainer")?;
            match container.get("PlaySessionStateNotification") {
                Some(list) => notifications(list),
                None => Some(Vec::new()),
            }
        }
        name if !name.is_empty() && value.is_object() => Some(Vec::new()),
        _ => None,
    }
}

/// One notification or a list of them.
fn notifications(value: &Value) -> Option<Vec<Signal>> {
    let list = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => return None,
    };
    list.into_iter().map(notification).collect()
}

fn notification(n: &Value) -> Option<Signal> {
    let text = |key: &str| match n.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(v)) => Some(v.to_string()),
        _ => None,
    };
    let session_key = text("sessionKey")?;
    let state = NoteState::parse(n.get("state")?.as_str()?)?;
    let position = n.get("viewOffset").and_then(Value::as_i64);
    Some(note(&session_key, text("ratingKey").as_deref(), state, position))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::push::Note;

    fn event(name: &str, data: &str) -> sse::Event {
        sse::Event { name: name.into(), data: data.into() }
    }

    #[test]
    fn playing_notifications_become_notes_in_the_session_lists_terms() {
        // Plexopedia's recorded frame.
        let frame = r#"{"PlaySessionStateNotification":{"sessionKey":"45","clientIdentifier":"4b453df1-8fb1-4aee-bfb9-3ea219fce481","guid":"","ratingKey":"217468","url":"","key":"/library/metadata/217448","viewOffset":26530,"state":"paused"}}"#;
        assert_eq!(
            read(&event("playing", frame)).unwrap(),
            vec![Signal::Note(Note {
                session_id: "45".into(),
                item_id: Some("217468".into()),
                state: NoteState::Paused,
                position_ms: Some(26_530),
            })]
        );
        let wrapped = r#"{"NotificationContainer":{"type":"playing","size":2,"PlaySessionStateNotification":[{"sessionKey":"1","ratingKey":"9","viewOffset":0,"state":"playing"},{"sessionKey":2,"ratingKey":"8","state":"stopped"}]}}"#;
        let got = read(&event("message", wrapped)).unwrap();
        assert_eq!(got.len(), 2);
        assert!(
            matches!(&got[1], Signal::Note(n) if n.session_id == "2" && n.state == NoteState::Stopped && n.position_ms.is_none())
        );
    }

    #[test]
    fn pings_and_transcodes_and_other_events_are_understood_garbage_is_not() {
        assert_eq!(read(&event("ping", "{}")).unwrap(), vec![]);
        assert_eq!(read(&event("ping", "")).unwrap(), vec![]);
        assert_eq!(
            read(&event("transcodeSession.end", r#"{"TranscodeSession":{"key":"/x"}}"#)).unwrap(),
            vec![Signal::Changed]
        );
        assert_eq!(read(&event("activity", r#"{"ActivityNotification":{}}"#)).unwrap(), vec![]);
        for garbage in [
            event("playing", "not json"),
            event("playing", r#"{"PlaySessionStateNotification":{"state":"playing"}}"#),
            event(
                "playing",
                r#"{"PlaySessionStateNotification":{"sessionKey":"1","state":"dancing"}}"#,
            ),
            event("playing", "[1,2]"),
            event("message", r#"{"other":1}"#),
            event("", "{}"),
        ] {
            assert!(read(&garbage).is_none(), "{garbage:?}");
        }
    }
}
