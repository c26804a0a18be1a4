//! Settings → Servers, the servers API, history filters and export, users: through the
//! real app and real simulated servers.

mod common;

use common::TestEnv;
use common::sim::{JELLYFIN, PLEX, Sim, ep, film, phone, three_servers, tv};
use rocket::http::Status;
use serde_json::json;
use streamwarden::media::ServerKind;
use streamwarden::sim::{Cluster, World};

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

async fn one_server(kind: ServerKind) -> Cluster {
    let mut w = World::new();
    w.add_server(kind, "Lab", &[("1", "owner")]);
    Cluster::start(w).await.unwrap()
}

#[rocket::async_test]
async fn the_servers_api_adds_tests_changes_and_deletes_without_ever_returning_the_token() {
    let env = TestEnv::new().await;
    let cluster = one_server(ServerKind::Jellyfin).await;
    let e = &cluster.endpoints[0];

    let bad = env
        .post_json(
            "/api/v1/servers",
            &json!({"name": "x", "kind": "kodi", "url": e.url, "token": "t"}),
        )
        .await;
    assert_eq!(bad.status, Status::BadRequest);
    assert_eq!(bad.json()["error"]["field"], "kind");
    let bad = env
        .post_json(
            "/api/v1/servers",
            &json!({"name": "x", "kind": "plex", "url": "192.168.1.5:32400", "token": "t"}),
        )
        .await;
    assert_eq!(bad.json()["error"]["field"], "url");
    let bad =
        env.post_json("/api/v1/servers", &json!({"name": "x", "kind": "plex", "url": e.url})).await;
    assert_eq!(bad.status, Status::BadRequest, "the token is required: {}", bad.body);
    let bad = env
        .post_json(
            "/api/v1/servers",
            &json!({"name": "x", "kind": "plex", "url": e.url, "token": "t", "colour": "red"}),
        )
        .await;
    assert_eq!(bad.status, Status::BadRequest, "unknown fields are refused: {}", bad.body);

    let created = env
        .post_json(
            "/api/v1/servers",
            &json!({"name": "Lab", "kind": "jellyfin", "url": e.url, "token": e.token}),
        )
        .await;
    assert_eq!(created.status, Status::Created, "{}", created.body);
    assert!(!created.body.contains(&e.token), "the token is never returned");
    let id = created.json()["id"].as_i64().unwrap();
    assert_eq!(created.json()["health"]["status"], "unknown");
    let dup = env
        .post_json(
            "/api/v1/servers",
            &json!({"name": "lab", "kind": "jellyfin", "url": e.url, "token": e.token}),
        )
        .await;
    assert_eq!(dup.status, Status::BadRequest);
    assert_eq!(dup.json()["error"]["field"], "name");

    let tested = env.post_json(&format!("/api/v1/servers/{id}/test"), &json!({})).await;
    assert_eq!(tested.status, Status::Ok, "{}", tested.body);
    assert_eq!(tested.json()["name"], "Lab");
    assert_eq!(tested.json()["version"], "10.11.0");
    let fetched = env.get(&format!("/api/v1/servers/{id}")).await.json();
    assert_eq!(fetched["version"], "10.11.0", "the identity is remembered");
    assert!(fetched.get("token").is_none() && fetched.get("token_sealed").is_none());

    let patched = env
        .patch_json(&format!("/api/v1/servers/{id}"), &json!({"name": "Lab 2", "token": "wrong"}))
        .await;
    assert_eq!(patched.status, Status::Ok, "{}", patched.body);
    assert_eq!(patched.json()["name"], "Lab 2");
    let refused = env.post_json(&format!("/api/v1/servers/{id}/test"), &json!({})).await;
    assert_eq!(refused.status, Status::BadGateway);
    let message = refused.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("refused the token"), "{message}");
    assert!(!message.contains("wrong"), "never echo a token");

    assert_eq!(env.get("/api/v1/servers").await.json().as_array().unwrap().len(), 1);
    assert_eq!(env.delete(&format!("/api/v1/servers/{id}")).await.status, Status::NoContent);
    assert_eq!(env.get(&format!("/api/v1/servers/{id}")).await.status, Status::NotFound);
    assert_eq!(env.delete(&format!("/api/v1/servers/{id}")).await.status, Status::NotFound);
    let audit: i64 = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM audit_log WHERE action LIKE 'server.%'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(audit, 3, "create, update and delete are audited");
}

