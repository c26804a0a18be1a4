//! GeoIP overrides: the admin's word on where a network is.

use rusqlite::{Connection, params};

use crate::error::{AppError, AppResult};
use crate::geo::model::Override;

const LIST: &str = "SELECT id, network, name, country, city, lat, lon, is_local FROM geo_overrides ORDER BY network";
const INSERT: &str = "INSERT INTO geo_overrides (network, name, country, city, lat, lon, is_local, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id";
const DELETE: &str = "DELETE FROM geo_overrides WHERE id = ?1";
const EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM geo_overrides WHERE network = ?1)";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[LIST, INSERT, DELETE, EXISTS];

pub fn list(conn: &Connection) -> AppResult<Vec<Override>> {
    let mut stmt = conn.prepare_cached(LIST)?;
    let rows = stmt.query_map([], |r| {
        let network: String = r.get(1)?;
        Ok((network, r.get(0)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (network, id, name, country, city, lat, lon, is_local) = row?;
        if let Some(network) = crate::geo::model::parse_network(&network) {
            out.push(Override { id, network, name, country, city, lat, lon, is_local });
        }
    }
    Ok(out)
}

/// Checks and stores an override (network, country code, coordinates).
pub fn insert(conn: &Connection, o: &Override, now: i64) -> AppResult<i64> {
    let network = o.network.trunc().to_string();
    if let Some(c) = &o.country
        && (c.len() != 2 || !c.chars().all(|c| c.is_ascii_alphabetic()))
    {
        return Err(AppError::validation(
            "country",
            "a two-letter country code (ISO 3166-1, e.g. US)",
        ));
    }
    match (o.lat, o.lon) {
        (Some(_), None) => {
            return Err(AppError::validation(
                "lon",
                "give both latitude and longitude, or neither",
            ));
        }
        (None, Some(_)) => {
            return Err(AppError::validation(
                "lat",
                "give both latitude and longitude, or neither",
            ));
        }
        _ => {}
    }
    if o.lat.is_some_and(|l| !(-90.0..=90.0).contains(&l)) {
        return Err(AppError::validation("lat", "a latitude from -90 to 90 degrees"));
    }
    if o.lon.is_some_and(|l| !(-180.0..=180.0).contains(&l)) {
        return Err(AppError::validation("lon", "a longitude from -180 to 180 degrees"));
    }
    if !o.is_local && o.country.is_none() && o.lat.is_none() {
        return Err(AppError::validation(
            "country",
            "give a country or coordinates, or mark the network local",
        ));
    }
    let exists: bool = conn.prepare_cached(EXISTS)?.query_row([&network], |r| r.get(0))?;
    if exists {
        return Err(AppError::Conflict(format!("{network} has an override already.")));
    }
    Ok(conn.prepare_cached(INSERT)?.query_row(
        params![
            network,
            o.name.trim(),
            o.country.as_ref().map(|c| c.to_ascii_uppercase()),
            o.city,
            o.lat,
            o.lon,
            o.is_local,
            now
        ],
        |r| r.get(0),
    )?)
}

pub fn delete(conn: &Connection, id: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(DELETE)?.execute([id])? > 0)
}
