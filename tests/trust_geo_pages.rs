//! The user page's trust and households sections, and Settings → GeoIP: through the real
//! app on a temporary SQLite, with MaxMind's test databases where a test needs them.

mod common;

use std::sync::Arc;

use common::{Reply, TestEnv, form_body};
use rocket::http::{ContentType, Method, Status};
use streamwarden::db::{households, trust};
use streamwarden::geo::GeoIp;
use streamwarden::rules::trust::{Change, Reason};

const LONDON: &str = "81.2.69.142";
const T0: i64 = 1_800_000_000_000;

/// A media user on a server of its own, straight into the database.
async fn seed_user(env: &TestEnv, name: &str) -> i64 {
    let name = name.to_owned();
    env.db()
        .write(move |c| {
            let server: i64 = c.query_row(
                "INSERT INTO servers (name, kind, url, token_sealed, created_at, updated_at) \
                 VALUES (?1, 'plex', 'http://192.0.2.1:32400', 'x', ?2, ?2) RETURNING id",
                rusqlite::params![format!("Plex of {name}"), T0],
                |r| r.get(0),
            )?;
            Ok(c.query_row(
                "INSERT INTO media_users (server_id, external_id, name, first_seen_at) \
                 VALUES (?1, ?2, ?2, ?3) RETURNING id",
                rusqlite::params![server, name, T0],
                |r| r.get(0),
            )?)
        })
        .await
        .expect("user seeded")
}

/// `n` finished plays of `user` from `ip`, a minute apart from `start`.
async fn seed_plays(env: &TestEnv, user: i64, ip: &str, n: i64, start: i64) {
    let ip = ip.to_owned();
    env.db()
        .write(move |c| {
            let server: i64 =
                c.query_row("SELECT server_id FROM media_users WHERE id = ?1", [user], |r| {
                    r.get(0)
                })?;
            for i in 0..n {
                let at = start + i * 60_000;
                c.execute(
                    "INSERT INTO plays (server_id, user_id, status, session_id, item_id, media_type, title, \
                     device_id, ip, decision, started_at, stopped_at, last_seen_at, state) \
                     VALUES (?1, ?2, 'stopped', ?3, '900', 'movie', 'Sintel', 'tv-1', ?4, 'direct_play', ?5, ?6, ?6, 'playing')",
                    rusqlite::params![server, user, format!("s{at}"), ip, at, at + 30_000],
                )?;
            }
            Ok(())
        })
        .await
        .expect("plays seeded");
}

/// Proposes households from plays, as the rules worker does.
async fn learn(env: &TestEnv, threshold: u32) -> usize {
    env.db()
        .write(move |c| households::learn(c, threshold, 0, T0 + 86_400_000))
        .await
        .expect("learning runs")
}

async fn count(env: &TestEnv, sql: &'static str) -> i64 {
    env.db().read(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?)).await.unwrap()
}

fn redirected_to(reply: &Reply, to: &str) {
    assert_eq!(reply.status, Status::SeeOther, "{}", reply.body);
    assert_eq!(reply.location(), Some(to));
}

/// The timeline rows: (reason, change, score, why, note), newest first.
fn timeline(page: &Reply) -> Vec<(String, String, String, String, String)> {
    let reasons = page.attrs("#trust-timeline tbody tr", "data-reason");
    let deltas = page.texts("#trust-timeline tbody td.delta");
    let scores = page.texts("#trust-timeline tbody td.score");
    let whys = page.texts("#trust-timeline tbody td.why");
    let notes = page.texts("#trust-timeline tbody td.note");
    (0..reasons.len())
        .map(|i| {
            (
                reasons[i].clone(),
                deltas[i].clone(),
                scores[i].clone(),
                whys[i].clone(),
                notes[i].clone(),
            )
        })
        .collect()
}

