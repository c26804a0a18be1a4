//! `/api/v1/geoip`: database status, lookups, overrides, download now.

use std::sync::Arc;

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::{Deserialize, Serialize};

use super::{body, time};
use crate::auth::ApiAdmin;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::geo::download::Updater;
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
    if updater.license_key().await.is_none() {
        return Err(AppError::validation("license_key", "set a MaxMind licence key first"));
    }
    updater
        .update(true)
        .await
        .map_err(|e| AppError::Upstream { server: "MaxMind".into(), message: e })?;
    Ok(Json(geo.status()))
}

#[rocket::get("/api/v1/geoip/overrides")]
pub async fn overrides(_caller: ApiAdmin, db: &State<Db>) -> AppResult<Json<Vec<Override>>> {
    Ok(Json(db.read(db::geo::list).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    pub network: String,
    #[serde(default)]
    pub name: String,
    pub country: Option<String>,
    pub city: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    #[serde(default)]
    pub is_local: bool,
}

/// Stores an override and puts it in force at once.
pub async fn add_override(db: &Db, geo: &GeoIp, o: OverrideBody) -> AppResult<Override> {
    let network = crate::geo::parse_network(&o.network).ok_or_else(|| {
        AppError::validation(
            "network",
            format!("{:?} is not an address or a network like 203.0.113.0/24", o.network),
        )
    })?;
    let blank = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let mut entry = Override {
        id: 0,
        network,
        name: o.name,
        country: blank(o.country).map(|c| c.to_ascii_uppercase()),
        city: blank(o.city),
        lat: o.lat,
        lon: o.lon,
        is_local: o.is_local,
    };
    let saved = entry.clone();
    let (id, all) = db
        .write(move |c| {
            let id = db::geo::insert(c, &saved, db::now_ms())?;
            Ok((id, db::geo::list(c)?))
        })
        .await?;
    entry.id = id;
    geo.set_overrides(all);
    Ok(entry)
}

pub async fn remove_override(db: &Db, geo: &GeoIp, id: i64) -> AppResult<()> {
    let (found, all) = db.write(move |c| Ok((db::geo::delete(c, id)?, db::geo::list(c)?))).await?;
    geo.set_overrides(all);
    if found { Ok(()) } else { Err(AppError::not_found(format!("override {id}"))) }
}

#[rocket::post("/api/v1/geoip/overrides", data = "<data>")]
pub async fn create_override(
    caller: ApiAdmin,
    data: Result<Json<OverrideBody>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    geo: &State<Arc<GeoIp>>,
    ip: ClientAddr,
) -> AppResult<(Status, Json<Override>)> {
    let o = add_override(db, geo, body(data)?).await?;
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
    remove_override(db, geo, id).await?;
    audit(
        db,
        &caller.0.actor(),
        "geoip.override.delete",
        &format!("override:{id}"),
        serde_json::Value::Null,
        ip.0,
    )
    .await;
    Ok(Status::NoContent)
}
