//! The violations pages: the list and its filters, acknowledge and dismiss from the list and
//! the detail, the evidence and the map; a violation raised by the real rules engine from
//! simulated plays, and others written through the engine's database functions.

mod common;

use common::seed::{self, World};
use common::sim::{PLEX, Sim, film, three_servers};
use common::{Reply, TestEnv, form_body};
use rocket::http::{ContentType, Header, Method, Status};
use serde_json::Value;
use streamwarden::db::rules::Status as ViolationStatus;
use streamwarden::format::local_date;
use streamwarden::sim::world::device;

const T0: i64 = common::sim::T0;
const DAY: i64 = 86_400_000;

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

/// Ids of the rows of a list page, top to bottom.
fn ids(page: &Reply) -> Vec<i64> {
    page.attrs("#violations tbody tr", "data-violation-id")
        .iter()
        .map(|id| id.parse().unwrap())
        .collect()
}

/// Three violations over four days: alice's travel (open), bob's two homes (open) and bob's
/// travel (acknowledged earlier), newest last.
async fn three(env: &TestEnv) -> (World, [i64; 3]) {
    let w = seed::world(env).await;
    let a = seed::violation(env, w.travel, w.alice, w.plex, T0, seed::travel_verdict(), -15).await;
    let b =
        seed::violation(env, w.streams, w.bob, w.jellyfin, T0 + 3 * DAY, seed::local_verdict(), 0)
            .await;
    let c =
        seed::violation(env, w.travel, w.bob, w.jellyfin, T0 + 4 * DAY, seed::travel_verdict(), 0)
            .await;
    seed::set_status(env, c, ViolationStatus::Acknowledged).await;
    (w, [a, b, c])
}

#[rocket::async_test]
async fn the_list_filters_by_status_rule_user_severity_server_and_day() {
    let env = TestEnv::new().await;
    let (w, [a, b, c]) = three(&env).await;

    let all = env.get("/violations").await;
    assert_eq!(all.status, Status::Ok);
    assert_eq!(ids(&all), [c, b, a], "newest first");
    assert_eq!(all.attrs("nav.mainnav a[aria-current=page]", "href"), ["/violations"]);
    let row = format!("#violation-{a}");
    assert_eq!(all.text(&format!("{row} td[data-label=Rule] .badge")), "High");
    assert_eq!(
        all.attrs(&format!("{row} td[data-label=User] a"), "href"),
        [format!("/users/{}", w.alice)]
    );
    assert!(all.text(&format!("{row} td.summary")).contains("15404.2"), "{}", all.body);
    assert_eq!(all.text(&format!("{row} td[data-label=Status]")), "Open");
    assert_eq!(all.count(&format!("{row} button.acknowledge")), 1);
    assert_eq!(all.count(&format!("#violation-{c} button.acknowledge")), 0, "acknowledged already");
    assert_eq!(all.count(&format!("#violation-{c} button.dismiss")), 1);
    assert_eq!(
        all.text(&format!("#violation-{c} td[data-label=Status]")),
        "Acknowledged by user:earlier"
    );

    let cases: Vec<(String, Vec<i64>)> = vec![
        ("status=open".into(), vec![b, a]),
        ("status=acknowledged".into(), vec![c]),
        ("status=dismissed".into(), vec![]),
        (format!("rule={}", w.travel), vec![c, a]),
        (format!("user={}", w.bob), vec![c, b]),
        (format!("user={}&rule={}", w.bob, w.travel), vec![c]),
        ("severity=low".into(), vec![b]),
        (format!("server_id={}", w.plex), vec![a]),
        (format!("from={}", local_date(T0 + 2 * DAY)), vec![c, b]),
        (format!("to={}", local_date(T0 + DAY)), vec![a]),
        ("status=&rule=&user=&severity=".into(), vec![c, b, a]),
    ];
    for (query, expected) in cases {
        let page = env.get(&format!("/violations?{query}")).await;
        assert_eq!(page.status, Status::Ok, "{query}: {}", page.body);
        assert_eq!(ids(&page), expected, "{query}");
    }
    // The form shows what is filtered.
    let page = env.get(&format!("/violations?status=open&user={}", w.bob)).await;
    assert_eq!(page.attrs("#status option[selected]", "value"), ["open"]);
    assert_eq!(page.attrs("#user option[selected]", "value"), [w.bob.to_string()]);
    assert_eq!(page.count("#no-violations"), 0);
    assert_eq!(env.get("/violations?status=dismissed").await.count("#no-violations"), 1);

    // htmx swaps only the results, the way the filter form asks.
    let req = env
        .as_(env.session.as_ref().unwrap())
        .request(Method::Get, "/violations?severity=high")
        .header(Header::new("HX-Request", "true"))
        .header(Header::new("HX-Target", "violations-results"));
    let fragment = Reply::read(req.dispatch().await).await;
    assert_eq!(fragment.status, Status::Ok);
    assert_eq!(fragment.count("h1"), 0, "a fragment, not the page");
    assert_eq!(ids(&fragment), [c, a]);
    assert_eq!(
        fragment.attrs("form[hx-post] input[name=back]", "value")[0],
        "/violations?severity=high"
    );

    // The API takes the same filters.
    let api = env.get(&format!("/api/v1/violations?server_id={}", w.jellyfin)).await.json();
    let api_ids: Vec<i64> =
        api["items"].as_array().unwrap().iter().map(|v| v["id"].as_i64().unwrap()).collect();
    assert_eq!(api_ids, [c, b]);
}

