//! Health: `/healthz` for Docker and proxies, `/api/v1/health` for scripts, and the
//! `streamwarden healthcheck` probe that Docker's HEALTHCHECK runs inside the container.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::Serialize;

use crate::config::Config;
use crate::db::Db;

/// Liveness: answers as long as the server serves requests. No database, no writes.
#[rocket::get("/healthz")]
pub fn healthz() -> &'static str {
    "ok\n"
}

#[derive(Serialize)]
pub struct Health {
    /// `ok`, or `degraded` when the database does not answer.
    pub status: &'static str,
    pub version: &'static str,
}

/// Readiness for scripts: also checks that the database answers a read.
#[rocket::get("/api/v1/health")]
pub async fn api_health(db: &State<Db>) -> (Status, Json<Health>) {
    let version = env!("CARGO_PKG_VERSION");
    match db.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).await {
        Ok(_) => (Status::Ok, Json(Health { status: "ok", version })),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database does not answer");
            (Status::ServiceUnavailable, Json(Health { status: "degraded", version }))
        }
    }
}

/// Asks the local server for `/healthz`; `Ok` when it answers 200 within two seconds.
pub fn probe(config: &Config) -> Result<(), String> {
    let host = match config.address {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    let addr = SocketAddr::new(host, config.port);
    let timeout = Duration::from_secs(2);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {}/healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: streamwarden-healthcheck\r\n\r\n",
        config.base_path
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("{addr}: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| format!("{addr}: {e}"))?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    let status_line = status_line.lines().next().unwrap_or_default();
    if status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!("{addr} answered {status_line:?}"))
    }
}
