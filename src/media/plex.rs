//! Plex Media Server.
//!
//! - Sessions: `GET /status/sessions` with `X-Plex-Token`, XML by default, JSON when asked
//!   with `Accept: application/json` (both read through [`Node`]).
//! - IP: `Player.address` when `Player.local` is 1, else `remotePublicAddress`.
//! - Stop: `/status/sessions/terminate?sessionId=<Session@id>&reason=...` (the `Session@id`,
//!   not the `sessionKey`); HTTP 401 there means the server has no Plex Pass.
//! - While video is transcoded, the session's `<Media>` describes the output; the source
//!   quality comes from `/library/metadata/{ratingKey}`, fetched once per item and cached.
//! - Libraries: `/library/sections`; items from `/library/sections/{key}/all`, paged with
//!   `X-Plex-Container-Start`/`-Size`, `includeGuids=1` for the TMDB/TVDB/IMDb ids. A show
//!   library is read as its shows (`type=2`) and then all its episodes at once (`type=4`),
//!   which carry their season (`parentRatingKey`, `parentIndex`): one paged listing instead
//!   of a `/library/metadata/{id}/children` request per show, and the episodes' `Media`
//!   give the sizes and resolutions a season or show is made of.
//! - Delete: `DELETE /library/metadata/{ratingKey}` (needs "Allow media deletion" on the
//!   server); Plex sometimes answers 400 to a delete it then does, so 400 is retried twice.

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::Method;
use reqwest::header::HeaderMap;

use super::http::{self, Http, MAX_BODY, MAX_IMAGE};
use super::library::{
    ExternalIds, ItemKind, ItemSink, Library, LibraryItem, LibraryKind, Listed, Removed,
    effective_height,
};
use super::model::{
    ActiveSession, Decision, Item, MediaType, PlaybackState, Player, ServerIdentity, ServerKind,
    ServerUser, StreamInfo, UserRef, parse_ip, resolution_from_height, resolution_from_label,
};
use super::tree::Node;
use super::{Connection, Image, MediaError, MediaServer};

/// Items whose source quality we remember (bounded: cleared when it fills).
const SOURCE_CACHE_SIZE: usize = 512;
/// Items asked for per request when a library is listed.
pub const LIBRARY_PAGE: u64 = 500;
/// A listing that has not ended after this many items is a server that ignores paging.
const MAX_LISTING: u64 = 5_000_000;

pub struct PlexClient {
    http: Http,
    sources: Mutex<HashMap<String, SourceQuality>>,
}

/// Quality of the original file of an item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceQuality {
    pub resolution: Option<String>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub bitrate_kbps: Option<i64>,
}

impl PlexClient {
    pub fn new(connection: &Connection) -> Result<Self, MediaError> {
        Ok(Self {
            http: Http::new(&connection.url, connection.verify_tls, auth_headers(connection)?)?,
            sources: Mutex::new(HashMap::new()),
        })
    }

    async fn get_tree(&self, path: &str) -> Result<Node, MediaError> {
        let reply = self.http.get_ok(path, &[], "application/xml", MAX_BODY).await?;
        parse_body(&reply.body, reply.content_type.as_deref())
    }

    /// The source quality of `rating_key`, from the cache or the server.
    async fn source(&self, rating_key: &str) -> Option<SourceQuality> {
        if let Some(hit) = self.sources.lock().ok()?.get(rating_key) {
            return Some(hit.clone());
        }
        let path = format!("/library/metadata/{rating_key}");
        match self.get_tree(&path).await {
            Ok(root) => {
                let quality = parse_source(&root)?;
                let mut cache = self.sources.lock().ok()?;
                if cache.len() >= SOURCE_CACHE_SIZE {
                    cache.clear();
                }
                cache.insert(rating_key.to_owned(), quality.clone());
                Some(quality)
            }
            Err(e) => {
                tracing::debug!(rating_key, error = %e, "no source quality for a transcoded item");
                None
            }
        }
    }
}

