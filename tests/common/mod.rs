//! The test harness: the real Rocket instance on a temporary SQLite file, driven through
//! Rocket's local client, with HTML asserted through CSS selectors.
//!
//! A [`TestEnv`] is signed in as an admin unless made with [`TestEnv::anonymous`] or
//! [`TestEnv::first_run`]. Other callers: [`TestEnv::as_`] with a [`Session`] from
//! [`TestEnv::viewer`] / [`TestEnv::admin_session`], [`TestEnv::anon`], or an API key from
//! [`TestEnv::api_key`]. Form and htmx posts add the caller's CSRF token themselves.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

pub mod browser;
pub mod process;
pub mod seed;
pub mod sim;

use std::sync::atomic::{AtomicUsize, Ordering};

use rocket::http::{ContentType, Cookie, Header, Method, Status};
use rocket::local::asynchronous::{Client, LocalRequest, LocalResponse};
use scraper::{Html, Selector};
use streamwarden::Config;
use streamwarden::auth::{Role, api_key, session};
use streamwarden::db::{Db, accounts, api_keys};
use tempfile::TempDir;

/// Username and password of the admin every signed-in [`TestEnv`] starts with.
pub const ADMIN: (&str, &str) = ("admin", "admin-password-1");

/// A signed-in session: the cookie's token and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub account_id: i64,
    pub token: String,
    pub csrf: String,
}

/// One application instance with its own data directory.
pub struct TestEnv {
    pub client: Client,
    /// The temporary data directory, unless the test brought its own ([`TestEnv::in_dir`]).
    pub dir: Option<TempDir>,
    /// Who `get`, `post_form`, ... act as; `None`: anonymous.
    pub session: Option<Session>,
    pub admin_id: Option<i64>,
    counter: AtomicUsize,
    /// Cookies the app set that are not the session's (flash messages), sent back like a
    /// browser would.
    jar: std::sync::Mutex<Vec<(String, String)>>,
}