#[rocket::async_test]
async fn the_list_pages_fifty_at_a_time() {
    let env = TestEnv::new().await;
    let w = seed::world(&env).await;
    let mut all = Vec::new();
    for i in 0..53 {
        all.push(
            seed::violation(
                &env,
                w.streams,
                w.alice,
                w.plex,
                T0 + i * 60_000,
                seed::local_verdict(),
                0,
            )
            .await,
        );
    }
    all.reverse();
    let first = env.get("/violations").await;
    assert_eq!(ids(&first), all[..50]);
    let older = first.attrs("#older", "href");
    assert_eq!(older, [format!("/violations?cursor={}", all[49])]);
    let second = env.get(&older[0]).await;
    assert_eq!(ids(&second), all[50..]);
    assert_eq!(second.count("#older"), 0);
    assert_eq!(second.attrs(".pager a", "href"), ["/violations"], "back to the newest");
}

#[rocket::async_test]
async fn bad_filters_are_refused_with_a_message_and_unknown_violations_are_404() {
    let env = TestEnv::new().await;
    let (_, [a, ..]) = three(&env).await;
    for (query, field, words) in [
        ("status=closed", "status", "one of open, acknowledged or dismissed"),
        ("severity=urgent", "severity", "one of low, warning or high"),
        ("rule=travel", "rule", "is not an id"),
        ("user=1.5", "user", "is not an id"),
        ("from=soon", "from", "is not a date"),
        ("cursor=zz", "cursor", "not a cursor"),
    ] {
        let page = env.get(&format!("/violations?{query}")).await;
        assert_eq!(page.status, Status::BadRequest, "{query}");
        let message = page.text(".alert-error p");
        assert!(
            message.starts_with(&format!("{field}:")) && message.contains(words),
            "{query}: {message}"
        );
        let api = env.get(&format!("/api/v1/violations?{query}")).await;
        assert_eq!(api.status, Status::BadRequest, "{query}");
        assert_eq!(api.json()["error"]["field"], field);
    }
    // From the filter form over htmx, the message goes to the page's error slot.
    let hx = env.get_htmx("/violations?status=closed").await;
    assert_eq!(hx.status, Status::BadRequest);
    assert_eq!(hx.header("HX-Retarget"), Some("#error-slot"));

    assert_eq!(env.get(&format!("/violations/{}", a + 100)).await.status, Status::NotFound);
    assert_eq!(env.get("/violations/abc").await.status, Status::NotFound);
    let missing = env.post_form(&format!("/violations/{}/acknowledge", a + 100), &[]).await;
    assert_eq!(missing.status, Status::NotFound);
    let long = "x".repeat(501);
    let refused = env.post_form(&format!("/violations/{a}/acknowledge"), &[("note", &long)]).await;
    assert_eq!(refused.status, Status::BadRequest);
    assert!(refused.text(".alert-error p").starts_with("note:"));
    assert_eq!(env.get(&format!("/violations/{a}")).await.text("#violation-status"), "Open");
}

