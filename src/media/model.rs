//! The vendor-neutral picture of a media server: what every client turns its payload into.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Which kind of media server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Plex,
    Jellyfin,
    Emby,
}

impl ServerKind {
    pub const ALL: [ServerKind; 3] = [ServerKind::Plex, ServerKind::Jellyfin, ServerKind::Emby];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Plex => "plex",
            ServerKind::Jellyfin => "jellyfin",
            ServerKind::Emby => "emby",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ServerKind::Plex => "Plex",
            ServerKind::Jellyfin => "Jellyfin",
            ServerKind::Emby => "Emby",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What is being played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    Movie,
    Episode,
    Track,
    /// Live TV.
    Live,
    /// A video clip that is library content (not a trailer or pre-roll).
    Clip,
    Other,
}

impl MediaType {
    pub const ALL: [MediaType; 6] =
        [Self::Movie, Self::Episode, Self::Track, Self::Live, Self::Clip, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Movie => "movie",
            Self::Episode => "episode",
            Self::Track => "track",
            Self::Live => "live",
            Self::Clip => "clip",
            Self::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Movie => "Movie",
            Self::Episode => "Episode",
            Self::Track => "Music",
            Self::Live => "Live TV",
            Self::Clip => "Clip",
            Self::Other => "Other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Playback state as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaybackState {
    Playing,
    Paused,
    Buffering,
}

impl PlaybackState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Playing => "playing",
            Self::Paused => "paused",
            Self::Buffering => "buffering",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "playing" => Some(Self::Playing),
            "paused" => Some(Self::Paused),
            "buffering" => Some(Self::Buffering),
            _ => None,
        }
    }
}

/// How the media reaches the player, from cheapest to most expensive for the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    DirectPlay,
    /// Remuxed or copied into another container, not re-encoded.
    DirectStream,
    Transcode,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DirectPlay => "direct_play",
            Self::DirectStream => "direct_stream",
            Self::Transcode => "transcode",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::DirectPlay => "Direct play",
            Self::DirectStream => "Direct stream",
            Self::Transcode => "Transcode",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::DirectPlay, Self::DirectStream, Self::Transcode]
            .into_iter()
            .find(|d| d.as_str() == s)
    }

    /// Combines the video and audio decisions ("transcode", "copy", "directplay"...).
    pub fn from_parts(video: Option<&str>, audio: Option<&str>) -> Self {
        let parts = [video, audio];
        let is = |words: &[&str]| {
            parts.iter().flatten().any(|p| words.iter().any(|w| p.eq_ignore_ascii_case(w)))
        };
        if is(&["transcode"]) {
            Self::Transcode
        } else if is(&["copy", "directstream", "direct stream"]) {
            Self::DirectStream
        } else {
            Self::DirectPlay
        }
    }
}

/// The account on the media server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    /// The server's id for the user (Plex account id, Jellyfin/Emby user Id).
    pub external_id: String,
    pub name: String,
    pub thumb: Option<String>,
}

/// The item being played.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Item {
    /// Plex ratingKey, Jellyfin/Emby item Id.
    pub id: String,
    /// The show (for episodes) or artist (for tracks).
    pub grandparent_id: Option<String>,
    pub media_type: Option<MediaType>,
    pub title: String,
    /// Season or album.
    pub parent_title: Option<String>,
    /// Show or artist.
    pub grandparent_title: Option<String>,
    pub season: Option<i64>,
    pub episode: Option<i64>,
    pub year: Option<i64>,
    pub library_id: Option<String>,
    pub library_name: Option<String>,
    /// Path of the poster image on the media server.
    pub thumb: Option<String>,
    /// Runtime in milliseconds.
    pub duration_ms: Option<i64>,
}

/// The client device.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Player {
    /// Stable per device: Plex `machineIdentifier`, Jellyfin/Emby `DeviceId`.
    pub device_id: String,
    /// The device's name ("Living Room TV").
    pub name: Option<String>,
    /// The client application ("Plex for Android (TV)", "Jellyfin Web").
    pub product: Option<String>,
    /// The operating system or platform ("Android", "Chrome").
    pub platform: Option<String>,
    pub version: Option<String>,
}

/// Quality and how the stream is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub decision: Decision,
    /// "transcode", "copy" or "direct play".
    pub video_decision: Option<String>,
    pub audio_decision: Option<String>,
    /// Why the server transcodes, in its own words.
    #[serde(default)]
    pub transcode_reasons: Vec<String>,
    #[serde(default)]
    pub hw_decode: bool,
    #[serde(default)]
    pub hw_encode: bool,
    /// "SD", "480p", "720p", "1080p", "4K"...
    pub source_resolution: Option<String>,
    pub stream_resolution: Option<String>,
    pub source_video_codec: Option<String>,
    pub stream_video_codec: Option<String>,
    pub source_audio_codec: Option<String>,
    pub stream_audio_codec: Option<String>,
    pub container: Option<String>,
    /// Bitrate of the source file, in kbit/s.
    pub source_bitrate_kbps: Option<i64>,
    /// What the stream uses, in kbit/s.
    pub bandwidth_kbps: Option<i64>,
}

impl Default for StreamInfo {
    fn default() -> Self {
        Self {
            decision: Decision::DirectPlay,
            video_decision: None,
            audio_decision: None,
            transcode_reasons: Vec::new(),
            hw_decode: false,
            hw_encode: false,
            source_resolution: None,
            stream_resolution: None,
            source_video_codec: None,
            stream_video_codec: None,
            source_audio_codec: None,
            stream_audio_codec: None,
            container: None,
            source_bitrate_kbps: None,
            bandwidth_kbps: None,
        }
    }
}

