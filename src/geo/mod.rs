//! Where viewers are: local-network detection, MaxMind City and ASN/ISP databases read from
//! `<data dir>/geoip/` (hot-swapped when a file changes), per-IP or per-CIDR overrides set by
//! the admin, a lookup cache, and haversine distances.
//!
//! Order of a lookup: an override that covers the address wins; then private, loopback,
//! link-local, CGNAT and ULA addresses are local without a lookup; then the databases.

pub mod download;
pub mod map;
pub mod model;
pub mod overrides;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use maxminddb::{Reader, geoip2};
use serde::Serialize;

pub use model::{Geo, Override, haversine_km, is_local_ip, parse_network, round1, unmap};

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Override,
    Local,
    Database,
    /// No database, or no record for the address.
    Unknown,
}

impl Source {
    /// `override`, `local`, `database` or `unknown`, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Override => "override",
            Source::Local => "local",
            Source::Database => "database",
            Source::Unknown => "unknown",
        }
    }
}

/// The answer for one address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lookup {
    pub is_local: bool,
    pub geo: Option<Geo>,
    pub source: Source,
}

/// One loaded database file.
struct Loaded {
    path: PathBuf,
    modified: Option<SystemTime>,
    reader: Reader<Vec<u8>>,
}

/// What is installed, for the status pages.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DbStatus {
    pub file: String,
    pub database_type: String,
    /// Unix milliseconds of the database's build.
    pub built_at: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub city: Option<DbStatus>,
    pub asn: Option<DbStatus>,
    /// Why a file present in the directory could not be read.
    pub errors: Vec<String>,
    pub overrides: usize,
}

impl Status {
    pub fn has_city(&self) -> bool {
        self.city.is_some()
    }
}

/// City databases we read, in order of preference.
pub const CITY_FILES: [&str; 2] = ["GeoIP2-City.mmdb", "GeoLite2-City.mmdb"];
/// ASN or ISP databases we read, in order of preference.
pub const ASN_FILES: [&str; 2] = ["GeoIP2-ISP.mmdb", "GeoLite2-ASN.mmdb"];

/// Cached answers kept at most; the cache is cleared when it is full or a database changes.
const CACHE_LIMIT: usize = 50_000;