#[rocket::async_test]
async fn acknowledge_from_the_list_swaps_the_row_and_without_htmx_goes_back() {
    let env = TestEnv::new().await;
    let (w, [a, b, c]) = three(&env).await;
    let me = env.as_(env.session.as_ref().unwrap());

    // The list's inline button: htmx swaps the row with its new state.
    let req = me
        .request(Method::Post, &format!("/violations/{a}/acknowledge"))
        .header(ContentType::Form)
        .header(Header::new("HX-Request", "true"))
        .header(Header::new("HX-Target", format!("violation-{a}")))
        .header(Header::new("X-CSRF-Token", me.csrf()))
        .body(form_body(&[("back", "/violations?status=open")]));
    let row = Reply::read(req.dispatch().await).await;
    assert_eq!(row.status, Status::Ok, "{}", row.body);
    let html = format!("<table><tbody>{}</tbody></table>", row.body);
    let row = Reply { body: html, ..row };
    assert_eq!(row.attrs("tr", "id"), [format!("violation-{a}")]);
    assert_eq!(row.attrs("tr", "data-status"), ["acknowledged"]);
    assert_eq!(row.text("td[data-label=Status]"), "Acknowledged by user:admin");
    assert_eq!(row.count("button.acknowledge"), 0);
    assert_eq!(row.count("button.dismiss"), 1);
    assert_eq!(row.attrs("input[name=back]", "value")[0], "/violations?status=open");

    // Without JavaScript: a plain post, and back to the list as it was filtered.
    let back = format!("/violations?user={}", w.bob);
    let plain = env.post_form(&format!("/violations/{b}/acknowledge"), &[("back", &back)]).await;
    assert_eq!(plain.status, Status::SeeOther);
    assert_eq!(plain.location(), Some(back.as_str()));
    // Never back to another site.
    let away = env
        .post_form(
            &format!("/violations/{c}/dismiss"),
            &[("back", "https://evil.example/violations")],
        )
        .await;
    assert_eq!(away.location(), Some(format!("/violations/{c}").as_str()));
    // A boosted form (the detail page's) is sent on with HX-Redirect.
    let boosted = env.post_htmx(&format!("/violations/{a}/acknowledge"), &[]).await;
    assert_eq!(boosted.header("HX-Redirect"), Some(format!("/violations/{a}").as_str()));
    // A dismissal is final.
    let again = env.post_htmx(&format!("/violations/{c}/acknowledge"), &[]).await;
    assert_eq!(again.status, Status::Conflict);

    let statuses: Vec<String> =
        env.get("/violations").await.attrs("#violations tbody tr", "data-status");
    assert_eq!(statuses, ["dismissed", "acknowledged", "acknowledged"]);
    let audit: Vec<(String, String)> = env
        .db()
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT action, target FROM audit_log WHERE action LIKE 'violation.%' ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 4, "{audit:?}");
    assert_eq!(audit[0], ("violation.acknowledge".to_owned(), format!("violation:{a}")));
}

#[rocket::async_test]
async fn changes_need_the_csrf_token_and_an_admin() {
    let env = TestEnv::new().await;
    let (w, [a, b, _]) = three(&env).await;

    // No token: refused, nothing changed.
    let me = env.as_(env.session.as_ref().unwrap());
    let req = me
        .request(Method::Post, &format!("/violations/{a}/dismiss"))
        .header(ContentType::Form)
        .body(form_body(&[("note", "no token")]));
    let refused = Reply::read(req.dispatch().await).await;
    assert_eq!(refused.status, Status::Forbidden);
    let wrong = me
        .request(Method::Post, &format!("/violations/{a}/dismiss"))
        .header(ContentType::Form)
        .body(form_body(&[("csrf", "not-the-token")]));
    assert_eq!(Reply::read(wrong.dispatch().await).await.status, Status::Forbidden);
    assert_eq!(env.get(&format!("/violations/{a}")).await.text("#violation-status"), "Open");
    assert_eq!(seed::trust_of(&env, w.alice).await, 85);

    // A viewer linked to alice reads her violations, and only hers, and changes nothing.
    let viewer = env.viewer(Some(w.alice)).await;
    let list = env.as_(&viewer).get("/violations").await;
    assert_eq!(list.status, Status::Ok);
    assert_eq!(ids(&list), [a]);
    assert_eq!(list.count("button.acknowledge, button.dismiss"), 0, "read-only");
    assert_eq!(list.count("#rule, #server_id"), 0, "no rule or server filters for viewers");
    assert_eq!(
        list.texts("nav.mainnav a"),
        ["Dashboard", "History", "Statistics", "Map", "Violations"]
    );
    let detail = env.as_(&viewer).get(&format!("/violations/{a}")).await;
    assert_eq!(detail.status, Status::Ok);
    assert_eq!(detail.count("#resolve, form[action$=dismiss]"), 0);
    assert_eq!(detail.count("#rule-link"), 0, "the rules pages are for admins");
    assert_eq!(env.as_(&viewer).get(&format!("/violations/{b}")).await.status, Status::NotFound);
    for action in ["acknowledge", "dismiss"] {
        let post = env.as_(&viewer).post_form(&format!("/violations/{a}/{action}"), &[]).await;
        assert_eq!(post.status, Status::Forbidden, "{action}");
    }
    assert_eq!(env.get(&format!("/violations/{a}")).await.text("#violation-status"), "Open");
    assert_eq!(seed::trust_of(&env, w.alice).await, 85);
}

