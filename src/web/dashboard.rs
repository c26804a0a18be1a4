//! The dashboard: who is streaming right now.

use askama::Template;
use rocket::response::content::RawHtml;

use crate::auth::Viewer;
use crate::error::AppResult;
use crate::web::layout::Layout;
use crate::web::render;

#[derive(Template)]
#[template(path = "dashboard/index.html")]
pub struct DashboardPage {
    layout: Layout,
}

#[rocket::get("/")]
pub fn index(_viewer: Viewer, layout: Layout) -> AppResult<RawHtml<String>> {
    render(&DashboardPage { layout: layout.nav("dashboard") })
}
