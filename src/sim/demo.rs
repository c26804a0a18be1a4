//! `streamwarden demo`: the app with the simulated servers configured and the story playing.

use std::path::Path;

use super::Cluster;
use crate::db::servers::{self, ServerInput, TOKEN_PURPOSE};
use crate::error::AppResult;
use crate::{App, db};

/// Points the demo's server rows at the running simulated servers (their ports change on
/// every start), creating them on the first run.
pub async fn configure(app: &App, cluster: &Cluster) -> AppResult<()> {
    let now = crate::time::now_ms();
    let inputs: Vec<ServerInput> = cluster
        .endpoints
        .iter()
        .map(|e| ServerInput {
            name: e.name.clone(),
            kind: e.kind,
            url: e.url.clone(),
            token_sealed: app.secrets.seal(TOKEN_PURPOSE, &e.token),
            enabled: true,
            verify_tls: true,
        })
        .collect();
    app.db
        .write(move |conn| {
            let tx = conn.transaction()?;
            let existing = servers::list(&tx)?;
            for input in &inputs {
                match existing.iter().find(|s| s.name == input.name) {
                    Some(row) => {
                        servers::update(&tx, row.id, input, now)?;
                    }
                    None => {
                        servers::insert(&tx, input, now)?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
}

/// MaxMind's test databases (Apache-2.0 or MIT, see `tests/fixtures/geoip`): they know the
/// demo's addresses (London, Milton US, Changchun, Linköping, Boxford), so the demo
/// geolocates without a real database.
const DEMO_GEOIP: [(&str, &[u8]); 2] = [
    ("GeoLite2-City.mmdb", include_bytes!("../../tests/fixtures/geoip/GeoLite2-City-Test.mmdb")),
    ("GeoLite2-ASN.mmdb", include_bytes!("../../tests/fixtures/geoip/GeoLite2-ASN-Test.mmdb")),
];

/// The presets the demo story trips: Mallory's travels and simultaneous places, Dave's
/// household of three devices (which the unique-IP concurrent rule lets through).
const DEMO_PRESETS: [&str; 4] =
    ["impossible_travel", "simultaneous_locations", "concurrent_streams", "device_velocity"];

/// Puts the test GeoIP databases in `<data dir>/geoip` unless a database is already there
/// (a real one is never overwritten).
pub fn install_geoip(data_dir: &Path) -> std::io::Result<()> {
    let dir = data_dir.join("geoip");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in DEMO_GEOIP {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(path, bytes)?;
        }
    }
    Ok(())
}

/// On the first run (no rule yet), adds the presets the story trips, so violations show up
/// within a minute or two.
pub async fn add_rules(app: &App) -> AppResult<()> {
    if !app.db.read(db::rules::list).await?.is_empty() {
        return Ok(());
    }
    for key in DEMO_PRESETS {
        crate::rules::admin::create_preset(&app.db, key).await?;
    }
    Ok(())
}
