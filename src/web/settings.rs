//! Settings → General, and the settings area's shared pieces.

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;

use crate::auth::Admin;
use crate::config::Config;
use crate::error::AppResult;
use crate::web::layout::Layout;
use crate::web::render;

#[derive(Template)]
#[template(path = "settings/general.html")]
pub struct GeneralPage {
    layout: Layout,
    tab: &'static str,
    data_dir: String,
    public_url: Option<String>,
    poll_seconds: u64,
}

#[rocket::get("/settings")]
pub fn general(
    _admin: Admin,
    layout: Layout,
    config: &State<Config>,
) -> AppResult<RawHtml<String>> {
    render(&GeneralPage {
        layout: layout.nav("settings"),
        tab: "general",
        data_dir: config.data_dir.display().to_string(),
        public_url: config.public_url.as_ref().map(ToString::to_string),
        poll_seconds: config.poll_interval.as_secs(),
    })
}
