//! Simulated libraries: movies, and shows with seasons and episodes, each with the size,
//! resolution, dates and play state a real server reports; written in Plex's XML
//! (`/library/sections`, `/library/sections/{key}/all`) and Jellyfin's and Emby's JSON
//! (`/Library/VirtualFolders`, `/Items`), in the shapes of the captures in
//! `tests/fixtures/plex` and `tests/fixtures/jellyfin`. Deleting works: the item leaves the
//! world.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::media::library::LibraryKind;

/// A library of a simulated server.
#[derive(Debug, Clone, Default)]
pub struct SimLibrary {
    /// Plex section key, Jellyfin/Emby folder id.
    pub key: String,
    pub name: String,
    pub kind: Option<LibraryKind>,
    pub movies: Vec<SimMovie>,
    pub shows: Vec<SimShow>,
    /// Music and other libraries: how many items the server counts.
    pub count: u64,
}

impl SimLibrary {
    pub fn kind(&self) -> LibraryKind {
        self.kind.unwrap_or(LibraryKind::Other)
    }
}

/// Play state and file of one video. Times in Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimFile {
    pub added_at: i64,
    /// When the server's own account last watched it.
    pub last_viewed_at: Option<i64>,
    pub view_count: i64,
    pub size_bytes: i64,
    pub width: i64,
    pub height: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimMovie {
    pub id: String,
    pub title: String,
    pub year: i64,
    pub tmdb: Option<String>,
    pub imdb: Option<String>,
    pub file: SimFile,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimShow {
    pub id: String,
    pub title: String,
    pub year: i64,
    pub tvdb: Option<String>,
    pub tmdb: Option<String>,
    pub added_at: i64,
    pub seasons: Vec<SimSeason>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimSeason {
    pub id: String,
    pub number: i64,
    pub episodes: Vec<SimEpisode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimEpisode {
    pub id: String,
    pub number: i64,
    pub title: String,
    pub file: SimFile,
}

/// A movie of `gigabytes` at `height` lines (16:9 width), added `added_at`.
pub fn movie(
    id: &str,
    title: &str,
    year: i64,
    added_at: i64,
    gigabytes: f64,
    height: i64,
) -> SimMovie {
    SimMovie {
        id: id.to_owned(),
        title: title.to_owned(),
        year,
        tmdb: None,
        imdb: None,
        file: SimFile {
            added_at,
            last_viewed_at: None,
            view_count: 0,
            #[expect(clippy::cast_possible_truncation, reason = "a simulated size")]
            size_bytes: (gigabytes * 1e9) as i64,
            width: height * 16 / 9,
            height,
        },
    }
}

/// A show with `seasons` seasons of `episodes` episodes, each `gigabytes` at 1080p. Ids:
/// the show `id`, seasons `id`s`n`, episodes `id`s`n`e`m`.
pub fn show(
    id: &str,
    title: &str,
    year: i64,
    added_at: i64,
    seasons: i64,
    episodes: i64,
    gigabytes: f64,
) -> SimShow {
    SimShow {
        id: id.to_owned(),
        title: title.to_owned(),
        year,
        tvdb: None,
        tmdb: None,
        added_at,
        seasons: (1..=seasons)
            .map(|s| SimSeason {
                id: format!("{id}s{s}"),
                number: s,
                episodes: (1..=episodes)
                    .map(|e| SimEpisode {
                        id: format!("{id}s{s}e{e}"),
                        number: e,
                        title: format!("Episode {e}"),
                        file: SimFile {
                            added_at: added_at + s * 86_400_000,
                            #[expect(
                                clippy::cast_possible_truncation,
                                reason = "a simulated size"
                            )]
                            size_bytes: (gigabytes * 1e9) as i64,
                            width: 1920,
                            height: 1080,
                            ..SimFile::default()
                        },
                    })
                    .collect(),
            })
            .collect(),
    }
}

impl SimShow {
    pub fn episodes(&self) -> impl Iterator<Item = (&SimSeason, &SimEpisode)> {
        self.seasons.iter().flat_map(|s| s.episodes.iter().map(move |e| (s, e)))
    }

    pub fn episode_mut(&mut self, id: &str) -> Option<&mut SimEpisode> {
        self.seasons.iter_mut().flat_map(|s| s.episodes.iter_mut()).find(|e| e.id == id)
    }
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimDelete {
    Deleted,
    NotFound,
}

/// Removes a movie, show, season or episode from `libraries`.
pub fn delete(libraries: &mut [SimLibrary], id: &str) -> SimDelete {
    for library in libraries {
        if let Some(i) = library.movies.iter().position(|m| m.id == id) {
            library.movies.remove(i);
            return SimDelete::Deleted;
        }
        if let Some(i) = library.shows.iter().position(|s| s.id == id) {
            library.shows.remove(i);
            return SimDelete::Deleted;
        }
        for show in &mut library.shows {
            if let Some(i) = show.seasons.iter().position(|s| s.id == id) {
                show.seasons.remove(i);
                return SimDelete::Deleted;
            }
            for season in &mut show.seasons {
                if let Some(i) = season.episodes.iter().position(|e| e.id == id) {
                    season.episodes.remove(i);
                    return SimDelete::Deleted;
                }
            }
        }
    }
    SimDelete::NotFound
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

fn secs(ms: i64) -> i64 {
    ms / 1000
}

fn plex_resolution(height: i64) -> String {
    match height {
        h if h >= 2000 => "4k".to_owned(),
        h if h < 480 => "sd".to_owned(),
        h => h.to_string(),
    }
}

/// `GET /library/sections`.
pub fn plex_sections(libraries: &[SimLibrary]) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"{}\" allowSync=\"0\" title1=\"Plex Library\">\n",
        libraries.len()
    );
    for l in libraries {
        let kind = match l.kind() {
            LibraryKind::Movie => "movie",
            LibraryKind::Show => "show",
            LibraryKind::Music => "artist",
            LibraryKind::Other => "photo",
        };
        let _ = writeln!(
            out,
            "<Directory allowSync=\"1\" key=\"{}\" type=\"{kind}\" title=\"{}\" agent=\"tv.plex.agents.{kind}\" language=\"en\" uuid=\"{:08x}-0000-4000-8000-000000000000\" hidden=\"0\"><Location id=\"{}\" path=\"/data/{}\" /></Directory>",
            esc(&l.key),
            esc(&l.name),
            l.key.len(),
            esc(&l.key),
            esc(&l.name)
        );
    }
    out.push_str("</MediaContainer>\n");
    out
}

fn plex_guids(out: &mut String, guids: &[(&str, Option<&String>)], include: bool) {
    if !include {
        return;
    }
    for (scheme, id) in guids {
        if let Some(id) = id {
            let _ = write!(out, "<Guid id=\"{scheme}://{}\" />", esc(id));
        }
    }
}

fn plex_media(out: &mut String, id: &str, file: &SimFile) {
    let _ = write!(
        out,
        "<Media id=\"9{id}\" duration=\"6000000\" bitrate=\"8000\" width=\"{}\" height=\"{}\" aspectRatio=\"1.78\" audioChannels=\"6\" audioCodec=\"eac3\" videoCodec=\"{}\" videoResolution=\"{}\" container=\"mkv\"><Part id=\"8{id}\" key=\"/library/parts/8{id}/1/file.mkv\" duration=\"6000000\" file=\"/data/{id}.mkv\" size=\"{}\" container=\"mkv\" /></Media>",
        file.width,
        file.height,
        if file.height > 1080 { "hevc" } else { "h264" },
        plex_resolution(file.height),
        file.size_bytes
    );
}

fn plex_views(file: &SimFile) -> String {
    let mut out = format!(" addedAt=\"{}\"", secs(file.added_at));
    if file.view_count > 0 {
        let _ = write!(out, " viewCount=\"{}\"", file.view_count);
    }
    if let Some(at) = file.last_viewed_at {
        let _ = write!(out, " lastViewedAt=\"{}\"", secs(at));
    }
    out
}

/// One page of `GET /library/sections/{key}/all?type=` (1 movies, 2 shows, 4 episodes):
/// `start` and `size` as `X-Plex-Container-Start`/`-Size` say (`size` `None`: all).
pub fn plex_all(
    library: &SimLibrary,
    plex_type: &str,
    start: usize,
    size: Option<usize>,
    guids: bool,
) -> String {
    let mut entries: Vec<String> = Vec::new();
    let total;
    match plex_type {
        _ if !library.kind().has_items() => total = usize::try_from(library.count).unwrap_or(0),
        "4" => {
            let episodes: Vec<(&SimShow, &SimSeason, &SimEpisode)> = library
                .shows
                .iter()
                .flat_map(|show| show.episodes().map(move |(s, e)| (show, s, e)))
                .collect();
            total = episodes.len();
            for (show, season, e) in
                episodes.into_iter().skip(start).take(size.unwrap_or(usize::MAX))
            {
                let mut out = format!(
                    "<Video ratingKey=\"{}\" key=\"/library/metadata/{}\" parentRatingKey=\"{}\" grandparentRatingKey=\"{}\" guid=\"plex://episode/{}\" type=\"episode\" title=\"{}\" grandparentTitle=\"{}\" parentTitle=\"Season {}\" index=\"{}\" parentIndex=\"{}\" year=\"{}\" thumb=\"/library/metadata/{}/thumb/1700000000\" parentThumb=\"/library/metadata/{}/thumb/1700000000\" grandparentThumb=\"/library/metadata/{}/thumb/1700000000\" duration=\"2700000\"{}>",
                    esc(&e.id),
                    esc(&e.id),
                    esc(&season.id),
                    esc(&show.id),
                    esc(&e.id),
                    esc(&e.title),
                    esc(&show.title),
                    season.number,
                    e.number,
                    season.number,
                    show.year,
                    esc(&e.id),
                    esc(&season.id),
                    esc(&show.id),
                    plex_views(&e.file)
                );
                plex_media(&mut out, &e.id, &e.file);
                out.push_str("</Video>");
                entries.push(out);
            }
        }
        "2" => {
            total = library.shows.len();
            for show in library.shows.iter().skip(start).take(size.unwrap_or(usize::MAX)) {
                let episodes = show.episodes().count();
                let watched = show.episodes().filter(|(_, e)| e.file.view_count > 0).count();
                let last = show.episodes().filter_map(|(_, e)| e.file.last_viewed_at).max();
                let mut out = format!(
                    "<Directory ratingKey=\"{}\" key=\"/library/metadata/{}/children\" guid=\"plex://show/{}\" type=\"show\" title=\"{}\" year=\"{}\" thumb=\"/library/metadata/{}/thumb/1700000000\" leafCount=\"{episodes}\" viewedLeafCount=\"{watched}\" childCount=\"{}\" addedAt=\"{}\"",
                    esc(&show.id),
                    esc(&show.id),
                    esc(&show.id),
                    esc(&show.title),
                    show.year,
                    esc(&show.id),
                    show.seasons.len(),
                    secs(show.added_at)
                );
                if let Some(at) = last {
                    let _ = write!(out, " lastViewedAt=\"{}\"", secs(at));
                }
                out.push('>');
                plex_guids(
                    &mut out,
                    &[("tvdb", show.tvdb.as_ref()), ("tmdb", show.tmdb.as_ref())],
                    guids,
                );
                out.push_str("</Directory>");
                entries.push(out);
            }
        }
        _ => {
            total = library.movies.len();
            for m in library.movies.iter().skip(start).take(size.unwrap_or(usize::MAX)) {
                entries.push(plex_movie(m, guids));
            }
        }
    }
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"{}\" allowSync=\"1\" identifier=\"com.plexapp.plugins.library\" librarySectionID=\"{}\" librarySectionTitle=\"{}\"",
        entries.len(),
        esc(&library.key),
        esc(&library.name)
    );
    if size.is_some() {
        let _ = write!(out, " totalSize=\"{total}\" offset=\"{start}\"");
    }
    out.push_str(">\n");
    for e in entries {
        out.push_str(&e);
        out.push('\n');
    }
    out.push_str("</MediaContainer>\n");
    out
}

