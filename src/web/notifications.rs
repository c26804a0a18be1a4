//! Settings → Notifications: the channel list, add and edit (the form itself is in
//! `notification_form.rs`), enable, delete, "send test" and the delivery log. The rules live
//! in `crate::notify`; these routes only turn requests into its calls and its results into pages.

use std::collections::BTreeMap;
use std::net::IpAddr;

use askama::Template;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::{FlashMessage, FromRequest, Outcome, Request};
use rocket::response::content::RawHtml;
use rocket::response::{Flash, Redirect, Responder};
use rocket::{State, get, post};

use crate::auth::{self, Admin, CsrfForm};
use crate::config::Config;
use crate::db::notify::{OutboxCounts, OutboxRow};
use crate::error::{AppError, AppResult};
use crate::notify::store::{Actor, ChannelView};
use crate::notify::{ChannelKind, EventKind, Notifier, NotifierId, Severity};
use crate::web::htmx::{HxRedirect, HxRequest};
use crate::web::layout::Layout;
use crate::web::notification_form::{
    ChannelForm, ChannelFormPage, edit_page, form_error, plain_field,
};
use crate::web::render;

/// Entries per page of the delivery log.
const LOG_PAGE: u32 = 50;

/// Who is acting, for the audit trail.
pub struct ClientIp(pub Option<IpAddr>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientIp {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(ClientIp(auth::client_ip(req)))
    }
}

fn actor(admin: &Admin, ip: &ClientIp) -> Actor {
    Actor { name: admin.0.actor(), ip: ip.0.map(|ip| ip.to_string()) }
}

