//! Library maintenance end to end: rules and their candidates over synced libraries,
//! exclusions, and deleting through the simulated media servers with the cascade to
//! loopback Radarr, Sonarr and Seerr that check the API key and record what they receive.

mod common;

use common::TestEnv;
use common::sim::{DAY, PLEX, Sim, film, library_world, sync, tv};
use rocket::http::Status;
use serde_json::{Value, json};
use streamwarden::integrations::IntegrationKind;
use streamwarden::sim::Action;
use streamwarden::sim::arr::{ArrFile, ArrMovie, ArrSeries, ArrState, FakeArr, SeerrMedia};

async fn library_id(env: &TestEnv, server: &str, name: &str) -> i64 {
    let libs = env.get("/api/v1/libraries").await.json();
    libs.as_array()
        .unwrap()
        .iter()
        .find(|l| l["server_name"] == server && l["name"] == name)
        .unwrap_or_else(|| panic!("no {server} · {name}: {libs}"))["id"]
        .as_i64()
        .unwrap()
}

async fn create_rule(env: &TestEnv, rule: &Value) -> Value {
    let reply = env.post_json("/api/v1/maintenance/rules", rule).await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    reply.json()
}

async fn candidates(env: &TestEnv, query: &str) -> Value {
    let reply = env.get(&format!("/api/v1/maintenance/candidates?{query}")).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.json()
}

