//! Jellyfin and Emby: one client, their differences explicit in [`Flavor`].
//!
//! | | Jellyfin | Emby |
//! |---|---|---|
//! | auth header | `Authorization: MediaBrowser ..., Token="<key>"` | `X-Emby-Token: <key>` |
//! | users | `GET /Users` (an array) | `GET /Users/Query` (`{Items: [...]}`) |
//! | message | `POST /Sessions/{id}/Message`, JSON body | same path, `Text`/`Header` query parameters |
//! | stop | `POST /Sessions/{id}/Playing/Stop` | same, with a JSON `PlaystateRequest` body |
//! | controllable | `SupportsMediaControl` | `SupportsRemoteControl` |
//!
//! | libraries | `GET /Library/VirtualFolders` (an array) | `GET /Library/VirtualFolders/Query` (`{Items: [...]}`) |
//! | delete | `DELETE /Items/{id}` answers 204 | the same, answers 200 |
//!
//! Sessions: `GET /Sessions`; rows without `NowPlayingItem` are idle clients and skipped;
//! positions are in ticks (1 tick = 100 ns); `RemoteEndPoint` may carry a port.
//!
//! Library items: `GET /Items?ParentId=<library>&Recursive=true`, paged with
//! `StartIndex`/`Limit`, with `Fields=MediaSources,ProviderIds,DateCreated` for sizes,
//! resolutions and TMDB/TVDB/IMDb ids, and `UserId` of the first administrator for their
//! `UserData` (play count, last played). Query parameters are `PascalCase`, which Emby wants
//! and Jellyfin reads case-insensitively.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::http::{self, Http, MAX_BODY, MAX_IMAGE};
use super::library::{
    ExternalIds, ItemKind, ItemSink, Library, LibraryItem, LibraryKind, Listed, Removed,
};
use super::model::{
    ActiveSession, Decision, Item, MediaType, PlaybackState, Player, ServerIdentity, ServerKind,
    ServerUser, StreamInfo, UserRef, parse_ip, resolution_from_height,
};
use super::{Connection, Image, MediaError, MediaServer};

const TICKS_PER_MS: i64 = 10_000;
/// How long Jellyfin and Emby show our messages, milliseconds.
const MESSAGE_TIMEOUT_MS: u32 = 10_000;
/// Items asked for per request when a library is listed (each carries its media streams).
pub const LIBRARY_PAGE: u64 = 200;
/// A listing that has not ended after this many items is a server that ignores paging.
const MAX_LISTING: u64 = 5_000_000;
/// The fields a library listing asks for beyond the defaults.
const ITEM_FIELDS: &str = "MediaSources,ProviderIds,DateCreated";

/// The account whose play state a library listing reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AdminUser {
    NotLookedUp,
    /// The server has no administrator we can see.
    None,
    Id(String),
}

/// Which server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Jellyfin,
    Emby,
}

pub struct JellyfinClient {
    http: Http,
    flavor: Flavor,
    /// The administrator whose `UserData` library listings carry, once looked up.
    admin: std::sync::Mutex<AdminUser>,
}

impl Flavor {
    pub fn of(kind: ServerKind) -> Self {
        if kind == ServerKind::Emby { Flavor::Emby } else { Flavor::Jellyfin }
    }
}

/// The device id we announce; the WebSocket asks for it too.
pub(crate) const DEVICE_ID: &str = "streamwarden";

