//! Real time from the servers themselves, end to end: the poller's own loop (a follower per
//! server) against simulated Plex, Jellyfin and Emby servers that push in their vendors'
//! formats, on the real clock with short timings. Waits poll with a deadline; what is
//! asserted is behaviour (what is shown, what is stored, how many requests were made).

mod common;

use common::TestEnv;
use common::sim::{
    EMBY, Following, JELLYFIN, PLEX, Sim, eventually, film, phone, quick_push, three_servers,
    timing, tv,
};
use rocket::http::Status;
use serde_json::Value;
use streamwarden::sim::world;

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

/// An instance whose streams count at once (no confirmation window), so history shows
/// every play that was seen.
async fn env() -> TestEnv {
    TestEnv::with_config(|c| c.confirm_window = std::time::Duration::ZERO).await
}

async fn sessions(env: &TestEnv) -> Vec<Value> {
    let reply = env.get("/api/v1/sessions").await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.json().as_array().unwrap().clone()
}

async fn server(env: &TestEnv, id: i64) -> Value {
    let reply = env.get(&format!("/api/v1/servers/{id}")).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.json()
}

async fn realtime(env: &TestEnv, id: i64) -> String {
    server(env, id).await["realtime"].as_str().unwrap().to_owned()
}

async fn count(env: &TestEnv, sql: &'static str) -> i64 {
    env.db().read(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?)).await.unwrap()
}

fn polls(sim: &Sim, index: usize) -> u64 {
    sim.with(|w| w.servers[index].session_polls)
}

fn requests(sim: &Sim, index: usize) -> u64 {
    sim.with(|w| w.servers[index].requests)
}

/// Waits until server `index` (database id `id`) follows its push as `source`.
async fn until_source(env: &TestEnv, id: i64, source: &str) {
    eventually(20, &format!("server {id} on {source}"), || async {
        realtime(env, id).await == source
    })
    .await;
}

async fn until_sessions(env: &TestEnv, n: usize) {
    eventually(20, &format!("{n} live sessions"), || async { sessions(env).await.len() == n })
        .await;
}

/// Plex pushes over its event stream: a stream shows through it while polling waits for
/// the next reconciliation (an hour away here), a pause and a stop follow, and the
/// server's page says where the picture comes from.
#[rocket::async_test]
async fn plex_event_stream_shows_starts_pauses_and_stops_between_polls() {
    let env = env().await;
    let mut w = three_servers();
    quick_push(&mut w);
    let sim = Sim::start(&env, w).await;
    let plex = sim.server_ids[PLEX];
    let following = Following::start(&env, timing(300, 3_600_000));
    until_source(&env, plex, "sse").await;
    let s = server(&env, plex).await;
    assert!(s["push_enabled"].as_bool().unwrap());
    assert!(s["realtime_since"].as_str().is_some_and(|t| t.ends_with('Z')), "{s}");
    // Settled: push healthy, nothing in transition, so the list is read only when told.
    eventually(10, "the first reconciliation is scheduled an hour away", || async {
        let before = polls(&sim, PLEX);
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        polls(&sim, PLEX) == before
    })
    .await;
    let before = polls(&sim, PLEX);

    let key = sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    until_sessions(&env, 1).await;
    assert!(polls(&sim, PLEX) - before <= 2, "the start cost a refresh or two, not a poll loop");
    assert_eq!(sessions(&env).await[0]["state"], "playing");

    sim.with(|w| w.pause(&key, true));
    eventually(10, "the pause", || async { sessions(&env).await[0]["state"] == "paused" }).await;
    sim.with(|w| w.pause(&key, false));
    eventually(10, "the resume", || async { sessions(&env).await[0]["state"] == "playing" }).await;
    // Positions move through the push alone (the simulated clients report every 200 ms).
    let polls_now = polls(&sim, PLEX);
    sim.with(|w| w.advance(90_000));
    eventually(10, "a pushed position", || async {
        sessions(&env).await[0]["progress_ms"].as_i64().unwrap_or(0) >= 90_000
    })
    .await;
    assert_eq!(polls(&sim, PLEX), polls_now, "a position needs no request");

    sim.with(|w| w.stop(&key));
    until_sessions(&env, 0).await;
    assert_eq!(count(&env, "SELECT count(*) FROM plays WHERE status = 'stopped'").await, 1);
    assert!(
        count(&env, "SELECT progress_ms FROM plays").await >= 90_000,
        "stopped where last seen"
    );
    following.stop().await;
}

