//! Libraries and their items: what the library sync writes, what the pages and the
//! maintenance criteria read, and the roll-up that merges every source of "last watched".

use std::fmt::Write as _;

use rusqlite::{Connection, OptionalExtension as _, Row, Transaction, params};

use crate::error::{AppError, AppResult};
use crate::media::library::{ExternalIds, ItemKind, Library, LibraryItem, LibraryKind};

/// The columns `library_from_row` reads, in its order (with the server's name joined).
macro_rules! library_columns {
    () => {
        "l.id, l.server_id, s.name, l.external_id, l.name, l.kind, l.item_count, l.size_bytes, l.created_at, l.synced_at"
    };
}
const LIST_LIBRARIES: &str = concat!(
    "SELECT ",
    library_columns!(),
    " FROM libraries l JOIN servers s ON s.id = l.server_id WHERE s.deleted_at IS NULL ORDER BY s.name COLLATE NOCASE, l.name COLLATE NOCASE, l.id"
);
const GET_LIBRARY: &str = concat!(
    "SELECT ",
    library_columns!(),
    " FROM libraries l JOIN servers s ON s.id = l.server_id WHERE l.id = ?1 AND s.deleted_at IS NULL"
);
const LIBRARIES_OF_SERVER: &str = concat!(
    "SELECT ",
    library_columns!(),
    " FROM libraries l JOIN servers s ON s.id = l.server_id WHERE l.server_id = ?1 ORDER BY l.id"
);
const UPSERT_LIBRARY: &str = "INSERT INTO libraries (server_id, external_id, name, kind, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (server_id, external_id) DO UPDATE SET name = excluded.name, kind = excluded.kind RETURNING id";
const DELETE_LIBRARY: &str = "DELETE FROM libraries WHERE id = ?1";
const SET_SYNCED: &str = "UPDATE libraries SET synced_at = ?2 WHERE id = ?1";
const SET_COUNT: &str = "UPDATE libraries SET item_count = ?2, size_bytes = 0 WHERE id = ?1";
const REFRESH_TOTALS: &str = "UPDATE libraries SET \
     item_count = (SELECT count(*) FROM library_items i WHERE i.library_id = libraries.id AND i.kind IN ('movie', 'show')), \
     size_bytes = (SELECT coalesce(sum(i.size_bytes), 0) FROM library_items i WHERE i.library_id = libraries.id AND i.kind IN ('movie', 'episode')) \
     WHERE kind IN ('movie', 'show')";

/// The columns `item_from_row` reads, in its order (of `library_items i`). A macro so that
/// `concat!` can build whole statements from it; `db::maintenance` reads items the same way.
macro_rules! library_item_columns {
    () => {
        "i.id, i.library_id, i.server_id, i.external_id, i.kind, i.title, i.year, i.show_external_id, i.show_title, \
         i.season_number, i.episode_number, i.added_at, i.size_bytes, i.width, i.height, i.tmdb_id, i.tvdb_id, \
         i.imdb_id, i.thumb, i.server_last_watched_at, i.server_play_count, i.last_watched_at, i.play_count, \
         i.episode_count, i.watched_episode_count, i.first_seen_at, i.seen_at"
    };
}
pub(crate) use library_item_columns;
const GET_ITEM: &str =
    concat!("SELECT ", library_item_columns!(), " FROM library_items i WHERE i.id = ?1");
