//! One error type for the whole application, and how it answers a request.
//!
//! The same `AppError` becomes a full page for a browser, a fragment swapped into the page's
//! error slot for htmx, and `{"error": {"code", "message"}}` under `/api`. Only server-side
//! failures (5xx) are logged, with their cause; users never see internals.

use std::fmt;
use std::io::Cursor;

use askama::Template;
use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};

use crate::web::htmx::HxRequest;
use crate::web::layout::Layout;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The thing named does not exist (or the caller may not know that it does).
    #[error("{0} not found")]
    NotFound(String),
    /// Not signed in, or the credentials are wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// A field of the input is wrong; `field` names it as the form or JSON does.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// The request conflicts with the current state (a duplicate name, a stale edit).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; `retry_after` in seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// A media server (or another upstream) failed or answered nonsense.
    #[error("{server}: {message}")]
    Upstream { server: String, message: String },
    /// We cannot serve this now for a reason the user can act on (disk full, database busy).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; `context` says what we were doing.
    #[error("{context}: {source}")]
    Internal { context: String, source: Box<dyn std::error::Error + Send + Sync> },
}

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), message: message.into() }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn internal(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal { context: context.into(), source: source.into() }
    }

    pub fn status(&self) -> Status {
        match self {
            Self::NotFound(_) => Status::NotFound,
            Self::Unauthorized(_) => Status::Unauthorized,
            Self::Forbidden(_) => Status::Forbidden,
            Self::Validation { .. } => Status::BadRequest,
            Self::Conflict(_) => Status::Conflict,
            Self::TooManyRequests { .. } => Status::TooManyRequests,
            Self::Upstream { .. } => Status::BadGateway,
            Self::Unavailable(_) => Status::ServiceUnavailable,
            Self::Internal { .. } => Status::InternalServerError,
        }
    }

    /// Stable machine-readable code for the JSON API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Validation { .. } => "validation",
            Self::Conflict(_) => "conflict",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Upstream { .. } => "upstream",
            Self::Unavailable(_) => "unavailable",
            Self::Internal { .. } => "internal",
        }
    }

    /// What the user is told: everything but internal details.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal { .. } => {
                "Something went wrong on our side. The details are in the server log.".to_owned()
            }
            Self::NotFound(what) => format!("{} not found.", capitalize(what)),
            other => other.to_string(),
        }
    }

    /// Adds what we were doing to an internal error ("polling server 3 (Plex)").
    #[must_use]
    pub fn context(self, what: impl fmt::Display) -> Self {
        match self {
            Self::Internal { context, source } => {
                Self::Internal { context: format!("{what}: {context}"), source }
            }
            Self::Upstream { server, message } => {
                Self::Upstream { server: format!("{what}: {server}"), message }
            }
            other => other,
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Adds context to any error crossing into `AppError`.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> AppResult<T>;
}

impl<T, E: Into<AppError>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> AppResult<T> {
        self.map_err(|e| e.into().context(what))
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::Unavailable(
                "The disk holding the database is full. Free some space; nothing was lost, \
                 the change was not saved."
                    .to_owned(),
            ),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                Self::Unavailable("The database is busy. Try again in a moment.".to_owned())
            }
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                Self::Unavailable(
                    "The database cannot be written: check the permissions of the data \
                     directory."
                        .to_owned(),
                )
            }
            _ => Self::internal("database", e),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        Self::internal("rendering a template", e)
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal("background work", e)
    }
}

/// Body of every JSON error.
#[derive(serde::Serialize)]
struct JsonError<'a> {
    error: JsonErrorBody<'a>,
}

#[derive(serde::Serialize)]
struct JsonErrorBody<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    reason: &'static str,
    message: String,
}

#[derive(Template)]
#[template(path = "error.html", block = "error")]
struct ErrorFragment {
    status: u16,
    reason: &'static str,
    message: String,
}

/// Where htmx swaps error fragments: every page layout has this element.
pub const ERROR_SLOT: &str = "#error-slot";

impl<'r> Responder<'r, 'static> for AppError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        if status.code >= 500 {
            tracing::error!(error = %self, method = %req.method(), path = %req.uri().path(), "request failed");
        }
        let message = self.public_message();
        let mut response = Response::build();
        response.status(status);
        if let Self::TooManyRequests { retry_after, .. } = &self {
            response.header(Header::new("Retry-After", retry_after.to_string()));
        }

        if crate::web::is_api_request(req) {
            let field = match &self {
                Self::Validation { field, .. } => Some(field.as_str()),
                _ => None,
            };
            let message = match &self {
                Self::Validation { message, .. } => message.clone(),
                _ => message,
            };
            let body = serde_json::to_string(&JsonError {
                error: JsonErrorBody { code: self.code(), message, field },
            })
            .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":""}}"#.to_owned());
            return response
                .header(ContentType::JSON)
                .sized_body(body.len(), Cursor::new(body))
                .ok();
        }

        let reason = status.reason().unwrap_or("Error");
        let rendered = if HxRequest::from_request_sync(req).is_htmx() {
            response.raw_header("HX-Retarget", ERROR_SLOT).raw_header("HX-Reswap", "innerHTML");
            ErrorFragment { status: status.code, reason, message: message.clone() }.render()
        } else {
            ErrorPage {
                layout: Layout::from_request_sync(req),
                status: status.code,
                reason,
                message: message.clone(),
            }
            .render()
        };
        match rendered {
            Ok(html) => {
                response.header(ContentType::HTML).sized_body(html.len(), Cursor::new(html)).ok()
            }
            Err(e) => {
                // The error page itself failed: plain text still tells the user something.
                tracing::error!(error = %e, "rendering the error page failed");
                let text = format!("{} {reason}\n\n{message}\n", status.code);
                response.header(ContentType::Plain).sized_body(text.len(), Cursor::new(text)).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases: Vec<(AppError, u16, &str)> = vec![
            (AppError::not_found("server 3"), 404, "not_found"),
            (AppError::Unauthorized("sign in".into()), 401, "unauthorized"),
            (AppError::Forbidden("admins only".into()), 403, "forbidden"),
            (AppError::validation("port", "too big"), 400, "validation"),
            (AppError::Conflict("exists".into()), 409, "conflict"),
            (
                AppError::TooManyRequests { message: "slow".into(), retry_after: 3 },
                429,
                "too_many_requests",
            ),
            (AppError::Upstream { server: "Plex".into(), message: "down".into() }, 502, "upstream"),
            (AppError::Unavailable("disk full".into()), 503, "unavailable"),
            (AppError::internal("x", "boom"), 500, "internal"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().code, status);
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn internal_details_stay_private_and_context_accumulates() {
        let e = AppError::internal("reading row", "secret detail").context("loading server 3");
        assert_eq!(e.to_string(), "loading server 3: reading row: secret detail");
        assert!(!e.public_message().contains("secret"));
        assert_eq!(AppError::not_found("server 3").public_message(), "Server 3 not found.");
    }

    #[test]
    fn sqlite_disk_full_is_a_clear_503() {
        let e: AppError = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        )
        .into();
        assert_eq!(e.status().code, 503);
        assert!(e.public_message().contains("disk"));
    }
}
