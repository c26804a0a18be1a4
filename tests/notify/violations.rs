//! A rule's violation on its way out: the impossible-travel story of `tests/rules.rs`, with
//! the preset's rule told to notify, reaches ntfy and email within a second of detection.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use streamwarden::notify::{Event, EventKind, Notifier};
use streamwarden::sim::world::device;

use crate::capture::Capture;
use crate::common::TestEnv;
use crate::common::sim::{PLEX, Sim, film, three_servers};
use crate::harness::object;
use crate::smtp::{Mode, SmtpSink};

const LONDON: &str = "81.2.69.142";
const MILTON: &str = "216.160.83.56";

async fn violation_count(env: &TestEnv) -> i64 {
    env.db()
        .read(|c| Ok(c.query_row("SELECT count(*) FROM violations", [], |r| r.get(0))?))
        .await
        .unwrap()
}

/// The impossible-travel preset with `extra` actions.
async fn travel_rule(env: &TestEnv, extra: Value) {
    let presets = env.get("/api/v1/rule-presets").await.json();
    let mut rule = presets
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "impossible_travel")
        .unwrap()["rule"]
        .clone();
    rule["actions"].as_array_mut().unwrap().extend(extra.as_array().unwrap().iter().cloned());
    let reply = env.post_json("/api/v1/rules", &rule).await;
    assert_eq!(reply.status, rocket::http::Status::Created, "{}", reply.body);
}

/// Mallory plays in London, stops, and twenty minutes later is about to play in Milton.
async fn london_then_milton(env: &TestEnv) -> Sim {
    let mut sim = Sim::start(env, three_servers()).await;
    let laptop = device("mal-laptop", "ThinkPad", "Plex Web", "Firefox");
    let tv = device("mal-friend-tv", "Samsung TV", "Plex for Samsung", "Tizen");
    let london =
        sim.with(|w| w.start(PLEX, "mallory", &laptop, LONDON.parse().unwrap(), false, &film()));
    sim.run(env, 60, 5).await;
    sim.with(|w| w.stop(&london));
    sim.run(env, 20 * 60, 60).await;
    env.rules_settled().await;
    assert_eq!(violation_count(env).await, 0);
    sim.with(|w| w.start(PLEX, "mallory", &tv, MILTON.parse().unwrap(), false, &film()));
    sim
}

#[rocket::async_test]
async fn a_rule_taking_trust_below_the_threshold_sends_trust_low() {
    let ntfy = Capture::start().await;
    let env = TestEnv::with_geoip().await;
    let notifier = env.client.rocket().state::<Notifier>().unwrap().clone();
    notifier
        .create(
            object(json!({"kind": "ntfy", "name": "trust", "events": ["trust_low"], "config": {"server_url": ntfy.url(), "topic": "trust"}})),
            crate::harness::actor(),
        )
        .await
        .unwrap();
    // The preset takes 20 points: 100 → 80, below a threshold of 90.
    let saved = env
        .post_form(
            "/rules/settings",
            &[
                ("household_learn_plays", "10"),
                ("points_per_day", "1"),
                ("after_days", "7"),
                ("trust_low_below", "90"),
            ],
        )
        .await;
    assert_eq!(saved.status, rocket::http::Status::SeeOther, "{}", saved.body);
    travel_rule(&env, json!([])).await;
    let mut sim = london_then_milton(&env).await;
    sim.run(&env, 60, 5).await;
    env.rules_settled().await;
    let push = ntfy.wait_for(1, Duration::from_secs(10)).await[0].json();
    assert_eq!(push["topic"], "trust");
    assert!(push["title"].as_str().unwrap().contains("mallory"), "{push}");
    assert!(push["message"].as_str().unwrap().contains("100 → 80"), "{push}");
    // Later polls and sweeps send nothing more.
    sim.run(&env, 120, 5).await;
    env.rules_settled().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ntfy.requests().len(), 1);
}

#[rocket::async_test]
async fn an_impossible_travel_reaches_ntfy_and_email_within_a_second_of_detection() {
    let sink = SmtpSink::start(Mode::Starttls, Some(("u", "p"))).await;
    let ntfy = Capture::start().await;
    let env = TestEnv::with_geoip().await;
    let notifier = env.client.rocket().state::<Notifier>().unwrap().clone();
    for input in [
        json!({"kind": "ntfy", "name": "phone", "events": ["violation"], "config": {"server_url": ntfy.url(), "topic": "sharing"}}),
        json!({"kind": "email", "name": "mail", "events": ["violation"], "config": {
            "host": "127.0.0.1", "port": sink.port, "security": "starttls", "username": "u", "password": "p",
            "from": "sw@example.com", "to": "me@example.com", "ca_cert": sink.ca_pem()}}),
    ] {
        notifier.create(object(input), crate::harness::actor()).await.unwrap();
    }
    // Warm up: the first TLS handshake loads the system's certificates.
    notifier.publish(Event::new(EventKind::Violation, "warm-up")).await.unwrap();
    ntfy.wait_for(1, Duration::from_secs(10)).await;
    sink.wait_for(1, Duration::from_secs(10)).await;

    // The impossible-travel preset, told to notify every channel that takes violations.
    travel_rule(&env, json!([{"type": "notify", "channels": [], "cooldown_minutes": 30}])).await;
    let mut sim = london_then_milton(&env).await;

    // Milton, twenty minutes later: poll until the violation is stored, then time the
    // deliveries from that moment.
    let mut detected = None;
    for _ in 0..24 {
        sim.tick(&env, 5).await;
        let deadline = Instant::now() + Duration::from_millis(200);
        while detected.is_none() && Instant::now() < deadline {
            if violation_count(&env).await > 0 {
                detected = Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if detected.is_some() {
            break;
        }
    }
    let detected = detected.expect("the impossible travel is detected");
    let (mut ntfy_at, mut email_at) = (None, None);
    while (ntfy_at.is_none() || email_at.is_none()) && detected.elapsed() < Duration::from_secs(5) {
        if ntfy_at.is_none() && ntfy.requests().len() >= 2 {
            ntfy_at = Some(detected.elapsed());
        }
        if email_at.is_none() && sink.messages().len() >= 2 {
            email_at = Some(detected.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (ntfy_took, email_took) = (ntfy_at.expect("ntfy got it"), email_at.expect("email got it"));
    assert!(
        ntfy_took < Duration::from_secs(1) && email_took < Duration::from_secs(1),
        "ntfy {ntfy_took:?}, email {email_took:?} after detection"
    );

    // What they said: the rule, the user and the evidence, once each.
    let push = ntfy.requests()[1].json();
    assert_eq!(push["topic"], "sharing");
    let text = format!("{} {}", push["title"], push["message"]);
    assert!(text.contains("mallory") && text.contains("Impossible travel"), "{push}");
    assert!(text.contains("km/h"), "the evidence: {push}");
    let mail: &Value = &sink.messages()[1];
    let mail_text = mail.to_string();
    assert!(mail_text.contains("mallory") && mail_text.contains("Impossible travel"), "{mail}");
    sim.run(&env, 120, 5).await;
    env.rules_settled().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ntfy.requests().len(), 2, "one violation, one push");
    assert_eq!(sink.messages().len(), 2, "one violation, one email");
}