const SEASONS_OF: &str = concat!(
    "SELECT ",
    library_item_columns!(),
    " FROM library_items i WHERE i.server_id = ?1 AND i.show_external_id = ?2 AND i.kind = 'season' ORDER BY i.season_number, i.id"
);
const SHOW_OF: &str = concat!(
    "SELECT ",
    library_item_columns!(),
    " FROM library_items i WHERE i.server_id = ?1 AND i.external_id = ?2 AND i.kind = 'show'"
);
const UPSERT_ITEM: &str = "INSERT INTO library_items (library_id, server_id, external_id, kind, title, year, \
     show_external_id, show_title, season_number, episode_number, added_at, size_bytes, width, height, tmdb_id, \
     tvdb_id, imdb_id, thumb, server_last_watched_at, server_play_count, last_watched_at, play_count, \
     first_seen_at, seen_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?19, ?20, ?21, ?21) \
     ON CONFLICT (server_id, external_id) DO UPDATE SET library_id = excluded.library_id, kind = excluded.kind, \
     title = excluded.title, year = excluded.year, show_external_id = excluded.show_external_id, \
     show_title = excluded.show_title, season_number = excluded.season_number, episode_number = excluded.episode_number, \
     added_at = coalesce(excluded.added_at, library_items.added_at), \
     size_bytes = CASE WHEN excluded.kind IN ('movie', 'episode') THEN excluded.size_bytes ELSE library_items.size_bytes END, \
     width = CASE WHEN excluded.kind IN ('movie', 'episode') THEN excluded.width ELSE library_items.width END, \
     height = CASE WHEN excluded.kind IN ('movie', 'episode') THEN excluded.height ELSE library_items.height END, \
     tmdb_id = excluded.tmdb_id, tvdb_id = excluded.tvdb_id, imdb_id = excluded.imdb_id, thumb = excluded.thumb, \
     server_last_watched_at = excluded.server_last_watched_at, server_play_count = excluded.server_play_count, \
     seen_at = excluded.seen_at \
     RETURNING id, first_seen_at = seen_at";
const PRUNE: &str = "DELETE FROM library_items WHERE library_id = ?1 AND seen_at < ?2";
const DELETE_ITEM: &str = "DELETE FROM library_items WHERE id = ?1";
const DELETE_CHILDREN: &str = "DELETE FROM library_items WHERE server_id = ?1 AND show_external_id = ?2 \
     AND (?3 IS NULL OR season_number IS ?3)";
const ITEMS_FIRST_SEEN: &str =
    "SELECT count(*) FROM library_items WHERE library_id = ?1 AND first_seen_at = ?2";

