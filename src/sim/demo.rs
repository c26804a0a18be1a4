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

/// Days of generated history on the first run.
const HISTORY_DAYS: i64 = 120;

/// A small deterministic generator: the same history on every first run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// On the first run (no finished play yet), writes a few months of history for the story's
/// viewers, so that the statistics, the map and the user pages are full at once. Evenings
/// are busier than mornings and weekends than weekdays; Mallory's login turns up in three
/// countries. Plays are written as finished history (the rules do not run on them).
pub async fn seed_history(app: &App, cluster: &Cluster) -> AppResult<usize> {
    use crate::db::media_users;
    use crate::media::model::UserRef;

    if app.db.read(db::demo_history::has_history).await? {
        return Ok(0);
    }
    let (cast, items) = super::scenario::cast();
    let world = cluster
        .world
        .lock()
        .map(|w| w.servers.iter().map(|s| (s.name.clone(), s.users.clone())).collect::<Vec<_>>());
    let servers = world.unwrap_or_default();
    let geo: Vec<_> = cast.iter().map(|m| m.ip.parse().map(|ip| app.geo.lookup(ip)).ok()).collect();
    let now = crate::time::now_ms();
    app.db
        .write(move |conn| {
            let tx = conn.transaction()?;
            let rows = servers::list(&tx)?;
            let mut dice = Dice(2024);
            let mut written = 0;
            let mut stmt = tx.prepare(db::demo_history::INSERT)?;
            for (m, lookup) in cast.iter().zip(&geo) {
                let Some((server_name, users)) = servers.get(m.server) else { continue };
                let Some(row) = rows.iter().find(|r| &r.name == server_name) else { continue };
                let Some(user) = users.iter().find(|u| u.name == m.user) else { continue };
                let who =
                    UserRef { external_id: user.id.clone(), name: user.name.clone(), thumb: None };
                let user_id = media_users::upsert_from_session(
                    &tx,
                    row.id,
                    &who,
                    now - HISTORY_DAYS * 86_400_000,
                )?;
                let g = lookup.as_ref().and_then(|l| l.geo.clone()).unwrap_or_default();
                for day in 1..=HISTORY_DAYS {
                    let day_start = now - day * 86_400_000;
                    // 0 to 2 plays a day, more at weekends; Mallory's friends abroad now and then.
                    let weekend = (day_start / 86_400_000 + 4).rem_euclid(7) >= 5;
                    let mut plays = dice.roll(if weekend { 4 } else { 3 });
                    if m.user == "mallory" && m.device.id != "mal-laptop" {
                        plays = u64::from(dice.roll(6) == 0);
                    }
                    for _ in 0..plays {
                        let item =
                            &items[usize::try_from(dice.roll(items.len() as u64)).unwrap_or(0)];
                        // Evenings mostly: 17:00 to 23:59 UTC, sometimes the afternoon.
                        let hour =
                            if dice.roll(4) == 0 { 12 + dice.roll(5) } else { 17 + dice.roll(7) };
                        let start = day_start - day_start.rem_euclid(86_400_000)
                            + i64::try_from(hour * 3_600_000 + dice.roll(3_600_000)).unwrap_or(0);
                        let length = item.duration_ms.max(60_000);
                        let watched = dice.roll(3) > 0;
                        let play_ms = if watched {
                            length
                        } else {
                            length * i64::try_from(20 + dice.roll(60)).unwrap_or(50) / 100
                        };
                        let decision = match dice.roll(10) {
                            0..=5 => "direct_play",
                            6 | 7 => "direct_stream",
                            _ => "transcode",
                        };
                        let stream_height = if decision == "transcode" { 720 } else { item.height };
                        let resolution = |h: i64| match h {
                            0 => None,
                            h if h >= 2000 => Some("4k".to_owned()),
                            h => Some(h.to_string()),
                        };
                        let (show, show_id) = item
                            .parent
                            .clone()
                            .map_or((None, None), |(id, name)| (Some(name), Some(id)));
                        stmt.execute(rusqlite::params![
                            row.id,
                            user_id,
                            format!("seed-{written}"),
                            item.id,
                            show_id,
                            item.kind.as_str(),
                            item.title,
                            show,
                            item.season,
                            item.episode,
                            item.year,
                            match item.kind {
                                crate::media::model::MediaType::Movie => "Movies",
                                crate::media::model::MediaType::Episode => "TV Shows",
                                _ => "Music",
                            },
                            item.duration_ms,
                            m.device.id,
                            m.device.name,
                            m.device.product,
                            m.device.platform,
                            m.ip,
                            m.local,
                            g.country,
                            g.city,
                            g.lat,
                            g.lon,
                            g.asn,
                            g.isp,
                            decision,
                            resolution(item.height),
                            resolution(stream_height),
                            if decision == "transcode" { 4000 } else { item.bitrate_kbps },
                            start,
                            start + play_ms,
                            play_ms,
                            play_ms * 100 / length >= 85,
                        ])?;
                        written += 1;
                    }
                }
            }
            drop(stmt);
            tx.commit()?;
            Ok(written)
        })
        .await
}
