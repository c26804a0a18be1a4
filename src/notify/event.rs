//! What can be notified: an [`Event`] of an [`EventKind`] with a [`Severity`].
//!
//! The poller (streams, devices, servers) and the rules engine (violations, trust) build
//! events; [`super::Notifier::publish`] routes them. Events are stored in the outbox as JSON,
//! so every field added later needs a serde default.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::NotifierId;
use crate::rules::model::Severity;

/// What happened. The names are part of the API (DESIGN.md section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A rule matched and raised a violation.
    Violation,
    /// A stream was confirmed (it outlived the confirmation window).
    StreamStarted,
    StreamStopped,
    /// A user streamed from a device never seen for them.
    NewDevice,
    /// A media server stopped answering.
    ServerDown,
    /// A media server answers again.
    ServerUp,
    /// A user's trust score dropped below the threshold.
    TrustLow,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::Violation,
        EventKind::StreamStarted,
        EventKind::StreamStopped,
        EventKind::NewDevice,
        EventKind::ServerDown,
        EventKind::ServerUp,
        EventKind::TrustLow,
    ];

    /// What a new channel subscribes to: everything but the chatty stream events.
    pub const DEFAULTS: [EventKind; 5] = [
        EventKind::Violation,
        EventKind::NewDevice,
        EventKind::ServerDown,
        EventKind::ServerUp,
        EventKind::TrustLow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Violation => "violation",
            EventKind::StreamStarted => "stream_started",
            EventKind::StreamStopped => "stream_stopped",
            EventKind::NewDevice => "new_device",
            EventKind::ServerDown => "server_down",
            EventKind::ServerUp => "server_up",
            EventKind::TrustLow => "trust_low",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            EventKind::Violation => "Rule violation",
            EventKind::StreamStarted => "Stream started",
            EventKind::StreamStopped => "Stream stopped",
            EventKind::NewDevice => "New device",
            EventKind::ServerDown => "Server down",
            EventKind::ServerUp => "Server back up",
            EventKind::TrustLow => "Trust score low",
        }
    }

    /// The severity [`Event::new`] gives an event of this kind; publishers may override it
    /// (a violation takes its rule's).
    pub fn default_severity(self) -> Severity {
        match self {
            EventKind::StreamStarted | EventKind::StreamStopped => Severity::Low,
            EventKind::Violation | EventKind::NewDevice | EventKind::TrustLow => Severity::Warning,
            // Up is as important as down: whoever was told one wants the other.
            EventKind::ServerDown | EventKind::ServerUp => Severity::High,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("{s:?} is not an event (one of {})", names.join(", "))
        })
    }
}

/// Something an event is about: a media user, a server or a rule, by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub id: i64,
    pub name: String,
}

/// One thing worth telling the owner about.
///
/// ```ignore
/// let event = Event::new(EventKind::Violation, "Berlin → Sydney: 16,000 km in 20 min")
///     .severity(rule.severity)
///     .user(user.id, &user.name)
///     .server(server.id, &server.name)
///     .rule(rule.id, &rule.name)
///     .link(format!("/violations/{}", violation.id))
///     .data(serde_json::json!({ "violation_id": violation.id, "evidence": evidence }))
///     .channels(action.channels.clone())
///     .cooldown(Duration::from_secs(60 * action.cooldown_minutes));
/// notifier.publish(event).await?;
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub severity: Severity,
    /// When it happened, Unix milliseconds.
    pub at: i64,
    #[serde(default)]
    pub user: Option<Subject>,
    #[serde(default)]
    pub server: Option<Subject>,
    #[serde(default)]
    pub rule: Option<Subject>,
    /// One line saying what happened, e.g. "Playing Alien (1979) on Living Room TV from
    /// Lyon, FR". Shown as the body of every message.
    #[serde(default)]
    pub evidence: String,
    /// Path of the page that shows it, below the base path (`/violations/12`); messages
    /// link to the public URL plus this path.
    #[serde(default)]
    pub link: Option<String>,
    /// Structured details, passed to webhooks as `data` (the session, the evidence values).
    #[serde(default)]
    pub data: serde_json::Value,
    /// Rule routing: deliver to exactly these channels (enabled ones), whatever events and
    /// minimum severity they chose. `None`: every channel that subscribes to the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<NotifierId>>,
    /// Don't publish the same alert again (same kind, rule, user and server) within this
    /// many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_ms: Option<u64>,
}

