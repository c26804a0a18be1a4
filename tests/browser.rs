//! Headless Chromium against the real binary: first-run setup, sign-in, dashboard, sign-out.

mod common;

use common::browser::{Browser, WAIT};
use common::process::Launch;

#[tokio::test]
async fn setup_login_dashboard_logout_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::serve(&dir.path().join("data")).start(dir.path());
    let base = format!("http://127.0.0.1:{}", server.port);
    let browser = Browser::start().await;

    // A newcomer's first visit lands on the setup page.
    browser.goto(&format!("{base}/")).await;
    browser.wait_for_url(WAIT, |u| u.ends_with("/setup")).await;
    browser.fill("#username", "owner").await;
    browser.fill("#password", "correct horse battery").await;
    browser.fill("#confirm", "correct horse battery").await;
    browser.click("#setup-form button[type=submit]").await;

    // Signed in as the new admin, on the dashboard.
    browser.wait_for_text(".topbar-user .user-name", "owner", WAIT).await;
    browser.wait_for_text("h1", "Now playing", WAIT).await;
    assert_eq!(browser.current_url().await, format!("{base}/"));
    let session = browser
        .cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "streamwarden_session")
        .expect("session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Lax");

    // Sign out, then back in through the form.
    browser.click("#sign-out").await;
    browser.wait_for_text(".alert-ok", "You are signed out.", WAIT).await;
    browser.fill("#username", "owner").await;
    browser.fill("#password", "not the password").await;
    browser.click("#login-form button[type=submit]").await;
    browser.wait_for_text("#login-error", "Wrong username or password.", WAIT).await;
    browser.fill("#password", "correct horse battery").await;
    browser.click("#login-form button[type=submit]").await;
    browser.wait_for_text("h1", "Now playing", WAIT).await;

    // A protected page after sign-out sends back to sign-in, and returns there afterwards.
    browser.click("#sign-out").await;
    browser.wait_for_url(WAIT, |u| u.contains("/login")).await;
    browser.goto(&format!("{base}/account")).await;
    browser.wait_for_url(WAIT, |u| u.contains("/login?next=/account")).await;
    browser.fill("#username", "owner").await;
    browser.fill("#password", "correct horse battery").await;
    browser.click("#login-form button[type=submit]").await;
    browser.wait_for_text("h1", "Your account", WAIT).await;
    assert!(server.log().contains("Streamwarden is listening"));
}

/// `streamwarden demo` in `dir`, and a browser signed in as its admin, on the dashboard.
async fn demo_signed_in(dir: &std::path::Path) -> (common::process::Server, String, Browser) {
    let launch = Launch {
        args: vec!["demo".into()],
        env: vec![
            ("STREAMWARDEN_DATA_DIR".into(), dir.join("data").display().to_string()),
            ("STREAMWARDEN_API_KEY".into(), "browser-test-key-0123456789".into()),
        ],
        as_user: None,
    };
    let server = launch.start(dir);
    let base = format!("http://127.0.0.1:{}", server.port);
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/")).await;
    browser.click("#demo-login").await;
    browser.wait_for_text("h1", "Now playing", WAIT).await;
    (server, base, browser)
}

