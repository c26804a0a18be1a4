//! The web shell through Rocket's local client: layout, errors, health, assets, headers.

mod common;

use common::TestEnv;
use rocket::http::{Header, Status};

#[rocket::async_test]
async fn layout_has_the_product_navigation_and_assets() {
    let env = TestEnv::new().await;
    let page = env.get("/").await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(
        page.texts("nav.mainnav a"),
        [
            "Dashboard",
            "History",
            "Statistics",
            "Map",
            "Users",
            "Rules",
            "Violations",
            "Libraries",
            "Settings"
        ]
    );
    assert_eq!(page.attrs("nav.mainnav a[aria-current=page]", "href"), ["/"]);
    assert_eq!(page.count("#error-slot"), 1, "every page has the error slot");
    assert_eq!(page.count("button[data-theme-toggle]"), 1);
    // Vendored assets, versioned by content hash, served by us.
    let scripts = page.attrs("script[src]", "src");
    assert!(
        scripts.iter().any(|s| s.starts_with("/static/vendor/htmx/htmx.min.js?v=")),
        "{scripts:?}"
    );
    assert!(scripts.iter().any(|s| s.starts_with("/static/vendor/htmx-ext-sse/sse.min.js?v=")));
    for url in scripts.iter().chain(&page.attrs("link[rel=stylesheet]", "href")) {
        let asset = env.get(url).await;
        assert_eq!(asset.status, Status::Ok, "{url}");
        assert_eq!(asset.header("Cache-Control"), Some("public, max-age=31536000, immutable"));
    }
    let css = env.get("/static/css/app.css").await;
    assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
    assert!(css.body.contains("color-scheme: light dark"), "the theme follows the system");
    assert!(
        css.body.contains(":root[data-theme=\"dark\"] { color-scheme: dark; }"),
        "unless the user picks one"
    );
    assert_eq!(env.get("/static/nope.js").await.status, Status::NotFound);
}

#[rocket::async_test]
async fn security_headers_and_vary_on_every_response() {
    let env = TestEnv::new().await;
    for path in ["/", "/healthz", "/api/v1/health", "/no-such-page", "/static/css/app.css"] {
        let reply = env.get(path).await;
        let csp = reply.header("Content-Security-Policy").unwrap_or_default();
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        assert!(reply.headers_named("Vary").contains(&"HX-Request"), "{path}");
        assert_eq!(reply.header("X-Content-Type-Options"), Some("nosniff"), "{path}");
        assert_eq!(reply.header("X-Frame-Options"), Some("DENY"), "{path}");
    }
    assert_eq!(env.get("/").await.header("Cache-Control"), Some("no-store"));
}

#[rocket::async_test]
async fn health_endpoints() {
    let env = TestEnv::new().await;
    let healthz = env.get("/healthz").await;
    assert_eq!((healthz.status, healthz.body.as_str()), (Status::Ok, "ok\n"));
    let health = env.get("/api/v1/health").await;
    assert_eq!(health.status, Status::Ok);
    let json = health.json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    // Public and cheap: no writes. The audit log and settings stay empty.
    let writes: i64 = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM settings)",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(writes, 0);
}

#[rocket::async_test]
async fn errors_are_a_page_a_fragment_or_json() {
    let env = TestEnv::new().await;

    let page = env.get("/no-such-page").await;
    assert_eq!(page.status, Status::NotFound);
    assert_eq!(page.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.text(".alert-error strong"), "404 · Not Found");
    assert_eq!(page.text(".alert-error p"), "Page not found.");
    assert_eq!(page.count("nav.mainnav"), 1, "a full page inside the layout");

    let fragment = env.get_htmx("/no-such-page").await;
    assert_eq!(fragment.status, Status::NotFound);
    assert_eq!(fragment.header("HX-Retarget"), Some("#error-slot"));
    assert_eq!(fragment.header("HX-Reswap"), Some("innerHTML"));
    assert_eq!(fragment.count("nav.mainnav"), 0, "only the fragment");
    assert_eq!(fragment.text(".alert-error p"), "Page not found.");

    // Boosted navigation wants the whole page, not a fragment.
    let me = env.as_(env.session.as_ref().unwrap());
    let boosted = me
        .request(rocket::http::Method::Get, "/no-such-page")
        .header(Header::new("HX-Request", "true"))
        .header(Header::new("HX-Boosted", "true"))
        .dispatch()
        .await;
    let boosted = common::Reply::read(boosted).await;
    assert_eq!(boosted.count("nav.mainnav"), 1);

    let api = env.get("/api/v1/no-such-endpoint").await;
    assert_eq!(api.status, Status::NotFound);
    assert_eq!(api.header("Content-Type"), Some("application/json"));
    assert_eq!(api.json()["error"]["code"], "not_found");
    assert!(api.json()["error"]["message"].is_string());
}

