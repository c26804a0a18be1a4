//! An [`Event`] rendered into what every channel shows: a title, a one-line body, facts and a
//! link. Pure; each channel then fits it into its own format and limits.

use reqwest::Url;

use super::event::{Event, EventKind};
use crate::rules::model::Severity;

/// Turns the link paths of events into absolute URLs.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// `STREAMWARDEN_PUBLIC_URL`, which already includes the base path.
    public_url: Option<Url>,
}

impl Links {
    pub fn new(public_url: Option<Url>) -> Self {
        Self { public_url }
    }

    /// `public_url + path`, or `None` when no public URL is configured (a relative link is
    /// useless in a phone notification).
    pub fn absolute(&self, path: &str) -> Option<String> {
        let base = self.public_url.as_ref()?;
        let base = base.as_str().trim_end_matches('/');
        let path = path.trim_start_matches('/');
        Some(format!("{base}/{path}"))
    }
}

/// A message ready for a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: EventKind,
    pub severity: Severity,
    /// "Impossible travel: alice", "Plex is down".
    pub title: String,
    /// The evidence line.
    pub body: String,
    /// Facts as (label, value): User, Server, Rule, Severity, Event.
    pub facts: Vec<(&'static str, String)>,
    /// Absolute link to the page, if a public URL is configured.
    pub url: Option<String>,
    /// When it happened, Unix milliseconds.
    pub at: i64,
    /// True for "send test".
    pub is_test: bool,
}

impl Message {
    /// The body followed by the facts, one per line: for channels with plain text only.
    pub fn text(&self) -> String {
        let mut text = self.body.clone();
        if !self.facts.is_empty() {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            let facts: Vec<String> = self.facts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            text.push_str(&facts.join("\n"));
        }
        text
    }

    /// RFC 3339 UTC time of the event.
    pub fn at_rfc3339(&self) -> String {
        rfc3339(self.at)
    }
}

/// RFC 3339 UTC, second precision.
pub fn rfc3339(unix_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(unix_ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The title of an event: who or what, and what happened.
pub fn title(event: &Event) -> String {
    let user = event.user.as_ref().map_or("Someone", |u| u.name.as_str());
    let server = event.server.as_ref().map_or("A media server", |s| s.name.as_str());
    match event.kind {
        EventKind::Violation => match &event.rule {
            Some(rule) => format!("{}: {user}", rule.name),
            None => format!("Rule violation: {user}"),
        },
        EventKind::StreamStarted => format!("{user} started streaming"),
        EventKind::StreamStopped => format!("{user} stopped streaming"),
        EventKind::NewDevice => format!("New device for {user}"),
        EventKind::ServerDown => format!("{server} is down"),
        EventKind::ServerUp => format!("{server} is back up"),
        EventKind::TrustLow => format!("Low trust score: {user}"),
    }
}

/// Renders `event` for a channel.
pub fn render(event: &Event, links: &Links, is_test: bool) -> Message {
    let mut facts = Vec::new();
    if let Some(user) = &event.user {
        facts.push(("User", user.name.clone()));
    }
    if let Some(server) = &event.server {
        facts.push(("Server", server.name.clone()));
    }
    if let Some(rule) = &event.rule {
        facts.push(("Rule", rule.name.clone()));
    }
    facts.push(("Severity", event.severity.label().to_owned()));
    let title = if is_test { format!("Test: {}", title(event)) } else { title(event) };
    Message {
        kind: event.kind,
        severity: event.severity,
        title,
        body: one_line(&event.evidence),
        facts,
        url: event.link.as_deref().and_then(|path| links.absolute(path)),
        at: event.at,
        is_test,
    }
}

/// Collapses line breaks and runs of spaces: the evidence is one line everywhere.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters (Unicode scalar values), ending with `…` when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` bytes of UTF-8, cut on a character boundary, ending with `…` when cut.
pub fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let budget = max.saturating_sub('…'.len_utf8());
    let mut end = budget;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_use_the_public_url_with_its_base_path() {
        let links = Links::new(Some(Url::parse("https://sw.example.com/sw").unwrap()));
        assert_eq!(
            links.absolute("/violations/3").as_deref(),
            Some("https://sw.example.com/sw/violations/3")
        );
        assert_eq!(Links::new(None).absolute("/violations/3"), None);
    }

    #[test]
    fn titles_per_kind() {
        let e = |kind| Event::new(kind, "e").user(1, "alice").server(2, "Plex");
        let cases = [
            (e(EventKind::Violation).rule(3, "Impossible travel"), "Impossible travel: alice"),
            (e(EventKind::Violation), "Rule violation: alice"),
            (e(EventKind::StreamStarted), "alice started streaming"),
            (e(EventKind::StreamStopped), "alice stopped streaming"),
            (e(EventKind::NewDevice), "New device for alice"),
            (e(EventKind::ServerDown), "Plex is down"),
            (e(EventKind::ServerUp), "Plex is back up"),
            (e(EventKind::TrustLow), "Low trust score: alice"),
            (Event::new(EventKind::ServerDown, "x"), "A media server is down"),
        ];
        for (event, expected) in cases {
            assert_eq!(title(&event), expected);
        }
    }

    #[test]
    fn render_collects_facts_and_the_link() {
        let links = Links::new(Some(Url::parse("http://nas:8484").unwrap()));
        let event = Event::new(EventKind::Violation, "Berlin →\n Sydney")
            .user(1, "alice")
            .rule(3, "Travel")
            .severity(Severity::High)
            .link("/violations/9");
        let m = render(&event, &links, false);
        assert_eq!(m.body, "Berlin → Sydney");
        assert_eq!(m.url.as_deref(), Some("http://nas:8484/violations/9"));
        assert_eq!(m.text(), "Berlin → Sydney\n\nUser: alice\nRule: Travel\nSeverity: High");
        assert!(render(&event, &links, true).title.starts_with("Test: "));
    }

    #[test]
    fn truncation_counts_characters_or_bytes() {
        assert_eq!(truncate_chars("héllo", 5), "héllo");
        assert_eq!(truncate_chars("héllo!", 5), "héll…");
        assert_eq!(truncate_chars("héllo!", 5).chars().count(), 5);
        assert_eq!(truncate_bytes("abc", 3), "abc");
        // "é" is two bytes: the cut never splits it.
        let cut = truncate_bytes("aéééé", 7);
        assert!(cut.len() <= 7 && cut.ends_with('…'), "{cut}");
        assert_eq!(cut, "aé…");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
