//! The user page's trust and households sections: through the real app on a temporary
//! SQLite.

mod common;

use common::{Reply, TestEnv, form_body};
use rocket::http::{ContentType, Method, Status};
use streamwarden::db::{households, trust};
use streamwarden::rules::trust::{Change, Reason};

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