/// The roll-up, in order. Each step is one statement over the whole table (tens of
/// thousands of rows), so it runs in well under a second.
const ROLLUP: &[&str] = &[
    // 1. Every item starts from what its server says.
    "UPDATE library_items SET last_watched_at = server_last_watched_at, play_count = server_play_count",
    // 2. Movies and episodes: Streamwarden's plays of them, by every user.
    "UPDATE library_items SET \
         last_watched_at = max(coalesce(library_items.last_watched_at, h.at), coalesce(h.at, library_items.last_watched_at)), \
         play_count = max(library_items.play_count, h.plays) \
     FROM (SELECT server_id, item_id, max(last_seen_at) AS at, count(*) AS plays FROM plays \
           WHERE status != 'pending' GROUP BY server_id, item_id) AS h \
     WHERE library_items.kind IN ('movie', 'episode') AND h.server_id = library_items.server_id \
       AND h.item_id = library_items.external_id",
    // 3. Seasons and shows are made of their episodes.
    "UPDATE library_items SET size_bytes = 0, width = NULL, height = NULL, episode_count = 0, watched_episode_count = 0 \
     WHERE kind IN ('season', 'show')",
    "UPDATE library_items SET size_bytes = e.size, width = e.width, height = e.height, episode_count = e.episodes, \
         watched_episode_count = e.watched, added_at = coalesce(library_items.added_at, e.added), \
         last_watched_at = max(coalesce(library_items.last_watched_at, e.at), coalesce(e.at, library_items.last_watched_at)), \
         play_count = max(library_items.play_count, e.plays) \
     FROM (SELECT server_id, show_external_id, season_number, sum(size_bytes) AS size, max(width) AS width, \
                  max(height) AS height, count(*) AS episodes, sum(play_count > 0) AS watched, min(added_at) AS added, \
                  max(last_watched_at) AS at, sum(play_count) AS plays \
           FROM library_items WHERE kind = 'episode' AND show_external_id IS NOT NULL \
           GROUP BY server_id, show_external_id, season_number) AS e \
     WHERE library_items.kind = 'season' AND e.server_id = library_items.server_id \
       AND e.show_external_id = library_items.show_external_id AND e.season_number IS library_items.season_number",
    "UPDATE library_items SET size_bytes = e.size, width = e.width, height = e.height, episode_count = e.episodes, \
         watched_episode_count = e.watched, added_at = coalesce(library_items.added_at, e.added), \
         last_watched_at = max(coalesce(library_items.last_watched_at, e.at), coalesce(e.at, library_items.last_watched_at)), \
         play_count = max(library_items.play_count, e.plays) \
     FROM (SELECT server_id, show_external_id, sum(size_bytes) AS size, max(width) AS width, max(height) AS height, \
                  count(*) AS episodes, sum(play_count > 0) AS watched, min(added_at) AS added, \
                  max(last_watched_at) AS at, sum(play_count) AS plays \
           FROM library_items WHERE kind = 'episode' AND show_external_id IS NOT NULL \
           GROUP BY server_id, show_external_id) AS e \
     WHERE library_items.kind = 'show' AND e.server_id = library_items.server_id \
       AND e.show_external_id = library_items.external_id",
    // 4. Plays of a show's episodes whose rows are gone (deleted, or not synced yet) still
    //    count for the show and its season.
    "UPDATE library_items SET \
         last_watched_at = max(coalesce(library_items.last_watched_at, h.at), coalesce(h.at, library_items.last_watched_at)), \
         play_count = max(library_items.play_count, h.plays) \
     FROM (SELECT server_id, grandparent_item_id, season, max(last_seen_at) AS at, count(*) AS plays FROM plays \
           WHERE status != 'pending' AND grandparent_item_id IS NOT NULL \
           GROUP BY server_id, grandparent_item_id, season) AS h \
     WHERE library_items.kind = 'season' AND h.server_id = library_items.server_id \
       AND h.grandparent_item_id = library_items.show_external_id AND h.season IS library_items.season_number",
    "UPDATE library_items SET \
         last_watched_at = max(coalesce(library_items.last_watched_at, h.at), coalesce(h.at, library_items.last_watched_at)), \
         play_count = max(library_items.play_count, h.plays) \
     FROM (SELECT server_id, grandparent_item_id, max(last_seen_at) AS at, count(*) AS plays FROM plays \
           WHERE status != 'pending' AND grandparent_item_id IS NOT NULL \
           GROUP BY server_id, grandparent_item_id) AS h \
     WHERE library_items.kind = 'show' AND h.server_id = library_items.server_id \
       AND h.grandparent_item_id = library_items.external_id",
];

macro_rules! copies_by {
    ($column:literal) => {
        concat!(
            "UPDATE library_items SET \
                 last_watched_at = max(coalesce(library_items.last_watched_at, c.at), coalesce(c.at, library_items.last_watched_at)), \
                 play_count = max(library_items.play_count, c.plays) \
             FROM (SELECT ", $column, " AS external, kind, max(last_watched_at) AS at, max(play_count) AS plays \
                   FROM library_items WHERE ", $column, " IS NOT NULL AND kind IN ('movie', 'show') \
                   GROUP BY ", $column, ", kind HAVING count(*) > 1) AS c \
             WHERE library_items.", $column, " = c.external AND library_items.kind = c.kind"
        )
    };
}

/// 5. Copies of the same movie or show (on another server, or in another library) share
///    their last watched and plays, matched by TMDB, TVDB or `IMDb` id. Run twice, so a copy
///    known by one id and a copy known by another meet through a third.
const ROLLUP_COPIES: [&str; 3] =
    [copies_by!("tmdb_id"), copies_by!("tvdb_id"), copies_by!("imdb_id")];

