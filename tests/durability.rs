//! What a rule or a poll decides survives a failed write and a restart: a violation and its
//! alert commit together or not at all, delayed and network actions wait as rows and run on
//! the poller's clock, and the hourly sweep does its work.

#[path = "notify/capture.rs"]
#[allow(dead_code, reason = "the notify tests use the rest of the capture server")]
mod capture;
mod common;

use std::time::Duration;

use capture::Capture;
use common::TestEnv;
use common::sim::{JELLYFIN, Sim, film, three_servers};
use rocket::http::Status;
use serde_json::{Value, json};
use streamwarden::sim::Action;
use streamwarden::sim::world::device;
use streamwarden::tasks::Tasks;

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

async fn count(env: &TestEnv, sql: &'static str) -> i64 {
    env.db().read(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?)).await.unwrap()
}

async fn create_rule(env: &TestEnv, rule: Value) -> i64 {
    let reply = env.post_json("/api/v1/rules", &rule).await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    reply.json()["id"].as_i64().unwrap()
}

/// A rule on two streams of one account at once, with `actions`.
fn two_streams(actions: Value) -> Value {
    json!({"name": "Two streams", "severity": "high", "conditions": {"groups": [[
        {"field": "concurrent_streams", "op": "gt", "value": 1}
    ]]}, "actions": actions})
}

/// Alice on her TV, then on a phone somewhere else: two Jellyfin streams at once, both
/// confirmed by the time this returns. Returns the session keys, older first.
async fn alice_twice(env: &TestEnv, sim: &mut Sim) -> (String, String) {
    let tv = device("tv", "TV", "Jellyfin Android TV", "Android");
    let phone = device("phone", "Phone", "Jellyfin iOS", "iOS");
    let older = sim.with(|w| w.start(JELLYFIN, "alice", &tv, ip("81.2.69.142"), false, &film()));
    sim.run(env, 15, 5).await;
    let newer =
        sim.with(|w| w.start(JELLYFIN, "alice", &phone, ip("216.160.83.56"), false, &film()));
    sim.run(env, 40, 5).await;
    env.rules_settled().await;
    (older, newer)
}

/// The actions of the only violation, as `(type, outcome, message)`.
async fn actions(env: &TestEnv) -> Vec<(String, String, String)> {
    env.rules_settled().await;
    let list = env.get("/api/v1/violations").await.json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:#?}");
    let detail = env.get(&format!("/api/v1/violations/{}", items[0]["id"])).await.json();
    detail["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let text = |k: &str| a[k].as_str().unwrap().to_owned();
            (text("type"), text("outcome"), text("message"))
        })
        .collect()
}

fn terminated(sim: &Sim, key: &str) -> bool {
    sim.with(|w| {
        w.actions
            .iter()
            .any(|a| matches!(a, Action::Terminated { session_key, .. } if session_key == key))
    })
}

/// Stops the instance's background tasks (the rules worker, notification delivery), as a
/// process that dies would: nothing is persisted on the way out.
async fn crash(env: TestEnv) {
    let tasks = env.client.rocket().state::<std::sync::Arc<Tasks>>().unwrap().clone();
    tasks.shutdown(Duration::from_secs(2)).await;
    drop(env);
}

