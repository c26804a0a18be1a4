//! The defects an adversarial run found (issue 18), each driven the way an attacker or an
//! unlucky operator would: parallel password guesses, unknown accounts, streams that outlive
//! their session, malformed requests, oversized input.

#[path = "notify/capture.rs"]
#[allow(dead_code, reason = "the notify tests use the rest of the capture server")]
mod capture;
mod common;

use std::time::Duration;

use common::{ADMIN, Reply, TestEnv, form_body};
use rocket::futures::future::join_all;
use rocket::http::{ContentType, Cookie, Status};
use rocket::local::asynchronous::LocalResponse;
use streamwarden::auth::session::{CSRF_COOKIE, SESSION_COOKIE};
use streamwarden::auth::{Auth, Role, accounts};
use streamwarden::media::{self, Connection, MediaError, ServerKind};
use streamwarden::poller::live::LiveView;

/// The argon2 verifications the instance ran so far.
fn verifications(env: &TestEnv) -> u64 {
    env.client.rocket().state::<Auth>().expect("managed auth").hashing.verifications()
}

/// A sign-in form as a browser posts it after loading the sign-in page.
async fn sign_in(env: &TestEnv, csrf: &str, username: &str, password: &str, next: &str) -> Reply {
    let body = form_body(&[
        ("username", username),
        ("password", password),
        ("next", next),
        ("csrf", csrf),
    ]);
    let res = env
        .client
        .post("/login")
        .cookie(Cookie::new(CSRF_COOKIE, csrf.to_owned()))
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await;
    Reply::read(res).await
}

/// The anonymous CSRF token of a fresh visitor.
async fn anonymous_csrf(env: &TestEnv) -> String {
    let page = env.anon().get("/login?local=true").await;
    page.set_cookie(CSRF_COOKIE).expect("the sign-in page sets a CSRF cookie")
}

#[rocket::async_test]
async fn parallel_guesses_cannot_pass_the_limit_before_any_fails() {
    let env = TestEnv::anonymous().await;
    let csrf = anonymous_csrf(&env).await;
    let before = verifications(&env);
    // One burst of 40 wrong guesses, all in flight at once.
    let burst = (0..40).map(|i| {
        let (env, csrf) = (&env, csrf.clone());
        async move { sign_in(env, &csrf, ADMIN.0, &format!("guess number {i}"), "/").await }
    });
    let replies = join_all(burst).await;
    let count = |status: Status| replies.iter().filter(|r| r.status == status).count();
    assert_eq!(count(Status::Unauthorized), 10, "exactly the account's budget was checked");
    assert_eq!(count(Status::TooManyRequests), 30);
    assert_eq!(verifications(&env) - before, 10, "refused guesses cost no hash");
    // The right password now waits like every other guess.
    let right = sign_in(&env, &csrf, ADMIN.0, ADMIN.1, "/").await;
    assert_eq!(right.status, Status::TooManyRequests, "{}", right.body);
    assert!(right.header("Retry-After").is_some());
}

#[rocket::async_test]
async fn the_current_password_of_a_password_change_is_limited_like_a_sign_in() {
    let env = TestEnv::new().await;
    let id = env.create_account("carol", Role::Viewer, None, Some("carol's old secret")).await;
    let carol = env.session_for(id).await;
    let burst = (0..15).map(|i| {
        let (env, carol) = (&env, carol.clone());
        async move {
            env.as_(&carol)
                .post_form(
                    "/account/password",
                    &[
                        ("current", &format!("not it {i}")),
                        ("password", "carol's new secret"),
                        ("confirm", "carol's new secret"),
                    ],
                )
                .await
        }
    });
    let replies = join_all(burst).await;
    let wrong = replies.iter().filter(|r| r.status == Status::BadRequest).count();
    let limited = replies.iter().filter(|r| r.status == Status::TooManyRequests).count();
    assert_eq!((wrong, limited), (10, 5));
    let right = env
        .as_(&carol)
        .post_form(
            "/account/password",
            &[
                ("current", "carol's old secret"),
                ("password", "carol's new secret"),
                ("confirm", "carol's new secret"),
            ],
        )
        .await;
    assert_eq!(right.status, Status::TooManyRequests, "{}", right.body);
    // Sign-in shares the account's budget: it waits too.
    let csrf = anonymous_csrf(&env).await;
    let sign = sign_in(&env, &csrf, "carol", "carol's old secret", "/").await;
    assert_eq!(sign.status, Status::TooManyRequests);
    let failures: i64 = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM audit_log WHERE action = 'account.password_change_failed'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(failures, 10, "each wrong current password is audited");
}

