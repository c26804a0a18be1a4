//! Single sign-on against a real OpenID provider on loopback: `PyPI` `oidc-provider-mock`
//! (installed by `.ci/test`, found through `STREAMWARDEN_TEST_OIDC_VENV`), which serves
//! discovery and JWKS and issues RS256-signed ID tokens for the users we define.

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
