//! What a request tells us about its sender: the client address (believing forwarded headers
//! only from trusted proxies), its origin, and its CSRF proof.

use std::net::IpAddr;

use ipnet::IpNet;
use rocket::request::Request;

use crate::config::Config;
use crate::crypto::constant_time_eq;

/// The header htmx sends the token in (`hx-headers` on `<body>`).
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The client's address: the socket peer, or, when the peer is a trusted proxy, the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(req: &Request<'_>) -> Option<IpAddr> {
    let peer = req.remote()?.ip();
    let trusted = req.rocket().state::<Config>().map_or(&[][..], |c| &c.trusted_proxies[..]);
    let forwarded: Vec<&str> = req.headers().get("X-Forwarded-For").collect();
    Some(walk_forwarded(peer, trusted, &forwarded, req.headers().get_one("X-Real-IP")))
}

/// The right-to-left walk of `X-Forwarded-For`, pure for tests. Every header line counts, in
/// order; an entry that does not parse stops the walk at the hop that sent it.
pub fn walk_forwarded(
    peer: IpAddr,
    trusted: &[IpNet],
    forwarded: &[&str],
    real_ip: Option<&str>,
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> =
        forwarded.iter().flat_map(|line| line.split(',')).map(str::trim).collect();
    if hops.is_empty() {
        // Some proxies only send X-Real-IP.
        return real_ip.and_then(parse_hop).unwrap_or(peer);
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else { return client };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[::1]:80` or `::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    hop.strip_prefix('[').and_then(|h| h.split(']').next()).and_then(|h| h.parse().ok())
}

/// `IPv4` addresses mapped into `IPv6` (dual-stack sockets) compare as `IPv4`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// True when the peer is one of the trusted proxies.
pub fn from_trusted_proxy(req: &Request<'_>) -> bool {
    let Some(peer) = req.remote().map(|a| canonical(a.ip())) else { return false };
    req.rocket()
        .state::<Config>()
        .is_some_and(|c| c.trusted_proxies.iter().any(|n| n.contains(&peer)))
}

/// `scheme://host[:port]` this request was addressed to, as the browser saw it: the public
/// URL when configured, else the `Host` header (and the forwarded scheme and host from a
/// trusted proxy).
pub fn own_origin(req: &Request<'_>) -> Option<String> {
    let config = req.rocket().state::<Config>()?;
    if let Some(url) = &config.public_url {
        return Some(url.origin().ascii_serialization());
    }
    let trusted = from_trusted_proxy(req);
    let header =
        |name| req.headers().get_one(name).map(|v| v.split(',').next().unwrap_or(v).trim());
    let host = trusted.then(|| header("X-Forwarded-Host")).flatten().or_else(|| header("Host"))?;
    let scheme = trusted.then(|| header("X-Forwarded-Proto")).flatten().unwrap_or("http");
    let scheme = if scheme.eq_ignore_ascii_case("https") { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// `(scheme, host, port)` of an origin or URL; `https://a.example:443` equals `https://a.example`.
fn parse_origin(origin: &str) -> Option<(String, String, u16)> {
    let url = reqwest::Url::parse(origin).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some((url.scheme().to_owned(), host, url.port_or_known_default()?))
}

/// Whether the browser's `Origin` (or, without one, `Referer`) is ours. A request without
/// either passes: non-browser clients send neither, and the CSRF token still has to match.
///
/// Ours is the public URL's origin, or the host the request was addressed to. The scheme a
/// proxy terminated is unknown without a trusted proxy, so against the `Host` header only
/// host and port are compared (a port-less `Host` means the scheme's default port). That
/// works on `http://192.168.1.5:8484` and behind a TLS proxy, and refuses another site or
/// another app on the same box.
pub fn origin_is_ours(req: &Request<'_>) -> bool {
    if req.headers().get_one("Sec-Fetch-Site") == Some("cross-site") {
        return false;
    }
    let claimed = match (req.headers().get_one("Origin"), req.headers().get_one("Referer")) {
        (Some(origin), _) => origin,
        (None, Some(referer)) => referer,
        (None, None) => return true,
    };
    let Some((scheme, host, port)) = parse_origin(claimed) else { return false };
    if let Some(ours) = own_origin(req).and_then(|o| parse_origin(&o))
        && ours == (scheme.clone(), host.clone(), port)
    {
        return true;
    }
    let addressed = if from_trusted_proxy(req) {
        req.headers().get_one("X-Forwarded-Host").or_else(|| req.headers().get_one("Host"))
    } else {
        req.headers().get_one("Host")
    };
    let Some(addressed) = addressed.map(|h| h.split(',').next().unwrap_or(h).trim()) else {
        return false;
    };
    let Some((_, a_host, a_port)) = parse_origin(&format!("{scheme}://{addressed}")) else {
        return false;
    };
    a_host == host && a_port == port
}

/// Checks the CSRF proof of a state-changing request: our origin, and `presented` equal to
/// the token of the session (or, without a session, of the anonymous CSRF cookie).
pub async fn check_csrf(req: &Request<'_>, presented: Option<&str>) -> Result<(), &'static str> {
    const EXPIRED: &str =
        "This form has expired or did not come from Streamwarden. Reload the page and try again.";
    if !origin_is_ours(req) {
        return Err("This request came from another site and was refused.");
    }
    let Some(presented) = presented.filter(|p| !p.is_empty()) else { return Err(EXPIRED) };
    let expected = match super::session::resolve(req).await {
        Some(session) => session.csrf.clone(),
        None => match super::session::anonymous_csrf_cookie(req) {
            Some(token) => token,
            None => return Err(EXPIRED),
        },
    };
    if constant_time_eq(presented.as_bytes(), expected.as_bytes()) { Ok(()) } else { Err(EXPIRED) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_is_walked_right_to_left_from_trusted_peers_only() {
        let trusted = nets(&["10.0.0.0/24", "172.17.0.1/32"]);
        let cases: &[(&str, &[&str], Option<&str>, &str)] = &[
            // An untrusted peer's headers are ignored.
            ("192.168.1.50", &["1.2.3.4"], None, "192.168.1.50"),
            // A trusted proxy: the client it saw.
            ("10.0.0.2", &["203.0.113.9"], None, "203.0.113.9"),
            // A spoofed first entry is skipped: the right-most untrusted hop wins.
            ("10.0.0.2", &["6.6.6.6, 203.0.113.9"], None, "203.0.113.9"),
            // Chained trusted proxies are walked through.
            ("172.17.0.1", &["203.0.113.9, 10.0.0.7"], None, "203.0.113.9"),
            // Several header lines count in order.
            ("10.0.0.2", &["6.6.6.6", "203.0.113.9"], None, "203.0.113.9"),
            // Ports and brackets.
            ("10.0.0.2", &["[2001:db8::1]:4711"], None, "2001:db8::1"),
            ("10.0.0.2", &["198.51.100.7:5000"], None, "198.51.100.7"),
            // Garbage stops the walk at the hop that wrote it.
            ("10.0.0.2", &["203.0.113.9, garbage"], None, "10.0.0.2"),
            // All hops trusted: the left-most.
            ("10.0.0.2", &["10.0.0.9"], None, "10.0.0.9"),
            // X-Real-IP only when there is no X-Forwarded-For.
            ("10.0.0.2", &[], Some("203.0.113.5"), "203.0.113.5"),
            ("192.168.1.50", &[], Some("203.0.113.5"), "192.168.1.50"),
            // IPv4-mapped IPv6 peers match IPv4 networks.
            ("::ffff:10.0.0.2", &["203.0.113.9"], None, "203.0.113.9"),
        ];
        for (peer, xff, real, want) in cases {
            let got = walk_forwarded(ip(peer), &trusted, xff, *real);
            assert_eq!(got, ip(want), "peer {peer}, XFF {xff:?}");
        }
        assert_eq!(walk_forwarded(ip("10.0.0.2"), &[], &["1.2.3.4"], None), ip("10.0.0.2"));
    }
}