#[rocket::async_test]
async fn an_admin_adjusts_sets_and_resets_trust_on_the_user_page_and_the_timeline_shows_why() {
    let env = TestEnv::new().await;
    let alice = seed_user(&env, "alice").await;
    let path = format!("/users/{alice}/trust");
    let back = format!("/users/{alice}#trust");

    let page = env.get(&format!("/users/{alice}")).await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(page.count("#no-trust-events"), 1);
    assert_eq!(page.count("#trust-form"), 1, "admins get the form");
    assert_eq!(page.attrs("[data-stat=trust] .trust", "data-band"), ["good"]);

    let adjusted = env
        .post_form(&path, &[("change", "adjust"), ("amount", "-30"), ("note", "shared the login")])
        .await;
    redirected_to(&adjusted, &back);
    let page = env.get(&format!("/users/{alice}")).await;
    assert_eq!(page.text("[data-stat=trust]"), "70");
    assert_eq!(page.attrs("[data-stat=trust] .trust", "data-band"), ["fair"]);
    assert_eq!(
        timeline(&page),
        [(
            "admin".into(),
            "-30".into(),
            "70".into(),
            "Admin admin".into(),
            "shared the login".into()
        )]
    );

    let set = env.post_form(&path, &[("change", "set"), ("amount", "20"), ("note", "again")]).await;
    redirected_to(&set, &back);
    // Through htmx the answer is HX-Redirect, which htmx can follow.
    let reset =
        env.post_htmx(&path, &[("change", "reset"), ("amount", ""), ("note", "talked")]).await;
    assert_eq!(reset.status, Status::Ok);
    assert_eq!(reset.header("HX-Redirect"), Some(back.as_str()));

    let page = env.get(&format!("/users/{alice}")).await;
    let rows = timeline(&page);
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_str(), rows[0].4.as_str()),
        ("+80", "100", "talked")
    );
    assert_eq!(
        (rows[1].1.as_str(), rows[1].2.as_str(), rows[1].4.as_str()),
        ("-50", "20", "again")
    );
    assert_eq!(page.text("[data-stat=trust]"), "100");

    // A rule's violation, recovery and a dismissal: each says why, rules link the violation.
    let violation = env
        .db()
        .write(move |c| {
            let vid: i64 = c.query_row(
                "INSERT INTO violations (rule_name, severity, user_id, dedup_key, at, summary, evidence) \
                 VALUES ('Impossible travel', 'high', ?1, 'play:1', ?2, 'London then Milton', '{}') RETURNING id",
                rusqlite::params![alice, T0],
                |r| r.get(0),
            )?;
            trust::apply(c, alice, Change::Adjust(-25), Reason::Rule, Some(vid), None, "", T0)?;
            trust::apply(c, alice, Change::Adjust(5), Reason::Recovery, None, None, "", T0)?;
            trust::reverse_violation(c, alice, vid, "user:admin", T0)?;
            Ok(vid)
        })
        .await
        .unwrap();
    let page = env.get(&format!("/users/{alice}")).await;
    let rows = timeline(&page);
    assert_eq!(rows.len(), 6);
    // The rule took 25; giving them back stops at 100.
    assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), ("dismissed", "+20"));
    assert_eq!(rows[0].3, "Dismissed Impossible travel by admin");
    assert_eq!((rows[1].0.as_str(), rows[1].1.as_str()), ("recovery", "+5"));
    assert_eq!((rows[2].0.as_str(), rows[2].1.as_str(), rows[2].2.as_str()), ("rule", "-25", "75"));
    assert_eq!(rows[2].3, "Rule Impossible travel");
    let link = format!("/violations/{violation}");
    assert_eq!(
        page.attrs("#trust-timeline tr[data-reason=rule] a", "href"),
        std::slice::from_ref(&link),
        "the rule's entry links its violation"
    );
    assert_eq!(page.attrs("#trust-timeline tr[data-reason=dismissed] a", "href"), [link]);

    // The list shows the score in its band.
    let list = env.get("/users").await;
    let sel = format!("#users tr[data-user-id='{alice}'] .trust");
    assert_eq!(list.text(&sel), "100");
    assert_eq!(list.attrs(&sel, "data-band"), ["good"]);
    assert_eq!(count(&env, "SELECT count(*) FROM audit_log WHERE action = 'user.trust'").await, 3);
}

