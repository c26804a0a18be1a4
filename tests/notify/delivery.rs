//! The outbox: nothing is lost while a channel is down or the app restarts, nothing is sent
//! twice, services that ask for quiet get it, and hopeless messages end as failed.

use std::time::{Duration, Instant};

use serde_json::json;
use streamwarden::notify::{Event, EventKind, Notifier, RetryPolicy, Severity};
use streamwarden::time::now_ms;

use crate::capture::{Capture, Reply};
use crate::common::TestEnv;
use crate::harness::{Harness, object};
use crate::smtp::{Mode, SmtpSink};

const SECOND: i64 = 1000;
const HOUR: i64 = 3600 * SECOND;

fn alert(n: usize) -> Event {
    Event::new(EventKind::Violation, format!("alert number {n}"))
        .severity(Severity::High)
        .user(1, "alice")
}

fn evidence_of(request: &crate::capture::Request) -> String {
    request.json()["message"].as_str().unwrap().lines().next().unwrap().to_owned()
}

#[tokio::test]
async fn a_channel_down_for_a_while_then_back_gets_every_alert_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut ntfy = Capture::start().await;
    ntfy.pause(); // down: connections are refused
    let t0;
    let id = {
        let h = Harness::open(dir.path());
        let id = h
            .channel(
                "ntfy",
                json!({"server_url": ntfy.url(), "topic": "t"}),
                json!({"events": ["violation"]}),
            )
            .await;
        for n in 1..=3 {
            h.publish(alert(n)).await;
        }
        t0 = now_ms();
        assert_eq!(h.deliver_at(t0).await, 3);
        // Still down ten minutes later.
        h.deliver_at(t0 + 10 * 60 * SECOND).await;
        let rows = h.messages(id).await;
        assert!(rows.iter().all(|m| m.status == "pending" && m.attempts >= 2), "{rows:#?}");
        assert!(
            rows[0].last_error.as_deref().unwrap().starts_with("ntfy: cannot connect"),
            "{:?}",
            rows[0].last_error
        );
        id
        // The app stops here: `h` and its database handle are dropped.
    };
    ntfy.resume().await;
    let h = Harness::open(dir.path()); // a new instance on the same SQLite file
    assert_eq!(
        h.deliver_at(t0 + 10 * 60 * SECOND).await,
        0,
        "nothing is due before its retry time"
    );
    // The earliest retry comes due; once one gets through, the rest follow at once.
    h.deliver_at(t0 + 2 * HOUR).await;
    let accepted: Vec<String> = ntfy.accepted().iter().map(evidence_of).collect();
    assert_eq!(accepted, ["alert number 1", "alert number 2", "alert number 3"]);
    let rows = h.messages(id).await;
    assert!(rows.iter().all(|m| m.status == "sent"), "{rows:#?}");
    // Exactly once: later passes send nothing more.
    assert_eq!(h.deliver_at(t0 + 48 * HOUR).await, 0);
    assert_eq!(ntfy.requests().len(), 3);
}

#[tokio::test]
async fn one_success_flushes_the_backlog_of_a_recovered_channel() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let ntfy = Capture::start().await;
    ntfy.always(Reply::status(503));
    let id = h
        .channel(
            "ntfy",
            json!({"server_url": ntfy.url(), "topic": "t"}),
            json!({"events": ["violation"]}),
        )
        .await;
    h.publish(alert(1)).await;
    h.publish(alert(2)).await;
    let t0 = now_ms();
    h.deliver_at(t0).await;
    h.deliver_at(t0 + 20 * SECOND).await; // alert 1 and 2 fail again, now waiting ~40 s
    ntfy.always(Reply::json(200, &json!({})));
    h.publish(alert(3)).await; // due at once: its success tells the channel is back
    h.deliver_at(t0 + 25 * SECOND).await;
    let mut accepted: Vec<String> = ntfy.accepted().iter().map(evidence_of).collect();
    accepted.sort();
    assert_eq!(accepted, ["alert number 1", "alert number 2", "alert number 3"]);
    assert!(h.messages(id).await.iter().all(|m| m.status == "sent"));
}

#[tokio::test]
async fn too_many_requests_with_retry_after_holds_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let discord = Capture::start().await;
    discord.next(
        Reply::json(
            429,
            &json!({"message": "You are being rate limited.", "retry_after": 30.5, "global": false}),
        )
        .header("Retry-After", "30"),
    );
    let id = h
        .channel(
            "discord",
            json!({"webhook_url": format!("{}/api/webhooks/1/x", discord.url())}),
            json!({"events": ["violation"]}),
        )
        .await;
    h.publish(alert(1)).await;
    let t0 = now_ms();
    h.deliver_at(t0).await;
    let row = &h.messages(id).await[0];
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert_eq!(
        row.last_error.as_deref(),
        Some("Discord answered 429 Too Many Requests: You are being rate limited.")
    );
    assert!(
        row.next_attempt_at >= t0 + 30_500,
        "not before Retry-After: {}",
        row.next_attempt_at - t0
    );
    assert!(h.hold_until(id).await.unwrap() >= t0 + 30_500);
    // A new alert meanwhile waits too: the whole channel is quiet.
    h.publish(alert(2)).await;
    assert_eq!(h.deliver_at(t0 + 30 * SECOND).await, 0);
    assert_eq!(discord.requests().len(), 1);
    h.deliver_at(t0 + 31 * SECOND).await;
    h.deliver_at(t0 + 2 * HOUR).await;
    let accepted: Vec<String> = discord
        .accepted()
        .iter()
        .map(|r| r.json()["embeds"][0]["description"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accepted, ["alert number 1", "alert number 2"]);
}