/// What every request to Plex carries: the token and who we are (the event stream too).
pub(crate) fn auth_headers(connection: &Connection) -> Result<HeaderMap, MediaError> {
    let mut headers = HeaderMap::new();
    headers.insert("X-Plex-Token", http::header_value(&connection.token)?);
    headers.insert("X-Plex-Product", "Streamwarden".parse().expect("static"));
    headers.insert("X-Plex-Client-Identifier", "streamwarden".parse().expect("static"));
    headers.insert("X-Plex-Version", env!("CARGO_PKG_VERSION").parse().expect("static"));
    Ok(headers)
}

#[rocket::async_trait]
impl MediaServer for PlexClient {
    fn kind(&self) -> ServerKind {
        ServerKind::Plex
    }

    async fn identify(&self) -> Result<ServerIdentity, MediaError> {
        let root = self.get_tree("/").await?;
        if root.name != "MediaContainer" {
            return Err(MediaError::Malformed(format!(
                "expected a MediaContainer, got <{}>",
                root.name
            )));
        }
        Ok(ServerIdentity {
            name: root.attr("friendlyName").map(str::to_owned),
            version: root.attr("version").map(str::to_owned),
            machine_id: root.attr("machineIdentifier").map(str::to_owned),
        })
    }

    async fn sessions(&self) -> Result<Vec<ActiveSession>, MediaError> {
        let root = self.get_tree("/status/sessions").await?;
        let mut sessions = parse_sessions(&root)?;
        for session in &mut sessions {
            if session.stream.video_decision.as_deref() == Some("transcode")
                && let Some(source) = self.source(&session.item.id).await
            {
                apply_source(&mut session.stream, &source);
            }
        }
        Ok(sessions)
    }

    async fn users(&self) -> Result<Vec<ServerUser>, MediaError> {
        let root = self.get_tree("/accounts").await?;
        Ok(root
            .children_named("Account")
            .filter_map(|a| {
                let id = a.attr("id")?;
                let name = a.attr("name")?;
                // Account 1 is the server owner on every Plex server.
                Some(ServerUser {
                    external_id: id.to_owned(),
                    name: name.to_owned(),
                    is_admin: id == "1",
                })
            })
            .collect())
    }

    async fn terminate(&self, session: &ActiveSession, message: &str) -> Result<(), MediaError> {
        let Some(id) = session.control_id.as_deref() else {
            return Err(MediaError::Refused(
                "Plex did not report a session id for this stream, so it cannot be stopped"
                    .to_owned(),
            ));
        };
        let url =
            self.http.url("/status/sessions/terminate", &[("sessionId", id), ("reason", message)]);
        // GET, as Tautulli and python-plexapi call it (the community spec lists POST; PMS
        // accepts GET).
        let reply = self.http.send(Method::GET, url, &[], None, MAX_BODY).await?;
        match reply.status.as_u16() {
            200..=299 => Ok(()),
            401 => Err(MediaError::Refused(
                "Plex refused: stopping streams needs a Plex Pass on the server owner's account"
                    .to_owned(),
            )),
            404 => Err(MediaError::Refused("Plex says this stream has already ended".to_owned())),
            _ => http::check_status(reply).map(|_| ()),
        }
    }

    async fn message(
        &self,
        _session: &ActiveSession,
        _header: &str,
        _text: &str,
    ) -> Result<(), MediaError> {
        Err(MediaError::Unsupported("sending a message to a Plex player"))
    }

    async fn image(&self, path: &str) -> Result<Image, MediaError> {
        if !(path.starts_with("/library/") || path.starts_with("/photo/")) {
            return Err(MediaError::Refused(format!("{path:?} is not a Plex image path")));
        }
        let reply = self.http.get_ok(path, &[], "image/*", MAX_IMAGE).await?;
        let content_type = reply.content_type.unwrap_or_else(|| "image/jpeg".to_owned());
        Ok(Image { content_type, bytes: reply.body })
    }

    async fn libraries(&self) -> Result<Vec<Library>, MediaError> {
        parse_sections(&self.get_tree("/library/sections").await?)
    }