#[rocket::async_test]
async fn the_trust_form_names_the_wrong_field_and_saves_nothing() {
    let env = TestEnv::new().await;
    let alice = seed_user(&env, "alice").await;
    let path = format!("/users/{alice}/trust");

    let no_note =
        env.post_form(&path, &[("change", "adjust"), ("amount", "-10"), ("note", " ")]).await;
    assert_eq!(no_note.status, Status::BadRequest);
    assert_eq!(no_note.count("#e-note"), 1, "{}", no_note.body);
    assert_eq!(no_note.attrs("#trust-note", "aria-invalid"), ["true"]);
    assert_eq!(no_note.attrs("#trust-amount", "value"), ["-10"], "what was typed stays");
    for (change, amount, why) in [
        ("adjust", "ten", "a whole number"),
        ("set", "150", "from 0 to 100"),
        ("adjust", "0", "not 0"),
        ("adjust", "-101", "from -100 to 100"),
    ] {
        let bad =
            env.post_form(&path, &[("change", change), ("amount", amount), ("note", "x")]).await;
        assert_eq!(bad.status, Status::BadRequest, "{change} {amount}");
        assert!(
            bad.text("#e-amount").contains(why),
            "{change} {amount}: {}",
            bad.text("#e-amount")
        );
        assert_eq!(bad.attrs("#trust-change option[selected]", "value"), [change]);
    }
    let bad = env.post_form(&path, &[("change", "double"), ("amount", "5"), ("note", "x")]).await;
    assert_eq!(bad.count("#e-change"), 1);

    // Without the CSRF token: refused before anything happens.
    let forged = env
        .as_(env.session.as_ref().unwrap())
        .request(Method::Post, &path)
        .header(ContentType::Form)
        .body(form_body(&[("change", "set"), ("amount", "0"), ("note", "forged")]))
        .dispatch()
        .await;
    assert_eq!(forged.status(), Status::Forbidden);
    let forged = env
        .as_(env.session.as_ref().unwrap())
        .request(Method::Post, &format!("/users/{alice}/households"))
        .header(ContentType::Form)
        .body(form_body(&[("network", "203.0.113.0/24"), ("csrf", "wrong")]))
        .dispatch()
        .await;
    assert_eq!(forged.status(), Status::Forbidden);

    assert_eq!(count(&env, "SELECT count(*) FROM trust_events").await, 0);
    assert_eq!(count(&env, "SELECT count(*) FROM households").await, 0);
    assert_eq!(count(&env, "SELECT trust_score FROM media_users").await, 100);
}

#[rocket::async_test]
async fn viewers_see_trust_and_households_read_only_and_their_changes_are_refused() {
    let env = TestEnv::new().await;
    let alice = seed_user(&env, "alice").await;
    let bob = seed_user(&env, "bob").await;
    seed_plays(&env, alice, "198.51.100.20", 10, T0).await;
    assert_eq!(learn(&env, 10).await, 1);
    let proposed: i64 = count(&env, "SELECT id FROM households").await;
    env.post_form(
        &format!("/users/{alice}/trust"),
        &[("change", "adjust"), ("amount", "-5"), ("note", "x")],
    )
    .await;

    let viewer = env.viewer(Some(alice)).await;
    let me = env.as_(&viewer);
    let page = me.get(&format!("/users/{alice}")).await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(page.count("#trust-timeline tbody tr"), 1);
    assert_eq!(page.count("#households-proposed tbody tr"), 1);
    assert_eq!(page.count("#trust form, #households form"), 0, "read-only: {}", page.body);
    assert_eq!(me.get(&format!("/users/{bob}")).await.status, Status::NotFound);

    let refused = [
        me.post_form(&format!("/users/{alice}/trust"), &[("change", "reset"), ("note", "me")])
            .await,
        me.post_form(&format!("/users/{alice}/households"), &[("network", "192.0.2.0/24")]).await,
        me.post_form(&format!("/users/{alice}/households/{proposed}/confirm"), &[]).await,
        me.post_form(&format!("/users/{alice}/households/{proposed}/delete"), &[]).await,
    ];
    for r in &refused {
        assert_eq!(r.status, Status::Forbidden, "{}", r.body);
    }
    assert_eq!(count(&env, "SELECT trust_score FROM media_users WHERE name = 'alice'").await, 95);
    assert_eq!(count(&env, "SELECT count(*) FROM households WHERE confirmed = 0").await, 1);
}

