//! Users: the media servers' accounts, with their devices, places and plays; their trust
//! score with its timeline, and their households. Admins change trust and households here;
//! viewers see both read-only. The changes are `rules::admin`'s, the API's too.

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;
use serde_json::json;

use crate::auth::{Admin, CsrfForm, NoFields, Scope, Viewer};
use crate::db::Db;
use crate::db::households::{self, Household};
use crate::db::media_users::{self, Device, Location, MediaUserRow};
use crate::db::plays::{self, HistoryFilter};
use crate::db::trust::{self, TrustEvent};
use crate::error::{AppError, AppResult};
use crate::rules::admin;
use crate::rules::engine::RulesSettings;
use crate::rules::trust::{Band, Change};
use crate::web::htmx::HxRequest;
use crate::web::htmx::Saved;
use crate::web::htmx::{Done, done};
use crate::web::layout::Layout;
use crate::web::{ClientAddr, audit, format, render};

/// Most timeline entries the page shows.
const TIMELINE_LIMIT: u32 = 1000;

/// A user in the list, with the band of their trust score.
pub struct UserLine {
    pub user: MediaUserRow,
    pub band: Band,
}

#[derive(Template)]
#[template(path = "users/index.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserLine>,
    /// Admins only: persons and what may be linked.
    persons: Vec<crate::persons::PersonWithAccounts>,
    suggestions: Vec<crate::persons::Suggestion>,
}

#[rocket::get("/users")]
pub async fn index(viewer: Viewer, layout: Layout, db: &State<Db>) -> AppResult<RawHtml<String>> {
    let scope = viewer.0.scope();
    let admin = layout.is_admin();
    let (users, settings, persons, suggestions) = db
        .read(move |c| {
            let (persons, suggestions) = if admin {
                (crate::persons::list(c)?, crate::persons::suggestions(c)?)
            } else {
                (Vec::new(), Vec::new())
            };
            Ok((media_users::list(c)?, RulesSettings::load(c)?, persons, suggestions))
        })
        .await?;
    let users = users
        .into_iter()
        .filter(|u| scope.allows(u.id))
        .map(|user| UserLine { band: Band::of(user.trust_score, settings.trust_low_below), user })
        .collect();
    render(&UsersPage { layout: layout.nav("users"), users, persons, suggestions })
}

/// A household network with the plays seen from it.
pub struct HomeLine {
    pub home: Household,
    /// Finished plays from inside the network.
    pub plays: i64,
    /// Start of the latest of them (Unix milliseconds).
    pub last_seen_at: Option<i64>,
}

/// The trust form as posted.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct TrustForm {
    /// `adjust`, `set` or `reset`.
    #[field(default = String::new())]
    change: String,
    #[field(default = String::new())]
    amount: String,
    #[field(default = String::new())]
    note: String,
}

impl TrustForm {
    /// The change it asks for; errors name the form's fields.
    fn change(&self) -> AppResult<Change> {
        let amount = || {
            self.amount
                .trim()
                .parse::<i64>()
                .map_err(|_| AppError::validation("amount", "a whole number"))
        };
        let change = match self.change.as_str() {
            "adjust" => Change::Adjust(amount()?),
            "set" => Change::Set(amount()?),
            "reset" => Change::Reset,
            _ => return Err(AppError::validation("change", "adjust, set or reset")),
        };
        if self.note.trim().is_empty() {
            return Err(AppError::validation("note", "say why: the timeline shows it"));
        }
        Ok(change)
    }
}

/// The add-a-household form as posted.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct HouseholdForm {
    #[field(default = String::new())]
    network: String,
    #[field(default = String::new())]
    label: String,
}