/// Fifty streams starting in the same instant on a pushing Plex: all shown after a
/// handful of session-list requests (coalesced refreshes), not fifty or more.
#[rocket::async_test]
async fn fifty_streams_starting_together_cost_a_handful_of_requests() {
    let env = env().await;
    let mut w = three_servers();
    quick_push(&mut w);
    w.servers[PLEX].push.progress_ms = 60_000;
    for n in 0..50 {
        w.servers[PLEX].users.push(world::SimUser {
            id: format!("u{n}"),
            name: format!("viewer{n}"),
            admin: false,
        });
    }
    let sim = Sim::start(&env, w).await;
    let following = Following::start(&env, timing(300, 3_600_000));
    until_source(&env, sim.server_ids[PLEX], "sse").await;
    eventually(10, "the first polls are done", || async {
        let before = requests(&sim, PLEX);
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        requests(&sim, PLEX) == before
    })
    .await;
    let before = requests(&sim, PLEX);
    sim.with(|w| {
        for n in 0..50 {
            let device = world::device(&format!("dev-{n}"), "TV", "Plex for LG", "webOS");
            w.start(PLEX, &format!("viewer{n}"), &device, ip("81.2.69.142"), false, &film());
        }
    });
    until_sessions(&env, 50).await;
    let cost = requests(&sim, PLEX) - before;
    assert!((1..=10).contains(&cost), "{cost} requests to Plex for 50 starts");
    following.stop().await;
}

/// A source that stops talking (no pings) is dropped after its keep-alive, polling takes
/// over at once and sees what happens meanwhile; when the server talks again, push is
/// back and the reconnect is counted.
#[rocket::async_test]
async fn keepalive_loss_hands_over_to_polling_and_push_comes_back() {
    let env = env().await;
    let mut w = three_servers();
    quick_push(&mut w);
    let sim = Sim::start(&env, w).await;
    let plex = sim.server_ids[PLEX];
    let following = Following::start(&env, timing(200, 3_600_000));
    until_source(&env, plex, "sse").await;
    let since = server(&env, plex).await["realtime_since"].clone();

    sim.with(|w| w.servers[PLEX].push.silent = true);
    until_source(&env, plex, "polling").await;
    // A stream that opens but stays mute is reconnected, and never counts as up meanwhile
    // (else the polls would slow down to the reconciliation interval).
    let mute = sim.with(|w| w.servers[PLEX].push.connections);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sim.with(|w| w.servers[PLEX].push.connections) < mute + 2 {
        assert_eq!(realtime(&env, plex).await, "polling", "a mute stream is not push");
        assert!(std::time::Instant::now() < deadline, "timed out waiting for reconnects");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Polling sees what the silent source does not tell.
    sim.with(|w| w.start(PLEX, "bob", &tv(), ip("81.2.69.142"), false, &film()));
    until_sessions(&env, 1).await;

    let connections = sim.with(|w| w.servers[PLEX].push.connections);
    sim.with(|w| {
        w.servers[PLEX].push.silent = false;
        w.servers[PLEX].push.generation += 1;
    });
    until_source(&env, plex, "sse").await;
    assert!(sim.with(|w| w.servers[PLEX].push.connections) > connections, "it reconnected");
    assert_ne!(server(&env, plex).await["realtime_since"], since, "since when is new");
    following.stop().await;
}

/// A server that drops its push connections (a restart) is reconnected with backoff, and
/// one that answers push with 404 (a proxy, an old version) is simply polled.
#[rocket::async_test]
async fn dropped_and_refused_push_is_reconnected_or_polled() {
    let env = env().await;
    let mut w = three_servers();
    quick_push(&mut w);
    w.servers[EMBY].push.enabled = false;
    let sim = Sim::start(&env, w).await;
    let following = Following::start(&env, timing(200, 3_600_000));
    until_source(&env, sim.server_ids[PLEX], "sse").await;
    for round in 1..=3 {
        sim.with(|w| w.servers[PLEX].push.generation += 1);
        eventually(20, "a new connection", || async {
            sim.with(|w| w.servers[PLEX].push.connections) > round
        })
        .await;
        until_source(&env, sim.server_ids[PLEX], "sse").await;
    }
    sim.with(|w| w.start(EMBY, "alice", &phone(), ip("89.160.20.112"), false, &film()));
    until_sessions(&env, 1).await;
    assert_eq!(realtime(&env, sim.server_ids[EMBY]).await, "polling");
    assert_eq!(sim.with(|w| w.servers[EMBY].push.open), 0);
    following.stop().await;
}

/// Garbage from a push source neither breaks tracking nor counts as a sign of life: the
/// server stays on polling and its streams are all seen.
#[rocket::async_test]
async fn a_source_that_sends_garbage_is_not_trusted_and_loses_nothing() {
    let env = env().await;
    let mut w = three_servers();
    quick_push(&mut w);
    w.servers[JELLYFIN].push.garbage = true;
    let sim = Sim::start(&env, w).await;
    let plex = sim.server_ids[PLEX];
    let following = Following::start(&env, timing(200, 3_600_000));
    until_source(&env, plex, "sse").await;
    // Plex turns to garbage while up: its keep-alive runs out.
    sim.with(|w| w.servers[PLEX].push.garbage = true);
    until_source(&env, plex, "polling").await;
    sim.with(|w| {
        w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film());
        w.start(JELLYFIN, "bob", &phone(), ip("89.160.20.112"), false, &film());
    });
    until_sessions(&env, 2).await;
    assert_eq!(realtime(&env, sim.server_ids[JELLYFIN]).await, "polling");
    assert!(sim.with(|w| w.servers[JELLYFIN].push.connections) >= 1, "it did try");
    following.stop().await;
}

