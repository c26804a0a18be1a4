//! The library sync end to end: the real app syncing the simulated Plex, Jellyfin and Emby
//! servers' libraries (their real formats, on loopback) through the jobs API, the merge of
//! "last watched" from history and copies, and what a failing or changing server keeps.

mod common;

use common::TestEnv;
use common::sim::{DAY, JELLYFIN, PLEX, Sim, T0, ep, film, library_world, sync, tv};
use rocket::http::Status;
use serde_json::Value;
use streamwarden::sim::library;

async fn libraries(env: &TestEnv) -> Vec<Value> {
    let reply = env.get("/api/v1/libraries").await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.json().as_array().unwrap().clone()
}

async fn items(env: &TestEnv, query: &str) -> Vec<Value> {
    let reply = env.get(&format!("/api/v1/library-items?{query}")).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.json()["items"].as_array().unwrap().clone()
}

fn find<'a>(items: &'a [Value], title: &str) -> &'a Value {
    items.iter().find(|i| i["title"] == title).unwrap_or_else(|| panic!("no {title} in {items:?}"))
}

fn library<'a>(libraries: &'a [Value], server: &str, name: &str) -> &'a Value {
    libraries
        .iter()
        .find(|l| l["server_name"] == server && l["name"] == name)
        .unwrap_or_else(|| panic!("no {server} · {name} in {libraries:?}"))
}

#[rocket::async_test]
async fn every_servers_libraries_are_synced_with_sizes_and_play_state() {
    let env = TestEnv::new().await;
    let now = streamwarden::time::now_ms();
    let _sim = Sim::start(&env, library_world(now)).await;
    let job = sync(&env).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["kind"], "library_sync");
    // 4 movies, a show and its 5 episodes on Plex; 2 and 1 movies on Jellyfin and Emby.
    assert_eq!(job["message"], "3 servers, 5 libraries, 13 items");
    assert_eq!(job["progress"]["done"], 13);
    assert_eq!(job["progress"]["total"], 13);

    let libs = libraries(&env).await;
    assert_eq!(libs.len(), 5);
    let movies = library(&libs, "Sim Plex", "Movies");
    assert_eq!(movies["kind"], "movie");
    assert_eq!(movies["item_count"], 4);
    assert_eq!(
        movies["size_bytes"],
        4_000_000_000_i64 + 1_200_000_000 + 60_000_000_000 + 8_000_000_000
    );
    assert!(movies["synced_at"].is_string());
    let shows = library(&libs, "Sim Plex", "Shows");
    assert_eq!((shows["kind"].as_str(), shows["item_count"].as_i64()), (Some("show"), Some(1)));
    assert_eq!(shows["size_bytes"], 5 * 2_000_000_000_i64);
    let music = library(&libs, "Sim Plex", "Music");
    assert_eq!((music["kind"].as_str(), music["item_count"].as_i64()), (Some("music"), Some(40)));
    assert_eq!(library(&libs, "Sim Jellyfin", "Films")["item_count"], 2);
    assert_eq!(library(&libs, "Sim Emby", "Movies")["item_count"], 1);

    let plex_movies = items(&env, &format!("library_id={}", movies["id"])).await;
    let titles: Vec<&str> = plex_movies.iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Big Buck Bunny", "Huge", "Sintel", "Watched"], "by title");
    let sintel = find(&plex_movies, "Sintel");
    assert_eq!(sintel["resolution"], "1080p");
    assert_eq!(sintel["external_ids"]["tmdb"], "45745");
    assert_eq!(sintel["added_at"], streamwarden::format::rfc3339(now - 400 * DAY));
    assert_eq!(
        (sintel["play_count"].as_i64(), sintel["last_watched_at"].as_str()),
        (Some(0), None)
    );
    let watched = find(&plex_movies, "Watched");
    assert_eq!(watched["play_count"], 3, "the server's own count");
    assert_eq!(find(&plex_movies, "Big Buck Bunny")["resolution"], "480p");
    assert_eq!(find(&plex_movies, "Huge")["resolution"], "4K");

    // The show is made of its episodes; seasons are items of their own.
    let show = &items(&env, &format!("library_id={}", shows["id"])).await[0];
    assert_eq!((show["kind"].as_str(), show["title"].as_str()), (Some("show"), Some("The Show")));
    assert_eq!(
        (show["episode_count"].as_i64(), show["watched_episode_count"].as_i64()),
        (Some(5), Some(0))
    );
    assert_eq!(show["size_bytes"], 10_000_000_000_i64);
    assert_eq!(show["external_ids"]["tvdb"], "1234");
    let seasons = items(&env, &format!("library_id={}&kind=season&sort=title", shows["id"])).await;
    assert_eq!(seasons.len(), 2);
    assert_eq!(seasons[0]["show_title"], "The Show");
    assert_eq!(
        (seasons[0]["season_number"].as_i64(), seasons[0]["episode_count"].as_i64()),
        (Some(1), Some(3))
    );
    assert_eq!(seasons[1]["size_bytes"], 4_000_000_000_i64);
    assert_eq!(items(&env, "kind=episode").await.len(), 5);

    // Jellyfin's play state comes from its administrator's UserData.
    let films =
        items(&env, &format!("library_id={}", library(&libs, "Sim Jellyfin", "Films")["id"])).await;
    assert_eq!(find(&films, "Sintel")["resolution"], "720p");
}