#[derive(Template)]
#[template(path = "users/detail.html")]
struct UserPage {
    layout: Layout,
    user: MediaUserRow,
    band: Band,
    /// The `trust_low` threshold: below it the score shows as low.
    low_below: u32,
    devices: Vec<Device>,
    locations: Vec<Location>,
    recent: Vec<crate::web::history::RowView>,
    timeline: Vec<TrustEvent>,
    /// Older entries exist beyond [`TIMELINE_LIMIT`].
    timeline_cut: bool,
    confirmed: Vec<HomeLine>,
    proposed: Vec<HomeLine>,
    trust_form: TrustForm,
    home_form: HouseholdForm,
    /// The field that did not check out, and why.
    error: Option<(String, String)>,
    violations: Vec<crate::db::rules::ViolationRow>,
    /// All of the user's history, from the rollups.
    stats: crate::stats::Stats,
    /// Plays and hours per month, newest first.
    months: Vec<(String, i64, String)>,
    places: crate::stats::map::History,
    /// The other accounts of the user's person.
    person_accounts: Vec<crate::db::persons::Account>,
    /// Admins only.
    notes: Vec<crate::db::user_notes::Note>,
    note_form: String,
}

impl UserPage {
    /// A marker's radius in degrees on the small map.
    pub fn radius(&self, plays: impl format::Num) -> f64 {
        let plays = plays.get();
        let max = self.places.places.first().map_or(1, |p| p.plays).max(1);
        #[expect(clippy::cast_precision_loss, reason = "marker sizes")]
        let share = (plays as f64 / max as f64).sqrt();
        (2.0 + 6.0 * share * 10.0).round() / 10.0
    }

    pub fn watch_hours(ms: impl format::Num) -> String {
        let ms = ms.get();
        format!("{}.{}", ms / 3_600_000, (ms % 3_600_000) / 360_000)
    }

    fn invalid(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|(f, _)| f == field)
    }

    fn error_message(&self) -> &str {
        self.error.as_ref().map_or("", |(_, m)| m.as_str())
    }
}

/// "+5", "-20": a change of score.
pub fn signed(delta: &i64) -> String {
    format!("{delta:+}")
}

/// Who did it, as the timeline shows them: `alice`, or `api-key:ci` for a key.
pub fn actor_name(actor: &Option<String>) -> &str {
    let actor = actor.as_deref().unwrap_or("someone");
    actor.strip_prefix("user:").unwrap_or(actor)
}

async fn user_page(db: &Db, layout: Layout, id: i64, scope: Scope) -> AppResult<UserPage> {
    if !scope.allows(id) {
        return Err(AppError::not_found(format!("user {id}")));
    }
    let (user, devices, locations, recent, timeline, homes, addresses, settings) = db
        .read(move |conn| {
            let user = media_users::get(conn, id)?
                .ok_or_else(|| AppError::not_found(format!("user {id}")))?;
            let filter = HistoryFilter { user_id: Some(id), ..HistoryFilter::default() };
            Ok((
                user,
                media_users::devices(conn, id)?,
                media_users::locations(conn, id)?,
                plays::history(conn, &filter, scope, None, 20)?.items,
                trust::timeline(conn, id, TIMELINE_LIMIT)?,
                households::list(conn, id)?,
                households::addresses(conn, id)?,
                RulesSettings::load(conn)?,
            ))
        })
        .await?;
    let admin_view = scope == Scope::All;
    let person_id = user.person.as_ref().map(|p| p.id);
    let (violations, notes, person_accounts) = db
        .read(move |conn| {
            let person_accounts = match person_id {
                Some(p) => crate::db::persons::members(conn, p)?
                    .into_iter()
                    .filter(|a| a.id != id)
                    .collect(),
                None => Vec::new(),
            };
            let filter =
                crate::db::rules::ViolationFilter { user_id: Some(id), ..Default::default() };
            let notes =
                if admin_view { crate::db::user_notes::list(conn, id)? } else { Vec::new() };
            Ok((
                crate::db::rules::list_violations(conn, &filter, scope, None, 20)?,
                notes,
                person_accounts,
            ))
        })
        .await?;
    let service = crate::stats::StatsService::new(db.clone(), crate::stats::Calendar::system());
    let today = service.calendar().day_of(crate::db::now_ms());
    let user_scope = crate::db::stats::Scope { server_id: user.server_id, user_id: id };
    service.catch_up().await?;
    let first =
        db.read(move |c| crate::stats::query::first_day(c, user_scope)).await?.unwrap_or(today);
    let q = crate::stats::StatsQuery {
        first: first.min(today),
        last: today,
        scope: user_scope,
        top: 5,
    };
    let stats = service.stats(q).await?;
    let places = service.places(q).await?;
    let mut months: Vec<(String, i64, i64)> = Vec::new();
    for d in &stats.plays_by_day {
        let month = d.date[..7].to_owned();
        match months.last_mut() {
            Some(m) if m.0 == month => {
                m.1 += d.plays;
                m.2 += d.watch_ms;
            }
            _ => months.push((month, d.plays, d.watch_ms)),
        }
    }
    let months = months
        .into_iter()
        .rev()
        .filter(|m| m.1 > 0)
        .map(|(m, p, w)| (m, p, UserPage::watch_hours(w)))
        .collect();
    let (confirmed, proposed): (Vec<HomeLine>, Vec<HomeLine>) = homes
        .into_iter()
        .map(|home| {
            let (plays, last_seen_at) = households::tally(&home.network, &addresses);
            HomeLine { home, plays, last_seen_at }
        })
        .partition(|h| h.home.confirmed);
    Ok(UserPage {
        layout: layout.nav("users"),
        band: Band::of(user.trust_score, settings.trust_low_below),
        low_below: settings.trust_low_below,
        user,
        devices,
        locations,
        recent: recent.into_iter().map(crate::web::history::view).collect(),
        timeline_cut: timeline.len() >= TIMELINE_LIMIT as usize,
        timeline,
        confirmed,
        proposed,
        trust_form: TrustForm { change: "adjust".into(), ..TrustForm::default() },
        home_form: HouseholdForm::default(),
        error: None,
        violations,
        stats,
        months,
        places,
        person_accounts,
        notes,
        note_form: String::new(),
    })
}