/// "2025-01-31 18:04:05 UTC".
pub fn display_time(unix_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(unix_ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

// ---- the list ---------------------------------------------------------------------------

/// One channel on the list.
pub struct ChannelCard {
    pub id: NotifierId,
    pub name: String,
    pub kind: ChannelKind,
    pub enabled: bool,
    pub events: String,
    pub min_severity: &'static str,
    pub counts: OutboxCounts,
    pub last_sent: Option<String>,
}

#[derive(Template)]
#[template(path = "settings/notifications.html")]
pub struct NotificationsPage {
    layout: Layout,
    tab: &'static str,
    flash: Option<(String, String)>,
    public_url_set: bool,
    kinds: [ChannelKind; 5],
    channels: Vec<ChannelCard>,
}

#[get("/settings/notifications")]
pub async fn list(
    _admin: Admin,
    layout: Layout,
    notifier: &State<Notifier>,
    config: &State<Config>,
    flash: Option<FlashMessage<'_>>,
) -> AppResult<RawHtml<String>> {
    let channels = notifier
        .list()
        .await?
        .into_iter()
        .map(|(view, counts)| ChannelCard {
            id: view.id,
            events: view.events.iter().map(|e| e.label()).collect::<Vec<_>>().join(", "),
            min_severity: view.min_severity.label(),
            last_sent: counts.last_sent_at.map(display_time),
            name: view.name,
            kind: view.kind,
            enabled: view.enabled,
            counts,
        })
        .collect();
    render(&NotificationsPage {
        layout: layout.nav("settings"),
        tab: "notifications",
        flash: flash.map(|f| (flash_class(f.kind()).to_owned(), f.message().to_owned())),
        public_url_set: config.public_url.is_some(),
        kinds: ChannelKind::ALL,
        channels,
    })
}

fn flash_class(kind: &str) -> &'static str {
    match kind {
        "success" => "ok",
        "error" => "error",
        _ => "info",
    }
}

// ---- add and edit -----------------------------------------------------------------------

/// The answer to a form post.
#[derive(Responder)]
#[expect(clippy::large_enum_variant, reason = "one per request, moved once")]
pub enum Saved {
    Htmx(Flash<HxRedirect>),
    Plain(Flash<Redirect>),
    /// The form again, with the error marked (no JavaScript: a normal post).
    Invalid((Status, RawHtml<String>)),
}

fn done(hx: &HxRequest, url: String, message: String) -> Saved {
    if hx.is_htmx() {
        Saved::Htmx(Flash::success(HxRedirect(url), message))
    } else {
        Saved::Plain(Flash::success(Redirect::to(url), message))
    }
}

#[get("/settings/notifications/new?<kind>")]
pub fn new(
    _admin: Admin,
    layout: Layout,
    kind: Option<&str>,
    config: &State<Config>,
) -> AppResult<RawHtml<String>> {
    let kind: ChannelKind =
        kind.unwrap_or_default().parse().map_err(|e: String| AppError::validation("kind", e))?;
    let mut values = BTreeMap::new();
    values.insert("name".to_owned(), kind.label().to_owned());
    render(&ChannelFormPage {
        layout: layout.nav("settings"),
        tab: "notifications",
        kind,
        id: None,
        values,
        enabled: true,
        events: EventKind::DEFAULTS.to_vec(),
        secrets_set: Vec::new(),
        header_names: Vec::new(),
        error: None,
        all_events: EventKind::ALL,
        severities: Severity::ALL,
        public_url_set: config.public_url.is_some(),
    })
}

#[post("/settings/notifications?<kind>", data = "<form>")]
pub async fn create(
    admin: Admin,
    ip: ClientIp,
    hx: HxRequest,
    layout: Layout,
    kind: Option<&str>,
    form: CsrfForm<ChannelForm>,
    notifier: &State<Notifier>,
    config: &State<Config>,
) -> Result<Saved, AppError> {
    let form = form.0;
    let kind: ChannelKind =
        kind.unwrap_or_default().parse().map_err(|e: String| AppError::validation("kind", e))?;
    match notifier.create(form.to_input(kind, true), actor(&admin, &ip)).await {
        Ok(view) => Ok(done(
            &hx,
            format!("{}/settings/notifications", layout.base),
            format!("Added \"{}\". Send a test to check it.", view.name),
        )),
        Err(e) if hx.is_htmx() => Err(plain_field(e)),
        Err(e) => {
            let Some(error) = form_error(&e) else { return Err(e) };
            let page = ChannelFormPage {
                layout: layout.nav("settings"),
                tab: "notifications",
                kind,
                id: None,
                values: form.values(kind),
                enabled: form.enabled,
                events: form.events.iter().filter_map(|e| e.parse().ok()).collect(),
                secrets_set: Vec::new(),
                header_names: Vec::new(),
                error: Some(error),
                all_events: EventKind::ALL,
                severities: Severity::ALL,
                public_url_set: config.public_url.is_some(),
            };
            Ok(Saved::Invalid((Status::BadRequest, render(&page)?)))
        }
    }
}

#[get("/settings/notifications/<id>", rank = 2)]
pub async fn edit(
    _admin: Admin,
    layout: Layout,
    id: NotifierId,
    notifier: &State<Notifier>,
    config: &State<Config>,
) -> AppResult<RawHtml<String>> {
    let view = notifier.get(id).await?;
    render(&edit_page(layout, view, config.public_url.is_some()))
}

#[post("/settings/notifications/<id>", data = "<form>", rank = 2)]
pub async fn update(
    admin: Admin,
    ip: ClientIp,
    hx: HxRequest,
    layout: Layout,
    id: NotifierId,
    form: CsrfForm<ChannelForm>,
    notifier: &State<Notifier>,
    config: &State<Config>,
) -> Result<Saved, AppError> {
    let form = form.0;
    let current = notifier.get(id).await?;
    match notifier.update(id, form.to_input(current.kind, false), actor(&admin, &ip)).await {
        Ok(view) => Ok(done(
            &hx,
            format!("{}/settings/notifications", layout.base),
            format!("Saved \"{}\".", view.name),
        )),
        Err(e) if hx.is_htmx() => Err(plain_field(e)),
        Err(e) => {
            let Some(error) = form_error(&e) else { return Err(e) };
            let mut page = edit_page(layout, current, config.public_url.is_some());
            page.values = form.values(page.kind);
            page.enabled = form.enabled;
            page.events = form.events.iter().filter_map(|e| e.parse().ok()).collect();
            page.error = Some(error);
            Ok(Saved::Invalid((Status::BadRequest, render(&page)?)))
        }
    }
}

// ---- buttons ----------------------------------------------------------------------------

/// A form that carries nothing but its CSRF token (Rocket wants a field; none is needed).
#[derive(Debug, FromForm)]
pub struct Confirm {
    pub confirm: Option<String>,
}

#[derive(Debug, FromForm)]
pub struct EnabledForm {
    enabled: bool,
}

#[post("/settings/notifications/<id>/enabled", data = "<form>")]
pub async fn set_enabled(
    admin: Admin,
    ip: ClientIp,
    hx: HxRequest,
    layout: Layout,
    id: NotifierId,
    form: CsrfForm<EnabledForm>,
    notifier: &State<Notifier>,
) -> AppResult<Saved> {
    let view = notifier.get(id).await?;
    notifier.set_enabled(id, form.0.enabled, actor(&admin, &ip)).await?;
    let what =
        if form.0.enabled { "Enabled" } else { "Disabled; its waiting messages were cancelled" };
    Ok(done(
        &hx,
        format!("{}/settings/notifications", layout.base),
        format!("{what}: \"{}\".", view.name),
    ))
}

#[post("/settings/notifications/<id>/delete", data = "<_form>")]
pub async fn delete(
    admin: Admin,
    ip: ClientIp,
    hx: HxRequest,
    layout: Layout,
    id: NotifierId,
    _form: CsrfForm<Confirm>,
    notifier: &State<Notifier>,
) -> AppResult<Saved> {
    let view = notifier.get(id).await?;
    notifier.delete(id, actor(&admin, &ip)).await?;
    Ok(done(
        &hx,
        format!("{}/settings/notifications", layout.base),
        format!("Deleted \"{}\".", view.name),
    ))
}

#[derive(Template)]
#[template(path = "settings/_notification_test.html")]
pub struct TestResultFragment {
    ok: bool,
    error: String,
}

/// The answer to "send test": a fragment for htmx, a message on the list otherwise.
#[derive(Responder)]
#[expect(clippy::large_enum_variant, reason = "one per request, moved once")]
pub enum Tested {
    Fragment(RawHtml<String>),
    Page(Flash<Redirect>),
}

#[post("/settings/notifications/<id>/test", data = "<_form>")]
pub async fn test(
    admin: Admin,
    ip: ClientIp,
    hx: HxRequest,
    layout: Layout,
    id: NotifierId,
    _form: CsrfForm<Confirm>,
    notifier: &State<Notifier>,
) -> AppResult<Tested> {
    let result = notifier.send_test(id, actor(&admin, &ip)).await?;
    if hx.is_htmx() {
        let fragment = TestResultFragment {
            ok: result.is_ok(),
            error: result.err().map(|e| e.to_string()).unwrap_or_default(),
        };
        return Ok(Tested::Fragment(render(&fragment)?));
    }
    let back = Redirect::to(format!("{}/settings/notifications", layout.base));
    Ok(Tested::Page(match result {
        Ok(()) => {
            Flash::success(back, "Test sent. If it did not arrive, check the channel's settings.")
        }
        Err(e) => Flash::error(back, format!("The test failed: {e}")),
    }))
}

// ---- the delivery log -------------------------------------------------------------------

/// One line of the delivery log.
pub struct LogLine {
    pub id: i64,
    pub created: String,
    pub event: String,
    pub title: String,
    /// `sent`, `queued`, `retrying`, `failed`, `cancelled`.
    pub status: &'static str,
    pub attempts: i64,
    pub next_attempt: Option<String>,
    pub sent: Option<String>,
    pub error: Option<String>,
    pub test: bool,
}

impl LogLine {
    fn from_row(row: OutboxRow) -> Self {
        let status = match (row.status.as_str(), row.attempts) {
            ("sent", _) => "sent",
            ("pending", 0) => "queued",
            ("pending", _) => "retrying",
            ("failed", _) => "failed",
            _ => "cancelled",
        };
        Self {
            id: row.id,
            created: display_time(row.created_at),
            event: row.kind.parse::<EventKind>().map_or(row.kind.clone(), |k| k.label().to_owned()),
            title: row.title,
            status,
            attempts: row.attempts,
            next_attempt: (row.status == "pending").then(|| display_time(row.next_attempt_at)),
            sent: row.sent_at.map(display_time),
            error: row.last_error,
            test: row.is_test,
        }
    }

    pub fn badge(&self) -> &'static str {
        match self.status {
            "sent" => "badge-ok",
            "retrying" | "queued" => "badge-warn",
            "failed" => "badge-bad",
            _ => "",
        }
    }
}

