//! What the poller tells the notification channels: a stream started or stopped, a user
//! played from a new device, a server went down or came back. Pure: entries in, events out.

use crate::format;
use crate::geo::Geo;
use crate::media::model::MediaType;
use crate::notify::{Event, EventKind};
use crate::poller::tracker::{FinishedPlay, LiveEntry};

/// A server is announced down after this many failed polls in a row.
pub const DOWN_AFTER_FAILURES: i64 = 3;

fn title(entry: &LiveEntry) -> String {
    let item = &entry.session.item;
    let kind = item.media_type.unwrap_or(MediaType::Other);
    format::full_title(
        &item.title,
        item.grandparent_title.as_deref(),
        item.season,
        item.episode,
        item.year,
        kind.as_str(),
    )
}

fn place(entry: &LiveEntry) -> String {
    let ip = entry.session.ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
    match &entry.meta.geo {
        Some(Geo { city: Some(city), country: Some(country), .. }) => {
            format!("{city}, {country} ({ip})")
        }
        Some(Geo { country: Some(country), .. }) => format!("{country} ({ip})"),
        _ if entry.meta.is_local => format!("the local network ({ip})"),
        _ => ip,
    }
}

fn player(entry: &LiveEntry) -> String {
    let p = &entry.session.player;
    match (&p.name, &p.product) {
        (Some(name), Some(product)) => format!("{name} ({product})"),
        (Some(name), None) => name.clone(),
        (None, Some(product)) => product.clone(),
        (None, None) => "an unknown player".to_owned(),
    }
}

fn about(event: Event, entry: &LiveEntry, server_name: &str) -> Event {
    let event = event
        .server(entry.server_id, server_name)
        .data(serde_json::to_value(&entry.session).unwrap_or_default());
    match entry.meta.user_id {
        Some(id) => event.user(id, entry.session.user.name.clone()),
        None => event,
    }
}

pub fn stream_started(entry: &LiveEntry, server_name: &str) -> Event {
    let decision = entry.session.stream.decision.label().to_lowercase();
    let line = format!(
        "{} started {} on {} from {}, {decision}",
        entry.session.user.name,
        title(entry),
        player(entry),
        place(entry)
    );
    about(
        Event::new(EventKind::StreamStarted, line).at(entry.started_at).link("/"),
        entry,
        server_name,
    )
}

pub fn stream_stopped(play: &FinishedPlay, server_name: &str) -> Event {
    let entry = &play.entry;
    let watched = if play.watched { ", watched" } else { "" };
    let line = format!(
        "{} stopped {} after {}{watched}",
        entry.session.user.name,
        title(entry),
        format::duration(play.play_ms)
    );
    let page = entry.play_id.map_or_else(|| "/history".to_owned(), |id| format!("/history/{id}"));
    about(
        Event::new(EventKind::StreamStopped, line).at(play.stopped_at).link(page),
        entry,
        server_name,
    )
}

pub fn new_device(entry: &LiveEntry, server_name: &str) -> Event {
    let p = &entry.session.player;
    let line = format!(
        "{} played from a new device: {}{} from {}",
        entry.session.user.name,
        player(entry),
        p.platform.as_deref().map(|pl| format!(" on {pl}")).unwrap_or_default(),
        place(entry)
    );
    let page = entry.meta.user_id.map_or_else(|| "/users".to_owned(), |id| format!("/users/{id}"));
    about(Event::new(EventKind::NewDevice, line).link(page), entry, server_name)
}

pub fn server_down(server_id: i64, server_name: &str, error: &str) -> Event {
    let line =
        format!("{server_name} has not answered {DOWN_AFTER_FAILURES} polls in a row: {error}");
    Event::new(EventKind::ServerDown, line).server(server_id, server_name).link("/settings/servers")
}

pub fn server_up(server_id: i64, server_name: &str) -> Event {
    Event::new(EventKind::ServerUp, format!("{server_name} answers again"))
        .server(server_id, server_name)
        .link("/settings/servers")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::model::{ActiveSession, Item, PlaybackState, Player, StreamInfo, UserRef};
    use crate::poller::tracker::{LiveStatus, PlayMeta, StopReason};

    fn entry() -> LiveEntry {
        LiveEntry {
            play_id: Some(9),
            server_id: 2,
            session: ActiveSession {
                session_id: "s".into(),
                control_id: None,
                user: UserRef { external_id: "1".into(), name: "alice".into(), thumb: None },
                item: Item {
                    id: "i".into(),
                    title: "Pilot".into(),
                    grandparent_title: Some("Show".into()),
                    season: Some(1),
                    episode: Some(1),
                    media_type: Some(MediaType::Episode),
                    ..Item::default()
                },
                player: Player {
                    device_id: "d".into(),
                    name: Some("TV".into()),
                    product: Some("Plex for Roku".into()),
                    platform: Some("Roku".into()),
                    version: None,
                },
                ip: Some("81.2.69.142".parse().unwrap()),
                server_says_local: false,
                state: PlaybackState::Playing,
                progress_ms: Some(0),
                stream: StreamInfo::default(),
                can_control: true,
            },
            status: LiveStatus::Live,
            started_at: 1_000,
            last_seen_at: 1_000,
            paused_ms: 0,
            paused_since: None,
            missing_polls: 0,
            meta: PlayMeta {
                user_id: Some(4),
                geo: Some(Geo {
                    city: Some("London".into()),
                    country: Some("GB".into()),
                    ..Geo::default()
                }),
                ..PlayMeta::default()
            },
        }
    }

    #[test]
    fn lines_name_who_what_where() {
        let e = stream_started(&entry(), "Home Plex");
        assert_eq!(e.kind, EventKind::StreamStarted);
        assert_eq!(
            e.evidence,
            "alice started Show · S01E01 · Pilot on TV (Plex for Roku) from London, GB (81.2.69.142), direct play"
        );
        assert_eq!(e.user.as_ref().unwrap().id, 4);
        assert_eq!(e.server.as_ref().unwrap().name, "Home Plex");
        let stopped = stream_stopped(
            &FinishedPlay {
                entry: entry(),
                stopped_at: 5_000,
                reason: StopReason::Stopped,
                play_ms: 2_700_000,
                watched: true,
            },
            "Home Plex",
        );
        assert_eq!(stopped.evidence, "alice stopped Show · S01E01 · Pilot after 45 min, watched");
        assert_eq!(stopped.link.as_deref(), Some("/history/9"));
        assert_eq!(
            new_device(&entry(), "P").evidence,
            "alice played from a new device: TV (Plex for Roku) on Roku from London, GB (81.2.69.142)"
        );
        assert_eq!(server_down(2, "Home Plex", "timeout").kind, EventKind::ServerDown);
    }
}
