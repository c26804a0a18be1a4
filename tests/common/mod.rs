//! The test harness: the real Rocket instance on a temporary SQLite file, driven through
//! Rocket's local client, with HTML asserted through CSS selectors.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

pub mod process;
pub mod sim;

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use scraper::{Html, Selector};
use streamwarden::Config;
use streamwarden::db::Db;
use tempfile::TempDir;

/// One application instance with its own data directory.
pub struct TestEnv {
    pub client: Client,
    /// The temporary data directory, when the test did not bring its own.
    pub dir: Option<TempDir>,
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// An instance whose configuration `adjust` may change first.
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut env = Self::build(dir.path(), adjust).await;
        env.dir = Some(dir);
        env
    }

    /// An instance on an existing data directory (a restart of an earlier instance).
    pub async fn in_dir(data_dir: &std::path::Path) -> Self {
        Self::build(data_dir, |_| {}).await
    }

    async fn build(data_dir: &std::path::Path, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::for_tests(data_dir);
        adjust(&mut config);
        let app = streamwarden::prepare_for_tests(config).expect("app prepares");
        let client = Client::tracked(streamwarden::rocket(app)).await.expect("valid rocket");
        Self { client, dir: None }
    }

    pub fn db(&self) -> &Db {
        self.client.rocket().state::<Db>().expect("managed database")
    }

    pub fn config(&self) -> &Config {
        self.client.rocket().state::<Config>().expect("managed config")
    }

    pub fn control(&self) -> &std::sync::Arc<streamwarden::poller::control::Control> {
        self.client
            .rocket()
            .state::<std::sync::Arc<streamwarden::poller::control::Control>>()
            .expect("managed control")
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::read(self.client.get(path.to_owned()).dispatch().await).await
    }

    /// A GET as htmx sends it (not boosted): wants a fragment.
    pub async fn get_htmx(&self, path: &str) -> Reply {
        let req = self.client.get(path.to_owned()).header(Header::new("HX-Request", "true"));
        Reply::read(req.dispatch().await).await
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        let req =
            self.client.post(path.to_owned()).header(ContentType::JSON).body(body.to_string());
        Reply::read(req.dispatch().await).await
    }
}

impl TestEnv {
    pub async fn patch_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        let req =
            self.client.patch(path.to_owned()).header(ContentType::JSON).body(body.to_string());
        Reply::read(req.dispatch().await).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        Reply::read(self.client.delete(path.to_owned()).dispatch().await).await
    }

    /// A url-encoded form post, as a browser sends it without htmx.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let req =
            self.client.post(path.to_owned()).header(ContentType::Form).body(form_body(fields));
        Reply::read(req.dispatch().await).await
    }

    /// A url-encoded form post, as htmx sends it.
    pub async fn post_form_htmx(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let req = self
            .client
            .post(path.to_owned())
            .header(ContentType::Form)
            .header(Header::new("HX-Request", "true"))
            .body(form_body(fields));
        Reply::read(req.dispatch().await).await
    }
}

fn form_body(fields: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("static");
    url.query_pairs_mut().extend_pairs(fields);
    url.query().unwrap_or_default().to_owned()
}

/// A response read to the end, with helpers to look into it.
#[derive(Debug)]
pub struct Reply {
    pub status: Status,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy for binary bodies: see `bytes`).
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub async fn read(res: LocalResponse<'_>) -> Self {
        let status = res.status();
        let headers =
            res.headers().iter().map(|h| (h.name().to_string(), h.value().to_string())).collect();
        let bytes = res.into_bytes().await.unwrap_or_default();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Self { status, headers, body, bytes }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// Trimmed text of every element matching `selector`.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let sel =
            Selector::parse(selector).unwrap_or_else(|e| panic!("bad selector {selector}: {e}"));
        self.html()
            .select(&sel)
            .map(|e| e.text().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// The text of the only element matching `selector`.
    pub fn text(&self, selector: &str) -> String {
        let texts = self.texts(selector);
        assert_eq!(texts.len(), 1, "expected one {selector} in:\n{}", self.body);
        texts.into_iter().next().unwrap()
    }

    /// Attribute `attr` of every element matching `selector`.
    pub fn attrs(&self, selector: &str, attr: &str) -> Vec<String> {
        let sel =
            Selector::parse(selector).unwrap_or_else(|e| panic!("bad selector {selector}: {e}"));
        self.html().select(&sel).filter_map(|e| e.value().attr(attr).map(str::to_owned)).collect()
    }

    pub fn count(&self, selector: &str) -> usize {
        let sel =
            Selector::parse(selector).unwrap_or_else(|e| panic!("bad selector {selector}: {e}"));
        self.html().select(&sel).count()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}
