//! A small W3C `WebDriver` client on reqwest, driving headless Chromium through chromedriver.
//!
//! `.ci/test` installs Debian's `chromium` and `chromium-driver` and exports
//! `STREAMWARDEN_TEST_CHROMEDRIVER` and `STREAMWARDEN_TEST_CHROMIUM`; a test without them
//! fails and says to run `.ci/test`. Waiting is polling with a deadline, never a sleep.
//!
//! ```ignore
//! let browser = Browser::start().await;
//! browser.goto(&format!("http://127.0.0.1:{port}/")).await;
//! browser.fill("#username", "admin").await;
//! browser.click("button[type=submit]").await;
//! browser.wait_for_text("h1", "Dashboard", Duration::from_secs(10)).await;
//! ```

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::process::free_port;
use super::test_tool;

/// The key W3C `WebDriver` uses for element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Default deadline for waits.
pub const WAIT: Duration = Duration::from_secs(15);

/// A headless Chromium session; the browser and chromedriver end when dropped.
pub struct Browser {
    http: reqwest::Client,
    port: u16,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// A reference to an element of the current page.
#[derive(Debug, Clone)]
pub struct Element(pub String);

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium profile.
    pub async fn start() -> Self {
        let driver_path = test_tool("STREAMWARDEN_TEST_CHROMEDRIVER");
        let chromium = test_tool("STREAMWARDEN_TEST_CHROMIUM");
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_path} ({e}): run .ci/test"));
        let http = reqwest::Client::builder().timeout(Duration::from_mins(1)).build().unwrap();
        let profile = tempfile::tempdir().expect("profile directory");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await.ok();
            let ready = match ready {
                Some(r) => {
                    r.json::<Value>().await.ok().is_some_and(|v| v["value"]["ready"] == true)
                }
                None => false,
            };
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not come up on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused the session: {resp}"))
            .to_owned();
        Self { http, port, session, driver, _profile: profile }
    }

    fn url_of(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/session/{}{path}", self.port, self.session)
    }

    /// Sends a `WebDriver` command; `Err` carries the driver's error value.
    pub async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let mut req = self.http.request(method, self.url_of(path));
        if let Some(b) = body {
            req = req.json(&b);
        } else {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.map_err(|e| json!({"error": e.to_string()}))?;
        let ok = resp.status().is_success();
        let value =
            resp.json::<Value>().await.map_err(|e| json!({"error": e.to_string()}))?["value"]
                .clone();
        if ok { Ok(value) } else { Err(value) }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("WebDriver POST {path}: {e}"))
    }

    async fn get(&self, path: &str) -> Value {
        let req = self.http.get(self.url_of(path));
        let v: Value = req.send().await.expect("WebDriver GET").json().await.expect("JSON");
        v["value"].clone()
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// The current page's URL.
    pub async fn current_url(&self) -> String {
        self.get("/url").await.as_str().unwrap_or_default().to_owned()
    }

    pub async fn title(&self) -> String {
        self.get("/title").await.as_str().unwrap_or_default().to_owned()
    }

    /// The page's HTML now.
    pub async fn source(&self) -> String {
        self.get("/source").await.as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching `css`, if there is one now.
    pub async fn find(&self, css: &str) -> Option<Element> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .ok()?;
        found[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned()))
    }

    /// Every element matching `css` now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.post("/elements", json!({"using": "css selector", "value": css})).await;
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str())
                    .map(|id| Element(id.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until an element matches `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {css} within {timeout:?} at {}:\n{}",
                self.current_url().await,
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the text of the first `css` element contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.find(css).await {
                let t = self.text(&e).await;
                if t.contains(text) {
                    return t;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css} never said {text:?} within {timeout:?} at {}:\n{}",
                self.current_url().await,
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the URL satisfies `check`.
    pub async fn wait_for_url(&self, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await;
            if check(&url) {
                return url;
            }
            assert!(Instant::now() < deadline, "URL stayed {url} for {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.0)).await.as_str().unwrap_or_default().to_owned()
    }

    pub async fn attr(&self, e: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", e.0)).await.as_str().map(str::to_owned)
    }

    pub async fn click_element(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.0), json!({})).await;
    }

    /// Clicks the element matching `css` (waiting for it).
    pub async fn click(&self, css: &str) {
        let e = self.wait_for(css, WAIT).await;
        self.click_element(&e).await;
    }

    /// Clears the field matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.wait_for(css, WAIT).await;
        self.post(&format!("/element/{}/clear", e.0), json!({})).await;
        self.post(&format!("/element/{}/value", e.0), json!({"text": text})).await;
    }

    /// Runs `script` in the page (`arguments[i]` are `args`).
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args})).await
    }

    /// Cookies the browser holds for the current page.
    pub async fn cookies(&self) -> Vec<Value> {
        self.get("/cookie").await.as_array().cloned().unwrap_or_default()
    }

    /// Resizes the window (CSS pixels; the viewport is a little smaller).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height})).await;
    }

    /// Chooses the theme as the toggle does (stored, then applied on every page).
    pub async fn set_theme(&self, theme: &str) {
        self.execute(
            "localStorage.setItem('streamwarden-theme', arguments[0]); \
             document.documentElement.setAttribute('data-theme', arguments[0]);",
            vec![json!(theme)],
        )
        .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let b64 = self.get("/screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("PNG");
        std::fs::write(path, bytes).expect("screenshot written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session (which closes Chromium) with a plain blocking request, then the driver.
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                self.session, self.port
            );
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