fn titles(page: &Value) -> Vec<String> {
    let mut t: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["item"]["title"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

fn local_date(ms: i64) -> String {
    streamwarden::format::local_date(ms)
}

/// A synced library world with the demo's admin signed in.
async fn synced() -> (TestEnv, Sim, i64) {
    let env = TestEnv::new().await;
    let now = streamwarden::time::now_ms();
    let sim = Sim::start(&env, library_world(now)).await;
    assert_eq!(sync(&env).await["status"], "done");
    (env, sim, now)
}

#[rocket::async_test]
async fn rules_propose_candidates_with_reasons_and_exclusions_keep_items_out() {
    let (env, mut sim, now) = synced().await;
    let movies = library_id(&env, "Sim Plex", "Movies").await;
    let films = library_id(&env, "Sim Jellyfin", "Films").await;
    let rule = create_rule(
        &env,
        &json!({"name": "Old movies", "library_ids": [movies], "criteria": [{"type": "unwatched_movie"}]}),
    )
    .await;
    assert_eq!(rule["match"], "all");
    assert_eq!(rule["enabled"], true);
    assert_eq!(
        rule["criteria"],
        json!([{"type": "unwatched_movie", "params": {"days": 365}}]),
        "the default"
    );
    assert_eq!(rule["cascade"], json!({"radarr": false, "sonarr": false, "seerr": false}));
    assert_eq!(rule["candidates"], 2, "evaluated at once");
    assert_eq!(rule["size_bytes"], 4_000_000_000_i64 + 1_200_000_000);
    let id = rule["id"].as_i64().unwrap();

    let page = candidates(&env, &format!("rule_id={id}")).await;
    assert_eq!(titles(&page), ["Big Buck Bunny", "Sintel"]);
    assert_eq!(page["total"], 2);
    assert_eq!(page["total_size_bytes"], 5_200_000_000_i64);
    let sintel = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["item"]["title"] == "Sintel")
        .unwrap()
        .clone();
    assert_eq!(sintel["rule"], json!({"id": id, "name": "Old movies"}));
    assert_eq!(
        sintel["reasons"],
        json!([
            format!("never watched, added {}, 400 days ago", local_date(now - 400 * DAY)),
            "frees 4.0 GB"
        ])
    );
    assert_eq!(sintel["item"]["external_ids"]["tmdb"], "45745");
    assert_eq!(page["items"][0]["item"]["title"], "Sintel", "the biggest first");

    // Alice watches Sintel (a user the server's own data knows nothing of): evaluated on
    // demand, it is no longer a candidate. Bunny keeps its candidate id.
    let bunny = page["items"][1]["id"].clone();
    sim.with(|w| w.start(PLEX, "alice", &tv(), "81.2.69.142".parse().unwrap(), false, &film()));
    sim.run(&env, 40, 5).await;
    let evaluated =
        env.post_json(&format!("/api/v1/maintenance/rules/{id}/evaluate"), &json!({})).await;
    assert_eq!(evaluated.json(), json!({"candidates": 1, "size_bytes": 1_200_000_000_i64}));
    let page = candidates(&env, &format!("rule_id={id}")).await;
    assert_eq!(titles(&page), ["Big Buck Bunny"]);
    assert_eq!(
        page["items"][0]["id"], bunny,
        "the same candidate id from one evaluation to the next"
    );

    // Excluded until a date: gone from the candidates at once, and not proposed again.
    let bunny_item = page["items"][0]["item"]["id"].as_i64().unwrap();
    let until = local_date(now + 30 * DAY);
    let excluded = env
        .post_json(
            "/api/v1/maintenance/exclusions",
            &json!({"item_id": bunny_item, "until": until, "reason": "the kids love it"}),
        )
        .await;
    assert_eq!(excluded.status, Status::Created, "{}", excluded.body);
    let exclusion = excluded.json();
    assert_eq!(
        (exclusion["active"].as_bool(), exclusion["reason"].as_str()),
        (Some(true), Some("the kids love it"))
    );
    assert_eq!(exclusion["item"]["title"], "Big Buck Bunny");
    assert_eq!(candidates(&env, &format!("rule_id={id}")).await["total"], 0);
    env.post_json(&format!("/api/v1/maintenance/rules/{id}/evaluate"), &json!({})).await;
    assert_eq!(
        candidates(&env, &format!("rule_id={id}")).await["total"],
        0,
        "never a candidate while excluded"
    );
    for (body, field) in [
        (json!({"item_id": bunny_item, "until": "2001-01-01"}), "until"),
        (json!({"item_id": 999_999}), ""),
        (json!({"item_id": bunny_item, "until": "next week"}), "until"),
    ] {
        let reply = env.post_json("/api/v1/maintenance/exclusions", &body).await;
        assert!(matches!(reply.status.code, 400 | 404), "{body}: {}", reply.body);
        if !field.is_empty() {
            assert_eq!(reply.json()["error"]["field"], field);
        }
    }
    let ex_id = exclusion["id"].as_i64().unwrap();
    assert_eq!(
        env.delete(&format!("/api/v1/maintenance/exclusions/{ex_id}")).await.status,
        Status::NoContent
    );
    env.post_json(&format!("/api/v1/maintenance/rules/{id}/evaluate"), &json!({})).await;
    assert_eq!(titles(&candidates(&env, &format!("rule_id={id}")).await), ["Big Buck Bunny"]);

    // More criteria: low resolution across servers, large files, "any".
    let low = create_rule(
        &env,
        &json!({"name": "Low", "library_ids": [movies, films], "criteria": [{"type": "low_resolution"}]}),
    )
    .await;
    let low_page = candidates(&env, &format!("rule_id={}", low["id"])).await;
    assert_eq!(
        titles(&low_page),
        ["Big Buck Bunny", "Sintel"],
        "Bunny 480p on Plex, Sintel 720p on Jellyfin"
    );
    let either = create_rule(
        &env,
        &json!({"name": "Big or low", "match": "any", "library_ids": [movies],
                "criteria": [{"type": "large_file", "params": {"min_size_gb": 50}}, {"type": "low_resolution", "params": {"max_height": 480}}]}),
    )
    .await;
    let page = candidates(&env, &format!("rule_id={}", either["id"])).await;
    assert_eq!(titles(&page), ["Big Buck Bunny", "Huge"]);
    let huge =
        page["items"].as_array().unwrap().iter().find(|c| c["item"]["title"] == "Huge").unwrap();
    assert_eq!(huge["reasons"], json!(["60.0 GB, larger than 50 GB", "frees 60.0 GB"]));
    // The library filter and the totals across rules count an item once.
    let all = candidates(&env, &format!("library_id={movies}")).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4, "Bunny by three rules, Huge by one");
    assert_eq!(all["total"], 2);
    assert_eq!(all["total_size_bytes"], 61_200_000_000_i64);

    // Seasons: keep the newest one of The Show.
    let shows = library_id(&env, "Sim Plex", "Shows").await;
    let trim = create_rule(
        &env,
        &json!({"name": "Trim", "library_ids": [shows], "criteria": [{"type": "keep_latest_seasons", "params": {"keep": 1}}]}),
    )
    .await;
    let page = candidates(&env, &format!("rule_id={}", trim["id"])).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let season = &page["items"][0];
    assert_eq!(
        (season["item"]["kind"].as_str(), season["item"]["season_number"].as_i64()),
        (Some("season"), Some(1))
    );
    assert_eq!(season["reasons"], json!(["season 1 of 2; only the newest 1 kept", "frees 6.0 GB"]));

    // A disabled rule proposes nothing; rules list with what they found.
    let off = env
        .patch_json(
            &format!("/api/v1/maintenance/rules/{}", trim["id"]),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(
        (off.json()["enabled"].as_bool(), off.json()["candidates"].as_i64()),
        (Some(false), Some(0))
    );
    let listed = env.get("/api/v1/maintenance/rules").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 4);
    assert_eq!(
        env.delete(&format!("/api/v1/maintenance/rules/{}", trim["id"])).await.status,
        Status::NoContent
    );
    assert_eq!(
        env.get(&format!("/api/v1/maintenance/rules/{}", trim["id"])).await.status,
        Status::NotFound
    );
}