#[rocket::async_test]
async fn the_detail_of_local_streams_lists_them_without_a_map() {
    let env = TestEnv::new().await;
    let (w, [_, b, _]) = three(&env).await;
    let page = env.get(&format!("/violations/{b}")).await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(page.count("#violation-map"), 0);
    assert_eq!(page.count("#no-map"), 1);
    assert_eq!(page.count("#places tbody tr"), 2);
    assert_eq!(page.count("#places a.osm"), 0, "nothing to look up");
    assert_eq!(page.text("tr[data-field=concurrent_streams] .actual"), "2");
    assert_eq!(page.texts("#places td[data-label=Place]"), ["local network", "local network"]);
    assert_eq!(page.text("#violation-session"), "none (judged per user)");
    assert_eq!(page.attrs("#rule-link", "href"), [format!("/rules/{}", w.streams)]);
    assert_eq!(page.count("#actions"), 0);
    // Acknowledged from the detail page, with a note: the status history says who and why.
    let done = env
        .post_form(
            &format!("/violations/{b}/acknowledge"),
            &[("note", "the kids' TV"), ("back", &format!("/violations/{b}"))],
        )
        .await;
    assert_eq!(done.location(), Some(format!("/violations/{b}").as_str()));
    let page = env.get(&format!("/violations/{b}")).await;
    assert_eq!(page.text("#violation-status"), "Acknowledged");
    let steps = page.texts("#status-history li");
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps[0].starts_with("Raised"));
    assert!(steps[1].starts_with("Acknowledged") && steps[1].contains("user:admin"), "{steps:?}");
    assert!(steps[1].ends_with("the kids' TV"), "{steps:?}");
    assert_eq!(page.count("#acknowledge-form"), 0);
    assert_eq!(page.count("#dismiss-form"), 1, "a later look may still find it false");
}

