//! `/api/v1/maintenance/*`: rules, their candidates, exclusions, deleting confirmed
//! candidates, and the deletion log.

use std::sync::Arc;

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::libraries::ItemJson;
use super::{body, time};
use crate::auth::ApiAdmin;
use crate::db::Db;
use crate::db::maintenance::{
    self as store, CandidateCursor, CandidateRow, DeletionRow, ExclusionRow, Step,
};
use crate::error::{AppError, AppResult};
use crate::maintenance::delete::ItemResult;
use crate::maintenance::rules::{Rule, RuleChanges};
use crate::maintenance::{Actor, Maintenance};
use crate::web::ClientAddr;

fn actor(caller: &ApiAdmin, ip: ClientAddr) -> Actor {
    Actor { name: caller.0.actor(), ip: ip.0 }
}

/// A rule as the API shows it: what was posted, and what its last evaluation found.
pub fn rule_json(rule: &Rule) -> Value {
    let mut json = rule.to_json();
    json["description"] = Value::from(rule.describe());
    json["candidates"] = Value::from(rule.row.candidates);
    json["size_bytes"] = Value::from(rule.row.size_bytes);
    json["evaluated_at"] = serde_json::to_value(time(rule.row.evaluated_at)).unwrap_or(Value::Null);
    json["created_at"] = Value::from(crate::format::rfc3339(rule.row.created_at));
    json["updated_at"] = Value::from(crate::format::rfc3339(rule.row.updated_at));
    json
}

#[rocket::get("/api/v1/maintenance/rules")]
pub async fn rules(
    _caller: ApiAdmin,
    maintenance: &State<Arc<Maintenance>>,
) -> AppResult<Json<Vec<Value>>> {
    Ok(Json(maintenance.rules().await?.iter().map(rule_json).collect()))
}

#[rocket::get("/api/v1/maintenance/rules/<id>")]
pub async fn rule(
    _caller: ApiAdmin,
    id: i64,
    maintenance: &State<Arc<Maintenance>>,
) -> AppResult<Json<Value>> {
    Ok(Json(rule_json(&maintenance.rule(id).await?)))
}

#[rocket::post("/api/v1/maintenance/rules", format = "json", data = "<data>")]
pub async fn create_rule(
    caller: ApiAdmin,
    data: Result<Json<RuleChanges>, rocket::serde::json::Error<'_>>,
    maintenance: &State<Arc<Maintenance>>,
    ip: ClientAddr,
) -> AppResult<(Status, Json<Value>)> {
    let rule = maintenance.create_rule(body(data)?, &actor(&caller, ip)).await?;
    Ok((Status::Created, Json(rule_json(&rule))))
}

#[rocket::patch("/api/v1/maintenance/rules/<id>", format = "json", data = "<data>")]
pub async fn update_rule(
    caller: ApiAdmin,
    id: i64,
    data: Result<Json<RuleChanges>, rocket::serde::json::Error<'_>>,
    maintenance: &State<Arc<Maintenance>>,
    ip: ClientAddr,
) -> AppResult<Json<Value>> {
    let rule = maintenance.update_rule(id, body(data)?, &actor(&caller, ip)).await?;
    Ok(Json(rule_json(&rule)))
}

#[rocket::delete("/api/v1/maintenance/rules/<id>")]
pub async fn delete_rule(
    caller: ApiAdmin,
    id: i64,
    maintenance: &State<Arc<Maintenance>>,
    ip: ClientAddr,
) -> AppResult<Status> {
    maintenance.delete_rule(id, &actor(&caller, ip)).await?;
    Ok(Status::NoContent)
}

#[derive(Serialize)]
pub struct EvaluatedJson {
    candidates: i64,
    size_bytes: i64,
}

#[rocket::post("/api/v1/maintenance/rules/<id>/evaluate")]
pub async fn evaluate(
    _caller: ApiAdmin,
    id: i64,
    maintenance: &State<Arc<Maintenance>>,
) -> AppResult<Json<EvaluatedJson>> {
    let done = maintenance.evaluate(id).await?;
    Ok(Json(EvaluatedJson { candidates: done.candidates, size_bytes: done.size_bytes }))
}

#[derive(Serialize)]
pub struct RuleRef {
    id: i64,
    name: String,
}

