//! The answers to a refused request: anonymous visitors go to the sign-in (or first-run setup)
//! page, with `HX-Redirect` for htmx; the API and the signed-in get a 401/403 error.
//!
//! These are hand-written catchers because a generated catcher forces its status code onto
//! the response, and a redirect needs its own.

use rocket::catcher::{Catcher, Handler};
use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{Redirect, Responder as _, Response};

use crate::auth::{self, Auth};
use crate::config::Config;
use crate::db::Db;
use crate::error::AppError;
use crate::web::htmx::HxRequest;

/// The catchers for 401 and 403, registered under the base path.
pub fn catchers() -> Vec<Catcher> {
    vec![Catcher::new(401, Refused), Catcher::new(403, Refused)]
}

#[derive(Clone, Copy)]
struct Refused;

#[rocket::async_trait]
impl Handler for Refused {
    async fn handle<'r>(
        &self,
        status: Status,
        req: &'r Request<'_>,
    ) -> rocket::catcher::Result<'r> {
        if status == Status::Unauthorized && !crate::web::is_api_request(req) {
            return to_sign_in(req).await;
        }
        let message = auth::refusal(req);
        let error = if status == Status::Unauthorized {
            AppError::Unauthorized(message.unwrap_or_else(|| auth::SIGN_IN.to_owned()))
        } else {
            AppError::Forbidden(
                message.unwrap_or_else(|| "You are not allowed to do this.".to_owned()),
            )
        };
        let mut response = error.respond_to(req)?;
        if status == Status::Unauthorized {
            response.set_header(Header::new("WWW-Authenticate", "Bearer realm=\"streamwarden\""));
        }
        Ok(response)
    }
}

async fn to_sign_in<'r>(req: &'r Request<'_>) -> rocket::catcher::Result<'r> {
    let config = req.rocket().state::<Config>().ok_or(Status::InternalServerError)?;
    let setup = match (req.rocket().state::<Auth>(), req.rocket().state::<Db>()) {
        (Some(auth), Some(db)) => auth.needs_setup(db).await,
        _ => false,
    };
    let target = if setup {
        config.path("/setup")
    } else {
        let back = return_path(req, config);
        match back {
            Some(next) => format!("{}?next={}", config.path("/login"), encode(&next)),
            None => config.path("/login"),
        }
    };
    if HxRequest::from_request_sync(req).htmx {
        return Response::build().status(Status::Ok).raw_header("HX-Redirect", target).ok();
    }
    Redirect::to(target).respond_to(req)
}

/// Where to come back after signing in: the page asked for, if it was a page (GET).
fn return_path(req: &Request<'_>, config: &Config) -> Option<String> {
    if req.method() != rocket::http::Method::Get {
        return None;
    }
    let uri = req.uri().to_string();
    let home = config.path("/");
    (uri != home).then_some(uri)
}

/// Percent-encodes a return path for a query parameter.
pub fn encode(s: &str) -> String {
    use std::fmt::Write as _;
    s.bytes().fold(String::with_capacity(s.len()), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

/// A `next` parameter we may redirect to: a path on this site under the base path, never
/// another host (`//evil.example`, `/\evil`), and a valid URI (`/ /x` is not one, and a
/// redirect to it would fail), else the home page.
pub fn safe_next(config: &Config, next: Option<&str>) -> String {
    let home = config.path("/");
    let Some(next) = next.filter(|n| !n.is_empty()) else { return home };
    let base_ok = config.base_path.is_empty()
        || next == config.base_path
        || next.starts_with(&format!("{}/", config.base_path))
        || next.starts_with(&format!("{}?", config.base_path));
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && rocket::http::uri::Origin::parse(next).is_ok();
    if local && base_ok { next.to_owned() } else { home }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        let mut config = Config::for_tests(std::path::Path::new("/tmp"));
        assert_eq!(safe_next(&config, Some("/history?user=3")), "/history?user=3");
        for evil in [
            "//evil.example",
            "https://evil.example/",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "/ /evil",
            "/a b",
        ] {
            assert_eq!(safe_next(&config, Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(safe_next(&config, None), "/");
        config.base_path = "/sw".into();
        assert_eq!(safe_next(&config, Some("/sw/history")), "/sw/history");
        assert_eq!(safe_next(&config, Some("/history")), "/sw/");
        assert_eq!(safe_next(&config, Some("/swx")), "/sw/");
        assert_eq!(encode("/a b?c=d&e"), "/a%20b%3Fc%3Dd%26e");
    }
}