#[rocket::async_test]
async fn unknown_disabled_and_passwordless_accounts_cost_a_verification_too() {
    let env = TestEnv::anonymous().await;
    let disabled = env.create_account("dora", Role::Viewer, None, Some("dora's secret")).await;
    env.db()
        .write(move |c| streamwarden::db::accounts::set_disabled(c, disabled, true))
        .await
        .unwrap();
    env.create_account("sso-only", Role::Viewer, None, None).await;
    let csrf = anonymous_csrf(&env).await;
    let long_name = "x".repeat(300);
    for name in ["nobody", "dora", "sso-only", long_name.as_str(), ADMIN.0] {
        let before = verifications(&env);
        let reply = sign_in(&env, &csrf, name, "dora's secret", "/").await;
        assert_eq!(reply.status, Status::Unauthorized, "{name}");
        assert_eq!(reply.text("#login-error p"), "Wrong username or password.");
        assert_eq!(verifications(&env) - before, 1, "{name}: one argon2 verification");
    }
}

#[rocket::async_test]
async fn common_passwords_are_refused_where_passwords_are_set() {
    let env = TestEnv::first_run().await;
    let csrf = anonymous_csrf(&env).await;
    let body = form_body(&[
        ("username", "owner"),
        ("password", "12345678"),
        ("confirm", "12345678"),
        ("csrf", &csrf),
    ]);
    let res = env
        .client
        .post("/setup")
        .cookie(Cookie::new(CSRF_COOKIE, csrf.clone()))
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await;
    let setup = Reply::read(res).await;
    assert_eq!(setup.status, Status::BadRequest);
    assert!(setup.text(".alert-error p").contains("most common"), "{}", setup.body);

    let env = TestEnv::new().await;
    let form = env
        .post_form(
            "/settings/accounts",
            &[("username", "weak"), ("password", "qwertyuiop"), ("role", "viewer")],
        )
        .await;
    assert_eq!(form.status, Status::BadRequest, "{}", form.body);
    assert!(form.body.contains("most common"), "{}", form.body);
}

#[rocket::async_test]
async fn a_huge_username_is_refused_and_stored_cut() {
    let env = TestEnv::anonymous().await;
    let csrf = anonymous_csrf(&env).await;
    let huge = "A".repeat(200 * 1024);
    let reply = sign_in(&env, &csrf, &huge, "whatever password", "/").await;
    assert_eq!(reply.status, Status::Unauthorized);
    let (actor, details): (String, String) = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT actor, details FROM audit_log WHERE action = 'login.failed'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    assert!(actor.starts_with("user:AAAA"), "{actor}");
    assert!(
        actor.chars().count() <= streamwarden::db::audit::MAX_NAME + 1,
        "{} chars",
        actor.len()
    );
    assert!(details.len() <= streamwarden::db::audit::MAX_DETAILS);
}

#[rocket::async_test]
async fn malformed_requests_get_a_client_error_not_a_server_error() {
    let env = TestEnv::anonymous().await;
    let csrf = anonymous_csrf(&env).await;
    // A form handler sent something that is not a form.
    for content_type in [Some(ContentType::Plain), Some(ContentType::JSON), None] {
        let mut req = env
            .client
            .post("/login")
            .cookie(Cookie::new(CSRF_COOKIE, csrf.clone()))
            .body(form_body(&[("username", "a"), ("password", "b"), ("csrf", &csrf)]));
        if let Some(ct) = content_type.clone() {
            req = req.header(ct);
        }
        let reply = Reply::read(req.dispatch().await).await;
        assert_eq!(reply.status, Status::BadRequest, "{content_type:?}: {}", reply.body);
    }
    // A `next` that is not a URI: home, not a failed redirect.
    let ok = sign_in(&env, &csrf, ADMIN.0, ADMIN.1, "/ /evil").await;
    assert_eq!((ok.status, ok.location()), (Status::SeeOther, Some("/")), "{}", ok.body);
    let token = ok.set_cookie(SESSION_COOKIE).expect("signed in");
    let res = env
        .client
        .get("/login?next=/%20/evil")
        .cookie(Cookie::new(SESSION_COOKIE, token))
        .dispatch()
        .await;
    let page = Reply::read(res).await;
    assert_eq!((page.status, page.location()), (Status::SeeOther, Some("/")));
}