#[rocket::async_test]
async fn a_rule_that_does_not_check_out_is_refused_naming_the_field() {
    let (env, _sim, _) = synced().await;
    let movies = library_id(&env, "Sim Plex", "Movies").await;
    let music = library_id(&env, "Sim Plex", "Music").await;
    let good =
        json!({"name": "Rule", "library_ids": [movies], "criteria": [{"type": "unwatched_movie"}]});
    let with = |key: &str, value: Value| {
        let mut v = good.clone();
        v[key] = value;
        v
    };
    for (body, field) in [
        (with("name", json!("")), "name"),
        (with("library_ids", json!([])), "library_ids"),
        (with("library_ids", json!([music])), "library_ids[0]"),
        (with("match", json!("some")), "match"),
        (
            with("criteria", json!([{"type": "unwatched_movie", "params": {"days": 99999}}])),
            "criteria[0].params.days",
        ),
        (with("criteria", json!([{"type": "large_file"}, {"type": "nope"}])), "criteria[1].type"),
        (with("criteria", json!([])), "criteria"),
        (with("surprise", json!(1)), "body"),
    ] {
        let reply = env.post_json("/api/v1/maintenance/rules", &body).await;
        assert_eq!(reply.status, Status::BadRequest, "{body}");
        assert_eq!(reply.json()["error"]["field"], field, "{body}: {}", reply.body);
    }
    create_rule(&env, &good).await;
    let twice = env.post_json("/api/v1/maintenance/rules", &with("name", json!("rule"))).await;
    assert_eq!(twice.json()["error"]["field"], "name", "names are unique, whatever the case");
    assert!(
        env.get("/api/v1/maintenance/rules").await.json().as_array().unwrap().len() == 1,
        "nothing half-saved"
    );
}

