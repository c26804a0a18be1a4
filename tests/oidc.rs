//! Single sign-on against real OpenID providers on loopback, both in the venv `.ci/test`
//! prepares (`STREAMWARDEN_TEST_OIDC_VENV`): `PyPI` `oidc-provider-mock`, which serves
//! discovery and JWKS and issues RS256-signed ID tokens for the users we define; and our own
//! `tests/oidc_provider.py`, laid out like Authentik (its issuer ends with a slash), which
//! issues the tokens the mock cannot: expired, from the future, signed by a foreign key, or
//! naming another issuer.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::process::{free_port, wait_for};
use common::{Reply, TestEnv, test_tool};
use rocket::http::{Cookie, Status};
use streamwarden::auth::oidc::FLOW_COOKIE;
use streamwarden::auth::session::SESSION_COOKIE;
use streamwarden::config::{OidcOverrides, Secret};

/// A running provider; stopped when dropped.
struct Provider {
    child: Child,
    port: u16,
}

impl Provider {
    /// Starts the provider; `token_max_age` in seconds.
    fn start(token_max_age: Option<i64>) -> Self {
        let venv = test_tool("STREAMWARDEN_TEST_OIDC_VENV");
        let port = free_port();
        let mut cmd = Command::new(format!("{venv}/bin/oidc-provider-mock"));
        cmd.args(["-p", &port.to_string(), "-n", "true"]);
        if let Some(age) = token_max_age {
            cmd.args(["-e", &age.to_string()]);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| {
            panic!("cannot start the OIDC provider from {venv} ({e}): run .ci/test")
        });
        let mut provider = Self { child, port };
        let up = wait_for(Duration::from_secs(30), || {
            if let Ok(Some(status)) = provider.child.try_wait() {
                panic!("the OIDC provider exited: {status}");
            }
            common::process::http_get(port, "/.well-known/openid-configuration")
                .filter(|(s, _)| *s == 200)
                .map(|_| ())
        });
        assert!(up.is_some(), "the OIDC provider did not come up on port {port}");
        provider
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Defines a user and the claims the provider will put in its tokens.
    async fn user(&self, sub: &str, claims: serde_json::Value) {
        let r = reqwest::Client::new()
            .put(format!("{}/users/{sub}", self.issuer()))
            .json(&claims)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn overrides(issuer: &str) -> OidcOverrides {
    OidcOverrides {
        issuer: Some(issuer.to_owned()),
        client_id: Some("streamwarden".into()),
        client_secret: Some(Secret::new("client-secret")),
        admin_group: Some("admins".into()),
        allowed_group: Some("family".into()),
        auto_register: Some(true),
        ..OidcOverrides::default()
    }
}

/// A sign-in started at our app: the provider's authorization URL and the flow cookie.
async fn begin(env: &TestEnv) -> (String, String) {
    let start = env.anon().get("/auth/oidc/login?next=/account").await;
    assert_eq!(start.status, Status::SeeOther, "{}", start.body);
    let url = start.location().unwrap().to_owned();
    let cookie = start.set_cookie(FLOW_COOKIE).expect("flow cookie");
    (url, cookie)
}

/// The provider's "log in as" form, answered for `sub`: where it sends the browser back.
async fn authorize(url: &str, sub: &str) -> String {
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(common::form_body(&[("sub", sub)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302, "{}", r.text().await.unwrap());
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let parsed = reqwest::Url::parse(&back).unwrap();
    assert_eq!(parsed.path(), "/auth/oidc/callback");
    format!("{}?{}", parsed.path(), parsed.query().unwrap_or_default())
}

async fn callback(env: &TestEnv, path: &str, flow_cookie: &str) -> Reply {
    Reply::read(
        env.client
            .get(path.to_owned())
            .cookie(Cookie::new(FLOW_COOKIE, flow_cookie.to_owned()))
            .dispatch()
            .await,
    )
    .await
}

async fn sign_in(env: &TestEnv, sub: &str) -> Reply {
    let (url, cookie) = begin(env).await;
    let back = authorize(&url, sub).await;
    callback(env, &back, &cookie).await
}

async fn role_of(env: &TestEnv, reply: &Reply) -> serde_json::Value {
    let token = reply
        .set_cookie(SESSION_COOKIE)
        .unwrap_or_else(|| panic!("no session: {} {}", reply.status, reply.body));
    let me = Reply::read(
        env.client.get("/api/v1/me").cookie(Cookie::new(SESSION_COOKIE, token)).dispatch().await,
    )
    .await;
    me.json()
}

#[rocket::async_test]
async fn groups_map_to_roles_and_outsiders_are_refused() {
    let provider = Provider::start(None);
    let env = TestEnv::with_config(|c| c.oidc = overrides(&provider.issuer())).await;
    provider.user("alice", serde_json::json!({"groups": ["admins"], "preferred_username": "alice", "email": "alice@example.com", "email_verified": true})).await;
    provider
        .user("bob", serde_json::json!({"groups": ["family"], "preferred_username": "bob"}))
        .await;
    provider
        .user("carol", serde_json::json!({"groups": ["neighbours"], "preferred_username": "carol"}))
        .await;

    let login = env.anon().get("/login").await;
    assert_eq!(login.text("#oidc-login"), "Sign in with single sign-on");
    let (url, _) = begin(&env).await;
    let parsed = reqwest::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256", "PKCE");
    assert_eq!(q["scope"], "openid profile email groups");
    assert_eq!(q["redirect_uri"], "http://localhost:8484/auth/oidc/callback");
    assert!(q.contains_key("state") && q.contains_key("nonce"));

    let alice = sign_in(&env, "alice").await;
    assert_eq!(
        (alice.status, alice.location()),
        (Status::SeeOther, Some("/account")),
        "{}",
        alice.body
    );
    let me = role_of(&env, &alice).await;
    assert_eq!((me["name"].as_str(), me["role"].as_str()), (Some("alice"), Some("admin")));

    let bob = sign_in(&env, "bob").await;
    assert_eq!(role_of(&env, &bob).await["role"], "viewer");

    let carol = sign_in(&env, "carol").await;
    assert_eq!(carol.status, Status::Forbidden);
    let message = carol.text("#login-error p");
    assert!(
        message.contains("not in the group family") && message.contains("neighbours"),
        "{message}"
    );
    assert!(carol.set_cookie(SESSION_COOKIE).is_none());

    // Leaving the admin group demotes at the next sign-in (alice is not the last admin).
    provider
        .user("alice", serde_json::json!({"groups": ["family"], "preferred_username": "alice"}))
        .await;
    assert_eq!(role_of(&env, &sign_in(&env, "alice").await).await["role"], "viewer");

    // Accounts are linked by `sub`: alice is still one account.
    let n: i64 = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM accounts WHERE oidc_subject = 'alice'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    let audit = env.get("/settings/audit").await;
    assert!(audit.texts("#audit td[data-label=What]").contains(&"login.failed".to_owned()));
}

#[rocket::async_test]
async fn tampered_state_replay_wrong_nonce_and_other_browsers_are_refused() {
    let provider = Provider::start(None);
    let env = TestEnv::with_config(|c| c.oidc = overrides(&provider.issuer())).await;
    provider.user("alice", serde_json::json!({"groups": ["admins"]})).await;

    // Tampered state.
    let (url, cookie) = begin(&env).await;
    let back = authorize(&url, "alice").await;
    let tampered = back.replace("state=", "state=x");
    let r = callback(&env, &tampered, &cookie).await;
    assert_eq!(r.status, Status::BadRequest);
    assert!(r.text("#login-error p").contains("unknown, expired or was already used"));

    // The untouched answer works once; replayed, it is refused.
    let (url, cookie) = begin(&env).await;
    let back = authorize(&url, "alice").await;
    assert_eq!(callback(&env, &back, &cookie).await.status, Status::SeeOther);
    let replay = callback(&env, &back, &cookie).await;
    assert_eq!(replay.status, Status::BadRequest);
    assert!(replay.set_cookie(SESSION_COOKIE).is_none());

    // Another browser (no flow cookie) cannot finish a sign-in someone else started.
    let (url, _) = begin(&env).await;
    let back = authorize(&url, "alice").await;
    let r = callback(&env, &back, "someone-elses-cookie").await;
    assert!(r.text("#login-error p").contains("started in another browser"));

    // A token minted for another nonce (swapped in the authorization request).
    let (url, cookie) = begin(&env).await;
    let mut parsed = reqwest::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" { "attacker-nonce".to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    let back = authorize(parsed.as_str(), "alice").await;
    let r = callback(&env, &back, &cookie).await;
    assert_eq!(r.status, Status::BadRequest);
    assert!(r.text("#login-error p").contains("nonce mismatch"), "{}", r.body);
}

#[rocket::async_test]
async fn the_issuer_is_adopted_exactly_as_the_provider_states_it() {
    let provider = Provider::start(None);
    // Typed with a trailing slash; the provider's issuer has none (Authentik: the reverse).
    let typed = format!("{}/", provider.issuer());
    let env = TestEnv::with_config(|c| c.oidc = overrides(&typed)).await;
    provider.user("alice", serde_json::json!({"groups": ["admins"]})).await;
    let r = sign_in(&env, "alice").await;
    assert_eq!(r.status, Status::SeeOther, "{}", r.body);
    let issuer: String = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT oidc_issuer FROM accounts WHERE oidc_subject = 'alice'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(issuer, provider.issuer(), "stored exactly as the provider states it");

    // "Test configuration" says so; a different issuer is a clear mismatch.
    let fields = [
        "issuer",
        "client_id",
        "client_secret",
        "scopes",
        "button_text",
        "groups_claim",
        "admin_group",
        "allowed_group",
        "ca_file",
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|f| (*f, "")).collect();
    let test = env.post_htmx("/settings/sign-in/test", &fields).await;
    assert_eq!(test.attrs("#oidc-test-result", "data-ok"), ["true"], "{}", test.body);
    assert!(test.body.contains("adopted as the provider states it"));
    let report =
        streamwarden::auth::oidc::test_configuration(&streamwarden::auth::oidc::settings::merge(
            &streamwarden::auth::oidc::settings::Stored::default(),
            &overrides(&format!("http://localhost:{}", provider.port)),
            &streamwarden::crypto::SecretBox::new(&[0; 32]),
        ))
        .await;
    // The mock names itself after the Host it is asked through, so this one matches.
    assert!(report.is_ok());
    let unreachable =
        streamwarden::auth::oidc::test_configuration(&streamwarden::auth::oidc::settings::merge(
            &streamwarden::auth::oidc::settings::Stored::default(),
            &overrides(&format!("http://127.0.0.1:{}", free_port())),
            &streamwarden::crypto::SecretBox::new(&[0; 32]),
        ))
        .await
        .unwrap_err();
    assert_eq!(unreachable.code, "unreachable");
}

/// Our own provider (`tests/oidc_provider.py`); stopped when dropped.
struct OwnProvider {
    child: tokio::process::Child,
    port: u16,
}

impl OwnProvider {
    /// Starts it; `stated_issuer` makes it name another issuer than its loopback URL.
    async fn start(stated_issuer: Option<&str>) -> Self {
        use tokio::io::{AsyncBufReadExt as _, BufReader};
        let venv = test_tool("STREAMWARDEN_TEST_OIDC_VENV");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc_provider.py");
        let mut cmd = tokio::process::Command::new(format!("{venv}/bin/python"));
        cmd.args([script, "streamwarden", "client-secret"]);
        cmd.args(stated_issuer);
        // It stops when its stdin closes, so it cannot outlive the tests.
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script} with {venv} ({e}): run .ci/test"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        let port = match &ready {
            Ok(Ok(Some(line))) => line.strip_prefix("READY ").and_then(|p| p.parse().ok()),
            _ => None,
        };
        let port = port.unwrap_or_else(|| panic!("{script} did not start ({ready:?})"));
        Self { child, port }
    }

    /// Its issuer, as it states it: Authentik's form, with the trailing slash.
    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}/application/o/streamwarden/", self.port)
    }
}

impl Drop for OwnProvider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A sign-in through our own provider, which makes the ID token as `case` asks (the
/// `test_*` parameters of `tests/oidc_provider.py`).
async fn sign_in_own(env: &TestEnv, case: &[(&str, &str)]) -> Reply {
    let (url, cookie) = begin(env).await;
    let mut url = reqwest::Url::parse(&url).unwrap();
    url.query_pairs_mut().extend_pairs(case);
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "{}", r.text().await.unwrap());
    let back = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/auth/oidc/callback");
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert!(q.contains_key("code"), "the provider refused: {back}");
    callback(env, &format!("{}?{}", back.path(), back.query().unwrap_or_default()), &cookie).await
}

/// Asserts a sign-in was refused on the login page, without a session; returns the message
/// and the reason the audit log recorded.
async fn refused(env: &TestEnv, reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, Status::BadRequest, "{}", reply.body);
    assert!(reply.set_cookie(SESSION_COOKIE).is_none(), "no session");
    let reason: String = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT json_extract(details, '$.reason') FROM audit_log
                 WHERE action = 'login.failed' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    (reply.text("#login-error p"), reason)
}

