//! Session tracking end to end: the real app (local client, real SQLite file) polling the
//! simulated Plex, Jellyfin and Emby servers, with time driven by the tests.

mod common;

use common::TestEnv;
use common::sim::{EMBY, JELLYFIN, PLEX, Sim, T0, ep, film, phone, three_servers, tv};
use rocket::http::Status;
use serde_json::Value;
use streamwarden::sim::Action;

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

async fn sessions(env: &TestEnv) -> Vec<Value> {
    let reply = env.get("/api/v1/sessions").await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.json().as_array().unwrap().clone()
}

async fn history(env: &TestEnv, query: &str) -> Vec<Value> {
    let reply = env.get(&format!("/api/v1/history?{query}")).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.json()["items"].as_array().unwrap().clone()
}

async fn count_rows(env: &TestEnv, sql: &'static str) -> i64 {
    env.db().read(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?)).await.unwrap()
}

#[rocket::async_test]
async fn sessions_show_at_once_as_pending_then_count_and_stop_into_history() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let keys: Vec<String> = sim.with(|w| {
        vec![
            w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()),
            w.start(JELLYFIN, "bob", &phone(), ip("216.160.83.56"), false, &ep(1)),
            w.start(EMBY, "mallory", &tv(), ip("192.168.1.5"), true, &ep(2)),
        ]
    });
    let report = sim.tick(&env, 1).await;
    assert_eq!((report.polled, report.failed, report.saved), (3, 0, true));

    let live = sessions(&env).await;
    assert_eq!(live.len(), 3, "every server's session, at once");
    assert!(live.iter().all(|s| s["pending"] == true));
    let plex = live.iter().find(|s| s["server_name"] == "Sim Plex").unwrap();
    assert_eq!(plex["user"]["name"], "alice");
    assert_eq!(plex["title"], "Sintel");
    assert_eq!(plex["ip"], "81.2.69.142");
    assert_eq!(plex["is_local"], false);
    assert_eq!(plex["decision"], "direct_play");
    assert_eq!(plex["duration_ms"], 6_000_000);
    let emby = live.iter().find(|s| s["server_name"] == "Sim Emby").unwrap();
    assert_eq!(emby["is_local"], true, "a private address is LAN");

    // The dashboard shows them too, marked pending.
    let page = env.get("/").await;
    assert_eq!(page.count("article.stream-card"), 3);
    assert_eq!(page.count("article.stream-card[data-pending=true]"), 3);
    assert_eq!(page.text("[data-stat=streams]"), "3");

    // After the 30 s window they count.
    sim.run(&env, 30, 5).await;
    assert!(sessions(&env).await.iter().all(|s| s["pending"] == false));
    assert!(history(&env, "").await.is_empty(), "nothing finished yet");

    // Alice stops: held for one poll, then in history, ending at the last sighting.
    let last_seen = sim.now;
    sim.with(|w| w.stop(&keys[0]));
    sim.tick(&env, 5).await;
    assert_eq!(sessions(&env).await.len(), 3, "held one poll");
    sim.tick(&env, 5).await;
    assert_eq!(sessions(&env).await.len(), 2);
    let done = history(&env, "").await;
    assert_eq!(done.len(), 1);
    let play = &done[0];
    assert_eq!(play["user"]["name"], "alice");
    assert_eq!(play["stop_reason"], "stopped");
    assert_eq!(play["play_ms"], last_seen - (T0 + 1000));
    assert_eq!(play["stopped_at"], streamwarden::format::rfc3339(last_seen));
    assert_eq!(play["watched"], false);
    // The history page lists it.
    let page = env.get("/history").await;
    assert_eq!(page.count("#history tbody tr"), 1);
    assert!(page.text("#history tbody tr td[data-label=Title]").starts_with("Sintel (2010)"));
}

