//! A generic webhook: a versioned JSON payload to any URL, with custom headers and an
//! optional HMAC-SHA256 signature. The payload is documented in the README ("Webhook
//! payload"); version 1 only ever gains fields.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;

use super::channel::{Channel, Delivery, Fields, SendError, Sent, check_pem_certificates};
use super::event::Event;
use super::http;
use super::message::{Message, rfc3339};
use crate::error::{AppError, AppResult};

/// Version of the payload's shape.
pub const PAYLOAD_VERSION: u32 = 1;
pub const SIGNATURE_HEADER: &str = "X-Streamwarden-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Streamwarden-Timestamp";
pub const EVENT_HEADER: &str = "X-Streamwarden-Event";
pub const DELIVERY_HEADER: &str = "X-Streamwarden-Delivery";
/// Headers we set ourselves, which custom headers may not replace.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "x-streamwarden-signature",
    "x-streamwarden-timestamp",
    "x-streamwarden-event",
    "x-streamwarden-delivery",
];

pub const FIELDS: &[&str] = &["url", "method", "headers", "secret", "ca_cert"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookConfig {
    pub url: Url,
    /// `POST` (default), `PUT` or `PATCH`.
    pub method: String,
    /// Sent with every request, e.g. `Authorization` (a secret as a whole).
    pub headers: BTreeMap<String, String>,
    /// Key of the HMAC-SHA256 signature; no signature when unset.
    pub secret: Option<String>,
    /// PEM CA certificate(s) to trust besides the system's.
    pub ca_cert: Option<String>,
}

impl WebhookConfig {
    pub fn parse(f: &mut Fields) -> AppResult<Self> {
        let url =
            f.url("url")?.ok_or_else(|| AppError::validation("url", "enter the URL to send to"))?;
        let method =
            f.string("method")?.map_or_else(|| "POST".to_owned(), |m| m.to_ascii_uppercase());
        if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            return Err(AppError::validation("method", "must be POST, PUT or PATCH"));
        }
        let headers = f.pairs("headers")?;
        for (name, value) in &headers {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(AppError::validation(
                    "headers",
                    format!("{name:?} is not a valid header name"),
                ));
            }
            if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(AppError::validation(
                    "headers",
                    format!("{name} is set by Streamwarden itself"),
                ));
            }
            if HeaderValue::from_str(value).is_err() {
                return Err(AppError::validation(
                    "headers",
                    format!("the value of {name} holds characters a header cannot"),
                ));
            }
        }
        let secret = f.raw_string("secret")?;
        if secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(AppError::validation(
                "secret",
                "use at least 16 characters (a random string is best)",
            ));
        }
        let ca_cert = f.raw_string("ca_cert")?;
        if let Some(pem) = &ca_cert {
            check_pem_certificates("ca_cert", pem)?;
        }
        Ok(Self { url, method, headers, secret, ca_cert })
    }
}

/// The payload, version [`PAYLOAD_VERSION`].
pub fn payload(event: &Event, message: &Message, uid: &str) -> serde_json::Value {
    json!({
        "version": PAYLOAD_VERSION,
        "id": uid,
        "event": event.kind,
        "severity": event.severity,
        "occurred_at": rfc3339(event.at),
        "title": message.title,
        "message": message.body,
        "url": message.url,
        "user": event.user,
        "server": event.server,
        "rule": event.rule,
        "data": event.data,
        "test": message.is_test,
    })
}

/// `sha256=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", super::to_hex(&digest))
}

impl Channel for WebhookConfig {
    async fn send(&self, delivery: &Delivery<'_>, message: &Message) -> Result<Sent, SendError> {
        let config = self;
        let body = serde_json::to_vec(&payload(delivery.event, message, delivery.uid))
            .map_err(|e| SendError::permanent(format!("cannot encode the payload: {e}")))?;
        let custom;
        let client = match &config.ca_cert {
            Some(pem) => {
                custom = http::client_trusting(pem)?;
                &custom
            }
            None => delivery.http,
        };
        let method =
            reqwest::Method::from_bytes(config.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut request = client
            .request(method, config.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, delivery.event.kind.as_str())
            .header(DELIVERY_HEADER, delivery.uid);
        for (name, value) in &config.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(secret) = &config.secret {
            let timestamp = jiff::Timestamp::now().as_second();
            request = request
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, signature(secret, timestamp, &body));
        }
        let answer = http::execute("the webhook", request.body(body)).await?;
        http::check("the webhook", &answer, |_| None)?;
        Ok(Sent::default())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::notify::{EventKind, Severity, message};

    fn parse(v: Value) -> AppResult<WebhookConfig> {
        let Value::Object(map) = v else { panic!() };
        WebhookConfig::parse(&mut Fields::new(map))
    }

    #[test]
    fn validation() {
        let ok = parse(json!({"url": "http://10.0.0.2:8123/api/webhook/x", "method": "put", "headers": "Authorization: Bearer abc"})).unwrap();
        assert_eq!(ok.method, "PUT");
        assert_eq!(ok.headers["Authorization"], "Bearer abc");
        let cases = [
            (json!({}), "url"),
            (json!({"url": "http://x", "method": "GET"}), "method"),
            (json!({"url": "http://x", "headers": "Content-Type: text/plain"}), "headers"),
            (json!({"url": "http://x", "headers": {"Bad Name": "x"}}), "headers"),
            (json!({"url": "http://x", "headers": {"X-A": "line\nbreak"}}), "headers"),
            (json!({"url": "http://x", "secret": "short"}), "secret"),
        ];
        for (input, field) in cases {
            match parse(input.clone()) {
                Err(AppError::Validation { field: f, .. }) => assert_eq!(f, field, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn payload_v1_and_signature() {
        let event = Event::new(EventKind::Violation, "two cities")
            .severity(Severity::High)
            .user(5, "alice")
            .rule(3, "Travel")
            .at(1_700_000_000_000)
            .data(json!({"distance_km": 16000}));
        let m = message::render(&event, &message::Links::default(), false);
        let p = payload(&event, &m, "abc");
        assert_eq!(p["version"], 1);
        assert_eq!(p["id"], "abc");
        assert_eq!(p["event"], "violation");
        assert_eq!(p["severity"], "high");
        assert_eq!(p["occurred_at"], "2023-11-14T22:13:20Z");
        assert_eq!(p["user"], json!({"id": 5, "name": "alice"}));
        assert_eq!(p["server"], Value::Null);
        assert_eq!(p["data"]["distance_km"], 16000);
        assert_eq!(p["test"], false);
        // Known answer: printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature("key", 1_700_000_000, b"{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
        assert!(
            signature("key", 1, b"x").starts_with("sha256=")
                && signature("key", 1, b"x").len() == 7 + 64
        );
    }
}