/// The README's `streamwarden demo`: one click in, streams arrive live over SSE without a
/// reload, and the stop dialog stops a stream on its (simulated) server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_dashboard_updates_live_and_stops_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, browser) = demo_signed_in(dir.path()).await;
    // Mark this page: a reload would lose the mark.
    browser.execute("window.streamwardenMark = 42; return true;", vec![]).await;

    // The story starts eight streams in its first fifteen seconds: they arrive over SSE.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let streams = browser.find_all("article.stream-card").await.len();
        if streams >= 6 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "only {streams} streams arrived");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // Each demo server is followed over its own push, and the dashboard says which: Plex's
    // event stream, Emby's SSE plugin, Jellyfin's WebSocket (up at its first session news).
    for (server, source) in
        [("Demo Plex", "sse"), ("Demo Emby", "sse"), ("Demo Jellyfin", "websocket")]
    {
        let css = format!(".server-stat[data-server='{server}'] [data-realtime={source}]");
        browser.wait_for(&css, std::time::Duration::from_secs(40)).await;
    }
    // Between live updates a playing stream's clock moves on by itself (app.js), without a
    // request: a card the server never updates shows it.
    browser
        .execute(
            "var c = document.createElement('article'); c.className = 'stream-card'; c.id = 'extrapolated';\
             c.setAttribute('data-state', 'playing'); c.setAttribute('data-progress-ms', '0');\
             c.setAttribute('data-duration-ms', '3600000');\
             c.innerHTML = '<progress data-progress-bar max=\"100\" value=\"0\"></progress><span data-progress-text>0:00 / 1:00:00</span>';\
             document.body.appendChild(c); return true;",
            vec![],
        )
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = browser
            .execute(
                "return document.querySelector('#extrapolated [data-progress-text]').textContent;",
                vec![],
            )
            .await;
        let text = text.as_str().unwrap_or_default().to_owned();
        if text.ends_with(" / 1:00:00") && !text.starts_with("0:00 ") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the clock stayed at {text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Pending streams become confirmed (the demo confirms after 10 s), still without reload.
    browser.wait_for("article.stream-card[data-user=mallory]:not([data-pending])", WAIT).await;
    let mark = browser.execute("return window.streamwardenMark;", vec![]).await;
    assert_eq!(mark, serde_json::json!(42), "the page was never reloaded");

    // Stop mallory's stream through the dialog. The card is re-rendered live, so it is
    // found and clicked in one step (a WebDriver element could go stale in between).
    browser
        .execute("document.querySelector('article.stream-card[data-user=mallory] [data-stop]').click(); return true;", vec![])
        .await;
    browser.wait_for("#stop-dialog[open]", WAIT).await;
    browser.fill("#stop-message", "Account sharing is not allowed").await;
    browser.click("#stop-form button[type=submit]").await;
    browser.wait_for_text("#stopped", "Stopped mallory's stream", WAIT).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while browser.find("article.stream-card[data-user=mallory]").await.is_some() {
        assert!(std::time::Instant::now() < deadline, "mallory's card is still there");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let history: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/history"))
        .bearer_auth("browser-test-key-0123456789")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stopped = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user"]["name"] == "mallory")
        .cloned();
    assert_eq!(stopped.map(|p| p["stop_reason"].clone()), Some(serde_json::json!("terminated")));
    assert_eq!(
        browser.execute("return window.streamwardenMark;", vec![]).await,
        serde_json::json!(42)
    );

    // The demo geolocates with MaxMind's test databases and its rules flag Dave's three
    // streams (his household is not confirmed yet).
    let api = |path: &str| {
        reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth("browser-test-key-0123456789")
            .send()
    };
    let sessions: serde_json::Value = api("/api/v1/sessions").await.unwrap().json().await.unwrap();
    let dave = sessions.as_array().unwrap().iter().find(|s| s["user"]["name"] == "dave").unwrap();
    assert_eq!(dave["geo"]["city"], "Boxford", "{dave}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found: serde_json::Value =
            api("/api/v1/violations").await.unwrap().json().await.unwrap();
        let flagged = found["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["rule"]["name"] == "Concurrent streams" && v["user"]["name"] == "dave");
        if flagged {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no violation for dave: {found}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    browser.goto(&format!("{base}/")).await;
    assert!(
        browser.find("#no-geoip").await.is_none(),
        "the demo has a GeoIP database, the dashboard says nothing about it"
    );
}

/// The rule editor in a real browser: rows added, reshaped and removed by htmx, then saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_editor_builds_groups_and_actions_with_htmx_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, browser) = demo_signed_in(dir.path()).await;

    browser.goto(&format!("{base}/rules/new")).await;
    browser.fill("#name", "Built in the browser").await;
    // "+ or…" adds a second condition to the first group; a new field reshapes the row.
    browser.click("#add-cond-0").await;
    browser.wait_for(".cond-row[data-cond='0-1']", WAIT).await;
    let choose = |select: &str, value: &str| {
        format!(
            // A row just swapped in is wired by htmx a moment later; a person is never
            // that quick, a script is: wire it now (htmx skips what it already did).
            "const s = document.querySelector(\"{select}\"); htmx.process(s); s.value = '{value}'; \
             s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;"
        )
    };
    browser.execute(&choose("select[name='groups[0][1].field']", "is_transcoding"), vec![]).await;
    browser.wait_for("select[name='groups[0][1].value']", WAIT).await;
    // The first row goes; "+ and…" adds a group, which starts as a country condition.
    browser.click(".cond-row[data-cond='0-0'] button").await;
    let deadline = std::time::Instant::now() + WAIT;
    while browser.find(".cond-row[data-cond='0-0']").await.is_some() {
        assert!(std::time::Instant::now() < deadline, "the row is still there");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser.click("#add-group").await;
    browser.wait_for("#group-1 .cond-row", WAIT).await;
    browser.fill("input[name='groups[1][0].value']", "GB, IE").await;
    // An action, switched to terminate: its target and delay appear.
    browser.click("#add-action").await;
    browser.wait_for(".action-row[data-action='0']", WAIT).await;
    browser.execute(&choose("select[name='actions[0].kind']", "terminate"), vec![]).await;
    browser.wait_for("select[name='actions[0].target']", WAIT).await;
    browser.fill("input[name='actions[0].message']", "Not from abroad").await;
    browser.click("#rule-form button[type=submit]").await;
    browser.wait_for_url(WAIT, |u| u.ends_with("/rules")).await;
    browser.wait_for_text("#rules", "Built in the browser", WAIT).await;

    let rules: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/rules"))
        .bearer_auth("browser-test-key-0123456789")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rule = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Built in the browser")
        .expect("saved");
    assert_eq!(
        rule["conditions"]["groups"],
        serde_json::json!([
            [{"field": "is_transcoding", "op": "eq", "value": true}],
            [{"field": "country", "op": "not_in", "value": ["GB", "IE"]}]
        ])
    );
    assert_eq!(rule["actions"][0]["type"], "terminate");
    assert_eq!(rule["actions"][0]["target"], "triggering");
    assert_eq!(rule["actions"][0]["message"], "Not from abroad");
}

/// The violations list in a real browser: Acknowledge swaps its row over htmx, without a
/// reload, and the change is there after one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_a_violation_from_the_list_updates_its_row_in_place() {
    use common::seed;
    const T0: i64 = common::sim::T0;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Written through the app's own database functions, then closed before the binary opens
    // the same data directory.
    let (travel, streams) = {
        let env = common::TestEnv::in_dir(&data).await;
        let w = seed::world(&env).await;
        let travel =
            seed::violation(&env, w.travel, w.alice, w.plex, T0, seed::travel_verdict(), -15).await;
        let streams = seed::violation(
            &env,
            w.streams,
            w.bob,
            w.jellyfin,
            T0 + 60_000,
            seed::local_verdict(),
            0,
        )
        .await;
        (travel, streams)
    };
    let server = Launch::serve(&data).start(dir.path());
    let base = format!("http://127.0.0.1:{}", server.port);
    let browser = Browser::start().await;

    browser.goto(&format!("{base}/login?next=/violations")).await;
    browser.fill("#username", common::ADMIN.0).await;
    browser.fill("#password", common::ADMIN.1).await;
    browser.click("#login-form button[type=submit]").await;
    browser.wait_for_text("h1", "Violations", WAIT).await;
    let row = format!("#violation-{travel}");
    browser.wait_for_text(&format!("{row} td[data-label=Status]"), "Open", WAIT).await;
    browser.execute("window.streamwardenMark = 7; return true;", vec![]).await;

    browser.click(&format!("{row} button.acknowledge")).await;
    browser.wait_for(&format!("{row}[data-status=acknowledged]"), WAIT).await;
    let status =
        browser.wait_for_text(&format!("{row} td[data-label=Status]"), "Acknowledged", WAIT).await;
    assert!(status.contains("by user:admin"), "{status}");
    assert!(browser.find(&format!("{row} button.acknowledge")).await.is_none());
    assert_eq!(
        browser.execute("return window.streamwardenMark;", vec![]).await,
        serde_json::json!(7),
        "the row was swapped, the page not reloaded"
    );
    let other = browser.find(&format!("#violation-{streams}[data-status=open]")).await;
    assert!(other.is_some(), "the other row is untouched");

    browser.goto(&format!("{base}/violations")).await;
    browser.wait_for(&format!("{row}[data-status=acknowledged]"), WAIT).await;
}

/// Where a test may leave screenshots for a person to look at (`STREAMWARDEN_TEST_SCREENSHOTS`).
fn screenshot_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("STREAMWARDEN_TEST_SCREENSHOTS").map(Into::into)
}

/// The page fits the window: nothing sticks out sideways (a phone would scroll).
async fn fits_width(browser: &Browser) -> (i64, i64) {
    let v = browser
        .execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![])
        .await;
    (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
}

/// The statistics, the map and a user page of the demo, full from its generated history, in both themes
/// and at a phone's width; the map's live markers arrive over its SSE stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_map_and_a_user_page_in_both_themes_and_at_phone_width() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, browser) = demo_signed_in(dir.path()).await;
    let shots = screenshot_dir();
    let mut backgrounds = Vec::new();
    for (theme, width) in [("light", 1280), ("dark", 1280), ("light", 390), ("dark", 390)] {
        browser.set_window_size(width, 900).await;
        browser.goto(&format!("{base}/stats?period=90")).await;
        browser.set_theme(theme).await;
        browser.goto(&format!("{base}/stats?period=90")).await;
        browser.wait_for_text("h1", "Statistics", WAIT).await;
        let plays: i64 =
            browser.text(&browser.wait_for("#total-plays", WAIT).await).await.parse().unwrap();
        assert!(plays > 100, "the demo's history fills the statistics: {plays}");
        assert!(!browser.text(&browser.wait_for("#stats-tz", WAIT).await).await.is_empty());
        let bars = browser.find_all("#chart-plays_by_day svg rect:not(.hit)").await;
        assert!(bars.len() > 30, "plays per day drawn: {}", bars.len());
        assert!(
            !browser.find_all("#chart-concurrent .peak").await.is_empty(),
            "the peak is marked"
        );
        // The table under the chart holds the same total.
        let day_sum = browser
            .execute(
                "return Array.from(document.querySelectorAll('#plays_by_day tbody tr td:nth-child(2)'))\
                 .reduce((a, td) => a + Number(td.textContent), 0);",
                vec![],
            )
            .await;
        assert_eq!(day_sum.as_i64(), Some(plays));
        assert!(browser.find_all("#top_movies tbody th").await.len() >= 3);
        assert!(browser.find("#top_users a[href], #top_users th").await.is_some());
        let bg = browser
            .execute("return getComputedStyle(document.body).backgroundColor;", vec![])
            .await;
        backgrounds.push((theme, bg.as_str().unwrap_or_default().to_owned()));
        let (scroll, inner) = fits_width(&browser).await;
        assert!(scroll <= inner, "/stats at {width} px in {theme}: {scroll} > {inner}");
        if let Some(d) = &shots {
            browser.screenshot(&d.join(format!("stats-{theme}-{width}.png"))).await;
        }

        browser.goto(&format!("{base}/map?period=90")).await;
        browser.wait_for_text("h1", "Map", WAIT).await;
        assert!(
            browser.find_all(".map-history circle.place").await.len() >= 3,
            "history places drawn"
        );
        assert!(browser.find_all("#places tbody tr").await.len() >= 3, "and listed");
        browser.wait_for(".map-live circle.place.live", WAIT).await;
        browser.wait_for("#live-places li", WAIT).await;
        let (scroll, inner) = fits_width(&browser).await;
        assert!(scroll <= inner, "/map at {width} px in {theme}: {scroll} > {inner}");
        // Zooming in narrows the view box.
        browser.click("[data-zoom=in]").await;
        let view = browser
            .execute(
                "return document.querySelector('#world-map svg').getAttribute('viewBox');",
                vec![],
            )
            .await;
        let w: f64 = view.as_str().unwrap().split(' ').nth(2).unwrap().parse().unwrap();
        assert!(w < 360.0, "zoomed: {view}");
        if let Some(d) = &shots {
            browser.screenshot(&d.join(format!("map-{theme}-{width}.png"))).await;
        }

        // The busiest user's page: their statistics, months and places.
        browser.goto(&format!("{base}/users")).await;
        browser.wait_for("#users tbody a[href]", WAIT).await;
        let busiest = browser
            .execute(
                "const rows = Array.from(document.querySelectorAll('#users tbody tr'));\
                 rows.sort((a, b) => Number(b.children[2].textContent) - Number(a.children[2].textContent));\
                 return rows[0].querySelector('a').getAttribute('href');",
                vec![],
            )
            .await;
        let href = busiest.as_str().unwrap().to_owned();
        browser.goto(&format!("{base}{href}")).await;
        let plays: i64 =
            browser.text(&browser.wait_for("#user-stat-plays", WAIT).await).await.parse().unwrap();
        assert!(plays > 0, "{href}: the demo's history reaches the user page");
        let month_sum = browser
            .execute(
                "return Array.from(document.querySelectorAll('#user-months tbody tr td:nth-child(2)'))\
                 .reduce((a, td) => a + Number(td.textContent), 0);",
                vec![],
            )
            .await;
        assert_eq!(month_sum.as_i64(), Some(plays), "the months add up to the total");
        assert!(browser.find("#user-places svg").await.is_some(), "the places map is drawn");
        let (scroll, inner) = fits_width(&browser).await;
        assert!(scroll <= inner, "{href} at {width} px in {theme}: {scroll} > {inner}");
        if let Some(d) = &shots {
            browser.screenshot(&d.join(format!("user-{theme}-{width}.png"))).await;
        }
    }
    assert_ne!(backgrounds[0].1, backgrounds[1].1, "the themes differ: {backgrounds:?}");
}
