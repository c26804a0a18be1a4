//! Real time from the servers themselves: what each server pushes, read and turned into
//! [`Signal`]s. Polling stays the ground truth; a push only says *look now* (or, for a
//! session we already know, where it is now).
//!
//! | server | source | endpoint |
//! |---|---|---|
//! | Plex | event stream (SSE) | `GET /:/eventsource/notifications?filters=playing,...`, `ping` every 10 s |
//! | Jellyfin, Emby with the Tracearr SSE plugin | SSE | `GET /api/sse/events` (Jellyfin), `/emby/sse/events` (Emby), `hello` first, `ping` every 30 s |
//! | Jellyfin | WebSocket | `/socket`, `SessionsStart "0,1500"`, `Sessions`, `KeepAlive` |
//! | Emby | WebSocket | `/embywebsocket?api_key=..&deviceId=..`, the same messages |
//!
//! [`follow`] keeps one source connected until it is dropped: it reconnects with backoff
//! and jitter, and a source that falls silent past its keep-alive is dropped at once
//! ([`Signal::Down`]), so the poller takes over without waiting for a TCP timeout. A
//! source counts as up ([`Signal::Up`]) only once it has shown that it delivers: Plex's
//! stream by its first event (a ping, every 10 s, at the latest), the SSE plugin by its
//! `hello`, a WebSocket by its first `Sessions` message (Jellyfin withholds them from API
//! keys in some versions, jellyfin#13479).

mod emby;
mod plex;
pub mod sse;
mod ws;

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderMap;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use super::{ActiveSession, Connection, MediaError, ServerKind, http};

/// Where a server's live picture comes from, as the dashboard and the API name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Realtime {
    WebSocket,
    Sse,
    Polling,
}

impl Realtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Sse => "sse",
            Self::Polling => "polling",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::WebSocket => "WebSocket",
            Self::Sse => "event stream",
            Self::Polling => "polling",
        }
    }
}

/// What a push source tells.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Connected, and shown to deliver session news.
    Up(Realtime),
    /// The connection ended or fell silent (why, in words without the token).
    Down(String),
    /// Sessions changed in a way only the session list tells: read it now.
    Changed,
    /// News of one session.
    Note(Note),
    /// The whole session list, as the server pushed it (Jellyfin and Emby WebSocket).
    Snapshot(Vec<ActiveSession>),
}

/// One session's news, in the session list's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The session key of the session list (Plex `sessionKey`, Jellyfin/Emby session `Id`).
    pub session_id: String,
    /// The item as the session list names it, when the source uses the same ids.
    pub item_id: Option<String>,
    pub state: NoteState,
    /// Position, milliseconds.
    pub position_ms: Option<i64>,
}

/// What happened to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteState {
    /// Playback (re)started: a new session, or a new item on one.
    Started,
    Playing,
    Paused,
    Buffering,
    Stopped,
}

impl NoteState {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "playing" => Some(Self::Playing),
            "paused" => Some(Self::Paused),
            "buffering" => Some(Self::Buffering),
            "stopped" => Some(Self::Stopped),
            _ => None,
        }
    }
}

/// How long to wait for what; the defaults fit the servers' own cadences, tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Plex pings every 10 s: nothing understood for this long and the stream is dead.
    pub plex_keepalive: Duration,
    /// The SSE plugin pings every 30 s.
    pub plugin_keepalive: Duration,
    /// We ping a WebSocket (and send `KeepAlive`) this often...
    pub ws_ping_every: Duration,
    /// ...and drop it when nothing came back for this long.
    pub ws_keepalive: Duration,
    /// A WebSocket that sent no `Sessions` yet gets `SessionsStart` once more after this
    /// (Emby sometimes ignores the first).
    pub ws_resubscribe_after: Duration,
    /// Connecting (TCP, TLS, the answer's head) must not take longer.
    pub connect_timeout: Duration,
    /// Reconnect backoff: from this...
    pub reconnect_min: Duration,
    /// ...doubling up to this (with jitter).
    pub reconnect_max: Duration,
    /// A connection that stayed up this long resets the backoff.
    pub stable_after: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            plex_keepalive: Duration::from_secs(30),
            plugin_keepalive: Duration::from_secs(75),
            ws_ping_every: Duration::from_secs(15),
            ws_keepalive: Duration::from_secs(35),
            ws_resubscribe_after: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_mins(1),
            stable_after: Duration::from_mins(1),
        }
    }
}

/// How a connection ended.
#[derive(Debug)]
struct Ended {
    reason: String,
    /// Whether it had been up (delivering), so the backoff knows it was not a refusal.
    was_up: bool,
}

impl Ended {
    fn before_up(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), was_up: false }
    }
}