#[rocket::async_test]
async fn households_are_added_by_hand_proposed_confirmed_and_removed_on_the_user_page() {
    let env = TestEnv::new().await;
    let alice = seed_user(&env, "alice").await;
    let bob = seed_user(&env, "bob").await;
    seed_plays(&env, alice, "203.0.113.7", 3, T0).await;
    seed_plays(&env, alice, "203.0.113.9", 2, T0 + 3_600_000).await;
    let page_of = |id: i64| format!("/users/{id}");
    let back = format!("/users/{alice}#households");

    let empty = env.get(&page_of(alice)).await;
    assert_eq!(empty.count("#no-confirmed-households"), 1);
    assert_eq!(empty.count("#no-proposed-households"), 1);

    let added = env
        .post_form(
            &format!("/users/{alice}/households"),
            &[("network", "203.0.113.0/24"), ("label", "Home")],
        )
        .await;
    redirected_to(&added, &back);
    let page = env.get(&page_of(alice)).await;
    let row = "#households-confirmed tr[data-network='203.0.113.0/24']";
    assert_eq!(page.count(row), 1, "{}", page.body);
    assert_eq!(page.text(&format!("{row} td.plays")), "5", "plays from inside the network");
    assert_eq!(page.text(&format!("{row} td[data-label=Label]")), "Home");
    assert_eq!(page.text(&format!("{row} td[data-label=Source]")), "by hand");

    // A bad network: the error beside the field, what was typed kept, nothing saved.
    let bad = env
        .post_form(
            &format!("/users/{alice}/households"),
            &[("network", "203.0.113.0/33"), ("label", "Parents")],
        )
        .await;
    assert_eq!(bad.status, Status::BadRequest);
    assert!(bad.text("#e-network").contains("203.0.113.0/33"), "{}", bad.body);
    assert_eq!(bad.attrs("#household-network", "value"), ["203.0.113.0/33"]);
    assert_eq!(bad.attrs("#household-label", "value"), ["Parents"]);
    assert_eq!(count(&env, "SELECT count(*) FROM households").await, 1);

    // Proposed from frequent plays: confirm one, remove another.
    seed_plays(&env, alice, "198.51.100.20", 12, T0 + 7_200_000).await;
    seed_plays(&env, alice, "192.0.2.44", 10, T0 + 9_000_000).await;
    assert_eq!(learn(&env, 10).await, 2);
    let page = env.get(&page_of(alice)).await;
    assert_eq!(page.count("#households-proposed tbody tr"), 2);
    let proposed = "#households-proposed tr[data-network='198.51.100.20/32']";
    assert_eq!(page.text(&format!("{proposed} td.plays")), "12");
    let id_of = |page: &Reply, network: &str| -> i64 {
        page.attrs(&format!("tr[data-network='{network}']"), "data-household-id")[0]
            .parse()
            .unwrap()
    };
    let first = id_of(&page, "198.51.100.20/32");
    let second = id_of(&page, "192.0.2.44/32");
    let home = id_of(&page, "203.0.113.0/24");

    // Another user's path does not reach alice's households.
    let elsewhere = env.post_form(&format!("/users/{bob}/households/{first}/confirm"), &[]).await;
    assert_eq!(elsewhere.status, Status::NotFound);

    let confirmed = env.post_form(&format!("/users/{alice}/households/{first}/confirm"), &[]).await;
    redirected_to(&confirmed, &back);
    let removed = env.post_form(&format!("/users/{alice}/households/{second}/delete"), &[]).await;
    redirected_to(&removed, &back);
    let page = env.get(&page_of(alice)).await;
    // Learned ones first: they carry the plays they were learned from.
    assert_eq!(
        page.attrs("#households-confirmed tbody tr", "data-network"),
        ["198.51.100.20/32", "203.0.113.0/24"]
    );
    assert_eq!(page.count("#no-proposed-households"), 1);

    let removed = env.post_form(&format!("/users/{alice}/households/{home}/delete"), &[]).await;
    redirected_to(&removed, &back);
    let page = env.get(&page_of(alice)).await;
    assert_eq!(page.attrs("#households-confirmed tbody tr", "data-network"), ["198.51.100.20/32"]);
    assert_eq!(
        count(&env, "SELECT count(*) FROM audit_log WHERE action LIKE 'household.%'").await,
        4,
        "add, confirm and two removals"
    );
}