/// Reads a server-sent events body until `done` holds for what arrived, or the stream ends.
/// Returns what arrived and whether the stream ended.
async fn read_events(
    res: &mut LocalResponse<'_>,
    seen: &mut String,
    done: impl Fn(&str) -> bool,
) -> bool {
    use tokio::io::AsyncReadExt as _;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while !done(seen) {
        let read = tokio::time::timeout_at(deadline, res.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("the stream answers within 20 s; so far: {seen:?}"));
        match read {
            Ok(0) | Err(_) => return true,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    false
}

#[rocket::async_test]
async fn an_open_event_stream_ends_with_its_session() {
    let env = TestEnv::new().await;
    let signed_out = env.viewer(None).await;
    let id = env.create_account("to-disable", Role::Viewer, None, None).await;
    let disabled = env.session_for(id).await;
    let demoted = env.admin_session().await;
    let kept = env.viewer(None).await;
    let open = |session: &common::Session| {
        env.client
            .get("/events/dashboard")
            .cookie(Cookie::new(SESSION_COOKIE, session.token.clone()))
            .dispatch()
    };
    let mut streams =
        [open(&signed_out).await, open(&disabled).await, open(&demoted).await, open(&kept).await];
    let events = |s: &str| s.matches("event:live").count();
    let mut seen = vec![String::new(); streams.len()];
    for (stream, seen) in streams.iter_mut().zip(&mut seen) {
        assert_eq!(stream.status(), Status::Ok);
        let ended = read_events(stream, seen, |s| events(s) >= 1).await;
        assert!(!ended, "the first event arrives");
    }

    // Sign out one, disable another, demote the admin.
    let out = env.as_(&signed_out).post_form("/logout", &[]).await;
    assert_eq!(out.status, Status::SeeOther);
    let actor = accounts::Actor::new("user:admin", None);
    accounts::set_disabled(env.db(), actor.clone(), env.admin_id.unwrap(), id, true).await.unwrap();
    accounts::update(env.db(), actor, demoted.account_id, Role::Viewer, None).await.unwrap();

    // The next change of the live view is an event for every stream still allowed to see it
    // ("waiting for the first poll" and "nobody is streaming" differ for every viewer).
    let polled = env.control().hub.current().at > 0;
    env.control().hub.publish(LiveView { at: i64::from(!polled), ..LiveView::default() });
    for (i, (stream, seen)) in streams.iter_mut().zip(&mut seen).enumerate() {
        let ended = read_events(stream, seen, |s| events(s) >= 2).await;
        if i == 3 {
            assert!(!ended, "the untouched session keeps its stream");
            assert_eq!(events(seen), 2);
        } else {
            assert!(ended, "stream {i} ends");
            assert_eq!(events(seen), 1, "stream {i} sent nothing after its session changed");
        }
    }
}

/// A valid, empty session list of `kind`.
fn no_sessions(kind: ServerKind) -> capture::Reply {
    match kind {
        ServerKind::Plex => capture::Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/xml".into())],
            body: r#"<MediaContainer size="0"/>"#.into(),
        },
        _ => capture::Reply::json(200, &serde_json::json!([])),
    }
}

fn sessions_path(kind: ServerKind) -> &'static str {
    if kind == ServerKind::Plex { "/status/sessions" } else { "/Sessions" }
}

