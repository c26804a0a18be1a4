//! Rules end to end: the real app polling the simulated servers, with MaxMind's test
//! databases installed, the rules worker evaluating, and the API and pages showing the result.

mod common;

use common::TestEnv;
use common::sim::{EMBY, JELLYFIN, PLEX, Sim, T0, film, three_servers};
use rocket::http::Status;
use serde_json::{Value, json};
use streamwarden::sim::Action;
use streamwarden::sim::world::device;

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

const LONDON: &str = "81.2.69.142";
const MILTON: &str = "216.160.83.56";
const CHANGCHUN: &str = "175.16.199.0";
const BOXFORD: &str = "2.125.160.216";

async fn create_rule(env: &TestEnv, rule: Value) -> i64 {
    let reply = env.post_json("/api/v1/rules", &rule).await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    reply.json()["id"].as_i64().unwrap()
}

async fn violations(env: &TestEnv, query: &str) -> Vec<Value> {
    env.rules_settled().await;
    let reply = env.get(&format!("/api/v1/violations?{query}")).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.json()["items"].as_array().unwrap().clone()
}

async fn user_id(env: &TestEnv, name: &str, server: &str) -> i64 {
    let users = env.get("/api/v1/users").await.json();
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name && u["server_name"] == server)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// Runs `sim` for `seconds` in 5 s polls and lets the rules worker catch up.
async fn play_on(env: &TestEnv, sim: &mut Sim, seconds: i64) {
    sim.run(env, seconds, 5).await;
    env.rules_settled().await;
}

#[rocket::async_test]
async fn london_then_milton_within_an_hour_raises_exactly_one_impossible_travel_violation() {
    let env = TestEnv::with_geoip().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let presets = env.get("/api/v1/rule-presets").await.json();
    let travel = presets
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "impossible_travel")
        .unwrap()["rule"]
        .clone();
    let rule_id = create_rule(&env, travel).await;

    let laptop = device("mal-laptop", "ThinkPad", "Plex Web", "Firefox");
    let tv = device("mal-friend-tv", "Samsung TV", "Plex for Samsung", "Tizen");
    let first = sim.with(|w| w.start(PLEX, "mallory", &laptop, ip(LONDON), false, &film()));
    play_on(&env, &mut sim, 60).await;
    // The live session is geolocated at its start.
    let live = env.get("/api/v1/sessions").await.json();
    assert_eq!(live[0]["geo"]["city"], "London");
    assert_eq!(live[0]["geo"]["country"], "GB");
    assert_eq!(live[0]["geo"]["isp"], Value::Null, "the ASN test database has no record for it");
    sim.with(|w| w.stop(&first));
    play_on(&env, &mut sim, 10).await;
    sim.run(&env, 20 * 60, 60).await;
    assert!(violations(&env, "").await.is_empty(), "one place so far");

    // Twenty minutes later the same account plays in Milton, Washington.
    sim.with(|w| w.start(PLEX, "mallory", &tv, ip(MILTON), false, &film()));
    play_on(&env, &mut sim, 60).await;
    let found = violations(&env, "").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let v = &found[0];
    assert_eq!(v["rule"]["id"], rule_id);
    assert_eq!(v["rule"]["name"], "Impossible travel");
    assert_eq!(v["severity"], "high");
    assert_eq!(v["user"]["name"], "mallory");
    assert_eq!(v["status"], "open");
    let evidence = &v["evidence"]["groups"][0][0];
    assert_eq!(evidence["field"], "travel_speed_kmh");
    assert_eq!(evidence["matched"], true);
    assert!(evidence["actual"].as_f64().unwrap() > 800.0, "{evidence}");
    let related = evidence["related"].as_array().unwrap();
    assert_eq!(related.len(), 2);
    assert_eq!(
        (related[0]["role"].as_str(), related[0]["place"].as_str()),
        (Some("previous"), Some("London, GB"))
    );
    assert_eq!(
        (related[1]["role"].as_str(), related[1]["place"].as_str()),
        (Some("current"), Some("Milton, US"))
    );
    assert_eq!(related[1]["ip"], MILTON);

    // More polls, a sweep, a pause: still exactly one.
    sim.run(&env, 180, 5).await;
    assert_eq!(violations(&env, "").await.len(), 1);

    // The preset's action took 20 trust points, recorded in the timeline.
    let mallory = user_id(&env, "mallory", "Sim Plex").await;
    let user = env.get(&format!("/api/v1/users/{mallory}")).await.json();
    assert_eq!(user["trust_score"], 80);
    assert_eq!(user["trust_events"][0]["reason"], "rule");
    assert_eq!(user["trust_events"][0]["delta"], -20);
    let detail = env.get(&format!("/api/v1/violations/{}", v["id"])).await.json();
    assert_eq!(detail["actions"][0]["type"], "adjust_trust");
    assert_eq!(detail["actions"][0]["outcome"], "done");

    // Dismissed as a false positive: the trust comes back.
    let reply = env
        .post_json(&format!("/api/v1/violations/{}/dismiss", v["id"]), &json!({"note": "a VPN"}))
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.json()["status"], "dismissed");
    let user = env.get(&format!("/api/v1/users/{mallory}")).await.json();
    assert_eq!(user["trust_score"], 100);
    assert_eq!(user["trust_events"][0]["reason"], "dismissed");
    assert!(violations(&env, "status=open").await.is_empty());
    // A dismissal is final: neither acknowledged nor dismissed again afterwards.
    for verb in ["acknowledge", "dismiss"] {
        let again =
            env.post_json(&format!("/api/v1/violations/{}/{verb}", v["id"]), &json!({})).await;
        assert_eq!(again.status, Status::Conflict, "{verb}: {}", again.body);
    }
    assert_eq!(violations(&env, "status=dismissed").await.len(), 1);
}