    async fn library_items(
        &self,
        library: &Library,
        sink: &mut dyn ItemSink,
    ) -> Result<Listed, MediaError> {
        // Plex's types: 1 movie, 2 show, 4 episode.
        let parts: &[&str] = match library.kind {
            LibraryKind::Movie => &["1"],
            LibraryKind::Show => &["2", "4"],
            LibraryKind::Music | LibraryKind::Other => &[],
        };
        let mut listed = Listed::Complete;
        for plex_type in parts {
            match self.list_part(library, plex_type, sink).await? {
                Listed::Complete => {}
                Listed::Partial => listed = Listed::Partial,
            }
        }
        Ok(listed)
    }

    async fn library_count(&self, library: &Library) -> Result<u64, MediaError> {
        let path = format!("/library/sections/{}/all", encode_segment(&library.external_id));
        let query = [("X-Plex-Container-Start", "0"), ("X-Plex-Container-Size", "0")];
        let reply = self.http.get_ok(&path, &query, "application/xml", MAX_BODY).await?;
        let root = parse_body(&reply.body, reply.content_type.as_deref())?;
        let total = root.attr_i64("totalSize").or_else(|| root.attr_i64("size")).unwrap_or(0);
        Ok(u64::try_from(total).unwrap_or(0))
    }

    async fn delete_item(&self, external_id: &str) -> Result<Removed, MediaError> {
        let url = self.http.url(&format!("/library/metadata/{}", encode_segment(external_id)), &[]);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let reply = self.http.send(Method::DELETE, url.clone(), &[], None, MAX_BODY).await?;
            match reply.status.as_u16() {
                200..=299 => return Ok(Removed::Deleted),
                404 => return Ok(Removed::AlreadyGone),
                401 | 403 => {
                    return Err(MediaError::Refused(format!(
                        "Plex refused the delete (HTTP {}): turn on Settings → Library → \"Allow media deletion\" on the server, with the owner's token",
                        reply.status.as_u16()
                    )));
                }
                400 if attempts < 3 => {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                _ => return http::check_status(reply).map(|_| Removed::Deleted),
            }
        }
    }
}

impl PlexClient {
    /// Reads one `/all?type=` listing of a library, page by page.
    async fn list_part(
        &self,
        library: &Library,
        plex_type: &str,
        sink: &mut dyn ItemSink,
    ) -> Result<Listed, MediaError> {
        let path = format!("/library/sections/{}/all", encode_segment(&library.external_id));
        let size = LIBRARY_PAGE.to_string();
        let mut start: u64 = 0;
        let mut first_total = None;
        loop {
            let offset = start.to_string();
            let query = [
                ("type", plex_type),
                ("includeGuids", "1"),
                ("X-Plex-Container-Start", offset.as_str()),
                ("X-Plex-Container-Size", size.as_str()),
            ];
            let reply = self.http.get_ok(&path, &query, "application/xml", MAX_BODY).await?;
            let root = parse_body(&reply.body, reply.content_type.as_deref())?;
            let page = parse_library_page(&root)?;
            let returned = page.entries;
            // Without paging support, Plex sends everything and no totalSize.
            let total = root
                .attr_i64("totalSize")
                .and_then(|t| u64::try_from(t).ok())
                .unwrap_or(start + returned);
            if first_total.is_none() {
                sink.expect(total);
                first_total = Some(total);
            }
            start += returned;
            if sink.page(page.items, returned).await.is_break() {
                return Ok(Listed::Partial);
            }
            if returned == 0 || start >= total || start >= MAX_LISTING {
                let stable = first_total == Some(total) && start >= total;
                return Ok(if stable { Listed::Complete } else { Listed::Partial });
            }
        }
    }
}

/// Path segments are ratingKeys and section keys (digits); anything else is escaped.
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The libraries of `/library/sections`.
pub fn parse_sections(root: &Node) -> Result<Vec<Library>, MediaError> {
    if root.name != "MediaContainer" {
        return Err(MediaError::Malformed(format!(
            "expected a MediaContainer, got <{}>",
            root.name
        )));
    }
    Ok(root
        .children
        .iter()
        .filter_map(|d| {
            let kind = match d.attr("type")? {
                "movie" => LibraryKind::Movie,
                "show" => LibraryKind::Show,
                "artist" => LibraryKind::Music,
                _ => LibraryKind::Other,
            };
            Some(Library {
                external_id: d.attr("key")?.to_owned(),
                name: d.attr("title").unwrap_or("Untitled").to_owned(),
                kind,
            })
        })
        .collect())
}

