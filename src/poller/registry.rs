//! Clients for the configured servers, built once and rebuilt when a server changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::crypto::SecretBox;
use crate::db::servers::{ServerRow, TOKEN_PURPOSE};
use crate::error::{AppError, AppResult};
use crate::media::{self, Connection, MediaServer};

/// A built client and the `updated_at` of the server row it was built from.
type CachedClient = (i64, Arc<dyn MediaServer>);

/// Builds and caches media clients; tells the poller when servers or settings change.
pub struct Registry {
    secrets: SecretBox,
    /// Per server: the `updated_at` the client was built for, and the client.
    clients: Mutex<HashMap<i64, CachedClient>>,
    version: AtomicU64,
    /// Wakes the poller at once ("poll now", or a server was added).
    pub wake: Arc<Notify>,
}

impl Registry {
    pub fn new(secrets: SecretBox) -> Self {
        Self {
            secrets,
            clients: Mutex::new(HashMap::new()),
            version: AtomicU64::new(1),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The client for `server`, built if it is new or changed since.
    pub fn client(&self, server: &ServerRow) -> AppResult<Arc<dyn MediaServer>> {
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((built_for, client)) = clients.get(&server.id)
            && *built_for == server.updated_at
        {
            return Ok(Arc::clone(client));
        }
        let client =
            media::connect(&self.connection(server)?).map_err(|e| e.for_server(&server.name))?;
        clients.insert(server.id, (server.updated_at, Arc::clone(&client)));
        Ok(client)
    }

    /// How to reach `server`, its token unsealed.
    pub fn connection(&self, server: &ServerRow) -> AppResult<Connection> {
        let token = self.secrets.open(TOKEN_PURPOSE, &server.token_sealed).map_err(|e| {
            AppError::Unavailable(format!(
                "the token of server {:?} cannot be read: {e}",
                server.name
            ))
        })?;
        Ok(Connection {
            kind: server.kind,
            url: server.url.clone(),
            token,
            verify_tls: server.verify_tls,
        })
    }

    /// Something the poller reads changed (servers, tracking settings): it reloads and polls.
    pub fn changed(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }
}
