//! What the web tier (and later the rules) may ask of live sessions: read them, poll now,
//! stop one, message one. Managed state; the poller itself stays private to its loop.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::live::{LiveHub, LiveSession, LiveView};
use super::registry::Registry;
use super::{Command, tracker::LiveKey};
use crate::db::{Db, servers};
use crate::error::{AppError, AppResult};

pub struct Control {
    pub hub: Arc<LiveHub>,
    pub registry: Arc<Registry>,
    db: Db,
    commands: mpsc::UnboundedSender<Command>,
}

impl Control {
    pub fn new(
        db: Db,
        hub: Arc<LiveHub>,
        registry: Arc<Registry>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Self {
        Self { hub, registry, db, commands }
    }

    pub fn live(&self) -> Arc<LiveView> {
        self.hub.current()
    }

    /// Wakes the poller for an immediate poll.
    pub fn poll_now(&self) {
        self.registry.wake.notify_one();
    }

    fn live_session(&self, play_id: i64) -> AppResult<LiveSession> {
        self.live()
            .session(play_id)
            .cloned()
            .ok_or_else(|| AppError::not_found(format!("live session {play_id}")))
    }

    async fn client_for(
        &self,
        session: &LiveSession,
    ) -> AppResult<Arc<dyn crate::media::MediaServer>> {
        let server_id = session.server_id;
        let server = self
            .db
            .read(move |conn| servers::get(conn, server_id))
            .await?
            .ok_or_else(|| AppError::not_found(format!("server {server_id}")))?;
        self.registry.client(&server)
    }

    /// Stops a live stream on its media server, showing `message` where the server can,
    /// and ends the play at once. Returns the session as it was.
    pub async fn terminate(&self, play_id: i64, message: &str) -> AppResult<LiveSession> {
        let live = self.live_session(play_id)?;
        let client = self.client_for(&live).await?;
        client
            .terminate(&live.session, message)
            .await
            .map_err(|e| e.for_server(&live.server_name))?;
        let key =
            LiveKey { server_id: live.server_id, session_id: live.session.session_id.clone() };
        // The loop may be gone at shutdown; the next poll would see the stop anyway.
        let _ = self.commands.send(Command::Terminated(key));
        self.poll_now();
        Ok(live)
    }

    /// Shows a message on the client of a live stream (Jellyfin and Emby).
    pub async fn message(&self, play_id: i64, header: &str, text: &str) -> AppResult<LiveSession> {
        let live = self.live_session(play_id)?;
        let client = self.client_for(&live).await?;
        client
            .message(&live.session, header, text)
            .await
            .map_err(|e| e.for_server(&live.server_name))?;
        Ok(live)
    }
}