#[rocket::async_test]
async fn without_a_database_the_geoip_page_says_what_to_do() {
    let env = TestEnv::new().await;
    let page = env.get("/settings/geoip").await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(page.attrs("nav.tabs a[aria-current=page]", "href"), ["/settings/geoip"]);
    let advice = page.text("#no-geoip-db");
    assert!(advice.contains("GeoLite2-City.mmdb"), "{advice}");
    let dir = env.config().data_dir.join("geoip").display().to_string();
    assert!(advice.contains(&dir), "names the folder: {advice}");
    assert!(advice.contains("licence key"), "{advice}");
    assert_eq!(page.text("#geoip-city"), "none");
    assert_eq!(page.attrs("#license-state", "data-state"), ["unset"]);
    assert_eq!(page.count("#update-form button[disabled]"), 1);
    assert!(page.text("#next-update").starts_with("never"));

    let unknown = env.get_htmx(&format!("/settings/geoip/lookup?ip={LONDON}")).await;
    assert_eq!(unknown.attrs("#lookup-answer", "data-source"), ["unknown"]);

    let viewer = env.viewer(None).await;
    assert_eq!(env.as_(&viewer).get("/settings/geoip").await.status, Status::Forbidden);
    assert_eq!(
        env.as_(&viewer).get(&format!("/settings/geoip/lookup?ip={LONDON}")).await.status,
        Status::Forbidden
    );
}

#[rocket::async_test]
async fn the_geoip_page_shows_the_databases_and_looks_addresses_up() {
    let env = TestEnv::with_geoip().await;
    let page = env.get("/settings/geoip").await;
    assert_eq!(page.count("#no-geoip-db"), 0);
    let city = page.text("#geoip-city");
    assert!(city.starts_with("GeoIP2-City built"), "{city}");
    let path = env.config().data_dir.join("geoip/GeoLite2-City.mmdb").display().to_string();
    assert!(city.contains(&path), "{city}");
    assert!(page.text("#geoip-asn").starts_with("GeoLite2-ASN built"));

    // htmx: only the answer comes back.
    let london = env.get_htmx(&format!("/settings/geoip/lookup?ip={LONDON}")).await;
    assert_eq!(london.count("nav.mainnav"), 0);
    assert_eq!(london.attrs("#lookup-answer", "data-source"), ["database"]);
    assert_eq!(london.text("#lookup-city"), "London");
    assert_eq!(london.text("#lookup-country"), "GB");
    assert_eq!(london.text("#lookup-coords"), "51.5142, -0.0931");
    let telstra = env.get_htmx("/settings/geoip/lookup?ip=1.128.0.0").await;
    assert_eq!(telstra.text("#lookup-asn"), "AS1221");
    assert_eq!(telstra.text("#lookup-isp"), "Telstra Pty Ltd");
    let lan = env.get_htmx("/settings/geoip/lookup?ip=192.168.1.20").await;
    assert_eq!(lan.attrs("#lookup-answer", "data-local"), ["true"]);
    assert_eq!(lan.attrs("#lookup-answer", "data-source"), ["local"]);
    let nonsense = env.get_htmx("/settings/geoip/lookup?ip=nowhere").await;
    assert_eq!(nonsense.status, Status::Ok);
    assert!(nonsense.text("#lookup-error").contains("not an IP address"));

    // Without JavaScript the form is a GET that answers the whole page.
    let full = env.get(&format!("/settings/geoip/lookup?ip={LONDON}")).await;
    assert_eq!(full.count("nav.mainnav"), 1);
    assert_eq!(full.text("#lookup-city"), "London");
    assert_eq!(full.attrs("#lookup-form input[name=ip]", "value"), [LONDON]);
}