#[rocket::async_test]
async fn a_phantom_within_the_confirmation_window_leaves_no_trace() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let key = sim.with(|w| w.start(PLEX, "bob", &tv(), ip("81.2.69.142"), false, &film()));
    sim.run(&env, 15, 5).await;
    assert_eq!(sessions(&env).await.len(), 1);
    sim.with(|w| w.stop(&key));
    sim.run(&env, 15, 5).await;
    assert!(sessions(&env).await.is_empty());
    assert!(history(&env, "").await.is_empty());
    assert_eq!(count_rows(&env, "SELECT count(*) FROM plays").await, 0, "the pending row is gone");
}

#[rocket::async_test]
async fn pauses_are_accounted_and_watched_follows_the_threshold() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let key = sim.with(|w| w.start(JELLYFIN, "alice", &phone(), ip("10.0.0.2"), true, &ep(1)));
    sim.run(&env, 60, 5).await;
    sim.with(|w| w.pause(&key, true));
    sim.tick(&env, 5).await;
    assert_eq!(sessions(&env).await[0]["state"], "paused");
    sim.run(&env, 120, 5).await;
    sim.with(|w| w.pause(&key, false));
    sim.tick(&env, 5).await;
    // Play on to 90 % of the 40-minute episode, then stop.
    sim.with(|w| w.play_mut(&key).unwrap().position_ms = 36 * 60_000);
    sim.tick(&env, 5).await;
    sim.with(|w| w.stop(&key));
    sim.run(&env, 10, 5).await;
    let play = &history(&env, "").await[0];
    // From the poll that saw the pause to the poll that saw the resume: 25 polls of 5 s.
    assert_eq!(play["paused_ms"], 125_000);
    assert_eq!(play["watched"], true, "90 % is past the default 85 %");
    assert_eq!(
        play["progress_ms"],
        36 * 60_000 + 5_000,
        "the last position seen (the world played 5 s more)"
    );

    // With the threshold raised to 95 %, the same play would not count as watched.
    let reply = env
        .post_form(
            "/settings/tracking",
            &[
                ("watched_percent", "95"),
                ("stop_grace_minutes", "5"),
                ("resume_window_minutes", "60"),
            ],
        )
        .await;
    assert_eq!(reply.status, Status::SeeOther, "{}", reply.body);
    let key = sim.with(|w| w.start(JELLYFIN, "alice", &phone(), ip("10.0.0.2"), true, &ep(2)));
    sim.run(&env, 40, 5).await;
    sim.with(|w| w.play_mut(&key).unwrap().position_ms = 36 * 60_000);
    sim.tick(&env, 5).await;
    sim.with(|w| w.stop(&key));
    sim.run(&env, 10, 5).await;
    assert_eq!(history(&env, "").await[0]["watched"], false);
    // A bad value is refused, naming the field.
    let bad = env
        .post_form(
            "/settings/tracking",
            &[
                ("watched_percent", "0"),
                ("stop_grace_minutes", "5"),
                ("resume_window_minutes", "60"),
            ],
        )
        .await;
    assert_eq!(bad.status, Status::BadRequest);
    assert!(bad.text(".alert-error p").starts_with("watched_percent"), "{}", bad.body);
}

