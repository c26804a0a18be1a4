//! `/api/v1/geoip`: database status, lookups, overrides, download now.

use std::sync::Arc;

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::Serialize;

use super::{body, time};
use crate::auth::ApiAdmin;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::geo::download::Updater;
use crate::geo::overrides::{self as geo_overrides, OverrideInput};
use crate::geo::{GeoIp, Lookup, Override};
use crate::web::{ClientAddr, audit};

#[derive(Serialize)]
pub struct StatusJson {
    #[serde(flatten)]
    status: crate::geo::Status,
    license_key_set: bool,
    license_key_from_env: bool,
    last_download_attempt_at: Option<String>,
    last_download_at: Option<String>,
    last_download_error: Option<String>,
}

#[rocket::get("/api/v1/geoip")]
pub async fn status(
    _caller: ApiAdmin,
    geo: &State<Arc<GeoIp>>,
    updater: &State<Arc<Updater>>,
) -> Json<StatusJson> {
    let state = updater.state();
    Json(StatusJson {
        status: geo.status(),
        license_key_set: updater.license_key().await.is_some(),
        license_key_from_env: updater.key_from_env(),
        last_download_attempt_at: time(state.last_attempt_at),
        last_download_at: time(state.last_success_at),
        last_download_error: state.last_error,
    })
}

#[rocket::get("/api/v1/geoip/lookup?<ip>")]
pub fn lookup(_caller: ApiAdmin, ip: &str, geo: &State<Arc<GeoIp>>) -> AppResult<Json<Lookup>> {
    let ip = crate::media::model::parse_ip(ip)
        .ok_or_else(|| AppError::validation("ip", "not an IP address"))?;
    Ok(Json(geo.lookup(ip)))
}

/// Downloads GeoLite2 now (with a licence key).
#[rocket::post("/api/v1/geoip/update")]
pub async fn update(
    _caller: ApiAdmin,
    updater: &State<Arc<Updater>>,
    geo: &State<Arc<GeoIp>>,
) -> AppResult<Json<crate::geo::Status>> {
    updater.update_now().await?;
    Ok(Json(geo.status()))
}

#[rocket::get("/api/v1/geoip/overrides")]
pub async fn overrides(_caller: ApiAdmin, db: &State<Db>) -> AppResult<Json<Vec<Override>>> {
    Ok(Json(db.read(db::geo::list).await?))
}

#[rocket::post("/api/v1/geoip/overrides", data = "<data>")]
pub async fn create_override(
    caller: ApiAdmin,
    data: Result<Json<OverrideInput>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    geo: &State<Arc<GeoIp>>,
    ip: ClientAddr,
) -> AppResult<(Status, Json<Override>)> {
    let o = geo_overrides::add(db, geo, body(data)?).await?;
    audit(
        db,
        &caller.0.actor(),
        "geoip.override.create",
        &o.network.to_string(),
        serde_json::Value::Null,
        ip.0,
    )
    .await;
    Ok((Status::Created, Json(o)))
}

#[rocket::delete("/api/v1/geoip/overrides/<id>")]
pub async fn delete_override(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    geo: &State<Arc<GeoIp>>,
    ip: ClientAddr,
) -> AppResult<Status> {
    let gone = geo_overrides::remove(db, geo, id).await?;
    audit(
        db,
        &caller.0.actor(),
        "geoip.override.delete",
        &gone.network.to_string(),
        serde_json::json!({"id": id}),
        ip.0,
    )
    .await;
    Ok(Status::NoContent)
}
