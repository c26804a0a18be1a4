//! `/api/v1/notifiers`: the notification channels for scripts (DESIGN.md section 5).
//! Secrets are write-only: responses list which are set (`secrets_set`), never their values.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{State, delete, get, patch, post};
use serde_json::{Map, Value, json};

use crate::auth::{ApiAdmin, Principal};
use crate::db::notify::{OutboxCounts, OutboxRow};
use crate::error::{AppError, AppResult};
use crate::notify::message::rfc3339;
use crate::notify::store::{Actor, ChannelView};
use crate::notify::{Notifier, NotifierId};
use crate::web::notifications::ClientIp;

/// Most delivery log entries per request.
const MAX_LIMIT: u32 = 500;

fn actor(principal: &Principal, ip: &ClientIp) -> Actor {
    Actor { name: principal.actor(), ip: ip.0.map(|ip| ip.to_string()) }
}

/// A channel as JSON: the view plus times and delivery counts.
fn channel_json(view: &ChannelView, counts: Option<OutboxCounts>) -> Value {
    let mut value = serde_json::to_value(view).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        map.insert("created_at".into(), rfc3339(view.created_at).into());
        map.insert("updated_at".into(), rfc3339(view.updated_at).into());
        if let Some(c) = counts {
            map.insert(
                "deliveries".into(),
                json!({
                    "pending": c.pending,
                    "retrying": c.retrying,
                    "sent": c.sent,
                    "failed": c.failed,
                    "last_sent_at": c.last_sent_at.map(rfc3339),
                }),
            );
        }
    }
    value
}

fn object(body: Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(map) => Ok(map),
        _ => Err(AppError::validation("body", "must be a JSON object")),
    }
}

#[get("/api/v1/notifiers")]
pub async fn list(_caller: ApiAdmin, notifier: &State<Notifier>) -> AppResult<Json<Value>> {
    let channels = notifier.list().await?;
    Ok(Json(Value::Array(channels.iter().map(|(v, c)| channel_json(v, Some(*c))).collect())))
}

#[post("/api/v1/notifiers", data = "<body>")]
pub async fn create(
    caller: ApiAdmin,
    ip: ClientIp,
    body: Json<Value>,
    notifier: &State<Notifier>,
) -> AppResult<(Status, Json<Value>)> {
    let view = notifier.create(object(body)?, actor(&caller.0, &ip)).await?;
    Ok((Status::Created, Json(channel_json(&view, Some(OutboxCounts::default())))))
}

#[get("/api/v1/notifiers/<id>")]
pub async fn get(
    _caller: ApiAdmin,
    id: NotifierId,
    notifier: &State<Notifier>,
) -> AppResult<Json<Value>> {
    let view = notifier.get(id).await?;
    let counts = notifier.list().await?.into_iter().find(|(v, _)| v.id == id).map(|(_, c)| c);
    Ok(Json(channel_json(&view, counts)))
}

#[patch("/api/v1/notifiers/<id>", data = "<body>")]
pub async fn update(
    caller: ApiAdmin,
    ip: ClientIp,
    id: NotifierId,
    body: Json<Value>,
    notifier: &State<Notifier>,
) -> AppResult<Json<Value>> {
    let view = notifier.update(id, object(body)?, actor(&caller.0, &ip)).await?;
    Ok(Json(channel_json(&view, None)))
}

#[delete("/api/v1/notifiers/<id>")]
pub async fn remove(
    caller: ApiAdmin,
    ip: ClientIp,
    id: NotifierId,
    notifier: &State<Notifier>,
) -> AppResult<Status> {
    notifier.delete(id, actor(&caller.0, &ip)).await?;
    Ok(Status::NoContent)
}

/// Sends a test now: `{"ok": true}`, or 502 with the service's exact error.
#[post("/api/v1/notifiers/<id>/test")]
pub async fn test(
    caller: ApiAdmin,
    ip: ClientIp,
    id: NotifierId,
    notifier: &State<Notifier>,
) -> AppResult<Json<Value>> {
    let view = notifier.get(id).await?;
    match notifier.send_test(id, actor(&caller.0, &ip)).await? {
        Ok(()) => Ok(Json(json!({"ok": true}))),
        Err(e) => Err(AppError::Upstream { server: view.name, message: e.to_string() }),
    }
}

fn delivery_json(row: &OutboxRow) -> Value {
    json!({
        "id": row.id,
        "uid": row.uid,
        "event": row.kind,
        "severity": row.severity,
        "title": row.title,
        "status": row.status,
        "test": row.is_test,
        "attempts": row.attempts,
        "created_at": rfc3339(row.created_at),
        "last_attempt_at": row.last_attempt_at.map(rfc3339),
        "next_attempt_at": (row.status == "pending").then(|| rfc3339(row.next_attempt_at)),
        "sent_at": row.sent_at.map(rfc3339),
        "error": row.last_error,
    })
}

/// The delivery log, newest first: `{items, next_cursor}`; `status` filters (pending, sent,
/// failed, cancelled), `cursor` continues.
#[get("/api/v1/notifiers/<id>/deliveries?<status>&<cursor>&<limit>")]
pub async fn deliveries(
    _caller: ApiAdmin,
    id: NotifierId,
    status: Option<&str>,
    cursor: Option<i64>,
    limit: Option<u32>,
    notifier: &State<Notifier>,
) -> AppResult<Json<Value>> {
    if let Some(s) = status
        && !["pending", "sent", "failed", "cancelled"].contains(&s)
    {
        return Err(AppError::validation("status", "must be pending, sent, failed or cancelled"));
    }
    notifier.get(id).await?;
    let limit = limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let rows = notifier.delivery_log(id, status.map(str::to_owned), cursor, limit).await?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.id)).flatten();
    Ok(Json(json!({
        "items": rows.iter().map(delivery_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// Queues the channel's failed messages again: `{"requeued": n}`.
#[post("/api/v1/notifiers/<id>/deliveries/retry")]
pub async fn retry(
    _caller: ApiAdmin,
    id: NotifierId,
    notifier: &State<Notifier>,
) -> AppResult<Json<Value>> {
    let n = notifier.retry_failed(id).await?;
    Ok(Json(json!({"requeued": n})))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list, create, get, update, remove, test, deliveries, retry]
}