/// The GeoIP service: managed state, shared by the poller and the web tier.
pub struct GeoIp {
    dir: PathBuf,
    city: RwLock<Option<Arc<Loaded>>>,
    asn: RwLock<Option<Arc<Loaded>>>,
    overrides: RwLock<Arc<Vec<Override>>>,
    cache: Mutex<HashMap<IpAddr, Option<Geo>>>,
    errors: Mutex<Vec<String>>,
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl GeoIp {
    /// A service reading `dir` (usually `<data dir>/geoip`); loads what is there now.
    pub fn new(dir: PathBuf) -> Self {
        let geo = Self {
            dir,
            city: RwLock::new(None),
            asn: RwLock::new(None),
            overrides: RwLock::new(Arc::new(Vec::new())),
            cache: Mutex::new(HashMap::new()),
            errors: Mutex::new(Vec::new()),
        };
        geo.refresh();
        geo
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reloads a database whose file appeared, changed or vanished. Cheap when nothing
    /// changed (two `stat` calls per kind); returns true when something was swapped.
    pub fn refresh(&self) -> bool {
        let mut errors = Vec::new();
        let city = self.refresh_one(&self.city, &CITY_FILES, &mut errors);
        let asn = self.refresh_one(&self.asn, &ASN_FILES, &mut errors);
        *self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = errors;
        if city || asn {
            self.clear_cache();
        }
        city || asn
    }

    fn refresh_one(
        &self,
        slot: &RwLock<Option<Arc<Loaded>>>,
        names: &[&str],
        errors: &mut Vec<String>,
    ) -> bool {
        let wanted = names.iter().map(|n| self.dir.join(n)).find(|p| p.is_file());
        let current = read_lock(slot).as_ref().map(|l| (l.path.clone(), l.modified));
        match (wanted, current) {
            (None, None) => false,
            (None, Some(_)) => {
                *write_lock(slot) = None;
                tracing::info!(dir = %self.dir.display(), "a GeoIP database was removed");
                true
            }
            (Some(path), current) => {
                let stamp = modified(&path);
                if current.as_ref().is_some_and(|(p, m)| *p == path && *m == stamp) {
                    return false;
                }
                match Reader::open_readfile(&path) {
                    Ok(reader) => {
                        tracing::info!(file = %path.display(), kind = %reader.metadata().database_type, "GeoIP database loaded");
                        *write_lock(slot) =
                            Some(Arc::new(Loaded { path, modified: stamp, reader }));
                        true
                    }
                    Err(e) => {
                        // Keep the one we have (a download in progress, a broken file).
                        errors.push(format!("{}: {e}", path.display()));
                        false
                    }
                }
            }
        }
    }

    /// Replaces the admin's overrides (after a change in the database).
    pub fn set_overrides(&self, overrides: Vec<Override>) {
        *write_lock(&self.overrides) = Arc::new(overrides);
        self.clear_cache();
    }

    pub fn overrides(&self) -> Arc<Vec<Override>> {
        Arc::clone(&read_lock(&self.overrides))
    }

    fn clear_cache(&self) {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// What is installed.
    pub fn status(&self) -> Status {
        let describe = |slot: &RwLock<Option<Arc<Loaded>>>| {
            read_lock(slot).as_ref().map(|l| {
                let meta = l.reader.metadata();
                DbStatus {
                    file: l
                        .path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    database_type: meta.database_type.clone(),
                    built_at: i64::try_from(meta.build_epoch).ok().map(|s| s * 1000),
                }
            })
        };
        Status {
            city: describe(&self.city),
            asn: describe(&self.asn),
            errors: self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            overrides: read_lock(&self.overrides).len(),
        }
    }

    /// Where `ip` is: an override, the local network, or the databases (cached).
    pub fn lookup(&self, ip: IpAddr) -> Lookup {
        let ip = unmap(ip);
        let overrides = self.overrides();
        // The most specific override wins.
        if let Some(o) = overrides
            .iter()
            .filter(|o| o.network.contains(&ip))
            .max_by_key(|o| o.network.prefix_len())
        {
            let geo = (!o.is_local).then(|| Geo {
                country: o.country.clone(),
                city: o.city.clone(),
                lat: o.lat,
                lon: o.lon,
                asn: None,
                isp: (!o.name.is_empty()).then(|| o.name.clone()),
            });
            return Lookup { is_local: o.is_local, geo, source: Source::Override };
        }
        if is_local_ip(ip) {
            return Lookup { is_local: true, geo: None, source: Source::Local };
        }
        let cached =
            self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&ip).cloned();
        let geo = match cached {
            Some(geo) => geo,
            None => {
                let geo = self.read_databases(ip);
                let mut cache =
                    self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
                cache.insert(ip, geo.clone());
                geo
            }
        };
        let source = if geo.is_some() { Source::Database } else { Source::Unknown };
        Lookup { is_local: false, geo, source }
    }

    fn read_databases(&self, ip: IpAddr) -> Option<Geo> {
        let mut geo = Geo::default();
        let city = read_lock(&self.city).clone();
        if let Some(db) = city {
            match db.reader.lookup(ip).and_then(|r| r.decode::<geoip2::City<'_>>()) {
                Ok(Some(c)) => {
                    geo.country = c.country.iso_code.map(str::to_owned);
                    geo.city = c.city.names.english.map(str::to_owned);
                    geo.lat = c.location.latitude;
                    geo.lon = c.location.longitude;
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(%ip, error = %e, "GeoIP city lookup failed"),
            }
        }
        let asn = read_lock(&self.asn).clone();
        if let Some(db) = asn {
            let isp_db = db.reader.metadata().database_type.contains("ISP");
            let found = db.reader.lookup(ip).and_then(|r| {
                if isp_db {
                    r.decode::<geoip2::Isp<'_>>().map(|i| {
                        i.map(|i| {
                            (i.autonomous_system_number, i.isp.or(i.autonomous_system_organization))
                        })
                    })
                } else {
                    r.decode::<geoip2::Asn<'_>>().map(|a| {
                        a.map(|a| (a.autonomous_system_number, a.autonomous_system_organization))
                    })
                }
            });
            match found {
                Ok(Some((number, org))) => {
                    geo.asn = number.map(i64::from);
                    geo.isp = org.map(str::to_owned);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(%ip, error = %e, "GeoIP ASN lookup failed"),
            }
        }
        (geo != Geo::default()).then_some(geo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/geoip");

    /// A geoip directory holding the MaxMind test databases under their edition names.
    pub(crate) fn test_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            Path::new(FIXTURES).join("GeoIP2-City-Test.mmdb"),
            dir.path().join("GeoLite2-City.mmdb"),
        )
        .unwrap();
        std::fs::copy(
            Path::new(FIXTURES).join("GeoLite2-ASN-Test.mmdb"),
            dir.path().join("GeoLite2-ASN.mmdb"),
        )
        .unwrap();
        dir
    }

