//! One person across servers, end to end: the real app polling simulated Plex and Jellyfin
//! servers with MaxMind's test databases. Suggested by name, confirmed by an admin on the
//! Users page, seen by the API, then a sharing rule firing across two servers; undone, and
//! the same streams raise nothing.

mod common;

use common::TestEnv;
use common::sim::{JELLYFIN, PLEX, Sim, film, three_servers};
use rocket::http::Status;
use serde_json::{Value, json};
use streamwarden::sim::world::device;

const LONDON: &str = "81.2.69.142";
const MILTON: &str = "216.160.83.56";

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

async fn violations(env: &TestEnv) -> Vec<Value> {
    env.rules_settled().await;
    let reply = env.get("/api/v1/violations").await;
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
        .unwrap_or_else(|| panic!("{name} on {server} in {users}"))["id"]
        .as_i64()
        .unwrap()
}

/// Alice streams on Plex from London and on Jellyfin from Milton at once, for a minute,
/// then both stop.
async fn alice_in_two_cities(env: &TestEnv, sim: &mut Sim, round: u32) {
    let laptop = device(&format!("alice-laptop-{round}"), "ThinkPad", "Plex Web", "Firefox");
    let tv = device(&format!("alice-tv-{round}"), "Living room", "Jellyfin Web", "Chrome");
    let a = sim.with(|w| w.start(PLEX, "alice", &laptop, ip(LONDON), false, &film()));
    let b = sim.with(|w| w.start(JELLYFIN, "alice", &tv, ip(MILTON), false, &film()));
    sim.run(env, 60, 5).await;
    env.rules_settled().await;
    let live = env.get("/api/v1/sessions").await.json();
    assert_eq!(live.as_array().unwrap().len(), 2, "{live}");
    sim.with(|w| {
        w.stop(&a);
        w.stop(&b);
    });
    sim.run(env, 30, 5).await;
    env.rules_settled().await;
}

