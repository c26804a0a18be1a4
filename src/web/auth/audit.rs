//! Settings → Audit log: sign-ins, failed sign-ins and every settings change.

use askama::Template;
use rocket::Route;
use rocket::http::Status;

use super::{Ctx, Reply, page, when};
use crate::auth::Admin;
use crate::db::audit;
use crate::web::layout::Layout;

pub fn routes() -> Vec<Route> {
    rocket::routes![list]
}

/// Entries per page.
const PAGE: u32 = 100;

pub struct Line {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub ip: String,
    pub failed: bool,
}

#[derive(Template)]
#[template(path = "settings/audit.html")]
struct AuditPage {
    layout: Layout,
    tab: &'static str,
    lines: Vec<Line>,
    /// `?before=` of the next (older) page.
    older: Option<i64>,
}

#[rocket::get("/settings/audit?<before>")]
async fn list(ctx: Ctx<'_>, _admin: Admin, layout: Layout, before: Option<i64>) -> Reply {
    let entries = match ctx.db.read(move |c| audit::recent(c, before, PAGE)).await {
        Ok(e) => e,
        Err(e) => return e.into(),
    };
    let older = (entries.len() == PAGE as usize).then(|| entries.last().map(|e| e.id)).flatten();
    let lines = entries
        .into_iter()
        .map(|e| Line {
            at: when(e.at),
            failed: e.action.ends_with(".failed"),
            actor: e.actor,
            action: e.action,
            target: e.target.unwrap_or_default(),
            details: e.details.unwrap_or_default(),
            ip: e.ip.unwrap_or_default(),
        })
        .collect();
    page(Status::Ok, &AuditPage { layout: layout.nav("settings"), tab: "audit", lines, older })
}