/// One live playback on a media server, as of one poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveSession {
    /// The server's key for this playback (Plex sessionKey, Jellyfin/Emby session Id).
    pub session_id: String,
    /// The id the server wants to stop or message it (Plex `Session@id`).
    pub control_id: Option<String>,
    pub user: UserRef,
    pub item: Item,
    pub player: Player,
    /// Where the player connects from, as the server sees it.
    pub ip: Option<IpAddr>,
    /// The server itself says the player is on its LAN (Plex only).
    pub server_says_local: bool,
    pub state: PlaybackState,
    /// Position in the item, milliseconds.
    pub progress_ms: Option<i64>,
    pub stream: StreamInfo,
    /// Whether the server accepts stop and message commands for this session.
    pub can_control: bool,
}

/// What a connection test learns about a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerIdentity {
    /// The name the server gives itself.
    pub name: Option<String>,
    pub version: Option<String>,
    /// Plex machineIdentifier, Jellyfin/Emby server Id.
    pub machine_id: Option<String>,
}

/// A user account listed by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerUser {
    pub external_id: String,
    pub name: String,
    pub is_admin: bool,
}

/// A label for a video height: the way people name resolutions.
pub fn resolution_from_height(height: i64) -> Option<String> {
    let label = match height {
        h if h <= 0 => return None,
        h if h < 400 => "SD",
        h if h < 540 => "480p",
        h if h < 700 => "576p",
        h if h < 1000 => "720p",
        h if h < 1500 => "1080p",
        h if h < 2000 => "1440p",
        h if h < 4000 => "4K",
        _ => "8K",
    };
    Some(label.to_owned())
}

/// Normalizes Plex's `videoResolution` ("720", "1080", "4k", "sd", "720p") to our labels.
pub fn resolution_from_label(label: &str) -> Option<String> {
    let l = label.trim().to_ascii_lowercase();
    let l = l.trim_end_matches('p');
    match l {
        "" => None,
        "sd" => Some("SD".to_owned()),
        "4k" | "2160" => Some("4K".to_owned()),
        "8k" | "4320" => Some("8K".to_owned()),
        _ => l.parse::<i64>().ok().and_then(resolution_from_height),
    }
}

/// Rank of a resolution label, for "is this a downgrade" comparisons.
pub fn resolution_rank(label: &str) -> Option<u8> {
    Some(match label {
        "SD" => 1,
        "480p" => 2,
        "576p" => 3,
        "720p" => 4,
        "1080p" => 5,
        "1440p" => 6,
        "4K" => 7,
        "8K" => 8,
        _ => return None,
    })
}

/// A bitrate or bandwidth as servers report it, kept only when it is one: servers write `-1`
/// or `0` for "unknown", and a negative figure must never reach a page or a total.
pub fn positive(kbps: Option<i64>) -> Option<i64> {
    kbps.filter(|v| *v > 0)
}

/// Parses an address as servers write it: with a port, in brackets, IPv4-mapped IPv6.
pub fn parse_ip(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let ip = if let Ok(ip) = raw.parse::<IpAddr>() {
        ip
    } else if let Ok(sock) = raw.parse::<std::net::SocketAddr>() {
        sock.ip()
    } else if let Some((host, port)) = raw.rsplit_once(':') {
        // "1.2.3.4:5678" was handled above; this catches "[::1]" without a port.
        if port.chars().all(|c| c.is_ascii_digit()) {
            host.trim_matches(['[', ']']).parse().ok()?
        } else {
            raw.trim_matches(['[', ']']).parse().ok()?
        }
    } else {
        return None;
    };
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_combine_video_and_audio() {
        assert_eq!(Decision::from_parts(Some("copy"), Some("transcode")), Decision::Transcode);
        assert_eq!(Decision::from_parts(Some("copy"), Some("copy")), Decision::DirectStream);
        assert_eq!(Decision::from_parts(Some("directplay"), None), Decision::DirectPlay);
        assert_eq!(Decision::from_parts(None, None), Decision::DirectPlay);
        assert_eq!(Decision::parse("direct_stream"), Some(Decision::DirectStream));
    }

    #[test]
    fn resolutions() {
        for (raw, label) in [
            ("720", "720p"),
            ("1080", "1080p"),
            ("4k", "4K"),
            ("sd", "SD"),
            ("SD", "SD"),
            ("576p", "576p"),
            ("480", "480p"),
        ] {
            assert_eq!(resolution_from_label(raw).as_deref(), Some(label), "{raw}");
        }
        assert_eq!(resolution_from_label(""), None);
        assert_eq!(resolution_from_height(544).as_deref(), Some("576p"));
        assert_eq!(resolution_from_height(1080).as_deref(), Some("1080p"));
        assert_eq!(resolution_from_height(2160).as_deref(), Some("4K"));
        assert!(resolution_rank("4K") > resolution_rank("1080p"));
    }

    #[test]
    fn addresses_as_servers_write_them() {
        let cases = [
            ("1.2.3.4", "1.2.3.4"),
            ("1.2.3.4:51234", "1.2.3.4"),
            ("[2001:db8::1]:8096", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("::ffff:81.2.69.142", "81.2.69.142"),
            ("[::ffff:10.0.0.2]:1", "10.0.0.2"),
            (" 10.0.0.1 ", "10.0.0.1"),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_ip(raw).map(|i| i.to_string()).as_deref(), Some(want), "{raw}");
        }
        assert_eq!(parse_ip(""), None);
        assert_eq!(parse_ip("not-an-ip"), None);
    }
}
