//! Settings → GeoIP: which databases are loaded, the MaxMind licence key (sealed, never shown
//! back), "update now" with its outcome, a lookup box, and the overrides. Overrides go
//! through `geo::overrides` like the API's, so they take effect in the live service at once.

use std::sync::Arc;

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;
use serde_json::{Value, json};

use crate::auth::{Admin, CsrfForm, NoFields};
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::geo::download::{self, UpdateState, Updater};
use crate::geo::overrides::{self, OverrideInput};
use crate::geo::{DbStatus, GeoIp, Lookup, Override};
use crate::web::htmx::HxRequest;
use crate::web::htmx::Saved;
use crate::web::htmx::{Done, done};
use crate::web::layout::Layout;
use crate::web::{ClientAddr, audit, render};

/// One loaded database file.
pub struct FileView {
    pub status: DbStatus,
    pub path: String,
}

/// What the status card shows (the part "update now" swaps).
pub struct StatusView {
    pub dir: String,
    pub city: Option<FileView>,
    pub asn: Option<FileView>,
    /// Files present but unreadable.
    pub errors: Vec<String>,
    pub key_set: bool,
    pub key_from_env: bool,
    pub state: UpdateState,
    /// When the edition files were last written (downloaded or dropped in).
    pub files_written_at: Option<i64>,
    pub next_due_at: Option<i64>,
    /// The outcome of "update now": (succeeded, what to say).
    pub outcome: Option<(bool, String)>,
}

async fn status_view(geo: &GeoIp, updater: &Updater) -> StatusView {
    let status = geo.status();
    let dir = geo.dir();
    let file = |s: Option<DbStatus>| {
        s.map(|status| FileView { path: dir.join(&status.file).display().to_string(), status })
    };
    StatusView {
        dir: dir.display().to_string(),
        city: file(status.city),
        asn: file(status.asn),
        errors: status.errors,
        key_set: updater.license_key().await.is_some(),
        key_from_env: updater.key_from_env(),
        state: updater.state(),
        files_written_at: download::files_written_at(dir),
        next_due_at: updater.next_due_at().await,
        outcome: None,
    }
}

/// A lookup typed in the box, and its answer.
pub struct LookupView {
    pub ip: String,
    pub answer: Result<Lookup, String>,
}

fn look_up(geo: &GeoIp, raw: &str) -> LookupView {
    let answer = crate::media::model::parse_ip(raw)
        .map(|ip| geo.lookup(ip))
        .ok_or_else(|| format!("{:?} is not an IP address", raw.trim()));
    LookupView { ip: raw.trim().to_owned(), answer }
}

/// The add-an-override form as posted.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct OverrideForm {
    #[field(default = String::new())]
    network: String,
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    country: String,
    #[field(default = String::new())]
    city: String,
    #[field(default = String::new())]
    lat: String,
    #[field(default = String::new())]
    lon: String,
    is_local: bool,
}

impl OverrideForm {
    /// What was typed as the input `geo::overrides` checks; numbers are checked here.
    fn input(&self) -> AppResult<OverrideInput> {
        let degrees = |field: &str, raw: &str| -> AppResult<Option<f64>> {
            let raw = raw.trim();
            if raw.is_empty() {
                return Ok(None);
            }
            raw.replace(',', ".")
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite())
                .map(Some)
                .ok_or_else(|| AppError::validation(field, "a number of degrees, like 48.8566"))
        };
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(OverrideInput {
            network: self.network.clone(),
            name: self.name.clone(),
            country: text(&self.country),
            city: text(&self.city),
            lat: degrees("lat", &self.lat)?,
            lon: degrees("lon", &self.lon)?,
            is_local: self.is_local,
        })
    }
}

#[derive(Template)]
#[template(path = "settings/geoip.html")]
struct GeoIpPage {
    layout: Layout,
    tab: &'static str,
    s: StatusView,
    stored_key: bool,
    overrides: Vec<Override>,
    form: OverrideForm,
    lookup: Option<LookupView>,
    /// The field that did not check out, and why.
    error: Option<(String, String)>,
}

impl GeoIpPage {
    fn invalid(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|(f, _)| f == field)
    }

    fn error_message(&self) -> &str {
        self.error.as_ref().map_or("", |(_, m)| m.as_str())
    }
}