#[rocket::async_test]
async fn autoplay_quality_switches_and_resumes_keep_history_true() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    // Autoplay: the same Jellyfin session moves to the next episode.
    let key = sim.with(|w| w.start(JELLYFIN, "bob", &phone(), ip("216.160.83.56"), false, &ep(1)));
    sim.run(&env, 40, 5).await;
    sim.with(|w| w.play_mut(&key).unwrap().position_ms = 39 * 60_000);
    sim.tick(&env, 5).await;
    sim.with(|w| w.autoplay(&key, &ep(2)));
    sim.tick(&env, 5).await;
    let done = history(&env, "").await;
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0]["title"].as_str(), done[0]["watched"].as_bool(), done[0]["stop_reason"].as_str()),
        (Some("Episode 1"), Some(true), Some("item_changed"))
    );
    assert_eq!(sessions(&env).await[0]["title"], "Episode 2");

    // A Plex quality switch: a new session key for the same play, never a second stream.
    let plex = sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    sim.run(&env, 40, 5).await;
    let before: Vec<Value> =
        sessions(&env).await.into_iter().filter(|s| s["server_name"] == "Sim Plex").collect();
    let new_key = sim.with(|w| w.requalify(&plex, true)).unwrap();
    sim.tick(&env, 5).await;
    let after: Vec<Value> =
        sessions(&env).await.into_iter().filter(|s| s["server_name"] == "Sim Plex").collect();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["id"], before[0]["id"], "the same play");
    assert_eq!(after[0]["decision"], "transcode");
    assert_eq!(after[0]["stream_resolution"], "720p");
    assert_eq!(after[0]["source_resolution"], "1080p", "source quality from the item's metadata");

    // Stop halfway, come back to the same film within the resume window: chained.
    sim.with(|w| w.stop(&new_key));
    sim.run(&env, 10, 5).await;
    sim.run(&env, 600, 60).await;
    let again = sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    sim.run(&env, 40, 5).await;
    sim.with(|w| w.stop(&again));
    sim.run(&env, 10, 5).await;
    let films = history(&env, "q=sintel").await;
    assert_eq!(films.len(), 2);
    assert_eq!(
        films[0]["reference_id"], films[1]["id"],
        "the resume continues the first play's chain"
    );
    // Its detail page lists the chain.
    let detail = env.get(&format!("/history/{}", films[0]["id"])).await;
    assert_eq!(detail.count("#chain tbody tr"), 2);
}

#[rocket::async_test]
async fn a_server_outage_neither_stops_nor_duplicates_until_the_grace_passes() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let key = sim.with(|w| w.start(EMBY, "mallory", &tv(), ip("89.160.20.112"), false, &film()));
    sim.run(&env, 60, 5).await;
    let id = sessions(&env).await[0]["id"].clone();
    let last_seen = sim.now;

    sim.with(|w| w.servers[EMBY].down = true);
    sim.run(&env, 120, 5).await;
    let live = sessions(&env).await;
    assert_eq!(live.len(), 1, "no phantom stop while the server is down");
    let servers = env.get("/api/v1/servers").await.json();
    let emby =
        servers.as_array().unwrap().iter().find(|s| s["name"] == "Sim Emby").unwrap().clone();
    assert_eq!(emby["health"]["status"], "failing");
    assert!(emby["health"]["last_error"].as_str().unwrap().contains("503"), "{emby}");
    let page = env.get("/").await;
    assert_eq!(page.count(".server-down"), 1, "the dashboard says the server is down");

    // Back within the grace: the same play continues, nothing is duplicated.
    sim.with(|w| w.servers[EMBY].down = false);
    sim.run(&env, 120, 5).await;
    let live = sessions(&env).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["id"], id);
    assert!(history(&env, "").await.is_empty());

    // Down for longer than the 5-minute grace: closed once, at the last known position.
    let last_seen_before_outage = sim.now;
    sim.with(|w| w.servers[EMBY].down = true);
    sim.run(&env, 400, 20).await;
    assert!(sessions(&env).await.is_empty());
    let done = history(&env, "").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["stop_reason"], "server_lost");
    assert_eq!(done[0]["stopped_at"], streamwarden::format::rfc3339(last_seen_before_outage));
    assert!(last_seen < last_seen_before_outage);
    // When the server answers again with the session still there, it is a new play (the
    // old one was closed), not a resurrection of the first.
    sim.with(|w| w.servers[EMBY].down = false);
    sim.tick(&env, 60).await;
    assert_eq!(sessions(&env).await.len(), 1);
    assert_eq!(history(&env, "").await.len(), 1);
    drop(key);
}

#[rocket::async_test]
async fn malformed_payloads_fail_the_poll_naming_the_server_and_lose_nothing() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    sim.with(|w| w.start(JELLYFIN, "bob", &phone(), ip("10.0.0.2"), true, &ep(1)));
    sim.run(&env, 40, 5).await;
    sim.with(|w| {
        w.servers[PLEX].garbage = true;
        w.servers[JELLYFIN].garbage = true;
    });
    let report = sim.tick(&env, 5).await;
    assert_eq!((report.polled, report.failed), (1, 2));
    assert_eq!(sessions(&env).await.len(), 2, "kept while the answers are nonsense");
    let servers = env.get("/api/v1/servers").await.json();
    for s in servers.as_array().unwrap().iter().filter(|s| s["name"] != "Sim Emby") {
        let error = s["health"]["last_error"].as_str().unwrap();
        assert!(error.contains("could not be understood"), "{error}");
    }
}