/// What the live service (the one the poller uses) answers for `ip`: (source, local, city).
fn live(env: &TestEnv, ip: &str) -> (String, bool, Option<String>) {
    let geo = env.client.rocket().state::<Arc<GeoIp>>().expect("managed GeoIp");
    let l = geo.lookup(ip.parse().unwrap());
    (l.source.as_str().to_owned(), l.is_local, l.geo.and_then(|g| g.city))
}

#[rocket::async_test]
async fn overrides_added_and_deleted_on_the_page_change_lookups_at_once() {
    let env = TestEnv::with_geoip().await;
    let back = "/settings/geoip#overrides";
    assert_eq!(live(&env, LONDON), ("database".into(), false, Some("London".into())));

    let office = [
        ("network", "81.2.69.0/24"),
        ("name", "Office"),
        ("country", "fr"),
        ("city", "Paris"),
        ("lat", "48.8566"),
        ("lon", "2.3522"),
    ];
    redirected_to(&env.post_form("/settings/geoip/overrides", &office).await, back);
    assert_eq!(live(&env, LONDON), ("override".into(), false, Some("Paris".into())));
    let api = env.get(&format!("/api/v1/geoip/lookup?ip={LONDON}")).await.json();
    assert_eq!(
        (api["source"].as_str(), api["geo"]["city"].as_str()),
        (Some("override"), Some("Paris"))
    );
    let page = env.get_htmx(&format!("/settings/geoip/lookup?ip={LONDON}")).await;
    assert_eq!(page.attrs("#lookup-answer", "data-source"), ["override"]);
    assert_eq!(page.text("#lookup-country"), "FR");

    let vpn = [("network", LONDON), ("name", "VPN"), ("is_local", "true")];
    redirected_to(&env.post_form("/settings/geoip/overrides", &vpn).await, back);
    assert_eq!(live(&env, LONDON), ("override".into(), true, None), "the most specific wins");
    let page = env.get(&format!("/settings/geoip/lookup?ip={LONDON}")).await;
    assert_eq!(page.attrs("#lookup-answer", "data-local"), ["true"]);
    assert_eq!(
        page.attrs("#overrides-table tbody tr", "data-network"),
        ["81.2.69.0/24", "81.2.69.142/32"]
    );
    let row = "#overrides-table tr[data-network='81.2.69.0/24']";
    assert_eq!(page.text(&format!("{row} td[data-label=Country]")), "FR");
    assert_eq!(page.text(&format!("{row} td[data-label='Lat, lon']")), "48.8566, 2.3522");

    // Wrong input: the error beside its field, what was typed kept, nothing saved.
    let with = |changes: &[(&'static str, &'static str)]| {
        let mut fields: Vec<(&str, &str)> = office.to_vec();
        fields[0] = ("network", "198.51.100.0/24");
        for (k, v) in changes {
            fields.retain(|(name, _)| name != k);
            fields.push((k, v));
        }
        fields
    };
    for (changes, field, status) in [
        (vec![("network", "nowhere")], "network", Status::BadRequest),
        (vec![("network", "81.2.69.0/24")], "network", Status::Conflict),
        (vec![("country", "France")], "country", Status::BadRequest),
        (vec![("lat", "north")], "lat", Status::BadRequest),
        (vec![("lat", "95")], "lat", Status::BadRequest),
        (vec![("lon", "")], "lon", Status::BadRequest),
        (vec![("lon", "200")], "lon", Status::BadRequest),
    ] {
        let bad = env.post_form("/settings/geoip/overrides", &with(&changes)).await;
        assert_eq!(bad.status, status, "{changes:?}: {}", bad.body);
        assert_eq!(bad.count(&format!("#e-{field}")), 1, "{changes:?}: {}", bad.body);
        assert_eq!(bad.attrs(&format!("#o-{field}"), "aria-invalid"), ["true"]);
        assert_eq!(bad.attrs("#o-city", "value"), ["Paris"], "what was typed stays");
    }
    assert_eq!(count(&env, "SELECT count(*) FROM geo_overrides").await, 2);

    let ids = page.attrs("#overrides-table tbody tr", "data-override-id");
    for id in &ids {
        let deleted = env.post_form(&format!("/settings/geoip/overrides/{id}/delete"), &[]).await;
        redirected_to(&deleted, back);
    }
    assert_eq!(live(&env, LONDON), ("database".into(), false, Some("London".into())));
    assert_eq!(env.get("/settings/geoip").await.count("#no-overrides"), 1);
    let again = env.post_form(&format!("/settings/geoip/overrides/{}/delete", ids[0]), &[]).await;
    assert_eq!(again.status, Status::NotFound);
    assert_eq!(
        count(&env, "SELECT count(*) FROM audit_log WHERE action LIKE 'geoip.override.%'").await,
        4
    );
}