#[rocket::async_test]
async fn the_servers_page_adds_tests_edits_disables_and_deletes() {
    let env = TestEnv::new().await;
    let cluster = one_server(ServerKind::Plex).await;
    let e = &cluster.endpoints[0];

    let empty = env.get("/settings/servers").await;
    assert_eq!(empty.count("#no-servers"), 1);
    assert_eq!(empty.attrs("nav.tabs a[aria-current=page]", "href"), ["/settings/servers"]);

    // The connection test says what happened, in words.
    let ok = env
        .post_htmx(
            "/settings/servers/test",
            &[
                ("name", "Lab"),
                ("kind", "plex"),
                ("url", &e.url),
                ("token", &e.token),
                ("verify_tls", "true"),
            ],
        )
        .await;
    assert_eq!(ok.status, Status::Ok);
    assert_eq!(ok.attrs("[role=status]", "data-ok"), ["true"]);
    assert!(ok.text("[role=status]").starts_with("Connected to Lab (Plex 1.41"), "{}", ok.body);
    let wrong_token = env
        .post_htmx(
            "/settings/servers/test",
            &[("name", "Lab"), ("kind", "plex"), ("url", &e.url), ("token", "nope")],
        )
        .await;
    assert_eq!(wrong_token.attrs("[role=status]", "data-ok"), ["false"]);
    assert!(wrong_token.text("[role=status]").contains("copy it again"), "{}", wrong_token.body);
    let nobody = env
        .post_htmx(
            "/settings/servers/test",
            &[("name", "Lab"), ("kind", "plex"), ("url", "http://127.0.0.1:9"), ("token", "x")],
        )
        .await;
    assert!(nobody.text("[role=status]").contains("cannot reach the server"), "{}", nobody.body);
    let wrong_kind = env
        .post_htmx(
            "/settings/servers/test",
            &[("name", "Lab"), ("kind", "jellyfin"), ("url", &e.url), ("token", &e.token)],
        )
        .await;
    assert!(
        wrong_kind.text("[role=status]").contains("refused the token")
            || wrong_kind.text("[role=status]").contains("not this kind of server"),
        "{}",
        wrong_kind.body
    );

    let bad = env
        .post_form(
            "/settings/servers",
            &[("name", ""), ("kind", "plex"), ("url", &e.url), ("token", &e.token)],
        )
        .await;
    assert_eq!(bad.status, Status::BadRequest);
    assert!(bad.text(".alert-error p").starts_with("name:"), "{}", bad.body);

    let added = env
        .post_form(
            "/settings/servers",
            &[
                ("name", "Lab"),
                ("kind", "plex"),
                ("url", &e.url),
                ("token", &e.token),
                ("enabled", "true"),
                ("verify_tls", "true"),
            ],
        )
        .await;
    assert_eq!(added.status, Status::SeeOther, "{}", added.body);
    let page = env.get("/settings/servers").await;
    assert_eq!(page.count("#servers tbody tr"), 1);
    assert!(!page.body.contains(&e.token), "the token never reaches the browser");
    let id = page.attrs("#servers tbody tr", "data-server-id")[0].clone();

    // Editing without a token keeps the stored one: the test still connects.
    let edit = env.get(&format!("/settings/servers/{id}")).await;
    assert_eq!(edit.attrs("#token", "value"), [""]);
    assert_eq!(edit.attrs("#name", "value"), ["Lab"]);
    let saved = env
        .post_form(
            &format!("/settings/servers/{id}"),
            &[
                ("name", "Lab renamed"),
                ("kind", "plex"),
                ("url", &e.url),
                ("token", ""),
                ("enabled", "true"),
                ("verify_tls", "true"),
            ],
        )
        .await;
    assert_eq!(saved.status, Status::SeeOther, "{}", saved.body);
    let still = env
        .post_htmx(
            &format!("/settings/servers/test?id={id}"),
            &[("name", "Lab renamed"), ("kind", "plex"), ("url", &e.url), ("token", "")],
        )
        .await;
    assert_eq!(still.attrs("[role=status]", "data-ok"), ["true"], "{}", still.body);

    // Disable, then delete.
    let off = env.post_form(&format!("/settings/servers/{id}/enable?on=false"), &[]).await;
    assert_eq!(off.status, Status::SeeOther);
    let page = env.get("/settings/servers").await;
    assert!(page.text("#servers tbody tr td[data-label=Name]").contains("disabled"));
    let gone = env.post_form(&format!("/settings/servers/{id}/delete"), &[]).await;
    assert_eq!(gone.status, Status::SeeOther);
    assert_eq!(env.get("/settings/servers").await.count("#servers tbody tr"), 0);
}

#[rocket::async_test]
async fn a_disabled_or_deleted_server_stops_being_polled_and_keeps_its_history() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    sim.with(|w| w.start(PLEX, "alice", &tv(), ip("81.2.69.142"), false, &film()));
    sim.run(&env, 40, 5).await;
    let plex_id = sim.server_ids[PLEX];
    let reply =
        env.patch_json(&format!("/api/v1/servers/{plex_id}"), &json!({"enabled": false})).await;
    assert_eq!(reply.status, Status::Ok);
    sim.tick(&env, 5).await;
    assert!(env.get("/api/v1/sessions").await.json().as_array().unwrap().is_empty());
    let history = env.get("/api/v1/history").await.json();
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "its play is finished, not lost");
    env.delete(&format!("/api/v1/servers/{plex_id}")).await;
    let history = env.get("/api/v1/history").await.json();
    assert_eq!(
        history["items"][0]["server_name"], "Sim Plex",
        "history keeps the deleted server's name"
    );
}