#[derive(Serialize)]
pub struct CandidateJson {
    id: i64,
    rule: RuleRef,
    item: ItemJson,
    reasons: Vec<String>,
    size_bytes: i64,
    evaluated_at: Option<String>,
}

impl From<CandidateRow> for CandidateJson {
    fn from(c: CandidateRow) -> Self {
        Self {
            id: c.id,
            rule: RuleRef { id: c.rule_id, name: c.rule_name },
            item: c.item.into(),
            reasons: c.reasons,
            size_bytes: c.size_bytes,
            evaluated_at: time(Some(c.evaluated_at)),
        }
    }
}

#[derive(Serialize)]
pub struct CandidatesJson {
    items: Vec<CandidateJson>,
    /// Distinct items behind the candidates (an item two rules propose counts once).
    total: i64,
    total_size_bytes: i64,
    next_cursor: Option<String>,
}

#[rocket::get("/api/v1/maintenance/candidates?<rule_id>&<library_id>&<limit>&<cursor>")]
pub async fn candidates(
    _caller: ApiAdmin,
    rule_id: Option<i64>,
    library_id: Option<i64>,
    limit: Option<u32>,
    cursor: Option<String>,
    db: &State<Db>,
) -> AppResult<Json<CandidatesJson>> {
    let cursor =
        match cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(raw) => Some(CandidateCursor::decode(raw).ok_or_else(|| {
                AppError::validation("cursor", "not a cursor from a previous page")
            })?),
            None => None,
        };
    let limit = limit.unwrap_or(50).clamp(1, 500);
    let (rows, next, (total, bytes)) = db
        .read(move |conn| {
            let (rows, next) = store::candidates(conn, rule_id, library_id, cursor, limit)?;
            Ok((rows, next, store::candidate_totals(conn, rule_id, library_id)?))
        })
        .await?;
    Ok(Json(CandidatesJson {
        items: rows.into_iter().map(CandidateJson::from).collect(),
        total,
        total_size_bytes: bytes,
        next_cursor: next.map(CandidateCursor::encode),
    }))
}

#[derive(Serialize)]
pub struct ExclusionJson {
    id: i64,
    item_id: i64,
    item: ItemJson,
    /// `null`: forever.
    until: Option<String>,
    reason: String,
    created_by: String,
    created_at: Option<String>,
    /// False once `until` has passed.
    active: bool,
}

impl ExclusionJson {
    fn from(e: ExclusionRow, now: i64) -> Self {
        Self {
            active: e.until.is_none_or(|u| u > now),
            id: e.id,
            item_id: e.item_id,
            item: e.item.into(),
            until: time(e.until),
            reason: e.reason,
            created_by: e.created_by,
            created_at: time(Some(e.created_at)),
        }
    }
}