#[rocket::async_test]
async fn a_new_app_on_the_same_database_resumes_live_plays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let (key, id, mut now, cluster) = {
        let env = TestEnv::in_dir(&data).await;
        let mut sim = Sim::start(&env, three_servers()).await;
        let key = sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
        sim.run(&env, 60, 5).await;
        let id = sessions(&env).await[0]["id"].clone();
        // No orderly shutdown: the process "dies" here.
        (key, id, sim.now, sim.cluster)
    };
    let env = TestEnv::in_dir(&data).await;
    let report = {
        cluster.with(|w| w.advance(30_000));
        now += 30_000;
        common::sim::poller(&env).lock().await.tick(now).await
    };
    assert!(report.saved);
    let live = sessions(&env).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["id"], id, "the same play, not a second one");
    assert_eq!(live[0]["pending"], false);
    // It stops: exactly one history row.
    cluster.with(|w| w.stop(&key));
    for _ in 0..2 {
        now += 5_000;
        common::sim::poller(&env).lock().await.tick(now).await;
    }
    let done = history(&env, "").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["id"], id);
}

#[rocket::async_test]
async fn a_full_disk_delays_history_but_never_loses_it() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let key = sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    sim.run(&env, 60, 5).await;
    // Fill the "disk": SQLite may not grow the file by one page more.
    env.db()
        .write(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
            c.execute_batch(
                "CREATE TABLE filler (x BLOB); INSERT INTO filler VALUES (zeroblob(4096));",
            )
            .ok();
            Ok(())
        })
        .await
        .unwrap();
    // New sessions and stops meet a full disk.
    for n in 0..30 {
        sim.with(|w| {
            w.start(
                JELLYFIN,
                "bob",
                &streamwarden::sim::world::device(&format!("d{n}"), "D", "P", "X"),
                ip("10.0.0.9"),
                true,
                &ep(n % 5 + 1),
            )
        });
    }
    sim.with(|w| w.stop(&key));
    let mut saw_failure = false;
    for _ in 0..4 {
        saw_failure |= !sim.tick(&env, 5).await.saved;
    }
    assert!(saw_failure, "the writes did fail");
    assert!(
        sessions(&env).await.iter().all(|s| s["server_name"] != "Sim Plex"),
        "the stop happened in memory"
    );
    // Space again: the finished play lands, once.
    env.db()
        .write(|c| Ok(c.query_row("PRAGMA max_page_count = 1073741823", [], |_| Ok(()))?))
        .await
        .unwrap();
    let report = sim.tick(&env, 5).await;
    assert!(report.saved);
    sim.tick(&env, 5).await;
    let done = history(&env, "server_id=1").await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["title"], "Sintel");
    assert_eq!(sessions(&env).await.len(), 30, "and every new session is stored");
}