/// What every request carries: the key and who we are (the WebSocket and SSE plugin too).
pub(crate) fn auth_headers(connection: &Connection) -> Result<HeaderMap, MediaError> {
    let client = format!(
        r#"MediaBrowser Client="Streamwarden", Device="Streamwarden", DeviceId="{DEVICE_ID}", Version="{}""#,
        env!("CARGO_PKG_VERSION")
    );
    let mut headers = HeaderMap::new();
    match Flavor::of(connection.kind) {
        Flavor::Jellyfin => {
            let value = format!(r#"{client}, Token="{}""#, connection.token);
            headers.insert("Authorization", http::header_value(&value)?);
        }
        Flavor::Emby => {
            headers.insert("X-Emby-Token", http::header_value(&connection.token)?);
            headers.insert("X-Emby-Authorization", http::header_value(&client)?);
        }
    }
    Ok(headers)
}

/// The sessions of a `/Sessions`-shaped JSON array (the WebSocket's `Sessions` messages
/// carry the same rows).
pub(crate) fn sessions_from_json(
    rows: serde_json::Value,
    flavor: Flavor,
) -> Result<Vec<ActiveSession>, MediaError> {
    let rows: Vec<SessionDto> = serde_json::from_value(rows)
        .map_err(|e| MediaError::Malformed(format!("session list: {e}")))?;
    Ok(rows.into_iter().filter_map(|row| row.into_session(flavor)).collect())
}

impl JellyfinClient {
    pub fn new(connection: &Connection) -> Result<Self, MediaError> {
        let flavor = Flavor::of(connection.kind);
        let headers = auth_headers(connection)?;
        Ok(Self {
            http: Http::new(&connection.url, connection.verify_tls, headers)?,
            flavor,
            admin: std::sync::Mutex::new(AdminUser::NotLookedUp),
        })
    }

    /// The first administrator's id (cached): library listings read their play state.
    async fn admin_user(&self) -> Result<Option<String>, MediaError> {
        let known = self.admin.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match known {
            AdminUser::Id(id) => return Ok(Some(id)),
            AdminUser::None => return Ok(None),
            AdminUser::NotLookedUp => {}
        }
        let admin = self.users().await?.into_iter().find(|u| u.is_admin).map(|u| u.external_id);
        *self.admin.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            admin.clone().map_or(AdminUser::None, AdminUser::Id);
        Ok(admin)
    }

    /// Reads `/Items` with `query` into a typed answer.
    async fn query_items(&self, query: &[(&str, &str)]) -> Result<ItemQuery, MediaError> {
        let reply = self.http.get_ok("/Items", query, "application/json", MAX_BODY).await?;
        serde_json::from_slice(&reply.body)
            .map_err(|e| MediaError::Malformed(format!("/Items: {e}")))
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, MediaError> {
        let reply = self.http.get_ok(path, &[], "application/json", MAX_BODY).await?;
        serde_json::from_slice(&reply.body)
            .map_err(|e| MediaError::Malformed(format!("{path}: {e}")))
    }

    async fn post(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<(), MediaError> {
        let url = self.http.url(path, query);
        let reply = self
            .http
            .send(Method::POST, url, &[("Accept", "application/json")], body, MAX_BODY)
            .await?;
        http::check_status(reply).map(|_| ())
    }
}

#[rocket::async_trait]
impl MediaServer for JellyfinClient {
    fn kind(&self) -> ServerKind {
        match self.flavor {
            Flavor::Jellyfin => ServerKind::Jellyfin,
            Flavor::Emby => ServerKind::Emby,
        }
    }

    async fn identify(&self) -> Result<ServerIdentity, MediaError> {
        let info: SystemInfo = self.get_json("/System/Info").await?;
        Ok(ServerIdentity { name: info.server_name, version: info.version, machine_id: info.id })
    }

    async fn sessions(&self) -> Result<Vec<ActiveSession>, MediaError> {
        let rows: Vec<SessionDto> = self.get_json("/Sessions").await?;
        Ok(rows.into_iter().filter_map(|row| row.into_session(self.flavor)).collect())
    }

    async fn users(&self) -> Result<Vec<ServerUser>, MediaError> {
        let users: Vec<UserDto> = match self.flavor {
            Flavor::Jellyfin => self.get_json("/Users").await?,
            Flavor::Emby => self.get_json::<UserQuery>("/Users/Query").await?.items,
        };
        Ok(users
            .into_iter()
            .map(|u| ServerUser {
                external_id: u.id,
                name: u.name,
                is_admin: u.policy.is_some_and(|p| p.is_administrator),
            })
            .collect())
    }

    async fn terminate(&self, session: &ActiveSession, message: &str) -> Result<(), MediaError> {
        if !session.can_control {
            let field = match self.flavor {
                Flavor::Jellyfin => "SupportsMediaControl",
                Flavor::Emby => "SupportsRemoteControl",
            };
            return Err(MediaError::Refused(format!(
                "this client does not accept remote control ({field} is false), so the server cannot stop it"
            )));
        }
        if !message.trim().is_empty() {
            // The viewer should know why; a client that cannot show it still gets stopped.
            if let Err(e) = self.message(session, "Stream stopped", message).await {
                tracing::debug!(error = %e, "message before stop was not delivered");
            }
        }
        let path = format!("/Sessions/{}/Playing/Stop", encode_segment(&session.session_id));
        let body = match self.flavor {
            Flavor::Jellyfin => None,
            Flavor::Emby => Some(serde_json::json!({ "Command": "Stop" })),
        };
        self.post(&path, &[], body).await
    }

    async fn message(
        &self,
        session: &ActiveSession,
        header: &str,
        text: &str,
    ) -> Result<(), MediaError> {
        let path = format!("/Sessions/{}/Message", encode_segment(&session.session_id));
        let timeout = MESSAGE_TIMEOUT_MS.to_string();
        match self.flavor {
            Flavor::Jellyfin => {
                let body = serde_json::json!({ "Header": header, "Text": text, "TimeoutMs": MESSAGE_TIMEOUT_MS });
                self.post(&path, &[], Some(body)).await
            }
            Flavor::Emby => {
                self.post(
                    &path,
                    &[("Text", text), ("Header", header), ("TimeoutMs", &timeout)],
                    None,
                )
                .await
            }
        }
    }

    async fn image(&self, path: &str) -> Result<Image, MediaError> {
        if !path.starts_with("/Items/") {
            return Err(MediaError::Refused(format!(
                "{path:?} is not an image path of this server"
            )));
        }
        let reply = self.http.get_ok(path, &[("maxWidth", "400")], "image/*", MAX_IMAGE).await?;
        let content_type = reply.content_type.unwrap_or_else(|| "image/jpeg".to_owned());
        Ok(Image { content_type, bytes: reply.body })
    }

    async fn libraries(&self) -> Result<Vec<Library>, MediaError> {
        let folders: Vec<VirtualFolderDto> = match self.flavor {
            Flavor::Jellyfin => self.get_json("/Library/VirtualFolders").await?,
            Flavor::Emby => {
                self.get_json::<FolderQuery>("/Library/VirtualFolders/Query").await?.items
            }
        };
        Ok(folders.into_iter().filter_map(VirtualFolderDto::into_library).collect())
    }

    async fn library_items(
        &self,
        library: &Library,
        sink: &mut dyn ItemSink,
    ) -> Result<Listed, MediaError> {
        let types = match library.kind {
            LibraryKind::Movie => "Movie",
            LibraryKind::Show => "Series,Season,Episode",
            LibraryKind::Music | LibraryKind::Other => return Ok(Listed::Complete),
        };
        let admin = self.admin_user().await?;
        let limit = LIBRARY_PAGE.to_string();
        let mut start: u64 = 0;
        let mut first_total = None;
        loop {
            let offset = start.to_string();
            let mut query = vec![
                ("ParentId", library.external_id.as_str()),
                ("Recursive", "true"),
                ("IncludeItemTypes", types),
                ("Fields", ITEM_FIELDS),
                ("SortBy", "DateCreated,SortName"),
                ("SortOrder", "Ascending"),
                ("EnableImages", "false"),
                ("StartIndex", offset.as_str()),
                ("Limit", limit.as_str()),
            ];
            if let Some(admin) = admin.as_deref() {
                query.push(("UserId", admin));
                query.push(("EnableUserData", "true"));
            }
            let answer = self.query_items(&query).await?;
            let returned = answer.items.len() as u64;
            let total = answer.total_record_count.unwrap_or(start + returned);
            if first_total.is_none() {
                sink.expect(total);
                first_total = Some(total);
            }
            start += returned;
            let items = answer.items.into_iter().filter_map(ItemRowDto::into_item).collect();
            if sink.page(items, returned).await.is_break() {
                return Ok(Listed::Partial);
            }
            if returned == 0 || start >= total || start >= MAX_LISTING {
                let stable = first_total == Some(total) && start >= total;
                return Ok(if stable { Listed::Complete } else { Listed::Partial });
            }
        }
    }

    async fn library_count(&self, library: &Library) -> Result<u64, MediaError> {
        let types = match library.kind {
            LibraryKind::Music => "MusicAlbum",
            LibraryKind::Movie => "Movie",
            LibraryKind::Show => "Series",
            LibraryKind::Other => "",
        };
        let mut query =
            vec![("ParentId", library.external_id.as_str()), ("Recursive", "true"), ("Limit", "0")];
        if types.is_empty() {
            query.push(("IsFolder", "false"));
        } else {
            query.push(("IncludeItemTypes", types));
        }
        Ok(self.query_items(&query).await?.total_record_count.unwrap_or(0))
    }

    async fn delete_item(&self, external_id: &str) -> Result<Removed, MediaError> {
        let url = self.http.url(&format!("/Items/{}", encode_segment(external_id)), &[]);
        let reply = self
            .http
            .send(Method::DELETE, url, &[("Accept", "application/json")], None, MAX_BODY)
            .await?;
        match reply.status.as_u16() {
            200..=299 => Ok(Removed::Deleted),
            404 => Ok(Removed::AlreadyGone),
            403 => Err(MediaError::Refused(
                "the server refused the delete (HTTP 403): the API key's user must be allowed to delete media".to_owned(),
            )),
            _ => http::check_status(reply).map(|_| Removed::Deleted),
        }
    }
}

/// Session ids are hex on both servers; anything else is escaped rather than trusted.
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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SystemInfo {
    server_name: Option<String>,
    version: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserQuery {
    #[serde(default)]
    items: Vec<UserDto>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserDto {
    id: String,
    name: String,
    policy: Option<UserPolicy>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserPolicy {
    #[serde(default)]
    is_administrator: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FolderQuery {
    #[serde(default)]
    items: Vec<VirtualFolderDto>,
}

/// `VirtualFolderInfo`: Jellyfin names the folder's id `ItemId`, Emby both `ItemId` and `Id`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VirtualFolderDto {
    name: Option<String>,
    collection_type: Option<String>,
    item_id: Option<String>,
    id: Option<String>,
}

impl VirtualFolderDto {
    fn into_library(self) -> Option<Library> {
        let kind = match self.collection_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("movies") => LibraryKind::Movie,
            Some("tvshows") => LibraryKind::Show,
            Some("music") => LibraryKind::Music,
            _ => LibraryKind::Other,
        };
        Some(Library {
            external_id: self.item_id.or(self.id).filter(|i| !i.is_empty())?,
            name: self.name.unwrap_or_else(|| "Untitled".to_owned()),
            kind,
        })
    }
}

/// `BaseItemDtoQueryResult`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ItemQuery {
    #[serde(default)]
    items: Vec<ItemRowDto>,
    total_record_count: Option<u64>,
}

/// One item of a library listing (`BaseItemDto`); only what we read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ItemRowDto {
    id: Option<String>,
    name: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    production_year: Option<i64>,
    series_id: Option<String>,
    series_name: Option<String>,
    index_number: Option<i64>,
    parent_index_number: Option<i64>,
    date_created: Option<String>,
    width: Option<i64>,
    height: Option<i64>,
    #[serde(default)]
    provider_ids: std::collections::HashMap<String, Option<String>>,
    user_data: Option<UserDataDto>,
    #[serde(default)]
    media_sources: Vec<LibrarySourceDto>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserDataDto {
    #[serde(default)]
    play_count: i64,
    #[serde(default)]
    played: bool,
    last_played_date: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LibrarySourceDto {
    size: Option<i64>,
    #[serde(default)]
    media_streams: Vec<MediaStreamDto>,
}

/// An ISO 8601 time as Jellyfin and Emby write it (up to 7 decimals, `Z`), in milliseconds.
fn parse_time(raw: &str) -> Option<i64> {
    let ms = raw.trim().parse::<jiff::Timestamp>().ok()?.as_millisecond();
    // 0001-01-01 means "never" in .NET.
    (ms > 0).then_some(ms)
}

impl ItemRowDto {
    /// The item, or `None` for what is not a movie, show, season or episode.
    pub fn into_item(self) -> Option<LibraryItem> {
        let kind = match self.kind.as_deref()? {
            "Movie" => ItemKind::Movie,
            "Series" => ItemKind::Show,
            "Season" => ItemKind::Season,
            "Episode" => ItemKind::Episode,
            _ => return None,
        };
        let id = self.id.filter(|i| !i.is_empty())?;
        let mut ids = ExternalIds::default();
        for (provider, value) in &self.provider_ids {
            if let Some(value) = value {
                ids.add(provider, value);
            }
        }
        let mut size_bytes = 0;
        let (mut width, mut height) = (self.width, self.height);
        let mut best = super::library::effective_height(width, height);
        for source in &self.media_sources {
            size_bytes += source.size.unwrap_or(0).max(0);
            for video in source.media_streams.iter().filter(|s| s.is("Video")) {
                let h = super::library::effective_height(video.width, video.height);
                if h > best {
                    (best, width, height) = (h, video.width, video.height);
                }
            }
        }
        let user = self.user_data;
        let view_count = user
            .as_ref()
            .map_or(0, |u| if u.played { u.play_count.max(1) } else { u.play_count.max(0) });
        let last_viewed_at =
            user.as_ref().and_then(|u| u.last_played_date.as_deref()).and_then(parse_time);
        let child = matches!(kind, ItemKind::Season | ItemKind::Episode);
        let season_number = match kind {
            ItemKind::Season => self.index_number,
            ItemKind::Episode => self.parent_index_number,
            _ => None,
        };
        let title =
            self.name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| match season_number {
                Some(n) if kind == ItemKind::Season => format!("Season {n}"),
                _ => "Untitled".to_owned(),
            });
        Some(LibraryItem {
            thumb: Some(format!("/Items/{id}/Images/Primary")),
            external_id: id,
            kind: Some(kind),
            title,
            year: self.production_year,
            show_external_id: if child { self.series_id } else { None },
            show_title: if child { self.series_name } else { None },
            season_number,
            episode_number: if kind == ItemKind::Episode { self.index_number } else { None },
            added_at: self.date_created.as_deref().and_then(parse_time),
            last_viewed_at,
            view_count,
            size_bytes,
            width,
            height,
            ids,
        })
    }
}

/// Parses a `/Library/VirtualFolders` (Jellyfin) or `/Library/VirtualFolders/Query` (Emby)
/// body (for tests and the simulator's checks).
pub fn parse_virtual_folders(body: &[u8], flavor: Flavor) -> Result<Vec<Library>, MediaError> {
    let folders: Vec<VirtualFolderDto> = match flavor {
        Flavor::Jellyfin => serde_json::from_slice(body),
        Flavor::Emby => serde_json::from_slice::<FolderQuery>(body).map(|q| q.items),
    }
    .map_err(|e| MediaError::Malformed(format!("virtual folders: {e}")))?;
    Ok(folders.into_iter().filter_map(VirtualFolderDto::into_library).collect())
}

/// Parses a `/Items` body into library items (for tests and the simulator's checks).
pub fn parse_items(body: &[u8]) -> Result<(Vec<LibraryItem>, Option<u64>), MediaError> {
    let answer: ItemQuery =
        serde_json::from_slice(body).map_err(|e| MediaError::Malformed(format!("/Items: {e}")))?;
    Ok((
        answer.items.into_iter().filter_map(ItemRowDto::into_item).collect(),
        answer.total_record_count,
    ))
}

/// A row of `GET /Sessions` (`SessionInfoDto`); only what we read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionDto {
    id: Option<String>,
    user_id: Option<String>,
    user_name: Option<String>,
    client: Option<String>,
    device_name: Option<String>,
    device_id: Option<String>,
    device_type: Option<String>,
    application_version: Option<String>,
    remote_end_point: Option<String>,
    now_playing_item: Option<ItemDto>,
    play_state: Option<PlayStateDto>,
    transcoding_info: Option<TranscodingDto>,
    /// Jellyfin.
    supports_media_control: Option<bool>,
    /// Emby.
    supports_remote_control: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ItemDto {
    id: Option<String>,
    name: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    extra_type: Option<String>,
    series_name: Option<String>,
    series_id: Option<String>,
    season_name: Option<String>,
    album: Option<String>,
    album_artist: Option<String>,
    album_id: Option<String>,
    index_number: Option<i64>,
    parent_index_number: Option<i64>,
    production_year: Option<i64>,
    run_time_ticks: Option<i64>,
    #[serde(default)]
    media_streams: Vec<MediaStreamDto>,
    #[serde(default)]
    media_sources: Vec<MediaSourceDto>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MediaSourceDto {
    container: Option<String>,
    bitrate: Option<i64>,
    #[serde(default)]
    media_streams: Vec<MediaStreamDto>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MediaStreamDto {
    /// "Video"/"Audio"/"Subtitle" from the HTTP API; 1/0/2 in some serialized test data.
    #[serde(rename = "Type")]
    kind: Option<serde_json::Value>,
    codec: Option<String>,
    width: Option<i64>,
    height: Option<i64>,
}

impl MediaStreamDto {
    fn is(&self, wanted: &str) -> bool {
        match &self.kind {
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case(wanted),
            Some(serde_json::Value::Number(n)) => {
                matches!(
                    (wanted, n.as_i64()),
                    ("Audio", Some(0)) | ("Video", Some(1)) | ("Subtitle", Some(2))
                )
            }
            // The enum's default (0) is left out when serialized.
            None => wanted == "Audio",
            _ => false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PlayStateDto {
    position_ticks: Option<i64>,
    #[serde(default)]
    is_paused: bool,
    play_method: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TranscodingDto {
    is_video_direct: Option<bool>,
    is_audio_direct: Option<bool>,
    video_codec: Option<String>,
    audio_codec: Option<String>,
    container: Option<String>,
    /// bits per second.
    bitrate: Option<i64>,
    height: Option<i64>,
    /// Jellyfin.
    hardware_acceleration_type: Option<String>,
    /// Emby.
    video_decoder_is_hardware: Option<bool>,
    video_encoder_is_hardware: Option<bool>,
    #[serde(default)]
    transcode_reasons: TranscodeReasons,
}

/// Jellyfin writes a list; older servers wrote one comma-separated string.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum TranscodeReasons {
    List(Vec<String>),
    Joined(String),
    #[default]
    None,
}

impl TranscodeReasons {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::List(v) => v,
            Self::Joined(s) => {
                s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
            }
            Self::None => Vec::new(),
        }
    }
}

impl SessionDto {
    /// The playback in this row, or `None` for idle clients, extras and rows we cannot
    /// attribute to a user.
    pub fn into_session(self, flavor: Flavor) -> Option<ActiveSession> {
        let item = self.now_playing_item?;
        let kind = item.kind.as_deref().unwrap_or_default();
        if kind.eq_ignore_ascii_case("Trailer") || item.extra_type.is_some() {
            return None;
        }
        let session_id = self.id?;
        let user_id = self.user_id?;
        let media_type = match kind {
            "Movie" | "MusicVideo" => MediaType::Movie,
            "Episode" => MediaType::Episode,
            "Audio" | "AudioBook" => MediaType::Track,
            "TvChannel" | "LiveTvChannel" | "LiveTvProgram" | "Program" => MediaType::Live,
            "Video" => MediaType::Clip,
            _ => MediaType::Other,
        };
        let item_id = item
            .id
            .clone()
            .unwrap_or_else(|| format!("{kind}:{}", item.name.clone().unwrap_or_default()));
        let thumb_id = match media_type {
            MediaType::Episode => item.series_id.clone(),
            MediaType::Track => item.album_id.clone(),
            _ => None,
        }
        .or_else(|| item.id.clone());

        let play_state = self.play_state;
        let state = if play_state.as_ref().is_some_and(|p| p.is_paused) {
            PlaybackState::Paused
        } else {
            PlaybackState::Playing
        };
        let progress_ms =
            play_state.as_ref().and_then(|p| p.position_ticks).map(|t| t / TICKS_PER_MS);
        let play_method = play_state.as_ref().and_then(|p| p.play_method.clone());
        let stream = stream_info(&item, self.transcoding_info, play_method.as_deref());
        let can_control = match flavor {
            Flavor::Jellyfin => self.supports_media_control,
            Flavor::Emby => self.supports_remote_control,
        }
        .unwrap_or(true);

        let (parent_title, grandparent_title, grandparent_id) = match media_type {
            MediaType::Episode => (item.season_name, item.series_name, item.series_id),
            MediaType::Track => (item.album, item.album_artist, item.album_id),
            _ => (None, None, None),
        };
        let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());

        Some(ActiveSession {
            control_id: Some(session_id.clone()),
            session_id,
            user: UserRef {
                external_id: user_id,
                name: self.user_name.unwrap_or_else(|| "Unknown user".to_owned()),
                thumb: None,
            },
            item: Item {
                id: item_id,
                grandparent_id,
                media_type: Some(media_type),
                title: non_empty(item.name).unwrap_or_else(|| "Untitled".to_owned()),
                parent_title: non_empty(parent_title),
                grandparent_title: non_empty(grandparent_title),
                season: if media_type == MediaType::Episode {
                    item.parent_index_number
                } else {
                    None
                },
                episode: if media_type == MediaType::Episode { item.index_number } else { None },
                year: item.production_year,
                library_id: None,
                library_name: None,
                thumb: thumb_id.map(|id| format!("/Items/{id}/Images/Primary")),
                duration_ms: item.run_time_ticks.map(|t| t / TICKS_PER_MS).filter(|d| *d > 0),
            },
            player: Player {
                device_id: self.device_id.unwrap_or_else(|| {
                    format!(
                        "{}|{}",
                        self.client.as_deref().unwrap_or("?"),
                        self.device_name.as_deref().unwrap_or("?")
                    )
                }),
                name: self.device_name,
                platform: self.device_type.or_else(|| self.client.clone()),
                product: self.client,
                version: self.application_version,
            },
            ip: self.remote_end_point.as_deref().and_then(parse_ip),
            server_says_local: false,
            state,
            progress_ms,
            stream,
            can_control,
        })
    }
}

fn stream_info(
    item: &ItemDto,
    transcoding: Option<TranscodingDto>,
    play_method: Option<&str>,
) -> StreamInfo {
    // The item's own streams, else those of its first media source.
    let streams: Vec<&MediaStreamDto> = if item.media_streams.is_empty() {
        item.media_sources.first().map(|s| s.media_streams.iter().collect()).unwrap_or_default()
    } else {
        item.media_streams.iter().collect()
    };
    let source_video = streams.iter().find(|s| s.is("Video"));
    let source_audio = streams.iter().find(|s| s.is("Audio"));
    let source = item.media_sources.first();
    let source_resolution = source_video.and_then(|s| s.height).and_then(resolution_from_height);
    let source_bitrate_kbps = source.and_then(|s| s.bitrate).map(|b| b / 1000);

    let Some(t) = transcoding else {
        let decision = match play_method {
            Some("DirectStream") => Decision::DirectStream,
            Some("Transcode") => Decision::Transcode,
            _ => Decision::DirectPlay,
        };
        let word = if decision == Decision::DirectPlay { "direct play" } else { "copy" };
        return StreamInfo {
            decision,
            video_decision: source_video.map(|_| word.to_owned()),
            audio_decision: source_audio.map(|_| word.to_owned()),
            stream_resolution: source_resolution.clone(),
            source_resolution,
            source_video_codec: source_video.and_then(|s| s.codec.clone()),
            stream_video_codec: source_video.and_then(|s| s.codec.clone()),
            source_audio_codec: source_audio.and_then(|s| s.codec.clone()),
            stream_audio_codec: source_audio.and_then(|s| s.codec.clone()),
            container: source.and_then(|s| s.container.clone()),
            source_bitrate_kbps,
            bandwidth_kbps: source_bitrate_kbps,
            ..StreamInfo::default()
        };
    };

    let word =
        |direct: Option<bool>| direct.map(|d| if d { "copy" } else { "transcode" }.to_owned());
    let video_decision = word(t.is_video_direct);
    let audio_decision = word(t.is_audio_direct);
    let by_flags = Decision::from_parts(video_decision.as_deref(), audio_decision.as_deref());
    // PlayMethod first; "Transcode" with both streams copied is a remux: direct stream.
    let decision = match play_method {
        Some("DirectPlay") => Decision::DirectPlay,
        Some("DirectStream") => Decision::DirectStream,
        _ if video_decision.is_none() && audio_decision.is_none() => Decision::Transcode,
        _ => by_flags,
    };
    let video_transcoded = video_decision.as_deref() == Some("transcode");
    let audio_transcoded = audio_decision.as_deref() == Some("transcode");
    let hw_accel = t
        .hardware_acceleration_type
        .as_deref()
        .is_some_and(|h| !h.is_empty() && !h.eq_ignore_ascii_case("none"));
    StreamInfo {
        decision,
        video_decision,
        audio_decision,
        transcode_reasons: t.transcode_reasons.into_vec(),
        hw_decode: t.video_decoder_is_hardware.unwrap_or(hw_accel && video_transcoded),
        hw_encode: t.video_encoder_is_hardware.unwrap_or(hw_accel && video_transcoded),
        stream_resolution: if video_transcoded {
            t.height.and_then(resolution_from_height).or(source_resolution.clone())
        } else {
            source_resolution.clone()
        },
        source_resolution,
        source_video_codec: source_video.and_then(|s| s.codec.clone()),
        stream_video_codec: if video_transcoded {
            t.video_codec.clone()
        } else {
            source_video.and_then(|s| s.codec.clone())
        },
        source_audio_codec: source_audio.and_then(|s| s.codec.clone()),
        stream_audio_codec: if audio_transcoded {
            t.audio_codec.clone()
        } else {
            source_audio.and_then(|s| s.codec.clone())
        },
        container: t.container.or_else(|| source.and_then(|s| s.container.clone())),
        source_bitrate_kbps,
        bandwidth_kbps: t.bitrate.map(|b| b / 1000).or(source_bitrate_kbps),
    }
}

/// Parses a `/Sessions` body (for tests and the simulator's checks).
pub fn parse_sessions(body: &[u8], flavor: Flavor) -> Result<Vec<ActiveSession>, MediaError> {
    let rows: Vec<SessionDto> = serde_json::from_slice(body)
        .map_err(|e| MediaError::Malformed(format!("/Sessions: {e}")))?;
    Ok(rows.into_iter().filter_map(|r| r.into_session(flavor)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jellyfin_row_with_a_remux() {
        let body = br#"[{"Id":"abc","UserId":"u1","UserName":"bob","Client":"Jellyfin Web","DeviceName":"Firefox","DeviceId":"dev","RemoteEndPoint":"[2001:db8::7]:443","SupportsMediaControl":false,
            "PlayState":{"PositionTicks":600000000,"IsPaused":true,"PlayMethod":"Transcode"},
            "NowPlayingItem":{"Id":"i1","Name":"Pilot","Type":"Episode","SeriesName":"Show","SeriesId":"s1","SeasonName":"Season 1","IndexNumber":1,"ParentIndexNumber":1,"RunTimeTicks":36000000000,
              "MediaStreams":[{"Type":"Video","Codec":"hevc","Height":2160},{"Type":"Audio","Codec":"eac3"}]},
            "TranscodingInfo":{"IsVideoDirect":true,"IsAudioDirect":true,"Container":"mp4","Bitrate":25000000,"TranscodeReasons":"ContainerNotSupported"},
            "SomethingNew":{"x":1}}]"#;
        let s = &parse_sessions(body, Flavor::Jellyfin).unwrap()[0];
        assert_eq!(s.state, PlaybackState::Paused);
        assert_eq!(s.progress_ms, Some(60_000));
        assert_eq!(s.item.duration_ms, Some(3_600_000));
        assert_eq!((s.item.season, s.item.episode), (Some(1), Some(1)));
        assert_eq!(s.item.grandparent_title.as_deref(), Some("Show"));
        assert_eq!(s.item.thumb.as_deref(), Some("/Items/s1/Images/Primary"));
        assert_eq!(s.ip.unwrap().to_string(), "2001:db8::7");
        assert_eq!(s.stream.decision, Decision::DirectStream, "both streams copied: a remux");
        assert_eq!(s.stream.source_resolution.as_deref(), Some("4K"));
        assert_eq!(s.stream.bandwidth_kbps, Some(25_000));
        assert_eq!(s.stream.transcode_reasons, ["ContainerNotSupported"]);
        assert!(!s.can_control);
    }

    #[test]
    fn emby_reads_supports_remote_control() {
        let body = br#"[{"Id":"e1","UserId":"u","UserName":"x","SupportsRemoteControl":false,"SupportsMediaControl":true,"NowPlayingItem":{"Id":"1","Name":"M","Type":"Movie"}}]"#;
        assert!(!parse_sessions(body, Flavor::Emby).unwrap()[0].can_control);
        assert!(parse_sessions(body, Flavor::Jellyfin).unwrap()[0].can_control);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [&b""[..], b"{}", b"[{\"Id\": 5}]", b"null", b"[1]"] {
            assert!(
                parse_sessions(bad, Flavor::Jellyfin).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn segments_are_escaped() {
        assert_eq!(encode_segment("abc-123"), "abc-123");
        assert_eq!(encode_segment("../x y"), "..%2Fx%20y");
    }
}
