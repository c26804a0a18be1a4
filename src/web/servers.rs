//! Settings → Servers: add, test, edit, enable or disable, delete media servers. The token
//! is sealed at rest and never sent back to the browser.

use std::sync::Arc;

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;
use rocket::response::{Redirect, Responder};

use crate::auth::{Admin, CsrfForm, NoFields};
use crate::crypto::SecretBox;
use crate::db::servers::{self, ServerInput, ServerRow, TOKEN_PURPOSE};
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::media::{self, Connection, MediaError, ServerIdentity, ServerKind};
use crate::poller::control::Control;
use crate::poller::live::ServerStatus;
use crate::web::htmx::HxRequest;
use crate::web::layout::Layout;
use crate::web::{ClientAddr, audit, render};

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
}

/// A checked form: what goes to the database, and the token in clear if one was typed.
pub struct Checked {
    pub name: String,
    pub kind: ServerKind,
    pub url: String,
    pub token: Option<String>,
    pub enabled: bool,
    pub verify_tls: bool,
}

/// Validates what an admin typed (the form and the API share this).
pub fn check(
    name: &str,
    kind: &str,
    url: &str,
    token: Option<&str>,
    token_required: bool,
) -> AppResult<(String, ServerKind, String, Option<String>)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::validation("name", "give the server a name of 1 to 64 characters"));
    }
    let kind = ServerKind::parse(kind)
        .ok_or_else(|| AppError::validation("kind", "choose Plex, Jellyfin or Emby"))?;
    let url =
        media::http::parse_base_url(url).map_err(|e| AppError::validation("url", e.to_string()))?;
    let url = url.as_str().trim_end_matches('/').to_owned();
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    match token {
        None if token_required => {
            return Err(AppError::validation("token", "the token is required"));
        }
        Some(t) if t.len() > 512 || t.chars().any(|c| c.is_control() || c.is_whitespace()) => {
            return Err(AppError::validation(
                "token",
                "the token must be at most 512 characters, without spaces",
            ));
        }
        _ => {}
    }
    Ok((name.to_owned(), kind, url, token.map(str::to_owned)))
}

impl ServerForm {
    fn checked(&self, token_required: bool) -> AppResult<Checked> {
        let (name, kind, url, token) =
            check(&self.name, &self.kind, &self.url, Some(&self.token), token_required)?;
        Ok(Checked { name, kind, url, token, enabled: self.enabled, verify_tls: self.verify_tls })
    }
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
    ServerForm { kind: "plex".into(), enabled: true, verify_tls: true, ..ServerForm::default() }
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

/// Where to go after a change: `HX-Redirect` for htmx, a 303 otherwise.
pub struct Done {
    to: String,
    htmx: bool,
}

pub fn done(hx: &HxRequest, to: String) -> Done {
    Done { to, htmx: hx.htmx }
}

impl<'r> Responder<'r, 'static> for Done {
    fn respond_to(self, req: &'r rocket::Request<'_>) -> rocket::response::Result<'static> {
        if self.htmx {
            crate::web::htmx::HxRedirect(self.to).respond_to(req)
        } else {
            Redirect::to(self.to).respond_to(req)
        }
    }
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
    let checked = form.0.checked(true)?;
    let token = checked.token.clone().unwrap_or_default();
    let input = ServerInput {
        name: checked.name,
        kind: checked.kind,
        url: checked.url,
        token_sealed: secrets.seal(TOKEN_PURPOSE, &token),
        enabled: checked.enabled,
        verify_tls: checked.verify_tls,
    };
    let row = db.write(move |conn| servers::insert(conn, &input, db::now_ms())).await?;
    audit(
        db,
        &admin.0.actor(),
        "server.create",
        &format!("server:{}", row.id),
        serde_json::json!({"name": row.name, "kind": row.kind, "url": row.url}),
        ip.0,
    )
    .await;
    control.registry.changed();
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
    let checked = form.0.checked(false)?;
    let existing = db
        .read(move |conn| servers::get(conn, id))
        .await?
        .ok_or_else(|| AppError::not_found(format!("server {id}")))?;
    let token_sealed = match &checked.token {
        Some(token) => secrets.seal(TOKEN_PURPOSE, token),
        None => existing.token_sealed.clone(),
    };
    let input = ServerInput {
        name: checked.name,
        kind: checked.kind,
        url: checked.url,
        token_sealed,
        enabled: checked.enabled,
        verify_tls: checked.verify_tls,
    };
    let row = db
        .write(move |conn| servers::update(conn, id, &input, db::now_ms()))
        .await?
        .ok_or_else(|| AppError::not_found(format!("server {id}")))?;
    let details = serde_json::json!({"name": row.name, "kind": row.kind, "url": row.url, "enabled": row.enabled, "verify_tls": row.verify_tls, "token_changed": checked.token.is_some()});
    audit(db, &admin.0.actor(), "server.update", &format!("server:{id}"), details, ip.0).await;
    control.registry.changed();
    Ok(done(&hx, format!("{}/settings/servers", layout.base)))
}

