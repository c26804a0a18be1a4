//! Media server clients: Plex, and Jellyfin/Emby (one module, differences explicit).
//!
//! Each client turns the vendor's payload into [`model::ActiveSession`]s. A malformed or
//! unexpected payload is an error for that poll, never a panic; unknown fields are ignored
//! and missing optional ones are `None`.

pub mod http;
pub mod jellyfin;
pub mod library;
pub mod model;
pub mod plex;
pub mod push;
pub mod tree;

#[cfg(test)]
mod fixture_tests;

use std::sync::Arc;

use crate::error::AppError;
pub use library::{ItemSink, Library, LibraryItem, Listed, Removed};
pub use model::{ActiveSession, ServerIdentity, ServerKind, ServerUser};

/// What went wrong talking to a media server. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("the server URL is not usable: {0}")]
    BadUrl(String),
    #[error("{0}")]
    BadToken(String),
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("the server did not answer within {0} seconds")]
    Timeout(u64),
    #[error("the server refused the token (HTTP {0}): check the token")]
    Unauthorized(u16),
    #[error("the server answered HTTP {status}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Status { status: u16, detail: String },
    #[error("the server's answer could not be understood: {0}")]
    Malformed(String),
    #[error("the server's answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The server, or we on its behalf, will not do this (with the reason).
    #[error("{0}")]
    Refused(String),
    #[error("{0} is not possible on this kind of server")]
    Unsupported(&'static str),
}

impl MediaError {
    /// The error as the web tier reports it, naming the server.
    pub fn for_server(self, server: &str) -> AppError {
        match self {
            MediaError::BadUrl(message) => AppError::validation("url", message),
            MediaError::BadToken(message) => AppError::validation("token", message),
            other => AppError::Upstream { server: server.to_owned(), message: other.to_string() },
        }
    }
}

/// An image fetched from a media server.
pub struct Image {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What every client can do.
#[rocket::async_trait]
pub trait MediaServer: Send + Sync {
    fn kind(&self) -> ServerKind;

    /// Checks the URL and token, and learns the server's name and version.
    async fn identify(&self) -> Result<ServerIdentity, MediaError>;

    /// The live playbacks, trailers and pre-rolls left out.
    async fn sessions(&self) -> Result<Vec<ActiveSession>, MediaError>;

    /// The accounts on the server.
    async fn users(&self) -> Result<Vec<ServerUser>, MediaError>;

    /// Stops a playback, showing `message` to the viewer where the server can.
    async fn terminate(&self, session: &ActiveSession, message: &str) -> Result<(), MediaError>;

    /// Shows a message on the client (Jellyfin and Emby; Plex has no such call).
    async fn message(
        &self,
        session: &ActiveSession,
        header: &str,
        text: &str,
    ) -> Result<(), MediaError>;

    /// Fetches an image by the path a session gave (posters).
    async fn image(&self, path: &str) -> Result<Image, MediaError>;

    /// The libraries on the server (Plex sections, Jellyfin and Emby virtual folders).
    async fn libraries(&self) -> Result<Vec<Library>, MediaError>;

    /// Reads the items of a movie or show library page by page into `sink`: movies, or
    /// shows with their seasons and episodes (sizes and resolutions on the episodes).
    async fn library_items(
        &self,
        library: &Library,
        sink: &mut dyn ItemSink,
    ) -> Result<Listed, MediaError>;

    /// How many items a library has, by the server's count (for libraries whose items are
    /// not synced: music and others).
    async fn library_count(&self, library: &Library) -> Result<u64, MediaError>;

    /// Deletes an item (a movie, a show, a season) from the server and its disk. An item
    /// the server no longer has is [`Removed::AlreadyGone`], not an error.
    async fn delete_item(&self, external_id: &str) -> Result<Removed, MediaError>;
}

/// How to reach one server.
#[derive(Clone)]
pub struct Connection {
    pub kind: ServerKind,
    pub url: String,
    pub token: String,
    pub verify_tls: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("verify_tls", &self.verify_tls)
            .finish_non_exhaustive()
    }
}

/// A client for `connection`.
pub fn connect(connection: &Connection) -> Result<Arc<dyn MediaServer>, MediaError> {
    Ok(match connection.kind {
        ServerKind::Plex => Arc::new(plex::PlexClient::new(connection)?),
        ServerKind::Jellyfin | ServerKind::Emby => {
            Arc::new(jellyfin::JellyfinClient::new(connection)?)
        }
    })
}
