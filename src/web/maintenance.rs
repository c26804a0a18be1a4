//! The maintenance pages under `/libraries`: the candidates to review, the confirmation
//! that lists what a deletion removes, its outcome, the rules and their editor, the
//! exclusions and the deletion log. The logic is in `crate::maintenance`; the API
//! (`api/maintenance.rs`) calls the same functions, so both refuse and record the same.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;
use serde_json::{Map, Value};

use crate::auth::{Admin, CsrfForm, NoFields};
use crate::db::Db;
use crate::db::libraries;
use crate::db::maintenance::{self as store, CandidateCursor, CandidateRow, Cascade, Step};
use crate::error::{AppError, AppResult};
use crate::format;
use crate::maintenance::criteria::{self, TYPES};
use crate::maintenance::delete::ItemResult;
use crate::maintenance::rules::{Rule, RuleChanges};
use crate::maintenance::text::bytes;
use crate::maintenance::{Actor, Maintenance};
use crate::web::api::maintenance::{parse_log_cursor, parse_until};
use crate::web::htmx::{Done, HxRequest, done};
use crate::web::layout::Layout;
use crate::web::libraries::ItemView;
use crate::web::{ClientAddr, render};

/// Candidates and log entries per page.
pub const PAGE_SIZE: u32 = 50;

fn actor(admin: &Admin, ip: ClientAddr) -> Actor {
    Actor { name: admin.0.actor(), ip: ip.0 }
}

/// A candidate's line in the review.
pub struct CandidateView {
    pub id: i64,
    pub item: ItemView,
    pub rule_id: i64,
    pub rule_name: String,
    pub reasons: String,
    pub size: String,
}

impl CandidateView {
    fn of(c: &CandidateRow) -> Self {
        Self {
            id: c.id,
            item: ItemView::of(&c.item),
            rule_id: c.rule_id,
            rule_name: c.rule_name.clone(),
            reasons: c.reasons.join("; "),
            size: bytes(c.size_bytes),
        }
    }
}

#[derive(Template)]
#[template(path = "libraries/candidates.html")]
struct CandidatesPage {
    layout: Layout,
    tab: &'static str,
    rules: Vec<(i64, String)>,
    libraries: Vec<(i64, String)>,
    rule: Option<i64>,
    library: Option<i64>,
    candidates: Vec<CandidateView>,
    total: i64,
    total_size: String,
    filters: String,
    next: Option<String>,
    first_page: bool,
}

/// The filters of the review: blank means any.
fn id_filter(field: &str, raw: Option<&str>) -> AppResult<Option<i64>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| AppError::validation(field, format!("{s:?} is not an id (a number)"))),
        None => Ok(None),
    }
}

#[rocket::get("/libraries/candidates?<rule>&<library>&<cursor>")]
pub async fn candidates(
    _admin: Admin,
    rule: Option<String>,
    library: Option<String>,
    cursor: Option<String>,
    layout: Layout,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let rule = id_filter("rule", rule.as_deref())?;
    let library = id_filter("library", library.as_deref())?;
    let first_page = cursor.as_deref().is_none_or(str::is_empty);
    let cursor =
        match cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(raw) => Some(CandidateCursor::decode(raw).ok_or_else(|| {
                AppError::validation("cursor", "not a cursor from a previous page")
            })?),
            None => None,
        };
    let (rows, next, (total, size), rules, libs) = db
        .read(move |c| {
            let (rows, next) = store::candidates(c, rule, library, cursor, PAGE_SIZE)?;
            Ok((
                rows,
                next,
                store::candidate_totals(c, rule, library)?,
                store::list_rules(c)?,
                libraries::list(c)?,
            ))
        })
        .await?;
    let (r, l) = (rule.map(|r| r.to_string()), library.map(|l| l.to_string()));
    render(&CandidatesPage {
        layout: layout.nav("libraries"),
        tab: "candidates",
        rules: rules.into_iter().map(|r| (r.id, r.name)).collect(),
        libraries: libs
            .into_iter()
            .filter(|l| l.kind.has_items())
            .map(|l| (l.id, format!("{} · {}", l.server_name, l.name)))
            .collect(),
        rule,
        library,
        candidates: rows.iter().map(CandidateView::of).collect(),
        total,
        total_size: bytes(size),
        filters: format::query_string([("rule", r.as_deref()), ("library", l.as_deref())]),
        next: next.map(CandidateCursor::encode),
        first_page,
    })
}

#[derive(Debug, Default, rocket::FromForm)]
pub struct SelectionForm {
    /// Candidate ids.
    #[field(default = Vec::new())]
    ids: Vec<i64>,
}