#[rocket::async_test]
async fn a_household_of_three_devices_on_one_address_raises_nothing_under_a_unique_ip_rule() {
    let env = TestEnv::with_geoip().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    create_rule(
        &env,
        json!({"name": "Two homes", "severity": "warning", "conditions": {"groups": [[
            {"field": "concurrent_streams", "op": "gt", "value": 1, "params": {"unique_ips": true}}
        ]]}}),
    )
    .await;
    for (id, name) in [("roku", "Roku Ultra"), ("ipad", "Kids' iPad"), ("mac", "MacBook")] {
        sim.with(|w| {
            w.start(PLEX, "bob", &device(id, name, "Plex", "X"), ip(BOXFORD), false, &film())
        });
        sim.run(&env, 10, 5).await;
    }
    play_on(&env, &mut sim, 60).await;
    assert_eq!(env.get("/api/v1/sessions").await.json().as_array().unwrap().len(), 3);
    assert!(violations(&env, "").await.is_empty(), "one address, one home");
    // A fourth stream from another city is a second home.
    sim.with(|w| {
        w.start(
            PLEX,
            "bob",
            &device("phone", "Phone", "Plex for iOS", "iOS"),
            ip(CHANGCHUN),
            false,
            &film(),
        )
    });
    play_on(&env, &mut sim, 40).await;
    let found = violations(&env, "").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["evidence"]["groups"][0][0]["actual"], 2.0);
}

