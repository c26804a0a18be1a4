//! Email over SMTP with `lettre`: no encryption, STARTTLS (required, never downgraded) or
//! implicit TLS; optional login; plain text and HTML bodies from templates. A server with a
//! certificate from its own CA works by trusting that CA here, not by turning checks off.

use std::time::Duration;

use askama::Template;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use serde::Serialize;

use super::channel::{Channel, Delivery, Fields, SendError, Sent, check_pem_certificates};
use super::message::Message;
use crate::error::{AppError, AppResult};
use crate::rules::model::Severity;

/// Longest wait for the TCP connection (lettre applies its timeout to connecting only).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a whole delivery: connection, TLS, login and the message.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_FROM_NAME: &str = "Streamwarden";

pub const FIELDS: &[&str] =
    &["host", "port", "security", "username", "password", "from", "from_name", "to", "ca_cert"];

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain SMTP (port 25): only for a relay on a trusted network.
    None,
    /// Submission with STARTTLS (port 587); refuses to go on unencrypted.
    Starttls,
    /// Implicit TLS from the first byte (port 465).
    Tls,
}

impl Security {
    pub fn default_port(self) -> u16 {
        match self {
            Security::None => 25,
            Security::Starttls => 587,
            Security::Tls => 465,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Sender address: one the SMTP account may send as.
    pub from: String,
    pub from_name: String,
    pub to: Vec<String>,
    /// PEM CA certificate(s) to trust besides the system's.
    pub ca_cert: Option<String>,
}

impl EmailConfig {
    pub fn parse(f: &mut Fields) -> AppResult<Self> {
        let host = f.required_string("host", "the SMTP server's host name or address")?;
        if host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':')
            && host.parse::<std::net::Ipv6Addr>().is_err()
        {
            return Err(AppError::validation(
                "host",
                "is a host name or IP address only (the port has its own field)",
            ));
        }
        let security = match f.string("security")?.as_deref() {
            None | Some("starttls") => Security::Starttls,
            Some("tls") => Security::Tls,
            Some("none") => Security::None,
            Some(other) => {
                return Err(AppError::validation(
                    "security",
                    format!("{other:?} is not one of none, starttls, tls"),
                ));
            }
        };
        let port = f
            .int("port", 1..=65535)?
            .map_or(security.default_port(), |p| u16::try_from(p).unwrap_or(25));
        let username = f.raw_string("username")?.map(|u| u.trim().to_owned());
        let password = f.raw_string("password")?;
        if password.is_some() && username.is_none() {
            return Err(AppError::validation("username", "enter the user the password belongs to"));
        }
        let from = f.required_string("from", "the sender address")?;
        from.parse::<Address>().map_err(|e| {
            AppError::validation("from", format!("{from:?} is not an email address ({e})"))
        })?;
        let from_name = f.string("from_name")?.unwrap_or_else(|| DEFAULT_FROM_NAME.to_owned());
        if from_name.contains(['\r', '\n']) {
            return Err(AppError::validation("from_name", "must be one line"));
        }
        let to = f.list("to")?;
        if to.is_empty() {
            return Err(AppError::validation("to", "enter at least one recipient"));
        }
        for address in &to {
            address.parse::<Address>().map_err(|e| {
                AppError::validation("to", format!("{address:?} is not an email address ({e})"))
            })?;
        }
        let ca_cert = f.raw_string("ca_cert")?;
        if let Some(pem) = &ca_cert {
            check_pem_certificates("ca_cert", pem)?;
        }
        Ok(Self { host, port, security, username, password, from, from_name, to, ca_cert })
    }

    /// The email for `message`.
    pub fn build(&self, message: &Message, uid: &str) -> Result<lettre::Message, SendError> {
        let bad = |e: &dyn std::fmt::Display| {
            SendError::permanent(format!("cannot build the email: {e}"))
        };
        let from_address: Address = self.from.parse().map_err(|e| bad(&e))?;
        let mut builder = lettre::Message::builder()
            .from(Mailbox::new(Some(self.from_name.clone()), from_address))
            .subject(format!("[Streamwarden] {}", message.title))
            .message_id(Some(format!("<{uid}@streamwarden>")))
            .date_now()
            .user_agent(concat!("Streamwarden/", env!("CARGO_PKG_VERSION")).to_owned())
            .raw_header(header("Auto-Submitted", "auto-generated"))
            .raw_header(header("X-Streamwarden-Event", message.kind.as_str()));
        if message.severity == Severity::High {
            builder = builder
                .raw_header(header("Importance", "high"))
                .raw_header(header("X-Priority", "1"));
        }
        for to in &self.to {
            builder = builder.to(Mailbox::new(None, to.parse().map_err(|e| bad(&e))?));
        }
        let text = EmailText { m: message }.render().map_err(|e| bad(&e))?;
        let html = EmailHtml { m: message }.render().map_err(|e| bad(&e))?;
        builder.multipart(MultiPart::alternative_plain_html(text, html)).map_err(|e| bad(&e))
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
                .port(self.port)
                .timeout(Some(CONNECT_TIMEOUT));
        if self.security != Security::None {
            let mut params = TlsParameters::builder(self.host.clone());
            if let Some(pem) = &self.ca_cert {
                let cert = Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                    SendError::permanent(format!("the extra CA certificate is invalid: {e}"))
                })?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| SendError::permanent(format!("cannot set up TLS: {e}")))?;
            builder = builder.tls(match self.security {
                Security::Starttls => Tls::Required(params),
                _ => Tls::Wrapper(params),
            });
        }
        if let Some(user) = &self.username {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                self.password.clone().unwrap_or_default(),
            ));
        }
        Ok(builder.build())
    }

    fn describe(&self) -> String {
        format!("SMTP {}:{}", self.host, self.port)
    }
}

