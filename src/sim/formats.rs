//! The simulated world written in each vendor's exact format: Plex XML and JSON (the shapes
//! of the captures in `tests/fixtures/plex`), Jellyfin and Emby JSON (their OpenAPI
//! `SessionInfoDto` / `Session.SessionInfo`, as in `tests/fixtures/{jellyfin,emby}`).

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::world::{SimPlay, SimServer, World};
use crate::media::ServerKind;
use crate::media::model::MediaType;

/// Escapes an XML attribute value.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

fn plex_type(kind: MediaType) -> &'static str {
    match kind {
        MediaType::Episode => "episode",
        MediaType::Track => "track",
        MediaType::Clip => "clip",
        _ => "movie",
    }
}

fn plex_resolution(height: i64) -> String {
    match height {
        h if h >= 2000 => "4k".to_owned(),
        h if h < 480 => "sd".to_owned(),
        h => h.to_string(),
    }
}

/// What the stream looks like on the wire: (height, video codec, bitrate kbps).
fn delivered(p: &SimPlay) -> (i64, String, i64) {
    if p.transcode {
        (720, "h264".to_owned(), 4_000)
    } else {
        (p.item.height, p.item.video_codec.clone(), p.item.bitrate_kbps)
    }
}

/// One session as a list of (name, value) attributes per element, shared by XML and JSON.
struct PlexSession {
    tag: &'static str,
    item: Vec<(&'static str, String)>,
    media: Vec<(&'static str, String)>,
    part: Vec<(&'static str, String)>,
    streams: Vec<Vec<(&'static str, String)>>,
    user: Vec<(&'static str, String)>,
    player: Vec<(&'static str, String)>,
    session: Vec<(&'static str, String)>,
    transcode: Option<Vec<(&'static str, String)>>,
}

fn plex_session(p: &SimPlay) -> PlexSession {
    let it = &p.item;
    let (height, video_codec, bitrate) = delivered(p);
    let mut item = vec![
        ("ratingKey", it.id.clone()),
        ("key", format!("/library/metadata/{}", it.id)),
        ("sessionKey", p.session_key.clone()),
        ("type", plex_type(it.kind).to_owned()),
        ("title", it.title.clone()),
        ("librarySectionID", "1".to_owned()),
        ("librarySectionTitle", it.library.clone()),
        ("duration", it.duration_ms.to_string()),
        ("viewOffset", p.position_ms.to_string()),
        ("thumb", format!("/library/metadata/{}/thumb/1700000000", it.id)),
        ("addedAt", "1700000000".to_owned()),
    ];
    if let Some(year) = it.year {
        item.push(("year", year.to_string()));
    }
    if let Some((parent_id, parent)) = &it.parent {
        item.push(("grandparentTitle", parent.clone()));
        item.push(("grandparentRatingKey", parent_id.clone()));
        item.push(("grandparentThumb", format!("/library/metadata/{parent_id}/thumb/1700000000")));
    }
    if let (Some(s), Some(e)) = (it.season, it.episode) {
        item.push(("parentIndex", s.to_string()));
        item.push(("index", e.to_string()));
        item.push(("parentTitle", format!("Season {s}")));
    }
    let is_video = it.kind != MediaType::Track;
    let mut media = vec![
        ("id", format!("9{}", it.id)),
        ("container", if is_video { "mkv" } else { "flac" }.to_owned()),
        ("audioCodec", it.audio_codec.clone()),
        ("bitrate", bitrate.to_string()),
        ("selected", "1".to_owned()),
    ];
    if is_video {
        media.push(("videoCodec", video_codec));
        media.push(("videoResolution", plex_resolution(height)));
        media.push(("height", height.to_string()));
    }
    let part = vec![
        ("id", format!("8{}", it.id)),
        ("decision", if p.transcode { "transcode" } else { "directplay" }.to_owned()),
        ("selected", "1".to_owned()),
    ];
    let mut streams = Vec::new();
    if is_video {
        streams.push(vec![
            ("streamType", "1".to_owned()),
            ("codec", it.video_codec.clone()),
            ("height", it.height.to_string()),
            ("decision", if p.transcode { "transcode" } else { "directplay" }.to_owned()),
        ]);
    }
    streams.push(vec![
        ("streamType", "2".to_owned()),
        ("codec", it.audio_codec.clone()),
        ("selected", "1".to_owned()),
        ("decision", if p.transcode { "copy" } else { "directplay" }.to_owned()),
    ]);
    let ip = p.ip.to_string();
    let player = vec![
        ("address", if p.local { ip.clone() } else { "10.0.0.1".to_owned() }),
        ("remotePublicAddress", ip),
        ("local", if p.local { "1" } else { "0" }.to_owned()),
        ("machineIdentifier", p.device.id.clone()),
        ("title", p.device.name.clone()),
        ("product", p.device.product.clone()),
        ("platform", p.device.platform.clone()),
        ("state", if p.paused { "paused" } else { "playing" }.to_owned()),
        ("version", "10.1.0".to_owned()),
    ];
    PlexSession {
        tag: if is_video { "Video" } else { "Track" },
        item,
        media,
        part,
        streams,
        user: vec![
            ("id", p.user.id.clone()),
            ("title", p.user.name.clone()),
            ("thumb", format!("https://plex.tv/users/{}/avatar", p.user.id)),
        ],
        player,
        session: vec![
            ("id", p.control_id.clone()),
            ("bandwidth", (bitrate + 300).to_string()),
            ("location", if p.local { "lan" } else { "wan" }.to_owned()),
        ],
        transcode: p.transcode.then(|| {
            vec![
                ("key", format!("/transcode/sessions/{}", p.control_id)),
                ("videoDecision", "transcode".to_owned()),
                ("audioDecision", "copy".to_owned()),
                ("sourceVideoCodec", it.video_codec.clone()),
                ("videoCodec", "h264".to_owned()),
                ("audioCodec", it.audio_codec.clone()),
                ("height", "720".to_owned()),
                ("width", "1280".to_owned()),
                ("container", "mpegts".to_owned()),
                ("transcodeHwRequested", "1".to_owned()),
                ("transcodeHwDecoding", "vaapi".to_owned()),
                ("transcodeHwEncoding", "vaapi".to_owned()),
            ]
        }),
    }
}

fn attrs(list: &[(&'static str, String)]) -> String {
    list.iter().fold(String::new(), |mut out, (k, v)| {
        let _ = write!(out, " {k}=\"{}\"", esc(v));
        out
    })
}

/// `GET /status/sessions` as XML.
pub fn plex_sessions_xml(world: &World, server: usize) -> String {
    let sessions: Vec<PlexSession> = world.plays_on(server).map(plex_session).collect();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"{}\">\n",
        sessions.len()
    );
    for s in &sessions {
        let _ = writeln!(out, "<{}{}>", s.tag, attrs(&s.item));
        let _ = writeln!(out, "<Media{}>\n<Part{}>", attrs(&s.media), attrs(&s.part));
        for stream in &s.streams {
            let _ = writeln!(out, "<Stream{} />", attrs(stream));
        }
        let _ = writeln!(out, "</Part>\n</Media>");
        let _ = writeln!(out, "<User{} />", attrs(&s.user));
        let _ = writeln!(out, "<Player{} />", attrs(&s.player));
        let _ = writeln!(out, "<Session{} />", attrs(&s.session));
        if let Some(t) = &s.transcode {
            let _ = writeln!(out, "<TranscodeSession{} />", attrs(t));
        }
        let _ = writeln!(out, "</{}>", s.tag);
    }
    out.push_str("</MediaContainer>\n");
    out
}

/// `GET /status/sessions` with `Accept: application/json`. Like real servers, most numbers
/// are strings and the Player booleans are booleans.
pub fn plex_sessions_json(world: &World, server: usize) -> Value {
    let object = |list: &[(&'static str, String)]| -> serde_json::Map<String, Value> {
        list.iter()
            .map(|(k, v)| {
                let value = match *k {
                    "local" => Value::Bool(v == "1"),
                    _ => Value::String(v.clone()),
                };
                ((*k).to_owned(), value)
            })
            .collect()
    };
    let metadata: Vec<Value> = world
        .plays_on(server)
        .map(plex_session)
        .map(|s| {
            let mut item = object(&s.item);
            let mut part = object(&s.part);
            part.insert(
                "Stream".into(),
                Value::Array(s.streams.iter().map(|st| Value::Object(object(st))).collect()),
            );
            let mut media = object(&s.media);
            media.insert("Part".into(), json!([part]));
            item.insert("Media".into(), json!([media]));
            item.insert("User".into(), Value::Object(object(&s.user)));
            item.insert("Player".into(), Value::Object(object(&s.player)));
            item.insert("Session".into(), Value::Object(object(&s.session)));
            if let Some(t) = &s.transcode {
                item.insert("TranscodeSession".into(), Value::Object(object(t)));
            }
            Value::Object(item)
        })
        .collect();
    json!({ "MediaContainer": { "size": metadata.len(), "Metadata": metadata } })
}

/// `GET /` (and `/identity`): who the server is.
pub fn plex_identity(server: &SimServer) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"0\" friendlyName=\"{}\" machineIdentifier=\"{}\" version=\"1.41.3.9314-a0bfb8370\" platform=\"Linux\" myPlex=\"1\" ownerFeatures=\"session_kick,hardware_transcoding\"></MediaContainer>\n",
        esc(&server.name),
        server.machine_id
    )
}

/// `GET /accounts`.
pub fn plex_accounts(server: &SimServer) -> String {
    let mut out = format!(
        "<MediaContainer size=\"{}\" identifier=\"com.plexapp.system.accounts\">\n",
        server.users.len() + 1
    );
    out.push_str("<Account id=\"0\" key=\"/accounts/0\" name=\"\" />\n");
    for u in &server.users {
        let _ = writeln!(
            out,
            "<Account id=\"{}\" key=\"/accounts/{}\" name=\"{}\" />",
            esc(&u.id),
            esc(&u.id),
            esc(&u.name)
        );
    }
    out.push_str("</MediaContainer>\n");
    out
}

/// `GET /library/metadata/{ratingKey}`: the source file's quality.
pub fn plex_metadata(world: &World, id: &str) -> Option<String> {
    let item = world.plays.iter().map(|p| &p.item).find(|i| i.id == id)?;
    Some(format!(
        "<MediaContainer size=\"1\"><Video ratingKey=\"{}\" title=\"{}\" type=\"{}\"><Media videoResolution=\"{}\" height=\"{}\" bitrate=\"{}\" videoCodec=\"{}\" audioCodec=\"{}\" selected=\"1\" /></Video></MediaContainer>",
        esc(&item.id),
        esc(&item.title),
        plex_type(item.kind),
        plex_resolution(item.height),
        item.height,
        item.bitrate_kbps,
        item.video_codec,
        item.audio_codec
    ))
}

const TICKS_PER_MS: i64 = 10_000;

/// `GET /Sessions` of Jellyfin or Emby, with an idle client row as real servers list.
pub fn jellyfin_sessions(world: &World, server: usize) -> Value {
    let kind = world.servers[server].kind;
    let server_id = &world.servers[server].machine_id;
    let mut rows: Vec<Value> = world
        .plays_on(server)
        .map(|p| {
            let it = &p.item;
            let (height, video_codec, bitrate) = delivered(p);
            let mut item = json!({
                "Name": it.title,
                "ServerId": server_id,
                "Id": it.id,
                "RunTimeTicks": it.duration_ms * TICKS_PER_MS,
                "IsFolder": false,
                "MediaType": if it.kind == MediaType::Track { "Audio" } else { "Video" },
                "Type": match it.kind { MediaType::Episode => "Episode", MediaType::Track => "Audio", _ => "Movie" },
                "MediaSources": [{ "Id": it.id, "Container": if it.kind == MediaType::Track { "flac" } else { "mkv" }, "Bitrate": it.bitrate_kbps * 1000 }],
            });
            let mut streams = Vec::new();
            if it.kind != MediaType::Track {
                streams.push(json!({ "Type": "Video", "Codec": it.video_codec, "Height": it.height, "Index": 0 }));
            }
            streams.push(json!({ "Type": "Audio", "Codec": it.audio_codec, "Channels": 6, "Index": 1 }));
            item["MediaStreams"] = Value::Array(streams);
            if let Some(year) = it.year {
                item["ProductionYear"] = json!(year);
            }
            match (it.kind, &it.parent) {
                (MediaType::Episode, Some((id, show))) => {
                    item["SeriesName"] = json!(show);
                    item["SeriesId"] = json!(id);
                    item["SeasonName"] = json!(format!("Season {}", it.season.unwrap_or(1)));
                    item["ParentIndexNumber"] = json!(it.season);
                    item["IndexNumber"] = json!(it.episode);
                }
                (MediaType::Track, Some((id, artist))) => {
                    item["AlbumArtist"] = json!(artist);
                    item["AlbumId"] = json!(id);
                    item["Album"] = json!(format!("Best of {artist}"));
                }
                _ => {}
            }
            let mut row = json!({
                "PlayState": {
                    "PositionTicks": p.position_ms * TICKS_PER_MS,
                    "CanSeek": true,
                    "IsPaused": p.paused,
                    "IsMuted": false,
                    "PlayMethod": if p.transcode { "Transcode" } else { "DirectPlay" },
                    "RepeatMode": "RepeatNone",
                },
                "RemoteEndPoint": p.ip.to_string(),
                "Id": p.session_key,
                "UserId": p.user.id,
                "UserName": p.user.name,
                "Client": p.device.product,
                "DeviceName": p.device.name,
                "DeviceId": p.device.id,
                "DeviceType": p.device.platform,
                "ApplicationVersion": "10.11.0",
                "ServerId": server_id,
                "NowPlayingItem": item,
                "PlayableMediaTypes": ["Audio", "Video"],
                "SupportedCommands": ["DisplayMessage"],
                "IsActive": true,
            });
            row["SupportsRemoteControl"] = json!(p.can_control);
            if kind != ServerKind::Emby {
                row["SupportsMediaControl"] = json!(p.can_control);
            }
            if p.transcode {
                row["TranscodingInfo"] = json!({
                    "AudioCodec": it.audio_codec,
                    "VideoCodec": video_codec,
                    "Container": "ts",
                    "IsVideoDirect": false,
                    "IsAudioDirect": true,
                    "Bitrate": bitrate * 1000,
                    "Height": height,
                    "Width": 1280,
                    "HardwareAccelerationType": "vaapi",
                    "TranscodeReasons": ["VideoCodecNotSupported"],
                });
            }
            row
        })
        .collect();
    rows.push(json!({
        "PlayState": { "CanSeek": false, "IsPaused": false, "IsMuted": false, "RepeatMode": "RepeatNone" },
        "Id": "0000idle0000idle0000idle0000idle",
        "UserId": world.servers[server].users.first().map(|u| u.id.clone()),
        "UserName": world.servers[server].users.first().map(|u| u.name.clone()),
        "Client": "Web",
        "DeviceName": "Idle browser",
        "DeviceId": "idle-browser",
        "RemoteEndPoint": "192.168.1.250",
        "SupportsMediaControl": true,
    }));
    Value::Array(rows)
}

/// `GET /System/Info`.
pub fn jellyfin_system_info(server: &SimServer) -> Value {
    json!({
        "ServerName": server.name,
        "Version": if server.kind == ServerKind::Emby { "4.8.11.0" } else { "10.11.0" },
        "ProductName": if server.kind == ServerKind::Emby { "Emby Server" } else { "Jellyfin Server" },
        "Id": server.machine_id,
        "OperatingSystem": "Linux",
        "StartupWizardCompleted": true,
    })
}

/// `GET /Users` (Jellyfin) or the `Items` of `GET /Users/Query` (Emby).
pub fn jellyfin_users(server: &SimServer) -> Vec<Value> {
    server
        .users
        .iter()
        .map(|u| json!({ "Name": u.name, "Id": u.id, "ServerId": server.machine_id, "HasPassword": true, "Policy": { "IsAdministrator": u.admin, "IsDisabled": false } }))
        .collect()
}

/// A tiny solid-colour PNG poster (stored, uncompressed deflate: no codec needed).
pub fn poster_png(seed: &str) -> Vec<u8> {
    let hash =
        seed.bytes().fold(2_166_136_261_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619));
    let [r, g, b, _] = hash.to_le_bytes();
    let (width, height) = (20_u32, 30_u32);
    // Each row: filter byte 0 (none), then the pixels.
    let row: Vec<u8> = std::iter::once(0)
        .chain((0..width).flat_map(|_| [r / 2 + 64, g / 2 + 64, b / 2 + 64]))
        .collect();
    let raw = row.repeat(height as usize);
    let mut zlib = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == chunks.len()));
        let len = u16::try_from(chunk.len()).expect("chunks are at most 65535 bytes");
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(chunk);
    }
    let (mut a, mut b2) = (1_u32, 0_u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b2 = (b2 + a) % 65_521;
    }
    zlib.extend_from_slice(&((b2 << 16) | a).to_be_bytes());

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        png.extend_from_slice(&u32::try_from(data.len()).expect("small").to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(&data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::jellyfin::{self, Flavor};
    use crate::media::model::Decision;
    use crate::media::plex;
    use crate::sim::world::{self, World};

    fn world() -> World {
        let mut w = World::new();
        for kind in ServerKind::ALL {
            w.add_server(
                kind,
                &format!("Sim {kind}"),
                &[("1", "owner"), ("7", "Zoë & \"friends\"")],
            );
        }
        let tv = world::device("tv-1", "Living Room", "Plex for Android (TV)", "Android");
        let ep = world::episode("101", ("100", "The Show"), 1, 2, "Second <one>", 45);
        for server in 0..3 {
            let key = w.start(
                server,
                "Zoë & \"friends\"",
                &tv,
                "81.2.69.142".parse().unwrap(),
                false,
                &ep,
            );
            w.play_mut(&key).unwrap().transcode = true;
            w.start(
                server,
                "owner",
                &tv,
                "192.168.1.5".parse().unwrap(),
                true,
                &world::movie("5", "Film", 2010, 100, 2160),
            );
        }
        w.advance(60_000);
        w
    }

    #[test]
    fn our_clients_read_what_the_simulator_writes() {
        let w = world();
        let xml = plex::parse_sessions(
            &plex::parse_body(plex_sessions_xml(&w, 0).as_bytes(), None).unwrap(),
        )
        .unwrap();
        let json_body = plex_sessions_json(&w, 0).to_string();
        let json = plex::parse_sessions(
            &plex::parse_body(json_body.as_bytes(), Some("application/json")).unwrap(),
        )
        .unwrap();
        assert_eq!(xml, json, "XML and JSON say the same");
        assert_eq!(xml.len(), 2);
        let ep = &xml[0];
        assert_eq!(ep.user.name, "Zoë & \"friends\"");
        assert_eq!(ep.item.title, "Second <one>");
        assert_eq!(ep.stream.decision, Decision::Transcode);
        assert_eq!(ep.stream.stream_resolution.as_deref(), Some("720p"));
        assert_eq!(ep.progress_ms, Some(60_000));
        assert_eq!(ep.ip.unwrap().to_string(), "81.2.69.142");
        assert!(xml[1].server_says_local);
        assert_eq!(xml[1].ip.unwrap().to_string(), "192.168.1.5");

        for (server, flavor) in [(1, Flavor::Jellyfin), (2, Flavor::Emby)] {
            let body = jellyfin_sessions(&w, server).to_string();
            let sessions = jellyfin::parse_sessions(body.as_bytes(), flavor).unwrap();
            assert_eq!(sessions.len(), 2, "the idle row is skipped");
            assert_eq!(sessions[0].stream.decision, Decision::Transcode);
            assert_eq!(sessions[0].stream.source_resolution.as_deref(), Some("1080p"));
            assert_eq!(sessions[1].stream.source_resolution.as_deref(), Some("4K"));
            assert_eq!(sessions[0].item.grandparent_title.as_deref(), Some("The Show"));
        }
    }

    #[test]
    fn posters_are_valid_png() {
        let png = poster_png("x");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
    }
}
