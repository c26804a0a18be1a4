//! A rule's violation on its way out: the impossible-travel story of `tests/rules.rs`, with
//! the preset's rule told to notify, reaches ntfy and email, once each. What is asserted is
//! the outbox: an alert is a row there from the moment its violation is stored, and a later
//! delivery is only possible for a row that exists.

use std::time::Duration;

use serde_json::{Value, json};
use streamwarden::notify::Notifier;
use streamwarden::sim::world::device;

use crate::capture::Capture;
use crate::common::TestEnv;
use crate::common::sim::{PLEX, Sim, film, three_servers};
use crate::harness::object;
use crate::smtp::{Mode, SmtpSink};

const LONDON: &str = "81.2.69.142";
const MILTON: &str = "216.160.83.56";

/// The outbox as `(channel name, kind, status)`, oldest first.
async fn outbox(env: &TestEnv) -> Vec<(String, String, String)> {
    env.db()
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT n.name, o.kind, o.status FROM notify_outbox o JOIN notifiers n ON n.id = o.notifier_id WHERE o.is_test = 0 ORDER BY o.id",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap()
}

/// Waits until every stored alert is sent (or `timeout` passes); returns the outbox.
async fn all_sent(env: &TestEnv, timeout: Duration) -> Vec<(String, String, String)> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let rows = outbox(env).await;
        if rows.iter().all(|(_, _, status)| status == "sent")
            || std::time::Instant::now() > deadline
        {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn row(channel: &str, kind: &str) -> (String, String, String) {
    (channel.to_owned(), kind.to_owned(), "sent".to_owned())
}

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
    // Later polls and sweeps store nothing more, so nothing more can be sent.
    sim.run(&env, 120, 5).await;
    env.rules_settled().await;
    assert_eq!(all_sent(&env, Duration::from_secs(10)).await, [row("trust", "trust_low")]);
    assert_eq!(ntfy.requests().len(), 1);
}

#[rocket::async_test]
async fn an_impossible_travel_reaches_ntfy_and_email_once_each() {
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

    // The impossible-travel preset, told to notify every channel that takes violations.
    travel_rule(&env, json!([{"type": "notify", "channels": [], "cooldown_minutes": 30}])).await;
    let mut sim = london_then_milton(&env).await;
    // Milton, twenty minutes later: the violation and its two alerts are stored together.
    sim.run(&env, 60, 5).await;
    env.rules_settled().await;
    assert_eq!(violation_count(&env).await, 1);
    let stored = outbox(&env).await;
    assert_eq!(stored.len(), 2, "one alert per channel, stored with the violation: {stored:?}");
    assert!(stored.iter().all(|(_, kind, _)| kind == "violation"), "{stored:?}");

    // Both go out, and more polls and sweeps add nothing.
    ntfy.wait_for(1, Duration::from_secs(10)).await;
    sink.wait_for(1, Duration::from_secs(10)).await;
    sim.run(&env, 120, 5).await;
    env.rules_settled().await;
    let mut sent = all_sent(&env, Duration::from_secs(10)).await;
    sent.sort();
    assert_eq!(sent, [row("mail", "violation"), row("phone", "violation")]);
    assert_eq!(ntfy.requests().len(), 1, "one violation, one push");
    assert_eq!(sink.messages().len(), 1, "one violation, one email");

    // What they said: the rule, the user and the evidence.
    let push = ntfy.requests()[0].json();
    assert_eq!(push["topic"], "sharing");
    let text = format!("{} {}", push["title"], push["message"]);
    assert!(text.contains("mallory") && text.contains("Impossible travel"), "{push}");
    assert!(text.contains("km/h"), "the evidence: {push}");
    let mail: &Value = &sink.messages()[0];
    let mail_text = mail.to_string();
    assert!(mail_text.contains("mallory") && mail_text.contains("Impossible travel"), "{mail}");
}
