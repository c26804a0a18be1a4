//! The JSON API v1 (DESIGN.md section 5): a stable contract for scripts and Home
//! Assistant. Times are RFC 3339 UTC, durations milliseconds, errors
//! `{"error": {"code", "message"}}`. Extend freely; rename nothing.

pub mod geoip;
pub mod history;
pub mod integrations;
pub mod jobs;
pub mod libraries;
pub mod maintenance;
pub mod persons;
pub mod rules;
pub mod servers;
pub mod sessions;
pub mod stats;
pub mod users;
pub mod violations;

use rocket::Route;
use rocket::http::ContentType;
use rocket::serde::json::Json;

use crate::auth::ApiViewer;
use crate::error::{AppError, AppResult};

pub fn routes() -> Vec<Route> {
    rocket::routes![
        openapi,
        servers::list,
        servers::create,
        servers::get,
        servers::update,
        servers::delete,
        servers::test,
        sessions::list,
        sessions::terminate,
        sessions::poll,
        history::list,
        stats::get,
        users::list,
        users::get,
        users::set_trust,
        users::add_household,
        users::confirm_household,
        users::delete_household,
        persons::list,
        persons::get,
        persons::suggestions,
        persons::create,
        persons::update,
        persons::delete,
        persons::unlink,
        persons::dismiss,
        rules::list,
        rules::get,
        rules::create,
        rules::update,
        rules::delete,
        rules::backtest,
        rules::preset_list,
        violations::list,
        violations::get,
        violations::acknowledge,
        violations::dismiss,
        geoip::status,
        geoip::lookup,
        geoip::update,
        geoip::overrides,
        geoip::create_override,
        geoip::delete_override,
        jobs::list,
        jobs::get,
        jobs::cancel,
        libraries::list,
        libraries::sync,
        libraries::items,
        maintenance::rules,
        maintenance::rule,
        maintenance::create_rule,
        maintenance::update_rule,
        maintenance::delete_rule,
        maintenance::evaluate,
        maintenance::candidates,
        maintenance::exclusions,
        maintenance::create_exclusion,
        maintenance::delete_exclusion,
        maintenance::delete,
        maintenance::log,
        integrations::list,
        integrations::get,
        integrations::create,
        integrations::update,
        integrations::delete,
        integrations::test,
    ]
}

/// The OpenAPI 3 description of this API.
#[rocket::get("/api/v1/openapi.json")]
pub fn openapi(_caller: ApiViewer) -> (ContentType, &'static str) {
    (ContentType::JSON, include_str!("openapi.json"))
}

/// A JSON body, or a validation error saying what is wrong with it.
pub fn body<T>(data: Result<Json<T>, rocket::serde::json::Error<'_>>) -> AppResult<T> {
    match data {
        Ok(Json(value)) => Ok(value),
        Err(rocket::serde::json::Error::Io(e)) => {
            Err(AppError::validation("body", format!("could not be read: {e}")))
        }
        Err(rocket::serde::json::Error::Parse(_, e)) => {
            Err(AppError::validation("body", format!("not the expected JSON: {e}")))
        }
    }
}

/// RFC 3339 for an optional time.
pub fn time(ms: Option<i64>) -> Option<String> {
    ms.map(crate::web::format::rfc3339)
}