#[rocket::async_test]
async fn a_violation_and_its_alert_commit_together_or_not_at_all() {
    let ntfy = Capture::start().await;
    let env = TestEnv::new().await;
    let channel = env
        .post_json(
            "/api/v1/notifiers",
            &json!({"kind": "ntfy", "name": "phone", "events": ["violation"], "config": {"server_url": ntfy.url(), "topic": "sharing"}}),
        )
        .await;
    assert_eq!(channel.status, Status::Created, "{}", channel.body);
    create_rule(
        &env,
        two_streams(json!([{"type": "notify", "channels": [], "cooldown_minutes": 0}])),
    )
    .await;
    // The outbox refuses every write, as a full disk would, in the middle of the violation's
    // transaction.
    env.db()
        .write(|c| {
            c.execute_batch(
                "CREATE TRIGGER outbox_full BEFORE INSERT ON notify_outbox \
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let mut sim = Sim::start(&env, three_servers()).await;
    alice_twice(&env, &mut sim).await;
    assert_eq!(
        count(&env, "SELECT count(*) FROM violations").await,
        0,
        "no violation without its alert"
    );
    assert_eq!(count(&env, "SELECT count(*) FROM trust_events").await, 0);

    // The disk has room again: the next tick evaluates the failed trigger once more.
    env.db().write(|c| Ok(c.execute_batch("DROP TRIGGER outbox_full")?)).await.unwrap();
    sim.tick(&env, 5).await;
    env.rules_settled().await;
    assert_eq!(count(&env, "SELECT count(*) FROM violations").await, 1);
    assert_eq!(
        count(&env, "SELECT count(*) FROM notify_outbox WHERE kind = 'violation'").await,
        1,
        "stored with its violation"
    );
    let push = ntfy.wait_for(1, Duration::from_secs(10)).await[0].json();
    assert!(push["title"].as_str().unwrap().contains("alice"), "{push}");
    sim.run(&env, 60, 5).await;
    env.rules_settled().await;
    assert_eq!(count(&env, "SELECT count(*) FROM violations").await, 1);
    assert_eq!(count(&env, "SELECT count(*) FROM notify_outbox").await, 1, "nothing more to send");
}

#[rocket::async_test]
async fn an_alert_stored_before_a_crash_is_delivered_once_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut ntfy = Capture::start().await;
    // The channel's server is away: the alert waits in the outbox.
    ntfy.pause();
    let env = TestEnv::in_dir(dir.path()).await;
    let channel = env
        .post_json(
            "/api/v1/notifiers",
            &json!({"kind": "ntfy", "name": "phone", "events": ["violation"], "config": {"server_url": ntfy.url(), "topic": "sharing"}}),
        )
        .await;
    assert_eq!(channel.status, Status::Created, "{}", channel.body);
    create_rule(
        &env,
        two_streams(json!([{"type": "notify", "channels": [], "cooldown_minutes": 0}])),
    )
    .await;
    let mut sim = Sim::start(&env, three_servers()).await;
    alice_twice(&env, &mut sim).await;
    assert_eq!(count(&env, "SELECT count(*) FROM violations").await, 1);
    assert_eq!(count(&env, "SELECT count(*) FROM notify_outbox WHERE status = 'pending'").await, 1);
    crash(env).await;

    ntfy.resume().await;
    let env = TestEnv::in_dir(dir.path()).await;
    env.control().registry.changed();
    // The retry is due within the first backoff; the worker finds it after the restart.
    let delivered = ntfy.wait_for(1, Duration::from_mins(1)).await;
    assert!(delivered[0].json()["title"].as_str().unwrap().contains("alice"));
    sim.run(&env, 30, 5).await;
    env.rules_settled().await;
    assert_eq!(count(&env, "SELECT count(*) FROM notify_outbox").await, 1);
    assert_eq!(
        count(&env, "SELECT count(*) FROM notify_outbox WHERE status = 'sent'").await,
        1,
        "sent once"
    );
    assert_eq!(ntfy.requests().len(), 1);
}

#[rocket::async_test]
async fn a_delayed_terminate_survives_a_restart_and_runs_on_the_pollers_clock() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::in_dir(dir.path()).await;
    create_rule(
        &env,
        two_streams(json!([
            {"type": "terminate", "target": "newest", "delay_seconds": 120, "message": "One at a time."}
        ])),
    )
    .await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let (older, newer) = alice_twice(&env, &mut sim).await;
    let waiting = actions(&env).await;
    assert_eq!(waiting, [("terminate".into(), "pending".into(), "re-checking in 120 s".into())]);
    // A minute on the poller's clock: not due yet.
    sim.run(&env, 60, 5).await;
    env.rules_settled().await;
    assert!(!terminated(&sim, &newer));
    crash(env).await;

    let env = TestEnv::in_dir(dir.path()).await;
    env.control().registry.changed();
    sim.run(&env, 70, 5).await;
    env.rules_settled().await;
    assert!(terminated(&sim, &newer), "due and still matching: stopped after the restart");
    assert!(!terminated(&sim, &older));
    let done = actions(&env).await;
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].0.as_str(), done[0].1.as_str()), ("terminate", "done"));
    assert!(done[0].2.starts_with("stopped play "), "{}", done[0].2);
    assert!(
        sim.with(|w| w.actions.contains(&Action::Message {
            server: JELLYFIN,
            session_key: newer.clone(),
            header: "Stream stopped".into(),
            text: "One at a time.".into()
        })),
        "the client was told why"
    );
}

