//! How an [`AppError`] answers a request: a full error page for a browser, a fragment
//! swapped into the page's error slot for htmx (`HX-Retarget`), and
//! `{"error": {"code", "message"}}` under `/api`. Only server-side failures (5xx) are
//! logged, with their cause; users never see internals. If the error page itself fails to
//! render, plain text still tells the user something.

use std::io::Cursor;

use askama::Template;
use rocket::http::{ContentType, Header};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};

use crate::error::AppError;
use crate::web::htmx::HxRequest;
use crate::web::layout::Layout;

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
        if let AppError::TooManyRequests { retry_after, .. } = &self {
            response.header(Header::new("Retry-After", retry_after.to_string()));
        }

        if crate::web::is_api_request(req) {
            let field = match &self {
                AppError::Validation { field, .. } => Some(field.as_str()),
                _ => None,
            };
            let message = match &self {
                AppError::Validation { message, .. } => message.clone(),
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