/// One page of `/library/sections/{key}/all`.
pub struct LibraryPage {
    pub items: Vec<LibraryItem>,
    /// How many entries the page had (the paging counts these, whatever we kept).
    pub entries: u64,
}

/// Reads one page of a library listing: movies, shows, or episodes with the season each
/// belongs to (a season once per page, as an item of its own).
pub fn parse_library_page(root: &Node) -> Result<LibraryPage, MediaError> {
    if root.name != "MediaContainer" {
        return Err(MediaError::Malformed(format!(
            "expected a MediaContainer, got <{}>",
            root.name
        )));
    }
    let mut items = Vec::with_capacity(root.children.len());
    let mut seasons: Vec<String> = Vec::new();
    for node in &root.children {
        let Some(item) = parse_library_item(node) else { continue };
        if item.kind == Some(ItemKind::Episode)
            && let Some(season) = season_of(node)
            && !seasons.contains(&season.external_id)
        {
            seasons.push(season.external_id.clone());
            items.push(season);
        }
        items.push(item);
    }
    Ok(LibraryPage { items, entries: root.children.len() as u64 })
}

/// Plex seconds to milliseconds.
fn plex_time(node: &Node, name: &str) -> Option<i64> {
    node.attr_i64(name).filter(|s| *s > 0).map(|s| s * 1000)
}

fn parse_library_item(node: &Node) -> Option<LibraryItem> {
    let kind = match node.attr("type")? {
        "movie" => ItemKind::Movie,
        "show" => ItemKind::Show,
        "episode" => ItemKind::Episode,
        _ => return None,
    };
    let owned = |s: Option<&str>| s.map(str::to_owned);
    let mut ids = ExternalIds::default();
    for guid in node.children_named("Guid") {
        if let Some(id) = guid.attr("id") {
            ids.add_guid(id);
        }
    }
    if let Some(guid) = node.attr("guid") {
        ids.add_guid(guid);
    }
    // Every version and every part is deleted with the item; the best version is its
    // resolution.
    let mut size_bytes = 0_i64;
    let mut best: Option<(i64, Option<i64>, Option<i64>)> = None;
    for media in node.children_named("Media") {
        let (width, height) = (media.attr_i64("width"), media.attr_i64("height"));
        if let Some(h) = effective_height(width, height)
            && best.is_none_or(|(b, _, _)| h > b)
        {
            best = Some((h, width, height));
        }
        size_bytes += media
            .children_named("Part")
            .filter_map(|p| p.attr_i64("size"))
            .filter(|s| *s > 0)
            .sum::<i64>();
    }
    let (width, height) = best.map_or((None, None), |(_, w, h)| (w, h));
    let episode = kind == ItemKind::Episode;
    Some(LibraryItem {
        external_id: node.attr("ratingKey")?.to_owned(),
        kind: Some(kind),
        title: node.attr("title").unwrap_or("Untitled").to_owned(),
        year: node.attr_i64("year"),
        show_external_id: if episode { owned(node.attr("grandparentRatingKey")) } else { None },
        show_title: if episode { owned(node.attr("grandparentTitle")) } else { None },
        season_number: if episode { node.attr_i64("parentIndex") } else { None },
        episode_number: if episode { node.attr_i64("index") } else { None },
        added_at: plex_time(node, "addedAt"),
        last_viewed_at: plex_time(node, "lastViewedAt"),
        view_count: node.attr_i64("viewCount").unwrap_or(0).max(0),
        size_bytes,
        width,
        height,
        ids,
        thumb: owned(node.attr("thumb")),
    })
}

/// The season an episode of a `type=4` listing belongs to.
fn season_of(episode: &Node) -> Option<LibraryItem> {
    let number = episode.attr_i64("parentIndex");
    Some(LibraryItem {
        external_id: episode.attr("parentRatingKey")?.to_owned(),
        kind: Some(ItemKind::Season),
        title: episode.attr("parentTitle").map_or_else(
            || number.map_or_else(|| "Season".to_owned(), |n| format!("Season {n}")),
            str::to_owned,
        ),
        year: None,
        show_external_id: Some(episode.attr("grandparentRatingKey")?.to_owned()),
        show_title: episode.attr("grandparentTitle").map(str::to_owned),
        season_number: number,
        thumb: episode.attr("parentThumb").map(str::to_owned),
        ..LibraryItem::default()
    })
}