#[cfg(test)]
pub(crate) fn statements() -> Vec<String> {
    let mut all: Vec<String> = [
        LIST_LIBRARIES,
        GET_LIBRARY,
        LIBRARIES_OF_SERVER,
        UPSERT_LIBRARY,
        DELETE_LIBRARY,
        SET_SYNCED,
        SET_COUNT,
        REFRESH_TOTALS,
        GET_ITEM,
        SEASONS_OF,
        SHOW_OF,
        UPSERT_ITEM,
        PRUNE,
        DELETE_ITEM,
        DELETE_CHILDREN,
        ITEMS_FIRST_SEEN,
        FACTS,
        NEVER_PLAYED,
    ]
    .iter()
    .chain(ROLLUP)
    .chain(&ROLLUP_COPIES)
    .map(|s| (*s).to_owned())
    .collect();
    for sort in ItemSort::ALL {
        for desc in [false, true] {
            all.push(page_sql(sort, desc));
        }
    }
    all
}

/// A library as stored, with its server's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryRow {
    pub id: i64,
    pub server_id: i64,
    pub server_name: String,
    pub external_id: String,
    pub name: String,
    pub kind: LibraryKind,
    /// Movies or shows (music and other libraries: the server's count).
    pub item_count: i64,
    /// Bytes.
    pub size_bytes: i64,
    pub created_at: i64,
    /// The last sync that read it whole, Unix milliseconds.
    pub synced_at: Option<i64>,
}

impl LibraryRow {
    /// What a media client needs to list it again.
    pub fn library(&self) -> Library {
        Library { external_id: self.external_id.clone(), name: self.name.clone(), kind: self.kind }
    }
}

fn kind_error(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?}").into(),
    )
}

fn library_from_row(r: &Row<'_>) -> rusqlite::Result<LibraryRow> {
    let kind: String = r.get(5)?;
    Ok(LibraryRow {
        id: r.get(0)?,
        server_id: r.get(1)?,
        server_name: r.get(2)?,
        external_id: r.get(3)?,
        name: r.get(4)?,
        kind: LibraryKind::parse(&kind).ok_or_else(|| kind_error("library kind", &kind))?,
        item_count: r.get(6)?,
        size_bytes: r.get(7)?,
        created_at: r.get(8)?,
        synced_at: r.get(9)?,
    })
}

/// A movie, show, season or episode as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRow {
    pub id: i64,
    pub library_id: i64,
    pub server_id: i64,
    pub external_id: String,
    pub kind: ItemKind,
    pub title: String,
    pub year: Option<i64>,
    pub show_external_id: Option<String>,
    pub show_title: Option<String>,
    pub season_number: Option<i64>,
    pub episode_number: Option<i64>,
    pub added_at: Option<i64>,
    /// Bytes; shows and seasons: their episodes'.
    pub size_bytes: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub ids: ExternalIds,
    pub thumb: Option<String>,
    pub server_last_watched_at: Option<i64>,
    pub server_play_count: i64,
    /// Merged from the server, the history of every user and copies elsewhere.
    pub last_watched_at: Option<i64>,
    pub play_count: i64,
    pub episode_count: Option<i64>,
    pub watched_episode_count: Option<i64>,
    pub first_seen_at: i64,
    pub seen_at: i64,
}

impl ItemRow {
    /// "Show · Season 2", "Show · S02E03 · Title", "Title (2010)".
    pub fn full_title(&self) -> String {
        let show = self.show_title.as_deref().unwrap_or("?");
        match self.kind {
            ItemKind::Season => format!("{show} · {}", self.title),
            ItemKind::Episode => match (self.season_number, self.episode_number) {
                (Some(s), Some(e)) => format!("{show} · S{s:02}E{e:02} · {}", self.title),
                _ => format!("{show} · {}", self.title),
            },
            ItemKind::Movie | ItemKind::Show => match self.year {
                Some(y) => format!("{} ({y})", self.title),
                None => self.title.clone(),
            },
        }
    }

    /// "1080p", "4K", ... by the width-aware height of its best version.
    pub fn resolution(&self) -> Option<String> {
        crate::media::library::effective_height(self.width, self.height)
            .and_then(crate::media::model::resolution_from_height)
    }
}