#[rocket::async_test]
async fn terminate_reaches_the_right_server_with_the_right_id() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let plex = sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    let jelly =
        sim.with(|w| w.start(JELLYFIN, "bob", &phone(), ip("216.160.83.56"), false, &ep(1)));
    let emby = sim.with(|w| w.start(EMBY, "mallory", &tv(), ip("89.160.20.112"), false, &ep(2)));
    let plex_control = sim.with(|w| w.play(&plex).unwrap().control_id.clone());
    sim.run(&env, 40, 5).await;
    let id_of = |live: &[Value], server: &str| {
        live.iter().find(|s| s["server_name"] == server).unwrap()["id"].as_i64().unwrap()
    };
    let live = sessions(&env).await;

    let reply = env
        .post_json(
            &format!("/api/v1/sessions/{}/terminate", id_of(&live, "Sim Plex")),
            &serde_json::json!({"message": "Sharing is not allowed"}),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.json()["terminated"], true);
    let reply = env
        .post_json(
            &format!("/api/v1/sessions/{}/terminate", id_of(&live, "Sim Jellyfin")),
            &serde_json::json!({"message": "Bye"}),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    // Emby, through the dashboard's form.
    let reply = env
        .post_htmx(
            "/sessions/terminate",
            &[("play_id", &id_of(&live, "Sim Emby").to_string()), ("message", "Stopped")],
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.header("HX-Retarget"), Some("#error-slot"));
    assert!(reply.text("#stopped").contains("mallory"));

    let actions = sim.with(|w| w.actions.clone());
    assert!(
        actions.contains(&Action::Terminated {
            server: PLEX,
            session_key: plex.clone(),
            reason: "Sharing is not allowed".into()
        }),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::Message {
        server: JELLYFIN,
        session_key: jelly.clone(),
        header: "Stream stopped".into(),
        text: "Bye".into()
    }));
    assert!(actions.contains(&Action::Terminated {
        server: JELLYFIN,
        session_key: jelly,
        reason: String::new()
    }));
    assert!(actions.iter().any(|a| matches!(a, Action::Terminated { server: EMBY, session_key, .. } if *session_key == emby)));
    assert_ne!(plex_control, plex, "Plex was asked with the Session@id, not the session key");

    sim.tick(&env, 5).await;
    assert!(sessions(&env).await.is_empty());
    let done = history(&env, "").await;
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|p| p["stop_reason"] == "terminated"));
    // The audit log has them.
    assert_eq!(
        count_rows(&env, "SELECT count(*) FROM audit_log WHERE action = 'session.terminate'").await,
        3
    );
}

#[rocket::async_test]
async fn a_stop_the_server_refuses_comes_back_with_the_reason() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let plex = sim.with(|w| {
        w.servers[PLEX].plex_pass = false;
        w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film())
    });
    let jelly =
        sim.with(|w| w.start(JELLYFIN, "bob", &phone(), ip("216.160.83.56"), false, &ep(1)));
    sim.with(|w| w.play_mut(&jelly).unwrap().can_control = false);
    sim.run(&env, 40, 5).await;
    let live = sessions(&env).await;
    for (server, needle) in
        [("Sim Plex", "Plex Pass"), ("Sim Jellyfin", "SupportsMediaControl is false")]
    {
        let id = live.iter().find(|s| s["server_name"] == server).unwrap()["id"].as_i64().unwrap();
        let reply = env
            .post_json(&format!("/api/v1/sessions/{id}/terminate"), &serde_json::json!({}))
            .await;
        assert_eq!(reply.status, Status::BadGateway, "{}", reply.body);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "upstream");
        assert!(error["message"].as_str().unwrap().contains(needle), "{error}");
        assert!(error["message"].as_str().unwrap().contains(server), "names the server: {error}");
    }
    assert_eq!(sessions(&env).await.len(), 2, "nothing was stopped");
    // The dashboard says why the Jellyfin client cannot be stopped.
    let page = env.get("/").await;
    assert_eq!(page.count("button[disabled][title*='remote control']"), 1);
    let unknown = env.post_json("/api/v1/sessions/99999/terminate", &serde_json::json!({})).await;
    assert_eq!(unknown.status, Status::NotFound);
    drop(plex);
}

#[rocket::async_test]
async fn posters_come_through_us_without_the_token() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    sim.with(|w| w.start(JELLYFIN, "bob", &phone(), ip("216.160.83.56"), false, &ep(1)));
    sim.tick(&env, 1).await;
    let page = env.get("/").await;
    let src = page.attrs("article.stream-card img.poster", "src");
    assert_eq!(src.len(), 1);
    assert!(!page.body.contains("sim-token"), "no token anywhere in the page");
    let poster = env.get(&src[0]).await;
    assert_eq!(poster.status, Status::Ok);
    assert_eq!(poster.header("Content-Type"), Some("image/png"));
    assert!(poster.bytes.starts_with(b"\x89PNG"), "the image itself");
}