/// Radarr with Sintel, Sonarr with The Show (both seasons, files for each), Seerr with both.
async fn arrs() -> (FakeArr, FakeArr, FakeArr) {
    let radarr = FakeArr::start(
        IntegrationKind::Radarr,
        "radarr-key-0123456789abcdef",
        ArrState {
            movies: vec![ArrMovie { id: 7, tmdb_id: 45745, title: "Sintel".into() }],
            ..ArrState::default()
        },
    )
    .await
    .unwrap();
    let sonarr = FakeArr::start(
        IntegrationKind::Sonarr,
        "sonarr-key-0123456789abcdef",
        ArrState {
            series: vec![ArrSeries {
                id: 3,
                tvdb_id: 1234,
                title: "The Show".into(),
                seasons: vec![(1, true), (2, true)],
            }],
            files: vec![
                ArrFile { id: 31, series_id: 3, season_number: 1 },
                ArrFile { id: 32, series_id: 3, season_number: 1 },
                ArrFile { id: 33, series_id: 3, season_number: 2 },
            ],
            ..ArrState::default()
        },
    )
    .await
    .unwrap();
    let seerr = FakeArr::start(
        IntegrationKind::Seerr,
        "seerr-key-0123456789abcdef",
        ArrState {
            media: vec![
                SeerrMedia {
                    id: 50,
                    tmdb_id: 45745,
                    kind: "movie".into(),
                    requests: vec![(500, vec![])],
                },
                SeerrMedia {
                    id: 60,
                    tmdb_id: 1399,
                    kind: "tv".into(),
                    requests: vec![(600, vec![1]), (601, vec![2])],
                },
            ],
            ..ArrState::default()
        },
    )
    .await
    .unwrap();
    (radarr, sonarr, seerr)
}