#[rocket::async_test]
async fn linked_accounts_are_one_person_to_the_sharing_rules_and_unlinking_undoes_it() {
    let env = TestEnv::with_geoip().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let presets = env.get("/api/v1/rule-presets").await.json();
    let rule =
        presets.as_array().unwrap().iter().find(|p| p["key"] == "simultaneous_locations").unwrap()
            ["rule"]
            .clone();
    assert_eq!(env.post_json("/api/v1/rules", &rule).await.status, Status::Created);

    // Two accounts: two users, each in one place. Nothing to say.
    alice_in_two_cities(&env, &mut sim, 1).await;
    assert!(violations(&env).await.is_empty());
    let on_plex = user_id(&env, "alice", "Sim Plex").await;
    let on_jellyfin = user_id(&env, "alice", "Sim Jellyfin").await;

    // Suggested by name, in the API and on the Users page.
    let found = env.get("/api/v1/persons/suggestions").await.json();
    let alice = found
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "alice")
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(alice["reason"], "name");
    let ids: Vec<i64> =
        alice["users"].as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()).collect();
    // Every server lists an alice (Emby's too, from its user list).
    assert!(ids.contains(&on_plex) && ids.contains(&on_jellyfin), "{ids:?}");
    let page = env.get("/users").await;
    assert!(page.count("#suggestions .suggestion") >= 1, "{}", page.body);
    assert_eq!(page.text("#persons p"), "No linked accounts yet.");

    // The admin confirms it from the page.
    let (a, b) = (on_plex.to_string(), on_jellyfin.to_string());
    let linked = env
        .post_form("/persons", &[("user_ids", &a), ("user_ids", &b), ("name", "Alice Martin")])
        .await;
    assert!(linked.status == Status::SeeOther || linked.status == Status::Ok, "{}", linked.body);
    let persons = env.get("/api/v1/persons").await.json();
    assert_eq!(persons.as_array().unwrap().len(), 1, "{persons}");
    let person_id = persons[0]["id"].as_i64().unwrap();
    assert_eq!(persons[0]["name"], "Alice Martin");
    let user = env.get(&format!("/api/v1/users/{on_jellyfin}")).await.json();
    assert_eq!(user["person"], json!({"id": person_id, "name": "Alice Martin"}));
    let bob = user_id(&env, "bob", "Sim Plex").await;
    assert_eq!(env.get(&format!("/api/v1/users/{bob}")).await.json()["person"], Value::Null);
    let history = env.get(&format!("/api/v1/history?user={on_plex}")).await.json();
    assert_eq!(history["items"][0]["person"]["id"], person_id);
    assert!(
        !env.get("/api/v1/persons/suggestions").await.json().as_array().unwrap().iter().any(|s| {
            s["users"]
                .as_array()
                .unwrap()
                .iter()
                .all(|u| [on_plex, on_jellyfin].contains(&u["id"].as_i64().unwrap()))
        }),
        "a linked pair is no suggestion any more"
    );
    let detail = env.get(&format!("/users/{on_plex}")).await;
    assert_eq!(detail.text("#person-name"), "Alice Martin");
    assert_eq!(detail.texts("#person a"), ["alice"]);

    // The same two streams again: now one person in two cities at once. Each stream raises
    // its violation (violations are per rule and session), on its own server.
    alice_in_two_cities(&env, &mut sim, 2).await;
    let found = violations(&env).await;
    assert_eq!(found.len(), 2, "{found:?}");
    let mut servers: Vec<&str> = found.iter().map(|v| v["server_name"].as_str().unwrap()).collect();
    servers.sort_unstable();
    assert_eq!(servers, ["Sim Jellyfin", "Sim Plex"]);
    for v in &found {
        assert_eq!(v["rule"]["name"], "Simultaneous locations");
        assert_eq!(v["user"]["name"], "alice");
        let evidence = &v["evidence"]["groups"][0][0];
        assert_eq!(evidence["field"], "active_session_distance_km");
        assert!(evidence["actual"].as_f64().unwrap() > 7000.0, "London to Milton: {evidence}");
        let mut places: Vec<&str> = evidence["related"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["place"].as_str())
            .collect();
        places.sort_unstable();
        assert_eq!(places, ["London, GB", "Milton, US"]);
    }

    // Undo: the Jellyfin account leaves; the person had two accounts, so it is dissolved.
    let undone = env.delete(&format!("/api/v1/users/{on_jellyfin}/person")).await;
    assert_eq!(undone.status, Status::Ok, "{}", undone.body);
    assert_eq!(undone.json(), json!({"person_id": person_id, "dissolved": true}));
    assert_eq!(env.get(&format!("/api/v1/users/{on_plex}")).await.json()["person"], Value::Null);
    assert_eq!(
        env.delete(&format!("/api/v1/users/{on_jellyfin}/person")).await.status,
        Status::Conflict
    );
    alice_in_two_cities(&env, &mut sim, 3).await;
    assert_eq!(violations(&env).await.len(), 2, "two accounts again: nothing new");

    // Suggested again; "different people" puts it away for good.
    let again = env.get("/api/v1/persons/suggestions").await.json();
    assert!(again.as_array().unwrap().iter().any(|s| s["name"] == "alice"), "{again}");
    let everyone: Vec<Value> =
        again.as_array().unwrap().iter().find(|s| s["name"] == "alice").unwrap()["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].clone())
            .collect();
    let dismissed =
        env.post_json("/api/v1/persons/dismissals", &json!({"user_ids": everyone})).await;
    assert_eq!(dismissed.status, Status::NoContent, "{}", dismissed.body);
    let after = env.get("/api/v1/persons/suggestions").await.json();
    assert!(!after.as_array().unwrap().iter().any(|s| s["name"] == "alice"), "{after}");
}