    #[test]
    fn local_ranges() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.1.9",
            "0.0.0.0",
        ] {
            assert!(is_local_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "81.2.69.142",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "::ffff:81.2.69.142",
        ] {
            assert!(!is_local_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn known_answers_of_the_maxmind_test_databases() {
        let dir = test_dir();
        let geo = GeoIp::new(dir.path().to_owned());
        let cases = [
            ("81.2.69.142", "GB", Some("London")),
            ("216.160.83.56", "US", Some("Milton")),
            ("89.160.20.112", "SE", Some("Linköping")),
            ("175.16.199.0", "CN", Some("Changchun")),
            ("2.125.160.216", "GB", Some("Boxford")),
            ("2001:218::", "JP", None),
            ("::ffff:81.2.69.142", "GB", Some("London")),
        ];
        for (ip, country, city) in cases {
            let l = geo.lookup(ip.parse().unwrap());
            let g = l.geo.unwrap_or_else(|| panic!("{ip}: no answer"));
            assert_eq!((g.country.as_deref(), g.city.as_deref()), (Some(country), city), "{ip}");
            assert_eq!(l.source, Source::Database);
        }
        let london = geo.lookup("81.2.69.142".parse().unwrap()).geo.unwrap();
        assert_eq!(london.coords(), Some((51.5142, -0.0931)));
        let telstra = geo.lookup("1.128.0.0".parse().unwrap()).geo.unwrap();
        assert_eq!((telstra.asn, telstra.isp.as_deref()), (Some(1221), Some("Telstra Pty Ltd")));
        // No record: unknown, not an error. Private: local without a lookup.
        assert_eq!(geo.lookup("1.1.1.1".parse().unwrap()).source, Source::Unknown);
        let lan = geo.lookup("192.168.1.20".parse().unwrap());
        assert!(lan.is_local && lan.geo.is_none());
        // London to Milton, WA is about 7,700 km.
        let milton = geo.lookup("216.160.83.56".parse().unwrap()).geo.unwrap();
        let km = haversine_km(london.coords().unwrap(), milton.coords().unwrap());
        assert!((7_600.0..7_800.0).contains(&km), "{km}");
        let status = geo.status();
        assert_eq!(status.city.unwrap().database_type, "GeoIP2-City");
        assert_eq!(status.asn.unwrap().database_type, "GeoLite2-ASN");
    }

    #[test]
    fn overrides_win_and_the_most_specific_one_applies() {
        let dir = test_dir();
        let geo = GeoIp::new(dir.path().to_owned());
        geo.set_overrides(vec![
            Override {
                id: 1,
                network: parse_network("81.2.69.0/24").unwrap(),
                name: "Office".into(),
                country: Some("FR".into()),
                city: Some("Paris".into()),
                lat: Some(48.85),
                lon: Some(2.35),
                is_local: false,
            },
            Override {
                id: 2,
                network: parse_network("81.2.69.142").unwrap(),
                name: "VPN".into(),
                country: None,
                city: None,
                lat: None,
                lon: None,
                is_local: true,
            },
        ]);
        let vpn = geo.lookup("81.2.69.142".parse().unwrap());
        assert!(vpn.is_local && vpn.geo.is_none() && vpn.source == Source::Override);
        let office = geo.lookup("81.2.69.1".parse().unwrap());
        assert_eq!(office.geo.unwrap().city.as_deref(), Some("Paris"));
        assert_eq!(parse_network("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_network("::ffff:1.2.3.4").unwrap().to_string(), "1.2.3.4/32");
        assert!(parse_network("nope").is_none());
    }

    #[test]
    fn without_databases_it_answers_unknown_and_swaps_files_in_when_they_appear() {
        let dir = tempfile::tempdir().unwrap();
        let geo = GeoIp::new(dir.path().to_owned());
        assert!(!geo.status().has_city());
        assert_eq!(geo.lookup("81.2.69.142".parse().unwrap()).source, Source::Unknown);
        // A broken file is reported and not used.
        std::fs::copy(
            Path::new(FIXTURES).join("GeoIP2-City-Test-Broken-Double-Format.mmdb"),
            dir.path().join("GeoIP2-City.mmdb"),
        )
        .unwrap();
        geo.refresh();
        let broken = geo.lookup("81.2.69.142".parse().unwrap());
        assert!(broken.geo.is_none_or(|g| g.city.is_none()) || geo.status().errors.is_empty());
        std::fs::remove_file(dir.path().join("GeoIP2-City.mmdb")).unwrap();
        // Hot swap: the file appears, the next refresh loads it and drops stale answers.
        std::fs::copy(
            Path::new(FIXTURES).join("GeoLite2-City-Test.mmdb"),
            dir.path().join("GeoLite2-City.mmdb"),
        )
        .unwrap();
        assert!(geo.refresh());
        assert!(!geo.refresh(), "nothing changed since");
        assert_eq!(
            geo.lookup("81.2.69.142".parse().unwrap()).geo.unwrap().city.as_deref(),
            Some("London")
        );
        std::fs::remove_file(dir.path().join("GeoLite2-City.mmdb")).unwrap();
        assert!(geo.refresh());
        assert_eq!(geo.lookup("81.2.69.142".parse().unwrap()).source, Source::Unknown);
    }

    #[test]
    fn haversine_is_symmetric_and_zero_on_the_spot() {
        let a = (51.5142, -0.0931);
        let b = (47.2513, -122.3149);
        assert!((haversine_km(a, b) - haversine_km(b, a)).abs() < 1e-9);
        assert!(haversine_km(a, a) < 1e-9);
        // A quarter of the equator.
        assert!((haversine_km((0.0, 0.0), (0.0, 90.0)) - 10_007.5).abs() < 1.0);
    }
}
