//! ntfy (<https://ntfy.sh> or a server on the LAN), through JSON publishing: a `POST` of
//! `{topic, title, message, priority, tags, click}` to the server's root URL. JSON rather
//! than headers because titles are UTF-8 and headers are not.

use reqwest::Url;
use serde::Serialize;
use serde_json::json;

use super::channel::{
    Channel, Delivery, Fields, Priorities, SendError, Sent, check_pem_certificates,
};
use super::http;
use super::message::{Message, truncate_bytes, truncate_chars};
use crate::error::{AppError, AppResult};
use crate::rules::model::Severity;

pub const DEFAULT_SERVER: &str = "https://ntfy.sh";
/// ntfy turns longer messages into attachments.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Longer titles are cut off by the apps.
pub const MAX_TITLE_CHARS: usize = 200;
/// ntfy's `min` (1) to `max`/`urgent` (5); 3 is its default.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i64> = 1..=5;
pub const DEFAULT_PRIORITIES: Priorities = Priorities { low: 3, warning: 4, high: 5 };

pub const FIELDS: &[&str] = &[
    "server_url",
    "topic",
    "token",
    "username",
    "password",
    "priority_low",
    "priority_warning",
    "priority_high",
    "tags",
    "ca_cert",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NtfyConfig {
    /// Root URL of the server, e.g. `https://ntfy.sh` or `http://192.168.1.5:8080`.
    pub server_url: Url,
    pub topic: String,
    /// Access token (`tk_...`), sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// Or user and password, sent as Basic authentication.
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(flatten)]
    pub priorities: Priorities,
    /// Extra tags (emoji shortcodes or words) on every message.
    pub tags: Vec<String>,
    /// PEM CA certificate(s) to trust besides the system's (a self-hosted server).
    pub ca_cert: Option<String>,
}

impl NtfyConfig {
    pub fn parse(f: &mut Fields) -> AppResult<Self> {
        let server_url =
            f.url("server_url")?.unwrap_or_else(|| Url::parse(DEFAULT_SERVER).expect("valid"));
        if server_url.query().is_some() {
            return Err(AppError::validation(
                "server_url",
                "must not have a query string; use token or username and password",
            ));
        }
        let topic = f.required_string("topic", "the topic to publish to")?;
        if topic.len() > 64
            || !topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(AppError::validation(
                "topic",
                "may hold letters, digits, - and _ only, at most 64 (as ntfy requires)",
            ));
        }
        let token = f.raw_string("token")?.map(|t| t.trim().to_owned());
        let username = f.string("username")?;
        let password = f.raw_string("password")?;
        if token.is_some() && (username.is_some() || password.is_some()) {
            return Err(AppError::validation(
                "token",
                "use either an access token or a username and password, not both",
            ));
        }
        if password.is_some() && username.is_none() {
            return Err(AppError::validation("username", "enter the user the password belongs to"));
        }
        if username.is_some() && password.is_none() {
            return Err(AppError::validation("password", "enter the password of that user"));
        }
        let priorities = Priorities::parse(f, DEFAULT_PRIORITIES, PRIORITY_RANGE)?;
        let tags = f.list("tags")?;
        if let Some(bad) = tags.iter().find(|t| t.contains(char::is_whitespace) || t.len() > 64) {
            return Err(AppError::validation(
                "tags",
                format!("{bad:?}: a tag is one word (e.g. warning or tv)"),
            ));
        }
        let ca_cert = f.raw_string("ca_cert")?;
        if let Some(pem) = &ca_cert {
            check_pem_certificates("ca_cert", pem)?;
        }
        Ok(Self { server_url, topic, token, username, password, priorities, tags, ca_cert })
    }

    /// The URL JSON messages are published to: the server's root.
    pub fn publish_url(&self) -> String {
        let base = self.server_url.as_str().trim_end_matches('/');
        format!("{base}/")
    }

    /// The JSON body for `message`.
    pub fn body(&self, message: &Message) -> serde_json::Value {
        let mut tags = vec![severity_tag(message.severity).to_owned(), "streamwarden".to_owned()];
        tags.push(message.kind.as_str().to_owned());
        tags.extend(self.tags.iter().cloned());
        let mut body = json!({
            "topic": self.topic,
            "title": truncate_chars(&message.title, MAX_TITLE_CHARS),
            "message": truncate_bytes(&message.text(), MAX_MESSAGE_BYTES),
            "priority": self.priorities.for_severity(message.severity),
            "tags": tags,
        });
        if let Some(url) = &message.url {
            body["click"] = json!(url);
            body["actions"] = json!([{ "action": "view", "label": "Open", "url": url }]);
        }
        body
    }
}