fn token_of(kind: ServerKind, request: &capture::Request) -> Option<String> {
    match kind {
        ServerKind::Plex => request.header("X-Plex-Token").map(str::to_owned),
        ServerKind::Emby => request.header("X-Emby-Token").map(str::to_owned),
        ServerKind::Jellyfin => request.header("Authorization").map(str::to_owned),
    }
}

#[rocket::async_test]
async fn media_tokens_never_follow_a_redirect_to_another_address() {
    const TOKEN: &str = "media-token-0123456789";
    for kind in [ServerKind::Plex, ServerKind::Jellyfin, ServerKind::Emby] {
        let server = capture::Capture::start().await;
        let elsewhere = capture::Capture::start().await;
        let connection =
            Connection { kind, url: server.url(), token: TOKEN.into(), verify_tls: true };
        let client = media::connect(&connection).unwrap();

        // Another port on the same host, and another host name for the same port: both are
        // other addresses.
        let targets = [
            format!("{}{}", elsewhere.url(), sessions_path(kind)),
            format!("http://localhost:{}{}", server.port, sessions_path(kind)),
        ];
        for target in &targets {
            let before = server.requests().len();
            server.next(capture::Reply::status(302).header("Location", target));
            let e = client.sessions().await.unwrap_err();
            assert!(
                matches!(&e, MediaError::Refused(m) if m.contains("redirected to") && m.contains("does not send the token")),
                "{kind:?} → {target}: {e}"
            );
            assert!(!e.to_string().contains(TOKEN));
            assert_eq!(
                server.requests().len(),
                before + 1,
                "{kind:?}: the redirect was not followed to {target}"
            );
        }
        assert!(
            elsewhere.requests().is_empty(),
            "{kind:?}: the other address saw no request, so no token"
        );

        // A redirect on the same server is followed, token and all.
        let before = server.requests().len();
        server.next(
            capture::Reply::status(307)
                .header("Location", &format!("{}?again=1", sessions_path(kind))),
        );
        server.next(no_sessions(kind));
        assert!(client.sessions().await.unwrap().is_empty(), "{kind:?}");
        let seen = server.requests();
        assert_eq!(seen.len(), before + 2);
        assert!(seen[before + 1].target.ends_with("?again=1"));
        assert!(token_of(kind, &seen[before + 1]).is_some_and(|t| t.contains(TOKEN)), "{kind:?}");
    }
}

#[rocket::async_test]
async fn a_hollow_plex_answer_is_a_failed_poll_not_the_end_of_every_stream() {
    use common::sim::{PLEX, Sim, film, three_servers, tv};
    let env = TestEnv::new().await;
    let mut sim = Sim::start(&env, three_servers()).await;
    sim.with(|w| w.start(PLEX, "alice", &tv(), "81.2.69.142".parse().unwrap(), false, &film()));
    sim.run(&env, 60, 5).await;
    let live = env.get("/api/v1/sessions").await.json();
    let id = live[0]["id"].clone();
    assert!(id.is_i64(), "{live}");

    // Plex answers `<MediaContainer size="1"/>` for a while.
    sim.with(|w| w.servers[PLEX].hollow_listing = true);
    let failed: usize = {
        let mut failed = 0;
        for _ in 0..6 {
            failed += sim.tick(&env, 5).await.failed;
        }
        failed
    };
    assert!(failed >= 2, "the hollow answers are failed polls ({failed})");
    let live = env.get("/api/v1/sessions").await.json();
    assert_eq!(live.as_array().unwrap().len(), 1, "the stream is held, not stopped: {live}");
    let servers = env.get("/api/v1/servers").await.json();
    let plex = servers.as_array().unwrap().iter().find(|s| s["name"] == "Sim Plex").unwrap();
    let error = plex["health"]["last_error"].as_str().unwrap();
    assert!(error.contains("holds 1 entries but lists 0"), "{error}");

    sim.with(|w| w.servers[PLEX].hollow_listing = false);
    sim.run(&env, 10, 5).await;
    let live = env.get("/api/v1/sessions").await.json();
    assert_eq!(live[0]["id"], id, "the same play goes on, none was closed and reopened");
    let history = env.get("/api/v1/history").await.json();
    assert!(history["items"].as_array().unwrap().is_empty(), "no play ended: {history}");
}