#[rocket::async_test]
async fn a_sub_path_prefixes_every_route_and_link() {
    let env = TestEnv::with_config(|c| c.base_path = "/sw".into()).await;
    let page = env.get("/sw/").await;
    assert_eq!(page.status, Status::Ok);
    assert!(page.attrs("nav.mainnav a", "href").iter().all(|h| h.starts_with("/sw/")));
    assert!(page.attrs("script[src]", "src").iter().all(|h| h.starts_with("/sw/static/")));
    assert_eq!(env.get("/sw/healthz").await.status, Status::Ok);
    assert_eq!(env.get("/sw/api/v1/health").await.json()["status"], "ok");
    assert_eq!(env.get("/healthz").await.status, Status::NotFound);
    // The bare root sends a visitor to the sub-path.
    let root = env.get("/").await;
    assert_eq!(root.status, Status::SeeOther);
    assert_eq!(root.header("Location"), Some("/sw/"));
    // API errors are JSON under the sub-path too.
    assert_eq!(env.get("/sw/api/v1/nope").await.json()["error"]["code"], "not_found");
}

/// The Unraid template follows Community Applications' rules (the selfhosters linter's
/// checks): version 2, required elements, a `WebUI` port that is a Port config, valid
/// categories, no bloat tags, no fixed `TZ`, and the data path on `/config`.
#[test]
fn the_unraid_template_is_valid() {
    use streamwarden::media::tree::Node;
    let xml =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/unraid/streamwarden.xml")).unwrap();
    let root = Node::from_xml(&xml).expect("well-formed XML");
    assert_eq!((root.name.as_str(), root.attr("version")), ("Container", Some("2")));
    let text = |name: &str| -> String {
        let node = root.child(name).unwrap_or_else(|| panic!("<{name}> is missing"));
        // Element text is not kept by the attribute tree; read it from the document.
        let doc = String::from_utf8_lossy(&xml);
        let open = format!("<{}>", node.name);
        doc.split(&open)
            .nth(1)
            .and_then(|rest| rest.split(&format!("</{}>", node.name)).next())
            .unwrap_or_default()
            .to_owned()
    };
    for required in [
        "Name",
        "Repository",
        "Registry",
        "Support",
        "Project",
        "Overview",
        "Category",
        "WebUI",
        "TemplateURL",
        "Icon",
        "Network",
    ] {
        assert!(!text(required).trim().is_empty(), "<{required}> is empty");
    }
    let name = text("Name");
    assert!(
        name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{name}"
    );
    for bloat in ["DateInstalled", "Networking", "Data", "Environment"] {
        assert!(root.child(bloat).is_none(), "<{bloat}> is a bloat tag");
    }
    let categories = text("Category");
    let roots = [
        "AI",
        "Backup",
        "Cloud",
        "Crypto",
        "Downloaders",
        "Drivers",
        "GameServers",
        "HomeAutomation",
        "Productivity",
        "Security",
        "Tools",
        "Other",
        "MediaApp",
        "MediaServer",
        "Network",
        "Status",
    ];
    for token in categories.split_whitespace() {
        let (head, _) = token.split_once(':').unwrap_or_else(|| panic!("{token} lacks ':'"));
        assert!(roots.contains(&head), "{token}");
    }
    let configs: Vec<&Node> = root.children_named("Config").collect();
    let webui = text("WebUI");
    let port: String =
        webui.split("[PORT:").nth(1).and_then(|r| r.split(']').next()).unwrap().to_owned();
    assert!(
        configs
            .iter()
            .any(|c| c.attr("Type") == Some("Port") && c.attr("Target") == Some(port.as_str())),
        "WebUI port {port} is not a Port config"
    );
    assert_eq!(port, streamwarden::config::DEFAULT_PORT.to_string());
    assert!(
        configs
            .iter()
            .any(|c| c.attr("Type") == Some("Path") && c.attr("Target") == Some("/config"))
    );
    assert!(
        !configs.iter().any(|c| c.attr("Target") == Some("TZ")),
        "Unraid injects TZ; a fixed default would override it"
    );
    for c in &configs {
        let target = c.attr("Target").unwrap_or_default();
        if c.attr("Type") == Some("Variable") {
            let option = target.strip_prefix("STREAMWARDEN_").unwrap_or_else(|| panic!("{target}"));
            assert!(
                streamwarden::config::OPTIONS.iter().any(|o| o.key.eq_ignore_ascii_case(option)),
                "{target} is not an option"
            );
        }
        if ["API_KEY", "MAXMIND_LICENSE_KEY"].iter().any(|s| target.ends_with(s)) {
            assert_eq!(c.attr("Mask"), Some("true"), "{target} must be masked");
        }
    }
    assert!(!text("Overview").contains(['<', '>']), "raw markup in the overview");
}

#[rocket::async_test]
async fn a_malformed_id_in_the_path_is_not_found_and_a_malformed_body_is_bad_input() {
    let env = TestEnv::new().await;
    let page = env.get("/history/abc").await;
    assert_eq!(page.status, Status::NotFound);
    assert_eq!(page.text(".alert-error p"), "Page not found.");
    let api = env.get("/api/v1/users/abc").await;
    assert_eq!(
        (api.status, api.json()["error"]["code"].as_str()),
        (Status::NotFound, Some("not_found"))
    );
    let body = env
        .client
        .post("/api/v1/servers")
        .header(rocket::http::ContentType::JSON)
        .header(Header::new("Authorization", format!("Bearer {}", env.api_key(true).await)))
        .body("{not json")
        .dispatch()
        .await;
    let body = common::Reply::read(body).await;
    assert_eq!(body.status, Status::BadRequest);
    assert_eq!(body.json()["error"]["field"], "body");
}