#[derive(Template)]
#[template(path = "settings/notifications_log.html")]
pub struct LogPage {
    layout: Layout,
    tab: &'static str,
    channel: ChannelView,
    status: String,
    lines: Vec<LogLine>,
    next_before: Option<i64>,
    flash: Option<(String, String)>,
}

#[get("/settings/notifications/<id>/log?<status>&<before>")]
pub async fn log(
    _admin: Admin,
    layout: Layout,
    id: NotifierId,
    status: Option<&str>,
    before: Option<i64>,
    notifier: &State<Notifier>,
    flash: Option<FlashMessage<'_>>,
) -> AppResult<RawHtml<String>> {
    let channel = notifier.get(id).await?;
    let status = status.filter(|s| ["pending", "sent", "failed", "cancelled"].contains(s));
    let rows = notifier.delivery_log(id, status.map(str::to_owned), before, LOG_PAGE).await?;
    let next_before =
        (rows.len() == LOG_PAGE as usize).then(|| rows.last().map(|r| r.id)).flatten();
    render(&LogPage {
        layout: layout.nav("settings"),
        tab: "notifications",
        channel,
        status: status.unwrap_or_default().to_owned(),
        lines: rows.into_iter().map(LogLine::from_row).collect(),
        next_before,
        flash: flash.map(|f| (flash_class(f.kind()).to_owned(), f.message().to_owned())),
    })
}

