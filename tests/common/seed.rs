//! Violations written straight through the database functions the rules engine uses, for
//! tests that need several users, rules, statuses and days without simulating each one.
//! (`tests/violations_pages.rs` also raises one through the real engine.)

use serde_json::json;
use streamwarden::db::rules::{self, NewViolation, Status};
use streamwarden::db::{media_users, servers, trust};
use streamwarden::media::ServerKind;
use streamwarden::media::model::UserRef;
use streamwarden::rules::eval::{Actual, ConditionEvidence, Related, Verdict};
use streamwarden::rules::model::{Action, Field, Op, RuleDef};
use streamwarden::rules::trust::{Change, Reason};

use super::TestEnv;

pub const LONDON: (f64, f64) = (51.5142, -0.0931);
pub const MILTON: (f64, f64) = (47.2513, -122.3149);

/// Two servers, a user on each, two rules (disabled: only these tests raise them).
#[derive(Debug, Clone, Copy)]
pub struct World {
    pub plex: i64,
    pub jellyfin: i64,
    /// On Plex.
    pub alice: i64,
    /// On Jellyfin.
    pub bob: i64,
    /// "Impossible travel", high.
    pub travel: i64,
    /// "Two homes", low.
    pub streams: i64,
}

pub async fn world(env: &TestEnv) -> World {
    env.db()
        .write(|c| {
            let now = 1_800_000_000_000;
            let server = |name: &str, kind| {
                let input = servers::ServerInput {
                    name: name.to_owned(),
                    kind,
                    url: "http://127.0.0.1:9".to_owned(),
                    token_sealed: String::new(),
                    enabled: false,
                    verify_tls: true,
                };
                servers::insert(c, &input, now).map(|s| s.id)
            };
            let (plex, jellyfin) = (
                server("Lab Plex", ServerKind::Plex)?,
                server("Lab Jellyfin", ServerKind::Jellyfin)?,
            );
            let user = |server_id, name: &str| {
                let who =
                    UserRef { external_id: name.to_owned(), name: name.to_owned(), thumb: None };
                media_users::upsert_from_session(c, server_id, &who, now)
            };
            let (alice, bob) = (user(plex, "alice")?, user(jellyfin, "bob")?);
            let rule = |name: &str, severity: &str, field: &str, value: serde_json::Value| {
                let def: RuleDef = serde_json::from_value(json!({
                    "name": name, "severity": severity, "enabled": false,
                    "conditions": {"groups": [[{"field": field, "op": "gt", "value": value}]]},
                    "actions": [{"type": "adjust_trust", "amount": -15}]
                }))
                .expect("rule JSON");
                rules::insert(c, &def.compile()?, now)
            };
            let travel = rule("Impossible travel", "high", "travel_speed_kmh", json!(800))?;
            let streams = rule("Two homes", "low", "concurrent_streams", json!(1))?;
            Ok(World { plex, jellyfin, alice, bob, travel, streams })
        })
        .await
        .expect("seeded world")
}

fn related(
    play_id: i64,
    role: &str,
    place: &str,
    at: Option<(f64, f64)>,
    km: Option<f64>,
) -> Related {
    Related {
        play_id,
        role: role.to_owned(),
        ip: Some(if at.is_some() {
            format!("203.0.113.{play_id}")
        } else {
            "192.168.1.20".to_owned()
        }),
        place: place.to_owned(),
        lat: at.map(|c| c.0),
        lon: at.map(|c| c.1),
        device: "Living Room TV".to_owned(),
        started_at: 1_800_000_000_000,
        stopped_at: None,
        distance_km: km,
    }
}

/// London, then Milton (US) half an hour later: 15,404 km/h.
pub fn travel_verdict() -> Verdict {
    Verdict {
        matched: true,
        groups: vec![vec![ConditionEvidence {
            field: Field::TravelSpeedKmh,
            op: Op::Gt,
            threshold: json!(800),
            actual: Actual::Number(15_404.2),
            matched: true,
            related: vec![
                related(101, "previous", "London, GB", Some(LONDON), None),
                related(102, "current", "Milton, US", Some(MILTON), Some(7_702.1)),
            ],
            note: Some("7702.1 km in 30 min".to_owned()),
        }]],
    }
}

/// Two streams, both at home: nothing to draw.
pub fn local_verdict() -> Verdict {
    Verdict {
        matched: true,
        groups: vec![vec![ConditionEvidence {
            field: Field::ConcurrentStreams,
            op: Op::Gt,
            threshold: json!(1),
            actual: Actual::Number(2.0),
            matched: true,
            related: vec![
                related(201, "current", "local network", None, None),
                related(202, "other", "local network", None, None),
            ],
            note: None,
        }]],
    }
}

/// A violation of `rule` by `user` at `at` (Unix ms), with its `verdict`; `trust` points
/// taken as the rule's action would (0: none).
pub async fn violation(
    env: &TestEnv,
    rule: i64,
    user: i64,
    server: i64,
    at: i64,
    verdict: Verdict,
    trust: i64,
) -> i64 {
    env.db()
        .write(move |c| {
            let rule = rules::get(c, rule)?.expect("rule exists");
            let id = rules::insert_violation(
                c,
                &NewViolation {
                    rule: &rule,
                    user_id: user,
                    play_id: None,
                    server_id: Some(server),
                    dedup_key: format!("seed:{at}"),
                    at,
                    summary: format!("{}: {}", rule.name, verdict.summary()),
                    verdict: &verdict,
                },
            )?
            .expect("a new violation");
            if trust != 0 {
                let (delta, score) = trust::apply(
                    c,
                    user,
                    Change::Adjust(trust),
                    Reason::Rule,
                    Some(id),
                    None,
                    &rule.name,
                    at,
                )?;
                let action = Action::AdjustTrust { amount: i32::try_from(trust).unwrap() };
                rules::record_action(
                    c,
                    id,
                    &action,
                    rules::Outcome::Done,
                    &format!("trust {delta:+}, now {score}"),
                    at,
                )?;
            }
            Ok(id)
        })
        .await
        .expect("seeded violation")
}

/// Sets a violation's status directly (as if resolved long ago, before these tests).
pub async fn set_status(env: &TestEnv, id: i64, status: Status) {
    env.db()
        .write(move |c| rules::set_status(c, id, status, "user:earlier", None, 1_800_000_000_000))
        .await
        .expect("status set");
}

/// A user's trust score.
pub async fn trust_of(env: &TestEnv, user: i64) -> i64 {
    env.db()
        .read(move |c| Ok(media_users::get(c, user)?.expect("user").trust_score))
        .await
        .expect("user readable")
}
