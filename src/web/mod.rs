//! The web tier: Rocket routes per area, askama templates, htmx and the JSON API.

pub mod api;
pub mod assets;
pub mod auth;
pub mod charts;
pub mod dashboard;
pub mod format;
pub mod geoip;
pub mod health;
pub mod history;
pub mod htmx;
pub mod layout;
pub mod map;
pub mod notification_form;
pub mod notifications;
pub mod notifiers_api;
pub mod persons;
pub mod rules;
pub mod servers;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod users;
pub mod violations;

use std::time::Instant;

use askama::Template;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::content::RawHtml;
use rocket::{Catcher, Data, Response, Route};

use crate::config::Config;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};

/// Every route, mounted under the base path.
pub fn routes() -> Vec<Route> {
    let mut routes = api::routes();
    routes.extend(rocket::routes![assets::asset, health::healthz, health::api_health]);
    routes.extend(rocket::routes![dashboard::index, dashboard::events]);
    routes.extend(rocket::routes![
        sessions::stop_page,
        sessions::terminate,
        sessions::live_poster,
        sessions::history_poster
    ]);
    routes.extend(rocket::routes![history::index, history::detail, history::csv]);
    routes.extend(rocket::routes![
        stats::index,
        stats::csv_export,
        map::index,
        map::events,
        map::api
    ]);
    routes.extend(rocket::routes![
        users::index,
        users::detail,
        users::set_trust,
        users::add_household,
        users::confirm_household,
        users::delete_household,
        users::add_note,
        users::delete_note,
        persons::link,
        persons::dismiss,
        persons::dissolve,
        persons::unlink
    ]);
    routes.extend(rocket::routes![
        violations::index,
        violations::detail,
        violations::acknowledge,
        violations::dismiss
    ]);
    routes.extend(rocket::routes![settings::general, settings::save_tracking, settings::save_map]);
    routes.extend(rocket::routes![
        geoip::index,
        geoip::lookup,
        geoip::update,
        geoip::save_license,
        geoip::clear_license,
        geoip::add_override,
        geoip::delete_override
    ]);
    routes.extend(rocket::routes![
        rules::index,
        rules::add_preset,
        rules::toggle,
        rules::delete,
        rules::save_settings,
        rules::new,
        rules::edit,
        rules::create,
        rules::update,
        rules::condition_row,
        rules::group,
        rules::action_row,
        rules::blank,
        rules::backtest
    ]);
    routes.extend(rocket::routes![
        servers::list,
        servers::edit,
        servers::create,
        servers::update,
        servers::toggle,
        servers::delete,
        servers::test,
        servers::poll_now
    ]);
    routes.extend(auth::routes());
    routes.extend(notifications::routes());
    routes.extend(notifiers_api::routes());
    routes
}

/// With a base path, the bare root sends visitors to it (a LAN visitor typing the address).
pub fn root_redirect() -> Vec<Route> {
    rocket::routes![to_base_path]
}

#[rocket::get("/")]
fn to_base_path(config: &rocket::State<Config>) -> rocket::response::Redirect {
    rocket::response::Redirect::to(format!("{}/", config.base_path))
}

pub fn catchers() -> Vec<Catcher> {
    let mut catchers = rocket::catchers![not_found, unprocessable, default_catcher];
    // 401 and 403: to the sign-in page, or an error naming why (see auth::catchers).
    catchers.extend(crate::auth::catchers::catchers());
    catchers
}

/// Renders a template into an HTML response, turning a template failure into an `AppError`.
pub fn render(template: &impl Template) -> AppResult<RawHtml<String>> {
    Ok(RawHtml(template.render()?))
}

/// A server-sent event stream that proxies must not buffer (nginx: `X-Accel-Buffering`).
pub struct Sse<R>(pub R);

impl<'r, 'o: 'r, R: rocket::response::Responder<'r, 'o>> rocket::response::Responder<'r, 'o>
    for Sse<R>
{
    fn respond_to(self, req: &'r Request<'_>) -> rocket::response::Result<'o> {
        Response::build_from(self.0.respond_to(req)?)
            .raw_header("X-Accel-Buffering", "no")
            .raw_header("Cache-Control", "no-cache")
            .ok()
    }
}

/// The client's address (from a trusted proxy's header, or the socket).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for ClientAddr {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> rocket::request::Outcome<Self, Self::Error> {
        rocket::request::Outcome::Success(ClientAddr(crate::auth::client_ip(req)))
    }
}

/// Records a change in the audit log. A failure to record is logged, not raised: the
/// change itself already happened.
pub async fn audit(
    db: &Db,
    actor: &str,
    action: &'static str,
    target: &str,
    details: serde_json::Value,
    ip: Option<std::net::IpAddr>,
) {
    let (actor, target, ip) = (actor.to_owned(), target.to_owned(), ip.map(|i| i.to_string()));
    let details = (!details.is_null()).then_some(details);
    let result = db
        .write(move |conn| {
            db::audit::record(
                conn,
                &db::audit::NewEntry {
                    actor: &actor,
                    action,
                    target: Some(&target),
                    details,
                    ip: ip.as_deref(),
                },
            )
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, action, "could not write the audit log");
    }
}

/// True for requests under `{base}/api/`, which get JSON errors.
pub fn is_api_request(req: &Request<'_>) -> bool {
    let base = req.rocket().state::<Config>().map_or("", |c| c.base_path.as_str());
    req.uri().path().as_str().strip_prefix(base).is_some_and(|rest| rest.starts_with("/api/"))
}

#[rocket::catch(404)]
async fn not_found(req: &Request<'_>) -> AppError {
    // No guard ran for an unknown path: look the user up so the page keeps its navigation.
    let _ = crate::auth::current_user(req).await;
    if is_api_request(req) {
        AppError::not_found("API endpoint")
    } else {
        AppError::not_found("page")
    }
}

/// Rocket answers 422 when a form or JSON body does not parse, and also when a value in the
/// path does not (`/history/abc`): the first is bad input, the second a page that is not.
#[rocket::catch(422)]
fn unprocessable(req: &Request<'_>) -> AppError {
    if req.content_type().is_some() {
        AppError::validation("body", "the request body could not be understood")
    } else if is_api_request(req) {
        AppError::not_found("API endpoint")
    } else {
        AppError::not_found("page")
    }
}

#[rocket::catch(default)]
fn default_catcher(status: Status, _req: &Request<'_>) -> AppError {
    match status.code {
        400 => AppError::validation("request", "the request could not be understood"),
        401 => AppError::Unauthorized("Sign in to continue.".to_owned()),
        403 => AppError::Forbidden("You are not allowed to do this.".to_owned()),
        404 => AppError::not_found("page"),
        413 => AppError::validation("body", "the upload is too large"),
        _ => AppError::internal(format!("unhandled status {status}"), status.to_string()),
    }
}

/// Logs every request at debug level with its status and duration.
pub struct RequestLog;

#[derive(Clone, Copy)]
struct RequestStart(Instant);

#[rocket::async_trait]
impl Fairing for RequestLog {
    fn info(&self) -> Info {
        Info { name: "Request log", kind: Kind::Request | Kind::Response }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| RequestStart(Instant::now()));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let started = req.local_cache(|| RequestStart(Instant::now())).0;
        let html = res.content_type().is_some_and(|c| c == ContentType::HTML);
        tracing::debug!(
            method = %req.method(),
            path = %req.uri().path(),
            status = res.status().code,
            html,
            micros = started.elapsed().as_micros(),
            "request"
        );
    }
}
