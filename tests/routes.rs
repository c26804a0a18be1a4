//! Every route, as anonymous, viewer and admin: the server checks the role on each one.
//!
//! Routes come from `client.rocket().routes()`, so a route added later is covered without
//! touching this file. Unless listed below, a route is admin-only.

mod common;

use common::{Caller, Reply, TestEnv, form_body};
use rocket::http::{ContentType, Header, Method, Status};

/// Anyone may use these.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/api/v1/health"),
    ("GET", "/static/<path..>"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/setup"),
    ("POST", "/setup"),
    ("POST", "/auth/demo"),
    ("GET", "/auth/oidc/login"),
    ("GET", "/auth/oidc/callback"),
];

/// Any signed-in user (viewers included) may use these.
const VIEWER: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/account"),
    ("POST", "/account/password"),
    ("POST", "/account/sign-out-everywhere"),
    ("POST", "/logout"),
    ("GET", "/api/v1/me"),
    ("GET", "/events/dashboard"),
    ("GET", "/events/map"),
    ("GET", "/stats"),
    ("GET", "/stats.csv"),
    ("GET", "/map"),
    ("GET", "/api/v1/map"),
    ("GET", "/sessions/<id>/poster"),
    ("GET", "/history"),
    ("GET", "/history/<id>"),
    ("GET", "/history/<id>/poster"),
    ("GET", "/history.csv"),
    ("GET", "/users"),
    ("GET", "/users/<id>"),
    ("GET", "/violations"),
    ("GET", "/violations/<id>"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/sessions"),
    ("GET", "/api/v1/history"),
    ("GET", "/api/v1/stats"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/users/<id>"),
    ("GET", "/api/v1/violations"),
    ("GET", "/api/v1/violations/<id>"),
];

/// Endless responses (server-sent events): only the head is read.
const STREAMS: &[&str] = &["/events/dashboard", "/events/map"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Public,
    Viewer,
    Admin,
}

fn access(method: &str, path: &str) -> Access {
    let is = |list: &[(&str, &str)]| list.iter().any(|(m, p)| *m == method && *p == path);
    if is(PUBLIC) {
        Access::Public
    } else if is(VIEWER) {
        Access::Viewer
    } else {
        Access::Admin
    }
}

/// A concrete path for a route pattern: `<id>` becomes `1`, `<path..>` a real asset.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| {
            if seg.starts_with('<') && seg.ends_with("..>") {
                "css/app.css".to_owned()
            } else if seg.starts_with('<') {
                "1".to_owned()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(caller: &Caller<'_>, method: Method, path: &str) -> Reply {
    let csrf = caller.csrf();
    let mut req = caller.request(method, path).header(Header::new("X-CSRF-Token", csrf.clone()));
    if method != Method::Get {
        req = if path.starts_with("/api/") {
            req.header(ContentType::JSON).body("{}")
        } else {
            req.header(ContentType::Form).body(form_body(&[("csrf", &csrf)]))
        };
    }
    let res = req.dispatch().await;
    if STREAMS.contains(&path) && res.status() == Status::Ok {
        return Reply::head(res);
    }
    Reply::read(res).await
}

/// Sent to the sign-in (or first-run) page, not to "you are signed out".
fn sent_to_sign_in(r: &Reply) -> bool {
    r.status == Status::SeeOther
        && r.location()
            .is_some_and(|l| l == "/login" || l.starts_with("/login?next=") || l == "/setup")
}

fn refused(r: &Reply) -> bool {
    matches!(r.status.code, 401 | 403) || sent_to_sign_in(r)
}

#[rocket::async_test]
async fn every_route_checks_the_role_on_the_server() {
    let env = TestEnv::new().await;
    let mut routes: Vec<(Method, String)> =
        env.client.rocket().routes().map(|r| (r.method, r.uri.path().to_owned())).collect();
    routes.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
    routes.dedup();
    assert!(routes.len() >= 20, "found only {routes:?}");

    let mut failures = Vec::new();
    for (method, pattern) in &routes {
        let path = concrete(pattern);
        let expected = access(method.as_str(), pattern);
        let api = path.starts_with("/api/");

        let anon = send(&env.anon_with_csrf().await, *method, &path).await;
        let viewer_session = env.viewer(None).await;
        let viewer = send(&env.as_(&viewer_session), *method, &path).await;
        let admin_session = env.admin_session().await;
        let admin = send(&env.as_(&admin_session), *method, &path).await;

        let mut check = |who: &str, r: &Reply, allowed: bool| {
            let ok = if allowed && expected == Access::Public {
                // Public pages may still redirect (the setup page once set up).
                !matches!(r.status.code, 401 | 403)
            } else if allowed {
                !refused(r)
            } else if who == "anonymous" {
                if api { r.status == Status::Unauthorized } else { sent_to_sign_in(r) }
            } else {
                r.status == Status::Forbidden
            };
            if !ok {
                failures.push(format!(
                    "{method} {pattern} as {who}: expected {}, got {} {:?}",
                    if allowed { "access" } else { "refusal" },
                    r.status,
                    r.location()
                ));
            }
        };
        check("anonymous", &anon, expected == Access::Public);
        check("viewer", &viewer, expected != Access::Admin);
        check("admin", &admin, true);
        if !api && expected != Access::Public && *method == Method::Get {
            // An htmx request is sent to sign in with HX-Redirect, not a 3xx htmx cannot see.
            let hx = env.anon().request(*method, &path).header(Header::new("HX-Request", "true"));
            let hx = Reply::read(hx.dispatch().await).await;
            if hx.status != Status::Ok
                || !hx.header("HX-Redirect").is_some_and(|l| l.starts_with("/login"))
            {
                failures.push(format!(
                    "{method} {pattern} as anonymous htmx: {} {:?}",
                    hx.status, hx.headers
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
}

#[rocket::async_test]
async fn the_viewer_page_has_no_admin_navigation_and_admin_pages_are_403() {
    let env = TestEnv::new().await;
    let viewer = env.viewer(None).await;
    let page = env.as_(&viewer).get("/").await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(
        page.texts("nav.mainnav a"),
        ["Dashboard", "History", "Statistics", "Map", "Violations"]
    );
    assert_eq!(page.text(".topbar-user .user-role"), "viewer");
    assert_eq!(page.count("form[action='/logout'] input[name=csrf]"), 1);
    let settings = env.as_(&viewer).get("/settings/accounts").await;
    assert_eq!(settings.status, Status::Forbidden);
    assert_eq!(settings.text(".alert-error p"), "Only admins can open this page.");
    let api = env.as_(&viewer).get("/api/v1/api-keys").await;
    assert_eq!(api.status, Status::Forbidden);
    assert_eq!(api.json()["error"]["code"], "forbidden");
    // Anonymous: no navigation at all, and the way back after signing in is kept.
    let anon = env.anon().get("/settings/audit?before=5").await;
    assert_eq!(anon.location(), Some("/login?next=/settings/audit%3Fbefore%3D5"));
}
