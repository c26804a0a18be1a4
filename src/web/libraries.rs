//! The Libraries pages: every library with what the maintenance rules could free, one
//! library's items (search, sort, paging by cursor), their posters, and "Sync now".
//! Candidates, rules, exclusions and the deletion log are in `web::maintenance`.

use std::sync::Arc;

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;

use crate::auth::{Admin, CsrfForm, NoFields};
use crate::db::libraries::{self, ItemRow};
use crate::db::maintenance as store;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::format;
use crate::maintenance::text::bytes;
use crate::maintenance::{Maintenance, SYNC_JOB};
use crate::poller::control::Control;
use crate::web::api::libraries::ItemQuery;
use crate::web::htmx::{Done, HxRequest, done};
use crate::web::layout::Layout;
use crate::web::render;
use crate::web::sessions::{Poster, fetch_poster};

/// Items per page.
pub const PAGE_SIZE: u32 = 50;

/// A library's line on the overview.
pub struct LibraryView {
    pub id: i64,
    pub server_name: String,
    pub name: String,
    pub kind: String,
    pub has_items: bool,
    pub item_count: i64,
    pub size: String,
    /// "40 %" of its movies and shows never played, by anyone, anywhere.
    pub never_played: String,
    pub reclaimable_items: i64,
    pub reclaimable: String,
    pub synced: String,
}

/// The latest sync, as the overview says it.
pub struct SyncView {
    pub running: bool,
    pub text: String,
}

#[derive(Template)]
#[template(path = "libraries/index.html")]
struct IndexPage {
    layout: Layout,
    tab: &'static str,
    libraries: Vec<LibraryView>,
    sync: Option<SyncView>,
    reclaimable: String,
}

#[rocket::get("/libraries")]
pub async fn index(
    _admin: Admin,
    layout: Layout,
    db: &State<Db>,
    jobs: &State<crate::jobs::Jobs>,
) -> AppResult<RawHtml<String>> {
    let (rows, never, reclaimable) = db
        .read(|c| {
            Ok((
                libraries::list(c)?,
                libraries::never_played(c)?,
                store::reclaimable_by_library(c)?,
            ))
        })
        .await?;
    let mut total = 0;
    let libraries = rows
        .into_iter()
        .map(|l| {
            let never = never.iter().find(|n| n.0 == l.id).map_or(0, |n| n.1);
            let (items, size) =
                reclaimable.iter().find(|r| r.0 == l.id).map_or((0, 0), |r| (r.1, r.2));
            total += size;
            LibraryView {
                id: l.id,
                has_items: l.kind.has_items(),
                kind: l.kind.to_string(),
                never_played: if l.item_count > 0 {
                    format!("{} %", format::percent(never, l.item_count))
                } else {
                    "–".to_owned()
                },
                item_count: l.item_count,
                size: bytes(l.size_bytes),
                reclaimable_items: items,
                reclaimable: bytes(size),
                synced: l.synced_at.map_or_else(|| "never".to_owned(), format::local_time),
                server_name: l.server_name,
                name: l.name,
            }
        })
        .collect();
    let sync = jobs.recent(Some(SYNC_JOB.to_owned()), 1).await?.into_iter().next().map(|j| {
        let running = j.finished_at.is_none();
        let when = format::local_time(j.finished_at.unwrap_or(j.started_at));
        let text = if running {
            match j.total {
                Some(t) => format!("Syncing: {} of {t} items. {}", j.done, j.message),
                None => format!("Syncing… {}", j.message),
            }
        } else {
            format!("Last sync {when}: {}", j.message)
        };
        SyncView { running, text }
    });
    render(&IndexPage {
        layout: layout.nav("libraries"),
        tab: "libraries",
        libraries,
        sync,
        reclaimable: bytes(total),
    })
}

/// "Sync now": starts a sync (or follows the running one) and comes back to the overview.
#[rocket::post("/libraries/sync", data = "<_form>")]
pub async fn sync(
    admin: Admin,
    _form: CsrfForm<NoFields>,
    maintenance: &State<Arc<Maintenance>>,
    hx: HxRequest,
    layout: Layout,
) -> AppResult<Done> {
    maintenance.start_sync(&admin.0.actor()).await?;
    Ok(done(&hx, format!("{}/libraries", layout.base)))
}