#[derive(Template)]
#[template(path = "settings/geoip.html", block = "status")]
struct StatusFragment {
    layout: Layout,
    s: StatusView,
}

#[derive(Template)]
#[template(path = "settings/geoip.html", block = "lookup")]
struct LookupFragment {
    lookup: Option<LookupView>,
}

async fn page(layout: Layout, db: &Db, geo: &GeoIp, updater: &Updater) -> AppResult<GeoIpPage> {
    Ok(GeoIpPage {
        layout: layout.nav("settings"),
        tab: "geoip",
        s: status_view(geo, updater).await,
        stored_key: updater.stored_key_set().await?,
        overrides: db.read(db::geo::list).await?,
        form: OverrideForm::default(),
        lookup: None,
        error: None,
    })
}

#[rocket::get("/settings/geoip")]
pub async fn index(
    _admin: Admin,
    layout: Layout,
    db: &State<Db>,
    geo: &State<Arc<GeoIp>>,
    updater: &State<Arc<Updater>>,
) -> AppResult<RawHtml<String>> {
    render(&page(layout, db, geo, updater).await?)
}

/// Where an address is: a fragment for the htmx box, the page around it otherwise.
#[rocket::get("/settings/geoip/lookup?<ip>")]
pub async fn lookup(
    _admin: Admin,
    ip: Option<String>,
    layout: Layout,
    hx: HxRequest,
    db: &State<Db>,
    geo: &State<Arc<GeoIp>>,
    updater: &State<Arc<Updater>>,
) -> AppResult<RawHtml<String>> {
    let lookup = Some(look_up(geo, ip.as_deref().unwrap_or_default()));
    if hx.is_htmx() {
        return render(&LookupFragment { lookup });
    }
    let mut page = page(layout, db, geo, updater).await?;
    page.lookup = lookup;
    render(&page)
}

/// Downloads GeoLite2 now and shows how it went in the status card.
#[rocket::post("/settings/geoip/update", data = "<_form>")]
pub async fn update(
    admin: Admin,
    _form: CsrfForm<NoFields>,
    layout: Layout,
    hx: HxRequest,
    ip: ClientAddr,
    db: &State<Db>,
    geo: &State<Arc<GeoIp>>,
    updater: &State<Arc<Updater>>,
) -> AppResult<RawHtml<String>> {
    let outcome = match updater.update_now().await {
        Ok(()) => {
            let s = geo.status();
            let names: Vec<String> =
                [s.city, s.asn].into_iter().flatten().map(|d| d.file).collect();
            (true, format!("Downloaded and loaded: {}.", names.join(", ")))
        }
        Err(e @ AppError::Validation { .. }) => (false, e.public_message()),
        Err(AppError::Upstream { message, .. }) => (false, message),
        Err(e) => return Err(e),
    };
    audit(
        db,
        &admin.0.actor(),
        "geoip.update",
        "settings:geoip",
        json!({"ok": outcome.0, "message": outcome.1}),
        ip.0,
    )
    .await;
    let mut s = status_view(geo, updater).await;
    s.outcome = Some(outcome);
    if hx.is_htmx() {
        return render(&StatusFragment { layout, s });
    }
    let mut page = page(layout, db, geo, updater).await?;
    page.s = s;
    render(&page)
}

#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct LicenseForm {
    #[field(default = String::new())]
    license_key: String,
}

/// Stores the licence key, sealed. It is never shown back.
#[rocket::post("/settings/geoip/license", data = "<form>")]
pub async fn save_license(
    admin: Admin,
    form: CsrfForm<LicenseForm>,
    layout: Layout,
    hx: HxRequest,
    ip: ClientAddr,
    db: &State<Db>,
    geo: &State<Arc<GeoIp>>,
    updater: &State<Arc<Updater>>,
) -> AppResult<Saved> {
    match updater.set_license_key(Some(&form.0.license_key)).await {
        Ok(()) => {
            audit(
                db,
                &admin.0.actor(),
                "geoip.license_key.set",
                "settings:geoip",
                Value::Null,
                ip.0,
            )
            .await;
            Ok(Saved::Done(done(&hx, format!("{}/settings/geoip", layout.base))))
        }
        Err(e) => refused(layout, db, geo, updater, e, |_| {}).await,
    }
}