/// One item the confirmation lists.
pub struct ConfirmView {
    pub title: String,
    pub server_and_library: String,
    pub rules: String,
    pub size: String,
    pub cascade: String,
}

#[derive(Template)]
#[template(path = "libraries/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    tab: &'static str,
    ids: Vec<i64>,
    items: Vec<ConfirmView>,
    total_size: String,
}

fn cascade_text(c: Cascade) -> String {
    let steps: Vec<&str> = [(c.radarr, "Radarr"), (c.sonarr, "Sonarr"), (c.seerr, "Seerr")]
        .iter()
        .filter(|s| s.0)
        .map(|s| s.1)
        .collect();
    if steps.is_empty() { "media server only".to_owned() } else { steps.join(", ") }
}

/// The confirmation: what the selected candidates are, item by item, and what they free.
/// Nothing changes here.
#[rocket::post("/libraries/delete/review", data = "<form>")]
pub async fn review(
    _admin: Admin,
    form: CsrfForm<SelectionForm>,
    layout: Layout,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let ids = form.0.ids;
    if ids.is_empty() {
        return Err(AppError::validation("ids", "select at least one candidate"));
    }
    let wanted = ids.clone();
    let (found, libs) =
        db.read(move |c| Ok((store::candidates_by_ids(c, &wanted)?, libraries::list(c)?))).await?;
    // An item two rules propose is listed (and deleted) once.
    let mut items: Vec<(i64, ConfirmView, Cascade, i64)> = Vec::new();
    for c in &found {
        if let Some(seen) = items.iter_mut().find(|i| i.0 == c.item.id) {
            seen.1.rules = format!("{}, {}", seen.1.rules, c.rule_name);
            seen.2 = Cascade {
                radarr: seen.2.radarr || c.cascade.radarr,
                sonarr: seen.2.sonarr || c.cascade.sonarr,
                seerr: seen.2.seerr || c.cascade.seerr,
            };
            continue;
        }
        let library = libs.iter().find(|l| l.id == c.item.library_id);
        items.push((
            c.item.id,
            ConfirmView {
                title: c.item.full_title(),
                server_and_library: library
                    .map(|l| format!("{} · {}", l.server_name, l.name))
                    .unwrap_or_default(),
                rules: c.rule_name.clone(),
                size: bytes(c.size_bytes),
                cascade: String::new(),
            },
            c.cascade,
            c.size_bytes,
        ));
    }
    if items.is_empty() {
        return Err(AppError::validation(
            "ids",
            "none of the selected candidates exists any more: evaluate again",
        ));
    }
    let total: i64 = items.iter().map(|i| i.3).sum();
    render(&ConfirmPage {
        layout: layout.nav("libraries"),
        tab: "candidates",
        ids: found.iter().map(|c| c.id).collect(),
        items: items
            .into_iter()
            .map(|(_, mut v, cascade, _)| {
                v.cascade = cascade_text(cascade);
                v
            })
            .collect(),
        total_size: bytes(total),
    })
}

#[derive(Debug, Default, rocket::FromForm)]
pub struct DeleteForm {
    #[field(default = Vec::new())]
    ids: Vec<i64>,
    /// The confirmation page's button sets it.
    #[field(default = false)]
    confirm: bool,
}

/// One step's outcome as the pages show it.
pub struct StepView {
    pub name: &'static str,
    pub outcome: String,
    pub error: String,
}

impl StepView {
    fn of(name: &'static str, s: &Step) -> Self {
        Self { name, outcome: s.outcome.clone(), error: s.error.clone().unwrap_or_default() }
    }

    pub fn badge(&self) -> &'static str {
        match self.outcome.as_str() {
            "deleted" | "already_gone" | "not_found" => "badge-ok",
            "failed" => "badge-bad",
            "pending" => "badge-info",
            _ => "",
        }
    }
}

/// One item of a finished deletion.
pub struct ResultView {
    pub title: String,
    pub size: String,
    pub steps: Vec<StepView>,
    pub error: String,
}

