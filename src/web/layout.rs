//! What every full page needs from the request: the base path, the active navigation entry,
//! versioned asset URLs. Page structs carry a `layout: Layout` field for `_layout.html`.

use std::convert::Infallible;

use rocket::request::{FromRequest, Outcome, Request};

use crate::auth::{self, AuthUser};
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
    /// The signed-in account, if any.
    pub user: Option<AuthUser>,
    /// CSRF token for forms (`csrf` field) and htmx (`X-CSRF-Token` via `hx-headers`).
    pub csrf: String,
}

impl Layout {
    /// Without the session lookup (for error pages): the user only if a guard found one.
    pub fn from_request_sync(req: &Request<'_>) -> Self {
        let base = req.rocket().state::<Config>().map(|c| c.base_path.clone()).unwrap_or_default();
        Self {
            base,
            nav: "",
            version: env!("CARGO_PKG_VERSION"),
            user: auth::cached_user(req),
            csrf: String::new(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(AuthUser::is_admin)
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
        let mut layout = Self::from_request_sync(req);
        layout.user = auth::current_user(req).await;
        if layout.user.is_some() {
            layout.csrf = auth::csrf_token(req).await;
        }
        Outcome::Success(layout)
    }
}