/// Reads a Plex body as XML or JSON, whichever it is.
pub fn parse_body(body: &[u8], content_type: Option<&str>) -> Result<Node, MediaError> {
    let looks_json = content_type.is_some_and(|c| c.contains("json"))
        || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if looks_json {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| MediaError::Malformed(format!("invalid JSON: {e}")))?;
        let container = value
            .get("MediaContainer")
            .ok_or_else(|| MediaError::Malformed("JSON without a MediaContainer".to_owned()))?;
        Ok(Node::from_json("MediaContainer", container))
    } else {
        Node::from_xml(body).map_err(|e| MediaError::Malformed(format!("invalid XML: {e}")))
    }
}

/// Every playback in a `/status/sessions` container.
pub fn parse_sessions(root: &Node) -> Result<Vec<ActiveSession>, MediaError> {
    if root.name != "MediaContainer" {
        return Err(MediaError::Malformed(format!(
            "expected a MediaContainer, got <{}>",
            root.name
        )));
    }
    Ok(root.children.iter().filter_map(parse_session).collect())
}

/// One playback, or `None` for what is not a playback we track (trailers, pre-rolls,
/// photos) or cannot attribute (no user or player).
fn parse_session(item: &Node) -> Option<ActiveSession> {
    let kind = item.attr("type").unwrap_or_default();
    if is_extra(item) || kind == "photo" {
        return None;
    }
    let user = item.child("User")?;
    let player = item.child("Player")?;
    let session = item.child("Session");
    let session_id = item.attr("sessionKey").or_else(|| session.and_then(|s| s.attr("id")))?;

    let media_type = if item.attr_bool("live") {
        MediaType::Live
    } else {
        match kind {
            "movie" => MediaType::Movie,
            "episode" => MediaType::Episode,
            "track" => MediaType::Track,
            "clip" => MediaType::Clip,
            _ => MediaType::Other,
        }
    };
    let thumb = match media_type {
        MediaType::Episode => item.attr("grandparentThumb").or_else(|| item.attr("thumb")),
        MediaType::Track => item.attr("parentThumb").or_else(|| item.attr("thumb")),
        _ => item.attr("thumb"),
    };
    let (season, episode) = if media_type == MediaType::Episode {
        (item.attr_i64("parentIndex"), item.attr_i64("index"))
    } else {
        (None, None)
    };
    let owned = |s: Option<&str>| s.map(str::to_owned);
    let item_id = item.attr("ratingKey").or_else(|| item.attr("key")).map_or_else(
        || format!("{}:{}", kind, item.attr("title").unwrap_or_default()),
        str::to_owned,
    );

    let local =
        player.attr_bool("local") || session.and_then(|s| s.attr("location")) == Some("lan");
    let address = player.attr("address");
    let public = player.attr("remotePublicAddress");
    let ip = if local { address.or(public) } else { public.or(address) }.and_then(parse_ip);

    let state =
        player.attr("state").and_then(PlaybackState::parse).unwrap_or(PlaybackState::Playing);
    let device_id = player.attr("machineIdentifier").map_or_else(
        || {
            format!(
                "{}|{}",
                player.attr("title").unwrap_or("?"),
                player.attr("product").unwrap_or("?")
            )
        },
        str::to_owned,
    );
    let user_name = user.attr("title").unwrap_or("Unknown user");

    Some(ActiveSession {
        session_id: session_id.to_owned(),
        control_id: owned(session.and_then(|s| s.attr("id"))),
        user: UserRef {
            external_id: user.attr("id").unwrap_or(user_name).to_owned(),
            name: user_name.to_owned(),
            thumb: owned(user.attr("thumb")),
        },
        item: Item {
            id: item_id,
            grandparent_id: owned(item.attr("grandparentRatingKey")),
            media_type: Some(media_type),
            title: item.attr("title").unwrap_or("Untitled").to_owned(),
            parent_title: owned(item.attr("parentTitle")),
            grandparent_title: owned(item.attr("grandparentTitle")),
            season,
            episode,
            year: item.attr_i64("year").or_else(|| item.attr_i64("parentYear")),
            library_id: owned(item.attr("librarySectionID")),
            library_name: owned(item.attr("librarySectionTitle")),
            thumb: owned(thumb),
            duration_ms: item.attr_i64("duration").filter(|d| *d > 0),
        },
        player: Player {
            device_id,
            name: owned(player.attr("title")),
            product: owned(player.attr("product")),
            platform: owned(player.attr("platform")),
            version: owned(player.attr("version")),
        },
        ip,
        server_says_local: local,
        state,
        progress_ms: item.attr_i64("viewOffset").filter(|p| *p >= 0),
        stream: parse_stream(item, session),
        can_control: true,
    })
}

