//! Households: networks a user streams from at home, learned or added by hand.

use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::error::{AppError, AppResult};

const LIST: &str = "SELECT id, user_id, network, label, source, confirmed, plays, created_at, confirmed_at \
     FROM households WHERE user_id = ?1 ORDER BY confirmed DESC, plays DESC, id";
const GET: &str = "SELECT id, user_id, network, label, source, confirmed, plays, created_at, confirmed_at \
     FROM households WHERE id = ?1";
const CONFIRMED: &str = "SELECT network FROM households WHERE user_id = ?1 AND confirmed = 1";
const INSERT: &str = "INSERT INTO households (user_id, network, label, source, confirmed, plays, created_at, confirmed_at) \
     VALUES (?1, ?2, ?3, 'manual', 1, 0, ?4, ?4) \
     ON CONFLICT (user_id, network) DO UPDATE SET confirmed = 1, confirmed_at = excluded.confirmed_at, label = excluded.label \
     RETURNING id";
const CONFIRM: &str = "UPDATE households SET confirmed = 1, confirmed_at = ?2 WHERE id = ?1";
const DELETE: &str = "DELETE FROM households WHERE id = ?1";
/// Every address a user's finished plays came from, with how often and how lately.
const ADDRESSES: &str = "SELECT ip, count(*), max(started_at) FROM plays \
     WHERE user_id = ?1 AND status = 'stopped' AND ip IS NOT NULL GROUP BY ip";
/// Addresses away from the LAN a user played from at least ?1 times since ?2.
const FREQUENT: &str = "SELECT user_id, ip, count(*) FROM plays \
     WHERE status = 'stopped' AND is_local = 0 AND ip IS NOT NULL AND started_at >= ?2 \
     GROUP BY user_id, ip HAVING count(*) >= ?1";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] =
    &[LIST, GET, CONFIRMED, INSERT, CONFIRM, DELETE, ADDRESSES, FREQUENT];

/// A household network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Household {
    pub id: i64,
    pub user_id: i64,
    pub network: String,
    pub label: String,
    /// `manual` or `learned`.
    pub source: String,
    pub confirmed: bool,
    /// Plays seen from it when it was learned.
    pub plays: i64,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Household> {
    Ok(Household {
        id: r.get(0)?,
        user_id: r.get(1)?,
        network: r.get(2)?,
        label: r.get(3)?,
        source: r.get(4)?,
        confirmed: r.get(5)?,
        plays: r.get(6)?,
        created_at: r.get(7)?,
        confirmed_at: r.get(8)?,
    })
}

pub fn list(conn: &Connection, user_id: i64) -> AppResult<Vec<Household>> {
    let mut stmt = conn.prepare_cached(LIST)?;
    let rows = stmt.query_map([user_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get(conn: &Connection, id: i64) -> AppResult<Option<Household>> {
    Ok(conn.prepare_cached(GET)?.query_row([id], from_row).optional()?)
}

/// The confirmed networks of a user: these exempt sessions from geographic conditions.
pub fn confirmed(conn: &Connection, user_id: i64) -> AppResult<Vec<IpNet>> {
    let mut stmt = conn.prepare_cached(CONFIRMED)?;
    let rows = stmt.query_map([user_id], |r| r.get::<_, String>(0))?;
    Ok(rows.filter_map(|n| n.ok().and_then(|n| n.parse().ok())).collect())
}

/// Plays from one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressUse {
    pub ip: std::net::IpAddr,
    pub plays: i64,
    /// Unix milliseconds of the latest play's start.
    pub last_at: i64,
}

/// The addresses a user's finished plays came from.
pub fn addresses(conn: &Connection, user_id: i64) -> AppResult<Vec<AddressUse>> {
    let mut stmt = conn.prepare_cached(ADDRESSES)?;
    let rows = stmt.query_map([user_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (ip, plays, last_at) = row?;
        if let Some(ip) = crate::media::model::parse_ip(&ip) {
            out.push(AddressUse { ip: crate::geo::model::unmap(ip), plays, last_at });
        }
    }
    Ok(out)
}

/// Plays from inside `network` and the latest one's start: (plays, last).
pub fn tally(network: &str, addresses: &[AddressUse]) -> (i64, Option<i64>) {
    let Some(net) = crate::geo::model::parse_network(network) else { return (0, None) };
    addresses
        .iter()
        .filter(|a| net.contains(&a.ip))
        .fold((0, None), |(plays, last), a| (plays + a.plays, last.max(Some(a.last_at))))
}

/// Adds a network by hand (confirmed at once). `raw` is an address or a CIDR.
pub fn add(conn: &Connection, user_id: i64, raw: &str, label: &str, now: i64) -> AppResult<i64> {
    let network = crate::geo::model::parse_network(raw).ok_or_else(|| {
        AppError::validation(
            "network",
            format!("{raw:?} is not an address or a network like 203.0.113.0/24"),
        )
    })?;
    if label.chars().count() > 100 {
        return Err(AppError::validation("label", "at most 100 characters"));
    }
    Ok(conn
        .prepare_cached(INSERT)?
        .query_row(params![user_id, network.to_string(), label.trim(), now], |r| r.get(0))?)
}

pub fn confirm(conn: &Connection, id: i64, now: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(CONFIRM)?.execute(params![id, now])? > 0)
}

pub fn delete(conn: &Connection, id: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(DELETE)?.execute([id])? > 0)
}

/// Proposes every address a user played from at least `threshold` times since `since` as
/// a household (unconfirmed). Returns how many were new.
pub fn learn(conn: &Connection, threshold: u32, since: i64, now: i64) -> AppResult<usize> {
    if threshold == 0 {
        return Ok(0);
    }
    let frequent: Vec<(i64, String, i64)> = {
        let mut stmt = conn.prepare_cached(FREQUENT)?;
        let rows =
            stmt.query_map(params![threshold, since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut added = 0;
    for (user_id, ip, plays) in frequent {
        let Some(network) = crate::geo::model::parse_network(&ip) else { continue };
        let existed: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM households WHERE user_id = ?1 AND network = ?2)",
            params![user_id, network.to_string()],
            |r| r.get(0),
        )?;
        if existed {
            conn.execute(
                "UPDATE households SET plays = max(plays, ?3) WHERE user_id = ?1 AND network = ?2",
                params![user_id, network.to_string(), plays],
            )?;
        } else {
            conn.execute(
                "INSERT INTO households (user_id, network, label, source, confirmed, plays, created_at) VALUES (?1, ?2, '', 'learned', 0, ?3, ?4)",
                params![user_id, network.to_string(), plays, now],
            )?;
            added += 1;
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_the_addresses_inside_the_network() {
        let at = |ip: &str, plays, last_at| AddressUse { ip: ip.parse().unwrap(), plays, last_at };
        let seen = [
            at("203.0.113.7", 3, 100),
            at("203.0.113.9", 2, 300),
            at("198.51.100.1", 9, 900),
            at("2001:db8::5", 1, 50),
        ];
        assert_eq!(tally("203.0.113.0/24", &seen), (5, Some(300)));
        assert_eq!(tally("203.0.113.7/32", &seen), (3, Some(100)));
        assert_eq!(tally("2001:db8::/32", &seen), (1, Some(50)));
        assert_eq!(tally("192.0.2.0/24", &seen), (0, None));
        assert_eq!(tally("not a network", &seen), (0, None));
    }
}