/// Plays `n` finished plays: alternating users and kinds, one minute apart.
async fn finished_plays(env: &TestEnv, sim: &mut Sim, n: i64) {
    for i in 0..n {
        let (server, user, item) =
            if i % 2 == 0 { (PLEX, "alice", film()) } else { (JELLYFIN, "bob", ep(i % 4 + 1)) };
        let key = sim.with(|w| w.start(server, user, &phone(), ip("216.160.83.56"), false, &item));
        sim.run(env, 35, 5).await;
        sim.with(|w| w.stop(&key));
        sim.run(env, 25, 5).await;
    }
}

#[rocket::async_test]
async fn history_filters_pages_exports_and_links_to_users() {
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    finished_plays(&env, &mut sim, 7).await;

    let all = env.get("/api/v1/history?limit=3").await.json();
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let mut seen = 3;
    let mut cursor = all["next_cursor"].as_str().unwrap().to_owned();
    loop {
        let page = env.get(&format!("/api/v1/history?limit=3&cursor={cursor}")).await.json();
        seen += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, 7, "cursor paging visits every play once");

    let movies = env.get("/api/v1/history?media_type=movie").await.json();
    assert_eq!(movies["items"].as_array().unwrap().len(), 4);
    let bob = movies["items"][0]["user"]["id"].as_i64().unwrap();
    let episodes = env.get("/api/v1/history?q=episode").await.json();
    assert_eq!(episodes["items"].as_array().unwrap().len(), 3);
    let by_server =
        env.get(&format!("/api/v1/history?server_id={}", sim.server_ids[JELLYFIN])).await.json();
    assert_eq!(by_server["items"].as_array().unwrap().len(), 3);
    let none = env.get("/api/v1/history?from=2030-01-01").await.json();
    assert!(none["items"].as_array().unwrap().is_empty());
    let bad = env.get("/api/v1/history?from=soon").await;
    assert_eq!(
        (bad.status, bad.json()["error"]["field"].as_str()),
        (Status::BadRequest, Some("from"))
    );

    // The page: filters as an htmx swap of the results only.
    let page = env.get("/history?media_type=episode").await;
    assert_eq!(page.count("#history tbody tr"), 3);
    assert_eq!(page.attrs("#media_type option[selected]", "value"), ["episode"]);
    let admin = env.session.clone().unwrap();
    let swap = env
        .as_(&admin)
        .request(rocket::http::Method::Get, "/history?q=sintel")
        .header(rocket::http::Header::new("HX-Request", "true"))
        .header(rocket::http::Header::new("HX-Target", "history-results"))
        .dispatch()
        .await;
    let swap = common::Reply::read(swap).await;
    assert_eq!(swap.count("nav.mainnav"), 0, "only the results");
    assert_eq!(swap.count("#history tbody tr"), 4);

    // CSV: a header and one line per play, titles quoted when they need it.
    let csv = env.get("/history.csv?media_type=movie").await;
    assert_eq!(csv.status, Status::Ok);
    assert_eq!(csv.header("Content-Type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("id,started_at,stopped_at,user,server"));
    assert_eq!(lines.len(), 5);
    assert!(lines[1].contains(",alice,Sim Plex,movie,Sintel,"), "{}", lines[1]);

    // Users: the list, and one user's devices, addresses and plays.
    let users = env.get("/users").await;
    assert!(users.count("#users tbody tr") >= 2);
    let alice = env
        .get("/api/v1/users")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice" && u["server_name"] == "Sim Plex")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let detail = env.get(&format!("/users/{alice}")).await;
    assert_eq!(detail.text("[data-stat=plays]"), "4");
    assert_eq!(detail.count("#devices tbody tr"), 1);
    assert_eq!(detail.count("#recent tbody tr"), 4);
    let api = env.get(&format!("/api/v1/users/{alice}")).await.json();
    assert_eq!(api["locations"][0]["ip"], "216.160.83.56");
    assert_eq!(api["plays"], 4);
    let _ = bob;
}

#[rocket::async_test]
async fn the_openapi_document_lists_every_api_route() {
    let env = TestEnv::new().await;
    let doc = env.get("/api/v1/openapi.json").await.json();
    let paths = doc["paths"].as_object().unwrap();
    for route in env.client.rocket().routes() {
        let path = route.uri.path().to_string();
        if !path.starts_with("/api/") {
            continue;
        }
        let templated = path.replace("<id>", "{id}");
        assert!(paths.contains_key(&templated), "{templated} is not documented");
        let method = route.method.as_str().to_ascii_lowercase();
        assert!(paths[&templated].get(&method).is_some(), "{method} {templated} is not documented");
    }
}
