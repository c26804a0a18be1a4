//! Settings → Notifications and `/api/v1/notifiers` through the real app.

use rocket::http::{ContentType, Header, Status};
use serde_json::json;

use crate::capture::{Capture, Reply};
use crate::common::{Reply as Page, TestEnv};

/// Posts a form as a browser does (`htmx`: as htmx does), as the signed-in admin.
async fn post_form(env: &TestEnv, path: &str, fields: &[(&str, &str)], htmx: bool) -> Page {
    if htmx { env.post_htmx(path, fields).await } else { env.post_form(path, fields).await }
}

/// An API call with the admin's session and its CSRF header.
async fn api(
    env: &TestEnv,
    method: rocket::http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Page {
    let session = env.session.clone().expect("signed in");
    let caller = env.as_(&session);
    let mut req = caller.request(method, path).header(Header::new("X-CSRF-Token", caller.csrf()));
    if let Some(body) = body {
        req = req.header(ContentType::JSON).body(body.to_string());
    }
    caller.finish(req.dispatch().await).await
}

const NTFY_FORM: &[(&str, &str)] = &[
    ("name", "Phone"),
    ("enabled", "true"),
    ("events", "violation"),
    ("events", "server_down"),
    ("min_severity", "warning"),
    ("topic", "sw-alerts"),
    ("token", "tk_form_secret_123"),
    ("priority_low", "2"),
    ("priority_warning", "4"),
    ("priority_high", "5"),
];

#[rocket::async_test]
async fn add_a_channel_with_a_form_and_its_secret_never_comes_back() {
    let env = TestEnv::new().await;
    let ntfy = Capture::start().await;
    let empty = env.get("/settings/notifications").await;
    assert_eq!(empty.status, Status::Ok);
    assert_eq!(empty.count(".empty-state"), 1);
    assert_eq!(empty.attrs("nav.tabs a[aria-current=page]", "href"), ["/settings/notifications"]);
    assert_eq!(empty.count(".alert-warn"), 1, "warns that links need the public URL");

    let form = env.get("/settings/notifications/new?kind=ntfy").await;
    assert_eq!(form.status, Status::Ok);
    for name in ["name", "server_url", "topic", "token", "username", "password", "tags", "ca_cert"]
    {
        assert_eq!(form.count(&format!("form.channel-form [name={name}]")), 1, "{name}");
    }
    assert_eq!(form.count("input[type=checkbox][name=events]"), 7);
    assert_eq!(form.count("form.channel-form input[name=csrf]"), 1);
    assert_eq!(env.get("/settings/notifications/new?kind=sms").await.status, Status::BadRequest);

    let mut fields = NTFY_FORM.to_vec();
    let url = ntfy.url();
    fields.push(("server_url", &url));
    let saved = post_form(&env, "/settings/notifications?kind=ntfy", &fields, false).await;
    assert_eq!(saved.status, Status::SeeOther, "{}", saved.body);
    assert_eq!(saved.header("Location"), Some("/settings/notifications"));

    let list = env.get("/settings/notifications").await;
    assert_eq!(list.text(".channel .channel-name"), "Phone");
    assert_eq!(list.text(".channel .channel-events"), "Rule violation, Server down");
    assert_eq!(list.text(".channel .channel-state"), "Enabled");
    let id = list.attrs(".channel", "id")[0].trim_start_matches("channel-").to_owned();

    let edit = env.get(&format!("/settings/notifications/{id}")).await;
    assert_eq!(edit.attrs("input[name=topic]", "value"), ["sw-alerts"]);
    assert_eq!(edit.attrs("input[name=token]", "value"), [""], "secrets are write-only");
    assert_eq!(edit.count(".secret-stored[data-secret=token]"), 1);
    assert_eq!(edit.attrs("select[name=min_severity] option[selected]", "value"), ["warning"]);
    assert_eq!(edit.attrs("select[name=priority_low] option[selected]", "value"), ["2"]);
    for page in [&list, &edit] {
        assert!(!page.body.contains("tk_form_secret_123"), "a secret in a page");
    }
    let api_list = env.get("/api/v1/notifiers").await;
    assert!(!api_list.body.contains("tk_form_secret_123"));
    assert_eq!(api_list.json()[0]["secrets_set"], json!(["token"]));

    // An edit that leaves the token empty keeps it: the test still authenticates.
    let mut edited = NTFY_FORM.to_vec();
    edited.retain(|(k, _)| *k != "token");
    edited.push(("token", ""));
    edited.push(("server_url", &url));
    edited.retain(|(k, _)| *k != "name");
    edited.push(("name", "Phone 2"));
    let saved = post_form(&env, &format!("/settings/notifications/{id}"), &edited, true).await;
    assert_eq!(saved.status, Status::Ok);
    assert_eq!(saved.header("HX-Redirect"), Some("/settings/notifications"));
    let list = env.get("/settings/notifications").await;
    assert_eq!(list.text(".channel .channel-name"), "Phone 2");
    assert_eq!(list.text(".alert-ok"), "Saved \"Phone 2\".", "the flash of the edit");
    let tested = post_form(&env, &format!("/settings/notifications/{id}/test"), &[], true).await;
    assert_eq!(tested.count(".alert-ok"), 1, "{}", tested.body);
    let request = &ntfy.requests()[0];
    assert_eq!(request.header("Authorization"), Some("Bearer tk_form_secret_123"));
    assert_eq!(request.json()["title"], "Test: Example rule: alice (example)");
}

#[rocket::async_test]
async fn a_bad_field_is_named_and_nothing_typed_is_lost() {
    let env = TestEnv::new().await;
    let fields = [
        ("name", "Mail"),
        ("enabled", "true"),
        ("events", "violation"),
        ("host", "mail.lan"),
        ("port", "99999"),
        ("security", "tls"),
        ("from", "sw@example.com"),
        ("to", "me@example.com"),
        ("username", "me"),
        ("password", "do-not-echo-me"),
    ];
    // Without JavaScript: the form comes back with the field marked and the values kept.
    let page = post_form(&env, "/settings/notifications?kind=email", &fields, false).await;
    assert_eq!(page.status, Status::BadRequest);
    assert_eq!(page.attrs("input[name=port]", "aria-invalid"), ["true"]);
    assert_eq!(page.text("#e-port"), "must be a whole number from 1 to 65535");
    assert_eq!(page.attrs("input[name=host]", "value"), ["mail.lan"]);
    assert_eq!(page.attrs("input[name=username]", "value"), ["me"]);
    assert_eq!(page.attrs("select[name=security] option[selected]", "value"), ["tls"]);
    assert!(!page.body.contains("do-not-echo-me"), "the password is not echoed");
    // With htmx: the error goes to the error slot; the form (and the password) stay.
    let fragment = post_form(&env, "/settings/notifications?kind=email", &fields, true).await;
    assert_eq!(fragment.status, Status::BadRequest);
    assert_eq!(fragment.header("HX-Retarget"), Some("#error-slot"));
    assert_eq!(fragment.text(".alert-error p"), "port: must be a whole number from 1 to 65535");
    // Nothing was saved.
    assert_eq!(env.get("/api/v1/notifiers").await.json(), json!([]));
    // Unchecking every event is an error too, not a silent "keep".
    let none = post_form(
        &env,
        "/settings/notifications?kind=ntfy",
        &[("name", "n"), ("topic", "t")],
        true,
    )
    .await;
    assert_eq!(none.text(".alert-error p"), "events: choose at least one event");
}

#[rocket::async_test]
async fn send_test_shows_the_exact_error_and_logs_it() {
    let env = TestEnv::new().await;
    let ntfy = Capture::start().await;
    ntfy.always(Reply::json(403, &json!({"code": 40301, "http": 403, "error": "forbidden", "link": "https://ntfy.sh/docs/publish/#authentication"})));
    let created = api(
        &env,
        rocket::http::Method::Post,
        "/api/v1/notifiers",
        Some(json!({"kind": "ntfy", "name": "Phone", "config": {"server_url": ntfy.url(), "topic": "t"}})),
    )
    .await;
    let id = created.json()["id"].as_i64().unwrap();
    let exact =
        "ntfy answered 403 Forbidden: forbidden (see https://ntfy.sh/docs/publish/#authentication)";
    let fragment = post_form(&env, &format!("/settings/notifications/{id}/test"), &[], true).await;
    assert_eq!(fragment.status, Status::Ok);
    assert_eq!(fragment.text(".alert-error .test-error"), exact);
    // Without JavaScript: back to the list with the error.
    let plain = post_form(&env, &format!("/settings/notifications/{id}/test"), &[], false).await;
    assert_eq!(plain.status, Status::SeeOther);
    let list = env.get("/settings/notifications").await;
    assert_eq!(list.text(".alert-error"), format!("The test failed: {exact}"));
    // The API answers 502 with the same words.
    let api_test =
        api(&env, rocket::http::Method::Post, &format!("/api/v1/notifiers/{id}/test"), None).await;
    assert_eq!(api_test.status, Status::BadGateway);
    assert_eq!(api_test.json()["error"]["code"], "upstream");
    assert_eq!(api_test.json()["error"]["message"], format!("Phone: {exact}"));
    // Each test is in the delivery log.
    let log = env.get(&format!("/settings/notifications/{id}/log")).await;
    assert_eq!(log.count("tr[data-status=failed]"), 3);
    assert_eq!(log.texts("tr[data-status=failed] .log-error")[0], exact);
    let deliveries =
        env.get(&format!("/api/v1/notifiers/{id}/deliveries?status=failed")).await.json();
    assert_eq!(deliveries["items"].as_array().unwrap().len(), 3);
    assert_eq!(deliveries["items"][0]["test"], true);
    assert_eq!(deliveries["items"][0]["error"], exact);
}

#[rocket::async_test]
async fn enable_disable_and_delete() {
    let env = TestEnv::new().await;
    let created = api(
        &env,
        rocket::http::Method::Post,
        "/api/v1/notifiers",
        Some(json!({"kind": "discord", "name": "Mods", "config": {"webhook_url": "http://127.0.0.1:9/api/webhooks/1/x"}})),
    )
    .await;
    assert_eq!(created.status, Status::Created, "{}", created.body);
    let id = created.json()["id"].as_i64().unwrap();
    let off = post_form(
        &env,
        &format!("/settings/notifications/{id}/enabled"),
        &[("enabled", "false")],
        false,
    )
    .await;
    assert_eq!(off.status, Status::SeeOther);
    let list = env.get("/settings/notifications").await;
    assert_eq!(list.text(".channel .channel-state"), "Disabled");
    assert_eq!(
        list.count(&format!(
            "form[action='/settings/notifications/{id}/enabled'] input[name=enabled][value=true]"
        )),
        1
    );
    post_form(
        &env,
        &format!("/settings/notifications/{id}/enabled"),
        &[("enabled", "true")],
        false,
    )
    .await;
    assert_eq!(env.get("/api/v1/notifiers").await.json()[0]["enabled"], true);
    let gone = post_form(&env, &format!("/settings/notifications/{id}/delete"), &[], false).await;
    assert_eq!(gone.status, Status::SeeOther);
    assert_eq!(env.get("/settings/notifications").await.count(".channel"), 0);
    assert_eq!(env.get(&format!("/settings/notifications/{id}")).await.status, Status::NotFound);
    // A malformed id is refused by its FromParam guard (Rocket answers 422, shown as 400).
    assert!(env.get("/settings/notifications/abc").await.status.code >= 400);
    // Every change is in the audit log, without secrets.
    let audit: Vec<String> = env
        .db()
        .read(|c| {
            let mut s =
                c.prepare("SELECT action FROM audit_log WHERE target = 'notifier:1' ORDER BY id")?;
            let rows = s.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    assert_eq!(
        audit,
        ["notifier.create", "notifier.disable", "notifier.enable", "notifier.delete"]
    );
}

#[rocket::async_test]
async fn the_api_follows_the_contract() {
    use rocket::http::Method::{Delete, Get, Patch, Post};
    let env = TestEnv::new().await;
    let hook = Capture::start().await;
    let created = api(
        &env,
        Post,
        "/api/v1/notifiers",
        Some(json!({
            "kind": "webhook", "name": "HA", "enabled": true, "events": ["violation", "trust_low"], "min_severity": "warning",
            "config": {"url": format!("{}/api/webhook/sw", hook.url()), "headers": {"Authorization": "Bearer ha-token"}, "secret": "0123456789abcdef-secret"}
        })),
    )
    .await;
    assert_eq!(created.status, Status::Created, "{}", created.body);
    let body = created.json();
    let id = body["id"].as_i64().unwrap();
    assert_eq!(body["kind"], "webhook");
    assert_eq!(body["events"], json!(["violation", "trust_low"]));
    assert_eq!(body["min_severity"], "warning");
    assert_eq!(
        body["config"],
        json!({"url": format!("{}/api/webhook/sw", hook.url()), "method": "POST"})
    );
    assert_eq!(body["secrets_set"], json!(["headers", "secret"]));
    assert_eq!(body["header_names"], json!(["Authorization"]));
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        !created.body.contains("ha-token") && !created.body.contains("0123456789abcdef-secret")
    );

    let bad = api(
        &env,
        Post,
        "/api/v1/notifiers",
        Some(json!({"kind": "ntfy", "name": "x", "config": {"topic": "no spaces please"}})),
    )
    .await;
    assert_eq!(bad.status, Status::BadRequest);
    assert_eq!(bad.json()["error"]["code"], "validation");
    assert_eq!(bad.json()["error"]["field"], "config.topic");
    let dup = api(
        &env,
        Post,
        "/api/v1/notifiers",
        Some(json!({"kind": "webhook", "name": "ha", "config": {"url": "http://x"}})),
    )
    .await;
    assert_eq!(dup.status, Status::Conflict);

    let patched = api(
        &env,
        Patch,
        &format!("/api/v1/notifiers/{id}"),
        Some(json!({"min_severity": "high", "config": {"method": "PUT"}})),
    )
    .await;
    assert_eq!(patched.status, Status::Ok, "{}", patched.body);
    assert_eq!(patched.json()["config"]["method"], "PUT");
    assert_eq!(
        patched.json()["secrets_set"],
        json!(["headers", "secret"]),
        "secrets left out are kept"
    );
    let cleared = api(
        &env,
        Patch,
        &format!("/api/v1/notifiers/{id}"),
        Some(json!({"config": {"secret": null}})),
    )
    .await;
    assert_eq!(cleared.json()["secrets_set"], json!(["headers"]), "null clears a secret");

    let tested = api(&env, Post, &format!("/api/v1/notifiers/{id}/test"), None).await;
    assert_eq!(tested.json(), json!({"ok": true}));
    let request = &hook.requests()[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(request.header("Authorization"), Some("Bearer ha-token"));
    assert_eq!(request.json()["test"], true);

    let one = api(&env, Get, &format!("/api/v1/notifiers/{id}"), None).await.json();
    assert_eq!(one["deliveries"]["sent"], 1);
    let deliveries =
        api(&env, Get, &format!("/api/v1/notifiers/{id}/deliveries"), None).await.json();
    assert_eq!(deliveries["items"][0]["status"], "sent");
    assert_eq!(deliveries["next_cursor"], serde_json::Value::Null);
    assert_eq!(
        api(&env, Get, &format!("/api/v1/notifiers/{id}/deliveries?status=nope"), None)
            .await
            .status,
        Status::BadRequest
    );

    assert_eq!(
        api(&env, Delete, &format!("/api/v1/notifiers/{id}"), None).await.status,
        Status::NoContent
    );
    let missing = api(&env, Get, &format!("/api/v1/notifiers/{id}"), None).await;
    assert_eq!(missing.status, Status::NotFound);
    assert_eq!(missing.json()["error"]["code"], "not_found");
}
