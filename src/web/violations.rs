//! Violations: the list with filters and paging, inline acknowledge and dismiss; the detail
//! with the evidence, what the actions did, the trust they took, who resolved it, and the
//! places on a small map drawn on the server (no tiles: the box may have no internet).
//!
//! The API (`api/violations.rs`) shares the filters ([`ViolationQuery`]) and the change
//! ([`resolve`]), so both refuse and record the same.

use std::fmt::Write as _;
use std::net::IpAddr;

use askama::Template;
use rocket::State;
use rocket::response::content::RawHtml;
use serde_json::json;

use crate::auth::{Admin, CsrfForm, Viewer};
use crate::db::rules::{ActionRow, Outcome, Status, ViolationFilter, ViolationRow};
use crate::db::trust::TrustEvent;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::format;
use crate::geo::map::{Frame, GridLine, LatLon};
use crate::geo::round1;
use crate::rules::eval::{
    Actual, ConditionEvidence, Related, Verdict, format_number, threshold_text,
};
use crate::rules::model::{Action, Severity};
use crate::web::history::parse_time;
use crate::web::htmx::HxRequest;
use crate::web::htmx::{Done, done};
use crate::web::layout::Layout;
use crate::web::{ClientAddr, audit, render};

/// Rows per page.
pub const PAGE_SIZE: u32 = 50;

/// The audit actions of a violation's status changes.
const STATUS_ACTIONS: [&str; 2] = ["violation.acknowledge", "violation.dismiss"];

/// The filters as the URL carries them (the API and the pages share this). Ids are text
/// here so that a wrong one is refused by name instead of silently ignored.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct ViolationQuery {
    /// `open`, `acknowledged` or `dismissed`.
    pub status: Option<String>,
    /// `low`, `warning` or `high`.
    pub severity: Option<String>,
    /// Rule id.
    pub rule: Option<String>,
    /// Media user id.
    pub user: Option<String>,
    pub server_id: Option<String>,
    /// The play that raised it.
    pub session: Option<String>,
    /// `YYYY-MM-DD` (a local day) or an RFC 3339 time.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (up to the end of that local day) or an RFC 3339 time (exclusive).
    pub to: Option<String>,
    /// API only: rows per page, at most 500.
    pub limit: Option<u32>,
    /// The id of the last violation of the previous page.
    pub cursor: Option<String>,
}

/// The value of a filter, `None` when absent or blank (an "any" option of a select).
fn given(raw: Option<&String>) -> Option<&str> {
    raw.map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn id_param(field: &str, raw: Option<&String>) -> AppResult<Option<i64>> {
    given(raw)
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| AppError::validation(field, format!("{s:?} is not an id (a number)")))
        })
        .transpose()
}

impl ViolationQuery {
    pub fn filter(&self) -> AppResult<ViolationFilter> {
        Ok(ViolationFilter {
            status: given(self.status.as_ref())
                .map(|s| {
                    Status::parse(s).ok_or_else(|| {
                        AppError::validation(
                            "status",
                            format!("{s:?}: one of open, acknowledged or dismissed"),
                        )
                    })
                })
                .transpose()?,
            severity: given(self.severity.as_ref())
                .map(|s| {
                    s.parse::<Severity>().map_err(|_| {
                        AppError::validation(
                            "severity",
                            format!("{s:?}: one of low, warning or high"),
                        )
                    })
                })
                .transpose()?,
            rule_id: id_param("rule", self.rule.as_ref())?,
            user_id: id_param("user", self.user.as_ref())?,
            server_id: id_param("server_id", self.server_id.as_ref())?,
            play_id: id_param("session", self.session.as_ref())?,
            from: given(self.from.as_ref()).map(|s| parse_time("from", s, false)).transpose()?,
            to: given(self.to.as_ref()).map(|s| parse_time("to", s, true)).transpose()?,
        })
    }

    pub fn cursor(&self) -> AppResult<Option<i64>> {
        given(self.cursor.as_ref())
            .map(|c| {
                c.parse::<i64>().map_err(|_| {
                    AppError::validation("cursor", "not a cursor from a previous page")
                })
            })
            .transpose()
    }