#[rocket::async_test]
async fn a_delayed_terminate_is_skipped_when_the_rule_no_longer_matches() {
    let env = TestEnv::new().await;
    create_rule(
        &env,
        two_streams(json!([{"type": "terminate", "target": "newest", "delay_seconds": 60}])),
    )
    .await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let (older, newer) = alice_twice(&env, &mut sim).await;
    // She stops one of them herself before the delay runs out.
    sim.with(|w| w.stop(&older));
    sim.run(&env, 90, 5).await;
    env.rules_settled().await;
    assert!(!terminated(&sim, &newer));
    assert_eq!(
        actions(&env).await,
        [("terminate".into(), "skipped".into(), "after 60 s the rule no longer matched".into())]
    );
}

#[rocket::async_test]
async fn message_client_reaches_every_stream_of_the_user() {
    let env = TestEnv::new().await;
    create_rule(
        &env,
        two_streams(
            json!([{"type": "message_client", "message": "Is this you?", "target": "all"}]),
        ),
    )
    .await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let (older, newer) = alice_twice(&env, &mut sim).await;
    for key in [&older, &newer] {
        assert!(
            sim.with(|w| w.actions.contains(&Action::Message {
                server: JELLYFIN,
                session_key: key.clone(),
                header: "Streamwarden".into(),
                text: "Is this you?".into()
            })),
            "{key}: {:?}",
            sim.with(|w| w.actions.clone())
        );
    }
    assert_eq!(
        actions(&env).await,
        [("message_client".into(), "done".into(), "messaged 2 stream(s)".into())]
    );
    assert!(!terminated(&sim, &older) && !terminated(&sim, &newer), "messaged, not stopped");
}

#[rocket::async_test]
async fn the_hourly_sweep_learns_households_and_gives_trust_back() {
    let env = TestEnv::new().await;
    let saved = env
        .post_form(
            "/rules/settings",
            &[
                ("household_learn_plays", "3"),
                ("points_per_day", "5"),
                ("after_days", "7"),
                ("trust_low_below", "40"),
            ],
        )
        .await;
    assert_eq!(saved.status, Status::SeeOther, "{}", saved.body);
    let mut sim = Sim::start(&env, three_servers()).await;
    let tv = device("tv", "TV", "Jellyfin Android TV", "Android");
    // Three plays from home.
    for _ in 0..3 {
        let key = sim.with(|w| w.start(JELLYFIN, "alice", &tv, ip("81.2.69.142"), false, &film()));
        sim.run(&env, 45, 5).await;
        sim.with(|w| w.stop(&key));
        sim.run(&env, 10, 5).await;
    }
    let users = env.get("/api/v1/users").await.json();
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice" && u["server_name"] == "Sim Jellyfin")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let set = env
        .post_json(&format!("/api/v1/users/{alice}/trust"), &json!({"value": 50, "note": "test"}))
        .await;
    assert_eq!(set.status, Status::Ok, "{}", set.body);

    // An hour and a bit on the poller's clock: one hourly round.
    sim.run(&env, 3_700, 60).await;
    env.rules_settled().await;
    let user = env.get(&format!("/api/v1/users/{alice}")).await.json();
    assert_eq!(user["trust_score"], 55, "a clean day's points: {user}");
    let homes = user["households"].as_array().unwrap();
    assert_eq!(homes.len(), 1, "{homes:?}");
    assert_eq!(homes[0]["network"], "81.2.69.142/32", "{homes:?}");
    assert_eq!(homes[0]["source"], "learned", "{homes:?}");
    assert_eq!(homes[0]["confirmed"], false, "proposed, not confirmed: {homes:?}");
    // Later hours of the same day give nothing more; the next day does.
    sim.run(&env, 6 * 3_600, 600).await;
    env.rules_settled().await;
    assert_eq!(env.get(&format!("/api/v1/users/{alice}")).await.json()["trust_score"], 55);
    sim.run(&env, 20 * 3_600, 1_800).await;
    env.rules_settled().await;
    assert_eq!(env.get(&format!("/api/v1/users/{alice}")).await.json()["trust_score"], 60);
}