#[rocket::async_test]
async fn a_terminate_action_stops_the_newest_stream_on_the_simulated_server() {
    let env = TestEnv::with_geoip().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    create_rule(
        &env,
        json!({"name": "One stream", "severity": "high", "conditions": {"groups": [[
            {"field": "concurrent_streams", "op": "gt", "value": 1}
        ]]}, "actions": [
            {"type": "terminate", "target": "newest", "message": "One stream at a time, please."},
            {"type": "notify", "channels": [], "cooldown_minutes": 10}
        ]}),
    )
    .await;
    let older = sim.with(|w| {
        w.start(
            JELLYFIN,
            "alice",
            &device("tv", "TV", "Jellyfin Android TV", "Android"),
            ip(LONDON),
            false,
            &film(),
        )
    });
    sim.run(&env, 15, 5).await;
    let newer = sim.with(|w| {
        w.start(
            JELLYFIN,
            "alice",
            &device("phone", "Phone", "Jellyfin iOS", "iOS"),
            ip(MILTON),
            false,
            &film(),
        )
    });
    play_on(&env, &mut sim, 40).await;
    let actions = sim.with(|w| w.actions.clone());
    assert!(
        actions.iter().any(|a| matches!(a, Action::Terminated { server: JELLYFIN, session_key, .. } if *session_key == newer)),
        "{actions:?}"
    );
    assert!(
        actions.contains(&Action::Message {
            server: JELLYFIN,
            session_key: newer.clone(),
            header: "Stream stopped".into(),
            text: "One stream at a time, please.".into()
        }),
        "{actions:?}"
    );
    assert!(sim.with(|w| w.play(&older).is_some()), "the older stream plays on");
    sim.tick(&env, 5).await;
    let live = env.get("/api/v1/sessions").await.json();
    assert_eq!(live.as_array().unwrap().len(), 1);
    let found = violations(&env, "").await;
    assert_eq!(
        found.len(),
        1,
        "the stopped stream's own confirmation raised nothing more: {found:#?}"
    );
    let detail = env.get(&format!("/api/v1/violations/{}", found[0]["id"])).await.json();
    let outcomes: Vec<(&str, &str)> = detail["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["type"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [("terminate", "done"), ("notify", "skipped")]);
    assert_eq!(detail["actions"][1]["message"], "no enabled channel takes this violation");
    let history = env.get("/api/v1/history").await.json();
    assert_eq!(history["items"][0]["stop_reason"], "terminated");
}

#[rocket::async_test]
async fn backtest_reproduces_the_violations_of_a_replayed_day() {
    let env = TestEnv::with_geoip().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let rule = json!({"name": "Sharing", "severity": "warning", "conditions": {"groups": [[
        {"field": "travel_speed_kmh", "op": "gt", "value": 800},
        {"field": "concurrent_streams", "op": "gt", "value": 1, "params": {"unique_ips": true}},
        {"field": "is_new_device", "op": "eq", "value": true, "params": {}}
    ], [
        {"field": "user", "op": "neq", "value": "owner"}
    ]]}});
    let rule_id = create_rule(&env, rule).await;

    // A day: plays here and there, some overlapping, some travelling.
    let day: Vec<(i64, usize, &str, &str, &str, i64)> = vec![
        // (start offset s, server, user, device, address, seconds played)
        (0, PLEX, "alice", "tv", LONDON, 1_800),
        (600, PLEX, "alice", "phone", MILTON, 900),
        (3_600, JELLYFIN, "bob", "pixel", BOXFORD, 1_200),
        (4_000, JELLYFIN, "bob", "pixel", BOXFORD, 600),
        (7_200, EMBY, "mallory", "lg", CHANGCHUN, 1_200),
        (9_000, EMBY, "mallory", "lg", LONDON, 600),
        (12_000, PLEX, "owner", "shield", LONDON, 600),
        (14_000, PLEX, "alice", "tv", LONDON, 600),
    ];
    let start = sim.now;
    let mut running: Vec<(String, i64)> = Vec::new();
    let end = 16_000;
    let mut t = 0;
    while t <= end {
        for (offset, server, user, dev, addr, secs) in &day {
            if *offset == t {
                let key = sim.with(|w| {
                    w.start(*server, user, &device(dev, dev, "App", "X"), ip(addr), false, &film())
                });
                running.push((key, t + secs));
            }
        }
        running.retain(|(key, until)| {
            if *until <= t {
                sim.with(|w| w.stop(key));
                false
            } else {
                true
            }
        });
        sim.tick(&env, 10).await;
        t += 10;
    }
    sim.run(&env, 30, 5).await;
    let live_hits = violations(&env, &format!("rule={rule_id}")).await;
    let mut live_plays: Vec<i64> =
        live_hits.iter().map(|v| v["session_id"].as_i64().unwrap()).collect();
    live_plays.sort_unstable();
    assert!(live_plays.len() >= 4, "the day raised violations: {live_hits:?}");

    let reply = env
        .post_json(
            &format!("/api/v1/rules/{rule_id}/backtest"),
            &json!({"from": streamwarden::format::rfc3339(start), "to": streamwarden::format::rfc3339(sim.now)}),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    let replayed = reply.json();
    let mut backtest_plays: Vec<i64> = replayed["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["play_id"].as_i64().unwrap())
        .collect();
    backtest_plays.sort_unstable();
    assert_eq!(backtest_plays, live_plays, "backtest: {replayed}");
    // The same evidence: the matched conditions agree.
    for hit in replayed["violations"].as_array().unwrap() {
        let live = live_hits.iter().find(|v| v["session_id"] == hit["play_id"]).unwrap();
        let matched = |e: &Value| -> Vec<String> {
            e["groups"][0]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["matched"] == true)
                .map(|c| c["field"].to_string())
                .collect()
        };
        assert_eq!(
            matched(&hit["evidence"]),
            matched(&live["evidence"]),
            "play {}",
            hit["play_id"]
        );
    }
    // A period with nothing in it replays to nothing; a bad period is refused.
    let empty = env
        .post_json(
            &format!("/api/v1/rules/{rule_id}/backtest"),
            &json!({"from": "2020-01-01", "to": "2020-01-02"}),
        )
        .await;
    assert!(empty.json()["violations"].as_array().unwrap().is_empty());
    let bad = env
        .post_json(
            &format!("/api/v1/rules/{rule_id}/backtest"),
            &json!({"from": "2020-01-02", "to": "2020-01-01"}),
        )
        .await;
    assert_eq!(bad.status, Status::BadRequest);
    let _ = T0;
}

#[rocket::async_test]
async fn invalid_rules_are_refused_naming_the_condition_and_nothing_is_saved() {
    let env = TestEnv::new().await;
    let reply = env
        .post_json(
            "/api/v1/rules",
            &json!({"name": "Broken", "conditions": {"groups": [[
                {"field": "country", "op": "eq", "value": "GB"},
                {"field": "travel_speed_kmh", "op": "contains", "value": "fast"}
            ]]}}),
        )
        .await;
    assert_eq!(reply.status, Status::BadRequest);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "validation");
    assert_eq!(error["field"], "conditions.groups[0][1]");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("travel_speed_kmh: operator contains does not apply to a number"),
        "{error}"
    );
    assert!(
        env.get("/api/v1/rules").await.json().as_array().unwrap().is_empty(),
        "nothing half-saved"
    );

    // A valid one, then a PATCH that breaks it: refused, and the rule stays as it was.
    let id = create_rule(&env, json!({"name": "Ok", "conditions": {"groups": [[{"field": "trust_score", "op": "lt", "value": 50}]]}})).await;
    let patch = env
        .patch_json(
            &format!("/api/v1/rules/{id}"),
            &json!({"actions": [{"type": "set_trust", "value": 500}]}),
        )
        .await;
    assert_eq!(patch.status, Status::BadRequest);
    assert_eq!(patch.json()["error"]["field"], "actions[0]");
    let rule = env.get(&format!("/api/v1/rules/{id}")).await.json();
    assert_eq!(rule["actions"], json!([]));
    // A notify action naming a channel that does not exist.
    let patch = env
        .patch_json(
            &format!("/api/v1/rules/{id}"),
            &json!({"actions": [{"type": "log_only"}, {"type": "notify", "channels": [77]}]}),
        )
        .await;
    assert_eq!(patch.status, Status::BadRequest, "{}", patch.body);
    assert_eq!(patch.json()["error"]["field"], "actions[1].channels");
    assert!(patch.body.contains("no notification channel 77"), "{}", patch.body);
    assert_eq!(env.get(&format!("/api/v1/rules/{id}")).await.json()["actions"], json!([]));
    let patch = env
        .patch_json(&format!("/api/v1/rules/{id}"), &json!({"enabled": false, "severity": "high"}))
        .await;
    assert_eq!(patch.status, Status::Ok, "{}", patch.body);
    assert_eq!(
        (patch.json()["enabled"].as_bool(), patch.json()["severity"].as_str()),
        (Some(false), Some("high"))
    );
    let dup = env.post_json("/api/v1/rules", &json!({"name": "ok", "conditions": {"groups": [[{"field": "trust_score", "op": "lt", "value": 5}]]}})).await;
    assert_eq!(dup.status, Status::Conflict);
    assert_eq!(env.delete(&format!("/api/v1/rules/{id}")).await.status, Status::NoContent);
    assert_eq!(env.get(&format!("/api/v1/rules/{id}")).await.status, Status::NotFound);
}

