//! One error type for the whole application: what went wrong, its HTTP status, its stable
//! code for the API and the message a user may see.
//!
//! How it answers a request (a page, an htmx fragment or JSON) is web code: see
//! `web::error`. This module stays below every other one, so anything may return it.

use std::fmt;

use rocket::http::Status;

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
