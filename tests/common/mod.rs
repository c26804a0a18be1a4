//! The test harness: the real Rocket instance on a temporary SQLite file, driven through
//! Rocket's local client, with HTML asserted through CSS selectors.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

pub mod process;

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use scraper::{Html, Selector};
use streamwarden::Config;
use streamwarden::db::Db;
use tempfile::TempDir;

/// One application instance with its own data directory.
pub struct TestEnv {
    pub client: Client,
    pub dir: TempDir,
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// An instance whose configuration `adjust` may change first.
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config::for_tests(dir.path());
        adjust(&mut config);
        let app = streamwarden::prepare_for_tests(config).expect("app prepares");
        let client = Client::tracked(streamwarden::rocket(app)).await.expect("valid rocket");
        Self { client, dir }
    }

    pub fn db(&self) -> &Db {
        self.client.rocket().state::<Db>().expect("managed database")
    }

    pub fn config(&self) -> &Config {
        self.client.rocket().state::<Config>().expect("managed config")
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

/// A response read to the end, with helpers to look into it.
#[derive(Debug)]
pub struct Reply {
    pub status: Status,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub async fn read(res: LocalResponse<'_>) -> Self {
        let status = res.status();
        let headers =
            res.headers().iter().map(|h| (h.name().to_string(), h.value().to_string())).collect();
        let body = res.into_string().await.unwrap_or_default();
        Self { status, headers, body }
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
