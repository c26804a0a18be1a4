//! The live picture the poller publishes after every poll: what the dashboard, the API and
//! the SSE streams read. Readers never touch the poller's own state.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use crate::auth::model::Scope;
use crate::geo::Geo;
use crate::media::push::Realtime;
use crate::media::{ActiveSession, ServerKind};
use crate::time::Ms;

/// One live session as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveSession {
    /// The play's id (the API's session id); `None` only while the database is unwritable.
    pub play_id: Option<i64>,
    pub server_id: i64,
    pub server_name: String,
    pub server_kind: ServerKind,
    /// The media user's id, once stored.
    pub user_id: Option<i64>,
    /// Not yet confirmed: shown, not counted.
    pub pending: bool,
    /// Missing from the last poll: about to stop.
    pub fading: bool,
    pub session: ActiveSession,
    pub started_at: Ms,
    pub last_seen_at: Ms,
    /// Pause time so far, the current pause included.
    pub paused_ms: Ms,
    /// When the current pause began (rules on pause minutes read it).
    pub paused_since: Option<Ms>,
    pub is_local: bool,
    pub geo: Option<Geo>,
}

/// A server's health as the poller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    pub id: i64,
    pub name: String,
    pub kind: ServerKind,
    pub last_ok_at: Option<Ms>,
    pub last_error_at: Option<Ms>,
    pub last_error: Option<String>,
    pub consecutive_failures: i64,
    /// When the next poll of a failing server is due.
    pub next_attempt_at: Option<Ms>,
    /// Where the live picture comes from now: the server's push, or polling alone.
    pub realtime: Realtime,
    /// Since when (`None` before the first poll).
    pub realtime_since: Option<Ms>,
}

impl ServerStatus {
    pub fn is_healthy(&self) -> bool {
        self.consecutive_failures == 0
    }
}

/// Everything live, as of one poll.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveView {
    /// When it was made; 0 before the first poll.
    pub at: Ms,
    pub sessions: Vec<LiveSession>,
    pub servers: Vec<ServerStatus>,
}

impl LiveView {
    /// The sessions `scope` may see.
    pub fn visible(&self, scope: Scope) -> impl Iterator<Item = &LiveSession> {
        self.sessions.iter().filter(move |s| match scope {
            Scope::All => true,
            Scope::MediaUser(id) => s.user_id == Some(id),
            Scope::Nothing => false,
        })
    }

    pub fn session(&self, play_id: i64) -> Option<&LiveSession> {
        self.sessions.iter().find(|s| s.play_id == Some(play_id))
    }
}

/// Hands the latest [`LiveView`] to any number of readers.
pub struct LiveHub {
    tx: watch::Sender<Arc<LiveView>>,
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveHub {
    pub fn new() -> Self {
        Self { tx: watch::channel(Arc::new(LiveView::default())).0 }
    }

    pub fn current(&self) -> Arc<LiveView> {
        Arc::clone(&self.tx.borrow())
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<LiveView>> {
        self.tx.subscribe()
    }

    pub fn publish(&self, view: LiveView) {
        self.tx.send_replace(Arc::new(view));
    }
}