#[post("/settings/notifications/<id>/retry", data = "<_form>")]
pub async fn retry_failed(
    _admin: Admin,
    hx: HxRequest,
    layout: Layout,
    id: NotifierId,
    _form: CsrfForm<Confirm>,
    notifier: &State<Notifier>,
) -> AppResult<Saved> {
    let n = notifier.retry_failed(id).await?;
    let message = match n {
        0 => "No failed messages to retry.".to_owned(),
        1 => "1 failed message is queued again.".to_owned(),
        n => format!("{n} failed messages are queued again."),
    };
    Ok(done(&hx, format!("{}/settings/notifications/{id}/log", layout.base), message))
}

#[post("/settings/notifications/<id>/log/<message>/retry", data = "<_form>")]
pub async fn retry_message(
    _admin: Admin,
    hx: HxRequest,
    layout: Layout,
    id: NotifierId,
    message: i64,
    _form: CsrfForm<Confirm>,
    notifier: &State<Notifier>,
) -> AppResult<Saved> {
    notifier.retry_message(id, message).await?;
    Ok(done(
        &hx,
        format!("{}/settings/notifications/{id}/log", layout.base),
        "The message is queued again.".to_owned(),
    ))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        list,
        new,
        create,
        edit,
        update,
        set_enabled,
        delete,
        test,
        log,
        retry_failed,
        retry_message
    ]
}
