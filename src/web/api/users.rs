//! `/api/v1/users`: the media servers' users, with their devices and locations.

use rocket::State;
use rocket::serde::json::Json;
use serde::Serialize;

use super::time;
use crate::auth::ApiViewer;
use crate::db::Db;
use crate::db::media_users::{self, Device, Location, MediaUserRow};
use crate::error::{AppError, AppResult};

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
pub struct UserDetailJson {
    #[serde(flatten)]
    user: UserJson,
    devices: Vec<DeviceJson>,
    locations: Vec<LocationJson>,
}

#[rocket::get("/api/v1/users/<id>")]
pub async fn get(caller: ApiViewer, id: i64, db: &State<Db>) -> AppResult<Json<UserDetailJson>> {
    if !caller.0.scope().allows(id) {
        return Err(AppError::not_found(format!("user {id}")));
    }
    let (user, devices, locations) = db
        .read(move |conn| {
            let user = media_users::get(conn, id)?
                .ok_or_else(|| AppError::not_found(format!("user {id}")))?;
            Ok((user, media_users::devices(conn, id)?, media_users::locations(conn, id)?))
        })
        .await?;
    Ok(Json(UserDetailJson {
        user: json(user),
        devices: devices.into_iter().map(DeviceJson::from).collect(),
        locations: locations.into_iter().map(LocationJson::from).collect(),
    }))
}
