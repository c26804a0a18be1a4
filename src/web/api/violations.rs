//! `/api/v1/violations`: what the rules raised, with evidence; acknowledge and dismiss.

use rocket::State;
use rocket::serde::json::Json;
use serde::{Deserialize, Serialize};

use super::{body, time};
use crate::auth::{ApiAdmin, ApiViewer};
use crate::db::rules::{ActionRow, Status, ViolationFilter, ViolationRow};
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::rules::admin;
use crate::rules::eval::Verdict;
use crate::rules::model::Severity;
use crate::web::{ClientAddr, audit};

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

/// Filters of the list, shared with the page.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct ViolationQuery {
    pub status: Option<String>,
    pub severity: Option<String>,
    pub rule: Option<i64>,
    pub user: Option<i64>,
    pub session: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<u32>,
    /// The id of the last violation of the previous page.
    pub cursor: Option<i64>,
}

impl ViolationQuery {
    pub fn filter(&self) -> AppResult<ViolationFilter> {
        let blank = |s: &Option<String>| {
            s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        Ok(ViolationFilter {
            status: blank(&self.status)
                .map(|s| {
                    Status::parse(&s).ok_or_else(|| {
                        AppError::validation("status", "open, acknowledged or dismissed")
                    })
                })
                .transpose()?,
            severity: blank(&self.severity)
                .map(|s| {
                    s.trim()
                        .parse::<Severity>()
                        .ok()
                        .ok_or_else(|| AppError::validation("severity", "low, warning or high"))
                })
                .transpose()?,
            rule_id: self.rule,
            user_id: self.user,
            play_id: self.session,
            from: blank(&self.from)
                .map(|s| crate::web::history::parse_time("from", &s, false))
                .transpose()?,
            to: blank(&self.to)
                .map(|s| crate::web::history::parse_time("to", &s, true))
                .transpose()?,
        })
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
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let (scope, cursor) = (caller.0.scope(), query.cursor);
    let rows =
        db.read(move |c| db::rules::list_violations(c, &filter, scope, cursor, limit + 1)).await?;
    let more = rows.len() > limit as usize;
    let items: Vec<ViolationRow> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = if more { items.last().map(|v| v.id.to_string()) } else { None };
    Ok(Json(ViolationsJson {
        items: items.into_iter().map(|v| json(v, None)).collect(),
        next_cursor,
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
    let v = admin::resolve(db, id, status, &caller.0.actor(), request.note).await?;
    let action =
        if status == Status::Dismissed { "violation.dismiss" } else { "violation.acknowledge" };
    audit(db, &caller.0.actor(), action, &format!("violation:{id}"), serde_json::Value::Null, ip.0)
        .await;
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