#[rocket::async_test]
async fn geoip_overrides_households_and_trust_through_the_api() {
    let env = TestEnv::with_geoip().await;
    let status = env.get("/api/v1/geoip").await.json();
    assert_eq!(status["city"]["database_type"], "GeoIP2-City");
    assert_eq!(status["asn"]["database_type"], "GeoLite2-ASN");
    assert_eq!(status["license_key_set"], false);
    let london = env.get(&format!("/api/v1/geoip/lookup?ip={LONDON}")).await.json();
    assert_eq!(
        (london["geo"]["city"].as_str(), london["source"].as_str()),
        (Some("London"), Some("database"))
    );
    let telstra = env.get("/api/v1/geoip/lookup?ip=1.128.0.0").await.json();
    assert_eq!(telstra["geo"]["asn"], 1221);
    // An override wins over the database.
    let created = env
        .post_json(
            "/api/v1/geoip/overrides",
            &json!({"network": "81.2.69.0/24", "name": "Office VPN", "is_local": true}),
        )
        .await;
    assert_eq!(created.status, Status::Created, "{}", created.body);
    let vpn = env.get(&format!("/api/v1/geoip/lookup?ip={LONDON}")).await.json();
    assert_eq!((vpn["is_local"].as_bool(), vpn["source"].as_str()), (Some(true), Some("override")));
    let bad = env.post_json("/api/v1/geoip/overrides", &json!({"network": "nowhere"})).await;
    assert_eq!(bad.json()["error"]["field"], "network");
    let id = created.json()["id"].as_i64().unwrap();
    assert_eq!(
        env.delete(&format!("/api/v1/geoip/overrides/{id}")).await.status,
        Status::NoContent
    );
    assert_eq!(
        env.get(&format!("/api/v1/geoip/lookup?ip={LONDON}")).await.json()["source"],
        "database"
    );

    // Households and trust on a user.
    let mut sim = Sim::start(&env, three_servers()).await;
    sim.with(|w| {
        w.start(PLEX, "alice", &device("tv", "TV", "Plex", "X"), ip(BOXFORD), false, &film())
    });
    play_on(&env, &mut sim, 40).await;
    let alice = user_id(&env, "alice", "Sim Plex").await;
    let home = env
        .post_json(
            &format!("/api/v1/users/{alice}/households"),
            &json!({"network": "2.125.160.0/24", "label": "Home"}),
        )
        .await;
    assert_eq!(home.status, Status::Created, "{}", home.body);
    assert_eq!(home.json()["confirmed"], true);
    let bad = env
        .post_json(&format!("/api/v1/users/{alice}/households"), &json!({"network": "home"}))
        .await;
    assert_eq!(bad.status, Status::BadRequest);
    let trust = env
        .post_json(
            &format!("/api/v1/users/{alice}/trust"),
            &json!({"adjust": -30, "note": "shared with a neighbour"}),
        )
        .await;
    assert_eq!(trust.json()["trust_score"], 70);
    let both = env
        .post_json(&format!("/api/v1/users/{alice}/trust"), &json!({"adjust": -3, "value": 4}))
        .await;
    assert_eq!(both.status, Status::BadRequest);
    let user = env.get(&format!("/api/v1/users/{alice}")).await.json();
    assert_eq!(user["households"][0]["network"], "2.125.160.0/24");
    assert_eq!(user["trust_events"][0]["reason"], "admin");
    assert_eq!(user["trust_events"][0]["note"], "shared with a neighbour");
    assert_eq!(user["trust_events"][0]["actor"], "user:admin");
}

#[rocket::async_test]
async fn without_a_geoip_database_the_app_runs_and_the_dashboard_says_so() {
    let env = TestEnv::new().await;
    let page = env.get("/").await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(page.count("#no-geoip"), 1, "{}", page.body);
    let mut sim = Sim::start(&env, three_servers()).await;
    sim.with(|w| {
        w.start(PLEX, "alice", &device("tv", "TV", "Plex", "X"), ip(LONDON), false, &film())
    });
    sim.tick(&env, 1).await;
    let live = env.get("/api/v1/sessions").await.json();
    assert_eq!(live[0]["geo"], Value::Null);
    let env = TestEnv::with_geoip().await;
    assert_eq!(env.get("/").await.count("#no-geoip"), 0);
}