impl Event {
    /// An event happening now, with the kind's default severity.
    pub fn new(kind: EventKind, evidence: impl Into<String>) -> Self {
        Self {
            kind,
            severity: kind.default_severity(),
            at: crate::time::now_ms(),
            user: None,
            server: None,
            rule: None,
            evidence: evidence.into(),
            link: None,
            data: serde_json::Value::Null,
            channels: None,
            cooldown_ms: None,
        }
    }

    #[must_use]
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// When it happened, Unix milliseconds (default: when the event was built).
    #[must_use]
    pub fn at(mut self, unix_ms: i64) -> Self {
        self.at = unix_ms;
        self
    }

    #[must_use]
    pub fn user(mut self, id: i64, name: impl Into<String>) -> Self {
        self.user = Some(Subject { id, name: name.into() });
        self
    }

    #[must_use]
    pub fn server(mut self, id: i64, name: impl Into<String>) -> Self {
        self.server = Some(Subject { id, name: name.into() });
        self
    }

    #[must_use]
    pub fn rule(mut self, id: i64, name: impl Into<String>) -> Self {
        self.rule = Some(Subject { id, name: name.into() });
        self
    }

    /// The page's path below the base path, e.g. `/violations/12`.
    #[must_use]
    pub fn link(mut self, path: impl Into<String>) -> Self {
        self.link = Some(path.into());
        self
    }

    #[must_use]
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }

    /// Only these channels (a rule's notify action).
    #[must_use]
    pub fn channels(mut self, channels: Vec<NotifierId>) -> Self {
        self.channels = Some(channels);
        self
    }

    /// No repeat of this alert (same kind, rule, user, server) within `cooldown`.
    #[must_use]
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown_ms = Some(u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// The key of [`Event::cooldown`]: what counts as "the same alert".
    pub fn cooldown_key(&self) -> String {
        let id =
            |s: &Option<Subject>| s.as_ref().map_or_else(|| "-".to_owned(), |s| s.id.to_string());
        format!(
            "event:{}:rule={}:user={}:server={}",
            self.kind,
            id(&self.rule),
            id(&self.user),
            id(&self.server)
        )
    }

    /// An event for "send test", saying so.
    pub fn test(channel_name: &str) -> Self {
        Event::new(
            EventKind::Violation,
            format!(
                "This is a test from Streamwarden: the channel \"{channel_name}\" works. \
                 Alerts look like this one."
            ),
        )
        .severity(Severity::Warning)
        .user(0, "alice (example)")
        .server(0, "Example server")
        .rule(0, "Example rule")
        .link("/settings/notifications")
        .data(serde_json::json!({ "test": true }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for kind in EventKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), kind);
        }
        for severity in Severity::ALL {
            assert_eq!(serde_json::to_string(&severity).unwrap(), format!("\"{severity}\""));
            assert_eq!(severity.as_str().parse::<Severity>().unwrap(), severity);
        }
        assert!("Violation".parse::<EventKind>().is_err());
        assert!("critical".parse::<Severity>().unwrap_err().contains("low, warning or high"));
        assert!(Severity::Low < Severity::Warning && Severity::Warning < Severity::High);
    }

    #[test]
    fn events_survive_the_outbox_and_old_rows_still_parse() {
        let event = Event::new(EventKind::NewDevice, "Roku in the kitchen")
            .user(5, "alice")
            .server(1, "Plex")
            .link("/users/5")
            .channels(vec![NotifierId(2)])
            .cooldown(Duration::from_mins(1));
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
        // A row written by an older version with fewer fields.
        let old: Event =
            serde_json::from_str(r#"{"kind":"server_down","severity":"high","at":5}"#).unwrap();
        assert_eq!((old.kind, old.user, old.channels), (EventKind::ServerDown, None, None));
    }

    #[test]
    fn cooldown_keys_name_rule_user_and_server() {
        let e = Event::new(EventKind::Violation, "x").rule(3, "r").user(5, "u");
        assert_eq!(e.cooldown_key(), "event:violation:rule=3:user=5:server=-");
        assert_ne!(e.cooldown_key(), e.clone().user(6, "v").cooldown_key());
    }
}