/// Follows the push of `connection` until dropped, telling `signals` what it hears.
/// Never returns on its own: a source that ends is reconnected, with backoff and jitter.
pub async fn follow(connection: Connection, timing: Timing, signals: UnboundedSender<Signal>) {
    let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let mut failures: u32 = 0;
    loop {
        let began = tokio::time::Instant::now();
        let ended = match connection.kind {
            ServerKind::Plex => plex::session(&connection, &timing, &signals).await,
            ServerKind::Jellyfin | ServerKind::Emby => {
                emby::session(&connection, &timing, &signals).await
            }
        };
        if signals.send(Signal::Down(ended.reason.clone())).is_err() {
            return;
        }
        if ended.was_up && began.elapsed() >= timing.stable_after {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        tracing::debug!(reason = %ended.reason, failures, "push source ended; reconnecting");
        tokio::time::sleep(backoff(failures, &timing, seed)).await;
    }
}

/// The wait before try `failures` + 1: doubling from the minimum, capped, with jitter so
/// that servers (and instances) that dropped together do not come back together. The
/// jitter keeps it within [half, all] of the doubled delay.
fn backoff(failures: u32, timing: &Timing, seed: u64) -> Duration {
    let doubled = timing.reconnect_min.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let full = doubled.min(timing.reconnect_max);
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write_u64(seed);
    hasher.write_u32(failures);
    let fraction =
        f64::from(u32::try_from(hasher.finish() >> 32).unwrap_or(0)) / f64::from(u32::MAX);
    full.mul_f64(0.5 + fraction / 2.0)
}

/// The HTTP client of a push connection: one request that lasts, so no whole-request
/// timeout (the keep-alive watches it instead); HTTP/1.1 only (a WebSocket upgrade cannot
/// ride HTTP/2); no redirects (a token never follows one); the server's TLS setting.
fn client(
    connection: &Connection,
    headers: HeaderMap,
    timing: &Timing,
) -> Result<reqwest::Client, MediaError> {
    reqwest::Client::builder()
        .connect_timeout(timing.connect_timeout)
        .http1_only()
        .tcp_keepalive(Duration::from_secs(30))
        .default_headers(headers)
        .user_agent(concat!("Streamwarden/", env!("CARGO_PKG_VERSION")))
        .danger_accept_invalid_certs(!connection.verify_tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| MediaError::Unreachable(format!("cannot build an HTTP client: {e}")))
}

/// `path` under the server's URL (which may have a sub-path), with `query`.
fn url(connection: &Connection, path: &str, query: &[(&str, &str)]) -> Result<Url, MediaError> {
    let mut url = http::parse_base_url(&connection.url)?;
    let joined = format!("{}{path}", url.path().trim_end_matches('/'));
    url.set_path(&joined);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// A transport error in words, never with the URL (an Emby WebSocket URL holds the key).
fn describe(e: reqwest::Error) -> String {
    if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        let mut detail = String::from("connection failed");
        while let Some(err) = source {
            detail = err.to_string();
            source = err.source();
        }
        return format!("cannot connect: {detail}");
    }
    e.without_url().to_string()
}

/// A refusal by status, in words.
fn refused(status: reqwest::StatusCode, what: &str) -> String {
    match status.as_u16() {
        401 | 403 => format!("the server refused the token for {what} (HTTP {})", status.as_u16()),
        301..=308 => format!(
            "the server redirected {what} (HTTP {}); set the server URL to where it points",
            status.as_u16()
        ),
        code => format!("{what} answered HTTP {code}"),
    }
}

/// Reads an SSE response until it ends, feeding each event to `on_event`, which says
/// whether it understood it. Only understood events count as signs of life: a stream of
/// garbage goes silent for the keep-alive and is dropped like a dead one.
async fn read_events(
    mut response: reqwest::Response,
    keepalive: Duration,
    mut on_event: impl FnMut(sse::Event) -> bool,
) -> String {
    let mut reader = sse::Reader::new();
    let mut deadline = tokio::time::Instant::now() + keepalive;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => {
                return format!(
                    "nothing understood for {} s (keep-alive lost)",
                    keepalive.as_secs()
                );
            }
            Ok(Err(e)) => return format!("the event stream broke off: {}", describe(e)),
            Ok(Ok(None)) => return "the server closed the event stream".to_owned(),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let events = match reader.feed(&chunk) {
            Ok(events) => events,
            Err(sse::LineTooLong) => return "the event stream sent a line without end".to_owned(),
        };
        for event in events {
            if on_event(event) {
                deadline = tokio::time::Instant::now() + keepalive;
            }
        }
    }
}

/// A `Started`/`Playing`... note from a server's words, positions in milliseconds.
fn note(
    session_id: &str,
    item_id: Option<&str>,
    state: NoteState,
    position_ms: Option<i64>,
) -> Signal {
    Signal::Note(Note {
        session_id: session_id.to_owned(),
        item_id: item_id.filter(|i| !i.is_empty()).map(str::to_owned),
        state,
        position_ms: position_ms.filter(|p| *p >= 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_within_half_to_all() {
        let timing = Timing::default();
        for seed in [1, 2, 3, 99] {
            let waits: Vec<Duration> = (1..=10).map(|n| backoff(n, &timing, seed)).collect();
            for (n, wait) in (1..=10).zip(&waits) {
                let full = (Duration::from_secs(1) * (1 << (n - 1))).min(Duration::from_mins(1));
                assert!(*wait >= full / 2 && *wait <= full, "try {n}: {wait:?} of {full:?}");
            }
        }
        // Two instances that failed together wait differently.
        assert_ne!(backoff(3, &timing, 1), backoff(3, &timing, 2));
    }

    #[test]
    fn urls_keep_the_sub_path_and_names_are_stable() {
        let c = Connection {
            kind: ServerKind::Jellyfin,
            url: "https://media.example.com/jellyfin/".into(),
            token: "t".into(),
            verify_tls: true,
        };
        assert_eq!(
            url(&c, "/socket", &[("deviceId", "sw")]).unwrap().as_str(),
            "https://media.example.com/jellyfin/socket?deviceId=sw"
        );
        assert_eq!(
            [Realtime::WebSocket, Realtime::Sse, Realtime::Polling].map(Realtime::as_str),
            ["websocket", "sse", "polling"]
        );
    }
}