/// Reads an item from the first columns of a row ([`library_item_columns`]).
pub(crate) fn item_from_row(r: &Row<'_>) -> rusqlite::Result<ItemRow> {
    let kind: String = r.get(4)?;
    Ok(ItemRow {
        id: r.get(0)?,
        library_id: r.get(1)?,
        server_id: r.get(2)?,
        external_id: r.get(3)?,
        kind: ItemKind::parse(&kind).ok_or_else(|| kind_error("item kind", &kind))?,
        title: r.get(5)?,
        year: r.get(6)?,
        show_external_id: r.get(7)?,
        show_title: r.get(8)?,
        season_number: r.get(9)?,
        episode_number: r.get(10)?,
        added_at: r.get(11)?,
        size_bytes: r.get(12)?,
        width: r.get(13)?,
        height: r.get(14)?,
        ids: ExternalIds { tmdb: r.get(15)?, tvdb: r.get(16)?, imdb: r.get(17)? },
        thumb: r.get(18)?,
        server_last_watched_at: r.get(19)?,
        server_play_count: r.get(20)?,
        last_watched_at: r.get(21)?,
        play_count: r.get(22)?,
        episode_count: r.get(23)?,
        watched_episode_count: r.get(24)?,
        first_seen_at: r.get(25)?,
        seen_at: r.get(26)?,
    })
}

