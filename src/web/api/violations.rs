//! `/api/v1/violations`: what the rules raised, with evidence; acknowledge and dismiss.

use rocket::State;
use rocket::serde::json::Json;
use serde::{Deserialize, Serialize};

use super::{body, time};
use crate::auth::{ApiAdmin, ApiViewer};
use crate::db::rules::{ActionRow, Status, ViolationRow};
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::rules::eval::Verdict;
use crate::rules::model::Severity;
use crate::web::ClientAddr;
use crate::web::violations::{self, PAGE_SIZE, ViolationQuery};

#[derive(Serialize)]
pub struct ViolationJson {
    id: i64,
    rule: RuleRefJson,
    severity: Severity,
    user: super::sessions::UserRefJson,
    /// The play that triggered it (`null` for per-user rules such as inactivity).
    session_id: Option<i64>,
    server_id: Option<i64>,
    server_name: Option<String>,
    at: Option<String>,
    summary: String,
    /// `open`, `acknowledged` or `dismissed`.
    status: Status,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    note: Option<String>,
    evidence: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    actions: Option<Vec<ActionJson>>,
}

#[derive(Serialize)]
pub struct RuleRefJson {
    /// `null` once the rule is deleted.
    id: Option<i64>,
    name: String,
}

#[derive(Serialize)]
pub struct ActionJson {
    #[serde(rename = "type")]
    kind: String,
    spec: serde_json::Value,
    /// `pending`, `done`, `failed` or `skipped`.
    outcome: crate::db::rules::Outcome,
    message: String,
    at: Option<String>,
}

fn action_json(a: ActionRow) -> ActionJson {
    ActionJson {
        kind: a.action,
        spec: a.spec,
        outcome: a.outcome,
        message: a.message,
        at: time(Some(a.at)),
    }
}

pub fn json(v: ViolationRow, actions: Option<Vec<ActionRow>>) -> ViolationJson {
    ViolationJson {
        id: v.id,
        rule: RuleRefJson { id: v.rule_id, name: v.rule_name },
        severity: v.severity,
        user: super::sessions::UserRefJson::new(Some(v.user_id), v.user_name),
        session_id: v.play_id,
        server_id: v.server_id,
        server_name: v.server_name,
        at: time(Some(v.at)),
        summary: v.summary,
        status: v.status,
        resolved_at: time(v.resolved_at),
        resolved_by: v.resolved_by,
        note: v.note,
        evidence: v.verdict,
        actions: actions.map(|a| a.into_iter().map(action_json).collect()),
    }
}

#[derive(Serialize)]
pub struct ViolationsJson {
    items: Vec<ViolationJson>,
    next_cursor: Option<String>,
}

#[rocket::get("/api/v1/violations?<query..>")]
pub async fn list(
    caller: ApiViewer,
    query: ViolationQuery,
    db: &State<Db>,
) -> AppResult<Json<ViolationsJson>> {
    let filter = query.filter()?;
    let cursor = query.cursor()?;
    let limit = query.limit.unwrap_or(PAGE_SIZE).clamp(1, 500);
    let scope = caller.0.scope();
    let page =
        db.read(move |c| db::rules::violations_page(c, &filter, scope, cursor, limit)).await?;
    Ok(Json(ViolationsJson {
        items: page.items.into_iter().map(|v| json(v, None)).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
    }))
}

#[rocket::get("/api/v1/violations/<id>")]
pub async fn get(caller: ApiViewer, id: i64, db: &State<Db>) -> AppResult<Json<ViolationJson>> {
    let scope = caller.0.scope();
    let (v, actions) = db
        .read(move |c| {
            let v = db::rules::get_violation(c, id)?
                .filter(|v| scope.allows(v.user_id))
                .ok_or_else(|| AppError::not_found(format!("violation {id}")))?;
            Ok((v, db::rules::actions_of(c, id)?))
        })
        .await?;
    Ok(Json(json(v, Some(actions))))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    note: Option<String>,
}

async fn resolve(
    caller: ApiAdmin,
    id: i64,
    data: Option<Result<Json<ResolveBody>, rocket::serde::json::Error<'_>>>,
    status: Status,
    db: &Db,
    ip: ClientAddr,
) -> AppResult<Json<ViolationJson>> {
    let request = match data {
        Some(d) => body(d)?,
        None => ResolveBody::default(),
    };
    let v = violations::resolve(db, &caller.0.actor(), id, status, request.note, ip.0).await?;
    Ok(Json(json(v, None)))
}

#[rocket::post("/api/v1/violations/<id>/acknowledge", data = "<data>")]
pub async fn acknowledge(
    caller: ApiAdmin,
    id: i64,
    data: Option<Result<Json<ResolveBody>, rocket::serde::json::Error<'_>>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Json<ViolationJson>> {
    resolve(caller, id, data, Status::Acknowledged, db, ip).await
}

/// A false positive: closes it and gives back the trust its rule took.
#[rocket::post("/api/v1/violations/<id>/dismiss", data = "<data>")]
pub async fn dismiss(
    caller: ApiAdmin,
    id: i64,
    data: Option<Result<Json<ResolveBody>, rocket::serde::json::Error<'_>>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Json<ViolationJson>> {
    resolve(caller, id, data, Status::Dismissed, db, ip).await
}
