//! `/api/v1/rules`, backtests and presets (DESIGN.md section 5).

use std::sync::Arc;

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{body, time};
use crate::auth::ApiAdmin;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::rules::admin;
use crate::rules::engine::Engine;
use crate::rules::eval::Verdict;
use crate::rules::model::{Rule, RuleDef};
use crate::web::{ClientAddr, audit};

#[derive(Serialize)]
pub struct CountsJson {
    open: i64,
    total: i64,
}

#[derive(Serialize)]
pub struct RuleJson {
    id: i64,
    #[serde(flatten)]
    def: RuleDef,
    preset: Option<String>,
    violations: CountsJson,
}

fn json(rule: &Rule, counts: Option<&(i64, i64)>) -> RuleJson {
    let (open, total) = counts.copied().unwrap_or((0, 0));
    RuleJson {
        id: rule.id,
        def: rule.def(),
        preset: rule.preset.clone(),
        violations: CountsJson { open, total },
    }
}

async fn one(db: &Db, id: i64) -> AppResult<RuleJson> {
    let (rule, counts) = db
        .read(move |c| {
            let rule =
                db::rules::get(c, id)?.ok_or_else(|| AppError::not_found(format!("rule {id}")))?;
            Ok((rule, db::rules::counts(c)?))
        })
        .await?;
    Ok(json(&rule, counts.get(&id)))
}

#[rocket::get("/api/v1/rules")]
pub async fn list(_caller: ApiAdmin, db: &State<Db>) -> AppResult<Json<Vec<RuleJson>>> {
    let (rules, counts) = db.read(|c| Ok((db::rules::list(c)?, db::rules::counts(c)?))).await?;
    Ok(Json(rules.iter().map(|r| json(r, counts.get(&r.id))).collect()))
}

#[rocket::get("/api/v1/rules/<id>")]
pub async fn get(_caller: ApiAdmin, id: i64, db: &State<Db>) -> AppResult<Json<RuleJson>> {
    Ok(Json(one(db, id).await?))
}

#[rocket::post("/api/v1/rules", data = "<data>")]
pub async fn create(
    caller: ApiAdmin,
    data: Result<Json<RuleDef>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<(Status, Json<RuleJson>)> {
    let rule = admin::create(db, body(data)?, None).await?;
    audit(
        db,
        &caller.0.actor(),
        "rule.create",
        &format!("rule:{}", rule.id),
        serde_json::json!({"name": rule.name}),
        ip.0,
    )
    .await;
    Ok((Status::Created, Json(json(&rule, None))))
}

/// Merges the fields given onto the rule as it is, then checks the whole.
#[rocket::patch("/api/v1/rules/<id>", data = "<data>")]
pub async fn update(
    caller: ApiAdmin,
    id: i64,
    data: Result<Json<Value>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Json<RuleJson>> {
    let patch = body(data)?;
    let Value::Object(patch) = patch else {
        return Err(AppError::validation("body", "send a JSON object with the fields to change"));
    };
    let current = admin::get(db, id).await?;
    let mut merged = serde_json::to_value(current.def())
        .map_err(|e| AppError::internal("encoding a rule", e))?;
    for (k, v) in patch {
        merged[k] = v;
    }
    let def: RuleDef =
        serde_json::from_value(merged).map_err(|e| AppError::validation("body", e.to_string()))?;
    let rule = admin::update(db, id, def).await?;
    audit(
        db,
        &caller.0.actor(),
        "rule.update",
        &format!("rule:{id}"),
        serde_json::json!({"name": rule.name}),
        ip.0,
    )
    .await;
    Ok(Json(one(db, id).await?))
}

#[rocket::delete("/api/v1/rules/<id>")]
pub async fn delete(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Status> {
    if !db.write(move |c| db::rules::delete(c, id)).await? {
        return Err(AppError::not_found(format!("rule {id}")));
    }
    audit(db, &caller.0.actor(), "rule.delete", &format!("rule:{id}"), Value::Null, ip.0).await;
    Ok(Status::NoContent)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestBody {
    /// RFC 3339 time or a date.
    from: String,
    to: String,
}

#[derive(Serialize)]
pub struct HitJson {
    play_id: i64,
    user: super::sessions::UserRefJson,
    title: String,
    at: Option<String>,
    summary: String,
    evidence: Verdict,
}

#[derive(Serialize)]
pub struct BacktestJson {
    rule_id: i64,
    from: Option<String>,
    to: Option<String>,
    /// The violations the rule would have raised, oldest first.
    violations: Vec<HitJson>,
}

#[rocket::post("/api/v1/rules/<id>/backtest", data = "<data>")]
pub async fn backtest(
    _caller: ApiAdmin,
    id: i64,
    data: Result<Json<BacktestBody>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    engine: &State<Arc<Engine>>,
) -> AppResult<Json<BacktestJson>> {
    let request = body(data)?;
    let from = crate::web::history::parse_time("from", &request.from, false)?;
    let to = crate::web::history::parse_time("to", &request.to, true)?;
    let rule = admin::get(db, id).await?;
    let hits = admin::backtest(db, rule, from, to, engine.confirm_ms()).await?;
    Ok(Json(BacktestJson {
        rule_id: id,
        from: time(Some(from)),
        to: time(Some(to)),
        violations: hits
            .into_iter()
            .map(|h| HitJson {
                play_id: h.play_id,
                user: super::sessions::UserRefJson::new(Some(h.user_id), h.user_name),
                title: h.title,
                at: time(Some(h.at)),
                summary: h.summary,
                evidence: h.verdict,
            })
            .collect(),
    }))
}

#[derive(Serialize)]
pub struct PresetJson {
    key: &'static str,
    label: &'static str,
    explain: &'static str,
    rule: RuleDef,
}

/// The ready-made rules; POST one's `rule` to `/api/v1/rules` to create it.
#[rocket::get("/api/v1/rule-presets")]
pub async fn preset_list(_caller: ApiAdmin, db: &State<Db>) -> AppResult<Json<Vec<PresetJson>>> {
    let home = db.read(admin::home_country).await?;
    Ok(Json(
        crate::rules::presets::all(&home)
            .into_iter()
            .map(|p| PresetJson { key: p.key, label: p.label, explain: p.explain, rule: p.def })
            .collect(),
    ))
}
