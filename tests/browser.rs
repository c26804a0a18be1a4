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
