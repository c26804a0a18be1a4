//! What the rest of the application knows about places and networks, without a database:
//! a location, distances, which addresses are local, networks as typed, and the admin's
//! overrides. Pure, so the database layer and the rules evaluator can use it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Where an address is, as far as the databases know.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    pub city: Option<String>,
    /// Degrees.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Autonomous system number of the network.
    pub asn: Option<i64>,
    /// The network's operator (ISP or organization).
    pub isp: Option<String>,
}

impl Geo {
    /// Latitude and longitude, when both are known.
    pub fn coords(&self) -> Option<(f64, f64)> {
        Some((self.lat?, self.lon?))
    }

    /// "Milton, US", "US", or "".
    pub fn place(&self) -> String {
        match (&self.city, &self.country) {
            (Some(city), Some(country)) => format!("{city}, {country}"),
            (None, Some(country)) => country.clone(),
            (Some(city), None) => city.clone(),
            (None, None) => String::new(),
        }
    }
}

/// Mean Earth radius used by every peer (km).
const EARTH_RADIUS_KM: f64 = 6371.0;

/// `x` to one decimal: distances and map coordinates are shown and stored that way.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Great-circle distance between two points in degrees, in kilometres.
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Addresses that never leave a home or carrier network: private (RFC 1918), loopback,
/// link-local, carrier-grade NAT (100.64/10), unique local IPv6 (`fc00::/7`), unspecified.
/// IPv4-mapped IPv6 is judged as the IPv4 address it carries.
pub fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_local_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_local_v4(v4),
            None => is_local_v6(v6),
        },
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || (a == 100 && (64..128).contains(&b))
}

fn is_local_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// IPv4-mapped IPv6 becomes the IPv4 address it carries.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Parses `1.2.3.4`, `1.2.3.0/24`, `2001:db8::/32` into a network (a bare address is a /32
/// or /128). The host bits are cleared.
pub fn parse_network(raw: &str) -> Option<IpNet> {
    let raw = raw.trim();
    if let Ok(net) = raw.parse::<IpNet>() {
        return Some(net.trunc());
    }
    raw.parse::<IpAddr>().ok().map(|ip| IpNet::from(unmap(ip)))
}

/// An admin's statement about a network, which wins over the databases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub id: i64,
    pub network: IpNet,
    /// What the admin calls it ("Office VPN").
    pub name: String,
    pub country: Option<String>,
    pub city: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Treat the network as the local network (no geo, exempt like a LAN).
    pub is_local: bool,
}
