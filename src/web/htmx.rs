//! The htmx contract in one place.
//!
//! - We vendor htmx 2.0.11 and htmx-ext-sse 2.2.4 (`static/vendor/VERSIONS.md`).
//! - The layout configures htmx to swap 4xx and 5xx responses too; every error answers an
//!   htmx request with a fragment and `HX-Retarget: #error-slot`, so errors appear in the
//!   page's error slot instead of replacing what the user was looking at.
//! - A page that can answer both a full page and a fragment at one URL varies on
//!   `HX-Request`, which the [`SecurityHeaders`] fairing adds to every response.
//! - Redirects after an htmx request use `HX-Redirect` with 200 (htmx cannot see 3xx).

use std::convert::Infallible;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Redirect, Responder, Response};

/// What the request tells us about htmx.
#[derive(Debug, Clone, Default)]
pub struct HxRequest {
    /// `HX-Request: true`, and not a history restore (which wants the full page).
    pub htmx: bool,
    /// The id of the target element, if any (`HX-Target`).
    pub target: Option<String>,
    /// `HX-Boosted`: a normal link or form enhanced by `hx-boost`.
    pub boosted: bool,
}

impl HxRequest {
    pub fn from_request_sync(req: &Request<'_>) -> Self {
        let header = |name| req.headers().get_one(name);
        let history_restore = header("HX-History-Restore-Request") == Some("true");
        Self {
            htmx: header("HX-Request") == Some("true") && !history_restore,
            target: header("HX-Target").map(str::to_owned),
            boosted: header("HX-Boosted") == Some("true"),
        }
    }

    /// True when a fragment should be answered: an htmx request that is not boosted
    /// navigation (boosted requests swap the whole body and want the full page).
    pub fn is_htmx(&self) -> bool {
        self.htmx && !self.boosted
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for HxRequest {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Infallible> {
        Outcome::Success(Self::from_request_sync(req))
    }
}

/// Tells htmx to navigate to `url` (a full page load), answering 200.
pub struct HxRedirect(pub String);

impl<'r> Responder<'r, 'static> for HxRedirect {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build().raw_header("HX-Redirect", self.0).ok()
    }
}

/// Wraps a response and asks htmx to fire a client-side event after swapping.
pub struct HxTrigger<R>(pub &'static str, pub R);

impl<'r, R: Responder<'r, 'static>> Responder<'r, 'static> for HxTrigger<R> {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        Response::build_from(self.1.respond_to(req)?).raw_header("HX-Trigger", self.0).ok()
    }
}

/// Content-Security-Policy: only our own origin. htmx runs with `allowEval=false` and
/// without its inline indicator styles, so no `unsafe-*` exception is needed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'self'; frame-ancestors 'none'";

/// Adds `Vary: HX-Request`, the security headers, and `no-store` on dynamic responses.
pub struct SecurityHeaders;

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info { name: "Security headers and Vary: HX-Request", kind: Kind::Response }
    }

    async fn on_response<'r>(&self, _req: &'r Request<'_>, res: &mut Response<'r>) {
        res.adjoin_header(Header::new("Vary", "HX-Request"));
        if !res.headers().contains("Content-Security-Policy") {
            // A page may widen it (the map, for a tile server the admin chose).
            res.set_raw_header("Content-Security-Policy", CONTENT_SECURITY_POLICY);
        }
        res.set_raw_header("X-Content-Type-Options", "nosniff");
        res.set_raw_header("X-Frame-Options", "DENY");
        res.set_raw_header("Referrer-Policy", "same-origin");
        res.set_raw_header("Cross-Origin-Opener-Policy", "same-origin");
        if !res.headers().contains("Cache-Control") {
            // Pages show who watches what from where: never let a shared cache keep them.
            res.set_raw_header("Cache-Control", "no-store");
        }
    }
}

/// Where to go after a change: `HX-Redirect` for htmx, a 303 otherwise.
pub struct Done {
    to: String,
    htmx: bool,
}

pub fn done(hx: &HxRequest, to: String) -> Done {
    Done { to, htmx: hx.htmx }
}

impl<'r> Responder<'r, 'static> for Done {
    fn respond_to(self, req: &'r rocket::Request<'_>) -> rocket::response::Result<'static> {
        if self.htmx {
            HxRedirect(self.to).respond_to(req)
        } else {
            Redirect::to(self.to).respond_to(req)
        }
    }
}

/// The answer to a form post: where to go next, or the form again with the problem named
/// (and its status) when what was typed does not check out.
pub enum Saved {
    Done(Done),
    Refused(rocket::http::Status, rocket::response::content::RawHtml<String>),
}

impl<'r> Responder<'r, 'static> for Saved {
    fn respond_to(self, req: &'r rocket::Request<'_>) -> rocket::response::Result<'static> {
        match self {
            Saved::Done(d) => d.respond_to(req),
            Saved::Refused(status, html) => {
                rocket::response::Response::build_from(html.respond_to(req)?).status(status).ok()
            }
        }
    }
}