/// Shown as an emoji by the ntfy apps.
fn severity_tag(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "information_source",
        Severity::Warning => "warning",
        Severity::High => "rotating_light",
    }
}

/// ntfy's error JSON: `{"code":40301,"http":403,"error":"forbidden"}`.
fn detail(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?.as_str()?;
    let link = value.get("link").and_then(|l| l.as_str());
    Some(match link {
        Some(link) => format!("{error} (see {link})"),
        None => error.to_owned(),
    })
}

impl Channel for NtfyConfig {
    async fn send(&self, delivery: &Delivery<'_>, message: &Message) -> Result<Sent, SendError> {
        let custom;
        let client = match &self.ca_cert {
            Some(pem) => {
                custom = http::client_trusting(pem)?;
                &custom
            }
            None => delivery.http,
        };
        let mut request = client.post(self.publish_url()).json(&self.body(message));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        } else if let Some(user) = &self.username {
            request = request.basic_auth(user, self.password.as_deref());
        }
        let answer = http::execute("ntfy", request).await?;
        http::check("ntfy", &answer, detail)?;
        Ok(Sent::default())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::notify::{Event, EventKind, message};

    fn parse(v: Value) -> AppResult<NtfyConfig> {
        let Value::Object(map) = v else { panic!() };
        let mut f = Fields::new(map);
        let c = NtfyConfig::parse(&mut f)?;
        f.finish(crate::notify::ChannelKind::Ntfy)?;
        Ok(c)
    }

    #[test]
    fn defaults_and_validation() {
        let c = parse(json!({"topic": "alerts"})).unwrap();
        assert_eq!(c.publish_url(), "https://ntfy.sh/");
        assert_eq!(c.priorities, DEFAULT_PRIORITIES);
        let c =
            parse(json!({"server_url": "http://192.168.1.5:8080/ntfy/", "topic": "a"})).unwrap();
        assert_eq!(c.publish_url(), "http://192.168.1.5:8080/ntfy/");

        let cases = [
            (json!({}), "topic"),
            (json!({"topic": "a b"}), "topic"),
            (json!({"topic": "a", "server_url": "ntfy.sh"}), "server_url"),
            (json!({"topic": "a", "token": "t", "username": "u", "password": "p"}), "token"),
            (json!({"topic": "a", "password": "p"}), "username"),
            (json!({"topic": "a", "username": "u"}), "password"),
            (json!({"topic": "a", "priority_high": 6}), "priority_high"),
            (json!({"topic": "a", "priority_low": "0"}), "priority_low"),
            (json!({"topic": "a", "tags": "two words"}), "tags"),
            (json!({"topic": "a", "ca_cert": "not a cert"}), "ca_cert"),
            (json!({"topic": "a", "sound": "x"}), "sound"),
        ];
        for (input, field) in cases {
            match parse(input.clone()) {
                Err(AppError::Validation { field: f, .. }) => assert_eq!(f, field, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn body_maps_severity_and_respects_limits() {
        let c = parse(json!({"topic": "alerts", "tags": "tv, plex"})).unwrap();
        let links = message::Links::new(Some(Url::parse("http://nas:8484").unwrap()));
        let event = Event::new(EventKind::Violation, "é".repeat(3000))
            .rule(1, "Impossible travel ✈")
            .user(2, "zoë")
            .severity(Severity::High)
            .link("/violations/4");
        let m = message::render(&event, &links, false);
        let body = c.body(&m);
        assert_eq!(body["topic"], "alerts");
        assert_eq!(body["title"], "Impossible travel ✈: zoë");
        assert_eq!(body["priority"], 5);
        assert_eq!(
            body["tags"],
            json!(["rotating_light", "streamwarden", "violation", "tv", "plex"])
        );
        assert_eq!(body["click"], "http://nas:8484/violations/4");
        let text = body["message"].as_str().unwrap();
        assert!(text.len() <= MAX_MESSAGE_BYTES && text.ends_with('…'));
        let low = message::render(
            &event.clone().severity(Severity::Low),
            &message::Links::default(),
            false,
        );
        let body = c.body(&low);
        assert_eq!(body["priority"], 3);
        assert!(body.get("click").is_none(), "no public URL, no link");
    }
}
