//! Users: the media servers' accounts, with their devices, places and plays.

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;

use crate::auth::Viewer;
use crate::db::Db;
use crate::db::media_users::{self, Device, Location, MediaUserRow};
use crate::db::plays::{self, HistoryFilter};
use crate::error::{AppError, AppResult};
use crate::web::format;
use crate::web::layout::Layout;
use crate::web::render;

#[derive(Template)]
#[template(path = "users/index.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<MediaUserRow>,
}

#[rocket::get("/users")]
pub async fn index(viewer: Viewer, layout: Layout, db: &State<Db>) -> AppResult<RawHtml<String>> {
    let scope = viewer.0.scope();
    let users =
        db.read(media_users::list).await?.into_iter().filter(|u| scope.allows(u.id)).collect();
    render(&UsersPage { layout: layout.nav("users"), users })
}

#[derive(Template)]
#[template(path = "users/detail.html")]
struct UserPage {
    layout: Layout,
    user: MediaUserRow,
    devices: Vec<Device>,
    locations: Vec<Location>,
    recent: Vec<crate::web::history::RowView>,
}

#[rocket::get("/users/<id>")]
pub async fn detail(
    viewer: Viewer,
    layout: Layout,
    id: i64,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let scope = viewer.0.scope();
    if !scope.allows(id) {
        return Err(AppError::not_found(format!("user {id}")));
    }
    let (user, devices, locations, recent) = db
        .read(move |conn| {
            let user = media_users::get(conn, id)?
                .ok_or_else(|| AppError::not_found(format!("user {id}")))?;
            let filter = HistoryFilter { user_id: Some(id), ..HistoryFilter::default() };
            let recent = plays::history(conn, &filter, scope, None, 20)?.items;
            Ok((user, media_users::devices(conn, id)?, media_users::locations(conn, id)?, recent))
        })
        .await?;
    let recent = recent.into_iter().map(crate::web::history::view).collect();
    render(&UserPage { layout: layout.nav("users"), user, devices, locations, recent })
}

/// "3 days ago"-style text is avoided on purpose: pages may be cached in a screenshot;
/// a date stays true.
pub fn seen(ms: &Option<i64>) -> String {
    ms.map_or_else(|| "never".to_owned(), format::local_time)
}