#[tokio::test]
async fn after_the_bounded_attempts_a_message_is_failed_and_shown_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let hook = Capture::start().await;
    hook.always(Reply::status(502));
    let id =
        h.channel("webhook", json!({"url": hook.url()}), json!({"events": ["violation"]})).await;
    h.publish(alert(1)).await;
    let policy = RetryPolicy::default();
    let t0 = now_ms();
    for step in 0..40 {
        h.deliver_at(t0 + step * 2 * HOUR).await;
    }
    assert_eq!(hook.requests().len(), policy.max_attempts as usize, "bounded");
    let row = &h.messages(id).await[0];
    assert_eq!((row.status.as_str(), row.attempts), ("failed", i64::from(policy.max_attempts)));
    assert_eq!(
        row.last_error.as_deref(),
        Some("the webhook answered 502 Bad Gateway (gave up after 12 attempts)")
    );
    drop(h);

    // The delivery log shows it, with the reason, and offers a retry.
    let env = TestEnv::in_dir(dir.path()).await;
    let log = env.get(&format!("/settings/notifications/{id}/log")).await;
    assert_eq!(log.status.code, 200, "{}", log.body);
    assert_eq!(log.texts("table.delivery-log tr[data-status=failed] .badge"), ["failed"]);
    assert_eq!(
        log.text("tr[data-status=failed] .log-error"),
        "the webhook answered 502 Bad Gateway (gave up after 12 attempts)"
    );
    assert_eq!(log.count("tr[data-status=failed] form[action$='/retry'] button"), 1);
    let list = env.get("/settings/notifications").await;
    assert_eq!(list.text(&format!("#channel-{id} .channel-counts .badge-bad")), "1 failed");
}

/// The whole path with the real worker: event → outbox → worker → ntfy and email, fast.
#[rocket::async_test]
async fn a_published_event_reaches_ntfy_and_email_within_a_second() {
    let sink = SmtpSink::start(Mode::Starttls, Some(("u", "p"))).await;
    let ntfy = Capture::start().await;
    let env = TestEnv::new().await;
    let notifier = env.client.rocket().state::<Notifier>().unwrap().clone();
    let admin = crate::harness::actor();
    for input in [
        json!({"kind": "ntfy", "name": "n", "events": ["violation"], "config": {"server_url": ntfy.url(), "topic": "t"}}),
        json!({"kind": "email", "name": "e", "events": ["violation"], "config": {
            "host": "127.0.0.1", "port": sink.port, "security": "starttls", "username": "u", "password": "p",
            "from": "sw@example.com", "to": "me@example.com", "ca_cert": sink.ca_pem()}}),
    ] {
        notifier.create(object(input), admin.clone()).await.unwrap();
    }
    // Warm up: the first TLS handshake loads the system's certificates.
    notifier.publish(alert(0)).await.unwrap();
    ntfy.wait_for(1, Duration::from_secs(10)).await;
    sink.wait_for(1, Duration::from_secs(10)).await;

    let started = Instant::now();
    notifier.publish(alert(1)).await.unwrap();
    ntfy.wait_for(2, Duration::from_secs(1)).await;
    let ntfy_took = started.elapsed();
    sink.wait_for(2, Duration::from_secs(1)).await;
    let email_took = started.elapsed();
    assert!(
        ntfy_took < Duration::from_secs(1) && email_took < Duration::from_secs(1),
        "ntfy {ntfy_took:?}, email {email_took:?}"
    );
}

/// A real shutdown and a new launch on the same data directory, with the real worker.
#[rocket::async_test]
async fn the_running_app_keeps_its_outbox_across_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut ntfy = Capture::start().await;
    ntfy.pause();
    let env = TestEnv::in_dir(data.path()).await;
    let notifier = env.client.rocket().state::<Notifier>().unwrap().clone();
    let id = notifier
        .create(object(json!({"kind": "ntfy", "name": "n", "events": ["violation"], "config": {"server_url": ntfy.url(), "topic": "t"}})), crate::harness::actor())
        .await
        .unwrap()
        .id;
    for n in 1..=3 {
        notifier.publish(alert(n)).await.unwrap();
    }
    // The worker tries each once and schedules retries.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = notifier.delivery_log(id, None, None, 10).await.unwrap();
        if rows.len() == 3 && rows.iter().all(|r| r.attempts == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "no attempts: {rows:#?}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    env.client.terminate().await; // SIGTERM: the worker stops
    drop(notifier);

    ntfy.resume().await;
    let env = TestEnv::in_dir(data.path()).await;
    let notifier = env.client.rocket().state::<Notifier>().unwrap().clone();
    // Waiting out the backoff would take seconds; move the retries to now instead.
    env.db()
        .write(|c| Ok(c.execute("UPDATE notify_outbox SET next_attempt_at = 0", [])?))
        .await
        .unwrap();
    notifier.wake();
    let requests = ntfy.wait_for(3, Duration::from_secs(10)).await;
    let mut got: Vec<String> = requests.iter().map(evidence_of).collect();
    got.sort();
    assert_eq!(got, ["alert number 1", "alert number 2", "alert number 3"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !notifier
        .delivery_log(id, None, None, 10)
        .await
        .unwrap()
        .iter()
        .all(|r| r.status == "sent")
    {
        assert!(Instant::now() < deadline, "not all marked sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        notifier.worker().deliver_due(now_ms() + 48 * HOUR).await.unwrap(),
        0,
        "nothing left to send"
    );
    assert_eq!(ntfy.requests().len(), 3, "exactly once");
}