async fn add_integration(env: &TestEnv, arr: &FakeArr, name: &str) -> Value {
    let reply = env
        .post_json(
            "/api/v1/integrations",
            &json!({"kind": arr.kind.as_str(), "name": name, "url": arr.url, "api_key": arr.api_key}),
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    reply.json()
}

#[rocket::async_test]
async fn integrations_keep_their_keys_secret_and_test_their_connection() {
    let env = TestEnv::new().await;
    let (radarr, sonarr, seerr) = arrs().await;
    let r = add_integration(&env, &radarr, "Radarr").await;
    assert_eq!((r["kind"].as_str(), r["api_key_set"].as_bool()), (Some("radarr"), Some(true)));
    assert!(!r.to_string().contains(&radarr.api_key), "the key is never answered back");
    let sealed: String = env
        .db()
        .read(|c| Ok(c.query_row("SELECT api_key_sealed FROM integrations", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert!(!sealed.contains(&radarr.api_key), "sealed at rest");
    let id = r["id"].as_i64().unwrap();
    let test = env.post_json(&format!("/api/v1/integrations/{id}/test"), &json!({})).await;
    assert_eq!(test.json(), json!({"ok": true, "version": "5.14.0.9383"}));
    assert_eq!(
        env.get(&format!("/api/v1/integrations/{id}")).await.json()["version"],
        "5.14.0.9383"
    );

    // Sonarr's URL filed as Radarr: the test says what it found.
    let wrong = add_integration(&env, &sonarr, "Not Radarr").await;
    let patched = env
        .patch_json(&format!("/api/v1/integrations/{}", wrong["id"]), &json!({"kind": "radarr"}))
        .await;
    assert_eq!(patched.json()["kind"], "radarr");
    let test =
        env.post_json(&format!("/api/v1/integrations/{}/test", wrong["id"]), &json!({})).await;
    assert_eq!(test.status, Status::BadGateway);
    assert!(
        test.json()["error"]["message"].as_str().unwrap().contains("this is Sonarr, not Radarr"),
        "{}",
        test.body
    );

    // A wrong key: refused by the app, and the test says so without showing either key.
    let s = add_integration(&env, &seerr, "Seerr").await;
    env.patch_json(
        &format!("/api/v1/integrations/{}", s["id"]),
        &json!({"api_key": "not-the-key-at-all"}),
    )
    .await;
    let test = env.post_json(&format!("/api/v1/integrations/{}/test", s["id"]), &json!({})).await;
    assert_eq!(test.status, Status::BadGateway);
    let message = test.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("the API key was refused (HTTP 403)"), "{message}");
    assert!(!message.contains("not-the-key") && !message.contains(&seerr.api_key));
    assert!(seerr.state().received.iter().any(|r| !r.key_ok), "the fake checks the key");

    // Bad input is refused, naming the field.
    for (body, field) in [
        (json!({"kind": "lidarr", "name": "x", "url": "http://h", "api_key": "k"}), "kind"),
        (json!({"kind": "radarr", "name": "x", "url": "h:7878", "api_key": "k"}), "url"),
        (json!({"kind": "radarr", "name": "x", "url": "http://h"}), "api_key"),
        (json!({"kind": "radarr", "name": "radarr", "url": "http://h", "api_key": "k"}), "name"),
    ] {
        let reply = env.post_json("/api/v1/integrations", &body).await;
        assert_eq!(reply.status, Status::BadRequest, "{body}");
        assert_eq!(reply.json()["error"]["field"], field, "{body}");
    }
    assert_eq!(env.delete(&format!("/api/v1/integrations/{id}")).await.status, Status::NoContent);
    assert_eq!(env.get("/api/v1/integrations").await.json().as_array().unwrap().len(), 2);
}

#[rocket::async_test]
async fn deleting_goes_through_the_media_server_then_cascades_and_is_logged() {
    let (env, sim, _) = synced().await;
    sim.with(|w| {
        w.servers[PLEX].libraries[1].shows[0].tmdb = Some("1399".into());
    });
    assert_eq!(sync(&env).await["status"], "done");
    let (radarr, sonarr, seerr) = arrs().await;
    for (arr, name) in [(&radarr, "Radarr"), (&sonarr, "Sonarr"), (&seerr, "Seerr")] {
        add_integration(&env, arr, name).await;
    }
    let movies = library_id(&env, "Sim Plex", "Movies").await;
    let shows = library_id(&env, "Sim Plex", "Shows").await;
    let old = create_rule(
        &env,
        &json!({"name": "Old", "library_ids": [movies], "criteria": [{"type": "unwatched_movie"}],
        "cascade": {"radarr": true, "seerr": true}}),
    )
    .await;
    let trim = create_rule(&env, &json!({"name": "Trim", "library_ids": [shows],
        "criteria": [{"type": "keep_latest_seasons", "params": {"keep": 1}}], "cascade": {"sonarr": true, "seerr": true}})).await;
    let sintel = candidates(&env, &format!("rule_id={}", old["id"])).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["item"]["title"] == "Sintel")
        .unwrap()["id"]
        .clone();
    let season =
        candidates(&env, &format!("rule_id={}", trim["id"])).await["items"][0]["id"].clone();

    // Without confirm: refused, nothing touched.
    let refused =
        env.post_json("/api/v1/maintenance/delete", &json!({"candidate_ids": [sintel]})).await;
    assert_eq!(refused.status, Status::BadRequest);
    assert_eq!(refused.json()["error"]["field"], "confirm");
    assert!(sim.with(|w| w.actions.is_empty()));

    let reply = env
        .post_json(
            "/api/v1/maintenance/delete",
            &json!({"candidate_ids": [sintel, season], "confirm": true}),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    let done = reply.json();
    let items = done["items"].as_array().unwrap();
    assert_eq!(items[0]["title"], "Sintel (2010)");
    assert_eq!(
        (
            items[0]["server"].as_str(),
            items[0]["radarr"].as_str(),
            items[0]["sonarr"].as_str(),
            items[0]["seerr"].as_str()
        ),
        (Some("deleted"), Some("deleted"), Some("skipped"), Some("deleted"))
    );
    assert!(items[0]["error"].is_null(), "{}", items[0]);
    assert_eq!(items[1]["title"], "The Show · Season 1");
    assert_eq!(
        (
            items[1]["server"].as_str(),
            items[1]["radarr"].as_str(),
            items[1]["sonarr"].as_str(),
            items[1]["seerr"].as_str()
        ),
        (Some("deleted"), Some("skipped"), Some("deleted"), Some("deleted"))
    );
    assert_eq!(done["freed_bytes"], 4_000_000_000_i64 + 6_000_000_000);

    // The media server was asked, by the right ids.
    let deleted: Vec<String> = sim.with(|w| {
        w.actions
            .iter()
            .filter_map(|a| match a {
                Action::Deleted { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect()
    });
    assert_eq!(deleted, ["900", "700s1"]);
    // Radarr: found by TMDB id, deleted with its files. Every request carried the key.
    assert_eq!(
        radarr.state().changes(),
        ["DELETE /api/v3/movie/7?addImportExclusion=false&deleteFiles=true"]
    );
    assert!(radarr.state().received.iter().all(|r| r.key_ok));
    assert!(radarr.state().movies.is_empty());
    // Sonarr: season 1 unmonitored first, then its two files deleted; season 2 untouched.
    assert_eq!(
        sonarr.state().changes(),
        ["PUT /api/v3/series/3", "DELETE /api/v3/episodefile/31", "DELETE /api/v3/episodefile/32"]
    );
    let put: Value = serde_json::from_str(
        &sonarr.state().received.iter().find(|r| r.method == "PUT").unwrap().body,
    )
    .unwrap();
    assert_eq!(put["seasons"][0]["monitored"], false);
    assert_eq!(put["seasons"][1]["monitored"], true);
    assert_eq!(sonarr.state().series[0].seasons, [(1, false), (2, true)]);
    assert_eq!(sonarr.state().files.len(), 1);
    // Seerr: the movie's media cleared; for the season, the request that asked for it.
    assert_eq!(seerr.state().changes(), ["DELETE /api/v1/media/50", "DELETE /api/v1/request/600"]);

    // Gone from the library and the candidates; the show is smaller.
    let left = env.get(&format!("/api/v1/library-items?library_id={movies}")).await.json();
    assert!(left["items"].as_array().unwrap().iter().all(|i| i["title"] != "Sintel"));
    let show =
        &env.get(&format!("/api/v1/library-items?library_id={shows}")).await.json()["items"][0];
    assert_eq!(show["size_bytes"], 4_000_000_000_i64);
    assert_eq!(candidates(&env, &format!("rule_id={}", trim["id"])).await["total"], 0);

    // The log: who, when, what, each step.
    let log = env.get("/api/v1/maintenance/log").await.json();
    let entries = log["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let sintel_log = entries.iter().find(|e| e["title"] == "Sintel (2010)").unwrap();
    assert_eq!(sintel_log["deleted_by"], "user:admin");
    assert_eq!(sintel_log["server_name"], "Sim Plex");
    assert_eq!(sintel_log["library_name"], "Movies");
    assert_eq!(sintel_log["rule"]["name"], "Old");
    assert_eq!(sintel_log["size_bytes"], 4_000_000_000_i64);
    assert_eq!(sintel_log["steps"]["server"], json!({"outcome": "deleted", "error": null}));
    assert_eq!(sintel_log["steps"]["sonarr"]["outcome"], "skipped");
    assert!(sintel_log["finished_at"].is_string());
    // The audit log has it too.
    let audited: i64 = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM audit_log WHERE action = 'maintenance.delete'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(audited, 1);
}

/// Deletes candidates `ids`, confirmed; the per-item results.
async fn delete(env: &TestEnv, ids: Vec<Value>) -> Vec<Value> {
    let reply = env
        .post_json("/api/v1/maintenance/delete", &json!({"candidate_ids": ids, "confirm": true}))
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.json()["items"].as_array().unwrap().clone()
}

#[rocket::async_test]
async fn a_failing_media_server_stops_the_cascade_and_a_down_integration_is_reported() {
    let (env, mut sim, now) = synced().await;
    let (radarr, _sonarr, seerr) = arrs().await;
    add_integration(&env, &radarr, "Radarr").await;
    add_integration(&env, &seerr, "Seerr").await;
    let movies = library_id(&env, "Sim Plex", "Movies").await;
    let rule = create_rule(&env, &json!({"name": "Everything", "library_ids": [movies], "match": "any",
        "criteria": [{"type": "unwatched_movie", "params": {"days": 1}}, {"type": "large_file", "params": {"min_size_gb": 1}}],
        "cascade": {"radarr": true, "seerr": true}})).await;
    let page = candidates(&env, &format!("rule_id={}", rule["id"])).await;
    let id_of = |title: &str| {
        page["items"].as_array().unwrap().iter().find(|c| c["item"]["title"] == title).unwrap()["id"].clone()
    };

    // The media server fails the DELETE: nothing else is asked, and the log says why.
    sim.with(|w| w.servers[PLEX].fail_deletes = true);
    let failed = delete(&env, vec![id_of("Sintel")]).await;
    assert_eq!(
        (failed[0]["server"].as_str(), failed[0]["radarr"].as_str(), failed[0]["seerr"].as_str()),
        (Some("failed"), Some("skipped"), Some("skipped"))
    );
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.starts_with("media server: Sim Plex: the server answered HTTP 500"), "{error}");
    assert!(radarr.state().changes().is_empty() && seerr.state().changes().is_empty());
    let log = env.get("/api/v1/maintenance/log").await.json();
    assert_eq!(log["items"][0]["steps"]["server"]["outcome"], "failed");
    assert_eq!(
        log["items"][0]["steps"]["radarr"],
        json!({"outcome": "skipped", "error": "the media server did not delete it"})
    );
    assert_eq!(
        candidates(&env, &format!("rule_id={}", rule["id"])).await["total"],
        4,
        "still there, still proposed"
    );

    // Radarr is down: the item is deleted, Radarr's step failed and says so; Seerr went on.
    sim.with(|w| w.servers[PLEX].fail_deletes = false);
    radarr.state().down = true;
    let partly = delete(&env, vec![id_of("Sintel")]).await;
    assert_eq!(
        (partly[0]["server"].as_str(), partly[0]["radarr"].as_str(), partly[0]["seerr"].as_str()),
        (Some("deleted"), Some("failed"), Some("deleted"))
    );
    assert!(
        partly[0]["error"].as_str().unwrap().contains("Radarr: looking it up: answered HTTP 503"),
        "{}",
        partly[0]
    );

    // Gone from the server already: fine, and the cascade still runs (Radarr: not found).
    radarr.state().down = false;
    sim.with(|w| streamwarden::sim::library::delete(&mut w.servers[PLEX].libraries, "3002"));
    let gone = delete(&env, vec![id_of("Huge")]).await;
    assert_eq!(
        (gone[0]["server"].as_str(), gone[0]["radarr"].as_str()),
        (Some("already_gone"), Some("skipped"))
    );
    assert_eq!(gone[0]["error"], Value::Null, "Huge has no TMDB id: Radarr is skipped, not failed");

    // Excluded since it was proposed, or playing right now: skipped with the reason.
    let bunny = id_of("Big Buck Bunny");
    env.db()
        .write(move |c| {
            c.execute("INSERT INTO maintenance_exclusions (item_id, reason, created_by, created_at) SELECT item_id, 'keep', 'test', 0 FROM maintenance_candidates WHERE id = ?1", [bunny.as_i64().unwrap()])?;
            Ok(())
        })
        .await
        .unwrap();
    let kept = delete(&env, vec![id_of("Big Buck Bunny")]).await;
    assert_eq!(kept[0]["server"], "skipped");
    assert_eq!(kept[0]["error"], "excluded since it was proposed: not deleted");
    let watched = streamwarden::sim::world::movie("3003", "Watched", 2019, 100, 1080);
    sim.with(|w| w.start(PLEX, "alice", &tv(), "81.2.69.142".parse().unwrap(), false, &watched));
    sim.tick(&env, 1).await;
    let watching = delete(&env, vec![id_of("Watched")]).await;
    assert_eq!(watching[0]["error"], "someone is watching it right now: not deleted");
    let stale = delete(&env, vec![json!(987_654)]).await;
    assert_eq!(stale[0]["error"], "candidate 987654 no longer exists: evaluate again");
    assert!(sim.with(|w| {
        w.actions
            .iter()
            .all(|a| !matches!(a, Action::Deleted { id, .. } if id == "3001" || id == "3003"))
    }));
    let _ = now;
}