/// A `.tar.gz` as MaxMind serves it, holding `<edition>.mmdb` made of `fixture`.
fn archive(edition: &str, fixture: &str) -> Vec<u8> {
    let data = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip").join(fixture),
    )
    .unwrap();
    let mut builder =
        tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, format!("{edition}_20270101/{edition}.mmdb"), data.as_slice())
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

const GOOD_KEY: &str = "good_licence_key_0001";

#[rocket::async_test]
async fn the_licence_key_is_sealed_never_shown_and_update_now_reports_how_it_went() {
    use streamwarden::sim::http::{Response, serve};
    let city = archive("GeoLite2-City", "GeoLite2-City-Test.mmdb");
    let asn = archive("GeoLite2-ASN", "GeoLite2-ASN-Test.mmdb");
    let (addr, _server) = serve(move |req| {
        let (city, asn) = (city.clone(), asn.clone());
        async move {
            match (req.query("license_key"), req.query("edition_id")) {
                (Some(GOOD_KEY), Some("GeoLite2-City")) => {
                    Response::new(200, "application/gzip", city)
                }
                (Some(GOOD_KEY), Some("GeoLite2-ASN")) => {
                    Response::new(200, "application/gzip", asn)
                }
                _ => Response::empty(401),
            }
        }
    })
    .await
    .unwrap();
    let env = TestEnv::with_app(|app| {
        let updater = streamwarden::geo::download::Updater::new(
            Arc::clone(&app.geo),
            app.db.clone(),
            app.secrets.clone(),
            None,
        )
        .with_base_url(&format!("http://{addr}/app/geoip_download"));
        app.geo_updater = Arc::new(updater);
    })
    .await;

    let bad = env.post_form("/settings/geoip/license", &[("license_key", "not a key!")]).await;
    assert_eq!(bad.status, Status::BadRequest);
    assert_eq!(bad.count("#e-license_key"), 1);
    assert_eq!(bad.attrs("#license_key", "value"), [""], "a key is never written back");

    let wrong = "wrong_licence_key_0002";
    redirected_to(
        &env.post_form("/settings/geoip/license", &[("license_key", wrong)]).await,
        "/settings/geoip",
    );
    let page = env.get("/settings/geoip").await;
    assert_eq!(page.attrs("#license-state", "data-state"), ["set"]);
    assert!(!page.body.contains(wrong), "the key is never shown");
    let stored: String = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT value FROM settings WHERE key = 'geoip.license_key'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert!(!stored.contains(wrong), "sealed at rest");
    assert_eq!(page.count("#update-form button[disabled]"), 0);
    assert!(!page.text("#next-update").starts_with("never"), "due now: the files are missing");

    let refused = env.post_htmx("/settings/geoip/update", &[]).await;
    assert_eq!(refused.status, Status::Ok);
    assert_eq!(refused.count("nav.mainnav"), 0, "the status card only");
    assert_eq!(refused.attrs("#update-outcome", "data-ok"), ["false"]);
    assert!(
        refused.text("#update-outcome").contains("refused the licence key"),
        "{}",
        refused.body
    );
    assert!(refused.text("#last-download-error").contains("refused the licence key"));
    assert!(!refused.body.contains(wrong));

    redirected_to(
        &env.post_form("/settings/geoip/license", &[("license_key", GOOD_KEY)]).await,
        "/settings/geoip",
    );
    let updated = env.post_htmx("/settings/geoip/update", &[]).await;
    assert_eq!(updated.attrs("#update-outcome", "data-ok"), ["true"], "{}", updated.body);
    assert!(updated.text("#geoip-city").starts_with("GeoLite2-City built"));
    assert!(updated.text("#geoip-asn").starts_with("GeoLite2-ASN built"));
    assert_eq!(updated.count("#no-geoip-db, #last-download-error"), 0);
    assert_eq!(live(&env, "216.160.83.56").2.as_deref(), Some("Milton"), "swapped in at once");

    // Without JavaScript: the whole page, with the outcome.
    let plain = env.post_form("/settings/geoip/update", &[]).await;
    assert_eq!(plain.count("nav.mainnav"), 1);
    assert_eq!(plain.attrs("#update-outcome", "data-ok"), ["true"]);
    assert!(!plain.text("#next-update").starts_with("never"));

    redirected_to(&env.post_form("/settings/geoip/license/clear", &[]).await, "/settings/geoip");
    let page = env.get("/settings/geoip").await;
    assert_eq!(page.attrs("#license-state", "data-state"), ["unset"]);
    assert!(page.text("#next-update").starts_with("never"));
    let no_key = env.post_htmx("/settings/geoip/update", &[]).await;
    assert_eq!(no_key.attrs("#update-outcome", "data-ok"), ["false"]);
    assert!(no_key.text("#update-outcome").contains("set a MaxMind licence key first"));
    assert_eq!(
        count(&env, "SELECT count(*) FROM audit_log WHERE action LIKE 'geoip.license_key.%'").await,
        3
    );
}

#[rocket::async_test]
async fn a_licence_key_from_the_environment_locks_the_field() {
    let key = "environment_key_0003";
    let env = TestEnv::with_config(|c| {
        c.maxmind_license_key = Some(streamwarden::config::Secret::new(key));
    })
    .await;
    let page = env.get("/settings/geoip").await;
    assert_eq!(page.attrs("#license-state", "data-state"), ["env"]);
    assert!(page.text("#license-state").contains("STREAMWARDEN_MAXMIND_LICENSE_KEY"));
    assert_eq!(page.count("#license_key[disabled]"), 1);
    assert_eq!(page.count("#license-form, #license-clear"), 0);
    assert!(!page.body.contains(key));
    let refused =
        env.post_form("/settings/geoip/license", &[("license_key", "another_key_0004")]).await;
    assert_eq!(refused.status, Status::BadRequest);
    assert!(refused.text("#e-license_key").contains("STREAMWARDEN_MAXMIND_LICENSE_KEY"));
    assert_eq!(
        count(&env, "SELECT count(*) FROM settings WHERE key = 'geoip.license_key'").await,
        0
    );
}
