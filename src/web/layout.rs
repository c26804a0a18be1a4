//! What every full page needs from the request: the base path, the active navigation entry,
//! versioned asset URLs. Page structs carry a `layout: Layout` field for `_layout.html`.

use std::convert::Infallible;

use rocket::request::{FromRequest, Outcome, Request};

use crate::config::Config;
use crate::web::assets;

/// Data for `templates/_layout.html`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// URL prefix of every link: `""` or `"/sub-path"`.
    pub base: String,
    /// Key of the active navigation entry (`"dashboard"`, `"history"`, ...), or `""`.
    pub nav: &'static str,
    pub version: &'static str,
}

impl Layout {
    pub fn from_request_sync(req: &Request<'_>) -> Self {
        let base = req.rocket().state::<Config>().map(|c| c.base_path.clone()).unwrap_or_default();
        Self { base, nav: "", version: env!("CARGO_PKG_VERSION") }
    }

    /// The same layout with `nav` marked active.
    #[must_use]
    pub fn nav(mut self, nav: &'static str) -> Self {
        self.nav = nav;
        self
    }

    /// URL of a static file, with a content hash so browsers may cache it forever.
    pub fn asset(&self, path: &str) -> String {
        assets::url(&self.base, path)
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Layout {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Infallible> {
        Outcome::Success(Self::from_request_sync(req))
    }
}