impl TestEnv {
    /// Signed in as the admin [`ADMIN`].
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// An instance whose configuration `adjust` may change first, signed in as the admin.
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        let mut env = Self::first_run_with(adjust).await;
        let id = env.create_account(ADMIN.0, Role::Admin, None, Some(ADMIN.1)).await;
        env.admin_id = Some(id);
        env.session = Some(env.session_for(id).await);
        env
    }

    /// Signed in as the admin, with MaxMind's test City and ASN databases installed in the
    /// data directory's `geoip/` (81.2.69.142 is London, 216.160.83.56 Milton, US...).
    pub async fn with_geoip() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        install_test_geoip(dir.path());
        let mut env = Self::build(dir.path(), |_| {}).await;
        env.dir = Some(dir);
        let id = env.create_account(ADMIN.0, Role::Admin, None, Some(ADMIN.1)).await;
        env.admin_id = Some(id);
        env.session = Some(env.session_for(id).await);
        env
    }

    /// Waits until the rules worker has handled everything the poller handed it.
    pub async fn rules_settled(&self) {
        let engine = self
            .client
            .rocket()
            .state::<std::sync::Arc<streamwarden::rules::engine::Engine>>()
            .expect("managed rules engine");
        tokio::time::timeout(std::time::Duration::from_secs(30), engine.settled())
            .await
            .expect("the rules worker settles within 30 s");
    }

    /// An admin exists, but requests are anonymous.
    pub async fn anonymous() -> Self {
        let mut env = Self::new().await;
        env.session = None;
        env
    }

    /// No account at all: the first-run setup state.
    pub async fn first_run() -> Self {
        Self::first_run_with(|_| {}).await
    }

    pub async fn first_run_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut env = Self::build(dir.path(), adjust).await;
        env.dir = Some(dir);
        env
    }

    /// An instance on an existing data directory (a restart of an earlier instance),
    /// signed in as the admin, who is created if the database has none yet.
    pub async fn in_dir(data_dir: &std::path::Path) -> Self {
        let mut env = Self::build(data_dir, |_| {}).await;
        let existing = env
            .db()
            .read(|c| {
                Ok(c.query_row("SELECT id FROM accounts WHERE username = ?1", [ADMIN.0], |r| {
                    r.get(0)
                })
                .ok())
            })
            .await
            .expect("accounts readable");
        let id = match existing {
            Some(id) => id,
            None => env.create_account(ADMIN.0, Role::Admin, None, Some(ADMIN.1)).await,
        };
        env.admin_id = Some(id);
        env.session = Some(env.session_for(id).await);
        env
    }

    /// Signed in as the admin, after `adjust` changed the prepared app (a service pointed
    /// at a test server, say) before Rocket is built from it.
    pub async fn with_app(adjust: impl FnOnce(&mut streamwarden::App)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut env = Self::build_app(dir.path(), |_| {}, adjust).await;
        env.dir = Some(dir);
        let id = env.create_account(ADMIN.0, Role::Admin, None, Some(ADMIN.1)).await;
        env.admin_id = Some(id);
        env.session = Some(env.session_for(id).await);
        env
    }

    async fn build(data_dir: &std::path::Path, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::build_app(data_dir, adjust, |_| {}).await
    }

    async fn build_app(
        data_dir: &std::path::Path,
        adjust: impl FnOnce(&mut Config),
        adjust_app: impl FnOnce(&mut streamwarden::App),
    ) -> Self {
        let mut config = Config::for_tests(data_dir);
        adjust(&mut config);
        let mut app = streamwarden::prepare_for_tests(config).expect("app prepares");
        adjust_app(&mut app);
        let client = Client::untracked(streamwarden::rocket(app)).await.expect("valid rocket");
        Self {
            client,
            dir: None,
            session: None,
            admin_id: None,
            counter: AtomicUsize::new(0),
            jar: std::sync::Mutex::default(),
        }
    }

    pub fn control(&self) -> &std::sync::Arc<streamwarden::poller::control::Control> {
        self.client
            .rocket()
            .state::<std::sync::Arc<streamwarden::poller::control::Control>>()
            .expect("managed control")
    }

    pub fn db(&self) -> &Db {
        self.client.rocket().state::<Db>().expect("managed database")
    }

    pub fn config(&self) -> &Config {
        self.client.rocket().state::<Config>().expect("managed config")
    }

    /// Creates an account directly (with an argon2id hash when a password is given).
    pub async fn create_account(
        &self,
        username: &str,
        role: Role,
        media_user_id: Option<i64>,
        password: Option<&str>,
    ) -> i64 {
        let hash = password.map(|p| streamwarden::auth::password::hash_blocking(p).unwrap());
        let username = username.to_owned();
        self.db()
            .write(move |c| {
                accounts::insert(
                    c,
                    &accounts::NewAccount {
                        username: &username,
                        role: Some(role),
                        password_hash: hash.as_deref(),
                        media_user_id,
                        ..accounts::NewAccount::default()
                    },
                )
            })
            .await
            .expect("account created")
    }

    /// A new session for an account, as a sign-in would create it.
    pub async fn session_for(&self, account_id: i64) -> Session {
        let started =
            session::create(self.db(), account_id, "password", session::Origin::default())
                .await
                .expect("session created");
        Session { account_id, token: started.token, csrf: started.csrf }
    }

    /// A fresh viewer account (optionally linked to a media user) and its session.
    pub async fn viewer(&self, media_user_id: Option<i64>) -> Session {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id =
            self.create_account(&format!("viewer{n}"), Role::Viewer, media_user_id, None).await;
        self.session_for(id).await
    }

    /// A fresh admin account and its session.
    pub async fn admin_session(&self) -> Session {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = self.create_account(&format!("admin{n}"), Role::Admin, None, None).await;
        self.session_for(id).await
    }

    /// A new API key (`admin` or read-only), stored as Settings → API keys would.
    pub async fn api_key(&self, admin: bool) -> String {
        let generated = api_key::generate();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let (hash, prefix) = (generated.hash.clone(), generated.prefix.clone());
        self.db()
            .write(move |c| api_keys::insert(c, &format!("key{n}"), &hash, &prefix, admin, "test"))
            .await
            .expect("key created");
        generated.key
    }

    /// Requests as `session`.
    pub fn as_<'a>(&'a self, session: &Session) -> Caller<'a> {
        Caller { env: self, session: Some(session.clone()), api_key: None, csrf_cookie: None }
    }

    /// Requests without a session.
    pub fn anon(&self) -> Caller<'_> {
        Caller { env: self, session: None, api_key: None, csrf_cookie: None }
    }

    /// Requests without a session, holding the anonymous CSRF cookie a sign-in page hands
    /// out (so anonymous forms pass their CSRF check).
    pub async fn anon_with_csrf(&self) -> Caller<'_> {
        let page = self.anon().get("/login?local=true").await;
        let token =
            page.set_cookie(session::CSRF_COOKIE).expect("the sign-in page sets a CSRF cookie");
        Caller { env: self, session: None, api_key: None, csrf_cookie: Some(token) }
    }

    /// Requests with an API key and no session.
    pub fn with_key<'a>(&'a self, key: &str) -> Caller<'a> {
        Caller { env: self, session: None, api_key: Some(key.to_owned()), csrf_cookie: None }
    }

    fn me(&self) -> Caller<'_> {
        Caller { env: self, session: self.session.clone(), api_key: None, csrf_cookie: None }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.me().get(path).await
    }

    /// A GET as htmx sends it (not boosted): wants a fragment.
    pub async fn get_htmx(&self, path: &str) -> Reply {
        self.me().get_htmx(path).await
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.me().post_json(path, body).await
    }

    /// A url-encoded form post with the CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.me().post_form(path, fields).await
    }

    /// A form post as htmx sends it: `HX-Request` and the `X-CSRF-Token` header.
    pub async fn post_htmx(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.me().post_htmx(path, fields).await
    }

    pub async fn patch_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.me().send_json(Method::Patch, path, body).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        let req = self
            .me()
            .request(Method::Delete, path)
            .header(Header::new("X-CSRF-Token", self.me().csrf()));
        Reply::read(req.dispatch().await).await
    }
}