/// Every library of the servers that are not deleted.
pub fn list(conn: &Connection) -> AppResult<Vec<LibraryRow>> {
    let rows = conn
        .prepare_cached(LIST_LIBRARIES)?
        .query_map([], library_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn get(conn: &Connection, id: i64) -> AppResult<Option<LibraryRow>> {
    Ok(conn.prepare_cached(GET_LIBRARY)?.query_row([id], library_from_row).optional()?)
}

/// The libraries a server had at its last sync.
pub fn of_server(conn: &Connection, server_id: i64) -> AppResult<Vec<LibraryRow>> {
    let rows = conn
        .prepare_cached(LIBRARIES_OF_SERVER)?
        .query_map([server_id], library_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Adds a library or refreshes its name and kind; returns its id.
pub fn upsert(conn: &Connection, server_id: i64, library: &Library, now: i64) -> AppResult<i64> {
    Ok(conn.prepare_cached(UPSERT_LIBRARY)?.query_row(
        params![server_id, library.external_id, library.name, library.kind.as_str(), now],
        |r| r.get(0),
    )?)
}

/// Removes a library the server no longer has, with its items.
pub fn delete(conn: &Connection, id: i64) -> AppResult<()> {
    conn.prepare_cached(DELETE_LIBRARY)?.execute([id])?;
    Ok(())
}

/// Records that a sync read the library whole at `at`.
pub fn set_synced(conn: &Connection, id: i64, at: i64) -> AppResult<()> {
    conn.prepare_cached(SET_SYNCED)?.execute(params![id, at])?;
    Ok(())
}

/// The count of a library whose items are not synced (music, other).
pub fn set_count(conn: &Connection, id: i64, count: i64) -> AppResult<()> {
    conn.prepare_cached(SET_COUNT)?.execute(params![id, count])?;
    Ok(())
}

/// What happened to the rows of one page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upserted {
    /// Ids of the items this sync saw for the first time.
    pub added: Vec<i64>,
    pub written: usize,
}

/// Writes one page of items seen at `now` (the sync's start) into `library_id`.
pub fn upsert_items(
    tx: &Transaction<'_>,
    library_id: i64,
    server_id: i64,
    items: &[LibraryItem],
    now: i64,
) -> AppResult<Upserted> {
    let mut statement = tx.prepare_cached(UPSERT_ITEM)?;
    let mut out = Upserted::default();
    for item in items {
        let (id, new): (i64, bool) = statement.query_row(
            params![
                library_id,
                server_id,
                item.external_id,
                item.kind().as_str(),
                item.title,
                item.year,
                item.show_external_id,
                item.show_title,
                item.season_number,
                item.episode_number,
                item.added_at,
                item.size_bytes.max(0),
                item.width,
                item.height,
                item.ids.tmdb,
                item.ids.tvdb,
                item.ids.imdb,
                item.thumb,
                item.last_viewed_at,
                item.view_count.max(0),
                now,
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        // A season comes once per page of its episodes: new only the first time.
        if new && !out.added.contains(&id) {
            out.added.push(id);
        }
        out.written += 1;
    }
    Ok(out)
}

/// Deletes the items of a library that the sync started at `seen` did not see.
pub fn prune(conn: &Connection, library_id: i64, seen: i64) -> AppResult<usize> {
    Ok(conn.prepare_cached(PRUNE)?.execute(params![library_id, seen])?)
}

/// How many items of a library the sync started at `at` saw for the first time.
pub fn count_first_seen(conn: &Connection, library_id: i64, at: i64) -> AppResult<i64> {
    Ok(conn.prepare_cached(ITEMS_FIRST_SEEN)?.query_row(params![library_id, at], |r| r.get(0))?)
}

/// Merges every source of "last watched" and "plays" into each item, rolls episodes up
/// into their seasons and shows, and refreshes the libraries' totals. One transaction.
pub fn rollup(conn: &mut Connection) -> AppResult<()> {
    let tx = conn.transaction()?;
    for sql in ROLLUP.iter().chain(&ROLLUP_COPIES).chain(&ROLLUP_COPIES) {
        tx.prepare_cached(sql)?.execute([])?;
    }
    tx.prepare_cached(REFRESH_TOTALS)?.execute([])?;
    tx.commit()?;
    Ok(())
}

/// Refreshes every movie and show library's count and size from its items.
pub fn refresh_totals(conn: &Connection) -> AppResult<()> {
    conn.prepare_cached(REFRESH_TOTALS)?.execute([])?;
    Ok(())
}

pub fn get_item(conn: &Connection, id: i64) -> AppResult<Option<ItemRow>> {
    Ok(conn.prepare_cached(GET_ITEM)?.query_row([id], item_from_row).optional()?)
}

/// The seasons of a show, by number.
pub fn seasons_of(conn: &Connection, show: &ItemRow) -> AppResult<Vec<ItemRow>> {
    let rows = conn
        .prepare_cached(SEASONS_OF)?
        .query_map(params![show.server_id, show.external_id], item_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The show a season or episode belongs to.
pub fn show_of(conn: &Connection, item: &ItemRow) -> AppResult<Option<ItemRow>> {
    let Some(show) = item.show_external_id.as_deref() else { return Ok(None) };
    Ok(conn
        .prepare_cached(SHOW_OF)?
        .query_row(params![item.server_id, show], item_from_row)
        .optional()?)
}

/// Removes an item the media server deleted, with what belongs to it (a show's seasons and
/// episodes, a season's episodes), and updates what it belonged to.
pub fn remove_deleted(conn: &mut Connection, item: &ItemRow) -> AppResult<()> {
    let tx = conn.transaction()?;
    match item.kind {
        ItemKind::Show => {
            tx.prepare_cached(DELETE_CHILDREN)?.execute(params![
                item.server_id,
                item.external_id,
                Option::<i64>::None
            ])?;
        }
        ItemKind::Season => {
            if let Some(show) = &item.show_external_id {
                tx.prepare_cached(DELETE_CHILDREN)?.execute(params![
                    item.server_id,
                    show,
                    item.season_number
                ])?;
            }
        }
        ItemKind::Movie | ItemKind::Episode => {}
    }
    tx.prepare_cached(DELETE_ITEM)?.execute([item.id])?;
    tx.commit()?;
    Ok(())
}

/// How library items can be ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ItemSort {
    #[default]
    Title,
    Added,
    LastWatched,
    Plays,
    Size,
    Year,
}

impl ItemSort {
    pub const ALL: [ItemSort; 6] =
        [Self::Title, Self::Added, Self::LastWatched, Self::Plays, Self::Size, Self::Year];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::Added => "added",
            Self::LastWatched => "last_watched",
            Self::Plays => "plays",
            Self::Size => "size",
            Self::Year => "year",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The sort key; never null (missing times and years sort first).
    fn key(self) -> &'static str {
        match self {
            Self::Title => "i.title COLLATE NOCASE",
            Self::Added => "coalesce(i.added_at, 0)",
            Self::LastWatched => "coalesce(i.last_watched_at, 0)",
            Self::Plays => "i.play_count",
            Self::Size => "i.size_bytes",
            Self::Year => "coalesce(i.year, 0)",
        }
    }
}

/// Where the next page starts: the last item's sort key and id.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemCursor {
    pub key: CursorKey,
    pub id: i64,
}

/// A sort key: text for titles, a number for the rest.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorKey {
    Text(String),
    Number(i64),
}

impl rusqlite::ToSql for CursorKey {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            CursorKey::Text(s) => s.to_sql(),
            CursorKey::Number(n) => n.to_sql(),
        }
    }
}

impl ItemCursor {
    /// URL-safe: `n<number>.<id>` or `t<hex of the title>.<id>`.
    pub fn encode(&self) -> String {
        match &self.key {
            CursorKey::Number(n) => format!("n{n}.{}", self.id),
            CursorKey::Text(t) => {
                let hex = t.bytes().fold(String::new(), |mut out, b| {
                    let _ = write!(out, "{b:02x}");
                    out
                });
                format!("t{hex}.{}", self.id)
            }
        }
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (key, id) = raw.rsplit_once('.')?;
        let id = id.parse().ok()?;
        let key = match key.split_at_checked(1)? {
            ("n", n) => CursorKey::Number(n.parse().ok()?),
            ("t", hex) => {
                if hex.len() % 2 != 0 {
                    return None;
                }
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()?;
                CursorKey::Text(String::from_utf8(bytes).ok()?)
            }
            _ => return None,
        };
        Some(Self { key, id })
    }

    fn of(row: &ItemRow, sort: ItemSort) -> Self {
        let key = match sort {
            ItemSort::Title => CursorKey::Text(row.title.clone()),
            ItemSort::Added => CursorKey::Number(row.added_at.unwrap_or(0)),
            ItemSort::LastWatched => CursorKey::Number(row.last_watched_at.unwrap_or(0)),
            ItemSort::Plays => CursorKey::Number(row.play_count),
            ItemSort::Size => CursorKey::Number(row.size_bytes),
            ItemSort::Year => CursorKey::Number(row.year.unwrap_or(0)),
        };
        Self { key, id: row.id }
    }
}

/// What a page of items is filtered by.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub library_id: Option<i64>,
    /// `None`: movies and shows (what a library is a list of).
    pub kind: Option<ItemKind>,
    /// Words the title (or the show's title) contains.
    pub q: Option<String>,
    pub sort: ItemSort,
    pub descending: bool,
}