    /// The query string of these filters (without the cursor), for links.
    pub fn to_query(&self) -> String {
        format::query_string([
            ("status", self.status.as_deref()),
            ("severity", self.severity.as_deref()),
            ("rule", self.rule.as_deref()),
            ("user", self.user.as_deref()),
            ("server_id", self.server_id.as_deref()),
            ("session", self.session.as_deref()),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
        ])
    }

    fn is(raw: Option<&String>, value: &str) -> bool {
        given(raw) == Some(value)
    }

    pub fn is_status(&self, s: &str) -> bool {
        Self::is(self.status.as_ref(), s)
    }

    pub fn is_severity(&self, s: &str) -> bool {
        Self::is(self.severity.as_ref(), s)
    }

    pub fn is_rule(&self, id: impl format::Num) -> bool {
        Self::is(self.rule.as_ref(), &id.get().to_string())
    }

    pub fn is_user(&self, id: impl format::Num) -> bool {
        Self::is(self.user.as_ref(), &id.get().to_string())
    }

    pub fn is_server(&self, id: impl format::Num) -> bool {
        Self::is(self.server_id.as_ref(), &id.get().to_string())
    }

    /// The `from` day as typed, for the date input.
    pub fn from_text(&self) -> &str {
        self.from.as_deref().unwrap_or_default()
    }

    /// The `to` day as typed, for the date input.
    pub fn to_text(&self) -> &str {
        self.to.as_deref().unwrap_or_default()
    }
}

/// Acknowledges or dismisses a violation (dismissing gives back the trust its rule took)
/// and records who did it, with the note, in the audit log. The pages and the API call this.
pub async fn resolve(
    db: &Db,
    actor: &str,
    id: i64,
    status: Status,
    note: Option<String>,
    ip: Option<IpAddr>,
) -> AppResult<ViolationRow> {
    let given_note = note.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
    let v = crate::rules::admin::resolve(db, id, status, actor, note).await?;
    let action =
        if status == Status::Dismissed { "violation.dismiss" } else { "violation.acknowledge" };
    let details = match given_note {
        Some(note) => json!({ "note": note }),
        None => serde_json::Value::Null,
    };
    audit(db, actor, action, &format!("violation:{id}"), details, ip).await;
    Ok(v)
}

/// A violation as the list shows it.
pub struct RowView {
    pub v: ViolationRow,
    pub when: String,
    /// The matched conditions in one line (the stored summary repeats rule and user).
    pub summary: String,
}

impl RowView {
    pub fn of(v: ViolationRow) -> Self {
        let summary = v.verdict.summary();
        let summary = if summary.is_empty() { v.summary.clone() } else { summary };
        Self { when: format::local_time(v.at), summary, v }
    }

    pub fn status(&self) -> &'static str {
        self.v.status.label()
    }

    pub fn can_acknowledge(&self) -> bool {
        self.v.status == Status::Open
    }

    pub fn can_dismiss(&self) -> bool {
        self.v.status != Status::Dismissed
    }
}

#[derive(Template)]
#[template(path = "violations/index.html")]
struct ListPage {
    layout: Layout,
    query: ViolationQuery,
    statuses: [Status; 3],
    severities: [Severity; 3],
    rules: Vec<(i64, String)>,
    users: Vec<db::media_users::MediaUserRow>,
    servers: Vec<db::servers::ServerRow>,
    rows: Vec<RowView>,
    next: Option<i64>,
    filters: String,
    first_page: bool,
    back: String,
}

#[derive(Template)]
#[template(path = "violations/index.html", block = "results")]
struct ResultsFragment {
    layout: Layout,
    rows: Vec<RowView>,
    next: Option<i64>,
    filters: String,
    first_page: bool,
    back: String,
}

#[derive(Template)]
#[template(path = "violations/_row.html")]
struct RowFragment {
    layout: Layout,
    r: RowView,
    back: String,
}

/// `{base}/violations?{filters}`, the way back to this very page after a change.
fn list_url(base: &str, filters: &str, cursor: Option<i64>) -> String {
    let mut url = format!("{base}/violations");
    let mut sep = '?';
    if !filters.is_empty() {
        url.push(sep);
        url.push_str(filters);
        sep = '&';
    }
    if let Some(c) = cursor {
        url.push(sep);
        let _ = write!(url, "cursor={c}");
    }
    url
}