#[rocket::get("/users/<id>")]
pub async fn detail(
    viewer: Viewer,
    layout: Layout,
    id: i64,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    render(&user_page(db, layout, id, viewer.0.scope()).await?)
}

/// The user page again, with what was typed and the field that did not check out.
async fn refused(
    db: &Db,
    layout: Layout,
    id: i64,
    e: AppError,
    fill: impl FnOnce(&mut UserPage),
) -> AppResult<Saved> {
    let status = e.status();
    let AppError::Validation { field, message } = e else { return Err(e) };
    let mut page = user_page(db, layout, id, Scope::All).await?;
    fill(&mut page);
    page.error = Some((field, message));
    Ok(Saved::Refused(status, render(&page)?))
}

/// An admin adjusts, sets or resets a user's trust, saying why.
#[rocket::post("/users/<id>/trust", data = "<form>")]
pub async fn set_trust(
    admin: Admin,
    id: i64,
    form: CsrfForm<TrustForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Saved> {
    let f = form.0;
    let actor = admin.0.actor();
    let result = match f.change() {
        Ok(change) => admin::set_trust(db, id, change, &actor, f.note.clone()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(score) => {
            audit(
                db,
                &actor,
                "user.trust",
                &format!("user:{id}"),
                json!({"trust_score": score, "change": f.change, "note": f.note.trim()}),
                ip.0,
            )
            .await;
            Ok(Saved::Done(done(&hx, format!("{}/users/{id}#trust", layout.base))))
        }
        Err(AppError::Validation { field, message }) => {
            // The domain names the API's fields; the form has one number box.
            let field =
                if matches!(field.as_str(), "value" | "adjust") { "amount".into() } else { field };
            let e = AppError::Validation { field, message };
            refused(db, layout, id, e, |page| page.trust_form = f).await
        }
        Err(e) => Err(e),
    }
}

/// An admin adds an address or a network to a user's households by hand.
#[rocket::post("/users/<id>/households", data = "<form>")]
pub async fn add_household(
    admin: Admin,
    id: i64,
    form: CsrfForm<HouseholdForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Saved> {
    let f = form.0;
    match admin::add_household(db, id, f.network.clone(), f.label.clone()).await {
        Ok(home) => {
            audit(
                db,
                &admin.0.actor(),
                "household.add",
                &format!("user:{id}"),
                json!({"network": home.network}),
                ip.0,
            )
            .await;
            Ok(Saved::Done(done(&hx, format!("{}/users/{id}#households", layout.base))))
        }
        Err(e) => refused(db, layout, id, e, |page| page.home_form = f).await,
    }
}

/// Confirms a proposed (learned) household.
#[rocket::post("/users/<id>/households/<home>/confirm", data = "<_form>")]
pub async fn confirm_household(
    admin: Admin,
    id: i64,
    home: i64,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let home = admin::confirm_household(db, home, Some(id)).await?;
    audit(
        db,
        &admin.0.actor(),
        "household.confirm",
        &format!("household:{}", home.id),
        json!({"network": home.network}),
        ip.0,
    )
    .await;
    Ok(done(&hx, format!("{}/users/{id}#households", layout.base)))
}

/// Removes a household, proposed or confirmed.
#[rocket::post("/users/<id>/households/<home>/delete", data = "<_form>")]
pub async fn delete_household(
    admin: Admin,
    id: i64,
    home: i64,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let gone = admin::remove_household(db, home, Some(id)).await?;
    audit(
        db,
        &admin.0.actor(),
        "household.delete",
        &format!("household:{home}"),
        json!({"network": gone.network}),
        ip.0,
    )
    .await;
    Ok(done(&hx, format!("{}/users/{id}#households", layout.base)))
}

/// The add-a-note form as posted.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct NoteForm {
    #[field(default = String::new())]
    body: String,
}

/// Adds an admin's note to a user.
#[rocket::post("/users/<id>/notes", data = "<form>")]
pub async fn add_note(
    admin: Admin,
    id: i64,
    form: CsrfForm<NoteForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Saved> {
    let body = form.0.body.trim().to_owned();
    if body.is_empty() || body.chars().count() > 2000 {
        let e = AppError::validation("body", "write a note of 1 to 2,000 characters");
        return refused(db, layout, id, e, |p| p.note_form = body).await;
    }
    let author = admin.0.actor();
    let (stored, who) = (body.clone(), author.clone());
    let note = db
        .write(move |c| {
            media_users::get(c, id)?.ok_or_else(|| AppError::not_found(format!("user {id}")))?;
            crate::db::user_notes::insert(c, id, &stored, &who, crate::db::now_ms())
        })
        .await?;
    audit(db, &author, "user.note.add", &format!("user:{id}"), json!({"note": note}), ip.0).await;
    Ok(Saved::Done(done(&hx, format!("{}/users/{id}#notes", layout.base))))
}

/// Removes a note.
#[rocket::post("/users/<id>/notes/<note>/delete", data = "<_form>")]
pub async fn delete_note(
    admin: Admin,
    id: i64,
    note: i64,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    if !db.write(move |c| crate::db::user_notes::delete(c, id, note)).await? {
        return Err(AppError::not_found(format!("note {note}")));
    }
    audit(
        db,
        &admin.0.actor(),
        "user.note.delete",
        &format!("user:{id}"),
        json!({"note": note}),
        ip.0,
    )
    .await;
    Ok(done(&hx, format!("{}/users/{id}#notes", layout.base)))
}

/// "3 days ago"-style text is avoided on purpose: pages may be cached in a screenshot;
/// a date stays true.
pub fn seen(ms: &Option<i64>) -> String {
    ms.map_or_else(|| "never".to_owned(), format::local_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trust_form_names_its_fields() {
        let form = |change: &str, amount: &str, note: &str| TrustForm {
            change: change.into(),
            amount: amount.into(),
            note: note.into(),
        };
        assert_eq!(form("adjust", "-5", "why").change().unwrap(), Change::Adjust(-5));
        assert_eq!(form("set", " 70 ", "why").change().unwrap(), Change::Set(70));
        assert_eq!(form("reset", "", "why").change().unwrap(), Change::Reset);
        let field = |f: TrustForm| match f.change() {
            Err(AppError::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(form("adjust", "five", "why")), "amount");
        assert_eq!(field(form("double", "5", "why")), "change");
        assert_eq!(field(form("reset", "", "  ")), "note");
        assert_eq!(signed(&5), "+5");
        assert_eq!(signed(&-20), "-20");
        assert_eq!(actor_name(&Some("user:alice".into())), "alice");
        assert_eq!(actor_name(&Some("api-key:ci".into())), "api-key:ci");
    }
}
