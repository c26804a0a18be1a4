//! Email through a real SMTP server on loopback: STARTTLS, implicit TLS, plain, login, and
//! a certificate from a private CA trusted through the channel's CA option.

use std::time::Duration;

use serde_json::{Value, json};
use streamwarden::notify::{Event, EventKind, Severity};

use crate::harness::{Harness, PUBLIC_URL};
use crate::smtp::{Mode, SmtpSink};

fn event() -> Event {
    Event::new(EventKind::Violation, "Berlin → Sydney <in 20 min>")
        .severity(Severity::High)
        .user(5, "zoë")
        .server(1, "Plex")
        .rule(3, "Impossible travel")
        .link("/violations/12")
}

fn config(sink: &SmtpSink, security: &str, ca: bool, login: bool) -> Value {
    let mut config = json!({
        "host": "127.0.0.1",
        "port": sink.port,
        "security": security,
        "from": "streamwarden@example.com",
        "from_name": "Stream Wärden",
        "to": "owner@example.com, second@example.com",
    });
    if ca {
        config["ca_cert"] = json!(sink.ca_pem());
    }
    if login {
        config["username"] = json!("sw-user");
        config["password"] = json!("sw-pässword");
    }
    config
}

fn check_message(m: &Value, tls: bool, auth: Option<&str>) {
    assert_eq!(m["tls"], tls);
    assert_eq!(m["auth"].as_str(), auth);
    assert_eq!(m["mail_from"], "streamwarden@example.com");
    assert_eq!(m["rcpt_tos"], json!(["owner@example.com", "second@example.com"]));
    let headers = &m["headers"];
    assert_eq!(headers["Subject"], "[Streamwarden] Impossible travel: zoë");
    assert_eq!(headers["From"], "Stream Wärden <streamwarden@example.com>");
    assert_eq!(headers["To"], "owner@example.com, second@example.com");
    assert_eq!(headers["Auto-Submitted"], "auto-generated");
    assert_eq!(headers["Importance"], "high");
    assert_eq!(headers["X-Streamwarden-Event"], "violation");
    assert!(headers["Message-ID"].as_str().unwrap().ends_with("@streamwarden>"));
    assert!(headers["Content-Type"].as_str().unwrap().starts_with("multipart/alternative"));
    let link = format!("{PUBLIC_URL}/violations/12");
    let text = m["parts"]["text/plain"].as_str().unwrap();
    assert!(text.starts_with("Impossible travel: zoë\n\nBerlin → Sydney <in 20 min>\n"), "{text}");
    assert!(
        text.contains("User: zoë")
            && text.contains("Server: Plex")
            && text.contains("Severity: High")
    );
    assert!(text.contains(&format!("Open in Streamwarden: {link}")));
    let html = m["parts"]["text/html"].as_str().unwrap();
    assert!(
        html.contains("Berlin → Sydney &#60;in 20 min&#62;"),
        "the evidence is escaped: {html}"
    );
    assert!(html.contains(&format!("href=\"{link}\"")));
    assert!(html.contains("<td>zoë</td>"));
}

#[tokio::test]
async fn starttls_with_login_and_a_private_ca() {
    let sink = SmtpSink::start(Mode::Starttls, Some(("sw-user", "sw-pässword"))).await;
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let id = h
        .channel("email", config(&sink, "starttls", true, true), json!({"events": ["violation"]}))
        .await;
    h.publish(event()).await;
    assert_eq!(h.deliver().await, 1);
    let m = &sink.wait_for(1, Duration::from_secs(10)).await[0];
    check_message(m, true, Some("sw-user"));
    let row = &h.messages(id).await[0];
    assert_eq!(row.status, "sent", "{:?}", row.last_error);
    assert_eq!(
        m["headers"]["Message-ID"],
        format!("<{}@streamwarden>", row.uid),
        "stable across retries"
    );
}

#[tokio::test]
async fn implicit_tls_with_login() {
    let sink = SmtpSink::start(Mode::Tls, Some(("sw-user", "sw-pässword"))).await;
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    h.channel("email", config(&sink, "tls", true, true), json!({"events": ["violation"]})).await;
    h.publish(event()).await;
    h.deliver().await;
    check_message(&sink.wait_for(1, Duration::from_secs(10)).await[0], true, Some("sw-user"));
}

#[tokio::test]
async fn plain_smtp_on_a_trusted_network() {
    let sink = SmtpSink::start(Mode::Plain, None).await;
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    h.channel("email", config(&sink, "none", false, false), json!({"events": ["violation"]})).await;
    h.publish(event()).await;
    h.deliver().await;
    check_message(&sink.wait_for(1, Duration::from_secs(10)).await[0], false, None);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_with_the_reason_and_is_retried() {
    let sink = SmtpSink::start(Mode::Starttls, Some(("sw-user", "sw-pässword"))).await;
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let id = h
        .channel("email", config(&sink, "starttls", false, true), json!({"events": ["violation"]}))
        .await;
    h.publish(event()).await;
    h.deliver().await;
    let row = &h.messages(id).await[0];
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("pending", 1),
        "retried: the certificate may be fixed"
    );
    let error = row.last_error.as_deref().unwrap();
    assert!(error.starts_with(&format!("SMTP 127.0.0.1:{}: ", sink.port)), "{error}");
    assert!(error.contains("UnknownIssuer") || error.contains("certificate"), "{error}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_wrong_password_is_a_permanent_failure_with_the_server_answer() {
    let sink = SmtpSink::start(Mode::Starttls, Some(("sw-user", "right"))).await;
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let id = h
        .channel("email", config(&sink, "starttls", true, true), json!({"events": ["violation"]}))
        .await;
    h.publish(event()).await;
    h.deliver().await;
    let row = &h.messages(id).await[0];
    assert_eq!(row.status, "failed", "{:?}", row.last_error);
    let error = row.last_error.as_deref().unwrap();
    assert!(error.contains("535"), "the server's answer: {error}");
    assert!(!error.contains("pässword"), "never the password: {error}");
}