/// An item's line in a library's list.
pub struct ItemView {
    pub id: i64,
    pub title: String,
    pub year: String,
    pub kind: &'static str,
    pub has_poster: bool,
    pub added: String,
    pub last_watched: String,
    pub plays: i64,
    pub size: String,
    pub resolution: String,
    pub episodes: String,
}

impl ItemView {
    pub fn of(i: &ItemRow) -> Self {
        Self {
            id: i.id,
            title: i.full_title(),
            year: i.year.map(|y| y.to_string()).unwrap_or_default(),
            kind: i.kind.as_str(),
            has_poster: i.thumb.is_some(),
            added: i.added_at.map(format::local_date).unwrap_or_default(),
            last_watched: i.last_watched_at.map_or_else(|| "never".to_owned(), format::local_date),
            plays: i.play_count,
            size: bytes(i.size_bytes),
            resolution: i.resolution().unwrap_or_default(),
            episodes: match (i.watched_episode_count, i.episode_count) {
                (Some(w), Some(n)) => format!("{w} of {n} episodes watched"),
                _ => String::new(),
            },
        }
    }
}

/// The sorts a library page offers: (key, label).
const SORTS: [(&str, &str); 6] = [
    ("title", "Title"),
    ("added", "Added"),
    ("last_watched", "Last watched"),
    ("plays", "Plays"),
    ("size", "Size"),
    ("year", "Year"),
];

#[derive(Template)]
#[template(path = "libraries/items.html")]
struct ItemsPage {
    layout: Layout,
    tab: &'static str,
    library: LibraryView,
    items: Vec<ItemView>,
    q: String,
    sort: String,
    order: String,
    sorts: [(&'static str, &'static str); 6],
    /// The query of this list without the cursor.
    filters: String,
    next: Option<String>,
    first_page: bool,
}

impl ItemsPage {
    fn is_sort(&self, key: &str) -> bool {
        self.sort == key
    }
}

#[rocket::get("/libraries/<id>?<query..>")]
pub async fn items(
    _admin: Admin,
    id: i64,
    query: ItemQuery,
    layout: Layout,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let query = ItemQuery { library_id: Some(id), limit: None, ..query };
    let filter = query.filter()?;
    let cursor = query.cursor()?;
    let (library, page) = db
        .read(move |c| {
            let library = libraries::get(c, id)?;
            Ok((library, libraries::page(c, &filter, cursor.as_ref(), PAGE_SIZE)?))
        })
        .await?;
    let l = library.ok_or_else(|| AppError::not_found(format!("library {id}")))?;
    let q = query.q.clone().unwrap_or_default();
    let sort = query.sort.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "title".to_owned());
    let order = query.order.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "asc".to_owned());
    let filters = format::query_string([
        ("q", Some(q.as_str()).filter(|q| !q.is_empty())),
        ("sort", Some(sort.as_str())),
        ("order", Some(order.as_str())),
    ]);
    render(&ItemsPage {
        layout: layout.nav("libraries"),
        tab: "libraries",
        library: LibraryView {
            id: l.id,
            has_items: l.kind.has_items(),
            kind: l.kind.to_string(),
            never_played: String::new(),
            item_count: l.item_count,
            size: bytes(l.size_bytes),
            reclaimable_items: 0,
            reclaimable: String::new(),
            synced: l.synced_at.map_or_else(|| "never".to_owned(), format::local_time),
            server_name: l.server_name,
            name: l.name,
        },
        items: page.items.iter().map(ItemView::of).collect(),
        q,
        sort,
        order,
        sorts: SORTS,
        filters,
        next: page.next.map(|c| c.encode()),
        first_page: query.cursor.as_deref().is_none_or(str::is_empty),
    })
}

/// A library item's poster, from its media server.
#[rocket::get("/libraries/items/<id>/poster")]
pub async fn poster(
    _admin: Admin,
    id: i64,
    db: &State<Db>,
    control: &State<Arc<Control>>,
) -> AppResult<Poster> {
    let item = db
        .read(move |c| libraries::get_item(c, id))
        .await?
        .ok_or_else(|| AppError::not_found(format!("library item {id}")))?;
    let thumb = item.thumb.clone().ok_or_else(|| AppError::not_found("poster"))?;
    let server_id = item.server_id;
    let name =
        db.read(move |c| db::servers::get(c, server_id)).await?.map(|s| s.name).unwrap_or_default();
    fetch_poster(db, control, server_id, &thumb, &name).await
}
