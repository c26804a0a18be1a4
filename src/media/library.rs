//! The vendor-neutral picture of a media server's libraries: what the Plex and Jellyfin/Emby
//! clients turn `/library/sections` and `/Library/VirtualFolders` (and their items) into.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a library holds. Only movie and show libraries have their items synced; music and
/// other libraries are listed with the count the server gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LibraryKind {
    Movie,
    Show,
    Music,
    Other,
}

impl LibraryKind {
    pub const ALL: [LibraryKind; 4] = [Self::Movie, Self::Show, Self::Music, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Movie => "movie",
            Self::Show => "show",
            Self::Music => "music",
            Self::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Movie => "Movies",
            Self::Show => "Shows",
            Self::Music => "Music",
            Self::Other => "Other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Movie and show libraries are synced item by item (maintenance works on them).
    pub fn has_items(self) -> bool {
        matches!(self, Self::Movie | Self::Show)
    }
}

impl fmt::Display for LibraryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one item of a library is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Movie,
    Show,
    Season,
    Episode,
}

impl ItemKind {
    pub const ALL: [ItemKind; 4] = [Self::Movie, Self::Show, Self::Season, Self::Episode];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Movie => "movie",
            Self::Show => "show",
            Self::Season => "season",
            Self::Episode => "episode",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Movie => "Movie",
            Self::Show => "Show",
            Self::Season => "Season",
            Self::Episode => "Episode",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A library as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// Plex section key, Jellyfin/Emby virtual folder `ItemId`.
    pub external_id: String,
    pub name: String,
    pub kind: LibraryKind,
}

/// The ids other services know a title by (TMDB and TVDB numbers, `IMDb` `tt...`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalIds {
    pub tmdb: Option<String>,
    pub tvdb: Option<String>,
    pub imdb: Option<String>,
}

impl ExternalIds {
    pub fn is_empty(&self) -> bool {
        self.tmdb.is_none() && self.tvdb.is_none() && self.imdb.is_none()
    }

    /// Records `id` under `provider` ("tmdb", "themoviedb", "tvdb", "thetvdb", "imdb", any
    /// case), keeping the first value seen. Ids that cannot be one are ignored.
    pub fn add(&mut self, provider: &str, id: &str) {
        let id = id.trim();
        let slot = match provider.to_ascii_lowercase().as_str() {
            "tmdb" | "themoviedb" => &mut self.tmdb,
            "tvdb" | "thetvdb" => &mut self.tvdb,
            "imdb" => &mut self.imdb,
            _ => return,
        };
        let valid = match provider.to_ascii_lowercase().as_str() {
            "imdb" => {
                id.len() > 2 && id.starts_with("tt") && id[2..].bytes().all(|b| b.is_ascii_digit())
            }
            _ => !id.is_empty() && id != "0" && id.bytes().all(|b| b.is_ascii_digit()),
        };
        if valid && slot.is_none() {
            *slot = Some(id.to_owned());
        }
    }

    /// Reads a Plex guid: `tmdb://603`, `imdb://tt0133093`, `tvdb://121361`, or a legacy
    /// agent's `com.plexapp.agents.imdb://tt0133093?lang=en` /
    /// `com.plexapp.agents.thetvdb://88651/1/2?lang=en` (the show's id comes first).
    pub fn add_guid(&mut self, guid: &str) {
        let Some((scheme, rest)) = guid.split_once("://") else { return };
        let provider = scheme.rsplit('.').next().unwrap_or(scheme);
        let id = rest.split(['?', '/']).next().unwrap_or_default();
        self.add(provider, id);
    }
}

/// One item of a library, normalized. Times are Unix milliseconds, sizes bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibraryItem {
    /// Plex ratingKey, Jellyfin/Emby item Id.
    pub external_id: String,
    pub kind: Option<ItemKind>,
    pub title: String,
    pub year: Option<i64>,
    /// Seasons and episodes: the show's external id and title.
    pub show_external_id: Option<String>,
    pub show_title: Option<String>,
    /// Seasons: their number; episodes: their season's.
    pub season_number: Option<i64>,
    pub episode_number: Option<i64>,
    pub added_at: Option<i64>,
    /// When the server's own account last finished it (Plex `lastViewedAt`, Jellyfin and
    /// Emby `UserData.LastPlayedDate` of the admin user).
    pub last_viewed_at: Option<i64>,
    pub view_count: i64,
    /// Files of movies and episodes (every version, every part); 0 for shows and seasons.
    pub size_bytes: i64,
    /// Of the best video version.
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub ids: ExternalIds,
    /// Path of the poster on the media server.
    pub thumb: Option<String>,
}