#[rocket::get("/violations?<query..>")]
pub async fn index(
    viewer: Viewer,
    layout: Layout,
    query: ViolationQuery,
    db: &State<Db>,
    hx: HxRequest,
) -> AppResult<RawHtml<String>> {
    let filter = query.filter()?;
    let cursor = query.cursor()?;
    let scope = viewer.0.scope();
    let page =
        db.read(move |c| db::rules::violations_page(c, &filter, scope, cursor, PAGE_SIZE)).await?;
    let rows: Vec<RowView> = page.items.into_iter().map(RowView::of).collect();
    let filters = query.to_query();
    let back = list_url(&layout.base, &filters, cursor);
    let (next, first_page) = (page.next, cursor.is_none());
    if hx.is_htmx() && hx.target.as_deref() == Some("violations-results") {
        return render(&ResultsFragment { layout, rows, next, filters, first_page, back });
    }
    let admin = viewer.0.is_admin();
    let (users, servers, rules) = db
        .read(move |c| {
            let rules = if admin { db::rules::list(c)? } else { Vec::new() };
            let servers = if admin { db::servers::list(c)? } else { Vec::new() };
            Ok((db::media_users::list(c)?, servers, rules))
        })
        .await?;
    render(&ListPage {
        layout: layout.nav("violations"),
        query,
        statuses: [Status::Open, Status::Acknowledged, Status::Dismissed],
        severities: Severity::ALL,
        rules: rules.into_iter().map(|r| (r.id, r.name)).collect(),
        users: users.into_iter().filter(|u| scope.allows(u.id)).collect(),
        servers,
        rows,
        next,
        filters,
        first_page,
        back,
    })
}

/// One condition's line of the evidence table.
pub struct EvidenceRow {
    pub field: &'static str,
    pub label: &'static str,
    pub actual: String,
    pub op: &'static str,
    pub threshold: String,
    pub matched: bool,
    pub note: Option<String>,
}