fn header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_owned())
}

/// An SMTP failure in words, and whether it is worth retrying: 5xx answers will fail again,
/// everything else (4xx, network, TLS, timeouts) may not.
fn smtp_error(server: &str, e: &lettre::transport::smtp::Error) -> SendError {
    let message = format!("{server}: {e}");
    if e.is_permanent() { SendError::permanent(message) } else { SendError::transient(message) }
}

#[derive(Template)]
#[template(path = "notify/email.txt")]
struct EmailText<'a> {
    m: &'a Message,
}

#[derive(Template)]
#[template(path = "notify/email.html")]
struct EmailHtml<'a> {
    m: &'a Message,
}

impl EmailHtml<'_> {
    fn colour(&self) -> &'static str {
        match self.m.severity {
            Severity::Low => "#3498db",
            Severity::Warning => "#f39c12",
            Severity::High => "#e74c3c",
        }
    }
}

impl Channel for EmailConfig {
    async fn send(&self, delivery: &Delivery<'_>, message: &Message) -> Result<Sent, SendError> {
        let email = self.build(message, delivery.uid)?;
        let transport = self.transport()?;
        let server = self.describe();
        let result = tokio::time::timeout(SEND_TIMEOUT, transport.send(email)).await;
        // Closes the pooled connection; its failure changes nothing about the delivery.
        let _ = tokio::time::timeout(Duration::from_secs(2), transport.shutdown()).await;
        match result {
            Err(_) => Err(SendError::transient(format!(
                "{server}: no answer within {} s",
                SEND_TIMEOUT.as_secs()
            ))),
            Ok(Err(e)) => Err(smtp_error(&server, &e)),
            Ok(Ok(_)) => Ok(Sent::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::notify::{Event, EventKind, message};

    fn parse(v: Value) -> AppResult<EmailConfig> {
        let Value::Object(map) = v else { panic!() };
        EmailConfig::parse(&mut Fields::new(map))
    }

    #[test]
    fn ports_follow_the_security_and_fields_are_checked() {
        let base = json!({"host": "mail.lan", "from": "sw@example.com", "to": "me@example.com"});
        let with = |extra: Value| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse(v)
        };
        assert_eq!(with(json!({})).unwrap().port, 587);
        assert_eq!(with(json!({"security": "tls"})).unwrap().port, 465);
        assert_eq!(with(json!({"security": "none"})).unwrap().port, 25);
        assert_eq!(with(json!({"security": "none", "port": "2525"})).unwrap().port, 2525);
        let cases = [
            (json!({"host": ""}), "host"),
            (json!({"host": "mail.lan:587"}), "host"),
            (json!({"security": "ssl"}), "security"),
            (json!({"port": 0}), "port"),
            (json!({"password": "p"}), "username"),
            (json!({"from": "not an address"}), "from"),
            (json!({"to": ""}), "to"),
            (json!({"to": "a@b.c, nope"}), "to"),
            (
                json!({"ca_cert": "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----"}),
                "ca_cert",
            ),
        ];
        for (extra, field) in cases {
            match with(extra.clone()) {
                Err(AppError::Validation { field: f, .. }) => assert_eq!(f, field, "{extra}"),
                other => panic!("{extra}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_email_has_both_parts_and_useful_headers() {
        let c = parse(json!({"host": "mail.lan", "from": "sw@example.com", "from_name": "Wärden", "to": ["a@example.com", "b@example.com"]})).unwrap();
        let event = Event::new(EventKind::Violation, "Berlin → Sydney <fast>")
            .rule(1, "Impossible travel")
            .user(2, "zoë")
            .severity(Severity::High)
            .link("/violations/7");
        let links =
            message::Links::new(Some(reqwest::Url::parse("https://sw.example.com").unwrap()));
        let m = message::render(&event, &links, false);
        let raw = String::from_utf8(c.build(&m, "u123").unwrap().formatted()).unwrap();
        assert!(raw.contains("Message-ID: <u123@streamwarden>"), "{raw}");
        assert!(raw.contains("Importance: high"));
        assert!(raw.contains("Auto-Submitted: auto-generated"));
        assert!(raw.contains("To: a@example.com, b@example.com"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        // UTF-8 in headers is encoded (RFC 2047).
        assert!(
            raw.contains("Subject: [Streamwarden] Impossible travel: =?utf-8?b?em/Dqw==?="),
            "{raw}"
        );
        assert!(raw.contains("From: =?utf-8?b?V8OkcmRlbg==?= <sw@example.com>"));
        let html = EmailHtml { m: &m }.render().unwrap();
        assert!(
            html.contains("Berlin → Sydney &#60;fast&#62;"),
            "HTML escapes the evidence: {html}"
        );
        assert!(html.contains("href=\"https://sw.example.com/violations/7\""));
        let text = EmailText { m: &m }.render().unwrap();
        assert!(text.contains("Berlin → Sydney <fast>"));
        assert!(text.contains("https://sw.example.com/violations/7"));
    }
}
