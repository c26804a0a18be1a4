//! Sign-in end to end through Rocket's local client: first-run setup, password sign-in and
//! its rate limit, cookies, CSRF (missing, cross-origin, replayed), API keys, accounts.

mod common;

use common::{ADMIN, Reply, TestEnv, csrf_of, form_body};
use rocket::http::{ContentType, Cookie, Header, Method, Status};
use streamwarden::auth::session::{CSRF_COOKIE, SESSION_COOKIE};

/// Posts an anonymous form the way a browser does after loading `page`: with the page's
/// CSRF cookie and field.
async fn post_anonymous(
    env: &TestEnv,
    page_path: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> Reply {
    let page = env.anon().get(page_path).await;
    let cookie = page.set_cookie(CSRF_COOKIE).expect("CSRF cookie on the page");
    let csrf = csrf_of(&page);
    let mut all = fields.to_vec();
    all.push(("csrf", &csrf));
    let req = env
        .client
        .post(action.to_owned())
        .cookie(Cookie::new(CSRF_COOKIE, cookie))
        .header(ContentType::Form)
        .body(form_body(&all));
    Reply::read(req.dispatch().await).await
}

async fn audit_actions(env: &TestEnv) -> Vec<String> {
    env.db()
        .read(|c| {
            let mut stmt = c.prepare("SELECT action FROM audit_log ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
        .unwrap()
}

#[rocket::async_test]
async fn first_visit_creates_the_admin() {
    let env = TestEnv::first_run().await;
    for path in ["/", "/login", "/settings/accounts"] {
        let r = env.anon().get(path).await;
        assert_eq!((r.status, r.location()), (Status::SeeOther, Some("/setup")), "{path}");
    }
    let setup = env.anon().get("/setup").await;
    assert_eq!(setup.status, Status::Ok);
    assert_eq!(setup.count("#setup-form input[name=csrf]"), 1);
    assert!(setup.body.contains("STREAMWARDEN_OIDC_ISSUER"), "explains single sign-on");

    // Bad input keeps what was typed and says what is wrong.
    let bad = post_anonymous(
        &env,
        "/setup",
        "/setup",
        &[("username", "owner"), ("password", "short"), ("confirm", "short")],
    )
    .await;
    assert_eq!(bad.status, Status::BadRequest);
    assert!(bad.text(".alert-error p").contains("at least 8 characters"), "{}", bad.body);
    assert_eq!(bad.attrs("#username", "value"), ["owner"]);
    assert_eq!(bad.attrs("#password[aria-invalid=true]", "id"), ["password"]);

    let ok = post_anonymous(
        &env,
        "/setup",
        "/setup",
        &[("username", "owner"), ("password", "a long secret"), ("confirm", "a long secret")],
    )
    .await;
    assert_eq!((ok.status, ok.location()), (Status::SeeOther, Some("/")), "{}", ok.body);
    let line = ok.set_cookie_line(SESSION_COOKIE).expect("session cookie");
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Lax") && line.contains("Path=/"),
        "{line}"
    );
    assert!(!line.contains("Secure"), "plain http on a LAN: no Secure flag ({line})");
    let token = ok.set_cookie(SESSION_COOKIE).unwrap();
    let home = Reply::read(
        env.client.get("/").cookie(Cookie::new(SESSION_COOKIE, token.clone())).dispatch().await,
    )
    .await;
    assert_eq!(home.status, Status::Ok);
    assert_eq!(home.text(".topbar-user .user-name"), "owner");
    assert_eq!(home.text(".topbar-user .user-role"), "admin");

    // The token is stored hashed; the password as argon2id.
    let (hash, stored): (String, String) = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT token_hash, (SELECT password_hash FROM accounts) FROM sessions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    assert_ne!(hash, token);
    assert_eq!(hash, streamwarden::crypto::sha256_hex(token.as_bytes()));
    assert!(stored.starts_with("$argon2id$"));

    // Setup is over: a second one is refused and the page sends to sign-in.
    assert_eq!(env.anon().get("/setup").await.location(), Some("/login"));
    let again = post_anonymous(
        &env,
        "/login",
        "/setup",
        &[("username", "evil"), ("password", "a long secret"), ("confirm", "a long secret")],
    )
    .await;
    assert_eq!(again.status, Status::Conflict);
    assert_eq!(audit_actions(&env).await, ["setup.admin_created"]);
}

#[rocket::async_test]
async fn password_sign_in_rate_limit_and_sign_out() {
    let env = TestEnv::anonymous().await;
    let wrong = post_anonymous(
        &env,
        "/login",
        "/login",
        &[("username", ADMIN.0), ("password", "wrong password")],
    )
    .await;
    assert_eq!(wrong.status, Status::Unauthorized);
    assert_eq!(wrong.text("#login-error p"), "Wrong username or password.");
    assert_eq!(wrong.attrs("#username", "value"), [ADMIN.0], "the username is kept");
    let unknown = post_anonymous(
        &env,
        "/login",
        "/login",
        &[("username", "nobody"), ("password", "wrong password")],
    )
    .await;
    assert_eq!(
        unknown.text("#login-error p"),
        "Wrong username or password.",
        "no account enumeration"
    );

    let ok = post_anonymous(
        &env,
        "/login?next=/account",
        "/login",
        &[("username", "ADMIN"), ("password", ADMIN.1), ("next", "/account")],
    )
    .await;
    assert_eq!((ok.status, ok.location()), (Status::SeeOther, Some("/account")));
    let token = ok.set_cookie(SESSION_COOKIE).unwrap();
    // An open redirect is not possible through `next`.
    let evil = post_anonymous(
        &env,
        "/login",
        "/login",
        &[("username", ADMIN.0), ("password", ADMIN.1), ("next", "//evil.example/")],
    )
    .await;
    assert_eq!(evil.location(), Some("/"));

    // Sign-out ends the session on the server: the old cookie no longer works.
    let me = Reply::read(
        env.client
            .get("/account")
            .cookie(Cookie::new(SESSION_COOKIE, token.clone()))
            .dispatch()
            .await,
    )
    .await;
    let csrf = csrf_of(&me);
    let out = Reply::read(
        env.client
            .post("/logout")
            .cookie(Cookie::new(SESSION_COOKIE, token.clone()))
            .header(ContentType::Form)
            .body(form_body(&[("csrf", &csrf)]))
            .dispatch()
            .await,
    )
    .await;
    assert_eq!(out.location(), Some("/login?signed_out=true"));
    assert_eq!(out.set_cookie(SESSION_COOKIE).as_deref(), Some(""), "cookie removed");
    let after = Reply::read(
        env.client.get("/account").cookie(Cookie::new(SESSION_COOKIE, token)).dispatch().await,
    )
    .await;
    assert_eq!(after.location(), Some("/login?next=/account"));

    // Ten failures lock the account for a while, with a clear message, even for the right password.
    for _ in 0..10 {
        post_anonymous(
            &env,
            "/login",
            "/login",
            &[("username", ADMIN.0), ("password", "still wrong")],
        )
        .await;
    }
    let locked =
        post_anonymous(&env, "/login", "/login", &[("username", ADMIN.0), ("password", ADMIN.1)])
            .await;
    assert_eq!(locked.status, Status::TooManyRequests);
    assert!(
        locked.text("#login-error p").starts_with("Too many failed sign-ins. Wait "),
        "{}",
        locked.body
    );
    assert!(locked.header("Retry-After").is_some_and(|s| s.parse::<u64>().unwrap() > 0));
    let actions = audit_actions(&env).await;
    assert_eq!(actions.iter().filter(|a| *a == "login.failed").count(), 12);
    assert!(actions.contains(&"login".to_owned()) && actions.contains(&"logout".to_owned()));
}

#[rocket::async_test]
async fn csrf_less_cross_origin_and_replayed_requests_are_refused() {
    let env = TestEnv::new().await;
    let me = env.session.clone().unwrap();
    let keys = |env: &TestEnv| {
        let db = env.db().clone();
        async move {
            db.read(|c| {
                Ok(c.query_row("SELECT count(*) FROM api_keys", [], |r| r.get::<_, i64>(0))?)
            })
            .await
            .unwrap()
        }
    };
    let post = |csrf: Option<&str>, origin: Option<&str>, session: &common::Session| {
        let mut fields = vec![("name", "ci"), ("scope", "read")];
        if let Some(c) = csrf {
            fields.push(("csrf", c));
        }
        let mut req = env
            .client
            .post("/settings/api-keys")
            .cookie(Cookie::new(SESSION_COOKIE, session.token.clone()))
            .header(ContentType::Form)
            .body(form_body(&fields));
        if let Some(o) = origin {
            req = req.header(Header::new("Origin", o.to_owned()));
        }
        req.header(Header::new("Host", "192.168.1.5:8484"))
    };
    // No token, a wrong token, another session's token: 403 and nothing created.
    let other = env.admin_session().await;
    for csrf in [None, Some("forged"), Some(other.csrf.as_str())] {
        let r = Reply::read(post(csrf, None, &me).dispatch().await).await;
        assert_eq!(r.status, Status::Forbidden, "{csrf:?}");
        assert!(r.text(".alert-error p").contains("expired or did not come from Streamwarden"));
    }
    // The right token from another site (or a sandboxed page) is refused too.
    for origin in ["http://evil.example", "http://192.168.1.5:8080", "null"] {
        let r = Reply::read(post(Some(&me.csrf), Some(origin), &me).dispatch().await).await;
        assert_eq!(r.status, Status::Forbidden, "{origin}");
    }
    assert_eq!(keys(&env).await, 0);
    // Our own origin, on plain http by IP: accepted.
    let ok =
        Reply::read(post(Some(&me.csrf), Some("http://192.168.1.5:8484"), &me).dispatch().await)
            .await;
    assert_eq!(ok.status, Status::Ok, "{}", ok.body);
    let key = ok.attrs("#new-key input", "value").pop().expect("the key is shown once");
    assert!(key.starts_with("sw_"));
    assert_eq!(keys(&env).await, 1);

    // Replayed after sign-out: the captured cookie and token are worthless.
    env.as_(&other).post_form("/logout", &[]).await;
    let replay = Reply::read(post(Some(&other.csrf), None, &other).dispatch().await).await;
    assert_eq!(replay.location(), Some("/login"));
    assert_eq!(keys(&env).await, 1);

    // The API: a session must add X-CSRF-Token to change anything; an API key need not.
    let delete = |key_header: Option<String>, csrf: Option<&str>| {
        let mut req = env.client.req(Method::Delete, "/api/v1/api-keys/1");
        if let Some(k) = key_header {
            req = req.header(Header::new("X-Api-Key", k));
        } else {
            req = req.cookie(Cookie::new(SESSION_COOKIE, me.token.clone()));
        }
        if let Some(c) = csrf {
            req = req.header(Header::new("X-CSRF-Token", c.to_owned()));
        }
        req
    };
    let r = Reply::read(delete(None, None).dispatch().await).await;
    assert_eq!(r.status, Status::Forbidden);
    assert_eq!(r.json()["error"]["code"], "forbidden");
    let admin_key = env.api_key(true).await;
    let r = Reply::read(delete(Some(admin_key.clone()), None).dispatch().await).await;
    assert_eq!(r.status, Status::NoContent, "{}", r.body);
}

#[rocket::async_test]
async fn api_keys_are_scoped_and_the_environment_key_is_admin() {
    let env = TestEnv::with_config(|c| {
        c.api_key = Some(streamwarden::config::Secret::new("env-key-0123456789abcdef"));
    })
    .await;
    let read = env.api_key(false).await;
    let me = env.with_key(&read).get("/api/v1/me").await;
    assert_eq!(me.json()["role"], "read");
    let list = env.with_key(&read).get("/api/v1/api-keys").await;
    assert_eq!(list.status, Status::Forbidden);
    assert_eq!(
        list.json()["error"]["message"],
        "This API key is read-only; this needs an admin key."
    );
    let env_key = env.with_key("env-key-0123456789abcdef").get("/api/v1/api-keys").await;
    assert_eq!(env_key.status, Status::Ok);
    assert!(!env_key.body.contains(&read), "keys are never shown again");
    let bogus = env.with_key("sw_not-a-key").get("/api/v1/me").await;
    assert_eq!(bogus.status, Status::Unauthorized);
    assert_eq!(bogus.json()["error"]["code"], "unauthorized");
    assert!(bogus.header("WWW-Authenticate").is_some());
    let none = env.anon().get("/api/v1/me").await;
    assert_eq!(none.status, Status::Unauthorized);
    // X-Api-Key works as well as Bearer; last use is recorded.
    let r = Reply::read(
        env.client
            .get("/api/v1/me")
            .header(Header::new("X-Api-Key", read.clone()))
            .dispatch()
            .await,
    )
    .await;
    assert_eq!(r.status, Status::Ok);
    let used: Option<i64> = env
        .db()
        .read(|c| Ok(c.query_row("SELECT max(last_used_at) FROM api_keys", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert!(used.is_some());
}

#[rocket::async_test]
async fn accounts_are_managed_and_the_last_admin_is_kept() {
    let env = TestEnv::new().await;
    let bad = env
        .post_form(
            "/settings/accounts",
            &[("username", "has space"), ("password", ""), ("role", "viewer")],
        )
        .await;
    assert_eq!(bad.status, Status::BadRequest);
    assert_eq!(bad.attrs("#new-username", "value"), ["has space"], "input kept");
    let created = env
        .post_form(
            "/settings/accounts",
            &[("username", "kid"), ("password", "kids password"), ("role", "viewer")],
        )
        .await;
    assert_eq!(created.location(), Some("/settings/accounts?done=created"));
    let dup = env
        .post_form(
            "/settings/accounts",
            &[("username", "KID"), ("password", ""), ("role", "viewer")],
        )
        .await;
    assert_eq!(dup.status, Status::Conflict);

    let admin_id = env.admin_id.unwrap().to_string();
    for action in ["delete", "disable"] {
        let r = env.post_form(&format!("/settings/accounts/{admin_id}/{action}"), &[]).await;
        assert_eq!(r.status, Status::Conflict, "{action} yourself");
    }
    let demote = env
        .post_form(
            &format!("/settings/accounts/{admin_id}"),
            &[("role", "viewer"), ("media_user_id", "")],
        )
        .await;
    assert_eq!(demote.status, Status::Conflict);
    assert!(demote.text("#accounts-error p").contains("last admin"));

    // Disabling signs the account out at once.
    let kid_id: i64 = env
        .db()
        .read(|c| {
            Ok(c.query_row("SELECT id FROM accounts WHERE username = 'kid'", [], |r| r.get(0))?)
        })
        .await
        .unwrap();
    let kid = env.session_for(kid_id).await;
    assert_eq!(env.as_(&kid).get("/account").await.status, Status::Ok);
    env.post_form(&format!("/settings/accounts/{kid_id}/disable"), &[]).await;
    assert_eq!(env.as_(&kid).get("/account").await.status, Status::SeeOther);

    let page = env.get("/settings/accounts?done=disabled").await;
    assert_eq!(page.text(".alert-ok"), "Account disabled and signed out.");
    let audit = env.get("/settings/audit").await;
    let actions = audit.texts("#audit tbody td[data-label=What]");
    assert!(
        actions.contains(&"account.create".to_owned())
            && actions.contains(&"account.disable".to_owned()),
        "{actions:?}"
    );
    assert!(!audit.body.contains("kids password"), "no secret in the audit log");
}

#[rocket::async_test]
async fn cookies_follow_the_public_url_and_base_path() {
    let env = TestEnv::with_config(|c| {
        c.base_path = "/sw".into();
        c.public_url = Some("https://media.example.com/sw".parse().unwrap());
    })
    .await;
    let r = env.anon().get("/sw/login").await;
    let line = r.set_cookie_line(CSRF_COOKIE).unwrap().to_owned();
    assert!(
        line.contains("Secure") && line.contains("Path=/sw") && line.contains("HttpOnly"),
        "{line}"
    );
    assert_eq!(env.anon().get("/sw/account").await.location(), Some("/sw/login?next=/sw/account"));
    let hx = env.anon().get_htmx("/sw/account").await;
    assert_eq!(hx.header("HX-Redirect"), Some("/sw/login?next=/sw/account"));
}

#[rocket::async_test]
async fn demo_mode_offers_a_one_click_admin() {
    let env = TestEnv::first_run_with(|c| c.demo = true).await;
    let page = env.anon().get("/setup").await;
    assert_eq!(page.count("#demo-login"), 1);
    let r = post_anonymous(&env, "/setup", "/auth/demo", &[]).await;
    assert_eq!(r.location(), Some("/"));
    let (role, hash): (String, Option<String>) = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT role, password_hash FROM accounts WHERE username = 'demo'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!((role.as_str(), hash), ("admin", None), "no password, so none to guess");
    // Without demo mode the endpoint does not exist.
    let env = TestEnv::anonymous().await;
    assert_eq!(post_anonymous(&env, "/login", "/auth/demo", &[]).await.status, Status::NotFound);
    assert_eq!(env.anon().get("/login").await.count("#demo-login"), 0);
}