/// Jellyfin and Emby over their WebSocket (`SessionsStart`, `Sessions`, `KeepAlive`); a
/// Jellyfin that withholds `Sessions` from API keys is never taken for a working source;
/// the SSE plugin, when installed, is preferred.
#[rocket::async_test]
async fn jellyfin_and_emby_websockets_and_the_sse_plugin() {
    let env = env().await;
    let mut w = three_servers();
    quick_push(&mut w);
    let sim = Sim::start(&env, w).await;
    let (jellyfin, emby) = (sim.server_ids[JELLYFIN], sim.server_ids[EMBY]);
    let following = Following::start(&env, timing(300, 3_600_000));
    // Emby proves itself at once (its list comes every interval); Jellyfin at its first
    // session event.
    until_source(&env, emby, "websocket").await;
    let key =
        sim.with(|w| w.start(JELLYFIN, "alice", &phone(), ip("89.160.20.112"), false, &film()));
    until_sessions(&env, 1).await;
    until_source(&env, jellyfin, "websocket").await;
    sim.with(|w| w.pause(&key, true));
    eventually(10, "the pause through the socket", || async {
        sessions(&env).await[0]["state"] == "paused"
    })
    .await;
    sim.with(|w| w.start(EMBY, "bob", &tv(), ip("81.2.69.142"), false, &film()));
    until_sessions(&env, 2).await;
    following.stop().await;

    // Withheld sessions (jellyfin#13479): connected, keep-alives answered, never "up".
    let env = self::env().await;
    let mut w = three_servers();
    quick_push(&mut w);
    w.servers[JELLYFIN].push.withholds_sessions = true;
    w.servers[EMBY].push.sse_plugin = true;
    let sim = Sim::start(&env, w).await;
    let following = Following::start(&env, timing(200, 3_600_000));
    until_source(&env, sim.server_ids[EMBY], "sse").await;
    sim.with(|w| w.start(JELLYFIN, "alice", &phone(), ip("89.160.20.112"), false, &film()));
    until_sessions(&env, 1).await;
    assert!(sim.with(|w| w.servers[JELLYFIN].push.open) >= 1, "the socket is open");
    assert_eq!(realtime(&env, sim.server_ids[JELLYFIN]).await, "polling");
    following.stop().await;
}