/// One page of items.
#[derive(Debug, Clone)]
pub struct ItemPage {
    pub items: Vec<ItemRow>,
    pub next: Option<ItemCursor>,
}

fn page_sql(sort: ItemSort, desc: bool) -> String {
    let key = sort.key();
    let (cmp, dir) = if desc { ("<", "DESC") } else { (">", "ASC") };
    format!(
        "SELECT {} FROM library_items i JOIN libraries l ON l.id = i.library_id JOIN servers s ON s.id = l.server_id \
         WHERE s.deleted_at IS NULL AND (?1 IS NULL OR i.library_id = ?1) \
           AND ((?2 IS NULL AND i.kind IN ('movie', 'show')) OR i.kind = ?2) \
           AND (?3 IS NULL OR i.title LIKE ?3 ESCAPE '\\' OR i.show_title LIKE ?3 ESCAPE '\\') \
           AND (?5 IS NULL OR {key} {cmp} ?4 OR ({key} = ?4 AND i.id {cmp} ?5)) \
         ORDER BY {key} {dir}, i.id {dir} LIMIT ?6",
        library_item_columns!()
    )
}

/// `%word%` for LIKE, with the wildcards the user typed taken literally.
pub(super) fn like_pattern(q: &str) -> Option<String> {
    let q = q.trim();
    if q.is_empty() {
        return None;
    }
    let escaped: String = q
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    Some(format!("%{escaped}%"))
}

