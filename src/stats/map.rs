//! Places on the map: history of a period from the rollups' place dimension, and the live
//! streams grouped the same way (`GET /api/v1/map`, `/map`).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;
use serde::Serialize;

use crate::db::stats as sql;
use crate::error::AppResult;
use crate::stats::StatsQuery;
use crate::stats::calendar;
use crate::stats::rollups::{PLACE, PLACE_LOCAL, PLACE_UNKNOWN, SEP};

/// One marker: a place, with how many plays and users it had.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    pub lat: f64,
    pub lon: f64,
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub plays: i64,
    pub users: i64,
    /// A live stream (now), not history.
    pub live: bool,
}

/// The history places of a period, with the plays that have no place on a map.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct History {
    /// Biggest first.
    pub places: Vec<Place>,
    /// Plays from the local network (never drawn).
    pub local_plays: i64,
    /// Plays without a location (no GeoIP database then, or an unknown address).
    pub unlocated_plays: i64,
}

fn blank(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The places of the plays of a period.
pub fn history(conn: &Connection, q: &StatsQuery) -> AppResult<History> {
    let c = calendar::bounds(&calendar::cover(q.first, q.last));
    let users: BTreeMap<String, i64> =
        sql::users_by_key(conn, PLACE, q.scope, &c)?.into_iter().collect();
    let mut out = History::default();
    for (key, sum) in sql::sum_by_key(conn, PLACE, q.scope, &c)? {
        match key.as_str() {
            PLACE_LOCAL => out.local_plays += sum.plays,
            PLACE_UNKNOWN => out.unlocated_plays += sum.plays,
            _ => {
                let mut parts = key.split(SEP);
                let coords = parts.next().unwrap_or_default();
                let (city, country) =
                    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                let Some((lat, lon)) = coords.split_once(',') else { continue };
                let (Ok(lat), Ok(lon)) = (lat.parse(), lon.parse()) else { continue };
                out.places.push(Place {
                    lat,
                    lon,
                    city: blank(city),
                    country: blank(country),
                    plays: sum.plays,
                    users: users.get(&key).copied().unwrap_or(0),
                    live: false,
                });
            }
        }
    }
    sort(&mut out.places);
    Ok(out)
}

/// A live stream's place: `(lat, lon, city, country, user)`.
pub type LivePoint = (f64, f64, Option<String>, Option<String>, i64);

/// Live streams grouped by place (to two decimals, like history), biggest first.
pub fn live(points: impl IntoIterator<Item = LivePoint>) -> Vec<Place> {
    let mut places: BTreeMap<String, (Place, BTreeSet<i64>)> = BTreeMap::new();
    for (lat, lon, city, country, user) in points {
        let key = format!("{lat:.2},{lon:.2}");
        let entry = places.entry(key).or_insert_with(|| {
            let place = Place {
                lat: round2(lat),
                lon: round2(lon),
                city,
                country,
                plays: 0,
                users: 0,
                live: true,
            };
            (place, BTreeSet::new())
        });
        entry.0.plays += 1;
        entry.1.insert(user);
    }
    let mut out: Vec<Place> = places
        .into_values()
        .map(|(mut p, users)| {
            p.users = i64::try_from(users.len()).unwrap_or(0);
            p
        })
        .collect();
    sort(&mut out);
    out
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn sort(places: &mut [Place]) {
    places.sort_by(|a, b| {
        b.plays
            .cmp(&a.plays)
            .then_with(|| a.city.cmp(&b.city))
            .then_with(|| a.lat.total_cmp(&b.lat))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_streams_group_by_place_and_count_users_once() {
        let london = (51.5142, -0.0931, Some("London".to_owned()), Some("GB".to_owned()));
        let p = live([
            (london.0, london.1, london.2.clone(), london.3.clone(), 1),
            (51.5141, -0.0929, london.2.clone(), london.3.clone(), 1),
            (47.2513, -122.3149, Some("Milton".into()), Some("US".into()), 2),
        ]);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].city.as_deref(), p[0].plays, p[0].users, p[0].live),
            (Some("London"), 2, 1, true)
        );
        assert!((p[0].lat - 51.51).abs() < 1e-9);
    }
}
