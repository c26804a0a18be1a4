//! Settings → Servers: add, test, edit, enable or disable, delete media servers. The token
//! is sealed at rest and never sent back to the browser.

use std::sync::Arc;

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;

use crate::auth::{Admin, CsrfForm, NoFields};
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::db::servers::{self, ServerRow};
use crate::error::{AppError, AppResult};
use crate::media::ServerKind;
use crate::poller::control::Control;
use crate::poller::live::ServerStatus;
use crate::servers::{Changes, Editor, connection_of, test_connection};
use crate::web::htmx::{Done, HxRequest, done};
use crate::web::layout::Layout;
use crate::web::{ClientAddr, render};

/// The add/edit form as posted.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct ServerForm {
    pub name: String,
    pub kind: String,
    pub url: String,
    /// Empty on edit: keep the stored token.
    pub token: String,
    pub enabled: bool,
    pub verify_tls: bool,
    /// Follow the server's push besides polling it.
    pub push_enabled: bool,
}

impl ServerForm {
    /// The form as changes: every field, the token only when one was typed.
    fn changes(self) -> Changes {
        Changes {
            name: Some(self.name),
            kind: Some(self.kind),
            url: Some(self.url),
            token: Some(self.token).filter(|t| !t.trim().is_empty()),
            enabled: Some(self.enabled),
            verify_tls: Some(self.verify_tls),
            push_enabled: Some(self.push_enabled),
        }
    }
}

fn editor<'a>(
    admin: &Admin,
    db: &'a Db,
    secrets: &'a SecretBox,
    control: &'a Control,
    ip: ClientAddr,
) -> Editor<'a> {
    Editor { db, secrets, registry: &control.registry, actor: admin.0.actor(), ip: ip.0 }
}

/// One server as the list shows it.
pub struct ServerView {
    pub row: ServerRow,
    pub status: Option<ServerStatus>,
    pub streams: usize,
}

#[derive(Template)]
#[template(path = "settings/servers.html")]
struct ServersPage {
    layout: Layout,
    tab: &'static str,
    servers: Vec<ServerView>,
    form: ServerForm,
    kinds: [ServerKind; 3],
    editing: Option<i64>,
}

#[derive(Template)]
#[template(path = "settings/_verdict.html")]
struct VerdictFragment {
    ok: bool,
    message: String,
}

async fn views(db: &Db, control: &Control) -> AppResult<Vec<ServerView>> {
    let rows = db.read(servers::list).await?;
    let live = control.live();
    Ok(rows
        .into_iter()
        .map(|row| {
            let status = live.servers.iter().find(|s| s.id == row.id).cloned();
            let streams = live.sessions.iter().filter(|s| s.server_id == row.id).count();
            ServerView { row, status, streams }
        })
        .collect())
}

fn default_form() -> ServerForm {
    ServerForm {
        kind: "plex".into(),
        enabled: true,
        verify_tls: true,
        push_enabled: true,
        ..ServerForm::default()
    }
}

#[rocket::get("/settings/servers")]
pub async fn list(
    _admin: Admin,
    layout: Layout,
    db: &State<Db>,
    control: &State<Arc<Control>>,
) -> AppResult<RawHtml<String>> {
    let servers = views(db, control).await?;
    render(&ServersPage {
        layout: layout.nav("settings"),
        tab: "servers",
        servers,
        form: default_form(),
        kinds: ServerKind::ALL,
        editing: None,
    })
}

#[rocket::get("/settings/servers/<id>")]
pub async fn edit(
    _admin: Admin,
    layout: Layout,
    id: i64,
    db: &State<Db>,
    control: &State<Arc<Control>>,
) -> AppResult<RawHtml<String>> {
    let servers = views(db, control).await?;
    let row = servers
        .iter()
        .find(|s| s.row.id == id)
        .map(|s| s.row.clone())
        .ok_or_else(|| AppError::not_found(format!("server {id}")))?;
    let form = ServerForm {
        name: row.name,
        kind: row.kind.as_str().to_owned(),
        url: row.url,
        token: String::new(),
        enabled: row.enabled,
        verify_tls: row.verify_tls,
        push_enabled: row.push_enabled,
    };
    render(&ServersPage {
        layout: layout.nav("settings"),
        tab: "servers",
        servers,
        form,
        kinds: ServerKind::ALL,
        editing: Some(id),
    })
}