/// Removes the stored licence key.
#[rocket::post("/settings/geoip/license/clear", data = "<_form>")]
pub async fn clear_license(
    admin: Admin,
    _form: CsrfForm<NoFields>,
    layout: Layout,
    hx: HxRequest,
    ip: ClientAddr,
    db: &State<Db>,
    updater: &State<Arc<Updater>>,
) -> AppResult<Done> {
    updater.set_license_key(None).await?;
    audit(db, &admin.0.actor(), "geoip.license_key.clear", "settings:geoip", Value::Null, ip.0)
        .await;
    Ok(done(&hx, format!("{}/settings/geoip", layout.base)))
}

/// The page again with what was typed and the field that did not check out.
async fn refused(
    layout: Layout,
    db: &Db,
    geo: &GeoIp,
    updater: &Updater,
    e: AppError,
    fill: impl FnOnce(&mut GeoIpPage),
) -> AppResult<Saved> {
    let (status, field, message) = match e {
        AppError::Validation { field, message } => {
            (rocket::http::Status::BadRequest, field, message)
        }
        // The only conflict here: the network has an override already.
        AppError::Conflict(message) => (rocket::http::Status::Conflict, "network".into(), message),
        other => return Err(other),
    };
    let mut page = page(layout, db, geo, updater).await?;
    fill(&mut page);
    page.error = Some((field, message));
    Ok(Saved::Refused(status, render(&page)?))
}

/// Adds an override; it applies to the next lookup.
#[rocket::post("/settings/geoip/overrides", data = "<form>")]
pub async fn add_override(
    admin: Admin,
    form: CsrfForm<OverrideForm>,
    layout: Layout,
    hx: HxRequest,
    ip: ClientAddr,
    db: &State<Db>,
    geo: &State<Arc<GeoIp>>,
    updater: &State<Arc<Updater>>,
) -> AppResult<Saved> {
    let f = form.0;
    let added = match f.input() {
        Ok(input) => overrides::add(db, geo, input).await,
        Err(e) => Err(e),
    };
    match added {
        Ok(o) => {
            audit(
                db,
                &admin.0.actor(),
                "geoip.override.create",
                &o.network.to_string(),
                Value::Null,
                ip.0,
            )
            .await;
            Ok(Saved::Done(done(&hx, format!("{}/settings/geoip#overrides", layout.base))))
        }
        Err(e) => refused(layout, db, geo, updater, e, |page| page.form = f).await,
    }
}

#[rocket::post("/settings/geoip/overrides/<id>/delete", data = "<_form>")]
pub async fn delete_override(
    admin: Admin,
    id: i64,
    _form: CsrfForm<NoFields>,
    layout: Layout,
    hx: HxRequest,
    ip: ClientAddr,
    db: &State<Db>,
    geo: &State<Arc<GeoIp>>,
) -> AppResult<Done> {
    let gone = overrides::remove(db, geo, id).await?;
    audit(
        db,
        &admin.0.actor(),
        "geoip.override.delete",
        &gone.network.to_string(),
        json!({"id": id}),
        ip.0,
    )
    .await;
    Ok(done(&hx, format!("{}/settings/geoip#overrides", layout.base)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_form_checks_its_numbers_and_leaves_the_rest_to_the_store() {
        let form = OverrideForm {
            network: "81.2.69.0/24".into(),
            name: "Office".into(),
            country: " fr ".into(),
            lat: "48,85".into(),
            lon: "2.35".into(),
            ..OverrideForm::default()
        };
        let input = form.input().unwrap();
        assert_eq!((input.lat, input.lon), (Some(48.85), Some(2.35)));
        assert_eq!((input.country.as_deref(), input.city), (Some("fr"), None));
        let bad = OverrideForm { lon: "east".into(), ..form.clone() };
        assert!(matches!(bad.input(), Err(AppError::Validation { field, .. }) if field == "lon"));
        let bad = OverrideForm { lat: "NaN".into(), ..form };
        assert!(matches!(bad.input(), Err(AppError::Validation { field, .. }) if field == "lat"));
    }
}
