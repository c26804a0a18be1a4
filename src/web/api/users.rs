//! `/api/v1/users`: the media servers' users, with their devices and locations.

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::{Deserialize, Serialize};

use super::{body, time};
use crate::auth::{ApiAdmin, ApiViewer};
use crate::db::Db;
use crate::db::households::{self, Household};
use crate::db::media_users::{self, Device, Location, MediaUserRow};
use crate::db::persons::PersonRef;
use crate::db::trust::{self, TrustEvent};
use crate::error::{AppError, AppResult};
use crate::rules::trust::Change;
use crate::web::{ClientAddr, audit};

#[derive(Serialize)]
pub struct UserJson {
    id: i64,
    server_id: i64,
    server_name: String,
    external_id: String,
    name: String,
    is_admin: bool,
    trust_score: i64,
    plays: i64,
    first_seen_at: Option<String>,
    last_seen_at: Option<String>,
    /// The person this account is linked to, `null` when it stands alone.
    person: Option<PersonRef>,
}

fn json(u: MediaUserRow) -> UserJson {
    UserJson {
        id: u.id,
        server_id: u.server_id,
        server_name: u.server_name,
        external_id: u.external_id,
        name: u.name,
        is_admin: u.is_admin,
        trust_score: u.trust_score,
        plays: u.plays,
        first_seen_at: time(Some(u.first_seen_at)),
        last_seen_at: time(u.last_seen_at),
        person: u.person,
    }
}

#[rocket::get("/api/v1/users")]
pub async fn list(caller: ApiViewer, db: &State<Db>) -> AppResult<Json<Vec<UserJson>>> {
    let scope = caller.0.scope();
    let users = db.read(media_users::list).await?;
    Ok(Json(users.into_iter().filter(|u| scope.allows(u.id)).map(json).collect()))
}

#[derive(Serialize)]
pub struct DeviceJson {
    device_id: String,
    player: Option<String>,
    product: Option<String>,
    platform: Option<String>,
    plays: i64,
    last_seen_at: Option<String>,
}

impl From<Device> for DeviceJson {
    fn from(d: Device) -> Self {
        Self {
            last_seen_at: time(Some(d.last_seen_at)),
            device_id: d.device_id,
            player: d.player,
            product: d.product,
            platform: d.platform,
            plays: d.plays,
        }
    }
}

#[derive(Serialize)]
pub struct LocationJson {
    ip: String,
    is_local: bool,
    country: Option<String>,
    city: Option<String>,
    isp: Option<String>,
    plays: i64,
    last_seen_at: Option<String>,
}

impl From<Location> for LocationJson {
    fn from(l: Location) -> Self {
        Self {
            last_seen_at: time(Some(l.last_seen_at)),
            ip: l.ip,
            is_local: l.is_local,
            country: l.country,
            city: l.city,
            isp: l.isp,
            plays: l.plays,
        }
    }
}

#[derive(Serialize)]
pub struct TrustEventJson {
    at: Option<String>,
    delta: i64,
    score: i64,
    /// `rule`, `admin`, `recovery` or `dismissed`.
    reason: String,
    violation_id: Option<i64>,
    actor: Option<String>,
    note: String,
}

impl From<TrustEvent> for TrustEventJson {
    fn from(e: TrustEvent) -> Self {
        Self {
            at: time(Some(e.at)),
            delta: e.delta,
            score: e.score,
            reason: e.reason,
            violation_id: e.violation_id,
            actor: e.actor,
            note: e.note,
        }
    }
}

#[derive(Serialize)]
pub struct HouseholdJson {
    id: i64,
    network: String,
    label: String,
    /// `manual` or `learned`.
    source: String,
    confirmed: bool,
    plays: i64,
    created_at: Option<String>,
}

impl From<Household> for HouseholdJson {
    fn from(h: Household) -> Self {
        Self {
            id: h.id,
            network: h.network,
            label: h.label,
            source: h.source,
            confirmed: h.confirmed,
            plays: h.plays,
            created_at: time(Some(h.created_at)),
        }
    }
}