/// Who a request is sent as.
pub struct Caller<'a> {
    env: &'a TestEnv,
    pub session: Option<Session>,
    pub api_key: Option<String>,
    /// The anonymous CSRF cookie's token, sent as cookie and form field.
    pub csrf_cookie: Option<String>,
}

/// Percent-encodes a form value.
pub fn encode(s: &str) -> String {
    use std::fmt::Write as _;
    s.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

/// Percent-decoding (cookie values).
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `k=v&k=v`, encoded.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

impl<'a> Caller<'a> {
    /// A request of any method carrying this caller's cookie or key (no CSRF token).
    pub fn request(&self, method: Method, path: &str) -> LocalRequest<'a> {
        let mut req = self.env.client.req(method, path.to_owned());
        if let Some(s) = &self.session {
            req = req.cookie(Cookie::new(session::SESSION_COOKIE, s.token.clone()));
        }
        for (name, value) in self.env.jar.lock().unwrap().iter() {
            req = req.cookie(Cookie::new(name.clone(), value.clone()));
        }
        if let Some(token) = &self.csrf_cookie {
            req = req.cookie(Cookie::new(session::CSRF_COOKIE, token.clone()));
        }
        if let Some(key) = &self.api_key {
            req = req.header(Header::new("Authorization", format!("Bearer {key}")));
        }
        req
    }

    /// Reads a response and keeps the cookies a browser would keep.
    pub async fn finish(&self, res: LocalResponse<'_>) -> Reply {
        let reply = Reply::read(res).await;
        let mut jar = self.env.jar.lock().unwrap();
        for line in reply.headers_named("Set-Cookie") {
            let Some((name, rest)) = line.split_once('=') else { continue };
            let name = name.trim();
            if name == session::SESSION_COOKIE || name == session::CSRF_COOKIE {
                continue;
            }
            let value = rest.split(';').next().unwrap_or_default().trim();
            let removed = value.is_empty() || line.to_ascii_lowercase().contains("max-age=0");
            jar.retain(|(n, _)| n != name);
            if !removed {
                // The header carries it percent-encoded; a local request takes it decoded.
                jar.push((name.to_owned(), decode(value)));
            }
        }
        drop(jar);
        reply
    }

    /// The CSRF token this caller's forms carry.
    pub fn csrf(&self) -> String {
        self.session
            .as_ref()
            .map(|s| s.csrf.clone())
            .or_else(|| self.csrf_cookie.clone())
            .unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.finish(self.request(Method::Get, path).dispatch().await).await
    }

    pub async fn get_htmx(&self, path: &str) -> Reply {
        let req = self.request(Method::Get, path).header(Header::new("HX-Request", "true"));
        self.finish(req.dispatch().await).await
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.send_json(Method::Post, path, body).await
    }

    /// A JSON request of `method`, with the CSRF header when sent with a session.
    pub async fn send_json(&self, method: Method, path: &str, body: &serde_json::Value) -> Reply {
        let mut req = self.request(method, path).header(ContentType::JSON).body(body.to_string());
        if self.session.is_some() {
            req = req.header(Header::new("X-CSRF-Token", self.csrf()));
        }
        self.finish(req.dispatch().await).await
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let csrf = self.csrf();
        let mut all = fields.to_vec();
        all.push(("csrf", &csrf));
        let req = self.request(Method::Post, path).header(ContentType::Form).body(form_body(&all));
        self.finish(req.dispatch().await).await
    }

    pub async fn post_htmx(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let req = self
            .request(Method::Post, path)
            .header(ContentType::Form)
            .header(Header::new("HX-Request", "true"))
            .header(Header::new("X-CSRF-Token", self.csrf()))
            .body(form_body(fields));
        self.finish(req.dispatch().await).await
    }
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

    /// Status and headers only, for endless bodies (server-sent events).
    pub fn head(res: LocalResponse<'_>) -> Self {
        let headers =
            res.headers().iter().map(|h| (h.name().to_string(), h.value().to_string())).collect();
        Self { status: res.status(), headers, body: String::new(), bytes: Vec::new() }
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

    /// The value the response sets for cookie `name` (`Some("")` when it removes it).
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers_named("Set-Cookie").into_iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (n, v) = first.split_once('=')?;
            (n.trim() == name).then(|| v.trim().to_owned())
        })
    }

    /// The whole `Set-Cookie` line for cookie `name`.
    pub fn set_cookie_line(&self, name: &str) -> Option<&str> {
        self.headers_named("Set-Cookie").into_iter().find(|c| c.starts_with(&format!("{name}=")))
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

    /// `Location` of a redirect.
    pub fn location(&self) -> Option<&str> {
        self.header("Location")
    }
}

/// Copies MaxMind's test databases into `<data_dir>/geoip/` under their edition names.
pub fn install_test_geoip(data_dir: &std::path::Path) {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip");
    let geoip = data_dir.join("geoip");
    std::fs::create_dir_all(&geoip).expect("geoip directory");
    std::fs::copy(fixtures.join("GeoIP2-City-Test.mmdb"), geoip.join("GeoLite2-City.mmdb"))
        .expect("city database");
    std::fs::copy(fixtures.join("GeoLite2-ASN-Test.mmdb"), geoip.join("GeoLite2-ASN.mmdb"))
        .expect("ASN database");
}

/// The value of the hidden `csrf` input of a page (anonymous forms).
pub fn csrf_of(page: &Reply) -> String {
    page.attrs("input[name=csrf]", "value")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no csrf input in:\n{}", page.body))
}

/// Fails with a message naming `.ci/test` when a test tool's variable is missing.
pub fn test_tool(var: &str) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("{var} is not set: run .ci/test, which installs the test tools and exports it")
    })
}
