//! Settings → Integrations: the Radarr, Sonarr and Seerr instances a deletion may cascade
//! to. Add, test, turn on or off, delete; the API key is written once and never shown
//! again. The checks are `integrations::admin`'s, shared with the API.

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;

use crate::auth::{Admin, CsrfForm, NoFields};
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::db::integrations::{self, IntegrationRow};
use crate::error::AppResult;
use crate::integrations::IntegrationKind;
use crate::integrations::admin::{Changes, Editor};
use crate::web::htmx::{Done, HxRequest, done};
use crate::web::layout::Layout;
use crate::web::{ClientAddr, render};

#[derive(Template)]
#[template(path = "settings/integrations.html")]
struct IntegrationsPage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<IntegrationRow>,
    kinds: [IntegrationKind; 3],
    /// What the last connection test said: (integration id, ok, text).
    tested: Option<(i64, bool, String)>,
}

fn editor<'a>(admin: &Admin, db: &'a Db, secrets: &'a SecretBox, ip: ClientAddr) -> Editor<'a> {
    Editor { db, secrets, actor: admin.0.actor(), ip: ip.0 }
}

async fn page(
    layout: Layout,
    db: &Db,
    tested: Option<(i64, bool, String)>,
) -> AppResult<RawHtml<String>> {
    let rows = db.read(integrations::list).await?;
    render(&IntegrationsPage {
        layout: layout.nav("settings"),
        tab: "integrations",
        rows,
        kinds: IntegrationKind::ALL,
        tested,
    })
}

#[rocket::get("/settings/integrations")]
pub async fn index(_admin: Admin, layout: Layout, db: &State<Db>) -> AppResult<RawHtml<String>> {
    page(layout, db, None).await
}

#[derive(Debug, Default, rocket::FromForm)]
pub struct IntegrationForm {
    #[field(default = String::new())]
    kind: String,
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    url: String,
    #[field(default = String::new())]
    api_key: String,
    #[field(default = false)]
    skip_tls_verify: bool,
}

#[rocket::post("/settings/integrations", data = "<form>")]
pub async fn create(
    admin: Admin,
    form: CsrfForm<IntegrationForm>,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let f = form.0;
    editor(&admin, db, secrets, ip)
        .create(Changes {
            kind: Some(f.kind),
            name: Some(f.name),
            url: Some(f.url),
            api_key: Some(f.api_key),
            enabled: Some(true),
            verify_tls: Some(!f.skip_tls_verify),
        })
        .await?;
    Ok(done(&hx, format!("{}/settings/integrations", layout.base)))
}

/// Tests the stored connection and shows the page with what it found.
#[rocket::post("/settings/integrations/<id>/test", data = "<_form>")]
pub async fn test(
    admin: Admin,
    id: i64,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<RawHtml<String>> {
    let tested = match editor(&admin, db, secrets, ip).test(id).await {
        Ok(version) => (id, true, format!("Connected: version {version}")),
        Err(e) => (id, false, e.public_message()),
    };
    page(layout, db, Some(tested)).await
}

#[rocket::post("/settings/integrations/<id>/toggle", data = "<_form>")]
pub async fn toggle(
    admin: Admin,
    id: i64,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let editor = editor(&admin, db, secrets, ip);
    let row = editor.get(id).await?;
    editor.update(id, Changes { enabled: Some(!row.enabled), ..Changes::default() }).await?;
    Ok(done(&hx, format!("{}/settings/integrations", layout.base)))
}

#[rocket::post("/settings/integrations/<id>/delete", data = "<_form>")]
pub async fn delete(
    admin: Admin,
    id: i64,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    editor(&admin, db, secrets, ip).delete(id).await?;
    Ok(done(&hx, format!("{}/settings/integrations", layout.base)))
}
