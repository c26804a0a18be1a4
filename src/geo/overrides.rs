//! Adding and removing the admin's overrides: stored, then put in force in the live
//! [`GeoIp`] service at once. The settings page and the API both come through here.

use serde::Deserialize;

use super::{GeoIp, Override};
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};

/// An override as typed: the API's JSON body, or the settings form.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideInput {
    /// An address or a CIDR.
    pub network: String,
    #[serde(default)]
    pub name: String,
    pub country: Option<String>,
    pub city: Option<String>,
    /// Degrees.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    #[serde(default)]
    pub is_local: bool,
}

/// Checks and stores an override and puts it in force at once. A network that has an
/// override already is a conflict.
pub async fn add(db: &Db, geo: &GeoIp, o: OverrideInput) -> AppResult<Override> {
    let network = super::parse_network(&o.network).ok_or_else(|| {
        AppError::validation(
            "network",
            format!("{:?} is not an address or a network like 203.0.113.0/24", o.network),
        )
    })?;
    if o.name.chars().count() > 100 {
        return Err(AppError::validation("name", "at most 100 characters"));
    }
    let blank = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let mut entry = Override {
        id: 0,
        network,
        name: o.name.trim().to_owned(),
        country: blank(o.country).map(|c| c.to_ascii_uppercase()),
        city: blank(o.city),
        lat: o.lat,
        lon: o.lon,
        is_local: o.is_local,
    };
    let saved = entry.clone();
    let (id, all) = db
        .write(move |c| {
            let tx = c.transaction()?;
            let id = db::geo::insert(&tx, &saved, crate::time::now_ms())?;
            let all = db::geo::list(&tx)?;
            tx.commit()?;
            Ok((id, all))
        })
        .await?;
    entry.id = id;
    geo.set_overrides(all);
    Ok(entry)
}

/// Deletes an override and takes it out of force at once; returns what it was.
pub async fn remove(db: &Db, geo: &GeoIp, id: i64) -> AppResult<Override> {
    let (gone, all) = db
        .write(move |c| {
            let tx = c.transaction()?;
            let gone = db::geo::list(&tx)?.into_iter().find(|o| o.id == id);
            db::geo::delete(&tx, id)?;
            let all = db::geo::list(&tx)?;
            tx.commit()?;
            Ok((gone, all))
        })
        .await?;
    geo.set_overrides(all);
    gone.ok_or_else(|| AppError::not_found(format!("override {id}")))
}