/// The push source dies while streams start and stop: every play is kept once, none is
/// lost, none is doubled, and the rows agree with what the servers did.
#[rocket::async_test]
async fn a_push_source_dying_while_streams_start_and_stop_loses_and_doubles_nothing() {
    let env = env().await;
    let mut w = three_servers();
    quick_push(&mut w);
    let sim = Sim::start(&env, w).await;
    let plex = sim.server_ids[PLEX];
    let following = Following::start(&env, timing(200, 3_600_000));
    until_source(&env, plex, "sse").await;
    let a = sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    let b = sim.with(|w| {
        w.start(
            PLEX,
            "bob",
            &world::device("b", "Phone", "Plex for iOS", "iOS"),
            ip("216.160.83.56"),
            false,
            &film(),
        )
    });
    until_sessions(&env, 2).await;

    // The source dies (and the server refuses to push for a while) as A stops and C starts.
    let c = sim.with(|w| {
        w.servers[PLEX].push.enabled = false;
        w.servers[PLEX].push.generation += 1;
        w.stop(&a);
        w.start(
            PLEX,
            "mallory",
            &world::device("c", "Web", "Plex Web", "Chrome"),
            ip("175.16.199.0"),
            false,
            &film(),
        )
    });
    until_source(&env, plex, "polling").await;
    eventually(20, "A gone and C shown", || async {
        let live = sessions(&env).await;
        live.len() == 2 && live.iter().all(|s| s["user"]["name"] != "alice")
    })
    .await;
    // Push comes back while B and C stop.
    sim.with(|w| {
        w.servers[PLEX].push.enabled = true;
        w.stop(&b);
    });
    until_source(&env, plex, "sse").await;
    sim.with(|w| w.stop(&c));
    until_sessions(&env, 0).await;
    following.stop().await;

    let names: Vec<String> = env
        .db()
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT u.name FROM plays p JOIN media_users u ON u.id = p.user_id WHERE p.status = 'stopped' ORDER BY u.name",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    assert_eq!(names, ["alice", "bob", "mallory"], "each play once");
    assert_eq!(count(&env, "SELECT count(*) FROM plays").await, 3, "nothing else");
}

/// Push can be turned off per server: its connection closes and it is polled only.
#[rocket::async_test]
async fn push_can_be_turned_off_per_server() {
    let env = env().await;
    let mut w = three_servers();
    quick_push(&mut w);
    let sim = Sim::start(&env, w).await;
    let plex = sim.server_ids[PLEX];
    let following = Following::start(&env, timing(200, 3_600_000));
    until_source(&env, plex, "sse").await;
    let reply = env
        .patch_json(&format!("/api/v1/servers/{plex}"), &serde_json::json!({"push_enabled": false}))
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.json()["push_enabled"], false);
    until_source(&env, plex, "polling").await;
    eventually(10, "the push connection closed", || async {
        sim.with(|w| w.servers[PLEX].push.open) == 0
    })
    .await;
    sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    until_sessions(&env, 1).await;
    assert_eq!(realtime(&env, plex).await, "polling");
    let list = env.get("/api/v1/servers").await.json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|s| s["realtime"].is_string() && s["push_enabled"].is_boolean())
    );
    following.stop().await;
}

/// One hung server delays no other (issue 18): while Plex holds its answer, Jellyfin is
/// polled at its own interval and its streams show.
#[rocket::async_test]
async fn a_hung_server_does_not_delay_the_others() {
    let env = env().await;
    let mut w = three_servers();
    for server in &mut w.servers {
        server.push.enabled = false;
    }
    w.servers[PLEX].sessions_delay_ms = 60_000;
    let sim = Sim::start(&env, w).await;
    let following = Following::start(&env, timing(200, 3_600_000));
    eventually(10, "Plex was asked", || async { polls(&sim, PLEX) >= 1 }).await;
    let jellyfin_before = polls(&sim, JELLYFIN);
    sim.with(|w| w.start(JELLYFIN, "alice", &phone(), ip("89.160.20.112"), false, &film()));
    until_sessions(&env, 1).await;
    eventually(10, "Jellyfin polled on at its interval", || async {
        polls(&sim, JELLYFIN) >= jellyfin_before + 5
    })
    .await;
    assert_eq!(polls(&sim, PLEX), 1, "Plex still holds its first answer");
    following.stop().await;
}