/// One movie as `/all` lists it.
pub fn plex_movie(m: &SimMovie, guids: bool) -> String {
    let mut out = format!(
        "<Video ratingKey=\"{}\" key=\"/library/metadata/{}\" guid=\"plex://movie/{}\" type=\"movie\" title=\"{}\" year=\"{}\" thumb=\"/library/metadata/{}/thumb/1700000000\" duration=\"6000000\"{}>",
        esc(&m.id),
        esc(&m.id),
        esc(&m.id),
        esc(&m.title),
        m.year,
        esc(&m.id),
        plex_views(&m.file)
    );
    plex_media(&mut out, &m.id, &m.file);
    plex_guids(&mut out, &[("imdb", m.imdb.as_ref()), ("tmdb", m.tmdb.as_ref())], guids);
    out.push_str("</Video>");
    out
}

/// `GET /Library/VirtualFolders` (Jellyfin: an array; Emby's `/Query`: wrapped).
pub fn jellyfin_folders(libraries: &[SimLibrary], emby: bool) -> Value {
    let folders: Vec<Value> = libraries
        .iter()
        .map(|l| {
            let collection = match l.kind() {
                LibraryKind::Movie => Value::from("movies"),
                LibraryKind::Show => Value::from("tvshows"),
                LibraryKind::Music => Value::from("music"),
                LibraryKind::Other => Value::Null,
            };
            let mut folder = json!({"Name": l.name, "Locations": [format!("/data/{}", l.name)], "CollectionType": collection, "ItemId": l.key, "RefreshStatus": "Idle"});
            if emby {
                folder["Id"] = json!(l.key);
            }
            folder
        })
        .collect();
    if emby {
        json!({"Items": folders, "TotalRecordCount": libraries.len()})
    } else {
        Value::Array(folders)
    }
}

fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| format!("{t:.7}")).unwrap_or_default()
}

fn jellyfin_user_data(id: &str, file: Option<&SimFile>, with_user: bool) -> Option<Value> {
    if !with_user {
        return None;
    }
    let mut data = json!({"PlaybackPositionTicks": 0, "PlayCount": 0, "IsFavorite": false, "Played": false, "Key": id, "ItemId": id});
    if let Some(f) = file {
        data["PlayCount"] = json!(f.view_count);
        data["Played"] = json!(f.view_count > 0);
        if let Some(at) = f.last_viewed_at {
            data["LastPlayedDate"] = json!(iso(at));
        }
    }
    Some(data)
}

fn jellyfin_sources(id: &str, file: &SimFile) -> Value {
    json!([{
        "Protocol": "File", "Id": id, "Path": format!("/data/{id}.mkv"), "Type": "Default", "Container": "mkv",
        "Size": file.size_bytes, "Name": id, "IsRemote": false, "RunTimeTicks": 60_000_000_000_i64,
        "SupportsDirectPlay": true, "Bitrate": 8_000_000,
        "MediaStreams": [
            {"Codec": if file.height > 1080 { "hevc" } else { "h264" }, "Type": "Video", "Width": file.width, "Height": file.height, "Index": 0, "IsDefault": true},
            {"Codec": "eac3", "Type": "Audio", "Channels": 6, "Index": 1, "IsDefault": true}
        ]
    }])
}