#[rocket::get("/api/v1/maintenance/exclusions")]
pub async fn exclusions(_caller: ApiAdmin, db: &State<Db>) -> AppResult<Json<Vec<ExclusionJson>>> {
    let now = crate::time::now_ms();
    let rows = db.read(store::exclusions).await?;
    Ok(Json(rows.into_iter().map(|e| ExclusionJson::from(e, now)).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewExclusion {
    item_id: i64,
    /// `YYYY-MM-DD` (excluded through that day) or an RFC 3339 time; none: forever.
    until: Option<String>,
    reason: Option<String>,
}

/// `until` as typed: a day counts to its end.
pub fn parse_until(raw: Option<&str>) -> AppResult<Option<i64>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => crate::web::history::parse_time("until", s, true).map(Some),
        None => Ok(None),
    }
}

#[rocket::post("/api/v1/maintenance/exclusions", format = "json", data = "<data>")]
pub async fn create_exclusion(
    caller: ApiAdmin,
    data: Result<Json<NewExclusion>, rocket::serde::json::Error<'_>>,
    maintenance: &State<Arc<Maintenance>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<(Status, Json<ExclusionJson>)> {
    let new = body(data)?;
    let until = parse_until(new.until.as_deref())?;
    let id = maintenance
        .exclude(new.item_id, until, new.reason.unwrap_or_default(), &actor(&caller, ip))
        .await?;
    let now = crate::time::now_ms();
    let row = db
        .read(store::exclusions)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| AppError::not_found(format!("exclusion {id}")))?;
    Ok((Status::Created, Json(ExclusionJson::from(row, now))))
}

#[rocket::delete("/api/v1/maintenance/exclusions/<id>")]
pub async fn delete_exclusion(
    caller: ApiAdmin,
    id: i64,
    maintenance: &State<Arc<Maintenance>>,
    ip: ClientAddr,
) -> AppResult<Status> {
    maintenance.delete_exclusion(id, &actor(&caller, ip)).await?;
    Ok(Status::NoContent)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    #[serde(default)]
    candidate_ids: Vec<i64>,
    #[serde(default)]
    confirm: bool,
}

#[derive(Serialize)]
pub struct DeletedJson {
    items: Vec<ItemResult>,
    /// Bytes freed on the media servers (deleted items).
    freed_bytes: i64,
}

/// Deletes the selected candidates; refused without `"confirm": true`.
#[rocket::post("/api/v1/maintenance/delete", format = "json", data = "<data>")]
pub async fn delete(
    caller: ApiAdmin,
    data: Result<Json<DeleteRequest>, rocket::serde::json::Error<'_>>,
    maintenance: &State<Arc<Maintenance>>,
    ip: ClientAddr,
) -> AppResult<Json<DeletedJson>> {
    let request = body(data)?;
    if !request.confirm {
        return Err(AppError::validation(
            "confirm",
            "deleting needs \"confirm\": true: it cannot be undone",
        ));
    }
    let items = maintenance.delete(request.candidate_ids, &actor(&caller, ip)).await?;
    let freed_bytes = items.iter().filter(|i| i.server == "deleted").map(|i| i.size_bytes).sum();
    Ok(Json(DeletedJson { items, freed_bytes }))
}

#[derive(Serialize)]
pub struct DeletionJson {
    id: i64,
    item_id: Option<i64>,
    server_id: i64,
    server_name: String,
    library_name: String,
    rule: Option<RuleRef>,
    kind: String,
    title: String,
    size_bytes: i64,
    deleted_by: String,
    deleted_at: Option<String>,
    finished_at: Option<String>,
    steps: StepsJson,
}

#[derive(Serialize)]
pub struct StepsJson {
    server: Step,
    radarr: Step,
    sonarr: Step,
    seerr: Step,
}

impl From<DeletionRow> for DeletionJson {
    fn from(d: DeletionRow) -> Self {
        Self {
            id: d.id,
            item_id: d.item_id,
            server_id: d.server_id,
            server_name: d.server_name,
            library_name: d.library_name,
            rule: d.rule_id.map(|id| RuleRef { id, name: d.rule_name.unwrap_or_default() }),
            kind: d.kind,
            title: d.title,
            size_bytes: d.size_bytes,
            deleted_by: d.deleted_by,
            deleted_at: time(Some(d.deleted_at)),
            finished_at: time(d.finished_at),
            steps: StepsJson {
                server: d.server,
                radarr: d.radarr,
                sonarr: d.sonarr,
                seerr: d.seerr,
            },
        }
    }
}

#[derive(Serialize)]
pub struct LogJson {
    items: Vec<DeletionJson>,
    next_cursor: Option<String>,
}

/// `deleted_at.id` of the last entry of a page.
pub fn parse_log_cursor(raw: Option<&str>) -> AppResult<Option<(i64, i64)>> {
    match raw.filter(|c| !c.is_empty()) {
        Some(raw) => raw
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .map(Some)
            .ok_or_else(|| AppError::validation("cursor", "not a cursor from a previous page")),
        None => Ok(None),
    }
}

#[rocket::get("/api/v1/maintenance/log?<limit>&<cursor>")]
pub async fn log(
    _caller: ApiAdmin,
    limit: Option<u32>,
    cursor: Option<String>,
    db: &State<Db>,
) -> AppResult<Json<LogJson>> {
    let before = parse_log_cursor(cursor.as_deref())?;
    let limit = limit.unwrap_or(50).clamp(1, 500);
    let (rows, next) = db.read(move |conn| store::deletions(conn, before, limit)).await?;
    Ok(Json(LogJson {
        items: rows.into_iter().map(DeletionJson::from).collect(),
        next_cursor: next.map(|(at, id)| format!("{at}.{id}")),
    }))
}
