//! Sign-in pages (login, first-run setup, single sign-on, sign-out), the signed-in user's own
//! account page, and the admin's settings for accounts, sign-in, API keys and the audit log.
//! The logic lives in `crate::auth`; these handlers translate forms to it and back.

mod account;
mod accounts;
mod api_keys;
mod audit;
pub mod catchers;
mod login;
mod oidc;
mod sign_in;

use std::net::IpAddr;

use rocket::Route;
use rocket::http::{ContentType, CookieJar, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Redirect, Responder, Response};

use crate::auth::{self, Auth, session};
use crate::config::Config;
use crate::crypto::SecretBox;
use crate::db::Db;

pub fn routes() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(login::routes());
    routes.extend(oidc::routes());
    routes.extend(account::routes());
    routes.extend(accounts::routes());
    routes.extend(sign_in::routes());
    routes.extend(api_keys::routes());
    routes.extend(audit::routes());
    routes
}

/// What the sign-in handlers need from the request and the managed state.
pub struct Ctx<'r> {
    pub db: &'r Db,
    pub config: &'r Config,
    pub auth: &'r Auth,
    pub secrets: &'r SecretBox,
    pub cookies: &'r CookieJar<'r>,
    pub ip: Option<IpAddr>,
    /// Where the session starts from (address, browser).
    pub origin: session::Origin,
    /// `scheme://host` the browser addressed (for a redirect URI without a public URL).
    pub own_origin: Option<String>,
    /// The CSRF token for this request's forms.
    pub csrf: String,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Ctx<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let rocket = req.rocket();
        let (Some(db), Some(config), Some(auth), Some(secrets)) = (
            rocket.state::<Db>(),
            rocket.state::<Config>(),
            rocket.state::<Auth>(),
            rocket.state::<SecretBox>(),
        ) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        Outcome::Success(Ctx {
            db,
            config,
            auth,
            secrets,
            cookies: req.cookies(),
            ip: auth::client_ip(req),
            origin: session::Origin::of(req),
            own_origin: auth::request::own_origin(req),
            csrf: auth::csrf_token(req).await,
        })
    }
}

/// The signed-in session itself (for pages that show or end it).
pub struct CurrentSession(pub session::Current);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentSession {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match session::resolve(req).await {
            Some(s) => Outcome::Success(CurrentSession(s.clone())),
            None => auth::refuse(req, Status::Unauthorized, "Sign in to continue."),
        }
    }
}

/// An HTML page with a status (a form shown again with its error keeps the user's input).
pub struct Html {
    pub status: Status,
    pub body: String,
    pub retry_after: Option<u64>,
}

impl Html {
    pub fn ok(body: String) -> Self {
        Self { status: Status::Ok, body, retry_after: None }
    }
}

impl<'r> Responder<'r, 'static> for Html {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        res.status(self.status)
            .header(ContentType::HTML)
            .sized_body(self.body.len(), std::io::Cursor::new(self.body));
        if let Some(secs) = self.retry_after {
            res.header(Header::new("Retry-After", secs.to_string()));
        }
        res.ok()
    }
}

/// A page, a redirect, or an error page.
#[derive(Responder)]
#[expect(clippy::large_enum_variant, reason = "built once per request and returned at once")]
pub enum Reply {
    Page(Html),
    Redirect(Redirect),
    Error(crate::error::AppError),
}

impl From<crate::error::AppError> for Reply {
    fn from(e: crate::error::AppError) -> Self {
        Reply::Error(e)
    }
}

/// Renders a template into [`Html`] with `status`.
pub fn page(status: Status, template: &impl askama::Template) -> Reply {
    match template.render() {
        Ok(body) => Reply::Page(Html { status, body, retry_after: None }),
        Err(e) => Reply::Error(e.into()),
    }
}

/// Formats Unix milliseconds as `2025-01-31 14:05 UTC` for tables.
pub fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// [`when`] for optional timestamps: `never` when absent.
pub fn when_opt(ms: Option<i64>) -> String {
    ms.map_or_else(|| "never".to_owned(), when)
}
