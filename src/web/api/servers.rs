//! `/api/v1/servers`: the media servers. The token is accepted, never returned.

use std::sync::Arc;

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::{Deserialize, Serialize};

use super::{body, time};
use crate::auth::ApiAdmin;
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::db::servers::{self, ServerRow};
use crate::error::{AppError, AppResult};
use crate::poller::control::Control;
use crate::poller::live::ServerStatus;
use crate::servers::{Changes, Editor};
use crate::web::ClientAddr;

#[derive(Serialize)]
pub struct ServerJson {
    id: i64,
    name: String,
    kind: &'static str,
    url: String,
    enabled: bool,
    verify_tls: bool,
    machine_id: Option<String>,
    product_name: Option<String>,
    version: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    health: HealthJson,
    /// Whether the server's own push (event stream, WebSocket) is followed.
    push_enabled: bool,
    /// Where the live picture comes from now: `websocket`, `sse` or `polling`.
    realtime: &'static str,
    /// Since when, RFC 3339 (`null` before the first poll).
    realtime_since: Option<String>,
}

#[derive(Serialize)]
pub struct HealthJson {
    /// `ok`, `failing`, `unknown` (not polled yet) or `disabled`.
    status: &'static str,
    last_ok_at: Option<String>,
    last_error_at: Option<String>,
    last_error: Option<String>,
    consecutive_failures: i64,
}

fn json(row: ServerRow, live: Option<&ServerStatus>) -> ServerJson {
    let failures = live.map_or(row.consecutive_failures, |l| l.consecutive_failures);
    let last_ok = live.and_then(|l| l.last_ok_at).or(row.last_ok_at);
    let status = match (row.enabled, failures, last_ok) {
        (false, _, _) => "disabled",
        (true, f, _) if f > 0 => "failing",
        (true, _, Some(_)) => "ok",
        (true, _, None) => "unknown",
    };
    ServerJson {
        health: HealthJson {
            status,
            last_ok_at: time(last_ok),
            last_error_at: time(live.and_then(|l| l.last_error_at).or(row.last_error_at)),
            last_error: live.and_then(|l| l.last_error.clone()).or(row.last_error.clone()),
            consecutive_failures: failures,
        },
        push_enabled: row.push_enabled,
        realtime: live.map_or("polling", |l| l.realtime.as_str()),
        realtime_since: time(live.and_then(|l| l.realtime_since)),
        id: row.id,
        name: row.name,
        kind: row.kind.as_str(),
        url: row.url,
        enabled: row.enabled,
        verify_tls: row.verify_tls,
        machine_id: row.machine_id,
        product_name: row.product_name,
        version: row.version,
        created_at: time(Some(row.created_at)),
        updated_at: time(Some(row.updated_at)),
    }
}

fn with_health(row: ServerRow, control: &Control) -> ServerJson {
    let live = control.live();
    let status = live.servers.iter().find(|s| s.id == row.id);
    json(row, status)
}

#[rocket::get("/api/v1/servers")]
pub async fn list(
    _caller: ApiAdmin,
    db: &State<Db>,
    control: &State<Arc<Control>>,
) -> AppResult<Json<Vec<ServerJson>>> {
    let rows = db.read(servers::list).await?;
    Ok(Json(rows.into_iter().map(|r| with_health(r, control)).collect()))
}

#[rocket::get("/api/v1/servers/<id>")]
pub async fn get(
    _caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    control: &State<Arc<Control>>,
) -> AppResult<Json<ServerJson>> {
    let row = db
        .read(move |conn| servers::get(conn, id))
        .await?
        .ok_or_else(|| AppError::not_found(format!("server {id}")))?;
    Ok(Json(with_health(row, control)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewServer {
    name: String,
    kind: String,
    url: String,
    token: Option<String>,
    enabled: Option<bool>,
    verify_tls: Option<bool>,
    push_enabled: Option<bool>,
}

fn editor<'a>(
    caller: &ApiAdmin,
    db: &'a Db,
    secrets: &'a SecretBox,
    control: &'a Control,
    ip: ClientAddr,
) -> Editor<'a> {
    Editor { db, secrets, registry: &control.registry, actor: caller.0.actor(), ip: ip.0 }
}

#[rocket::post("/api/v1/servers", format = "json", data = "<data>")]
pub async fn create(
    caller: ApiAdmin,
    data: Result<Json<NewServer>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    control: &State<Arc<Control>>,
    ip: ClientAddr,
) -> AppResult<(Status, Json<ServerJson>)> {
    let new = body(data)?;
    let changes = Changes {
        name: Some(new.name),
        kind: Some(new.kind),
        url: Some(new.url),
        token: new.token,
        enabled: new.enabled,
        verify_tls: new.verify_tls,
        push_enabled: new.push_enabled,
    };
    let row = editor(&caller, db, secrets, control, ip).create(changes).await?;
    Ok((Status::Created, Json(with_health(row, control))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerPatch {
    name: Option<String>,
    kind: Option<String>,
    url: Option<String>,
    token: Option<String>,
    enabled: Option<bool>,
    verify_tls: Option<bool>,
    push_enabled: Option<bool>,
}

#[rocket::patch("/api/v1/servers/<id>", format = "json", data = "<data>")]
pub async fn update(
    caller: ApiAdmin,
    id: i64,
    data: Result<Json<ServerPatch>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    control: &State<Arc<Control>>,
    ip: ClientAddr,
) -> AppResult<Json<ServerJson>> {
    let p = body(data)?;
    let changes = Changes {
        name: p.name,
        kind: p.kind,
        url: p.url,
        token: p.token,
        enabled: p.enabled,
        verify_tls: p.verify_tls,
        push_enabled: p.push_enabled,
    };
    let row = editor(&caller, db, secrets, control, ip).update(id, changes).await?;
    Ok(Json(with_health(row, control)))
}

#[rocket::delete("/api/v1/servers/<id>")]
pub async fn delete(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    control: &State<Arc<Control>>,
    ip: ClientAddr,
) -> AppResult<Status> {
    editor(&caller, db, secrets, control, ip).delete(id).await?;
    Ok(Status::NoContent)
}

#[derive(Serialize)]
pub struct TestJson {
    ok: bool,
    name: Option<String>,
    version: Option<String>,
    machine_id: Option<String>,
}

/// Tests the stored connection; remembers the server's name and version when it answers.
#[rocket::post("/api/v1/servers/<id>/test")]
pub async fn test(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    control: &State<Arc<Control>>,
    ip: ClientAddr,
) -> AppResult<Json<TestJson>> {
    let identity = editor(&caller, db, secrets, control, ip).test(id).await?;
    Ok(Json(TestJson {
        ok: true,
        name: identity.name,
        version: identity.version,
        machine_id: identity.machine_id,
    }))
}