#[rocket::post("/settings/servers/<id>/enable?<on>", data = "<_form>")]
pub async fn toggle(
    admin: Admin,
    _form: CsrfForm<NoFields>,
    id: i64,
    on: bool,
    db: &State<Db>,
    control: &State<Arc<Control>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    db.write(move |conn| {
        let row =
            servers::get(conn, id)?.ok_or_else(|| AppError::not_found(format!("server {id}")))?;
        let input = ServerInput {
            name: row.name,
            kind: row.kind,
            url: row.url,
            token_sealed: row.token_sealed,
            enabled: on,
            verify_tls: row.verify_tls,
        };
        servers::update(conn, id, &input, db::now_ms())
    })
    .await?;
    audit(
        db,
        &admin.0.actor(),
        if on { "server.enable" } else { "server.disable" },
        &format!("server:{id}"),
        serde_json::Value::Null,
        ip.0,
    )
    .await;
    control.registry.changed();
    Ok(done(&hx, format!("{}/settings/servers", layout.base)))
}

#[rocket::post("/settings/servers/<id>/delete", data = "<_form>")]
pub async fn delete(
    admin: Admin,
    _form: CsrfForm<NoFields>,
    id: i64,
    db: &State<Db>,
    control: &State<Arc<Control>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    if !db.write(move |conn| servers::soft_delete(conn, id, db::now_ms())).await? {
        return Err(AppError::not_found(format!("server {id}")));
    }
    audit(
        db,
        &admin.0.actor(),
        "server.delete",
        &format!("server:{id}"),
        serde_json::Value::Null,
        ip.0,
    )
    .await;
    control.registry.changed();
    Ok(done(&hx, format!("{}/settings/servers", layout.base)))
}

/// Tries a connection and says in a sentence what happened and what to do.
pub async fn test_connection(connection: &Connection) -> Result<ServerIdentity, String> {
    let client = media::connect(connection).map_err(|e| e.to_string())?;
    client.identify().await.map_err(|e| {
        let hint = match &e {
            MediaError::Unauthorized(_) => " The server refused the token: copy it again from the server's settings.",
            MediaError::Unreachable(detail) if detail.contains("certificate") || detail.contains("Certificate") => {
                " The server's certificate is not trusted: if it is self-signed, untick \"Verify TLS certificate\"."
            }
            MediaError::Unreachable(_) | MediaError::Timeout(_) => {
                " Check the address and port, and that this container can reach the server (same network, firewall)."
            }
            MediaError::Status { status: 404, .. } | MediaError::Malformed(_) => {
                " Something answers there, but not this kind of server: check the kind and the URL (and any sub-path)."
            }
            _ => "",
        };
        format!("{e}.{hint}")
    })
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
    let checked = match form.0.checked(id.is_none()) {
        Ok(c) => c,
        Err(e) => return render(&VerdictFragment { ok: false, message: e.public_message() }),
    };
    let token = match (checked.token, id) {
        (Some(token), _) => token,
        (None, Some(id)) => {
            let row = db
                .read(move |conn| servers::get(conn, id))
                .await?
                .ok_or_else(|| AppError::not_found(format!("server {id}")))?;
            control.registry.connection(&row)?.token
        }
        (None, None) => unreachable!("checked(true) requires a token"),
    };
    let connection =
        Connection { kind: checked.kind, url: checked.url, token, verify_tls: checked.verify_tls };
    let verdict = match test_connection(&connection).await {
        Ok(identity) => VerdictFragment {
            ok: true,
            message: format!(
                "Connected to {} ({} {}).",
                identity.name.as_deref().unwrap_or("the server"),
                checked.kind,
                identity.version.as_deref().unwrap_or("")
            )
            .replace(" )", ")"),
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