/// Asserts a sign-in went through, to a session.
fn accepted(reply: &Reply) {
    assert_eq!(
        (reply.status, reply.location()),
        (Status::SeeOther, Some("/account")),
        "{}",
        reply.body
    );
    assert!(reply.set_cookie(SESSION_COOKIE).is_some_and(|s| !s.is_empty()));
}

const ALICE: [(&str, &str); 2] = [("test_sub", "alice"), ("test_groups", "admins")];

fn alice_with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    ALICE.iter().chain(extra).copied().collect()
}

#[rocket::async_test]
async fn expired_and_future_id_tokens_are_refused_beyond_a_minute_of_clock_skew() {
    let provider = OwnProvider::start(None).await;
    let env = TestEnv::with_config(|c| c.oidc = overrides(&provider.issuer())).await;

    // Expired two minutes ago: beyond the leeway, whatever the cause, the clocks are to check.
    let r = sign_in_own(&env, &alice_with(&[("test_exp", "-120")])).await;
    let (message, reason) = refused(&env, &r).await;
    assert_eq!(reason, "expired");
    assert!(
        message.contains("ID token has expired") && message.contains("check NTP on both"),
        "{message}"
    );
    // Both clocks are named, the token's the real one (not ours turned back by the leeway).
    let exp = message.split("expired at ").nth(1).and_then(|m| m.get(..20)).unwrap();
    let exp = chrono::DateTime::parse_from_rfc3339(exp).unwrap().timestamp();
    let ago = chrono::Utc::now().timestamp() - exp;
    assert!((119..=130).contains(&ago), "{message}");
    assert!(message.contains("our clock says"), "{message}");

    // Expired half a minute ago: within the leeway, a clock a little ahead is tolerated.
    accepted(&sign_in_own(&env, &alice_with(&[("test_exp", "-30")])).await);

    // Issued two minutes in the future: the provider's clock is ahead by more than the leeway.
    let r = sign_in_own(&env, &alice_with(&[("test_iat", "120")])).await;
    let (message, reason) = refused(&env, &r).await;
    assert_eq!(reason, "clock_skew");
    assert!(
        message.contains("more than a minute in the future") && message.contains("check NTP"),
        "{message}"
    );
    // Half a minute in the future: tolerated.
    accepted(&sign_in_own(&env, &alice_with(&[("test_iat", "30")])).await);
}