/// Trailers, pre-rolls and other extras played around the real item.
fn is_extra(item: &Node) -> bool {
    let negative_section = item.attr_i64("librarySectionID").is_some_and(|id| id < 0);
    let preroll = item.attr("guid").is_some_and(|g| g.starts_with("analyzed.prerolls"));
    let trailer = item.attr("type") == Some("clip")
        && (item.attr("subtype").is_some() || item.attr("extraType").is_some());
    negative_section || preroll || trailer
}

fn parse_stream(item: &Node, session: Option<&Node>) -> StreamInfo {
    // Several versions (e.g. HIGH and LOW for streamed music): the selected one plays.
    let media = item
        .children_named("Media")
        .find(|m| m.attr_bool("selected"))
        .or_else(|| item.child("Media"));
    let part = media.and_then(|m| {
        m.children_named("Part").find(|p| p.attr_bool("selected")).or_else(|| m.child("Part"))
    });
    let stream_of = |kind: &str| {
        part.and_then(|p| {
            p.children_named("Stream")
                .filter(|s| s.attr("streamType") == Some(kind))
                .find(|s| s.attr_bool("selected") || s.attr("decision").is_some())
                .or_else(|| p.children_named("Stream").find(|s| s.attr("streamType") == Some(kind)))
        })
    };
    let video_stream = stream_of("1");
    let audio_stream = stream_of("2");
    // The transcoder sits beside <Media> in sessions, inside it for Live TV.
    let transcode =
        item.child("TranscodeSession").or_else(|| media.and_then(|m| m.child("TranscodeSession")));

    let normalize = |d: &str| {
        if d.eq_ignore_ascii_case("directplay") {
            "direct play".to_owned()
        } else {
            d.to_ascii_lowercase()
        }
    };
    let (video_decision, audio_decision) = if let Some(t) = transcode {
        (t.attr("videoDecision").map(normalize), t.attr("audioDecision").map(normalize))
    } else {
        let part_decision = part.and_then(|p| p.attr("decision"));
        let video = video_stream
            .and_then(|s| s.attr("decision"))
            .or(part_decision.filter(|_| video_stream.is_some()));
        let audio = audio_stream
            .and_then(|s| s.attr("decision"))
            .or(part_decision.filter(|_| audio_stream.is_some()));
        (video.map(normalize), audio.map(normalize))
    };
    let decision = Decision::from_parts(video_decision.as_deref(), audio_decision.as_deref());

    let media_resolution = media.and_then(|m| {
        m.attr("videoResolution")
            .and_then(resolution_from_label)
            .or_else(|| m.attr_i64("height").and_then(resolution_from_height))
    });
    let video_transcoded = video_decision.as_deref() == Some("transcode");
    let stream_resolution = if video_transcoded {
        transcode
            .and_then(|t| t.attr_i64("height"))
            .and_then(resolution_from_height)
            .or(media_resolution.clone())
    } else {
        media_resolution.clone()
    };
    let media_attr = |name: &str| media.and_then(|m| m.attr(name)).map(str::to_owned);
    let transcode_attr =
        |name: &str| transcode.and_then(|t| t.attr(name)).filter(|v| *v != "*").map(str::to_owned);
    let hw = |name: &str| transcode.and_then(|t| t.attr(name)).is_some_and(|v| v != "0");

    let (source_video_codec, stream_video_codec) = if video_transcoded {
        (transcode_attr("sourceVideoCodec"), transcode_attr("videoCodec"))
    } else {
        (media_attr("videoCodec"), media_attr("videoCodec"))
    };
    let audio_transcoded = audio_decision.as_deref() == Some("transcode");
    let (source_audio_codec, stream_audio_codec) = if audio_transcoded {
        (transcode_attr("sourceAudioCodec"), transcode_attr("audioCodec"))
    } else {
        (media_attr("audioCodec"), media_attr("audioCodec"))
    };
    let mut reasons = Vec::new();
    if video_transcoded {
        reasons.push(describe_change(
            "Video",
            source_video_codec.as_deref(),
            stream_video_codec.as_deref(),
        ));
    }
    if audio_transcoded {
        reasons.push(describe_change(
            "Audio",
            source_audio_codec.as_deref(),
            stream_audio_codec.as_deref(),
        ));
    }

    StreamInfo {
        decision,
        video_decision,
        audio_decision,
        transcode_reasons: reasons,
        hw_decode: hw("transcodeHwDecoding"),
        hw_encode: hw("transcodeHwEncoding"),
        // Without a transcode the stream is the source; with one, the source is filled in
        // from the item's metadata by the client.
        source_resolution: if video_transcoded { None } else { media_resolution },
        stream_resolution,
        source_video_codec,
        stream_video_codec,
        source_audio_codec,
        stream_audio_codec,
        container: transcode_attr("container").or_else(|| media_attr("container")),
        source_bitrate_kbps: if video_transcoded {
            None
        } else {
            media.and_then(|m| m.attr_i64("bitrate"))
        },
        bandwidth_kbps: session
            .and_then(|s| s.attr_i64("bandwidth"))
            .or_else(|| media.and_then(|m| m.attr_i64("bitrate"))),
    }
}