/// Every row `GET /Items?ParentId=<library>&Recursive=true&IncludeItemTypes=` lists, in
/// a stable order; `with_user`: `UserId` named the administrator.
pub fn jellyfin_items(library: &SimLibrary, types: &[&str], with_user: bool) -> Vec<Value> {
    let wants = |t: &str| types.is_empty() || types.iter().any(|w| w.eq_ignore_ascii_case(t));
    let mut rows = Vec::new();
    if wants("Movie") {
        for m in &library.movies {
            let mut row = json!({
                "Name": m.title, "Id": m.id, "Type": "Movie", "IsFolder": false, "MediaType": "Video",
                "ProductionYear": m.year, "DateCreated": iso(m.file.added_at),
                "ProviderIds": {"Tmdb": m.tmdb, "Imdb": m.imdb},
                "MediaSources": jellyfin_sources(&m.id, &m.file), "LocationType": "FileSystem",
            });
            if let Some(data) = jellyfin_user_data(&m.id, Some(&m.file), with_user) {
                row["UserData"] = data;
            }
            rows.push(row);
        }
    }
    for show in &library.shows {
        if wants("Series") {
            let mut row = json!({
                "Name": show.title, "Id": show.id, "Type": "Series", "IsFolder": true,
                "ProductionYear": show.year, "DateCreated": iso(show.added_at),
                "ProviderIds": {"Tvdb": show.tvdb, "Tmdb": show.tmdb},
            });
            if let Some(data) = jellyfin_user_data(&show.id, None, with_user) {
                row["UserData"] = data;
            }
            rows.push(row);
        }
        for season in &show.seasons {
            if wants("Season") {
                rows.push(json!({
                    "Name": format!("Season {}", season.number), "Id": season.id, "Type": "Season", "IsFolder": true,
                    "IndexNumber": season.number, "SeriesId": show.id, "SeriesName": show.title, "ParentId": show.id,
                }));
            }
            if wants("Episode") {
                for e in &season.episodes {
                    let mut row = json!({
                        "Name": e.title, "Id": e.id, "Type": "Episode", "IsFolder": false, "MediaType": "Video",
                        "IndexNumber": e.number, "ParentIndexNumber": season.number, "SeriesId": show.id,
                        "SeriesName": show.title, "SeasonId": season.id, "SeasonName": format!("Season {}", season.number),
                        "DateCreated": iso(e.file.added_at), "MediaSources": jellyfin_sources(&e.id, &e.file),
                    });
                    if let Some(data) = jellyfin_user_data(&e.id, Some(&e.file), with_user) {
                        row["UserData"] = data;
                    }
                    rows.push(row);
                }
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::jellyfin::{Flavor, parse_items, parse_virtual_folders};
    use crate::media::library::ItemKind;
    use crate::media::plex::{parse_body, parse_library_page, parse_sections};

    fn libraries() -> Vec<SimLibrary> {
        let mut film = movie("11", "Zoë & <Friends>", 2001, 1_600_000_000_000, 14.2, 720);
        film.tmdb = Some("603".into());
        film.file.view_count = 2;
        film.file.last_viewed_at = Some(1_700_000_000_000);
        let mut cosmos = show("20", "Cosmos", 1980, 1_600_000_000_000, 2, 3, 1.5);
        cosmos.tvdb = Some("72362".into());
        vec![
            SimLibrary {
                key: "1".into(),
                name: "Movies".into(),
                kind: Some(LibraryKind::Movie),
                movies: vec![film, movie("12", "Other", 2002, 1, 1.0, 2160)],
                ..SimLibrary::default()
            },
            SimLibrary {
                key: "2".into(),
                name: "Shows".into(),
                kind: Some(LibraryKind::Show),
                shows: vec![cosmos],
                ..SimLibrary::default()
            },
            SimLibrary {
                key: "3".into(),
                name: "Music".into(),
                kind: Some(LibraryKind::Music),
                count: 40,
                ..SimLibrary::default()
            },
        ]
    }

    #[test]
    fn our_clients_read_what_the_simulated_plex_writes() {
        let libs = libraries();
        let sections =
            parse_sections(&parse_body(plex_sections(&libs).as_bytes(), None).unwrap()).unwrap();
        assert_eq!(
            sections.iter().map(|s| s.kind).collect::<Vec<_>>(),
            [LibraryKind::Movie, LibraryKind::Show, LibraryKind::Music]
        );
        let page = parse_library_page(
            &parse_body(plex_all(&libs[0], "1", 0, Some(1), true).as_bytes(), None).unwrap(),
        )
        .unwrap();
        assert_eq!(page.entries, 1);
        let m = &page.items[0];
        assert_eq!(
            (m.title.as_str(), m.size_bytes, m.height),
            ("Zoë & <Friends>", 14_200_000_000, Some(720))
        );
        assert_eq!(
            (m.view_count, m.last_viewed_at, m.ids.tmdb.as_deref()),
            (2, Some(1_700_000_000_000), Some("603"))
        );
        let episodes = parse_library_page(
            &parse_body(plex_all(&libs[1], "4", 0, None, true).as_bytes(), None).unwrap(),
        )
        .unwrap();
        assert_eq!(episodes.entries, 6);
        assert_eq!(episodes.items.iter().filter(|i| i.kind == Some(ItemKind::Season)).count(), 2);
        let shows = parse_library_page(
            &parse_body(plex_all(&libs[1], "2", 0, Some(50), true).as_bytes(), None).unwrap(),
        )
        .unwrap();
        assert_eq!(shows.items[0].ids.tvdb.as_deref(), Some("72362"));
    }

    #[test]
    fn our_clients_read_what_the_simulated_jellyfin_writes() {
        let libs = libraries();
        for emby in [false, true] {
            let flavor = if emby { Flavor::Emby } else { Flavor::Jellyfin };
            let folders =
                parse_virtual_folders(jellyfin_folders(&libs, emby).to_string().as_bytes(), flavor)
                    .unwrap();
            assert_eq!(folders.len(), 3);
        }
        let rows = jellyfin_items(&libs[1], &["Series", "Season", "Episode"], true);
        let body = json!({"Items": rows, "TotalRecordCount": 9}).to_string();
        let (items, total) = parse_items(body.as_bytes()).unwrap();
        assert_eq!((items.len(), total), (9, Some(9)));
        assert_eq!(items[0].ids.tvdb.as_deref(), Some("72362"));
        assert_eq!(items[2].size_bytes, 1_500_000_000);
        let movies = jellyfin_items(&libs[0], &["Movie"], true);
        let (items, _) = parse_items(json!({"Items": movies}).to_string().as_bytes()).unwrap();
        assert_eq!((items[0].view_count, items[0].last_viewed_at), (2, Some(1_700_000_000_000)));
    }

    #[test]
    fn deleting_removes_movies_shows_and_seasons() {
        let mut libs = libraries();
        assert_eq!(delete(&mut libs, "20s1"), SimDelete::Deleted);
        assert_eq!(libs[1].shows[0].seasons.len(), 1);
        assert_eq!(delete(&mut libs, "11"), SimDelete::Deleted);
        assert_eq!(delete(&mut libs, "11"), SimDelete::NotFound);
        assert_eq!(delete(&mut libs, "20"), SimDelete::Deleted);
        assert!(libs[1].shows.is_empty());
    }
}