#[derive(Serialize)]
pub struct UserDetailJson {
    #[serde(flatten)]
    user: UserJson,
    devices: Vec<DeviceJson>,
    locations: Vec<LocationJson>,
    /// Newest first.
    trust_events: Vec<TrustEventJson>,
    households: Vec<HouseholdJson>,
}

#[rocket::get("/api/v1/users/<id>")]
pub async fn get(caller: ApiViewer, id: i64, db: &State<Db>) -> AppResult<Json<UserDetailJson>> {
    if !caller.0.scope().allows(id) {
        return Err(AppError::not_found(format!("user {id}")));
    }
    let (user, devices, locations, events, homes) = db
        .read(move |conn| {
            let user = media_users::get(conn, id)?
                .ok_or_else(|| AppError::not_found(format!("user {id}")))?;
            Ok((
                user,
                media_users::devices(conn, id)?,
                media_users::locations(conn, id)?,
                trust::timeline(conn, id, 100)?,
                households::list(conn, id)?,
            ))
        })
        .await?;
    Ok(Json(UserDetailJson {
        user: json(user),
        devices: devices.into_iter().map(DeviceJson::from).collect(),
        locations: locations.into_iter().map(LocationJson::from).collect(),
        trust_events: events.into_iter().map(TrustEventJson::from).collect(),
        households: homes.into_iter().map(HouseholdJson::from).collect(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustBody {
    /// Set the score to this (0-100)...
    value: Option<i64>,
    /// ...or move it by this (-100..100).
    adjust: Option<i64>,
    #[serde(default)]
    reset: bool,
    #[serde(default)]
    note: String,
}

#[derive(Serialize)]
pub struct TrustJson {
    trust_score: i64,
}

/// An admin sets, adjusts or resets a user's trust; the timeline records it.
#[rocket::post("/api/v1/users/<id>/trust", data = "<data>")]
pub async fn set_trust(
    caller: ApiAdmin,
    id: i64,
    data: Result<Json<TrustBody>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Json<TrustJson>> {
    let b = body(data)?;
    let change = match (b.value, b.adjust, b.reset) {
        (Some(v), None, false) => Change::Set(v),
        (None, Some(d), false) => Change::Adjust(d),
        (None, None, true) => Change::Reset,
        _ => {
            return Err(AppError::validation("body", "give exactly one of value, adjust or reset"));
        }
    };
    let score = crate::rules::admin::set_trust(db, id, change, &caller.0.actor(), b.note).await?;
    audit(
        db,
        &caller.0.actor(),
        "user.trust",
        &format!("user:{id}"),
        serde_json::json!({"trust_score": score}),
        ip.0,
    )
    .await;
    Ok(Json(TrustJson { trust_score: score }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HouseholdBody {
    /// An address or a CIDR.
    network: String,
    #[serde(default)]
    label: String,
}

#[rocket::post("/api/v1/users/<id>/households", data = "<data>")]
pub async fn add_household(
    caller: ApiAdmin,
    id: i64,
    data: Result<Json<HouseholdBody>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<(Status, Json<HouseholdJson>)> {
    let b = body(data)?;
    let home = crate::rules::admin::add_household(db, id, b.network, b.label).await?;
    audit(
        db,
        &caller.0.actor(),
        "household.add",
        &format!("user:{id}"),
        serde_json::json!({"network": home.network}),
        ip.0,
    )
    .await;
    Ok((Status::Created, Json(home.into())))
}

/// Confirms a learned household network.
#[rocket::post("/api/v1/households/<id>/confirm")]
pub async fn confirm_household(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Json<HouseholdJson>> {
    let home = crate::rules::admin::confirm_household(db, id, None).await?;
    audit(
        db,
        &caller.0.actor(),
        "household.confirm",
        &format!("household:{id}"),
        serde_json::json!({"network": home.network}),
        ip.0,
    )
    .await;
    Ok(Json(home.into()))
}

#[rocket::delete("/api/v1/households/<id>")]
pub async fn delete_household(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Status> {
    let home = crate::rules::admin::remove_household(db, id, None).await?;
    audit(
        db,
        &caller.0.actor(),
        "household.delete",
        &format!("household:{id}"),
        serde_json::json!({"network": home.network}),
        ip.0,
    )
    .await;
    Ok(Status::NoContent)
}