/// A page of items: at most `limit`, after `cursor`, in the filter's order. Items added or
/// removed between two pages never make a page skip or repeat one: the cursor is the last
/// item's sort key and id, not an offset.
pub fn page(
    conn: &Connection,
    filter: &ItemFilter,
    cursor: Option<&ItemCursor>,
    limit: u32,
) -> AppResult<ItemPage> {
    let sql = page_sql(filter.sort, filter.descending);
    let (key, after) = match cursor {
        Some(c) => {
            if matches!(c.key, CursorKey::Text(_)) != (filter.sort == ItemSort::Title) {
                return Err(AppError::validation("cursor", "this cursor belongs to another sort"));
            }
            (Some(c.key.clone()), Some(c.id))
        }
        None => (None, None),
    };
    let mut items = conn
        .prepare_cached(&sql)?
        .query_map(
            params![
                filter.library_id,
                filter.kind.map(ItemKind::as_str),
                filter.q.as_deref().and_then(like_pattern),
                key,
                after,
                i64::from(limit) + 1
            ],
            item_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|last| ItemCursor::of(last, filter.sort))
    } else {
        None
    };
    Ok(ItemPage { items, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        for cursor in [
            ItemCursor { key: CursorKey::Number(-5), id: 7 },
            ItemCursor { key: CursorKey::Text("Zoë & the . dots".into()), id: 9 },
            ItemCursor { key: CursorKey::Text(String::new()), id: 1 },
        ] {
            assert_eq!(ItemCursor::decode(&cursor.encode()), Some(cursor));
        }
        for junk in ["", "5", "x1.2", "n1", "tzz.3", "t6.1", "n1.x"] {
            assert_eq!(ItemCursor::decode(junk), None, "{junk}");
        }
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern("  "), None);
        assert_eq!(like_pattern("100%_a\\").as_deref(), Some("%100\\%\\_a\\\\%"));
    }
}

/// What the maintenance criteria read of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactsRow {
    pub id: i64,
    pub kind: ItemKind,
    pub external_id: String,
    pub show_external_id: Option<String>,
    pub season_number: Option<i64>,
    pub added_at: Option<i64>,
    pub last_watched_at: Option<i64>,
    pub size_bytes: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub episode_count: Option<i64>,
    pub watched_episode_count: Option<i64>,
}

const FACTS: &str = "SELECT id, kind, external_id, show_external_id, season_number, added_at, last_watched_at, \
     size_bytes, width, height, episode_count, watched_episode_count FROM library_items \
     WHERE library_id = ?1 AND kind = ?2";

fn facts_from_row(r: &Row<'_>) -> rusqlite::Result<FactsRow> {
    let kind: String = r.get(1)?;
    Ok(FactsRow {
        id: r.get(0)?,
        kind: ItemKind::parse(&kind).ok_or_else(|| kind_error("item kind", &kind))?,
        external_id: r.get(2)?,
        show_external_id: r.get(3)?,
        season_number: r.get(4)?,
        added_at: r.get(5)?,
        last_watched_at: r.get(6)?,
        size_bytes: r.get(7)?,
        width: r.get(8)?,
        height: r.get(9)?,
        episode_count: r.get(10)?,
        watched_episode_count: r.get(11)?,
    })
}

/// Calls `each` with every item of `kind` in a library, one row at a time (a library of
/// any size is never held whole).
pub fn each_fact(
    conn: &Connection,
    library_id: i64,
    kind: ItemKind,
    mut each: impl FnMut(FactsRow) -> AppResult<()>,
) -> AppResult<()> {
    let mut statement = conn.prepare_cached(FACTS)?;
    let mut rows = statement.query(params![library_id, kind.as_str()])?;
    while let Some(row) = rows.next()? {
        each(facts_from_row(row)?)?;
    }
    Ok(())
}

const NEVER_PLAYED: &str = "SELECT library_id, count(*) FROM library_items \
     WHERE kind IN ('movie', 'show') AND last_watched_at IS NULL AND play_count = 0 GROUP BY library_id";

/// Per library: (library id, movies and shows nobody ever played, by any source).
pub fn never_played(conn: &Connection) -> AppResult<Vec<(i64, i64)>> {
    let rows = conn
        .prepare_cached(NEVER_PLAYED)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
