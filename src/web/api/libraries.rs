//! `/api/v1/libraries` and `/api/v1/library-items`: what the library sync stored, and
//! starting a sync.

use std::sync::Arc;

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::Serialize;

use super::time;
use crate::auth::ApiAdmin;
use crate::db::Db;
use crate::db::libraries::{self, ItemCursor, ItemFilter, ItemRow, ItemSort, LibraryRow};
use crate::error::{AppError, AppResult};
use crate::maintenance::Maintenance;
use crate::media::library::{ExternalIds, ItemKind, LibraryKind};

#[derive(Serialize)]
pub struct LibraryJson {
    id: i64,
    server_id: i64,
    server_name: String,
    name: String,
    kind: LibraryKind,
    item_count: i64,
    size_bytes: i64,
    synced_at: Option<String>,
}

impl From<LibraryRow> for LibraryJson {
    fn from(row: LibraryRow) -> Self {
        Self {
            id: row.id,
            server_id: row.server_id,
            server_name: row.server_name,
            name: row.name,
            kind: row.kind,
            item_count: row.item_count,
            size_bytes: row.size_bytes,
            synced_at: time(row.synced_at),
        }
    }
}

/// A library item as the API shows it (also inside maintenance candidates).
#[derive(Serialize)]
pub struct ItemJson {
    id: i64,
    library_id: i64,
    server_id: i64,
    kind: ItemKind,
    title: String,
    year: Option<i64>,
    /// Seasons and episodes: their show.
    show_title: Option<String>,
    season_number: Option<i64>,
    episode_number: Option<i64>,
    added_at: Option<String>,
    last_watched_at: Option<String>,
    play_count: i64,
    size_bytes: i64,
    /// "1080p", "4K", ... by the width-aware height of the best version.
    resolution: Option<String>,
    width: Option<i64>,
    height: Option<i64>,
    /// Shows and seasons.
    episode_count: Option<i64>,
    watched_episode_count: Option<i64>,
    external_ids: ExternalIds,
}

impl From<ItemRow> for ItemJson {
    fn from(row: ItemRow) -> Self {
        Self {
            resolution: row.resolution(),
            id: row.id,
            library_id: row.library_id,
            server_id: row.server_id,
            kind: row.kind,
            title: row.title,
            year: row.year,
            show_title: row.show_title,
            season_number: row.season_number,
            episode_number: row.episode_number,
            added_at: time(row.added_at),
            last_watched_at: time(row.last_watched_at),
            play_count: row.play_count,
            size_bytes: row.size_bytes,
            width: row.width,
            height: row.height,
            episode_count: row.episode_count,
            watched_episode_count: row.watched_episode_count,
            external_ids: row.ids,
        }
    }
}

#[rocket::get("/api/v1/libraries")]
pub async fn list(_caller: ApiAdmin, db: &State<Db>) -> AppResult<Json<Vec<LibraryJson>>> {
    let rows = db.read(libraries::list).await?;
    Ok(Json(rows.into_iter().map(LibraryJson::from).collect()))
}

#[derive(Serialize)]
pub struct SyncStarted {
    job_id: i64,
}

/// Starts a sync of every enabled server (or follows the one running): 202 with the job.
#[rocket::post("/api/v1/libraries/sync")]
pub async fn sync(
    caller: ApiAdmin,
    maintenance: &State<Arc<Maintenance>>,
) -> AppResult<(Status, Json<SyncStarted>)> {
    let job_id = maintenance.start_sync(&caller.0.actor()).await?;
    Ok((Status::Accepted, Json(SyncStarted { job_id })))
}

#[derive(Serialize)]
pub struct ItemsJson {
    items: Vec<ItemJson>,
    next_cursor: Option<String>,
}

/// The query of an items listing, shared by the API and the library page.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct ItemQuery {
    pub library_id: Option<i64>,
    pub q: Option<String>,
    /// `movie`, `show`, `season` or `episode`; none: movies and shows.
    pub kind: Option<String>,
    /// `title` (default), `added`, `last_watched`, `plays`, `size`, `year`.
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    pub order: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl ItemQuery {
    pub fn filter(&self) -> AppResult<ItemFilter> {
        let kind = match self.kind.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => Some(ItemKind::parse(k).ok_or_else(|| {
                AppError::validation("kind", "one of movie, show, season, episode")
            })?),
            None => None,
        };
        let sort = match self.sort.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => ItemSort::parse(s).ok_or_else(|| {
                AppError::validation("sort", "one of title, added, last_watched, plays, size, year")
            })?,
            None => ItemSort::Title,
        };
        let descending = match self.order.as_deref().filter(|o| !o.is_empty()) {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(AppError::validation("order", "asc or desc")),
        };
        Ok(ItemFilter {
            library_id: self.library_id,
            kind,
            q: self.q.clone().filter(|q| !q.trim().is_empty()),
            sort,
            descending,
        })
    }

    pub fn cursor(&self) -> AppResult<Option<ItemCursor>> {
        match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(raw) => ItemCursor::decode(raw)
                .map(Some)
                .ok_or_else(|| AppError::validation("cursor", "not a cursor from a previous page")),
            None => Ok(None),
        }
    }
}

#[rocket::get("/api/v1/library-items?<query..>")]
pub async fn items(
    _caller: ApiAdmin,
    query: ItemQuery,
    db: &State<Db>,
) -> AppResult<Json<ItemsJson>> {
    let filter = query.filter()?;
    let cursor = query.cursor()?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let page = db.read(move |conn| libraries::page(conn, &filter, cursor.as_ref(), limit)).await?;
    Ok(Json(ItemsJson {
        items: page.items.into_iter().map(ItemJson::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}