#[rocket::async_test]
async fn an_issuer_ending_with_a_slash_is_kept_exactly_however_it_is_typed() {
    let provider = OwnProvider::start(None).await;
    let issuer = provider.issuer();
    assert!(issuer.ends_with("/streamwarden/"));
    let without_slash = issuer.trim_end_matches('/').to_owned();
    let document = format!("{issuer}.well-known/openid-configuration");
    for typed in [&issuer, &without_slash, &document] {
        let env = TestEnv::with_config(|c| c.oidc = overrides(typed)).await;
        accepted(&sign_in_own(&env, &ALICE).await);
        let stored: String = env
            .db()
            .read(|c| {
                Ok(c.query_row(
                    "SELECT oidc_issuer FROM accounts WHERE oidc_subject = 'alice'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(stored, issuer, "typed {typed}: kept as the provider states it");
        let report = streamwarden::auth::oidc::test_configuration(&settings(typed)).await.unwrap();
        assert_eq!(report.issuer, issuer);
        assert_eq!(report.issuer_adopted, *typed != issuer, "typed {typed}");
    }

    // Exact from there on: a token naming the issuer without its slash is not the provider's.
    let env = TestEnv::with_config(|c| c.oidc = overrides(&without_slash)).await;
    let r = sign_in_own(&env, &alice_with(&[("test_iss", &without_slash)])).await;
    let (message, reason) = refused(&env, &r).await;
    assert_eq!(reason, "issuer_mismatch");
    assert!(
        message.contains("Issuer mismatch")
            && message.contains(&format!("names {without_slash},"))
            && message.contains(&format!("says {issuer}.")),
        "{message}"
    );

    // A provider that states another issuer than the URL it was reached at (its public URL
    // configured differently) is a clear mismatch before the browser is sent anywhere.
    let elsewhere = "https://sso.example.test/application/o/streamwarden/";
    let other = OwnProvider::start(Some(elsewhere)).await;
    let env = TestEnv::with_config(|c| c.oidc = overrides(&other.issuer())).await;
    let r = env.anon().get("/auth/oidc/login?next=/account").await;
    assert_eq!(r.status, Status::BadRequest, "{}", r.body);
    assert!(r.set_cookie(FLOW_COOKIE).is_none());
    let message = r.text("#login-error p");
    assert!(
        message.contains("Issuer mismatch")
            && message.contains(&other.issuer())
            && message.contains(elsewhere),
        "{message}"
    );
    let e =
        streamwarden::auth::oidc::test_configuration(&settings(&other.issuer())).await.unwrap_err();
    assert_eq!(e.code, "issuer_mismatch");
}

#[rocket::async_test]
async fn id_tokens_not_signed_by_the_providers_key_are_refused() {
    let provider = OwnProvider::start(None).await;
    let env = TestEnv::with_config(|c| c.oidc = overrides(&provider.issuer())).await;
    for case in [
        // A foreign key claiming the provider's key ID: a forgery.
        [("test_key", "rogue"), ("test_kid", "good")],
        // A foreign key under its own ID, which the provider's JWKS does not list.
        [("test_key", "rogue"), ("test_kid", "rogue")],
        // No signature at all (`alg: none`).
        [("test_key", "none"), ("test_kid", "good")],
    ] {
        let r = sign_in_own(&env, &alice_with(&case)).await;
        let (message, reason) = refused(&env, &r).await;
        assert_eq!(reason, "signature", "{case:?}: {message}");
        assert!(message.contains("signature does not verify"), "{case:?}: {message}");
    }
    let accounts: i64 = env
        .db()
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM accounts WHERE oidc_subject IS NOT NULL",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(accounts, 0, "no account was made from a forged token");
    // The same sign-in signed by the provider's key goes through.
    accepted(&sign_in_own(&env, &alice_with(&[("test_key", "good")])).await);
}

/// The settings `overrides(issuer)` make, as the app merges them.
fn settings(issuer: &str) -> streamwarden::auth::oidc::OidcSettings {
    streamwarden::auth::oidc::settings::merge(
        &streamwarden::auth::oidc::settings::Stored::default(),
        &overrides(issuer),
        &streamwarden::crypto::SecretBox::new(&[0; 32]),
    )
}
