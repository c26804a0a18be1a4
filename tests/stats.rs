//! `/api/v1/stats` and `/stats` on the real app: the numbers of a known set of plays, the
//! filters, what viewers see, and bad input.

mod common;

use common::TestEnv;
use common::seed::{self, World};
use rocket::http::Status;
use rusqlite::params;
use serde_json::Value;

/// 2024-05-06 (a Monday) 20:00 UTC.
const MONDAY_20H: i64 = 1_715_025_600_000;
const HOUR: i64 = 3_600_000;

/// A finished play: (server, user, title, show, decision, start, hours).
type Play<'a> = (i64, i64, &'a str, Option<&'a str>, &'a str, i64, i64);

/// Finished plays as an import writes them.
pub async fn plays(env: &TestEnv, rows: &[Play<'_>]) {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| (r.0, r.1, r.2.to_owned(), r.3.map(str::to_owned), r.4.to_owned(), r.5, r.6))
        .collect();
    env.db()
        .write(move |c| {
            for (server, user, title, show, decision, start, hours) in rows {
                c.execute(
                    "INSERT INTO plays (server_id, user_id, status, session_id, item_id, media_type, title, \
                     grandparent_title, year, library_name, device_id, player, platform, decision, \
                     started_at, stopped_at, last_seen_at, state, play_ms, geo_city, geo_country, geo_lat, geo_lon, ip) \
                     VALUES (?1, ?2, 'stopped', 's', 'i', ?3, ?4, ?5, 2001, 'Films', 'dev', 'TV', 'Roku', ?6, \
                     ?7, ?8, ?8, 'playing', ?9, 'London', 'GB', 51.5142, -0.0931, '81.2.69.142')",
                    params![
                        server,
                        user,
                        if show.is_some() { "episode" } else { "movie" },
                        title,
                        show,
                        decision,
                        start,
                        start + hours * HOUR,
                        hours * HOUR
                    ],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

async fn known(env: &TestEnv) -> World {
    let w = seed::world(env).await;
    plays(
        env,
        &[
            (w.plex, w.alice, "Amélie", None, "direct_play", MONDAY_20H, 2),
            (w.plex, w.alice, "Amélie", None, "transcode", MONDAY_20H + 24 * HOUR, 2),
            (w.jellyfin, w.bob, "Pilot", Some("Lost"), "transcode", MONDAY_20H + HOUR, 1),
        ],
    )
    .await;
    w
}

fn json(reply: &common::Reply) -> Value {
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    serde_json::from_str(&reply.body).unwrap()
}

#[rocket::async_test]
async fn the_api_counts_a_known_set_of_plays() {
    let env = TestEnv::new().await;
    let w = known(&env).await;
    let s = json(&env.get("/api/v1/stats?from=2024-05-01&to=2024-05-31").await);
    assert_eq!(s["totals"]["plays"], 3);
    assert_eq!(s["totals"]["watch_ms"], 5 * HOUR);
    assert_eq!(s["totals"]["users"], 2);
    assert_eq!(s["totals"]["titles"], 2);
    assert_eq!(s["plays_by_day"].as_array().unwrap().len(), 31);
    assert_eq!(s["decisions"]["transcode"], 2);
    assert_eq!(s["peak_concurrent"]["count"], 2);
    assert_eq!(s["top_movies"][0]["title"], "Amélie");
    assert_eq!(s["top_movies"][0]["year"], 2001);
    assert_eq!(s["top_movies"][0]["plays"], 2);
    assert_eq!(s["top_movies"][0]["users"], 1);
    assert_eq!(s["top_shows"][0]["title"], "Lost");
    assert_eq!(s["top_users"][0]["user"]["name"], "alice");
    assert_eq!(s["top_libraries"][0]["name"], "Films");
    assert_eq!(s["by_weekday"].as_array().unwrap().len(), 7);
    assert_eq!(s["by_hour"].as_array().unwrap().len(), 24);
    assert!(s["time_zone"].is_string());
    let platforms = &s["platforms"][0];
    assert_eq!((platforms["name"].as_str(), platforms["plays"].as_i64()), (Some("Roku"), Some(3)));

    let one_server = json(
        &env.get(&format!("/api/v1/stats?from=2024-05-01&to=2024-05-31&server_id={}", w.jellyfin))
            .await,
    );
    assert_eq!(one_server["totals"]["plays"], 1);
    let one_user = json(
        &env.get(&format!("/api/v1/stats?from=2024-05-01&to=2024-05-31&user={}", w.alice)).await,
    );
    assert_eq!(one_user["totals"]["plays"], 2);
    assert_eq!(one_user["peak_concurrent"]["count"], 1);
    let mismatch = json(
        &env.get(&format!(
            "/api/v1/stats?from=2024-05-01&to=2024-05-31&user={}&server_id={}",
            w.alice, w.jellyfin
        ))
        .await,
    );
    assert_eq!(mismatch["totals"]["plays"], 0);
    let all = json(&env.get("/api/v1/stats?period=all").await);
    assert_eq!(all["totals"]["plays"], 3);
    assert!(all["from"].as_str().unwrap().starts_with("2024-05-0"));

    // New history shows at once: the request folds what changed.
    plays(&env, &[(w.plex, w.alice, "Heat", None, "direct_stream", MONDAY_20H + 2 * 24 * HOUR, 1)])
        .await;
    let later = json(&env.get("/api/v1/stats?from=2024-05-01&to=2024-05-31").await);
    assert_eq!(later["totals"]["plays"], 4);
    env.db().write(|c| Ok(c.execute("DELETE FROM plays WHERE title = 'Heat'", [])?)).await.unwrap();
    let pruned = json(&env.get("/api/v1/stats?from=2024-05-01&to=2024-05-31").await);
    assert_eq!(pruned["totals"]["plays"], 3);
}

#[rocket::async_test]
async fn viewers_see_their_own_numbers_and_bad_filters_are_refused() {
    let env = TestEnv::new().await;
    let w = known(&env).await;
    let viewer = env.viewer(Some(w.bob)).await;
    let own = env
        .as_(&viewer)
        .get(&format!("/api/v1/stats?from=2024-05-01&to=2024-05-31&user={}", w.alice))
        .await;
    let own = json(&own);
    assert_eq!(own["totals"]["plays"], 1, "a viewer's filter is their own user");
    assert_eq!(own["top_users"][0]["user"]["name"], "bob");
    let nobody = env.viewer(None).await;
    let none = json(&env.as_(&nobody).get("/api/v1/stats?period=all").await);
    assert_eq!(none["totals"]["plays"], 0);

    for (query, field) in [
        ("period=fortnight", "period"),
        ("from=2024-05-31&to=2024-05-01", "from"),
        ("from=yesterday", "from"),
        ("top=0", "top"),
    ] {
        let r = env.get(&format!("/api/v1/stats?{query}")).await;
        assert_eq!(r.status, Status::BadRequest, "{query}: {}", r.body);
        assert!(r.body.contains(field), "{query}: {}", r.body);
    }
    assert_eq!(env.get("/api/v1/stats?user=999").await.status, Status::NotFound);
}

#[rocket::async_test]
async fn the_map_api_places_the_maxmind_test_addresses() {
    let env = TestEnv::new().await;
    let w = known(&env).await;
    // Milton (216.160.83.56) as MaxMind's test City database places it, and a LAN play.
    env.db()
        .write(move |c| {
            c.execute(
                "INSERT INTO plays (server_id, user_id, status, session_id, item_id, media_type, title, device_id, decision, \
                 started_at, stopped_at, last_seen_at, state, ip, is_local, geo_city, geo_country, geo_lat, geo_lon) VALUES \
                 (?1, ?2, 'stopped', 's', 'i', 'movie', 'Heat', 'd', 'direct_play', ?3, ?4, ?4, 'playing', '216.160.83.56', 0, 'Milton', 'US', 47.2513, -122.3149), \
                 (?1, ?2, 'stopped', 's', 'i', 'movie', 'Heat', 'd', 'direct_play', ?3, ?4, ?4, 'playing', '192.168.1.2', 1, NULL, NULL, NULL, NULL)",
                params![w.jellyfin, w.bob, MONDAY_20H, MONDAY_20H + HOUR],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let places = json(&env.get("/api/v1/map?from=2024-05-01&to=2024-05-31&live=false").await);
    let places = places.as_array().unwrap();
    assert_eq!(places.len(), 2, "{places:?}");
    let london = &places[0];
    assert_eq!((london["city"].as_str(), london["country"].as_str()), (Some("London"), Some("GB")));
    assert_eq!((london["plays"].as_i64(), london["users"].as_i64()), (Some(3), Some(2)));
    assert_eq!((london["lat"].as_f64(), london["lon"].as_f64()), (Some(51.51), Some(-0.09)));
    assert_eq!(london["live"], false);
    assert_eq!(
        (places[1]["city"].as_str(), places[1]["plays"].as_i64()),
        (Some("Milton"), Some(1))
    );
    let bobs = json(&env.get(&format!("/api/v1/map?period=all&user={}&live=false", w.bob)).await);
    assert_eq!(bobs.as_array().unwrap().len(), 2);
    let live = json(&env.get("/api/v1/map?live=true").await);
    assert_eq!(live.as_array().unwrap().len(), 0, "nothing is live");

    // The page lists them and counts the local play beside the map.
    let page = env.get("/map?from=2024-05-01&to=2024-05-31").await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(page.text("#map-local"), "1");
    assert_eq!(page.texts("#places tbody th"), ["London, GB", "Milton, US"]);
    assert_eq!(
        page.html().select(&scraper::Selector::parse(".map-history circle.place").unwrap()).count(),
        2
    );
}

#[rocket::async_test]
async fn the_stats_page_shows_the_numbers_with_tables_and_csv() {
    let env = TestEnv::new().await;
    known(&env).await;
    let page = env.get("/stats?from=2024-05-01&to=2024-05-31").await;
    assert_eq!(page.status, Status::Ok, "{}", page.body);
    assert_eq!(page.text("#total-plays"), "3");
    assert_eq!(page.text("#total-hours"), "5.0");
    assert_eq!(page.text("#total-peak"), "2");
    assert!(!page.text("#stats-tz").is_empty());
    assert_eq!(page.texts("#top_movies tbody th"), ["Amélie (2001)"]);
    assert_eq!(page.texts("#decisions tbody td:nth-child(3)"), ["33 %", "0 %", "66 %"]);
    let bars = page
        .html()
        .select(&scraper::Selector::parse("#chart-plays_by_day rect.s0").unwrap())
        .count();
    assert_eq!(bars, 2, "two days with movies");
    let csv = env.get("/stats.csv?table=top_shows&from=2024-05-01&to=2024-05-31").await;
    assert_eq!(csv.status, Status::Ok);
    assert_eq!(csv.body, "Name,Plays,Hours,Users\nLost,1,1.0,1\n");
    assert_eq!(env.get("/stats.csv?table=nope").await.status, Status::BadRequest);
}

#[rocket::async_test]
async fn history_filters_by_platform_player_address_country_decision_and_watched() {
    let env = TestEnv::new().await;
    let w = known(&env).await;
    env.db()
        .write(|c| {
            c.execute("UPDATE plays SET platform = 'iOS', player = 'Phone', ip = '2.125.160.216', geo_country = 'SE', watched = 1 WHERE title = 'Pilot'", [])?;
            Ok(())
        })
        .await
        .unwrap();
    let titles = |r: &common::Reply| -> Vec<String> {
        json(r)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_owned())
            .collect()
    };
    for (query, expected) in [
        ("platform=ios", vec!["Pilot"]),
        ("player=Phone", vec!["Pilot"]),
        ("ip=2.125.160.216", vec!["Pilot"]),
        ("country=se", vec!["Pilot"]),
        ("decision=direct_play", vec!["Amélie"]),
        ("decision=transcode&watched=false", vec!["Amélie"]),
        ("watched=true", vec!["Pilot"]),
        ("platform=Roku&country=GB", vec!["Amélie", "Amélie"]),
    ] {
        assert_eq!(
            titles(&env.get(&format!("/api/v1/history?{query}")).await),
            expected,
            "{query}"
        );
    }
    for (query, field) in
        [("decision=fast", "decision"), ("watched=maybe", "watched"), ("ip=nowhere", "ip")]
    {
        let r = env.get(&format!("/api/v1/history?{query}")).await;
        assert_eq!(r.status, Status::BadRequest, "{query}");
        assert!(r.body.contains(field));
    }
    let page = env.get(&format!("/history?user={}&decision=transcode", w.alice)).await;
    assert_eq!(
        page.html().select(&scraper::Selector::parse("#history tbody tr").unwrap()).count(),
        1
    );
}

#[rocket::async_test]
async fn the_user_page_has_violations_statistics_places_and_admin_notes() {
    let env = TestEnv::new().await;
    let w = known(&env).await;
    seed::violation(&env, w.travel, w.alice, w.plex, MONDAY_20H, seed::travel_verdict(), -15).await;
    let page = env.get(&format!("/users/{}", w.alice)).await;
    assert_eq!(page.status, Status::Ok, "{}", page.body);
    assert_eq!(page.text("#user-stat-plays"), "2");
    assert_eq!(page.text("#user-stat-hours"), "4.0");
    assert_eq!(page.texts("#user-months tbody th"), ["2024-05"], "months with plays, newest first");
    assert_eq!(page.texts("#user-titles th"), ["Amélie (2001)"]);
    assert_eq!(
        page.html().select(&scraper::Selector::parse("#user-places circle.place").unwrap()).count(),
        1
    );
    assert_eq!(page.texts("#user-violations tbody tr td:nth-child(2)"), ["Impossible travel"]);

    let added = env
        .post_form(
            &format!("/users/{}/notes", w.alice),
            &[("body", "Shares with her sister, agreed")],
        )
        .await;
    assert!(added.status == Status::SeeOther || added.status == Status::Ok, "{}", added.body);
    let refused = env.post_form(&format!("/users/{}/notes", w.alice), &[("body", "   ")]).await;
    assert_eq!(refused.status, Status::BadRequest);
    let page = env.get(&format!("/users/{}", w.alice)).await;
    assert_eq!(page.texts("#note-list .note-body"), ["Shares with her sister, agreed"]);

    // A viewer sees their own page without the notes.
    let viewer = env.viewer(Some(w.alice)).await;
    let own = env.as_(&viewer).get(&format!("/users/{}", w.alice)).await;
    assert_eq!(own.status, Status::Ok);
    assert!(own.texts("#notes").is_empty());
    assert_eq!(own.text("#user-stat-plays"), "2");

    let id: i64 = env
        .db()
        .read(|c| Ok(c.query_row("SELECT id FROM user_notes", [], |r| r.get(0))?))
        .await
        .unwrap();
    env.post_form(&format!("/users/{}/notes/{id}/delete", w.alice), &[]).await;
    assert!(
        env.get(&format!("/users/{}", w.alice)).await.texts("#note-list .note-body").is_empty()
    );
    assert_eq!(
        env.post_form(&format!("/users/{}/notes/{id}/delete", w.alice), &[]).await.status,
        Status::NotFound
    );
}