#[rocket::async_test]
async fn the_persons_api_links_merges_renames_and_refuses_bad_input() {
    let env = TestEnv::with_geoip().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    // Bob on two servers, mallory on one: their accounts exist once they stream.
    let phone = device("bob-phone", "Pixel", "Plex for Android", "Android");
    let tv = device("bob-tv", "TV", "Jellyfin Web", "Chrome");
    sim.with(|w| w.start(PLEX, "bob", &phone, ip(LONDON), false, &film()));
    sim.with(|w| w.start(JELLYFIN, "bob", &tv, ip(LONDON), false, &film()));
    sim.with(|w| w.start(PLEX, "mallory", &phone, ip(LONDON), false, &film()));
    sim.run(&env, 60, 5).await;
    let bob_plex = user_id(&env, "bob", "Sim Plex").await;
    let bob_jf = user_id(&env, "bob", "Sim Jellyfin").await;
    let mallory = user_id(&env, "mallory", "Sim Plex").await;

    for (body, field) in [
        (json!({"user_ids": [bob_plex]}), "user_ids"),
        (json!({"user_ids": [bob_plex, bob_plex]}), "user_ids"),
        (json!({"user_ids": [bob_plex, 9999]}), "user_ids"),
        (json!({"user_ids": [bob_plex, bob_jf], "name": "x".repeat(101)}), "name"),
        (json!({"user_ids": [bob_plex, bob_jf], "colour": "red"}), "body"),
    ] {
        let r = env.post_json("/api/v1/persons", &body).await;
        assert_eq!(r.status, Status::BadRequest, "{body}: {}", r.body);
        assert!(r.body.contains(field), "{body}: {}", r.body);
    }
    assert_eq!(env.get("/api/v1/persons").await.json(), json!([]), "nothing was saved");

    let created = env.post_json("/api/v1/persons", &json!({"user_ids": [bob_plex, bob_jf]})).await;
    assert_eq!(created.status, Status::Created, "{}", created.body);
    let bob = created.json();
    assert_eq!(bob["name"], "bob", "named after the first account");
    assert_eq!(bob["users"].as_array().unwrap().len(), 2);
    let id = bob["id"].as_i64().unwrap();
    let live = env.get("/api/v1/sessions").await.json();
    let bobs: Vec<&Value> =
        live.as_array().unwrap().iter().filter(|s| s["user"]["name"] == "bob").collect();
    assert_eq!(bobs.len(), 2);
    assert!(bobs.iter().all(|s| s["person"]["id"] == id), "{live}");
    assert!(
        live.as_array()
            .unwrap()
            .iter()
            .any(|s| s["user"]["name"] == "mallory" && s["person"].is_null())
    );

    // Mallory joins bob's person; renamed; one account leaves; dissolved.
    let joined = env.post_json("/api/v1/persons", &json!({"user_ids": [mallory, bob_plex]})).await;
    assert_eq!(joined.status, Status::Created);
    assert_eq!(joined.json()["id"], id, "the existing person grows");
    assert_eq!(joined.json()["users"].as_array().unwrap().len(), 3);
    let renamed =
        env.patch_json(&format!("/api/v1/persons/{id}"), &json!({"name": "The Smiths"})).await;
    assert_eq!(renamed.json()["name"], "The Smiths");
    assert_eq!(
        env.patch_json(&format!("/api/v1/persons/{id}"), &json!({"name": "  "})).await.status,
        Status::BadRequest
    );
    let left = env.delete(&format!("/api/v1/users/{mallory}/person")).await.json();
    assert_eq!(left["dissolved"], false);
    assert_eq!(
        env.get(&format!("/api/v1/persons/{id}")).await.json()["users"].as_array().unwrap().len(),
        2
    );

    // The page's "unlink all".
    let gone = env.post_form(&format!("/persons/{id}/delete"), &[]).await;
    assert!(gone.status == Status::SeeOther || gone.status == Status::Ok, "{}", gone.body);
    assert_eq!(env.get(&format!("/api/v1/persons/{id}")).await.status, Status::NotFound);
    assert_eq!(env.delete(&format!("/api/v1/persons/{id}")).await.status, Status::NotFound);
    assert_eq!(env.get(&format!("/api/v1/users/{bob_jf}")).await.json()["person"], Value::Null);

    // Every change is in the audit log.
    let audit: Vec<String> = env
        .db()
        .read(|c| {
            let mut s =
                c.prepare("SELECT action FROM audit_log WHERE action LIKE 'person.%' ORDER BY id")?;
            let rows = s.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    assert_eq!(
        audit,
        ["person.link", "person.link", "person.rename", "person.unlink", "person.dissolve"]
    );
}