impl EvidenceRow {
    fn of(e: &ConditionEvidence) -> Self {
        Self {
            field: e.field.as_str(),
            label: e.field.label(),
            actual: actual_text(&e.actual),
            op: e.op.symbol(),
            threshold: match &e.threshold {
                serde_json::Value::Bool(b) => yes_no(*b).to_owned(),
                other => threshold_text(other),
            },
            matched: e.matched,
            note: e.note.clone(),
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A value a condition saw, for people.
pub fn actual_text(a: &Actual) -> String {
    match a {
        Actual::Bool(b) => yes_no(*b).to_owned(),
        Actual::Number(n) => format_number(*n),
        Actual::Text(t) => t.clone(),
        Actual::Unknown => "unknown".to_owned(),
    }
}

/// What one action did.
pub struct ActionView {
    pub kind: String,
    pub what: String,
    pub outcome: Outcome,
    pub message: String,
    pub at: String,
}

impl ActionView {
    fn of(a: ActionRow) -> Self {
        let what = serde_json::from_value::<Action>(a.spec)
            .map_or_else(|_| a.action.clone(), |action| action.describe());
        Self {
            what,
            kind: a.action,
            outcome: a.outcome,
            message: a.message,
            at: format::local_time(a.at),
        }
    }

    pub fn badge(&self) -> &'static str {
        match self.outcome {
            Outcome::Done => "badge-ok",
            Outcome::Failed => "badge-bad",
            Outcome::Pending => "badge-info",
            Outcome::Skipped => "",
        }
    }
}

/// One change to trust this violation made (or gave back).
pub struct TrustView {
    pub at: String,
    pub delta: String,
    pub score: i64,
    pub why: &'static str,
    pub actor: String,
    pub note: String,
}

impl TrustView {
    fn of(e: TrustEvent) -> Self {
        Self {
            at: format::local_time(e.at),
            delta: format!("{:+}", e.delta),
            score: e.score,
            why: match e.reason.as_str() {
                "rule" => "taken by the rule",
                "dismissed" => "given back: dismissed",
                "admin" => "set by an admin",
                _ => "recovered",
            },
            actor: e.actor.unwrap_or_default(),
            note: e.note,
        }
    }
}

/// One step of the violation's life: raised, acknowledged, dismissed.
pub struct StatusStep {
    pub at: String,
    pub what: &'static str,
    pub who: String,
    pub note: Option<String>,
}

fn status_steps(v: &ViolationRow, entries: Vec<db::audit::Entry>) -> Vec<StatusStep> {
    let mut steps = vec![StatusStep {
        at: format::local_time(v.at),
        what: "Raised",
        who: format!("rule {}", v.rule_name),
        note: None,
    }];
    let recorded = !entries.is_empty();
    for e in entries {
        let note = e
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .and_then(|d| d["note"].as_str().map(str::to_owned));
        steps.push(StatusStep {
            at: format::local_time(e.at),
            what: if e.action == "violation.dismiss" { "Dismissed" } else { "Acknowledged" },
            who: e.actor,
            note,
        });
    }
    // Resolved before the audit log kept notes (or its entry was lost): the row still knows.
    if !recorded && v.status != Status::Open {
        steps.push(StatusStep {
            at: v.resolved_at.map(format::local_time).unwrap_or_default(),
            what: v.status.label(),
            who: v.resolved_by.clone().unwrap_or_default(),
            note: v.note.clone(),
        });
    }
    steps
}

/// A session the evidence points at (an end of a travel, another stream).
pub struct PlaceRow {
    pub r: Related,
    /// Its marker's number on the map; `None` when it is not drawn (local, no location).
    pub n: Option<usize>,
    pub started: String,
    /// How far from the other end, as the evidence measured it.
    pub distance: Option<String>,
    /// Where it was, for people: "London, GB", "local network", "no location".
    pub place: String,
    pub osm: Option<String>,
}

/// A marker on the map: one per place, numbered like the table.
pub struct Marker {
    pub x: f64,
    pub y: f64,
    pub numbers: String,
    pub label: String,
    pub text_x: f64,
    pub text_y: f64,
    /// `start` or `end`: labels near the right edge run leftwards.
    pub anchor: &'static str,
}

/// A line between two related places, labelled with its length.
pub struct MapLine {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
    pub label: String,
    pub label_x: f64,
    pub label_y: f64,
}

/// The map as the template draws it.
pub struct MapView {
    pub width: f64,
    pub height: f64,
    pub title: String,
    pub land: Vec<String>,
    pub grid: Vec<GridLine>,
    pub markers: Vec<Marker>,
    pub lines: Vec<MapLine>,
}

const MAP_WIDTH: f64 = 640.0;
const MAP_HEIGHT: f64 = 320.0;
const MAP_MARGIN: f64 = 56.0;

fn coords(r: &Related) -> Option<LatLon> {
    match (r.lat, r.lon) {
        (Some(lat), Some(lon)) if lat.is_finite() && lon.is_finite() => Some((lat, lon)),
        _ => None,
    }
}

/// A link that opens `OpenStreetMap` at the place (only when clicked: nothing loads by itself).
pub fn osm_url((lat, lon): LatLon) -> String {
    format!("https://www.openstreetmap.org/?mlat={lat:.4}&mlon={lon:.4}#map=10/{lat:.4}/{lon:.4}")
}

/// "7702 km", "12.5 km".
pub fn km_text(km: f64) -> String {
    if km >= 100.0 { format!("{km:.0} km") } else { format!("{km:.1} km") }
}

/// The places of the evidence, numbered, and the map that draws the located ones.
pub fn places_and_map(verdict: &Verdict) -> (Vec<PlaceRow>, Option<MapView>) {
    let mut places: Vec<PlaceRow> = Vec::new();
    // Distinct coordinates, in order: each is one marker.
    let mut spots: Vec<(LatLon, Vec<usize>, String)> = Vec::new();
    for r in verdict.related() {
        let located = coords(r).filter(|_| r.place != "local network");
        let n = located.map(|c| {
            let n = places.iter().filter(|p| p.n.is_some()).count() + 1;
            let key = |c: LatLon| ((c.0 * 1e4).round(), (c.1 * 1e4).round());
            match spots.iter_mut().find(|(s, _, _)| key(*s) == key(c)) {
                Some((_, ns, _)) => ns.push(n),
                None => spots.push((
                    c,
                    vec![n],
                    if r.place.is_empty() {
                        r.ip.clone().unwrap_or_default()
                    } else {
                        r.place.clone()
                    },
                )),
            }
            n
        });
        let place = if r.place.is_empty() { "no location".to_owned() } else { r.place.clone() };
        places.push(PlaceRow {
            r: r.clone(),
            n,
            started: format::local_time(r.started_at),
            distance: r.distance_km.map(km_text),
            place,
            osm: located.map(osm_url),
        });
    }
    if spots.is_empty() {
        return (places, None);
    }
    let points: Vec<LatLon> = spots.iter().map(|(c, _, _)| *c).collect();
    let frame = Frame::fit(&points, MAP_WIDTH, MAP_HEIGHT, MAP_MARGIN);
    let markers = spots
        .iter()
        .map(|(c, ns, label)| {
            let (x, y) = frame.project(*c);
            let right = x > MAP_WIDTH * 0.6;
            Marker {
                x: round1(x),
                y: round1(y),
                numbers: ns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                label: label.clone(),
                text_x: round1(if right { x - 10.0 } else { x + 10.0 }),
                text_y: round1(y + 4.0),
                anchor: if right { "end" } else { "start" },
            }
        })
        .collect();
    // Within each condition, a line from its first located session to each other one: the
    // two ends of a travel, the current stream and the farthest other.
    let mut lines = Vec::new();
    let mut drawn: Vec<(i64, i64)> = Vec::new();
    for e in verdict.groups.iter().flatten() {
        let located: Vec<(&Related, LatLon)> = e
            .related
            .iter()
            .filter(|r| r.place != "local network")
            .filter_map(|r| coords(r).map(|c| (r, c)))
            .collect();
        let Some(((first, from), rest)) = located.split_first() else { continue };
        for (other, to) in rest {
            let pair = (first.play_id.min(other.play_id), first.play_id.max(other.play_id));
            let km = crate::geo::haversine_km(*from, *to);
            if drawn.contains(&pair) || km < 1.0 {
                continue;
            }
            drawn.push(pair);
            let (x1, y1) = frame.project(*from);
            let (x2, y2) = frame.project(*to);
            lines.push(MapLine {
                x1: round1(x1),
                y1: round1(y1),
                x2: round1(x2),
                y2: round1(y2),
                label: km_text(km),
                label_x: round1(f64::midpoint(x1, x2)),
                label_y: round1(f64::midpoint(y1, y2) - 8.0),
            });
        }
    }
    let title = format!(
        "Map of {}",
        spots.iter().map(|(_, _, label)| label.as_str()).collect::<Vec<_>>().join(", ")
    );
    let map = MapView {
        width: MAP_WIDTH,
        height: MAP_HEIGHT,
        title,
        land: frame.outline_transforms(),
        grid: frame.graticule(),
        markers,
        lines,
    };
    (places, Some(map))
}

#[derive(Template)]
#[template(path = "violations/detail.html")]
struct DetailPage {
    layout: Layout,
    r: RowView,
    groups: Vec<Vec<EvidenceRow>>,
    places: Vec<PlaceRow>,
    map: Option<MapView>,
    actions: Vec<ActionView>,
    trust: Vec<TrustView>,
    steps: Vec<StatusStep>,
    /// Trust the rule took, given back on dismissal.
    trust_taken: i64,
    back: String,
}

#[rocket::get("/violations/<id>")]
pub async fn detail(
    viewer: Viewer,
    layout: Layout,
    id: i64,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let scope = viewer.0.scope();
    let (v, actions, trust, entries) = db
        .read(move |c| {
            let v = db::rules::get_violation(c, id)?
                .filter(|v| scope.allows(v.user_id))
                .ok_or_else(|| AppError::not_found(format!("violation {id}")))?;
            Ok((
                v,
                db::rules::actions_of(c, id)?,
                db::trust::of_violation(c, id)?,
                db::audit::of_target(c, &STATUS_ACTIONS, &format!("violation:{id}"))?,
            ))
        })
        .await?;
    let groups = v.verdict.groups.iter().map(|g| g.iter().map(EvidenceRow::of).collect()).collect();
    let (places, map) = places_and_map(&v.verdict);
    let trust_taken = trust.iter().filter(|t| t.reason == "rule").map(|t| t.delta).sum();
    let steps = status_steps(&v, entries);
    let back = format!("{}/violations/{id}", layout.base);
    render(&DetailPage {
        layout: layout.nav("violations"),
        r: RowView::of(v),
        groups,
        places,
        map,
        actions: actions.into_iter().map(ActionView::of).collect(),
        trust: trust.into_iter().map(TrustView::of).collect(),
        steps,
        trust_taken,
        back,
    })
}

/// What the acknowledge and dismiss forms post.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct ResolveForm {
    /// Why (at most 500 characters).
    pub note: Option<String>,
    /// The page to return to without htmx: a list or detail URL of ours.
    pub back: Option<String>,
}

/// Where to go after a change: `back` when it is one of our violations pages, else the
/// violation's own page (never another site: the value comes from the form).
fn back_to(base: &str, back: Option<&str>, id: i64) -> String {
    let list = format!("{base}/violations");
    match back {
        Some(b)
            if (b == list
                || b.starts_with(&format!("{list}?"))
                || b.starts_with(&format!("{list}/")))
                && !b.chars().any(char::is_control) =>
        {
            b.to_owned()
        }
        _ => format!("{list}/{id}"),
    }
}

async fn change(
    admin: Admin,
    id: i64,
    status: Status,
    form: ResolveForm,
    db: &Db,
    hx: &HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<rocket::Either<RawHtml<String>, Done>> {
    let v = resolve(db, &admin.0.actor(), id, status, form.note, ip.0).await?;
    let back = back_to(&layout.base, form.back.as_deref(), id);
    // The list's inline buttons swap their row; everything else goes back to its page.
    if hx.is_htmx() && hx.target.as_deref() == Some(&format!("violation-{id}")) {
        return Ok(rocket::Either::Left(render(&RowFragment { layout, r: RowView::of(v), back })?));
    }
    Ok(rocket::Either::Right(done(hx, back)))
}

#[rocket::post("/violations/<id>/acknowledge", data = "<form>")]
pub async fn acknowledge(
    admin: Admin,
    id: i64,
    form: CsrfForm<ResolveForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<rocket::Either<RawHtml<String>, Done>> {
    change(admin, id, Status::Acknowledged, form.0, db, &hx, ip, layout).await
}

/// A false positive: closes it and gives back the trust its rule took.
#[rocket::post("/violations/<id>/dismiss", data = "<form>")]
pub async fn dismiss(
    admin: Admin,
    id: i64,
    form: CsrfForm<ResolveForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<rocket::Either<RawHtml<String>, Done>> {
    change(admin, id, Status::Dismissed, form.0, db, &hx, ip, layout).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::{Field, Op};

    fn related(play_id: i64, role: &str, place: &str, at: Option<LatLon>) -> Related {
        Related {
            play_id,
            role: role.into(),
            ip: Some(format!("203.0.113.{play_id}")),
            place: place.into(),
            lat: at.map(|c| c.0),
            lon: at.map(|c| c.1),
            device: "tv".into(),
            started_at: 1_800_000_000_000,
            stopped_at: None,
            distance_km: None,
        }
    }

    fn evidence(field: Field, related: Vec<Related>) -> ConditionEvidence {
        ConditionEvidence {
            field,
            op: Op::Gt,
            threshold: json!(800),
            actual: Actual::Number(15_400.0),
            matched: true,
            related,
            note: None,
        }
    }

    #[test]
    fn filters_are_checked_by_name_and_blank_means_any() {
        let q = ViolationQuery {
            status: Some("open".into()),
            severity: Some(String::new()),
            rule: Some("3".into()),
            user: Some(String::new()),
            from: Some("2026-01-02".into()),
            ..ViolationQuery::default()
        };
        let f = q.filter().unwrap();
        assert_eq!(
            (f.status, f.severity, f.rule_id, f.user_id),
            (Some(Status::Open), None, Some(3), None)
        );
        assert!(f.from.is_some());
        assert_eq!(q.to_query(), "status=open&rule=3&from=2026-01-02");
        for (q, field) in [
            (
                ViolationQuery { status: Some("closed".into()), ..ViolationQuery::default() },
                "status",
            ),
            (
                ViolationQuery { severity: Some("urgent".into()), ..ViolationQuery::default() },
                "severity",
            ),
            (ViolationQuery { rule: Some("travel".into()), ..ViolationQuery::default() }, "rule"),
            (
                ViolationQuery { server_id: Some("1.5".into()), ..ViolationQuery::default() },
                "server_id",
            ),
            (ViolationQuery { to: Some("soon".into()), ..ViolationQuery::default() }, "to"),
        ] {
            match q.filter() {
                Err(AppError::Validation { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let bad = ViolationQuery { cursor: Some("x".into()), ..ViolationQuery::default() };
        assert!(bad.cursor().is_err());
        assert!(q.is_status("open") && !q.is_status("dismissed") && q.is_rule(3) && !q.is_user(3));
    }

    #[test]
    fn going_back_stays_on_our_violations_pages() {
        assert_eq!(back_to("", Some("/violations?status=open"), 4), "/violations?status=open");
        assert_eq!(back_to("/sw", Some("/sw/violations/4"), 4), "/sw/violations/4");
        assert_eq!(back_to("", Some("https://evil.example/violations"), 4), "/violations/4");
        assert_eq!(back_to("", Some("//evil.example"), 4), "/violations/4");
        assert_eq!(back_to("", Some("/violationsx"), 4), "/violations/4");
        assert_eq!(back_to("", Some("/violations\r\nSet-Cookie: x"), 4), "/violations/4");
        assert_eq!(back_to("/sw", None, 4), "/sw/violations/4");
    }

    #[test]
    fn a_travel_is_two_numbered_markers_joined_by_its_distance() {
        let london = (51.5142, -0.0931);
        let milton = (47.2513, -122.3149);
        let groups = vec![vec![evidence(
            Field::TravelSpeedKmh,
            vec![
                related(1, "previous", "London, GB", Some(london)),
                related(2, "current", "Milton, US", Some(milton)),
            ],
        )]];
        let (places, map) = places_and_map(&Verdict { matched: true, groups });
        let map = map.expect("a map");
        assert_eq!(places.iter().map(|p| p.n).collect::<Vec<_>>(), [Some(1), Some(2)]);
        assert_eq!(map.markers.len(), 2);
        assert_eq!(map.markers[0].label, "London, GB");
        assert!(map.markers[0].x > map.markers[1].x, "London east of Milton");
        assert_eq!(map.lines.len(), 1);
        assert_eq!(map.lines[0].label, km_text(crate::geo::haversine_km(london, milton)));
        assert!(map.lines[0].label.starts_with("77"), "{}", map.lines[0].label);
        assert!(places[0].osm.as_deref().unwrap().contains("mlat=51.5142&mlon=-0.0931"));
        assert!(!map.land.is_empty() && !map.grid.is_empty());
    }

    #[test]
    fn local_and_unlocated_sessions_are_listed_but_not_drawn() {
        let groups = vec![vec![evidence(
            Field::ConcurrentStreams,
            vec![
                related(1, "current", "local network", None),
                related(2, "other", "", None),
                related(3, "other", "Paris, FR", Some((48.85, 2.35))),
                related(4, "other", "Paris, FR", Some((48.85, 2.35))),
            ],
        )]];
        let (places, map) = places_and_map(&Verdict { matched: true, groups });
        assert_eq!(places.len(), 4);
        assert_eq!(places.iter().map(|p| p.n).collect::<Vec<_>>(), [None, None, Some(1), Some(2)]);
        assert_eq!(places[1].place, "no location");
        assert!(places[0].osm.is_none());
        let map = map.expect("Paris is drawn");
        assert_eq!(map.markers.len(), 1, "two sessions in one spot: one marker");
        assert_eq!(map.markers[0].numbers, "1, 2");
        assert!(map.lines.is_empty(), "no distance between a place and itself");
        let (_, none) = places_and_map(&Verdict {
            matched: true,
            groups: vec![vec![evidence(
                Field::IsNewDevice,
                vec![related(1, "current", "local network", None)],
            )]],
        });
        assert!(none.is_none());
    }
}
