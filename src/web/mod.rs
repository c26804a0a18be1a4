//! The web tier: Rocket routes per area, askama templates, htmx and the JSON API.

pub mod assets;
pub mod dashboard;
pub mod health;
pub mod htmx;
pub mod layout;
pub mod notification_form;
pub mod notifications;
pub mod notifiers_api;
pub mod settings;

use std::time::Instant;

use askama::Template;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::content::RawHtml;
use rocket::{Catcher, Data, Response, Route};

use crate::config::Config;
use crate::error::{AppError, AppResult};

/// Every route, mounted under the base path.
pub fn routes() -> Vec<Route> {
    let mut routes =
        rocket::routes![assets::asset, health::healthz, health::api_health, dashboard::index,];
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
    rocket::catchers![not_found, unprocessable, default_catcher]
}

/// Renders a template into an HTML response, turning a template failure into an `AppError`.
pub fn render(template: &impl Template) -> AppResult<RawHtml<String>> {
    Ok(RawHtml(template.render()?))
}

/// True for requests under `{base}/api/`, which get JSON errors.
pub fn is_api_request(req: &Request<'_>) -> bool {
    let base = req.rocket().state::<Config>().map_or("", |c| c.base_path.as_str());
    req.uri().path().as_str().strip_prefix(base).is_some_and(|rest| rest.starts_with("/api/"))
}

#[rocket::catch(404)]
fn not_found(req: &Request<'_>) -> AppError {
    if is_api_request(req) {
        AppError::not_found("API endpoint")
    } else {
        AppError::not_found("page")
    }
}

/// Rocket answers 422 when a form or JSON body does not parse; to users that is bad input.
#[rocket::catch(422)]
fn unprocessable(_req: &Request<'_>) -> AppError {
    AppError::validation("body", "the request body could not be understood")
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