impl LibraryItem {
    pub fn kind(&self) -> ItemKind {
        self.kind.unwrap_or(ItemKind::Movie)
    }
}

/// The height a picture of `width` × `height` is called by: a 1920 × 800 scope film is
/// 1080p and a 1280 × 544 one 720p, so the width counts as much as the height (16:9).
pub fn effective_height(width: Option<i64>, height: Option<i64>) -> Option<i64> {
    let from_width = width.filter(|w| *w > 0).map(|w| w * 9 / 16);
    match (height.filter(|h| *h > 0), from_width) {
        (Some(h), Some(w)) => Some(h.max(w)),
        (h, w) => h.or(w),
    }
}

/// Where a listing of library items sends what it reads, page by page, so a library of any
/// size is never held in memory whole.
#[rocket::async_trait]
pub trait ItemSink: Send {
    /// The listing learned that `count` more items are coming (a part's total).
    fn expect(&mut self, count: u64);

    /// Takes one page, which covered `entries` of the listing's entries (Plex's seasons are
    /// read off their episodes, so a page may hold more items than entries). `Break` stops
    /// the listing (the sync was cancelled or failed to store it).
    async fn page(&mut self, items: Vec<LibraryItem>, entries: u64) -> std::ops::ControlFlow<()>;
}

/// How a listing ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// Every item was read, and the library did not change size meanwhile: what was not
    /// seen is gone from the server.
    Complete,
    /// The sink stopped it, or the library changed while it was read (an item added or
    /// removed shifts the pages): what was not seen may still be there.
    Partial,
}

/// What a delete on the media server found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Deleted,
    /// The server no longer had it (404): not an error.
    AlreadyGone,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_pictures_are_named_by_their_width() {
        assert_eq!(effective_height(Some(1280), Some(544)), Some(720));
        assert_eq!(effective_height(Some(1920), Some(800)), Some(1080));
        assert_eq!(effective_height(Some(1440), Some(1080)), Some(1080), "4:3 by its height");
        assert_eq!(effective_height(Some(640), Some(368)), Some(368));
        assert_eq!(effective_height(None, Some(480)), Some(480));
        assert_eq!(effective_height(Some(0), None), None);
    }

    #[test]
    fn guids_of_every_agent() {
        let mut ids = ExternalIds::default();
        for guid in [
            "plex://movie/5d776841103a2d001f56a97b",
            "imdb://tt13015952",
            "tmdb://2434012",
            "tvdb://7945991",
            "tmdb://999",
        ] {
            ids.add_guid(guid);
        }
        assert_eq!(ids.imdb.as_deref(), Some("tt13015952"));
        assert_eq!(ids.tmdb.as_deref(), Some("2434012"), "the first one wins");
        assert_eq!(ids.tvdb.as_deref(), Some("7945991"));

        let mut legacy = ExternalIds::default();
        legacy.add_guid("com.plexapp.agents.thetvdb://88651/1/3?lang=en");
        legacy.add_guid("com.plexapp.agents.imdb://tt0123456?lang=en");
        legacy.add_guid("com.plexapp.agents.themoviedb://603?lang=en");
        assert_eq!(legacy.tvdb.as_deref(), Some("88651"));
        assert_eq!(legacy.imdb.as_deref(), Some("tt0123456"));
        assert_eq!(legacy.tmdb.as_deref(), Some("603"));

        let mut junk = ExternalIds::default();
        for guid in ["local://5", "imdb://nm123", "tmdb://", "tvdb://0", "tmdb://12a", "nonsense"] {
            junk.add_guid(guid);
        }
        assert!(junk.is_empty(), "{junk:?}");
    }
}