impl ResultView {
    fn of(r: &ItemResult) -> Self {
        let step = |outcome: &str| Step { outcome: outcome.to_owned(), error: None };
        Self {
            title: r.title.clone(),
            size: bytes(r.size_bytes),
            steps: vec![
                StepView::of("Media server", &step(r.server)),
                StepView::of("Radarr", &step(r.radarr)),
                StepView::of("Sonarr", &step(r.sonarr)),
                StepView::of("Seerr", &step(r.seerr)),
            ],
            error: r.error.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "libraries/deleted.html")]
struct DeletedPage {
    layout: Layout,
    tab: &'static str,
    results: Vec<ResultView>,
    freed: String,
}

/// Deletes the confirmed candidates and shows what happened to each.
#[rocket::post("/libraries/delete", data = "<form>")]
pub async fn delete(
    admin: Admin,
    form: CsrfForm<DeleteForm>,
    layout: Layout,
    maintenance: &State<Arc<Maintenance>>,
    ip: ClientAddr,
) -> AppResult<RawHtml<String>> {
    let form = form.0;
    if !form.confirm {
        return Err(AppError::validation(
            "confirm",
            "deleting needs the confirmation: it cannot be undone",
        ));
    }
    let results = maintenance.delete(form.ids, &actor(&admin, ip)).await?;
    let freed = results.iter().filter(|r| r.server == "deleted").map(|r| r.size_bytes).sum();
    render(&DeletedPage {
        layout: layout.nav("libraries"),
        tab: "log",
        results: results.iter().map(ResultView::of).collect(),
        freed: bytes(freed),
    })
}

/// A rule's line in the list.
pub struct RuleView {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub description: String,
    pub libraries: String,
    pub cascade: String,
    pub candidates: i64,
    pub size: String,
    pub evaluated: String,
}

#[derive(Template)]
#[template(path = "libraries/rules.html")]
struct RulesPage {
    layout: Layout,
    tab: &'static str,
    rules: Vec<RuleView>,
}

fn library_names(ids: &[i64], libs: &[libraries::LibraryRow]) -> String {
    ids.iter()
        .filter_map(|id| libs.iter().find(|l| l.id == *id))
        .map(|l| format!("{} · {}", l.server_name, l.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[rocket::get("/libraries/rules")]
pub async fn rules(
    _admin: Admin,
    layout: Layout,
    maintenance: &State<Arc<Maintenance>>,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let rules = maintenance.rules().await?;
    let libs = db.read(libraries::list).await?;
    render(&RulesPage {
        layout: layout.nav("libraries"),
        tab: "rules",
        rules: rules
            .iter()
            .map(|r| RuleView {
                id: r.row.id,
                name: r.row.name.clone(),
                enabled: r.row.enabled,
                description: r.describe(),
                libraries: library_names(&r.row.library_ids, &libs),
                cascade: cascade_text(r.row.cascade),
                candidates: r.row.candidates,
                size: bytes(r.row.size_bytes),
                evaluated: r
                    .row
                    .evaluated_at
                    .map_or_else(|| "never".to_owned(), format::local_time),
            })
            .collect(),
    })
}

/// A criterion in the editor: on or off, with its parameters.
pub struct CriterionView {
    pub kind: &'static str,
    pub label: &'static str,
    pub checked: bool,
    pub params: Vec<ParamView>,
}

pub struct ParamView {
    /// The form field: `params[unwatched_movie_days]`.
    pub key: String,
    pub name: &'static str,
    pub value: String,
    pub min: f64,
    pub max: f64,
    pub step: f64,
    pub unit: &'static str,
}

#[derive(Template)]
#[template(path = "libraries/rule_edit.html")]
struct RuleEditPage {
    layout: Layout,
    tab: &'static str,
    /// `None`: a new rule.
    id: Option<i64>,
    name: String,
    enabled: bool,
    any: bool,
    libraries: Vec<(i64, String, bool)>,
    criteria: Vec<CriterionView>,
    cascade: Cascade,
}

fn number_text(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { v.to_string() }
}

/// The editor for `rule`, or for a new rule (with an unwatched-movie criterion on).
fn editor(layout: Layout, rule: Option<&Rule>, libs: &[libraries::LibraryRow]) -> RuleEditPage {
    let stored: HashMap<&'static str, Value> = rule
        .map(|r| r.criteria.iter().map(|c| (c.kind(), c.to_json())).collect())
        .unwrap_or_default();
    let criteria = TYPES
        .iter()
        .map(|kind| CriterionView {
            kind,
            label: criteria::label(kind),
            checked: if rule.is_some() {
                stored.contains_key(*kind)
            } else {
                *kind == "unwatched_movie"
            },
            params: criteria::form_params(kind)
                .into_iter()
                .map(|(name, default, min, max, unit, step)| ParamView {
                    key: format!("{kind}_{name}"),
                    name,
                    value: stored
                        .get(*kind)
                        .and_then(|v| v["params"][name].as_f64())
                        .map_or_else(|| number_text(default), number_text),
                    min,
                    max,
                    step,
                    unit,
                })
                .collect(),
        })
        .collect();
    let chosen = rule.map(|r| r.row.library_ids.clone()).unwrap_or_default();
    RuleEditPage {
        layout: layout.nav("libraries"),
        tab: "rules",
        id: rule.map(|r| r.row.id),
        name: rule.map(|r| r.row.name.clone()).unwrap_or_default(),
        enabled: rule.is_none_or(|r| r.row.enabled),
        any: rule.is_some_and(|r| r.how == criteria::Match::Any),
        libraries: libs
            .iter()
            .filter(|l| l.kind.has_items())
            .map(|l| {
                (
                    l.id,
                    format!("{} · {} ({})", l.server_name, l.name, l.kind),
                    chosen.contains(&l.id),
                )
            })
            .collect(),
        criteria,
        cascade: rule.map(|r| r.row.cascade).unwrap_or_default(),
    }
}

#[rocket::get("/libraries/rules/new")]
pub async fn new_rule(_admin: Admin, layout: Layout, db: &State<Db>) -> AppResult<RawHtml<String>> {
    let libs = db.read(libraries::list).await?;
    render(&editor(layout, None, &libs))
}

#[rocket::get("/libraries/rules/<id>")]
pub async fn edit_rule(
    _admin: Admin,
    id: i64,
    layout: Layout,
    maintenance: &State<Arc<Maintenance>>,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let rule = maintenance.rule(id).await?;
    let libs = db.read(libraries::list).await?;
    render(&editor(layout, Some(&rule), &libs))
}

/// The editor's fields. A parameter is `params[{type}_{name}]`.
#[derive(Debug, Default, rocket::FromForm)]
pub struct RuleForm {
    #[field(default = String::new())]
    name: String,
    #[field(default = false)]
    enabled: bool,
    #[field(name = "match", default = String::from("all"))]
    how: String,
    #[field(default = Vec::new())]
    library_ids: Vec<i64>,
    /// The checked criterion types.
    #[field(default = Vec::new())]
    criteria: Vec<String>,
    #[field(default = HashMap::new())]
    params: HashMap<String, String>,
    #[field(default = false)]
    radarr: bool,
    #[field(default = false)]
    sonarr: bool,
    #[field(default = false)]
    seerr: bool,
}

impl RuleForm {
    /// The same change the API takes; numbers that are not numbers are passed on as text so
    /// that the check names the field.
    fn changes(self) -> RuleChanges {
        let criteria = self
            .criteria
            .iter()
            .map(|kind| {
                let mut params = Map::new();
                for (name, ..) in criteria::form_params(kind) {
                    if let Some(raw) = self.params.get(&format!("{kind}_{name}")) {
                        let raw = raw.trim();
                        if raw.is_empty() {
                            continue;
                        }
                        let value = raw
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map_or_else(|| Value::from(raw), Value::Number);
                        params.insert(name.to_owned(), value);
                    }
                }
                serde_json::json!({"type": kind, "params": params})
            })
            .collect();
        RuleChanges {
            name: Some(self.name),
            enabled: Some(self.enabled),
            library_ids: Some(self.library_ids),
            match_: Some(self.how),
            criteria: Some(Value::Array(criteria)),
            cascade: Some(Cascade { radarr: self.radarr, sonarr: self.sonarr, seerr: self.seerr }),
        }
    }
}

#[rocket::post("/libraries/rules", data = "<form>")]
pub async fn create_rule(
    admin: Admin,
    form: CsrfForm<RuleForm>,
    maintenance: &State<Arc<Maintenance>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let rule = maintenance.create_rule(form.0.changes(), &actor(&admin, ip)).await?;
    Ok(done(&hx, format!("{}/libraries/candidates?rule={}", layout.base, rule.row.id)))
}

#[rocket::post("/libraries/rules/<id>", data = "<form>")]
pub async fn update_rule(
    admin: Admin,
    id: i64,
    form: CsrfForm<RuleForm>,
    maintenance: &State<Arc<Maintenance>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    maintenance.update_rule(id, form.0.changes(), &actor(&admin, ip)).await?;
    Ok(done(&hx, format!("{}/libraries/rules", layout.base)))
}

#[rocket::post("/libraries/rules/<id>/evaluate", data = "<_form>")]
pub async fn evaluate_rule(
    _admin: Admin,
    id: i64,
    _form: CsrfForm<NoFields>,
    maintenance: &State<Arc<Maintenance>>,
    hx: HxRequest,
    layout: Layout,
) -> AppResult<Done> {
    maintenance.evaluate(id).await?;
    Ok(done(&hx, format!("{}/libraries/candidates?rule={id}", layout.base)))
}

#[rocket::post("/libraries/rules/<id>/delete", data = "<_form>")]
pub async fn delete_rule(
    admin: Admin,
    id: i64,
    _form: CsrfForm<NoFields>,
    maintenance: &State<Arc<Maintenance>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    maintenance.delete_rule(id, &actor(&admin, ip)).await?;
    Ok(done(&hx, format!("{}/libraries/rules", layout.base)))
}

/// An exclusion's line.
pub struct ExclusionView {
    pub id: i64,
    pub title: String,
    pub until: String,
    pub active: bool,
    pub reason: String,
    pub by: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "libraries/exclusions.html")]
struct ExclusionsPage {
    layout: Layout,
    tab: &'static str,
    exclusions: Vec<ExclusionView>,
    /// The item to exclude, when the form was asked for one.
    adding: Option<ItemView>,
}

#[rocket::get("/libraries/exclusions?<item>")]
pub async fn exclusions(
    _admin: Admin,
    item: Option<i64>,
    layout: Layout,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let now = crate::time::now_ms();
    let (rows, adding) = db
        .read(move |c| {
            let adding = match item {
                Some(id) => libraries::get_item(c, id)?,
                None => None,
            };
            Ok((store::exclusions(c)?, adding))
        })
        .await?;
    if let (Some(id), None) = (item, &adding) {
        return Err(AppError::not_found(format!("library item {id}")));
    }
    render(&ExclusionsPage {
        layout: layout.nav("libraries"),
        tab: "exclusions",
        exclusions: rows
            .into_iter()
            .map(|e| ExclusionView {
                id: e.id,
                title: e.item.full_title(),
                until: e.until.map_or_else(|| "forever".to_owned(), format::local_date),
                active: e.until.is_none_or(|u| u > now),
                reason: e.reason,
                by: e.created_by,
                at: format::local_time(e.created_at),
            })
            .collect(),
        adding: adding.as_ref().map(ItemView::of),
    })
}

#[derive(Debug, Default, rocket::FromForm)]
pub struct ExclusionForm {
    item_id: i64,
    /// `YYYY-MM-DD`; empty: forever.
    #[field(default = String::new())]
    until: String,
    #[field(default = String::new())]
    reason: String,
}

#[rocket::post("/libraries/exclusions", data = "<form>")]
pub async fn create_exclusion(
    admin: Admin,
    form: CsrfForm<ExclusionForm>,
    maintenance: &State<Arc<Maintenance>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let f = form.0;
    let until = parse_until(Some(&f.until))?;
    maintenance.exclude(f.item_id, until, f.reason, &actor(&admin, ip)).await?;
    Ok(done(&hx, format!("{}/libraries/exclusions", layout.base)))
}

#[rocket::post("/libraries/exclusions/<id>/delete", data = "<_form>")]
pub async fn delete_exclusion(
    admin: Admin,
    id: i64,
    _form: CsrfForm<NoFields>,
    maintenance: &State<Arc<Maintenance>>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    maintenance.delete_exclusion(id, &actor(&admin, ip)).await?;
    Ok(done(&hx, format!("{}/libraries/exclusions", layout.base)))
}

/// A deletion in the log.
pub struct DeletionView {
    pub id: i64,
    pub title: String,
    pub where_: String,
    pub rule: String,
    pub size: String,
    pub by: String,
    pub at: String,
    pub steps: Vec<StepView>,
}

#[derive(Template)]
#[template(path = "libraries/log.html")]
struct LogPage {
    layout: Layout,
    tab: &'static str,
    entries: Vec<DeletionView>,
    next: Option<String>,
    first_page: bool,
}

#[rocket::get("/libraries/log?<cursor>")]
pub async fn log(
    _admin: Admin,
    cursor: Option<String>,
    layout: Layout,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let before = parse_log_cursor(cursor.as_deref())?;
    let (rows, next) = db.read(move |c| store::deletions(c, before, PAGE_SIZE)).await?;
    render(&LogPage {
        layout: layout.nav("libraries"),
        tab: "log",
        entries: rows
            .into_iter()
            .map(|d| DeletionView {
                id: d.id,
                where_: format!("{} · {}", d.server_name, d.library_name),
                rule: d.rule_name.unwrap_or_default(),
                size: bytes(d.size_bytes),
                at: format::local_time(d.deleted_at),
                steps: vec![
                    StepView::of("Media server", &d.server),
                    StepView::of("Radarr", &d.radarr),
                    StepView::of("Sonarr", &d.sonarr),
                    StepView::of("Seerr", &d.seerr),
                ],
                title: d.title,
                by: d.deleted_by,
            })
            .collect(),
        next: next.map(|(at, id)| format!("{at}.{id}")),
        first_page: before.is_none(),
    })
}