#[rocket::post("/settings/servers", data = "<form>")]
pub async fn create(
    admin: Admin,
    form: CsrfForm<ServerForm>,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    control: &State<Arc<Control>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    editor(&admin, db, secrets, control, ip).create(form.0.changes()).await?;
    Ok(done(&hx, format!("{}/settings/servers", layout.base)))
}

#[rocket::post("/settings/servers/<id>", data = "<form>")]
pub async fn update(
    admin: Admin,
    id: i64,
    form: CsrfForm<ServerForm>,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    control: &State<Arc<Control>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    editor(&admin, db, secrets, control, ip).update(id, form.0.changes()).await?;
    Ok(done(&hx, format!("{}/settings/servers", layout.base)))
}

#[rocket::post("/settings/servers/<id>/enable?<on>", data = "<_form>")]
pub async fn toggle(
    admin: Admin,
    _form: CsrfForm<NoFields>,
    id: i64,
    on: bool,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    control: &State<Arc<Control>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    editor(&admin, db, secrets, control, ip)
        .update(id, Changes { enabled: Some(on), ..Changes::default() })
        .await?;
    Ok(done(&hx, format!("{}/settings/servers", layout.base)))
}

#[rocket::post("/settings/servers/<id>/delete", data = "<_form>")]
pub async fn delete(
    admin: Admin,
    _form: CsrfForm<NoFields>,
    id: i64,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    control: &State<Arc<Control>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    editor(&admin, db, secrets, control, ip).delete(id).await?;
    Ok(done(&hx, format!("{}/settings/servers", layout.base)))
}

/// The connection test of the form: uses the typed token, or the stored one when editing.
#[rocket::post("/settings/servers/test?<id>", data = "<form>")]
pub async fn test(
    _admin: Admin,
    id: Option<i64>,
    form: CsrfForm<ServerForm>,
    db: &State<Db>,
    control: &State<Arc<Control>>,
) -> AppResult<RawHtml<String>> {
    let form = form.0;
    let token = match (Some(form.token.clone()).filter(|t| !t.trim().is_empty()), id) {
        (Some(typed), _) => crate::servers::check_token(&typed),
        (None, Some(id)) => {
            let row = db
                .read(move |conn| servers::get(conn, id))
                .await?
                .ok_or_else(|| AppError::not_found(format!("server {id}")))?;
            Ok(control.registry.connection(&row)?.token)
        }
        (None, None) => crate::servers::check_token(""),
    };
    let connection = token
        .and_then(|token| connection_of(&form.name, &form.kind, &form.url, token, form.verify_tls));
    let connection = match connection {
        Ok(c) => c,
        Err(e) => return render(&VerdictFragment { ok: false, message: e.public_message() }),
    };
    let verdict = match test_connection(&connection).await {
        Ok(identity) => VerdictFragment {
            ok: true,
            message: match identity.version {
                Some(version) => format!(
                    "Connected to {} ({} {version}).",
                    identity.name.as_deref().unwrap_or("the server"),
                    connection.kind
                ),
                None => format!(
                    "Connected to {} ({}).",
                    identity.name.as_deref().unwrap_or("the server"),
                    connection.kind
                ),
            },
        },
        Err(message) => VerdictFragment { ok: false, message },
    };
    render(&verdict)
}

/// Polls every server now.
#[rocket::post("/settings/servers/poll-now", data = "<_form>")]
pub fn poll_now(
    _admin: Admin,
    _form: CsrfForm<NoFields>,
    control: &State<Arc<Control>>,
    hx: HxRequest,
    layout: Layout,
) -> Done {
    control.poll_now();
    done(&hx, format!("{}/settings/servers", layout.base))
}