/// London, then Milton (US) twenty minutes later, through the simulated Plex server, the
/// poller and the rules worker with the impossible travel preset.
#[rocket::async_test]
async fn a_travel_raised_by_the_engine_shows_its_evidence_on_a_map_and_dismissing_it_gives_the_trust_back()
 {
    let env = TestEnv::with_geoip().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    let added = env.post_form("/rules/presets/impossible_travel", &[]).await;
    assert_eq!(added.status, Status::SeeOther, "{}", added.body);
    let rule_id: i64 = added.location().unwrap().rsplit('/').next().unwrap().parse().unwrap();

    let laptop = device("mal-laptop", "ThinkPad", "Plex Web", "Firefox");
    let tv = device("mal-friend-tv", "Samsung TV", "Plex for Samsung", "Tizen");
    let first = sim.with(|w| w.start(PLEX, "mallory", &laptop, ip("81.2.69.142"), false, &film()));
    sim.run(&env, 60, 5).await;
    sim.with(|w| w.stop(&first));
    sim.run(&env, 10, 5).await;
    sim.run(&env, 20 * 60, 60).await;
    sim.with(|w| w.start(PLEX, "mallory", &tv, ip("216.160.83.56"), false, &film()));
    sim.run(&env, 60, 5).await;
    env.rules_settled().await;

    let list = env.get(&format!("/violations?rule={rule_id}&status=open")).await;
    let found = ids(&list);
    assert_eq!(found.len(), 1, "{}", list.body);
    let id = found[0];
    let row = format!("#violation-{id}");
    assert_eq!(list.text(&format!("{row} td[data-label=User] a")), "mallory");
    assert_eq!(list.text(&format!("{row} td[data-label=Rule]")), "Impossible travel High");
    let api = env.get(&format!("/api/v1/violations/{id}")).await.json();
    let mallory = api["user"]["id"].as_i64().unwrap();
    let play = api["session_id"].as_i64().unwrap();

    let page = env.get(&format!("/violations/{id}")).await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(page.attrs("#rule-link", "href"), [format!("/rules/{rule_id}")]);
    assert_eq!(page.attrs("#user-link", "href"), [format!("/users/{mallory}")]);
    assert_eq!(page.attrs("#session-link", "href"), [format!("/history/{play}")]);
    // The evidence: the condition, what it saw, the operator, the threshold, the result.
    let evidence = "#evidence tr[data-field=travel_speed_kmh]";
    let speed: f64 = page.text(&format!("{evidence} .actual")).parse().unwrap();
    assert_eq!(Value::from(speed), api["evidence"]["groups"][0][0]["actual"]);
    assert!(speed > 800.0, "{speed}");
    assert_eq!(page.text(&format!("{evidence} .op")), ">");
    assert_eq!(page.text(&format!("{evidence} .threshold")), "800");
    assert_eq!(page.attrs(evidence, "data-matched"), ["true"]);
    assert!(page.text(&format!("{evidence} td[data-label=Condition]")).contains("km in"));
    // The map: two numbered markers joined by the distance, over the world outline.
    assert_eq!(page.count("svg#violation-map g.marker"), 2, "{}", page.body);
    assert_eq!(page.texts("svg#violation-map g.marker text"), ["1 · London, GB", "2 · Milton, US"]);
    let line = page.text("svg#violation-map g.map-line text");
    let km: f64 = line.trim_end_matches(" km").parse().unwrap();
    assert!((7_600.0..7_800.0).contains(&km), "{line}");
    assert!(page.count("svg#violation-map use.map-land") >= 1);
    assert!(page.count("svg#violation-map .map-grid line") >= 4);
    assert_eq!(page.texts("#places td[data-label=Place]"), ["London, GB", "Milton, US"]);
    let osm = page.attrs("#places a.osm", "href");
    assert_eq!(osm.len(), 2);
    assert!(osm[0].starts_with("https://www.openstreetmap.org/?mlat=51.5"), "{osm:?}");
    let outline = env.get(&page.attrs("use.map-land", "href")[0].replace("#land", "")).await;
    assert_eq!(outline.header("Content-Type"), Some("image/svg+xml"));
    assert!(outline.body.contains("id=\"land\""));
    // What the preset's action did, and the trust it took.
    assert_eq!(page.text("#actions tr[data-action=adjust_trust] .outcome"), "done");
    assert_eq!(page.texts("#trust .delta"), ["-20"]);
    assert_eq!(env.get(&format!("/users/{mallory}")).await.text("[data-stat=trust]"), "80");

    // Dismissed as a false positive from the detail page: the trust comes back.
    assert!(page.text("#dismiss-form p").contains("gives back the 20 trust points"));
    let back = format!("/violations/{id}");
    let dismissed = env
        .post_form(&format!("/violations/{id}/dismiss"), &[("note", "a VPN"), ("back", &back)])
        .await;
    assert_eq!(dismissed.status, Status::SeeOther);
    assert_eq!(dismissed.location(), Some(back.as_str()));
    let page = env.get(&back).await;
    assert_eq!(page.text("#violation-status"), "Dismissed");
    assert_eq!(page.texts("#trust .delta"), ["-20", "+20"]);
    assert_eq!(page.count("#resolve"), 0, "nothing left to do");
    let steps = page.texts("#status-history li");
    assert!(steps.last().unwrap().starts_with("Dismissed"), "{steps:?}");
    assert!(
        steps.last().unwrap().contains("user:admin") && steps.last().unwrap().ends_with("a VPN")
    );
    assert_eq!(env.get(&format!("/users/{mallory}")).await.text("[data-stat=trust]"), "100");
    assert_eq!(
        env.get(&format!("/violations?rule={rule_id}&status=open")).await.count("#no-violations"),
        1
    );
    let api = env.get(&format!("/api/v1/violations/{id}")).await.json();
    assert_eq!((api["status"].as_str(), api["note"].as_str()), (Some("dismissed"), Some("a VPN")));
}
