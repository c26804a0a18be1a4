//! Figures for the README: rule evaluations per second, on one thread, with 20 rules over a
//! user with 1,000 plays of history (the target: at least 50,000 per second).
//!
//!     cargo bench --bench rules
//!
//! The engine builds one [`Context`] per session and runs every rule on it, so the main
//! figure shares a context across the 20 rules; the second builds a fresh context for each
//! rule, the worst case (nothing cached between rules).

#![expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "counters of a benchmark are small numbers"
)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use serde_json::json;
use streamwarden::geo::Geo;
use streamwarden::media::model::{Decision, MediaType};
use streamwarden::rules::eval::{Context, PlayFacts, UserFacts, evaluate};
use streamwarden::rules::model::{ConditionsDef, Rule, RuleDef, Severity};
use streamwarden::rules::presets;

const HOUR_MS: i64 = 3_600_000;
const NOW: i64 = 1_790_000_000_000;

/// Places the user plays from: home most of the time, some travel.
const PLACES: [(&str, &str, f64, f64, i64, &str); 5] = [
    ("London", "GB", 51.5142, -0.0931, 2856, "Andrews & Arnold"),
    ("Milton", "US", 47.2513, -122.3149, 209, "Comcast"),
    ("Lyon", "FR", 45.764, 4.8357, 3215, "Orange"),
    ("Berlin", "DE", 52.52, 13.405, 3320, "Telekom"),
    ("Sydney", "AU", -33.8688, 151.2093, 1221, "Telstra"),
];

fn play(i: i64, at: i64) -> PlayFacts {
    // Two thirds from home, the rest spread over the other places and a few devices.
    let place = if i % 3 == 0 { (i as usize / 3) % PLACES.len() } else { 0 };
    let (city, country, lat, lon, asn, isp) = PLACES[place];
    PlayFacts {
        play_id: i + 1,
        user_id: 1,
        server_id: 1 + i % 2,
        server_name: "Plex".into(),
        title: format!("Episode {i}"),
        device_id: format!("device-{}", i % 7),
        player: Some(format!("Player {}", i % 7)),
        product: Some("Plex Web".into()),
        platform: Some(if i % 2 == 0 { "Chrome" } else { "Android" }.into()),
        ip: Some(IpAddr::V4(Ipv4Addr::new(81, 2, (place * 10) as u8, (i % 4) as u8 + 1))),
        is_local: false,
        in_household: false,
        geo: Some(Geo {
            country: Some(country.into()),
            city: Some(city.into()),
            lat: Some(lat),
            lon: Some(lon),
            asn: Some(asn),
            isp: Some(isp.into()),
        }),
        media_type: Some(MediaType::Episode),
        library: Some("TV Shows".into()),
        library_id: Some("2".into()),
        source_resolution: Some("1080p".into()),
        stream_resolution: Some(if i % 5 == 0 { "720p" } else { "1080p" }.into()),
        decision: Some(if i % 5 == 0 { Decision::Transcode } else { Decision::DirectPlay }),
        source_bitrate_kbps: Some(8_000),
        started_at: at,
        stopped_at: Some(at + HOUR_MS / 2),
        paused: false,
        paused_ms: 60_000,
        paused_since: None,
    }
}

fn custom(name: &str, groups: serde_json::Value) -> Rule {
    RuleDef {
        name: name.into(),
        description: String::new(),
        severity: Severity::Warning,
        enabled: true,
        server_ids: Vec::new(),
        exempt_user_ids: Vec::new(),
        conditions: serde_json::from_value::<ConditionsDef>(json!({ "groups": groups })).unwrap(),
        actions: vec![json!({"type": "log_only"})],
    }
    .compile()
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The ten presets and ten rules of our own over the other fields.
fn twenty_rules() -> Vec<Rule> {
    let mut rules: Vec<Rule> =
        presets::all("GB").into_iter().map(|p| p.def.compile().expect("preset")).collect();
    rules.extend([
        custom("4K transcodes", json!([[{"field": "source_resolution", "op": "gte", "value": "4K"}], [{"field": "is_transcoding", "op": "eq", "value": true}]])),
        custom("Downgrades", json!([[{"field": "is_transcode_downgrade", "op": "eq", "value": true}]])),
        custom("Night owls", json!([[{"field": "hour_of_day", "op": "in", "value": [1, 2, 3, 4]}]])),
        custom("Weekend", json!([[{"field": "day_of_week", "op": "in", "value": ["sat", "sun"]}]])),
        custom("Low trust", json!([[{"field": "trust_score", "op": "lt", "value": 30}]])),
        custom("New account", json!([[{"field": "account_age_days", "op": "lt", "value": 7}]])),
        custom("Big files", json!([[{"field": "source_bitrate_mbps", "op": "gt", "value": 40}]])),
        custom("Country mix", json!([[{"field": "unique_countries_in_window", "op": "gte", "value": 3, "params": {"window_hours": 72}}]])),
        custom("Networks", json!([[{"field": "ip_in_cidr", "op": "not_in", "value": ["81.2.0.0/16"]}], [{"field": "client", "op": "contains", "value": "Web"}]])),
        custom("Long pauses", json!([[{"field": "total_pause_minutes", "op": "gt", "value": 120}, {"field": "current_pause_minutes", "op": "gt", "value": 30}]])),
    ]);
    assert_eq!(rules.len(), 20);
    rules
}

fn main() {
    let rules = twenty_rules();
    // 1,000 finished plays over the last 60 days, newest first.
    let history: Vec<PlayFacts> =
        (0..1000).map(|i| play(i, NOW - (i + 1) * (60 * 24 * HOUR_MS / 1000))).collect();
    let mut session = play(1000, NOW - 10 * 60_000);
    session.stopped_at = None;
    session.geo.clone_from(&history[2].geo); // away from home: geographic rules do their work
    let mut other = play(1001, NOW - 20 * 60_000);
    other.stopped_at = None;
    let live = vec![other];
    let user = UserFacts {
        id: 1,
        name: "mallory".into(),
        trust_score: 80,
        first_seen_at: NOW - 400 * 24 * HOUR_MS,
        last_active_at: Some(NOW - HOUR_MS),
    };

    let run = |shared: bool, rounds: usize| -> (f64, usize) {
        let start = Instant::now();
        let mut matched = 0;
        for _ in 0..rounds {
            if shared {
                let ctx = Context::new(NOW, 21, 4, Some(&session), &user, &live, &history);
                for rule in &rules {
                    matched += usize::from(black_box(evaluate(rule, &ctx)).matched);
                }
            } else {
                for rule in &rules {
                    let ctx = Context::new(NOW, 21, 4, Some(&session), &user, &live, &history);
                    matched += usize::from(black_box(evaluate(rule, &ctx)).matched);
                }
            }
        }
        let evaluations = (rounds * rules.len()) as f64;
        (evaluations / start.elapsed().as_secs_f64(), matched / rounds)
    };

    run(true, 200); // warm up
    println!("rules: 20 rules, a user with {} plays of history, one thread", history.len());
    for (label, shared) in [("one context per session", true), ("a fresh context per rule", false)]
    {
        let mut rates: Vec<f64> = (0..7).map(|_| run(shared, 2_000).0).collect();
        rates.sort_by(f64::total_cmp);
        let (_, matched) = run(shared, 1);
        println!(
            "  {label}: median {:.0} evaluations/s (min {:.0}, max {:.0}); {matched} of 20 rules match",
            rates[3], rates[0], rates[6]
        );
    }
}