#[rocket::async_test]
async fn last_watched_merges_history_of_every_user_and_copies_elsewhere() {
    let env = TestEnv::new().await;
    let now = streamwarden::time::now_ms();
    let mut sim = Sim::start(&env, library_world(now)).await;
    // Alice watches Sintel on Plex and the first episode; neither is the server owner, so
    // Plex's own data knows nothing of it.
    sim.with(|w| {
        w.start(PLEX, "alice", &tv(), "81.2.69.142".parse().unwrap(), false, &film());
        w.start(PLEX, "bob", &tv(), "81.2.69.143".parse().unwrap(), false, &ep(1))
    });
    sim.run(&env, 60, 5).await;
    sim.with(|w| w.plays.clear());
    sim.run(&env, 15, 5).await;
    assert_eq!(
        env.get("/api/v1/history").await.json()["items"].as_array().unwrap().len(),
        2,
        "two finished plays"
    );
    assert_eq!(sync(&env).await["status"], "done");

    let all = items(&env, "limit=100").await;
    let sintels: Vec<&Value> = all.iter().filter(|i| i["title"] == "Sintel").collect();
    assert_eq!(sintels.len(), 2, "the Plex file and the Jellyfin copy");
    for copy in &sintels {
        assert_eq!(copy["play_count"], 1, "{copy}");
        let at: jiff::Timestamp = copy["last_watched_at"].as_str().unwrap().parse().unwrap();
        assert!(at.as_millisecond() > T0, "{copy}");
    }
    let show = find(&all, "The Show");
    assert_eq!(
        (show["watched_episode_count"].as_i64(), show["play_count"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(show["last_watched_at"].is_string());
    let seasons = items(&env, "kind=season").await;
    assert!(seasons[0]["last_watched_at"].is_string(), "season 1 was watched");
    assert!(seasons[1]["last_watched_at"].is_null(), "season 2 was not");
    assert!(find(&all, "Elephants Dream")["last_watched_at"].is_null());
}

#[rocket::async_test]
async fn a_failing_or_changing_server_keeps_what_it_had_and_gone_items_are_pruned() {
    let env = TestEnv::new().await;
    let now = streamwarden::time::now_ms();
    let sim = Sim::start(&env, library_world(now)).await;
    assert_eq!(sync(&env).await["status"], "done");
    assert_eq!(items(&env, "limit=100").await.len(), 8);

    // Jellyfin is down: the sync says so and keeps its items; Plex deleted Huge.
    sim.with(|w| {
        w.servers[JELLYFIN].down = true;
        library::delete(&mut w.servers[PLEX].libraries, "3002");
    });
    let job = sync(&env).await;
    assert_eq!(job["status"], "done", "two servers out of three answered");
    let message = job["message"].as_str().unwrap();
    assert!(message.contains("Sim Jellyfin: the server answered HTTP 503"), "{message}");
    let after = items(&env, "limit=100").await;
    assert!(after.iter().all(|i| i["title"] != "Huge"), "gone from the server, gone here");
    assert_eq!(after.iter().filter(|i| i["title"] == "Sintel").count(), 2, "Jellyfin's copy stays");

    // A movie appears while Plex's movies are read (more than a page of them): pages
    // shift, so nothing is pruned this time even though Bunny is gone too.
    sim.with(|w| {
        let filler = (0..600).map(|n| {
            library::movie(&format!("5{n:03}"), &format!("Filler {n}"), 2000, now, 1.0, 1080)
        });
        w.servers[PLEX].libraries[0].movies.extend(filler);
    });
    assert_eq!(sync(&env).await["status"], "done");
    sim.with(|w| {
        w.servers[JELLYFIN].down = false;
        library::delete(&mut w.servers[PLEX].libraries, "3001");
        w.servers[PLEX].appears_while_listing =
            Some(library::movie("3009", "Fresh", 2025, now, 1.0, 1080));
    });
    let job = sync(&env).await;
    let message = job["message"].as_str().unwrap();
    assert!(message.contains("(1 new); Sim Plex · Movies: the library changed"), "{message}");
    assert_eq!(items(&env, "q=Big%20Buck").await.len(), 1, "kept until a whole listing");
    let job = sync(&env).await;
    assert_eq!(job["status"], "done");
    assert!(!job["message"].as_str().unwrap().contains("new"), "Fresh was new last time: {job}");
    assert!(items(&env, "q=Big%20Buck").await.is_empty());
    assert_eq!(items(&env, "q=Fresh").await.len(), 1);
    let count =
        |libs: Vec<Value>| libs.iter().map(|l| l["item_count"].as_i64().unwrap()).sum::<i64>();
    let before = count(libraries(&env).await);
    assert_eq!(
        before,
        2 + 600 + 1 + 1 + 40 + 2 + 1,
        "Sintel, Watched, filler, Fresh; the show; music; Jellyfin; Emby"
    );

    // Every server down: the job failed.
    sim.with(|w| w.servers.iter_mut().for_each(|s| s.down = true));
    assert_eq!(sync(&env).await["status"], "failed");
    assert_eq!(count(libraries(&env).await), before, "nothing lost");
}

#[rocket::async_test]
async fn item_pages_never_skip_or_repeat_and_bad_queries_are_refused() {
    let env = TestEnv::new().await;
    let now = streamwarden::time::now_ms();
    let _sim = Sim::start(&env, library_world(now)).await;
    assert_eq!(sync(&env).await["status"], "done");
    for (sort, order) in [
        ("title", "asc"),
        ("size", "desc"),
        ("added", "asc"),
        ("last_watched", "desc"),
        ("plays", "desc"),
        ("year", "asc"),
    ] {
        let whole = items(&env, &format!("sort={sort}&order={order}&limit=100")).await;
        let mut walked = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = env
                .get(&format!(
                    "/api/v1/library-items?sort={sort}&order={order}&limit=3&cursor={cursor}"
                ))
                .await
                .json();
            walked.extend(page["items"].as_array().unwrap().iter().map(|i| i["id"].clone()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
        }
        let ids: Vec<Value> = whole.iter().map(|i| i["id"].clone()).collect();
        assert_eq!(walked, ids, "{sort} {order}");
    }
    let sizes: Vec<i64> = items(&env, "sort=size&order=desc")
        .await
        .iter()
        .map(|i| i["size_bytes"].as_i64().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    assert_eq!(items(&env, "q=sin").await.len(), 2, "both Sintels");
    assert_eq!(items(&env, "q=100%25").await.len(), 0, "a % is a character");

    for (query, field) in [
        ("kind=album", "kind"),
        ("sort=rating", "sort"),
        ("order=up", "order"),
        ("cursor=zz", "cursor"),
    ] {
        let reply = env.get(&format!("/api/v1/library-items?{query}")).await;
        assert_eq!(reply.status, Status::BadRequest, "{query}");
        assert_eq!(reply.json()["error"]["field"], field, "{}", reply.body);
    }
    let title_cursor = env.get("/api/v1/library-items?limit=1").await.json()["next_cursor"].clone();
    let mixed = env
        .get(&format!("/api/v1/library-items?sort=size&cursor={}", title_cursor.as_str().unwrap()))
        .await;
    assert_eq!(mixed.status, Status::BadRequest);
}