/// Waits (polling, with a deadline) until the outbox holds `n` messages; returns
/// (event name, evidence) of each, oldest first.
async fn outbox(env: &TestEnv, n: usize) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows: Vec<(String, String)> = env
            .db()
            .read(|c| {
                let mut stmt = c.prepare("SELECT kind, event FROM notify_outbox ORDER BY id")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, String>(1)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap()
            .into_iter()
            .map(|(kind, event)| {
                let event: Value = serde_json::from_str(&event).unwrap();
                (kind, event["evidence"].as_str().unwrap_or_default().to_owned())
            })
            .collect();
        if rows.len() >= n || std::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[rocket::async_test]
async fn the_poller_notifies_starts_stops_new_devices_and_outages() {
    let env = TestEnv::new().await;
    // A channel that takes every event; its server is not there, so messages stay queued.
    let channel = env
        .post_json(
            "/api/v1/notifiers",
            &serde_json::json!({"kind": "ntfy", "name": "All", "events": ["stream_started", "stream_stopped", "new_device", "server_down", "server_up"], "min_severity": "low", "config": {"server_url": "http://127.0.0.1:9", "topic": "sw"}}),
        )
        .await;
    assert_eq!(channel.status, Status::Created, "{}", channel.body);
    let mut sim = Sim::start(&env, three_servers()).await;
    let first = sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    sim.run(&env, 35, 5).await;
    sim.with(|w| w.stop(&first));
    sim.run(&env, 10, 5).await;
    // The same user on a device she never used: a new device.
    let second = sim.with(|w| w.start(PLEX, "alice", &phone(), ip("81.2.69.142"), false, &ep(1)));
    sim.run(&env, 35, 5).await;
    sim.with(|w| w.servers[PLEX].down = true);
    sim.run(&env, 60, 5).await;
    sim.with(|w| w.servers[PLEX].down = false);
    // Backed off to a minute between tries by now: the next try finds it up.
    sim.run(&env, 65, 5).await;
    drop(second);

    let got = outbox(&env, 6).await;
    let kinds: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "stream_started",
            "stream_stopped",
            "stream_started",
            "new_device",
            "server_down",
            "server_up"
        ],
        "{got:#?}"
    );
    assert!(
        got[0].1.starts_with(
            "alice started Sintel (2010) on Living Room TV (Plex for Android (TV)) from 81.2.69.142"
        ),
        "{}",
        got[0].1
    );
    assert!(got[1].1.starts_with("alice stopped Sintel (2010) after"), "{}", got[1].1);
    assert!(
        got[3].1.starts_with("alice played from a new device: Pixel (Jellyfin Android)"),
        "{}",
        got[3].1
    );
    assert!(got[4].1.contains("Sim Plex has not answered 3 polls"), "{}", got[4].1);
}

/// A poll already on its way when a stream is stopped still lists it: that answer must not
/// bring the stream back as a new play, then or on the ticks after.
#[rocket::async_test]
async fn a_stream_stopped_while_a_poll_is_in_flight_does_not_come_back() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    sim.run(&env, 40, 5).await;
    let live = sessions(&env).await;
    assert_eq!(live.len(), 1);

    // Plex answers its session list 300 ms late, as the world was when it was asked.
    sim.with(|w| w.servers[PLEX].sessions_delay_ms = 300);
    let world = std::sync::Arc::clone(&sim.cluster.world);
    let asked = world.lock().unwrap().servers[PLEX].session_polls;
    let stop = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while world.lock().unwrap().servers[PLEX].session_polls == asked {
            assert!(std::time::Instant::now() < deadline, "the poll reaches Plex");
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        // The poll is in flight: stop the stream now.
        env.post_json(
            &format!("/api/v1/sessions/{}/terminate", live[0]["id"]),
            &serde_json::json!({}),
        )
        .await
    };
    let (_, reply) = tokio::join!(sim.tick(&env, 5), stop);
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    for _ in 0..4 {
        assert!(sessions(&env).await.is_empty(), "the stopped stream is not tracked again");
        assert_eq!(
            count_rows(&env, "SELECT count(*) FROM plays").await,
            1,
            "no second play for the stale answer"
        );
        sim.tick(&env, 5).await;
    }
    assert_eq!(
        count_rows(&env, "SELECT count(*) FROM plays WHERE stop_reason = 'terminated'").await,
        1
    );
}