fn describe_change(what: &str, from: Option<&str>, to: Option<&str>) -> String {
    match (from, to) {
        (Some(from), Some(to)) => {
            format!("{what} transcoded ({} → {})", from.to_uppercase(), to.to_uppercase())
        }
        _ => format!("{what} transcoded"),
    }
}

/// The original file's quality from `/library/metadata/{ratingKey}`.
pub fn parse_source(root: &Node) -> Option<SourceQuality> {
    let item = root.children.first()?;
    let media = item
        .children_named("Media")
        .find(|m| m.attr_bool("selected"))
        .or_else(|| item.child("Media"))?;
    Some(SourceQuality {
        resolution: media
            .attr("videoResolution")
            .and_then(resolution_from_label)
            .or_else(|| media.attr_i64("height").and_then(resolution_from_height)),
        video_codec: media.attr("videoCodec").map(str::to_owned),
        audio_codec: media.attr("audioCodec").map(str::to_owned),
        bitrate_kbps: media.attr_i64("bitrate"),
    })
}

fn apply_source(stream: &mut StreamInfo, source: &SourceQuality) {
    stream.source_resolution.clone_from(&source.resolution);
    stream.source_bitrate_kbps = source.bitrate_kbps;
    if stream.source_video_codec.is_none() {
        stream.source_video_codec.clone_from(&source.video_codec);
    }
    if stream.source_audio_codec.is_none() {
        stream.source_audio_codec.clone_from(&source.audio_codec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(s: &str) -> Node {
        parse_body(s.as_bytes(), Some("text/xml")).unwrap()
    }

    #[test]
    fn a_transcoded_movie_with_its_session() {
        let root = xml(
            r#"<MediaContainer size="1"><Video ratingKey="42" sessionKey="7" type="movie" title="Inception" year="2010" duration="8880000" viewOffset="3600000" librarySectionID="1" librarySectionTitle="Movies" thumb="/library/metadata/42/thumb/1">
            <Media videoResolution="720" bitrate="4000" videoCodec="h264" audioCodec="aac" container="mp4"><Part decision="transcode"><Stream streamType="1" decision="transcode"/><Stream streamType="2" decision="copy"/></Part></Media>
            <User id="5" title="alice" thumb="https://plex.tv/a.png"/>
            <Player address="192.168.1.10" remotePublicAddress="81.2.69.142" local="0" machineIdentifier="dev-1" title="Chrome" product="Plex Web" platform="Chrome" state="paused"/>
            <Session id="uuid-7" bandwidth="4200" location="wan"/>
            <TranscodeSession videoDecision="transcode" audioDecision="copy" sourceVideoCodec="hevc" videoCodec="h264" height="720" transcodeHwDecoding="vaapi" transcodeHwEncoding="0" container="mpegts"/>
        </Video></MediaContainer>"#,
        );
        let s = &parse_sessions(&root).unwrap()[0];
        assert_eq!((s.session_id.as_str(), s.control_id.as_deref()), ("7", Some("uuid-7")));
        assert_eq!((s.user.external_id.as_str(), s.user.name.as_str()), ("5", "alice"));
        assert_eq!(s.ip.unwrap().to_string(), "81.2.69.142", "WAN player: the public address");
        assert!(!s.server_says_local);
        assert_eq!(s.state, PlaybackState::Paused);
        assert_eq!(s.progress_ms, Some(3_600_000));
        assert_eq!(s.item.duration_ms, Some(8_880_000));
        assert_eq!(s.item.library_name.as_deref(), Some("Movies"));
        assert_eq!(s.stream.decision, Decision::Transcode);
        assert_eq!(s.stream.stream_resolution.as_deref(), Some("720p"));
        assert_eq!(s.stream.source_resolution, None, "filled in from metadata by the client");
        assert_eq!(s.stream.source_video_codec.as_deref(), Some("hevc"));
        assert!(s.stream.hw_decode && !s.stream.hw_encode);
        assert_eq!(s.stream.bandwidth_kbps, Some(4200));
        assert_eq!(s.stream.transcode_reasons, ["Video transcoded (HEVC → H264)"]);

        let source = parse_source(&xml(r#"<MediaContainer><Video><Media videoResolution="4k" bitrate="40000" videoCodec="hevc"/></Video></MediaContainer>"#)).unwrap();
        let mut stream = s.stream.clone();
        apply_source(&mut stream, &source);
        assert_eq!(stream.source_resolution.as_deref(), Some("4K"));
        assert_eq!(stream.source_bitrate_kbps, Some(40000));
    }

    #[test]
    fn extras_and_unattributable_items_are_skipped() {
        let root = xml(r#"<MediaContainer>
            <Video sessionKey="1" type="clip" subtype="trailer" title="Trailer"><User id="1" title="a"/><Player title="p"/></Video>
            <Video sessionKey="2" type="clip" librarySectionID="-2" title="pre-roll"><User id="1" title="a"/><Player title="p"/></Video>
            <Video sessionKey="3" type="movie" guid="analyzed.prerolls://x" title="pre-roll"><User id="1" title="a"/><Player title="p"/></Video>
            <Photo sessionKey="4" type="photo" title="pic"><User id="1" title="a"/><Player title="p"/></Photo>
            <Video sessionKey="5" type="movie" title="no user"><Player title="p"/></Video>
            <Video sessionKey="6" type="clip" librarySectionID="9" title="home video"><User id="1" title="a"/><Player title="p"/></Video>
        </MediaContainer>"#);
        let sessions = parse_sessions(&root).unwrap();
        assert_eq!(
            sessions.iter().map(|s| s.item.title.as_str()).collect::<Vec<_>>(),
            ["home video"]
        );
        assert_eq!(sessions[0].item.media_type, Some(MediaType::Clip));
        assert_eq!(sessions[0].stream.decision, Decision::DirectPlay);
    }

    #[test]
    fn a_container_that_is_not_one_is_malformed() {
        assert!(matches!(
            parse_sessions(&xml("<Error code=\"1\"/>")),
            Err(MediaError::Malformed(_))
        ));
        assert!(parse_body(b"{\"oops\": 1}", Some("application/json")).is_err());
        assert!(parse_body(b"<MediaContainer>", None).is_err());
    }
}
