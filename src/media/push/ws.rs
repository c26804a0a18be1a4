//! A WebSocket client over reqwest's own connection: the handshake is an HTTP/1.1 GET that
//! the server upgrades, so TLS, certificate checks and timeouts are those of every other
//! request; tungstenite only speaks the frames afterwards.

use reqwest::{StatusCode, Url};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The socket, after a successful handshake.
pub(super) type Socket = WebSocketStream<reqwest::Upgraded>;

/// Largest message we take: an Emby `Sessions` message for 40 devices is about 64 KB.
const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// Why a handshake failed.
pub(super) enum Refusal {
    /// The server answered, but not with an upgrade (a proxy that blocks them, a 404).
    Status(StatusCode),
    /// Nothing usable came back.
    Failed(String),
}

/// Opens a WebSocket at `url` (an `http(s)://` URL: the upgrade starts as plain HTTP).
pub(super) async fn connect(client: &reqwest::Client, url: Url) -> Result<Socket, Refusal> {
    let key = generate_key();
    let response = client
        .get(url)
        .version(reqwest::Version::HTTP_11)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", &key)
        .send()
        .await
        .map_err(|e| Refusal::Failed(super::describe(e)))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(Refusal::Status(response.status()));
    }
    let accept = response
        .headers()
        .get("Sec-WebSocket-Accept")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if accept.as_deref() != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(Refusal::Failed(
            "the server (or a proxy) answered the upgrade without the WebSocket handshake"
                .to_owned(),
        ));
    }
    let upgraded = response
        .upgrade()
        .await
        .map_err(|e| Refusal::Failed(format!("the upgrade failed: {}", super::describe(e))))?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    Ok(WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(config)).await)
}
