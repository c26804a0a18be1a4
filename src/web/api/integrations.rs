//! `/api/v1/integrations`: Radarr, Sonarr and Seerr. The API key is accepted, never
//! returned (`api_key_set` says whether one is stored).

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::{Deserialize, Serialize};

use super::{body, time};
use crate::auth::ApiAdmin;
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::db::integrations::{self, IntegrationRow};
use crate::error::AppResult;
use crate::integrations::admin::{Changes, Editor};
use crate::web::ClientAddr;

#[derive(Serialize)]
pub struct IntegrationJson {
    id: i64,
    kind: String,
    name: String,
    url: String,
    enabled: bool,
    verify_tls: bool,
    api_key_set: bool,
    version: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<IntegrationRow> for IntegrationJson {
    fn from(r: IntegrationRow) -> Self {
        Self {
            api_key_set: !r.api_key_sealed.is_empty(),
            id: r.id,
            kind: r.kind,
            name: r.name,
            url: r.url,
            enabled: r.enabled,
            verify_tls: r.verify_tls,
            version: r.version,
            created_at: time(Some(r.created_at)),
            updated_at: time(Some(r.updated_at)),
        }
    }
}

fn editor<'a>(caller: &ApiAdmin, db: &'a Db, secrets: &'a SecretBox, ip: ClientAddr) -> Editor<'a> {
    Editor { db, secrets, actor: caller.0.actor(), ip: ip.0 }
}

#[rocket::get("/api/v1/integrations")]
pub async fn list(_caller: ApiAdmin, db: &State<Db>) -> AppResult<Json<Vec<IntegrationJson>>> {
    Ok(Json(db.read(integrations::list).await?.into_iter().map(IntegrationJson::from).collect()))
}

#[rocket::get("/api/v1/integrations/<id>")]
pub async fn get(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    ip: ClientAddr,
) -> AppResult<Json<IntegrationJson>> {
    Ok(Json(editor(&caller, db, secrets, ip).get(id).await?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationBody {
    kind: Option<String>,
    name: Option<String>,
    url: Option<String>,
    api_key: Option<String>,
    enabled: Option<bool>,
    verify_tls: Option<bool>,
}

impl From<IntegrationBody> for Changes {
    fn from(b: IntegrationBody) -> Self {
        Changes {
            kind: b.kind,
            name: b.name,
            url: b.url,
            api_key: b.api_key,
            enabled: b.enabled,
            verify_tls: b.verify_tls,
        }
    }
}

#[rocket::post("/api/v1/integrations", format = "json", data = "<data>")]
pub async fn create(
    caller: ApiAdmin,
    data: Result<Json<IntegrationBody>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    ip: ClientAddr,
) -> AppResult<(Status, Json<IntegrationJson>)> {
    let row = editor(&caller, db, secrets, ip).create(body(data)?.into()).await?;
    Ok((Status::Created, Json(row.into())))
}

#[rocket::patch("/api/v1/integrations/<id>", format = "json", data = "<data>")]
pub async fn update(
    caller: ApiAdmin,
    id: i64,
    data: Result<Json<IntegrationBody>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    ip: ClientAddr,
) -> AppResult<Json<IntegrationJson>> {
    Ok(Json(editor(&caller, db, secrets, ip).update(id, body(data)?.into()).await?.into()))
}

#[rocket::delete("/api/v1/integrations/<id>")]
pub async fn delete(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    ip: ClientAddr,
) -> AppResult<Status> {
    editor(&caller, db, secrets, ip).delete(id).await?;
    Ok(Status::NoContent)
}

#[derive(Serialize)]
pub struct TestJson {
    ok: bool,
    version: String,
}

/// Tests the stored connection (502 with what went wrong when it fails).
#[rocket::post("/api/v1/integrations/<id>/test")]
pub async fn test(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    secrets: &State<SecretBox>,
    ip: ClientAddr,
) -> AppResult<Json<TestJson>> {
    let version = editor(&caller, db, secrets, ip).test(id).await?;
    Ok(Json(TestJson { ok: true, version }))
}
